// Package wasmhost runs sluice's WebAssembly transforms: the process stage
// between the receivers and the Kafka sink.
//
// The central type is Host: one wazero runtime (the optimizing compiler, a
// per-instance memory limit, a compilation cache on disk under the data
// dir), the transform registry, per-version instance pools and the named
// pipelines. Every module is rewritten before it is compiled so that each
// of its loops checks a flag the host sets to stop a call (interrupt.go,
// internal/wasmloop): calls stop at their deadline, when their context is
// done and when the host closes.
//
// # Data flow
//
// The engine's driver calls Pipeline.Process with a batch of records. For
// each transform of the pipeline's current chain the host takes an idle
// instance from that transform's pool and calls its sluice_process export
// once with the record count. A batch big enough for its chain's measured
// cost is cut into up to min(PoolSize, GOMAXPROCS) contiguous shards that
// run through the whole chain in parallel, each on its own instances, and
// are joined back in input order: guests are single-threaded, so this is
// how one batch uses more than one core. The records never enter the guest wholesale:
// the guest pulls what it needs through the sluice_v1 host functions
// (record_count, get_field by dotted path, get_string, record_value,
// record_topic, record_key, record_header) into its own buffers, and pushes
// decisions back (drop, set_field, set_string, delete_field, set_value,
// set_topic, set_key, set_header, dead_letter, emit, and hash_field, which
// replaces a string with its hex SHA-256 on the host). The per-batch
// functions serve a whole batch per call: fetch_field reads one path of
// every record, record_kinds tells every record's kind, apply hands over a
// buffer of decisions.
//
// Fields are found through a structural index per record (jsonindex.go):
// the spans of the members scanned so far, built on the first access and
// kept, with the record's doc slot, along the whole chain (chain.go), so a
// field read by one transform is found by the next without scanning. An
// edit splices the record's bytes (into a copy carved from the chain's slab
// the first time a call edits the record; the chunks of copies a later
// transform copied again are reused at once, the output's after the
// driver committed it: engine.ReleaseSet) and shifts the index. When the
// call returns the host assembles the output: a record nobody edited is the
// very Record that came in (its bytes are neither parsed nor copied); an
// edited record carries its spliced bytes; emitted records follow their
// parent and inherit its Tag.
// The ABI, for guests in any language, is guest-sdk/ABI.md; its names and
// status codes are constants in abi.go.
//
// # Failure
//
// A guest that traps, runs past its deadline (CallDeadline +
// CallDeadlinePerRecord × records; the host's loop checks interrupt even an
// infinite loop) or runs out of its memory limit fails that call only. The instance
// is discarded and replaced on demand. With OnTrap=TrapDLQ (the default)
// the call's records go to the DLQ with a reason such as
// "trap: redact: exit code 2: panic: boom", "deadline: redact exceeded
// 70ms" or "oom: redact: out of memory (limit 64 MiB)". To keep the DLQ
// precise the host then isolates the culprits: it retries the call's records
// one by one on a fresh instance and dead-letters only those that trap. This
// costs one instantiation (4–6 ms for a Go guest) per trapping record, so it
// stops after Config.IsolateTraps traps in a batch (default 3) and
// dead-letters the remaining records with the batch's reason. With
// OnTrap=TrapFailBatch, Process returns a *TrapError instead and nothing of
// the batch is committed. A guest whose sluice_process returns non-zero
// aborts the call the same way, but its instance is kept.
//
// # Versions and swaps
//
// Add stores a module by name and content digest (<DataDir>/transforms);
// new bytes under an existing name become a new version, the previous ones
// are kept (Config.KeepVersions) for Rollback. A Pipeline holds its chain
// in an atomic pointer: SetPipeline, Add and Rollback swap it, and a batch
// already in Process finishes on the chain it started with. Transforms and
// pipelines survive restart when DataDir is set.
//
// # Sandbox
//
// A guest may import only sluice_v1 and the WASI functions a reactor needs;
// it gets no preopened directories, no arguments, an environment of only
// GOGC and GOMEMLIMIT (a Go guest's garbage collector settings), a fake
// clock, real randomness, and its stdout and stderr go to the log,
// rate-limited. Metrics go
// out through Hooks; this package imports no metrics library.
package wasmhost
