package kafka

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestDevBroker checks with a plain kgo client (not the Sink) that the seeded
// topics exist with DevBrokerPartitions partitions, that an unknown topic is
// auto-created, and that produce and consume work.
func TestDevBroker(t *testing.T) {
	d := startBroker(t)
	if d.Addr() == "" || d.Addr() == "127.0.0.1:0" {
		t.Fatalf("Addr %q is not the bound address", d.Addr())
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(d.Addr()), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	td, err := kadm.NewClient(cl).ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, topic := range []string{DefaultTopic, DefaultDLQTopic} {
		if dt, ok := td[topic]; !ok || dt.Err != nil || len(dt.Partitions) != DevBrokerPartitions {
			t.Fatalf("topic %s: %+v", topic, dt)
		}
	}
	if err := cl.ProduceSync(ctx,
		&kgo.Record{Topic: DefaultTopic, Value: []byte("a")},
		&kgo.Record{Topic: "auto.created", Value: []byte("b")},
	).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if got := consume(t, d.Brokers(), "auto.created", 1); string(got[0].Value) != "b" {
		t.Fatalf("consumed %q", got[0].Value)
	}
	if got := consume(t, d.Brokers(), DefaultTopic, 1); string(got[0].Value) != "a" {
		t.Fatalf("consumed %q", got[0].Value)
	}
}

// TestDevBrokerPersistence writes through a Sink, closes the broker and
// starts a new one on the same data directory: every record is still there.
func TestDevBrokerPersistence(t *testing.T) {
	dir := t.TempDir()
	topics := []string{DefaultTopic, DefaultDLQTopic}
	d, err := StartDevBroker("127.0.0.1:0", topics, dir)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSink(context.Background(), Config{Brokers: d.Brokers()}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Write(context.Background(), records(50)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	d.Close()
	d.Close() // idempotent

	d2, err := StartDevBroker("127.0.0.1:0", topics, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d2.Close)
	got := consume(t, d2.Brokers(), DefaultTopic, 50)
	seen := map[string]bool{}
	for _, r := range got {
		seen[string(r.Value)] = true
	}
	for i := range 50 {
		if !seen[string(event(i))] {
			t.Fatalf("record %d lost across restart", i)
		}
	}
}

func TestStartDevBrokerErrors(t *testing.T) {
	if _, err := StartDevBroker("no-port", nil, ""); err == nil {
		t.Fatal("accepted an address without a port")
	}
	if _, err := StartDevBroker("127.0.0.1:0", []string{"bad/topic"}, ""); err == nil {
		t.Fatal("accepted a bad topic name")
	}
	d := startBroker(t)
	if d2, err := StartDevBroker(d.Addr(), nil, ""); err == nil {
		d2.Close()
		t.Fatal("started twice on one address")
	}
}
