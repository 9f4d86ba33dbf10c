package sluice

import (
	"strconv"
	"unsafe"
)

// Per-batch calls (guest-sdk/ABI.md, "Per-batch functions").
//
// A host call costs a Go guest about 100 ns, more than the host's own work
// for one record, and so does every Go function call and loop iteration
// (about 30 ns: the host's guard against runaway guests runs at each). So
// HandleRecord serves the common case without a host call per operation
// and with as few Go calls as it can:
//
//   - Reads come from columns. Every path-taking call of a handler has a
//     position in its record (the first Get, the second, …: a site). A
//     site that asks for the same path in most records of a batch gets
//     that path's column: in the next batch the path is fetched for every
//     record in one fetch_field call before the handler runs, and the
//     site's Get, GetText, GetString or HashSHA256 finds its record's value
//     in memory.
//   - Decisions are buffered: drop, dead-letter, route, key, header and the
//     field edits whose result is known in advance are appended to one
//     buffer handed over in one apply call when the batch ends. An edit's
//     result is known when the path is valid and the record's kind
//     (record_kinds) says how it ends: a top-level key is always set on an
//     object, a delete of a valid path ends in OK or NOT_FOUND (both
//     success), a hash's outcome is in its column.
//   - Everything else (a nested set, SetValue, RawJSON and Value values,
//     Raw, Key, Topic, Header, Emit, emitted records, batch handlers) is a
//     per-record call, made after handing over the decisions buffered so
//     far, so the host sees every decision in the order the handler made
//     it. A read of a path that an earlier edit of the record touches (the
//     path, a parent or a child) asks the host too.
//
// A record that follows the batch's usual sequence of calls (the same
// paths at the same sites) is served by flat fast paths; a record that
// strays is served correctly by the slow paths, which compare its own
// edits with each read.
//
// If the host nevertheless rejects an edit the SDK counted as certain
// (possible only for a record whose bytes are not valid JSON), the record
// is dead-lettered with that error, as a handler returning it would.

const (
	maxSites   = 16 // path-taking calls per record that can be served by columns
	maxColumns = 8  // paths fetched per batch
	maxEdits   = 4  // field edits per record compared with reads
)

// Record flags.
const (
	recDecided  uint8 = 1 << iota // dropped or dead-lettered
	recDirect                     // every call goes to the host at once
	recPending                    // decisions about the record are buffered
	recOffTrack                   // its calls left the batch's usual sequence
)

// column is one path fetched for the whole batch.
type column struct {
	path  string
	mode  int32
	tab   []uint64 // per record: offset (low 32 bits), length or status (high 32)
	vals  []byte
	ready bool // fetched for the current batch
	uses  int  // records that asked for it in the current batch
	// The fast path's view of tab and vals (no bounds checks: a guest
	// pays for every instruction).
	tabp, valp unsafe.Pointer
}

// site is what the path-taking call at one position of a record asked for
// last.
type site struct {
	path   string
	info   pathInfo
	col    int8 // its column, -1 when none
	edit   bool // the call edits the field
	wanted bool // it needed the records' kinds
}

// pathInfo is what the SDK checked of a path.
type pathInfo uint8

const (
	pathUnknown pathInfo = iota // it may be BAD_PATH (a long index): let the host say
	pathBad                     // the host answers BAD_PATH
	pathKey                     // one object key (not all digits, printable ASCII): edits are predictable
	pathNested                  // valid, but a set's outcome depends on the document
)

var (
	columns  [maxColumns]column
	nColumns int
	sites    [maxSites]site
	// fast[k] is site k's column when a record on track can read it
	// without a check: fetched for this batch, and no edit at an earlier
	// site touches its path.
	fast [maxSites]*column

	ops       []byte  // the buffered decisions, in apply's format
	results   []int32 // apply's results
	nOps      int
	kinds     []byte // record_kinds of the batch, when fetched
	kindsOK   bool
	needKinds bool // an edit needed kinds in the last batch: fetch them up front
	batchN    int32
)

