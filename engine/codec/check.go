package codec

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/bits"
	"slices"
	"strconv"
	"sync"
	"unicode/utf8"
	"unsafe"

	"github.com/bytedance/sonic/unquote"
)

// MaxDepth is the deepest nesting of objects and arrays Check accepts:
// sonic's own limit, so that every record that passes can be read by the
// host's on-demand parser.
const MaxDepth = 4096

// DuplicateKeyError is returned by Check for a valid JSON document in which
// an object has the same name twice (RFC 7493 I-JSON §2.3). Names are
// compared after unescaping, as a reader decodes them: "\u0069p" is "ip",
// and invalid UTF-8 or a lone surrogate reads as U+FFFD, as encoding/json
// decodes it. It wraps ErrDuplicateKey.
type DuplicateKeyError struct {
	// Key is the repeated name, unescaped.
	Key string
}

// maxKeyInError caps the bytes of a repeated name that its error quotes.
const maxKeyInError = 64

// Error returns `duplicate key "NAME"` (a name over 64 bytes is cut, and its
// length given).
func (e *DuplicateKeyError) Error() string {
	if len(e.Key) > maxKeyInError {
		k := e.Key[:maxKeyInError]
		for len(k) > 0 && !utf8.ValidString(k) {
			k = k[:len(k)-1]
		}
		return fmt.Sprintf("duplicate key %s… (%d bytes)", strconv.Quote(k), len(e.Key))
	}
	return "duplicate key " + strconv.Quote(e.Key)
}

// Unwrap returns ErrDuplicateKey.
func (e *DuplicateKeyError) Unwrap() error { return ErrDuplicateKey }

// Check reports whether doc is exactly one valid I-JSON value (surrounding
// whitespace allowed): nil; ErrInvalid when doc is not valid JSON with the
// strictness of encoding/json.Valid (bad escapes and raw control characters
// in strings are rejected), nests deeper than MaxDepth or is 4 GiB or more; a
// *DuplicateKeyError when it is valid JSON but an object repeats a name.
// Invalid UTF-8 is accepted, as encoding/json.Valid accepts it.
//
// Check is the one record check of every ingest path. It is safe for
// concurrent use (it takes a pooled Checker); a loop that owns a Checker
// saves the pool's cost.
func Check(doc []byte) error {
	c := checkers.Get().(*Checker)
	err := c.Check(doc)
	checkers.Put(c)
	return err
}

// checkers keeps Checkers with grown buffers for Check.
var checkers = sync.Pool{New: func() any { return new(Checker) }}

// Checker is Check with buffers that are kept from one document to the
// next, so checking allocates nothing once they have grown. The zero
// Checker is ready. It is not safe for concurrent use.
//
// It validates and finds repeated names in one pass over the document,
// eight bytes at a time through strings (SWAR). It replaces sonic's SIMD
// validator plus a separate name scan because that pair cost about twice
// the single pass on events (BenchmarkCheck); encoding/json/v2's jsontext,
// which rejects duplicate names by default, is behind GOEXPERIMENT=jsonv2
// in Go 1.26 and measured 2–3× slower than the single pass. FuzzCheck holds
// Check to encoding/json on validity and to a decoder walk on duplicates.
type Checker struct {
	frames  []frame  // open objects and arrays, innermost last
	keys    []keyRef // the names of every open object, in order
	scratch []byte   // decoded names that held an escape or invalid UTF-8
	doc     []byte
	dup     keyRef // the first repeated name, when hasDup
	hasDup  bool
}

// frame is one open container.
type frame struct {
	start int32  // objects: index of the first name in Checker.keys
	obj   bool   // an object (else an array)
	big   bool   // more names than maxLinear: checked by a sort at the end
	bloom uint64 // objects: one bit per name hash seen so far
}

// keyRef is one name of an open object.
type keyRef struct {
	w   uint64 // the name's first eight (decoded) bytes, zero-padded
	off uint32 // offset of the name's bytes in the document or in scratch
	n   uint32 // the name's length; the top bit: the bytes are in scratch
}

