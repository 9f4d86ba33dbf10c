package governor

import (
	"sync/atomic"
	"testing"
	"time"
)

// extraBytes is an ExtraMemory function the test sets.
type extraBytes struct{ n atomic.Int64 }

func (e *extraBytes) read() int64 { return e.n.Load() }

func TestHeapSourceExtraRaisesLevel(t *testing.T) {
	const limit = 1 << 40 // the Go heap alone is far below 1% of it
	var e extraBytes
	h := newHeapSource(limit, 0.9, time.Hour, 0, e.read)
	if lvl := h.Level(); lvl >= 0.01 || h.Hard() || h.ExtraBytes() != 0 {
		t.Fatalf("no extra: Level %v Hard %v Extra %d", lvl, h.Hard(), h.ExtraBytes())
	}

	tests := []struct {
		name     string
		extra    int64
		min, max float64
		hard     bool
	}{
		{"half", limit / 2, 0.5, 0.51, false},
		{"past hardAt", limit / 100 * 95, 0.95, 0.96, true},
		{"over the limit", 2 * limit, 1, 1, true},
		{"negative counts as zero", -limit, 0, 0.01, false},
		{"back to zero", 0, 0, 0.01, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e.n.Store(tc.extra)
			if lvl := h.Level(); tc.extra > 0 && lvl >= tc.min {
				t.Fatalf("cached reading refreshed early: Level %v", lvl)
			}
			h.Refresh()
			lvl := h.Level()
			if lvl < tc.min || lvl > tc.max || h.Hard() != tc.hard {
				t.Fatalf("extra %d: Level %v Hard %v, want [%v, %v] %v", tc.extra, lvl, h.Hard(), tc.min, tc.max, tc.hard)
			}
			want := max(tc.extra, 0)
			if h.ExtraBytes() != want || h.UsedBytes() < h.LiveBytes()+want {
				t.Fatalf("Extra %d Used %d Live %d, want extra %d on top of the live heap", h.ExtraBytes(), h.UsedBytes(), h.LiveBytes(), want)
			}
		})
	}
}

func TestHeapSourceNilExtraIsHeapAlone(t *testing.T) {
	const limit = 1 << 40
	h := NewHeapSourceExtra(limit, 0.9, time.Hour, nil)
	if h.Name() != HeapSourceName || h.Limit() != limit {
		t.Fatalf("Name %q Limit %d", h.Name(), h.Limit())
	}
	if h.ExtraBytes() != 0 || h.UsedBytes() < h.LiveBytes() || h.UsedBytes() <= 0 || h.HeapBytes() <= 0 {
		t.Fatalf("Extra %d Used %d Live %d Heap %d", h.ExtraBytes(), h.UsedBytes(), h.LiveBytes(), h.HeapBytes())
	}
	if lvl := h.Level(); lvl <= 0 || lvl >= 0.01 || h.Hard() {
		t.Fatalf("Level %v Hard %v", lvl, h.Hard())
	}
	// A tiny limit: the heap alone is over it, as with NewHeapSource.
	if tiny := NewHeapSourceExtra(1024, 0.9, time.Hour, nil); tiny.Level() != 1 || !tiny.Hard() {
		t.Fatalf("1 KiB limit: Level %v Hard %v", tiny.Level(), tiny.Hard())
	}
}

// Guest memory alone closes the governor's latch and holds the gate; it
// opens again once that memory is gone.
func TestGovernorExtraMemoryLatches(t *testing.T) {
	const limit = 1 << 40
	var e extraBytes
	gov, err := New(Config{MemoryLimit: 1 << 30, HeapLimit: limit, HeapRefresh: time.Hour, ExtraMemory: e.read})
	if err != nil {
		t.Fatal(err)
	}
	p, gate := gov.Pressure(), gov.Gate()
	if p.Latched() || gate.Evaluate() != Yes {
		t.Fatal("latched with no extra memory")
	}

	e.n.Store(limit / 100 * 85) // above PauseAbove 0.80, below HardAt 0.9
	gov.Heap().Refresh()
	if !p.Latched() || p.LatchedBy() != HeapSourceName || p.Hard() || gate.Evaluate() != Hold {
		t.Fatalf("extra 85%%: Latched %v by %q Hard %v", p.Latched(), p.LatchedBy(), p.Hard())
	}
	e.n.Store(limit / 100 * 70) // inside the band: stays latched
	gov.Heap().Refresh()
	if !p.Latched() || gate.Evaluate() != Hold {
		t.Fatal("extra 70%: latch opened inside the hysteresis band")
	}
	e.n.Store(limit / 100 * 95)
	gov.Heap().Refresh()
	if !p.Hard() || !gov.Heap().Hard() {
		t.Fatal("extra 95%: not HARD")
	}
	e.n.Store(0)
	gov.Heap().Refresh()
	if p.Latched() || gate.Evaluate() != Yes {
		t.Fatalf("extra gone: Latched %v by %q", p.Latched(), p.LatchedBy())
	}

	// With the heap source disabled ExtraMemory is unused.
	off, err := New(Config{MemoryLimit: 1 << 30, HeapLimit: -1, ExtraMemory: func() int64 { return 1 << 62 }})
	if err != nil {
		t.Fatal(err)
	}
	if off.Heap() != nil || off.Pressure().Latched() {
		t.Fatal("disabled heap source still read ExtraMemory")
	}
}

func TestHeapSourceExtraHotPathDoesNotAllocate(t *testing.T) {
	var e extraBytes
	e.n.Store(1 << 30)
	h := newHeapSource(1<<40, 0.9, time.Hour, 0, e.read)
	if a := testing.AllocsPerRun(1000, func() { _, _ = h.Level(), h.Hard() }); a != 0 {
		t.Errorf("Level+Hard: %v allocs per call, want 0", a)
	}
	if a := testing.AllocsPerRun(100, h.Refresh); a != 0 {
		t.Errorf("Refresh: %v allocs per call, want 0", a)
	}
	if h.ExtraBytes() != 1<<30 {
		t.Fatalf("Extra %d", h.ExtraBytes())
	}
}

func BenchmarkHeapSourceRefreshExtra(b *testing.B) {
	var e extraBytes
	h := newHeapSource(0, 0.9, time.Hour, 0, e.read)
	b.ReportAllocs()
	for b.Loop() {
		h.Refresh()
	}
}