// startBatch fetches the columns (and kinds) the last batch asked for and
// prepares the fast paths.
func startBatch(n int32) {
	batchN = n
	kindsOK = false
	ops, nOps = ops[:0], 0
	for i := 0; i < nColumns; i++ {
		c := &columns[i]
		c.ready = c.uses > 0 && fetchColumn(c, n)
		c.uses = 0
	}
	if needKinds {
		fetchKinds()
	}
	needKinds = false
	for k := range sites {
		fast[k] = nil
		s := &sites[k]
		if s.col < 0 || !columns[s.col].ready {
			continue
		}
		c := &columns[s.col]
		clear := true
		for j := 0; j < k; j++ {
			if sites[j].edit && related(sites[j].path, c.path) {
				clear = false
			}
		}
		if clear {
			fast[k] = c
		}
	}
}

// fetchColumn fetches c for the n records of the batch.
func fetchColumn(c *column, n int32) bool {
	if cap(c.tab) < int(n) {
		c.tab = make([]uint64, n)
	}
	c.tab = c.tab[:n]
	if c.vals == nil {
		// Never nil: an empty value is a non-nil empty slice.
		c.vals = make([]byte, 0, 1024)
	}
	for {
		got := hostFetchField(c.path, c.mode, unsafe.Pointer(unsafe.SliceData(c.tab)), ptr(c.vals[:cap(c.vals)]), uint32(cap(c.vals)))
		if got < 0 {
			return false
		}
		if int(got) <= cap(c.vals) {
			c.vals = c.vals[:got]
			c.tabp, c.valp = unsafe.Pointer(unsafe.SliceData(c.tab)), unsafe.Pointer(unsafe.SliceData(c.vals[:cap(c.vals)]))
			return true
		}
		c.vals = make([]byte, 0, int(got)+int(got)/4)
	}
}

// fetchKinds fetches the kind of every record of the batch.
func fetchKinds() bool {
	if cap(kinds) < int(batchN) {
		kinds = make([]byte, batchN)
	}
	kinds = kinds[:batchN]
	kindsOK = hostRecordKinds(ptr(kinds), uint32(len(kinds))) == batchN
	return kindsOK
}

// endBatch hands over the buffered decisions and keeps, for the next
// batch, the columns asked for by at least an eighth of the records.
func endBatch() {
	flush()
	var moved [maxColumns]int8
	keep := 0
	min := max(int(batchN)/8, 2)
	for i := 0; i < nColumns; i++ {
		moved[i] = -1
		if columns[i].uses >= min {
			if keep != i {
				columns[keep], columns[i] = columns[i], columns[keep]
			}
			moved[i] = int8(keep)
			keep++
		}
	}
	for i := keep; i < nColumns; i++ {
		columns[i].path, columns[i].uses, columns[i].ready = "", 0, false
	}
	if keep != nColumns {
		nColumns = keep
		for i := range sites {
			if c := sites[i].col; c >= 0 {
				sites[i].col = moved[c]
			}
		}
	}
	for i := range sites {
		needKinds = needKinds || sites[i].wanted
		sites[i].wanted = false
	}
}

// samePath reports whether a and b are the same path; paths are usually
// the same constant, so the pointers are compared first.
func samePath(a, b string) bool {
	return len(a) == len(b) && (unsafe.StringData(a) == unsafe.StringData(b) || equalString(unsafe.Slice(unsafe.StringData(a), len(a)), b))
}

// sameConst reports whether a and b are the same string by pointer and
// length (the fast paths' check: the handler passes the same constant).
func sameConst(a, b string) bool {
	return len(a) == len(b) && unsafe.StringData(a) == unsafe.StringData(b)
}

