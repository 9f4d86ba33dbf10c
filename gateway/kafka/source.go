package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicehq/sluice/engine"
)

// Defaults of SourceConfig.
const (
	DefaultPollTimeout       = time.Second
	DefaultSessionTimeout    = 45 * time.Second
	DefaultHeartbeatInterval = 3 * time.Second
	DefaultFetchMaxBytes     = 16 << 20
)

// SourceConfig configures a consumer-group Source. Zero fields mean their
// defaults; NewSource copies and validates it.
type SourceConfig struct {
	// Brokers are the seed brokers, "host:port". Required.
	Brokers []string

	// Group is the consumer group id. Required. Sources in one group share
	// the partitions of Topics.
	Group string

	// Topics are the topics to consume. Required, at least one.
	Topics []string

	// ClientID is the Kafka client id. Default "sluice".
	ClientID string

	// FromLatest starts a group that has no committed offset at the end of
	// each partition instead of its start. Default false: the earliest
	// offset, so nothing already in the topic is skipped.
	FromLatest bool

	// PollTimeout is how long Recv waits for records before it returns an
	// empty batch (an idle tick for the driver). Default 1 s.
	PollTimeout time.Duration

	// SessionTimeout is how long the group coordinator waits for a
	// heartbeat before it declares this member dead and reassigns its
	// partitions. Default 45 s; the broker bounds it (kfake: 6 s–5 min).
	SessionTimeout time.Duration

	// HeartbeatInterval is how often the member heartbeats, which is also
	// how soon it notices that the group is rebalancing (a member joined or
	// left). Default 3 s; it must be below SessionTimeout.
	HeartbeatInterval time.Duration

	// DialTimeout bounds one connection attempt and the reachability check
	// at start. Default 5 s.
	DialTimeout time.Duration

	// Security is TLS and SASL (NewSecurity), as for the Sink.
	Security Security

	// FetchMaxBytes caps what one fetch response may carry, and so the
	// bytes the client buffers ahead of the engine. Default 16 MiB (a
	// single record larger than it is still fetched).
	FetchMaxBytes int32
}

// withDefaults returns c with each zero field set to its default.
func (c SourceConfig) withDefaults() SourceConfig {
	if c.ClientID == "" {
		c.ClientID = DefaultClientID
	}
	if c.PollTimeout == 0 {
		c.PollTimeout = DefaultPollTimeout
	}
	if c.SessionTimeout == 0 {
		c.SessionTimeout = DefaultSessionTimeout
	}
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.FetchMaxBytes == 0 {
		c.FetchMaxBytes = DefaultFetchMaxBytes
	}
	return c
}

// Validate reports a configuration NewSource would reject.
func (c SourceConfig) Validate() error {
	c = c.withDefaults()
	if len(c.Brokers) == 0 {
		return &ConfigError{Field: "Brokers", Reason: "at least one broker is required"}
	}
	for _, b := range c.Brokers {
		if err := validBroker(b); err != nil {
			return &ConfigError{Field: "Brokers", Reason: err.Error()}
		}
	}
	if c.Group == "" {
		return &ConfigError{Field: "Group", Reason: "a consumer group is required"}
	}
	if len(c.Topics) == 0 {
		return &ConfigError{Field: "Topics", Reason: "at least one topic is required"}
	}
	for _, t := range c.Topics {
		if err := validTopic(t); err != nil {
			return &ConfigError{Field: "Topics", Reason: err.Error()}
		}
	}
	if c.PollTimeout < time.Millisecond {
		return &ConfigError{Field: "PollTimeout", Reason: "must be at least 1ms"}
	}
	if c.SessionTimeout < time.Second {
		return &ConfigError{Field: "SessionTimeout", Reason: "must be at least 1s"}
	}
	if c.HeartbeatInterval < time.Millisecond || c.HeartbeatInterval >= c.SessionTimeout {
		return &ConfigError{Field: "HeartbeatInterval", Reason: fmt.Sprintf("%v must be in [1ms, SessionTimeout %v)", c.HeartbeatInterval, c.SessionTimeout)}
	}
	if c.DialTimeout < 0 {
		return &ConfigError{Field: "DialTimeout", Reason: "must be positive"}
	}
	if c.FetchMaxBytes < 1<<10 {
		return &ConfigError{Field: "FetchMaxBytes", Reason: fmt.Sprintf("%d is below 1 KiB", c.FetchMaxBytes)}
	}
	return c.Security.SASL.validate()
}

