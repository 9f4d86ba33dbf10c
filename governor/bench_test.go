package governor

import (
	"testing"
	"time"
)

func BenchmarkLeaseRelease(b *testing.B) {
	g := NewMemoryGuard(1<<30, 0.9)
	b.ReportAllocs()
	for b.Loop() {
		g.Lease(4096).Release()
	}
}

func BenchmarkLeaseReleaseParallel(b *testing.B) {
	g := NewMemoryGuard(1<<30, 0.9)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			g.Lease(4096).Release()
		}
	})
}

func BenchmarkByteBudgetObserve(b *testing.B) {
	_, _, _, _, budget := hotPathGovernor(b)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		// Alternate above and below target so the budget keeps moving.
		pt := time.Millisecond
		if i&1 == 0 {
			pt = 9 * time.Millisecond
		}
		budget.Observe(1<<20, pt, 10*time.Millisecond)
		i++
	}
}

func BenchmarkInboundGateEvaluate(b *testing.B) {
	_, _, _, gate, _ := hotPathGovernor(b)
	b.ReportAllocs()
	for b.Loop() {
		_ = gate.Evaluate()
	}
}

func BenchmarkInboundGateEvaluateHeld(b *testing.B) {
	_, queue, _, gate, _ := hotPathGovernor(b)
	queue.Set(1, false)
	b.ReportAllocs()
	for b.Loop() {
		_ = gate.Evaluate()
	}
}

func BenchmarkInboundGateEvaluateParallel(b *testing.B) {
	guard, _, _, gate, _ := hotPathGovernor(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			// Each request also leases its body, as the gateway does.
			l := guard.Lease(512)
			_ = gate.Evaluate()
			l.Release()
		}
	})
}

func BenchmarkUnifiedPressureLevel(b *testing.B) {
	_, _, p, _, _ := hotPathGovernor(b)
	b.ReportAllocs()
	for b.Loop() {
		_ = p.Level()
	}
}

func BenchmarkUnifiedPressureSnapshot(b *testing.B) {
	_, _, p, _, _ := hotPathGovernor(b)
	b.ReportAllocs()
	for b.Loop() {
		_ = p.Snapshot()
	}
}

func BenchmarkHeapSourceRefresh(b *testing.B) {
	h := newHeapSource(0, 0.9, time.Hour, 0, nil)
	b.ReportAllocs()
	for b.Loop() {
		h.Refresh()
	}
}

var leaseSink *Lease

// BenchmarkLeaseReleaseEscaping keeps the lease past the call, as the engine
// does across a sub-block: the lease is then one heap allocation.
func BenchmarkLeaseReleaseEscaping(b *testing.B) {
	g := NewMemoryGuard(1<<30, 0.9)
	b.ReportAllocs()
	for b.Loop() {
		leaseSink = g.Lease(4096)
		leaseSink.Release()
	}
}

// BenchmarkHeapSourceRefreshHost is a refresh with a host reporting its
// memory (the gateway's configuration; the host's own cost is apart).
func BenchmarkHeapSourceRefreshHost(b *testing.B) {
	h := newHeapSource(1<<30, 0.9, time.Hour, 0, nil)
	h.SetHostMemory(func() HostMemory { return HostMemory{Code: 32 << 20, Pools: 12 << 20, Guests: 10 << 20} })
	h.MeasureBaseline()
	b.ReportAllocs()
	for b.Loop() {
		h.Refresh()
	}
}
