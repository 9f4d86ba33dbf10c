package governor

// API SKETCH — the signatures other boxes build against. The governor
// implementation replaces the panicking bodies and may split this file by
// type (guard.go, pressure.go, budget.go, gate.go); it keeps these names and
// signatures (adding to them is fine).

import "time"

// ---- MemoryGuard ----

// MemoryGuard accounts every in-flight byte against a limit. Safe for
// concurrent use.
type MemoryGuard struct{ _ [0]func() }

// NewMemoryGuard returns a guard for limit bytes; pressure is HARD when the
// in-flight bytes reach hardAt·limit (0 < hardAt ≤ 1, e.g. 0.9).
func NewMemoryGuard(limit int64, hardAt float64) *MemoryGuard { panic("unimplemented") }

// Lease accounts n bytes until the lease is released. It never blocks and
// never fails: admission control is the gate's job, the guard only counts.
func (g *MemoryGuard) Lease(n int64) *Lease { panic("unimplemented") }

// InFlight returns the bytes currently leased.
func (g *MemoryGuard) InFlight() int64 { panic("unimplemented") }

// Peak returns the high-water mark of InFlight since start (or ResetPeak).
func (g *MemoryGuard) Peak() int64 { panic("unimplemented") }

// ResetPeak sets the high-water mark to the current InFlight.
func (g *MemoryGuard) ResetPeak() { panic("unimplemented") }

// Limit returns the configured limit in bytes.
func (g *MemoryGuard) Limit() int64 { panic("unimplemented") }

// Name, Level and Hard make the guard a pressure Source ("memory_guard").
func (g *MemoryGuard) Name() string   { panic("unimplemented") }
func (g *MemoryGuard) Level() float64 { panic("unimplemented") }
func (g *MemoryGuard) Hard() bool     { panic("unimplemented") }

// Lease is a reservation of bytes on a MemoryGuard. Release is idempotent and
// safe to defer on every exit path. A nil *Lease is valid and releases nothing.
type Lease struct{ _ [0]func() }

// Release returns the bytes to the guard (idempotent).
func (l *Lease) Release() { panic("unimplemented") }

// Bytes returns the leased byte count.
func (l *Lease) Bytes() int64 { panic("unimplemented") }

// ---- Pressure sources ----

// Source is one pressure signal. Level is in [0, 1] (clamped by readers);
// Hard reports a condition that must shrink work at once (memory nearly
// exhausted, sink down). Implementations are safe for concurrent use.
type Source interface {
	Name() string
	Level() float64
	Hard() bool
}

// Gauge is a settable Source for signals the gateway computes (queue fill,
// sink health). Safe for concurrent use.
type Gauge struct{ _ [0]func() }

// NewGauge returns a gauge source named name at level 0.
func NewGauge(name string) *Gauge { panic("unimplemented") }

// Set sets the level (clamped to [0, 1]) and the hard flag.
func (g *Gauge) Set(level float64, hard bool) { panic("unimplemented") }
func (g *Gauge) Name() string                 { panic("unimplemented") }
func (g *Gauge) Level() float64               { panic("unimplemented") }
func (g *Gauge) Hard() bool                   { panic("unimplemented") }

// HeapSource reads the Go heap (runtime/metrics) against a limit: the explicit
// limit if > 0, else GOMEMLIMIT if set, else the cgroup memory limit.
// Name "go_heap". It caches the reading for at most refresh.
func NewHeapSource(limit int64, hardAt float64, refresh time.Duration) Source {
	panic("unimplemented")
}

// ---- UnifiedPressure + Hysteresis ----

// Hysteresis is the latch's thresholds. PauseAbove must be > ResumeBelow and
// both in (0, 1].
type Hysteresis struct {
	PauseAbove  float64 // default 0.80
	ResumeBelow float64 // default 0.65
}

// DefaultHysteresis returns {0.80, 0.65}.
func DefaultHysteresis() Hysteresis { return Hysteresis{PauseAbove: 0.80, ResumeBelow: 0.65} }

// Validate reports thresholds that cannot latch sensibly.
func (h Hysteresis) Validate() error { panic("unimplemented") }

// SourceLevel is one source's reading, for observability.
type SourceLevel struct {
	Name  string
	Level float64
	Hard  bool
}

