package wasmhost

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"
)

// idleMemory sums the current memory sizes of the idle instances of every
// version, read from the instances themselves. The caller must have no
// call in flight.
func idleMemory(tb testing.TB, h *Host) int64 {
	tb.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	var sum int64
	for _, t := range h.transforms {
		for _, v := range t.versions {
			n := len(v.pool)
			if n != len(v.slots) {
				tb.Fatalf("%s: %d idle of %d live instances: a call is in flight", v.name, n, len(v.slots))
			}
			for range n {
				in := <-v.pool
				sum += int64(in.mem.Size())
				v.pool <- in
			}
		}
	}
	return sum
}

// checkGuestMemory fails unless GuestMemoryBytes equals the sum of the idle
// instances' memory, and returns it.
func checkGuestMemory(tb testing.TB, h *Host) int64 {
	tb.Helper()
	got, want := h.GuestMemoryBytes(), idleMemory(tb, h)
	if got != want {
		tb.Fatalf("GuestMemoryBytes = %d, instances hold %d", got, want)
	}
	return got
}

func TestGuestMemoryBytes(t *testing.T) {
	h := newHost(t, Config{PoolSize: 2, MemoryLimit: 64 << 20, IsolateTraps: -1, CallDeadline: 10 * time.Second})
	if got := h.GuestMemoryBytes(); got != 0 {
		t.Fatalf("empty host: %d bytes", got)
	}

	// Add validates the module on an instance it closes; the first batch
	// starts one.
	addGuests(t, h, "kitchen")
	if got := checkGuestMemory(t, h); got != 0 {
		t.Fatalf("after Add: %d bytes", got)
	}
	process(t, h, "p", []string{"kitchen"}, `{"op":"none"}`)
	one := checkGuestMemory(t, h)
	if one < 1<<20 {
		t.Fatalf("one kitchen instance: %d bytes", one)
	}

	// A big batch grows the instance's memory.
	blob := `{"op":"raw","blob":"` + strings.Repeat("x", 2<<20) + `"}`
	docs := []string{blob, blob, blob, blob}
	out, dlq := process(t, h, "p", []string{"kitchen"}, docs...)
	if len(out) != len(docs) || len(dlq) != 0 {
		t.Fatalf("out %d dlq %q", len(out), dlqReasons(dlq))
	}
	grown := checkGuestMemory(t, h)
	if grown < one+8<<20 {
		t.Fatalf("after an 8 MiB batch: %d bytes, was %d", grown, one)
	}

	// Two batches at once need a second instance.
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range 2 {
		wg.Go(func() {
			<-start
			if _, _, err := h.Pipeline("p").Process(context.Background(), jsonRecs(docs...), nil); err != nil {
				t.Error(err)
			}
		})
	}
	close(start)
	wg.Wait()
	both := checkGuestMemory(t, h)
	if both < grown {
		t.Fatalf("with more instances: %d bytes, was %d", both, grown)
	}

	// A trapped instance is discarded: its memory no longer counts. (Add
	// closes the instance it validated the hog on.)
	addGuests(t, h, "hog")
	if got := checkGuestMemory(t, h); got != both {
		t.Fatalf("after adding the hog: %d bytes, want %d", got, both)
	}
	_, dlq = process(t, h, "h", []string{"hog"}, `{"hog":true}`)
	if len(dlq) != 1 {
		t.Fatalf("hog: dlq %d", len(dlq))
	}
	if got := checkGuestMemory(t, h); got != both {
		t.Fatalf("after hog's trap: %d bytes, want %d (kitchen alone)", got, both)
	}

	// Deleting a transform closes its instances.
	if err := h.DeletePipeline("p"); err != nil {
		t.Fatal(err)
	}
	if err := h.Delete("kitchen"); err != nil {
		t.Fatal(err)
	}
	if got := h.GuestMemoryBytes(); got != 0 {
		t.Fatalf("after Delete: %d bytes", got)
	}
}

func TestGuestMemoryBytesRecycleAndClose(t *testing.T) {
	h := newHost(t, Config{PoolSize: 4, RecycleAbove: -1})
	addGuests(t, h, "noop")
	process(t, h, "warm", []string{"noop"}, `{}`)
	h.cfg.RecycleAbove = 1
	first := checkGuestMemory(t, h)
	if first <= 0 {
		t.Fatalf("one instance: %d bytes", first)
	}
	// Every call recycles its instance (memory above 1 byte): the total
	// stays that of the instances left, never accumulating.
	if err := h.SetPipeline(DefaultPipeline, []string{"noop"}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 5 {
				if _, _, err := h.Pipeline(DefaultPipeline).Process(context.Background(), jsonRecs(`{"a":1}`), nil); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	checkGuestMemory(t, h)
	if err := h.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := h.GuestMemoryBytes(); got != 0 {
		t.Fatalf("after Close: %d bytes", got)
	}
}

// TestIdleInstancesReaped: instances started for a burst are closed once
// idle for IdleTimeout, down to one per version; the pool grows again on
// demand.
func TestIdleInstancesReaped(t *testing.T) {
	h := newHost(t, Config{PoolSize: 3, IdleTimeout: 100 * time.Millisecond})
	addGuests(t, h, "noop")
	v := h.transforms["noop"].current
	ctx := context.Background()
	var ins []*instance
	for i := 0; i < 3; i++ {
		in, err := v.acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ins = append(ins, in)
	}
	for _, in := range ins {
		v.release(in, false)
	}
	if n := len(v.slots); n != 3 {
		t.Fatalf("%d live instances after a burst of 3", n)
	}
	three := h.GuestMemoryBytes()
	deadline := time.Now().Add(5 * time.Second)
	for len(v.slots) > 1 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := len(v.slots); n != 1 {
		t.Fatalf("%d live instances after idling, want 1", n)
	}
	if one := checkGuestMemory(t, h); one*3 > three+three/10 {
		t.Fatalf("guest memory %d after reaping, %d with three instances", one, three)
	}
	// One instance stays however long the pool idles, and serves.
	time.Sleep(300 * time.Millisecond)
	if n := len(v.slots); n != 1 {
		t.Fatalf("%d live instances, want the last one kept", n)
	}
	out, _ := process(t, h, "p", []string{"noop"}, `{"a":1}`)
	if len(out) != 1 {
		t.Fatalf("out %d", len(out))
	}
}
