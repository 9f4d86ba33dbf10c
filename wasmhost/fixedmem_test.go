package wasmhost

import (
	"runtime"
	"testing"
	"time"
)

func TestAnonExecBytes(t *testing.T) {
	maps := `00400000-00d03000 r-xp 00000000 fe:00 9986247                            /usr/bin/sluice
7f8ee0fb5000-7f8ee2ffe000 r-xp 00000000 00:00 0 
7f8ee3000000-7f8ee4000000 rw-p 00000000 00:00 0 
7f8ef050c000-7f8ef050d000 r-xp 00000000 00:00 0
7ffd1000-7ffd3000 r-xp 00000000 00:00 0                                  [vdso]
7f8ef0600000-7f8ef0601000 rwxp 00000000 00:00 0 
7f8ef0700000-7f8ef0701000 r-xp 00000000 00:00 0 garbage-line
zz-yy r-xp 00000000 00:00 0
`
	// The two anonymous r-x mappings and the anonymous rwx one; not the
	// binary, not the data mapping, not the named [vdso], not malformed
	// lines.
	want := int64(0x7f8ee2ffe000-0x7f8ee0fb5000) + 0x1000 + 0x1000
	if got := anonExecBytes([]byte(maps)); got != want {
		t.Fatalf("anonExecBytes = %d, want %d", got, want)
	}
	if got := anonExecBytes(nil); got != 0 {
		t.Fatalf("empty: %d", got)
	}
}

// guestsOffHeap reports whether this platform's guests' memory is outside
// the Go heap.
func guestsOffHeap() bool { _, off := guestAllocator(); return off }

func TestFixedMemory(t *testing.T) {
	const pool = 3
	h := newHost(t, Config{PoolSize: pool})
	empty := h.FixedMemory()
	if empty.Code < 0 || empty.Pools != 0 || empty.Versions != 0 || empty.PoolSize != pool || empty.Guests != 0 || empty.GuestsOffHeap != guestsOffHeap() {
		t.Fatalf("empty host: %+v", empty)
	}

	addGuests(t, h, "kitchen")
	one := h.FixedMemory()
	// Add validates the module on an instance it closes (pools grow with
	// demand): the memory that instance held once initialised is the size
	// reserved per pooled instance.
	inst := h.transforms["kitchen"].current.reservedMem()
	if one.Versions != 1 || one.Guests != 0 || h.GuestMemoryBytes() != 0 || inst < 1<<20 {
		t.Fatalf("one transform: %+v, reserved per instance %d", one, inst)
	}
	if one.Pools != pool*inst {
		t.Fatalf("pools %d, want %d instances × %d bytes", one.Pools, pool, inst)
	}
	// The code is measured process-wide (other tests' hosts and versions
	// closed after their grace period come and go), so it is checked
	// against a lower bound: a Go guest compiles to several MB of machine
	// code, more than its module's size.
	kitchen := int64(len(guest(t, "kitchen")))
	if runtime.GOOS == "linux" {
		if !one.CodeMeasured || one.Code < kitchen {
			t.Fatalf("code %d bytes (measured %v) with a %d-byte Go module loaded", one.Code, one.CodeMeasured, kitchen)
		}
	} else if one.Code != CodeEstimateFactor*kitchen {
		t.Fatalf("estimated code %d", one.Code)
	}

	// Another transform: its pool and code join (the measurement is
	// redone at once, not after the cache period).
	addGuests(t, h, "noop")
	two := h.FixedMemory()
	if two.Versions != 2 || two.Pools <= one.Pools {
		t.Fatalf("two transforms: %+v, was %+v", two, one)
	}
	if both := kitchen + int64(len(guest(t, "noop"))); two.Code < both {
		t.Fatalf("code %d bytes with %d bytes of Go modules loaded", two.Code, both)
	}

	// Deleting a transform takes its pool out at once.
	if err := h.Delete("kitchen"); err != nil {
		t.Fatal(err)
	}
	after := h.FixedMemory()
	if after.Versions != 1 || after.Pools != two.Pools-one.Pools {
		t.Fatalf("after Delete: %+v, want pools %d", after, two.Pools-one.Pools)
	}
}

// BenchmarkFixedMemory is the governor's reading of the host once per heap
// refresh (100 ms): the code figure cached (re-read from /proc/self/maps
// at most once a second).
func BenchmarkFixedMemory(b *testing.B) {
	h := newHost(b, Config{})
	addGuests(b, h, "noop", "kitchen")
	h.FixedMemory()
	b.ReportAllocs()
	for b.Loop() {
		_ = h.FixedMemory()
	}
}

// BenchmarkFixedMemoryMeasure re-reads /proc/self/maps on every call.
func BenchmarkFixedMemoryMeasure(b *testing.B) {
	h := newHost(b, Config{})
	addGuests(b, h, "noop", "kitchen")
	b.ReportAllocs()
	for b.Loop() {
		codeCache.mu.Lock()
		codeCache.at = time.Time{}
		codeCache.mu.Unlock()
		_ = h.FixedMemory()
	}
}
