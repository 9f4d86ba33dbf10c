package wasmhost

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	f := func(name string, c Config, ok bool) {
		t.Helper()
		if err := c.Validate(); (err == nil) != ok {
			t.Errorf("%s: Validate() = %v, want ok=%v", name, err, ok)
		}
	}
	f("zero", Config{}, true)
	f("explicit", Config{PoolSize: 4, MemoryLimit: 32 << 20, CallDeadline: time.Second, OnTrap: TrapFailBatch}, true)
	f("negative pool", Config{PoolSize: -1}, false)
	f("tiny memory", Config{MemoryLimit: 1 << 20}, false)
	f("huge memory", Config{MemoryLimit: 8 << 30}, false)
	f("negative deadline", Config{CallDeadline: -time.Second}, false)
	f("bad policy", Config{OnTrap: 9}, false)
	f("negative keep", Config{KeepVersions: -1}, false)

	d := Config{}.withDefaults()
	if d.MemoryLimit != 64<<20 || d.CallDeadline != 50*time.Millisecond || d.CallDeadlinePerRecord != 20*time.Microsecond ||
		d.RecycleAbove != 48<<20 || d.IsolateTraps != 3 || d.KeepVersions != 5 || d.PoolSize < 1 {
		t.Errorf("defaults %+v", d)
	}
	if got := d.deadline(1000); got != 70*time.Millisecond {
		t.Errorf("deadline(1000) = %v", got)
	}
	if d.memoryLimitPages() != 1024 {
		t.Errorf("pages %d", d.memoryLimitPages())
	}
}

// TestCompileConcurrency: no more modules compile at once than
// CompileConcurrency allows, and a limit above one is used. Every compile
// holds its slot for a while (compileEntered), so that compiles a broken
// limit let in would overlap, and waits until the limit's worth of compiles
// hold theirs, so that a limit of two is seen used whatever the machine's
// speed; the compilation cache is warm, so the test is quick under -race.
func TestCompileConcurrency(t *testing.T) {
	t.Cleanup(func() { compileEntered = nil })
	for _, limit := range []int{1, 2} {
		h := newHost(t, Config{CompileConcurrency: limit})
		var inside, peak atomic.Int64
		full := make(chan struct{})
		var fullOnce sync.Once
		compileEntered = func() {
			n := inside.Add(1)
			for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
			}
			if n >= int64(limit) {
				fullOnce.Do(func() { close(full) })
			}
			select {
			case <-full:
			case <-time.After(10 * time.Second): // the limit is never reached: peak says so
			}
			time.Sleep(50 * time.Millisecond)
			inside.Add(-1)
		}
		var wg sync.WaitGroup
		for _, name := range []string{"filter", "redact", "route"} {
			wg.Go(func() {
				if _, err := h.Add(context.Background(), name, guest(t, name)); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		compileEntered = nil
		if got := peak.Load(); got != int64(limit) {
			t.Errorf("CompileConcurrency %d: %d compiles at once", limit, got)
		}
	}
	if err := (Config{CompileConcurrency: -1}).Validate(); err == nil {
		t.Error("negative CompileConcurrency accepted")
	}
}

// TestCompileWaitCanceled: a compile that cannot get a slot before its
// context ends fails with the context's error, and the version compiles
// later all the same.
func TestCompileWaitCanceled(t *testing.T) {
	h := newHost(t, Config{})
	h.compiles <- struct{}{} // the only slot is taken
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := h.Add(ctx, "filter", guest(t, "filter")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Add while every slot is taken: %v, want the context's deadline", err)
	}
	<-h.compiles
	if _, err := h.Add(context.Background(), "filter", guest(t, "filter")); err != nil {
		t.Fatal(err)
	}
}
