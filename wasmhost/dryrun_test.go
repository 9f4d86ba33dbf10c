package wasmhost

import (
	"context"
	"errors"
	"testing"
)

func TestDryRun(t *testing.T) {
	h := newHost(t, Config{IsolateTraps: -1, OnTrap: TrapFailBatch})
	addGuests(t, h, "filter", "route", "kitchen", "trapper")
	res, err := h.DryRun(context.Background(), []string{"filter", "kitchen", "route", "trapper"}, [][]byte{
		[]byte(`{"event":"heartbeat"}`),
		[]byte(`{"event":"click","user_id":"u1"}`),
		[]byte(`{"op":"split","items":[{"event":"a"},{"event":"b"}]}`),
		[]byte(`{"op":"dlq","id":"x"}`),
		[]byte(`{"trap":true,"id":9}`),
		[]byte(`{nope`),
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		d       Decision
		outputs int
		reason  string
		stage   string
	}{
		{Dropped, 0, "", ""},
		{Kept, 1, "", ""},
		{FannedOut, 2, "", ""},
		{DeadLettered, 0, "bad x", "kitchen"},
		// Dry runs always dead-letter a failed call, whatever OnTrap says.
		{DeadLettered, 0, "trap: trapper: wasm error: unreachable: panic: boom on 9", "trapper"},
		{DeadLettered, 0, "parse error: invalid JSON", "parse"},
	}
	for i, w := range want {
		e := res.Events[i]
		if e.Decision != w.d || e.Outputs != w.outputs || e.Reason != w.reason || e.Stage != w.stage {
			t.Errorf("event %d: %+v, want %+v", i, e, w)
		}
		if e.Duration <= 0 && i < 5 {
			t.Errorf("event %d: duration %v", i, e.Duration)
		}
	}
	if len(res.Records) != 3 {
		t.Fatalf("records %+v", res.Records)
	}
	r := res.Records[0]
	if r.Event != 1 || r.Topic != "events.click" || r.Key != "u1" || string(r.Value) != `{"event":"click","user_id":"u1"}` {
		t.Fatalf("record 0 %+v", r)
	}
	if r := res.Records[2]; r.Event != 2 || r.Topic != "events.b" || string(r.Value) != `{"event":"b"}` {
		t.Fatalf("record 2 %+v", r)
	}
	if res.PeakMemory < 1<<20 {
		t.Fatalf("peak memory %d", res.PeakMemory)
	}
	if _, err := h.DryRun(context.Background(), []string{"nope"}, nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown transform: %v", err)
	}
}
