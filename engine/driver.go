package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"
)

// Driver is the data-plane run loop: it moves one block at a time from a
// Receiver through the DLQ policy, a memory lease, the process stage, the
// sink and the commit, in that order, and stops at the first terminal error
// (the ack barrier). T is the source's commit-token type.
//
// A Driver is safe for concurrent use: several Run calls (over different
// receivers) may share it and its Stats.
type Driver[T any] struct {
	cfg   Config
	log   *slog.Logger
	stats counters
	in    Interner
}

// NewDriver validates cfg and returns a driver.
func NewDriver[T any](cfg Config) (*Driver[T], error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	return &Driver[T]{cfg: cfg, log: cfg.Logger}, nil
}

// Config returns the driver's configuration with defaults filled in.
func (d *Driver[T]) Config() Config { return d.cfg }

// Stats is a snapshot of a driver's counters since it was created.
type Stats struct {
	// Blocks is the number of blocks sunk and committed.
	Blocks uint64
	// RecordsIn counts received records; RecordsOut counts records handed
	// to the sink (after fan-out or filtering).
	RecordsIn, RecordsOut uint64
	// DLQRouted counts dead letters written to the DLQ sink; DLQDiscarded
	// counts those dropped under DLQDiscardWithMetric.
	DLQRouted, DLQDiscarded uint64
	// SinkDeadLetters counts records the sink reported as failed
	// (RecordErrors) that became dead letters (stage StageSink) and were
	// routed or discarded; they are also in DLQRouted or DLQDiscarded.
	SinkDeadLetters uint64
	// ParseErrors counts records that failed RunParsed's pre-parse (any
	// action); ParseSkipped counts those dropped under ParseErrorSkip.
	ParseErrors, ParseSkipped uint64
	// Commits counts Receiver.Commit calls that succeeded.
	Commits uint64
	// SubBlocks counts sink calls (one per block unless streaming).
	SubBlocks uint64
	// Ticks and TickErrors count OnTick calls and their failures.
	Ticks, TickErrors uint64
}

type counters struct {
	blocks, recordsIn, recordsOut, dlqRouted, dlqDiscarded   atomic.Uint64
	parseErrors, parseSkipped, commits, subBlocks, ticks, te atomic.Uint64
	sinkDeadLetters                                          atomic.Uint64
}

// Stats returns the driver's counters.
func (d *Driver[T]) Stats() Stats {
	s := &d.stats
	return Stats{
		Blocks: s.blocks.Load(), RecordsIn: s.recordsIn.Load(), RecordsOut: s.recordsOut.Load(),
		DLQRouted: s.dlqRouted.Load(), DLQDiscarded: s.dlqDiscarded.Load(), SinkDeadLetters: s.sinkDeadLetters.Load(),
		ParseErrors: s.parseErrors.Load(), ParseSkipped: s.parseSkipped.Load(),
		Commits: s.commits.Load(), SubBlocks: s.subBlocks.Load(),
		Ticks: s.ticks.Load(), TickErrors: s.te.Load(),
	}
}

// Interner returns the field interner shared by every RunParsed block.
func (d *Driver[T]) Interner() *Interner { return &d.in }

// mode selects how the loop receives and drives a block.
type mode uint8

const (
	modeWhole mode = iota
	modeStreaming
	modeGoverned
	modeOverlapped
)

// Run drives whole blocks: Recv(MaxRecords) → DLQ policy → lease → process →
// route dead letters → sink → route the sink's failed records → commit,
// until ctx is done (returns nil between blocks), the receiver returns
// ErrSourceClosed (returns nil), or a terminal error (*ReceiveError,
// *ProcessError, *DLQRouteError, *SinkError, *CommitError).
//
// A sink that reports per-record failures (a *RecordErrors, see
// RecordSink) does not stop the loop: each failed record becomes a dead
// letter (stage StageSink, the failure as the reason) routed through the
// DLQ policy, and the block is committed once they are routed. A routing
// failure is a terminal *DLQRouteError, as for any dead letter.
//
// A block in progress when ctx is cancelled still runs its sink and commit
// with ctx; if the sink fails because of the cancellation the block is not
// committed and Run returns the *SinkError (errors.Is(err, context.Canceled)).
// For a lossless drain, close the source (ErrSourceClosed) and let Run
// return, cancelling ctx only as a deadline.
func (d *Driver[T]) Run(ctx context.Context, r Receiver[T], process ProcessFunc[T], sink SinkFunc[T]) error {
	return d.loop(ctx, r, modeWhole, 0, process, sink)
}

