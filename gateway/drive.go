package gateway

import (
	"context"
	"log/slog"

	"github.com/sluicehq/sluice/engine"
	"github.com/sluicehq/sluice/governor"
)

// driverMaxRecords caps the records of one receive; the byte budget caps
// its bytes.
const driverMaxRecords = 10_000

// driveDeps is what every line's driver shares: the governor's guard and
// budget, the sink (records and dead letters), the processor (nil: pass
// through) and the metrics.
type driveDeps struct {
	gov  *governor.Governor
	sink lineSink
	proc engine.Processor
	m    *Metrics
	log  *slog.Logger
}

// lineSink is what a line's driver writes to: records and dead letters.
type lineSink interface {
	engine.RecordSink
	engine.DLQSink
}

// runGoverned runs one governed driver over recv until recv is closed and
// drained (nil), ctx is done (nil), or a terminal error (a sink, DLQ or
// process failure: the block is not committed).
func runGoverned[T any](ctx context.Context, d driveDeps, recv engine.Receiver[T]) error {
	drv, err := engine.NewDriver[T](engine.Config{
		MaxRecords: driverMaxRecords,
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
	process := engine.PassThrough[T]
	if d.proc != nil {
		process = engine.Process[T](d.proc)
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