const inScratch = 1 << 31

func (k keyRef) len() int { return int(k.n &^ inScratch) }

// maxLinear is how many names an object may hold before its duplicate
// check switches from a Bloom-guarded linear search per name to one sort
// when the object closes, so a hostile object of a million names costs
// n log n, not n².
const maxLinear = 32

// maxDoc is the largest document Check reads (its offsets are 32-bit); a
// larger one is ErrInvalid. Records are capped far below (--max-event).
const maxDoc uint64 = 1<<32 - 1

// Check is the package-level Check with c's buffers.
func (c *Checker) Check(doc []byte) error {
	end, err := c.Next(doc, skipSpace(doc, 0))
	if err != ErrInvalid && skipSpace(doc, end) != len(doc) {
		return ErrInvalid
	}
	return err
}

// Next checks the one JSON value that starts at doc[i] (no whitespace
// before it) and returns the index just past it, with the error Check would
// give for that value alone. On ErrInvalid the returned index is
// meaningless. The gateway uses it to check and cut the elements of a JSON
// array in a single pass.
func (c *Checker) Next(doc []byte, i int) (end int, err error) {
	if uint64(len(doc)) > maxDoc {
		return i, ErrInvalid
	}
	end, ok := c.scan(doc, i)
	switch {
	case !ok:
		err = ErrInvalid
	case c.hasDup:
		err = &DuplicateKeyError{Key: string(c.name(c.dup))}
	}
	c.doc = nil // keep no reference to the caller's bytes
	return end, err
}

// name returns the bytes of k.
func (c *Checker) name(k keyRef) []byte {
	if k.n&inScratch != 0 {
		return c.scratch[k.off : k.off+k.n&^inScratch]
	}
	return c.doc[k.off : k.off+k.n]
}

// SWAR constants: a byte value repeated in every byte of a word.
const (
	ones   = 0x0101010101010101
	highs  = 0x8080808080808080
	quotes = 0x2222222222222222 // '"'
	slashs = 0x5c5c5c5c5c5c5c5c // '\\'
	spaces = 0x2020202020202020 // ' ', the first byte that is not a control byte
)

// scan validates the value at b[i] and records the first repeated name
// (c.hasDup, c.dup). It returns the index past the value and whether it is
// valid. A goto machine: value → after → (key → value | after | done).
func (c *Checker) scan(b []byte, i int) (int, bool) {
	c.doc = b
	c.frames = c.frames[:0]
	c.keys = c.keys[:0]
	c.scratch = c.scratch[:0]
	c.hasDup = false
	n := len(b)
	var (
		f       *frame
		start   int
		esc, hi bool
	)
value:
	if i >= n {
		return i, false
	}
	switch b[i] {
	case '"':
		if i, _, _ = scanString(b, i); i < 0 {
			return 0, false
		}
	case '{':
		if len(c.frames) >= MaxDepth {
			return i, false
		}
		c.frames = append(c.frames, frame{start: int32(len(c.keys)), obj: true})
		i = skipSpace(b, i+1)
		if i < n && b[i] == '}' {
			c.frames = c.frames[:len(c.frames)-1]
			i++
			goto after
		}
		goto key
	case '[':
		if len(c.frames) >= MaxDepth {
			return i, false
		}
		c.frames = append(c.frames, frame{})
		i = skipSpace(b, i+1)
		if i < n && b[i] == ']' {
			c.frames = c.frames[:len(c.frames)-1]
			i++
			goto after
		}
		goto value
	case 't':
		if n-i < 4 || b[i+1] != 'r' || b[i+2] != 'u' || b[i+3] != 'e' {
			return i, false
		}
		i += 4
	case 'f':
		if n-i < 5 || b[i+1] != 'a' || b[i+2] != 'l' || b[i+3] != 's' || b[i+4] != 'e' {
			return i, false
		}
		i += 5
	case 'n':
		if n-i < 4 || b[i+1] != 'u' || b[i+2] != 'l' || b[i+3] != 'l' {
			return i, false
		}
		i += 4
	default:
		if i = scanNumber(b, i); i < 0 {
			return 0, false
		}
	}
after:
	if len(c.frames) == 0 {
		return i, true
	}
	i = skipSpace(b, i)
	if i >= n {
		return i, false
	}
	f = &c.frames[len(c.frames)-1]
	switch b[i] {
	case ',':
		i = skipSpace(b, i+1)
		if f.obj {
			goto key
		}
		goto value
	case '}':
		if !f.obj {
			return i, false
		}
		if f.big && !c.hasDup {
			c.sortCheck(int(f.start))
		}
		c.keys = c.keys[:f.start]
		c.frames = c.frames[:len(c.frames)-1]
		i++
		goto after
	case ']':
		if f.obj {
			return i, false
		}
		c.frames = c.frames[:len(c.frames)-1]
		i++
		goto after
	default:
		return i, false
	}
key:
	if i >= n || b[i] != '"' {
		return i, false
	}
	start = i
	if i, esc, hi = scanString(b, i); i < 0 {
		return 0, false
	}
	if !c.hasDup {
		c.addKey(start+1, i-1, esc, hi)
	}
	i = skipSpace(b, i)
	if i >= n || b[i] != ':' {
		return i, false
	}
	i = skipSpace(b, i+1)
	goto value
}

