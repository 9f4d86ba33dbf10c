package codec

import (
	"bytes"
	"encoding/binary"
	"encoding/json"

	"github.com/bytedance/sonic"
)

// Valid reports whether doc is exactly one valid JSON value (surrounding
// whitespace allowed), with the strictness of encoding/json.Valid: bad
// escapes and raw control characters inside strings are rejected.
//
// sonic's validator is about four times faster than encoding/json but does
// not check string contents. Valid therefore runs sonic first and defers to
// encoding/json only when doc contains a backslash or a byte below 0x20 —
// the only bytes whose meaning sonic may judge too leniently. Compact events
// contain neither and take the fast path; pretty-printed or escaped ones pay
// encoding/json's price.
//
// sonic's validator also misjudges some top-level scalars: it reads past the
// end of the slice for a bare literal ("nu" followed in memory by "ll"
// validates) and accepts an unterminated 33-byte string ending in '}'.
// Only documents that are an object or an array ('{'…'}' or '['…']', the
// shape of events) take the fast path; top-level scalars, rare for events,
// are judged by encoding/json.
func Valid(doc []byte) bool {
	if !sonic.ConfigStd.Valid(doc) {
		return false
	}
	if needsStrict(doc) || !isContainer(doc) {
		return json.Valid(doc)
	}
	return true
}

// needsStrict reports whether doc holds a byte sonic's validator may judge
// more leniently than encoding/json: a backslash (an escape) or any byte
// below 0x20 (a raw control character, or whitespace that could sit inside a
// string). Compact JSON — every NDJSON line, most request bodies — has
// neither. The scan is SWAR, eight bytes at a time, plus a vectorised
// IndexByte for the backslash.
func needsStrict(doc []byte) bool {
	if bytes.IndexByte(doc, '\\') >= 0 {
		return true
	}
	const lo, hi = 0x2020202020202020, 0x8080808080808080
	b := doc
	for len(b) >= 8 {
		x := binary.LittleEndian.Uint64(b)
		if (x-lo)&^x&hi != 0 { // some byte < 0x20
			return true
		}
		b = b[8:]
	}
	for _, c := range b {
		if c < 0x20 {
			return true
		}
	}
	return false
}

// isContainer reports whether doc's first and last non-whitespace bytes are
// a matching pair of braces or brackets.
func isContainer(doc []byte) bool {
	i, j := 0, len(doc)-1
	for i < len(doc) && isSpace(doc[i]) {
		i++
	}
	for j > i && isSpace(doc[j]) {
		j--
	}
	if j <= i {
		return false
	}
	return doc[i] == '{' && doc[j] == '}' || doc[i] == '[' && doc[j] == ']'
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
