package sluice

import (
	"strconv"
	"unsafe"
)

// Value is a raw JSON value as the host returned it: `"DE"` (quotes
// included), `42`, `{"a":1}`, `null`. A nil Value means the path does not
// exist. It is valid until the handler returns.
type Value []byte

// Exists reports whether the path existed.
func (v Value) Exists() bool { return v != nil }

// IsNull reports whether the value is JSON null.
func (v Value) IsNull() bool { return string(v) == "null" }

// IsString reports whether the value is a JSON string.
func (v Value) IsString() bool { return len(v) >= 2 && v[0] == '"' }

// Str returns the decoded string of a JSON string value, and false for any
// other kind of value.
func (v Value) Str() (string, bool) {
	if !v.IsString() {
		return "", false
	}
	s, ok := unquote(v)
	return s, ok
}

// String returns the decoded string of a JSON string value, and the raw JSON
// text of any other value ("" when missing).
func (v Value) String() string {
	if s, ok := v.Str(); ok {
		return s
	}
	return string(v)
}

// Equal reports whether v is the JSON string s, without allocating when the
// string has no escapes. Up to 16 bytes it makes no call.
func (v Value) Equal(s string) bool {
	n := len(v) - 2
	if n < 0 || v[0] != '"' {
		return false
	}
	switch {
	case n < len(s):
		// Escapes only shorten a string: it cannot decode to s.
		return false
	case n == len(s) && n <= 16:
		// Equal bytes decode to s unless they hold an escape (or a byte
		// a JSON string cannot hold).
		if n == 0 {
			return true
		}
		p, q := unsafe.Pointer(&v[1]), unsafe.Pointer(unsafe.StringData(s))
		var a, b, c, d uint64
		switch {
		case n >= 8:
			a, b, c, d = load64(p, 0), load64(p, n-8), load64(q, 0), load64(q, n-8)
		case n >= 4:
			a, b = uint64(load32(p, 0))|fill4, uint64(load32(p, n-4))|fill4
			c, d = uint64(load32(q, 0))|fill4, uint64(load32(q, n-4))|fill4
		default:
			a = uint64(v[1]) | uint64(v[1+n/2])<<8 | uint64(v[n])<<16 | fill3
			c = uint64(s[0]) | uint64(s[n/2])<<8 | uint64(s[n-1])<<16 | fill3
			b, d = fill8, fill8
		}
		return a == c && b == d && plainWord(a) && plainWord(b)
	}
	return v.equalSlow(s)
}

func (v Value) equalSlow(s string) bool {
	inner := v[1 : len(v)-1]
	if equalString(inner, s) {
		return plainString(inner)
	}
	if plainString(inner) {
		return false
	}
	u, ok := unquote(v)
	return ok && u == s
}

// Bytes returns the decoded bytes of a JSON string value (aliasing v when
// it has no escapes: no allocation) and the raw JSON text of any other
// value (nil when missing).
func (v Value) Bytes() []byte {
	n := len(v) - 2
	if n < 0 || v[0] != '"' {
		return v
	}
	inner := v[1 : n+1]
	if n <= 16 {
		// plainString without a loop or a call.
		p := unsafe.Pointer(unsafe.SliceData(inner))
		a, b := fill8, fill8
		switch {
		case n >= 8:
			a, b = load64(p, 0), load64(p, n-8)
		case n >= 4:
			a, b = uint64(load32(p, 0))|fill4, uint64(load32(p, n-4))|fill4
		case n > 0:
			a = uint64(inner[0]) | uint64(inner[n/2])<<8 | uint64(inner[n-1])<<16 | fill3
		}
		if plainWord(a) && plainWord(b) {
			return inner
		}
	} else if plainString(inner) {
		return inner
	}
	s, _ := unquote(v)
	return []byte(s)
}

// Int returns the value as an int64 when it is a JSON integer.
func (v Value) Int() (int64, bool) {
	n, err := strconv.ParseInt(string(v), 10, 64)
	return n, err == nil
}

// Float returns the value as a float64 when it is a JSON number.
func (v Value) Float() (float64, bool) {
	if len(v) == 0 || !(v[0] == '-' || (v[0] >= '0' && v[0] <= '9')) {
		return 0, false
	}
	f, err := strconv.ParseFloat(string(v), 64)
	return f, err == nil
}

// Bool returns the value as a bool when it is true or false.
func (v Value) Bool() (bool, bool) {
	switch string(v) {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	return false, false
}

// RawJSON is JSON text that Set writes as is (it must be valid JSON).
type RawJSON []byte