// get is every read: the record's value of path in mode, nil when the
// host has none (missing, not JSON, not a string in FetchString mode); a
// value, even empty, is never nil. Its fast path (a record on track at a
// site with a column) makes no call and checks no bounds.
func (r *Record) get(path string, mode int32) []byte {
	k := r.k
	r.k = k + 1
	if uint32(k) < maxSites && r.flags&(recDirect|recOffTrack) == 0 {
		if c := fast[k]; c != nil && c.mode == mode && len(c.path) == len(path) && unsafe.StringData(c.path) == unsafe.StringData(path) {
			c.uses++
			e := *(*uint64)(unsafe.Add(c.tabp, uintptr(r.idx)*8))
			if int32(e>>32) < 0 {
				return nil
			}
			n := int(e >> 32)
			return *(*[]byte)(unsafe.Pointer(&sliceOf{unsafe.Add(c.valp, uintptr(uint32(e))), n, n}))
		}
	}
	return r.getSlow(path, mode, k)
}

// sliceOf is a slice's header: building a slice from it costs no call
// (unsafe.Slice calls the runtime to check its length).
type sliceOf struct {
	p    unsafe.Pointer
	n, c int
}

// getSlow is get when the fast path does not apply: from the column when
// the record's own edits allow it (learning the column when new), else
// from the host.
func (r *Record) getSlow(path string, mode int32, k int32) []byte {
	if s := r.track(path, k, false); s != nil {
		if c := s.column(path, mode); c != nil && c.ready && !r.touches(path) {
			v, st := c.value(r.idx)
			if st != StatusOK {
				return nil
			}
			return v
		}
	}
	if r.flags&recPending != 0 {
		flush()
	}
	op := getField
	if mode == FetchString {
		op = getString
	}
	v, _ := fetch(op, r.idx, path)
	return v
}

// value returns record idx's entry of the column: its value or status.
func (c *column) value(idx int32) ([]byte, int32) {
	e := c.tab[idx]
	off, l := uint32(e), int32(e>>32)
	if l < 0 {
		return nil, l
	}
	return c.vals[off : off+uint32(l) : off+uint32(l)], StatusOK
}

// track returns the site of the record's k-th path-taking call, updated
// for path (its checks redone when the path changed); nil for a direct
// record or past maxSites. A call whose path or kind (read, edit) is not
// the site's usual one puts the record off track.
func (r *Record) track(path string, k int32, edit bool) *site {
	if r.flags&recDirect != 0 || uint32(k) >= maxSites {
		return nil
	}
	s := &sites[k]
	if !samePath(s.path, path) || s.edit != edit {
		if !samePath(s.path, path) {
			s.path, s.info, s.col = path, checkPath(path), -1
		}
		s.edit = edit
		r.flags |= recOffTrack
		// The fast paths of later sites assumed the old call here.
		for j := k + 1; j < maxSites; j++ {
			fast[j] = nil
		}
	}
	return s
}

// column returns the column of (path, mode) for this site, counting the
// use, and learns it when it is new.
func (s *site) column(path string, mode int32) *column {
	if s.col >= 0 {
		if c := &columns[s.col]; c.mode == mode && samePath(c.path, path) {
			c.uses++
			return c
		}
	}
	for i := 0; i < nColumns; i++ {
		if c := &columns[i]; c.mode == mode && samePath(c.path, path) {
			s.col = int8(i)
			c.uses++
			return c
		}
	}
	if nColumns == maxColumns || s.info == pathBad || s.info == pathUnknown {
		return nil
	}
	c := &columns[nColumns]
	c.path, c.mode, c.uses, c.ready = path, mode, 1, false
	s.col = int8(nColumns)
	nColumns++
	return c
}

// touches reports whether an edit of the record (buffered or made) is on
// path, a parent of it or a child of it.
func (r *Record) touches(path string) bool {
	if r.nEdits > maxEdits {
		return true
	}
	for i := uint8(0); i < r.nEdits; i++ {
		if related(r.edits[i], path) {
			return true
		}
	}
	return false
}

// related reports whether a and b are the same path or one is a prefix of
// the other at a segment boundary.
func related(a, b string) bool {
	if len(a) > len(b) {
		a, b = b, a
	}
	return equalString(unsafe.Slice(unsafe.StringData(b), len(a)), a) && (len(a) == len(b) || b[len(a)] == '.')
}

