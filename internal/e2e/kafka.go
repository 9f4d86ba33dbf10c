package e2e

import (
	"context"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// FreePort returns a port of 127.0.0.1 that nothing listened on a moment
// ago.
func FreePort(tb testing.TB) int {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// KafkaConfig describes an in-process kfake cluster of one broker.
type KafkaConfig struct {
	// Topics are seeded with three partitions each.
	Topics []string
	// AutoCreateTopics lets producers create any other topic.
	AutoCreateTopics bool
	// FixedPort binds the broker to a port picked with FreePort (picked
	// again, up to five times, when another listener takes it first)
	// instead of port 0.
	FixedPort bool
	// Opts are more kfake options, applied last.
	Opts []kfake.Opt
}

// Kafka starts the cluster cfg describes and closes it at cleanup.
func Kafka(tb testing.TB, cfg KafkaConfig) *kfake.Cluster {
	tb.Helper()
	opts := []kfake.Opt{kfake.NumBrokers(1)}
	if len(cfg.Topics) > 0 {
		opts = append(opts, kfake.SeedTopics(3, cfg.Topics...))
	}
	if cfg.AutoCreateTopics {
		opts = append(opts, kfake.AllowAutoTopicCreation())
	}
	opts = append(opts, cfg.Opts...)
	tries := 1
	if cfg.FixedPort {
		tries = 5
	}
	var c *kfake.Cluster
	var err error
	for range tries {
		o := opts
		if cfg.FixedPort {
			o = append(o[:len(o):len(o)], kfake.Ports(FreePort(tb)))
		}
		if c, err = kfake.NewCluster(o...); err == nil {
			break
		}
	}
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.Close)
	return c
}

// EndOffsets returns the record count (the sum of the end offsets) of each
// of topics that exists; partitions whose end offset cannot be listed are
// left out.
func EndOffsets(tb testing.TB, brokers []string, topics ...string) map[string]int64 {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ends := listEnds(tb, ctx, brokers, topics, nil)
	out := map[string]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err == nil {
			out[o.Topic] += o.Offset
		}
	})
	return out
}

func listEnds(tb testing.TB, ctx context.Context, brokers, topics []string, opts []kgo.Opt) kadm.ListedOffsets {
	tb.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...)}, opts...)...)
	if err != nil {
		tb.Fatal(err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topics...)
	if err != nil {
		tb.Fatalf("list end offsets of %v: %v", topics, err)
	}
	return ends
}

// ReadOptions tune ReadTopics.
type ReadOptions struct {
	// Timeout bounds the whole read; 0: 60 s.
	Timeout time.Duration
	// Strict fails the test on an error listing a partition's end offset
	// or fetching; otherwise such a partition counts as empty and fetch
	// errors are logged and the fetch retried.
	Strict bool
	// ClientOpts are more franz-go options of the reading client (TLS,
	// SASL).
	ClientOpts []kgo.Opt
}

// ReadTopics reads every record of topics from the beginning up to their
// end offsets as of the call, and fails the test if that takes longer than
// the timeout.
func ReadTopics(tb testing.TB, brokers []string, o ReadOptions, topics ...string) []*kgo.Record {
	tb.Helper()
	if o.Timeout == 0 {
		o.Timeout = 60 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.Timeout)
	defer cancel()
	type tp struct {
		topic string
		p     int32
	}
	want := map[tp]int64{}
	var existing []string
	listEnds(tb, ctx, brokers, topics, o.ClientOpts).Each(func(l kadm.ListedOffset) {
		if l.Err != nil {
			if o.Strict {
				tb.Fatalf("end offset of %s/%d: %v", l.Topic, l.Partition, l.Err)
			}
			return
		}
		if l.Offset > 0 {
			if !slices.Contains(existing, l.Topic) {
				existing = append(existing, l.Topic)
			}
			want[tp{l.Topic, l.Partition}] = l.Offset
		}
	})
	if len(want) == 0 {
		return nil
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(existing...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxBytes(64 << 20)}, o.ClientOpts...)...)
	if err != nil {
		tb.Fatal(err)
	}
	defer cl.Close()
	var out []*kgo.Record
	for len(want) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			tb.Fatalf("read %d records of %v before the timeout (%v); partitions left %v", len(out), topics, err, want)
		}
		fs.EachError(func(topic string, p int32, err error) {
			if o.Strict {
				tb.Fatalf("fetch %s/%d: %v", topic, p, err)
			}
			tb.Logf("fetch %s/%d: %v", topic, p, err)
		})
		fs.EachRecord(func(r *kgo.Record) {
			out = append(out, r)
			k := tp{r.Topic, r.Partition}
			if end, ok := want[k]; ok && r.Offset+1 >= end {
				delete(want, k)
			}
		})
	}
	return out
}

// Header returns the value of r's first header named key ("" without one).
func Header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}
