package wasmhost

import (
	"context"
	"sync"
	"time"

	"github.com/tetratelabs/wazero/api"
)

// Interrupting guests.
//
// wazero interrupts a running guest only when the runtime is built with
// WithCloseOnContextDone, and then its compiled code leaves native code
// for Go at every wasm loop header to ask whether the module was closed:
// 30–50 ns each, which Go-compiled guests pay on every function call and
// loop iteration (half of BenchmarkChainSerial's time). The host instead
// compiles without it and rewrites every module when it compiles it
// (internal/wasmloop): each loop header, and the entry of each function
// that calls, counts down a global and, every 1,000th time, leaves native
// code for Go (a memory.grow of no page: the point where the Go runtime can
// stop the goroutine for a garbage collection) and traps (unreachable) when
// the flag global the host exports from the module is not zero. An
// interrupter sets that flag when a call's deadline passes, when its
// context is done or when the host closes; the call then fails within
// microseconds with a trap the host names by the reason it set. Only loops
// branch backwards and the entry checks bound recursion, so every guest
// call is bounded by its deadline, as before.

// The rewritten module's exports (names a guest cannot declare: the
// rewrite refuses a module that already exports them).
const (
	exportInterrupt = "__sluice_interrupt"
	exportStart     = "__sluice_start" // the module's start function, run by the host
)

// stopReason is why an interrupter stopped a call.
type stopReason uint8

const (
	stopNone     stopReason = iota
	stopDeadline            // the call ran past its deadline
	stopCanceled            // the caller's context was done
	stopClosed              // the host was closed
)

// interrupter stops the calls of one instance (one at a time).
type interrupter struct {
	host  *Host
	flag  api.MutableGlobal
	timer *time.Timer // the deadline of the armed call, reused

	mu    sync.Mutex
	armed bool
	at    time.Time // the armed call's deadline
	why   stopReason
	gen   uint64 // the armed call's number (Host.calls)
}

func newInterrupter(h *Host, flag api.MutableGlobal) *interrupter {
	it := &interrupter{host: h, flag: flag}
	it.timer = time.AfterFunc(time.Hour, it.deadline)
	it.timer.Stop()
	return it
}

// call calls fn with stack under deadline and ctx, and reports why the
// interrupter stopped it (stopNone: it was not stopped, whatever its
// error).
func (it *interrupter) call(ctx context.Context, fn api.Function, stack []uint64, deadline time.Duration) (error, stopReason) {
	it.mu.Lock()
	it.gen++
	gen := it.gen
	it.armed, it.why, it.at = true, stopNone, time.Now().Add(deadline)
	it.mu.Unlock()
	it.timer.Reset(deadline)
	unwatch := context.AfterFunc(ctx, func() { it.stop(gen, stopCanceled) })
	it.host.calls.Store(it, gen)
	if it.host.shut.Load() {
		it.stop(gen, stopClosed) // Close ran before this call was registered
	}

	err := fn.CallWithStack(ctx, stack)

	it.host.calls.Delete(it)
	unwatch()
	it.timer.Stop()
	it.mu.Lock()
	why := it.why
	it.armed = false
	if why != stopNone {
		it.flag.Set(0)
	}
	it.mu.Unlock()
	return err, why
}

// deadline is the timer's function. A timer that fired for an earlier
// call (Stop came too late) finds a call armed with a later deadline, and
// leaves it alone.
func (it *interrupter) deadline() {
	it.mu.Lock()
	defer it.mu.Unlock()
	if it.armed && it.why == stopNone && !time.Now().Before(it.at) {
		it.why = stopDeadline
		it.flag.Set(1)
	}
}

// stop interrupts call gen, if it is still the one running.
func (it *interrupter) stop(gen uint64, why stopReason) {
	it.mu.Lock()
	defer it.mu.Unlock()
	if it.armed && it.gen == gen && it.why == stopNone {
		it.why = why
		it.flag.Set(1)
	}
}

// stopAll interrupts every call in flight (Close).
func (h *Host) stopAll() {
	h.calls.Range(func(k, v any) bool {
		k.(*interrupter).stop(v.(uint64), stopClosed)
		return true
	})
}
