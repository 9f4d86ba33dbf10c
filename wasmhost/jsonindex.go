package wasmhost

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/bits"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"

	"github.com/sluicehq/sluice/engine/codec"
)

// The structural index of a JSON record.
//
// A record's fields are looked up many times per chain: every transform
// reads some and edits some. Instead of searching the document from its
// first byte on every access (codec.Get), the host keeps, per record, an
// index of the members it has scanned so far: a tree of nodes, each the
// span of a key and of its value, built lazily — an object's members are
// scanned only as far as a lookup needs, and a nested object only when a
// path descends into it. The index lives as long as the record stays in
// its chain (see chainRun): the second transform that reads "event" finds
// it without scanning.
//
// Edits splice the record's bytes exactly as the byte-level edits of
// jsonedit.go do (the same spans, commas and insertion points, so the
// output is byte-identical) and then shift the index's offsets past the
// edit, so the index stays valid across edits and transforms.
//
// The scanner checks structure (strings, brackets, commas, colons) but not
// the contents of scalars: records are validated before they reach a
// transform. A record whose structure it cannot follow is marked broken
// and served by codec.Get and the byte-level edits, as before the index.

// Node kinds.
const (
	kindOther  uint8 = iota // string, number, literal
	kindObject              // {…}
	kindArray               // […]
)

// node is one value of the indexed document: the root, an object member
// (with its key) or an array element. Offsets are into doc.val.
type node struct {
	ks, ke      int32  // the key's bytes between its quotes; -1 for the root and array elements
	vs, ve      int32  // the value's span
	first, last int32  // the children indexed so far (containers), -1 when none
	next        int32  // the next sibling, -1 when none (or not yet indexed)
	scan        int32  // containers: where the next child's scan starts; -1 once every child is indexed
	count       int32  // children indexed
	kpre        uint32 // the key's first (up to) four bytes, little-endian: a quick mismatch
	kind        uint8
	escKey      bool // the key holds an escape: compare it decoded
}

// Document states.
const (
	docNew     uint8 = iota // nothing indexed yet
	docIndexed              // nodes[0] is the root
	docBroken               // the scanner could not follow the structure: use codec
)

// doc is the index of one record's value. val is the exact byte slice the
// index describes; a record whose Value is not that slice (another pointer
// or length) is re-indexed on its next access.
type doc struct {
	val   []byte
	nodes []node
	state uint8
	prev  int32  // the sibling before the node child last returned, -1 when first
	key   []byte // scratch for decoding escaped keys
}

// reset makes d describe val, with nothing indexed yet.
func (d *doc) reset(val []byte) {
	d.val = val
	d.nodes = d.nodes[:0]
	d.state = docNew
}

// describes reports whether d's index is about exactly these bytes.
func (d *doc) describes(val []byte) bool {
	return len(val) == len(d.val) && unsafe.SliceData(val) == unsafe.SliceData(d.val)
}

// seg is one segment of a compiled path.
type seg struct {
	key   string
	pre   uint32 // the key's first (up to) four bytes, as node.kpre
	rare  int    // rareByte(key)
	index int
	isIdx bool
}

// keyPrefix returns the first (up to) four bytes of k, little-endian.
func keyPrefix(k []byte) uint32 {
	var x uint32
	for i := min(len(k), 4) - 1; i >= 0; i-- {
		x = x<<8 | uint32(k[i])
	}
	return x
}

// hpath is a path as the host uses it: the codec's compiled form (for the
// byte-level fallback) and its segments (for the index).
type hpath struct {
	p    codec.Path
	segs []seg
	sig  uint64 // pathSig of its source
}

// pathSig packs a path's length and first bytes: a quick mismatch.
func pathSig(b []byte) uint64 {
	x := uint64(len(b))
	if len(b) >= 8 {
		return x | binary.LittleEndian.Uint64(b)<<16 // the same bytes, one load
	}
	for i := 0; i < min(len(b), 6); i++ {
		x |= uint64(b[i]) << (8 * (i + 2))
	}
	return x
}

