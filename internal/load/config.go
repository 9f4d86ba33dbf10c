package load

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"
)

// Auth header modes of Config.AuthHeader.
const (
	// AuthBearer sends the key as "Authorization: Bearer KEY".
	AuthBearer = "bearer"
	// AuthXAPIKey sends the key as "X-API-Key: KEY".
	AuthXAPIKey = "x-api-key"
	// AuthBoth sends both headers.
	AuthBoth = "both"
)

// Config is one load run. The zero value is not valid; DefaultConfig
// returns the flag defaults. A Config must not change once Run started.
type Config struct {
	// URL is the ingest endpoint (http or https). Default
	// http://127.0.0.1:8080/v1/events.
	URL string
	// EventsPerRequest is the number of events in every request body (≥ 1).
	// Default 100.
	EventsPerRequest int
	// Connections is the number of concurrent connections; each carries one
	// request at a time. Default 16.
	Connections int
	// Duration bounds the run by time (0: unbounded). When both Duration and
	// Requests are 0, Validate sets Duration to 10 s. The run stops at the
	// first bound reached.
	Duration time.Duration
	// Requests bounds the run by the number of requests sent (0: unbounded).
	Requests int64
	// Rate is the target in requests per second over all connections (0:
	// closed loop, every connection sends its next request as soon as the
	// previous one is answered). With a rate the schedule is open-loop:
	// request k is due at start + k/Rate and its latency is measured from
	// that intended time, so a slow server cannot hide queueing delay
	// (no coordinated omission). If Connections are too few to keep up, the
	// latency shows it.
	Rate float64
	// Gzip compresses every body (Content-Encoding: gzip, best speed).
	Gzip bool
	// APIKey is sent on every request as AuthHeader says ("" sends none).
	APIKey string
	// AuthHeader is how APIKey is sent: AuthBearer (default), AuthXAPIKey or
	// AuthBoth.
	AuthHeader string
	// ContentType of the body. Default application/x-ndjson (one event per
	// line). With application/json the body is a JSON array of the events.
	ContentType string
	// Seed makes the built-in events deterministic: event ids are
	// "<seed>-<seq>" and every other field but ts is a function of them.
	// 0 means "the start time in Unix nanoseconds" (ids differ between runs).
	Seed uint64
	// HeartbeatShare is the share of built-in events that are heartbeats, in
	// [0, 1]. Default 0.1.
	HeartbeatShare float64
	// EventsFile, when set, replaces the built-in events by the lines of an
	// NDJSON file, cycled in order.
	EventsFile string
	// Timeout bounds each request (connect, write, response). Default 10 s.
	Timeout time.Duration
	// Insecure skips TLS certificate verification for https URLs (test
	// clusters with self-signed certificates). Default false.
	Insecure bool
	// AdminURL is the sluice admin listener (e.g. http://127.0.0.1:9090);
	// when set, GET {AdminURL}/admin/budget is polled once a second.
	AdminURL string
	// AdminToken is sent to the admin listener as a bearer token.
	AdminToken string
	// RecordAcks, when set, is a file that receives the id of every event of
	// every request answered 200, one per line.
	RecordAcks string
	// ProgressInterval is the period of the progress line; 0 disables it.
	// Default 1 s (Main sets 0 with --quiet).
	ProgressInterval time.Duration

	// adminEvery is the admin poll period (0: 1 s); tests shorten it.
	adminEvery time.Duration
}

// DefaultConfig returns the defaults of every flag.
func DefaultConfig() Config {
	return Config{
		URL:              "http://127.0.0.1:8080/v1/events",
		EventsPerRequest: 100,
		Connections:      16,
		AuthHeader:       AuthBearer,
		ContentType:      "application/x-ndjson",
		HeartbeatShare:   0.1,
		Timeout:          10 * time.Second,
		ProgressInterval: time.Second,
	}
}

// Validate checks the configuration and fills the defaults of zero fields
// that have one (Duration, AuthHeader, ContentType, Timeout). Errors wrap
// ErrUsage.
func (c *Config) Validate() error {
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usagef("--url %q: want http(s)://host[:port]/path", c.URL)
	}
	if c.AdminURL != "" {
		u, err := url.Parse(c.AdminURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return usagef("--admin-url %q: want http(s)://host[:port]", c.AdminURL)
		}
	}
	switch {
	case c.EventsPerRequest < 1:
		return usagef("--events-per-request %d: want ≥ 1", c.EventsPerRequest)
	case c.Connections < 1:
		return usagef("--connections %d: want ≥ 1", c.Connections)
	case c.Duration < 0:
		return usagef("--duration %v: want ≥ 0", c.Duration)
	case c.Requests < 0:
		return usagef("--requests %d: want ≥ 0", c.Requests)
	case c.Rate < 0:
		return usagef("--rate %v: want ≥ 0", c.Rate)
	case c.HeartbeatShare < 0 || c.HeartbeatShare > 1:
		return usagef("--heartbeat-share %v: want within [0, 1]", c.HeartbeatShare)
	case c.Timeout < 0:
		return usagef("--timeout %v: want > 0", c.Timeout)
	case c.ProgressInterval < 0:
		return usagef("progress interval %v: want ≥ 0", c.ProgressInterval)
	}
	switch c.AuthHeader {
	case "":
		c.AuthHeader = AuthBearer
	case AuthBearer, AuthXAPIKey, AuthBoth:
	default:
		return usagef("--auth-header %q: want bearer, x-api-key or both", c.AuthHeader)
	}
	if c.Duration == 0 && c.Requests == 0 {
		c.Duration = 10 * time.Second
	}
	if c.ContentType == "" {
		c.ContentType = "application/x-ndjson"
	}
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Second
	}
	return nil
}

