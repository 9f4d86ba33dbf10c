package governor

import (
	"math"
	"testing"
	"time"
)

func TestBudgetConfigValidate(t *testing.T) {
	tests := []struct {
		name  string
		cfg   BudgetConfig
		field string
	}{
		{"zero value takes defaults", BudgetConfig{}, ""},
		{"small max lowers default min", BudgetConfig{Max: 16 << 10}, ""},
		{"explicit", BudgetConfig{Start: 100, Min: 10, Max: 1000, TargetUtil: 1, Decrease: 0.9, Increase: 7, RecordCap: 3, AvgRecordBytes: 5}, ""},
		{"negative start", BudgetConfig{Start: -1}, "BudgetConfig.Start"},
		{"negative min", BudgetConfig{Min: -1}, "BudgetConfig.Min"},
		{"negative max", BudgetConfig{Max: -1}, "BudgetConfig.Max"},
		{"negative increase", BudgetConfig{Increase: -1}, "BudgetConfig.Increase"},
		{"negative record cap", BudgetConfig{RecordCap: -1}, "BudgetConfig.RecordCap"},
		{"negative avg record", BudgetConfig{AvgRecordBytes: -1}, "BudgetConfig.AvgRecordBytes"},
		{"min above max", BudgetConfig{Min: 2000, Max: 1000}, "BudgetConfig.Min"},
		{"start below min", BudgetConfig{Start: 5, Min: 10, Max: 100}, "BudgetConfig.Start"},
		{"start above max", BudgetConfig{Start: 500, Min: 10, Max: 100}, "BudgetConfig.Start"},
		{"target above 1", BudgetConfig{TargetUtil: 1.5}, "BudgetConfig.TargetUtil"},
		{"target negative", BudgetConfig{TargetUtil: -0.5}, "BudgetConfig.TargetUtil"},
		{"target NaN", BudgetConfig{TargetUtil: math.NaN()}, "BudgetConfig.TargetUtil"},
		{"decrease 1", BudgetConfig{Decrease: 1}, "BudgetConfig.Decrease"},
		{"decrease negative", BudgetConfig{Decrease: -0.5}, "BudgetConfig.Decrease"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wantConfigErr(t, tc.cfg.Validate(), tc.field)
			b, err := NewByteBudget(tc.cfg, nil)
			wantConfigErr(t, err, tc.field)
			if err == nil && (b.Bytes() < b.Config().Min || b.Bytes() > b.Config().Max) {
				t.Fatalf("start %d outside [%d, %d]", b.Bytes(), b.Config().Min, b.Config().Max)
			}
		})
	}
}

func TestBudgetDefaults(t *testing.T) {
	b := newBudget(t, BudgetConfig{}, nil)
	want := BudgetConfig{Start: 16 << 20, Min: 64 << 10, Max: 16 << 20, TargetUtil: 0.7, Decrease: 0.5, Increase: 1 << 20, RecordCap: 10_000}
	if b.Config() != want {
		t.Fatalf("Config %+v, want %+v", b.Config(), want)
	}
	if b.Bytes() != 16<<20 || b.RecordCap() != 10_000 || b.Pressure() != nil {
		t.Fatalf("Bytes %d RecordCap %d Pressure %v", b.Bytes(), b.RecordCap(), b.Pressure())
	}
	small := newBudget(t, BudgetConfig{Max: 16 << 10}, nil)
	if c := small.Config(); c.Min != 16<<10 || c.Start != 16<<10 || c.Increase != 1<<10 {
		t.Fatalf("small Config %+v", c)
	}
}

type obs struct {
	bytes           int64
	process, ingest time.Duration
}

