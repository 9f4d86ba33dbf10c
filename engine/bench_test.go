package engine_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice/engine"
	"github.com/sluicehq/sluice/governor"
)

// reuseReceiver hands out the same block `blocks` times, then reports the
// source closed: a receiver that reuses its batch, as a hot transport does,
// so the driver's own cost is what is measured.
type reuseReceiver struct {
	batch  engine.Batch[uint64]
	blocks int
	served int
}

func newReuseReceiver(records, size int) *reuseReceiver {
	r := &reuseReceiver{batch: engine.Batch[uint64]{Records: sized(records, size), Tokens: make([]uint64, records)}}
	for i := range r.batch.Tokens {
		r.batch.Tokens[i] = uint64(i)
	}
	return r
}

func (r *reuseReceiver) Recv(context.Context, int) (engine.Batch[uint64], error) {
	if r.served >= r.blocks {
		return engine.Batch[uint64]{}, engine.ErrSourceClosed
	}
	r.served++
	return r.batch, nil
}

func (r *reuseReceiver) RecvLimited(ctx context.Context, lim engine.RecvLimits) (engine.Batch[uint64], error) {
	return r.Recv(ctx, lim.MaxRecords)
}

func (r *reuseReceiver) Commit(context.Context, []uint64) error { return nil }

const benchRecords, benchRecordBytes = 1000, 1024

func benchDriver(b *testing.B, cfg engine.Config, run func(d *engine.Driver[uint64], r *reuseReceiver) error) {
	d := newDriver(b, cfg)
	r := newReuseReceiver(benchRecords, benchRecordBytes)
	r.blocks = b.N
	b.ReportAllocs()
	b.SetBytes(benchRecords * benchRecordBytes)
	b.ResetTimer()
	if err := run(d, r); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	if got := d.Stats().RecordsOut; got != uint64(b.N)*benchRecords {
		b.Fatalf("records out = %d", got)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchRecords), "ns/record")
}

// BenchmarkDriverPassThrough measures the driver's own overhead per record:
// blocks of 1,000 records of 1 KiB, pass-through process, no-op sink. One op
// is one block.
func BenchmarkDriverPassThrough(b *testing.B) {
	ctx := context.Background()
	b.Run("whole", func(b *testing.B) {
		benchDriver(b, engine.Config{}, func(d *engine.Driver[uint64], r *reuseReceiver) error {
			return d.Run(ctx, r, passThrough, okSink)
		})
	})
	b.Run("whole_guarded", func(b *testing.B) {
		benchDriver(b, engine.Config{Guard: governor.NewMemoryGuard(1<<30, 0.9)}, func(d *engine.Driver[uint64], r *reuseReceiver) error {
			return d.Run(ctx, r, passThrough, okSink)
		})
	})
	b.Run("streaming_64KiB", func(b *testing.B) {
		benchDriver(b, engine.Config{}, func(d *engine.Driver[uint64], r *reuseReceiver) error {
			return d.RunStreaming(ctx, r, passThrough, okSink, 64<<10)
		})
	})
	b.Run("streaming_one_sub_block", func(b *testing.B) {
		benchDriver(b, engine.Config{}, func(d *engine.Driver[uint64], r *reuseReceiver) error {
			return d.RunStreaming(ctx, r, passThrough, okSink, 2<<20)
		})
	})
	b.Run("governed", func(b *testing.B) {
		guard, _, budget := governed(b, 1<<30, 0.9, governor.BudgetConfig{})
		benchDriver(b, engine.Config{Guard: guard, Budget: budget}, func(d *engine.Driver[uint64], r *reuseReceiver) error {
			return d.RunGoverned(ctx, r, passThrough, okSink)
		})
	})
}

