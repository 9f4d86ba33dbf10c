package gateway

// The lines' drivers with overlapped stages (--driver-depth > 1): HTTP acks
// stay exact and come in request order, and the Kafka line commits each
// partition in order, keeps each key's order, and polls only when nothing
// is in flight (so a rebalance is never held back by a busy pipeline).

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/engine"
	"github.com/sluicehq/sluice/gateway/kafka"
	"github.com/sluicehq/sluice/governor"
	"github.com/sluicehq/sluice/internal/e2e"
)

// overlapGovernor returns a governor whose budget is pinned at budget
// bytes, so blocks are small and a request spans several.
func overlapGovernor(t *testing.T, budget int64) *governor.Governor {
	t.Helper()
	gov, err := governor.New(governor.Config{MemoryLimit: 256 << 20, HeapLimit: -1,
		Budget: governor.BudgetConfig{Start: budget, Min: budget, Max: budget}})
	if err != nil {
		t.Fatal(err)
	}
	return gov
}

// jitter is a processor that takes 0–300 µs a batch, so that overlapped
// batches finish out of order.
var jitter = engine.ProcessorFunc(func(_ context.Context, recs []engine.Record, dlq []engine.DLQEntry) ([]engine.Record, []engine.DLQEntry, error) {
	time.Sleep(time.Duration(rand.IntN(300)) * time.Microsecond)
	return recs, dlq, nil
})

// countingSink counts the records written per Record.Tag and keeps the
// order of records per key. Safe for concurrent use.
type countingSink struct {
	mu     sync.Mutex
	perTag map[uint64]int
	perKey map[string][]string
}

func newCountingSink() *countingSink {
	return &countingSink{perTag: map[uint64]int{}, perKey: map[string][]string{}}
}

func (s *countingSink) Write(_ context.Context, recs []engine.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range recs {
		s.perTag[r.Tag]++
		if len(r.Key) > 0 {
			s.perKey[string(r.Key)] = append(s.perKey[string(r.Key)], string(r.Value))
		}
	}
	return nil
}

func (s *countingSink) WriteDLQ(context.Context, []engine.DLQEntry) error { return nil }

func (s *countingSink) Ping(context.Context) error { return nil }

func (s *countingSink) written(tag uint64) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.perTag[tag]
}

// commitOrder records the request ids of each HTTP commit.
type commitOrder struct {
	*Receiver
	mu  sync.Mutex
	ids []uint64
}

func (c *commitOrder) Commit(ctx context.Context, tokens []*Ack) error {
	c.mu.Lock()
	for _, a := range tokens {
		c.ids = append(c.ids, a.id)
	}
	c.mu.Unlock()
	return c.Receiver.Commit(ctx, tokens)
}

// HTTP with a depth-4 driver and batches that finish out of order: every
// request is answered only once all its records are written (its records
// span several batches), with the count of them, and requests are
// answered in the order they were queued.
func TestHTTPAcksStayExactWithOverlappedDriver(t *testing.T) {
	const requests = 300
	recv := NewReceiver(ReceiverConfig{QueueBytes: 64 << 20, PollTimeout: 10 * time.Millisecond})
	sink := newCountingSink()
	m := newMetrics(gaugeFuncs{})
	gov := overlapGovernor(t, 600) // about 20 records of 30 bytes a batch
	d := driveDeps{gov: gov, sink: &tallySink{inner: sink, recv: recv, m: m}, proc: jitter, m: m,
		log: slog.New(slog.DiscardHandler), depth: 4}
	co := &commitOrder{Receiver: recv}

	var wg sync.WaitGroup
	for id := uint64(1); id <= requests; id++ {
		out := &splitOut{tag: id}
		n := 1 + int(id*7%45)
		for i := range n {
			out.appendRecord(fmt.Appendf(nil, `{"req":%d,"i":%04d}`, id, i))
		}
		a := newAck(id, out, nil)
		if err := recv.Enqueue(a); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case err := <-a.done:
				if err != nil {
					t.Errorf("request %d: %v", id, err)
					return
				}
			case <-time.After(20 * time.Second):
				t.Errorf("request %d never answered", id)
				return
			}
			if got := sink.written(id); got != n {
				t.Errorf("request %d answered with %d of its %d records written", id, got, n)
			}
			if acc, _, _ := a.Counts(); acc != int64(n) {
				t.Errorf("request %d: accepted %d, want %d", id, acc, n)
			}
		}()
	}
	done := make(chan error, 1)
	go func() {
		done <- runGovernedFunc(context.Background(), d, engine.Receiver[*Ack](co), engine.Process[*Ack](d.proc))
	}()
	wg.Wait()
	recv.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(co.ids) != requests {
		t.Fatalf("%d requests committed, want %d", len(co.ids), requests)
	}
	for i, id := range co.ids {
		if id != uint64(i+1) {
			t.Fatalf("commit %d is request %d: requests must be answered in order (%v…)", i, id, co.ids[:min(len(co.ids), i+3)])
		}
	}
	if gov.Guard().InFlight() != 0 {
		t.Fatalf("in flight %d after the run", gov.Guard().InFlight())
	}
}

