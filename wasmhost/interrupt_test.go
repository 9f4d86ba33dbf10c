package wasmhost

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"
)

// startLoop is a module with the ABI's exports whose start function loops
// forever:
//
//	(module
//	  (memory (export "memory") 1)
//	  (func $spin (loop (br 0)))
//	  (func (export "sluice_abi_version") (result i32) (i32.const 1))
//	  (func (export "sluice_process") (param i32) (result i32) (i32.const 0))
//	  (start $spin))
var startLoop = []byte{
	0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x0d, 0x03, 0x60,
	0x00, 0x00, 0x60, 0x00, 0x01, 0x7f, 0x60, 0x01, 0x7f, 0x01, 0x7f, 0x03,
	0x04, 0x03, 0x00, 0x01, 0x02, 0x05, 0x03, 0x01, 0x00, 0x01, 0x07, 0x30,
	0x03, 0x06, 0x6d, 0x65, 0x6d, 0x6f, 0x72, 0x79, 0x02, 0x00, 0x12, 0x73,
	0x6c, 0x75, 0x69, 0x63, 0x65, 0x5f, 0x61, 0x62, 0x69, 0x5f, 0x76, 0x65,
	0x72, 0x73, 0x69, 0x6f, 0x6e, 0x00, 0x01, 0x0e, 0x73, 0x6c, 0x75, 0x69,
	0x63, 0x65, 0x5f, 0x70, 0x72, 0x6f, 0x63, 0x65, 0x73, 0x73, 0x00, 0x02,
	0x08, 0x01, 0x00, 0x0a, 0x13, 0x03, 0x07, 0x00, 0x03, 0x40, 0x0c, 0x00,
	0x0b, 0x0b, 0x04, 0x00, 0x41, 0x01, 0x0b, 0x04, 0x00, 0x41, 0x00, 0x0b,
}

// TestStartFunctionLoopIsStopped: a module whose start function never
// returns is stopped by the host's loop checks and refused, not left
// spinning (wazero itself runs start functions without any check here).
func TestStartFunctionLoopIsStopped(t *testing.T) {
	defer func(d time.Duration) { instantiateTimeout = d }(instantiateTimeout)
	instantiateTimeout = 200 * time.Millisecond
	h := newHost(t, Config{})
	start := time.Now()
	_, err := h.Add(context.Background(), "spinner", startLoop)
	if !errors.Is(err, ErrInvalidModule) || !strings.Contains(err.Error(), "the start function ran past 200ms") {
		t.Fatalf("add: %v, want the start function refused for its loop", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("refused after %v", took)
	}
}

// TestInterrupterLateTimer: a deadline timer that fires for a finished
// call does not stop the next call, and a call the interrupter stopped
// leaves the flag clear for the next.
func TestInterrupterLateTimer(t *testing.T) {
	h := newHost(t, Config{PoolSize: 1, CallDeadline: 50 * time.Millisecond, CallDeadlinePerRecord: time.Millisecond})
	addGuests(t, h, "looper")
	// A call stopped at its deadline, then normal calls on the same
	// pool: none is stopped by what the first left behind.
	_, dlq := process(t, h, "p", []string{"looper"}, `{"id":1,"loop":true}`)
	if len(dlq) != 1 || !strings.HasPrefix(dlq[0].Reason, "deadline: looper exceeded") {
		t.Fatalf("dlq %q", dlqReasons(dlq))
	}
	for i := 0; i < 20; i++ {
		out, dlq := process(t, h, "p", []string{"looper"}, `{"id":2}`)
		if len(out) != 1 || len(dlq) != 0 {
			t.Fatalf("call %d after a deadline: out %d, dlq %q", i, len(out), dlqReasons(dlq))
		}
		time.Sleep(3 * time.Millisecond)
	}
	// The interrupter itself: a stale deadline (an earlier call's) finds
	// the armed call's later deadline and does nothing.
	in, err := h.transforms["looper"].current.acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer h.transforms["looper"].current.release(in, false)
	it := in.intr
	it.mu.Lock()
	it.armed, it.why, it.at = true, stopNone, time.Now().Add(time.Hour)
	it.mu.Unlock()
	it.deadline()
	it.mu.Lock()
	why := it.why
	it.armed = false
	it.mu.Unlock()
	if why != stopNone {
		t.Fatalf("a stale timer stopped the armed call (%v)", why)
	}
}

// TestGCWhileGuestLoops: a garbage collection while a guest loops (here
// until its deadline) completes: the loop checks leave native code for Go
// often enough for the runtime to stop the goroutine. Without that exit,
// the collection's stop-the-world would wait for the guest, and every
// goroutine would stop with it, the deadline's timer included.
func TestGCWhileGuestLoops(t *testing.T) {
	h := newHost(t, Config{PoolSize: 1, CallDeadline: 2 * time.Second})
	addGuests(t, h, "looper")
	if err := h.SetPipeline("p", []string{"looper"}); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.Pipeline("p").Process(context.Background(), jsonRecs(`{"loop":true}`), nil)
	}()
	time.Sleep(100 * time.Millisecond) // the guest is looping
	start := time.Now()
	for i := 0; i < 5; i++ {
		runtime.GC()
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("five collections took %v while a guest looped", took)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the looping call outlived its deadline by 8 s")
	}
}
