package governor

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// HeapSourceName is the Source name of the Go heap source.
const HeapSourceName = "go_heap"

// Runtime metrics read by the heap source.
//
// The Go part of the reading is the live heap (heapLiveMetric, the objects
// the last GC marked) plus the runtime's own memory (stacks, GC metadata,
// other runtime structures: total minus the heap's object, unused, free and
// released classes). The live figure is chosen over the heap objects
// (heapObjectsMetric, live plus garbage not yet swept) because the objects
// figure rises in a sawtooth to the GC's goal every cycle: with GOMEMLIMIT
// near the limit, as it must be for the process to stay under it, every
// cycle would read as "full" and latch the gate while the GC is simply doing
// its job. The live figure moves only at the end of a cycle; it is fresh
// exactly when it matters, because a heap growing towards GOMEMLIMIT makes
// the GC run, and in-flight bursts are counted at once by the MemoryGuard.
// An idle process whose last cycle is old is nudged (see gcNudgeAbove).
const (
	heapLiveMetric     = "/gc/heap/live:bytes"
	heapObjectsMetric  = "/memory/classes/heap/objects:bytes"
	heapUnusedMetric   = "/memory/classes/heap/unused:bytes"
	heapFreeMetric     = "/memory/classes/heap/free:bytes"
	heapReleasedMetric = "/memory/classes/heap/released:bytes"
	goTotalMetric      = "/memory/classes/total:bytes"
	memLimitMetric     = "/gc/gomemlimit:bytes" // math.MaxInt64 when GOMEMLIMIT is unset
	gcCyclesMetric     = "/gc/cycles/total:gc-cycles"
)

// Indexes of the metrics in HeapSource.samples.
const (
	sLive = iota
	sObjects
	sUnused
	sFree
	sReleased
	sTotal
	sMemLimit
	sGCCycles
	nSamples
)

// The live figure is that of the last GC, and the GC only runs when
// something allocates: after a flood, an idle process would keep reading
// high (and hold the gate shut) until the next allocation-driven cycle,
// which may never come while every request is refused. So when the
// level is at least gcNudgeAbove and no GC cycle completed for gcNudgeAfter,
// a refresh starts one runtime.GC in the background (one at a time). A busy
// process near its limit collects far more often than that, so the nudge only
// fires when the reading has gone stale.
const (
	gcNudgeAbove = 0.5
	gcNudgeAfter = time.Second
)

// Default cgroup mount points (v2 unified hierarchy, then v1 memory
// controller).
const (
	cgroupV2MemoryMax = "/sys/fs/cgroup/memory.max"
	cgroupV1Limit     = "/sys/fs/cgroup/memory/memory.limit_in_bytes"
)

// cgroupV1Unlimited is the smallest v1 value treated as "no limit": the
// kernel reports PAGE_COUNTER_MAX rounded to pages (about 2^63), so anything
// at or above 2^60 bytes cannot be a real limit.
const cgroupV1Unlimited = 1 << 60

// HeapSource reads the process's memory (the Go heap and runtime through
// runtime/metrics, plus memory outside them that the caller reports)
// against a memory limit, net of the memory baseline. It is created by
// NewHeapSource or NewHeapSourceExtra. Safe for concurrent use.
//
// # What it reads
//
// Used memory is the live Go heap, the Go runtime's own memory, the bytes
// outside the Go runtime that Config.ExtraMemory or Config.HostMemory
// report (compiled WASM code, off-heap guest memory), and the rest of the
// process measured at the last baseline (the binary's resident pages; see
// Baseline.Other).
//
// # Baseline
//
// Part of that memory is fixed once the process runs: the runtime, the
// heap structures of loaded components, compiled code, and instance pools
// at their reserved size. That part is the Baseline; it is not traffic
// pressure. The level is the traffic's share of what traffic can use:
//
//	level = (used − baseline) / (limit − baseline)
//
// and the source is HARD when that share reaches hardAt (or when the
// baseline leaves nothing). Before MeasureBaseline the baseline counts only
// what HostMemory reports as fixed.
//
// The reading is cached: Level and Hard return the cached values, and a
// reader refreshes them (one runtime/metrics.Read, a few hundred
// nanoseconds, plus HostMemory) at most once per refresh period. Staleness
// is signalled by a timer armed after each refresh, so the hot path checks
// one atomic flag rather than reading the clock, and an idle source costs
// nothing.
type HeapSource struct {
	explicit int64 // limit given to NewHeapSource, 0: none
	cgroup   int64 // cgroup limit found at construction, 0: none
	hardAt   float64
	refresh  time.Duration
	extra    func() int64      // memory outside the Go runtime, bytes; nil: none (see NewHeapSourceExtra)
	host     func() HostMemory // a host's fixed and off-heap memory; nil: none (see SetHostMemory)

	stale  atomic.Bool
	level  atomic.Uint64 // math.Float64bits
	hard   atomic.Bool
	limit  atomic.Int64 // the limit used by the last refresh, 0: none
	heap   atomic.Int64 // heap objects (live and unswept) at the last refresh
	live   atomic.Int64 // live heap at the last refresh
	outer  atomic.Int64 // bytes outside the Go runtime at the last refresh (extra + host off-heap)
	used   atomic.Int64 // the bytes compared against the limit at the last refresh
	base   atomic.Int64 // the baseline at the last refresh
	golim  atomic.Int64 // the GOMEMLIMIT this source set, 0: not managed
	manage atomic.Bool  // set GOMEMLIMIT from the limit and the memory outside the Go runtime

	mu       sync.Mutex // serialises refreshes; guards samples, timer, the GC bookkeeping and the fields below
	samples  []metrics.Sample
	timer    *time.Timer
	measured Baseline   // the last MeasureBaseline (zero before)
	hostLast HostMemory // the last HostMemory reading

	gcCycles uint64    // GC cycles at the last refresh
	gcSeen   time.Time // when gcCycles last changed
	nudging  atomic.Bool
	nudges   atomic.Uint64
}

