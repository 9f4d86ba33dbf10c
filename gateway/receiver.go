package gateway

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/sluicehq/sluice/engine"
	"github.com/sluicehq/sluice/governor"
)

// Ack is one HTTP request's commit token. The engine commits it once the
// batch carrying the request's last record was accepted by the sink; the
// receiver then answers the waiting handler. It is resolved exactly once:
// by that commit, or by a failure (sink down, shutdown deadline).
//
// It holds its records as spans of its body (8 bytes a record, not an
// engine.Record's 128); RecvLimited makes the records of a batch from them.
type Ack struct {
	id       uint64
	body     []byte // the records' and dead letters' bytes
	buf      []byte // the body's buffer when it came from getBody (bodypool.go), nil else
	spans    []span
	topic    string // Record.Topic of every record ("" = sink default)
	next     int    // index of the first span not yet received by the driver
	dlq      []deadLetter
	reasons  []string // texts of the dlReason dead letters
	nextDL   int      // index of the first dead letter not yet received
	dlqCur   int      // eventOf's cursor: the dead letters before the span it was last asked
	maxEvent int      // the per-event cap, for the "event too large" reason
	queued   int64    // bytes of spans[next:] and of dlq[nextDL:]
	inputs   int      // events in the body (records + inbound dead letters)
	size     int      // the body's (decompressed) bytes
	lease    *governor.Lease
	start    time.Time
	tenant   string // tenant name ("" = default)
	// x holds what only some requests need (nil: none of it).
	x *ackExtras

	written      atomic.Int64 // records of this request the sink accepted
	deadLettered atomic.Int64 // dead letters of this request the DLQ sink accepted
	finished     atomic.Bool
	done         chan error // capacity 1; receives the outcome once
}

// ackExtras is what a request holds beyond the common case, allocated
// only when it needs any of it.
type ackExtras struct {
	// headers are every record's headers (Idempotency-Key, metadata;
	// shared, never written in place), nil for none.
	headers []engine.Header
	// res collects per-event results (?results=true); nil when not asked.
	res *eventResults
}

// extras returns a's extras, allocating them on first use.
func (a *Ack) extras() *ackExtras {
	if a.x == nil {
		a.x = &ackExtras{}
	}
	return a.x
}

// results returns the request's per-event results (nil: not asked).
func (a *Ack) results() *eventResults {
	if a.x == nil {
		return nil
	}
	return a.x.res
}

// newAck returns the token of a request whose body was split into out.
func newAck(id uint64, out *splitOut, lease *governor.Lease) *Ack {
	return &Ack{
		id: id, body: out.body, spans: out.spans, topic: out.topic, dlq: out.dlq, reasons: out.reasons,
		maxEvent: out.maxEvent, inputs: out.inputs(), queued: out.bytes, lease: lease, start: time.Now(),
		done: make(chan error, 1),
	}
}

// eventOf returns the event index of the span at index span: the spans
// are the events that are not receiver dead letters (their seq). Spans are
// asked in order.
func (a *Ack) eventOf(span int) uint32 {
	for a.dlqCur < len(a.dlq) && int(a.dlq[a.dlqCur].seq) <= span+a.dlqCur {
		a.dlqCur++
	}
	return uint32(span + a.dlqCur)
}

// entry makes the engine.DLQEntry of dead letter i.
func (a *Ack) entry(i int) engine.DLQEntry {
	d := a.dlq[i]
	var reason string
	switch d.why {
	case dlLineNotJSON:
		reason = fmt.Sprintf("parse error: line %d is not valid JSON", d.n)
	case dlLineNotObject:
		reason = fmt.Sprintf("parse error: line %d is not a JSON object", d.n)
	case dlElemNotObject:
		reason = fmt.Sprintf("parse error: array element %d is not a JSON object", d.n)
	case dlTooLarge:
		reason = fmt.Sprintf("event too large: %d bytes over the %d-byte per-event cap (first %d bytes kept)", d.n, a.maxEvent, d.span.n)
	default:
		reason = a.reasons[d.n]
	}
	end := d.off + d.span.n
	return engine.DLQEntry{
		Record: engine.Record{Value: a.body[d.off:end:end], Topic: a.topic, Tag: a.id, Seq: d.seq, Format: engine.FormatRaw},
		Reason: reason,
		Stage:  "receiver",
	}
}

// The bookkeeping a request holds while it is in flight, beyond its body's
// bytes, leased with them from the MemoryGuard. TestRequestBookkeeping
// measures the heap a split request holds and checks these against it.
const (
	// spanCost is the bytes of one record: its span.
	spanCost = int64(unsafe.Sizeof(span{}))
	// deadLetterCost is the bytes of one dead letter (its reason's text,
	// when it has one of its own, aside).
	deadLetterCost = int64(unsafe.Sizeof(deadLetter{}))
	// requestCost is the fixed part: the Ack, its channel and lease, the
	// split's state.
	requestCost = 4 << 10
)

