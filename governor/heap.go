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
// The level's numerator is heapObjectsMetric, the bytes occupied by heap
// objects, live or not yet swept. It is chosen over /gc/heap/live:bytes
// because the live figure only moves at the end of each GC cycle: between
// cycles it is stale by up to a whole GOGC cycle of allocation, so a burst of
// ingest would not raise the level until after the next GC, which is exactly
// when it matters. The objects figure follows allocation as it happens, and it
// is what the GC's own memory-limit pacing works against. Its cost is that it
// includes garbage not yet collected, so the level rises and falls in a
// sawtooth with each cycle; the hysteresis band absorbs that.
const (
	heapObjectsMetric = "/memory/classes/heap/objects:bytes"
	memLimitMetric    = "/gc/gomemlimit:bytes" // math.MaxInt64 when GOMEMLIMIT is unset
	gcCyclesMetric    = "/gc/cycles/total:gc-cycles"
)

// The objects figure counts garbage until the next GC, and the GC only runs
// when something allocates: after a flood, an idle process would keep
// reading high (and hold the gate shut) until the next allocation-driven
// cycle, which may never come while every request is refused. So when the
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

// HeapSource reads the Go heap (runtime/metrics) against a memory limit. It
// is created by NewHeapSource. Safe for concurrent use.
//
// The reading is cached: Level and Hard return the cached values, and a
// reader refreshes them (one runtime/metrics.Read, a few hundred
// nanoseconds) at most once per refresh period. Staleness is signalled by a
// timer armed after each refresh, so the hot path checks one atomic flag
// rather than reading the clock, and an idle source costs nothing.
type HeapSource struct {
	explicit int64 // limit given to NewHeapSource, 0: none
	cgroup   int64 // cgroup limit found at construction, 0: none
	hardAt   float64
	refresh  time.Duration
	extra    func() int64 // memory outside the Go heap, bytes; nil: none (see NewHeapSourceExtra)

	stale atomic.Bool
	level atomic.Uint64 // math.Float64bits
	hard  atomic.Bool
	limit atomic.Int64 // the limit used by the last refresh, 0: none
	heap  atomic.Int64 // the heap bytes read by the last refresh
	outer atomic.Int64 // the extra bytes read by the last refresh

	mu      sync.Mutex // serialises refreshes; guards samples, timer and the GC bookkeeping
	samples []metrics.Sample
	timer   *time.Timer

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
		samples:  []metrics.Sample{{Name: heapObjectsMetric}, {Name: memLimitMetric}, {Name: gcCyclesMetric}},
	}
	h.mu.Lock()
	h.refreshLocked()
	h.mu.Unlock()
	return h
}

// Name returns "go_heap".
func (h *HeapSource) Name() string { return HeapSourceName }

// Level returns (heap + extra bytes) / limit in [0, 1], refreshing the cached reading
// when it is older than the refresh period.
func (h *HeapSource) Level() float64 {
	h.maybeRefresh()
	return math.Float64frombits(h.level.Load())
}

// Hard reports whether heap + extra bytes reached hardAt·limit at the last
// reading (refreshing it when stale).
func (h *HeapSource) Hard() bool {
	h.maybeRefresh()
	return h.hard.Load()
}

// Limit returns the limit the last reading was compared against, in bytes
// (0: no limit known).
func (h *HeapSource) Limit() int64 { return h.limit.Load() }

// HeapBytes returns the heap bytes of the last reading.
func (h *HeapSource) HeapBytes() int64 { return h.heap.Load() }

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
	if s := h.samples[2]; s.Value.Kind() == metrics.KindUint64 {
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

// refreshLocked reads the runtime and re-arms the staleness timer. h.mu held.
func (h *HeapSource) refreshLocked() {
	metrics.Read(h.samples)
	var heap int64
	if s := h.samples[0]; s.Value.Kind() == metrics.KindUint64 {
		heap = int64(min(s.Value.Uint64(), math.MaxInt64))
	}
	limit := h.explicit
	if limit <= 0 {
		if s := h.samples[1]; s.Value.Kind() == metrics.KindUint64 {
			if v := s.Value.Uint64(); v < math.MaxInt64 {
				limit = int64(v)
			}
		}
	}
	if limit <= 0 {
		limit = h.cgroup
	}
	var extra int64
	if h.extra != nil {
		extra = max(h.extra(), 0)
	}
	used := float64(heap) + float64(extra)
	level, hard := 0.0, false
	if limit > 0 {
		level = clamp01(used / float64(limit))
		hard = used >= h.hardAt*float64(limit)
	}
	h.nudgeGC(level)
	h.heap.Store(heap)
	h.outer.Store(extra)
	h.limit.Store(limit)
	h.level.Store(math.Float64bits(level))
	h.hard.Store(hard)
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
