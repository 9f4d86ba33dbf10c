package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice/engine"
	"github.com/sluicehq/sluice/engine/codec"
	"github.com/sluicehq/sluice/gateway/kafka"
	"github.com/sluicehq/sluice/wasmhost"
)

// kafkaLine is a Kafka consumer-group line (sources:, --from-topics): a
// kafka.Source → the governed driver → the source's pipeline → the shared
// sink. The driver commits each partition's offsets (Source.Commit) only
// after the sink accepted the block's out-batch, in order, so a crash or a
// rebalance re-delivers what was not acknowledged (at-least-once) and never
// skips it. Each run joins the group afresh: after a terminal error the new
// member reads from the last commit. Records that are not JSON objects are
// dead-lettered with their position and the partition moves on. While the
// governor's pressure is latched, or while the line's pipeline is
// unavailable (a transform of it is not loaded: nothing may pass
// untransformed), the source pauses fetching (a pull source has no 503) and
// resumes once that ends.
type kafkaLine struct {
	line
	src     kafka.SourceConfig
	closing atomic.Bool   // stop asked: finish the block in hand, then end the run
	grace   time.Duration // how long stop waits for that before it cancels

	mu     sync.Mutex
	source *kafka.Source // the current run's (nil between runs)
}

// kafkaLineDeps is what a Kafka line needs besides its source options.
type kafkaLineDeps struct {
	drive   driveDeps
	host    *wasmhost.Host
	latched func() bool // the governor's pressure latch
	// maxRecord is the sink's record cap (capRecords); 0: none.
	maxRecord int
	// grace bounds a graceful stop (the block in hand finishes).
	grace  time.Duration
	health *health
	probe  func(context.Context) error
	log    *slog.Logger
}

// newKafkaLine returns the line of source o over d; srcCfg is its consumer
// configuration (brokers, group, topics, security).
func newKafkaLine(o SourceOptions, srcCfg kafka.SourceConfig, topic string, d kafkaLineDeps) *kafkaLine {
	l := &kafkaLine{src: srcCfg, grace: d.grace}
	name := "kafka:" + o.Name
	log := d.log.With("line", name)
	var proc engine.Processor = hostPipeline{host: d.host, name: sourcePipeline(o)}
	if d.maxRecord > 0 {
		proc = capRecords{inner: proc, max: d.maxRecord}
	}
	drive := d.drive
	l.line = line{
		name:   name,
		log:    log,
		health: d.health,
		probe:  d.probe,
		run: func(ctx context.Context) error {
			s, err := kafka.NewSource(ctx, l.src, log.With("component", "kafka"))
			if err != nil {
				return err
			}
			l.setSource(s)
			defer func() {
				l.setSource(nil)
				s.Close()
			}()
			r := newKafkaReceiver(s, topic, d.latched, &l.closing, log)
			r.pipelineErr = func() error { return d.host.Pipeline(sourcePipeline(o)).Err() }
			return runGovernedFunc(ctx, drive, engine.Receiver[kafka.Offset](r), engine.Process[kafka.Offset](proc))
		},
		sinkFault: func(err error) bool {
			var se *engine.SinkError
			var de *engine.DLQRouteError
			return errors.As(err, &se) || errors.As(err, &de)
		},
		restarted: d.drive.m.driverRestarts.Inc,
	}
	return l
}

// stop ends the line gracefully: the driver finishes the block it holds
// (sunk and committed), then the run ends and the source leaves the group,
// so a rolling restart re-reads nothing. Past the grace period or ctx, the
// run is cancelled: what it held uncommitted is read again by the
// partitions' next owner.
func (l *kafkaLine) stop(ctx context.Context) error {
	l.closing.Store(true)
	t := time.NewTimer(l.grace)
	defer t.Stop()
	select {
	case <-l.Done():
	case <-t.C:
		l.log.Warn("kafka line did not finish its block within the grace period; cancelling", "grace", l.grace)
	case <-ctx.Done():
	}
	return l.line.stop(ctx)
}

