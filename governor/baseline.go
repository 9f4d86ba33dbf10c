package governor

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"time"
)

// DefaultMinTrafficShare is the share of the memory limit that must be left
// to traffic once the baseline is counted (see Baseline.Check).
const DefaultMinTrafficShare = 0.25

// HostMemory is what a component that holds memory of its own (the WASM
// host) reports to the heap source: which of its memory is fixed and where
// it lives. All sizes are bytes.
type HostMemory struct {
	// Code is fixed memory outside the Go runtime (compiled machine code).
	// It is added to the reading and counted in the baseline.
	Code int64
	// Pools is the memory of instance pools at their reserved size. It is
	// counted in the baseline, in place of the memory the instances hold
	// now (Guests): pools filling up to their reserved size is not traffic
	// pressure; instances growing beyond it is.
	Pools int64
	// Guests is the memory the live instances hold now.
	Guests int64
	// GuestsOffHeap reports whether Guests lies outside the Go runtime
	// (then it is added to the reading) rather than in the Go heap (where
	// the live heap already counts it).
	GuestsOffHeap bool
}

// offHeap returns the reported bytes outside the Go runtime.
func (m HostMemory) offHeap() int64 {
	n := max(m.Code, 0)
	if m.GuestsOffHeap {
		n += max(m.Guests, 0)
	}
	return n
}

// Baseline is the memory that is fixed once the process runs, and what it
// leaves to traffic. All sizes are bytes.
type Baseline struct {
	// Limit is the memory limit the baseline is part of (0: none known).
	Limit int64
	// Runtime is the Go runtime and heap with no traffic (measured by
	// MeasureBaseline after a GC): the runtime's own memory and the live
	// heap of everything loaded (listeners, clients, compiled modules'
	// structures), less the live instances' memory, which Pools counts.
	Runtime int64
	// Other is the process's resident file-backed memory: the pages of the
	// binary and of shared libraries, measured by MeasureBaseline (RssFile
	// of /proc/self/status; 0 where it cannot be read).
	Other int64
	// Code is the host's compiled code (HostMemory.Code), as of the last
	// reading.
	Code int64
	// Pools is the host's instance pools at their reserved size
	// (HostMemory.Pools), as of the last reading.
	Pools int64
	// Total is Runtime + Other + Code + Pools.
	Total int64
	// MeasuredAt is when MeasureBaseline ran (zero before: Runtime and
	// Other are then 0).
	MeasuredAt time.Time
	// GoMemoryLimit is the GOMEMLIMIT the heap source set (0: not managed;
	// see HeapSource.ManageGoMemoryLimit).
	GoMemoryLimit int64
}

// Traffic returns what the baseline leaves to traffic: Limit − Total, at
// least 0 (0 too when no limit is known).
func (b Baseline) Traffic() int64 { return max(b.Limit-b.Total, 0) }

// TrafficShare returns Traffic as a share of Limit (0 without a limit).
func (b Baseline) TrafficShare() float64 {
	if b.Limit <= 0 {
		return 0
	}
	return float64(b.Traffic()) / float64(b.Limit)
}

// MinLimit returns the smallest limit that leaves minShare of it to
// traffic with this baseline, rounded up to a whole MiB.
func (b Baseline) MinLimit(minShare float64) int64 {
	if !(minShare > 0 && minShare < 1) {
		minShare = DefaultMinTrafficShare
	}
	n := int64(math.Ceil(float64(b.Total) / (1 - minShare)))
	return (n + 1<<20 - 1) &^ (1<<20 - 1)
}

// Check returns a *BaselineError when the baseline leaves less than
// minShare of the limit to traffic (minShare outside (0, 1) selects
// DefaultMinTrafficShare), nil otherwise or when no limit is known.
func (b Baseline) Check(minShare float64) error {
	if !(minShare > 0 && minShare < 1) {
		minShare = DefaultMinTrafficShare
	}
	if b.Limit <= 0 || b.TrafficShare() >= minShare {
		return nil
	}
	return &BaselineError{Baseline: b, MinShare: minShare}
}

// BaselineError reports a baseline that leaves too little of the memory
// limit to traffic. It unwraps to ErrBaselineTooLarge.
type BaselineError struct {
	Baseline Baseline
	MinShare float64
}

// Error names the numbers and the smallest limit that would do.
func (e *BaselineError) Error() string {
	b := e.Baseline
	return fmt.Sprintf("governor: memory baseline %s (runtime %s, binary and libraries %s, compiled code %s, instance pools %s) leaves %s (%.0f%%) of the %s memory limit to traffic; at least %.0f%% is needed: a limit of at least %s, or a smaller baseline",
		fmtMiB(b.Total), fmtMiB(b.Runtime), fmtMiB(b.Other), fmtMiB(b.Code), fmtMiB(b.Pools),
		fmtMiB(b.Traffic()), 100*b.TrafficShare(), fmtMiB(b.Limit), 100*e.MinShare, fmtMiB(b.MinLimit(e.MinShare)))
}