// bookkeeping returns the bytes out holds beyond its body: requestCost,
// its spans' and dead letters' arrays (as allocated), and the reasons of
// its own (each rounded up to 16 bytes, about the allocator's size class
// of a short string).
func bookkeeping(out *splitOut) int64 {
	n := requestCost + int64(cap(out.spans))*spanCost + int64(cap(out.dlq))*deadLetterCost +
		int64(cap(out.reasons))*int64(unsafe.Sizeof(""))
	for _, r := range out.reasons {
		n += int64(len(r)+15) &^ 15
	}
	return n
}

// ID returns the request id (the Record.Tag of its records).
func (a *Ack) ID() uint64 { return a.id }

// Counts returns the request's outcome: records the sink accepted, records
// transforms dropped, records dead-lettered.
func (a *Ack) Counts() (accepted, dropped, deadLettered int64) {
	accepted, deadLettered = a.written.Load(), a.deadLettered.Load()
	dropped = int64(a.inputs) - accepted - deadLettered
	if dropped < 0 {
		dropped = 0
	}
	return accepted, dropped, deadLettered
}

// resolve finishes the request once; later calls are no-ops.
func (a *Ack) resolve(err error) bool {
	if !a.finished.CompareAndSwap(false, true) {
		return false
	}
	a.lease.Release()
	if err == nil && a.buf != nil {
		// Every record was written and committed: nothing reads the
		// body any more (see bodypool.go).
		putBody(a.buf)
	}
	a.buf = nil
	a.done <- err
	return true
}

// ReceiverConfig configures the HTTP receiver.
type ReceiverConfig struct {
	// QueueBytes caps the bytes waiting to be received by the driver.
	// Enqueue fails at once (503) when a request does not fit. Required > 0.
	QueueBytes int64
	// PollTimeout is how long Recv waits for work before it returns an empty
	// batch (an idle tick for the driver). Default 100ms.
	PollTimeout time.Duration
}

// Receiver is the HTTP front door's side of the engine: a byte-bounded FIFO
// of requests that implements engine.Receiver[*Ack]. Handlers Enqueue
// (never blocking: a full queue is an immediate error); the driver receives
// byte-capped batches that may split a request across batches, and commits
// each request's Ack with the batch that carried its last record.
// Safe for concurrent use; Recv and RecvLimited are called from the
// driver's receiving goroutine, Commit from its sink stage (the same
// goroutine at --driver-depth 1), in receive order.
type Receiver struct {
	cfg    ReceiverConfig
	fill   *governor.Gauge // queue fill as a pressure source ("queue")
	notify chan struct{}

	mu       sync.Mutex
	q        []*Ack
	queued   int64
	closed   bool
	down     error           // non-nil: Enqueue fails with it
	inflight map[uint64]*Ack // every unresolved Ack, queued or received
}

var _ engine.Receiver[*Ack] = (*Receiver)(nil)

// NewReceiver returns an open receiver.
func NewReceiver(cfg ReceiverConfig) *Receiver {
	if cfg.PollTimeout <= 0 {
		cfg.PollTimeout = 100 * time.Millisecond
	}
	return &Receiver{
		cfg:      cfg,
		fill:     governor.NewGauge("queue"),
		notify:   make(chan struct{}, 1),
		inflight: make(map[uint64]*Ack),
	}
}

// Fill returns the queue-fill pressure source.
func (r *Receiver) Fill() governor.Source { return r.fill }

// QueuedBytes returns the bytes waiting to be received.
func (r *Receiver) QueuedBytes() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.queued
}

// Pending returns the number of unresolved requests.
func (r *Receiver) Pending() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.inflight)
}

func (r *Receiver) setFillLocked() {
	r.fill.Set(float64(r.queued)/float64(r.cfg.QueueBytes), false)
}

// Enqueue appends a request. It never blocks: it fails with a
// *PressureError when the queue has no room, with the down error while the
// sink is unavailable, and with ErrShuttingDown once closed.
func (r *Receiver) Enqueue(a *Ack) error {
	r.mu.Lock()
	switch {
	case r.closed:
		r.mu.Unlock()
		return ErrShuttingDown
	case r.down != nil:
		err := r.down
		r.mu.Unlock()
		return err
	case r.queued > 0 && r.queued+a.queued > r.cfg.QueueBytes:
		lvl := float64(r.queued) / float64(r.cfg.QueueBytes)
		r.mu.Unlock()
		return &PressureError{Source: "queue", Level: lvl, Err: ErrOverloaded}
	}
	r.q = append(r.q, a)
	r.queued += a.queued
	r.inflight[a.id] = a
	r.setFillLocked()
	r.mu.Unlock()
	select {
	case r.notify <- struct{}{}:
	default:
	}
	return nil
}

// lookup returns the unresolved request with id, or nil.
func (r *Receiver) lookup(id uint64) *Ack {
	r.mu.Lock()
	a := r.inflight[id]
	r.mu.Unlock()
	return a
}

// Recv returns up to max records (engine.Receiver).
func (r *Receiver) Recv(ctx context.Context, max int) (engine.Batch[*Ack], error) {
	return r.RecvLimited(ctx, engine.RecvLimits{MaxRecords: max})
}