func TestBudgetAIMD(t *testing.T) {
	base := BudgetConfig{Start: 1000, Min: 100, Max: 2000, TargetUtil: 0.5, Decrease: 0.5, Increase: 100}
	ms := time.Millisecond
	tests := []struct {
		name     string
		cfg      BudgetConfig
		level    float64 // pressure gauge level
		hard     bool    // pressure gauge hard
		obs      []obs
		want     int64
		incs     uint64
		decs     uint64
		hardDecs uint64
		lastUtil float64
	}{
		{"over target halves", base, 0, false, []obs{{500, 80 * ms, 100 * ms}}, 500, 0, 1, 0, 0.8},
		{"under target adds", base, 0, false, []obs{{500, 10 * ms, 100 * ms}}, 1100, 1, 0, 0, 0.1},
		{"at target holds", base, 0, false, []obs{{500, 50 * ms, 100 * ms}}, 1000, 0, 0, 0, 0.5},
		{"zero bytes is slack", base, 0, false, []obs{{0, 90 * ms, 100 * ms}}, 1100, 1, 0, 0, 0},
		{"zero interval is no data", base, 0, false, []obs{{500, 90 * ms, 0}}, 1000, 0, 0, 0, 0},
		{"negative process time reads as 0", base, 0, false, []obs{{500, -ms, 100 * ms}}, 1100, 1, 0, 0, 0},
		{"floor clamp", base, 0, false, []obs{{1, ms, ms}, {1, ms, ms}, {1, ms, ms}, {1, ms, ms}, {1, ms, ms}}, 100, 0, 5, 0, 1},
		{"ceiling clamp", base, 0, false, []obs{{0, 0, ms}, {0, 0, ms}, {0, 0, ms}, {0, 0, ms}, {0, 0, ms}, {0, 0, ms}, {0, 0, ms}, {0, 0, ms}, {0, 0, ms}, {0, 0, ms}, {0, 0, ms}, {0, 0, ms}}, 2000, 12, 0, 0, 0},
		{"hard shrinks regardless of rho", base, 0.2, true, []obs{{0, ms, 100 * ms}}, 500, 0, 1, 1, 0},
		{"hard shrinks with no interval", base, 0.2, true, []obs{{500, 0, 0}, {500, 0, 0}}, 250, 0, 2, 2, 0},
		{"latched withholds increase", base, 0.9, false, []obs{{0, 0, ms}, {10, ms, 100 * ms}}, 1000, 0, 0, 0, 0.01},
		{"latched still decreases", base, 0.9, false, []obs{{10, 90 * ms, 100 * ms}}, 500, 0, 1, 0, 0.9},
		{"tiny budget still moves", BudgetConfig{Start: 3, Min: 1, Max: 3, Decrease: 0.9, Increase: 1}, 0, false, []obs{{1, ms, ms}, {1, ms, ms}, {1, ms, ms}}, 1, 0, 3, 0, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := NewGauge("load")
			g.Set(tc.level, tc.hard)
			b := newBudget(t, tc.cfg, newPressure(t, DefaultHysteresis(), g))
			for _, o := range tc.obs {
				b.Observe(o.bytes, o.process, o.ingest)
				if n := b.Bytes(); n < b.Config().Min || n > b.Config().Max {
					t.Fatalf("budget %d outside [%d, %d]", n, b.Config().Min, b.Config().Max)
				}
			}
			s := b.Stats()
			if s.Bytes != tc.want || b.Bytes() != tc.want {
				t.Errorf("Bytes %d (stats %d), want %d", b.Bytes(), s.Bytes, tc.want)
			}
			if s.Increases != tc.incs || s.Decreases != tc.decs || s.HardShrinks != tc.hardDecs {
				t.Errorf("Increases %d Decreases %d HardShrinks %d, want %d %d %d", s.Increases, s.Decreases, s.HardShrinks, tc.incs, tc.decs, tc.hardDecs)
			}
			if math.Abs(s.LastUtilisation-tc.lastUtil) > 1e-9 {
				t.Errorf("LastUtilisation %v, want %v", s.LastUtilisation, tc.lastUtil)
			}
			if s.Observations != uint64(len(tc.obs)) || s.Min != tc.cfg.Min || s.Max != tc.cfg.Max {
				t.Errorf("Stats %+v", s)
			}
		})
	}
}

func TestBudgetRecordCap(t *testing.T) {
	cfg := BudgetConfig{Start: 10_000, Min: 100, Max: 100_000, Increase: 10_000, RecordCap: 50, AvgRecordBytes: 1000}
	b := newBudget(t, cfg, nil)
	steps := []struct {
		o    obs
		want int
	}{
		{obs{0, 0, 0}, 10},                    // no data: 10 000 / 1000
		{obs{1, time.Second, time.Second}, 5}, // halved to 5000
		{obs{1, time.Second, time.Second}, 2}, // 2500
		{obs{1, time.Second, time.Second}, 1}, // 1250
		{obs{1, time.Second, time.Second}, 1}, // 625 < one record: floor 1
		{obs{0, 0, time.Second}, 10},          // 10 625
		{obs{0, 0, time.Second}, 20},          // 20 625
		{obs{0, 0, time.Second}, 30},          // 30 625
		{obs{0, 0, time.Second}, 40},          // 40 625
		{obs{0, 0, time.Second}, 50},          // 50 625: capped at RecordCap
		{obs{0, 0, time.Second}, 50},          // 60 625
	}
	for i, s := range steps {
		b.Observe(s.o.bytes, s.o.process, s.o.ingest)
		if got := b.RecordCap(); got != s.want {
			t.Fatalf("step %d: budget %d RecordCap %d, want %d", i, b.Bytes(), got, s.want)
		}
	}
	fixed := newBudget(t, BudgetConfig{RecordCap: 7}, nil)
	fixed.Observe(1, time.Second, time.Second)
	if fixed.RecordCap() != 7 {
		t.Fatalf("fixed RecordCap %d, want 7", fixed.RecordCap())
	}
}

// TestBudgetSharesPressureWithGate ports governed_gate_and_budget_share_pressure:
// one guard at 95% both holds the gate and, through the HARD override,
// shrinks the budget on a slack observation.
func TestBudgetSharesPressureWithGate(t *testing.T) {
	guard := NewMemoryGuard(1000, 0.80)
	p := newPressure(t, DefaultHysteresis(), guard)
	gate := NewInboundGate(p, NoopActuator{})
	budget := newBudget(t, BudgetConfig{}, p)
	start := budget.Bytes()

	if gate.Evaluate() != Yes {
		t.Fatal("low pressure does not admit")
	}
	budget.Observe(0, time.Millisecond, 100*time.Millisecond)
	if budget.Bytes() != start {
		t.Fatalf("slack observe at max moved the budget: %d → %d", start, budget.Bytes())
	}
	l := guard.Lease(950)
	defer l.Release()
	if gate.Evaluate() != Hold {
		t.Fatal("high pressure does not hold the gate")
	}
	budget.Observe(0, time.Millisecond, 100*time.Millisecond)
	if budget.Bytes() >= start {
		t.Fatalf("HARD pressure did not shrink the budget: %d", budget.Bytes())
	}
}
