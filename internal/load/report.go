package load

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Report is the outcome of a run; its JSON form is what --json writes.
// Rates are per second of the run's wall time (start to the last answer).
// MB are 10^6 bytes.
type Report struct {
	// URL is the endpoint the run loaded.
	URL string `json:"url"`
	// Started is when the schedule started.
	Started time.Time `json:"started"`
	// DurationSeconds is the wall time from Started to the last answer.
	DurationSeconds float64 `json:"duration_seconds"`
	// Config echoes the run's settings.
	Config ReportConfig `json:"config"`
	// Requests counts requests.
	Requests RequestStats `json:"requests"`
	// Events counts events.
	Events EventStats `json:"events"`
	// Bytes counts body bytes.
	Bytes ByteStats `json:"bytes"`
	// Latency covers the requests that got an HTTP answer (any status),
	// measured from the intended send time (open loop) or the actual send
	// time (closed loop) to the end of the response.
	Latency LatencyStats `json:"latency_ms"`
	// Status counts answers by HTTP status code ("other" for codes outside
	// 100–599).
	Status map[string]uint64 `json:"status"`
	// Errors counts requests that got no answer, by kind: "timeout",
	// "connection" (refused, reset, closed) and "other".
	Errors map[string]uint64 `json:"errors"`
	// ErrorSamples holds the first error message of each kind seen.
	ErrorSamples map[string]string `json:"error_samples,omitempty"`
	// Timeline has one entry per second of the run, by completion time.
	Timeline []Second `json:"timeline"`
	// Admin has the /admin/budget polls (only with --admin-url).
	Admin []AdminSample `json:"admin,omitempty"`
}

// ReportConfig echoes the run's settings (see Config); Seed is the seed in
// effect, also when it was chosen from the clock.
type ReportConfig struct {
	EventsPerRequest int     `json:"events_per_request"`
	Connections      int     `json:"connections"`
	Rate             float64 `json:"rate"`
	DurationLimit    float64 `json:"duration_limit_seconds"`
	RequestsLimit    int64   `json:"requests_limit"`
	Gzip             bool    `json:"gzip"`
	ContentType      string  `json:"content_type"`
	Seed             uint64  `json:"seed"`
	HeartbeatShare   float64 `json:"heartbeat_share"`
	EventsFile       string  `json:"events_file,omitempty"`
}

// RequestStats counts requests.
type RequestStats struct {
	// Total is every request sent; each ends in a status or an error.
	Total uint64 `json:"total"`
	// OK is the requests answered 200.
	OK          uint64  `json:"ok"`
	PerSecond   float64 `json:"per_second"`
	OKPerSecond float64 `json:"ok_per_second"`
}

// EventStats counts events.
type EventStats struct {
	// Sent is the events of every request sent.
	Sent uint64 `json:"sent"`
	// Acked is the events of requests answered 200.
	Acked uint64 `json:"acked"`
	// PerSecond is Acked per second of the run.
	PerSecond float64 `json:"per_second"`
}

// ByteStats counts request body bytes.
type ByteStats struct {
	// Sent is the body bytes of every request sent, as sent (compressed
	// with --gzip), including requests that failed.
	Sent uint64 `json:"sent"`
	// Uncompressed is body bytes before compression.
	Uncompressed uint64 `json:"uncompressed"`
	// MBPerSecond is Sent in 10^6 bytes per second of the run.
	MBPerSecond float64 `json:"mb_per_second"`
}

