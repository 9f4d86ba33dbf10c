package engine_test

// Per-record sink outcomes: a sink that returns a *RecordErrors has the
// listed records dead-lettered (stage "sink") through the one DLQ policy
// before the commit, and the block goes on; every other sink error stays
// terminal.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/engine"
	"github.com/sluicehq/sluice/governor"
)

// poisonSink fails every record whose value contains "poison" with a
// per-record error, and records what it accepted. It logs its calls in ev.
type poisonSink struct {
	ev       *eventLog
	accepted []string
	calls    int
}

var errPoison = errors.New("UNKNOWN_TOPIC_OR_PARTITION: no such topic")

func (s *poisonSink) sink(_ context.Context, b *engine.Batch[uint64]) error {
	s.calls++
	s.ev.add(fmt.Sprintf("sink %d", len(b.Records)))
	var re engine.RecordErrors
	for i := range b.Records {
		if strings.Contains(string(b.Records[i].Value), "poison") {
			re.Fail(i, fmt.Errorf("unknown topic %q: %w", b.Records[i].Topic, errPoison))
			continue
		}
		s.accepted = append(s.accepted, string(b.Records[i].Value))
	}
	if re.Len() == 0 {
		return nil
	}
	return &re
}

// eventLog is an ordered log of stage calls, shared by the sink, the DLQ
// sink and the receiver so that tests can assert the order of routing and
// commit.
type eventLog struct {
	mu sync.Mutex
	ev []string
}

func (l *eventLog) add(e string) {
	l.mu.Lock()
	l.ev = append(l.ev, e)
	l.mu.Unlock()
}

func (l *eventLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.ev, "; ")
}

// recordingDLQ keeps every dead letter it is handed (or fails with err).
type recordingDLQ struct {
	ev      *eventLog
	entries []engine.DLQEntry
	err     error
}

func (r *recordingDLQ) WriteDLQ(_ context.Context, entries []engine.DLQEntry) error {
	r.ev.add(fmt.Sprintf("dlq %d", len(entries)))
	if r.err != nil {
		return r.err
	}
	r.entries = append(r.entries, entries...)
	return nil
}

// loggingReceiver logs commits into ev.
type loggingReceiver struct {
	*countingReceiver
	ev *eventLog
}

func (l *loggingReceiver) Commit(ctx context.Context, tokens []uint64) error {
	l.ev.add(fmt.Sprintf("commit %d", len(tokens)))
	return l.countingReceiver.Commit(ctx, tokens)
}

func newLogging(tb testing.TB, ev *eventLog, values ...string) *loggingReceiver {
	tb.Helper()
	m := newMem(tb)
	inject(tb, m, values...)
	m.Close()
	return &loggingReceiver{countingReceiver: &countingReceiver{Transport: m}, ev: ev}
}

// mixed is ten records, two of them poison (indexes 3 and 7).
func mixed() []string {
	vs := make([]string, 10)
	for i := range vs {
		vs[i] = fmt.Sprintf(`{"i":%d}`, i)
	}
	vs[3], vs[7] = `{"i":3,"poison":1}`, `{"i":7,"poison":2}`
	return vs
}

func TestSinkRecordFailuresAreDeadLetteredAndTheBlockCommits(t *testing.T) {
	ev := &eventLog{}
	r := newLogging(t, ev, mixed()...)
	dlq := &recordingDLQ{ev: ev}
	obs := &blockRecorder{}
	d := newDriver(t, engine.Config{DLQPolicy: engine.DLQRoute, DLQ: dlq, Observer: obs})
	s := &poisonSink{ev: ev}
	if err := d.Run(testCtx(t, 5*time.Second), r, passThrough, s.sink); err != nil {
		t.Fatalf("Run = %v, want nil: a per-record failure is not terminal", err)
	}
	if got, want := ev.String(), "sink 10; dlq 2; commit 10"; got != want {
		t.Fatalf("calls = %q, want %q (dead letters routed after the sink, before the one commit)", got, want)
	}
	if len(s.accepted) != 8 {
		t.Fatalf("sink accepted %d records, want 8", len(s.accepted))
	}
	if len(dlq.entries) != 2 {
		t.Fatalf("%d dead letters, want 2", len(dlq.entries))
	}
	for k, want := range []string{`{"i":3,"poison":1}`, `{"i":7,"poison":2}`} {
		e := dlq.entries[k]
		if string(e.Record.Value) != want || e.Stage != "sink" {
			t.Fatalf("dead letter %d = %q stage %q, want %q stage sink", k, e.Record.Value, e.Stage, want)
		}
		if !strings.HasPrefix(e.Reason, `unknown topic "": UNKNOWN_TOPIC_OR_PARTITION`) {
			t.Fatalf("dead letter %d reason = %q, want the sink's error", k, e.Reason)
		}
	}
	if got := r.Committed(); got != 9 {
		t.Fatalf("watermark = %d, want 9 (every input token)", got)
	}
	st := d.Stats()
	if st.Commits != 1 || st.SinkDeadLetters != 2 || st.DLQRouted != 2 || st.RecordsOut != 10 || st.Blocks != 1 {
		t.Fatalf("stats = %+v", st)
	}
	if len(obs.blocks) != 1 || obs.blocks[0].DeadLetters != 2 || obs.blocks[0].SinkDeadLetters != 2 {
		t.Fatalf("observed blocks = %+v, want one with 2 sink dead letters", obs.blocks)
	}
}

