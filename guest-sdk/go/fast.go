package sluice

import "unsafe"

// Byte scanning 8 bytes at a time. Guest code pays for every loop
// iteration (the host's interrupt check runs at each wasm loop header, and
// Go's wasm code has no vector instructions), so the runtime's
// byte-at-a-time loops (memequal, IndexByte) are slow in a guest: these
// helpers loop once per 8 bytes.

const (
	lo8 = 0x0101010101010101
	hi8 = 0x8080808080808080
)

func load64(p unsafe.Pointer, i int) uint64 {
	return *(*uint64)(unsafe.Add(p, i))
}

// hasZeroByte reports whether any byte of x is zero.
func hasZeroByte(x uint64) bool { return (x-lo8)&^x&hi8 != 0 }

// equalString reports whether b and s hold the same bytes. Up to 16 bytes
// it runs no loop: overlapping loads of the first and last word.
func equalString(b []byte, s string) bool {
	n := len(b)
	if n != len(s) {
		return false
	}
	pb, ps := unsafe.Pointer(unsafe.SliceData(b)), unsafe.Pointer(unsafe.StringData(s))
	switch {
	case n == 0:
		return true
	case n < 4:
		return b[0] == s[0] && b[n/2] == s[n/2] && b[n-1] == s[n-1]
	case n < 8:
		return load32(pb, 0) == load32(ps, 0) && load32(pb, n-4) == load32(ps, n-4)
	case n <= 16:
		return load64(pb, 0) == load64(ps, 0) && load64(pb, n-8) == load64(ps, n-8)
	}
	for i := 0; i < n-8; i += 8 {
		if load64(pb, i) != load64(ps, i) {
			return false
		}
	}
	return load64(pb, n-8) == load64(ps, n-8)
}

func load32(p unsafe.Pointer, i int) uint32 {
	return *(*uint32)(unsafe.Add(p, i))
}

// plainWord reports whether no byte of x is a control byte, a backslash
// or a quote.
func plainWord(x uint64) bool {
	// A byte < 0x20 has its top three bits clear: x & 0xE0… has a zero
	// byte. Backslash and quote: x ^ c… has a zero byte.
	return !hasZeroByte(x&0xE0E0E0E0E0E0E0E0) && !hasZeroByte(x^(lo8*'\\')) && !hasZeroByte(x^(lo8*'"'))
}

// plainString reports whether b (a JSON string's contents) has no escape,
// quote or control byte, so it is its own decoded value. From 8 bytes up
// it checks a word at a time, the last word overlapping; shorter strings
// are widened with a harmless filler byte.
func plainString(b []byte) bool {
	n := len(b)
	if n < 8 {
		w := [8]byte{'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a'}
		copy(w[:], b)
		return plainWord(load64(unsafe.Pointer(&w), 0))
	}
	p := unsafe.Pointer(unsafe.SliceData(b))
	for i := 0; i < n-8; i += 8 {
		if !plainWord(load64(p, i)) {
			return false
		}
	}
	return plainWord(load64(p, n-8))
}

const (
	fill8 uint64 = lo8 * 'a'           // eight harmless bytes
	fill4        = fill8 &^ 0xffffffff // the high four
	fill3        = fill8 &^ 0xffffff   // the high five
)
