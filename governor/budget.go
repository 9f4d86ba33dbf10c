package governor

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Budget defaults.
const (
	DefaultBudgetMax        = 16 << 20 // 16 MiB
	DefaultBudgetMin        = 64 << 10 // 64 KiB (or Max when smaller)
	DefaultTargetUtil       = 0.7
	DefaultDecrease         = 0.5
	DefaultRecordCap        = 10_000
	defaultIncreaseFraction = 16 // Increase defaults to Max/16
)

// BudgetConfig configures the AIMD byte budget. Zero fields take their
// defaults; negative ones are rejected.
type BudgetConfig struct {
	Start          int64   // initial budget bytes (default Max)
	Min            int64   // floor, ≥ 1 record's worth (default 64 KiB, or Max when smaller)
	Max            int64   // ceiling (default 16 MiB)
	TargetUtil     float64 // target utilisation processTime/ingestInterval, in (0, 1] (default 0.7)
	Decrease       float64 // multiplicative factor on decrease, in (0,1) (default 0.5)
	Increase       int64   // additive step on increase, bytes (default Max/16)
	RecordCap      int     // max records per receive (default 10_000)
	AvgRecordBytes int64   // used to derive the record cap from the budget (optional, 0: cap fixed at RecordCap)
}

// withDefaults returns c with its zero fields filled.
func (c BudgetConfig) withDefaults() BudgetConfig {
	if c.Max == 0 {
		c.Max = DefaultBudgetMax
	}
	if c.Min == 0 {
		c.Min = min(DefaultBudgetMin, c.Max)
	}
	if c.Start == 0 {
		c.Start = c.Max
	}
	if c.TargetUtil == 0 {
		c.TargetUtil = DefaultTargetUtil
	}
	if c.Decrease == 0 {
		c.Decrease = DefaultDecrease
	}
	if c.Increase == 0 {
		c.Increase = max(c.Max/defaultIncreaseFraction, 1)
	}
	if c.RecordCap == 0 {
		c.RecordCap = DefaultRecordCap
	}
	return c
}

// Validate reports an inconsistent configuration (after filling defaults):
// non-positive sizes, Min > Max, Start outside [Min, Max], TargetUtil outside
// (0, 1], Decrease outside (0, 1), a negative AvgRecordBytes.
func (c BudgetConfig) Validate() error {
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"BudgetConfig.Start", c.Start},
		{"BudgetConfig.Min", c.Min},
		{"BudgetConfig.Max", c.Max},
		{"BudgetConfig.Increase", c.Increase},
		{"BudgetConfig.RecordCap", int64(c.RecordCap)},
		{"BudgetConfig.AvgRecordBytes", c.AvgRecordBytes},
	} {
		if f.v < 0 {
			return configErr(f.name, f.v, "must not be negative (0 selects the default)")
		}
	}
	c = c.withDefaults()
	if c.Min > c.Max {
		return configErr("BudgetConfig.Min", c.Min, "must not exceed Max")
	}
	if c.Start < c.Min || c.Start > c.Max {
		return configErr("BudgetConfig.Start", c.Start, "must be within [Min, Max]")
	}
	if !(c.TargetUtil > 0 && c.TargetUtil <= 1) {
		return configErr("BudgetConfig.TargetUtil", c.TargetUtil, "must be in (0, 1]")
	}
	if !(c.Decrease > 0 && c.Decrease < 1) {
		return configErr("BudgetConfig.Decrease", c.Decrease, "must be in (0, 1)")
	}
	return nil
}

// ByteBudget is the AIMD controller of the byte budget. Safe for concurrent use.
//
// Each Observe folds one block into the loop:
//
//   - pressure HARD (any source of the tied UnifiedPressure): decrease at
//     once, whatever the utilisation (counted in HardShrinks too);
//   - ingestInterval ≤ 0: no data, no change;
//   - blockBytes ≤ 0: slack, additive increase;
//   - ρ = processTime/ingestInterval above TargetUtil: multiplicative
//     decrease (budget·Decrease); below: additive increase (budget+Increase);
//     equal: no change.
//
// While the pressure latch is closed (but no source is HARD) increases are
// withheld: the budget may shrink but does not grow back until the latch
// opens. The budget is always clamped to [Min, Max].
//
// The record cap follows the budget: with AvgRecordBytes > 0 it is
// Bytes/AvgRecordBytes clamped to [1, RecordCap], so a shrunk budget also
// shrinks the record count of a receive; with AvgRecordBytes 0 it is
// RecordCap. Bytes and RecordCap are lock-free atomic reads; Observe
// serialises writers on a mutex.
type ByteBudget struct {
	cfg BudgetConfig // defaults filled
	p   *UnifiedPressure

	bytes     atomic.Int64
	recordCap atomic.Int64

	mu           sync.Mutex // serialises Observe; guards the fields below
	increases    uint64
	decreases    uint64
	hardShrinks  uint64
	observations uint64
	lastUtil     float64
}

