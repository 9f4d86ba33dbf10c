package gateway

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/engine"
	"github.com/sluicehq/sluice/governor"
)

// testAck builds a request of n records of size bytes each, with id.
func testAck(id uint64, n, size int, dlq int) *Ack {
	out := splitOut{tag: id, body: make([]byte, n*size)}
	for i := range n {
		v := out.body[i*size : (i+1)*size]
		copy(v, fmt.Sprintf("%d/%d", id, i))
		out.add(v)
	}
	for range dlq {
		out.appendReject([]byte("bad"), "parse error: test")
	}
	return newAck(id, &out, nil)
}

// TestReceiverDeadLettersInBatches: a request's dead letters come before
// its records, at most the record cap of them per batch; its token travels
// with the batch of its last record.
func TestReceiverDeadLettersInBatches(t *testing.T) {
	r := NewReceiver(ReceiverConfig{QueueBytes: 1 << 20, PollTimeout: 10 * time.Millisecond})
	a := testAck(1, 3, 10, 25)
	if err := r.Enqueue(a); err != nil {
		t.Fatal(err)
	}
	var got []string
	for r.QueuedBytes() > 0 {
		b, err := r.RecvLimited(context.Background(), engine.RecvLimits{MaxRecords: 10})
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range b.DLQ {
			if d.Reason != "parse error: test" || d.Stage != "receiver" || d.Record.Tag != 1 || string(d.Record.Value) != "bad" {
				t.Fatalf("dead letter %+v", d)
			}
		}
		got = append(got, fmt.Sprintf("%d+%d/%d", len(b.DLQ), len(b.Records), len(b.Tokens)))
	}
	if want := "[10+0/0 10+0/0 5+3/1]"; fmt.Sprint(got) != want {
		t.Fatalf("batches (dead letters+records/tokens) %v, want %s", got, want)
	}
}

func TestReceiverSplitsRequestsAcrossBatches(t *testing.T) {
	r := NewReceiver(ReceiverConfig{QueueBytes: 1 << 20, PollTimeout: 10 * time.Millisecond})
	a1, a2, a3 := testAck(1, 5, 100, 1), testAck(2, 3, 100, 0), testAck(3, 0, 0, 2)
	for _, a := range []*Ack{a1, a2, a3} {
		if err := r.Enqueue(a); err != nil {
			t.Fatal(err)
		}
	}
	if got := r.QueuedBytes(); got != 8*100+3*3 {
		t.Fatalf("queued %d bytes", got)
	}
	ctx := context.Background()
	type want struct {
		recs   int
		tokens []uint64
		dlq    int
	}
	for i, w := range []want{
		{recs: 3, tokens: nil, dlq: 1},         // 350-byte cap: 3 of a1's 5, a1's dead letter
		{recs: 3, tokens: []uint64{1}, dlq: 0}, // a1's last 2 + a2's first
		{recs: 2, tokens: []uint64{2, 3}, dlq: 2},
	} {
		b, err := r.RecvLimited(ctx, engine.RecvLimits{MaxRecords: 100, MaxBytes: 350})
		if err != nil {
			t.Fatal(err)
		}
		var ids []uint64
		for _, a := range b.Tokens {
			ids = append(ids, a.ID())
		}
		if len(b.Records) != w.recs || fmt.Sprint(ids) != fmt.Sprint(w.tokens) || len(b.DLQ) != w.dlq {
			t.Fatalf("batch %d: %d records, tokens %v, %d dead letters; want %+v", i, len(b.Records), ids, len(b.DLQ), w)
		}
	}
	if got := r.QueuedBytes(); got != 0 {
		t.Fatalf("queued %d bytes after draining", got)
	}
	// Empty queue: an idle tick.
	b, err := r.RecvLimited(ctx, engine.RecvLimits{MaxRecords: 10})
	if err != nil || len(b.Records)+len(b.Tokens) != 0 {
		t.Fatalf("idle receive: %v, %+v", err, b)
	}
	if err := r.Commit(ctx, []*Ack{a1, a2, a3}); err != nil {
		t.Fatal(err)
	}
	for _, a := range []*Ack{a1, a2, a3} {
		select {
		case err := <-a.done:
			if err != nil {
				t.Fatalf("ack %d: %v", a.id, err)
			}
		default:
			t.Fatalf("ack %d not resolved", a.id)
		}
	}
	if r.Pending() != 0 {
		t.Fatalf("%d pending after commit", r.Pending())
	}
}

