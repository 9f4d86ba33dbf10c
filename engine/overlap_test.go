package engine_test

// Tests of RunGoverned with Config.Depth > 1 (engine/overlap.go): commits in
// receive order whatever order the process stage finishes in, the first
// terminal error stops everything after it, leases are released on every
// path, memory stays within Depth × budget, the outcomes equal the
// sequential loop's, and a hammer under -race.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice/engine"
	"github.com/sluicehq/sluice/governor"
)

// seqReceiver hands out records numbered 0, 1, 2, … (Record.Tag and the
// token are the number) in blocks of at most per records; it honours
// RecvLimits.MaxRecords but, unless bytes is set, not MaxBytes, so that the
// driver cuts blocks into sub-blocks. Commit checks that commits come in
// receive order: each one's tokens are exactly the next ones. Commit may run
// concurrently with Recv. Exhausted, it reports ErrSourceClosed (close) or
// waits for ctx.
type seqReceiver struct {
	total, per, size int
	bytes            bool           // honour MaxBytes (floor one record)
	close            bool           // ErrSourceClosed once exhausted
	inboundDLQ       func(int) bool // a source dead letter on the block that starts at seq
	failCommit       int            // fail the commit whose tokens hold this seq (-1: none)
	failRecv         int            // fail the receive that would start at this seq (-1: none)

	mu        sync.Mutex
	next      int
	starts    []int // first seq of every block handed out
	committed atomic.Int64
	commits   atomic.Int64
	bad       []string // commit-order violations
}

func newSeqReceiver(total, per, size int) *seqReceiver {
	r := &seqReceiver{total: total, per: per, size: size, close: true, failCommit: -1, failRecv: -1}
	r.committed.Store(-1)
	return r
}

func seqRecord(seq, size int) engine.Record {
	v := fmt.Sprintf(`{"seq":%d}`, seq)
	if pad := size - len(v); pad > 0 {
		v = fmt.Sprintf(`{"seq":%d,"p":"%s"}`, seq, strings.Repeat("x", max(pad-7, 0)))
	}
	return engine.Record{Value: []byte(v), Tag: uint64(seq)}
}

func (r *seqReceiver) Recv(ctx context.Context, max int) (engine.Batch[uint64], error) {
	return r.RecvLimited(ctx, engine.RecvLimits{MaxRecords: max})
}

func (r *seqReceiver) RecvLimited(ctx context.Context, lim engine.RecvLimits) (engine.Batch[uint64], error) {
	r.mu.Lock()
	if r.next >= r.total {
		r.mu.Unlock()
		if r.close {
			return engine.Batch[uint64]{}, engine.ErrSourceClosed
		}
		<-ctx.Done()
		return engine.Batch[uint64]{}, ctx.Err()
	}
	defer r.mu.Unlock()
	if r.next == r.failRecv {
		return engine.Batch[uint64]{}, errBoom
	}
	var b engine.Batch[uint64]
	var n int64
	start := r.next
	for r.next < r.total && len(b.Records) < min(r.per, max(lim.MaxRecords, 1)) {
		rec := seqRecord(r.next, r.size)
		if r.bytes && lim.MaxBytes > 0 && len(b.Records) > 0 && n+int64(rec.Size()) > lim.MaxBytes {
			break
		}
		n += int64(rec.Size())
		b.Records = append(b.Records, rec)
		b.Tokens = append(b.Tokens, uint64(r.next))
		r.next++
	}
	if r.inboundDLQ != nil && r.inboundDLQ(start) {
		b.DLQ = []engine.DLQEntry{{Record: engine.Record{Value: []byte(`"bad"`), Tag: uint64(start)}, Reason: fmt.Sprintf("source %d", start), Stage: "parse"}}
	}
	r.starts = append(r.starts, start)
	return b, nil
}

