package wasmhost

// GuestMemoryBytes returns the linear memory of every live instance of
// every transform version, idle in a pool or in use, in bytes. wazero
// allocates linear memory outside the Go heap, so neither runtime/metrics
// nor GOMEMLIMIT sees it; a memory governor adds this figure to its heap
// reading.
//
// The figure is kept up to date as instances start, after each call (a
// guest's memory only grows during a call) and as instances are closed,
// discarded or recycled; reading it is one atomic load. Safe for
// concurrent use.
func (h *Host) GuestMemoryBytes() int64 { return h.guestMem.Load() }

// noteMem brings the host's total up to date with in's current memory
// size. The caller owns in (an instance is used by one call at a time).
func (h *Host) noteMem(in *instance) {
	sz := int64(in.mem.Size())
	if d := sz - in.memSize; d != 0 {
		in.memSize = sz
		h.guestMem.Add(d)
	}
}

// forgetMem takes a closed instance's memory out of the host's total.
func (h *Host) forgetMem(in *instance) {
	if in.memSize != 0 {
		h.guestMem.Add(-in.memSize)
		in.memSize = 0
	}
}