func TestSinkAllRecordsFailingStillCommits(t *testing.T) {
	ev := &eventLog{}
	r := newLogging(t, ev, `{"poison":0}`, `{"poison":1}`, `{"poison":2}`)
	dlq := &recordingDLQ{ev: ev}
	d := newDriver(t, engine.Config{DLQPolicy: engine.DLQRoute, DLQ: dlq})
	s := &poisonSink{ev: ev}
	if err := d.Run(testCtx(t, 5*time.Second), r, passThrough, s.sink); err != nil {
		t.Fatal(err)
	}
	if got, want := ev.String(), "sink 3; dlq 3; commit 3"; got != want {
		t.Fatalf("calls = %q, want %q", got, want)
	}
	if len(s.accepted) != 0 || len(dlq.entries) != 3 || r.Committed() != 2 {
		t.Fatalf("accepted %d, dead letters %d, watermark %d; want 0, 3, 2", len(s.accepted), len(dlq.entries), r.Committed())
	}
	for i, e := range dlq.entries {
		if want := fmt.Sprintf(`{"poison":%d}`, i); string(e.Record.Value) != want {
			t.Fatalf("dead letter %d = %q, want %q (order kept)", i, e.Record.Value, want)
		}
	}
}

func TestSinkDeadLetterWriteFailureIsTerminal(t *testing.T) {
	f := func(name string, dlqErr error) {
		t.Run(name, func(t *testing.T) {
			ev := &eventLog{}
			m := newMem(t)
			inject(t, m, mixed()...)
			inject(t, m, `{"later":1}`) // a later block must never be received
			r := &loggingReceiver{countingReceiver: &countingReceiver{Transport: m}, ev: ev}
			dlq := &recordingDLQ{ev: ev, err: dlqErr}
			d := newDriver(t, engine.Config{MaxRecords: 10, DLQPolicy: engine.DLQRoute, DLQ: dlq})
			s := &poisonSink{ev: ev}
			err := d.Run(testCtx(t, 5*time.Second), r, passThrough, s.sink)
			var re *engine.DLQRouteError
			if !errors.As(err, &re) || re.Entries != 2 || re.Policy != engine.DLQRoute || !errors.Is(err, dlqErr) {
				t.Fatalf("Run = %v, want a *DLQRouteError of 2 entries wrapping the DLQ's error", err)
			}
			if got, want := ev.String(), "sink 10; dlq 2"; got != want {
				t.Fatalf("calls = %q, want %q (no commit after a failed DLQ write)", got, want)
			}
			if r.commitCalls.Load() != 0 || r.Committed() != -1 || m.Pending() != 1 {
				t.Fatalf("commits %d, watermark %d, pending %d; want 0, -1, 1 (ack barrier)", r.commitCalls.Load(), r.Committed(), m.Pending())
			}
		})
	}
	f("write fails", errBoom)
	// A dead letter that itself fails per record (the DLQ topic refused
	// it) is terminal as well: nothing is silently lost.
	perRecord := &engine.RecordErrors{}
	perRecord.Fail(1, errors.New("MESSAGE_TOO_LARGE"))
	f("a dead letter fails per record", perRecord)
}

