package kafka

import (
	"context"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestScratch(t *testing.T) {
	c, _ := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, DefaultTopic))
	defer c.Close()
	var failing atomic.Bool
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if !failing.Load() {
			return nil, nil, false
		}
		t.Log("failing produce")
		preq := req.(*kmsg.ProduceRequest)
		resp := preq.ResponseKind().(*kmsg.ProduceResponse)
		for _, rt := range preq.Topics {
			st := kmsg.NewProduceResponseTopic()
			st.Topic = rt.Topic
			st.TopicID = rt.TopicID
			for _, rp := range rt.Partitions {
				sp := kmsg.NewProduceResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.ErrorCode = kerr.NotEnoughReplicas.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
	cl, _ := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.DefaultProduceTopic(DefaultTopic), kgo.AllowIdempotentProduceCancellation(),
		kgo.MetadataMinAge(250*time.Millisecond), kgo.WithLogger(kgo.BasicLogger(os.Stderr, kgo.LogLevelWarn, nil)))
	defer cl.Close()
	if err := cl.ProduceSync(context.Background(), &kgo.Record{Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	failing.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start := time.Now()
	err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("y")}).FirstErr()
	t.Log(time.Since(start), err)
	c.Close()
	for i := 0; i < 3; i++ {
		ctx, cancel = context.WithTimeout(context.Background(), time.Second)
		start = time.Now()
		err = cl.ProduceSync(ctx, &kgo.Record{Value: []byte("y")}).FirstErr()
		t.Log("down:", time.Since(start), err)
		cancel()
	}
}
