package wasmhost

import (
	"cmp"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/sluicehq/sluice/engine"
)

// chainRun is the host's per-record state while one batch (or one shard of
// it) runs through a chain of transforms: the structural index of every
// record (docs), which survives from transform to transform so the second
// reader of a field does not scan for it again, and the slab the edited
// records' bytes are carved from. Records and their docs travel together:
// each call maps its records to doc slots (order), and collect maps its
// output the same way.
//
// A chainRun is used by one goroutine at a time and kept across batches
// (see putRun): its docs and their nodes are reused. The slab's chunks
// that no record leaving the chain references (the copies an earlier
// transform made of records a later one edited again) are reused by the
// next batch (see slab.recycle); the others belong to the output records.
type chainRun struct {
	docs  []doc
	used  int     // docs[:used] belong to the current batch
	ident []int32 // scratch: 0, 1, 2, …
	// The bytes of edited and emitted records: the chain's last transform
	// carves them from out, the others from mid, so that the copies a later
	// transform makes again fill chunks of their own, which recycle frees
	// (were they mixed with the output, a batch of a few hundred records
	// would leave no chunk to free).
	out, mid slab
	slab     *slab // the slab of the transform running: &out or &mid
}

// chainRuns keeps the chainRuns of the last batches for the next ones. It
// is a bounded stack rather than a sync.Pool: the pool lost its runs at
// collections (dozens a second under load), and new runs' docs and nodes
// were 7 % of the bytes the process allocated (BENCHMARKS.md has the
// runs with and without). A kept run's memory is bounded (see putRun) and
// one run per core is kept, also when idle.
var chainRuns struct {
	mu   sync.Mutex
	free []*chainRun
}

// Bounds on a kept chainRun: a batch of many records or of records with
// many members (a hostile one) is not held on to.
const (
	keptRunsPerCPU = 1        // runs kept per GOMAXPROCS (more measured no faster, and larger)
	keptDocs       = 8 << 10  // docs (one per record)
	keptDocNodes   = 64       // nodes of one doc
	keptNodes      = 64 << 10 // nodes of all docs (2.75 MiB)
)