func TestSinkRecordFailuresFollowTheDLQPolicy(t *testing.T) {
	t.Run("discard", func(t *testing.T) {
		ev := &eventLog{}
		r := newLogging(t, ev, mixed()...)
		d := newDriver(t, engine.Config{DLQPolicy: engine.DLQDiscardWithMetric})
		s := &poisonSink{ev: ev}
		if err := d.Run(testCtx(t, 5*time.Second), r, passThrough, s.sink); err != nil {
			t.Fatal(err)
		}
		st := d.Stats()
		if st.DLQDiscarded != 2 || st.SinkDeadLetters != 2 || st.DLQRouted != 0 || st.Commits != 1 || r.Committed() != 9 {
			t.Fatalf("stats = %+v, watermark %d; want 2 discarded and counted, committed", st, r.Committed())
		}
	})
	t.Run("reject", func(t *testing.T) {
		ev := &eventLog{}
		r := newLogging(t, ev, mixed()...)
		d := newDriver(t, engine.Config{}) // DLQReject is the default
		s := &poisonSink{ev: ev}
		err := d.Run(testCtx(t, 5*time.Second), r, passThrough, s.sink)
		var re *engine.DLQRouteError
		if !errors.As(err, &re) || !errors.Is(err, engine.ErrDLQRejected) || re.Entries != 2 || re.Policy != engine.DLQReject {
			t.Fatalf("Run = %v, want a *DLQRouteError wrapping ErrDLQRejected", err)
		}
		if r.commitCalls.Load() != 0 || r.Committed() != -1 {
			t.Fatalf("committed under DLQReject: %d calls, watermark %d", r.commitCalls.Load(), r.Committed())
		}
		if st := d.Stats(); st.SinkDeadLetters != 0 || st.DLQDiscarded != 0 {
			t.Fatalf("stats = %+v: rejected dead letters counted as handled", st)
		}
	})
	t.Run("route", func(t *testing.T) {
		ev := &eventLog{}
		r := newLogging(t, ev, mixed()...)
		dlq := &recordingDLQ{ev: ev}
		d := newDriver(t, engine.Config{DLQPolicy: engine.DLQRoute, DLQ: dlq})
		s := &poisonSink{ev: ev}
		if err := d.Run(testCtx(t, 5*time.Second), r, passThrough, s.sink); err != nil {
			t.Fatal(err)
		}
		if st := d.Stats(); st.DLQRouted != 2 || len(dlq.entries) != 2 || r.Committed() != 9 {
			t.Fatalf("stats = %+v, %d entries, watermark %d", st, len(dlq.entries), r.Committed())
		}
	})
}

// bytesIgnoringReceiver hands out blocks bounded by records only, so that a
// governed block is larger than its sub-blocks.
type bytesIgnoringReceiver struct{ *loggingReceiver }

func (r bytesIgnoringReceiver) RecvLimited(ctx context.Context, lim engine.RecvLimits) (engine.Batch[uint64], error) {
	return r.Recv(ctx, lim.MaxRecords)
}

// Streaming: each sub-block's failed records are routed right after its
// sink call and before the next sub-block; the block commits once, after
// the final one.
func TestStreamingSinkRecordFailuresRoutePerSubBlockAndCommitOnce(t *testing.T) {
	ev := &eventLog{}
	vs := make([]string, 9)
	for i := range vs {
		vs[i] = fmt.Sprintf(`{"i":%d,"pad":"xxxxxxxxxxxxxxxxxxxx"}`, i) // 38 bytes
	}
	vs[1] = `{"i":1,"pad":"poisonxxxxxxxxxxxxxxx"}`
	vs[7] = `{"i":7,"pad":"poisonxxxxxxxxxxxxxxx"}`
	vs[8] = `{"i":8,"pad":"poisonxxxxxxxxxxxxxxx"}`
	r := newLogging(t, ev, vs...)
	dlq := &recordingDLQ{ev: ev}
	// A budget fixed at 3 records of 38 bytes: sub-blocks [0 1 2] [3 4 5] [6 7 8].
	_, _, budget := governed(t, 1<<30, 0.9, governor.BudgetConfig{Min: 3 * 38, Max: 3 * 38, Start: 3 * 38})
	d := newDriver(t, engine.Config{DLQPolicy: engine.DLQRoute, DLQ: dlq, Budget: budget})
	s := &poisonSink{ev: ev}
	if err := d.RunGoverned(testCtx(t, 5*time.Second), bytesIgnoringReceiver{r}, passThrough, s.sink); err != nil {
		t.Fatal(err)
	}
	if got, want := ev.String(), "sink 3; dlq 1; sink 3; sink 3; dlq 2; commit 9"; got != want {
		t.Fatalf("calls = %q, want %q", got, want)
	}
	var got []string
	for _, e := range dlq.entries {
		got = append(got, string(e.Record.Value[:6]))
	}
	if want := []string{`{"i":1`, `{"i":7`, `{"i":8`}; !slices.Equal(got, want) {
		t.Fatalf("dead letters %v, want %v", got, want)
	}
	if st := d.Stats(); st.Commits != 1 || st.SubBlocks != 3 || st.SinkDeadLetters != 3 || r.Committed() != 8 {
		t.Fatalf("stats = %+v, watermark %d", st, r.Committed())
	}
}

