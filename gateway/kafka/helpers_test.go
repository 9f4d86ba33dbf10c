package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/engine"
)

// testLogger logs warnings and errors to stderr when -v is set.
func testLogger(tb testing.TB) *slog.Logger {
	tb.Helper()
	if !testing.Verbose() {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// startBroker starts a DevBroker on 127.0.0.1:0 with the default and DLQ
// topics and closes it at cleanup.
func startBroker(tb testing.TB, extra ...string) *DevBroker {
	tb.Helper()
	d, err := StartDevBroker("127.0.0.1:0", append([]string{DefaultTopic, DefaultDLQTopic}, extra...), "")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(d.Close)
	return d
}

// newSink returns a Sink on brokers closed at cleanup.
func newSink(tb testing.TB, cfg Config) *Sink {
	tb.Helper()
	s, err := NewSink(context.Background(), cfg, testLogger(tb))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Close)
	return s
}

// consume reads exactly n records of topic from the start with a plain kgo
// consumer, failing after a timeout.
func consume(tb testing.TB, brokers []string, topic string, n int) []*kgo.Record {
	tb.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		tb.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			tb.Fatalf("consume %s: got %d of %d records before timeout", topic, len(out), n)
		}
		fs.EachError(func(t string, p int32, err error) { tb.Fatalf("consume %s/%d: %v", t, p, err) })
		out = append(out, fs.Records()...)
	}
	if len(out) != n {
		tb.Fatalf("consume %s: got %d records, want %d", topic, len(out), n)
	}
	return out
}

// endOffsets returns the sum of the end offsets of topic: how many records
// it holds.
func endOffsets(tb testing.TB, brokers []string, topic string) int64 {
	tb.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		tb.Fatal(err)
	}
	defer cl.Close()
	return sumEndOffsets(tb, cl, topic)
}

// event returns a ~330-byte JSON event numbered i.
func event(i int) []byte {
	return fmt.Appendf(nil, `{"id":%d,"type":"page_view","ts":"2026-11-26T20:00:00.000Z","user":{"id":"u-%06d","geo":{"country":"DE","city":"Berlin"},"agent":"Mozilla/5.0 (X11; Linux x86_64)"},"page":{"url":"https://example.com/products/%d?ref=home","title":"Product page"},"session":"s-%08x","tags":["a","b","c"],"n":%d}`,
		i, i%1000000, i%997, uint32(i)*2654435761, i%17)
}

// records returns n records with distinct values.
func records(n int) []engine.Record {
	recs := make([]engine.Record, n)
	for i := range recs {
		recs[i] = engine.Record{Value: event(i)}
	}
	return recs
}

func sumEndOffsets(tb testing.TB, cl *kgo.Client, topic string) int64 {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	offs, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		tb.Fatal(err)
	}
	var n int64
	offs.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			tb.Fatalf("end offset %s/%d: %v", o.Topic, o.Partition, o.Err)
		}
		n += o.Offset
	})
	return n
}

// recordErrors asserts that err is an *engine.RecordErrors (not wrapped)
// failing exactly the records want, in order, each with a *RecordError.
func recordErrors(tb testing.TB, err error, want ...int) *engine.RecordErrors {
	tb.Helper()
	re, ok := err.(*engine.RecordErrors) //nolint:errorlint // the contract: never wrapped
	if !ok {
		tb.Fatalf("got %T %v, want an *engine.RecordErrors failing records %v", err, err, want)
	}
	got := make([]int, len(re.Failed))
	for i, f := range re.Failed {
		got[i] = f.Index
		var rerr *RecordError
		if !errors.As(f.Err, &rerr) {
			tb.Fatalf("failure of record %d is %T %v, want a *RecordError", f.Index, f.Err, f.Err)
		}
	}
	if !slices.Equal(got, want) {
		tb.Fatalf("failed records %v, want %v (%v)", got, want, err)
	}
	return re
}
