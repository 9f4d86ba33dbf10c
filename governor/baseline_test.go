package governor

import (
	"errors"
	"math"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"
)

// hostMem is a HostMemory function the test sets.
type hostMem struct {
	mu sync.Mutex
	m  HostMemory
}

func (h *hostMem) set(m HostMemory) { h.mu.Lock(); h.m = m; h.mu.Unlock() }
func (h *hostMem) read() HostMemory { h.mu.Lock(); defer h.mu.Unlock(); return h.m }

// near reports whether got is within tol of want.
func near(got, want, tol float64) bool { return math.Abs(got-want) <= tol }

// TestHeapSourceBaselineIsNotPressure: fixed memory (compiled code outside
// the Go runtime, pools at their reserved size) is counted in the baseline
// and the level is the traffic's share of what is left; off-heap guests
// beyond the reservation are traffic.
func TestHeapSourceBaselineIsNotPressure(t *testing.T) {
	runtime.GC()
	goUsed := newHeapSource(0, 0.9, 0, 0, nil).UsedBytes() // the Go runtime of this test process
	limit := goUsed + 400<<20
	var hm hostMem
	h := newHeapSource(limit, 0.9, 0, 0, nil)
	h.SetHostMemory(hm.read)

	// 300 MiB of code: without a baseline the level would be 0.75; as a
	// baseline it leaves 100 MiB of room, of which traffic uses nothing.
	hm.set(HostMemory{Code: 300 << 20})
	if lv := h.Level(); lv > 0.1 || h.Hard() {
		t.Fatalf("300 MiB of code: level %.3f hard %v, want ≈ the Go runtime's share of 100 MiB", lv, h.Hard())
	}
	b := h.Baseline()
	if b.Code != 300<<20 || b.Pools != 0 || b.Total != 300<<20 || b.Limit != limit || !b.MeasuredAt.IsZero() {
		t.Fatalf("baseline %+v", b)
	}
	if h.ExtraBytes() != 300<<20 || h.BaselineBytes() != 300<<20 {
		t.Fatalf("extra %d baseline %d", h.ExtraBytes(), h.BaselineBytes())
	}

	// Off-heap guests within their pools' reservation: still no pressure.
	hm.set(HostMemory{Code: 300 << 20, Pools: 50 << 20, Guests: 40 << 20, GuestsOffHeap: true})
	if lv := h.Level(); lv > 0.1 {
		t.Fatalf("guests inside their reservation: level %.3f", lv)
	}
	// Guests grown 40 MiB past it: traffic uses 40 of the 50 MiB left.
	hm.set(HostMemory{Code: 300 << 20, Pools: 50 << 20, Guests: 90 << 20, GuestsOffHeap: true})
	want := float64(goUsed+40<<20) / float64(limit-350<<20)
	if lv := h.Level(); !near(lv, want, 0.05) || h.Hard() {
		t.Fatalf("guests 40 MiB over their reservation: level %.3f hard %v, want ≈ %.3f (used %d, baseline %d, go %d)", lv, h.Hard(), want, h.UsedBytes(), h.BaselineBytes(), goUsed)
	}
	// In the Go heap, the same guests are already in the live heap: the
	// report adds nothing to the reading.
	hm.set(HostMemory{Code: 300 << 20, Pools: 50 << 20, Guests: 90 << 20})
	if h.Refresh(); h.ExtraBytes() != 300<<20 {
		t.Fatalf("in-heap guests added to the reading: extra %d", h.ExtraBytes())
	}

	// A baseline at or over the limit leaves nothing: HARD.
	hm.set(HostMemory{Code: limit})
	if lv := h.Level(); lv != 1 || !h.Hard() {
		t.Fatalf("baseline = limit: level %v hard %v", lv, h.Hard())
	}
}

