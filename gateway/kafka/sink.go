package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
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

	// topics is the cache of topics known to exist or to fail, and
	// topicCheckTimeout bounds the lookup of a topic not in it.
	topics            *topicCache
	topicCheckTimeout time.Duration

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
		// franz-go checks a record's context only when an attempt fails;
		// its default backoff grows to 5 s, so an outage would surface up
		// to 5 s after the delivery timeout. Cap it to a fraction of it.
		kgo.RetryBackoffFn(retryBackoff(cfg.DeliveryTimeout)),
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
	opts = append(opts, cfg.clientOpts()...) // TLS, SASL, acks, partitioner (config.go)
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
		topics:    newTopicCache(cfg.TopicErrorTTL),
		// A topic lookup is one metadata round trip; past this the records
		// are produced and their results decide.
		topicCheckTimeout: min(cfg.DialTimeout, cfg.DeliveryTimeout/4),
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
// key, headers, value and timestamp as given) and waits for all of them.
// Its outcome is the engine's RecordSink contract:
//
//   - nil: Kafka acknowledged every record (acks=all).
//   - an *engine.RecordErrors: the records it lists were not written for a
//     reason of their own or of their topic, each with a *RecordError
//     (ReasonInvalidTopic, ReasonUnknownTopic, ReasonRecordTooLarge,
//     ReasonTopicNotAuthorized, ReasonInvalidRecord, carrying the broker's
//     error); every other record was acknowledged. The engine
//     dead-letters the listed records and commits the batch.
//   - a *WriteError: the write failed as a whole (brokers unreachable,
//     the delivery timeout, not enough replicas, the client's own
//     authentication or cluster authorisation, ...); the caller must not
//     commit the batch.
//
// Before producing, a record whose topic breaks Kafka's naming rules is
// failed at once (ReasonInvalidTopic). Unless topics are auto-created, a
// topic the sink has not produced to is first looked up with one metadata
// request; a topic the cluster does not have, or that the client may not
// describe, fails its records at once and is remembered so for
// Config.TopicErrorTTL (the negative cache: a repeated unknown topic costs
// no wait and no retries; after the TTL the topic is looked up again, so
// one created meanwhile is used).
//
// A broker refuses a whole partition batch when one record in it is too
// large or invalid, and the producer then fails every record buffered for
// that partition. Write isolates those records: it produces them again in
// halves, and again, until each failure is pinned on a record that fails
// on its own; the others are written. An isolated record may thus land
// after records that followed it in its partition. (Records of a
// concurrent Write to the same partition can share a retried batch: a
// good record may then be failed with a neighbour's reason; it is
// dead-lettered, never lost.) Otherwise records with the same key keep
// their order within their partition.
//
// Write returns within about DeliveryTimeout (plus a retry backoff) when
// the brokers are down or refuse the records, and soon after ctx is done.
// As a last resort it stops waiting after DeliveryTimeout +
// max(DeliveryTimeout/2, 2s) + Linger with ErrGaveUp; only then may the
// producer still hold references to the records' bytes, and the caller must
// not reuse those buffers (letting the garbage collector have them is fine).
//
// Write is safe for concurrent use; the records belong to the caller again
// when it returns, and so does a returned error.
func (s *Sink) Write(ctx context.Context, recs []engine.Record) error {
	if len(recs) == 0 {
		return nil
	}
	if s.closed.Load() {
		return ErrClosed
	}
	ws := s.states.Get().(*writeState)
	now := time.Now()
	bytes, check := s.fill(ws, recs, now, false, nil)
	if len(check) > 0 {
		found, err := s.topics.checkTopics(ctx, s.cl, check, s.topicCheckTimeout)
		if err != nil {
			s.log.Debug("topic lookup failed; producing without it", "topics", len(check), "err", err)
		}
		bytes, _ = s.fill(ws, recs, now, true, found)
	}
	return s.deliver(ctx, ws, len(recs), false, bytes)
}

