package gateway

import (
	"context"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/engine"
)

func TestCapRecords(t *testing.T) {
	p := capRecords{max: 10}
	recs := []engine.Record{
		{Value: []byte("small"), Tag: 1},
		{Value: []byte(strings.Repeat("v", 200<<10)), Tag: 2},
		{Value: []byte("12345"), Key: []byte("123456"), Tag: 3}, // 11 bytes with its key
		{Value: []byte("tiny"), Tag: 4},
	}
	out, dlq, err := p.Process(context.Background(), recs, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 2 || out[0].Tag != 1 || out[1].Tag != 4 {
		t.Fatalf("kept %+v", out)
	}
	if len(dlq) != 2 || dlq[0].Record.Tag != 2 || dlq[1].Record.Tag != 3 || dlq[0].Stage != "sink" ||
		!strings.Contains(dlq[0].Reason, "too large for Kafka: 204800 bytes") || len(dlq[0].Record.Value) != maxDeadLetterValue {
		t.Fatalf("dead letters %+v", dlq)
	}
	// Nothing too large: the same slice back, no allocation.
	small := recs[:1]
	if allocs := testing.AllocsPerRun(100, func() { out, _, _ = p.Process(context.Background(), small, nil) }); allocs != 0 || &out[0] != &small[0] {
		t.Fatalf("pass-through allocates %v", allocs)
	}
}

// BenchmarkCapRecords is the record cap's cost on the produce path when no
// record is too large (the common case): a size check per record.
func BenchmarkCapRecords(b *testing.B) {
	recs := make([]engine.Record, 1000)
	for i := range recs {
		recs[i] = engine.Record{Value: []byte(`{"user":{"id":12345,"country":"FR"},"event":"click","ts":1733040000}`), Key: []byte("user-12345")}
	}
	p := capRecords{max: 1 << 20}
	b.ReportAllocs()
	for b.Loop() {
		if out, _, _ := p.Process(context.Background(), recs, nil); len(out) != len(recs) {
			b.Fatal("records lost")
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(recs)), "ns/record")
}