// TestHeapSourceMeasureBaseline: the runtime measured with no traffic is
// the baseline; memory held after it is the traffic's.
func TestHeapSourceMeasureBaseline(t *testing.T) {
	runtime.GC()
	goUsed := newHeapSource(0, 0.9, 0, 0, nil).UsedBytes()
	limit := goUsed + 256<<20
	var hm hostMem
	hm.set(HostMemory{Code: 8 << 20, Pools: 4 << 20, Guests: 1 << 20})
	h := newHeapSource(limit, 0.9, 0, 0, nil)
	h.SetHostMemory(hm.read)

	b := h.MeasureBaseline()
	if b.MeasuredAt.IsZero() || b.Runtime <= 0 || b.Code != 8<<20 || b.Pools != 4<<20 {
		t.Fatalf("measured %+v", b)
	}
	if b.Total != b.Runtime+b.Other+b.Code+b.Pools || b.Limit != limit {
		t.Fatalf("total %d of %+v", b.Total, b)
	}
	// The in-heap guests (1 MiB) are counted as their reservation, not in
	// the runtime: the runtime is the Go reading less them.
	if d := h.UsedBytes() - h.ExtraBytes() - b.Other; b.Runtime > d {
		t.Fatalf("runtime %d above the Go reading %d", b.Runtime, d)
	}
	if runtime.GOOS == "linux" {
		// With no host memory reported, Other is the process outside the
		// Go runtime: at least the test binary's resident code.
		bare := newHeapSource(limit, 0.9, 0, 0, nil).MeasureBaseline()
		if bare.Other <= 0 || bare.Code != 0 || bare.Pools != 0 {
			t.Fatalf("linux: the binary's resident pages not measured: %+v", bare)
		}
	}
	if lv := h.Level(); lv > 0.05 {
		t.Fatalf("right after the measurement: level %.3f", lv)
	}

	// 128 MiB live after the measurement is traffic: half the room.
	room := float64(limit - b.Total)
	gcSink = make([]byte, 128<<20)
	for i := range gcSink {
		gcSink[i] = 1
	}
	runtime.GC()
	h.Refresh()
	if lv, want := h.Level(), float64(128<<20)/room; !near(lv, want, 0.06) {
		t.Fatalf("128 MiB live: level %.3f, want ≈ %.3f", lv, want)
	}
	gcSink = nil
	runtime.GC()
	h.Refresh()
	if lv := h.Level(); lv > 0.05 {
		t.Fatalf("after the traffic's memory was collected: level %.3f", lv)
	}
}

func TestBaselineCheck(t *testing.T) {
	b := Baseline{Limit: 128 << 20, Runtime: 40 << 20, Other: 16 << 20, Code: 33 << 20, Pools: 11 << 20}
	b.Total = b.Runtime + b.Other + b.Code + b.Pools // 100 MiB
	if got := b.Traffic(); got != 28<<20 {
		t.Fatalf("traffic %d", got)
	}
	if got := b.TrafficShare(); !near(got, 28.0/128, 1e-9) {
		t.Fatalf("share %v", got)
	}
	err := b.Check(0)
	var be *BaselineError
	if !errors.As(err, &be) || !errors.Is(err, ErrBaselineTooLarge) || be.MinShare != DefaultMinTrafficShare {
		t.Fatalf("Check: %v", err)
	}
	// 100 MiB / 0.75 = 133.3 MiB: 134 MiB is the smallest whole-MiB limit.
	if got := b.MinLimit(0.25); got != 134<<20 {
		t.Fatalf("MinLimit %d MiB", got>>20)
	}
	msg := err.Error()
	for _, s := range []string{"baseline 100.0 MiB", "runtime 40.0 MiB", "binary and libraries 16.0 MiB", "compiled code 33.0 MiB", "instance pools 11.0 MiB", "28.0 MiB (22%)", "128.0 MiB memory limit", "at least 25%", "at least 134.0 MiB"} {
		if !strings.Contains(msg, s) {
			t.Errorf("message lacks %q: %s", s, msg)
		}
	}
	b.Limit = 134 << 20
	if err := b.Check(0.25); err != nil {
		t.Fatalf("134 MiB: %v", err)
	}
	if err := (Baseline{Total: 1 << 40}).Check(0.25); err != nil {
		t.Fatalf("no limit known: %v", err)
	}
	b.Limit = 128 << 20
	if err := b.Check(0.2); err != nil {
		t.Fatalf("share 0.2: %v", err)
	}
}

