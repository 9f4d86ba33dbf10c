package gateway

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Defaults of Config.
const (
	DefaultHTTPAddr        = ":8080"
	DefaultAdminAddr       = "127.0.0.1:9090"
	DefaultDevBroker       = "127.0.0.1:9092"
	DefaultTopic           = "events"
	DefaultDLQTopic        = "sluice.dlq"
	DefaultMemoryLimit     = 1 << 30
	DefaultMaxBody         = 4 << 20
	DefaultMaxEvent        = 1 << 20
	DefaultAckTimeout      = 10 * time.Second
	DefaultShutdownTimeout = 30 * time.Second
)

// Sink kinds.
const (
	SinkKafka   = "kafka"
	SinkDiscard = "discard"
	SinkStdout  = "stdout"
)

// Config is sluice's whole configuration: one flat, validated struct that
// the flags and the YAML file (--config) map onto in one place
// (LoadConfig). It is never mutated after start.
type Config struct {
	// HTTPAddr is the ingest listener (POST /v1/events, /healthz, /readyz).
	// Default ":8080". Port 0 picks a free port (see App.HTTPAddr).
	HTTPAddr string `yaml:"http"`
	// AdminAddr is the admin listener (/metrics, /healthz, /readyz, the
	// admin API). Default "127.0.0.1:9090".
	AdminAddr string `yaml:"admin"`
	// Brokers are the Kafka seed brokers. Required for the kafka sink
	// unless Dev is set.
	Brokers []string `yaml:"brokers"`
	// Dev starts an embedded Kafka-protocol broker (kfake) on DevBroker and
	// points the sink at it; topics are auto-created.
	Dev bool `yaml:"dev"`
	// DevBroker is the embedded broker's address. Default "127.0.0.1:9092".
	DevBroker string `yaml:"dev_broker"`
	// Sink is kafka (default), discard (benchmarks) or stdout (NDJSON, for
	// debugging).
	Sink string `yaml:"sink"`
	// Topic is the default topic of records no transform routed. Default
	// "events".
	Topic string `yaml:"topic"`
	// DLQTopic is the dead-letter topic. Default "sluice.dlq".
	DLQTopic string `yaml:"dlq_topic"`
	// APIKeys are accepted API keys of the default tenant. With no keys and
	// no tenants, ingest is open. Also from env SLUICE_API_KEYS (comma
	// separated).
	APIKeys []string `yaml:"api_keys"`
	// Tenants map API keys to tenants with their own default topic and
	// pipeline.
	Tenants []Tenant `yaml:"tenants"`
	// AdminToken is the bearer token of the admin API. Also from env
	// SLUICE_ADMIN_TOKEN. Dev generates one when empty; without a token the
	// admin API routes answer 404 (the health and metrics routes stay).
	AdminToken string `yaml:"admin_token"`
	// TransformsDir holds .wasm transforms loaded at start, each named by its
	// file name without the extension.
	TransformsDir string `yaml:"transforms"`
	// Pipeline is the default tenant's chain of transform names. Empty:
	// records pass through unchanged.
	Pipeline []string `yaml:"pipeline"`
	// MemoryLimit is the process memory budget in bytes. It sets GOMEMLIMIT
	// (when given explicitly) and sizes the governor: a quarter of it may be
	// in flight (leased), an eighth may wait in the receive queue. WASM
	// guests' linear memory counts against it through the governor's heap
	// source. Default 1 GiB.
	MemoryLimit ByteSize `yaml:"memory_limit"`
	// MaxBody caps a request body in bytes, before and after decompression;
	// larger is 413. Default 4 MiB.
	MaxBody ByteSize `yaml:"max_body"`
	// MaxEvent caps one event in bytes; a larger event is dead-lettered
	// ("event too large"). Default 1 MiB.
	MaxEvent ByteSize `yaml:"max_event"`
	// QueueBytes caps the bytes waiting for the driver; a request that does
	// not fit is 503. Default MemoryLimit/8 (at least MaxBody).
	QueueBytes ByteSize `yaml:"queue_bytes"`
	// GuestMemory caps the linear memory of one WASM transform instance; a
	// guest that needs more fails its call (its records are dead-lettered
	// "oom: ..."). Default MemoryLimit/16, between 16 MiB and 64 MiB, so the
	// pooled instances of a few transforms stay within the memory limit.
	GuestMemory ByteSize `yaml:"guest_memory"`
	// AckTimeout bounds how long a request waits for its ack; then 504.
	// Default 10s.
	AckTimeout time.Duration `yaml:"ack_timeout"`
	// ShutdownTimeout bounds the drain on SIGTERM; requests still waiting
	// then get 503. Default 30s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// DataDir keeps transforms, the compilation cache and (with Dev) the
	// embedded broker's data across restarts. Empty: nothing persists.
	DataDir string `yaml:"data_dir"`
	// LogFormat is text (default) or json.
	LogFormat string `yaml:"log_format"`
	// LogLevel is debug, info (default), warn or error.
	LogLevel string `yaml:"log_level"`
	// ReadyFile, when set, is written once both listeners are bound, with
	// one line "http=ADDR admin=ADDR".
	ReadyFile string `yaml:"ready_file"`

	memoryLimitSet bool
}

