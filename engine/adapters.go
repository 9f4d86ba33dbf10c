package engine

import "context"

// ProcessFunc is the process stage of a run loop: it receives a block and
// returns the batch to sink. It may fan records out or in and may add dead
// letters to the batch's DLQ. The driver restores the block's input Tokens
// on the returned batch (the commit is always exactly the input tokens), so
// ProcessFunc need not, and cannot, change them. An error fails the block
// (*ProcessError, terminal). Called from the loop goroutine only, except
// under RunGoverned with Config.Depth > 1, where up to Depth calls run
// concurrently.
type ProcessFunc[T any] func(ctx context.Context, b Batch[T]) (Batch[T], error)

// SinkFunc writes a processed batch downstream, with RecordSink.Write's
// outcomes: nil when every record is durably accepted; a *RecordErrors
// (returned as is) listing records of b.Records that failed for reasons of
// their own, every other record being accepted — the driver dead-letters
// the listed ones and goes on; any other error is terminal (*SinkError).
// The batch and its records belong to the driver again when it returns;
// the driver, not the sink, commits the block's tokens. A run calls it one
// batch at a time, in receive order, also with Config.Depth > 1.
type SinkFunc[T any] func(ctx context.Context, b *Batch[T]) error

// Process adapts a Processor (the WASM pipeline) to a ProcessFunc: records
// and dead letters go through p, tokens are kept. p's ctx carries a
// ReleaseSet (ReleasesFrom): what p registers there becomes the batch's
// Release; when p fails it is dropped.
func Process[T any](p Processor) ProcessFunc[T] {
	return func(ctx context.Context, b Batch[T]) (Batch[T], error) {
		rs := &ReleaseSet{fns: b.Release}
		recs, dlq, err := p.Process(context.WithValue(ctx, releaseKey{}, rs), b.Records, b.DLQ)
		if err != nil {
			return b, err
		}
		b.Records, b.DLQ, b.Release = recs, dlq, rs.take()
		return b, nil
	}
}

// Sink adapts a RecordSink (Kafka) to a SinkFunc: it writes the batch's
// records, returns Write's outcome unchanged (a *RecordErrors included) and
// leaves tokens to the driver.
func Sink[T any](s RecordSink) SinkFunc[T] {
	return func(ctx context.Context, b *Batch[T]) error {
		return s.Write(ctx, b.Records)
	}
}

// PassThrough is a ProcessFunc that returns the block unchanged.
func PassThrough[T any](_ context.Context, b Batch[T]) (Batch[T], error) { return b, nil }