// LatencyStats are latency statistics in milliseconds: min, mean and max are
// exact, quantiles within the histogram's precision (see Histogram).
type LatencyStats struct {
	// Count is the number of requests measured (those answered).
	Count uint64  `json:"count"`
	Min   float64 `json:"min"`
	Mean  float64 `json:"mean"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	P999  float64 `json:"p99_9"`
	Max   float64 `json:"max"`
}

// Second is one second of the timeline: requests that completed in
// [T, T+1) s after the start. NonOK counts answers other than 200, Errors
// requests without an answer; latency quantiles cover the answered ones.
type Second struct {
	T           int     `json:"t"`
	Requests    uint64  `json:"requests"`
	OK          uint64  `json:"ok"`
	NonOK       uint64  `json:"non_ok"`
	Errors      uint64  `json:"errors"`
	EventsAcked uint64  `json:"events_acked"`
	BytesSent   uint64  `json:"bytes_sent"`
	P50         float64 `json:"p50_ms"`
	P90         float64 `json:"p90_ms"`
	P99         float64 `json:"p99_ms"`
	Max         float64 `json:"max_ms"`
}

func ms(ns uint64) float64 { return float64(ns) / 1e6 }

func latencyStats(h *Histogram) LatencyStats {
	return LatencyStats{
		Count: h.Count(), Min: ms(h.Min()), Mean: h.Mean() / 1e6,
		P50: ms(h.Quantile(0.50)), P90: ms(h.Quantile(0.90)), P99: ms(h.Quantile(0.99)),
		P999: ms(h.Quantile(0.999)), Max: ms(h.Max()),
	}
}

// report merges the workers' statistics.
func (r *run) report(workers []*worker, elapsed time.Duration, admin []AdminSample) *Report {
	cfg := &r.cfg
	rep := &Report{
		URL:             cfg.URL,
		Started:         r.start,
		DurationSeconds: elapsed.Seconds(),
		Config: ReportConfig{
			EventsPerRequest: cfg.EventsPerRequest, Connections: cfg.Connections, Rate: cfg.Rate,
			DurationLimit: cfg.Duration.Seconds(), RequestsLimit: cfg.Requests, Gzip: cfg.Gzip,
			ContentType: cfg.ContentType, Seed: cfg.Seed, HeartbeatShare: cfg.HeartbeatShare,
			EventsFile: cfg.EventsFile,
		},
		Status: map[string]uint64{},
		Errors: map[string]uint64{},
		Admin:  admin,
	}
	hist := NewHistogram(DefaultSubBits)
	for _, w := range workers {
		hist.Merge(w.hist)
		rep.Requests.Total += w.sent
		rep.Requests.OK += w.status[200]
		rep.Events.Sent += w.events
		rep.Events.Acked += w.acked
		rep.Bytes.Sent += w.wire
		rep.Bytes.Uncompressed += w.rawBytes
		for code, n := range w.status {
			if n == 0 {
				continue
			}
			key := "other"
			if code != 0 {
				key = strconv.Itoa(code)
			}
			rep.Status[key] += n
		}
		for k, n := range w.errs {
			rep.Errors[errKindNames[k]] += n
			if w.errSample[k] != "" {
				if rep.ErrorSamples == nil {
					rep.ErrorSamples = map[string]string{}
				}
				if _, ok := rep.ErrorSamples[errKindNames[k]]; !ok {
					rep.ErrorSamples[errKindNames[k]] = w.errSample[k]
				}
			}
		}
	}
	rep.Latency = latencyStats(hist)
	if s := elapsed.Seconds(); s > 0 {
		rep.Requests.PerSecond = float64(rep.Requests.Total) / s
		rep.Requests.OKPerSecond = float64(rep.Requests.OK) / s
		rep.Events.PerSecond = float64(rep.Events.Acked) / s
		rep.Bytes.MBPerSecond = float64(rep.Bytes.Sent) / s / 1e6
	}
	r.tl.mu.Lock()
	rep.Timeline = make([]Second, len(r.tl.secs))
	for i, s := range r.tl.secs {
		rep.Timeline[i] = Second{
			T: i, Requests: s.requests, OK: s.ok, NonOK: s.nonOK, Errors: s.errors,
			EventsAcked: s.eventsAcked, BytesSent: s.bytes,
			P50: ms(s.hist.Quantile(0.5)), P90: ms(s.hist.Quantile(0.9)),
			P99: ms(s.hist.Quantile(0.99)), Max: ms(s.hist.Max()),
		}
	}
	r.tl.mu.Unlock()
	return rep
}

// WriteJSON writes the report as indented JSON.
func (rep *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

// WriteText writes the human-readable report.
func (rep *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	c := rep.Config
	mode := "closed loop"
	if c.Rate > 0 {
		mode = fmt.Sprintf("open loop at %g req/s", c.Rate)
	}
	fmt.Fprintf(&b, "sluice load: %s\n", rep.URL)
	fmt.Fprintf(&b, "  run       %.2f s, %d connections, %d events/request, %s", rep.DurationSeconds, c.Connections, c.EventsPerRequest, mode)
	if c.Gzip {
		b.WriteString(", gzip")
	}
	fmt.Fprintf(&b, ", seed %d\n", c.Seed)
	fmt.Fprintf(&b, "  requests  %d sent, %d answered 200   %.1f req/s (200: %.1f/s)\n",
		rep.Requests.Total, rep.Requests.OK, rep.Requests.PerSecond, rep.Requests.OKPerSecond)
	fmt.Fprintf(&b, "  events    %d sent, %d acked   %.0f events/s acked\n", rep.Events.Sent, rep.Events.Acked, rep.Events.PerSecond)
	fmt.Fprintf(&b, "  bytes     %.2f MB sent (%.2f MB uncompressed)   %.2f MB/s\n",
		float64(rep.Bytes.Sent)/1e6, float64(rep.Bytes.Uncompressed)/1e6, rep.Bytes.MBPerSecond)
	l := rep.Latency
	fmt.Fprintf(&b, "  latency   p50 %s  p90 %s  p99 %s  p99.9 %s  max %s  (mean %s, min %s, n=%d)\n",
		fmtMS(l.P50), fmtMS(l.P90), fmtMS(l.P99), fmtMS(l.P999), fmtMS(l.Max), fmtMS(l.Mean), fmtMS(l.Min), l.Count)
	b.WriteString("  status   ")
	if len(rep.Status) == 0 {
		b.WriteString(" none")
	}
	for _, k := range slices.Sorted(maps.Keys(rep.Status)) {
		fmt.Fprintf(&b, " %s: %d", k, rep.Status[k])
	}
	b.WriteString("\n  errors   ")
	for _, k := range errKindNames {
		fmt.Fprintf(&b, " %s: %d", k, rep.Errors[k])
	}
	b.WriteByte('\n')
	for _, k := range errKindNames {
		if s, ok := rep.ErrorSamples[k]; ok {
			fmt.Fprintf(&b, "    first %s error: %s\n", k, s)
		}
	}
	if n := len(rep.Admin); n > 0 {
		var held, failed int
		for _, s := range rep.Admin {
			if s.Error != "" {
				failed++
			} else if s.Gate == "held" {
				held++
			}
		}
		fmt.Fprintf(&b, "  governor  %d polls, gate held in %d, failed %d", n, held, failed)
		if last := rep.Admin[n-1]; last.Error == "" {
			fmt.Fprintf(&b, "; last: budget %d B, pressure %.2f, gate %s, rejections %d", last.ByteBudget, last.Pressure, last.Gate, last.Rejections)
		}
		b.WriteByte('\n')
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func fmtMS(v float64) string { return fmtDuration(uint64(v * 1e6)) }