// compilePath compiles raw with the codec's rules (so the same paths are
// valid or BAD_PATH) and splits it into segments the same way.
func compilePath(raw string) (*hpath, bool) {
	p, err := codec.ParsePath(raw)
	if err != nil {
		return nil, false
	}
	parts := strings.Split(p.String(), ".")
	hp := &hpath{p: p, segs: make([]seg, len(parts)), sig: pathSig([]byte(raw))}
	for i, part := range parts {
		if isDigits(part) {
			n, err := strconv.Atoi(part)
			if err != nil {
				return nil, false
			}
			hp.segs[i] = seg{index: n, isIdx: true}
			continue
		}
		hp.segs[i] = seg{key: part, pre: keyPrefix([]byte(part)), rare: rareByte(part)}
	}
	return hp, true
}

func (d *doc) root() bool {
	if d.state == docIndexed {
		return true
	}
	if d.state == docBroken {
		return false
	}
	b := d.val
	if len(b) >= math.MaxInt32 {
		d.state = docBroken
		return false
	}
	i, j := 0, len(b)
	for i < j && isSpace(b[i]) {
		i++
	}
	for j > i && isSpace(b[j-1]) {
		j--
	}
	if i == j {
		d.state = docBroken
		return false
	}
	n := node{ks: -1, ke: -1, vs: int32(i), ve: int32(j), first: -1, last: -1, next: -1, scan: -1}
	switch b[i] {
	case '{':
		if b[j-1] != '}' || j-i < 2 {
			d.state = docBroken
			return false
		}
		n.kind, n.scan = kindObject, int32(i+1)
	case '[':
		if b[j-1] != ']' || j-i < 2 {
			d.state = docBroken
			return false
		}
		n.kind, n.scan = kindArray, int32(i+1)
	}
	d.nodes = append(d.nodes[:0], n)
	d.state = docIndexed
	return true
}

// broken marks the document as one the scanner cannot follow.
func (d *doc) broken() int32 {
	d.state = docBroken
	return -1
}

// scanNext indexes the next child of container ni and returns its node,
// or -1 when every child is indexed (or the document is broken: check
// d.state).
func (d *doc) scanNext(ni int32) int32 {
	c, _ := d.scan(ni, nil)
	return c
}