// pausedTick is how long a paused Source's Recv waits before it returns an
// empty batch.
const pausedTick = 50 * time.Millisecond

// Offset is the commit token of a Source: the position of one consumed
// record. Committing it commits everything before it in its partition.
type Offset struct {
	Topic       string
	Partition   int32
	Offset      int64
	LeaderEpoch int32
}

// SourceStats counts what a Source did.
type SourceStats struct {
	// Received is the records handed to the caller.
	Received uint64
	// Committed is the tokens committed.
	Committed uint64
	// Commits is the successful Commit calls.
	Commits uint64
	// Dropped is buffered records given up because their partition was
	// lost or revoked; the next owner reads them again.
	Dropped uint64
}

var _ engine.Receiver[Offset] = (*Source)(nil)

// Source reads a consumer group: engine.Receiver[Offset] for a Kafka →
// transforms → Kafka pipeline. Offsets are committed only by Commit (never
// automatically) and in order, so the driver's ack barrier holds: nothing
// is committed that the sink did not accept.
//
// Rebalances are blocked from the poll that fetched records until every
// record handed out from it is committed, so a partition never moves while
// its records are on their way; the revoke then finds nothing left to
// commit. Records polled but not yet handed out (RecvLimited keeps what does
// not fit) also hold the rebalance back; keep a loop iteration well under
// the group's rebalance timeout (60 s by default).
//
// Recv and RecvLimited must be called from one goroutine, as the engine
// does; Commit may be called from another one (the engine's overlapped
// driver commits from its sink stage while it receives), one call at a
// time; Close may be called from any.
type Source struct {
	cfg SourceConfig
	cl  *kgo.Client
	log *slog.Logger

	mu          sync.Mutex // guards buf against the group's callbacks
	buf         []*kgo.Record
	outstanding int // tokens handed out and not yet committed

	paused                                bool // fetching paused (SetPaused); guarded by mu
	closed                                atomic.Bool
	received, committed, commits, dropped atomic.Uint64
}

// NewSource joins the group and checks that a broker answers within
// DialTimeout; when none does it fails with an *UnreachableError naming the
// brokers. logger may be nil.
func NewSource(ctx context.Context, cfg SourceConfig, logger *slog.Logger) (*Source, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	cfg.Brokers = append([]string(nil), cfg.Brokers...)
	cfg.Topics = append([]string(nil), cfg.Topics...)
	s := &Source{cfg: cfg, log: orDiscard(logger).With("component", "kafka-source", "group", cfg.Group)}
	reset := kgo.NewOffset().AtStart()
	if cfg.FromLatest {
		reset = kgo.NewOffset().AtEnd()
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ClientID(cfg.ClientID),
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(cfg.Topics...),
		kgo.ConsumeResetOffset(reset),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.SessionTimeout(cfg.SessionTimeout),
		kgo.HeartbeatInterval(cfg.HeartbeatInterval),
		kgo.DialTimeout(cfg.DialTimeout),
		kgo.OnPartitionsRevoked(s.onRevoked),
		kgo.OnPartitionsLost(s.onRevoked),
		kgo.FetchMaxBytes(cfg.FetchMaxBytes),
		kgo.WithLogger(kgoLogger{s.log}),
	}
	cl, err := kgo.NewClient(append(opts, cfg.Security.opts()...)...)
	if err != nil {
		return nil, fmt.Errorf("kafka: new consumer: %w", err)
	}
	s.cl = cl
	if err := ping(ctx, cl, cfg.Brokers, cfg.DialTimeout); err != nil {
		cl.Close()
		return nil, AuthFailure(err, cfg.Security)
	}
	return s, nil
}

