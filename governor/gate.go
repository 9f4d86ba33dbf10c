package governor

import (
	"sync"
	"sync/atomic"
)

// Decision is the gate's answer.
type Decision uint8

const (
	// Yes admits the request.
	Yes Decision = iota
	// Hold rejects it (HTTP 503 + Retry-After; Kafka: pause partitions).
	Hold
)

// String returns "yes" or "hold".
func (d Decision) String() string {
	if d == Hold {
		return "hold"
	}
	return "yes"
}

// Gate states returned by InboundGate.State.
const (
	StateOpen = "open"
	StateHeld = "held"
)

// Actuator is notified on gate edges (pause when the latch closes, resume when
// it opens). Calls are serialised; they must not block.
//
// Pause and Resume strictly alternate, starting with Pause. An actuator must
// not call back into the gate's Evaluate or State (the notification runs
// under the gate's edge mutex).
type Actuator interface {
	Pause(by string, level float64)
	Resume(level float64)
}

// NoopActuator ignores every edge.
type NoopActuator struct{}

// Pause does nothing.
func (NoopActuator) Pause(string, float64) {}

// Resume does nothing.
func (NoopActuator) Resume(float64) {}

// ActuatorFuncs adapts two functions to an Actuator; a nil function is
// skipped.
type ActuatorFuncs struct {
	OnPause  func(by string, level float64)
	OnResume func(level float64)
}

// Pause calls OnPause.
func (f ActuatorFuncs) Pause(by string, level float64) {
	if f.OnPause != nil {
		f.OnPause(by, level)
	}
}

// Resume calls OnResume.
func (f ActuatorFuncs) Resume(level float64) {
	if f.OnResume != nil {
		f.OnResume(level)
	}
}

// InboundGate admits or holds inbound work from the unified pressure.
// Safe for concurrent use; Evaluate is cheap (hot path, no allocation).
//
// Evaluate reads the pressure latch (which reads the sources) and compares it
// with the state the actuators were last told. Only when the two differ does
// it take the gate's edge mutex and notify the actuators, so the hot path
// holds no lock, and each gate edge reaches each actuator exactly once. The
// gate follows the latch: if the latch flips twice while a notification is
// running, the gate may see only the net result, but Pause and Resume still
// alternate.
type InboundGate struct {
	p          *UnifiedPressure
	held       atomic.Bool // the state the actuators were last told
	rejections atomic.Uint64
	pauses     atomic.Uint64
	resumes    atomic.Uint64

	mu        sync.Mutex // serialises edges and actuator calls
	actuators atomic.Pointer[[]Actuator]
}

// NewInboundGate returns a gate over p, notifying actuators on edges.
// A nil actuator is ignored.
func NewInboundGate(p *UnifiedPressure, actuators ...Actuator) *InboundGate {
	if p == nil {
		panic("governor: NewInboundGate: nil *UnifiedPressure")
	}
	g := &InboundGate{p: p}
	acts := make([]Actuator, 0, len(actuators))
	for _, a := range actuators {
		if a != nil {
			acts = append(acts, a)
		}
	}
	g.actuators.Store(&acts)
	return g
}

// AddActuator adds an actuator. If the gate is held at that moment the new
// actuator is told Pause at once, so every actuator sees alternating edges
// starting with Pause.
func (g *InboundGate) AddActuator(a Actuator) {
	if a == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	old := *g.actuators.Load()
	acts := make([]Actuator, len(old), len(old)+1)
	copy(acts, old)
	acts = append(acts, a)
	g.actuators.Store(&acts)
	if g.held.Load() {
		_, by, level := g.p.edge()
		a.Pause(by, level)
	}
}

// Evaluate returns Yes or Hold, counting Holds as rejections.
func (g *InboundGate) Evaluate() Decision {
	latched := g.p.Latched()
	if latched != g.held.Load() {
		g.sync()
	}
	if latched {
		g.rejections.Add(1)
		return Hold
	}
	return Yes
}

// sync brings the actuators up to the latch state, one edge at a time.
func (g *InboundGate) sync() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for {
		latched, by, level := g.p.edge()
		if latched == g.held.Load() {
			return
		}
		g.held.Store(latched)
		acts := *g.actuators.Load()
		if latched {
			g.pauses.Add(1)
			for _, a := range acts {
				a.Pause(by, level)
			}
		} else {
			g.resumes.Add(1)
			for _, a := range acts {
				a.Resume(level)
			}
		}
	}
}

// Rejections returns the number of Holds so far.
func (g *InboundGate) Rejections() uint64 { return g.rejections.Load() }

// Pauses returns the number of pause edges delivered to the actuators.
func (g *InboundGate) Pauses() uint64 { return g.pauses.Load() }

// Resumes returns the number of resume edges delivered to the actuators.
func (g *InboundGate) Resumes() uint64 { return g.resumes.Load() }

// Pressure returns the pressure the gate reads.
func (g *InboundGate) Pressure() *UnifiedPressure { return g.p }

// State returns "open" or "held". It reads the latch (and notifies the
// actuators of a pending edge) without counting a rejection.
func (g *InboundGate) State() string {
	if g.p.Latched() != g.held.Load() {
		g.sync()
	}
	if g.held.Load() {
		return StateHeld
	}
	return StateOpen
}
