package governor

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Source is one pressure signal. Level is in [0, 1] (clamped by readers);
// Hard reports a condition that must shrink work at once (memory nearly
// exhausted, sink down). Implementations are safe for concurrent use.
//
// UnifiedPressure calls Level and Hard on every evaluation, on the request
// hot path: both must be cheap, non-blocking and allocation-free. A source
// whose reading is expensive caches it (see NewHeapSource).
type Source interface {
	Name() string
	Level() float64
	Hard() bool
}

// Gauge is a settable Source for signals the gateway computes (queue fill,
// sink health). Safe for concurrent use.
type Gauge struct {
	name string
	bits atomic.Uint64 // math.Float64bits of the level
	hard atomic.Bool
}

// NewGauge returns a gauge source named name at level 0.
func NewGauge(name string) *Gauge { return &Gauge{name: name} }

// Set sets the level (clamped to [0, 1]; NaN reads as 0) and the hard flag.
func (g *Gauge) Set(level float64, hard bool) {
	g.bits.Store(math.Float64bits(clamp01(level)))
	g.hard.Store(hard)
}

// Name returns the name given to NewGauge.
func (g *Gauge) Name() string { return g.name }

// Level returns the last level Set (0 initially).
func (g *Gauge) Level() float64 { return math.Float64frombits(g.bits.Load()) }

// Hard returns the last hard flag Set (false initially).
func (g *Gauge) Hard() bool { return g.hard.Load() }

// Hysteresis is the latch's thresholds. PauseAbove must be > ResumeBelow and
// both in (0, 1].
type Hysteresis struct {
	PauseAbove  float64 // latch closes when the level is strictly above it; default 0.80
	ResumeBelow float64 // latch opens when the level is strictly below it; default 0.65
}

// DefaultHysteresis returns {0.80, 0.65}.
func DefaultHysteresis() Hysteresis { return Hysteresis{PauseAbove: 0.80, ResumeBelow: 0.65} }

// Validate reports thresholds that cannot latch sensibly: either threshold
// outside (0, 1] (PauseAbove 1 means only a HARD source can close the
// latch), or a band that is empty or inverted (PauseAbove ≤ ResumeBelow),
// which would let the latch flap on every reading.
func (h Hysteresis) Validate() error {
	if !(h.PauseAbove > 0 && h.PauseAbove <= 1) {
		return configErr("Hysteresis.PauseAbove", h.PauseAbove, "must be in (0, 1]")
	}
	if !(h.ResumeBelow > 0 && h.ResumeBelow <= 1) {
		return configErr("Hysteresis.ResumeBelow", h.ResumeBelow, "must be in (0, 1]")
	}
	if h.PauseAbove <= h.ResumeBelow {
		return configErr("Hysteresis.PauseAbove", h.PauseAbove,
			"must be greater than ResumeBelow (the hysteresis band must not be empty)")
	}
	return nil
}

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
//
// Every Level, Latched and Hard call reads all sources (a handful of atomic
// loads; expensive sources cache their readings) and moves the latch:
//
//   - open → closed when the level is above PauseAbove or any source is HARD;
//   - closed → open when the level is below ResumeBelow and no source is HARD.
//
// Between the two thresholds the latch keeps its state. The reading path is
// lock-free and allocation-free; only an edge takes a mutex, so each edge is
// counted exactly once however many goroutines observe it, and Pauses −
// Resumes is always 0 or 1.
//
// Readings are not cached at this level: with the gateway's four sources a
// reading costs a few tens of nanoseconds (BenchmarkInboundGateEvaluate), so
// every call sees the guard's latest bytes, and a lease taken just before an
// Evaluate is reflected in its answer.
type UnifiedPressure struct {
	h       Hysteresis
	sources atomic.Pointer[[]Source] // copy-on-write; see AddSource

	latched atomic.Bool
	pauses  atomic.Uint64
	resumes atomic.Uint64

	mu        sync.Mutex // serialises edges; guards the fields below
	by        string
	since     time.Time
	edgeLevel float64 // the level at the last edge
}

// NewUnifiedPressure validates h and returns the unified pressure.
func NewUnifiedPressure(h Hysteresis, sources ...Source) (*UnifiedPressure, error) {
	if err := h.Validate(); err != nil {
		return nil, err
	}
	p := &UnifiedPressure{h: h}
	srcs := make([]Source, 0, len(sources))
	for _, s := range sources {
		if s != nil {
			srcs = append(srcs, s)
		}
	}
	p.sources.Store(&srcs)
	return p, nil
}

