package governor

import (
	"math"
	"testing"
	"time"
)

func TestHysteresisValidate(t *testing.T) {
	tests := []struct {
		name  string
		h     Hysteresis
		field string // "" = valid
	}{
		{"default", DefaultHysteresis(), ""},
		{"pause at 1", Hysteresis{PauseAbove: 1, ResumeBelow: 0.5}, ""},
		{"narrow band", Hysteresis{PauseAbove: 0.51, ResumeBelow: 0.5}, ""},
		{"zero value", Hysteresis{}, "Hysteresis.PauseAbove"},
		{"pause above 1", Hysteresis{PauseAbove: 1.2, ResumeBelow: 0.5}, "Hysteresis.PauseAbove"},
		{"pause negative", Hysteresis{PauseAbove: -0.1, ResumeBelow: 0.5}, "Hysteresis.PauseAbove"},
		{"pause NaN", Hysteresis{PauseAbove: math.NaN(), ResumeBelow: 0.5}, "Hysteresis.PauseAbove"},
		{"resume zero", Hysteresis{PauseAbove: 0.8, ResumeBelow: 0}, "Hysteresis.ResumeBelow"},
		{"resume NaN", Hysteresis{PauseAbove: 0.8, ResumeBelow: math.NaN()}, "Hysteresis.ResumeBelow"},
		{"empty band", Hysteresis{PauseAbove: 0.7, ResumeBelow: 0.7}, "Hysteresis.PauseAbove"},
		{"inverted band", Hysteresis{PauseAbove: 0.6, ResumeBelow: 0.7}, "Hysteresis.PauseAbove"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wantConfigErr(t, tc.h.Validate(), tc.field)
			_, err := NewUnifiedPressure(tc.h)
			wantConfigErr(t, err, tc.field)
		})
	}
}

func TestGauge(t *testing.T) {
	g := NewGauge("queue")
	if g.Name() != "queue" || g.Level() != 0 || g.Hard() {
		t.Fatalf("new gauge: %q %v %v", g.Name(), g.Level(), g.Hard())
	}
	for _, tc := range []struct {
		set, want float64
		hard      bool
	}{
		{0.5, 0.5, false},
		{1.5, 1, true},
		{-1, 0, false},
		{math.NaN(), 0, true},
		{math.Inf(1), 1, false},
	} {
		g.Set(tc.set, tc.hard)
		if g.Level() != tc.want || g.Hard() != tc.hard {
			t.Errorf("Set(%v, %v): Level %v Hard %v, want %v %v", tc.set, tc.hard, g.Level(), g.Hard(), tc.want, tc.hard)
		}
	}
}

// TestLatchHysteresis walks one gauge through a sequence of levels and checks
// the latch after each reading.
func TestLatchHysteresis(t *testing.T) {
	type step struct {
		level   float64
		hard    bool
		latched bool
	}
	tests := []struct {
		name    string
		steps   []step
		pauses  uint64
		resumes uint64
	}{
		{"stays open below pause", []step{{0.5, false, false}, {0.79, false, false}, {0.80, false, false}}, 0, 0},
		{"closes above pause", []step{{0.81, false, true}}, 1, 0},
		{"holds inside the band", []step{{0.9, false, true}, {0.7, false, true}, {0.65, false, true}, {0.79, false, true}}, 1, 0},
		{"opens below resume", []step{{0.9, false, true}, {0.64, false, false}}, 1, 1},
		{"band does not reopen-close", []step{{0.9, false, true}, {0.5, false, false}, {0.75, false, false}, {0.8, false, false}}, 1, 1},
		{"re-closes", []step{{0.9, false, true}, {0.5, false, false}, {0.85, false, true}, {0.1, false, false}}, 2, 2},
		{"hard closes at once at low level", []step{{0.1, true, true}}, 1, 0},
		{"hard keeps it closed below resume", []step{{0.9, false, true}, {0.1, true, true}, {0.1, false, false}}, 1, 1},
		{"repeat readings count one edge", []step{{0.95, false, true}, {0.95, false, true}, {0.99, true, true}}, 1, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := NewGauge("q")
			p := newPressure(t, DefaultHysteresis(), g)
			for i, s := range tc.steps {
				g.Set(s.level, s.hard)
				if got := p.Latched(); got != s.latched {
					t.Fatalf("step %d (level %v hard %v): Latched %v, want %v", i, s.level, s.hard, got, s.latched)
				}
			}
			if p.Pauses() != tc.pauses || p.Resumes() != tc.resumes {
				t.Fatalf("Pauses %d Resumes %d, want %d %d", p.Pauses(), p.Resumes(), tc.pauses, tc.resumes)
			}
		})
	}
}