// The governed loop goes through the same path.
func TestGovernedSinkRecordFailures(t *testing.T) {
	ev := &eventLog{}
	r := newLogging(t, ev, mixed()...)
	dlq := &recordingDLQ{ev: ev}
	d := newDriver(t, engine.Config{DLQPolicy: engine.DLQRoute, DLQ: dlq, Budget: benchBudget(t)})
	s := &poisonSink{ev: ev}
	if err := d.RunGoverned(testCtx(t, 5*time.Second), r, passThrough, s.sink); err != nil {
		t.Fatal(err)
	}
	if len(dlq.entries) != 2 || len(s.accepted) != 8 || r.Committed() != 9 || r.commitCalls.Load() != 1 {
		t.Fatalf("dead letters %d, accepted %d, watermark %d, commits %d", len(dlq.entries), len(s.accepted), r.Committed(), r.commitCalls.Load())
	}
}

// Per-record failures do not hold the ack barrier: later blocks of an
// ordered source are received and committed.
func TestSinkRecordFailuresDoNotBlockLaterOrderedCommits(t *testing.T) {
	r := newOrderedReceiver(5)
	var dead []string
	dlq := funcDLQ(func(_ context.Context, entries []engine.DLQEntry) error {
		for _, e := range entries {
			dead = append(dead, string(e.Record.Value))
		}
		return nil
	})
	d := newDriver(t, engine.Config{DLQPolicy: engine.DLQRoute, DLQ: dlq})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sink := func(_ context.Context, b *engine.Batch[uint64]) error {
		if string(b.Records[0].Value) == `{"seq":2}` {
			return &engine.RecordErrors{Failed: []engine.RecordFailure{{Index: 0, Err: errPoison}}}
		}
		if b.Tokens[0] == 4 {
			cancel() // the last record: stop after its commit
		}
		return nil
	}
	if err := d.Run(ctx, r, passThrough, sink); err != nil {
		t.Fatal(err)
	}
	if got := r.committed.Load(); got != 4 {
		t.Fatalf("watermark = %d, want 4 (every block committed)", got)
	}
	if !slices.Equal(dead, []string{`{"seq":2}`}) {
		t.Fatalf("dead letters %v", dead)
	}
}

func TestSinkErrorsThatAreNotPerRecordStayTerminal(t *testing.T) {
	f := func(name string, cfg engine.Config, sinkErr error, wantIs error) {
		t.Run(name, func(t *testing.T) {
			ev := &eventLog{}
			r := newLogging(t, ev, mixed()...)
			dlq := &recordingDLQ{ev: ev}
			cfg.DLQPolicy, cfg.DLQ = engine.DLQRoute, dlq
			d := newDriver(t, cfg)
			err := d.Run(testCtx(t, 5*time.Second), r, passThrough, func(context.Context, *engine.Batch[uint64]) error {
				return sinkErr
			})
			var se *engine.SinkError
			if !errors.As(err, &se) || se.Records != 10 || !errors.Is(err, wantIs) {
				t.Fatalf("Run = %v, want a terminal *SinkError of 10 records wrapping %v", err, wantIs)
			}
			if r.commitCalls.Load() != 0 || len(dlq.entries) != 0 {
				t.Fatalf("commits %d, dead letters %d: a terminal sink error must route and commit nothing", r.commitCalls.Load(), len(dlq.entries))
			}
		})
	}
	one := func(idx ...int) *engine.RecordErrors {
		re := &engine.RecordErrors{}
		for _, i := range idx {
			re.Failed = append(re.Failed, engine.RecordFailure{Index: i, Err: errPoison})
		}
		return re
	}
	f("whole write", engine.Config{}, errBoom, errBoom)
	// Wrapping hides a per-record outcome: it may be a whole-write failure
	// that merely mentions one.
	wrapped := fmt.Errorf("retry failed: %w", one(3))
	f("wrapped RecordErrors", engine.Config{}, wrapped, errPoison)
	f("joined with a whole-write error", engine.Config{}, errors.Join(errBoom, one(3)), errBoom)
	f("index out of range", engine.Config{}, one(3, 10), engine.ErrBadRecordErrors)
	f("negative index", engine.Config{}, one(-1), engine.ErrBadRecordErrors)
	f("duplicate index", engine.Config{}, one(3, 3), engine.ErrBadRecordErrors)
	f("descending", engine.Config{}, one(7, 3), engine.ErrBadRecordErrors)
}