// Snapshot is the pressure state at one instant.
type Snapshot struct {
	Level        float64 // max of the sources
	Latched      bool
	LatchedSince time.Time // zero when not latched
	LatchedBy    string    // the source that was highest when the latch closed
	Hard         bool      // any source hard
	Sources      []SourceLevel
	Pauses       uint64 // latch-close edges so far
	Resumes      uint64 // latch-open edges so far
}

// UnifiedPressure is the max of its sources with a hysteresis latch.
// Safe for concurrent use.
type UnifiedPressure struct{ _ [0]func() }

// NewUnifiedPressure validates h and returns the unified pressure.
func NewUnifiedPressure(h Hysteresis, sources ...Source) (*UnifiedPressure, error) {
	panic("unimplemented")
}

// Level reads every source and returns the max (in [0,1]), updating the latch.
func (p *UnifiedPressure) Level() float64 { panic("unimplemented") }

// Latched updates and returns the latch state.
func (p *UnifiedPressure) Latched() bool { panic("unimplemented") }

// Hard reports whether any source is hard.
func (p *UnifiedPressure) Hard() bool { panic("unimplemented") }

// Snapshot returns the full state (allocates; for admin/metrics, not hot paths).
func (p *UnifiedPressure) Snapshot() Snapshot { panic("unimplemented") }

// ---- ByteBudget (AIMD) ----

// BudgetConfig configures the AIMD byte budget.
type BudgetConfig struct {
	Start          int64   // initial budget bytes (default Max)
	Min            int64   // floor, ≥ 1 record's worth (default 64 KiB)
	Max            int64   // ceiling (default 16 MiB)
	TargetUtil     float64 // target utilisation processTime/ingestInterval (default 0.7)
	Decrease       float64 // multiplicative factor on decrease, in (0,1) (default 0.5)
	Increase       int64   // additive step on increase (default Max/16)
	RecordCap      int     // max records per receive (default 10_000)
	AvgRecordBytes int64   // used to derive the record cap from the budget (optional)
}

// Validate reports an inconsistent configuration.
func (c BudgetConfig) Validate() error { panic("unimplemented") }

// ByteBudget is the AIMD controller of the byte budget. Safe for concurrent use.
type ByteBudget struct{ _ [0]func() }

// NewByteBudget validates cfg (filling defaults) and ties the budget to p for
// the HARD override (p may be nil).
func NewByteBudget(cfg BudgetConfig, p *UnifiedPressure) (*ByteBudget, error) {
	panic("unimplemented")
}

// Observe folds one block into the loop.
func (b *ByteBudget) Observe(blockBytes int64, processTime, ingestInterval time.Duration) {
	panic("unimplemented")
}

// Bytes returns the current budget.
func (b *ByteBudget) Bytes() int64 { panic("unimplemented") }

// RecordCap returns the current record cap for one receive.
func (b *ByteBudget) RecordCap() int { panic("unimplemented") }

// Pressure returns the pressure it is tied to (may be nil).
func (b *ByteBudget) Pressure() *UnifiedPressure { panic("unimplemented") }

// BudgetStats is the AIMD state for observability.
type BudgetStats struct {
	Bytes, Min, Max      int64
	RecordCap            int
	Increases, Decreases uint64
	HardShrinks          uint64
	LastUtilisation      float64
	Observations         uint64
}

// Stats returns the AIMD state.
func (b *ByteBudget) Stats() BudgetStats { panic("unimplemented") }

// ---- InboundGate ----

// Decision is the gate's answer.
type Decision uint8

const (
	// Yes admits the request.
	Yes Decision = iota
	// Hold rejects it (HTTP 503 + Retry-After; Kafka: pause partitions).
	Hold
)

// Actuator is notified on gate edges (pause when the latch closes, resume when
// it opens). Calls are serialised; they must not block.
type Actuator interface {
	Pause(by string, level float64)
	Resume(level float64)
}

// InboundGate admits or holds inbound work from the unified pressure.
// Safe for concurrent use; Evaluate is cheap (hot path, no allocation).
type InboundGate struct{ _ [0]func() }

// NewInboundGate returns a gate over p, notifying actuators on edges.
func NewInboundGate(p *UnifiedPressure, actuators ...Actuator) *InboundGate { panic("unimplemented") }

// Evaluate returns Yes or Hold, counting Holds as rejections.
func (g *InboundGate) Evaluate() Decision { panic("unimplemented") }

// Rejections returns the number of Holds so far.
func (g *InboundGate) Rejections() uint64 { panic("unimplemented") }

// State returns "open" or "held".
func (g *InboundGate) State() string { panic("unimplemented") }