func TestUnifiedPressureMaxAndLatchedBy(t *testing.T) {
	guard := NewMemoryGuard(1000, 0.9)
	queue := NewGauge("queue")
	sink := NewGauge("sink")
	p := newPressure(t, DefaultHysteresis(), guard, queue, nil, sink)
	if n := len(p.Sources()); n != 3 {
		t.Fatalf("%d sources, want 3 (nil ignored)", n)
	}

	queue.Set(0.3, false)
	l := guard.Lease(500)
	if got := p.Level(); got != 0.5 {
		t.Fatalf("Level %v, want max 0.5", got)
	}
	if p.Latched() || p.LatchedBy() != "" || !p.LatchedSince().IsZero() {
		t.Fatalf("latched at 0.5: %v %q %v", p.Latched(), p.LatchedBy(), p.LatchedSince())
	}

	before := time.Now()
	queue.Set(0.85, false)
	if !p.Latched() {
		t.Fatal("not latched at 0.85")
	}
	if p.LatchedBy() != "queue" {
		t.Fatalf("LatchedBy %q, want queue", p.LatchedBy())
	}
	if since := p.LatchedSince(); since.Before(before) || since.After(time.Now()) {
		t.Fatalf("LatchedSince %v not within the call", since)
	}
	// A later, higher source does not rename the latch.
	l2 := guard.Lease(450)
	if !p.Hard() {
		t.Fatal("guard at 95% is not hard")
	}
	if p.LatchedBy() != "queue" {
		t.Fatalf("LatchedBy %q changed while latched", p.LatchedBy())
	}

	l.Release()
	l2.Release()
	queue.Set(0, false)
	if p.Latched() {
		t.Fatal("still latched at 0")
	}
	// A hard source below the threshold is named, not the highest.
	queue.Set(0.6, false)
	sink.Set(0, true)
	if !p.Latched() || p.LatchedBy() != "sink" {
		t.Fatalf("hard sink: Latched %v LatchedBy %q, want true sink", p.Latched(), p.LatchedBy())
	}

	s := p.Snapshot()
	want := []SourceLevel{{"memory_guard", 0, false}, {"queue", 0.6, false}, {"sink", 0, true}}
	if len(s.Sources) != len(want) {
		t.Fatalf("Snapshot sources %+v", s.Sources)
	}
	for i := range want {
		if s.Sources[i] != want[i] {
			t.Errorf("source %d = %+v, want %+v", i, s.Sources[i], want[i])
		}
	}
	if s.Level != 0.6 || !s.Latched || !s.Hard || s.LatchedBy != "sink" || s.LatchedSince.IsZero() || s.Pauses != 2 || s.Resumes != 1 {
		t.Fatalf("Snapshot %+v", s)
	}
}

func TestUnifiedPressureNoSources(t *testing.T) {
	p := newPressure(t, DefaultHysteresis())
	if p.Level() != 0 || p.Latched() || p.Hard() {
		t.Fatal("empty pressure not at rest")
	}
	g := NewGauge("late")
	p.AddSource(g)
	p.AddSource(nil)
	g.Set(1, false)
	if !p.Latched() || p.LatchedBy() != "late" {
		t.Fatalf("added source ignored: %v %q", p.Latched(), p.LatchedBy())
	}
	if p.Hysteresis() != DefaultHysteresis() {
		t.Fatalf("Hysteresis %+v", p.Hysteresis())
	}
}

// levelSource is a Source returning out-of-range levels.
type levelSource float64

func (levelSource) Name() string     { return "raw" }
func (s levelSource) Level() float64 { return float64(s) }
func (levelSource) Hard() bool       { return false }

func TestUnifiedPressureClampsSources(t *testing.T) {
	for _, tc := range []struct {
		raw, want float64
	}{{2, 1}, {-3, 0}, {math.NaN(), 0}, {0.42, 0.42}} {
		p := newPressure(t, DefaultHysteresis(), levelSource(tc.raw))
		if got := p.Level(); got != tc.want {
			t.Errorf("source level %v: Level %v, want %v", tc.raw, got, tc.want)
		}
	}
}