func (r *seqReceiver) Commit(_ context.Context, tokens []uint64) error {
	for _, t := range tokens {
		if int(t) == r.failCommit {
			return fmt.Errorf("commit of seq %d failed", t)
		}
	}
	want := r.committed.Load() + 1
	for i, t := range tokens {
		if int64(t) != want+int64(i) {
			r.mu.Lock()
			r.bad = append(r.bad, fmt.Sprintf("commit %v after watermark %d", tokens, want-1))
			r.mu.Unlock()
			break
		}
	}
	if len(tokens) > 0 {
		r.committed.Store(int64(tokens[len(tokens)-1]))
		r.commits.Add(1)
	}
	return nil
}

// blockOf returns the first seq of the block that holds seq.
func (r *seqReceiver) blockOf(seq int) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	first := -1
	for _, s := range r.starts {
		if s <= seq {
			first = s
		}
	}
	return first
}

func (r *seqReceiver) violations() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.bad)
}

func tags(recs []engine.Record) []int {
	out := make([]int, len(recs))
	for i := range recs {
		out[i] = int(recs[i].Tag)
	}
	return out
}

func hasTag(recs []engine.Record, seq int) bool {
	for i := range recs {
		if int(recs[i].Tag) == seq {
			return true
		}
	}
	return false
}

// fixedBudget returns a guard of limit bytes and a budget pinned at bytes.
func fixedBudget(tb testing.TB, limit, bytes int64) (*governor.MemoryGuard, *governor.ByteBudget) {
	guard, _, budget := governed(tb, limit, 0.9, governor.BudgetConfig{Start: bytes, Min: bytes, Max: bytes})
	return guard, budget
}

// signals is a set of one-shot events by seq.
type signals struct {
	mu sync.Mutex
	ch map[int]chan struct{}
}

func (s *signals) get(seq int) chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch == nil {
		s.ch = make(map[int]chan struct{})
	}
	c, ok := s.ch[seq]
	if !ok {
		c = make(chan struct{})
		s.ch[seq] = c
	}
	return c
}

func (s *signals) fire(seq int) { close(s.get(seq)) }

// wait waits for seq's event; a timeout fails the test (the driver did not
// keep the sub-blocks in flight that the test needs).
func (s *signals) wait(t *testing.T, seq int, why string) bool {
	select {
	case <-s.get(seq):
		return true
	case <-time.After(5 * time.Second):
		t.Errorf("timed out waiting for %s", why)
		return false
	}
}

// The process stage finishes sub-blocks out of order (in each group of
// four, the first waits for the fourth to finish): the sink still sees them
// in receive order, and every commit is the next tokens, after its block's
// sink write. The wait can only end if four sub-blocks are in flight at
// once, so the test also proves the overlap.
func TestOverlappedCommitsInReceiveOrderWhenProcessFinishesOutOfOrder(t *testing.T) {
	const n, depth = 40, 4
	r := newSeqReceiver(n, 1, 16)
	guard, budget := fixedBudget(t, 1<<20, 1<<10)
	d := newDriver(t, engine.Config{Depth: depth, Guard: guard, Budget: budget})
	var (
		ev       signals
		mu       sync.Mutex
		finished []int // process completion order
		sunk     []int
	)
	process := func(_ context.Context, b engine.Batch[uint64]) (engine.Batch[uint64], error) {
		seq := int(b.Records[0].Tag)
		if seq%depth == 0 {
			ev.wait(t, seq+depth-1, fmt.Sprintf("seq %d to be processed while %d waits", seq+depth-1, seq))
		}
		mu.Lock()
		finished = append(finished, seq)
		mu.Unlock()
		ev.fire(seq)
		return b, nil
	}
	sink := func(_ context.Context, b *engine.Batch[uint64]) error {
		seq := int(b.Records[0].Tag)
		if c := r.committed.Load(); c != int64(seq)-1 {
			t.Errorf("sink of seq %d with watermark %d: the sink must follow the previous commit", seq, c)
		}
		sunk = append(sunk, seq) // the sink stage is one goroutine
		return nil
	}
	if err := d.RunGoverned(testCtx(t, 10*time.Second), r, process, sink); err != nil {
		t.Fatal(err)
	}
	want := make([]int, n)
	for i := range want {
		want[i] = i
	}
	if slices.Equal(finished, want) {
		t.Fatalf("process finished in receive order %v; the test needs out-of-order completion", finished)
	}
	if !slices.Equal(sunk, want) {
		t.Fatalf("sink order %v, want %v", sunk, want)
	}
	if v := r.violations(); len(v) > 0 || r.committed.Load() != n-1 || r.commits.Load() != n {
		t.Fatalf("commits %d up to %d, violations %v; want %d in order up to %d", r.commits.Load(), r.committed.Load(), v, n, n-1)
	}
	if guard.InFlight() != 0 {
		t.Fatalf("in flight %d after the run", guard.InFlight())
	}
	if s := d.Stats(); s.Blocks != n || s.Commits != n || s.RecordsIn != n || s.RecordsOut != n || s.SubBlocks != n {
		t.Fatalf("stats %+v", s)
	}
}

