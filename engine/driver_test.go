package engine_test

// The tests of this file port the 32 tests of the seed driver one for one,
// with the same assertions; the table "seed test → Go test" is in doc.go.
// Where the seed cancelled its loop after a fixed delay, these tests close
// the memtransport instead (Run returns nil once it drained the source), so
// they run in milliseconds; receivers that never close keep a context
// timeout as a safety net only.

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice/engine"
	"github.com/sluicehq/sluice/engine/codec"
	"github.com/sluicehq/sluice/governor"
)

// THE proving test: N source records with distinct tokens, a process that
// fans 1→2: all 2N records reach the sink and the commit acknowledges
// exactly the N source tokens.
func TestFanOutCommitsSourceTokensNotOutputCount(t *testing.T) {
	const n = 5
	m := newMem(t)
	for i := range n {
		inject(t, m, `{"id":`+string(rune('0'+i))+`}`)
	}
	m.Close()
	d := newDriver(t, engine.Config{})
	var sinkRecords, sinkTokens atomic.Int64
	err := d.Run(testCtx(t, 5*time.Second), m,
		func(_ context.Context, b engine.Batch[uint64]) (engine.Batch[uint64], error) {
			return b.MapRecords(func(r []engine.Record) []engine.Record { return fanOut(r, 2) }), nil
		},
		func(_ context.Context, b *engine.Batch[uint64]) error {
			sinkRecords.Add(int64(len(b.Records)))
			sinkTokens.Add(int64(len(b.Tokens)))
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if got := sinkRecords.Load(); got != 2*n {
		t.Fatalf("sink saw %d records, want all 2N = %d", got, 2*n)
	}
	if got := sinkTokens.Load(); got != n {
		t.Fatalf("sink saw %d tokens, want the N = %d source tokens", got, n)
	}
	if got := m.Committed(); got != n-1 {
		t.Fatalf("committed watermark = %d, want %d (highest source token, not the output count)", got, n-1)
	}
	if got := d.Stats(); got.RecordsIn != n || got.RecordsOut != 2*n || got.Commits != 1 {
		t.Fatalf("stats = %+v", got)
	}
}

// A sink error is terminal and skips the commit.
func TestSinkErrorDoesNotCommit(t *testing.T) {
	m := newMem(t)
	inject(t, m, `{"a":1}`, `{"b":2}`)
	m.Close()
	d := newDriver(t, engine.Config{})
	err := d.Run(testCtx(t, 5*time.Second), m, passThrough,
		func(context.Context, *engine.Batch[uint64]) error { return errBoom })
	var se *engine.SinkError
	if !errors.As(err, &se) || !errors.Is(err, errBoom) {
		t.Fatalf("err = %v, want a *SinkError wrapping the sink's error", err)
	}
	if se.Records != 2 {
		t.Fatalf("SinkError.Records = %d", se.Records)
	}
	if got := m.Committed(); got != -1 {
		t.Fatalf("committed = %d, want -1 (no commit after a sink error)", got)
	}
	if m.Commits() != 0 {
		t.Fatalf("commit calls = %d", m.Commits())
	}
}

// The driver commits after a successful sink.
func TestAutoCommitsAfterSinkOK(t *testing.T) {
	m := newMem(t)
	inject(t, m, `{"id":0}`, `{"id":1}`, `{"id":2}`)
	m.Close()
	d := newDriver(t, engine.Config{})
	if err := d.Run(testCtx(t, 5*time.Second), m, passThrough, okSink); err != nil {
		t.Fatal(err)
	}
	if got := m.Committed(); got != 2 {
		t.Fatalf("committed = %d, want 2", got)
	}
}

// The ticker fires on its interval and cancelling ctx stops the loop cleanly.
func TestTickerFiresAndShutdownStopsLoop(t *testing.T) {
	m := newMem(t)
	var ticks atomic.Int64
	const every = 20 * time.Millisecond
	d := newDriver(t, engine.Config{TickEvery: every, OnTick: func(context.Context) error {
		ticks.Add(1)
		return nil
	}})
	// The seed ran the loop for 90 ms and wanted ≥ 2 ticks; on a loaded
	// machine that window is too tight, so wait for the second tick (5 s
	// at most) and then shut down.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, m, passThrough, okSink) }()
	for ticks.Load() < 2 && time.Since(start) < 5*time.Second {
		time.Sleep(time.Millisecond)
	}
	second := time.Since(start)
	if got := ticks.Load(); got < 2 {
		t.Fatalf("ticks = %d after %v at %v, want ≥ 2", got, second, every)
	}
	if second < 2*every {
		t.Fatalf("two ticks after %v, before two periods of %v", second, every)
	}
	cancel()
	stop := time.Now()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("shutdown must stop the loop cleanly, got %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("loop did not stop promptly on cancellation")
	}
	t.Logf("second tick after %v; stopped %v after cancel", second, time.Since(stop))
	if d.Stats().Ticks != uint64(ticks.Load()) {
		t.Fatalf("Stats.Ticks = %d, calls = %d", d.Stats().Ticks, ticks.Load())
	}
}

// On-demand path: a transform reads a field with codec.Get, the driver
// never pre-parses.
func TestOnDemandTransformReadsFieldViaCodec(t *testing.T) {
	m := newMem(t)
	inject(t, m, `{"_table":"events","id":1}`)
	m.Close()
	table := codec.MustParsePath("_table")
	var seen string
	d := newDriver(t, engine.Config{})
	err := d.Run(testCtx(t, 5*time.Second), m, func(_ context.Context, b engine.Batch[uint64]) (engine.Batch[uint64], error) {
		for _, r := range b.Records {
			v, err := codec.Get(r.Value, table)
			if err != nil {
				return b, err
			}
			seen = string(v)
		}
		return b, nil
	}, okSink)
	if err != nil {
		t.Fatal(err)
	}
	if seen != `"events"` {
		t.Fatalf("seen = %s", seen)
	}
	if d.Stats().ParseErrors != 0 {
		t.Fatal("the on-demand path must not pre-parse")
	}
}

// Pre-parsed path: records aligned with values, the interner dedups the
// routing-field name across blocks, all tokens committed.
func TestParsedPathPreParsesAndInternerDedups(t *testing.T) {
	m := newMem(t)
	for range 4 {
		inject(t, m, `{"_table":"events","id":1}`)
	}
	m.Close()
	d := newDriver(t, engine.Config{MaxRecords: 2}) // two blocks share the interner
	var hits atomic.Int64
	var handles []any
	err := d.RunParsed(testCtx(t, 5*time.Second), m, func(_ context.Context, pb *engine.ParsedBatch[uint64]) (engine.Batch[uint64], error) {
		if len(pb.Records) != len(pb.Values) {
			t.Errorf("records %d not aligned with values %d", len(pb.Records), len(pb.Values))
		}
		h := pb.Intern("_table")
		handles = append(handles, h)
		p, err := pb.Interner.Path(h.Value())
		if err != nil {
			return engine.Batch[uint64]{}, err
		}
		for _, v := range pb.Values {
			if f, err := v.Lookup(p); err == nil {
				if s, _ := f.Str(); s == "events" {
					hits.Add(1)
				}
			}
		}
		return pb.Batch(), nil
	}, okSink)
	if err != nil {
		t.Fatal(err)
	}
	if hits.Load() != 4 {
		t.Fatalf("routed %d records on _table, want 4", hits.Load())
	}
	if len(handles) != 2 || handles[0] != handles[1] {
		t.Fatalf("interned handles %v: want one canonical handle across blocks", handles)
	}
	if n := d.Interner().Len(); n != 1 {
		t.Fatalf("interner holds %d names, want 1", n)
	}
	if m.Committed() != 3 {
		t.Fatalf("committed = %d, want 3", m.Committed())
	}
}

// Pre-parsed path, default ParseErrorDLQ: an unparseable record is a dead
// letter the process stage sees, it reaches the DLQ route point before the
// commit, and every source token is committed.
func TestParsedPathRoutesParseFailuresToDLQ(t *testing.T) {
	m := newMem(t)
	inject(t, m, `{"id":1}`, `not json {{{`, `{"id":3}`)
	m.Close()
	var routed atomic.Int64
	d := newDriver(t, engine.Config{DLQPolicy: engine.DLQRoute, DLQ: countingDLQ(&routed)})
	var dlqSeen, kept atomic.Int64
	err := d.RunParsed(testCtx(t, 5*time.Second), m, func(_ context.Context, pb *engine.ParsedBatch[uint64]) (engine.Batch[uint64], error) {
		dlqSeen.Add(int64(len(pb.DLQ)))
		kept.Add(int64(len(pb.Records)))
		for _, e := range pb.DLQ {
			if e.Stage != "parse" || string(e.Record.Value) != "not json {{{" {
				t.Errorf("dead letter = %+v", e)
			}
		}
		return pb.Batch(), nil
	}, okSink)
	if err != nil {
		t.Fatal(err)
	}
	if kept.Load() != 2 || dlqSeen.Load() != 1 || routed.Load() != 1 {
		t.Fatalf("kept %d, dlq seen %d, routed %d; want 2, 1, 1", kept.Load(), dlqSeen.Load(), routed.Load())
	}
	if m.Committed() != 2 {
		t.Fatalf("committed = %d, want 2 (a parse failure does not lose its token)", m.Committed())
	}
	if s := d.Stats(); s.ParseErrors != 1 || s.DLQRouted != 1 {
		t.Fatalf("stats = %+v", s)
	}
}

// The block's bytes are leased from the guard while it is processed and
// sunk, and released afterwards.
func TestLeaseIngressBatchAccountsAndReleases(t *testing.T) {
	guard := governor.NewMemoryGuard(1<<20, 0.9)
	m := newMem(t)
	values := []string{`{"id":0}`, `{"id":1}`, `{"id":2}`, `{"id":3}`}
	inject(t, m, values...)
	m.Close()
	var want int64
	for _, v := range values {
		want += int64(len(v))
	}
	var inProcess, inSink atomic.Int64
	d := newDriver(t, engine.Config{Guard: guard})
	if guard.InFlight() != 0 {
		t.Fatal("guard not empty at start")
	}
	err := d.Run(testCtx(t, 5*time.Second), m, func(_ context.Context, b engine.Batch[uint64]) (engine.Batch[uint64], error) {
		inProcess.Store(guard.InFlight())
		return b, nil
	}, func(context.Context, *engine.Batch[uint64]) error {
		inSink.Store(guard.InFlight())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if inProcess.Load() != want || inSink.Load() != want {
		t.Fatalf("leased %d in process, %d in sink; want %d", inProcess.Load(), inSink.Load(), want)
	}
	if guard.InFlight() != 0 {
		t.Fatalf("in flight after run = %d, want 0 (released)", guard.InFlight())
	}
}

// Ack barrier (sink failure): token 0's block fails at the sink; nothing
// may be committed, the run stops, token 1 is never fetched.
func TestSinkErrorBlocksLaterOrderedCommits(t *testing.T) {
	r := newOrderedReceiver(3)
	d := newDriver(t, engine.Config{})
	var sinkCalls atomic.Int64
	err := d.Run(testCtx(t, 2*time.Second), r, passThrough, func(_ context.Context, b *engine.Batch[uint64]) error {
		sinkCalls.Add(1)
		for _, tok := range b.Tokens {
			if tok == 0 {
				return errBoom
			}
		}
		return nil
	})
	var se *engine.SinkError
	if !errors.As(err, &se) {
		t.Fatalf("err = %v, want a terminal *SinkError", err)
	}
	if r.committed.Load() != -1 || r.commitCalls.Load() != 0 {
		t.Fatalf("watermark %d after %d commit calls; nothing may commit past the failed token 0", r.committed.Load(), r.commitCalls.Load())
	}
	if sinkCalls.Load() != 1 || r.next.Load() != 1 {
		t.Fatalf("sink calls %d, records fetched %d; the loop must stop at the failed block", sinkCalls.Load(), r.next.Load())
	}
}

// Ack barrier (commit failure): the commit of token 0 fails; the run stops
// and token 1 is never processed.
func TestCommitErrorBlocksLaterOrderedCommits(t *testing.T) {
	r := newOrderedReceiver(3)
	r.failCommitOnSeq = 0
	d := newDriver(t, engine.Config{})
	var sinkCalls atomic.Int64
	err := d.Run(testCtx(t, 2*time.Second), r, passThrough, func(context.Context, *engine.Batch[uint64]) error {
		sinkCalls.Add(1)
		return nil
	})
	var ce *engine.CommitError
	if !errors.As(err, &ce) || ce.Tokens != 1 {
		t.Fatalf("err = %v, want a terminal *CommitError of 1 token", err)
	}
	if r.committed.Load() != -1 {
		t.Fatalf("watermark = %d, want -1", r.committed.Load())
	}
	if sinkCalls.Load() != 1 || r.next.Load() != 1 {
		t.Fatalf("sink calls %d, fetched %d; the loop must stop at the failed commit", sinkCalls.Load(), r.next.Load())
	}
}

// Ack barrier, streaming: a sub-block sink error on token 0's block blocks
// every later ordered commit.
func TestStreamingSinkErrorBlocksLaterOrderedCommits(t *testing.T) {
	r := newOrderedReceiver(3)
	d := newDriver(t, engine.Config{})
	var sinkCalls atomic.Int64
	err := d.RunStreaming(testCtx(t, 2*time.Second), r, passThrough, func(_ context.Context, b *engine.Batch[uint64]) error {
		sinkCalls.Add(1)
		if len(b.Tokens) != 0 {
			t.Error("sub-block views must carry no tokens")
		}
		for _, rec := range b.Records {
			if string(rec.Value) == `{"seq":0}` {
				return errBoom
			}
		}
		return nil
	}, 64)
	var se *engine.SinkError
	if !errors.As(err, &se) {
		t.Fatalf("err = %v, want a terminal *SinkError", err)
	}
	if r.committed.Load() != -1 || r.commitCalls.Load() != 0 {
		t.Fatalf("watermark %d after %d commits; want none", r.committed.Load(), r.commitCalls.Load())
	}
	if sinkCalls.Load() != 1 {
		t.Fatalf("sink calls = %d, want 1", sinkCalls.Load())
	}
}

func sized(n int, size int) []engine.Record {
	recs := make([]engine.Record, n)
	for i := range recs {
		recs[i] = engine.Record{Value: fill(size, 'x')}
	}
	return recs
}

func split(recs []engine.Record, target int64) []int {
	var lens []int
	d := engine.NewSubBlockDrain(recs, target)
	for sub, ok := d.Next(); ok; sub, ok = d.Next() {
		lens = append(lens, len(sub))
	}
	return lens
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Five 10-byte records with a 25-byte target: {2, 2, 1}.
func TestSplitGroupsByByteTarget(t *testing.T) {
	if got := split(sized(5, 10), 25); !equalInts(got, []int{2, 2, 1}) {
		t.Fatalf("sub-blocks = %v, want [2 2 1]", got)
	}
}

// A record over the target is a sub-block by itself (no stall); so is every
// record with a target ≤ 0.
func TestSplitFloorOneOversizedRecord(t *testing.T) {
	recs := []engine.Record{{Value: []byte("this-payload-is-way-over-the-target")}, {Value: []byte("small")}}
	if got := split(recs, 4); !equalInts(got, []int{1, 1}) {
		t.Fatalf("sub-blocks = %v, want [1 1]", got)
	}
	if got := split(sized(3, 1), 0); !equalInts(got, []int{1, 1, 1}) {
		t.Fatalf("target 0: sub-blocks = %v, want [1 1 1]", got)
	}
}

func TestSplitEmptyYieldsNoSubBlocks(t *testing.T) {
	if got := split(nil, 100); len(got) != 0 {
		t.Fatalf("sub-blocks = %v, want none", got)
	}
}

func TestSplitSmallerThanTargetIsOneSubBlock(t *testing.T) {
	if got := split(sized(3, 3), 10_000); !equalInts(got, []int{3}) {
		t.Fatalf("sub-blocks = %v, want [3]", got)
	}
}

// THE peak-memory test: 16 records of 64 B (1 KiB) streamed in sub-blocks
// of 256 B; the guard's in-flight bytes sampled in the sink never exceed one
// sub-block, and everything is released at the end.
func TestStreamingPeakLeaseBoundedToOneSubBlock(t *testing.T) {
	const recordBytes, n = 64, 16
	const total = recordBytes * n
	guard := governor.NewMemoryGuard(1<<20, 0.9)
	m := newMem(t)
	injectN(t, m, n, recordBytes, 'x')
	m.Close()
	d := newDriver(t, engine.Config{Guard: guard})
	var peak, sinks atomic.Int64
	err := d.RunStreaming(testCtx(t, 5*time.Second), m, passThrough, func(context.Context, *engine.Batch[uint64]) error {
		sinks.Add(1)
		if v := guard.InFlight(); v > peak.Load() {
			peak.Store(v)
		}
		return nil
	}, total/4)
	if err != nil {
		t.Fatal(err)
	}
	if p := peak.Load(); p > total/4 || p <= 0 || p >= total {
		t.Fatalf("peak lease %d, want in (0, %d] (one sub-block; the whole block is %d)", p, total/4, total)
	}
	if guard.Peak() > total/4 {
		t.Fatalf("guard high-water %d exceeds one sub-block %d", guard.Peak(), total/4)
	}
	if sinks.Load() != 4 || m.Committed() != n-1 {
		t.Fatalf("sinks %d, committed %d; want 4, %d", sinks.Load(), m.Committed(), n-1)
	}
	if guard.InFlight() != 0 {
		t.Fatalf("in flight after run = %d", guard.InFlight())
	}
}

// Commit fires exactly once, after the final sub-block, with all N tokens.
func TestStreamingCommitsOnceAfterFinalSubBlock(t *testing.T) {
	const n, recordBytes = 12, 32
	m := newMem(t)
	injectN(t, m, n, recordBytes, 'y')
	m.Close()
	r := &countingReceiver{Transport: m}
	d := newDriver(t, engine.Config{})
	err := d.RunStreaming(testCtx(t, 5*time.Second), r, passThrough, func(context.Context, *engine.Batch[uint64]) error {
		r.sinkCalls.Add(1)
		return nil
	}, recordBytes*3)
	if err != nil {
		t.Fatal(err)
	}
	sinks := r.sinkCalls.Load()
	if sinks != 4 {
		t.Fatalf("sink calls = %d, want 4 sub-blocks", sinks)
	}
	if r.commitCalls.Load() != 1 || r.commitTokens.Load() != n {
		t.Fatalf("commit calls %d with %d tokens; want 1 with %d", r.commitCalls.Load(), r.commitTokens.Load(), n)
	}
	if r.sinkCallsAtCommit.Load() != sinks {
		t.Fatalf("commit after %d of %d sinks; must follow the final sub-block", r.sinkCallsAtCommit.Load(), sinks)
	}
	if s := d.Stats(); s.SubBlocks != 4 || s.Blocks != 1 || s.Commits != 1 {
		t.Fatalf("stats = %+v", s)
	}
}

// A sink error on the middle sub-block stops the block: no commit, the third
// sub-block is never sunk.
func TestStreamingMidSubBlockSinkErrorSkipsCommit(t *testing.T) {
	const n, recordBytes = 9, 32
	m := newMem(t)
	injectN(t, m, n, recordBytes, 'z')
	m.Close()
	r := &countingReceiver{Transport: m}
	d := newDriver(t, engine.Config{})
	err := d.RunStreaming(testCtx(t, 5*time.Second), r, passThrough, func(context.Context, *engine.Batch[uint64]) error {
		if r.sinkCalls.Add(1) == 2 {
			return errBoom
		}
		return nil
	}, recordBytes*3)
	var se *engine.SinkError
	if !errors.As(err, &se) || se.SubBlock != 1 || se.Records != 3 {
		t.Fatalf("err = %v, want a *SinkError on sub-block 1 of 3 records", err)
	}
	if r.commitCalls.Load() != 0 || m.Committed() != -1 {
		t.Fatalf("commit calls %d, committed %d; want none", r.commitCalls.Load(), m.Committed())
	}
	if r.sinkCalls.Load() != 2 {
		t.Fatalf("sink calls = %d, want 2 (third never sunk)", r.sinkCalls.Load())
	}
}

// A block under the target streams as one sub-block: one sink, one commit.
func TestStreamingSmallBatchIsSingleSubBlock(t *testing.T) {
	m := newMem(t)
	inject(t, m, `{"id":0}`, `{"id":1}`, `{"id":2}`)
	m.Close()
	d := newDriver(t, engine.Config{})
	var sinks, recs atomic.Int64
	err := d.RunStreaming(testCtx(t, 5*time.Second), m, passThrough, func(_ context.Context, b *engine.Batch[uint64]) error {
		sinks.Add(1)
		recs.Add(int64(len(b.Records)))
		return nil
	}, 10_000)
	if err != nil {
		t.Fatal(err)
	}
	if sinks.Load() != 1 || recs.Load() != 3 || m.Committed() != 2 || m.Commits() != 1 {
		t.Fatalf("sinks %d, records %d, committed %d, commits %d; want 1, 3, 2, 1", sinks.Load(), recs.Load(), m.Committed(), m.Commits())
	}
}

// governed returns a guard, pressure and budget wired as the gateway does.
func governed(tb testing.TB, limit int64, hardAt float64, cfg governor.BudgetConfig) (*governor.MemoryGuard, *governor.UnifiedPressure, *governor.ByteBudget) {
	tb.Helper()
	guard := governor.NewMemoryGuard(limit, hardAt)
	p, err := governor.NewUnifiedPressure(governor.DefaultHysteresis(), guard)
	if err != nil {
		tb.Fatal(err)
	}
	b, err := governor.NewByteBudget(cfg, p)
	if err != nil {
		tb.Fatal(err)
	}
	return guard, p, b
}

// Governor on: every record is streamed to the sink, all tokens commit, and
// the AIMD loop observes the blocks.
func TestGovernedOnStreamsAndCommitsViaMemoryTransport(t *testing.T) {
	guard, _, budget := governed(t, 1<<20, 0.9, governor.BudgetConfig{})
	m := newMem(t)
	for range 6 {
		inject(t, m, `{"id":1}`)
	}
	m.Close()
	d := newDriver(t, engine.Config{Guard: guard, Budget: budget})
	var recs atomic.Int64
	err := d.RunGoverned(testCtx(t, 5*time.Second), m, passThrough, func(_ context.Context, b *engine.Batch[uint64]) error {
		recs.Add(int64(len(b.Records)))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if recs.Load() != 6 || m.Committed() != 5 {
		t.Fatalf("sunk %d, committed %d; want 6, 5", recs.Load(), m.Committed())
	}
	if budget.Stats().Observations == 0 {
		t.Fatal("the governed loop did not feed the AIMD budget")
	}
	if guard.InFlight() != 0 {
		t.Fatalf("in flight = %d", guard.InFlight())
	}
}

// Governor off (no budget): RunGoverned is the whole-batch loop.
func TestGovernedOffIsWholeBatchPassthrough(t *testing.T) {
	m := newMem(t)
	inject(t, m, `{"id":0}`, `{"id":1}`, `{"id":2}`, `{"id":3}`)
	m.Close()
	d := newDriver(t, engine.Config{})
	var sinks, recs atomic.Int64
	err := d.RunGoverned(testCtx(t, 5*time.Second), m, passThrough, func(_ context.Context, b *engine.Batch[uint64]) error {
		sinks.Add(1)
		recs.Add(int64(len(b.Records)))
		if len(b.Tokens) != 4 {
			t.Errorf("whole-batch sink saw %d tokens, want 4", len(b.Tokens))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if sinks.Load() != 1 || recs.Load() != 4 || m.Committed() != 3 {
		t.Fatalf("sinks %d, records %d, committed %d; want 1, 4, 3", sinks.Load(), recs.Load(), m.Committed())
	}
}

// The gate and the budget share one pressure: high memory holds the gate and
// shrinks the budget (HARD override), low memory admits.
func TestGovernedGateAndBudgetSharePressure(t *testing.T) {
	guard, p, budget := governed(t, 1000, 0.9, governor.BudgetConfig{Min: 100, Max: 100_000})
	gate := governor.NewInboundGate(p)
	start := budget.Bytes()
	if gate.Evaluate() != governor.Yes {
		t.Fatal("low pressure must admit")
	}
	lease := guard.Lease(950)
	defer lease.Release()
	if gate.Evaluate() != governor.Hold {
		t.Fatal("high pressure must hold the gate")
	}
	budget.Observe(0, time.Millisecond, 100*time.Millisecond)
	if budget.Bytes() >= start {
		t.Fatalf("budget %d, want < %d: high memory shrinks the shared budget", budget.Bytes(), start)
	}
}

// The drain is never gated: with pressure pinned high, Send and SendBatch
// succeed and the latch stays closed.
func TestSendUnaffectedByPressurePinnedHigh(t *testing.T) {
	guard := governor.NewMemoryGuard(1000, 0.8)
	lease := guard.Lease(950)
	defer lease.Release()
	p, err := governor.NewUnifiedPressure(governor.DefaultHysteresis(), guard)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Latched() {
		t.Fatal("pinned-high pressure must latch")
	}
	m := newMem(t)
	if err := m.Send(context.Background(), engine.Record{Key: []byte("k"), Value: []byte(`{"id":1}`)}); err != nil {
		t.Fatalf("Send under pressure: %v", err)
	}
	recs := make([]engine.Record, 5)
	for i := range recs {
		recs[i] = engine.Record{Key: []byte{'k', byte('0' + i)}, Value: []byte(`{"id":2}`)}
	}
	if err := m.SendBatch(context.Background(), recs); err != nil {
		t.Fatalf("SendBatch under pressure: %v", err)
	}
	if !p.Latched() {
		t.Fatal("sending must not touch the pressure latch")
	}
	sent := m.Sent()
	if len(sent) != 6 || string(sent[5].Key) != "k4" || string(sent[0].Value) != `{"id":1}` {
		t.Fatalf("sent %d records: %+v", len(sent), sent)
	}
}

// THE never-OOM test: a memory limit of 18 KiB, 14× that much payload
// (256 × 1 KiB) through the governed loop. The gate holds at some point,
// every record reaches the sink, every token commits, the in-flight peak
// stays under half the payload, and every lease is released.
func TestOperationalNeverOOMGovernedPipelineBoundsMemory(t *testing.T) {
	const limit = 18 * 1024
	const recordBytes, n = 1024, 256
	const total = recordBytes * n
	guard, p, budget := governed(t, limit, 0.9, governor.BudgetConfig{Start: 16 * 1024, Max: 16 * 1024, Min: 1024})
	gate := governor.NewInboundGate(p)
	m := newMem(t)
	injectN(t, m, n, recordBytes, 'q')
	m.Close()
	d := newDriver(t, engine.Config{MaxRecords: 16, Guard: guard, Budget: budget})
	var recs, peak atomic.Int64
	var held atomic.Bool
	err := d.RunGoverned(testCtx(t, 10*time.Second), m, passThrough, func(_ context.Context, b *engine.Batch[uint64]) error {
		if v := guard.InFlight(); v > peak.Load() {
			peak.Store(v)
		}
		if gate.Evaluate() == governor.Hold {
			held.Store(true)
		}
		recs.Add(int64(len(b.Records)))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if recs.Load() != n || m.Committed() != n-1 {
		t.Fatalf("sunk %d, committed %d; want %d, %d (the drain never stalls)", recs.Load(), m.Committed(), n, n-1)
	}
	if !held.Load() {
		t.Fatal("the inbound gate never held under sustained pressure")
	}
	if pk := peak.Load(); pk <= 0 || pk >= total/2 {
		t.Fatalf("peak in flight %d, want in (0, %d)", pk, total/2)
	}
	if guard.Peak() >= total/2 {
		t.Fatalf("guard high-water %d ≥ half the payload %d", guard.Peak(), total/2)
	}
	if budget.Bytes() < 1 {
		t.Fatal("budget collapsed below its floor")
	}
	if guard.InFlight() != 0 {
		t.Fatalf("in flight after run = %d (leaked lease)", guard.InFlight())
	}
}

// The governed receive is bounded by the byte budget, not only by records:
// a source that could hand out 256 KiB in one poll hands out ≤ budget + one
// record.
func TestGovernedRecvIsByteBoundedNotRecordBounded(t *testing.T) {
	const recordBytes, n = 4 * 1024, 64
	const budgetBytes = 16 * 1024
	_, _, budget := governed(t, 1<<20, 0.9, governor.BudgetConfig{Start: budgetBytes, Max: budgetBytes, Min: recordBytes, RecordCap: 4096})
	src := newByteAwareSource(sized(n, recordBytes))
	d := newDriver(t, engine.Config{MaxRecords: 4096, Budget: budget})
	var recs atomic.Int64
	err := d.RunGoverned(testCtx(t, 5*time.Second), src, passThrough, func(_ context.Context, b *engine.Batch[uint64]) error {
		recs.Add(int64(len(b.Records)))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if pk := src.highWater.Load(); pk <= 0 || pk > budgetBytes+recordBytes {
		t.Fatalf("a governed receive retained %d bytes, want in (0, %d] (the whole source is %d)", pk, budgetBytes+recordBytes, n*recordBytes)
	}
	if recs.Load() != n || src.committed.Load() != n-1 {
		t.Fatalf("sunk %d, committed %d", recs.Load(), src.committed.Load())
	}
}

// The drain is lazy: each Next yields one sub-block, the rest stays.
func TestSubBlockDrainYieldsIncrementally(t *testing.T) {
	d := engine.NewSubBlockDrain(sized(6, 10), 25)
	for i, wantRemaining := range []int{4, 2, 0} {
		sub, ok := d.Next()
		if !ok || len(sub) != 2 {
			t.Fatalf("sub-block %d = %d records, %v", i, len(sub), ok)
		}
		if d.Remaining() != wantRemaining {
			t.Fatalf("after sub-block %d: %d remaining, want %d", i, d.Remaining(), wantRemaining)
		}
		if cap(sub) != len(sub) {
			t.Fatalf("sub-block capacity %d > length %d: an append would overwrite the next sub-block", cap(sub), len(sub))
		}
	}
	if _, ok := d.Next(); ok || !d.Done() {
		t.Fatal("drain not exhausted")
	}
}

// ParseErrorSkip drops the failure without a dead letter and commits the
// survivors' and the dropped record's tokens.
func TestParsedParseErrorSkipDropsWithoutDLQAndCommitsSurvivors(t *testing.T) {
	m := newMem(t)
	inject(t, m, `{"id":1}`, `not json {{{`, `{"id":3}`)
	m.Close()
	var routed atomic.Int64
	d := newDriver(t, engine.Config{ParseError: engine.ParseErrorSkip, DLQPolicy: engine.DLQRoute, DLQ: countingDLQ(&routed)})
	var dlqSeen, kept atomic.Int64
	err := d.RunParsed(testCtx(t, 5*time.Second), m, func(_ context.Context, pb *engine.ParsedBatch[uint64]) (engine.Batch[uint64], error) {
		dlqSeen.Add(int64(len(pb.DLQ)))
		kept.Add(int64(len(pb.Records)))
		return pb.Batch(), nil
	}, okSink)
	if err != nil {
		t.Fatal(err)
	}
	if kept.Load() != 2 || dlqSeen.Load() != 0 || routed.Load() != 0 {
		t.Fatalf("kept %d, dlq seen %d, routed %d; want 2, 0, 0", kept.Load(), dlqSeen.Load(), routed.Load())
	}
	if m.Committed() != 2 {
		t.Fatalf("committed = %d, want 2", m.Committed())
	}
	if s := d.Stats(); s.ParseSkipped != 1 || s.ParseErrors != 1 {
		t.Fatalf("stats = %+v", s)
	}
}

// ParseErrorFailBatch: the block fails terminally before the sink, nothing
// is committed.
func TestParsedParseErrorFailBatchSkipsCommit(t *testing.T) {
	r := newOrderedReceiver(1)
	r.badPayload = true
	d := newDriver(t, engine.Config{ParseError: engine.ParseErrorFailBatch})
	var sinkCalls atomic.Int64
	err := d.RunParsed(testCtx(t, 2*time.Second), r, func(_ context.Context, pb *engine.ParsedBatch[uint64]) (engine.Batch[uint64], error) {
		return pb.Batch(), nil
	}, func(context.Context, *engine.Batch[uint64]) error {
		sinkCalls.Add(1)
		return nil
	})
	var pe *engine.ProcessError
	if !errors.Is(err, engine.ErrParseBatchFailed) || !errors.As(err, &pe) || !errors.Is(err, codec.ErrInvalid) {
		t.Fatalf("err = %v, want a *ProcessError wrapping ErrParseBatchFailed and codec.ErrInvalid", err)
	}
	if r.committed.Load() != -1 || sinkCalls.Load() != 0 {
		t.Fatalf("committed %d, sink calls %d; want -1, 0", r.committed.Load(), sinkCalls.Load())
	}
}

// ParseErrorDLQ: the dead letter is routed BEFORE the commit, survivors are
// sunk, all tokens commit.
func TestParsedParseErrorDLQRoutesBeforeCommit(t *testing.T) {
	m := newMem(t)
	inject(t, m, `{"id":1}`, `not json {{{`, `{"id":3}`)
	m.Close()
	var routed atomic.Int64
	committedAtRoute := int64(-100)
	dlq := funcDLQ(func(_ context.Context, entries []engine.DLQEntry) error {
		committedAtRoute = m.Committed()
		routed.Add(int64(len(entries)))
		return nil
	})
	d := newDriver(t, engine.Config{ParseError: engine.ParseErrorDLQ, DLQPolicy: engine.DLQRoute, DLQ: dlq})
	var sunk atomic.Int64
	err := d.RunParsed(testCtx(t, 5*time.Second), m, func(_ context.Context, pb *engine.ParsedBatch[uint64]) (engine.Batch[uint64], error) {
		return pb.Batch(), nil
	}, func(_ context.Context, b *engine.Batch[uint64]) error {
		sunk.Add(int64(len(b.Records)))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if routed.Load() != 1 || sunk.Load() != 2 {
		t.Fatalf("routed %d, sunk %d; want 1, 2", routed.Load(), sunk.Load())
	}
	if committedAtRoute != -1 {
		t.Fatalf("watermark at route time = %d, want -1 (route precedes commit)", committedAtRoute)
	}
	if m.Committed() != 2 {
		t.Fatalf("committed = %d, want 2", m.Committed())
	}
}

// The on-demand path routes dead letters the process stage emits, even
// though the sink ignores them.
func TestStandardSinkDoesNotSilentlyDropDLQEntries(t *testing.T) {
	m := newMem(t)
	inject(t, m, `{"id":1}`, `{"id":2}`)
	m.Close()
	var routed atomic.Int64
	d := newDriver(t, engine.Config{DLQPolicy: engine.DLQRoute, DLQ: countingDLQ(&routed)})
	err := d.Run(testCtx(t, 5*time.Second), m, func(_ context.Context, b engine.Batch[uint64]) (engine.Batch[uint64], error) {
		b.DLQ = append(b.DLQ, engine.DLQEntry{Record: engine.Record{Value: []byte("process-emitted dead-letter")}, Reason: "bad record", Stage: "test"})
		return b, nil
	}, func(_ context.Context, b *engine.Batch[uint64]) error {
		if len(b.DLQ) != 0 {
			t.Error("dead letters must be routed before the sink, not left to it")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if routed.Load() < 1 {
		t.Fatal("the process-emitted dead letter was dropped")
	}
	if m.Committed() != 1 {
		t.Fatalf("committed = %d, want 1", m.Committed())
	}
}

// A DLQ write failure under DLQRoute is terminal and blocks the commit.
func TestDLQRouteFailureIsTerminalAndBlocksCommit(t *testing.T) {
	r := newOrderedReceiver(1)
	dlqDown := errors.New("dlq transport down")
	d := newDriver(t, engine.Config{DLQPolicy: engine.DLQRoute, DLQ: funcDLQ(func(context.Context, []engine.DLQEntry) error { return dlqDown })})
	var sinkCalls atomic.Int64
	err := d.Run(testCtx(t, 2*time.Second), r, func(_ context.Context, b engine.Batch[uint64]) (engine.Batch[uint64], error) {
		b.DLQ = append(b.DLQ, engine.DLQEntry{Record: engine.Record{Value: []byte("bad")}, Reason: "process dlq"})
		return b, nil
	}, func(context.Context, *engine.Batch[uint64]) error {
		sinkCalls.Add(1)
		return nil
	})
	var de *engine.DLQRouteError
	if !errors.As(err, &de) || !errors.Is(err, dlqDown) || de.Entries != 1 || de.Policy != engine.DLQRoute {
		t.Fatalf("err = %v, want a *DLQRouteError wrapping the DLQ failure", err)
	}
	if r.committed.Load() != -1 || sinkCalls.Load() != 0 {
		t.Fatalf("committed %d, sink calls %d; want -1, 0", r.committed.Load(), sinkCalls.Load())
	}
}