// RunGoverned is the self-regulating loop. Without Config.Budget it is Run.
// With it, each receive is RecvLimited by min(MaxRecords, RecordCap()) and
// the current budget bytes, each block streams in sub-blocks of the budget
// read at that block, and every receive is folded into the AIMD loop as
// (block bytes, process time, ingest interval) — an empty receive too, as
// slack, so a quiet pipeline grows its budget back.
//
// With Config.Depth > 1 the stages overlap: up to Depth sub-blocks are in
// flight at once — received, leased, processed concurrently (process is
// called from several goroutines), then sunk, their dead letters routed and
// their blocks committed one at a time in receive order by one goroutine
// (so Commit runs concurrently with Recv, never with itself). The outcomes
// are those of the sequential loop: the sink sees the same batches in the
// same order, every commit follows its block's sink writes and every
// earlier block's commit, and the first terminal error in receive order
// stops the run — nothing after it is sunk or committed (blocks received
// after it are dropped uncommitted), blocks before it complete, and
// RunGoverned returns it once every stage stopped and every lease is
// released. Each sub-block's lease is held from its cut to the end of its
// sink write, so the driver leases at most Depth sub-blocks, each at most
// the byte budget read when its block was received (floor one record):
// Depth × budget in all, and Depth × min(MaxRecords, RecordCap()) records.
// The AIMD loop observes each block at its commit with its time in flight
// divided by Depth (its share of the driver's capacity: a full pipeline
// reads as a busy sequential loop). OnTick runs on the receiving goroutine,
// so it may run while blocks are processed or sunk. A cancelled ctx stops
// receiving; the sub-blocks in flight still run with ctx, and the run
// returns the first of their errors (errors.Is(err, context.Canceled)) or
// nil.
func (d *Driver[T]) RunGoverned(ctx context.Context, r Receiver[T], process ProcessFunc[T], sink SinkFunc[T]) error {
	if d.cfg.Depth > 1 {
		return d.loop(ctx, r, modeOverlapped, 0, process, sink)
	}
	if d.cfg.Budget == nil {
		return d.loop(ctx, r, modeWhole, 0, process, sink)
	}
	return d.loop(ctx, r, modeGoverned, 0, process, sink)
}

func (d *Driver[T]) loop(ctx context.Context, r Receiver[T], m mode, subBlock int64, process ProcessFunc[T], sink SinkFunc[T]) error {
	if process == nil || sink == nil {
		return fmt.Errorf("%w: process and sink must not be nil", ErrInvalidConfig)
	}
	d.log.LogAttrs(ctx, slog.LevelInfo, "engine: run loop starting",
		slog.String("mode", [...]string{"whole", "streaming", "governed", "overlapped"}[m]),
		slog.Int("max_records", d.cfg.MaxRecords), slog.Int("depth", max(d.cfg.Depth, 1)),
		slog.String("dlq_policy", d.cfg.DLQPolicy.String()), slog.Int64("sub_block_bytes", subBlock))
	var err error
	if m == modeOverlapped {
		err = d.runOverlapped(ctx, r, process, sink)
	} else {
		err = d.runLoop(ctx, r, m, subBlock, process, sink)
	}
	if err != nil {
		d.log.LogAttrs(context.WithoutCancel(ctx), slog.LevelError, "engine: run loop stopped on a terminal error (ack barrier: the failed block is not committed)",
			slog.String("error", err.Error()))
		return err
	}
	d.log.LogAttrs(context.WithoutCancel(ctx), slog.LevelInfo, "engine: run loop stopped")
	return nil
}

