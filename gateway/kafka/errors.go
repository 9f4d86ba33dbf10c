package kafka

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

var (
	// ErrUnreachable is returned (wrapped in an *UnreachableError) when no
	// seed broker answered a metadata request: at NewSink, NewSource and Ping.
	ErrUnreachable = errors.New("kafka: no broker reachable")

	// ErrDeliveryTimeout is returned (wrapped in a *WriteError) when records
	// were not acknowledged within the delivery timeout.
	ErrDeliveryTimeout = errors.New("kafka: delivery timeout")

	// ErrGaveUp is returned (wrapped in a *WriteError) when a write stopped
	// waiting for the producer to answer for its records, well past the
	// delivery timeout. The producer may still hold the records' bytes.
	ErrGaveUp = errors.New("kafka: gave up waiting for the producer")

	// ErrClosed is returned by calls on a closed Sink, Source or DevBroker.
	ErrClosed = errors.New("kafka: closed")
)

// ConfigError is a configuration a constructor rejected.
type ConfigError struct {
	// Field names the offending field.
	Field string
	// Reason says what is wrong with it.
	Reason string
}

// Error implements error.
func (e *ConfigError) Error() string {
	return fmt.Sprintf("kafka: config %s: %s", e.Field, e.Reason)
}

// UnreachableError says that none of Brokers answered, and why the last one
// failed. It matches ErrUnreachable with errors.Is.
type UnreachableError struct {
	// Brokers are the seed brokers that were tried.
	Brokers []string
	// Timeout is how long they were given.
	Timeout time.Duration
	// Err is the last failure.
	Err error
}

// Error implements error; it names every broker so an operator sees at once
// which address is wrong.
func (e *UnreachableError) Error() string {
	return fmt.Sprintf("kafka: no broker reachable among [%s] within %v (check the brokers' addresses and that they are up): %v",
		strings.Join(e.Brokers, ", "), e.Timeout, e.Err)
}

// Unwrap returns ErrUnreachable and the cause.
func (e *UnreachableError) Unwrap() []error { return []error{ErrUnreachable, e.Err} }

// WriteError reports the records of one Write (or WriteDLQ) that Kafka did
// not acknowledge. The caller must treat the whole batch as not written:
// records that did get through are duplicates when the batch is retried
// (at-least-once).
type WriteError struct {
	// Failed is how many records were not acknowledged (all of them when
	// the write gave up waiting).
	Failed int
	// Total is how many records the write held.
	Total int
	// DLQ is true for WriteDLQ.
	DLQ bool
	// First is the first failure seen (a kerr error, a context error,
	// ErrDeliveryTimeout, ErrGaveUp, ...).
	First error
}

// Error implements error.
func (e *WriteError) Error() string {
	what := "records"
	if e.DLQ {
		what = "dead letters"
	}
	return fmt.Sprintf("kafka: %d of %d %s not acknowledged: %v", e.Failed, e.Total, what, e.First)
}

// Unwrap returns the first failure.
func (e *WriteError) Unwrap() error { return e.First }
