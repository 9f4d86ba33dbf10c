package wasmhost

// heapMemory is linear memory as a Go slice, grown by copying (what
// wazero's default allocator does): the fallback of an allocator that
// cannot map.
type heapMemory struct{ buf []byte }

func (m *heapMemory) Reallocate(size uint64) []byte {
	if size <= uint64(cap(m.buf)) {
		m.buf = m.buf[:size]
		return m.buf
	}
	b := make([]byte, size, max(size, 2*uint64(cap(m.buf))))
	copy(b, m.buf)
	m.buf = b
	return b
}

func (m *heapMemory) Free() { m.buf = nil }
