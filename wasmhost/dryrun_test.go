package wasmhost

import (
	"context"
	"errors"
	"reflect"
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

// poolState is what production traffic sees of a transform: its pool, its
// counters, its cost estimate.
type poolState struct {
	idle, live int
	info       Info
	cost       int64
}

func statesOf(tb testing.TB, h *Host, names ...string) map[string]poolState {
	tb.Helper()
	out := map[string]poolState{}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, n := range names {
		t, err := h.lookup(n)
		if err != nil {
			tb.Fatal(err)
		}
		v := t.current
		out[n] = poolState{idle: len(v.pool), live: len(v.slots), info: v.info(true), cost: v.cost.Load()}
	}
	return out
}

// TestDryRunLeavesProductionAlone: a dry run, traps and aborts included,
// starts no pool instance, takes none from a pool, calls no hook, moves no
// counter, peak memory or cost of the transforms, and leaves the host's
// guest memory as it found it; it reports the peak memory of its own
// instances.
func TestDryRunLeavesProductionAlone(t *testing.T) {
	rec, hooks := newHooksRecorder()
	h := newHost(t, Config{Hooks: hooks, PoolSize: 2})
	names := []string{"filter", "kitchen", "trapper"}
	addGuests(t, h, names...)
	// Production traffic first, so the pools hold idle instances.
	out, dlq := process(t, h, "p", names, `{"event":"click","id":1}`, `{"event":"heartbeat"}`)
	if len(out) != 1 || len(dlq) != 0 {
		t.Fatalf("production run: %d out, %d dead letters", len(out), len(dlq))
	}
	rec.mu.Lock()
	calls, inst := len(rec.ncalls), rec.inst
	ncalls := map[string]int{}
	for k, v := range rec.ncalls {
		ncalls[k] = v
	}
	rec.mu.Unlock()
	before := statesOf(t, h, names...)
	memBefore := h.GuestMemoryBytes()
	for _, n := range names {
		if s := before[n]; s.idle != 1 || s.live != 1 || s.info.Calls != 1 {
			t.Fatalf("%s before the dry run: %+v", n, s)
		}
	}

	res, err := h.DryRun(context.Background(), names, [][]byte{
		[]byte(`{"event":"click","id":1}`),
		[]byte(`{"id":2,"trap":true}`), // trapper traps: its dry instance is replaced
		[]byte(`{"op":"dlq","id":"x"}`),
		[]byte(`{"id":3}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	if d := res.Events[1]; d.Decision != DeadLettered || d.Stage != "trapper" {
		t.Fatalf("trapping event: %+v", d)
	}
	if d := res.Events[3]; d.Decision != Kept {
		t.Fatalf("event after the trap: %+v", d)
	}
	if res.PeakMemory < 1<<20 {
		t.Fatalf("dry run peak memory %d", res.PeakMemory)
	}

	after := statesOf(t, h, names...)
	for _, n := range names {
		if !reflect.DeepEqual(after[n], before[n]) {
			t.Errorf("%s: production state moved by a dry run:\n before %+v\n after  %+v", n, before[n], after[n])
		}
	}
	rec.mu.Lock()
	if len(rec.ncalls) != calls || rec.inst != inst || len(rec.traps) != 0 || len(rec.recycles) != 0 {
		t.Errorf("hooks called by a dry run: calls %v (before %v), instantiations %d (before %d), traps %v, recycles %v",
			rec.ncalls, ncalls, rec.inst, inst, rec.traps, rec.recycles)
	}
	for k, v := range rec.ncalls {
		if ncalls[k] != v {
			t.Errorf("OnCall of %s: %d calls, %d before the dry run", k, v, ncalls[k])
		}
	}
	rec.mu.Unlock()
	if m := h.GuestMemoryBytes(); m != memBefore {
		t.Errorf("guest memory %d after the dry run, %d before", m, memBefore)
	}
}
