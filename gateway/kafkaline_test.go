package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/engine"
	"github.com/sluicehq/sluice/engine/codec"
	"github.com/sluicehq/sluice/gateway/kafka"
	"github.com/sluicehq/sluice/internal/e2e"
)

// TestKafkaReceiverPausesUnderPressure: while the latch holds, the Kafka
// line's receiver hands out nothing and fetching is paused; once it
// releases, every record comes, bad ones as dead letters naming their
// position.
func TestKafkaReceiverPausesUnderPressure(t *testing.T) {
	c := e2e.Kafka(t, e2e.KafkaConfig{Topics: []string{"in"}})
	brokers := c.ListenAddrs()
	src, err := kafka.NewSource(context.Background(), kafka.SourceConfig{Brokers: brokers, Group: "g", Topics: []string{"in"}, PollTimeout: 100 * time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(src.Close)
	var latched atomic.Bool
	latched.Store(true)
	r := newKafkaReceiver(src, "out", latched.Load, nil, slog.New(slog.DiscardHandler))

	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic("in"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	const n = 50
	var recs []*kgo.Record
	for i := range n {
		v := fmt.Sprintf(`{"i":%d}`, i)
		switch i {
		case 7:
			v = "not json"
		case 8:
			v = `[1,2]`
		}
		recs = append(recs, &kgo.Record{Value: []byte(v)})
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	ctx := context.Background()
	lim := engine.RecvLimits{MaxRecords: 1000, MaxBytes: 1 << 20}
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); {
		b, err := r.RecvLimited(ctx, lim)
		if err != nil {
			t.Fatal(err)
		}
		if len(b.Records) > 0 || len(b.DLQ) > 0 {
			t.Fatalf("records handed out while the pressure latch holds: %d", len(b.Records))
		}
	}
	if !src.Paused() {
		t.Fatal("the source is not paused")
	}
	latched.Store(false)
	var got, dead []string
	for deadline := time.Now().Add(15 * time.Second); len(got)+len(dead) < n; {
		if time.Now().After(deadline) {
			t.Fatalf("only %d records and %d dead letters after the release", len(got), len(dead))
		}
		b, err := r.RecvLimited(ctx, lim)
		if err != nil {
			t.Fatal(err)
		}
		for _, rec := range b.Records {
			if rec.Topic != "out" {
				t.Fatalf("record topic %q, want the line's default", rec.Topic)
			}
			got = append(got, string(rec.Value))
		}
		for _, d := range b.DLQ {
			dead = append(dead, d.Reason)
		}
		if len(b.Tokens) != len(b.Records)+len(b.DLQ) {
			t.Fatalf("%d tokens for %d records and %d dead letters", len(b.Tokens), len(b.Records), len(b.DLQ))
		}
		if err := r.Commit(ctx, b.Tokens); err != nil {
			t.Fatal(err)
		}
	}
	if src.Paused() || len(got) != n-2 || len(dead) != 2 {
		t.Fatalf("after the release: paused %v, %d records, dead letters %q", src.Paused(), len(got), dead)
	}
	if !strings.Contains(dead[0], "record in/") || !strings.Contains(dead[0], "is not valid JSON") || !strings.Contains(dead[1], "is not a JSON object") {
		t.Fatalf("dead letter reasons %q", dead)
	}
}

func TestCheckRecord(t *testing.T) {
	for v, want := range map[string]error{
		`{"a":1}`: nil, ` {"a":1}`: nil, `[1]`: errNotObject, `"s"`: errNotObject, `12`: errNotObject,
		`{"a":`: errNotJSON, ``: errNotJSON, `{"a":"\x01"}`: errNotJSON,
	} {
		if got := checkRecord([]byte(v)); got != want {
			t.Errorf("checkRecord(%q) = %v, want %v", v, got, want)
		}
	}
	if err := checkRecord([]byte(`{"ip":"a","\u0069p":"b"}`)); !errors.Is(err, codec.ErrDuplicateKey) || err.Error() != `duplicate key "ip"` {
		t.Errorf("repeated name: %v", err)
	}
}
