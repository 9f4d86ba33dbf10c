package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/engine"
)

// DLQ header keys WriteDLQ adds to each dead letter.
const (
	// HeaderReason carries DLQEntry.Reason.
	HeaderReason = "sluice-reason"
	// HeaderStage carries DLQEntry.Stage.
	HeaderStage = "sluice-stage"
	// HeaderTopic carries the record's original topic, when it had one.
	HeaderTopic = "sluice-topic"
)

var (
	_ engine.RecordSink = (*Sink)(nil)
	_ engine.DLQSink    = (*Sink)(nil)
)

// Sink writes records to Kafka with acks=all and idempotence: the engine's
// RecordSink and DLQSink. It is safe for concurrent use; concurrent Writes
// share one producer and its batches.
type Sink struct {
	cfg    Config
	cl     *kgo.Client
	log    *slog.Logger
	obs    Observer
	closed atomic.Bool

	// waitLimit bounds how long a Write waits for its promises, beyond
	// which it gives up (see Write).
	waitLimit time.Duration

	states sync.Pool // *writeState
}

// NewSink creates the producer and checks that at least one broker answers a
// metadata request within cfg.DialTimeout; when none does, it fails with an
// *UnreachableError naming the brokers (errors.Is(err, ErrUnreachable)).
// It warns (without failing) when the default or DLQ topic does not exist.
// logger may be nil.
func NewSink(ctx context.Context, cfg Config, logger *slog.Logger) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	cfg.Brokers = append([]string(nil), cfg.Brokers...)
	logger = orDiscard(logger).With("component", "kafka-sink")
	codec, _ := codec(cfg.Compression)

	linger := cfg.Linger
	if linger < 0 {
		linger = 0
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ClientID(cfg.ClientID),
		kgo.DefaultProduceTopic(cfg.DefaultTopic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerBatchCompression(codec),
		kgo.ProducerLinger(linger),
		kgo.ProducerBatchMaxBytes(cfg.BatchMaxBytes),
		kgo.MaxBufferedRecords(cfg.MaxBufferedRecords),
		// An outage must surface as an error in bounded time, so records
		// may be failed even while a request carrying them is in flight.
		// A failed Write is retried by the client (at-least-once), which
		// may duplicate what the broker did write; idempotence still
		// dedupes the producer's own retries.
		kgo.AllowIdempotentProduceCancellation(),
		// Bound a hanging broker's request as well.
		kgo.ProduceRequestTimeout(cfg.DeliveryTimeout / 2),
		kgo.RequestTimeoutOverhead(cfg.DeliveryTimeout / 2),
		kgo.DialTimeout(cfg.DialTimeout),
		// franz-go checks a record's context only when a produce attempt
		// ends; after a retriable error the next attempt waits for a
		// metadata refresh, at most this old. Keep it a fraction of the
		// delivery timeout so an expired record is failed promptly.
		kgo.MetadataMinAge(metadataMinAge(cfg.DeliveryTimeout)),
		kgo.WithLogger(kgoLogger{logger}),
	}
	if cfg.AllowAutoTopicCreation {
		opts = append(opts, kgo.AllowAutoTopicCreation())
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka: new producer: %w", err)
	}
	s := &Sink{
		cfg:       cfg,
		cl:        cl,
		log:       logger,
		obs:       cfg.Observer,
		waitLimit: cfg.DeliveryTimeout + max(cfg.DeliveryTimeout/2, 2*time.Second) + linger,
	}
	if s.obs == nil {
		s.obs = nopObserver{}
	}
	s.states.New = func() any { return newWriteState() }

	if err := s.Ping(ctx); err != nil {
		cl.Close()
		return nil, err
	}
	s.checkTopics(ctx)
	return s, nil
}

// checkTopics warns about a missing default or DLQ topic: writes to it would
// fail after UnknownTopicRetries instead of at start.
func (s *Sink) checkTopics(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.DialTimeout)
	defer cancel()
	td, err := kadm.NewClient(s.cl).ListTopics(ctx, s.cfg.DefaultTopic, s.cfg.DLQTopic)
	if err != nil {
		s.log.Warn("cannot list topics", "err", err)
		return
	}
	for _, t := range []string{s.cfg.DefaultTopic, s.cfg.DLQTopic} {
		if d, ok := td[t]; !ok || d.Err != nil {
			s.log.Warn("topic does not exist", "topic", t, "auto_create", s.cfg.AllowAutoTopicCreation)
		}
	}
}

// Config returns the effective configuration (defaults filled in).
func (s *Sink) Config() Config { return s.cfg }

