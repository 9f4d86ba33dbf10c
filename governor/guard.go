package governor

import (
	"math"
	"sync/atomic"
)

// MemoryGuardName is the Source name of a MemoryGuard.
const MemoryGuardName = "memory_guard"

// DefaultHardAt is the fraction of a limit at which the guard and the heap
// source report HARD pressure when the caller passes 0.
const DefaultHardAt = 0.9

// MemoryGuard accounts every in-flight byte against a limit. Safe for
// concurrent use.
//
// The guard only counts: Lease never blocks and never fails. Admission is the
// InboundGate's job (it reads the guard through UnifiedPressure), and the
// ByteBudget shrinks the work it hands out when the guard reports HARD.
type MemoryGuard struct {
	inFlight atomic.Int64
	peak     atomic.Int64

	limit     int64   // ≤ 0: unlimited (level 0, never hard)
	hardAt    float64 // fraction of limit
	hardBytes int64   // ceil(hardAt·limit)
}

// NewMemoryGuard returns a guard for limit bytes; pressure is HARD when the
// in-flight bytes reach hardAt·limit (0 < hardAt ≤ 1, e.g. 0.9).
//
// A limit of 0 means "no limit": the guard still counts, but its Level is 0
// and it is never Hard. hardAt 0 selects DefaultHardAt. A negative limit or a
// hardAt outside [0, 1] is a programming error and panics.
func NewMemoryGuard(limit int64, hardAt float64) *MemoryGuard {
	if limit < 0 {
		panic("governor: NewMemoryGuard: limit must be ≥ 0 bytes")
	}
	if hardAt == 0 {
		hardAt = DefaultHardAt
	}
	if !(hardAt > 0 && hardAt <= 1) {
		panic("governor: NewMemoryGuard: hardAt must be in (0, 1]")
	}
	g := &MemoryGuard{limit: limit, hardAt: hardAt}
	if limit > 0 {
		g.hardBytes = int64(math.Ceil(hardAt * float64(limit)))
		if g.hardBytes < 1 {
			g.hardBytes = 1
		}
	}
	return g
}

// Lease accounts n bytes until the lease is released. It never blocks and
// never fails: admission control is the gate's job, the guard only counts.
//
// n ≤ 0 accounts nothing and returns a nil *Lease, which is valid: Release
// on it is a no-op and Bytes returns 0.
func (g *MemoryGuard) Lease(n int64) *Lease {
	if n <= 0 || g == nil {
		return nil
	}
	g.add(n)
	return &Lease{g: g, n: n}
}

// add accounts n bytes (n may be negative on release) and moves the peak.
func (g *MemoryGuard) add(n int64) {
	cur := g.inFlight.Add(n)
	if n <= 0 {
		return
	}
	// High-water mark: CAS loop, exits at once when another goroutine has
	// already recorded a higher value.
	for {
		p := g.peak.Load()
		if cur <= p || g.peak.CompareAndSwap(p, cur) {
			return
		}
	}
}

// InFlight returns the bytes currently leased.
func (g *MemoryGuard) InFlight() int64 { return g.inFlight.Load() }

// Peak returns the high-water mark of InFlight since start (or ResetPeak).
func (g *MemoryGuard) Peak() int64 { return g.peak.Load() }

// ResetPeak sets the high-water mark to the current InFlight.
func (g *MemoryGuard) ResetPeak() { g.peak.Store(g.inFlight.Load()) }

// Limit returns the configured limit in bytes (0: unlimited).
func (g *MemoryGuard) Limit() int64 { return g.limit }

// HardAt returns the fraction of Limit at which the guard reports HARD.
func (g *MemoryGuard) HardAt() float64 { return g.hardAt }

// Name returns "memory_guard"; with Level and Hard it makes the guard a
// pressure Source.
func (g *MemoryGuard) Name() string { return MemoryGuardName }

// Level returns InFlight/Limit clamped to [0, 1] (0 when unlimited).
func (g *MemoryGuard) Level() float64 {
	if g.limit <= 0 {
		return 0
	}
	return clamp01(float64(g.inFlight.Load()) / float64(g.limit))
}

// Hard reports whether InFlight has reached hardAt·Limit.
func (g *MemoryGuard) Hard() bool {
	return g.limit > 0 && g.inFlight.Load() >= g.hardBytes
}

// Lease is a reservation of bytes on a MemoryGuard. Release is idempotent and
// safe to defer on every exit path. A nil *Lease is valid and releases nothing.
//
// A Lease is a small heap object (one allocation per MemoryGuard.Lease). It is
// deliberately not pooled: a pooled lease reused after its first Release
// would let a second, idempotent Release return another owner's bytes.
type Lease struct {
	g        *MemoryGuard
	n        int64
	released atomic.Bool
}

// Release returns the bytes to the guard (idempotent).
func (l *Lease) Release() {
	if l == nil || l.released.Swap(true) {
		return
	}
	l.g.add(-l.n)
}

// Bytes returns the leased byte count (0 for a nil lease). It does not change
// on Release.
func (l *Lease) Bytes() int64 {
	if l == nil {
		return 0
	}
	return l.n
}

// Released reports whether Release has been called (true for a nil lease).
func (l *Lease) Released() bool { return l == nil || l.released.Load() }

// clamp01 clamps v to [0, 1]; NaN reads as 0.
func clamp01(v float64) float64 {
	switch {
	case v > 1:
		return 1
	case v > 0:
		return v
	default: // ≤ 0 or NaN
		return 0
	}
}
