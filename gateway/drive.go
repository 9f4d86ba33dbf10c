package gateway

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/sluicehq/sluice/engine"
	"github.com/sluicehq/sluice/gateway/kafka"
	"github.com/sluicehq/sluice/governor"
)

// driverMaxRecords caps the records a line's driver holds in flight (of
// one receive at depth 1; divided among the batches in flight otherwise);
// the byte budget caps their bytes.
const driverMaxRecords = 10_000

// driveDeps is what every line's driver shares: the governor's guard and
// budget, the sink (records and dead letters), the processor (nil: pass
// through), the metrics and the depth (Config.DriverDepth).
type driveDeps struct {
	gov   *governor.Governor
	sink  lineSink
	proc  engine.Processor
	m     *Metrics
	log   *slog.Logger
	depth int // batches in flight (≤ 1: one at a time)
}

// maxRecords is the record cap of one receive at depth: driverMaxRecords
// in all.
func maxRecords(depth int) int { return max(driverMaxRecords/max(depth, 1), 1) }

// lineSink is what a line's driver writes to: records and dead letters.
type lineSink interface {
	engine.RecordSink
	engine.DLQSink
}

// runGoverned runs one governed driver over recv until recv is closed and
// drained (nil), ctx is done (nil), or a terminal error (a sink, DLQ or
// process failure: the block is not committed).
func runGoverned[T any](ctx context.Context, d driveDeps, recv engine.Receiver[T]) error {
	process := engine.PassThrough[T]
	if d.proc != nil {
		process = engine.Process[T](d.proc)
	}
	return runGovernedFunc(ctx, d, recv, process)
}

// runGovernedFunc is runGoverned with its own process stage (d.proc is not
// used).
func runGovernedFunc[T any](ctx context.Context, d driveDeps, recv engine.Receiver[T], process engine.ProcessFunc[T]) error {
	drv, err := engine.NewDriver[T](engine.Config{
		MaxRecords: maxRecords(d.depth),
		Depth:      d.depth,
		DLQPolicy:  engine.DLQRoute,
		DLQ:        d.sink,
		Guard:      d.gov.Guard(),
		Budget:     d.gov.Budget(),
		Logger:     d.log.With("component", "engine"),
		Observer:   driverObserver{d.m},
	})
	if err != nil {
		return err
	}
	return drv.RunGoverned(ctx, recv, process, engine.Sink[T](d.sink))
}

// driverObserver exports the driver's block measurements.
type driverObserver struct{ m *Metrics }

// ObserveBlock records the received block's bytes.
func (o driverObserver) ObserveBlock(st engine.BlockStats) {
	o.m.recvBlockBytes.Set(float64(st.Bytes))
}

// ObserveBudget is a no-op: the budget is read by a callback gauge.
func (o driverObserver) ObserveBudget(engine.BudgetSample) {}

// maxDeadLetterValue caps the bytes of a too-large record kept in its dead
// letter, so that the dead letter itself fits in a Kafka message.
const maxDeadLetterValue = 64 << 10

// capRecords runs inner (nil: pass through) and then dead-letters every
// record larger than max bytes (key + value + headers) before the sink
// sees it: the brokers would refuse it and fail the whole produce. Its dead
// letter (stage "sink") keeps the first 64 KiB of the value and the
// record's tag, so its request still counts it.
type capRecords struct {
	inner engine.Processor
	max   int
}

var _ engine.Processor = capRecords{}

// Process implements engine.Processor.
func (p capRecords) Process(ctx context.Context, recs []engine.Record, dlq []engine.DLQEntry) ([]engine.Record, []engine.DLQEntry, error) {
	if p.inner != nil {
		var err error
		if recs, dlq, err = p.inner.Process(ctx, recs, dlq); err != nil {
			return recs, dlq, err
		}
	}
	first := -1
	for i := range recs {
		if recs[i].Size() > p.max {
			first = i
			break
		}
	}
	if first < 0 {
		return recs, dlq, nil
	}
	kept := make([]engine.Record, first, len(recs)-1)
	copy(kept, recs[:first])
	for i := first; i < len(recs); i++ {
		r := recs[i]
		size := r.Size()
		if size <= p.max {
			kept = append(kept, r)
			continue
		}
		dl := r
		dl.Format = engine.FormatRaw
		if len(dl.Value) > maxDeadLetterValue {
			dl.Value = dl.Value[:maxDeadLetterValue]
		}
		dlq = append(dlq, engine.DLQEntry{
			Record: dl,
			Stage:  engine.StageSink,
			Reason: fmt.Sprintf("%s for Kafka: %d bytes over the %d-byte record cap (--kafka-max-record-bytes; first %d bytes of the value kept)", kafka.ReasonRecordTooLarge, size, p.max, len(dl.Value)),
		})
	}
	return kept, dlq, nil
}
