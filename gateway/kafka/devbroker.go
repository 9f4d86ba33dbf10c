package kafka

import (
	"errors"
	"fmt"
	"net"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
)

// DevBrokerPartitions is the partition count of every topic on a DevBroker,
// seeded or auto-created.
const DevBrokerPartitions = 3

// DevBroker is an embedded single-broker Kafka (franz-go's kfake) for
// `sluice run --dev` and tests: any Kafka client can produce to it and
// consume from it, consumer groups included. Topics are auto-created on first
// use. It is not a production broker: one node, no replication, and without
// a data directory everything lives in memory.
type DevBroker struct {
	c       *kfake.Cluster
	addr    string
	dataDir string
	once    sync.Once
}

// StartDevBroker starts one broker listening on addr ("127.0.0.1:9092";
// port 0 picks a free one, see Addr) with topics created up front
// (DevBrokerPartitions partitions each; pass the default and DLQ topics).
//
// When dataDir is not "", partitions are written to that directory and
// reloaded by the next StartDevBroker on the same directory. Topic metadata
// is only saved on a clean Close, so topics that were auto-created are lost
// after a crash; topics passed here are re-created at every start and their
// data found again, which is why the known topics must be passed.
func StartDevBroker(addr string, topics []string, dataDir string) (*DevBroker, error) {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, fmt.Errorf("kafka: dev broker address %q: %w", addr, err)
	}
	for _, t := range topics {
		if err := validTopic(t); err != nil {
			return nil, fmt.Errorf("kafka: dev broker: %w", err)
		}
	}
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		// kfake listens on 127.0.0.1:<port>; listen on exactly the address
		// asked for instead.
		kfake.ListenFn(func(network, _ string) (net.Listener, error) { return net.Listen(network, addr) }),
		kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(DevBrokerPartitions),
		kfake.ClusterID("sluice-dev"),
	}
	if len(topics) > 0 {
		opts = append(opts, kfake.SeedTopics(DevBrokerPartitions, topics...))
	}
	if dataDir != "" {
		opts = append(opts, kfake.DataDir(dataDir))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka: start dev broker on %s: %w", addr, err)
	}
	// A reloaded data directory skips the seeds: create what is missing.
	for _, t := range topics {
		if err := c.CreateTopic(t, DevBrokerPartitions, nil); err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			c.Close()
			return nil, fmt.Errorf("kafka: dev broker: create topic %q: %w", t, err)
		}
	}
	return &DevBroker{c: c, addr: c.ListenAddrs()[0], dataDir: dataDir}, nil
}

// Addr returns the address the broker listens on ("127.0.0.1:40123"): the
// seed broker for clients.
func (d *DevBroker) Addr() string { return d.addr }

// Brokers returns Addr as a seed list, for Config.Brokers.
func (d *DevBroker) Brokers() []string { return []string{d.addr} }

// Close stops the broker; with a data directory it saves the topic metadata
// first so the next start finds everything. Close is idempotent.
func (d *DevBroker) Close() {
	d.once.Do(d.c.Close)
}