// checkPath classifies a path as the host's path compiler would.
func checkPath(p string) pathInfo {
	if p == "" {
		return pathBad
	}
	info, seg, digits, ascii := pathKey, 0, true, true
	for i := 0; i <= len(p); i++ {
		if i == len(p) || p[i] == '.' {
			if seg == 0 {
				return pathBad
			}
			if digits {
				if seg > 18 {
					return pathUnknown // may overflow an index
				}
				info = pathNested
			}
			if i < len(p) {
				info = pathNested
			}
			seg, digits = 0, true
			continue
		}
		c := p[i]
		if c < '0' || c > '9' {
			digits = false
		}
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			ascii = false
		}
		seg++
	}
	if info == pathKey && !ascii {
		info = pathNested
	}
	return info
}

// noteEdit remembers a field edit of the record (buffered or made), for
// later reads.
func (r *Record) noteEdit(path string) {
	if r.nEdits < maxEdits {
		r.edits[r.nEdits] = path
	}
	if r.nEdits < 255 {
		r.nEdits++
	}
}

// appendOp buffers one decision about record idx. The fast paths write
// their op with opAt and putOp instead, which inline: a call costs a guest
// more than writing the op.
func appendOp(op, arg byte, idx int32, a, b string) {
	at := opAt(OpHeaderSize + len(a) + len(b))
	putOp(at, op, arg, idx, len(a), len(b))
	copy(ops[at+OpHeaderSize:], a)
	copy(ops[at+OpHeaderSize+len(a):], b)
}

// opAt reserves need bytes at the end of the decision buffer for one op
// and returns where they start.
func opAt(need int) int {
	if cap(ops)-len(ops) < need {
		growOps(need)
	}
	at := len(ops)
	ops = ops[:at+need]
	nOps++
	return at
}

// putOp writes an op's header at ops[at:].
func putOp(at int, op, arg byte, idx int32, la, lb int) {
	p := unsafe.Pointer(unsafe.SliceData(ops[at:]))
	*(*uint64)(p) = uint64(op) | uint64(arg)<<8 | uint64(uint32(idx))<<32
	*(*uint64)(unsafe.Add(p, 8)) = uint64(uint32(la)) | uint64(uint32(lb))<<32
}

func growOps(need int) {
	grown := make([]byte, len(ops), max(2*cap(ops), len(ops)+need, 4096))
	copy(grown, ops)
	ops = grown
}

// flushFor hands over the buffered decisions before a per-record call, so
// the host sees them in the order the handler made them.
func flushFor() {
	if nOps > 0 {
		flush()
	}
}

// flush hands the buffered decisions to the host. An op that failed
// although the SDK counted it as certain dead-letters its record.
func flush() {
	for i := range quad {
		quad[i].flags &^= recPending
	}
	if nOps == 0 {
		return
	}
	if cap(results) < nOps {
		results = make([]int32, nOps+nOps/2)
	}
	res := results[:nOps]
	failed := hostApply(ptr(ops), uint32(len(ops)), unsafe.Pointer(unsafe.SliceData(res)), uint32(4*len(res)))
	buf := ops
	ops, nOps = ops[:0], 0
	if failed == 0 {
		return
	}
	if failed < 0 {
		panic("sluice: the host rejected the SDK's decision buffer: status " + strconv.Itoa(int(failed)))
	}
	// Rare: find the ops that failed.
	for k, at := 0, 0; at < len(buf); k++ {
		h := unsafe.Pointer(&buf[at])
		w0, w1 := *(*uint64)(h), *(*uint64)(unsafe.Add(h, 8))
		op, idx := byte(w0), int32(w0>>32)
		at += OpHeaderSize + int(uint32(w1)) + int(w1>>32)
		st := res[k]
		if st >= 0 || op == OpDrop || op == OpDeadLetter || (op == OpDeleteField && st == StatusNotFound) {
			continue
		}
		hostDeadLetter(idx, statusErr("apply", "", st).Error())
	}
}
