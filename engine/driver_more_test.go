package engine_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice/engine"
	"github.com/sluicehq/sluice/engine/memtransport"
	"github.com/sluicehq/sluice/governor"
)

func TestConfigValidate(t *testing.T) {
	mem := newMem(t)
	tick := func(context.Context) error { return nil }
	f := func(name string, cfg engine.Config, ok bool) {
		t.Helper()
		err := cfg.Validate()
		if ok != (err == nil) {
			t.Fatalf("%s: Validate() = %v, want ok=%v", name, err, ok)
		}
		if err != nil && !errors.Is(err, engine.ErrInvalidConfig) {
			t.Fatalf("%s: %v does not wrap ErrInvalidConfig", name, err)
		}
		if _, err := engine.NewDriver[uint64](cfg); ok != (err == nil) {
			t.Fatalf("%s: NewDriver err = %v", name, err)
		}
	}
	f("zero", engine.Config{}, true)
	f("negative max records", engine.Config{MaxRecords: -1}, false)
	f("unknown policy", engine.Config{DLQPolicy: 9}, false)
	f("route without sink", engine.Config{DLQPolicy: engine.DLQRoute}, false)
	f("route with sink", engine.Config{DLQPolicy: engine.DLQRoute, DLQ: mem}, true)
	f("unknown parse action", engine.Config{ParseError: 9}, false)
	f("negative tick", engine.Config{TickEvery: -1}, false)
	f("tick without func", engine.Config{TickEvery: time.Second}, false)
	f("func without tick", engine.Config{OnTick: tick}, false)
	f("tick", engine.Config{TickEvery: time.Second, OnTick: tick}, true)
	d := newDriver(t, engine.Config{})
	if d.Config().MaxRecords != engine.DefaultMaxRecords || d.Config().Logger == nil {
		t.Fatalf("defaults not filled: %+v", d.Config())
	}
	if err := d.Run(context.Background(), mem, nil, okSink); !errors.Is(err, engine.ErrInvalidConfig) {
		t.Fatalf("nil process: %v", err)
	}
	if err := d.RunParsed(context.Background(), mem, nil, okSink); !errors.Is(err, engine.ErrInvalidConfig) {
		t.Fatalf("nil parsed process: %v", err)
	}
}

func TestEnumStrings(t *testing.T) {
	for got, want := range map[string]string{
		engine.DLQReject.String(): "reject", engine.DLQRoute.String(): "route",
		engine.DLQDiscardWithMetric.String(): "discard_with_metric", engine.DLQPolicy(7).String(): "DLQPolicy(7)",
		engine.ParseErrorDLQ.String(): "dlq", engine.ParseErrorSkip.String(): "skip",
		engine.ParseErrorFailBatch.String(): "fail_batch", engine.ParseErrorAction(7).String(): "ParseErrorAction(7)",
	} {
		if got != want {
			t.Fatalf("String() = %q, want %q", got, want)
		}
	}
}

// Closing the source while the loop runs drains everything injected, then
// Run returns nil: the gateway's SIGTERM path.
func TestCloseDrainsThenReturnsNil(t *testing.T) {
	m := newMem(t)
	d := newDriver(t, engine.Config{MaxRecords: 7})
	var sunk atomic.Int64
	done := make(chan error, 1)
	go func() {
		done <- d.Run(context.Background(), m, passThrough, func(_ context.Context, b *engine.Batch[uint64]) error {
			sunk.Add(int64(len(b.Records)))
			return nil
		})
	}()
	for i := range 100 {
		inject(t, m, `{"i":1}`)
		if i%10 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	m.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after Close")
	}
	if sunk.Load() != 100 || m.Committed() != 99 {
		t.Fatalf("sunk %d, committed %d; want 100, 99", sunk.Load(), m.Committed())
	}
}

// A cancelled context returns nil before receiving anything.
func TestCancelledContextReturnsNil(t *testing.T) {
	m := newMem(t)
	inject(t, m, `{}`)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	d := newDriver(t, engine.Config{})
	if err := d.Run(ctx, m, passThrough, okSink); err != nil {
		t.Fatal(err)
	}
	if m.Pending() != 1 {
		t.Fatal("a cancelled run must not receive")
	}
}

