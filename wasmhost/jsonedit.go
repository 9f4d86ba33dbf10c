package wasmhost

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/sluicehq/sluice/engine/codec"
)

// Field edits splice bytes: the value's span is found by sonic (codec.Get
// returns a slice of the document), and the edit copies the document once
// with the span replaced, removed or an insertion made. The rest of the
// document is untouched byte for byte, so an edit never re-encodes numbers
// or reorders keys. Measured against sonic ast Set + marshal in
// BenchmarkSetField*: splicing is several times faster and allocates once.

// errNotObject is returned when a missing field's parent is not an object.
var errNotObject = errors.New("parent is not an object")

// span returns the offset of sub (a slice of doc) inside doc.
func span(doc, sub []byte) int {
	return int(uintptr(unsafe.Pointer(unsafe.SliceData(sub))) - uintptr(unsafe.Pointer(unsafe.SliceData(doc))))
}

// jsonSet returns doc with the value at p set to val (valid JSON). Missing
// parent objects are created; a missing array index or a parent that is not
// an object is errNotObject.
func jsonSet(doc []byte, p codec.Path, val []byte) ([]byte, error) {
	v, err := codec.Get(doc, p)
	return jsonSetAt(doc, p, val, v, err, false)
}

// jsonSetAt is jsonSet given the result of codec.Get(doc, p) (v, err). When
// own, doc is private to the caller and is edited in place if its capacity
// allows.
func jsonSetAt(doc []byte, p codec.Path, val []byte, v []byte, err error, own bool) ([]byte, error) {
	if err == nil {
		at := span(doc, v)
		return spliceOwn(doc, at, at+len(v), val, own), nil
	}
	if !errors.Is(err, codec.ErrNotFound) {
		return nil, err
	}
	var segBuf [8]string
	segs := splitPath(segBuf[:0], p.String())
	// Find the deepest existing ancestor.
	for k := len(segs) - 1; k >= 0; k-- {
		var parent []byte
		if k == 0 {
			parent = trimSpace(doc)
		} else {
			pp, perr := codec.ParsePath(strings.Join(segs[:k], "."))
			if perr != nil {
				return nil, perr
			}
			parent, err = codec.Get(doc, pp)
			if errors.Is(err, codec.ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, err
			}
		}
		if len(parent) < 2 || parent[0] != '{' || parent[len(parent)-1] != '}' {
			return nil, errNotObject
		}
		for _, seg := range segs[k:] {
			if isDigits(seg) {
				// An index segment addresses an array element: there is
				// no key to create.
				return nil, errNotObject
			}
			if !utf8.ValidString(seg) {
				return nil, fmt.Errorf("%w: key %q is not valid UTF-8", codec.ErrBadPath, seg)
			}
		}
		// Build `"seg_k":{"seg_k+1":…val…}` (on the stack when small).
		var insBuf [256]byte
		ins := insBuf[:0]
		if !emptyObject(parent) {
			ins = append(ins, ',')
		}
		for i := k; i < len(segs); i++ {
			ins = appendQuoted(ins, segs[i])
			ins = append(ins, ':')
			if i < len(segs)-1 {
				ins = append(ins, '{')
			}
		}
		ins = append(ins, val...)
		for i := k; i < len(segs)-1; i++ {
			ins = append(ins, '}')
		}
		at := span(doc, parent) + len(parent) - 1 // before the closing brace
		return spliceOwn(doc, at, at, ins, own), nil
	}
	return nil, errNotObject
}

// splitPath splits a dotted path into dst without allocating when it has
// at most cap(dst) segments.
func splitPath(dst []string, path string) []string {
	for {
		i := strings.IndexByte(path, '.')
		if i < 0 {
			return append(dst, path)
		}
		dst = append(dst, path[:i])
		path = path[i+1:]
	}
}

// jsonDelete returns doc without the member (or array element) at p.
func jsonDelete(doc []byte, p codec.Path) ([]byte, error) {
	v, err := codec.Get(doc, p)
	return jsonDeleteAt(doc, v, err, false)
}

