package kafka

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/sluicehq/sluice/engine"
)

// BenchmarkSinkWrite measures Write of 1,000-record batches of ~330-byte JSON
// events into an in-process kfake broker (6 partitions), one writer and
// several concurrent writers, with the broker storing the records and with
// kfake's BlackholeProduce (broker storage out of the picture).
func BenchmarkSinkWrite(b *testing.B) {
	for _, bc := range []struct {
		name      string
		blackhole bool
		writers   int
	}{
		{"store/writers=1", false, 1},
		{"store/writers=4", false, 4},
		{"blackhole/writers=1", true, 1},
		{"blackhole/writers=4", true, 4},
	} {
		b.Run(bc.name, func(b *testing.B) {
			opts := []kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(6, DefaultTopic, DefaultDLQTopic)}
			if bc.blackhole {
				opts = append(opts, kfake.BlackholeProduce())
			}
			c, err := kfake.NewCluster(opts...)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(c.Close)
			s := newSink(b, Config{Brokers: c.ListenAddrs()})
			const batch = 1000
			batches := make([][]engine.Record, bc.writers)
			var bytes int64
			for w := range batches {
				batches[w] = records(batch)
				bytes = (&engine.Batch[int]{Records: batches[w]}).Bytes()
			}
			if err := s.Write(context.Background(), batches[0]); err != nil { // warm up
				b.Fatal(err)
			}
			b.SetBytes(bytes)
			b.ReportAllocs()
			b.ResetTimer()
			next := make(chan int, bc.writers)
			var failed atomic.Pointer[error]
			done := make(chan struct{})
			for w := range bc.writers {
				go func() {
					for range next {
						if err := s.Write(context.Background(), batches[w]); err != nil {
							failed.CompareAndSwap(nil, &err)
						}
					}
					done <- struct{}{}
				}()
			}
			for i := 0; i < b.N; i++ {
				next <- i
			}
			close(next)
			for range bc.writers {
				<-done
			}
			b.StopTimer()
			if err := failed.Load(); err != nil {
				b.Fatal(*err)
			}
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