// scan indexes the next children of container ni: one when s is nil, else
// as many as it takes to reach a member with s's key. It returns the last
// child it indexed (the one with s's key), or -1 when every child is
// indexed without one (or the document is broken: check d.state), and
// the sibling before that child (-1 when it is the first). One call
// scans many members: the bytes, the bounds and the position stay in
// registers from one member to the next.
func (d *doc) scan(ni int32, s *seg) (int32, int32) {
	b := d.val
	p := &d.nodes[ni]
	if p.scan < 0 {
		return -1, -1
	}
	end := int(p.ve) - 1 // the closing bracket
	if end >= len(b) {
		return d.broken(), -1
	}
	b = b[:end+1]
	i := int(p.scan)
	for {
		if b[i] <= ' ' {
			i = ws(b, i)
		}
		if i >= end {
			if i == end {
				p.scan = -1
				return -1, -1
			}
			return d.broken(), -1
		}
		if b[i] == ',' {
			if p.count == 0 {
				return d.broken(), -1
			}
			i++
			if b[i] <= ' ' {
				i = ws(b, i)
			}
		} else if p.count > 0 && !d.afterEdit(p) {
			return d.broken(), -1
		}
		if i >= end {
			return d.broken(), -1
		}
		ks, ke, esc, kpre := int32(-1), int32(-1), false, uint32(0)
		if p.kind == kindObject {
			if b[i] != '"' {
				return d.broken(), -1
			}
			// Keys are short: a byte loop.
			e := i + 1
			for ; e < end; e++ {
				if c := b[e]; c == '\\' {
					esc = true
					e++
				} else if c == '"' {
					break
				}
			}
			if e >= end {
				return d.broken(), -1
			}
			e++
			ks, ke = int32(i+1), int32(e-1)
			// In valid JSON a key is followed by at least `":`, a value and a
			// bracket, so four bytes can be loaded from its start; a broken
			// record (`{"0"}`) may end sooner.
			switch kl := ke - ks; {
			case int(ks)+4 > len(b):
				kpre = keyPrefix(b[ks:ke])
			case kl >= 4:
				kpre = binary.LittleEndian.Uint32(b[ks:])
			default:
				kpre = binary.LittleEndian.Uint32(b[ks:]) & (1<<(8*kl) - 1)
			}
			i = e
			if b[i] != ':' {
				i = ws(b, i)
				if i >= end || b[i] != ':' {
					return d.broken(), -1
				}
			}
			i++
			if b[i] <= ' ' {
				i = ws(b, i)
			}
			if i >= end {
				return d.broken(), -1
			}
		}
		var e int
		kind, scan := kindOther, int32(-1)
		switch c := b[i]; c {
		case '"':
			e, _ = skipString(b, i)
			if e > end {
				e = -1
			}
		case '{':
			kind, scan = kindObject, int32(i+1)
			e = skipContainer(b, i, end)
		case '[':
			kind, scan = kindArray, int32(i+1)
			e = skipContainer(b, i, end)
		default:
			e = skipScalar(b, i, end)
		}
		if e < 0 {
			return d.broken(), -1
		}
		ci := int32(len(d.nodes))
		if len(d.nodes) < cap(d.nodes) {
			d.nodes = d.nodes[:ci+1]
		} else {
			d.nodes = append(d.nodes, node{})
		}
		n := &d.nodes[ci]
		n.ks, n.ke, n.vs, n.ve = ks, ke, int32(i), int32(e)
		n.first, n.last, n.next, n.scan, n.count = -1, -1, -1, scan, 0
		n.kind, n.escKey, n.kpre = kind, esc, kpre
		p = &d.nodes[ni] // the append may have moved the nodes
		before := d.link(p, ci)
		p.scan = int32(e)
		if s == nil {
			return ci, before
		}
		if n := &d.nodes[ci]; (n.kpre == s.pre || n.escKey) && d.match(n, ci, s) {
			return ci, before
		}
		i = e
		p = &d.nodes[ni]
	}
}

// ws skips JSON whitespace from b[i].
func ws(b []byte, i int) int {
	for i < len(b) && b[i] <= ' ' && isSpace(b[i]) {
		i++
	}
	return i
}

// afterEdit reports whether a container's scan may resume without a comma:
// a deletion that removed the member after the last indexed one leaves the
// scan position at the next member's key.
func (d *doc) afterEdit(p *node) bool {
	i := skipSpaceBack(d.val, int(p.scan)-1)
	return i >= 0 && d.val[i] == ','
}

// skipScalar returns the end of the number or literal at b[i] (before
// limit), or -1 when there is none. One table load a byte: a timestamp
// is a dozen digits.
func skipScalar(b []byte, i, limit int) int {
	if limit > len(b) {
		return -1
	}
	j := i
	for ; j < limit; j++ {
		if c := scalarByte[b[j]]; c != 0 {
			if c == scalarBad {
				return -1
			}
			break
		}
	}
	if j == i {
		return -1
	}
	return j
}

// scalarByte classes the bytes that stop a scalar: its end (a separator
// or space) or a structure no scalar may hold.
var scalarByte = [256]uint8{
	',': scalarEnd, '}': scalarEnd, ']': scalarEnd, ' ': scalarEnd, '\t': scalarEnd, '\n': scalarEnd, '\r': scalarEnd,
	'"': scalarBad, '{': scalarBad, '[': scalarBad, ':': scalarBad,
}

const (
	scalarEnd = 1
	scalarBad = 2
)

const (
	lo8 = 0x0101010101010101
	hi8 = 0x8080808080808080
)

// zeroBytes sets the high bit of each zero byte of x; the lowest set bit
// is exact (bits above it may be false positives).
func zeroBytes(x uint64) uint64 { return (x - lo8) &^ x & hi8 }