// Ping reports whether a broker answers a metadata request, for readiness
// probes. Without a deadline on ctx it waits at most DialTimeout. An error
// is an *UnreachableError.
func (s *Sink) Ping(ctx context.Context) error {
	if s.closed.Load() {
		return ErrClosed
	}
	return ping(ctx, s.cl, s.cfg.Brokers, s.cfg.DialTimeout)
}

func ping(ctx context.Context, cl *kgo.Client, brokers []string, timeout time.Duration) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	start := time.Now()
	if err := cl.Ping(ctx); err != nil {
		return &UnreachableError{Brokers: brokers, Timeout: time.Since(start).Round(time.Millisecond), Err: err}
	}
	return nil
}

// Write produces every record (topic = Record.Topic or the default topic;
// key, headers, value and timestamp as given) and waits for all of them. It
// returns nil only when Kafka acknowledged every record (acks=all); otherwise
// a *WriteError saying how many failed and the first cause, and the caller
// must not commit the batch. Records with the same key keep their order
// within their partition.
//
// Write returns within about DeliveryTimeout (plus a retry backoff) when
// the brokers are down or refuse the records, and soon after ctx is done.
// As a last resort it stops waiting after DeliveryTimeout +
// max(DeliveryTimeout/2, 2s) + Linger with ErrGaveUp; only then may the
// producer still hold references to the records' bytes, and the caller must
// not reuse those buffers (letting the garbage collector have them is fine).
//
// Write is safe for concurrent use; the records belong to the caller again
// when it returns.
func (s *Sink) Write(ctx context.Context, recs []engine.Record) error {
	if len(recs) == 0 {
		return nil
	}
	if s.closed.Load() {
		return ErrClosed
	}
	ws := s.states.Get().(*writeState)
	ws.prepare(len(recs), countHeaders(recs))
	var bytes int64
	for i := range recs {
		r := &recs[i]
		bytes += int64(r.Size())
		kr := &ws.recs[i]
		kr.Topic = r.Topic
		if kr.Topic == "" {
			kr.Topic = s.cfg.DefaultTopic
		}
		kr.Key = r.Key
		kr.Value = r.Value
		kr.Timestamp = r.Timestamp
		if n := len(r.Headers); n > 0 {
			h := ws.takeHeaders(n)
			for j := range r.Headers {
				h[j] = kgo.RecordHeader{Key: r.Headers[j].Key, Value: r.Headers[j].Value}
			}
			kr.Headers = h
		}
	}
	return s.produce(ctx, ws, false, bytes)
}

// WriteDLQ produces dead letters to the DLQ topic: each entry's original
// value, key, headers and timestamp, plus the headers sluice-reason,
// sluice-stage and, when the record had a topic, sluice-topic. Same contract
// as Write.
func (s *Sink) WriteDLQ(ctx context.Context, entries []engine.DLQEntry) error {
	if len(entries) == 0 {
		return nil
	}
	if s.closed.Load() {
		return ErrClosed
	}
	nh := 0
	for i := range entries {
		nh += len(entries[i].Record.Headers) + 3
	}
	ws := s.states.Get().(*writeState)
	ws.prepare(len(entries), nh)
	var bytes int64
	for i := range entries {
		e := &entries[i]
		r := &e.Record
		bytes += int64(r.Size())
		kr := &ws.recs[i]
		kr.Topic = s.cfg.DLQTopic
		kr.Key = r.Key
		kr.Value = r.Value
		kr.Timestamp = r.Timestamp
		n := len(r.Headers) + 2
		if r.Topic != "" {
			n++
		}
		h := ws.takeHeaders(n)
		for j := range r.Headers {
			h[j] = kgo.RecordHeader{Key: r.Headers[j].Key, Value: r.Headers[j].Value}
		}
		k := len(r.Headers)
		h[k] = kgo.RecordHeader{Key: HeaderReason, Value: []byte(e.Reason)}
		h[k+1] = kgo.RecordHeader{Key: HeaderStage, Value: []byte(e.Stage)}
		if r.Topic != "" {
			h[k+2] = kgo.RecordHeader{Key: HeaderTopic, Value: []byte(r.Topic)}
		}
		kr.Headers = h
	}
	return s.produce(ctx, ws, true, bytes)
}