// fill prepares ws with the records of recs that are to be produced and
// notes the others as failed (invalid topic name, negative cache). It
// returns the bytes of recs and, unless checked, the topics to look up
// first (then ws must be filled again once they are, with the failures
// the lookup found).
func (s *Sink) fill(ws *writeState, recs []engine.Record, now time.Time, checked bool, found map[string]*RecordError) (int64, []string) {
	ws.prepare(len(recs), countHeaders(recs))
	var (
		bytes int64
		check []string
		last  string
		v     verdict
		fail  *RecordError
		k     int
	)
	for i := range recs {
		r := &recs[i]
		bytes += int64(r.Size())
		topic := r.Topic
		if topic == "" {
			topic = s.cfg.DefaultTopic
		}
		if i == 0 || topic != last {
			last = topic
			v, fail = s.verdict(topic, now)
			if f := found[topic]; f != nil && v != produceIt {
				v, fail = failIt, f // found by this write's lookup: not "cached"
			}
			if v == checkIt {
				if checked {
					v = produceIt // the lookup did not tell: let the broker decide
				} else if !slices.Contains(check, topic) {
					check = append(check, topic)
				}
			}
		}
		if v == failIt {
			ws.pre = append(ws.pre, engine.RecordFailure{Index: i, Err: fail})
			continue
		}
		kr := &ws.recs[k]
		ws.idx[k] = i
		k++
		kr.Topic = topic
		kr.Key = r.Key
		kr.Value = r.Value
		kr.Timestamp = r.Timestamp
		kr.Headers = nil // the slot may hold a previous fill's
		if n := len(r.Headers); n > 0 {
			h := ws.takeHeaders(n)
			for j := range r.Headers {
				h[j] = kgo.RecordHeader{Key: r.Headers[j].Key, Value: r.Headers[j].Value}
			}
			kr.Headers = h
		}
	}
	ws.truncate(k)
	return bytes, check
}

// verdict decides what to do with records to topic before producing.
func (s *Sink) verdict(topic string, now time.Time) (verdict, *RecordError) {
	if err := checkTopicName(topic); err != nil {
		return failIt, &RecordError{Reason: ReasonInvalidTopic, Topic: topic, Err: err}
	}
	v, fail := s.topics.lookup(topic, now)
	if v == checkIt && s.cfg.AllowAutoTopicCreation {
		return produceIt, nil // producing creates it
	}
	return v, fail
}

// WriteDLQ produces dead letters to the DLQ topic: each entry's original
// value, key, headers and timestamp, plus the headers sluice-reason,
// sluice-stage and, when the record had a topic, sluice-topic. It returns
// nil only when Kafka acknowledged every dead letter; any failure, one dead
// letter's included (after the same isolation as Write), is a *WriteError:
// a dead letter is never dropped.
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
		ws.idx[i] = i
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
	return s.deliver(ctx, ws, len(entries), true, bytes)
}

// deliver produces ws's records, isolates the records of rejected batches,
// and turns the results into Write's outcome (for WriteDLQ every failure
// is a *WriteError). total is the number of records of the call, ws.pre
// included. ws goes back to the pool unless the producer may still hold
// its records.
func (s *Sink) deliver(ctx context.Context, ws *writeState, total int, dlq bool, bytes int64) error {
	start := time.Now()
	// The delivery timeout rides on the records' context: franz-go's own
	// record timeout counts from Record.Timestamp, which is the event's
	// time here and may lie far in the past.
	pctx, cancel := context.WithTimeout(ctx, s.cfg.DeliveryTimeout)
	defer cancel()
	giveUp := start.Add(s.waitLimit)

	d := delivery{s: s, ws: ws, ctx: pctx, giveUp: giveUp}
	d.failed = append(d.failed, ws.pre...)
	if len(ws.recs) > 0 && d.produce(ws.ptrs) {
		if len(d.suspects) > 1 {
			d.isolate(d.suspects)
		} else {
			d.convict(d.suspects)
		}
	}

	var err error
	failed := len(d.failed) + d.fatalN
	switch {
	case d.gaveUp:
		failed = total
		err = &WriteError{Failed: total, Total: total, DLQ: dlq, First: ErrGaveUp}
		s.log.Error("gave up waiting for Kafka acks", "records", total, "waited", s.waitLimit)
	case d.fatal != nil:
		first := d.fatal
		if errors.Is(first, context.DeadlineExceeded) && ctx.Err() == nil {
			first = fmt.Errorf("%w (%v): %w", ErrDeliveryTimeout, s.cfg.DeliveryTimeout, first)
		}
		err = &WriteError{Failed: failed, Total: total, DLQ: dlq, First: first}
	case len(d.failed) > 0 && dlq:
		slices.SortFunc(d.failed, func(a, b engine.RecordFailure) int { return a.Index - b.Index })
		err = &WriteError{Failed: failed, Total: total, DLQ: true, First: d.failed[0].Err}
	case len(d.failed) > 0:
		slices.SortFunc(d.failed, func(a, b engine.RecordFailure) int { return a.Index - b.Index })
		err = &engine.RecordErrors{Failed: d.failed}
	}
	if !d.gaveUp {
		ws.reset()
		s.states.Put(ws)
	} // else the producer still holds these records: the state is abandoned to it
	s.obs.ObserveWrite(WriteStats{DLQ: dlq, Records: total, Failed: failed, Bytes: bytes, Latency: time.Since(start), Err: err})
	return err
}

