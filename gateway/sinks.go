package gateway

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/sluicehq/sluice/engine"
	"github.com/sluicehq/sluice/gateway/kafka"
)

// Sink is what the gateway writes to: records, dead letters, and a health
// probe. The Kafka sink, DiscardSink and StdoutSink implement it.
type Sink interface {
	engine.RecordSink
	engine.DLQSink
	// Ping reports whether the sink can accept writes (readiness, and the
	// supervisor's probe before it restarts the driver).
	Ping(ctx context.Context) error
}

// DiscardSink accepts and forgets everything: a sink for benchmarks. Its
// Write and WriteDLQ always return nil (every record accepted).
type DiscardSink struct{}

var _ Sink = DiscardSink{}

// Write accepts recs.
func (DiscardSink) Write(context.Context, []engine.Record) error { return nil }

// WriteDLQ accepts entries.
func (DiscardSink) WriteDLQ(context.Context, []engine.DLQEntry) error { return nil }

// Ping always succeeds.
func (DiscardSink) Ping(context.Context) error { return nil }

// StdoutSink writes each record's value as one NDJSON line, and each dead
// letter as {"dead_letter":{"reason":...,"stage":...},"value":"..."}: a sink
// for debugging. Safe for concurrent use.
//
// It follows the engine's RecordSink contract: a JSON value spread over
// several lines is written compacted onto one; a record that cannot be one
// line (a raw value with a line break, or JSON that does not compact) is
// not written and is reported in an *engine.RecordErrors, so the engine
// dead-letters it; an error writing to the output fails the write as a
// whole.
type StdoutSink struct {
	mu  sync.Mutex
	w   *bufio.Writer
	buf bytes.Buffer
}

var _ Sink = (*StdoutSink)(nil)

// NewStdoutSink returns a sink writing to w.
func NewStdoutSink(w io.Writer) *StdoutSink { return &StdoutSink{w: bufio.NewWriterSize(w, 64<<10)} }

// errMultiLine is why StdoutSink refuses a raw record with a line break.
var errMultiLine = errors.New("invalid record: the value holds a line break and the stdout sink writes one line per record")

// Write writes recs, one line each, and flushes.
func (s *StdoutSink) Write(_ context.Context, recs []engine.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var failed *engine.RecordErrors
	for i := range recs {
		v := recs[i].Value
		if bytes.ContainsAny(v, "\r\n") {
			if recs[i].Format != engine.FormatJSON {
				failed = failRecord(failed, i, errMultiLine)
				continue
			}
			s.buf.Reset()
			if err := json.Compact(&s.buf, v); err != nil {
				failed = failRecord(failed, i, fmt.Errorf("invalid record: %w", err))
				continue
			}
			v = s.buf.Bytes()
		}
		_, _ = s.w.Write(v)
		_ = s.w.WriteByte('\n')
	}
	if err := s.w.Flush(); err != nil {
		return err
	}
	if failed != nil {
		return failed
	}
	return nil
}

// failRecord adds record i to re, allocating it on first use.
func failRecord(re *engine.RecordErrors, i int, err error) *engine.RecordErrors {
	if re == nil {
		re = &engine.RecordErrors{}
	}
	re.Fail(i, err)
	return re
}

// WriteDLQ writes entries, one line each, and flushes.
func (s *StdoutSink) WriteDLQ(_ context.Context, entries []engine.DLQEntry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var buf []byte
	for i := range entries {
		e := &entries[i]
		buf = append(buf[:0], `{"dead_letter":{"reason":`...)
		buf = appendJSONString(buf, e.Reason)
		buf = append(buf, `,"stage":`...)
		buf = appendJSONString(buf, e.Stage)
		buf = append(buf, `},"value":`...)
		buf = appendJSONString(buf, string(e.Record.Value))
		buf = append(buf, '}', '\n')
		_, _ = s.w.Write(buf)
	}
	return s.w.Flush()
}

// Ping always succeeds.
func (s *StdoutSink) Ping(context.Context) error { return nil }

// tallySink wraps the sink the driver writes to: it counts each request's
// written records and dead letters (by Record.Tag, the request id) on its
// Ack, and feeds the sink metrics. Called from each driver's sink stage.
type tallySink struct {
	inner Sink
	recv  *Receiver
	m     *Metrics
}