// A terminal error in block N while block N+1 is already processed (the
// failing stage waits until it is): blocks before N commit in order, N and
// N+1 do not, N+1 is never sunk, the run returns N's typed error and every
// lease is released.
func TestOverlappedTerminalErrorInBlockNDoesNotCommitBlockNPlus1(t *testing.T) {
	const n, depth, failAt = 12, 3, 5
	for _, tc := range []struct {
		name  string
		stage string
		check func(error) bool
	}{
		{"process", "process", func(err error) bool { var e *engine.ProcessError; return errors.As(err, &e) }},
		{"sink", "sink", func(err error) bool { var e *engine.SinkError; return errors.As(err, &e) }},
		{"commit", "commit", func(err error) bool { var e *engine.CommitError; return errors.As(err, &e) }},
		{"dead letter route", "dlq", func(err error) bool { var e *engine.DLQRouteError; return errors.As(err, &e) }},
		{"source dead letter route", "inbound", func(err error) bool { var e *engine.DLQRouteError; return errors.As(err, &e) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newSeqReceiver(n, 1, 16)
			if tc.stage == "commit" {
				r.failCommit = failAt
			}
			if tc.stage == "inbound" {
				r.inboundDLQ = func(seq int) bool { return seq == failAt }
			}
			var ev signals
			var processedNext atomic.Bool
			waitNext := func() { ev.wait(t, failAt+1, "block N+1 to be processed before block N fails") }
			dlq := funcDLQ(func(_ context.Context, entries []engine.DLQEntry) error {
				for _, e := range entries {
					if int(e.Record.Tag) == failAt {
						waitNext()
						return errBoom
					}
				}
				return nil
			})
			guard, budget := fixedBudget(t, 1<<20, 1<<10)
			d := newDriver(t, engine.Config{Depth: depth, Guard: guard, Budget: budget, DLQPolicy: engine.DLQRoute, DLQ: dlq})
			process := func(_ context.Context, b engine.Batch[uint64]) (engine.Batch[uint64], error) {
				seq := int(b.Records[0].Tag)
				defer func() {
					if seq == failAt+1 {
						processedNext.Store(true)
					}
					ev.fire(seq)
				}()
				if seq == failAt {
					switch tc.stage {
					case "process":
						waitNext()
						return b, errBoom
					case "dlq":
						b.DLQ = append(b.DLQ, engine.DLQEntry{Record: b.Records[0], Reason: "rejected", Stage: "t"})
						b.Records = nil
					}
				}
				return b, nil
			}
			var sunk []int
			sink := func(_ context.Context, b *engine.Batch[uint64]) error {
				sunk = append(sunk, tags(b.Records)...)
				if hasTag(b.Records, failAt) {
					switch tc.stage {
					case "sink":
						waitNext()
						return errBoom
					case "commit":
						waitNext()
					}
				}
				return nil
			}
			err := d.RunGoverned(testCtx(t, 10*time.Second), r, process, sink)
			if !tc.check(err) {
				t.Fatalf("err = %v (%T), want the %s stage's terminal error", err, err, tc.stage)
			}
			if !processedNext.Load() {
				t.Fatal("block N+1 was not processed before block N failed: the test proves nothing")
			}
			if r.committed.Load() != failAt-1 || r.commits.Load() != failAt {
				t.Fatalf("watermark %d after %d commits; want %d after %d (blocks before N commit, N and later never)", r.committed.Load(), r.commits.Load(), failAt-1, failAt)
			}
			if v := r.violations(); len(v) > 0 {
				t.Fatal(v)
			}
			for _, s := range sunk {
				if s > failAt {
					t.Fatalf("seq %d was sunk after block N (%d) failed: %v", s, failAt, sunk)
				}
			}
			if guard.InFlight() != 0 {
				t.Fatalf("in flight %d after the run (leaked lease)", guard.InFlight())
			}
		})
	}
}

