package wasmhost

import "sync"

// chainRun is the host's per-record state while one batch (or one shard of
// it) runs through a chain of transforms: the structural index of every
// record (docs), which survives from transform to transform so the second
// reader of a field does not scan for it again, and the slab the edited
// records' bytes are carved from. Records and their docs travel together:
// each call maps its records to doc slots (order), and collect maps its
// output the same way.
//
// A chainRun is used by one goroutine at a time and pooled across batches:
// its docs and their nodes are reused (grow-only); the slab's chunks are
// never reused once carved, since output records reference them.
type chainRun struct {
	docs  []doc
	used  int     // docs[:used] belong to the current batch
	ident []int32 // scratch: 0, 1, 2, …
	slab  slab
}

var chainRuns = sync.Pool{New: func() any { return new(chainRun) }}

// getRun returns a pooled chainRun for a batch of n records and the
// identity order of those records (doc slot i for record i).
func getRun(n int) (*chainRun, []int32) {
	r := chainRuns.Get().(*chainRun)
	for len(r.docs) < n {
		r.docs = append(r.docs, doc{})
	}
	r.used = n
	if cap(r.ident) < n {
		r.ident = make([]int32, n)
	}
	r.ident = r.ident[:n]
	for i := range r.ident {
		r.ident[i] = int32(i)
	}
	return r, r.ident
}

// putRun forgets the batch (no reference to its records is kept) and
// returns r to the pool.
func putRun(r *chainRun) {
	for i := range r.docs[:r.used] {
		r.docs[i].reset(nil)
	}
	r.used = 0
	chainRuns.Put(r)
}

// newSlot returns a fresh doc slot (for an emitted record).
func (r *chainRun) newSlot() int32 {
	if r.used == len(r.docs) {
		r.docs = append(r.docs, doc{})
	}
	r.docs[r.used].reset(nil)
	r.used++
	return int32(r.used - 1)
}

// slab hands out byte buffers carved from large chunks, so that edited
// and emitted records do not cost an allocation each. A buffer's capacity
// is capped (three-index slice): appending to it never reaches its
// neighbour.
type slab struct {
	buf []byte
}

const (
	slabChunk = 64 << 10
	slabMax   = 8 << 10 // bigger buffers get their own allocation
)

// alloc returns a buffer of length n and capacity c (c ≥ n).
func (s *slab) alloc(n, c int) []byte {
	if c > slabMax {
		return make([]byte, n, c)
	}
	if cap(s.buf)-len(s.buf) < c {
		s.buf = make([]byte, 0, slabChunk)
	}
	at := len(s.buf)
	s.buf = s.buf[:at+c]
	return s.buf[at : at+n : at+c]
}

// clone returns a copy of b carved from the slab.
func (s *slab) clone(b []byte) []byte {
	out := s.alloc(len(b), len(b))
	copy(out, b)
	return out
}