// AddSource adds a source. It is safe at any time (the source list is
// copy-on-write), but is meant for wiring before the pressure is in use. A
// nil source is ignored.
func (p *UnifiedPressure) AddSource(s Source) {
	if s == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	old := *p.sources.Load()
	srcs := make([]Source, len(old), len(old)+1)
	copy(srcs, old)
	srcs = append(srcs, s)
	p.sources.Store(&srcs)
}

// Sources returns the sources in the order they were added (a copy).
func (p *UnifiedPressure) Sources() []Source {
	return append([]Source(nil), *p.sources.Load()...)
}

// Hysteresis returns the latch thresholds.
func (p *UnifiedPressure) Hysteresis() Hysteresis { return p.h }

// read returns the max level over the sources, whether any is hard, and the
// index of the source that should be named if the latch closes now.
func (p *UnifiedPressure) read() (level float64, hard bool, by int) {
	by = -1
	firstHard := -1
	for i, s := range *p.sources.Load() {
		if l := clamp01(s.Level()); l > level || by < 0 {
			level, by = l, i
		}
		if s.Hard() {
			hard = true
			if firstHard < 0 {
				firstHard = i
			}
		}
	}
	// A HARD source that closes the latch below PauseAbove is named, not the
	// (sub-threshold) highest one.
	if hard && level <= p.h.PauseAbove {
		by = firstHard
	}
	return level, hard, by
}

// update moves the latch for one reading. The common case (no edge) is one
// atomic load.
func (p *UnifiedPressure) update(level float64, hard bool, by int) {
	if p.latched.Load() {
		if !hard && level < p.h.ResumeBelow {
			p.open(level)
		}
		return
	}
	if hard || level > p.h.PauseAbove {
		p.close(level, by)
	}
}

func (p *UnifiedPressure) close(level float64, by int) {
	name := ""
	if srcs := *p.sources.Load(); by >= 0 && by < len(srcs) {
		name = srcs[by].Name()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.latched.Load() {
		return // another goroutine closed it first: one edge, counted once
	}
	p.by, p.since, p.edgeLevel = name, time.Now(), level
	p.pauses.Add(1)
	p.latched.Store(true)
}

func (p *UnifiedPressure) open(level float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.latched.Load() {
		return
	}
	p.by, p.since, p.edgeLevel = "", time.Time{}, level
	p.resumes.Add(1)
	p.latched.Store(false)
}

// Level reads every source and returns the max (in [0,1]), updating the latch.
func (p *UnifiedPressure) Level() float64 {
	level, hard, by := p.read()
	p.update(level, hard, by)
	return level
}

// Latched updates and returns the latch state.
func (p *UnifiedPressure) Latched() bool {
	level, hard, by := p.read()
	p.update(level, hard, by)
	return p.latched.Load()
}

// Hard reports whether any source is hard (and updates the latch).
func (p *UnifiedPressure) Hard() bool {
	level, hard, by := p.read()
	p.update(level, hard, by)
	return hard
}

// LatchedBy returns the name of the source that closed the latch, or "" when
// it is open.
func (p *UnifiedPressure) LatchedBy() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.by
}

// LatchedSince returns when the latch closed, or the zero time when it is
// open.
func (p *UnifiedPressure) LatchedSince() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.since
}

// Pauses returns the number of latch-close edges so far.
func (p *UnifiedPressure) Pauses() uint64 { return p.pauses.Load() }

// Resumes returns the number of latch-open edges so far.
func (p *UnifiedPressure) Resumes() uint64 { return p.resumes.Load() }

// edge returns the latch state with the name and level recorded at its last
// edge, consistently.
func (p *UnifiedPressure) edge() (latched bool, by string, level float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.latched.Load(), p.by, p.edgeLevel
}

// Snapshot returns the full state (allocates; for admin/metrics, not hot paths).
// The latch is updated from the same readings the snapshot reports.
func (p *UnifiedPressure) Snapshot() Snapshot {
	srcs := *p.sources.Load()
	s := Snapshot{Sources: make([]SourceLevel, len(srcs))}
	by, firstHard := -1, -1
	for i, src := range srcs {
		sl := SourceLevel{Name: src.Name(), Level: clamp01(src.Level()), Hard: src.Hard()}
		s.Sources[i] = sl
		if sl.Level > s.Level || by < 0 {
			s.Level, by = sl.Level, i
		}
		if sl.Hard && firstHard < 0 {
			s.Hard, firstHard = true, i
		}
	}
	if s.Hard && s.Level <= p.h.PauseAbove {
		by = firstHard
	}
	p.update(s.Level, s.Hard, by)

	p.mu.Lock()
	s.Latched, s.LatchedBy, s.LatchedSince = p.latched.Load(), p.by, p.since
	s.Pauses, s.Resumes = p.pauses.Load(), p.resumes.Load()
	p.mu.Unlock()
	return s
}
