package kafka

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicehq/sluice/engine"
)

func TestConfigValidate(t *testing.T) {
	f := func(name string, mutate func(*Config), wantField string) {
		t.Helper()
		t.Run(name, func(t *testing.T) {
			cfg := Config{Brokers: []string{"127.0.0.1:9092"}}
			mutate(&cfg)
			err := cfg.Validate()
			if wantField == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.Field != wantField {
				t.Fatalf("got %v, want a ConfigError on %s", err, wantField)
			}
		})
	}
	f("defaults", func(*Config) {}, "")
	f("every codec", func(c *Config) { c.Compression = "zstd" }, "")
	f("no brokers", func(c *Config) { c.Brokers = nil }, "Brokers")
	f("broker without port", func(c *Config) { c.Brokers = []string{"localhost"} }, "Brokers")
	f("same topics", func(c *Config) { c.DLQTopic = DefaultTopic }, "DLQTopic")
	f("bad topic", func(c *Config) { c.DefaultTopic = "a/b" }, "DefaultTopic")
	f("bad codec", func(c *Config) { c.Compression = "brotli" }, "Compression")
	f("tiny batch", func(c *Config) { c.BatchMaxBytes = 10 }, "BatchMaxBytes")
	f("negative buffer", func(c *Config) { c.MaxBufferedRecords = -1 }, "MaxBufferedRecords")
	f("tiny timeout", func(c *Config) { c.DeliveryTimeout = time.Millisecond }, "DeliveryTimeout")
	f("linger above timeout", func(c *Config) { c.Linger = time.Minute }, "Linger")

	d := DefaultConfig("b:1")
	if d.DefaultTopic != "events" || d.DLQTopic != "sluice.dlq" || d.Compression != "snappy" ||
		d.Linger != 5*time.Millisecond || d.BatchMaxBytes != 1<<20 || d.DeliveryTimeout != 10*time.Second {
		t.Fatalf("unexpected defaults %+v", d)
	}
}

func TestSinkWriteReadBack(t *testing.T) {
	d := startBroker(t, "clicks")
	var stats []WriteStats
	var mu sync.Mutex
	s := newSink(t, Config{Brokers: d.Brokers(), Observer: ObserverFunc(func(ws WriteStats) {
		mu.Lock()
		stats = append(stats, ws)
		mu.Unlock()
	})})

	ts := time.Date(2026, 11, 26, 20, 0, 0, 123_000_000, time.UTC)
	const n = 300
	recs := make([]engine.Record, n)
	for i := range recs {
		r := engine.Record{Value: event(i), Timestamp: ts.Add(time.Duration(i) * time.Millisecond)}
		switch i % 3 {
		case 0: // default topic, no key
		case 1:
			r.Topic = "clicks"
			r.Key = []byte("same-key") // one partition: order must hold
		case 2:
			r.Key = fmt.Appendf(nil, "k%d", i)
			r.Headers = []engine.Header{{Key: "h1", Value: []byte("v1")}, {Key: "idx", Value: fmt.Appendf(nil, "%d", i)}}
		}
		recs[i] = r
	}
	if err := s.Write(context.Background(), recs); err != nil {
		t.Fatal(err)
	}

	got := map[string]*kgo.Record{}
	for _, topic := range []string{DefaultTopic, "clicks"} {
		want := 0
		for i := range recs {
			if (recs[i].Topic == "" && topic == DefaultTopic) || recs[i].Topic == topic {
				want++
			}
		}
		var lastClick int = -1
		for _, kr := range consume(t, d.Brokers(), topic, want) {
			if _, dup := got[string(kr.Value)]; dup {
				t.Fatalf("duplicate record %s", kr.Value)
			}
			got[string(kr.Value)] = kr
			if topic == "clicks" {
				var id int
				fmt.Sscanf(string(kr.Value), `{"id":%d`, &id)
				if id <= lastClick {
					t.Fatalf("same-key records out of order: %d after %d", id, lastClick)
				}
				lastClick = id
			}
		}
	}
	for i, r := range recs {
		kr, ok := got[string(r.Value)]
		if !ok {
			t.Fatalf("record %d missing", i)
		}
		wantTopic := r.Topic
		if wantTopic == "" {
			wantTopic = DefaultTopic
		}
		if kr.Topic != wantTopic || !bytes.Equal(kr.Key, r.Key) || !kr.Timestamp.Equal(r.Timestamp) {
			t.Fatalf("record %d: got topic %q key %q ts %v, want %q %q %v", i, kr.Topic, kr.Key, kr.Timestamp, wantTopic, r.Key, r.Timestamp)
		}
		if len(kr.Headers) != len(r.Headers) {
			t.Fatalf("record %d: %d headers, want %d", i, len(kr.Headers), len(r.Headers))
		}
		for j, h := range r.Headers {
			if kr.Headers[j].Key != h.Key || !bytes.Equal(kr.Headers[j].Value, h.Value) {
				t.Fatalf("record %d header %d: got %s=%s want %s=%s", i, j, kr.Headers[j].Key, kr.Headers[j].Value, h.Key, h.Value)
			}
		}
	}

	mu.Lock()
	defer mu.Unlock()
	if len(stats) != 1 || stats[0].Records != n || stats[0].Failed != 0 || stats[0].Err != nil || stats[0].DLQ ||
		stats[0].Bytes != (&engine.Batch[int]{Records: recs}).Bytes() || stats[0].Latency <= 0 {
		t.Fatalf("unexpected observer stats %+v", stats)
	}
}

