// Package sluice is the Go SDK for sluice transforms: WebAssembly guests that
// the sluice gateway runs over every batch of events before writing them to
// Kafka.
//
// A transform is an ordinary Go main package built as a WASI reactor:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o filter.wasm .
//
// It registers a handler in init (or main) and the SDK does the rest: it
// exports the ABI (sluice_abi_version, sluice_process), calls the handler
// once per record, and yields to the Go scheduler at the end of every call so
// the guest's garbage collector keeps up.
//
//	func init() {
//		sluice.HandleRecord(func(rec *sluice.Record) error {
//			if rec.Get("event").Equal("heartbeat") {
//				rec.Drop()
//			}
//			return nil
//		})
//	}
//
//	func main() {}
//
// The host keeps the records. A handler pulls only what it needs (a field by
// dotted path, parsed on the host — Get for raw JSON, GetString for a
// decoded string —; the raw bytes; topic, key, headers) and
// pushes decisions (drop, set or delete a field, route, set the key or a
// header, dead-letter with a reason, emit a new record). A record nobody
// edits leaves the host unchanged, byte for byte.
//
// Values returned by Get, Raw, Key and Header are valid until the handler
// returns: they live in a per-batch arena the SDK reuses. Copy them to keep
// them (GetString and Topic return copies).
//
// A record handler costs few host calls per record: the SDK uses the
// ABI's per-batch functions. Paths a handler reads in at least an eighth of
// a batch's records are fetched for the whole batch before the handler runs
// (learned from the previous batch: the first batch of an instance makes a
// host call per read), and decisions whose outcome is certain (drop,
// dead-letter, route, key, header, a top-level set on an object, any delete
// on a JSON record, a hash whose field was fetched) are buffered and handed over in one call when the
// batch ends. Everything else is a host call made after the buffered
// decisions, so the host always sees them in the handler's order, and
// reads always see the record's edits. Batch handlers (HandleBatch) and
// emitted records make one host call per operation.
//
// Guest code is slower per step than the host's (Go's wasm code checks its
// stack on every call and the host checks an interrupt flag at every loop
// header, which a Go function call, a loop iteration or a jump over a call
// crosses). Keep handlers lean and
// let the host work: GetText and GetString decode on the host,
// Value.Equal compares 8 bytes per step, RouteTo joins a topic without a
// string concatenation in the guest, HashSHA256 hashes on the host; look
// codes up in an array rather than a map. Buffers that cross the host
// boundary are grow-only and reused, so a steady stream of records
// allocates nothing at the boundary.
//
// Returning an error from a record handler dead-letters that record with the
// error's text. A panic traps the guest: the host reruns the call's records
// one by one and dead-letters those that trap (after three traps, the rest
// of the call; or it fails the batch, by its configuration), and replaces
// the instance.
//
// The contract behind this package, for other languages, is guest-sdk/ABI.md.
package sluice