// delivery is the state of one deliver call.
type delivery struct {
	s      *Sink
	ws     *writeState
	ctx    context.Context
	giveUp time.Time

	// failed are the records dead-lettered so far (ws.pre first).
	failed []engine.RecordFailure
	// suspects are the records (indexes into ws.recs) of the last produce
	// whose batch the broker rejected, with their errors in errs.
	suspects []int
	errs     map[int]error
	// fatal is the first whole-write failure; fatalN counts the records
	// that failed so.
	fatal  error
	fatalN int
	gaveUp bool
	ptrs   []*kgo.Record // scratch for isolation produces
}

// produce produces ptrs (records of ws) and sorts their results: written,
// failed for their topic (into failed), suspects of a rejected batch, or
// fatal. It returns false when the write is over (fatal or gave up).
func (d *delivery) produce(ptrs []*kgo.Record) bool {
	d.suspects = d.suspects[:0]
	results, ok := d.s.produceSync(d.ctx, d.ws, ptrs, d.giveUp)
	if !ok {
		d.gaveUp = true
		return false
	}
	now := time.Now()
	for _, res := range results {
		if res.Err == nil {
			continue
		}
		i := d.ws.indexOf(res.Record)
		switch c, reason := classify(res.Err); c {
		case classTopic:
			re := &RecordError{Reason: reason, Topic: res.Record.Topic, Err: res.Err}
			d.s.topics.failed(re, now)
			d.failed = append(d.failed, engine.RecordFailure{Index: d.ws.idx[i], Err: re})
		case classBatch:
			if d.errs == nil {
				d.errs = make(map[int]error)
			}
			d.errs[i] = res.Err
			d.suspects = append(d.suspects, i)
		default:
			if d.fatal == nil {
				d.fatal = res.Err
			}
			d.fatalN++
		}
	}
	if d.fatal != nil {
		d.fatalN += len(d.suspects)
		d.suspects = d.suspects[:0]
		return false
	}
	slices.Sort(d.suspects)
	return true
}

// isolate produces the records of a rejected batch (indexes into ws.recs,
// two or more) again, in two halves one after the other; a record that
// fails alone in its partition is convicted, several that fail together
// are isolated again. Every record of set ends written, failed or fatal.
func (d *delivery) isolate(set []int) {
	set = slices.Clone(set) // d.suspects is reused by each produce
	half := len(set) / 2
	for _, part := range [][]int{set[:half], set[half:]} {
		d.ptrs = d.ptrs[:0]
		for _, i := range part {
			r := &d.ws.recs[i]
			*r = kgo.Record{Topic: r.Topic, Key: r.Key, Value: r.Value, Headers: r.Headers, Timestamp: r.Timestamp}
			d.ptrs = append(d.ptrs, r)
		}
		if !d.produce(d.ptrs) {
			return
		}
		if len(d.suspects) > 1 {
			d.isolate(d.suspects)
		} else {
			d.convict(d.suspects)
		}
		if d.fatal != nil || d.gaveUp {
			return
		}
	}
}

// convict fails the records of set (at most one, which failed alone in its
// partition) with their batch error.
func (d *delivery) convict(set []int) {
	for _, i := range set {
		err := d.errs[i]
		_, reason := classify(err)
		d.failed = append(d.failed, engine.RecordFailure{Index: d.ws.idx[i], Err: &RecordError{Reason: reason, Topic: d.ws.recs[i].Topic, Err: err}})
	}
}

// produceSync produces ptrs and waits for their results until giveUp. It
// returns false when it gave up: the producer then still holds the
// records. ProduceSync waits for every record and, unlike Produce, stops
// the linger of the partitions it wrote to: a Write is already a batch, so
// lingering would only add latency. Its promise never blocks. It runs on
// its own goroutine so that a producer that does not answer cannot hold
// Write past giveUp.
func (s *Sink) produceSync(ctx context.Context, ws *writeState, ptrs []*kgo.Record, giveUp time.Time) (kgo.ProduceResults, bool) {
	go func() {
		ws.results = s.cl.ProduceSync(ctx, ptrs...)
		ws.done <- struct{}{}
	}()
	timer := time.NewTimer(time.Until(giveUp))
	defer timer.Stop()
	select {
	case <-ws.done:
		return ws.results, true
	case <-timer.C:
		return nil, false
	}
}