// Every path out of an overlapped run releases every lease: success, the
// source closed with blocks in flight, each terminal error, a receive
// error with blocks in flight (they still commit), and a cancelled context
// with blocks in flight. The guard never held more than Depth sub-blocks.
func TestOverlappedLeasesReleasedOnEveryPath(t *testing.T) {
	const n, depth, per, size, sub = 60, 4, 6, 64, 128 // 6 records a block, 2 a sub-block
	for _, tc := range []struct {
		name      string
		setup     func(r *seqReceiver)
		process   func(b engine.Batch[uint64]) (engine.Batch[uint64], error)
		sink      func(b *engine.Batch[uint64]) error
		cancelAt  int // cancel ctx when this seq is processed (-1: never)
		wantErr   bool
		committed int64
	}{
		{name: "success", committed: n - 1, cancelAt: -1},
		{name: "process error", cancelAt: -1, wantErr: true, committed: 29, process: func(b engine.Batch[uint64]) (engine.Batch[uint64], error) {
			if hasTag(b.Records, 33) {
				return b, errBoom
			}
			return b, nil
		}},
		{name: "sink error", cancelAt: -1, wantErr: true, committed: 29, sink: func(b *engine.Batch[uint64]) error {
			if hasTag(b.Records, 34) {
				return errBoom
			}
			return nil
		}},
		{name: "commit error", cancelAt: -1, wantErr: true, committed: 29, setup: func(r *seqReceiver) { r.failCommit = 35 }},
		{name: "receive error", cancelAt: -1, wantErr: true, committed: 35, setup: func(r *seqReceiver) { r.failRecv = 36 }},
		{name: "cancelled", cancelAt: 20, committed: -2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newSeqReceiver(n, per, size)
			if tc.setup != nil {
				tc.setup(r)
			}
			guard, budget := fixedBudget(t, 1<<20, sub)
			d := newDriver(t, engine.Config{Depth: depth, Guard: guard, Budget: budget})
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var peak atomic.Int64
			note := func() {
				for v := guard.InFlight(); v > peak.Load(); {
					if peak.CompareAndSwap(peak.Load(), v) {
						break
					}
				}
			}
			process := func(_ context.Context, b engine.Batch[uint64]) (engine.Batch[uint64], error) {
				note()
				time.Sleep(100 * time.Microsecond)
				if tc.cancelAt >= 0 && hasTag(b.Records, tc.cancelAt) {
					cancel()
				}
				if tc.process != nil {
					return tc.process(b)
				}
				return b, nil
			}
			sink := func(_ context.Context, b *engine.Batch[uint64]) error {
				note()
				if tc.sink != nil {
					return tc.sink(b)
				}
				return nil
			}
			err := d.RunGoverned(ctx, r, process, sink)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if guard.InFlight() != 0 {
				t.Fatalf("in flight %d after the run (leaked lease)", guard.InFlight())
			}
			if tc.committed >= -1 && r.committed.Load() != tc.committed {
				t.Fatalf("watermark %d, want %d", r.committed.Load(), tc.committed)
			}
			if v := r.violations(); len(v) > 0 {
				t.Fatal(v)
			}
			// Each sub-block is 2 records of 64 bytes (a 128-byte budget).
			if pk := guard.Peak(); pk > depth*sub {
				t.Fatalf("guard high-water %d > Depth × sub-block = %d", pk, depth*sub)
			}
			if tc.name == "success" && peak.Load() <= sub {
				t.Fatalf("peak in flight %d: never more than one sub-block at once, no overlap", peak.Load())
			}
		})
	}
}