// getRun returns a kept or new chainRun for a batch of n records and the
// identity order of those records (doc slot i for record i).
func getRun(n int) (*chainRun, []int32) {
	var r *chainRun
	chainRuns.mu.Lock()
	if k := len(chainRuns.free); k > 0 {
		r = chainRuns.free[k-1]
		chainRuns.free[k-1] = nil
		chainRuns.free = chainRuns.free[:k-1]
	}
	chainRuns.mu.Unlock()
	if r == nil {
		r = new(chainRun)
	}
	for len(r.docs) < n {
		r.docs = append(r.docs, doc{})
	}
	r.used = n
	r.slab = &r.out
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
// keeps r for the next batch, within the bounds above: the docs past
// keptDocs and the nodes of a doc past keptDocNodes, or past keptNodes in
// all, are let go. The chunks carved for the batch and not recycled stay
// the records' (see slab.recycle).
func putRun(r *chainRun) {
	nodes := 0
	for i := range r.docs {
		d := &r.docs[i]
		if i < r.used {
			d.reset(nil)
		}
		if c := cap(d.nodes); c > keptDocNodes || nodes+c > keptNodes {
			d.nodes = nil
		} else {
			nodes += c
		}
	}
	r.used = 0
	r.out.forget()
	r.mid.forget()
	r.slab = nil
	if len(r.docs) > keptDocs {
		r.docs = nil
	}
	if cap(r.ident) > keptDocs {
		r.ident = nil
	}
	keep := keptRunsPerCPU * runtime.GOMAXPROCS(0)
	chainRuns.mu.Lock()
	if len(chainRuns.free) < keep {
		chainRuns.free = append(chainRuns.free, r)
	}
	chainRuns.mu.Unlock()
}

// stage selects the slab of the transform about to run: last is whether it
// is the chain's last.
func (r *chainRun) stage(last bool) {
	if last {
		r.slab = &r.out
	} else {
		r.slab = &r.mid
	}
}

// recycle ends a run that succeeded (see slab.recycle): out are the
// records leaving the chain, dlq its dead letters. The chunks they
// reference are theirs; when the run is a driver's process call (rs is
// not nil) they are given back once the driver committed its batch
// (engine.ReleaseSet), else left to the collector.
func (r *chainRun) recycle(rs *engine.ReleaseSet, out []engine.Record, dlq []engine.DLQEntry) {
	hold := rs != nil
	kept := r.mid.recycle(out, dlq, hold, nil)
	kept = r.out.recycle(out, dlq, hold, kept)
	if len(kept) > 0 {
		rs.Add(func() {
			putFreeChunks(kept)
			slabReleased.Add(int64(len(kept)))
		})
	}
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
//
// A record edited by two transforms of a chain is copied twice (a call
// edits in place only the bytes it made itself: a call that traps must
// leave its input as it was, for the dead letters and the isolation
// reruns), so the first copy is garbage once the chain is done. recycle
// finds the chunks no surviving record references and hands them out
// again (to any chain run: freeChunks), so a chain pays for about one copy
// per edited record.
type slab struct {
	buf    []byte   // the chunk being carved
	chunks [][]byte // the chunks taken since the last recycle or forget
}

const (
	slabChunk = 64 << 10
	slabMax   = 8 << 10 // bigger buffers get their own allocation
	// freeChunksPerCPU bounds freeChunks: 1 MiB per GOMAXPROCS, about the
	// copies that two 1 MiB batches in flight per core free.
	freeChunksPerCPU = 16
)

// freeChunks are the slab chunks that no record references any more,
// handed out before new ones (last freed first: its bytes are likely in
// the cache).
var freeChunks struct {
	mu sync.Mutex
	c  [][]byte
}

// alloc returns a buffer of length n and capacity c (c ≥ n).
func (s *slab) alloc(n, c int) []byte {
	if c > slabMax {
		return make([]byte, n, c)
	}
	if cap(s.buf)-len(s.buf) < c {
		s.take()
	}
	at := len(s.buf)
	s.buf = s.buf[:at+c]
	return s.buf[at : at+n : at+c]
}

// take makes a fresh chunk (a free one when there is one) the one carved.
func (s *slab) take() {
	s.buf = nil
	freeChunks.mu.Lock()
	if k := len(freeChunks.c); k > 0 {
		s.buf = freeChunks.c[k-1]
		freeChunks.c[k-1] = nil
		freeChunks.c = freeChunks.c[:k-1]
	}
	freeChunks.mu.Unlock()
	if s.buf == nil {
		s.buf = make([]byte, 0, slabChunk)
	} else {
		slabReused.Add(1)
	}
	s.chunks = append(s.chunks, s.buf)
}

// slabReused counts the chunks handed out again (tests check that the
// recycling happens).
var slabReused atomic.Int64

// forget gives up the chunks taken since the last recycle: records may
// reference them, so they are never handed out again.
func (s *slab) forget() {
	clear(s.chunks)
	s.chunks = s.chunks[:0]
}

// recycle ends a chain run that succeeded: out are the records leaving it
// and dlq its dead letters, the only records that may reference the bytes
// carved since the last recycle. The chunks taken since then that none of
// them references go to freeChunks; the others stay the records'. With
// hold, those are appended to kept (returned), for the caller to free once
// the records are done with, and the chunk being carved is no longer
// carved when it is one of them; without, it keeps being carved (past
// what its records use) unless it is freed.
func (s *slab) recycle(out []engine.Record, dlq []engine.DLQEntry, hold bool, kept [][]byte) [][]byte {
	if len(s.chunks) == 0 {
		return kept
	}
	if len(s.chunks) > 1 {
		slices.SortFunc(s.chunks, func(a, b []byte) int { return cmp.Compare(chunkAddr(a), chunkAddr(b)) })
	}
	var liveBuf [64]bool
	var live []bool
	if len(s.chunks) <= len(liveBuf) {
		live = liveBuf[:len(s.chunks)]
	} else {
		live = make([]bool, len(s.chunks))
	}
	for i := range out {
		s.mark(live, out[i].Value)
	}
	for i := range dlq {
		s.mark(live, dlq[i].Record.Value)
	}
	cur := chunkAddr(s.buf)
	free := s.chunks[:0] // written behind the loop's reads
	for i, ch := range s.chunks {
		if live[i] && !hold {
			continue // the records' for good
		}
		if chunkAddr(ch) == cur {
			s.buf = nil // freed or handed over: no longer carved
		}
		if live[i] {
			kept = append(kept, ch)
		} else {
			free = append(free, ch)
		}
	}
	putFreeChunks(free)
	s.forget()
	return kept
}

// putFreeChunks puts chunks that no record references any more on
// freeChunks, within its bound.
func putFreeChunks(chunks [][]byte) {
	if len(chunks) == 0 {
		return
	}
	keep := freeChunksPerCPU * runtime.GOMAXPROCS(0)
	freeChunks.mu.Lock()
	for _, ch := range chunks {
		if len(freeChunks.c) >= keep {
			break
		}
		freeChunks.c = append(freeChunks.c, ch[:0])
	}
	freeChunks.mu.Unlock()
}

// slabReleased counts the chunks given back after a commit (tests check
// that it happens).
var slabReleased atomic.Int64

// mark sets live[i] when v's bytes lie in s.chunks[i] (sorted by address).
func (s *slab) mark(live []bool, v []byte) {
	if cap(v) == 0 {
		return
	}
	p := uintptr(unsafe.Pointer(unsafe.SliceData(v)))
	// The last chunk that starts at or before p.
	lo, hi := 0, len(s.chunks)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if chunkAddr(s.chunks[m]) <= p {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if i := lo - 1; i >= 0 && p < chunkAddr(s.chunks[i])+slabChunk {
		live[i] = true
	}
}

// chunkAddr is the address of a chunk's first byte (0 for none). The Go
// heap does not move objects, so addresses compare chunks for as long as
// the slice keeps its chunk alive.
func chunkAddr(b []byte) uintptr {
	if cap(b) == 0 {
		return 0
	}
	return uintptr(unsafe.Pointer(unsafe.SliceData(b)))
}

// clone returns a copy of b carved from the slab.
func (s *slab) clone(b []byte) []byte {
	out := s.alloc(len(b), len(b))
	copy(out, b)
	return out
}