func (l *kafkaLine) setSource(s *kafka.Source) {
	l.mu.Lock()
	l.source = s
	l.mu.Unlock()
}

// Stats returns the current run's source counters (zero between runs).
func (l *kafkaLine) Stats() kafka.SourceStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.source == nil {
		return kafka.SourceStats{}
	}
	return l.source.Stats()
}

// sourcePipeline is the WASM host pipeline of a source: its own chain
// ("source.NAME"), its tenant's, or the default one.
func sourcePipeline(o SourceOptions) string {
	switch {
	case len(o.Pipeline) > 0:
		return "source." + o.Name
	case o.Tenant != "":
		return pipelineName(o.Tenant)
	default:
		return wasmhost.DefaultPipeline
	}
}

// hostPipeline runs the host's pipeline name as it is at each call (a
// chain swapped over the admin API applies to the next block).
type hostPipeline struct {
	host *wasmhost.Host
	name string
}

// Process implements engine.Processor.
func (p hostPipeline) Process(ctx context.Context, recs []engine.Record, dlq []engine.DLQEntry) ([]engine.Record, []engine.DLQEntry, error) {
	return p.host.Pipeline(p.name).Process(ctx, recs, dlq)
}

// kafkaReceiver is the Kafka line's engine.Receiver: the Source, with
// records that are not JSON objects moved to the batch's dead letters (their
// tokens stay, so the partition moves on past them once the block commits),
// the line's default topic set, and fetching paused while pressure is
// latched. RecvLimited is called from the driver's receiving goroutine,
// Commit from its sink stage (the same goroutine at depth 1).
//
// With the driver's stages overlapped a block is received while earlier
// ones are still in flight. A poll blocks the group's rebalances until
// every record it fetched is committed (kgo.BlockRebalanceOnPoll), so
// polling while earlier records are uncommitted would hold a rebalance
// back for as long as the line stays busy, until the group's rebalance
// timeout evicts the member. The receiver therefore hands out what the
// last poll buffered as fast as the driver takes it, and polls again only
// once every record handed out was committed: the pipeline drains at each
// poll (at most MaxRecords records), and a pending rebalance proceeds
// there, as with one block at a time.
type kafkaReceiver struct {
	*kafka.Source
	topic   string // default topic of the line's records ("" = the sink's)
	latched func() bool
	closing *atomic.Bool // set: the source is closed (engine.ErrSourceClosed)
	log     *slog.Logger
	// pipelineErr returns why the line's pipeline cannot run (nil: it can).
	pipelineErr func() error
	pausedBy    string // why fetching is paused ("" = it is not)

	uncommitted atomic.Int64  // tokens handed out, not yet committed
	settled     chan struct{} // capacity 1: uncommitted dropped to 0
}

// newKafkaReceiver returns the receiver of one run over s.
func newKafkaReceiver(s *kafka.Source, topic string, latched func() bool, closing *atomic.Bool, log *slog.Logger) *kafkaReceiver {
	return &kafkaReceiver{Source: s, topic: topic, latched: latched, closing: closing, log: log, settled: make(chan struct{}, 1)}
}

var _ engine.Receiver[kafka.Offset] = (*kafkaReceiver)(nil)

// Recv returns up to max records; see RecvLimited.
func (r *kafkaReceiver) Recv(ctx context.Context, max int) (engine.Batch[kafka.Offset], error) {
	return r.RecvLimited(ctx, engine.RecvLimits{MaxRecords: max})
}

