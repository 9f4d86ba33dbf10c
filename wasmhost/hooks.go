package wasmhost

import "time"

// CallStats describes one guest call (one transform over one batch).
type CallStats struct {
	RecordsIn    int           // records passed to the guest
	RecordsOut   int           // records written out (kept, edited, emitted)
	Dropped      int           // records the guest dropped
	DeadLettered int           // records sent to the DLQ (by the guest or by a trap)
	Emitted      int           // records the guest emitted (fan-out)
	Duration     time.Duration // wall time of the call, including host functions
}

// Hooks receives metrics events per transform name. Every field is optional.
// Hooks are called synchronously on the processing goroutine, possibly from
// several goroutines at once: keep them cheap (a counter increment) and safe
// for concurrent use. wasmhost itself imports no metrics library; the
// gateway maps these onto its metrics.
type Hooks struct {
	// OnCall is called after every guest call that returned (including
	// calls whose records were dead-lettered by a trap). A sharded batch
	// (see Pipeline.Process) makes one call per shard per transform: the
	// counts of a batch are the sum over its calls, each record counted
	// once.
	OnCall func(transform string, s CallStats)
	// OnTrap is called for every failed call: kind is TrapPanic,
	// TrapDeadline, TrapOOM or TrapAbort.
	OnTrap func(transform string, kind TrapKind)
	// OnRecycle is called when an instance is discarded: reason is "trap",
	// "deadline", "oom", "memory" (grew past RecycleAbove), "canceled" or
	// "idle" (closed by the pool after Config.IdleTimeout unused).
	OnRecycle func(transform string, reason string)
	// OnInstantiate is called after a new instance started, with the time
	// it took.
	OnInstantiate func(transform string, d time.Duration)
}

func (h *Hooks) call(name string, s CallStats) {
	if h.OnCall != nil {
		h.OnCall(name, s)
	}
}

func (h *Hooks) trap(name string, k TrapKind) {
	if h.OnTrap != nil {
		h.OnTrap(name, k)
	}
}

func (h *Hooks) recycle(name, reason string) {
	if h.OnRecycle != nil {
		h.OnRecycle(name, reason)
	}
}

func (h *Hooks) instantiate(name string, d time.Duration) {
	if h.OnInstantiate != nil {
		h.OnInstantiate(name, d)
	}
}