func (d *Driver[T]) runLoop(ctx context.Context, r Receiver[T], m mode, subBlock int64, process ProcessFunc[T], sink SinkFunc[T]) error {
	// A receive is bounded by the next tick's deadline so that ticks fire on
	// a quiet source. The deadline context is made once per tick period,
	// not per receive.
	var nextTick time.Time
	rctx, cancel := ctx, context.CancelFunc(nil)
	if d.cfg.TickEvery > 0 {
		nextTick = time.Now().Add(d.cfg.TickEvery)
		rctx, cancel = context.WithDeadline(ctx, nextTick)
		defer func() { cancel() }()
	}
	var lastRecv time.Time
	budget := d.cfg.Budget
	// out is the processed batch handed to the sink by pointer; one per run
	// so that the hand-off does not allocate per block.
	out := new(Batch[T])
	for {
		if ctx.Err() != nil {
			return nil
		}
		if !nextTick.IsZero() {
			if now := time.Now(); !now.Before(nextTick) {
				d.tick(ctx)
				nextTick = now.Add(d.cfg.TickEvery)
				cancel()
				rctx, cancel = context.WithDeadline(ctx, nextTick)
			}
		}

		var (
			b   Batch[T]
			err error
		)
		if m == modeGoverned {
			lim := RecvLimits{MaxRecords: min(d.cfg.MaxRecords, max(budget.RecordCap(), 1)), MaxBytes: budget.Bytes()}
			b, err = r.RecvLimited(rctx, lim)
		} else {
			b, err = r.Recv(rctx, d.cfg.MaxRecords)
		}
		tickExpired := cancel != nil && rctx.Err() != nil
		if err != nil {
			switch {
			case errors.Is(err, ErrSourceClosed), ctx.Err() != nil:
				return nil
			case tickExpired:
				continue // the receive gave up at the tick deadline: idle
			default:
				return &ReceiveError{Err: err}
			}
		}

		var interval time.Duration
		now := time.Now()
		if !lastRecv.IsZero() {
			interval = now.Sub(lastRecv)
		}
		lastRecv = now

		if len(b.Records) == 0 && len(b.Tokens) == 0 && len(b.DLQ) == 0 {
			if m == modeGoverned {
				budget.Observe(0, 0, interval)
				d.observeBudget(0, 0, interval)
			}
			continue
		}

		switch m {
		case modeWhole:
			err = d.driveBlock(ctx, r, b, process, sink, out, now)
		case modeStreaming:
			err = d.driveStreaming(ctx, r, b, process, sink, out, subBlock, now)
		case modeGoverned:
			blockBytes := b.Bytes()
			err = d.driveStreaming(ctx, r, b, process, sink, out, budget.Bytes(), now)
			if err == nil {
				took := time.Since(now)
				budget.Observe(blockBytes, took, interval)
				d.observeBudget(blockBytes, took, interval)
			}
		}
		if err != nil {
			return err
		}
	}
}

func (d *Driver[T]) tick(ctx context.Context) {
	d.stats.ticks.Add(1)
	if err := d.cfg.OnTick(ctx); err != nil {
		d.stats.te.Add(1)
		d.log.LogAttrs(ctx, slog.LevelError, "engine: tick failed", slog.String("error", err.Error()))
	}
}

func (d *Driver[T]) observeBudget(blockBytes int64, took, interval time.Duration) {
	if d.cfg.Observer == nil {
		return
	}
	d.cfg.Observer.ObserveBudget(BudgetSample{
		BlockBytes: blockBytes, ProcessTime: took, IngestInterval: interval,
		BudgetBytes: d.cfg.Budget.Bytes(), RecordCap: d.cfg.Budget.RecordCap(),
	})
}

