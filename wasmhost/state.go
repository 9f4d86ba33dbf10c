package wasmhost

import (
	"bytes"

	"github.com/sluicehq/sluice/engine"
	"github.com/sluicehq/sluice/engine/codec"
)

// recState is what a call decided about one record. The batch's records are
// copy-on-write: rec is a private copy made on the first edit (mod), so a
// record nobody edits is written out as the very Record that came in.
type recState struct {
	rec         engine.Record // valid when mod (always for emitted records)
	mod         bool
	dropped     bool
	dead        bool
	reason      string
	parent      int32 // -1 for the batch's own records
	firstChild  int32 // emitted records of this one, -1 when none
	lastChild   int32
	nextSibling int32
	ownHeaders  bool  // rec.Headers is a private copy
	ownValue    bool  // rec.Value was made by the host in this call: edits go in place
	slot        int32 // the record's doc in the chain run
}

// callState is the host side of one guest call: the records, what the guest
// decided, and caches. One lives in each instance and is reused across
// calls (grow-only).
type callState struct {
	in      []engine.Record
	recs    []recState
	n       int // len(in)
	emitted int
	maxEmit int
	run     *chainRun // the records' indexes and the slab, shared along the chain
	own     chainRun  // the run of a call made outside a chain (tests, tools)

	paths  map[string]*hpath    // compiled paths, per instance
	recent [recentPaths]*hpath  // the last paths used, checked before paths
	next   int                  // the slot of recent to fill next
	quoted []byte               // set_string's scratch (grow-only)
	topics [recentTopics]string // the last topics set, reused (no allocation per record)
	arena  []byte               // small copies (keys, header values) are carved from it
	fetch  []byte               // fetch_field's scratch for decoded strings (grow-only)
	order  []int32              // collect's scratch
	hasher *fieldHasher         // hash_field's keyed hash (nil: SHA-256), hash.go
}

// useIndex selects the structural index (jsonindex.go) for field lookups
// and edits. Tests turn it off to run the byte-level reference path
// (codec.Get and jsonedit.go) on the same records.
var useIndex = true

const (
	maxPathCache = 1024
	recentPaths  = 8
	recentTopics = 8
	arenaChunk   = 4096
	arenaMax     = 256 // larger copies get their own allocation
)

// reset prepares a call over in outside a chain: the records get fresh
// doc slots in the state's own run.
func (s *callState) reset(in []engine.Record, maxEmit int) {
	for i := range s.own.docs[:s.own.used] {
		s.own.docs[i].reset(nil)
	}
	s.own.used = 0
	s.own.out.forget() // the last call's records own their bytes
	s.own.slab = &s.own.out
	order := make([]int32, len(in))
	for i := range order {
		order[i] = s.own.newSlot()
	}
	s.resetIn(in, order, &s.own, maxEmit)
}

// resetIn prepares a call over in, whose docs are order's slots in run.
func (s *callState) resetIn(in []engine.Record, order []int32, run *chainRun, maxEmit int) {
	s.in, s.n, s.emitted, s.maxEmit, s.run = in, len(in), 0, maxEmit, run
	if cap(s.recs) < len(in) {
		s.recs = make([]recState, len(in), len(in)+len(in)/4)
	} else {
		s.recs = s.recs[:len(in)]
	}
	for i := range s.recs {
		s.recs[i] = recState{parent: -1, firstChild: -1, lastChild: -1, nextSibling: -1, slot: order[i]}
	}
}

// release drops references to the batch so a pooled instance does not keep
// records alive.
func (s *callState) release() {
	s.in = nil
	clear(s.recs)
	s.recs = s.recs[:0]
	s.run = nil
	for i := range s.own.docs[:s.own.used] {
		s.own.docs[i].reset(nil)
	}
	s.own.used = 0
	s.own.out.forget()
}

// valid reports whether idx names a record of this call.
func (s *callState) valid(idx int32) bool { return idx >= 0 && int(idx) < len(s.recs) }

// record returns the current view of record idx (read-only).
func (s *callState) record(idx int32) *engine.Record {
	st := &s.recs[idx]
	if st.mod {
		return &st.rec
	}
	return &s.in[idx]
}

// edit returns record idx for writing, copying it on first write.
func (s *callState) edit(idx int32) *engine.Record {
	st := &s.recs[idx]
	if !st.mod {
		st.rec = s.in[idx]
		st.mod = true
		st.ownValue = false
	}
	return &st.rec
}

// setValue sets record idx's value to doc, made by the host in this call.
func (s *callState) setValue(idx int32, doc []byte) {
	s.edit(idx).Value = doc
	s.recs[idx].ownValue = true
}