// Tenant is one API key's tenant.
type Tenant struct {
	// Name identifies the tenant (admin API, logs).
	Name string `yaml:"name"`
	// Keys are the tenant's API keys.
	Keys []string `yaml:"keys"`
	// KeyEnv names an environment variable holding one more key.
	KeyEnv string `yaml:"key_env"`
	// Topic is the tenant's default topic ("" = Config.Topic).
	Topic string `yaml:"topic"`
	// Pipeline is the tenant's chain ("" = Config.Pipeline).
	Pipeline []string `yaml:"pipeline"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		HTTPAddr:        DefaultHTTPAddr,
		AdminAddr:       DefaultAdminAddr,
		DevBroker:       DefaultDevBroker,
		Sink:            SinkKafka,
		Topic:           DefaultTopic,
		DLQTopic:        DefaultDLQTopic,
		MemoryLimit:     DefaultMemoryLimit,
		MaxBody:         DefaultMaxBody,
		MaxEvent:        DefaultMaxEvent,
		AckTimeout:      DefaultAckTimeout,
		ShutdownTimeout: DefaultShutdownTimeout,
		LogFormat:       "text",
		LogLevel:        "info",
	}
}

// MemoryLimitSet reports whether the memory limit was given explicitly (and
// so sets GOMEMLIMIT).
func (c *Config) MemoryLimitSet() bool { return c.memoryLimitSet }

// queueBytes returns the effective queue cap.
func (c *Config) queueBytes() int64 {
	if c.QueueBytes > 0 {
		return int64(c.QueueBytes)
	}
	return max(int64(c.MemoryLimit)/8, int64(c.MaxBody))
}

// guestMemory returns the effective per-instance guest memory cap.
func (c *Config) guestMemory() int64 {
	if c.GuestMemory > 0 {
		return int64(c.GuestMemory)
	}
	return min(max(int64(c.MemoryLimit)/16, minGuestMemory), maxGuestMemory)
}

// Bounds of the derived per-instance guest memory cap: a Go guest needs
// about 3 MiB to start; 64 MiB is the host's own default.
const (
	minGuestMemory = 16 << 20
	maxGuestMemory = 64 << 20
)

// Validate reports every invalid field.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	for _, a := range []struct{ name, v string }{{"http", c.HTTPAddr}, {"admin", c.AdminAddr}} {
		if _, _, err := net.SplitHostPort(a.v); err != nil {
			bad("--%s %q: want HOST:PORT (%v)", a.name, a.v, err)
		}
	}
	switch c.Sink {
	case SinkKafka:
		if !c.Dev && len(c.Brokers) == 0 {
			bad("--sink kafka needs --brokers (or --dev for the embedded broker)")
		}
	case SinkDiscard, SinkStdout:
	default:
		bad("--sink %q: want kafka, discard or stdout", c.Sink)
	}
	if c.Dev {
		if _, _, err := net.SplitHostPort(c.DevBroker); err != nil {
			bad("--dev-broker %q: want HOST:PORT (%v)", c.DevBroker, err)
		}
	}
	if c.Topic == "" || c.DLQTopic == "" {
		bad("--topic and --dlq-topic must not be empty")
	}
	if c.Topic == c.DLQTopic {
		bad("--topic and --dlq-topic must differ (both %q)", c.Topic)
	}
	if c.MemoryLimit < 16<<20 {
		bad("--memory-limit %v: want at least 16MiB", c.MemoryLimit)
	}
	if c.MaxBody <= 0 || c.MaxEvent <= 0 {
		bad("--max-body and --max-event must be > 0")
	}
	if c.MaxEvent > c.MaxBody {
		bad("--max-event %v must not exceed --max-body %v", c.MaxEvent, c.MaxBody)
	}
	if c.GuestMemory < 0 || (c.GuestMemory > 0 && c.GuestMemory < 4<<20) {
		bad("guest_memory %v must be at least 4MiB (a Go guest needs about 3 MiB to start)", c.GuestMemory)
	}
	if c.QueueBytes < 0 || (c.QueueBytes > 0 && c.QueueBytes < c.MaxBody) {
		bad("queue_bytes %v must be ≥ --max-body %v", c.QueueBytes, c.MaxBody)
	}
	if c.AckTimeout <= 0 || c.ShutdownTimeout <= 0 {
		bad("--ack-timeout and --shutdown-timeout must be > 0")
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		bad("--log-format %q: want text or json", c.LogFormat)
	}
	switch strings.ToLower(c.LogLevel) {
	case "debug", "info", "warn", "error":
	default:
		bad("--log-level %q: want debug, info, warn or error", c.LogLevel)
	}
	keys := map[string]string{}
	for _, k := range c.APIKeys {
		if k == "" {
			bad("an API key is empty")
		}
		keys[k] = ""
	}
	names := map[string]bool{"": true}
	for _, t := range c.Tenants {
		if names[t.Name] {
			bad("tenant name %q is empty or repeated", t.Name)
		}
		names[t.Name] = true
		if len(t.Keys) == 0 {
			bad("tenant %q has no API key (keys or key_env)", t.Name)
		}
		for _, k := range t.Keys {
			if prev, ok := keys[k]; ok {
				bad("tenant %q: API key already used by tenant %q", t.Name, prev)
			}
			keys[k] = t.Name
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return nil
}

// ByteSize is a size in bytes that reads "256MiB", "4MB", "1GiB" or "1024".
type ByteSize int64

// String formats the size with the largest exact binary unit.
func (s ByteSize) String() string {
	for _, u := range []struct {
		n    int64
		name string
	}{{1 << 30, "GiB"}, {1 << 20, "MiB"}, {1 << 10, "KiB"}} {
		if s != 0 && int64(s)%u.n == 0 {
			return strconv.FormatInt(int64(s)/u.n, 10) + u.name
		}
	}
	return strconv.FormatInt(int64(s), 10)
}

// Set parses a size (flag.Value).
func (s *ByteSize) Set(v string) error {
	n, err := ParseSize(v)
	if err != nil {
		return err
	}
	*s = ByteSize(n)
	return nil
}

// UnmarshalYAML parses a size from a YAML scalar.
func (s *ByteSize) UnmarshalYAML(n *yaml.Node) error { return s.Set(n.Value) }

// ParseSize parses "256MiB", "4MB", "64k", "1GiB" or a byte count.
func ParseSize(v string) (int64, error) {
	s := strings.TrimSpace(v)
	i := len(s)
	for i > 0 && (s[i-1] < '0' || s[i-1] > '9') {
		i--
	}
	num, unit := s[:i], strings.ToLower(strings.TrimSpace(s[i:]))
	mult := map[string]int64{
		"": 1, "b": 1,
		"k": 1 << 10, "kb": 1000, "kib": 1 << 10,
		"m": 1 << 20, "mb": 1000 * 1000, "mib": 1 << 20,
		"g": 1 << 30, "gb": 1000 * 1000 * 1000, "gib": 1 << 30,
	}[unit]
	n, err := strconv.ParseFloat(num, 64)
	if err != nil || mult == 0 || n < 0 {
		return 0, fmt.Errorf("size %q: want a number with an optional unit (KiB, MiB, GiB, KB, MB, GB)", v)
	}
	return int64(n * float64(mult)), nil
}

// stringList is a repeatable flag that also splits on commas.
type stringList []string

// String joins the values (flag.Value).
func (l *stringList) String() string { return strings.Join(*l, ",") }

// Set appends the comma-separated values of v (flag.Value).
func (l *stringList) Set(v string) error {
	for p := range strings.SplitSeq(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*l = append(*l, p)
		}
	}
	return nil
}

// LoadConfig builds the configuration of `sluice run` from args: the
// defaults, then the YAML file of --config, then the environment
// (SLUICE_ADMIN_TOKEN, SLUICE_API_KEYS, tenants' key_env), then the flags
// given explicitly. It validates the result. getenv may be nil (os.Getenv).
func LoadConfig(args []string, getenv func(string) string, stderr io.Writer) (Config, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	cfg := DefaultConfig()
	var f Config // flag values, copied onto cfg for the flags given
	var configPath string
	var apiKeys, brokers, pipeline stringList
	fs := flag.NewFlagSet("sluice run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&configPath, "config", "", "YAML configuration file (flags override it)")
	fs.StringVar(&f.HTTPAddr, "http", DefaultHTTPAddr, "ingest listener address")
	fs.StringVar(&f.AdminAddr, "admin", DefaultAdminAddr, "admin listener address (metrics, health, admin API)")
	fs.Var(&brokers, "brokers", "Kafka seed brokers, comma separated")
	fs.BoolVar(&f.Dev, "dev", false, "start an embedded Kafka-protocol broker and use it")
	fs.StringVar(&f.DevBroker, "dev-broker", DefaultDevBroker, "embedded broker address (with --dev)")
	fs.StringVar(&f.Sink, "sink", SinkKafka, "sink: kafka, discard or stdout")
	fs.StringVar(&f.Topic, "topic", DefaultTopic, "default topic")
	fs.StringVar(&f.DLQTopic, "dlq-topic", DefaultDLQTopic, "dead-letter topic")
	fs.Var(&apiKeys, "api-key", "accepted API key (repeatable; env SLUICE_API_KEYS)")
	fs.StringVar(&f.AdminToken, "admin-token", "", "admin API bearer token (env SLUICE_ADMIN_TOKEN; --dev generates one)")
	fs.StringVar(&f.TransformsDir, "transforms", "", "load every .wasm in this folder at start, named by file name")
	fs.Var(&pipeline, "pipeline", "default pipeline: transform names, comma separated")
	f.MemoryLimit, f.MaxBody, f.MaxEvent = DefaultMemoryLimit, DefaultMaxBody, DefaultMaxEvent
	fs.Var(&f.MemoryLimit, "memory-limit", "memory budget, e.g. 256MiB (also sets GOMEMLIMIT)")
	fs.Var(&f.MaxBody, "max-body", "request body cap, before and after decompression")
	fs.Var(&f.MaxEvent, "max-event", "per-event cap; larger events are dead-lettered")
	fs.Var(&f.QueueBytes, "queue-bytes", "receive queue cap (default memory-limit/8)")
	fs.Var(&f.GuestMemory, "guest-memory", "linear memory cap of one WASM transform instance (default memory-limit/16, 16MiB..64MiB)")
	fs.DurationVar(&f.AckTimeout, "ack-timeout", DefaultAckTimeout, "how long a request waits for its ack before 504")
	fs.DurationVar(&f.ShutdownTimeout, "shutdown-timeout", DefaultShutdownTimeout, "drain deadline on SIGTERM")
	fs.StringVar(&f.DataDir, "data-dir", "", "data folder (transforms, compilation cache, dev broker data)")
	fs.StringVar(&f.LogFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&f.LogLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&f.ReadyFile, "ready-file", "", "write the bound addresses to this file once listening")
	if err := fs.Parse(args); err != nil {
		return Config{}, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("%w: unexpected arguments %q", ErrConfig, fs.Args())
	}
	if configPath != "" {
		b, err := os.ReadFile(configPath)
		if err != nil {
			return Config{}, fmt.Errorf("%w: %w", ErrConfig, err)
		}
		dec := yaml.NewDecoder(strings.NewReader(string(b)))
		dec.KnownFields(true)
		if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
			return Config{}, fmt.Errorf("%w: %s: %w", ErrConfig, configPath, err)
		}
		cfg.memoryLimitSet = cfg.MemoryLimit != DefaultMemoryLimit
	}
	if v := getenv("SLUICE_ADMIN_TOKEN"); v != "" && cfg.AdminToken == "" {
		cfg.AdminToken = v
	}
	if v := getenv("SLUICE_API_KEYS"); v != "" {
		var l stringList
		_ = l.Set(v)
		cfg.APIKeys = append(cfg.APIKeys, l...)
	}
	for i := range cfg.Tenants {
		t := &cfg.Tenants[i]
		if t.KeyEnv != "" {
			if v := getenv(t.KeyEnv); v != "" {
				t.Keys = append(t.Keys, v)
			}
		}
	}
	fs.Visit(func(fl *flag.Flag) {
		switch fl.Name {
		case "http":
			cfg.HTTPAddr = f.HTTPAddr
		case "admin":
			cfg.AdminAddr = f.AdminAddr
		case "brokers":
			cfg.Brokers = brokers
		case "dev":
			cfg.Dev = f.Dev
		case "dev-broker":
			cfg.DevBroker = f.DevBroker
		case "sink":
			cfg.Sink = f.Sink
		case "topic":
			cfg.Topic = f.Topic
		case "dlq-topic":
			cfg.DLQTopic = f.DLQTopic
		case "api-key":
			cfg.APIKeys = append(cfg.APIKeys, apiKeys...)
		case "admin-token":
			cfg.AdminToken = f.AdminToken
		case "transforms":
			cfg.TransformsDir = f.TransformsDir
		case "pipeline":
			cfg.Pipeline = pipeline
		case "memory-limit":
			cfg.MemoryLimit, cfg.memoryLimitSet = f.MemoryLimit, true
		case "max-body":
			cfg.MaxBody = f.MaxBody
		case "max-event":
			cfg.MaxEvent = f.MaxEvent
		case "queue-bytes":
			cfg.QueueBytes = f.QueueBytes
		case "guest-memory":
			cfg.GuestMemory = f.GuestMemory
		case "ack-timeout":
			cfg.AckTimeout = f.AckTimeout
		case "shutdown-timeout":
			cfg.ShutdownTimeout = f.ShutdownTimeout
		case "data-dir":
			cfg.DataDir = f.DataDir
		case "log-format":
			cfg.LogFormat = f.LogFormat
		case "log-level":
			cfg.LogLevel = f.LogLevel
		case "ready-file":
			cfg.ReadyFile = f.ReadyFile
		}
	})
	maxEventSet := cfg.MaxEvent != DefaultMaxEvent
	fs.Visit(func(fl *flag.Flag) { maxEventSet = maxEventSet || fl.Name == "max-event" })
	if !maxEventSet && cfg.MaxEvent > cfg.MaxBody {
		cfg.MaxEvent = cfg.MaxBody // the default per-event cap follows a smaller body cap
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}
