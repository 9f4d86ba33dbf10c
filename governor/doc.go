// Package governor keeps sluice alive under load: it accounts the bytes in
// flight, turns memory and downstream signals into one pressure level, and
// from that level both brakes the front door and sizes the work the engine
// takes in one go.
//
// # Central types
//
//   - MemoryGuard: an atomic counter of in-flight bytes against a limit.
//     Every byte the engine holds is leased (MemoryGuard.Lease) and the
//     *Lease is released on every exit path; Release is idempotent and a nil
//     *Lease is valid. The guard never blocks: it only counts.
//   - Source: one pressure signal with a Level in [0, 1] and a Hard flag.
//     The guard is one ("memory_guard"); NewHeapSource reads the process's
//     memory (the live Go heap and the runtime, plus memory outside the Go
//     runtime: NewHeapSourceExtra, Config.ExtraMemory, and a WASM host's
//     compiled code through Config.HostMemory) against an explicit limit,
//     GOMEMLIMIT or the cgroup limit ("go_heap");
//     a Gauge carries signals the gateway computes (queue fill, sink down).
//   - Baseline: the memory that is fixed once the process runs (the
//     runtime and everything loaded, measured by MeasureBaseline with no
//     traffic; compiled code; instance pools at their reserved size). It is
//     not traffic pressure: the heap source's level is
//     (used − baseline) / (limit − baseline). Baseline.Check refuses a
//     baseline that leaves less than DefaultMinTrafficShare of the limit,
//     and with Config.ManageGoMemoryLimit the source keeps GOMEMLIMIT at
//     the limit less the memory outside the Go runtime, so the GC keeps the
//     whole process under the limit.
//   - UnifiedPressure: the max of its sources with a hysteresis latch
//     (Hysteresis: closes above PauseAbove, opens below ResumeBelow; a HARD
//     source closes it at once and keeps it closed).
//   - InboundGate: Evaluate answers Yes or Hold from the latch; the gateway
//     turns Hold into 503 + Retry-After. Actuators (e.g. pausing Kafka
//     partitions) are told each edge once, in order.
//   - ByteBudget: an AIMD controller of the bytes one receive may take.
//     The engine calls Observe(block bytes, process time, ingest interval)
//     per block and reads Bytes and RecordCap for the next receive.
//   - Governor: all of the above from one validated Config.
//
// # How pressure flows
//
//	engine leases ──► MemoryGuard ─┐
//	memory − baseline ─────────────┼─► UnifiedPressure (max + latch) ─┬─► InboundGate ─► 503 / pause
//	Gauges (queue, sink health) ───┘                                   └─► ByteBudget ─► receive size
//
// The gate and the budget read the same UnifiedPressure. When the latch
// closes the gate holds new work; when a source is HARD the budget also
// shrinks (×Decrease) at every observation, so the engine streams in smaller
// sub-blocks and the in-flight bytes fall, which opens the latch again. The
// drain (the sink) is never gated: in-flight work must always be able to
// leave.
//
// # Cost
//
// Evaluate, Level, Latched, Bytes and RecordCap are lock-free and
// allocation-free; they read every source on each call (a few atomic loads:
// the heap source caches its runtime reading and refreshes it at most once
// per refresh period, signalled by a timer rather than a clock read). Only a
// latch edge takes a mutex. Snapshot and Stats allocate or lock and are
// meant for the admin API and metrics.
package governor
