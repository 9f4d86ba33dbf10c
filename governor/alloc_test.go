package governor

import (
	"testing"
	"time"
)

// hotPathGovernor is the source set the gateway runs with: the guard, the
// heap source (cached) and two gauges.
func hotPathGovernor(tb testing.TB) (*MemoryGuard, *Gauge, *UnifiedPressure, *InboundGate, *ByteBudget) {
	tb.Helper()
	guard := NewMemoryGuard(1<<30, 0.9)
	queue, sink := NewGauge("queue"), NewGauge("sink")
	heap := NewHeapSource(1<<50, 0.9, time.Hour)
	p := newPressure(tb, DefaultHysteresis(), guard, heap, queue, sink)
	gate := NewInboundGate(p, NoopActuator{})
	budget := newBudget(tb, BudgetConfig{AvgRecordBytes: 512}, p)
	return guard, queue, p, gate, budget
}

func TestHotPathsDoNotAllocate(t *testing.T) {
	guard, queue, p, gate, budget := hotPathGovernor(t)
	lease := guard.Lease(100)
	t.Cleanup(lease.Release)

	tests := []struct {
		name string
		fn   func()
	}{
		{"InboundGate.Evaluate open", func() { _ = gate.Evaluate() }},
		{"UnifiedPressure.Level", func() { _ = p.Level() }},
		{"UnifiedPressure.Latched", func() { _ = p.Latched() }},
		{"UnifiedPressure.Hard", func() { _ = p.Hard() }},
		{"ByteBudget.Observe", func() { budget.Observe(1<<20, time.Millisecond, 10*time.Millisecond) }},
		{"ByteBudget.Bytes+RecordCap", func() { _, _ = budget.Bytes(), budget.RecordCap() }},
		{"MemoryGuard.Lease(0)", func() { guard.Lease(0).Release() }},
		{"Gauge.Set", func() { queue.Set(0.5, false) }},
		{"InboundGate.State", func() { _ = gate.State() }},
	}
	for _, tc := range tests {
		if a := testing.AllocsPerRun(1000, tc.fn); a != 0 {
			t.Errorf("%s: %v allocs per call, want 0", tc.name, a)
		}
	}

	// Held: Evaluate still does not allocate (the edge itself may, once).
	queue.Set(1, false)
	if gate.Evaluate() != Hold {
		t.Fatal("not held")
	}
	if a := testing.AllocsPerRun(1000, func() { _ = gate.Evaluate() }); a != 0 {
		t.Errorf("InboundGate.Evaluate held: %v allocs per call, want 0", a)
	}

	// A lease is at most one small allocation (none when the compiler inlines
	// Lease and the lease does not escape).
	if a := testing.AllocsPerRun(1000, func() { guard.Lease(64).Release() }); a > 1 {
		t.Errorf("Lease+Release: %v allocs, want at most 1", a)
	}
}
