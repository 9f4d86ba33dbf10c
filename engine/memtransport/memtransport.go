package memtransport

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice/engine"
)

// ErrClosed is returned by Inject after Close.
var ErrClosed = errors.New("memtransport: closed")

// DefaultPollTimeout is Config.PollTimeout when it is 0.
const DefaultPollTimeout = 50 * time.Millisecond

// Config configures a Transport.
type Config struct {
	// PollTimeout is how long Recv waits for a record before it returns an
	// empty batch (an idle poll). Default 50 ms (0 selects it).
	PollTimeout time.Duration
}

// Validate reports an unusable configuration.
func (c Config) Validate() error {
	if c.PollTimeout < 0 {
		return fmt.Errorf("memtransport: PollTimeout = %v: must be ≥ 0 (0 selects %v)", c.PollTimeout, DefaultPollTimeout)
	}
	return nil
}

type item struct {
	rec    engine.Record
	dlq    *engine.DLQEntry
	offset uint64
}

// Transport is an in-memory source and sink. Its commit tokens are offsets
// (uint64, from 0 in injection order).
type Transport struct {
	poll time.Duration

	mu     sync.Mutex
	queue  []item
	head   int
	next   uint64
	closed bool
	notify chan struct{} // capacity 1: "the queue or closed changed"

	committed atomic.Int64 // highest committed offset, -1 for none
	commits   atomic.Int64
	commitErr atomic.Pointer[error]

	sinkMu  sync.Mutex
	sent    []engine.Record
	dead    []engine.DLQEntry
	sendErr error
}

var (
	_ engine.Receiver[uint64] = (*Transport)(nil)
	_ engine.RecordSink       = (*Transport)(nil)
	_ engine.DLQSink          = (*Transport)(nil)
)

// New returns an empty, open transport.
func New(cfg Config) (*Transport, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.PollTimeout == 0 {
		cfg.PollTimeout = DefaultPollTimeout
	}
	t := &Transport{poll: cfg.PollTimeout, notify: make(chan struct{}, 1)}
	t.committed.Store(-1)
	return t, nil
}

// Inject appends records to the source and returns the offset of the first
// one. It returns ErrClosed after Close.
func (t *Transport) Inject(recs ...engine.Record) (uint64, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return 0, ErrClosed
	}
	first := t.next
	for _, r := range recs {
		t.queue = append(t.queue, item{rec: r, offset: t.next})
		t.next++
	}
	t.signal()
	return first, nil
}

// InjectValues injects one FormatJSON record per value; a convenience for
// tests.
func (t *Transport) InjectValues(values ...string) (uint64, error) {
	recs := make([]engine.Record, len(values))
	for i, v := range values {
		recs[i] = engine.Record{Value: []byte(v)}
	}
	return t.Inject(recs...)
}

// InjectDeadLetters appends dead letters found at the source (a record the
// source could not decode): each takes an offset and is delivered on the
// DLQ of the batch that receives it, with its offset among the tokens.
func (t *Transport) InjectDeadLetters(entries ...engine.DLQEntry) (uint64, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return 0, ErrClosed
	}
	first := t.next
	for i := range entries {
		e := entries[i]
		t.queue = append(t.queue, item{dlq: &e, offset: t.next})
		t.next++
	}
	t.signal()
	return first, nil
}

func (t *Transport) signal() {
	select {
	case t.notify <- struct{}{}:
	default:
	}
}

// Close ends the source: Inject fails from now on, and Recv returns
// engine.ErrSourceClosed once the queued records are received. Idempotent.
func (t *Transport) Close() {
	t.mu.Lock()
	t.closed = true
	t.signal()
	t.mu.Unlock()
}

// Pending returns the number of injected items not yet received.
func (t *Transport) Pending() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.queue) - t.head
}

// Recv returns up to max records (see RecvLimited).
func (t *Transport) Recv(ctx context.Context, max int) (engine.Batch[uint64], error) {
	return t.RecvLimited(ctx, engine.RecvLimits{MaxRecords: max})
}

// RecvLimited waits up to the poll timeout for at least one item, then
// returns as many as fit lim (floor one). It returns an empty batch when the
// poll timed out, ctx's error when ctx is done, and engine.ErrSourceClosed
// when the transport is closed and drained.
func (t *Transport) RecvLimited(ctx context.Context, lim engine.RecvLimits) (engine.Batch[uint64], error) {
	var timer *time.Timer
	for {
		if err := ctx.Err(); err != nil {
			return engine.Batch[uint64]{}, err
		}
		t.mu.Lock()
		if t.head < len(t.queue) {
			b := t.take(lim)
			t.mu.Unlock()
			return b, nil
		}
		closed := t.closed
		t.mu.Unlock()
		if closed {
			t.signal() // pass the news on to any other waiting receiver
			return engine.Batch[uint64]{}, engine.ErrSourceClosed
		}
		if timer == nil {
			timer = time.NewTimer(t.poll)
			defer timer.Stop()
		}
		select {
		case <-t.notify:
		case <-timer.C:
			return engine.Batch[uint64]{}, nil
		case <-ctx.Done():
			return engine.Batch[uint64]{}, ctx.Err()
		}
	}
}

