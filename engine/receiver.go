package engine

import "context"

// RecvLimits bounds one receive by record count and by payload bytes.
type RecvLimits struct {
	// MaxRecords caps the number of records (≥ 1).
	MaxRecords int
	// MaxBytes caps the sum of Record.Size; ≤ 0 means no byte cap. A receive
	// always returns at least one record when one is available, even when that
	// record alone is larger than MaxBytes (the floor of one record), so a
	// large record never stalls the loop.
	MaxBytes int64
}

// Receiver is a source of batches: the contract between a transport (the HTTP
// front door, a Kafka consumer, the in-memory transport) and the driver.
//
// Recv and RecvLimited are called from one goroutine (the driver's); Commit
// is called after the sink accepted a batch, from the same goroutine — or,
// when RunGoverned overlaps its stages (Config.Depth > 1), from the run's
// sink goroutine, concurrently with Recv. Commits are always made one at a
// time and in receive order. The returned Batch and its records belong to
// the caller.
type Receiver[T any] interface {
	// Recv returns up to max records. It blocks until at least one record is
	// available or ctx is done; it may return an empty batch when it gave up
	// waiting (a poll timeout), which the driver treats as an idle tick.
	// An error is fatal for the run loop.
	Recv(ctx context.Context, max int) (Batch[T], error)
	// RecvLimited is Recv bounded by both a record and a byte cap.
	RecvLimited(ctx context.Context, lim RecvLimits) (Batch[T], error)
	// Commit acknowledges tokens to the source. Commits are ordered: a source
	// may treat them as cumulative (commit up to offset N). An error is
	// terminal for the run loop (the ack barrier).
	Commit(ctx context.Context, tokens []T) error
}

// Processor transforms records: the process stage of the driver. The WASM
// pipeline implements it.
//
// Process may reuse recs' backing array for its output and may fan out or in.
// Dead letters it produces are appended to dlq and returned. An error fails
// the whole batch (nothing of it is committed) and is terminal for the run
// loop. Process is called from one goroutine at a time per run, except when
// RunGoverned overlaps its stages (Config.Depth > 1): then up to Depth calls
// of one run are concurrent, over different records. One Processor may
// serve several drivers concurrently.
type Processor interface {
	Process(ctx context.Context, recs []Record, dlq []DLQEntry) ([]Record, []DLQEntry, error)
}

// ProcessorFunc adapts a function to Processor.
type ProcessorFunc func(ctx context.Context, recs []Record, dlq []DLQEntry) ([]Record, []DLQEntry, error)

// Process calls f.
func (f ProcessorFunc) Process(ctx context.Context, recs []Record, dlq []DLQEntry) ([]Record, []DLQEntry, error) {
	return f(ctx, recs, dlq)
}

// RecordSink writes records downstream (Kafka, stdout, discard).
//
// Write reports one of three outcomes:
//
//   - nil: every record is durably accepted (for Kafka: acks=all).
//   - a *RecordErrors, returned as is (not wrapped): the records it lists
//     failed for reasons that belong to them or to their topic (an invalid
//     or unknown topic, a record too large for the broker, a topic the
//     client may not write, an invalid record), and every record it does
//     not list is durably accepted. The driver turns each listed record
//     into a dead letter (stage StageSink, the failure as the reason, the
//     record as it was handed to Write), routes them through its one
//     DLQPolicy before the commit, and goes on.
//   - any other error: the write failed as a whole (brokers unreachable, a
//     timeout, not enough replicas, the client's own authentication);
//     nothing of it may be taken as written. It is terminal for the run
//     loop: the block is not committed (the ack barrier).
//
// A sink that cannot tell which records failed must return a whole-write
// error: a record that is neither listed nor accepted would be lost.
//
// The records and their bytes belong to the caller again once Write
// returns, and so does a returned *RecordErrors (the sink keeps no
// reference to it). Write must not modify the records.
type RecordSink interface {
	Write(ctx context.Context, recs []Record) error
}

// DLQSink writes dead letters (the DLQ topic). WriteDLQ returns nil only
// when every entry is durably accepted. Any error, a *RecordErrors
// included, is terminal for the run loop: a dead letter that could not be
// written stops the block before its commit, so it is never lost. The
// entries belong to the caller again once WriteDLQ returns.
type DLQSink interface {
	WriteDLQ(ctx context.Context, entries []DLQEntry) error
}