// RecvLimited returns the next records in arrival order, bounded by
// lim.MaxRecords and lim.MaxBytes (floor one record). A request whose
// records do not all fit is continued by the next call; its Ack travels
// with the batch that carries its last record. Its inbound dead letters come
// before its records, at most lim.MaxRecords of them per batch. It waits up to the poll timeout for
// work and then returns an empty batch; once the receiver is closed and
// drained it returns engine.ErrSourceClosed.
func (r *Receiver) RecvLimited(ctx context.Context, lim engine.RecvLimits) (engine.Batch[*Ack], error) {
	var b engine.Batch[*Ack]
	var timer *time.Timer
	r.mu.Lock()
	for len(r.q) == 0 {
		if r.closed {
			r.mu.Unlock()
			return b, engine.ErrSourceClosed
		}
		r.mu.Unlock()
		if timer == nil {
			timer = time.NewTimer(r.cfg.PollTimeout)
			defer timer.Stop()
		}
		select {
		case <-ctx.Done():
			return b, nil
		case <-timer.C:
			return b, nil
		case <-r.notify:
		}
		r.mu.Lock()
	}
	defer r.mu.Unlock()
	maxRecs := lim.MaxRecords
	if maxRecs <= 0 {
		maxRecs = 1 << 30
	}
	// The records this batch can take: at most the record cap and, past
	// its first record, the byte limit (a queue holds many batches' worth,
	// so the records' slice is sized by both, not by the queue).
	n, nb := 0, int64(0)
count:
	for _, a := range r.q {
		for _, sp := range a.spans[a.next:] {
			sz := int64(sp.n)
			if n >= maxRecs || (lim.MaxBytes > 0 && n > 0 && nb+sz > lim.MaxBytes) {
				break count
			}
			n++
			nb += sz
		}
	}
	b.Records = make([]engine.Record, 0, n)
	var bytes int64
	full := false
	taken := 0
	for _, a := range r.q {
		// A request's dead letters go first, at most the record cap of them
		// per batch (apart from the records), so a body of many rejects is
		// made into entries a batch at a time.
		for a.nextDL < len(a.dlq) {
			if len(b.DLQ) >= maxRecs {
				full = true
				break
			}
			b.DLQ = append(b.DLQ, a.entry(a.nextDL))
			sz := int64(a.dlq[a.nextDL].span.n)
			a.nextDL++
			a.queued -= sz
			r.queued -= sz
		}
		var headers []engine.Header
		if a.x != nil {
			headers = a.x.headers
		}
		for !full && a.next < len(a.spans) {
			if len(b.Records) >= maxRecs {
				full = true
				break
			}
			sp := a.spans[a.next]
			sz := int64(sp.n)
			if lim.MaxBytes > 0 && len(b.Records) > 0 && bytes+sz > lim.MaxBytes {
				full = true
				break
			}
			seq := uint32(a.next)
			if len(a.dlq) > 0 {
				seq = a.eventOf(a.next)
			}
			b.Records = append(b.Records, engine.Record{Value: a.body[sp.off : sp.off+sp.n : sp.off+sp.n], Topic: a.topic, Headers: headers, Tag: a.id, Seq: seq})
			a.next++
			bytes += sz
			a.queued -= sz
			r.queued -= sz
		}
		if full {
			break
		}
		a.spans, a.dlq, a.reasons, a.body = nil, nil, nil, nil // the batches own the records now
		a.next, a.nextDL, a.dlqCur = 0, 0, 0
		b.Tokens = append(b.Tokens, a)
		taken++
	}
	clear(r.q[:taken])
	r.q = r.q[taken:]
	if len(r.q) == 0 {
		r.q = nil
	}
	r.setFillLocked()
	return b, nil
}

// Commit resolves the requests: their records are all in the sink or the
// DLQ. The handlers answer 200.
func (r *Receiver) Commit(_ context.Context, tokens []*Ack) error {
	r.mu.Lock()
	for _, a := range tokens {
		delete(r.inflight, a.id)
	}
	r.mu.Unlock()
	for _, a := range tokens {
		a.resolve(nil)
	}
	return nil
}

// FailAll fails every unresolved request (queued or received) with err and
// empties the queue. The supervisor calls it after a terminal driver error,
// and shutdown calls it when the drain deadline passes.
func (r *Receiver) FailAll(err error) int {
	r.mu.Lock()
	acks := make([]*Ack, 0, len(r.inflight))
	for _, a := range r.inflight {
		acks = append(acks, a)
	}
	clear(r.inflight)
	clear(r.q)
	r.q = nil
	r.queued = 0
	r.setFillLocked()
	r.mu.Unlock()
	n := 0
	for _, a := range acks {
		if a.resolve(err) {
			n++
		}
	}
	return n
}

// SetDown makes Enqueue fail with err (nil: accept again).
func (r *Receiver) SetDown(err error) {
	r.mu.Lock()
	r.down = err
	r.mu.Unlock()
}

// Close stops accepting requests; the driver drains what is queued and then
// receives engine.ErrSourceClosed.
func (r *Receiver) Close() {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	select {
	case r.notify <- struct{}{}:
	default:
	}
}
