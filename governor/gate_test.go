package governor

import (
	"testing"
)

func TestInboundGateEdges(t *testing.T) {
	g := NewGauge("queue")
	p := newPressure(t, DefaultHysteresis(), g)
	rec := &edgeRecorder{}
	var funcsPaused, funcsResumed int
	gate := NewInboundGate(p, rec, nil, ActuatorFuncs{
		OnPause:  func(string, float64) { funcsPaused++ },
		OnResume: func(float64) { funcsResumed++ },
	})
	if gate.Pressure() != p {
		t.Fatal("Pressure() is not the gate's pressure")
	}

	steps := []struct {
		level    float64
		hard     bool
		decision Decision
		state    string
	}{
		{0.1, false, Yes, StateOpen},
		{0.79, false, Yes, StateOpen},
		{0.9, false, Hold, StateHeld},
		{0.95, false, Hold, StateHeld},
		{0.7, false, Hold, StateHeld}, // inside the band
		{0.6, false, Yes, StateOpen},
		{0.2, true, Hold, StateHeld}, // HARD overrides a low level
		{0.2, false, Yes, StateOpen},
	}
	var holds uint64
	for i, s := range steps {
		g.Set(s.level, s.hard)
		d := gate.Evaluate()
		if d != s.decision {
			t.Fatalf("step %d: Evaluate %v, want %v", i, d, s.decision)
		}
		if d == Hold {
			holds++
		}
		if gate.State() != s.state {
			t.Fatalf("step %d: State %q, want %q", i, gate.State(), s.state)
		}
	}
	if gate.Rejections() != holds {
		t.Fatalf("Rejections %d, want %d", gate.Rejections(), holds)
	}
	events, overlap := rec.snapshot()
	want := []string{"pause:queue", "resume", "pause:queue", "resume"}
	if len(events) != len(want) || overlap {
		t.Fatalf("events %v (overlap %v), want %v", events, overlap, want)
	}
	for i := range want {
		if events[i] != want[i] {
			t.Fatalf("events %v, want %v", events, want)
		}
	}
	if rec.levels[0] != 0.9 || rec.levels[1] != 0.6 {
		t.Fatalf("edge levels %v, want 0.9 then 0.6", rec.levels)
	}
	if funcsPaused != 2 || funcsResumed != 2 || gate.Pauses() != 2 || gate.Resumes() != 2 {
		t.Fatalf("funcs %d/%d gate %d/%d, want 2/2", funcsPaused, funcsResumed, gate.Pauses(), gate.Resumes())
	}
}

func TestInboundGateStateNotifiesWithoutRejecting(t *testing.T) {
	g := NewGauge("sink")
	p := newPressure(t, DefaultHysteresis(), g)
	rec := &edgeRecorder{}
	gate := NewInboundGate(p, rec)
	g.Set(0, true)
	if gate.State() != StateHeld {
		t.Fatalf("State %q with a hard source", gate.State())
	}
	if gate.Rejections() != 0 {
		t.Fatalf("State counted %d rejections", gate.Rejections())
	}
	if ev, _ := rec.snapshot(); len(ev) != 1 || ev[0] != "pause:sink" {
		t.Fatalf("events %v", ev)
	}
}

func TestInboundGateAddActuatorWhileHeld(t *testing.T) {
	g := NewGauge("queue")
	p := newPressure(t, DefaultHysteresis(), g)
	gate := NewInboundGate(p)
	g.Set(1, false)
	if gate.Evaluate() != Hold {
		t.Fatal("not held")
	}
	late := &edgeRecorder{}
	gate.AddActuator(late)
	gate.AddActuator(nil)
	g.Set(0, false)
	if gate.Evaluate() != Yes {
		t.Fatal("not reopened")
	}
	ev, _ := late.snapshot()
	if len(ev) != 2 || ev[0] != "pause:queue" || ev[1] != "resume" {
		t.Fatalf("late actuator events %v, want pause then resume", ev)
	}
}

func TestDecisionString(t *testing.T) {
	if Yes.String() != "yes" || Hold.String() != "hold" {
		t.Fatalf("%q %q", Yes, Hold)
	}
}

func TestNewInboundGateNilPressurePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic")
		}
	}()
	NewInboundGate(nil)
}