// RecvLimited implements engine.Receiver.
func (r *kafkaReceiver) RecvLimited(ctx context.Context, lim engine.RecvLimits) (engine.Batch[kafka.Offset], error) {
	if r.closing != nil && r.closing.Load() {
		return engine.Batch[kafka.Offset]{}, engine.ErrSourceClosed
	}
	r.pause()
	if r.Buffered() == 0 {
		// The next receive polls: first let every block in flight commit.
		if err := r.waitSettled(ctx); err != nil {
			return engine.Batch[kafka.Offset]{}, err
		}
		if r.closing != nil && r.closing.Load() {
			return engine.Batch[kafka.Offset]{}, engine.ErrSourceClosed
		}
	}
	b, err := r.Source.RecvLimited(ctx, lim)
	r.uncommitted.Add(int64(len(b.Tokens)))
	if err != nil || len(b.Records) == 0 {
		return b, err
	}
	kept := b.Records[:0]
	for i := range b.Records {
		rec := b.Records[i]
		if err := checkRecord(rec.Value); err != nil {
			t := b.Tokens[i]
			dl := rec
			dl.Format = engine.FormatRaw
			if len(dl.Value) > maxDeadLetterValue {
				dl.Value = dl.Value[:maxDeadLetterValue]
			}
			b.DLQ = append(b.DLQ, engine.DLQEntry{
				Record: dl,
				Stage:  "parse",
				Reason: fmt.Sprintf("parse error: record %s/%d@%d %v", t.Topic, t.Partition, t.Offset, err),
			})
			if errors.Is(err, codec.ErrDuplicateKey) { // the reason HTTP ingest gives, and where
				b.DLQ[len(b.DLQ)-1].Reason = fmt.Sprintf("%v (record %s/%d@%d)", err, t.Topic, t.Partition, t.Offset)
			}
			continue
		}
		if r.topic != "" {
			rec.Topic = r.topic
		}
		kept = append(kept, rec)
	}
	clear(b.Records[len(kept):])
	b.Records = kept
	return b, nil
}

// pause pauses fetching while pressure latches or the pipeline is
// unavailable, and resumes it once neither holds; each change is logged.
func (r *kafkaReceiver) pause() {
	why := ""
	var perr error
	if r.pipelineErr != nil {
		perr = r.pipelineErr()
	}
	switch {
	case perr != nil:
		why = "pipeline unavailable"
	case r.latched():
		why = "pressure latched"
	}
	if why == r.pausedBy && (why != "") == r.Paused() {
		return
	}
	switch {
	case why == "":
		r.log.Info("resuming the Kafka source", "paused_by", r.pausedBy)
	case why == "pipeline unavailable":
		r.log.Error("pipeline unavailable: pausing the Kafka source until the transform is uploaded again or the pipeline changed", "err", perr)
	default:
		r.log.Warn("pressure latched: pausing the Kafka source")
	}
	r.pausedBy = why
	r.SetPaused(why != "")
}

// Commit implements engine.Receiver: Source.Commit, then it tells a
// receive waiting to poll that nothing is in flight any more.
func (r *kafkaReceiver) Commit(ctx context.Context, tokens []kafka.Offset) error {
	if err := r.Source.Commit(ctx, tokens); err != nil {
		return err
	}
	if r.uncommitted.Add(-int64(len(tokens))) <= 0 {
		select {
		case r.settled <- struct{}{}:
		default:
		}
	}
	return nil
}

// waitSettled waits until every token handed out was committed, or ctx is
// done (its error).
func (r *kafkaReceiver) waitSettled(ctx context.Context) error {
	for r.uncommitted.Load() > 0 {
		select {
		case <-r.settled:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// checkRecord's errors.
var (
	errNotJSON   = errors.New("is not valid JSON")
	errNotObject = errors.New("is not a JSON object")
)

// checkRecord applies the ingest path's record check (codec.Check, as
// HTTP ingest): one JSON object, strictly valid, no repeated name (a
// *codec.DuplicateKeyError).
func checkRecord(v []byte) error {
	switch err := codec.Check(v); {
	case err == codec.ErrInvalid:
		return errNotJSON
	case err != nil:
		return err
	}
	if len(bytes.TrimLeft(v, " \t\r\n")) == 0 || bytes.TrimLeft(v, " \t\r\n")[0] != '{' {
		return errNotObject
	}
	return nil
}