// skipContainer returns the end of the object or array opening at b[i]
// (before limit), or -1. A byte loop: nested values are mostly short
// strings, for which it beats looking for quotes a word at a time.
func skipContainer(b []byte, i, limit int) int {
	if limit > len(b) {
		return -1
	}
	b = b[:limit]
	depth := 0
	for j := i; j < len(b); j++ {
		switch b[j] {
		case '"':
			for j++; j < len(b); j++ {
				if c := b[j]; c == '\\' {
					j++
				} else if c == '"' {
					break
				}
			}
			if j >= len(b) {
				return -1
			}
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return j + 1
			}
		}
	}
	return -1
}

// skipString returns the index after the closing quote of the string that
// opens at b[i], and whether it holds an escape; -1 when unterminated. It
// looks for the quote and the backslash eight bytes at a time.
func skipString(b []byte, i int) (int, bool) {
	esc := false
	j, n := i+1, len(b)
	for j < n {
		if j+8 <= n {
			w := binary.LittleEndian.Uint64(b[j:])
			m := zeroBytes(w^(lo8*'"')) | zeroBytes(w^(lo8*'\\'))
			if m == 0 {
				j += 8
				continue
			}
			j += bits.TrailingZeros64(m) >> 3
		}
		switch b[j] {
		case '"':
			return j + 1, esc
		case '\\':
			esc = true
			j += 2
		default:
			j++
		}
	}
	return -1, esc
}

// keyIs reports whether node ci's key is k, decoded when it holds escapes
// (the codec matches keys by their decoded value).
func (d *doc) keyIs(ci int32, k string) bool {
	c := &d.nodes[ci]
	raw := d.val[c.ks:c.ke]
	if !c.escKey {
		return string(raw) == k
	}
	key, ok := decodeKey(d.key[:0], raw)
	d.key = key
	return ok && string(key) == k
}

// decodeKey decodes the escapes of a key the way the codec (sonic) matches
// keys: bytes that are not valid UTF-8 are kept as they are, a surrogate
// pair becomes its character, and a key with a lone surrogate matches no
// path (ok is false).
func decodeKey(dst, raw []byte) ([]byte, bool) {
	for i := 0; i < len(raw); {
		c := raw[i]
		if c != '\\' {
			dst = append(dst, c)
			i++
			continue
		}
		if i+1 >= len(raw) {
			return dst, false
		}
		switch e := raw[i+1]; e {
		case '"', '\\', '/':
			dst = append(dst, e)
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, ok := hex4(raw[i+2:])
			if !ok {
				return dst, false
			}
			i += 6
			if utf16.IsSurrogate(r) {
				if i+1 >= len(raw) || raw[i] != '\\' || raw[i+1] != 'u' {
					return dst, false
				}
				r2, ok := hex4(raw[i+2:])
				if !ok {
					return dst, false
				}
				if r = utf16.DecodeRune(r, r2); r == utf8.RuneError {
					return dst, false
				}
				i += 6
			}
			dst = utf8.AppendRune(dst, r)
			continue
		default:
			return dst, false
		}
		i += 2
	}
	return dst, true
}

// match reports whether node n (index c) has the key s: the length and
// the first four bytes decide most mismatches without a comparison. The
// callers test the prefix first (match is not inlined).
func (d *doc) match(n *node, c int32, s *seg) bool {
	if n.escKey {
		return d.keyIs(c, s.key)
	}
	kl := int(n.ke - n.ks)
	if kl != len(s.key) || n.kpre != s.pre {
		return false
	}
	return kl <= 4 || string(d.val[n.ks+4:n.ke]) == s.key[4:]
}