// SetPaused pauses (true) or resumes (false) fetching: while paused, Recv
// hands out what is already buffered, then returns empty batches without
// polling, and the client fetches nothing more (a pull source's answer to
// pressure: it cannot answer 503). The group membership, its heartbeats
// and rebalances go on. Called from the Recv goroutine.
func (s *Source) SetPaused(paused bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.paused == paused {
		return
	}
	s.paused = paused
	if paused {
		s.cl.PauseFetchTopics(s.cfg.Topics...)
	} else {
		s.cl.ResumeFetchTopics(s.cfg.Topics...)
	}
}

// Buffered returns the records polled and not yet handed out: RecvLimited
// polls the brokers only when it is 0.
func (s *Source) Buffered() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.buf)
}

// Paused reports whether fetching is paused.
func (s *Source) Paused() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.paused
}

// onRevoked runs when partitions are revoked or lost. Every record handed
// out was committed before the rebalance was allowed, so there is nothing to
// commit; records still buffered for those partitions (possible only when
// the session was lost or at Close) are dropped for the next owner to read
// from the last commit.
func (s *Source) onRevoked(_ context.Context, _ *kgo.Client, revoked map[string][]int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	kept := s.buf[:0]
	for _, r := range s.buf {
		if containsPartition(revoked[r.Topic], r.Partition) {
			s.dropped.Add(1)
			continue
		}
		kept = append(kept, r)
	}
	clear(s.buf[len(kept):])
	s.buf = kept
}

func containsPartition(ps []int32, p int32) bool {
	for _, q := range ps {
		if q == p {
			return true
		}
	}
	return false
}

// Recv returns up to max records; see RecvLimited.
func (s *Source) Recv(ctx context.Context, max int) (engine.Batch[Offset], error) {
	return s.RecvLimited(ctx, engine.RecvLimits{MaxRecords: max})
}

