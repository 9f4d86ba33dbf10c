package wasmhost

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/engine"
)

func TestAddRejects(t *testing.T) {
	h := newHost(t, Config{})
	filter := guest(t, "filter")
	tests := []struct {
		name string
		wasm []byte
		want string
	}{
		{"garbage", []byte("definitely not a module"), `"m" is not a WebAssembly module (bad magic or version header)`},
		{"empty", nil, `"m" is not a WebAssembly module`},
		{"truncated", filter[:5000], `compile "m": section`},
		{"truncated-tail", filter[:len(filter)-100], `compile "m":`},
		{"no-exports", wasmMagic, `"m" does not export sluice_abi_version`},
		{"wrong-abi", guest(t, "wrongabi"), `"m" was built for ABI version 2, this host implements ABI version 1`},
		{"forbidden-import", guest(t, "forbidden"), `"m" imports unknown function env.http_get: only sluice_v1 and WASI are allowed`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := h.Add(context.Background(), "m", tc.wasm)
			if !errors.Is(err, ErrInvalidModule) {
				t.Fatalf("err = %v, want ErrInvalidModule", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %q, want it to contain %q", err, tc.want)
			}
		})
	}
	if len(h.List()) != 0 {
		t.Fatalf("rejected modules were stored: %v", h.List())
	}
	if _, err := h.Add(context.Background(), "../etc", filter); !errors.Is(err, ErrBadName) {
		t.Fatalf("bad name: %v", err)
	}
}

// hooksRecorder counts hook events.
type hooksRecorder struct {
	mu       sync.Mutex
	calls    map[string]CallStats // summed
	ncalls   map[string]int       // OnCall calls
	traps    map[TrapKind]int
	recycles map[string]int
	inst     int
}

func newHooksRecorder() (*hooksRecorder, Hooks) {
	r := &hooksRecorder{calls: map[string]CallStats{}, ncalls: map[string]int{}, traps: map[TrapKind]int{}, recycles: map[string]int{}}
	return r, Hooks{
		OnCall: func(name string, s CallStats) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.ncalls[name]++
			c := r.calls[name]
			c.RecordsIn += s.RecordsIn
			c.RecordsOut += s.RecordsOut
			c.Dropped += s.Dropped
			c.DeadLettered += s.DeadLettered
			c.Emitted += s.Emitted
			c.Duration += s.Duration
			r.calls[name] = c
		},
		OnTrap: func(name string, k TrapKind) {
			r.mu.Lock()
			r.traps[k]++
			r.mu.Unlock()
		},
		OnRecycle: func(name, reason string) {
			r.mu.Lock()
			r.recycles[reason]++
			r.mu.Unlock()
		},
		OnInstantiate: func(string, time.Duration) {
			r.mu.Lock()
			r.inst++
			r.mu.Unlock()
		},
	}
}

func dlqReasons(dlq []engine.DLQEntry) []string {
	out := make([]string, len(dlq))
	for i, d := range dlq {
		out[i] = d.Reason
	}
	return out
}