// Unwrap returns ErrBaselineTooLarge.
func (e *BaselineError) Unwrap() error { return ErrBaselineTooLarge }

// fmtMiB formats bytes in MiB with one decimal.
func fmtMiB(n int64) string { return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + " MiB" }

// SetHostMemory sets the function the source reads a host's memory from
// (see HostMemory), called once per refresh; it must be cheap and safe for
// concurrent use. nil removes it. The next reading uses it.
func (h *HeapSource) SetHostMemory(f func() HostMemory) {
	h.mu.Lock()
	h.host = f
	h.hostLast = HostMemory{}
	h.refreshLocked()
	h.mu.Unlock()
}

// readHost reads the host's memory. h.mu held.
func (h *HeapSource) readHost() HostMemory {
	if h.host == nil {
		return HostMemory{}
	}
	m := h.host()
	h.hostLast = m
	return m
}

// baselineLocked is the baseline with hm as the host's reading. h.mu held.
func (h *HeapSource) baselineLocked(hm HostMemory) Baseline {
	b := h.measured
	b.Code, b.Pools = max(hm.Code, 0), max(hm.Pools, 0)
	b.Total = b.Runtime + b.Other + b.Code + b.Pools
	b.Limit = h.limit.Load()
	b.GoMemoryLimit = h.golim.Load()
	return b
}

// Baseline returns the baseline of the last reading.
func (h *HeapSource) Baseline() Baseline {
	h.maybeRefresh()
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.baselineLocked(h.hostLast)
}

// MeasureBaseline measures the fixed memory now: it runs a GC, reads the
// Go runtime, the host and the process's resident file-backed memory, and keeps the
// Runtime and Other parts of the result for every later reading (Code and
// Pools follow the host's reports). Call it when the process holds no
// traffic: after start-up, before the listeners open. It takes a GC cycle
// (milliseconds).
func (h *HeapSource) MeasureBaseline() Baseline {
	runtime.GC()
	h.mu.Lock()
	defer h.mu.Unlock()
	g := h.readGo()
	hm := h.readHost()
	rt := g.live + g.overhead
	if !hm.GuestsOffHeap {
		rt -= max(hm.Guests, 0)
	}
	m := Baseline{Runtime: max(rt, 0), MeasuredAt: time.Now()}
	if n, ok := fileResidentBytes(); ok {
		m.Other = n
	}
	h.measured = m
	h.refreshLocked()
	return h.baselineLocked(hm)
}

// ManageGoMemoryLimit, when on, makes the source keep GOMEMLIMIT at the
// limit less the memory outside the Go runtime (compiled code, off-heap
// guests, Baseline.Other, and a small slack), updated whenever that memory
// moves by a MiB or more: the Go GC then keeps the whole process, not only
// the Go heap, under the limit. Off stops updating it (the caller restores
// the value it wants). Needs an explicit limit (one given to the
// constructor): a limit read from GOMEMLIMIT would chase itself down.
func (h *HeapSource) ManageGoMemoryLimit(on bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.manage.Store(on)
	if !on {
		h.golim.Store(0)
		return
	}
	h.refreshLocked()
}

// goLimitSlack is the share of the limit GOMEMLIMIT leaves unused: the
// runtime overshoots its soft limit a little, and RSS counts pages the
// runtime has freed but the kernel not yet reclaimed.
const goLimitSlack = 1.0 / 16

// goLimitFloor is the lowest share of the limit GOMEMLIMIT is set to, so
// a baseline over the limit (which Check reports) does not make the GC
// run without pause.
const goLimitFloor = 1.0 / 8

// manageGoLimitLocked sets GOMEMLIMIT for limit and the bytes outside the
// Go runtime, when managed and moved by a MiB or more. h.mu held.
func (h *HeapSource) manageGoLimitLocked(limit, outer int64) {
	if !h.manage.Load() || h.explicit <= 0 || limit <= 0 {
		return
	}
	target := limit - outer - h.measured.Other - int64(goLimitSlack*float64(limit))
	target = max(target, int64(goLimitFloor*float64(limit)))
	if cur := h.golim.Load(); cur != 0 && abs64(target-cur) < 1<<20 {
		return
	}
	debug.SetMemoryLimit(target)
	h.golim.Store(target)
}

func abs64(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}

// fileResidentBytes returns the process's resident file-backed memory
// (RssFile in /proc/self/status: the binary's and libraries' pages); false
// where it cannot be read.
func fileResidentBytes() (int64, bool) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, false
	}
	for line := range bytes.Lines(b) {
		rest, ok := bytes.CutPrefix(line, []byte("RssFile:"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest) // "17536 kB"
		if len(f) < 1 {
			return 0, false
		}
		kb, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil || kb < 0 {
			return 0, false
		}
		return kb << 10, true
	}
	return 0, false
}