// RecvLimited returns up to lim.MaxRecords records whose sizes sum to at most
// lim.MaxBytes (at least one record, however large). Records polled beyond
// the limits stay buffered for the next call, never dropped. It waits up to
// PollTimeout for records and then returns an empty batch. Each record's
// Topic is left "" (the sink's default topic: a pipeline never writes back
// to its input by accident); key, value, headers and timestamp are kept.
// One token per record.
func (s *Source) RecvLimited(ctx context.Context, lim engine.RecvLimits) (engine.Batch[Offset], error) {
	if s.closed.Load() {
		return engine.Batch[Offset]{}, ErrClosed
	}
	if lim.MaxRecords < 1 {
		lim.MaxRecords = 1
	}
	s.mu.Lock()
	empty, paused := len(s.buf) == 0, s.paused
	s.mu.Unlock()
	switch {
	case empty && paused:
		// Nothing buffered and fetching paused: an idle tick, without
		// holding a rebalance back.
		s.mu.Lock()
		s.allowRebalanceLocked()
		s.mu.Unlock()
		t := time.NewTimer(min(s.cfg.PollTimeout, pausedTick))
		defer t.Stop()
		select {
		case <-ctx.Done():
			return engine.Batch[Offset]{}, ctx.Err()
		case <-t.C:
		}
		return engine.Batch[Offset]{}, nil
	case empty:
		if err := s.poll(ctx, lim.MaxRecords); err != nil {
			return engine.Batch[Offset]{}, err
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	k, bytes := 0, int64(0)
	for k < len(s.buf) && k < lim.MaxRecords {
		sz := recordSize(s.buf[k])
		if k > 0 && lim.MaxBytes > 0 && bytes+sz > lim.MaxBytes {
			break
		}
		bytes += sz
		k++
	}
	if k == 0 {
		s.allowRebalanceLocked()
		return engine.Batch[Offset]{}, nil
	}
	b := engine.Batch[Offset]{Records: make([]engine.Record, k), Tokens: make([]Offset, k)}
	for i, r := range s.buf[:k] {
		rec := engine.Record{Value: r.Value, Key: r.Key, Timestamp: r.Timestamp}
		if len(r.Headers) > 0 {
			rec.Headers = make([]engine.Header, len(r.Headers))
			for j, h := range r.Headers {
				rec.Headers[j] = engine.Header{Key: h.Key, Value: h.Value}
			}
		}
		b.Records[i] = rec
		b.Tokens[i] = Offset{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, LeaderEpoch: r.LeaderEpoch}
	}
	n := copy(s.buf, s.buf[k:])
	clear(s.buf[n:])
	s.buf = s.buf[:n]
	s.outstanding += k
	s.received.Add(uint64(k))
	return b, nil
}

// poll fetches up to max records into the buffer. An empty poll (timeout)
// is not an error.
func (s *Source) poll(ctx context.Context, max int) error {
	pctx, cancel := context.WithTimeout(ctx, s.cfg.PollTimeout)
	defer cancel()
	fs := s.cl.PollRecords(pctx, max)
	if err := ctx.Err(); err != nil {
		return err
	}
	var fatal error
	fs.EachError(func(t string, p int32, err error) {
		switch {
		case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		case errors.Is(err, kgo.ErrClientClosed):
			fatal = ErrClosed
		default:
			// Fetch errors are retried by the client; report them.
			s.log.Warn("fetch error", "topic", t, "partition", p, "err", err)
		}
	})
	if fatal != nil {
		return fatal
	}
	recs := fs.Records()
	s.mu.Lock()
	s.buf = append(s.buf, recs...)
	s.mu.Unlock()
	return nil
}

// recordSize is engine.Record.Size of the record RecvLimited would build.
func recordSize(r *kgo.Record) int64 {
	n := len(r.Value) + len(r.Key)
	for _, h := range r.Headers {
		n += len(h.Key) + len(h.Value)
	}
	return int64(n)
}

// allowRebalanceLocked lets a blocked rebalance proceed once nothing polled
// is buffered or uncommitted.
func (s *Source) allowRebalanceLocked() {
	if len(s.buf) == 0 && s.outstanding <= 0 {
		s.outstanding = 0
		s.cl.AllowRebalance()
	}
}

// Commit synchronously commits, per partition, the offset after the highest
// token, then lets a pending rebalance proceed if nothing is left in flight.
// An error (the commit failed, or a partition was lost to another member)
// is terminal for the run loop; the uncommitted records are read again.
func (s *Source) Commit(ctx context.Context, tokens []Offset) error {
	if s.closed.Load() {
		return ErrClosed
	}
	if len(tokens) == 0 {
		return nil
	}
	offsets := make(map[string]map[int32]kgo.EpochOffset)
	for _, t := range tokens {
		ps := offsets[t.Topic]
		if ps == nil {
			ps = make(map[int32]kgo.EpochOffset)
			offsets[t.Topic] = ps
		}
		if cur, ok := ps[t.Partition]; !ok || t.Offset+1 > cur.Offset {
			ps[t.Partition] = kgo.EpochOffset{Epoch: t.LeaderEpoch, Offset: t.Offset + 1}
		}
	}
	var cerr error
	s.cl.CommitOffsetsSync(ctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			cerr = err
			return
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if e := kerr.ErrorForCode(p.ErrorCode); e != nil && cerr == nil {
					cerr = fmt.Errorf("%s/%d: %w", t.Topic, p.Partition, e)
				}
			}
		}
	})
	if cerr != nil {
		return fmt.Errorf("kafka: commit group %q: %w", s.cfg.Group, cerr)
	}
	s.committed.Add(uint64(len(tokens)))
	s.commits.Add(1)
	s.mu.Lock()
	s.outstanding -= len(tokens)
	s.allowRebalanceLocked()
	s.mu.Unlock()
	return nil
}

// Stats returns the source's counters.
func (s *Source) Stats() SourceStats {
	return SourceStats{Received: s.received.Load(), Committed: s.committed.Load(), Commits: s.commits.Load(), Dropped: s.dropped.Load()}
}

// Ping reports whether a broker answers, for readiness probes.
func (s *Source) Ping(ctx context.Context) error {
	if s.closed.Load() {
		return ErrClosed
	}
	return ping(ctx, s.cl, s.cfg.Brokers, s.cfg.DialTimeout)
}

// Close leaves the group without committing anything more: records handed
// out but not committed are read again by the partitions' next owner. Close
// is idempotent.
func (s *Source) Close() {
	if s.closed.Swap(true) {
		return
	}
	s.cl.CloseAllowingRebalance()
}
