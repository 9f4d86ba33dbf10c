package gateway

import (
	"bufio"
	"context"
	"io"
	"sync"
	"time"

	"github.com/sluicehq/sluice/engine"
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

// DiscardSink accepts and forgets everything: a sink for benchmarks.
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
type StdoutSink struct {
	mu sync.Mutex
	w  *bufio.Writer
}

var _ Sink = (*StdoutSink)(nil)

// NewStdoutSink returns a sink writing to w.
func NewStdoutSink(w io.Writer) *StdoutSink { return &StdoutSink{w: bufio.NewWriterSize(w, 64<<10)} }

// Write writes recs, one line each, and flushes.
func (s *StdoutSink) Write(_ context.Context, recs []engine.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range recs {
		_, _ = s.w.Write(recs[i].Value)
		_ = s.w.WriteByte('\n')
	}
	return s.w.Flush()
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
// Ack, and feeds the sink metrics. Called from the driver's goroutine.
type tallySink struct {
	inner Sink
	recv  *Receiver
	m     *Metrics
}

// Write writes recs and, on success, credits each record to its request.
func (t *tallySink) Write(ctx context.Context, recs []engine.Record) error {
	if len(recs) == 0 {
		return nil
	}
	start := time.Now()
	err := t.inner.Write(ctx, recs)
	t.m.sinkWrite(len(recs), start, err)
	if err != nil {
		return err
	}
	var last uint64
	var a *Ack
	var n int64
	for i := range recs {
		if tag := recs[i].Tag; a == nil || tag != last {
			if a != nil {
				a.written.Add(n)
			}
			last, a, n = tag, t.recv.lookup(tag), 0
			if a == nil {
				a = orphan
			}
		}
		n++
	}
	a.written.Add(n)
	return nil
}

// WriteDLQ writes entries and, on success, credits each to its request.
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
		}
	}
	return nil
}

// orphan absorbs counts of records whose request was already resolved
// (failed, or timed out and then failed).
var orphan = &Ack{}
