package wasmhost

import (
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tetratelabs/wazero/experimental"
)

// Guest linear memory outside the Go heap (Linux).
//
// wazero's default allocator makes an instance's linear memory a Go byte
// slice. The Go GC then counts every instance's memory in the live heap and
// lets as much garbage again pile up before it collects (GOGC=100): guest
// memory that is mostly idle doubles its cost in resident memory, and a
// memory.grow copies the whole memory into a bigger slice. mmapAllocator
// instead reserves each instance's maximum (the guest memory cap) as one
// anonymous private mapping: pages become resident only when the guest
// touches them, growing is free (the address never moves), and closing the
// instance returns its pages to the system at once.
//
// Free must not unmap at once: wazero frees a module's memory when the
// module is closed, and a call may still be running on it (a host closing
// its runtime fails calls in flight). Free releases the pages
// (MADV_DONTNEED: a late access reads zeros and cannot fault) and unmaps
// the range after unmapGrace, far past any call's deadline.
type mmapAllocator struct{}

// unmapGrace is how long a freed mapping stays mapped (see mmapAllocator).
var unmapGrace = 30 * time.Second

// mapped is the bytes of linear memory currently reserved (for tests).
var mapped atomic.Int64

func (mmapAllocator) Allocate(capacity, max uint64) experimental.LinearMemory {
	b, err := syscall.Mmap(-1, 0, int(max), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANONYMOUS|syscall.MAP_NORESERVE)
	if max == 0 || err != nil {
		// No address space for it (or nothing to map): a Go slice, as
		// wazero's own allocator would give.
		return &heapMemory{buf: make([]byte, 0, capacity)}
	}
	mapped.Add(int64(len(b)))
	return &mmapMemory{buf: b}
}

// mmapMemory is one instance's reserved mapping.
type mmapMemory struct {
	buf      []byte
	used     int
	unmapped atomic.Bool // the grace passed and the range is unmapped (for tests)
}

func (m *mmapMemory) Reallocate(size uint64) []byte {
	if m.buf == nil || size > uint64(len(m.buf)) {
		return nil
	}
	m.used = max(m.used, int(size))
	return m.buf[:size:len(m.buf)]
}

func (m *mmapMemory) Free() {
	b := m.buf
	if b == nil {
		return
	}
	m.buf = nil
	_ = syscall.Madvise(b[:m.used], syscall.MADV_DONTNEED)
	time.AfterFunc(unmapGrace, func() {
		_ = syscall.Munmap(b)
		mapped.Add(-int64(len(b)))
		m.unmapped.Store(true)
	})
}

// guestAllocator is the allocator of guest linear memory, and whether it
// lies outside the Go heap.
func guestAllocator() (experimental.MemoryAllocator, bool) { return mmapAllocator{}, true }
