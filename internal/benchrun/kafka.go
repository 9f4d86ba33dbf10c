package main

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// readAllTopics reads every record of every topic of the broker, from the
// start up to the end offsets as of the call. Records of defaultTopic are
// returned with the topic "".
func readAllTopics(broker, defaultTopic string, timeout time.Duration) ([]written, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	admin, err := kgo.NewClient(kgo.SeedBrokers(broker))
	if err != nil {
		return nil, err
	}
	ends, err := kadm.NewClient(admin).ListEndOffsets(ctx)
	admin.Close()
	if err != nil {
		return nil, fmt.Errorf("list end offsets: %w", err)
	}
	type tp struct {
		topic string
		p     int32
	}
	want := map[tp]int64{}
	var topics []string
	var listErr error
	ends.Each(func(l kadm.ListedOffset) {
		if l.Err != nil {
			listErr = fmt.Errorf("end offset of %s/%d: %w", l.Topic, l.Partition, l.Err)
			return
		}
		if l.Offset > 0 {
			if _, ok := want[tp{l.Topic, -1}]; !ok {
				want[tp{l.Topic, -1}] = 0 // marks the topic as listed
				topics = append(topics, l.Topic)
			}
			want[tp{l.Topic, l.Partition}] = l.Offset
		}
	})
	if listErr != nil {
		return nil, listErr
	}
	for _, t := range topics {
		delete(want, tp{t, -1})
	}
	if len(want) == 0 {
		return nil, nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxBytes(64<<20))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	var out []written
	for len(want) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("read %d records of %v within %v; partitions left %v", len(out), topics, timeout, want)
		}
		var fetchErr error
		fs.EachError(func(topic string, p int32, err error) {
			fetchErr = fmt.Errorf("fetch %s/%d: %w", topic, p, err)
		})
		if fetchErr != nil {
			return nil, fetchErr
		}
		fs.EachRecord(func(r *kgo.Record) {
			w := written{topic: r.Topic, key: string(r.Key), hasKey: r.Key != nil, value: r.Value}
			if w.topic == defaultTopic {
				w.topic = ""
			}
			out = append(out, w)
			k := tp{r.Topic, r.Partition}
			if end, ok := want[k]; ok && r.Offset+1 >= end {
				delete(want, k)
			}
		})
	}
	return out, nil
}