// A receive that would poll the brokers waits until every record handed
// out was committed; one that can be served from what the last poll
// buffered does not.
func TestKafkaReceiverPollsOnlyWhenNothingIsInFlight(t *testing.T) {
	c := e2e.Kafka(t, e2e.KafkaConfig{Topics: []string{"in"}})
	brokers := c.ListenAddrs()
	produce(t, brokers, 40, 1)
	src, err := kafka.NewSource(context.Background(), kafka.SourceConfig{Brokers: brokers, Group: "g", Topics: []string{"in"}, PollTimeout: 100 * time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(src.Close)
	r := newKafkaReceiver(src, "", func() bool { return false }, nil, slog.New(slog.DiscardHandler))
	ctx := context.Background()
	first := recvSome(t, r, engine.RecvLimits{MaxRecords: 10})
	if src.Buffered() != 0 {
		t.Fatalf("%d records still buffered after a receive of the poll's size", src.Buffered())
	}
	got := make(chan engine.Batch[kafka.Offset], 1)
	go func() {
		b, err := r.RecvLimited(ctx, engine.RecvLimits{MaxRecords: 10})
		if err != nil {
			t.Error(err)
		}
		got <- b
	}()
	select {
	case b := <-got:
		t.Fatalf("a receive polled while %d records were uncommitted (%d records)", len(first.Tokens), len(b.Records))
	case <-time.After(300 * time.Millisecond):
	}
	if err := r.Commit(ctx, first.Tokens); err != nil {
		t.Fatal(err)
	}
	var second engine.Batch[kafka.Offset]
	select {
	case second = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("the receive did not poll after the commit")
	}
	if err := r.Commit(ctx, second.Tokens); err != nil {
		t.Fatal(err)
	}
	// A byte cap leaves the rest of a poll buffered: those receives do not
	// wait for commits.
	one := recvSome(t, r, engine.RecvLimits{MaxRecords: 10, MaxBytes: 1})
	if len(one.Records) != 1 || src.Buffered() == 0 {
		t.Fatalf("%d records, %d buffered; want 1 and the rest buffered", len(one.Records), src.Buffered())
	}
	for src.Buffered() > 0 {
		b, err := r.RecvLimited(ctx, engine.RecvLimits{MaxRecords: 10, MaxBytes: 1})
		if err != nil || len(b.Records) != 1 {
			t.Fatalf("a buffered receive with records uncommitted: %d records, %v", len(b.Records), err)
		}
	}
}

// recvSome receives until a batch with records comes (all test records
// are valid: none is dead-lettered).
func recvSome(t *testing.T, r *kafkaReceiver, lim engine.RecvLimits) engine.Batch[kafka.Offset] {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		b, err := r.RecvLimited(context.Background(), lim)
		if err != nil {
			t.Fatal(err)
		}
		if len(b.DLQ) > 0 {
			t.Fatalf("dead letters: %v", b.DLQ[0].Reason)
		}
		if len(b.Records) > 0 {
			return b
		}
	}
	t.Fatal("no records within 10s")
	return engine.Batch[kafka.Offset]{}
}

// produce writes n records {"k":K,"n":N} to topic in, keyed k0…k(keys-1),
// N counting per key.
func produce(t *testing.T, brokers []string, n, keys int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic("in"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	recs := make([]*kgo.Record, n)
	for i := range recs {
		k := fmt.Sprintf("k%d", i%keys)
		recs[i] = &kgo.Record{Key: []byte(k), Value: fmt.Appendf(nil, `{"k":%q,"n":%d}`, k, i/keys)}
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// partitionCommits checks that the offsets the driver commits for each
// partition continue exactly where its last commit ended.
type partitionCommits struct {
	*kafkaReceiver
	mu   sync.Mutex
	next map[int32]int64 // partition → next offset expected, once seen
	bad  []string
	n    atomic.Int64
}

func (p *partitionCommits) Commit(ctx context.Context, tokens []kafka.Offset) error {
	p.mu.Lock()
	for _, tk := range tokens {
		if want, ok := p.next[tk.Partition]; ok && tk.Offset != want {
			p.bad = append(p.bad, fmt.Sprintf("partition %d: offset %d committed, want %d", tk.Partition, tk.Offset, want))
		}
		p.next[tk.Partition] = tk.Offset + 1
	}
	p.mu.Unlock()
	if err := p.kafkaReceiver.Commit(ctx, tokens); err != nil {
		return err
	}
	p.n.Add(int64(len(tokens)))
	return nil
}

// A Kafka line with a depth-4 driver over three partitions, batches that
// finish out of order: every partition's offsets are committed in order
// and contiguously, up to its end; every key's records reach the sink in
// their order; a graceful stop commits what was in flight.
func TestKafkaLineOverlappedCommitsPartitionsInOrder(t *testing.T) {
	const n, keys = 3000, 12
	c := e2e.Kafka(t, e2e.KafkaConfig{Topics: []string{"in"}})
	brokers := c.ListenAddrs()
	produce(t, brokers, n, keys)
	src, err := kafka.NewSource(context.Background(), kafka.SourceConfig{Brokers: brokers, Group: "g", Topics: []string{"in"}, PollTimeout: 100 * time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(src.Close)
	var closing atomic.Bool
	pc := &partitionCommits{kafkaReceiver: newKafkaReceiver(src, "", func() bool { return false }, &closing, slog.New(slog.DiscardHandler)), next: map[int32]int64{}}
	sink := newCountingSink()
	m := newMetrics(gaugeFuncs{})
	d := driveDeps{gov: overlapGovernor(t, 2<<10), sink: sink, m: m, log: slog.New(slog.DiscardHandler), depth: 4}
	done := make(chan error, 1)
	go func() {
		done <- runGovernedFunc(context.Background(), d, engine.Receiver[kafka.Offset](pc), engine.Process[kafka.Offset](jitter))
	}()
	waitUntil(t, func() bool { return pc.n.Load() >= n/2 })
	closing.Store(true) // a graceful stop with blocks in flight
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	first := pc.n.Load()
	// The rest, by a second run of the same member.
	closing.Store(false)
	go func() {
		done <- runGovernedFunc(context.Background(), d, engine.Receiver[kafka.Offset](pc), engine.Process[kafka.Offset](jitter))
	}()
	waitUntil(t, func() bool { return pc.n.Load() >= n })
	closing.Store(true)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(pc.bad) > 0 {
		t.Fatalf("out-of-order commits: %v", pc.bad[:min(len(pc.bad), 5)])
	}
	if pc.n.Load() != n || first >= n {
		t.Fatalf("committed %d records (%d in the first run), want %d", pc.n.Load(), first, n)
	}
	for k, vals := range sink.perKey {
		if len(vals) != n/keys {
			t.Fatalf("key %s: %d records written, want %d", k, len(vals), n/keys)
		}
		for i, v := range vals {
			if want := fmt.Sprintf(`{"k":%q,"n":%d}`, k, i); v != want {
				t.Fatalf("key %s: record %d is %s, want %s (order lost)", k, i, v, want)
			}
		}
	}
	if d.gov.Guard().InFlight() != 0 {
		t.Fatalf("in flight %d after the runs", d.gov.Guard().InFlight())
	}
}