// scanString validates the string whose opening quote is b[i] and returns
// the index past its closing quote (-1: invalid), whether it holds an
// escape, and whether it holds a byte ≥ 0x80.
func scanString(b []byte, i int) (end int, esc, hi bool) {
	n := len(b)
	j := i + 1
	var seen uint64 // high bits of the bytes passed so far
	for {
		for j+8 <= n {
			x := binary.LittleEndian.Uint64(b[j:])
			stop := zeroBytes(x^quotes) | zeroBytes(x^slashs) | (x-spaces)&^x&highs
			if stop == 0 {
				seen |= x
				j += 8
				continue
			}
			k := uint(bits.TrailingZeros64(stop)) &^ 7
			seen |= x & (1<<k - 1)
			j += int(k >> 3)
			goto found
		}
		for ; j < n; j++ {
			if c := b[j]; c == '"' || c == '\\' || c < 0x20 {
				goto found
			} else {
				seen |= uint64(c)
			}
		}
		return -1, esc, hi
	found:
		if b[j] == '"' {
			return j + 1, esc, seen&highs != 0
		}
		if b[j] != '\\' || j+1 >= n { // a raw control byte, or a cut escape
			return -1, esc, hi
		}
		esc = true
		switch b[j+1] {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			j += 2
		case 'u':
			if n-j < 6 || !isHex(b[j+2]) || !isHex(b[j+3]) || !isHex(b[j+4]) || !isHex(b[j+5]) {
				return -1, esc, hi
			}
			j += 6
		default:
			return -1, esc, hi
		}
	}
}

// zeroBytes sets the high bit of the lowest zero byte of x; bits above it
// may be set spuriously, never bits below it.
func zeroBytes(x uint64) uint64 { return (x - ones) &^ x & highs }

// scanNumber returns the index past the number at b[i] (-1: not a number).
func scanNumber(b []byte, i int) int {
	n := len(b)
	if b[i] == '-' {
		if i++; i >= n {
			return -1
		}
	}
	switch c := b[i]; {
	case c == '0':
		i++
	case '1' <= c && c <= '9':
		for i++; i < n && isDigit(b[i]); i++ {
		}
	default:
		return -1
	}
	if i < n && b[i] == '.' {
		if i++; i >= n || !isDigit(b[i]) {
			return -1
		}
		for i++; i < n && isDigit(b[i]); i++ {
		}
	}
	if i < n && b[i]|0x20 == 'e' {
		if i++; i < n && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= n || !isDigit(b[i]) {
			return -1
		}
		for i++; i < n && isDigit(b[i]); i++ {
		}
	}
	return i
}