// absent reports whether no member of object p past its scan position
// can have the key s, without scanning them: when those bytes hold no
// backslash every key is its raw bytes, so a member with the key would
// show as the quoted key (which a string value or a nested key may also
// show: then the members are scanned). Setting a new field must know the
// key is absent (duplicate keys are forbidden); scanning every member
// after the last one indexed to learn it cost more than the rest of the
// edit. The members skipped are not checked for structure as the scan
// checks them: records are valid JSON when they reach a transform, and
// the scan that indexes those members later still finds a break.
func (d *doc) absent(p *node, s *seg) bool {
	end := int(p.ve) - 1
	if p.scan < 0 || int(p.scan) > end || end >= len(d.val) {
		return false
	}
	r := d.val[p.scan:end]
	return bytes.IndexByte(r, '\\') < 0 && !hasQuoted(r, s)
}

// hasQuoted reports whether r holds s's key between quotes. It looks for
// the key's rarest byte and checks the rest around it: bytes.Index of the
// quoted key looks for its first byte, the quote, too common in JSON for
// its fast path (it measured slower than scanning).
func hasQuoted(r []byte, s *seg) bool {
	k, n, at := s.key, len(s.key), s.rare
	if n == 0 {
		return true // "" is on every string's edge: let the scan decide
	}
	// The key would start at i-at, in [1, len(r)-n-1] (quotes around it).
	for i := 1 + at; i < len(r)-n+at; i++ {
		j := bytes.IndexByte(r[i:len(r)-n+at], k[at])
		if j < 0 {
			return false
		}
		i += j
		if st := i - at; r[st-1] == '"' && r[st+n] == '"' && string(r[st:st+n]) == k {
			return true
		}
	}
	return false
}

// rareByte returns the index of the byte of k least likely in JSON text,
// for hasQuoted: anything but a lowercase letter or a digit (an uppercase
// letter, '_', '-'), else the letter rarest in English text, a digit
// ranking with the common letters (numbers and timestamps).
func rareByte(k string) int {
	const common = "etaoinsrhldcumfpgwybvkxjqz" // by frequency, most common first
	best, rank := 0, -1
	for i := 0; i < len(k); i++ {
		r := strings.IndexByte(common, k[i])
		if r < 0 {
			if c := k[i]; c >= '0' && c <= '9' {
				r = 10 // digits: in most numbers and timestamps
			} else {
				r = len(common)
			}
		}
		if r > rank {
			best, rank = i, r
		}
	}
	return best
}

// child returns the child of container ni that s addresses, scanning as
// far as needed, or -1; d.prev is then its previous sibling (so a deletion
// unlinks it without walking the list again). With probe (the caller
// expects the key to be missing), an object's unscanned members are first
// checked with absent.
func (d *doc) child(ni int32, s *seg, probe bool) int32 {
	p := &d.nodes[ni]
	prev := int32(-1)
	switch {
	case p.kind == kindObject && !s.isIdx:
		for c := p.first; c >= 0; {
			n := &d.nodes[c]
			if (n.kpre == s.pre || n.escKey) && d.match(n, c, s) {
				d.prev = prev
				return c
			}
			// Members scanned in one go are consecutive nodes: predicting
			// c+1 (a branch) lets the next node's load start without
			// waiting for this one's next.
			prev = c
			if n.next == c+1 {
				c++
			} else {
				c = n.next
			}
		}
		if probe && d.absent(p, s) {
			return -1
		}
		c, before := d.scan(ni, s) // appends after the last indexed child, prev
		if c >= 0 {
			d.prev = before
		}
		return c
	case p.kind == kindArray && s.isIdx:
		k := s.index
		c := p.first
		for ; c >= 0 && k > 0; c = d.nodes[c].next {
			prev = c
			k--
		}
		if c >= 0 {
			d.prev = prev
			return c
		}
		for {
			c := d.scanNext(ni)
			if c < 0 {
				return -1
			}
			if k == 0 {
				d.prev = prev
				return c
			}
			prev = c
			k--
		}
	}
	return -1
}

// walk follows segs from the root and returns the deepest node reached,
// its parent (-1 for the root) and how many segments it matched
// (len(segs): the path exists). ok is false when the document is broken.
// probe is child's.
func (d *doc) walk(segs []seg, probe bool) (ni, parent int32, depth int, ok bool) {
	if !d.root() {
		return -1, -1, 0, false
	}
	parent = -1
	for depth < len(segs) {
		c := d.child(ni, &segs[depth], probe)
		if c < 0 {
			break
		}
		parent, ni = ni, c
		depth++
	}
	return ni, parent, depth, d.state != docBroken
}

