package admin

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// history keeps the governor's and the traffic's recent past: one sample
// per interval in a ring of the last length, taken by a goroutine of its
// own from start to Close, so the console shows the last minutes even when
// nobody was looking. Safe for concurrent use.
type history struct {
	deps     *Deps
	interval time.Duration

	mu      sync.Mutex
	ring    []sample
	next    int      // where the next sample goes
	n       int      // samples held (≤ len(ring))
	sources []string // every source name seen, in order of appearance
	prev    Traffic
	prevT   time.Time

	stop chan struct{}
	done chan struct{}
}

// sample is one reading. Float fields are NaN when the part they read is
// not configured (or, for rates, on the first sample).
type sample struct {
	t                                            int64 // unix milliseconds
	budget, recordCap                            float64
	level, latched, hard                         float64
	latchedBy                                    string
	sources                                      []float64 // by history.sources; missing: NaN
	inflight, limit, heap                        float64
	requests, events, bytes, rejections          float64 // per second
	dropped, deadLettered, sinkRecords, sinkErrs float64 // per second
	sinkLatMean, sinkLatMax                      float64 // milliseconds
	sinkHealthy, ready                           float64
}

func newHistory(deps *Deps, interval, length time.Duration) *history {
	n := max(int(length/interval), 2)
	return &history{
		deps: deps, interval: interval, ring: make([]sample, n),
		stop: make(chan struct{}), done: make(chan struct{}),
	}
}

// run samples every interval until close.
func (hs *history) run() {
	defer close(hs.done)
	t := time.NewTicker(hs.interval)
	defer t.Stop()
	hs.take(time.Now())
	for {
		select {
		case <-hs.stop:
			return
		case now := <-t.C:
			hs.take(now)
		}
	}
}

func (hs *history) close() {
	select {
	case <-hs.stop:
	default:
		close(hs.stop)
	}
	<-hs.done
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// take reads every part once and appends the sample.
func (hs *history) take(now time.Time) {
	d := hs.deps
	nan := math.NaN()
	s := sample{
		t: now.UnixMilli(), budget: nan, recordCap: nan, level: nan, latched: nan, hard: nan,
		inflight: nan, limit: nan, requests: nan, events: nan, bytes: nan, rejections: nan,
		dropped: nan, deadLettered: nan, sinkRecords: nan, sinkErrs: nan, sinkLatMean: nan, sinkLatMax: nan,
		sinkHealthy: nan, ready: nan,
	}
	if b := d.Budget; b != nil {
		st := b.Stats()
		s.budget, s.recordCap = float64(st.Bytes), float64(st.RecordCap)
	}
	var levels map[string]float64
	if p := d.Pressure; p != nil {
		snap := p.Snapshot()
		s.level, s.latched, s.hard = snap.Level, b2f(snap.Latched), b2f(snap.Hard)
		if snap.Latched {
			s.latchedBy = snap.LatchedBy
		}
		levels = make(map[string]float64, len(snap.Sources))
		for _, src := range snap.Sources {
			levels[src.Name] = src.Level
		}
	}
	if m := d.Memory; m != nil {
		s.inflight, s.limit = float64(m.InFlight()), float64(m.Limit())
	}
	s.heap = float64(d.HeapBytes())
	var tr Traffic
	if d.Traffic != nil {
		tr = d.Traffic.Traffic()
	}
	if st := d.Status; st != nil {
		s.sinkHealthy, s.ready = b2f(st.SinkError() == nil), b2f(st.Ready() == nil)
	}

	hs.mu.Lock()
	defer hs.mu.Unlock()
	for name := range levels {
		if !contains(hs.sources, name) {
			hs.sources = append(hs.sources, name)
		}
	}
	s.sources = make([]float64, len(hs.sources))
	for i, name := range hs.sources {
		if l, ok := levels[name]; ok {
			s.sources[i] = l
		} else {
			s.sources[i] = nan
		}
	}
	if d.Traffic != nil && !hs.prevT.IsZero() {
		secs := now.Sub(hs.prevT).Seconds()
		rate := func(cur, prev uint64) float64 {
			if secs <= 0 || cur < prev {
				return nan
			}
			return float64(cur-prev) / secs
		}
		p := hs.prev
		s.requests, s.events, s.bytes = rate(tr.IngestRequests, p.IngestRequests), rate(tr.IngestEvents, p.IngestEvents), rate(tr.IngestBytes, p.IngestBytes)
		s.rejections, s.dropped, s.deadLettered = rate(tr.GateRejections, p.GateRejections), rate(tr.Dropped, p.Dropped), rate(tr.DeadLettered, p.DeadLettered)
		s.sinkRecords, s.sinkErrs = rate(tr.SinkRecords, p.SinkRecords), rate(tr.SinkErrors, p.SinkErrors)
		s.sinkLatMean, s.sinkLatMax = 0, tr.SinkLatencyMax.Seconds()*1e3
		if w := tr.SinkWrites - p.SinkWrites; w > 0 && tr.SinkWrites >= p.SinkWrites {
			s.sinkLatMean = (tr.SinkLatency - p.SinkLatency).Seconds() * 1e3 / float64(w)
		}
	}
	if d.Traffic != nil {
		hs.prev, hs.prevT = tr, now
	}
	hs.ring[hs.next] = s
	hs.next = (hs.next + 1) % len(hs.ring)
	hs.n = min(hs.n+1, len(hs.ring))
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// floats encodes as a JSON array of numbers, NaN as null.
type floats []float64

// MarshalJSON writes the numbers in their shortest form.
func (f floats) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 2+len(f)*8)
	b = append(b, '[')
	for i, v := range f {
		if i > 0 {
			b = append(b, ',')
		}
		if math.IsNaN(v) || math.IsInf(v, 0) {
			b = append(b, "null"...)
			continue
		}
		b = strconv.AppendFloat(b, v, 'g', -1, 64)
	}
	return append(b, ']'), nil
}

