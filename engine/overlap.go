package engine

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice/governor"
)

// MaxDepth is the largest Config.Depth.
const MaxDepth = 64

// The overlapped loop: RunGoverned with Config.Depth > 1.
//
// The sequential loop runs receive → process → sink → commit strictly one
// after another, so the process stage idles while the sink waits for its
// acknowledgements and the sink idles while the guests run. The overlapped
// loop keeps up to Depth sub-blocks in flight in three stages:
//
//	receive (the caller's goroutine) — takes a free slot (at most Depth are
//	  in flight), receives a block (RecvLimited by the budget) when the
//	  previous one is all cut, cuts the next sub-block, leases its bytes and
//	  hands it to both queues below, in receive order;
//	process (Depth workers) — process(ctx, sub-block): up to Depth
//	  sub-blocks are processed at once, in any order;
//	sink (one goroutine) — takes the sub-blocks in receive order, waits for
//	  each one's process, routes the block's inbound dead letters (first
//	  sub-block) and the sub-block's, sinks it, routes the sink's failed
//	  records, releases its lease and slot and, after a block's final
//	  sub-block, commits the block's tokens and folds the block into the
//	  budget.
//
// Since the sink stage is one goroutine that takes sub-blocks in receive
// order, the sink sees records in the order the sequential loop gives it
// and commits are in receive order, never concurrent. The first terminal
// error in that order stops everything after it: the sink stage sinks and
// commits nothing more, the workers skip what they have not started, the
// receive stage stops, and the run returns that error once every goroutine
// returned and every lease is released. Blocks before the failed one were
// sunk and committed in order, as in the sequential loop.
type overlap[T any] struct {
	d       *Driver[T]
	r       Receiver[T]
	process ProcessFunc[T]
	sink    SinkFunc[T]
	depth   int

	free  chan *slot[T] // slots not in flight; the receive stage takes one per sub-block
	work  chan *slot[T] // cut sub-blocks, to the process workers
	order chan *slot[T] // the same sub-blocks in receive order, to the sink stage

	failed   atomic.Bool        // a terminal error in flight: skip, sink nothing, commit nothing
	stopRecv context.CancelFunc // interrupts a receive after a terminal error
	obsMu    sync.Mutex         // Config.Observer is called one at a time
}

// slot is one sub-block in flight and what the stages made of it. Fields
// are written by one stage and read by the next after a channel hand-off.
type slot[T any] struct {
	view Batch[T] // as cut: records (the whole block's tokens when sunk whole)
	out  Batch[T] // what process returned

	// The block's, on its first sub-block: inbound dead letters, records
	// and bytes as received, when it was received and the interval since
	// the previous receive.
	first    bool
	dlq      []DLQEntry
	release  []func() // the received batch's Release
	records  int
	bytes    int64
	start    time.Time
	interval time.Duration

	// The block's tokens, on its final sub-block: committed after it.
	final  bool
	tokens []T

	lease *governor.Lease // the sub-block's bytes, from its cut to the end of its sink write
	took  time.Duration   // process time
	err   error           // process error
	done  chan struct{}   // process finished (capacity 1)
}

func (s *slot[T]) reset() {
	done := s.done
	*s = slot[T]{done: done}
}

// errSkipped marks a sub-block the workers did not process because a
// terminal error came before it; it is never returned.
var errSkipped = errors.New("engine: skipped after a terminal error")

// runOverlapped is RunGoverned's loop for Depth > 1 (see overlap).
func (d *Driver[T]) runOverlapped(ctx context.Context, r Receiver[T], process ProcessFunc[T], sink SinkFunc[T]) error {
	depth := d.cfg.Depth
	o := &overlap[T]{
		d: d, r: r, process: process, sink: sink, depth: depth,
		free:  make(chan *slot[T], depth),
		work:  make(chan *slot[T], depth),
		order: make(chan *slot[T], depth),
	}
	slots := make([]slot[T], depth)
	for i := range slots {
		slots[i].done = make(chan struct{}, 1)
		o.free <- &slots[i]
	}
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	o.stopRecv = stop

	var workers sync.WaitGroup
	workers.Add(depth)
	for range depth {
		go func() {
			defer workers.Done()
			o.processStage(ctx)
		}()
	}
	sinkErr := make(chan error, 1)
	go func() { sinkErr <- o.sinkStage(ctx) }()

	recvErr := o.receiveStage(ctx, rctx)
	close(o.work)
	close(o.order)
	err := <-sinkErr
	workers.Wait()
	if err != nil {
		return err // earlier in receive order than anything the receive stage saw
	}
	return recvErr
}