// Write outcomes of one record.
type class uint8

const (
	classOK    class = iota
	classTopic       // belongs to the record's topic: dead-letter, cache
	classBatch       // the broker rejected the record's batch: isolate
	classFatal       // the write fails as a whole
)

// classify sorts a record's produce error. Whatever is not known to belong
// to the record or its topic fails the write as a whole: an outage
// (connection errors, timeouts, NOT_ENOUGH_REPLICAS retried until the
// delivery timeout), the client's own SASL authentication or cluster
// authorisation, a closed client.
func classify(err error) (class, string) {
	switch {
	case err == nil:
		return classOK, ""
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled),
		errors.Is(err, kgo.ErrRecordTimeout), errors.Is(err, kgo.ErrRecordRetries),
		errors.Is(err, kgo.ErrClientClosed), errors.Is(err, kgo.ErrMaxBuffered):
		return classFatal, "" // even when it wraps the last retry's error
	}
	if reason := topicReason(err); reason != "" {
		return classTopic, reason
	}
	switch {
	case errors.Is(err, kerr.MessageTooLarge), errors.Is(err, kerr.RecordListTooLarge):
		return classBatch, ReasonRecordTooLarge
	case errors.Is(err, kerr.InvalidRecord), errors.Is(err, kerr.CorruptMessage), errors.Is(err, kerr.InvalidTimestamp):
		return classBatch, ReasonInvalidRecord
	}
	return classFatal, ""
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

// retryBackoff doubles from 100 ms up to an eighth of the delivery timeout
// within [100ms, 1s], with ±20 % jitter.
func retryBackoff(delivery time.Duration) func(int) time.Duration {
	limit := min(max(delivery/8, 100*time.Millisecond), time.Second)
	return func(fails int) time.Duration {
		d := limit
		if fails < 10 {
			d = min(100*time.Millisecond<<max(fails-1, 0), limit)
		}
		return d - d/5 + rand.N(2*d/5+1)
	}
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
	recs []kgo.Record
	ptrs []*kgo.Record
	// idx maps recs[k] to the index of its record in the caller's slice.
	idx    []int
	hdrs   []kgo.RecordHeader
	hdrOff int
	// pre are the records failed before producing.
	pre     []engine.RecordFailure
	results kgo.ProduceResults
	// done receives once per produce, when ProduceSync returned.
	done chan struct{}
}

func newWriteState() *writeState {
	return &writeState{done: make(chan struct{}, 1)}
}

// prepare sizes the state for up to n records and nh headers.
func (ws *writeState) prepare(n, nh int) {
	if cap(ws.recs) < n {
		ws.recs = make([]kgo.Record, n)
		ws.ptrs = make([]*kgo.Record, n)
		ws.idx = make([]int, n)
	}
	ws.recs = ws.recs[:n]
	ws.ptrs = ws.ptrs[:n]
	ws.idx = ws.idx[:n]
	for i := range ws.recs {
		ws.ptrs[i] = &ws.recs[i]
	}
	if cap(ws.hdrs) < nh {
		ws.hdrs = make([]kgo.RecordHeader, nh)
	}
	ws.hdrs = ws.hdrs[:nh]
	ws.hdrOff = 0
	ws.pre = ws.pre[:0]
}

// truncate keeps the first k records.
func (ws *writeState) truncate(k int) {
	ws.recs = ws.recs[:k]
	ws.ptrs = ws.ptrs[:k]
	ws.idx = ws.idx[:k]
}

// takeHeaders returns the next n header slots.
func (ws *writeState) takeHeaders(n int) []kgo.RecordHeader {
	h := ws.hdrs[ws.hdrOff : ws.hdrOff+n : ws.hdrOff+n]
	ws.hdrOff += n
	return h
}

// indexOf returns the index in ws.recs of r, which points into it.
func (ws *writeState) indexOf(r *kgo.Record) int {
	off := uintptr(unsafe.Pointer(r)) - uintptr(unsafe.Pointer(unsafe.SliceData(ws.recs)))
	return int(off / unsafe.Sizeof(kgo.Record{}))
}

// reset drops every reference to the caller's bytes so a pooled state does
// not keep a finished batch alive.
func (ws *writeState) reset() {
	clear(ws.recs[:cap(ws.recs)])
	clear(ws.hdrs)
	clear(ws.pre)
	ws.recs = ws.recs[:0]
	ws.hdrs = ws.hdrs[:0]
	ws.pre = ws.pre[:0]
	ws.results = nil
}