func TestSinkWriteDLQ(t *testing.T) {
	d := startBroker(t)
	s := newSink(t, Config{Brokers: d.Brokers()})
	entries := []engine.DLQEntry{
		{Record: engine.Record{Value: []byte(`{"bad":`), Key: []byte("k1")}, Reason: "parse error: unexpected end", Stage: "parse"},
		{Record: engine.Record{Value: []byte(`{"x":1}`), Topic: "orders", Headers: []engine.Header{{Key: "trace", Value: []byte("t1")}}},
			Reason: "rejected: missing user", Stage: "validate"},
	}
	if err := s.WriteDLQ(context.Background(), entries); err != nil {
		t.Fatal(err)
	}
	got := consume(t, d.Brokers(), DefaultDLQTopic, len(entries))
	byValue := map[string]*kgo.Record{}
	for _, r := range got {
		byValue[string(r.Value)] = r
	}
	headers := func(r *kgo.Record) string {
		var b strings.Builder
		for _, h := range r.Headers {
			fmt.Fprintf(&b, "%s=%s;", h.Key, h.Value)
		}
		return b.String()
	}
	r0 := byValue[`{"bad":`]
	if r0 == nil || string(r0.Key) != "k1" || headers(r0) != "sluice-reason=parse error: unexpected end;sluice-stage=parse;" {
		t.Fatalf("first dead letter: %+v", r0)
	}
	r1 := byValue[`{"x":1}`]
	if r1 == nil || r1.Key != nil || headers(r1) != "trace=t1;sluice-reason=rejected: missing user;sluice-stage=validate;sluice-topic=orders;" {
		t.Fatalf("second dead letter: %+v", r1)
	}
	if n := endOffsets(t, d.Brokers(), DefaultTopic); n != 0 {
		t.Fatalf("dead letters leaked into the default topic: %d records", n)
	}
}

