package gateway

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/sluicehq/sluice/engine"
	"github.com/sluicehq/sluice/gateway/admin"
	"github.com/sluicehq/sluice/governor"
)

// Metric names. They are an interface (dashboards and alerts depend on
// them): every metric sluice exports is defined here, and each has a row in
// Catalog (its type, labels and HELP text).
const (
	MetricIngestRequests    = "sluice_ingest_requests_total"
	MetricIngestEvents      = "sluice_ingest_events_total"
	MetricIngestBytes       = "sluice_ingest_bytes_total"
	MetricGateRejections    = "sluice_gate_rejections_total"
	MetricGateLatched       = "sluice_gate_latched"
	MetricByteBudget        = "sluice_byte_budget_bytes"
	MetricRecvBlockBytes    = "sluice_recv_block_bytes"
	MetricPressureRatio     = "sluice_pressure_ratio"
	MetricMemoryInflight    = "sluice_memory_inflight_bytes"
	MetricTransformCalls    = "sluice_transform_calls_total"
	MetricTransformDuration = "sluice_transform_duration_seconds"
	MetricTransformTraps    = "sluice_transform_traps_total"
	MetricEventsDropped     = "sluice_events_dropped_total"
	MetricDLQEvents         = "sluice_dlq_events_total"
	MetricSinkRecords       = "sluice_sink_records_total"
	MetricSinkErrors        = "sluice_sink_errors_total"
	MetricSinkLatency       = "sluice_sink_latency_seconds"
	MetricSinkHealthy       = "sluice_sink_healthy"
	MetricDriverRestarts    = "sluice_driver_restarts_total"
	MetricQueueBytes        = "sluice_queue_bytes"
	MetricIngestAckLatency  = "sluice_ingest_ack_latency_seconds"
	MetricMemoryBaseline    = "sluice_memory_baseline_bytes"
	MetricMemoryUsed        = "sluice_memory_used_bytes"
	// MetricPipelinesUnavailable counts the pipelines in use that fail
	// closed (a transform of theirs is not loaded).
	MetricPipelinesUnavailable = "sluice_pipelines_unavailable"
)

// MetricInfo describes one metric family sluice exports.
type MetricInfo struct {
	// Name is the family name (a Metric* constant).
	Name string
	// Type is the Prometheus type: counter, gauge or histogram
	// (histograms have le buckets, _sum and _count).
	Type string
	// Labels are the label names, comma-separated ("" for none).
	Labels string
	// Help says what the metric measures, with its unit; it is the HELP
	// text of /metrics and the metric's row in README.md.
	Help string
}

