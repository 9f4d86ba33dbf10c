package engine_test

import (
	"context"
	"fmt"

	"github.com/sluicehq/sluice/engine"
	"github.com/sluicehq/sluice/engine/codec"
	"github.com/sluicehq/sluice/engine/memtransport"
	"github.com/sluicehq/sluice/governor"
)

// A driver over the in-memory transport: a process stage fans every record
// out to two, the sink counts its calls, and the commit acknowledges the
// three input offsets — not the six output records.
func ExampleDriver_Run() {
	src, _ := memtransport.New(memtransport.Config{})
	src.InjectValues(`{"id":1}`, `{"id":2}`, `{"id":3}`)
	src.Close() // Run returns nil once the source is drained

	d, _ := engine.NewDriver[uint64](engine.Config{})
	sinkCalls, sunk := 0, 0
	err := d.Run(context.Background(), src,
		func(_ context.Context, b engine.Batch[uint64]) (engine.Batch[uint64], error) {
			return b.MapRecords(func(recs []engine.Record) []engine.Record {
				return append(recs, recs...) // 1 → 2
			}), nil
		},
		func(_ context.Context, b *engine.Batch[uint64]) error {
			sinkCalls++
			sunk += len(b.Records)
			return nil
		})
	fmt.Println("err:", err)
	fmt.Println("sink calls:", sinkCalls, "records sunk:", sunk)
	fmt.Println("committed watermark:", src.Committed())
	// Output:
	// err: <nil>
	// sink calls: 1 records sunk: 6
	// committed watermark: 2
}

// The governed loop receives at most the byte budget (here held at 20
// bytes: two 7-byte records, floor one) and commits each block's offsets
// once it is sunk.
func ExampleDriver_RunGoverned() {
	src, _ := memtransport.New(memtransport.Config{})
	src.InjectValues(`{"n":1}`, `{"n":2}`, `{"n":3}`, `{"n":4}`, `{"n":5}`) // 7 bytes each
	src.Close()
	dst, _ := memtransport.New(memtransport.Config{})

	budget, _ := governor.NewByteBudget(governor.BudgetConfig{Min: 20, Max: 20}, nil)
	d, _ := engine.NewDriver[uint64](engine.Config{Budget: budget})
	err := d.RunGoverned(context.Background(), src, engine.PassThrough[uint64], engine.Sink[uint64](dst))
	s := d.Stats()
	fmt.Println("err:", err)
	fmt.Println("sub-blocks:", s.SubBlocks, "commits:", s.Commits, "sent:", len(dst.Sent()))
	fmt.Println("committed watermark:", src.Committed())
	// Output:
	// err: <nil>
	// sub-blocks: 3 commits: 3 sent: 5
	// committed watermark: 4
}

// The pre-parsed path with dead letters routed to a DLQ sink.
func ExampleDriver_RunParsed() {
	src, _ := memtransport.New(memtransport.Config{})
	src.InjectValues(`{"user":{"country":"FR"}}`, `not json`, `{"user":{"country":"DE"}}`)
	src.Close()
	dlq, _ := memtransport.New(memtransport.Config{})

	d, _ := engine.NewDriver[uint64](engine.Config{DLQPolicy: engine.DLQRoute, DLQ: dlq})
	country := codec.MustParsePath("user.country")
	err := d.RunParsed(context.Background(), src,
		func(_ context.Context, pb *engine.ParsedBatch[uint64]) (engine.Batch[uint64], error) {
			for _, v := range pb.Values {
				c, _ := v.Lookup(country)
				s, _ := c.Str()
				fmt.Println("country:", s)
			}
			return pb.Batch(), nil
		},
		func(context.Context, *engine.Batch[uint64]) error { return nil })
	fmt.Println("err:", err)
	fmt.Println("dead letters:", len(dlq.DeadLetters()), dlq.DeadLetters()[0].Stage)
	fmt.Println("committed watermark:", src.Committed())
	// Output:
	// country: FR
	// country: DE
	// err: <nil>
	// dead letters: 1 parse
	// committed watermark: 2
}