// path returns the compiled path for raw (cached per instance: a guest
// uses a handful of paths, so the last few are compared before the map is
// hashed).
func (s *callState) path(raw []byte) (*hpath, bool) {
	sig := pathSig(raw)
	for _, p := range s.recent {
		if p != nil && p.sig == sig && p.p.String() == string(raw) {
			return p, true
		}
	}
	p, ok := s.paths[string(raw)]
	if !ok {
		if p, ok = compilePath(string(raw)); !ok {
			return nil, false
		}
		if s.paths == nil || len(s.paths) >= maxPathCache {
			s.paths = make(map[string]*hpath)
		}
		s.paths[p.p.String()] = p
	}
	s.recent[s.next] = p
	s.next = (s.next + 1) % recentPaths
	return p, true
}

// doc returns the structural index of record idx's current value (a JSON
// record), re-indexing when the value is not the one indexed.
func (s *callState) doc(idx int32) *doc {
	d := &s.run.docs[s.recs[idx].slot]
	if v := s.record(idx).Value; !d.describes(v) {
		d.reset(v)
	}
	return d
}

// editor returns how record idx's next edit gets its bytes.
func (s *callState) editor(idx int32) editor {
	return editor{own: s.recs[idx].ownValue, slab: s.run.slab}
}

// lookup returns the value at hp in JSON record r (index idx), as
// codec.Get would: a slice of its current Value, codec.ErrNotFound, or
// codec.ErrInvalid for a broken document.
func (s *callState) lookup(idx int32, r *engine.Record, hp *hpath) ([]byte, error) {
	if useIndex {
		v, found, ok := s.doc(idx).get(hp.segs)
		if ok {
			if !found {
				return nil, codec.ErrNotFound
			}
			return v, nil
		}
	}
	return codec.Get(r.Value, hp.p)
}

// getField looks up rawPath in record idx: the raw JSON value, or a
// status (BAD_PATH, INVALID_JSON for a record that is not JSON or is
// broken, NOT_FOUND).
func (s *callState) getField(idx int32, rawPath []byte) ([]byte, int32) {
	hp, ok := s.path(rawPath)
	if !ok {
		return nil, StatusBadPath
	}
	return s.getPath(idx, hp)
}

// getPath is getField with the path compiled.
func (s *callState) getPath(idx int32, hp *hpath) ([]byte, int32) {
	r := s.record(idx)
	if r.Format != engine.FormatJSON {
		return nil, StatusInvalidJSON
	}
	v, err := s.lookup(idx, r, hp)
	if err != nil {
		if errorsIsNotFound(err) {
			return nil, StatusNotFound
		}
		return nil, StatusInvalidJSON
	}
	return v, StatusOK
}

// setField sets the field at rawPath of record idx to val: JSON text, or,
// with quote, a string the host quotes. It returns a status.
func (s *callState) setField(idx int32, rawPath, val []byte, quote bool) int32 {
	hp, ok := s.path(rawPath)
	if !ok {
		return StatusBadPath
	}
	r := s.record(idx)
	if r.Format != engine.FormatJSON {
		return StatusInvalidJSON
	}
	if quote {
		s.quoted = appendQuoted(s.quoted[:0], unsafeString(val))
		val = s.quoted
	} else {
		if !codec.Valid(val) {
			return StatusInvalidJSON
		}
		val = trimSpace(val)
	}
	return s.setPath(idx, r, hp, val)
}

// setPath sets hp in JSON record r (index idx) to val (valid, trimmed JSON
// that does not alias the record).
func (s *callState) setPath(idx int32, r *engine.Record, hp *hpath, val []byte) int32 {
	if useIndex {
		out, err, ok := s.doc(idx).set(s.editor(idx), hp, val)
		if ok {
			if err != nil {
				return editStatus(err)
			}
			s.setValue(idx, out)
			return StatusOK
		}
	}
	v, err := codec.Get(r.Value, hp.p)
	out, err := jsonSetAt(r.Value, hp.p, val, v, err, s.recs[idx].ownValue)
	if err != nil {
		return editStatus(err)
	}
	s.setValue(idx, out)
	return StatusOK
}

// deleteField deletes the field at rawPath of record idx.
func (s *callState) deleteField(idx int32, rawPath []byte) int32 {
	hp, ok := s.path(rawPath)
	if !ok {
		return StatusBadPath
	}
	r := s.record(idx)
	if r.Format != engine.FormatJSON {
		return StatusInvalidJSON
	}
	if useIndex {
		out, err, ok := s.doc(idx).del(s.editor(idx), hp)
		if ok {
			if err != nil {
				return editStatus(err)
			}
			s.setValue(idx, out)
			return StatusOK
		}
	}
	v, err := codec.Get(r.Value, hp.p)
	out, err := jsonDeleteAt(r.Value, v, err, s.recs[idx].ownValue)
	if err != nil {
		return editStatus(err)
	}
	s.setValue(idx, out)
	return StatusOK
}

// topic returns t as a string, reusing one of the last topics set when
// equal: a guest routes to a few topics, and records keep their string.
func (s *callState) topic(t []byte) string {
	for _, old := range s.topics {
		if old == string(t) && old != "" {
			return old
		}
	}
	str := string(t)
	copy(s.topics[1:], s.topics[:recentTopics-1])
	s.topics[0] = str
	return str
}