// Catalog is the one table of sluice's metrics: /metrics takes its HELP
// texts from it (VictoriaMetrics/metrics writes HELP lines without text),
// and README.md's metrics table is generated from it (make docs). A metric
// added to the set needs its row here: the tests fail naming any sluice_*
// family served without a HELP text.
var Catalog = []MetricInfo{
	{MetricIngestRequests, "counter", "code", "Ingest requests answered, by HTTP status code (200, 400, 401, 413, 415, 429, 503, 504, …; CORS preflights count as 204 or 403)."},
	{MetricIngestEvents, "counter", "", "Events accepted into the receive queue (each record of a request that was enqueued)."},
	{MetricIngestBytes, "counter", "", "Request body bytes (after decompression) accepted into the receive queue."},
	{MetricGateRejections, "counter", "source", "Ingest requests answered 503 under pressure, by the pressure source that latched (memory_guard, go_heap, queue, sink); a source appears with its first rejection."},
	{MetricGateLatched, "gauge", "", "1 while the pressure latch is closed and the front door answers 503, else 0."},
	{MetricByteBudget, "gauge", "", "The AIMD byte budget in bytes: the most bytes one receive of the driver takes."},
	{MetricRecvBlockBytes, "gauge", "", "Bytes of the last block the driver received."},
	{MetricPressureRatio, "gauge", "", "Unified pressure level in [0, 1], the highest of the pressure sources; the latch closes above pause_above (0.80 by default) and opens below resume_below (0.65)."},
	{MetricMemoryInflight, "gauge", "", "Bytes leased from the memory guard: request bodies between read and acknowledgement."},
	{MetricTransformCalls, "counter", "transform", "WASM guest calls, by transform (one per transform per batch or shard)."},
	{MetricTransformDuration, "histogram", "transform", "Duration of one WASM guest call in seconds, by transform."},
	{MetricTransformTraps, "counter", "transform", "Failed WASM guest calls (traps, deadlines, guest out of memory, aborts), by transform."},
	{MetricEventsDropped, "counter", "", "Records dropped by transforms (a transform's decision, not a loss)."},
	{MetricDLQEvents, "counter", "reason", "Records written to the dead-letter topic, by reason class (parse_error, too_large, trap, deadline, transform; from the sink: sink_invalid_topic, sink_unknown_topic, sink_record_too_large, sink_topic_not_authorized, sink_invalid_record)."},
	{MetricSinkRecords, "counter", "", "Records written to their topics and acknowledged by the sink (Kafka acks=all); dead letters excluded."},
	{MetricSinkErrors, "counter", "", "Failed sink writes (records and dead letters); the affected requests get 503."},
	{MetricSinkLatency, "histogram", "", "Duration of one sink write in seconds (a batch produced and acknowledged)."},
	{MetricPipelinesUnavailable, "gauge", "", "Pipelines in use (a tenant's, a Kafka source's) that cannot run because a transform of theirs is not loaded: their requests get 503 and their sources pause until it is uploaded again or the pipeline changed. 0 when every pipeline runs."},
	{MetricSinkHealthy, "gauge", "", "1 while the sink is healthy, 0 after a terminal sink error until a probe succeeds (the gate holds meanwhile)."},
	{MetricDriverRestarts, "counter", "", "Restarts of the driver after a terminal sink, commit or dead-letter error."},
	{MetricQueueBytes, "gauge", "", "Bytes waiting in the receive queue for the driver."},
	{MetricIngestAckLatency, "histogram", "", "Seconds from enqueue to acknowledgement of ingest requests answered 200."},
	{MetricReadLimitRejected, "counter", "", "Ingest requests answered 503 because every body-read slot (--max-concurrent-reads) stayed taken for --read-queue-timeout."},
	{MetricMemoryBaseline, "gauge", "part", "Memory fixed once sluice runs, in bytes, by part: runtime (Go runtime and heap with no traffic), binary (resident pages of the binary), code (compiled WASM code), pools (instance pools at their reserved size), total. It is not pressure: go_heap's level is (used − total) / (--memory-limit − total)."},
	{MetricMemoryUsed, "gauge", "", "Memory the go_heap pressure source counts as used, in bytes: the live Go heap and runtime, compiled WASM code and the binary's resident pages."},
	{MetricRateLimitedRequests, "counter", "tenant", "Ingest requests refused by their API key's rate limit (429, or 413 for more events than the burst), by tenant (default: the keys of api_keys); tenants without a limit have no series."},
	{MetricRateLimitedEvents, "counter", "tenant", "Events of the requests refused by the rate limit, by tenant (a request refused before its body was read, its key's bucket being empty, counts none)."},
	{MetricRateAdmittedEvents, "counter", "tenant", "Events admitted by the rate limit, by tenant (tenants with a limit only)."},
	{MetricIdempotentReplays, "counter", "", "Ingest requests answered from the Idempotency-Key cache (Idempotent-Replayed: true): retries that wrote nothing."},
	{MetricTLSCertExpiry, "gauge", "listener", "Expiry (NotAfter, Unix seconds) of the TLS certificate in use, by listener (ingest, admin)."},
	{MetricTLSReloadErrors, "counter", "listener", "Failed loads of a changed TLS certificate and key (the previous pair stays in use), by listener."},
}

// helpOf maps a family name to its HELP text, escaped for the text format.
var helpOf = helpIndex(Catalog)

