package gateway

import (
	"context"

	"github.com/sluicehq/sluice/engine"
)

// driverMaxRecords caps the records of one receive; the byte budget caps
// its bytes.
const driverMaxRecords = 10_000

// runDriver runs one governed driver over the receiver until the receiver
// is closed and drained (nil), ctx is done (nil), or a terminal error (a
// sink, DLQ or process failure: the block is not committed).
func (a *App) runDriver(ctx context.Context) error {
	d, err := engine.NewDriver[*Ack](engine.Config{
		MaxRecords: driverMaxRecords,
		DLQPolicy:  engine.DLQRoute,
		DLQ:        a.tally,
		Guard:      a.gov.Guard(),
		Budget:     a.gov.Budget(),
		Logger:     a.log.With("component", "engine"),
		Observer:   driverObserver{a.m},
	})
	if err != nil {
		return err
	}
	process := engine.PassThrough[*Ack]
	if a.proc != nil {
		process = engine.Process[*Ack](a.proc)
	}
	return d.RunGoverned(ctx, a.recv, process, engine.Sink[*Ack](a.tally))
}

// driverObserver exports the driver's block measurements.
type driverObserver struct{ m *Metrics }

// ObserveBlock records the received block's bytes.
func (o driverObserver) ObserveBlock(st engine.BlockStats) {
	o.m.recvBlockBytes.Set(float64(st.Bytes))
}

// ObserveBudget is a no-op: the budget is read by a callback gauge.
func (o driverObserver) ObserveBudget(engine.BudgetSample) {}
