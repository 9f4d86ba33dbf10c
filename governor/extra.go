package governor

import "time"

// NewHeapSourceExtra is NewHeapSource counting, on top of the Go runtime,
// memory the process holds outside it: extra returns those bytes (memory
// mapped by other means than the Go allocator, which neither
// runtime/metrics nor GOMEMLIMIT sees). It is added to the used bytes,
// with the same caching: extra is called once per refresh, never on the
// hot path, so it must be cheap and safe for concurrent use. A negative
// result counts as 0; a nil extra is NewHeapSource. Name "go_heap".
//
// Memory of which part is fixed (a WASM host's compiled code and pools)
// is better reported through SetHostMemory, which also moves the
// baseline.
func NewHeapSourceExtra(limit int64, hardAt float64, refresh time.Duration, extra func() int64) *HeapSource {
	return newHeapSource(limit, hardAt, refresh, cgroupMemoryLimit(cgroupV2MemoryMax, cgroupV1Limit), extra)
}

// ExtraBytes returns the bytes outside the Go runtime counted by the last
// reading: the extra function's and the host's off-heap memory (0 without
// either).
func (h *HeapSource) ExtraBytes() int64 { return h.outer.Load() }

// UsedBytes returns the bytes the last reading counted as used: the live
// heap, the Go runtime's own memory, ExtraBytes and Baseline.Other. The
// level is (UsedBytes − BaselineBytes) / (Limit − BaselineBytes).
func (h *HeapSource) UsedBytes() int64 { return h.used.Load() }

// BaselineBytes returns the baseline total of the last reading (see
// Baseline).
func (h *HeapSource) BaselineBytes() int64 { return h.base.Load() }