// routeDLQ applies the DLQ policy to entries. It is the only place dead
// letters leave a block, and it runs before the block's commit.
func (d *Driver[T]) routeDLQ(ctx context.Context, entries []DLQEntry) error {
	if len(entries) == 0 {
		return nil
	}
	switch d.cfg.DLQPolicy {
	case DLQRoute:
		if err := d.cfg.DLQ.WriteDLQ(ctx, entries); err != nil {
			return &DLQRouteError{Entries: len(entries), Policy: DLQRoute, Err: err}
		}
		d.stats.dlqRouted.Add(uint64(len(entries)))
	case DLQDiscardWithMetric:
		d.stats.dlqDiscarded.Add(uint64(len(entries)))
	default:
		return &DLQRouteError{Entries: len(entries), Policy: d.cfg.DLQPolicy, Err: ErrDLQRejected}
	}
	return nil
}

// needBytes reports whether a block's byte size must be computed.
func (d *Driver[T]) needBytes() bool { return d.cfg.Guard != nil || d.cfg.Observer != nil }

// driveBlock drives one whole block: lease → process → dead letters → sink →
// commit. The lease is released on every exit path.
func (d *Driver[T]) driveBlock(ctx context.Context, r Receiver[T], b Batch[T], process ProcessFunc[T], sink SinkFunc[T], out *Batch[T], start time.Time) error {
	st := BlockStats{Records: len(b.Records), SubBlocks: 1}
	d.stats.recordsIn.Add(uint64(len(b.Records)))
	if len(b.DLQ) > 0 {
		st.DeadLetters += len(b.DLQ)
		if err := d.routeDLQ(ctx, b.DLQ); err != nil {
			return err
		}
		b.DLQ = nil
	}
	if d.needBytes() {
		st.Bytes = b.Bytes()
	}
	if g := d.cfg.Guard; g != nil {
		lease := g.Lease(st.Bytes)
		defer lease.Release()
	}
	tokens := b.Tokens

	t0 := time.Now()
	var err error
	*out, err = process(ctx, b)
	defer clear1(out) // drop the references once the block is done
	if err != nil {
		return &ProcessError{Records: st.Records, Err: err}
	}
	t1 := time.Now()
	st.Process = t1.Sub(t0)
	out.Tokens = tokens
	if len(out.DLQ) > 0 {
		st.DeadLetters += len(out.DLQ)
		if err := d.routeDLQ(ctx, out.DLQ); err != nil {
			return err
		}
		out.DLQ = nil
	}

	clean := true
	if err := sink(ctx, out); err != nil {
		clean = false // records failed: the memory they borrow is left to the collector
		if err := d.sinkOutcome(ctx, out.Records, err, 0, &st); err != nil {
			return err
		}
	}
	t2 := time.Now()
	st.Sink = t2.Sub(t1)
	st.OutRecords = len(out.Records)
	d.stats.subBlocks.Add(1)
	d.stats.recordsOut.Add(uint64(len(out.Records)))

	if err := d.commit(ctx, r, tokens); err != nil {
		return err
	}
	if clean {
		release(out.Release)
	}
	return d.finish(&st, start, t2)
}

// driveStreaming drives one block as lazy sub-blocks of at most subBytes,
// holding one sub-block's lease at a time, and commits the block's tokens
// once after the final sub-block.
func (d *Driver[T]) driveStreaming(ctx context.Context, r Receiver[T], b Batch[T], process ProcessFunc[T], sink SinkFunc[T], out *Batch[T], subBytes int64, start time.Time) error {
	if len(b.Records) == 0 {
		// Tokens or dead letters only: nothing to split.
		return d.driveBlock(ctx, r, b, process, sink, out, start)
	}
	st := BlockStats{Records: len(b.Records)}
	d.stats.recordsIn.Add(uint64(len(b.Records)))
	if len(b.DLQ) > 0 {
		st.DeadLetters += len(b.DLQ)
		if err := d.routeDLQ(ctx, b.DLQ); err != nil {
			return err
		}
	}
	if d.cfg.Observer != nil {
		st.Bytes = b.Bytes()
	}
	tokens := b.Tokens
	drain := NewSubBlockDrain(b.Records, subBytes)
	rel := releases{fns: b.Release, clean: true}
	for recs, ok := drain.Next(); ok; recs, ok = drain.Next() {
		view := Batch[T]{Records: recs}
		if err := d.driveSubBlock(ctx, view, process, sink, out, &st, &rel); err != nil {
			return err
		}
	}
	tc := time.Now()
	if err := d.commit(ctx, r, tokens); err != nil {
		return err
	}
	rel.commit()
	return d.finish(&st, start, tc)
}