func TestReceiverFloorOneRecordAndRecordCap(t *testing.T) {
	r := NewReceiver(ReceiverConfig{QueueBytes: 1 << 20})
	_ = r.Enqueue(testAck(1, 4, 1000, 0))
	b, _ := r.RecvLimited(context.Background(), engine.RecvLimits{MaxRecords: 10, MaxBytes: 10})
	if len(b.Records) != 1 {
		t.Fatalf("byte cap below one record: got %d records, want 1", len(b.Records))
	}
	b, _ = r.RecvLimited(context.Background(), engine.RecvLimits{MaxRecords: 2})
	if len(b.Records) != 2 || len(b.Tokens) != 0 {
		t.Fatalf("record cap 2: got %d records, %d tokens", len(b.Records), len(b.Tokens))
	}
	b, _ = r.RecvLimited(context.Background(), engine.RecvLimits{MaxRecords: 2})
	if len(b.Records) != 1 || len(b.Tokens) != 1 {
		t.Fatalf("last record: got %d records, %d tokens", len(b.Records), len(b.Tokens))
	}
}

func TestReceiverQueueFullFailsFast(t *testing.T) {
	r := NewReceiver(ReceiverConfig{QueueBytes: 1000})
	if err := r.Enqueue(testAck(1, 6, 100, 0)); err != nil {
		t.Fatal(err)
	}
	if lvl := r.Fill().Level(); lvl != 0.6 {
		t.Fatalf("fill level %v, want 0.6", lvl)
	}
	start := time.Now()
	err := r.Enqueue(testAck(2, 5, 100, 0))
	var pe *PressureError
	if !errors.As(err, &pe) || pe.Source != "queue" || StatusOf(err) != 503 {
		t.Fatalf("enqueue into a full queue: %v", err)
	}
	if d := time.Since(start); d > 50*time.Millisecond {
		t.Fatalf("full queue blocked for %v", d)
	}
	// An oversized request still enters an empty queue (floor of one).
	r2 := NewReceiver(ReceiverConfig{QueueBytes: 10})
	if err := r2.Enqueue(testAck(3, 1, 100, 0)); err != nil {
		t.Fatalf("empty queue rejected an oversized request: %v", err)
	}
}

func TestReceiverFailAllAndClose(t *testing.T) {
	g := governor.NewMemoryGuard(1<<20, 0.9)
	r := NewReceiver(ReceiverConfig{QueueBytes: 1 << 20, PollTimeout: time.Second})
	a1, a2 := testAck(1, 2, 10, 0), testAck(2, 2, 10, 0)
	a1.lease, a2.lease = g.Lease(100), g.Lease(200)
	_ = r.Enqueue(a1)
	_ = r.Enqueue(a2)
	if _, err := r.RecvLimited(context.Background(), engine.RecvLimits{MaxRecords: 3}); err != nil {
		t.Fatal(err)
	}
	if n := r.FailAll(ErrSinkUnavailable); n != 2 {
		t.Fatalf("FailAll failed %d requests, want 2", n)
	}
	for _, a := range []*Ack{a1, a2} {
		if err := <-a.done; !errors.Is(err, ErrSinkUnavailable) {
			t.Fatalf("ack %d: %v", a.id, err)
		}
	}
	if g.InFlight() != 0 {
		t.Fatalf("%d bytes still leased after FailAll", g.InFlight())
	}
	// A late commit of a failed request is a no-op.
	if err := r.Commit(context.Background(), []*Ack{a1}); err != nil {
		t.Fatal(err)
	}
	r.SetDown(ErrSinkUnavailable)
	if err := r.Enqueue(testAck(3, 1, 1, 0)); !errors.Is(err, ErrSinkUnavailable) {
		t.Fatalf("enqueue while down: %v", err)
	}
	r.SetDown(nil)
	a4 := testAck(4, 1, 1, 0)
	if err := r.Enqueue(a4); err != nil {
		t.Fatal(err)
	}
	r.Close()
	if err := r.Enqueue(testAck(5, 1, 1, 0)); !errors.Is(err, ErrShuttingDown) {
		t.Fatalf("enqueue after close: %v", err)
	}
	b, err := r.RecvLimited(context.Background(), engine.RecvLimits{MaxRecords: 10})
	if err != nil || len(b.Tokens) != 1 {
		t.Fatalf("drain after close: %v, %d tokens", err, len(b.Tokens))
	}
	start := time.Now()
	if _, err := r.RecvLimited(context.Background(), engine.RecvLimits{MaxRecords: 10}); !errors.Is(err, engine.ErrSourceClosed) {
		t.Fatalf("receive after drain: %v, want source closed", err)
	}
	if time.Since(start) > 100*time.Millisecond {
		t.Fatal("closed receiver waited for the poll timeout")
	}
}