// THE never-OOM test with overlap: the sequential test's setup (an 18 KiB
// memory limit, 14× that much payload) at Depth 4 with the budget ceiling
// divided by the depth, as the gateway sizes it: the gate holds at some
// point, every record reaches the sink, every token commits, the driver
// never leases more than Depth × budget (the old single-block bound), and
// every lease is released.
func TestOverlappedNeverOOMBoundsMemory(t *testing.T) {
	const limit = 18 * 1024
	const recordBytes, n, depth = 1024, 256, 4
	const total = recordBytes * n
	const perBlock = 16 * 1024 / depth
	guard, p, budget := governed(t, limit, 0.9, governor.BudgetConfig{Start: perBlock, Max: perBlock, Min: 1024})
	gate := governor.NewInboundGate(p)
	m := newMem(t)
	injectN(t, m, n, recordBytes, 'q')
	m.Close()
	d := newDriver(t, engine.Config{MaxRecords: 16, Guard: guard, Budget: budget, Depth: depth})
	var recs, peak atomic.Int64
	var held atomic.Bool
	first := true
	process := func(_ context.Context, b engine.Batch[uint64]) (engine.Batch[uint64], error) {
		if gate.Evaluate() == governor.Hold {
			held.Store(true)
		}
		for v := guard.InFlight(); v > peak.Load(); {
			if peak.CompareAndSwap(peak.Load(), v) {
				break
			}
		}
		return b, nil
	}
	err := d.RunGoverned(testCtx(t, 10*time.Second), m, process, func(_ context.Context, b *engine.Batch[uint64]) error {
		if first { // hold the first sink write until every slot is leased
			first = false
			deadline := time.Now().Add(5 * time.Second)
			for guard.InFlight() < depth*perBlock && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
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
	if guard.Peak() > depth*perBlock {
		t.Fatalf("guard high-water %d > Depth × budget = %d", guard.Peak(), depth*perBlock)
	}
	if guard.Peak() <= perBlock {
		t.Fatalf("guard high-water %d ≤ one block's budget: nothing overlapped", guard.Peak())
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

// event log of a run: what the sink, the DLQ sink and Commit saw, in order.
type callLog struct {
	mu     sync.Mutex
	events []string
}

func (l *callLog) add(format string, args ...any) {
	l.mu.Lock()
	l.events = append(l.events, fmt.Sprintf(format, args...))
	l.mu.Unlock()
}

type seqLoggingReceiver struct {
	*seqReceiver
	log *callLog
}

func (r seqLoggingReceiver) Commit(ctx context.Context, tokens []uint64) error {
	r.log.add("commit %v", tokens)
	return r.seqReceiver.Commit(ctx, tokens)
}

// The overlapped loop's outcomes equal the sequential loop's: on a
// deterministic run with source dead letters, fan-out, drops, process dead
// letters, sub-blocks and per-record sink failures, the sink, the DLQ sink
// and the commits see the same calls in the same order at every depth, and
// the counters agree.
func TestOverlappedMatchesSequential(t *testing.T) {
	run := func(depth int) ([]string, engine.Stats) {
		log := &callLog{}
		r := newSeqReceiver(200, 9, 24)
		r.inboundDLQ = func(seq int) bool { return seq%4 == 0 }
		dlq := funcDLQ(func(_ context.Context, entries []engine.DLQEntry) error {
			var s []string
			for _, e := range entries {
				s = append(s, fmt.Sprintf("%d:%s:%s", e.Record.Tag, e.Stage, e.Reason))
			}
			log.add("dlq %v", s)
			return nil
		})
		_, budget := fixedBudget(t, 1<<20, 4*24) // 4 records a sub-block
		d := newDriver(t, engine.Config{Depth: depth, Budget: budget, DLQPolicy: engine.DLQRoute, DLQ: dlq})
		process := func(_ context.Context, b engine.Batch[uint64]) (engine.Batch[uint64], error) {
			var out []engine.Record
			for _, rec := range b.Records {
				seq := int(rec.Tag)
				switch {
				case seq%7 == 3:
					b.DLQ = append(b.DLQ, engine.DLQEntry{Record: rec, Reason: "seven", Stage: "t"})
				case seq%5 == 1: // dropped
				case seq%4 == 2:
					out = append(out, rec, rec)
				default:
					out = append(out, rec)
				}
			}
			time.Sleep(time.Duration(rand.IntN(200)) * time.Microsecond)
			b.Records = out
			return b, nil
		}
		sink := func(_ context.Context, b *engine.Batch[uint64]) error {
			log.add("sink %v tokens %v", tags(b.Records), b.Tokens)
			var re engine.RecordErrors
			for i, rec := range b.Records {
				if rec.Tag%11 == 6 {
					re.Failed = append(re.Failed, engine.RecordFailure{Index: i, Err: fmt.Errorf("poison %d", rec.Tag)})
				}
			}
			if len(re.Failed) > 0 {
				return &re
			}
			return nil
		}
		if err := d.RunGoverned(testCtx(t, 10*time.Second), seqLoggingReceiver{r, log}, process, sink); err != nil {
			t.Fatal(err)
		}
		if v := r.violations(); len(v) > 0 {
			t.Fatal(v)
		}
		return log.events, d.Stats()
	}
	want, wantStats := run(1)
	if len(want) < 100 {
		t.Fatalf("the sequential run logged only %d events", len(want))
	}
	for _, depth := range []int{2, 3, 8} {
		got, stats := run(depth)
		if !slices.Equal(got, want) {
			for i := range min(len(got), len(want)) {
				if got[i] != want[i] {
					t.Fatalf("depth %d: event %d = %q, sequential %q", depth, i, got[i], want[i])
				}
			}
			t.Fatalf("depth %d: %d events, sequential %d", depth, len(got), len(want))
		}
		if stats != wantStats {
			t.Fatalf("depth %d: stats %+v, sequential %+v", depth, stats, wantStats)
		}
	}
}

// Hammer: many runs with random depths, block and sub-block sizes, stage
// delays and failures, under -race. Every run: the sink sees records in
// receive order, commits are in receive order and contiguous, nothing at or
// after a failed block is committed and nothing after it is sunk, the
// blocks before it are all committed, and no lease is left.
func TestOverlappedHammer(t *testing.T) {
	runs := 150
	if testing.Short() {
		runs = 30
	}
	for i := range runs {
		seed := uint64(i)
		rng := rand.New(rand.NewPCG(seed, 42))
		n := 20 + rng.IntN(120)
		depth := 2 + rng.IntN(7)
		r := newSeqReceiver(n, 1+rng.IntN(12), 32)
		r.bytes = rng.IntN(2) == 0
		failAt, stage := -1, ""
		if rng.IntN(3) > 0 {
			failAt = rng.IntN(n)
			stage = []string{"process", "sink", "commit", "dlq"}[rng.IntN(4)]
		}
		if stage == "commit" {
			r.failCommit = failAt
		}
		delays := make([]time.Duration, n)
		for j := range delays {
			if rng.IntN(3) == 0 {
				delays[j] = time.Duration(rng.IntN(300)) * time.Microsecond
			}
		}
		guard, budget := fixedBudget(t, 1<<20, int64(32*(1+rng.IntN(6))))
		dlq := funcDLQ(func(_ context.Context, entries []engine.DLQEntry) error {
			for _, e := range entries {
				if int(e.Record.Tag) == failAt {
					return errBoom
				}
			}
			return nil
		})
		d := newDriver(t, engine.Config{Depth: depth, Guard: guard, Budget: budget, DLQPolicy: engine.DLQRoute, DLQ: dlq})
		process := func(_ context.Context, b engine.Batch[uint64]) (engine.Batch[uint64], error) {
			if len(b.Records) > 0 {
				time.Sleep(delays[b.Records[0].Tag])
			}
			if stage == "process" && hasTag(b.Records, failAt) {
				return b, errBoom
			}
			if stage == "dlq" && hasTag(b.Records, failAt) {
				b.DLQ = append(b.DLQ, engine.DLQEntry{Record: seqRecord(failAt, 32), Reason: "x", Stage: "t"})
			}
			return b, nil
		}
		last := -1
		var sunkMax atomic.Int64
		sunkMax.Store(-1)
		sink := func(_ context.Context, b *engine.Batch[uint64]) error {
			for _, s := range tags(b.Records) {
				if s != last+1 {
					t.Errorf("run %d: sink saw seq %d after %d", i, s, last)
				}
				last = s
			}
			sunkMax.Store(int64(last))
			if len(b.Records) > 0 && rng.IntN(4) == 0 {
				time.Sleep(time.Duration(rand.IntN(200)) * time.Microsecond)
			}
			if stage == "sink" && hasTag(b.Records, failAt) {
				return errBoom
			}
			return nil
		}
		err := d.RunGoverned(testCtx(t, 20*time.Second), r, process, sink)
		if v := r.violations(); len(v) > 0 {
			t.Fatalf("run %d (depth %d): %v", i, depth, v)
		}
		if guard.InFlight() != 0 {
			t.Fatalf("run %d: in flight %d after the run", i, guard.InFlight())
		}
		if failAt < 0 {
			if err != nil || r.committed.Load() != int64(n-1) || sunkMax.Load() != int64(n-1) {
				t.Fatalf("run %d (depth %d): err %v, committed %d, sunk up to %d; want nil, %d, %d", i, depth, err, r.committed.Load(), sunkMax.Load(), n-1, n-1)
			}
			continue
		}
		if err == nil {
			t.Fatalf("run %d: a %s failure at seq %d returned nil", i, stage, failAt)
		}
		start := r.blockOf(failAt)
		if got := r.committed.Load(); got != int64(start-1) {
			t.Fatalf("run %d (depth %d, %s failure at %d in the block from %d): watermark %d, want %d", i, depth, stage, failAt, start, got, start-1)
		}
		// Sub-blocks of the failed block before the failure may be sunk
		// (as in the sequential loop), nothing of a later block.
		var end int
		r.mu.Lock()
		end = r.total
		for _, s := range r.starts {
			if s > start {
				end = s
				break
			}
		}
		r.mu.Unlock()
		if got := sunkMax.Load(); got >= int64(end) {
			t.Fatalf("run %d: seq %d sunk, past the failed block [%d, %d)", i, got, start, end)
		}
	}
}

// The Observer is called one at a time with overlap, and the AIMD loop's
// utilisation reads what the pipeline does: near 1 when the sink is the
// bottleneck and the source always has data (a full pipeline, as a busy
// sequential loop), low when blocks arrive far apart.
func TestOverlappedBudgetObservationsStayMeaningful(t *testing.T) {
	measure := func(t *testing.T, depth int, gap time.Duration) float64 {
		r := newSeqReceiver(30, 1, 16)
		obs := &utilObserver{}
		_, _, budget := governed(t, 1<<20, 0.9, governor.BudgetConfig{})
		d := newDriver(t, engine.Config{Depth: depth, Budget: budget, Observer: obs})
		process := func(_ context.Context, b engine.Batch[uint64]) (engine.Batch[uint64], error) {
			time.Sleep(time.Millisecond)
			return b, nil
		}
		sink := func(context.Context, *engine.Batch[uint64]) error {
			time.Sleep(2 * time.Millisecond)
			return nil
		}
		recv := engine.Receiver[uint64](r)
		if gap > 0 {
			recv = gappedReceiver{r, gap}
		}
		if err := d.RunGoverned(testCtx(t, 10*time.Second), recv, process, sink); err != nil {
			t.Fatal(err)
		}
		if obs.concurrent.Load() {
			t.Fatal("the Observer was called concurrently")
		}
		return obs.median()
	}
	for _, depth := range []int{1, 3} {
		if u := measure(t, depth, 0); u < 0.7 || u > 1.6 {
			t.Errorf("depth %d, saturated: median utilisation %.2f, want about 1 (a full pipeline is as busy as a busy sequential loop)", depth, u)
		}
		if u := measure(t, depth, 15*time.Millisecond); u > 0.4 {
			t.Errorf("depth %d, a block every 15 ms taking 3 ms: median utilisation %.2f, want ≤ 0.4", depth, u)
		}
	}
}

// gappedReceiver waits gap before each receive.
type gappedReceiver struct {
	*seqReceiver
	gap time.Duration
}

func (g gappedReceiver) RecvLimited(ctx context.Context, lim engine.RecvLimits) (engine.Batch[uint64], error) {
	time.Sleep(g.gap)
	return g.seqReceiver.RecvLimited(ctx, lim)
}

type utilObserver struct {
	busy       atomic.Bool
	concurrent atomic.Bool
	mu         sync.Mutex
	utils      []float64
}

func (o *utilObserver) enter() func() {
	if !o.busy.CompareAndSwap(false, true) {
		o.concurrent.Store(true)
		return func() {}
	}
	return func() { o.busy.Store(false) }
}

func (o *utilObserver) ObserveBlock(engine.BlockStats) {
	defer o.enter()()
	time.Sleep(10 * time.Microsecond)
}

func (o *utilObserver) ObserveBudget(s engine.BudgetSample) {
	defer o.enter()()
	if s.BlockBytes > 0 && s.IngestInterval > 0 {
		o.mu.Lock()
		o.utils = append(o.utils, float64(s.ProcessTime)/float64(s.IngestInterval))
		o.mu.Unlock()
	}
}

func (o *utilObserver) median() float64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.utils) == 0 {
		return 0
	}
	s := slices.Clone(o.utils[len(o.utils)/4:]) // past the pipeline's filling
	slices.Sort(s)
	return s[len(s)/2]
}

// Concurrent overlapped runs over different receivers may share a driver.
func TestOverlappedConcurrentRunsShareADriver(t *testing.T) {
	guard, budget := fixedBudget(t, 1<<20, 3*32)
	d := newDriver(t, engine.Config{Depth: 3, Guard: guard, Budget: budget})
	var wg sync.WaitGroup
	rs := make([]*seqReceiver, 4)
	for i := range rs {
		rs[i] = newSeqReceiver(100, 7, 32)
		wg.Add(1)
		go func(r *seqReceiver) {
			defer wg.Done()
			if err := d.RunGoverned(testCtx(t, 10*time.Second), r, passThrough, okSink); err != nil {
				t.Error(err)
			}
		}(rs[i])
	}
	wg.Wait()
	for _, r := range rs {
		if v := r.violations(); len(v) > 0 || r.committed.Load() != 99 {
			t.Fatalf("committed %d, violations %v", r.committed.Load(), v)
		}
	}
	if s := d.Stats(); s.RecordsIn != 400 || s.RecordsOut != 400 || guard.InFlight() != 0 {
		t.Fatalf("stats %+v, in flight %d", s, guard.InFlight())
	}
}

// The overlapped loop adds no allocation per block either.
func TestOverlappedLoopDoesNotAllocatePerBlock(t *testing.T) {
	d := newDriver(t, engine.Config{Budget: benchBudget(t), Depth: 4})
	r := newReuseReceiver(100, 1024)
	ctx := context.Background()
	allocs := func(blocks int) float64 {
		return testing.AllocsPerRun(10, func() {
			r.blocks, r.served = blocks, 0
			if err := d.RunGoverned(ctx, r, passThrough, okSink); err != nil {
				t.Fatal(err)
			}
		})
	}
	one, many := allocs(1), allocs(101)
	if perBlock := (many - one) / 100; perBlock > 0 {
		t.Fatalf("%.2f allocations per block (1 block: %.0f, 101 blocks: %.0f); want 0", perBlock, one, many)
	}
}

func TestDepthIsValidated(t *testing.T) {
	for _, depth := range []int{-1, engine.MaxDepth + 1} {
		if _, err := engine.NewDriver[uint64](engine.Config{Depth: depth}); !errors.Is(err, engine.ErrInvalidConfig) {
			t.Fatalf("Depth %d: err = %v, want ErrInvalidConfig", depth, err)
		}
	}
	if _, err := engine.NewDriver[uint64](engine.Config{Depth: engine.MaxDepth}); err != nil {
		t.Fatal(err)
	}
}
