package wasmloop

import (
	"cmp"
	"slices"
)

// Packing the data section.
//
// The Go linker writes a module's initial memory as one data segment per
// run of non-zero bytes: 22,000 segments for a 540 KB image in an example
// transform. wazero keeps a record of about 100 bytes for every segment of
// a compiled module (the segment, its offset expression, its bytes) and a
// 24-byte slice header for every segment of every instance, so those
// segments held 2 MB of Go heap per module and 0.5 MB per instance, four
// times the image itself, and every instantiation copied them one by one.
//
// packData rewrites such a section into few segments that write the same
// bytes: segments sorted by offset, and neighbours separated by fewer than
// packGap zero bytes joined into one with the zeros written out. It writes
// the same memory because it only packs what is certain to:
//   - every segment is active, of memory 0, at a constant offset
//     (i32.const, not negative), so the order they are applied in and
//     their offsets are known without running anything;
//   - no two segments overlap, so the order does not matter;
//   - the memory is the module's own (not imported): it starts as zeros,
//     so writing zeros in a gap changes nothing, and if a segment is out of
//     bounds the instantiation fails and nobody sees what was written;
//   - the module has no data count section: without one no instruction can
//     refer to a segment by its index (memory.init, data.drop).
//
// Anything else, or anything it cannot decode, leaves the section as it was,
// byte for byte (wazero reports its defects). The zeros written out are
// bounded by the section's own size, so the output is at most about twice
// the input.

// packGap is the longest run of zero bytes between two segments that is
// written out to join them: shorter than that, the zeros cost less than a
// segment's bookkeeping in the runtime.
const packGap = 256

// packDataSegments turns the packing off, for the benchmark that compares.
var packDataSegments = true

// dataSeg is one active segment: its offset in memory, and its bytes in
// the module (b[from:to]).
type dataSeg struct {
	off      uint64
	from, to int
}

// end is the offset in memory just past the segment.
func (d dataSeg) end() uint64 { return d.off + uint64(d.to-d.from) }

// dataSegments decodes data section s of b as segments packData can pack,
// or reports false.
func dataSegments(b []byte, s section) ([]dataSeg, bool) {
	r := &reader{b: b, pos: s.payload, end: s.end}
	n, err := r.count()
	if err != nil {
		return nil, false
	}
	segs := make([]dataSeg, 0, n)
	for range n {
		flags, err := r.u32()
		if err != nil || flags != 0 { // passive, or an explicit memory index
			return nil, false
		}
		if op, err := r.byte(); err != nil || op != 0x41 { // i32.const
			return nil, false
		}
		v, err := r.leb(32, true)
		if err != nil || int64(v) < 0 {
			return nil, false
		}
		if end, err := r.byte(); err != nil || end != opEnd {
			return nil, false
		}
		size, err := r.count()
		if err != nil {
			return nil, false
		}
		segs = append(segs, dataSeg{off: v, from: r.pos, to: r.pos + size})
		r.pos += size
	}
	return segs, r.pos == r.end
}

// packData returns data section s of m packed as described above, or nil
// when it is kept as it is.
func packData(m *module, s section) []byte {
	if !packDataSegments || m.dataCount || m.importedMemories > 0 || m.memories != 1 {
		return nil
	}
	segs, ok := dataSegments(m.b, s)
	if !ok || len(segs) < 2 {
		return nil
	}
	slices.SortStableFunc(segs, func(a, c dataSeg) int { return cmp.Compare(a.off, c.off) })
	// Join neighbours: runs[i] is segs[runs[i]:runs[i+1]].
	runs := []int{0}
	budget := uint64(s.end - s.payload) // zeros that may still be written out
	for i := 1; i < len(segs); i++ {
		prevEnd := segs[i-1].end()
		if segs[i].off < prevEnd {
			return nil // overlapping: the order would matter
		}
		if gap := segs[i].off - prevEnd; gap >= packGap || gap > budget {
			runs = append(runs, i)
		} else {
			budget -= gap
		}
	}
	if len(runs) == len(segs) {
		return nil
	}
	runs = append(runs, len(segs))

	var body []byte
	body = appendU32(body, uint32(len(runs)-1))
	for r := 0; r+1 < len(runs); r++ {
		run := segs[runs[r]:runs[r+1]]
		first, last := run[0], run[len(run)-1]
		size := last.end() - first.off
		body = append(body, 0x00, 0x41)
		body = appendS32(body, int32(first.off))
		body = append(body, opEnd)
		body = appendU32(body, uint32(size))
		at := first.off
		for _, sg := range run {
			body = append(body, make([]byte, sg.off-at)...)
			body = append(body, m.b[sg.from:sg.to]...)
			at = sg.end()
		}
	}
	out := appendU32([]byte{secData}, uint32(len(body)))
	return append(out, body...)
}

// appendS32 appends v in signed LEB128.
func appendS32(b []byte, v int32) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}