// jsonArrayBody reports whether bodies are JSON arrays rather than NDJSON.
func (c *Config) jsonArrayBody() bool {
	mt, _, _ := strings.Cut(c.ContentType, ";")
	return strings.EqualFold(strings.TrimSpace(mt), "application/json")
}

// options are the flags that are not part of a run's Config: outputs.
type options struct {
	jsonOut string
	plotOut string
	quiet   bool
}

// parseFlags maps the command line onto a Config and the output options.
func parseFlags(args []string, stderr io.Writer) (Config, options, error) {
	cfg := DefaultConfig()
	var o options
	fs := flag.NewFlagSet("sluice load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.URL, "url", cfg.URL, "ingest endpoint `URL`")
	fs.IntVar(&cfg.EventsPerRequest, "events-per-request", cfg.EventsPerRequest, "events per request body")
	fs.IntVar(&cfg.Connections, "connections", cfg.Connections, "concurrent connections (one request in flight each)")
	fs.DurationVar(&cfg.Duration, "duration", 0, "run for this long (default 10s when --requests is not set)")
	fs.Int64Var(&cfg.Requests, "requests", 0, "send exactly this many requests (0: bounded by --duration)")
	fs.Float64Var(&cfg.Rate, "rate", 0, "target requests/s, open loop; latency counts from the intended send time (0: closed loop, as fast as possible)")
	fs.BoolVar(&cfg.Gzip, "gzip", false, "gzip request bodies (Content-Encoding: gzip)")
	fs.StringVar(&cfg.APIKey, "api-key", "", "API `KEY` (sent as Authorization: Bearer KEY; see --auth-header)")
	fs.StringVar(&cfg.AuthHeader, "auth-header", cfg.AuthHeader, "how --api-key is sent: bearer, x-api-key or both")
	fs.StringVar(&cfg.ContentType, "content-type", cfg.ContentType, "request Content-Type; application/json sends a JSON array")
	fs.Uint64Var(&cfg.Seed, "seed", 0, "seed of the built-in events; ids are <seed>-<seq> (0: start time)")
	fs.Float64Var(&cfg.HeartbeatShare, "heartbeat-share", cfg.HeartbeatShare, "share of built-in events that are heartbeats")
	fs.StringVar(&cfg.EventsFile, "events", "", "NDJSON `FILE` of events to send instead of the built-in event, cycled")
	fs.DurationVar(&cfg.Timeout, "timeout", cfg.Timeout, "per-request timeout")
	fs.BoolVar(&cfg.Insecure, "insecure", false, "skip TLS certificate verification (https)")
	fs.StringVar(&cfg.AdminURL, "admin-url", "", "sluice admin `URL`; polls /admin/budget once a second")
	fs.StringVar(&cfg.AdminToken, "admin-token", "", "bearer `TOKEN` for --admin-url")
	fs.StringVar(&cfg.RecordAcks, "record-acks", "", "write the ids of the events of every request answered 200 to `FILE`")
	fs.StringVar(&o.jsonOut, "json", "", "write the report as JSON to `FILE` (- for stdout, replacing the text report)")
	fs.StringVar(&o.plotOut, "plot", "", "write an SVG chart of throughput, latency and governor state to `FILE`")
	fs.BoolVar(&o.quiet, "quiet", false, "no progress line on stderr")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cfg, o, err
		}
		return cfg, o, usagef("%v", err)
	}
	if fs.NArg() > 0 {
		return cfg, o, usagef("unexpected arguments %q", fs.Args())
	}
	if o.quiet {
		cfg.ProgressInterval = 0
	}
	return cfg, o, cfg.Validate()
}

// describe summarises the run in one line for the operator.
func (c *Config) describe() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d connections, %d events/request", c.Connections, c.EventsPerRequest)
	if c.Rate > 0 {
		fmt.Fprintf(&b, ", %g req/s open loop", c.Rate)
	} else {
		b.WriteString(", closed loop")
	}
	if c.Requests > 0 {
		fmt.Fprintf(&b, ", %d requests", c.Requests)
	}
	if c.Duration > 0 {
		fmt.Fprintf(&b, ", up to %v", c.Duration)
	}
	if c.Gzip {
		b.WriteString(", gzip")
	}
	if c.EventsFile != "" {
		fmt.Fprintf(&b, ", events from %s", c.EventsFile)
	}
	return b.String()
}
