package wasmhost

import (
	"fmt"
	"strings"
	"testing"
	"unsafe"

	"github.com/sluicehq/sluice/engine"
)

// inChunk reports whether v's bytes lie in chunk.
func inChunk(v, chunk []byte) bool {
	p, c := uintptr(unsafe.Pointer(unsafe.SliceData(v))), chunkAddr(chunk)
	return cap(v) > 0 && p >= c && p < c+uintptr(cap(chunk))
}

// takeFreeChunks empties freeChunks and returns what it held.
func takeFreeChunks() [][]byte {
	freeChunks.mu.Lock()
	defer freeChunks.mu.Unlock()
	c := freeChunks.c
	freeChunks.c = nil
	return c
}

func TestSlabRecycle(t *testing.T) {
	takeFreeChunks()
	var s slab
	// Four chunks of eight buffers each; the fourth is being carved.
	var bufs [][]byte
	for range 3*8 + 2 {
		bufs = append(bufs, s.alloc(10, slabMax))
	}
	if len(s.chunks) != 4 {
		t.Fatalf("%d chunks taken, want 4", len(s.chunks))
	}
	chunks := append([][]byte(nil), s.chunks...)
	outside := []byte(`{"not":"from the slab"}`)
	out := []engine.Record{
		{Value: bufs[3]},         // chunk 0
		{Value: bufs[8*2+7][:0]}, // chunk 2: an empty value still holds its bytes
		{Value: outside},
		{},
	}
	dlq := []engine.DLQEntry{{Record: engine.Record{Value: bufs[8+1]}}} // chunk 1
	s.recycle(out, dlq, false, nil)
	if len(s.chunks) != 0 {
		t.Fatalf("%d chunks still tracked after recycle", len(s.chunks))
	}
	free := takeFreeChunks()
	if len(free) != 1 || chunkAddr(free[0]) != chunkAddr(chunks[3]) {
		t.Fatalf("free %d chunks, want only the unreferenced fourth", len(free))
	}
	freeChunks.c = free
	if s.buf != nil {
		t.Fatal("the freed chunk is still being carved")
	}
	// The next buffer comes from the freed chunk, and the live ones keep
	// their bytes.
	for i := range bufs {
		copy(bufs[i], fmt.Sprintf("buf %6d", i))
	}
	nb := s.alloc(10, 100)
	if !inChunk(nb, chunks[3]) {
		t.Fatal("the next buffer is not carved from the freed chunk")
	}
	copy(nb, "XXXXXXXXXX")
	if string(bufs[3]) != "buf      3" || string(bufs[9]) != "buf      9" {
		t.Fatalf("live buffers changed: %q %q", bufs[3], bufs[9])
	}

	// A chunk being carved that records reference keeps being carved, and
	// is never freed by a later recycle that does not see those records.
	s.recycle([]engine.Record{{Value: nb}}, nil, false, nil)
	if n := len(takeFreeChunks()); n != 0 || !inChunk(s.buf, chunks[3]) {
		t.Fatalf("free %d, carving the live chunk: %v", n, inChunk(s.buf, chunks[3]))
	}
	nb2 := s.alloc(10, 100)
	s.recycle(nil, nil, false, nil)
	if n := len(takeFreeChunks()); n != 0 || !inChunk(nb2, chunks[3]) {
		t.Fatalf("a chunk taken before the last recycle was freed (%d free)", n)
	}

	// forget: chunks taken in a run that failed are never handed out again.
	for range 16 {
		s.alloc(10, slabMax)
	}
	if len(s.chunks) == 0 {
		t.Fatal("no chunk taken")
	}
	s.forget()
	s.recycle(nil, nil, false, nil)
	if n := len(takeFreeChunks()); n != 0 {
		t.Fatalf("forgotten chunks freed: %d", n)
	}
}

// batchStrings renders a batch's output records and dead letters, in order.
func batchStrings(out []engine.Record, dlq []engine.DLQEntry) []string {
	s := make([]string, 0, len(out)+len(dlq))
	for _, r := range out {
		s = append(s, recordString(r))
	}
	for _, d := range dlq {
		s = append(s, dlqString(d))
	}
	return s
}