// take removes items from the queue head within lim. t.mu is held.
func (t *Transport) take(lim engine.RecvLimits) engine.Batch[uint64] {
	maxRecs := max(lim.MaxRecords, 1)
	var b engine.Batch[uint64]
	var bytes int64
	i := t.head
	for ; i < len(t.queue) && len(b.Tokens) < maxRecs; i++ {
		it := &t.queue[i]
		if it.dlq != nil {
			b.DLQ = append(b.DLQ, *it.dlq)
			b.Tokens = append(b.Tokens, it.offset)
			continue
		}
		n := int64(it.rec.Size())
		if lim.MaxBytes > 0 && len(b.Records) > 0 && bytes+n > lim.MaxBytes {
			break
		}
		bytes += n
		b.Records = append(b.Records, it.rec)
		b.Tokens = append(b.Tokens, it.offset)
	}
	clear(t.queue[t.head:i])
	t.head = i
	if t.head == len(t.queue) {
		t.queue, t.head = t.queue[:0], 0
	} else if t.head > 1024 && t.head > len(t.queue)/2 {
		t.queue = append(t.queue[:0], t.queue[t.head:]...)
		t.head = 0
	}
	if t.head < len(t.queue) || t.closed {
		t.signal() // wake another waiter: more remains, or the end is near
	}
	return b
}

// Commit advances the committed watermark to the highest offset in tokens
// (cumulative, like a Kafka offset commit). It fails with the error set by
// SetCommitError, if any, without moving the watermark.
func (t *Transport) Commit(_ context.Context, tokens []uint64) error {
	if p := t.commitErr.Load(); p != nil {
		return *p
	}
	t.commits.Add(1)
	var hi int64 = -1
	for _, o := range tokens {
		hi = max(hi, int64(o))
	}
	for {
		cur := t.committed.Load()
		if hi <= cur || t.committed.CompareAndSwap(cur, hi) {
			return nil
		}
	}
}

// SetCommitError makes every later Commit fail with err (nil restores
// success), simulating a broker commit failure.
func (t *Transport) SetCommitError(err error) {
	if err == nil {
		t.commitErr.Store(nil)
		return
	}
	t.commitErr.Store(&err)
}

// Committed returns the committed watermark: the highest committed offset,
// or -1 when nothing was committed.
func (t *Transport) Committed() int64 { return t.committed.Load() }

// Commits returns the number of successful Commit calls.
func (t *Transport) Commits() int { return int(t.commits.Load()) }

// SetSendError makes every later Send, SendBatch, Write and WriteDLQ fail
// with err (nil restores success), simulating a downstream outage.
func (t *Transport) SetSendError(err error) {
	t.sinkMu.Lock()
	t.sendErr = err
	t.sinkMu.Unlock()
}

// Send records one record as sent (copied).
func (t *Transport) Send(ctx context.Context, rec engine.Record) error {
	return t.SendBatch(ctx, []engine.Record{rec})
}

// SendBatch records recs as sent. Records and their bytes are copied, so
// the caller may reuse them when SendBatch returns. It never consults any
// pressure: the drain is never gated.
func (t *Transport) SendBatch(_ context.Context, recs []engine.Record) error {
	t.sinkMu.Lock()
	defer t.sinkMu.Unlock()
	if t.sendErr != nil {
		return t.sendErr
	}
	for i := range recs {
		t.sent = append(t.sent, cloneRecord(recs[i]))
	}
	return nil
}

// Write makes Transport an engine.RecordSink (SendBatch).
func (t *Transport) Write(ctx context.Context, recs []engine.Record) error {
	return t.SendBatch(ctx, recs)
}

// WriteDLQ makes Transport an engine.DLQSink: dead letters are copied and
// kept for DeadLetters.
func (t *Transport) WriteDLQ(_ context.Context, entries []engine.DLQEntry) error {
	t.sinkMu.Lock()
	defer t.sinkMu.Unlock()
	if t.sendErr != nil {
		return t.sendErr
	}
	for _, e := range entries {
		e.Record = cloneRecord(e.Record)
		t.dead = append(t.dead, e)
	}
	return nil
}

// Sent returns a copy of the records sent so far, in order.
func (t *Transport) Sent() []engine.Record {
	t.sinkMu.Lock()
	defer t.sinkMu.Unlock()
	return append([]engine.Record(nil), t.sent...)
}

// DeadLetters returns a copy of the dead letters written so far, in order.
func (t *Transport) DeadLetters() []engine.DLQEntry {
	t.sinkMu.Lock()
	defer t.sinkMu.Unlock()
	return append([]engine.DLQEntry(nil), t.dead...)
}

func cloneRecord(r engine.Record) engine.Record {
	r.Value = append([]byte(nil), r.Value...)
	if r.Key != nil {
		r.Key = append([]byte(nil), r.Key...)
	}
	if r.Headers != nil {
		hs := make([]engine.Header, len(r.Headers))
		for i, h := range r.Headers {
			hs[i] = engine.Header{Key: h.Key, Value: append([]byte(nil), h.Value...)}
		}
		r.Headers = hs
	}
	return r
}