// get returns the value at segs (a slice of d.val) or codec.ErrNotFound;
// ok is false when the document is broken.
func (d *doc) get(segs []seg) ([]byte, bool, bool) {
	ni, _, depth, ok := d.walk(segs, false)
	if !ok {
		return nil, false, false
	}
	if depth < len(segs) {
		return nil, false, true
	}
	n := &d.nodes[ni]
	return d.val[n.vs:n.ve], true, true
}

// shift moves every offset of the index after a splice that replaced
// val[from:to] with n bytes. Offsets past to move; an end equal to to
// moves only when bytes were removed or replaced there (an insertion at a
// value's end does not extend the value). A scan position inside the
// removed bytes moves to from.
func (d *doc) shift(from, to, n int32) {
	delta := n - (to - from)
	// An offset moves when it is past lim; an end equal to to moves too
	// when bytes were removed there.
	lim := to
	if to > from {
		lim = to - 1
	}
	for i := range d.nodes {
		c := &d.nodes[i]
		if c.ks > lim {
			c.ks += delta
		}
		if c.ke > lim {
			c.ke += delta
		}
		if c.vs > lim {
			c.vs += delta
		}
		if c.ve > lim {
			c.ve += delta
		}
		if c.scan >= 0 {
			if c.scan >= from && c.scan < to {
				c.scan = from
			} else if c.scan > lim {
				c.scan += delta
			}
		}
	}
}

// setValueNode resets node ni to describe the value now at [vs, ve) with none
// of its children indexed.
func (d *doc) setValueNode(ni int32, vs, ve int32) {
	c := &d.nodes[ni]
	c.vs, c.ve, c.first, c.last, c.count, c.scan, c.kind = vs, ve, -1, -1, 0, -1, kindOther
	switch d.val[vs] {
	case '{':
		c.kind, c.scan = kindObject, vs+1
	case '[':
		c.kind, c.scan = kindArray, vs+1
	}
}

// unlink removes child ci, after prev (-1 when first), from container
// pi's list.
func (d *doc) unlink(pi, prev, ci int32) {
	p := &d.nodes[pi]
	next := d.nodes[ci].next
	if prev < 0 {
		p.first = next
	} else {
		d.nodes[prev].next = next
	}
	if p.last == ci {
		p.last = prev
	}
	p.count--
}

// editor is where an edit's new bytes come from: the splice is made in
// place when own and the capacity allows, else into a fresh buffer carved
// from the slab.
type editor struct {
	own  bool
	slab *slab
}

// splice returns d.val with [from, to) replaced by ins (in place when the
// editor allows), updating the index.
func (d *doc) splice(e editor, from, to int, ins []byte) []byte {
	doc := d.val
	n := len(doc) - (to - from) + len(ins)
	var out []byte
	if e.own && n <= cap(doc) {
		out = doc[:n]
		copy(out[from+len(ins):], doc[to:])
		copy(out[from:], ins)
	} else {
		out = e.slab.alloc(n, n+spliceSlack+n/8)
		copy(out, doc[:from])
		copy(out[from:], ins)
		copy(out[from+len(ins):], doc[to:])
	}
	d.val = out
	d.shift(int32(from), int32(to), int32(len(ins)))
	return out
}