// jsonDeleteAt is jsonDelete given the result of codec.Get(doc, p) (v,
// err). When own, doc is private to the caller and is edited in place.
func jsonDeleteAt(doc []byte, v []byte, err error, own bool) ([]byte, error) {
	if err != nil {
		return nil, err
	}
	if len(v) == len(trimSpace(doc)) && span(doc, v) == span(doc, trimSpace(doc)) {
		return nil, errNotObject // the root itself
	}
	vs := span(doc, v)
	from, to, err := deleteSpan(doc, vs, vs+len(v))
	if err != nil {
		return nil, err
	}
	return spliceOwn(doc, from, to, nil, own), nil
}

// deleteSpan returns the bytes [from, to) to remove from doc to delete
// the member (or array element) whose value is doc[vs:ve]: its key, the
// value, and the comma after it (with the spaces up to the next member),
// else the comma before it.
func deleteSpan(doc []byte, vs, ve int) (from, to int, err error) {
	start := vs
	// Object member: walk back over `"key"\s*:\s*`.
	i := skipSpaceBack(doc, vs-1)
	if i >= 0 && doc[i] == ':' {
		i = skipSpaceBack(doc, i-1)
		if i < 0 || doc[i] != '"' {
			return 0, 0, codec.ErrInvalid
		}
		q := openingQuote(doc, i)
		if q < 0 {
			return 0, 0, codec.ErrInvalid
		}
		start = q
	}
	// Remove the trailing comma if any, else the leading one.
	j := skipSpace(doc, ve)
	if j < len(doc) && doc[j] == ',' {
		return start, skipSpace(doc, j+1), nil
	}
	k := skipSpaceBack(doc, start-1)
	if k >= 0 && doc[k] == ',' {
		return k, ve, nil
	}
	return start, ve, nil
}

// openingQuote returns the index of the quote that opens the string whose
// closing quote is at end: the nearest quote before it not escaped by an
// odd run of backslashes.
func openingQuote(doc []byte, end int) int {
	for i := end - 1; i >= 0; i-- {
		if doc[i] != '"' {
			continue
		}
		bs := 0
		for j := i - 1; j >= 0 && doc[j] == '\\'; j-- {
			bs++
		}
		if bs%2 == 0 {
			return i
		}
	}
	return -1
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(doc []byte, i int) int {
	for i < len(doc) && isSpace(doc[i]) {
		i++
	}
	return i
}

func skipSpaceBack(doc []byte, i int) int {
	for i >= 0 && isSpace(doc[i]) {
		i--
	}
	return i
}

func trimSpace(doc []byte) []byte {
	i, j := 0, len(doc)
	for i < j && isSpace(doc[i]) {
		i++
	}
	for j > i && isSpace(doc[j-1]) {
		j--
	}
	return doc[i:j]
}

func emptyObject(obj []byte) bool {
	return len(trimSpace(obj[1:len(obj)-1])) == 0
}

// spliceSlack is the spare capacity of a spliced document, so the next
// edits of the same record in the same call (a deletion, a field set to a
// longer value, a small insertion) are made in place.
const spliceSlack = 64

// splice returns a new slice: doc[:from] + ins + doc[to:], with
// spliceSlack bytes of spare capacity.
func splice(doc []byte, from, to int, ins []byte) []byte {
	n := len(doc) - (to - from) + len(ins)
	out := make([]byte, n, n+spliceSlack)
	copy(out, doc[:from])
	copy(out[from:], ins)
	copy(out[from+len(ins):], doc[to:])
	return out
}

// spliceOwn is splice that, when own (doc is private to the caller) and
// doc's capacity allows, edits doc in place instead of allocating. ins must
// not alias doc.
func spliceOwn(doc []byte, from, to int, ins []byte, own bool) []byte {
	n := len(doc) - (to - from) + len(ins)
	if !own || n > cap(doc) {
		return splice(doc, from, to, ins)
	}
	out := doc[:n]
	copy(out[from+len(ins):], doc[to:]) // memmove: the ranges may overlap
	copy(out[from:], ins)
	return out
}

const hexDigits = "0123456789abcdef"

// appendQuoted appends s as a JSON string (invalid UTF-8 becomes U+FFFD).
func appendQuoted(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