// NewByteBudget validates cfg (filling defaults) and ties the budget to p for
// the HARD override (p may be nil).
func NewByteBudget(cfg BudgetConfig, p *UnifiedPressure) (*ByteBudget, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	b := &ByteBudget{cfg: cfg.withDefaults(), p: p}
	b.set(b.cfg.Start)
	return b, nil
}

// Config returns the configuration in use, defaults filled.
func (b *ByteBudget) Config() BudgetConfig { return b.cfg }

// set stores a budget and its derived record cap. b.mu held (or during
// construction).
func (b *ByteBudget) set(n int64) {
	n = min(max(n, b.cfg.Min), b.cfg.Max)
	b.bytes.Store(n)
	rc := int64(b.cfg.RecordCap)
	if b.cfg.AvgRecordBytes > 0 {
		rc = min(max(n/b.cfg.AvgRecordBytes, 1), rc)
	}
	b.recordCap.Store(rc)
}

// Observe folds one block into the loop.
func (b *ByteBudget) Observe(blockBytes int64, processTime, ingestInterval time.Duration) {
	hard, latched := false, false
	if b.p != nil {
		level, h, by := b.p.read()
		b.p.update(level, h, by)
		hard, latched = h, b.p.latched.Load()
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	b.observations++
	cur := b.bytes.Load()
	switch {
	case hard:
		b.hardShrinks++
		b.decrease(cur)
	case ingestInterval <= 0:
		// No interval, no utilisation: nothing to learn.
	case blockBytes <= 0:
		b.lastUtil = 0
		b.increase(cur, latched)
	default:
		rho := float64(max(processTime, 0)) / float64(ingestInterval)
		b.lastUtil = rho
		switch {
		case rho > b.cfg.TargetUtil:
			b.decrease(cur)
		case rho < b.cfg.TargetUtil:
			b.increase(cur, latched)
		}
	}
}

func (b *ByteBudget) decrease(cur int64) {
	b.decreases++
	n := int64(math.Floor(float64(cur) * b.cfg.Decrease))
	if n >= cur {
		n = cur - 1 // tiny budgets still move
	}
	b.set(n)
}

func (b *ByteBudget) increase(cur int64, latched bool) {
	if latched {
		return
	}
	b.increases++
	n := cur + b.cfg.Increase
	if n < cur { // overflow
		n = b.cfg.Max
	}
	b.set(n)
}

// Bytes returns the current budget.
func (b *ByteBudget) Bytes() int64 { return b.bytes.Load() }

// RecordCap returns the current record cap for one receive.
func (b *ByteBudget) RecordCap() int { return int(b.recordCap.Load()) }

// Pressure returns the pressure it is tied to (may be nil).
func (b *ByteBudget) Pressure() *UnifiedPressure { return b.p }

// BudgetStats is the AIMD state for observability.
type BudgetStats struct {
	Bytes, Min, Max      int64
	RecordCap            int
	Increases, Decreases uint64 // decisions taken (a clamped move still counts)
	HardShrinks          uint64 // decreases forced by HARD pressure (also in Decreases)
	LastUtilisation      float64
	Observations         uint64
}

// Stats returns the AIMD state.
func (b *ByteBudget) Stats() BudgetStats {
	b.mu.Lock()
	defer b.mu.Unlock()
	return BudgetStats{
		Bytes:           b.bytes.Load(),
		Min:             b.cfg.Min,
		Max:             b.cfg.Max,
		RecordCap:       int(b.recordCap.Load()),
		Increases:       b.increases,
		Decreases:       b.decreases,
		HardShrinks:     b.hardShrinks,
		LastUtilisation: b.lastUtil,
		Observations:    b.observations,
	}
}
