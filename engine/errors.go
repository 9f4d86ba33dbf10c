package engine

import (
	"errors"
	"fmt"
)

var (
	// ErrSourceClosed is returned by a Receiver when its source is closed and
	// drained: nothing more will arrive. The driver then returns nil. This is
	// how a graceful drain ends (the gateway closes its HTTP receiver on
	// SIGTERM and waits for Run to return).
	ErrSourceClosed = errors.New("engine: source closed")

	// ErrDLQRejected is wrapped in a *DLQRouteError when dead letters appear
	// under DLQReject, the default policy: the run stops and the block is
	// not committed. Configure DLQRoute (with a DLQ sink) or, to accept the
	// loss, DLQDiscardWithMetric.
	ErrDLQRejected = errors.New("engine: dead letters present under DLQReject policy")

	// ErrParseBatchFailed is wrapped by the error RunParsed returns when a
	// record does not parse under ParseErrorFailBatch: the block is not
	// committed and the run stops.
	ErrParseBatchFailed = errors.New("engine: record failed to parse (ParseErrorFailBatch)")

	// ErrInvalidConfig is wrapped by Config.Validate and NewDriver errors.
	ErrInvalidConfig = errors.New("engine: invalid config")
)

// Every error below is terminal for a run loop: the block that failed is not
// committed and no later block is received, so an ordered (cumulative) commit
// never advances past records that were not delivered (the ack barrier). The
// application owns restart.

// ReceiveError is returned when a Receiver fails with anything other than
// ErrSourceClosed or the run's own cancellation.
type ReceiveError struct {
	Err error
}

func (e *ReceiveError) Error() string { return "engine: receive: " + e.Err.Error() }

// Unwrap returns the receiver's error.
func (e *ReceiveError) Unwrap() error { return e.Err }

// ProcessError is returned when the process stage fails a block. It wraps
// ErrParseBatchFailed when the pre-parse of RunParsed failed the block.
type ProcessError struct {
	// Records is the number of records handed to the process stage.
	Records int
	Err     error
}

func (e *ProcessError) Error() string {
	return fmt.Sprintf("engine: process %d records: %v", e.Records, e.Err)
}

// Unwrap returns the process stage's error.
func (e *ProcessError) Unwrap() error { return e.Err }

// SinkError is returned when a sink write failed as a whole (any error
// other than a *RecordErrors), or reported per-record failures the driver cannot use (an index out of
// range or not ascending). Nothing of the block is committed; the source
// re-delivers it after a restart, so sub-blocks sunk before the failure are
// delivered twice (at-least-once).
type SinkError struct {
	// Records is the number of records of the failed sink call.
	Records int
	// SubBlock is the 0-based index of the failed sub-block (0 when the
	// block was sunk whole).
	SubBlock int
	Err      error
}

func (e *SinkError) Error() string {
	return fmt.Sprintf("engine: sink %d records (sub-block %d): %v", e.Records, e.SubBlock, e.Err)
}

// Unwrap returns the sink's error.
func (e *SinkError) Unwrap() error { return e.Err }

// CommitError is returned when the source rejects a commit after the sink
// accepted the block.
type CommitError struct {
	// Tokens is the number of tokens of the failed commit.
	Tokens int
	Err    error
}

func (e *CommitError) Error() string {
	return fmt.Sprintf("engine: commit %d tokens: %v", e.Tokens, e.Err)
}

// Unwrap returns the receiver's commit error.
func (e *CommitError) Unwrap() error { return e.Err }

// DLQRouteError is returned when dead letters could not be routed: the DLQ
// sink failed under DLQRoute, or the policy is DLQReject (Err is then
// ErrDLQRejected). The block is not committed.
type DLQRouteError struct {
	// Entries is the number of dead letters that were not routed.
	Entries int
	// Policy is the policy in force.
	Policy DLQPolicy
	Err    error
}

func (e *DLQRouteError) Error() string {
	return fmt.Sprintf("engine: route %d dead letters (policy %s): %v", e.Entries, e.Policy, e.Err)
}

// Unwrap returns the DLQ sink's error or ErrDLQRejected.
func (e *DLQRouteError) Unwrap() error { return e.Err }

// ErrBadRecordErrors is wrapped in a *SinkError when a sink's *RecordErrors
// names a record it was not handed, or names records out of order or twice.
var ErrBadRecordErrors = errors.New("engine: sink reported invalid per-record failures")

// RecordFailure is one record a sink did not write, for a reason that
// belongs to the record or its topic.
type RecordFailure struct {
	// Index is the record's index in the slice handed to Write (for a
	// SinkFunc: in Batch.Records).
	Index int
	// Err says why; its text becomes the dead letter's Reason. For Kafka it
	// carries the broker's (or client's) error.
	Err error
}

// RecordErrors is the per-record outcome of a sink write (see RecordSink):
// the records it lists failed and every other record of the write was
// durably accepted. The model is Benthos' batch.Error (failed indexes of a
// batch) and franz-go's per-record produce promises.
//
// Failed is in ascending Index order, each index at most once; an empty
// RecordErrors means every record was accepted. A sink returns it as is:
// the driver recognises the type itself, never a wrapped one, so that a
// whole-write failure can never be mistaken for a partial one.
type RecordErrors struct {
	Failed []RecordFailure
}

// Fail adds record i with its cause; calls must come in ascending i.
func (e *RecordErrors) Fail(i int, err error) {
	e.Failed = append(e.Failed, RecordFailure{Index: i, Err: err})
}

// Len returns the number of failed records.
func (e *RecordErrors) Len() int { return len(e.Failed) }

// Error names how many records failed and the first cause.
func (e *RecordErrors) Error() string {
	switch len(e.Failed) {
	case 0:
		return "engine: no record failed"
	case 1:
		return fmt.Sprintf("engine: record %d failed: %s", e.Failed[0].Index, failureReason(e.Failed[0].Err))
	default:
		return fmt.Sprintf("engine: %d records failed; record %d: %s", len(e.Failed), e.Failed[0].Index, failureReason(e.Failed[0].Err))
	}
}

// Unwrap returns the failures' causes, so errors.Is and errors.As see
// them.
func (e *RecordErrors) Unwrap() []error {
	errs := make([]error, 0, len(e.Failed))
	for _, f := range e.Failed {
		if f.Err != nil {
			errs = append(errs, f.Err)
		}
	}
	return errs
}

// validate checks that Failed names records of a write of n records, in
// ascending order, each once.
func (e *RecordErrors) validate(n int) error {
	prev := -1
	for _, f := range e.Failed {
		if f.Index <= prev || f.Index >= n {
			return fmt.Errorf("%w: index %d after %d in a write of %d records", ErrBadRecordErrors, f.Index, prev, n)
		}
		prev = f.Index
	}
	return nil
}

// failureReason is the dead-letter reason of a record failure.
func failureReason(err error) string {
	if err == nil {
		return "rejected by the sink"
	}
	return err.Error()
}