func TestHeapSourceManagesGoMemoryLimit(t *testing.T) {
	setMemoryLimit(t, math.MaxInt64)
	const limit = 1 << 30
	var hm hostMem
	hm.set(HostMemory{Code: 100 << 20})
	h := newHeapSource(limit, 0.9, 0, 0, nil)
	h.SetHostMemory(hm.read)
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Fatalf("unmanaged source set GOMEMLIMIT %d", got)
	}
	h.ManageGoMemoryLimit(true)
	slack := int64(goLimitSlack * limit)
	if got, want := debug.SetMemoryLimit(-1), int64(limit-100<<20)-slack; got != want || h.Baseline().GoMemoryLimit != want {
		t.Fatalf("GOMEMLIMIT %d (baseline says %d), want limit − code − slack = %d", got, h.Baseline().GoMemoryLimit, want)
	}
	// Code grows by 64 MiB: the Go runtime gets 64 MiB less.
	hm.set(HostMemory{Code: 164 << 20})
	h.Refresh()
	if got, want := debug.SetMemoryLimit(-1), int64(limit-164<<20)-slack; got != want {
		t.Fatalf("after more code: GOMEMLIMIT %d, want %d", got, want)
	}
	// Less than a MiB of change is not worth a call.
	hm.set(HostMemory{Code: 164<<20 + 100<<10})
	h.Refresh()
	if got, want := debug.SetMemoryLimit(-1), int64(limit-164<<20)-slack; got != want {
		t.Fatalf("after 100 KiB more: GOMEMLIMIT %d, want unchanged %d", got, want)
	}
	// A baseline over the limit: GOMEMLIMIT stops at its floor.
	hm.set(HostMemory{Code: 2 * limit})
	h.Refresh()
	if got, want := debug.SetMemoryLimit(-1), int64(goLimitFloor*limit); got != want {
		t.Fatalf("baseline over the limit: GOMEMLIMIT %d, want the floor %d", got, want)
	}
	h.ManageGoMemoryLimit(false)
	debug.SetMemoryLimit(math.MaxInt64)
	hm.set(HostMemory{Code: 1 << 20})
	h.Refresh()
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 || h.Baseline().GoMemoryLimit != 0 {
		t.Fatalf("after ManageGoMemoryLimit(false): GOMEMLIMIT %d", got)
	}

	// A limit taken from GOMEMLIMIT itself is never managed.
	debug.SetMemoryLimit(limit)
	self := newHeapSource(0, 0.9, 0, 0, nil)
	self.SetHostMemory(hm.read)
	self.ManageGoMemoryLimit(true)
	if got := debug.SetMemoryLimit(-1); got != limit {
		t.Fatalf("GOMEMLIMIT-derived limit managed: %d", got)
	}
}

// TestGovernorBaseline: the Governor wires HostMemory and
// ManageGoMemoryLimit into its heap source; fixed memory does not latch
// the gate, and the latch opens again once traffic's memory is gone.
func TestGovernorBaseline(t *testing.T) {
	setMemoryLimit(t, math.MaxInt64)
	runtime.GC()
	goUsed := newHeapSource(0, 0.9, 0, 0, nil).UsedBytes()
	limit := goUsed + 512<<20
	var hm hostMem
	hm.set(HostMemory{Code: 200 << 20, Pools: 100 << 20})
	gov, err := New(Config{MemoryLimit: 1 << 30, HeapLimit: limit, HeapRefresh: 5 * time.Millisecond, HostMemory: hm.read, ManageGoMemoryLimit: true})
	if err != nil {
		t.Fatal(err)
	}
	// Without the baseline the go_heap level would be about 0.6.
	if gov.Gate().Evaluate() != Yes || gov.Pressure().Latched() {
		t.Fatalf("fixed memory latched the gate: %+v", gov.Snapshot())
	}
	b := gov.MeasureBaseline()
	if b.Code != 200<<20 || b.Pools != 100<<20 || b.MeasuredAt.IsZero() || gov.Baseline().Total != b.Total {
		t.Fatalf("baseline %+v, Baseline() %+v", b, gov.Baseline())
	}
	if b.GoMemoryLimit <= 0 || b.GoMemoryLimit > limit-200<<20 {
		t.Fatalf("GOMEMLIMIT %d, want at most the limit less the code", b.GoMemoryLimit)
	}
	// Traffic holds 90 % of the room: the latch closes...
	room := limit - b.Total
	hm.set(HostMemory{Code: 200 << 20, Pools: 100 << 20, Guests: 100<<20 + room*9/10, GuestsOffHeap: true})
	deadline := time.Now().Add(5 * time.Second)
	for !gov.Pressure().Latched() {
		if time.Now().After(deadline) {
			t.Fatalf("traffic at 90%% of the room did not latch: %+v", gov.Snapshot())
		}
		time.Sleep(5 * time.Millisecond)
	}
	// ...and opens again within a refresh period of it being gone.
	hm.set(HostMemory{Code: 200 << 20, Pools: 100 << 20, Guests: 10 << 20, GuestsOffHeap: true})
	gone := time.Now()
	for gov.Pressure().Latched() {
		if time.Since(gone) > 5*time.Second {
			t.Fatalf("latch still closed 5 s after traffic's memory was gone: %+v", gov.Snapshot())
		}
		time.Sleep(5 * time.Millisecond)
	}
}
