package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluicehq/sluice/engine"
	"github.com/sluicehq/sluice/gateway/kafka"
)

// poisonInner accepts every record except those whose value mentions
// "nope", which it fails per record as Kafka's sink does for an unknown
// topic; it keeps what it accepted and the dead letters.
type poisonInner struct {
	written []string
	dead    []engine.DLQEntry
}

func (p *poisonInner) Write(_ context.Context, recs []engine.Record) error {
	var re *engine.RecordErrors
	for i := range recs {
		if bytes.Contains(recs[i].Value, []byte("nope")) {
			re = failRecord(re, i, &kafka.RecordError{Reason: kafka.ReasonUnknownTopic, Topic: "nope", Err: kerr.UnknownTopicOrPartition})
			continue
		}
		p.written = append(p.written, string(recs[i].Value))
	}
	if re != nil {
		return re
	}
	return nil
}

func (p *poisonInner) WriteDLQ(_ context.Context, entries []engine.DLQEntry) error {
	p.dead = append(p.dead, entries...)
	return nil
}

func (p *poisonInner) Ping(context.Context) error { return nil }

// The tally credits a request with the records the sink accepted and with
// its records the sink failed once they are dead-lettered; a request with
// no poison is untouched by its neighbour's.
func TestTallyCountsSinkDeadLetters(t *testing.T) {
	recv := NewReceiver(ReceiverConfig{QueueBytes: 1 << 20, PollTimeout: 10 * time.Millisecond})
	m := newMetrics(gaugeFuncs{})
	inner := &poisonInner{}
	tally := &tallySink{inner: inner, recv: recv, m: m}

	mk := func(id uint64, vals ...string) *Ack {
		out := splitOut{tag: id}
		for _, v := range vals {
			out.appendRecord([]byte(v))
		}
		out.appendReject([]byte("{bad"), "parse error: test")
		a := newAck(id, &out, nil)
		if err := recv.Enqueue(a); err != nil {
			t.Fatal(err)
		}
		return a
	}
	good := mk(1, `{"a":1}`, `{"a":2}`, `{"a":3}`)
	poison := mk(2, `{"a":4}`, `{"event":"nope"}`, `{"a":5}`, `{"event":"nope","n":2}`)
	recv.Close()

	d, err := engine.NewDriver[*Ack](engine.Config{DLQPolicy: engine.DLQRoute, DLQ: tally})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := d.Run(ctx, recv, engine.PassThrough[*Ack], engine.Sink[*Ack](tally)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		a                      *Ack
		accepted, dropped, dlq int64
	}{{good, 3, 0, 1}, {poison, 2, 0, 3}} {
		select {
		case err := <-tc.a.done:
			if err != nil {
				t.Fatalf("request %d failed: %v", tc.a.id, err)
			}
		default:
			t.Fatalf("request %d not resolved", tc.a.id)
		}
		acc, drop, dl := tc.a.Counts()
		if acc != tc.accepted || drop != tc.dropped || dl != tc.dlq {
			t.Fatalf("request %d: accepted %d dropped %d dead-lettered %d; want %d %d %d", tc.a.id, acc, drop, dl, tc.accepted, tc.dropped, tc.dlq)
		}
	}
	if len(inner.written) != 5 || len(inner.dead) != 4 {
		t.Fatalf("sink wrote %d records and %d dead letters, want 5 and 4", len(inner.written), len(inner.dead))
	}
	var sinkDead int
	for _, e := range inner.dead {
		if e.Stage == engine.StageSink {
			sinkDead++
			if !strings.HasPrefix(e.Reason, `unknown topic "nope": UNKNOWN_TOPIC_OR_PARTITION`) || !bytes.Contains(e.Record.Value, []byte("nope")) {
				t.Fatalf("sink dead letter %q: %q", e.Record.Value, e.Reason)
			}
		}
	}
	if sinkDead != 2 {
		t.Fatalf("%d sink dead letters, want 2", sinkDead)
	}
	var out bytes.Buffer
	m.WritePrometheus(&out)
	for _, want := range []string{
		`sluice_dlq_events_total{reason="sink_unknown_topic"} 2`,
		`sluice_dlq_events_total{reason="parse_error"} 2`,
		`sluice_sink_records_total 5`,
		`sluice_sink_errors_total 0`,
	} {
		if !strings.Contains(out.String(), want+"\n") {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// A whole-write failure credits nothing and counts a sink error.
func TestTallyWholeWriteFailure(t *testing.T) {
	recv := NewReceiver(ReceiverConfig{QueueBytes: 1 << 20})
	m := newMetrics(gaugeFuncs{})
	boom := errors.New("brokers unreachable")
	tally := &tallySink{inner: failingInner{boom}, recv: recv, m: m}
	a := testAck(7, 3, 10, 0)
	if err := recv.Enqueue(a); err != nil {
		t.Fatal(err)
	}
	if err := tally.Write(context.Background(), a.records()); !errors.Is(err, boom) {
		t.Fatalf("Write = %v", err)
	}
	if acc, _, dl := a.Counts(); acc != 0 || dl != 0 {
		t.Fatalf("credited %d accepted, %d dead-lettered after a failed write", acc, dl)
	}
	var out bytes.Buffer
	m.WritePrometheus(&out)
	if !strings.Contains(out.String(), "sluice_sink_errors_total 1\n") {
		t.Fatal("sink error not counted")
	}
}

type failingInner struct{ err error }

func (f failingInner) Write(context.Context, []engine.Record) error      { return f.err }
func (f failingInner) WriteDLQ(context.Context, []engine.DLQEntry) error { return f.err }
func (f failingInner) Ping(context.Context) error                        { return f.err }

func TestSinkReasonClass(t *testing.T) {
	for _, tc := range []struct{ reason, want string }{
		{(&kafka.RecordError{Reason: kafka.ReasonInvalidTopic, Topic: "a/b", Err: errors.New("x")}).Error(), ReasonSinkInvalidTopic},
		{(&kafka.RecordError{Reason: kafka.ReasonUnknownTopic, Topic: "t", Err: kerr.UnknownTopicOrPartition}).Error(), ReasonSinkUnknownTopic},
		{(&kafka.RecordError{Reason: kafka.ReasonRecordTooLarge, Topic: "t", Err: kerr.MessageTooLarge}).Error(), ReasonSinkTooLarge},
		{(&kafka.RecordError{Reason: kafka.ReasonTopicNotAuthorized, Topic: "t", Err: kerr.TopicAuthorizationFailed}).Error(), ReasonSinkUnauthorized},
		{(&kafka.RecordError{Reason: kafka.ReasonInvalidRecord, Topic: "t", Err: kerr.InvalidRecord}).Error(), ReasonSinkInvalidRecord},
		{errMultiLine.Error(), ReasonSinkInvalidRecord},
		{"too large for Kafka: 2000000 bytes over the 1048576-byte record cap (--kafka-max-record-bytes; first 65536 bytes of the value kept)", ReasonSinkTooLarge},
	} {
		if got := reasonClass(tc.reason, engine.StageSink); got != tc.want {
			t.Errorf("reasonClass(%q, sink) = %q, want %q", tc.reason, got, tc.want)
		}
	}
	// The stage decides: a transform's reason that happens to read like a
	// sink's stays a transform's.
	if got := reasonClass("unknown topic: my own words", "route"); got != ReasonTransform {
		t.Errorf("transform reason classed %q", got)
	}
}

func TestStdoutSinkOneLinePerRecord(t *testing.T) {
	var out bytes.Buffer
	s := NewStdoutSink(&out)
	recs := []engine.Record{
		{Value: []byte(`{"a":1}`)},
		{Value: []byte("{\n  \"b\": [1,\n 2]\n}")},
		{Value: []byte("raw\nwith a line break"), Format: engine.FormatRaw},
		{Value: []byte("{\"c\":\r\n3}")},
		{Value: []byte("{\n\"broken\"")},
	}
	err := s.Write(context.Background(), recs)
	re, ok := err.(*engine.RecordErrors) //nolint:errorlint // the contract: not wrapped
	if !ok || re.Len() != 2 || re.Failed[0].Index != 2 || re.Failed[1].Index != 4 {
		t.Fatalf("Write = %v, want records 2 and 4 failed", err)
	}
	if !strings.HasPrefix(re.Failed[0].Err.Error(), "invalid record") || !strings.HasPrefix(re.Failed[1].Err.Error(), "invalid record") {
		t.Fatalf("reasons %v", re.Failed)
	}
	if got, want := out.String(), "{\"a\":1}\n{\"b\":[1,2]}\n{\"c\":3}\n"; got != want {
		t.Fatalf("stdout %q, want %q", got, want)
	}
	if err := s.Write(context.Background(), recs[:1]); err != nil {
		t.Fatal(err)
	}
	if err := NewStdoutSink(errWriter{}).Write(context.Background(), recs[:1]); err == nil || errors.As(err, new(*engine.RecordErrors)) {
		t.Fatalf("write error = %v, want a whole-write failure", err)
	}
}

type errWriter struct{}

func (errWriter) Write([]byte) (int, error) { return 0, fmt.Errorf("disk full") }
