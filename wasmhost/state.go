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
	ownValue    bool // rec.Value was made by the host in this call: edits go in place
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

	paths  map[string]codec.Path   // parsed paths, per instance
	recent [recentPaths]codec.Path // the last paths used, checked before paths
	next   int                     // the slot of recent to fill next
	quoted []byte                  // set_string's scratch (grow-only)
	topics [recentTopics]string    // the last topics set, reused (no allocation per record)
	arena  []byte                  // small copies (keys, header values) are carved from it

	// Lookups of the record cacheIdx since its last edit.
	cacheIdx int32
	cache    []lookup
}

const (
	maxPathCache = 1024
	recentPaths  = 8
	recentTopics = 8
	arenaChunk   = 4096
	arenaMax     = 256 // larger copies get their own allocation
)

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
		st.ownValue = false
	}
	if idx == s.cacheIdx {
		s.cacheIdx = -1
		s.cache = s.cache[:0]
	}
	return &st.rec
}

// setValue sets record idx's value to doc, made by the host in this call.
func (s *callState) setValue(idx int32, doc []byte) {
	s.edit(idx).Value = doc
	s.recs[idx].ownValue = true
}

// path returns the parsed path for raw (cached per instance: a guest uses a
// handful of paths, so the last few are compared before the map is hashed).
func (s *callState) path(raw []byte) (codec.Path, bool) {
	for i := range s.recent {
		if p := s.recent[i]; p.String() == string(raw) && len(raw) > 0 {
			return p, true
		}
	}
	p, ok := s.paths[string(raw)]
	if !ok {
		var err error
		if p, err = codec.ParsePath(string(raw)); err != nil {
			return codec.Path{}, false
		}
		if len(s.paths) >= maxPathCache {
			clear(s.paths)
		}
		s.paths[p.String()] = p
	}
	s.recent[s.next] = p
	s.next = (s.next + 1) % recentPaths
	return p, true
}

// cached returns the cached get_field lookup of rawPath in record idx as
// codec.Get would: the value (a slice of the record's current Value) or
// codec.ErrNotFound. ok is false when nothing usable is cached.
// editTarget locates the field an edit (set, delete, hash) changes: it
// compiles the path, checks the record is JSON, and looks the field up
// through the per-record cache. st is StatusOK, or the status to answer
// (BAD_PATH, INVALID_JSON); val and err are the lookup's result, which the
// JSON edit functions take as they are (err may be codec.ErrNotFound).
func (s *callState) editTarget(idx int32, rawPath []byte) (r *engine.Record, p codec.Path, val []byte, err error, st int32) {
	p, ok := s.path(rawPath)
	if !ok {
		return nil, p, nil, nil, StatusBadPath
	}
	r = s.record(idx)
	if r.Format != engine.FormatJSON {
		return nil, p, nil, nil, StatusInvalidJSON
	}
	val, err, hit := s.cached(idx, rawPath)
	if !hit {
		val, err = codec.Get(r.Value, p)
	}
	return r, p, val, err, StatusOK
}

func (s *callState) cached(idx int32, rawPath []byte) (val []byte, err error, ok bool) {
	if idx != s.cacheIdx {
		return nil, nil, false
	}
	for i := range s.cache {
		if c := &s.cache[i]; c.path == string(rawPath) {
			switch c.err {
			case StatusOK:
				return c.val, nil, true
			case StatusNotFound:
				return nil, codec.ErrNotFound, true
			}
			return nil, nil, false
		}
	}
	return nil, nil, false
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
	child.rec.Value = bytes.Clone(val)
	child.rec.Headers = append([]engine.Header(nil), p.Headers...)
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
