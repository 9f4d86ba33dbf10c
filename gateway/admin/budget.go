package admin

import (
	"net/http"
	"runtime/metrics"
	"time"

	"github.com/valyala/fasthttp"
)

// budgetBody is the JSON of GET /admin/budget. A section is null when its
// governor part is not configured.
type budgetBody struct {
	ByteBudget *int64        `json:"byte_budget"`
	RecordCap  *int          `json:"record_cap"`
	AIMD       *aimdBody     `json:"aimd"`
	Pressure   *pressureBody `json:"pressure"`
	Memory     memoryBody    `json:"memory"`
	Gate       *gateBody     `json:"gate"`
}

type aimdBody struct {
	Bytes           int64   `json:"bytes"`
	Min             int64   `json:"min"`
	Max             int64   `json:"max"`
	RecordCap       int     `json:"record_cap"`
	Increases       uint64  `json:"increases"`
	Decreases       uint64  `json:"decreases"`
	HardShrinks     uint64  `json:"hard_shrinks"`
	LastUtilisation float64 `json:"last_utilisation"`
	Observations    uint64  `json:"observations"`
}

type pressureBody struct {
	Level        float64      `json:"level"`
	PauseAbove   float64      `json:"pause_above"`
	ResumeBelow  float64      `json:"resume_below"`
	Latched      bool         `json:"latched"`
	LatchedSince *time.Time   `json:"latched_since"`
	LatchedBy    string       `json:"latched_by"`
	Hard         bool         `json:"hard"`
	Pauses       uint64       `json:"pauses"`
	Resumes      uint64       `json:"resumes"`
	Sources      []sourceBody `json:"sources"`
}

type sourceBody struct {
	Name  string  `json:"name"`
	Level float64 `json:"level"`
	Hard  bool    `json:"hard"`
}

type memoryBody struct {
	InflightBytes *int64        `json:"inflight_bytes"`
	LimitBytes    *int64        `json:"limit_bytes"`
	HeapBytes     uint64        `json:"heap_bytes"`
	Baseline      *baselineBody `json:"baseline"`
}

// baselineBody is the governor's memory baseline: memory fixed once sluice
// runs, not traffic pressure (governor.Baseline).
type baselineBody struct {
	LimitBytes    int64      `json:"limit_bytes"`
	TotalBytes    int64      `json:"total_bytes"`
	RuntimeBytes  int64      `json:"runtime_bytes"`
	BinaryBytes   int64      `json:"binary_bytes"`
	CodeBytes     int64      `json:"code_bytes"`
	PoolsBytes    int64      `json:"pools_bytes"`
	TrafficBytes  int64      `json:"traffic_bytes"`
	TrafficShare  float64    `json:"traffic_share"`
	GoMemoryLimit int64      `json:"go_memory_limit_bytes"`
	MeasuredAt    *time.Time `json:"measured_at"`
}

type gateBody struct {
	State      string `json:"state"`
	Rejections uint64 `json:"rejections"`
}

func (h *Handler) getBudget(ctx *fasthttp.RequestCtx, _ Params) error {
	var out budgetBody
	if b := h.deps.Budget; b != nil {
		st := b.Stats()
		out.ByteBudget = &st.Bytes
		out.RecordCap = &st.RecordCap
		out.AIMD = &aimdBody{
			Bytes: st.Bytes, Min: st.Min, Max: st.Max, RecordCap: st.RecordCap,
			Increases: st.Increases, Decreases: st.Decreases, HardShrinks: st.HardShrinks,
			LastUtilisation: st.LastUtilisation, Observations: st.Observations,
		}
	}
	if p := h.deps.Pressure; p != nil {
		s, hy := p.Snapshot(), p.Hysteresis()
		pb := &pressureBody{
			Level: s.Level, PauseAbove: hy.PauseAbove, ResumeBelow: hy.ResumeBelow,
			Latched: s.Latched, LatchedBy: s.LatchedBy, Hard: s.Hard,
			Pauses: s.Pauses, Resumes: s.Resumes, Sources: make([]sourceBody, 0, len(s.Sources)),
		}
		if !s.LatchedSince.IsZero() {
			since := s.LatchedSince.UTC()
			pb.LatchedSince = &since
		}
		for _, src := range s.Sources {
			pb.Sources = append(pb.Sources, sourceBody{Name: src.Name, Level: src.Level, Hard: src.Hard})
		}
		out.Pressure = pb
	}
	if m := h.deps.Memory; m != nil {
		in, lim := m.InFlight(), m.Limit()
		out.Memory.InflightBytes, out.Memory.LimitBytes = &in, &lim
	}
	out.Memory.HeapBytes = h.deps.HeapBytes()
	if f := h.deps.Baseline; f != nil {
		b := f()
		bb := &baselineBody{
			LimitBytes: b.Limit, TotalBytes: b.Total, RuntimeBytes: b.Runtime, BinaryBytes: b.Other,
			CodeBytes: b.Code, PoolsBytes: b.Pools, TrafficBytes: b.Traffic(), TrafficShare: b.TrafficShare(),
			GoMemoryLimit: b.GoMemoryLimit,
		}
		if !b.MeasuredAt.IsZero() {
			at := b.MeasuredAt.UTC()
			bb.MeasuredAt = &at
		}
		out.Memory.Baseline = bb
	}
	if g := h.deps.Gate; g != nil {
		out.Gate = &gateBody{State: g.State(), Rejections: g.Rejections()}
	}
	writeJSON(ctx, http.StatusOK, out)
	return nil
}

// readHeapBytes returns the bytes of live and not-yet-swept heap objects.
func readHeapBytes() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}