// NewHeapSource reads the Go heap (runtime/metrics) against a limit: the explicit
// limit if > 0, else GOMEMLIMIT if set, else the cgroup memory limit.
// Name "go_heap". It caches the reading for at most refresh.
//
// GOMEMLIMIT is re-read on every refresh (it can change at run time through
// debug.SetMemoryLimit); the cgroup limit (v2 memory.max, else v1
// memory.limit_in_bytes) is read once here. With no limit known the level is
// 0 and the source is never hard. hardAt (0 selects DefaultHardAt) is the
// fraction of the limit at which the source reports HARD. refresh ≤ 0 reads
// the runtime on every call (tests only: far too slow for the hot path).
// The result's dynamic type is *HeapSource.
func NewHeapSource(limit int64, hardAt float64, refresh time.Duration) Source {
	return newHeapSource(limit, hardAt, refresh, cgroupMemoryLimit(cgroupV2MemoryMax, cgroupV1Limit), nil)
}

func newHeapSource(limit int64, hardAt float64, refresh time.Duration, cgroup int64, extra func() int64) *HeapSource {
	if hardAt <= 0 || hardAt > 1 || math.IsNaN(hardAt) {
		hardAt = DefaultHardAt
	}
	if limit < 0 {
		limit = 0
	}
	h := &HeapSource{
		explicit: limit,
		cgroup:   cgroup,
		hardAt:   hardAt,
		refresh:  refresh,
		extra:    extra,
		samples:  make([]metrics.Sample, nSamples),
	}
	for i, name := range [nSamples]string{
		sLive: heapLiveMetric, sObjects: heapObjectsMetric, sUnused: heapUnusedMetric, sFree: heapFreeMetric,
		sReleased: heapReleasedMetric, sTotal: goTotalMetric, sMemLimit: memLimitMetric, sGCCycles: gcCyclesMetric,
	} {
		h.samples[i].Name = name
	}
	h.mu.Lock()
	h.refreshLocked()
	h.mu.Unlock()
	return h
}

// Name returns "go_heap".
func (h *HeapSource) Name() string { return HeapSourceName }

// Level returns (used − baseline) / (limit − baseline) in [0, 1],
// refreshing the cached reading when it is older than the refresh period.
func (h *HeapSource) Level() float64 {
	h.maybeRefresh()
	return math.Float64frombits(h.level.Load())
}

// Hard reports whether traffic's memory reached hardAt of what traffic can
// use (or the baseline leaves nothing) at the last reading, refreshing it
// when stale.
func (h *HeapSource) Hard() bool {
	h.maybeRefresh()
	return h.hard.Load()
}

// Limit returns the limit the last reading was compared against, in bytes
// (0: no limit known).
func (h *HeapSource) Limit() int64 { return h.limit.Load() }

// HeapBytes returns the bytes of heap objects (live and not yet swept) of
// the last reading.
func (h *HeapSource) HeapBytes() int64 { return h.heap.Load() }

// LiveBytes returns the live heap (as marked by the last GC) of the last
// reading.
func (h *HeapSource) LiveBytes() int64 { return h.live.Load() }

// Refresh reads the runtime now, whatever the age of the cached reading.
func (h *HeapSource) Refresh() {
	h.mu.Lock()
	h.refreshLocked()
	h.mu.Unlock()
}