// Write writes recs and credits each record the sink accepted to its
// request: all of them on nil, all but the failed ones on an
// *engine.RecordErrors (returned unchanged: the driver dead-letters those,
// and WriteDLQ credits them as dead letters), none on any other error. A
// request that asked for per-event results has each accepted record's
// event (Record.Seq) marked.
func (t *tallySink) Write(ctx context.Context, recs []engine.Record) error {
	if len(recs) == 0 {
		return nil
	}
	start := time.Now()
	err := t.inner.Write(ctx, recs)
	var failed []engine.RecordFailure
	if err != nil {
		re, ok := err.(*engine.RecordErrors) //nolint:errorlint // by contract never wrapped
		if !ok {
			t.m.sinkWrite(len(recs), start, err)
			return err
		}
		failed = re.Failed
	}
	t.m.sinkWrite(len(recs)-len(failed), start, nil)
	var last uint64
	var a *Ack
	var res *eventResults
	var n int64
	for i := range recs {
		if len(failed) > 0 && failed[0].Index == i {
			failed = failed[1:]
			continue
		}
		if tag := recs[i].Tag; a == nil || tag != last {
			if a != nil {
				a.written.Add(n)
			}
			last, a, n = tag, t.recv.lookup(tag), 0
			if a == nil {
				a = orphan
			}
			res = a.results()
		}
		n++
		if res != nil {
			res.accepted(recs[i].Seq)
		}
	}
	if a != nil {
		a.written.Add(n)
	}
	return err
}

// WriteDLQ writes entries and, on success, credits each to its request
// (and marks its event's result, when asked).
func (t *tallySink) WriteDLQ(ctx context.Context, entries []engine.DLQEntry) error {
	if len(entries) == 0 {
		return nil
	}
	if err := t.inner.WriteDLQ(ctx, entries); err != nil {
		t.m.sinkErrors.Inc()
		return err
	}
	for i := range entries {
		e := &entries[i]
		t.m.dlqEvent(reasonClass(e.Reason, e.Stage))
		if a := t.recv.lookup(e.Record.Tag); a != nil {
			a.deadLettered.Add(1)
			if res := a.results(); res != nil {
				res.deadLettered(e.Record.Seq, e.Reason)
			}
		}
	}
	return nil
}

// orphan absorbs counts of records whose request was already resolved
// (failed, or timed out and then failed).
var orphan = &Ack{}

// Reason classes of the dead letters a sink reported (stage "sink"): the
// label values of sluice_dlq_events_total for them.
const (
	ReasonSinkInvalidTopic  = "sink_invalid_topic"    // the topic name breaks Kafka's rules
	ReasonSinkUnknownTopic  = "sink_unknown_topic"    // the cluster has no such topic
	ReasonSinkTooLarge      = "sink_record_too_large" // over the broker's max.message.bytes
	ReasonSinkUnauthorized  = "sink_topic_not_authorized"
	ReasonSinkInvalidRecord = "sink_invalid_record" // the broker (or stdout sink) refused the record
)

// sinkReasonClasses are the classes sinkReasonClass returns.
var sinkReasonClasses = []string{ReasonSinkInvalidTopic, ReasonSinkUnknownTopic, ReasonSinkTooLarge, ReasonSinkUnauthorized, ReasonSinkInvalidRecord}

// reasonOverRecordCap starts the reason of a record capRecords (drive.go)
// dead-lettered for --kafka-max-record-bytes before the sink.
const reasonOverRecordCap = "too large for Kafka"

// sinkReasonClass maps the reason of a sink dead letter (a
// kafka.RecordError's text, which starts with its Reason) to its class.
func sinkReasonClass(reason string) string {
	switch {
	case strings.HasPrefix(reason, kafka.ReasonInvalidTopic):
		return ReasonSinkInvalidTopic
	case strings.HasPrefix(reason, kafka.ReasonUnknownTopic):
		return ReasonSinkUnknownTopic
	case strings.HasPrefix(reason, kafka.ReasonRecordTooLarge), strings.HasPrefix(reason, reasonOverRecordCap):
		return ReasonSinkTooLarge
	case strings.HasPrefix(reason, kafka.ReasonTopicNotAuthorized):
		return ReasonSinkUnauthorized
	default:
		return ReasonSinkInvalidRecord
	}
}
