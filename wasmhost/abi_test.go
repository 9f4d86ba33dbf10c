package wasmhost

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/engine"
	"github.com/sluicehq/sluice/engine/codec"
)

// TestABIKitchen drives every host function through the kitchen guest.
func TestABIKitchen(t *testing.T) {
	h := newHost(t, Config{})
	addGuests(t, h, "kitchen")
	if err := h.SetPipeline("p", []string{"kitchen"}); err != nil {
		t.Fatal(err)
	}
	blob := strings.Repeat("x", 10000)
	in := jsonRecs(
		`{"op":"pass","v":1}`,
		`{"op":"dlq","id":"r1"}`,
		`{"op":"err"}`,
		`{"op":"split","items":[{"a":1},{"b":2},3]}`,
		`{"op":"meta"}`,
		`{"op":"edit","gone":1,"keep":"k"}`,
		`{"op":"big","blob":"`+blob+`"}`,
		`{"op":"raw","x":[1,2]}`,
		`{"op":"badjson"}`,
		`{"op":"str","s":"a\"b\u00e9","n":1}`,
	)
	in[3].Topic, in[3].Key = "orig", []byte("k3")
	in[3].Headers = []engine.Header{{Key: "h", Value: []byte("v")}}
	in[4].Key, in[4].Topic = []byte("key4"), "t4"
	in[4].Headers = []engine.Header{{Key: "h1", Value: []byte("one")}}
	orig4 := in[4].Headers

	out, dlq, err := h.Pipeline("p").Process(context.Background(), in, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantVals := []string{
		`{"op":"pass","v":1}`,
		`{"a":1}`, `{"b":2}`, `3`,
		`{"op":"meta"}`,
		`{"op":"edit","keep":"k","n":42,"a":{"b":{"c":true}},"echo":"true/42"}`,
		`{"op":"big","blob":"` + blob + `","blob_len":10000}`,
		`{"wrapped":{"op":"raw","x":[1,2]}}`,
		`{"op":"badjson","checked":"ok"}`,
		`{"op":"str","s":"a\"b\u00e9","n":1,"got":"a\"bé/true/false/false"}`,
	}
	if got := values(out); !equalStrings(got, wantVals) {
		t.Fatalf("out =\n%q\nwant\n%q", got, wantVals)
	}
	// Emitted records: routed by the guest, inherit key, headers and Tag.
	for i, r := range out[1:4] {
		if r.Topic != "items."+string(rune('0'+i)) || string(r.Key) != "k3" || r.Tag != 3 || len(r.Headers) != 1 {
			t.Fatalf("emitted %d: %+v", i, r)
		}
	}
	m := out[4]
	if len(m.Headers) != 2 || string(m.Headers[0].Value) != "replaced" || m.Headers[1].Key != "seen" ||
		string(m.Headers[1].Value) != "key=key4 h1=one/true topic=t4" {
		t.Fatalf("meta headers %+v", m.Headers)
	}
	if string(orig4[0].Value) != "one" {
		t.Fatal("set_header wrote into the input record's headers")
	}
	if len(dlq) != 2 || dlq[0].Reason != `bad r1` || dlq[1].Reason != "handler error" || dlq[0].Stage != "kitchen" || dlq[0].Record.Tag != 1 {
		t.Fatalf("dlq = %+v", dlq)
	}
}

// An unedited record is passed through as the same bytes: no copy.
func TestPassThroughKeepsBytes(t *testing.T) {
	h := newHost(t, Config{})
	addGuests(t, h, "noop", "filter")
	if err := h.SetPipeline("p", []string{"noop", "filter"}); err != nil {
		t.Fatal(err)
	}
	in := jsonRecs(`{"event":"a"}`, `{"event":"b"}`)
	p0 := &in[0].Value[0]
	out, _, err := h.Pipeline("p").Process(context.Background(), in, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 2 || &out[0].Value[0] != p0 {
		t.Fatal("pass-through copied the record's bytes")
	}
}

func TestRawRecordsAreNotParsed(t *testing.T) {
	h := newHost(t, Config{})
	addGuests(t, h, "filter", "enrich")
	if err := h.SetPipeline("p", []string{"filter", "enrich"}); err != nil {
		t.Fatal(err)
	}
	in := []engine.Record{{Value: []byte("\x00\x01 not json"), Format: engine.FormatRaw}}
	out, dlq, err := h.Pipeline("p").Process(context.Background(), in, nil)
	if err != nil {
		t.Fatal(err)
	}
	// enrich's Set fails with ErrInvalidJSON → the handler's error
	// dead-letters the record.
	if len(out) != 0 || len(dlq) != 1 || dlq[0].Reason != "sluice: invalid JSON" {
		t.Fatalf("out %q dlq %+v", values(out), dlq)
	}
}

// Pass-through allocates nothing per record: a batch of 1,000 records costs
// the same allocations as a batch of 10 (the call's context and wazero's
// per-call bookkeeping), and an empty pipeline allocates nothing at all.
func TestPassThroughAllocsPerBatchNotPerRecord(t *testing.T) {
	h := newHost(t, Config{PoolSize: 1})
	addGuests(t, h, "noop")
	ctx := context.Background()
	empty := h.Pipeline("empty")
	small, large := jsonRecs(`{"a":1}`), make([]engine.Record, 1000)
	for i := range large {
		large[i] = small[0]
	}
	if n := testing.AllocsPerRun(100, func() { empty.Process(ctx, large, nil) }); n != 0 {
		t.Fatalf("empty pipeline: %v allocs per batch", n)
	}
	if err := h.SetPipeline("p", []string{"noop"}); err != nil {
		t.Fatal(err)
	}
	p := h.Pipeline("p")
	p.Process(ctx, large, nil) // warm the instance's state to 1,000 records
	// AllocsPerRun counts every goroutine's allocations (the runtime's and
	// wazero's background work land in a longer call more often), so the
	// least of a few measurements is the call's own cost.
	least := func(recs []engine.Record) float64 {
		m := math.Inf(1)
		for range 5 {
			m = min(m, testing.AllocsPerRun(50, func() { p.Process(ctx, recs, nil) }))
		}
		return m
	}
	a10, a1000 := least(small), least(large)
	t.Logf("allocs per batch: 1 record %v, 1,000 records %v", a10, a1000)
	// A per-record allocation would show as ≥ 1,000 more for the large
	// batch; anything well under that is per-call bookkeeping.
	if a1000 > a10+100 || a10 > 16 {
		t.Fatalf("allocs per batch: 1 record %v, 1,000 records %v", a10, a1000)
	}
}

func TestBatchHandler(t *testing.T) {
	h := newHost(t, Config{})
	addGuests(t, h, "batcher")
	out, dlq := process(t, h, "p", []string{"batcher"}, `{"id":1}`, `{"id":2}`, `{"id":1}`, `{"id":3}`)
	want := []string{`{"id":1}`, `{"unique":3}`, `{"id":2}`, `{"id":3}`}
	if got := values(out); !equalStrings(got, want) || len(dlq) != 0 {
		t.Fatalf("out %q dlq %v", got, dlq)
	}
	if out[1].Topic != "summary" || out[1].Tag != 0 {
		t.Fatalf("summary %+v", out[1])
	}
	out, dlq = process(t, h, "p", []string{"batcher"}, `{"id":1}`, `{"id":2,"fail":true}`)
	if len(out) != 0 || len(dlq) != 2 || dlq[0].Reason != "batch rejected" || dlq[1].Reason != "batch rejected" {
		t.Fatalf("out %q dlq %+v", values(out), dlq)
	}
}

// TestGuestEnvironment: a guest's environment holds only its garbage
// collector's settings: GOGC and a soft memory limit of half its linear
// memory limit.
func TestGuestEnvironment(t *testing.T) {
	h := newHost(t, Config{PoolSize: 1, MemoryLimit: 32 << 20})
	addGuests(t, h, "kitchen")
	out, _ := process(t, h, "p", []string{"kitchen"}, `{"op":"env"}`)
	v, err := codec.Get(out[0].Value, codec.MustParsePath("env"))
	if want := `"GOGC=50 GOMEMLIMIT=16777216"`; err != nil || string(v) != want {
		t.Fatalf("env = %s (%v), want %s", v, err, want)
	}
}

// TestRandomGetIsRandom: random_get gives every instance its own random
// bytes (wazero's default source is a fixed seed: two fresh instances
// would read the same bytes).
func TestRandomGetIsRandom(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 2; i++ {
		h := newHost(t, Config{PoolSize: 1})
		addGuests(t, h, "kitchen")
		out, _ := process(t, h, "p", []string{"kitchen"}, `{"op":"rand"}`, `{"op":"rand"}`)
		for _, r := range out {
			v, err := codec.Get(r.Value, codec.MustParsePath("rand"))
			if err != nil || len(v) != 34 {
				t.Fatalf("rand = %s, %v", v, err)
			}
			if seen[string(v)] {
				t.Fatalf("random bytes repeated: %s", v)
			}
			seen[string(v)] = true
		}
	}
}