// closedPort returns a 127.0.0.1 address nothing listens on.
func closedPort(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestNewSinkUnreachable(t *testing.T) {
	brokers := []string{closedPort(t), closedPort(t)}
	start := time.Now()
	s, err := NewSink(context.Background(), Config{Brokers: brokers, DialTimeout: time.Second}, testLogger(t))
	if err == nil {
		s.Close()
		t.Fatal("NewSink succeeded without a broker")
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("NewSink took %v to give up", el)
	}
	var ue *UnreachableError
	if !errors.Is(err, ErrUnreachable) || !errors.As(err, &ue) {
		t.Fatalf("got %T %v, want an UnreachableError", err, err)
	}
	for _, b := range brokers {
		if !strings.Contains(err.Error(), b) {
			t.Fatalf("error %q does not name broker %s", err, b)
		}
	}
}

func TestSinkClosed(t *testing.T) {
	d := startBroker(t)
	s := newSink(t, Config{Brokers: d.Brokers()})
	if err := s.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Write(context.Background(), records(3)); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if b := s.Buffered(); b != 0 {
		t.Fatalf("%d records buffered after acknowledged writes", b)
	}
	s.Close()
	s.Close()
	if err := s.Write(context.Background(), records(1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Write after Close: %v", err)
	}
	if err := s.Ping(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Ping after Close: %v", err)
	}
	if err := s.Write(context.Background(), nil); err != nil {
		t.Fatalf("empty Write: %v", err)
	}
}

// TestSinkOutageBrokerDown closes the broker under a working sink: Write must
// fail within about the delivery timeout (failed by the producer, so it let
// go of the records), and a sink works again once a broker is back on the
// same address.
func TestSinkOutageBrokerDown(t *testing.T) {
	d := startBroker(t)
	addr := d.Addr()
	const timeout = 2 * time.Second
	s := newSink(t, Config{Brokers: d.Brokers(), DeliveryTimeout: timeout, DialTimeout: 500 * time.Millisecond})
	if err := s.Write(context.Background(), records(10)); err != nil {
		t.Fatal(err)
	}

	d.Close()
	start := time.Now()
	err := s.Write(context.Background(), records(10))
	elapsed := time.Since(start)
	var we *WriteError
	if !errors.As(err, &we) || we.Failed != 10 || we.Total != 10 || errors.Is(err, ErrGaveUp) {
		t.Fatalf("Write during outage: %v", err)
	}
	if elapsed > s.waitLimit {
		t.Fatalf("Write during outage took %v (delivery timeout %v)", elapsed, timeout)
	}
	t.Logf("outage surfaced after %v: %v", elapsed, err)
	if err := s.Ping(context.Background()); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("Ping during outage: %v", err)
	}

	// A new cluster on the same port has new topic ids: a fresh sink.
	d2, err := StartDevBroker(addr, []string{DefaultTopic, DefaultDLQTopic}, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d2.Close)
	fresh := newSink(t, Config{Brokers: []string{addr}})
	if err := fresh.Write(context.Background(), records(10)); err != nil {
		t.Fatalf("fresh sink after recovery: %v", err)
	}
	if n := endOffsets(t, []string{addr}, DefaultTopic); n != 10 {
		t.Fatalf("new broker holds %d records, want 10", n)
	}
}

// TestSinkOutageBrokerRestart restarts a persistent broker under a sink: the
// same sink fails during the outage and writes again after the restart.
func TestSinkOutageBrokerRestart(t *testing.T) {
	dir := t.TempDir()
	d, err := StartDevBroker("127.0.0.1:0", []string{DefaultTopic, DefaultDLQTopic}, dir)
	if err != nil {
		t.Fatal(err)
	}
	addr := d.Addr()
	const timeout = time.Second
	s := newSink(t, Config{Brokers: d.Brokers(), DeliveryTimeout: timeout, DialTimeout: 500 * time.Millisecond})
	if err := s.Write(context.Background(), records(10)); err != nil {
		t.Fatal(err)
	}
	d.Close()
	if err := s.Write(context.Background(), records(10)); err == nil || errors.Is(err, ErrGaveUp) {
		t.Fatalf("Write during outage: %v", err)
	}
	d, err = StartDevBroker(addr, []string{DefaultTopic, DefaultDLQTopic}, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := s.Write(context.Background(), records(10))
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Write after restart still fails: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := endOffsets(t, d.Brokers(), DefaultTopic); n != 20 {
		t.Fatalf("restarted broker holds %d records, want 20 (10 before, 10 after)", n)
	}
}

// TestSinkOutageProduceFails makes the broker answer every produce with a
// retriable error: Write must give up within the delivery timeout and work
// again once the broker heals.
func TestSinkOutageProduceFails(t *testing.T) {
	c, failing := failingCluster(t)
	const timeout = time.Second
	s := newSink(t, Config{Brokers: c.ListenAddrs(), DeliveryTimeout: timeout})
	if err := s.Write(context.Background(), records(5)); err != nil {
		t.Fatal(err)
	}
	failing.Store(true)
	start := time.Now()
	err := s.Write(context.Background(), records(5))
	elapsed := time.Since(start)
	if !errors.Is(err, ErrDeliveryTimeout) || errors.Is(err, ErrGaveUp) {
		t.Fatalf("Write while produce fails: %v", err)
	}
	if elapsed > s.waitLimit {
		t.Fatalf("Write while produce fails took %v", elapsed)
	}
	t.Logf("failure surfaced after %v: %v", elapsed, err)

	failing.Store(false)
	if err := s.Write(context.Background(), records(5)); err != nil {
		t.Fatalf("Write after heal: %v", err)
	}
	if n := endOffsets(t, c.ListenAddrs(), DefaultTopic); n != 10 {
		t.Fatalf("topic holds %d records, want 10", n)
	}
}

// TestSinkConcurrentWrites hammers one sink from several goroutines; every
// record must land exactly once.
func TestSinkConcurrentWrites(t *testing.T) {
	d := startBroker(t)
	s := newSink(t, Config{Brokers: d.Brokers()})
	const workers, writes, per = 4, 25, 40
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range writes {
				recs := make([]engine.Record, per)
				for j := range recs {
					recs[j] = engine.Record{Value: event(w*1_000_000 + i*per + j), Key: fmt.Appendf(nil, "w%d", w)}
				}
				if err := s.Write(context.Background(), recs); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got := consume(t, d.Brokers(), DefaultTopic, workers*writes*per)
	seen := map[string]bool{}
	for _, r := range got {
		if seen[string(r.Value)] {
			t.Fatalf("duplicate %s", r.Value)
		}
		seen[string(r.Value)] = true
	}
}

// TestSinkWriteAllocs checks that Write allocates per write, not per record:
// 1,000 records must cost about as many allocations as 10 (the counts are
// process-wide, so the in-process broker's allocations are included).
func TestSinkWriteAllocs(t *testing.T) {
	d := startBroker(t)
	s := newSink(t, Config{Brokers: d.Brokers()})
	small, large := records(10), records(1000)
	allocs := func(recs []engine.Record) float64 {
		return testing.AllocsPerRun(20, func() {
			if err := s.Write(context.Background(), recs); err != nil {
				t.Fatal(err)
			}
		})
	}
	a10, a1000 := allocs(small), allocs(large)
	t.Logf("allocs per Write: %.0f for 10 records, %.0f for 1,000", a10, a1000)
	if a1000 > a10+200 {
		t.Fatalf("Write of 1,000 records allocates %.0f times vs %.0f for 10: allocation per record", a1000, a10)
	}
}

// TestSinkRecordTooLarge writes a record above BatchMaxBytes: that record
// alone fails at once with MESSAGE_TOO_LARGE (a per-record outcome), the
// others are written, and the sink keeps working.
func TestSinkRecordTooLarge(t *testing.T) {
	d := startBroker(t)
	s := newSink(t, Config{Brokers: d.Brokers(), BatchMaxBytes: 4096})
	recs := append(records(2), engine.Record{Value: bytes.Repeat([]byte("x"), 8192)})
	err := s.Write(context.Background(), recs)
	re := recordErrors(t, err, 2)
	if !errors.Is(re.Failed[0].Err, kerr.MessageTooLarge) || !strings.HasPrefix(re.Failed[0].Err.Error(), ReasonRecordTooLarge+` "events": MESSAGE_TOO_LARGE`) {
		t.Fatalf("got %v, want record 2 failed with MESSAGE_TOO_LARGE", err)
	}
	if err := s.Write(context.Background(), records(2)); err != nil {
		t.Fatal(err)
	}
	if n := endOffsets(t, d.Brokers(), DefaultTopic); n != 4 {
		t.Fatalf("topic holds %d records, want 4", n)
	}
}

// failingCluster starts a one-broker kfake cluster whose produce requests
// all fail with NOT_ENOUGH_REPLICAS (retriable) while the flag is set.
func failingCluster(tb testing.TB) (*kfake.Cluster, *atomic.Bool) {
	tb.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, DefaultTopic, DefaultDLQTopic))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.Close)
	failing := new(atomic.Bool)
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if !failing.Load() {
			return nil, nil, false
		}
		preq := req.(*kmsg.ProduceRequest)
		resp := preq.ResponseKind().(*kmsg.ProduceResponse)
		for _, rt := range preq.Topics {
			st := kmsg.NewProduceResponseTopic()
			st.Topic = rt.Topic
			st.TopicID = rt.TopicID
			for _, rp := range rt.Partitions {
				sp := kmsg.NewProduceResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.ErrorCode = kerr.NotEnoughReplicas.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
	return c, failing
}

// TestSinkWriteContextCancel: a caller deadline shorter than the delivery
// timeout ends the Write early with the caller's context error.
func TestSinkWriteContextCancel(t *testing.T) {
	c, failing := failingCluster(t)
	s := newSink(t, Config{Brokers: c.ListenAddrs(), DeliveryTimeout: 10 * time.Second})
	if err := s.Write(context.Background(), records(5)); err != nil {
		t.Fatal(err)
	}
	failing.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := s.Write(ctx, records(5))
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrDeliveryTimeout) || errors.Is(err, ErrGaveUp) {
		t.Fatalf("got %v, want the caller's deadline", err)
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Fatalf("Write took %v after a 300ms caller deadline", el)
	}
}
