package kafka

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/sluicehq/sluice/engine"
	"github.com/sluicehq/sluice/internal/e2e"
)

// javaMurmur2 are the murmur2 hashes of Apache Kafka's own test
// (clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java,
// testMurmur2): what the Java client computes for these keys.
var javaMurmur2 = map[string]int32{
	"21":                         -973932308,
	"foobar":                     -790332482,
	"a-little-bit-long-string":   -985981536,
	"a-little-bit-longer-string": -1486304829,
	"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
	"abc": 479470107,
}

// javaPartition is the Java client's default partitioner for a keyed
// record: Utils.toPositive(Utils.murmur2(key)) % numPartitions.
func javaPartition(hash int32, partitions int) int32 {
	return int32(int(uint32(hash)&0x7fffffff) % partitions)
}

// TestSinkKeyPartitioningMatchesJava produces keyed records through the
// Sink to topics of several partition counts and checks that each landed
// on the partition the Java producer would have chosen.
func TestSinkKeyPartitioningMatchesJava(t *testing.T) {
	counts := map[string]int{"p7": 7, "p12": 12, "p31": 31}
	opts := []kfake.Opt{}
	for topic, n := range counts {
		opts = append(opts, kfake.SeedTopics(int32(n), topic))
	}
	c := e2e.Kafka(t, e2e.KafkaConfig{Topics: []string{DefaultTopic, DefaultDLQTopic}, Opts: opts})
	brokers := c.ListenAddrs()
	s := newSink(t, Config{Brokers: brokers, DialTimeout: 3 * time.Second})
	var recs []engine.Record
	for topic := range counts {
		for key := range javaMurmur2 {
			// Several records per key: a key sticks to its partition.
			for range 3 {
				recs = append(recs, engine.Record{Topic: topic, Key: []byte(key), Value: []byte(`{"k":"` + key + `"}`)})
			}
		}
	}
	if err := s.Write(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	distinct := map[int32]bool{}
	got := e2e.ReadTopics(t, brokers, e2e.ReadOptions{Strict: true, Timeout: 20 * time.Second}, "p7", "p12", "p31")
	if len(got) != len(recs) {
		t.Fatalf("read %d records, want %d", len(got), len(recs))
	}
	for _, r := range got {
		want := javaPartition(javaMurmur2[string(r.Key)], counts[r.Topic])
		if r.Partition != want {
			t.Errorf("key %q in %s (%d partitions): partition %d, the Java client picks %d", r.Key, r.Topic, counts[r.Topic], r.Partition, want)
		}
		if r.Topic == "p31" {
			distinct[r.Partition] = true
		}
	}
	if len(distinct) < 4 {
		t.Fatalf("the keys spread over only %d partitions of p31: the test would not tell partitioners apart", len(distinct))
	}
}