// TestReceiverHammer enqueues from many goroutines while one driver
// goroutine receives and commits: every request is acked exactly once with
// all of its records, in order per request.
func TestReceiverHammer(t *testing.T) {
	r := NewReceiver(ReceiverConfig{QueueBytes: 64 << 10, PollTimeout: 5 * time.Millisecond})
	const producers, perProducer = 8, 200
	seen := make(map[uint64]int)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			b, err := r.RecvLimited(context.Background(), engine.RecvLimits{MaxRecords: 7, MaxBytes: 900})
			if err != nil {
				return
			}
			for _, rec := range b.Records {
				var id uint64
				var i int
				fmt.Sscanf(string(rec.Value), "%d/%d", &id, &i)
				if seen[id] != i {
					t.Errorf("request %d: record %d out of order (want %d)", id, i, seen[id])
				}
				seen[id]++
			}
			_ = r.Commit(context.Background(), b.Tokens)
		}
	}()
	var wg sync.WaitGroup
	var mu sync.Mutex
	acked := 0
	for p := range producers {
		wg.Go(func() {
			for i := range perProducer {
				id := uint64(p*perProducer + i + 1)
				a := testAck(id, 1+i%5, 64, i%3)
				for r.Enqueue(a) != nil {
					time.Sleep(time.Millisecond)
				}
				if err := <-a.done; err != nil {
					t.Errorf("ack %d: %v", id, err)
				}
				mu.Lock()
				acked++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	r.Close()
	<-done
	if acked != producers*perProducer {
		t.Fatalf("acked %d, want %d", acked, producers*perProducer)
	}
	for id, n := range seen {
		if want := 1 + int((id-1)%perProducer)%5; n != want {
			t.Fatalf("request %d: %d records received, want %d", id, n, want)
		}
	}
	if r.QueuedBytes() != 0 || r.Pending() != 0 {
		t.Fatalf("queued %d, pending %d after the hammer", r.QueuedBytes(), r.Pending())
	}
}

// BenchmarkReceiver measures enqueue + byte-capped receive + commit of
// 66-record requests (per record, amortised).
func BenchmarkReceiver(b *testing.B) {
	r := NewReceiver(ReceiverConfig{QueueBytes: 1 << 30})
	body := ndjsonBody(66)
	ctx := context.Background()
	lim := engine.RecvLimits{MaxRecords: 10_000, MaxBytes: 1 << 20}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		out := splitOut{tag: uint64(i), spans: make([]span, 0, 66)}
		if err := split(body, kindNDJSON, &out); err != nil {
			b.Fatal(err)
		}
		if err := r.Enqueue(newAck(uint64(i), &out, nil)); err != nil {
			b.Fatal(err)
		}
		if i%16 == 15 {
			for r.QueuedBytes() > 0 {
				batch, _ := r.RecvLimited(ctx, lim)
				_ = r.Commit(ctx, batch.Tokens)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*66), "ns/record")
}

// BenchmarkReceiverDeepQueue is BenchmarkReceiver under load: 64 requests
// wait while the driver receives under a byte budget a small part of the
// queue (300 KB), as it does when the clients are ahead of it. A batch's
// record slice is sized by what it takes, not by the queue (B/op).
func BenchmarkReceiverDeepQueue(b *testing.B) {
	r := NewReceiver(ReceiverConfig{QueueBytes: 1 << 30})
	body := ndjsonBody(100)
	ctx := context.Background()
	lim := engine.RecvLimits{MaxRecords: 25_000, MaxBytes: 300 << 10}
	b.ReportAllocs()
	b.ResetTimer()
	records := 0
	queued := func() int {
		r.mu.Lock()
		defer r.mu.Unlock()
		return len(r.q)
	}
	for i := 0; b.Loop(); i++ {
		out := splitOut{tag: uint64(i), spans: make([]span, 0, 100)}
		if err := split(body, kindNDJSON, &out); err != nil {
			b.Fatal(err)
		}
		if err := r.Enqueue(newAck(uint64(i), &out, nil)); err != nil {
			b.Fatal(err)
		}
		records += 100
		// Keep 64 requests queued: receive one budget's worth whenever a
		// budget more has come in.
		for queued() > 64 {
			batch, _ := r.RecvLimited(ctx, lim)
			_ = r.Commit(ctx, batch.Tokens)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(records), "ns/record")
}