// receiveStage receives blocks, cuts them into sub-blocks and hands them on
// until the source is closed (nil), ctx is done (nil), a terminal error is
// in flight (nil: the sink stage returns it) or the receive fails
// (*ReceiveError: the blocks in flight still finish and commit).
func (o *overlap[T]) receiveStage(ctx, pctx context.Context) error {
	d := o.d
	var nextTick time.Time
	rd := recvDeadline{ctx: pctx}
	defer rd.stop()
	if d.cfg.TickEvery > 0 {
		nextTick = time.Now().Add(d.cfg.TickEvery)
		rd.reset(pctx, nextTick)
	}
	var (
		lastRecv time.Time
		drain    SubBlockDrain // the block being cut
		tokens   []T           // its tokens
	)
	budget := d.cfg.Budget
	for {
		s := <-o.free // a slot in flight always comes back: the sink stage recycles every one
		if o.failed.Load() {
			return nil
		}
		if drain.Remaining() > 0 {
			o.cut(s, &drain, tokens)
			if drain.Done() {
				drain, tokens = SubBlockDrain{}, nil // keep no reference to a block cut whole
			}
			continue
		}
		if ctx.Err() != nil {
			return nil
		}
		if !nextTick.IsZero() {
			if now := time.Now(); !now.Before(nextTick) {
				d.tick(ctx)
				nextTick = now.Add(d.cfg.TickEvery)
				rd.reset(pctx, nextTick)
			}
		}

		var (
			b   Batch[T]
			err error
		)
		if budget != nil {
			lim := RecvLimits{MaxRecords: min(d.cfg.MaxRecords, max(budget.RecordCap(), 1)), MaxBytes: budget.Bytes()}
			b, err = o.r.RecvLimited(rd.ctx, lim)
		} else {
			b, err = o.r.Recv(rd.ctx, d.cfg.MaxRecords)
		}
		if o.failed.Load() {
			return nil // what came is neither processed nor committed
		}
		tickExpired := rd.cancel != nil && rd.ctx.Err() != nil
		if err != nil {
			switch {
			case errors.Is(err, ErrSourceClosed), ctx.Err() != nil:
				return nil
			case tickExpired:
				o.free <- s
				continue
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
			if budget != nil {
				budget.Observe(0, 0, interval)
				o.observeBudget(0, 0, interval)
			}
			o.free <- s
			continue
		}

		d.stats.recordsIn.Add(uint64(len(b.Records)))
		s.first, s.dlq, s.records, s.start, s.interval = true, b.DLQ, len(b.Records), now, interval
		s.release = b.Release
		if budget != nil || d.needBytes() {
			s.bytes = b.Bytes()
		}
		if budget == nil || len(b.Records) == 0 {
			// Sunk whole, as the sequential loop does: without a budget,
			// or tokens and dead letters only.
			s.view = Batch[T]{Records: b.Records, Tokens: b.Tokens}
			s.final, s.tokens = true, b.Tokens
			if g := d.cfg.Guard; g != nil {
				s.lease = g.Lease(s.bytes)
			}
			o.dispatch(s)
			continue
		}
		tokens = b.Tokens
		drain = NewSubBlockDrain(b.Records, budget.Bytes())
		o.cut(s, &drain, tokens)
		if drain.Done() {
			drain, tokens = SubBlockDrain{}, nil
		}
	}
}

// recvDeadline bounds receives by the next tick.
type recvDeadline struct {
	ctx    context.Context
	cancel context.CancelFunc // nil: no tick
}

func (r *recvDeadline) reset(parent context.Context, at time.Time) {
	r.stop()
	r.ctx, r.cancel = context.WithDeadline(parent, at)
}

func (r *recvDeadline) stop() {
	if r.cancel != nil {
		r.cancel()
	}
}

// cut puts the drain's next sub-block in s, leases its bytes and hands it
// on.
func (o *overlap[T]) cut(s *slot[T], drain *SubBlockDrain, tokens []T) {
	recs, _ := drain.Next()
	s.view = Batch[T]{Records: recs}
	if drain.Done() {
		s.final, s.tokens = true, tokens
	}
	if g := o.d.cfg.Guard; g != nil {
		var n int64
		for i := range recs {
			n += int64(recs[i].Size())
		}
		s.lease = g.Lease(n)
	}
	o.dispatch(s)
}

// dispatch hands s to the workers and, in receive order, to the sink
// stage. Neither send blocks: both queues hold Depth slots.
func (o *overlap[T]) dispatch(s *slot[T]) {
	o.order <- s
	o.work <- s
}

// processStage is one worker: it processes sub-blocks in any order.
func (o *overlap[T]) processStage(ctx context.Context) {
	for s := range o.work {
		if o.failed.Load() {
			s.err = errSkipped
		} else {
			t0 := time.Now()
			s.out, s.err = o.process(ctx, s.view)
			s.took = time.Since(t0)
		}
		s.done <- struct{}{}
	}
}

// sinkStage sinks and commits in receive order until the queue is closed
// and empty; it returns the first terminal error. After one it still takes
// every slot (its process finished), releases its lease and recycles it,
// so that every goroutine can end.
func (o *overlap[T]) sinkStage(ctx context.Context) error {
	var (
		first error
		blk   block
	)
	for s := range o.order {
		<-s.done
		if first == nil {
			if err := o.sinkSlot(ctx, s, &blk); err != nil {
				first = err
				o.failed.Store(true)
				o.stopRecv()
			}
		}
		s.lease.Release() // idempotent: after its sink write, or now on a failure
		s.reset()
		o.free <- s
	}
	return first
}

// block is the sink stage's account of the block whose sub-blocks it is
// sinking.
type block struct {
	st       BlockStats
	start    time.Time
	interval time.Duration
	bytes    int64
	rel      releases // called after its commit when clean
}

// sinkSlot drives one processed sub-block through the dead letters, the
// sink and, after a block's final sub-block, the commit.
func (o *overlap[T]) sinkSlot(ctx context.Context, s *slot[T], blk *block) error {
	d := o.d
	if s.first {
		*blk = block{st: BlockStats{Records: s.records}, start: s.start, interval: s.interval, bytes: s.bytes,
			rel: releases{fns: s.release, clean: true}}
		if d.cfg.Observer != nil {
			blk.st.Bytes = s.bytes
		}
		if len(s.dlq) > 0 {
			blk.st.DeadLetters += len(s.dlq)
			if err := d.routeDLQ(ctx, s.dlq); err != nil {
				return err
			}
		}
	}
	st := &blk.st
	if s.err != nil {
		return &ProcessError{Records: len(s.view.Records), Err: s.err}
	}
	st.Process += s.took
	out := &s.out
	out.Tokens = s.view.Tokens
	if len(out.DLQ) > 0 {
		st.DeadLetters += len(out.DLQ)
		if err := d.routeDLQ(ctx, out.DLQ); err != nil {
			return err
		}
		out.DLQ = nil
	}
	blk.rel.add(out.Release)
	t1 := time.Now()
	if err := o.sink(ctx, out); err != nil {
		blk.rel.clean = false // records failed: the memory they borrow is left to the collector
		if err := d.sinkOutcome(ctx, out.Records, err, st.SubBlocks, st); err != nil {
			return err
		}
	}
	st.Sink += time.Since(t1)
	st.SubBlocks++
	st.OutRecords += len(out.Records)
	d.stats.subBlocks.Add(1)
	d.stats.recordsOut.Add(uint64(len(out.Records)))
	s.lease.Release() // its sink write ended
	if !s.final {
		return nil
	}
	tc := time.Now()
	if err := d.commit(ctx, o.r, s.tokens); err != nil {
		return err
	}
	blk.rel.commit()
	if d.cfg.Observer != nil {
		o.obsMu.Lock()
		_ = d.finish(st, blk.start, tc)
		o.obsMu.Unlock()
	} else {
		_ = d.finish(st, blk.start, tc)
	}
	if b := d.cfg.Budget; b != nil {
		// The block's share of the driver's capacity: its time in flight
		// over Depth, so that a full pipeline reads as utilisation 1, as a
		// busy sequential loop does.
		took := time.Since(blk.start) / time.Duration(o.depth)
		b.Observe(blk.bytes, took, blk.interval)
		o.observeBudget(blk.bytes, took, blk.interval)
	}
	return nil
}

func (o *overlap[T]) observeBudget(blockBytes int64, took, interval time.Duration) {
	if o.d.cfg.Observer == nil {
		return
	}
	o.obsMu.Lock()
	o.d.observeBudget(blockBytes, took, interval)
	o.obsMu.Unlock()
}
