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
	ownHeaders  bool // rec.Headers is a private copy
}

// lookup is one cached get_field result.
type lookup struct {
	path string
	val  []byte
	err  int32
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

	paths  map[string]codec.Path // parsed paths, per instance
	quoted []byte                // set_string's scratch (grow-only)

	// Lookups of the record cacheIdx since its last edit.
	cacheIdx int32
	cache    []lookup
}

const maxPathCache = 1024

func (s *callState) reset(in []engine.Record, maxEmit int) {
	s.in, s.n, s.emitted, s.maxEmit = in, len(in), 0, maxEmit
	if cap(s.recs) < len(in) {
		s.recs = make([]recState, len(in), len(in)+len(in)/4)
	} else {
		s.recs = s.recs[:len(in)]
	}
	for i := range s.recs {
		s.recs[i] = recState{parent: -1, firstChild: -1, lastChild: -1, nextSibling: -1}
	}
	s.cacheIdx = -1
	s.cache = s.cache[:0]
}

// release drops references to the batch so a pooled instance does not keep
// records alive.
func (s *callState) release() {
	s.in = nil
	clear(s.recs)
	s.recs = s.recs[:0]
	s.cache = s.cache[:0]
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
	}
	if idx == s.cacheIdx {
		s.cacheIdx = -1
		s.cache = s.cache[:0]
	}
	return &st.rec
}

// path returns the parsed path for raw (cached per instance).
func (s *callState) path(raw []byte) (codec.Path, bool) {
	if p, ok := s.paths[string(raw)]; ok {
		return p, true
	}
	p, err := codec.ParsePath(string(raw))
	if err != nil {
		return codec.Path{}, false
	}
	if len(s.paths) >= maxPathCache {
		clear(s.paths)
	}
	s.paths[p.String()] = p
	return p, true
}

// getField looks up path in record idx, through the per-record cache.
func (s *callState) getField(idx int32, rawPath []byte) ([]byte, int32) {
	if idx == s.cacheIdx {
		for i := range s.cache {
			if s.cache[i].path == string(rawPath) {
				return s.cache[i].val, s.cache[i].err
			}
		}
	}
	p, ok := s.path(rawPath)
	if !ok {
		return nil, StatusBadPath
	}
	r := s.record(idx)
	var val []byte
	status := StatusOK
	if r.Format != engine.FormatJSON {
		status = StatusInvalidJSON
	} else if v, err := codec.Get(r.Value, p); err != nil {
		status = StatusNotFound
		if !errorsIsNotFound(err) {
			status = StatusInvalidJSON
		}
	} else {
		val = v
	}
	if idx != s.cacheIdx {
		s.cacheIdx = idx
		s.cache = s.cache[:0]
	}
	if len(s.cache) < 8 {
		s.cache = append(s.cache, lookup{path: p.String(), val: val, err: status})
	}
	return val, status
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
	v := bytes.Clone(val)
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
	child.rec.Value = bytes.Clone(val)
	child.rec.Headers = append([]engine.Header(nil), p.Headers...)
	child.ownHeaders = true
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

// collect writes the call's output into recs' backing array when the call
// emitted nothing (the output is never longer than the input then), else
// into a new slice, and appends dead letters.
func (s *callState) collect(recs []engine.Record, dlq []engine.DLQEntry, stage string) ([]engine.Record, []engine.DLQEntry, tally) {
	var t tally
	t.emitted = s.emitted
	var out []engine.Record
	if s.emitted == 0 {
		out = recs[:0]
	} else {
		out = make([]engine.Record, 0, s.n+s.emitted)
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
		default:
			out = append(out, in)
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
			}
		}
	}
	t.out = len(out)
	return out, dlq, t
}
