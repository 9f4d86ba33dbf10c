package wasmhost

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestMmapAllocator checks the off-heap linear memory: a reservation of
// the maximum that grows in place, refuses past it, and on Free releases
// its pages at once (a late access reads zeros) and unmaps after the
// grace.
func TestMmapAllocator(t *testing.T) {
	defer func(g time.Duration) { unmapGrace = g }(unmapGrace)
	unmapGrace = 50 * time.Millisecond
	before := mapped.Load()
	lm := mmapAllocator{}.Allocate(1<<16, 16<<20)
	m, ok := lm.(*mmapMemory)
	if !ok {
		t.Fatalf("Allocate gave %T, want a mapping", lm)
	}
	if got := mapped.Load() - before; got != 16<<20 {
		t.Fatalf("mapped %d bytes, want the maximum", got)
	}
	b := lm.Reallocate(1 << 16)
	if len(b) != 1<<16 || b[0] != 0 || b[len(b)-1] != 0 {
		t.Fatalf("first reallocate: len %d", len(b))
	}
	b[100] = 7
	grown := lm.Reallocate(4 << 20)
	if len(grown) != 4<<20 || &grown[0] != &b[0] || grown[100] != 7 {
		t.Fatal("growing moved or lost the memory")
	}
	if lm.Reallocate(16<<20+1) != nil {
		t.Fatal("grew past the maximum")
	}
	lm.Free()
	if grown[100] != 0 {
		t.Fatal("freed pages still hold their bytes")
	}
	grown[200] = 1 // a late write faults in a fresh page, no crash
	if m.Reallocate(1) != nil {
		t.Fatal("reallocate after free")
	}
	// Unmapped after the grace. (mapped counts the instances other tests
	// map and free meanwhile too: this mapping's own state is waited for.)
	deadline := time.Now().Add(5 * time.Second)
	for !m.unmapped.Load() {
		if time.Now().After(deadline) {
			t.Fatalf("not unmapped %v after a grace of %v", 5*time.Second, unmapGrace)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestGuestsOffHeap checks that instances' memory is the allocator's
// (outside the Go heap) and that the host reports it so.
func TestGuestsOffHeap(t *testing.T) {
	h := newHost(t, Config{PoolSize: 1})
	addGuests(t, h, "noop")
	before := mapped.Load()
	process(t, h, "p", []string{"noop"}, `{"a":1}`)
	if f := h.FixedMemory(); !f.GuestsOffHeap || f.Guests <= 0 {
		t.Fatalf("fixed memory %+v: want guests off the heap", f)
	}
	if mapped.Load() <= before {
		t.Fatal("the instance's memory is not a mapping")
	}
}

// TestCloseDuringCall closes the host while a guest loops writing its
// memory: the call fails with ErrClosed (no record is dead-lettered), and
// the process survives the instance's memory being freed under it.
func TestCloseDuringCall(t *testing.T) {
	h := newHost(t, Config{CallDeadline: 10 * time.Second})
	addGuests(t, h, "looper")
	if err := h.SetPipeline("p", []string{"looper"}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, dlq, err := h.Pipeline("p").Process(context.Background(), jsonRecs(`{"loop":true}`), nil)
		if len(dlq) != 0 {
			t.Errorf("dead letters %q", dlqReasons(dlq))
		}
		done <- err
	}()
	time.Sleep(200 * time.Millisecond)
	if err := h.Close(context.Background()); err != nil {
		t.Logf("close: %v", err)
	}
	select {
	case err := <-done:
		// Not a trap of the guest's: no record is dead-lettered for it.
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("the call ended with %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the call outlived the host by 5 s")
	}
}