// TestDriverLoopDoesNotAllocatePerBlock holds the run loop at zero
// allocations per block (hence per record) with a reusing receiver: a run of
// 101 blocks allocates no more than a run of 1.
func TestDriverLoopDoesNotAllocatePerBlock(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		cfg  engine.Config
		run  func(d *engine.Driver[uint64], r *reuseReceiver) error
	}{
		{"whole", engine.Config{}, func(d *engine.Driver[uint64], r *reuseReceiver) error {
			return d.Run(ctx, r, passThrough, okSink)
		}},
		{"streaming", engine.Config{}, func(d *engine.Driver[uint64], r *reuseReceiver) error {
			return d.RunStreaming(ctx, r, passThrough, okSink, 64<<10)
		}},
		{"ticking", engine.Config{TickEvery: time.Hour, OnTick: func(context.Context) error { return nil }},
			func(d *engine.Driver[uint64], r *reuseReceiver) error {
				return d.Run(ctx, r, passThrough, okSink)
			}},
		{"governed", engine.Config{Budget: benchBudget(t)}, func(d *engine.Driver[uint64], r *reuseReceiver) error {
			return d.RunGoverned(ctx, r, passThrough, okSink)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newDriver(t, tc.cfg)
			r := newReuseReceiver(100, 1024)
			allocs := func(blocks int) float64 {
				return testing.AllocsPerRun(10, func() {
					r.blocks, r.served = blocks, 0
					if err := tc.run(d, r); err != nil {
						t.Fatal(err)
					}
				})
			}
			one, many := allocs(1), allocs(101)
			// The counts are process-wide: a stray runtime allocation
			// during the longer run is not one per block (that would
			// show as ≥ 100 more).
			if perBlock := (many - one) / 100; perBlock >= 0.5 {
				t.Fatalf("%.2f allocations per block (1 block: %.0f, 101 blocks: %.0f); want 0", perBlock, one, many)
			}
		})
	}
}

func benchBudget(tb testing.TB) *governor.ByteBudget {
	_, _, budget := governed(tb, 1<<30, 0.9, governor.BudgetConfig{})
	return budget
}

// BenchmarkDriverOverlapped measures RunGoverned with stages overlapped
// (Config.Depth) against the sequential loop (depth 1): blocks of 1,000
// records of 1 KiB, one op is one block.
//
//   - pass_through: a pass-through process and a no-op sink, so the figure
//     is the driver's own cost per block (the hand-offs between stages);
//   - cpu_and_wait: a process that hashes 256 bytes of every record (a few
//     hundred µs a block, as cheap transforms take) and a sink that waits
//     300 µs for its acknowledgements, as a Kafka produce does:
//     sequentially a block costs both, overlapped about the longer of the
//     two.
func BenchmarkDriverOverlapped(b *testing.B) {
	ctx := context.Background()
	var sum atomic.Uint64
	burn := func(_ context.Context, bt engine.Batch[uint64]) (engine.Batch[uint64], error) {
		var h uint64
		for i := range bt.Records {
			for _, c := range bt.Records[i].Value[:256] {
				h = h*31 + uint64(c)
			}
		}
		sum.Add(h)
		return bt, nil
	}
	ackWait := func(context.Context, *engine.Batch[uint64]) error {
		time.Sleep(300 * time.Microsecond)
		return nil
	}
	for _, tc := range []struct {
		name    string
		process engine.ProcessFunc[uint64]
		sink    engine.SinkFunc[uint64]
	}{
		{"pass_through", passThrough, okSink},
		{"cpu_and_wait", burn, ackWait},
	} {
		for _, depth := range []int{1, 2, 4} {
			b.Run(fmt.Sprintf("%s/depth=%d", tc.name, depth), func(b *testing.B) {
				guard, _, budget := governed(b, 1<<30, 0.9, governor.BudgetConfig{})
				benchDriver(b, engine.Config{Guard: guard, Budget: budget, Depth: depth}, func(d *engine.Driver[uint64], r *reuseReceiver) error {
					return d.RunGoverned(ctx, r, tc.process, tc.sink)
				})
			})
		}
	}
}
