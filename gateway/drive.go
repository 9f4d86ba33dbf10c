package gateway

import (
	"context"
	"errors"
	"fmt"

	"github.com/sluicehq/sluice/engine"
)

// runDriver runs one driver over the receiver until the receiver is closed
// and drained (nil), ctx is done (nil), or a terminal error.
func (a *App) runDriver(ctx context.Context) error {
	for {
		if ctx.Err() != nil {
			return nil
		}
		lim := engine.RecvLimits{MaxRecords: a.gov.Budget().RecordCap(), MaxBytes: a.gov.Budget().Bytes()}
		b, err := a.recv.RecvLimited(ctx, lim)
		if errors.Is(err, errSourceClosed) {
			return nil
		}
		if err != nil {
			return err
		}
		if len(b.Tokens) == 0 && len(b.Records) == 0 && len(b.DLQ) == 0 {
			continue
		}
		a.m.recvBlockBytes.Set(float64(b.Bytes()))
		lease := a.gov.Guard().Lease(b.Bytes())
		recs, dlq := b.Records, b.DLQ
		if a.proc != nil && len(recs) > 0 {
			recs, dlq, err = a.proc.Process(ctx, recs, dlq)
			if err != nil {
				lease.Release()
				return fmt.Errorf("process: %w", err)
			}
		}
		if err := a.tally.WriteDLQ(ctx, dlq); err != nil {
			lease.Release()
			return fmt.Errorf("dlq: %w", err)
		}
		if err := a.tally.Write(ctx, recs); err != nil {
			lease.Release()
			return fmt.Errorf("sink: %w", err)
		}
		lease.Release()
		if err := a.recv.Commit(ctx, b.Tokens); err != nil {
			return err
		}
	}
}