func isDigit(c byte) bool { return c-'0' <= 9 }

func isHex(c byte) bool { return c-'0' <= 9 || (c|0x20)-'a' <= 5 }

func skipSpace(b []byte, i int) int {
	for i < len(b) && b[i] <= ' ' && isSpace(b[i]) {
		i++
	}
	return i
}

// addKey records the name c.doc[from:to] in the innermost object, or marks
// it as the document's first repeated name.
func (c *Checker) addKey(from, to int, esc, hi bool) {
	raw := c.doc[from:to]
	ref := keyRef{off: uint32(from), n: uint32(len(raw))}
	name := raw
	if esc || hi && !utf8.Valid(raw) {
		name = c.decode(raw)
		ref = keyRef{off: uint32(len(c.scratch) - len(name)), n: uint32(len(name)) | inScratch}
	}
	if ref.n&inScratch == 0 && from+8 <= len(c.doc) {
		ref.w = binary.LittleEndian.Uint64(c.doc[from:])
		if len(name) < 8 {
			ref.w &= 1<<(8*len(name)) - 1
		}
	} else {
		ref.w = first8(name)
	}
	f := &c.frames[len(c.frames)-1]
	if !f.big {
		bit := uint64(1) << ((ref.w*0x9e3779b97f4a7c15 + uint64(len(name))) >> 58)
		if f.bloom&bit != 0 {
			for _, o := range c.keys[f.start:] {
				if o.w == ref.w && o.len() == len(name) && (len(name) <= 8 || bytes.Equal(c.name(o), name)) {
					c.dup, c.hasDup = ref, true
					return
				}
			}
		}
		f.bloom |= bit
		if len(c.keys)-int(f.start) >= maxLinear {
			f.big = true
		}
	}
	c.keys = append(c.keys, ref)
}

// decode appends the unescaped form of the string contents raw to scratch
// and returns it: escapes resolved (sonic's unquote, native where sonic is;
// a lone surrogate becomes U+FFFD), then each byte that is not part of valid
// UTF-8 replaced by U+FFFD, as encoding/json decodes a string.
func (c *Checker) decode(raw []byte) []byte {
	off := len(c.scratch)
	s := unsafe.String(unsafe.SliceData(raw), len(raw))
	if bytes.IndexByte(raw, '\\') >= 0 {
		if u, err := unquote.String(s); err == 0 {
			s = u
		} // else keep the raw bytes: cannot happen for a validated string
	}
	for len(s) > 0 {
		r, size := utf8.DecodeRuneInString(s)
		if r == utf8.RuneError && size == 1 {
			c.scratch = utf8.AppendRune(c.scratch, utf8.RuneError)
		} else {
			c.scratch = append(c.scratch, s[:size]...)
		}
		s = s[size:]
	}
	return c.scratch[off:]
}

// sortCheck sorts the names of a big object and marks a repeated one.
func (c *Checker) sortCheck(start int) {
	ks := c.keys[start:]
	slices.SortFunc(ks, func(a, b keyRef) int {
		if a.w != b.w {
			if a.w < b.w {
				return -1
			}
			return 1
		}
		return bytes.Compare(c.name(a), c.name(b))
	})
	for i := 1; i < len(ks); i++ {
		if ks[i].w == ks[i-1].w && bytes.Equal(c.name(ks[i]), c.name(ks[i-1])) {
			c.dup, c.hasDup = ks[i], true
			return
		}
	}
}

// first8 returns b's first eight bytes as a little-endian word, zero-padded.
func first8(b []byte) uint64 {
	if len(b) >= 8 {
		return binary.LittleEndian.Uint64(b)
	}
	var w uint64
	for i, c := range b {
		w |= uint64(c) << (8 * i)
	}
	return w
}