// helpIndex maps each row's name to its HELP text escaped for the text
// format (backslash and newline).
func helpIndex(c []MetricInfo) map[string]string {
	m := make(map[string]string, len(c))
	esc := strings.NewReplacer(`\`, `\\`, "\n", `\n`)
	for _, mi := range c {
		if _, dup := m[mi.Name]; dup {
			panic("gateway: metric " + mi.Name + " twice in Catalog")
		}
		m[mi.Name] = esc.Replace(mi.Help)
	}
	return m
}

// Metrics of the front door's edge features: rate limits, Idempotency-Key
// replays, TLS certificates.
const (
	MetricRateLimitedRequests = "sluice_ingest_rate_limited_requests_total"
	MetricRateLimitedEvents   = "sluice_ingest_rate_limited_events_total"
	MetricRateAdmittedEvents  = "sluice_ingest_rate_admitted_events_total"
	MetricIdempotentReplays   = "sluice_ingest_idempotent_replays_total"
	MetricTLSCertExpiry       = "sluice_tls_certificate_expiry_timestamp_seconds"
	MetricTLSReloadErrors     = "sluice_tls_reload_errors_total"
)

// MetricReadLimitRejected counts the 503s of requests that waited
// --read-queue-timeout for a body-read slot (--max-concurrent-reads).
const MetricReadLimitRejected = "sluice_ingest_read_limit_rejections_total"

// DLQ reason classes: the bounded label values of sluice_dlq_events_total.
const (
	ReasonParseError = "parse_error" // not valid JSON / not an object
	ReasonTooLarge   = "too_large"   // over the per-event cap
	ReasonTrap       = "trap"        // the transform trapped
	ReasonDeadline   = "deadline"    // the transform ran past its deadline
	ReasonTransform  = "transform"   // a transform dead-lettered the record
)

// statusCodes are the ingest statuses pre-registered so that they show as 0.
var statusCodes = []int{200, 204, 400, 401, 403, 404, 405, 409, 413, 415, 429, 500, 503, 504}

// Metrics is the gateway's metric set. One per App; its Set is exposed at
// GET /metrics on the admin listener.
type Metrics struct {
	set *metrics.Set

	requests       map[int]*metrics.Counter
	ingestEvents   *metrics.Counter
	ingestBytes    *metrics.Counter
	eventsDropped  *metrics.Counter
	sinkRecords    *metrics.Counter
	sinkErrors     *metrics.Counter
	sinkLatency    *metrics.PrometheusHistogram
	driverRestarts *metrics.Counter
	ackLatency     *metrics.PrometheusHistogram
	recvBlockBytes *metrics.Gauge
	readRejected   *metrics.Counter
	dlq            map[string]*metrics.Counter

	idempotentReplays *metrics.Counter

	// Totals across labels and the sink's latency, for Traffic.
	requestsTotal  atomic.Uint64
	rejectionTotal atomic.Uint64
	sinkWrites     atomic.Uint64
	sinkNanos      atomic.Int64
	sinkMaxNanos   atomic.Int64 // since the last Traffic call
}

var _ admin.TrafficReader = (*Metrics)(nil)

// Traffic returns the counters behind the console's traffic charts (the
// admin API's history): totals since start, and the longest sink write
// since the previous call.
func (m *Metrics) Traffic() admin.Traffic {
	var dlq uint64
	for _, c := range m.dlq {
		dlq += c.Get()
	}
	return admin.Traffic{
		IngestRequests: m.requestsTotal.Load(),
		IngestEvents:   m.ingestEvents.Get(),
		IngestBytes:    m.ingestBytes.Get(),
		GateRejections: m.rejectionTotal.Load(),
		Dropped:        m.eventsDropped.Get(),
		DeadLettered:   dlq,
		SinkRecords:    m.sinkRecords.Get(),
		SinkErrors:     m.sinkErrors.Get(),
		SinkWrites:     m.sinkWrites.Load(),
		SinkLatency:    time.Duration(m.sinkNanos.Load()),
		SinkLatencyMax: time.Duration(m.sinkMaxNanos.Swap(0)),
	}
}

// newMetrics registers every metric on a fresh Set. gauges supplies the
// callback gauges' readings (nil functions read as 0).
func newMetrics(g gaugeFuncs) *Metrics {
	metrics.ExposeMetadata(true)
	s := metrics.NewSet()
	m := &Metrics{
		set:            s,
		requests:       make(map[int]*metrics.Counter, len(statusCodes)),
		ingestEvents:   s.NewCounter(MetricIngestEvents),
		ingestBytes:    s.NewCounter(MetricIngestBytes),
		eventsDropped:  s.NewCounter(MetricEventsDropped),
		sinkRecords:    s.NewCounter(MetricSinkRecords),
		sinkErrors:     s.NewCounter(MetricSinkErrors),
		sinkLatency:    s.NewPrometheusHistogram(MetricSinkLatency),
		driverRestarts: s.NewCounter(MetricDriverRestarts),
		ackLatency:     s.NewPrometheusHistogram(MetricIngestAckLatency),
		recvBlockBytes: s.NewGauge(MetricRecvBlockBytes, nil),
		readRejected:   s.NewCounter(MetricReadLimitRejected),

		idempotentReplays: s.NewCounter(MetricIdempotentReplays),
		dlq:               make(map[string]*metrics.Counter),
	}
	for _, c := range statusCodes {
		m.requests[c] = s.NewCounter(fmt.Sprintf(`%s{code="%d"}`, MetricIngestRequests, c))
	}
	for _, r := range append([]string{ReasonParseError, ReasonTooLarge, ReasonTrap, ReasonDeadline, ReasonTransform}, sinkReasonClasses...) {
		m.dlq[r] = s.NewCounter(fmt.Sprintf(`%s{reason=%q}`, MetricDLQEvents, r))
	}
	gauge := func(name string, f func() float64) {
		if f == nil {
			f = func() float64 { return 0 }
		}
		s.NewGauge(name, f)
	}
	gauge(MetricGateLatched, g.latched)
	gauge(MetricByteBudget, g.budget)
	gauge(MetricPressureRatio, g.pressure)
	gauge(MetricMemoryInflight, g.inflight)
	gauge(MetricSinkHealthy, g.sinkHealthy)
	gauge(MetricQueueBytes, g.queueBytes)
	gauge(MetricMemoryUsed, g.memoryUsed)
	gauge(MetricPipelinesUnavailable, g.pipelinesUnavailable)
	for _, part := range baselineParts {
		gauge(fmt.Sprintf(`%s{part=%q}`, MetricMemoryBaseline, part.name), func() float64 {
			if g.baseline == nil {
				return 0
			}
			return float64(part.bytes(g.baseline()))
		})
	}
	return m
}

// gaugeFuncs are the readings behind the callback gauges.
type gaugeFuncs struct {
	latched, budget, pressure, inflight, sinkHealthy, queueBytes, memoryUsed func() float64
	baseline                                                                 func() governor.Baseline
	// pipelinesUnavailable reads MetricPipelinesUnavailable.
	pipelinesUnavailable func() float64
}

// baselineParts are the part labels of MetricMemoryBaseline.
var baselineParts = []struct {
	name  string
	bytes func(governor.Baseline) int64
}{
	{"runtime", func(b governor.Baseline) int64 { return b.Runtime }},
	{"binary", func(b governor.Baseline) int64 { return b.Other }},
	{"code", func(b governor.Baseline) int64 { return b.Code }},
	{"pools", func(b governor.Baseline) int64 { return b.Pools }},
	{"total", func(b governor.Baseline) int64 { return b.Total }},
}

// Set returns the underlying metrics set (for the admin API).
func (m *Metrics) Set() *metrics.Set { return m.set }

// WritePrometheus writes the set and the process metrics in Prometheus text
// format with HELP/TYPE lines, the HELP texts of sluice's families taken
// from Catalog.
func (m *Metrics) WritePrometheus(w io.Writer) {
	hw := helpWriter{w}
	m.set.WritePrometheus(hw)
	metrics.WriteProcessMetrics(hw)
}

// helpWriter completes HELP lines on their way to w. VictoriaMetrics/metrics
// hands each HELP line over whole (a Set writes its text in one Write, the
// process metrics one line per Write), so each Write is filled on its own.
type helpWriter struct{ w io.Writer }

func (h helpWriter) Write(p []byte) (int, error) {
	if err := writeWithHelp(h.w, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

var space = []byte{' '}

// writeWithHelp writes text to w with each "# HELP name" line that has no
// text and whose family has a Catalog row completed as "# HELP name text".
func writeWithHelp(w io.Writer, text []byte) error {
	const prefix = "# HELP "
	for len(text) > 0 {
		i := bytes.Index(text, []byte(prefix))
		if i < 0 || (i > 0 && text[i-1] != '\n') {
			if i < 0 {
				_, err := w.Write(text)
				return err
			}
			// "# HELP " inside a line: not a HELP line; write past it.
			if _, err := w.Write(text[:i+len(prefix)]); err != nil {
				return err
			}
			text = text[i+len(prefix):]
			continue
		}
		end := bytes.IndexByte(text[i:], '\n')
		if end < 0 {
			end = len(text) - i
		}
		name := text[i+len(prefix) : i+end]
		help, ok := helpOf[string(name)]
		if !ok || bytes.IndexByte(name, ' ') >= 0 {
			if _, err := w.Write(text[:i+end]); err != nil {
				return err
			}
			text = text[i+end:]
			continue
		}
		if _, err := w.Write(text[:i+end]); err != nil {
			return err
		}
		if _, err := w.Write(space); err != nil {
			return err
		}
		if _, err := io.WriteString(w, help); err != nil {
			return err
		}
		text = text[i+end:]
	}
	return nil
}

// fillHelp is writeWithHelp into a new slice.
func fillHelp(text []byte) []byte {
	var b bytes.Buffer
	_ = writeWithHelp(&b, text)
	return b.Bytes()
}

func (m *Metrics) request(code int) {
	c, ok := m.requests[code]
	if !ok {
		c = m.set.GetOrCreateCounter(fmt.Sprintf(`%s{code="%d"}`, MetricIngestRequests, code))
	}
	c.Inc()
	m.requestsTotal.Add(1)
}

func (m *Metrics) gateRejection(source string) {
	if source == "" {
		source = "unknown"
	}
	m.set.GetOrCreateCounter(fmt.Sprintf(`%s{source=%q}`, MetricGateRejections, source)).Inc()
	m.rejectionTotal.Add(1)
}

func (m *Metrics) readLimitRejection() { m.readRejected.Inc() }

// tlsListener registers the certificate metrics of a TLS listener.
func (m *Metrics) tlsListener(name string) (expiry *metrics.Gauge, failures *metrics.Counter) {
	return m.set.GetOrCreateGauge(fmt.Sprintf(`%s{listener=%q}`, MetricTLSCertExpiry, name), nil),
		m.set.GetOrCreateCounter(fmt.Sprintf(`%s{listener=%q}`, MetricTLSReloadErrors, name))
}

// rateMetrics are one rate-limited tenant's counters.
type rateMetrics struct {
	limitedRequests, limitedEvents, admittedEvents *metrics.Counter
}

// tenantRate registers t's rate-limit counters; nil when t has no limit.
func (m *Metrics) tenantRate(t *tenant) *rateMetrics {
	if t.rate <= 0 {
		return nil
	}
	c := func(name string) *metrics.Counter {
		return m.set.GetOrCreateCounter(fmt.Sprintf(`%s{tenant=%q}`, name, t.label))
	}
	return &rateMetrics{
		limitedRequests: c(MetricRateLimitedRequests),
		limitedEvents:   c(MetricRateLimitedEvents),
		admittedEvents:  c(MetricRateAdmittedEvents),
	}
}

func (m *Metrics) dlqEvent(class string) {
	c, ok := m.dlq[class]
	if !ok {
		c = m.dlq[ReasonTransform]
	}
	c.Inc()
}

func (m *Metrics) sinkWrite(n int, start time.Time, err error) {
	d := time.Since(start)
	m.sinkLatency.Update(d.Seconds())
	m.sinkWrites.Add(1)
	m.sinkNanos.Add(int64(d))
	for cur := m.sinkMaxNanos.Load(); int64(d) > cur && !m.sinkMaxNanos.CompareAndSwap(cur, int64(d)); cur = m.sinkMaxNanos.Load() {
	}
	if err != nil {
		m.sinkErrors.Inc()
		return
	}
	m.sinkRecords.Add(n)
}

// TransformCall records one guest call of transform and its duration. It
// is the hook the WASM host's observer calls.
func (m *Metrics) TransformCall(transform string, d time.Duration) {
	m.set.GetOrCreateCounter(fmt.Sprintf(`%s{transform=%q}`, MetricTransformCalls, transform)).Inc()
	m.set.GetOrCreatePrometheusHistogram(fmt.Sprintf(`%s{transform=%q}`, MetricTransformDuration, transform)).Update(d.Seconds())
}

// TransformTrap records a failed guest call of transform (a trap, a
// deadline or a guest out of memory).
func (m *Metrics) TransformTrap(transform string) {
	m.set.GetOrCreateCounter(fmt.Sprintf(`%s{transform=%q}`, MetricTransformTraps, transform)).Inc()
}

// reasonClass maps a dead letter's free-text reason and stage to a bounded
// class for the reason label. Receiver reasons start with "parse error" or
// "event too large"; the WASM host's trap reasons start with the trap kind
// ("trap:", "deadline:", "oom:", "abort:"); anything else a transform said.
func reasonClass(reason, stage string) string {
	switch {
	case stage == engine.StageSink:
		return sinkReasonClass(reason)
	case strings.HasPrefix(reason, "event too large"):
		return ReasonTooLarge
	case stage == "receiver" || stage == "parse" || strings.HasPrefix(reason, "parse error"):
		return ReasonParseError
	case strings.HasPrefix(reason, "deadline:"):
		return ReasonDeadline
	case strings.HasPrefix(reason, "trap:"), strings.HasPrefix(reason, "oom:"), strings.HasPrefix(reason, "abort:"):
		return ReasonTrap
	default:
		return ReasonTransform
	}
}