// Cancellation during a block: the block finishes its sink and commit with
// ctx; a sink that fails on the cancelled ctx leaves the block uncommitted.
func TestCancelDuringBlock(t *testing.T) {
	for _, sinkHonoursCtx := range []bool{false, true} {
		m := newMem(t)
		inject(t, m, `{"a":1}`, `{"a":2}`)
		ctx, cancel := context.WithCancel(context.Background())
		d := newDriver(t, engine.Config{})
		err := d.Run(ctx, m, func(_ context.Context, b engine.Batch[uint64]) (engine.Batch[uint64], error) {
			cancel() // SIGTERM arrives while the block is in process
			return b, nil
		}, func(ctx context.Context, _ *engine.Batch[uint64]) error {
			if sinkHonoursCtx {
				return ctx.Err()
			}
			return nil
		})
		if sinkHonoursCtx {
			var se *engine.SinkError
			if !errors.As(err, &se) || !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v, want a *SinkError wrapping context.Canceled", err)
			}
			if m.Committed() != -1 {
				t.Fatalf("committed %d after a failed sink", m.Committed())
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if m.Committed() != 1 {
			t.Fatalf("committed %d, want the in-progress block committed (1)", m.Committed())
		}
	}
}

type failingReceiver struct{ err error }

func (f failingReceiver) Recv(context.Context, int) (engine.Batch[uint64], error) {
	return engine.Batch[uint64]{}, f.err
}
func (f failingReceiver) RecvLimited(context.Context, engine.RecvLimits) (engine.Batch[uint64], error) {
	return engine.Batch[uint64]{}, f.err
}
func (f failingReceiver) Commit(context.Context, []uint64) error { return nil }

func TestReceiveAndProcessErrorsAreTerminal(t *testing.T) {
	d := newDriver(t, engine.Config{})
	err := d.Run(context.Background(), failingReceiver{errBoom}, passThrough, okSink)
	var re *engine.ReceiveError
	if !errors.As(err, &re) || !errors.Is(err, errBoom) {
		t.Fatalf("err = %v, want a *ReceiveError", err)
	}
	if err := d.Run(context.Background(), failingReceiver{engine.ErrSourceClosed}, passThrough, okSink); err != nil {
		t.Fatalf("ErrSourceClosed must end the run cleanly, got %v", err)
	}

	m := newMem(t)
	inject(t, m, `{}`, `{}`)
	m.Close()
	err = d.Run(context.Background(), m, func(_ context.Context, b engine.Batch[uint64]) (engine.Batch[uint64], error) {
		return b, errBoom
	}, okSink)
	var pe *engine.ProcessError
	if !errors.As(err, &pe) || pe.Records != 2 || !errors.Is(err, errBoom) {
		t.Fatalf("err = %v, want a *ProcessError of 2 records", err)
	}
	if m.Committed() != -1 {
		t.Fatal("a failed process must not commit")
	}
	for _, e := range []error{re, pe, &engine.SinkError{Err: errBoom}, &engine.CommitError{Err: errBoom}, &engine.DLQRouteError{Err: errBoom}} {
		if !strings.Contains(e.Error(), "boom") {
			t.Fatalf("%T.Error() = %q lacks the cause", e, e.Error())
		}
	}
}

// Dead letters a source attaches to a batch go through the one DLQ policy.
func TestSourceDeadLettersFollowThePolicy(t *testing.T) {
	dead := engine.DLQEntry{Record: engine.Record{Value: []byte("\x00garbage")}, Reason: "undecodable", Stage: "receiver"}
	setup := func() *memtransport.Transport {
		m := newMem(t)
		inject(t, m, `{"ok":1}`)
		if _, err := m.InjectDeadLetters(dead); err != nil {
			t.Fatal(err)
		}
		m.Close()
		return m
	}

	m := setup()
	d := newDriver(t, engine.Config{}) // DLQReject
	err := d.Run(context.Background(), m, passThrough, okSink)
	if !errors.Is(err, engine.ErrDLQRejected) {
		t.Fatalf("DLQReject: err = %v, want ErrDLQRejected", err)
	}
	if m.Committed() != -1 {
		t.Fatal("DLQReject must not commit")
	}

	m = setup()
	d = newDriver(t, engine.Config{DLQPolicy: engine.DLQDiscardWithMetric})
	if err := d.Run(context.Background(), m, passThrough, okSink); err != nil {
		t.Fatal(err)
	}
	if d.Stats().DLQDiscarded != 1 || m.Committed() != 1 {
		t.Fatalf("discard: stats %+v, committed %d", d.Stats(), m.Committed())
	}

	m = setup()
	dlq := newMem(t)
	d = newDriver(t, engine.Config{DLQPolicy: engine.DLQRoute, DLQ: dlq})
	if err := d.RunStreaming(context.Background(), m, passThrough, okSink, 1); err != nil {
		t.Fatal(err)
	}
	got := dlq.DeadLetters()
	if len(got) != 1 || got[0].Reason != "undecodable" || string(got[0].Record.Value) != "\x00garbage" || m.Committed() != 1 {
		t.Fatalf("route: dead letters %+v, committed %d", got, m.Committed())
	}
}

// A batch of dead letters only (every record of a request was invalid) is
// still committed, so its acks resolve.
func TestDeadLetterOnlyBatchCommits(t *testing.T) {
	m := newMem(t)
	if _, err := m.InjectDeadLetters(engine.DLQEntry{Reason: "bad"}, engine.DLQEntry{Reason: "bad"}); err != nil {
		t.Fatal(err)
	}
	m.Close()
	dlq := newMem(t)
	d := newDriver(t, engine.Config{DLQPolicy: engine.DLQRoute, DLQ: dlq})
	if err := d.RunGoverned(context.Background(), m, passThrough, okSink); err != nil {
		t.Fatal(err)
	}
	if m.Committed() != 1 || len(dlq.DeadLetters()) != 2 {
		t.Fatalf("committed %d, routed %d; want 1, 2", m.Committed(), len(dlq.DeadLetters()))
	}
}

// The commit is always the input tokens, whatever process does to them.
func TestProcessCannotChangeTokens(t *testing.T) {
	m := newMem(t)
	inject(t, m, `{}`, `{}`, `{}`)
	m.Close()
	d := newDriver(t, engine.Config{})
	err := d.Run(context.Background(), m, func(_ context.Context, b engine.Batch[uint64]) (engine.Batch[uint64], error) {
		return engine.Batch[uint64]{Records: b.Records[:1]}, nil // drops records and tokens
	}, okSink)
	if err != nil {
		t.Fatal(err)
	}
	if m.Committed() != 2 {
		t.Fatalf("committed %d, want 2 (the input tokens)", m.Committed())
	}
}

type echoProcessor struct{}

func (echoProcessor) Process(_ context.Context, recs []engine.Record, dlq []engine.DLQEntry) ([]engine.Record, []engine.DLQEntry, error) {
	for i := range recs {
		recs[i].Topic = "out"
	}
	return recs, dlq, nil
}

func TestProcessAndSinkAdapters(t *testing.T) {
	src, dst := newMem(t), newMem(t)
	inject(t, src, `{"a":1}`, `{"a":2}`)
	src.Close()
	d := newDriver(t, engine.Config{})
	if err := d.Run(context.Background(), src, engine.Process[uint64](echoProcessor{}), engine.Sink[uint64](dst)); err != nil {
		t.Fatal(err)
	}
	sent := dst.Sent()
	if len(sent) != 2 || sent[0].Topic != "out" || string(sent[1].Value) != `{"a":2}` || src.Committed() != 1 {
		t.Fatalf("sent %+v, committed %d", sent, src.Committed())
	}
	failing := engine.Process[uint64](engine.ProcessorFunc(func(context.Context, []engine.Record, []engine.DLQEntry) ([]engine.Record, []engine.DLQEntry, error) {
		return nil, nil, errBoom
	}))
	if _, err := failing(context.Background(), engine.Batch[uint64]{}); !errors.Is(err, errBoom) {
		t.Fatalf("adapter lost the error: %v", err)
	}
	b, err := engine.PassThrough(context.Background(), engine.Batch[uint64]{Tokens: []uint64{1}})
	if err != nil || len(b.Tokens) != 1 {
		t.Fatal("PassThrough changed the batch")
	}
}

type recObserver struct {
	mu      sync.Mutex
	blocks  []engine.BlockStats
	budgets []engine.BudgetSample
}

func (o *recObserver) ObserveBlock(s engine.BlockStats) {
	o.mu.Lock()
	o.blocks = append(o.blocks, s)
	o.mu.Unlock()
}

func (o *recObserver) ObserveBudget(s engine.BudgetSample) {
	o.mu.Lock()
	o.budgets = append(o.budgets, s)
	o.mu.Unlock()
}

func TestObserverSeesBlocksAndBudget(t *testing.T) {
	_, _, budget := governed(t, 1<<20, 0.9, governor.BudgetConfig{Start: 40, Min: 10, Max: 1000})
	m := newMem(t)
	injectN(t, m, 5, 10, 'o') // 50 bytes against a 40-byte budget: ≥ 2 sub-blocks
	obs := &recObserver{}
	d := newDriver(t, engine.Config{Budget: budget, Observer: obs, DLQPolicy: engine.DLQDiscardWithMetric})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Millisecond)
	defer cancel()
	err := d.RunGoverned(ctx, m, func(_ context.Context, b engine.Batch[uint64]) (engine.Batch[uint64], error) {
		b.DLQ = append(b.DLQ, engine.DLQEntry{Reason: "x"})
		return b.MapRecords(func(r []engine.Record) []engine.Record { return fanOut(r, 3) }), nil
	}, okSink)
	if err != nil {
		t.Fatal(err)
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	var recs, out, subs int
	var bytes int64
	for _, s := range obs.blocks {
		recs += s.Records
		out += s.OutRecords
		subs += s.SubBlocks
		bytes += s.Bytes
		if s.Total < s.Process || s.DeadLetters != s.SubBlocks {
			t.Fatalf("block stats %+v", s)
		}
	}
	if recs != 5 || out != 15 || bytes != 50 || subs < 2 {
		t.Fatalf("observed %d records, %d out, %d bytes, %d sub-blocks; want 5, 15, 50, ≥2", recs, out, bytes, subs)
	}
	var empty bool
	for _, s := range obs.budgets {
		if s.BlockBytes == 0 {
			empty = true
		}
		if s.BudgetBytes < 10 || s.BudgetBytes > 1000 {
			t.Fatalf("budget sample out of range: %+v", s)
		}
	}
	if !empty || len(obs.budgets) < len(obs.blocks) {
		t.Fatalf("budget samples %+v: want one per receive, empty ones included", obs.budgets)
	}
	if s := d.Stats(); s.DLQDiscarded != uint64(subs) || s.RecordsOut != 15 {
		t.Fatalf("stats %+v", s)
	}
}

func TestTickErrorIsCountedNotTerminal(t *testing.T) {
	m := newMem(t)
	d := newDriver(t, engine.Config{TickEvery: 5 * time.Millisecond, OnTick: func(context.Context) error { return errBoom }})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := d.Run(ctx, m, passThrough, okSink); err != nil {
		t.Fatal(err)
	}
	if s := d.Stats(); s.TickErrors == 0 || s.TickErrors != s.Ticks {
		t.Fatalf("stats %+v: every failed tick must be counted", s)
	}
}

// RunParsed never parses FormatRaw records: they pass with a null Value.
func TestParsedPathPassesRawRecords(t *testing.T) {
	m := newMem(t)
	if _, err := m.Inject(engine.Record{Value: []byte("\x00\x01binary"), Format: engine.FormatRaw}, engine.Record{Value: []byte(`{"a":1}`)}); err != nil {
		t.Fatal(err)
	}
	m.Close()
	d := newDriver(t, engine.Config{})
	var kinds []string
	err := d.RunParsed(context.Background(), m, func(_ context.Context, pb *engine.ParsedBatch[uint64]) (engine.Batch[uint64], error) {
		for _, v := range pb.Values {
			kinds = append(kinds, v.Kind().String())
		}
		return pb.Batch(), nil
	}, okSink)
	if err != nil {
		t.Fatal(err)
	}
	if len(kinds) != 2 || kinds[0] != "null" || kinds[1] != "object" || d.Stats().ParseErrors != 0 || m.Committed() != 1 {
		t.Fatalf("kinds %v, stats %+v, committed %d", kinds, d.Stats(), m.Committed())
	}
}

// Parse dead letters are routed exactly once, whether the process stage
// passes them on, appends to them, or drops them.
func TestParsedDeadLettersCannotBeDropped(t *testing.T) {
	for name, ret := range map[string]func(pb *engine.ParsedBatch[uint64]) engine.Batch[uint64]{
		"carried": func(pb *engine.ParsedBatch[uint64]) engine.Batch[uint64] { return pb.Batch() },
		"dropped": func(pb *engine.ParsedBatch[uint64]) engine.Batch[uint64] {
			return engine.Batch[uint64]{Records: pb.Records}
		},
		"appended": func(pb *engine.ParsedBatch[uint64]) engine.Batch[uint64] {
			b := pb.Batch()
			b.DLQ = append(b.DLQ, engine.DLQEntry{Reason: "extra"})
			return b
		},
		"new": func(pb *engine.ParsedBatch[uint64]) engine.Batch[uint64] {
			return engine.Batch[uint64]{Records: pb.Records, DLQ: []engine.DLQEntry{{Reason: "extra"}}}
		},
	} {
		m := newMem(t)
		inject(t, m, `{"ok":1}`, `{bad`, `{bad`)
		m.Close()
		dlq := newMem(t)
		d := newDriver(t, engine.Config{DLQPolicy: engine.DLQRoute, DLQ: dlq})
		err := d.RunParsed(context.Background(), m, func(_ context.Context, pb *engine.ParsedBatch[uint64]) (engine.Batch[uint64], error) {
			return ret(pb), nil
		}, okSink)
		if err != nil {
			t.Fatal(err)
		}
		want := 2
		if name == "appended" || name == "new" {
			want = 3
		}
		var parse int
		for _, e := range dlq.DeadLetters() {
			if e.Stage == "parse" {
				parse++
			}
		}
		if got := len(dlq.DeadLetters()); got != want || parse != 2 {
			t.Fatalf("%s: routed %d dead letters (%d parse), want %d (2 parse)", name, got, parse, want)
		}
	}
}

// One driver may serve several run loops at once (over different
// receivers); its counters add up.
func TestConcurrentRunsShareADriver(t *testing.T) {
	const loops, perLoop = 4, 300
	d := newDriver(t, engine.Config{MaxRecords: 16, DLQPolicy: engine.DLQDiscardWithMetric})
	var wg sync.WaitGroup
	mems := make([]*memtransport.Transport, loops)
	for i := range mems {
		mems[i] = newMem(t)
		wg.Add(1)
		go func(m *memtransport.Transport) {
			defer wg.Done()
			err := d.RunParsed(context.Background(), m, func(_ context.Context, pb *engine.ParsedBatch[uint64]) (engine.Batch[uint64], error) {
				pb.Intern("k")
				return pb.Batch(), nil
			}, okSink)
			if err != nil {
				t.Error(err)
			}
		}(mems[i])
	}
	for i := range perLoop {
		for _, m := range mems {
			v := `{"k":1}`
			if i%10 == 0 {
				v = `{bad`
			}
			inject(t, m, v)
		}
	}
	for _, m := range mems {
		m.Close()
	}
	wg.Wait()
	s := d.Stats()
	if s.RecordsIn != loops*perLoop || s.ParseErrors != loops*perLoop/10 || s.DLQDiscarded != s.ParseErrors || s.RecordsOut != s.RecordsIn-s.ParseErrors {
		t.Fatalf("stats %+v", s)
	}
	for _, m := range mems {
		if m.Committed() != perLoop-1 {
			t.Fatalf("committed %d, want %d", m.Committed(), perLoop-1)
		}
	}
	if d.Interner().Len() != 1 {
		t.Fatalf("interner holds %d names", d.Interner().Len())
	}
}
