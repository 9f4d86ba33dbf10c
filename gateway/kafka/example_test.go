package kafka_test

import (
	"context"
	"fmt"

	"github.com/sluicehq/sluice/engine"
	"github.com/sluicehq/sluice/gateway/kafka"
)

// Start an embedded broker, write a batch through a Sink, and route a dead
// letter: what `sluice run --dev` does on one machine.
func Example() {
	broker, err := kafka.StartDevBroker("127.0.0.1:0", []string{kafka.DefaultTopic, kafka.DefaultDLQTopic}, "")
	if err != nil {
		panic(err)
	}
	defer broker.Close()

	var produced int
	sink, err := kafka.NewSink(context.Background(), kafka.Config{
		Brokers:  broker.Brokers(),
		Observer: kafka.ObserverFunc(func(s kafka.WriteStats) { produced += s.Records - s.Failed }),
	}, nil)
	if err != nil {
		panic(err)
	}
	defer sink.Close()

	ctx := context.Background()
	err = sink.Write(ctx, []engine.Record{
		{Value: []byte(`{"type":"click"}`)},
		{Value: []byte(`{"type":"view"}`), Key: []byte("user-1")},
	})
	fmt.Println("write:", err)
	err = sink.WriteDLQ(ctx, []engine.DLQEntry{{Record: engine.Record{Value: []byte(`{"type":`)}, Reason: "parse error", Stage: "parse"}})
	fmt.Println("dead letter:", err)
	fmt.Println("acknowledged:", produced)
	// Output:
	// write: <nil>
	// dead letter: <nil>
	// acknowledged: 3
}