func (h *HeapSource) maybeRefresh() {
	if h.refresh > 0 && !h.stale.Load() {
		return
	}
	if h.refresh > 0 {
		// One reader refreshes; the others keep using the cached value.
		if !h.mu.TryLock() {
			return
		}
	} else {
		h.mu.Lock()
	}
	if h.refresh <= 0 || h.stale.Load() {
		h.refreshLocked()
	}
	h.mu.Unlock()
}

// GCNudges returns how many background GCs the source started because its
// reading was high and stale (see gcNudgeAbove).
func (h *HeapSource) GCNudges() uint64 { return h.nudges.Load() }

// nudgeGC starts a background runtime.GC when level is high and no cycle
// completed for gcNudgeAfter. h.mu held.
func (h *HeapSource) nudgeGC(level float64) {
	now := time.Now()
	if s := h.samples[sGCCycles]; s.Value.Kind() == metrics.KindUint64 {
		if c := s.Value.Uint64(); c != h.gcCycles || h.gcSeen.IsZero() {
			h.gcCycles, h.gcSeen = c, now
		}
	}
	if level < gcNudgeAbove || now.Sub(h.gcSeen) < gcNudgeAfter || !h.nudging.CompareAndSwap(false, true) {
		return
	}
	h.nudges.Add(1)
	go func() {
		runtime.GC()
		h.nudging.Store(false)
		h.stale.Store(true) // the next reader sees the collected heap
	}()
}

// goReading is one read of the Go runtime's memory.
type goReading struct {
	live     int64 // live heap, as of the last GC
	objects  int64 // heap objects, live and unswept
	overhead int64 // the runtime's own memory: stacks, metadata, other
	limit    int64 // GOMEMLIMIT, 0: unset
}

// readGo reads h.samples. h.mu held.
func (h *HeapSource) readGo() goReading {
	metrics.Read(h.samples)
	u := func(i int) int64 {
		if s := h.samples[i]; s.Value.Kind() == metrics.KindUint64 {
			return int64(min(s.Value.Uint64(), math.MaxInt64))
		}
		return 0
	}
	r := goReading{live: u(sLive), objects: u(sObjects)}
	total, released := u(sTotal), u(sReleased)
	r.overhead = max(total-r.objects-u(sUnused)-u(sFree)-released, 0)
	if v := u(sMemLimit); v < math.MaxInt64 {
		r.limit = v
	}
	return r
}

// refreshLocked reads the runtime and re-arms the staleness timer. h.mu held.
func (h *HeapSource) refreshLocked() {
	g := h.readGo()
	limit := h.explicit
	if limit <= 0 {
		limit = g.limit
	}
	if limit <= 0 {
		limit = h.cgroup
	}
	var extra int64
	if h.extra != nil {
		extra = max(h.extra(), 0)
	}
	hm := h.readHost()
	outer := extra + hm.offHeap()
	used := g.live + g.overhead + outer + h.measured.Other
	base := h.baselineLocked(hm).Total
	level, hard := 0.0, false
	if limit > 0 {
		room := float64(limit - base)
		traffic := float64(max(used-base, 0))
		switch {
		case room <= 0:
			level, hard = 1, true
		default:
			level = clamp01(traffic / room)
			hard = traffic >= h.hardAt*room
		}
	}
	h.nudgeGC(level)
	h.heap.Store(g.objects)
	h.live.Store(g.live)
	h.outer.Store(outer)
	h.used.Store(used)
	h.base.Store(base)
	h.limit.Store(limit)
	h.level.Store(math.Float64bits(level))
	h.hard.Store(hard)
	h.manageGoLimitLocked(limit, outer)
	if h.refresh <= 0 {
		return
	}
	h.stale.Store(false)
	if h.timer == nil {
		h.timer = time.AfterFunc(h.refresh, func() { h.stale.Store(true) })
	} else {
		h.timer.Reset(h.refresh)
	}
}

// cgroupMemoryLimit returns the memory limit from the cgroup v2 file, else
// the v1 file, or 0 when neither holds a limit.
func cgroupMemoryLimit(v2, v1 string) int64 {
	if b, err := os.ReadFile(filepath.Clean(v2)); err == nil {
		return parseCgroupLimit(b, 0)
	}
	if b, err := os.ReadFile(filepath.Clean(v1)); err == nil {
		return parseCgroupLimit(b, cgroupV1Unlimited)
	}
	return 0
}

// parseCgroupLimit parses a cgroup limit file's contents: "max" (v2) or a
// value at or above unlimited (v1, when unlimited > 0) mean no limit (0).
func parseCgroupLimit(b []byte, unlimited int64) int64 {
	s := string(bytes.TrimSpace(b))
	if s == "" || s == "max" {
		return 0
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0
	}
	if unlimited > 0 && n >= unlimited {
		return 0
	}
	return n
}