func TestEmptyRecordErrorsIsSuccess(t *testing.T) {
	ev := &eventLog{}
	r := newLogging(t, ev, mixed()...)
	d := newDriver(t, engine.Config{})
	err := d.Run(testCtx(t, 5*time.Second), r, passThrough, func(context.Context, *engine.Batch[uint64]) error {
		return &engine.RecordErrors{}
	})
	if err != nil || r.Committed() != 9 || d.Stats().SinkDeadLetters != 0 {
		t.Fatalf("Run = %v, watermark %d, stats %+v", err, r.Committed(), d.Stats())
	}
}

// recordSinkFunc adapts a function to engine.RecordSink.
type recordSinkFunc func(ctx context.Context, recs []engine.Record) error

func (f recordSinkFunc) Write(ctx context.Context, recs []engine.Record) error { return f(ctx, recs) }

// engine.Sink hands a RecordSink's *RecordErrors to the driver unchanged,
// and the dead letters carry the records as they were sunk (after the
// process stage), topic and key included.
func TestSinkAdapterPassesRecordErrors(t *testing.T) {
	ev := &eventLog{}
	r := newLogging(t, ev, mixed()...)
	dlq := &recordingDLQ{ev: ev}
	d := newDriver(t, engine.Config{DLQPolicy: engine.DLQRoute, DLQ: dlq})
	process := func(_ context.Context, b engine.Batch[uint64]) (engine.Batch[uint64], error) {
		for i := range b.Records {
			b.Records[i].Topic = fmt.Sprintf("t%d", i)
			b.Records[i].Key = []byte("k")
		}
		return b, nil
	}
	rs := recordSinkFunc(func(_ context.Context, recs []engine.Record) error {
		re := &engine.RecordErrors{}
		re.Fail(4, errPoison)
		return re
	})
	if err := d.Run(testCtx(t, 5*time.Second), r, process, engine.Sink[uint64](rs)); err != nil {
		t.Fatal(err)
	}
	if len(dlq.entries) != 1 {
		t.Fatalf("%d dead letters, want 1", len(dlq.entries))
	}
	e := dlq.entries[0]
	if string(e.Record.Value) != `{"i":4}` || e.Record.Topic != "t4" || string(e.Record.Key) != "k" || e.Reason != errPoison.Error() {
		t.Fatalf("dead letter = %+v (value %q), want record 4 as sunk with the sink's reason", e, e.Record.Value)
	}
}

func TestRecordErrorsMessage(t *testing.T) {
	re := &engine.RecordErrors{}
	if got := re.Error(); got != "engine: no record failed" {
		t.Fatal(got)
	}
	re.Fail(2, errPoison)
	if got, want := re.Error(), "engine: record 2 failed: "+errPoison.Error(); got != want {
		t.Fatalf("%q, want %q", got, want)
	}
	re.Fail(5, nil)
	if got, want := re.Error(), "engine: 2 records failed; record 2: "+errPoison.Error(); got != want || re.Len() != 2 {
		t.Fatalf("%q, want %q", got, want)
	}
}

// A record failure without a cause still gets a reason.
func TestSinkRecordFailureWithoutCause(t *testing.T) {
	ev := &eventLog{}
	r := newLogging(t, ev, `{"a":1}`)
	dlq := &recordingDLQ{ev: ev}
	d := newDriver(t, engine.Config{DLQPolicy: engine.DLQRoute, DLQ: dlq})
	err := d.Run(testCtx(t, 5*time.Second), r, passThrough, func(context.Context, *engine.Batch[uint64]) error {
		return &engine.RecordErrors{Failed: []engine.RecordFailure{{Index: 0}}}
	})
	if err != nil || len(dlq.entries) != 1 || dlq.entries[0].Reason != "rejected by the sink" {
		t.Fatalf("Run = %v, entries %+v", err, dlq.entries)
	}
}

// blockRecorder is an Observer that keeps the block stats.
type blockRecorder struct {
	mu     sync.Mutex
	blocks []engine.BlockStats
}

func (o *blockRecorder) ObserveBlock(st engine.BlockStats) {
	o.mu.Lock()
	o.blocks = append(o.blocks, st)
	o.mu.Unlock()
}

func (o *blockRecorder) ObserveBudget(engine.BudgetSample) {}