// TestChainRecycleKeepsOutputs runs batches through a chain in which the
// records are edited by two transforms (redact, enrich) and some are dead
// letters after the first edit (kitchen): the earlier batches' outputs and
// dead letters must keep their bytes while later batches reuse the chunks
// the chain freed, sharded or not.
func TestChainRecycleKeepsOutputs(t *testing.T) {
	for _, c := range []struct {
		sharded       bool
		size, batches int
		release       bool // through a driver's process stage: the outputs' chunks are given back after their commit
	}{{false, 2000, 6, false}, {true, 2000, 6, false}, {false, 200, 40, false}, {false, 2000, 8, true}, {true, 2000, 8, true}, {false, 200, 40, true}} {
		t.Run(fmt.Sprintf("sharded=%v/size=%d/release=%v", c.sharded, c.size, c.release), func(t *testing.T) {
			cfg := Config{PoolSize: 1}
			if c.sharded {
				withShards(t, 32, 2)
				cfg.PoolSize = 2
			}
			h := newHost(t, cfg)
			chain := []string{"redact", "kitchen", "enrich"}
			addGuests(t, h, chain...)
			if err := h.SetPipeline("p", chain); err != nil {
				t.Fatal(err)
			}
			p := h.Pipeline("p")
			type batch struct {
				out     []engine.Record
				dlq     []engine.DLQEntry
				want    []string
				release []func()
			}
			var batches []batch
			// check fails when a batch not yet released changed.
			check := func() {
				t.Helper()
				for _, bt := range batches {
					got := batchStrings(bt.out, bt.dlq)
					for i := range got {
						if got[i] != bt.want[i] {
							t.Fatalf("an earlier batch changed:\n got  %s\n want %s", got[i], bt.want[i])
						}
					}
				}
			}
			proc := engine.Process[int](p)
			reused0, released0 := slabReused.Load(), slabReleased.Load()
			for b := range c.batches {
				docs := make([]string, c.size)
				dead := 0
				for i := range docs {
					ev := strings.Replace(benchEvent(b*len(docs)+i), "example.com", fmt.Sprintf("batch%d.example", b), 1)
					// The dead letters are among the first records of
					// each shard: the chunks of the others are freed.
					switch {
					case i%1000 < c.size/10 && i%4 == 1:
						ev = `{"op":"dlq","id":"` + fmt.Sprint(i) + `",` + ev[1:]
						dead++
					case i%10 == 5:
						ev = `{"op":"edit","gone":1,` + ev[1:]
					}
					docs[i] = ev
				}
				var (
					out     []engine.Record
					dlq     []engine.DLQEntry
					release []func()
					err     error
				)
				if c.release {
					var res engine.Batch[int]
					res, err = proc(t.Context(), engine.Batch[int]{Records: jsonRecs(docs...)})
					out, dlq, release = res.Records, res.DLQ, res.Release
					if err == nil && len(release) == 0 {
						t.Fatal("no Release: the outputs' chunks are never given back")
					}
				} else {
					out, dlq, err = p.Process(t.Context(), jsonRecs(docs...), nil)
				}
				if err != nil {
					t.Fatal(err)
				}
				if len(out) != c.size-dead || len(dlq) != dead {
					t.Fatalf("batch %d: %d out, %d dead letters", b, len(out), len(dlq))
				}
				want := batchStrings(out, dlq)
				if !strings.Contains(want[0], `"region":"`) || strings.Contains(want[0], `"ua"`) || !strings.Contains(want[len(want)-1], `bad `) {
					t.Fatalf("batch %d is not what the chain makes: %s / %s", b, want[0], want[len(want)-1])
				}
				batches = append(batches, batch{out, dlq, want, release})
				if c.release {
					// Two batches in flight, as in a driver at depth 2:
					// the oldest is committed, its chunks given back and
					// no longer checked.
					check()
					if len(batches) > 2 {
						for _, fn := range batches[0].release {
							fn()
						}
						batches = batches[1:]
					}
				}
			}
			reused, released := slabReused.Load()-reused0, slabReleased.Load()-released0
			check()
			// The checks above are only worth something if chunks were
			// handed out again.
			if reused == 0 {
				t.Fatal("no chunk was reused: the test does not exercise the slab's recycling")
			}
			if c.release && released == 0 {
				t.Fatal("no output chunk was given back after a release")
			}
			t.Logf("%d chunks reused, %d given back after their commit", reused, released)
		})
	}
}

// TestCallOutsideChainForgetsChunks: a call outside a chain (a dry run)
// carves from its state's own slab; the next call must not keep tracking
// the last one's chunks (they would be held forever, and could be freed
// by a later recycle while records reference them).
func TestCallOutsideChainForgetsChunks(t *testing.T) {
	var cs callState
	recs := jsonRecs(`{"a":1}`)
	for range 50 {
		cs.reset(recs, 0)
		for range 20 {
			cs.run.slab.alloc(10, slabMax)
		}
		if n := len(cs.own.out.chunks); n > 3 {
			t.Fatalf("%d chunks tracked by one call's slab", n)
		}
	}
	cs.release()
	if n := len(cs.own.out.chunks); n != 0 {
		t.Fatalf("%d chunks tracked after release", n)
	}
}