func TestTrapIsolatedToDLQ(t *testing.T) {
	rec, hooks := newHooksRecorder()
	h := newHost(t, Config{Hooks: hooks})
	addGuests(t, h, "trapper")
	in := []string{`{"id":1}`, `{"id":2,"trap":true}`, `{"id":3}`, `{"id":4,"trap":true}`, `{"id":5}`}
	out, dlq := process(t, h, "p", []string{"trapper"}, in...)
	if got, want := values(out), []string{in[0], in[2], in[4]}; !equalStrings(got, want) {
		t.Fatalf("out = %q, want %q", got, want)
	}
	want := []string{
		"trap: trapper: wasm error: unreachable: panic: boom on 2",
		"trap: trapper: wasm error: unreachable: panic: boom on 4",
	}
	if got := dlqReasons(dlq); !equalStrings(got, want) {
		t.Fatalf("dlq reasons = %q, want %q", got, want)
	}
	if dlq[0].Stage != "trapper" || dlq[0].Record.Tag != 1 || string(dlq[0].Record.Value) != in[1] {
		t.Fatalf("dlq[0] = %+v", dlq[0])
	}
	// The host keeps serving on fresh instances.
	out, dlq = process(t, h, "p", []string{"trapper"}, `{"id":6}`)
	if len(out) != 1 || len(dlq) != 0 {
		t.Fatalf("after trap: out %d dlq %d", len(out), len(dlq))
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	// The batch trap plus one per isolated record.
	if rec.traps[TrapPanic] != 3 || rec.recycles["trap"] != 3 {
		t.Fatalf("traps %v recycles %v", rec.traps, rec.recycles)
	}
	if c := rec.calls["trapper"]; c.RecordsIn != 6 || c.RecordsOut != 4 || c.DeadLettered != 2 {
		t.Fatalf("call stats %+v", c)
	}
	info, _ := h.Get("trapper")
	if info.Traps != 3 {
		t.Fatalf("info traps %d", info.Traps)
	}
}

func TestTrapIsolationBounded(t *testing.T) {
	h := newHost(t, Config{IsolateTraps: 1})
	addGuests(t, h, "trapper")
	in := []string{`{"id":1,"trap":true}`, `{"id":2}`, `{"id":3,"trap":true}`}
	out, dlq := process(t, h, "p", []string{"trapper"}, in...)
	if len(out) != 0 {
		t.Fatalf("out = %q", values(out))
	}
	// Record 1 isolated; after one isolated trap the rest carry the
	// batch's reason (the first trap of the batch, on record 1).
	want := []string{
		"trap: trapper: wasm error: unreachable: panic: boom on 1",
		"trap: trapper: wasm error: unreachable: panic: boom on 1",
		"trap: trapper: wasm error: unreachable: panic: boom on 1",
	}
	if got := dlqReasons(dlq); !equalStrings(got, want) {
		t.Fatalf("dlq = %q", got)
	}
}

func TestTrapWholeCallWithoutIsolation(t *testing.T) {
	h := newHost(t, Config{IsolateTraps: -1})
	addGuests(t, h, "trapper")
	out, dlq := process(t, h, "p", []string{"trapper"}, `{"id":1}`, `{"id":2,"trap":true}`)
	if len(out) != 0 || len(dlq) != 2 {
		t.Fatalf("out %d dlq %d", len(out), len(dlq))
	}
	for _, d := range dlq {
		if d.Reason != "trap: trapper: wasm error: unreachable: panic: boom on 2" {
			t.Fatalf("reason %q", d.Reason)
		}
	}
}

func TestTrapFailBatch(t *testing.T) {
	h := newHost(t, Config{OnTrap: TrapFailBatch})
	addGuests(t, h, "trapper")
	if err := h.SetPipeline("p", []string{"trapper"}); err != nil {
		t.Fatal(err)
	}
	_, dlq, err := h.Pipeline("p").Process(context.Background(), jsonRecs(`{"id":1}`, `{"id":2,"trap":true}`), nil)
	var te *TrapError
	if !errors.As(err, &te) || !errors.Is(err, ErrTrap) || te.Kind != TrapPanic || te.Transform != "trapper" {
		t.Fatalf("err = %v", err)
	}
	if len(dlq) != 0 {
		t.Fatalf("dlq %d", len(dlq))
	}
	if te.Reason() != "trap: trapper: wasm error: unreachable: panic: boom on 2" {
		t.Fatalf("reason %q", te.Reason())
	}
}

func TestDeadlineInterruptsInfiniteLoop(t *testing.T) {
	rec, hooks := newHooksRecorder()
	h := newHost(t, Config{CallDeadline: 100 * time.Millisecond, CallDeadlinePerRecord: time.Millisecond, Hooks: hooks})
	addGuests(t, h, "looper")
	start := time.Now()
	out, dlq := process(t, h, "p", []string{"looper"}, `{"id":1}`, `{"id":2,"loop":true}`)
	elapsed := time.Since(start)
	if len(out) != 1 || string(out[0].Value) != `{"id":1}` {
		t.Fatalf("out = %q", values(out))
	}
	// Isolation reruns record 2 alone: 100ms + 1 record × 1ms.
	if got := dlqReasons(dlq); !equalStrings(got, []string{"deadline: looper exceeded 101ms"}) {
		t.Fatalf("dlq = %q", got)
	}
	if elapsed > 5*time.Second {
		t.Fatalf("took %v", elapsed)
	}
	out, _ = process(t, h, "p", []string{"looper"}, `{"id":3}`)
	if len(out) != 1 {
		t.Fatal("host stopped serving after a deadline")
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.traps[TrapDeadline] != 2 || rec.recycles["deadline"] != 2 {
		t.Fatalf("traps %v recycles %v", rec.traps, rec.recycles)
	}
}

func TestGuestOutOfMemory(t *testing.T) {
	h := newHost(t, Config{MemoryLimit: 16 << 20, IsolateTraps: -1, CallDeadline: 5 * time.Second})
	addGuests(t, h, "hog")
	out, dlq := process(t, h, "p", []string{"hog"}, `{"id":1}`, `{"hog":true}`)
	if len(out) != 0 {
		t.Fatalf("out = %q", values(out))
	}
	if got := dlqReasons(dlq); !equalStrings(got, []string{"oom: hog: out of memory (limit 16 MiB)", "oom: hog: out of memory (limit 16 MiB)"}) {
		t.Fatalf("dlq = %q", got)
	}
	out, _ = process(t, h, "p", []string{"hog"}, `{"id":3}`)
	if len(out) != 1 {
		t.Fatal("host stopped serving after an OOM")
	}
	info, _ := h.Get("hog")
	if info.PeakMemory < 8<<20 || info.PeakMemory > 16<<20 {
		t.Fatalf("peak memory %d", info.PeakMemory)
	}
}

func TestRecycleAboveHighWater(t *testing.T) {
	rec, hooks := newHooksRecorder()
	h := newHost(t, Config{RecycleAbove: 1, Hooks: hooks, PoolSize: 1})
	addGuests(t, h, "filter")
	for i := 0; i < 3; i++ {
		out, _ := process(t, h, "p", []string{"filter"}, `{"event":"heartbeat"}`, `{"event":"x"}`)
		if len(out) != 1 {
			t.Fatalf("out %d", len(out))
		}
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	// Every call recycles its instance: Add's validation instance (closed)
	// plus one per call.
	if rec.recycles["memory"] != 3 || rec.inst != 4 {
		t.Fatalf("recycles %v instantiations %d", rec.recycles, rec.inst)
	}
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestGuestOutputGoesToLogRateLimited(t *testing.T) {
	var buf syncBuffer
	h := newHost(t, Config{Logger: slog.New(slog.NewTextHandler(&buf, nil)), GuestLogRate: 1, IsolateTraps: -1})
	addGuests(t, h, "trapper")
	process(t, h, "p", []string{"trapper"}, `{"id":7,"trap":true}`)
	log := buf.String()
	if !strings.Contains(log, `msg="guest output" transform=trapper stream=stderr line="panic: boom on 7`) {
		t.Fatalf("log lacks the guest's panic:\n%s", log)
	}
	// A panic prints a stack trace of many lines; at 1 line/s (burst 2)
	// only two reach the log.
	if n := strings.Count(log, `msg="guest output"`); n != 2 {
		t.Fatalf("%d guest lines logged, want 2 (rate-limited):\n%s", n, log)
	}
}

// The caller's own deadline (shutdown) fails the batch with its error: it is
// not the guest's fault, so nothing is dead-lettered.
func TestCallerContextDone(t *testing.T) {
	h := newHost(t, Config{})
	addGuests(t, h, "looper")
	if err := h.SetPipeline("p", []string{"looper"}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, _, err := h.Pipeline("p").Process(ctx, jsonRecs(`{"loop":true}`), nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("caller's deadline: err = %v, want context.DeadlineExceeded", err)
	}
}