// clone copies b, small copies carved from a shared chunk so that a key
// or header set per record is not an allocation per record. The copy's
// capacity is its length: appending to it never touches its neighbours.
func (s *callState) clone(b []byte) []byte {
	n := len(b)
	if n == 0 || n > arenaMax {
		return bytes.Clone(b)
	}
	if cap(s.arena)-len(s.arena) < n {
		s.arena = make([]byte, 0, arenaChunk)
	}
	at := len(s.arena)
	s.arena = append(s.arena, b...)
	return s.arena[at : at+n : at+n]
}

// header returns the first header named name.
func header(r *engine.Record, name []byte) ([]byte, bool) {
	for i := range r.Headers {
		if r.Headers[i].Key == string(name) {
			return r.Headers[i].Value, true
		}
	}
	return nil, false
}

// setHeader replaces or appends a header on a record being edited.
func (s *callState) setHeader(idx int32, name, val []byte) {
	st := &s.recs[idx]
	r := s.edit(idx)
	if !st.ownHeaders {
		r.Headers = append([]engine.Header(nil), r.Headers...)
		st.ownHeaders = true
	}
	v := s.clone(val)
	for i := range r.Headers {
		if r.Headers[i].Key == string(name) {
			r.Headers[i].Value = v
			return
		}
	}
	r.Headers = append(r.Headers, engine.Header{Key: string(name), Value: v})
}

// emit appends a child of parent with value val.
func (s *callState) emit(parent int32, val []byte) int32 {
	p := s.record(parent)
	child := recState{
		rec:         *p,
		mod:         true,
		parent:      parent,
		firstChild:  -1,
		lastChild:   -1,
		nextSibling: -1,
	}
	child.rec.Value = s.run.slab.clone(val)
	child.slot = s.run.newSlot()
	if p.Headers != nil {
		child.rec.Headers = append([]engine.Header(nil), p.Headers...)
	}
	child.ownHeaders = true
	child.ownValue = true
	// Children hang off the batch record they descend from.
	root := parent
	for s.recs[root].parent >= 0 {
		root = s.recs[root].parent
	}
	child.parent = root
	idx := int32(len(s.recs))
	s.recs = append(s.recs, child)
	rs := &s.recs[root]
	if rs.firstChild < 0 {
		rs.firstChild = idx
	} else {
		s.recs[rs.lastChild].nextSibling = idx
	}
	rs.lastChild = idx
	s.emitted++
	return idx
}

// decisions counted by collect.
type tally struct {
	out, dropped, dead, emitted int
}

// collect is collectIn for a call outside a chain: the output's doc slots
// are not kept.
func (s *callState) collect(recs []engine.Record, dlq []engine.DLQEntry, stage string) ([]engine.Record, []engine.DLQEntry, tally) {
	if cap(s.order) < len(recs) {
		s.order = make([]int32, len(recs))
	}
	out, _, dlq, t := s.collectIn(recs, s.order[:len(recs)], dlq, stage)
	return out, dlq, t
}

// collectIn writes the call's output into recs' backing array when the
// call emitted nothing (the output is never longer than the input then),
// else into a new slice, and appends dead letters. outOrder maps the output
// records to their doc slots (order is the input's; it is compacted in
// place the same way).
func (s *callState) collectIn(recs []engine.Record, order []int32, dlq []engine.DLQEntry, stage string) ([]engine.Record, []int32, []engine.DLQEntry, tally) {
	var t tally
	t.emitted = s.emitted
	var out []engine.Record
	var outOrder []int32
	if s.emitted == 0 {
		out, outOrder = recs[:0], order[:0]
	} else {
		out = make([]engine.Record, 0, s.n+s.emitted)
		outOrder = make([]int32, 0, s.n+s.emitted)
	}
	for i := 0; i < s.n; i++ {
		in := recs[i]
		st := &s.recs[i]
		switch {
		case st.dead:
			dlq = append(dlq, engine.DLQEntry{Record: in, Reason: st.reason, Stage: stage})
			t.dead++
		case st.dropped:
			t.dropped++
		case st.mod:
			out = append(out, st.rec)
			outOrder = append(outOrder, st.slot)
		default:
			out = append(out, in)
			outOrder = append(outOrder, st.slot)
		}
		for c := st.firstChild; c >= 0; c = s.recs[c].nextSibling {
			cs := &s.recs[c]
			switch {
			case cs.dead:
				dlq = append(dlq, engine.DLQEntry{Record: cs.rec, Reason: cs.reason, Stage: stage})
				t.dead++
			case cs.dropped:
				t.dropped++
			default:
				out = append(out, cs.rec)
				outOrder = append(outOrder, cs.slot)
			}
		}
	}
	t.out = len(out)
	return out, outOrder, dlq, t
}