// produce hands ws's records to the producer and waits for their results.
func (s *Sink) produce(ctx context.Context, ws *writeState, dlq bool, bytes int64) error {
	n := len(ws.recs)
	start := time.Now()
	// The delivery timeout rides on the records' context: franz-go's own
	// record timeout counts from Record.Timestamp, which is the event's
	// time here and may lie far in the past.
	pctx, cancel := context.WithTimeout(ctx, s.cfg.DeliveryTimeout)
	defer cancel()
	// ProduceSync waits for every record and, unlike Produce, stops the
	// linger of the partitions it wrote to: a Write is already a batch,
	// so lingering would only add latency. Its promise never blocks. It
	// runs on its own goroutine so that a producer that does not answer
	// cannot hold Write past waitLimit.
	go func() {
		ws.results = s.cl.ProduceSync(pctx, ws.ptrs...)
		ws.done <- struct{}{}
	}()

	var err error
	failed := 0
	timer := time.NewTimer(s.waitLimit)
	select {
	case <-ws.done:
		timer.Stop()
		var first error
		for i := range ws.results {
			if e := ws.results[i].Err; e != nil {
				if failed++; first == nil {
					first = e
				}
			}
		}
		if failed > 0 {
			if errors.Is(first, context.DeadlineExceeded) && ctx.Err() == nil {
				first = fmt.Errorf("%w (%v): %w", ErrDeliveryTimeout, s.cfg.DeliveryTimeout, first)
			}
			err = &WriteError{Failed: failed, Total: n, DLQ: dlq, First: first}
		}
		ws.reset()
		s.states.Put(ws)
	case <-timer.C:
		// The producer still holds these records; the state is abandoned
		// to it (never reused).
		failed = n
		err = &WriteError{Failed: n, Total: n, DLQ: dlq, First: ErrGaveUp}
		s.log.Error("gave up waiting for Kafka acks", "records", n, "waited", s.waitLimit)
	}
	s.obs.ObserveWrite(WriteStats{DLQ: dlq, Records: n, Failed: failed, Bytes: bytes, Latency: time.Since(start), Err: err})
	return err
}

// Buffered returns the records the producer holds that Kafka has not
// acknowledged yet; against Config.MaxBufferedRecords it is a measure of
// downstream pressure.
func (s *Sink) Buffered() int64 { return s.cl.BufferedProduceRecords() }

// Flush waits until every buffered record is acknowledged or failed, or ctx
// is done.
func (s *Sink) Flush(ctx context.Context) error {
	if s.closed.Load() {
		return ErrClosed
	}
	return s.cl.Flush(ctx)
}

// Close flushes what is buffered (at most DeliveryTimeout) and closes the
// producer. Writes after Close fail with ErrClosed. Close is idempotent.
func (s *Sink) Close() {
	if s.closed.Swap(true) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.DeliveryTimeout)
	defer cancel()
	if err := s.cl.Flush(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		s.log.Warn("flush at close", "err", err)
	}
	s.cl.Close()
}

// metadataMinAge is a tenth of the delivery timeout within [100ms, 5s].
func metadataMinAge(delivery time.Duration) time.Duration {
	return min(max(delivery/10, 100*time.Millisecond), 5*time.Second)
}

// countHeaders returns the number of headers of recs.
func countHeaders(recs []engine.Record) int {
	n := 0
	for i := range recs {
		n += len(recs[i].Headers)
	}
	return n
}

// writeState is one write's records and their results. It is pooled: a
// steady stream of writes allocates nothing per record.
type writeState struct {
	recs    []kgo.Record
	ptrs    []*kgo.Record
	hdrs    []kgo.RecordHeader
	hdrOff  int
	results kgo.ProduceResults
	// done receives once per write, when ProduceSync returned.
	done chan struct{}
}

func newWriteState() *writeState {
	return &writeState{done: make(chan struct{}, 1)}
}

// prepare sizes the state for n records and nh headers.
func (ws *writeState) prepare(n, nh int) {
	if cap(ws.recs) < n {
		ws.recs = make([]kgo.Record, n)
		ws.ptrs = make([]*kgo.Record, n)
	}
	ws.recs = ws.recs[:n]
	ws.ptrs = ws.ptrs[:n]
	for i := range ws.recs {
		ws.ptrs[i] = &ws.recs[i]
	}
	if cap(ws.hdrs) < nh {
		ws.hdrs = make([]kgo.RecordHeader, nh)
	}
	ws.hdrs = ws.hdrs[:nh]
	ws.hdrOff = 0
}

// takeHeaders returns the next n header slots.
func (ws *writeState) takeHeaders(n int) []kgo.RecordHeader {
	h := ws.hdrs[ws.hdrOff : ws.hdrOff+n : ws.hdrOff+n]
	ws.hdrOff += n
	return h
}

// reset drops every reference to the caller's bytes so a pooled state does
// not keep a finished batch alive.
func (ws *writeState) reset() {
	clear(ws.recs)
	clear(ws.hdrs)
	ws.recs = ws.recs[:0]
	ws.hdrs = ws.hdrs[:0]
	ws.results = nil
}
