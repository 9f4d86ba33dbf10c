package engine_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice/engine"
	"github.com/sluicehq/sluice/engine/memtransport"
)

// newMem returns an in-memory transport with a short poll timeout.
func newMem(tb testing.TB) *memtransport.Transport {
	tb.Helper()
	m, err := memtransport.New(memtransport.Config{PollTimeout: 10 * time.Millisecond})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(m.Close)
	return m
}

// inject injects JSON values and fails the test on error.
func inject(tb testing.TB, m *memtransport.Transport, values ...string) {
	tb.Helper()
	if _, err := m.InjectValues(values...); err != nil {
		tb.Fatal(err)
	}
}

// injectN injects n records of size bytes filled with c.
func injectN(tb testing.TB, m *memtransport.Transport, n, size int, c byte) {
	tb.Helper()
	for range n {
		if _, err := m.Inject(engine.Record{Value: fill(size, c)}); err != nil {
			tb.Fatal(err)
		}
	}
}

func fill(n int, c byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = c
	}
	return b
}

func newDriver(tb testing.TB, cfg engine.Config) *engine.Driver[uint64] {
	tb.Helper()
	d, err := engine.NewDriver[uint64](cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return d
}

// testCtx returns a context that ends the run as a safety net when a loop
// wrongly keeps going (the assertions then catch it).
func testCtx(tb testing.TB, d time.Duration) context.Context {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	tb.Cleanup(cancel)
	return ctx
}

func passThrough(_ context.Context, b engine.Batch[uint64]) (engine.Batch[uint64], error) {
	return b, nil
}

func okSink(context.Context, *engine.Batch[uint64]) error { return nil }

var errBoom = errors.New("boom")

func fanOut(recs []engine.Record, factor int) []engine.Record {
	out := make([]engine.Record, 0, len(recs)*factor)
	for _, r := range recs {
		for range factor {
			out = append(out, r)
		}
	}
	return out
}

// orderedReceiver hands out ONE record per receive with monotonic tokens
// (0, 1, 2, …) and a cumulative commit (the watermark is the max committed
// token, -1 for none), like Kafka offsets. It isolates ordered-commit
// semantics from memtransport's batching. Once exhausted it blocks until ctx
// is done, like a quiet broker.
type orderedReceiver struct {
	total           uint64
	badPayload      bool // deliver unparseable records
	failCommitOnSeq int64
	next            atomic.Uint64
	committed       atomic.Int64
	commitCalls     atomic.Int64
}

func newOrderedReceiver(total uint64) *orderedReceiver {
	r := &orderedReceiver{total: total, failCommitOnSeq: -1}
	r.committed.Store(-1)
	return r
}

func (r *orderedReceiver) Recv(ctx context.Context, _ int) (engine.Batch[uint64], error) {
	seq := r.next.Load()
	if seq >= r.total {
		<-ctx.Done()
		return engine.Batch[uint64]{}, ctx.Err()
	}
	r.next.Add(1)
	v := fmt.Sprintf(`{"seq":%d}`, seq)
	if r.badPayload {
		v = "not json {{{"
	}
	return engine.Batch[uint64]{Records: []engine.Record{{Value: []byte(v)}}, Tokens: []uint64{seq}}, nil
}

func (r *orderedReceiver) RecvLimited(ctx context.Context, lim engine.RecvLimits) (engine.Batch[uint64], error) {
	return r.Recv(ctx, lim.MaxRecords)
}

func (r *orderedReceiver) Commit(_ context.Context, tokens []uint64) error {
	r.commitCalls.Add(1)
	if len(tokens) == 0 {
		return nil
	}
	hi := int64(tokens[0])
	for _, t := range tokens {
		hi = max(hi, int64(t))
	}
	if hi == r.failCommitOnSeq {
		return fmt.Errorf("broker commit failed for seq %d", hi)
	}
	for {
		cur := r.committed.Load()
		if hi <= cur || r.committed.CompareAndSwap(cur, hi) {
			return nil
		}
	}
}

// countingReceiver delegates to a memtransport but records each commit: the
// call count, the tokens, and how many sink calls had happened by then.
type countingReceiver struct {
	*memtransport.Transport
	commitCalls, commitTokens, sinkCalls, sinkCallsAtCommit atomic.Int64
}

func (c *countingReceiver) Commit(ctx context.Context, tokens []uint64) error {
	c.commitCalls.Add(1)
	c.commitTokens.Add(int64(len(tokens)))
	c.sinkCallsAtCommit.Store(c.sinkCalls.Load())
	return c.Transport.Commit(ctx, tokens)
}

// byteAwareSource makes the receive-memory gap observable: Recv is bounded
// by records only (it would hand out bytes far over any budget), RecvLimited
// by records and bytes (floor one record). Every handed-out block's bytes
// are folded into a high-water. Exhausted, it reports ErrSourceClosed.
type byteAwareSource struct {
	mu        sync.Mutex
	remaining []engine.Record
	next      uint64
	highWater atomic.Int64
	committed atomic.Int64
}

func newByteAwareSource(recs []engine.Record) *byteAwareSource {
	s := &byteAwareSource{remaining: recs}
	s.committed.Store(-1)
	return s
}

func (s *byteAwareSource) pull(maxRecords int, maxBytes int64) (engine.Batch[uint64], error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.remaining) == 0 {
		return engine.Batch[uint64]{}, engine.ErrSourceClosed
	}
	var b engine.Batch[uint64]
	var bytes int64
	for len(b.Records) < maxRecords && len(s.remaining) > 0 {
		n := int64(s.remaining[0].Size())
		if maxBytes > 0 && len(b.Records) > 0 && bytes+n > maxBytes {
			break
		}
		bytes += n
		b.Records = append(b.Records, s.remaining[0])
		b.Tokens = append(b.Tokens, s.next)
		s.next++
		s.remaining = s.remaining[1:]
	}
	if bytes > s.highWater.Load() {
		s.highWater.Store(bytes)
	}
	return b, nil
}

func (s *byteAwareSource) Recv(_ context.Context, max int) (engine.Batch[uint64], error) {
	return s.pull(max, 0) // record-bounded only
}

func (s *byteAwareSource) RecvLimited(_ context.Context, lim engine.RecvLimits) (engine.Batch[uint64], error) {
	return s.pull(lim.MaxRecords, lim.MaxBytes)
}

func (s *byteAwareSource) Commit(_ context.Context, tokens []uint64) error {
	for _, t := range tokens {
		if int64(t) > s.committed.Load() {
			s.committed.Store(int64(t))
		}
	}
	return nil
}

// funcDLQ adapts a function to engine.DLQSink.
type funcDLQ func(ctx context.Context, entries []engine.DLQEntry) error

func (f funcDLQ) WriteDLQ(ctx context.Context, entries []engine.DLQEntry) error {
	return f(ctx, entries)
}

// countingDLQ counts the dead letters that reach the route point.
func countingDLQ(n *atomic.Int64) engine.DLQSink {
	return funcDLQ(func(_ context.Context, entries []engine.DLQEntry) error {
		n.Add(int64(len(entries)))
		return nil
	})
}