// historyBody is the JSON of GET /admin/history.
type historyBody struct {
	IntervalMS    int64             `json:"interval_ms"`
	LengthSeconds int64             `json:"length_seconds"`
	PauseAbove    *float64          `json:"pause_above"`
	ResumeBelow   *float64          `json:"resume_below"`
	T             []int64           `json:"t"`
	Series        map[string]floats `json:"series"`
	Sources       map[string]floats `json:"sources"`
	LatchedBy     []string          `json:"latched_by"`
}

// seriesNames are the keys of historyBody.Series, in the order of
// sampleFields.
var seriesNames = []string{
	"byte_budget_bytes", "record_cap", "pressure_level", "latched", "hard",
	"inflight_bytes", "inflight_limit_bytes", "heap_bytes",
	"ingest_requests_per_second", "ingest_events_per_second", "ingest_bytes_per_second",
	"gate_rejections_per_second", "dropped_per_second", "dead_letters_per_second",
	"sink_records_per_second", "sink_errors_per_second",
	"sink_latency_mean_ms", "sink_latency_max_ms", "sink_healthy", "ready",
}

func sampleFields(s *sample) [20]float64 {
	return [20]float64{
		s.budget, s.recordCap, s.level, s.latched, s.hard,
		s.inflight, s.limit, s.heap,
		s.requests, s.events, s.bytes,
		s.rejections, s.dropped, s.deadLettered,
		s.sinkRecords, s.sinkErrs,
		s.sinkLatMean, s.sinkLatMax, s.sinkHealthy, s.ready,
	}
}

// since returns the samples taken after the unix millisecond sinceMS,
// oldest first, as historyBody.
func (hs *history) since(sinceMS int64) historyBody {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	var picked []*sample
	for i := range hs.n {
		s := &hs.ring[(hs.next-hs.n+i+len(hs.ring))%len(hs.ring)]
		if s.t > sinceMS {
			picked = append(picked, s)
		}
	}
	out := historyBody{
		IntervalMS:    hs.interval.Milliseconds(),
		LengthSeconds: int64(time.Duration(len(hs.ring)) * hs.interval / time.Second),
		T:             make([]int64, len(picked)),
		Series:        make(map[string]floats, len(seriesNames)),
		Sources:       make(map[string]floats, len(hs.sources)),
		LatchedBy:     make([]string, len(picked)),
	}
	for _, name := range seriesNames {
		out.Series[name] = make(floats, len(picked))
	}
	for _, name := range hs.sources {
		out.Sources[name] = make(floats, len(picked))
	}
	for i, s := range picked {
		out.T[i] = s.t
		out.LatchedBy[i] = s.latchedBy
		for j, v := range sampleFields(s) {
			out.Series[seriesNames[j]][i] = v
		}
		for j, name := range hs.sources {
			v := math.NaN()
			if j < len(s.sources) {
				v = s.sources[j]
			}
			out.Sources[name][i] = v
		}
	}
	return out
}

func (h *Handler) getHistory(ctx *fasthttp.RequestCtx, _ Params) error {
	var since int64
	if v := ctx.QueryArgs().Peek("since"); len(v) > 0 {
		n, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil {
			return Invalidf("?since=%q: want unix milliseconds (the t of the last sample you hold)", v)
		}
		since = n
	}
	out := h.history.since(since)
	if p := h.deps.Pressure; p != nil {
		hy := p.Hysteresis()
		out.PauseAbove, out.ResumeBelow = &hy.PauseAbove, &hy.ResumeBelow
	}
	writeJSON(ctx, http.StatusOK, out)
	return nil
}
