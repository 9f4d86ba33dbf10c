package governor

import "time"

// NewHeapSourceExtra is NewHeapSource counting, on top of the Go heap,
// memory the process holds outside it: extra returns those bytes (for the
// gateway, the WASM guests' linear memory, which wazero allocates outside
// the Go heap, so neither runtime/metrics nor GOMEMLIMIT sees it). The
// level becomes (heap + extra) / limit and the source is HARD at
// hardAt·limit, with the same caching: extra is called once per refresh,
// never on the hot path, so it must be cheap and safe for concurrent use.
// A negative result counts as 0; a nil extra is NewHeapSource. Name
// "go_heap".
func NewHeapSourceExtra(limit int64, hardAt float64, refresh time.Duration, extra func() int64) *HeapSource {
	return newHeapSource(limit, hardAt, refresh, cgroupMemoryLimit(cgroupV2MemoryMax, cgroupV1Limit), extra)
}

// ExtraBytes returns the bytes outside the Go heap counted by the last
// reading (0 without an extra function).
func (h *HeapSource) ExtraBytes() int64 { return h.outer.Load() }

// UsedBytes returns the bytes compared against the limit by the last
// reading: HeapBytes plus ExtraBytes.
func (h *HeapSource) UsedBytes() int64 { return h.heap.Load() + h.outer.Load() }
