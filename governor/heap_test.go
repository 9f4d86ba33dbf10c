package governor

import (
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

func TestParseCgroupLimit(t *testing.T) {
	tests := []struct {
		in        string
		unlimited int64
		want      int64
	}{
		{"max\n", 0, 0},
		{"1073741824\n", 0, 1 << 30},
		{"  536870912  ", 0, 512 << 20},
		{"", 0, 0},
		{"garbage", 0, 0},
		{"-1", 0, 0},
		{"0", 0, 0},
		{"9223372036854771712\n", cgroupV1Unlimited, 0},
		{"268435456\n", cgroupV1Unlimited, 256 << 20},
		{"99999999999999999999999", 0, 0},
	}
	for _, tc := range tests {
		if got := parseCgroupLimit([]byte(tc.in), tc.unlimited); got != tc.want {
			t.Errorf("parseCgroupLimit(%q, %d) = %d, want %d", tc.in, tc.unlimited, got, tc.want)
		}
	}
}

func TestCgroupMemoryLimitFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	missing := filepath.Join(dir, "missing")
	v2max := write("v2max", "max\n")
	v2set := write("v2set", "2147483648\n")
	v1none := write("v1none", "9223372036854771712\n")
	v1set := write("v1set", "1073741824\n")
	tests := []struct {
		name   string
		v2, v1 string
		want   int64
	}{
		{"v2 limit", v2set, v1set, 2 << 30},
		{"v2 max wins over v1", v2max, v1set, 0},
		{"v1 limit", missing, v1set, 1 << 30},
		{"v1 unlimited", missing, v1none, 0},
		{"no cgroup", missing, missing, 0},
	}
	for _, tc := range tests {
		if got := cgroupMemoryLimit(tc.v2, tc.v1); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
}

// setMemoryLimit sets GOMEMLIMIT for the test and restores it afterwards.
func setMemoryLimit(tb testing.TB, n int64) {
	tb.Helper()
	old := debug.SetMemoryLimit(n)
	tb.Cleanup(func() { debug.SetMemoryLimit(old) })
}

func TestHeapSourceLimitResolution(t *testing.T) {
	setMemoryLimit(t, math.MaxInt64)
	tests := []struct {
		name     string
		explicit int64
		gomem    int64
		cgroup   int64
		want     int64
	}{
		{"explicit wins", 1 << 40, 1 << 39, 1 << 38, 1 << 40},
		{"GOMEMLIMIT over cgroup", 0, 1 << 39, 1 << 38, 1 << 39},
		{"cgroup last", 0, math.MaxInt64, 1 << 38, 1 << 38},
		{"nothing known", 0, math.MaxInt64, 0, 0},
		{"negative explicit ignored", -5, math.MaxInt64, 1 << 38, 1 << 38},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			debug.SetMemoryLimit(tc.gomem)
			h := newHeapSource(tc.explicit, 0.9, time.Hour, tc.cgroup, nil)
			if h.Limit() != tc.want {
				t.Fatalf("Limit %d, want %d", h.Limit(), tc.want)
			}
			if h.HeapBytes() <= 0 {
				t.Fatalf("HeapBytes %d", h.HeapBytes())
			}
			if h.Name() != "go_heap" {
				t.Fatalf("Name %q", h.Name())
			}
			lvl := h.Level()
			switch {
			case tc.want == 0 && (lvl != 0 || h.Hard()):
				t.Fatalf("no limit: Level %v Hard %v", lvl, h.Hard())
			case tc.want > 0 && (lvl <= 0 || lvl >= 0.01 || h.Hard()):
				t.Fatalf("heap %d vs limit %d: Level %v Hard %v", h.HeapBytes(), tc.want, lvl, h.Hard())
			}
		})
	}
}

func TestHeapSourceHardAtTinyLimit(t *testing.T) {
	h := NewHeapSource(1024, 0.9, time.Hour)
	if h.Level() != 1 || !h.Hard() {
		t.Fatalf("1 KiB limit: Level %v Hard %v, want 1 true", h.Level(), h.Hard())
	}
	if _, ok := h.(*HeapSource); !ok {
		t.Fatalf("NewHeapSource returned %T", h)
	}
	// The heap source closes a latch by itself.
	p := newPressure(t, DefaultHysteresis(), h)
	if !p.Latched() || p.LatchedBy() != "go_heap" {
		t.Fatalf("Latched %v by %q", p.Latched(), p.LatchedBy())
	}
}

func TestHeapSourceCachesUntilRefresh(t *testing.T) {
	setMemoryLimit(t, 1<<40)
	h := newHeapSource(0, 0, time.Hour, 0, nil)
	if h.Limit() != 1<<40 {
		t.Fatalf("Limit %d", h.Limit())
	}
	debug.SetMemoryLimit(1 << 41)
	_ = h.Level()
	if h.Limit() != 1<<40 {
		t.Fatalf("cached reading refreshed early: Limit %d", h.Limit())
	}
	h.Refresh()
	if h.Limit() != 1<<41 {
		t.Fatalf("after Refresh: Limit %d, want %d", h.Limit(), int64(1<<41))
	}

	// A short refresh period: the reading follows within a few periods.
	fast := newHeapSource(0, 0, 5*time.Millisecond, 0, nil)
	debug.SetMemoryLimit(1 << 42)
	deadline := time.Now().Add(5 * time.Second)
	for fast.Level(); fast.Limit() != 1<<42; fast.Level() {
		if time.Now().After(deadline) {
			t.Fatalf("reading never refreshed: Limit %d", fast.Limit())
		}
		time.Sleep(time.Millisecond)
	}

	// refresh ≤ 0 reads on every call.
	always := newHeapSource(0, 0, 0, 0, nil)
	debug.SetMemoryLimit(1 << 43)
	if always.Level(); always.Limit() != 1<<43 {
		t.Fatalf("uncached: Limit %d", always.Limit())
	}
}

// gcSink keeps an allocation reachable until the test drops it.
var gcSink []byte

// TestHeapSourceNudgesGCWhenStaleAndHigh: the live heap of the last GC
// stays high after a burst while nothing allocates (automatic GC is off
// here); the source must start a GC itself so the reading, and a latch
// built on it, can fall back without new traffic.
func TestHeapSourceNudgesGCWhenStaleAndHigh(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	runtime.GC()
	idle := newHeapSource(0, 0.9, 0, 0, nil).UsedBytes()
	gcSink = make([]byte, 64<<20)
	for i := range gcSink {
		gcSink[i] = byte(i)
	}
	runtime.GC() // the burst is live at the last GC...
	gcSink = nil // ...and garbage now
	h := newHeapSource(idle+(16<<20), 0.99, 0, 0, nil)
	if lv := h.Level(); lv < gcNudgeAbove {
		t.Fatalf("level %.2f before the nudge; want ≥ %.2f", lv, gcNudgeAbove)
	}
	deadline := time.Now().Add(10 * time.Second)
	for h.Level() >= gcNudgeAbove {
		if time.Now().After(deadline) {
			t.Fatalf("level still %.2f after 10 s with %d nudges: the garbage was never collected", h.Level(), h.GCNudges())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if h.GCNudges() == 0 {
		t.Fatal("the level fell without a nudge although automatic GC was off")
	}
}
