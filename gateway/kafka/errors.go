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

// Reasons of the per-record failures Write reports: the text of every
// RecordError starts with one of them, so that a dead letter's reason can
// be counted by class.
const (
	// ReasonInvalidTopic: the record's topic breaks Kafka's naming rules
	// (1–249 characters of [a-zA-Z0-9._-], not "." or ".."), found before
	// producing, or the broker called it invalid.
	ReasonInvalidTopic = "invalid topic"
	// ReasonUnknownTopic: the cluster has no such topic (and does not
	// create topics on produce).
	ReasonUnknownTopic = "unknown topic"
	// ReasonRecordTooLarge: the record alone is larger than the topic or
	// broker accepts (max.message.bytes), or than Config.BatchMaxBytes.
	ReasonRecordTooLarge = "record too large"
	// ReasonTopicNotAuthorized: the client may not write (or describe) the
	// topic.
	ReasonTopicNotAuthorized = "topic not authorized"
	// ReasonInvalidRecord: the broker refused the record alone as invalid
	// (INVALID_RECORD, CORRUPT_MESSAGE, INVALID_TIMESTAMP; for example no
	// key on a compacted topic).
	ReasonInvalidRecord = "invalid record"
)

// RecordError is why Write did not write one record, for a reason that
// belongs to the record or its topic. Write reports these in an
// *engine.RecordErrors; the engine dead-letters the records with
// Error() as the reason.
type RecordError struct {
	// Reason is one of the Reason constants.
	Reason string
	// Topic is the topic the record was (to be) produced to.
	Topic string
	// Cached is true when no produce was attempted because an earlier write
	// found the topic missing or not authorised (within
	// Config.TopicErrorTTL).
	Cached bool
	// Err is the broker's or the client's error (a kerr error, or what the
	// topic-name check found).
	Err error
}

// maxTopicInReason caps the topic name quoted in a RecordError: the name
// may be anything a transform set, and the record keeps the whole of it.
const maxTopicInReason = 80

// Error reads `unknown topic "events.x": UNKNOWN_TOPIC_OR_PARTITION: ...`.
func (e *RecordError) Error() string {
	t := e.Topic
	if len(t) > maxTopicInReason {
		t = fmt.Sprintf("%s…(%d bytes)", t[:maxTopicInReason], len(e.Topic))
	}
	msg := fmt.Sprintf("%s %q: %v", e.Reason, t, e.Err)
	if e.Cached {
		msg += " (cached)"
	}
	return msg
}

// Unwrap returns the broker's or the client's error.
func (e *RecordError) Unwrap() error { return e.Err }