func (d *Driver[T]) driveSubBlock(ctx context.Context, view Batch[T], process ProcessFunc[T], sink SinkFunc[T], out *Batch[T], st *BlockStats, rel *releases) error {
	if g := d.cfg.Guard; g != nil {
		var n int64
		for i := range view.Records {
			n += int64(view.Records[i].Size())
		}
		lease := g.Lease(n)
		defer lease.Release() // before the next sub-block is leased
	}
	tokens := view.Tokens
	in := len(view.Records)
	t0 := time.Now()
	var err error
	*out, err = process(ctx, view)
	defer clear1(out)
	if err != nil {
		return &ProcessError{Records: in, Err: err}
	}
	t1 := time.Now()
	st.Process += t1.Sub(t0)
	out.Tokens = tokens
	if len(out.DLQ) > 0 {
		st.DeadLetters += len(out.DLQ)
		if err := d.routeDLQ(ctx, out.DLQ); err != nil {
			return err
		}
		out.DLQ = nil
	}
	rel.add(out.Release)
	if err := sink(ctx, out); err != nil {
		rel.clean = false
		if err := d.sinkOutcome(ctx, out.Records, err, st.SubBlocks, st); err != nil {
			return err
		}
	}
	st.Sink += time.Since(t1)
	st.SubBlocks++
	st.OutRecords += len(out.Records)
	d.stats.subBlocks.Add(1)
	d.stats.recordsOut.Add(uint64(len(out.Records)))
	return nil
}

// sinkOutcome handles a sink call's error: a *RecordErrors (returned as
// is, not wrapped) becomes dead letters of the records it lists, routed
// through the DLQ policy like every dead letter; anything else is a
// terminal *SinkError.
func (d *Driver[T]) sinkOutcome(ctx context.Context, recs []Record, err error, subBlock int, st *BlockStats) error {
	re, ok := err.(*RecordErrors) //nolint:errorlint // by contract never wrapped: a wrapped one is a whole-write failure
	if !ok {
		return &SinkError{Records: len(recs), SubBlock: subBlock, Err: err}
	}
	if verr := re.validate(len(recs)); verr != nil {
		return &SinkError{Records: len(recs), SubBlock: subBlock, Err: verr}
	}
	if len(re.Failed) == 0 {
		return nil
	}
	entries := make([]DLQEntry, len(re.Failed))
	for i, f := range re.Failed {
		entries[i] = DLQEntry{Record: recs[f.Index], Reason: failureReason(f.Err), Stage: StageSink}
	}
	st.DeadLetters += len(entries)
	st.SinkDeadLetters += len(entries)
	if err := d.routeDLQ(ctx, entries); err != nil {
		return err
	}
	d.stats.sinkDeadLetters.Add(uint64(len(entries)))
	return nil
}

func (d *Driver[T]) commit(ctx context.Context, r Receiver[T], tokens []T) error {
	if len(tokens) == 0 {
		return nil
	}
	if err := r.Commit(ctx, tokens); err != nil {
		return &CommitError{Tokens: len(tokens), Err: err}
	}
	d.stats.commits.Add(1)
	return nil
}

func (d *Driver[T]) finish(st *BlockStats, start, commitStart time.Time) error {
	d.stats.blocks.Add(1)
	if d.cfg.Observer != nil {
		end := time.Now()
		st.Commit = end.Sub(commitStart)
		st.Total = end.Sub(start)
		d.cfg.Observer.ObserveBlock(*st)
	}
	return nil
}

// clear1 resets a batch so the driver's scratch keeps no references.
func clear1[T any](b *Batch[T]) { *b = Batch[T]{} }