// set sets the value at hp to val (valid JSON, trimmed), as jsonSetAt does
// on the bytes, and returns the new document. ok is false when the
// document is broken (nothing changed: use the byte-level edit).
func (d *doc) set(e editor, hp *hpath, val []byte) (out []byte, err error, ok bool) {
	ni, _, depth, ok := d.walk(hp.segs, true)
	if !ok {
		return nil, nil, false
	}
	if depth == len(hp.segs) {
		return d.replace(e, ni, val), nil, true
	}
	parent := d.nodes[ni]
	if parent.kind != kindObject {
		return nil, errNotObject, true
	}
	segs := hp.segs[depth:]
	for i := range segs {
		if segs[i].isIdx {
			return nil, errNotObject, true
		}
		if !utf8.ValidString(segs[i].key) {
			return nil, codec.ErrBadPath, true
		}
	}
	var insBuf [256]byte
	ins := insBuf[:0]
	comma := !emptyObject(d.val[parent.vs:parent.ve])
	if comma {
		ins = append(ins, ',')
	}
	keyAt := len(ins)
	for i := range segs {
		ins = appendQuoted(ins, segs[i].key)
		if i == 0 {
			keyAt = len(ins) // just past the first key's closing quote
		}
		ins = append(ins, ':')
		if i < len(segs)-1 {
			ins = append(ins, '{')
		}
	}
	ins = append(ins, val...)
	for i := 0; i < len(segs)-1; i++ {
		ins = append(ins, '}')
	}
	at := int(parent.ve) - 1 // before the closing brace
	out = d.splice(e, at, at, ins)
	// The new member, as the scanner would have indexed it.
	ks := int32(at)
	if comma {
		ks++
	}
	m := node{ks: ks + 1, ke: int32(at + keyAt - 1), vs: int32(at + keyAt + 1), ve: int32(at + len(ins)), first: -1, last: -1, next: -1, scan: -1}
	m.escKey = m.ke-m.ks != int32(len(segs[0].key))
	m.kpre = keyPrefix(out[m.ks:m.ke])
	switch out[m.vs] {
	case '{':
		m.kind, m.scan = kindObject, m.vs+1
	case '[':
		m.kind, m.scan = kindArray, m.vs+1
	}
	mi := int32(len(d.nodes))
	d.nodes = append(d.nodes, m)
	p := &d.nodes[ni]
	if p.scan >= 0 {
		// Not every member was indexed (a lookup stopped early): index the
		// new one when the scan reaches it.
		d.nodes = d.nodes[:mi]
		return out, nil, true
	}
	d.link(p, mi)
	return out, nil, true
}

// link appends node ci to container p's children and returns the child
// before it (-1 when it is the first).
func (d *doc) link(p *node, ci int32) int32 {
	prev := p.last
	if prev >= 0 {
		d.nodes[prev].next = ci
	} else {
		p.first = ci
	}
	p.last = ci
	p.count++
	return prev
}

// replace sets node ni's value to val and returns the new document.
func (d *doc) replace(e editor, ni int32, val []byte) []byte {
	c := d.nodes[ni]
	out := d.splice(e, int(c.vs), int(c.ve), val)
	d.setValueNode(ni, c.vs, c.vs+int32(len(val)))
	return out
}

// find returns the node at segs, -1 when there is none; ok is false when
// the document is broken.
func (d *doc) find(segs []seg) (ni int32, ok bool) {
	ni, _, depth, ok := d.walk(segs, false)
	if !ok || depth < len(segs) {
		return -1, ok
	}
	return ni, true
}

// del deletes the member or element at hp, as jsonDeleteAt does on the
// bytes. ok is false when the document is broken.
func (d *doc) del(e editor, hp *hpath) (out []byte, err error, ok bool) {
	ni, pi, depth, ok := d.walk(hp.segs, false)
	if !ok {
		return nil, nil, false
	}
	if depth < len(hp.segs) {
		return nil, codec.ErrNotFound, true
	}
	c := d.nodes[ni]
	from, to, err := deleteSpan(d.val, int(c.vs), int(c.ve))
	if err != nil {
		return nil, err, true
	}
	if pi < 0 {
		return nil, errNotObject, true // the root itself
	}
	wasLast := d.nodes[pi].last == ni
	d.unlink(pi, d.prev, ni) // walk's last child call found ni
	out = d.splice(e, from, to, nil)
	if p := &d.nodes[pi]; wasLast && p.scan >= 0 {
		p.scan = int32(from)
	}
	return out, nil, true
}
