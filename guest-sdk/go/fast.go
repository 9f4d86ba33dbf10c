package sluice

import "unsafe"

// Byte scanning 8 bytes at a time. Guest code pays for every loop
// iteration (the host's termination check runs at each wasm loop header,
// about 30 ns), so the runtime's byte-at-a-time loops (memequal,
// IndexByte) are slow in a guest: these helpers loop once per 8 bytes.

const (
	lo8 = 0x0101010101010101
	hi8 = 0x8080808080808080
)

func load64(p unsafe.Pointer, i int) uint64 {
	return *(*uint64)(unsafe.Add(p, i))
}

// hasZeroByte reports whether any byte of x is zero.
func hasZeroByte(x uint64) bool { return (x-lo8)&^x&hi8 != 0 }

// equalString reports whether b and s hold the same bytes.
func equalString(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	pb, ps := unsafe.Pointer(unsafe.SliceData(b)), unsafe.Pointer(unsafe.StringData(s))
	i := 0
	for ; i+8 <= len(b); i += 8 {
		if load64(pb, i) != load64(ps, i) {
			return false
		}
	}
	for ; i < len(b); i++ {
		if b[i] != s[i] {
			return false
		}
	}
	return true
}

// plainString reports whether b (a JSON string's contents) has no escape,
// quote or control byte, so it is its own decoded value.
func plainString(b []byte) bool {
	p := unsafe.Pointer(unsafe.SliceData(b))
	i := 0
	for ; i+8 <= len(b); i += 8 {
		x := load64(p, i)
		// A byte < 0x20 has its top three bits clear: x & 0xE0… has a
		// zero byte. Backslash and quote: x ^ c… has a zero byte.
		if hasZeroByte(x&0xE0E0E0E0E0E0E0E0) || hasZeroByte(x^(lo8*'\\')) || hasZeroByte(x^(lo8*'"')) {
			return false
		}
	}
	for ; i < len(b); i++ {
		if c := b[i]; c < 0x20 || c == '\\' || c == '"' {
			return false
		}
	}
	return true
}
