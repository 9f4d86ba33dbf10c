package gateway

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/sluicehq/sluice/engine"
)

// Metric names. They are an interface (dashboards and alerts depend on
// them): every metric sluice exports is defined here.
const (
	MetricIngestRequests    = "sluice_ingest_requests_total"      // {code}: answered ingest requests by HTTP status
	MetricIngestEvents      = "sluice_ingest_events_total"        // events accepted into the queue
	MetricIngestBytes       = "sluice_ingest_bytes_total"         // body bytes (decompressed) accepted into the queue
	MetricGateRejections    = "sluice_gate_rejections_total"      // {source}: 503s by the pressure source that latched
	MetricGateLatched       = "sluice_gate_latched"               // 1 while the inbound gate holds
	MetricByteBudget        = "sluice_byte_budget_bytes"          // the AIMD byte budget
	MetricRecvBlockBytes    = "sluice_recv_block_bytes"           // bytes of the last received block
	MetricPressureRatio     = "sluice_pressure_ratio"             // unified pressure level in [0, 1]
	MetricMemoryInflight    = "sluice_memory_inflight_bytes"      // bytes leased from the MemoryGuard
	MetricTransformCalls    = "sluice_transform_calls_total"      // {transform}: guest calls
	MetricTransformDuration = "sluice_transform_duration_seconds" // {transform}: guest call duration
	MetricTransformTraps    = "sluice_transform_traps_total"      // {transform}: traps, deadlines, guest OOMs
	MetricEventsDropped     = "sluice_events_dropped_total"       // events dropped by transforms
	MetricDLQEvents         = "sluice_dlq_events_total"           // {reason}: dead letters by reason class
	MetricSinkRecords       = "sluice_sink_records_total"         // records the sink accepted
	MetricSinkErrors        = "sluice_sink_errors_total"          // failed sink writes
	MetricSinkLatency       = "sluice_sink_latency_seconds"       // sink write latency (Prometheus histogram)
	MetricSinkHealthy       = "sluice_sink_healthy"               // 1 when the sink is healthy
	MetricDriverRestarts    = "sluice_driver_restarts_total"      // driver restarts after a terminal error
	MetricQueueBytes        = "sluice_queue_bytes"                // bytes waiting in the receive queue
	MetricIngestAckLatency  = "sluice_ingest_ack_latency_seconds" // time from enqueue to ack of 200 requests
)

// DLQ reason classes: the bounded label values of sluice_dlq_events_total.
const (
	ReasonParseError = "parse_error" // not valid JSON / not an object
	ReasonTooLarge   = "too_large"   // over the per-event cap
	ReasonTrap       = "trap"        // the transform trapped
	ReasonDeadline   = "deadline"    // the transform ran past its deadline
	ReasonTransform  = "transform"   // a transform dead-lettered the record
)

// statusCodes are the ingest statuses pre-registered so that they show as 0.
var statusCodes = []int{200, 400, 401, 404, 405, 413, 415, 500, 503, 504}

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
	dlq            map[string]*metrics.Counter
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
		dlq:            make(map[string]*metrics.Counter),
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
	return m
}

// gaugeFuncs are the readings behind the callback gauges.
type gaugeFuncs struct {
	latched, budget, pressure, inflight, sinkHealthy, queueBytes func() float64
}

// Set returns the underlying metrics set (for the admin API).
func (m *Metrics) Set() *metrics.Set { return m.set }

// WritePrometheus writes the set and the process metrics in Prometheus text
// format with HELP/TYPE lines.
func (m *Metrics) WritePrometheus(w io.Writer) {
	m.set.WritePrometheus(w)
	metrics.WriteProcessMetrics(w)
}

func (m *Metrics) request(code int) {
	c, ok := m.requests[code]
	if !ok {
		c = m.set.GetOrCreateCounter(fmt.Sprintf(`%s{code="%d"}`, MetricIngestRequests, code))
	}
	c.Inc()
}

func (m *Metrics) gateRejection(source string) {
	if source == "" {
		source = "unknown"
	}
	m.set.GetOrCreateCounter(fmt.Sprintf(`%s{source=%q}`, MetricGateRejections, source)).Inc()
}

func (m *Metrics) dlqEvent(class string) {
	c, ok := m.dlq[class]
	if !ok {
		c = m.dlq[ReasonTransform]
	}
	c.Inc()
}

func (m *Metrics) sinkWrite(n int, start time.Time, err error) {
	m.sinkLatency.UpdateDuration(start)
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
