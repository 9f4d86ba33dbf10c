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

func TestSlabRecycle(t *testing.T) {
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
	s.recycle(out, dlq)
	if len(s.chunks) != 0 {
		t.Fatalf("%d chunks still tracked after recycle", len(s.chunks))
	}
	if len(s.free) != 1 || chunkAddr(s.free[0]) != chunkAddr(chunks[3]) {
		t.Fatalf("free %d chunks, want only the unreferenced fourth", len(s.free))
	}
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
	s.recycle([]engine.Record{{Value: nb}}, nil)
	if len(s.free) != 0 || !inChunk(s.buf, chunks[3]) {
		t.Fatalf("free %d, carving the live chunk: %v", len(s.free), inChunk(s.buf, chunks[3]))
	}
	nb2 := s.alloc(10, 100)
	s.recycle(nil, nil)
	if len(s.free) != 0 || !inChunk(nb2, chunks[3]) {
		t.Fatalf("a chunk taken before the last recycle was freed (%d free)", len(s.free))
	}

	// forget: chunks taken in a run that failed are never handed out again.
	for range 16 {
		s.alloc(10, slabMax)
	}
	if len(s.chunks) == 0 {
		t.Fatal("no chunk taken")
	}
	s.forget()
	s.recycle(nil, nil)
	if len(s.free) != 0 {
		t.Fatalf("forgotten chunks freed: %d", len(s.free))
	}
}

// TestChainRecycleKeepsOutputs runs batches through a chain in which the
// records are edited by two transforms (redact, enrich) and some are dead
// letters after the first edit (kitchen): the earlier batches' outputs and
// dead letters must keep their bytes while later batches reuse the chunks
// the chain freed, sharded or not.
func TestChainRecycleKeepsOutputs(t *testing.T) {
	for _, sharded := range []bool{false, true} {
		t.Run(fmt.Sprintf("sharded=%v", sharded), func(t *testing.T) {
			cfg := Config{PoolSize: 1}
			if sharded {
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
				out  []engine.Record
				dlq  []engine.DLQEntry
				want []string
			}
			var batches []batch
			reused0 := slabReused.Load()
			for b := range 6 {
				docs := make([]string, 2000)
				for i := range docs {
					ev := strings.Replace(benchEvent(b*len(docs)+i), "example.com", fmt.Sprintf("batch%d.example", b), 1)
					// The dead letters are among the first records of
					// each shard: the chunks of the others are freed.
					switch {
					case i%1000 < 200 && i%4 == 1:
						ev = `{"op":"dlq","id":"` + fmt.Sprint(i) + `",` + ev[1:]
					case i%10 == 5:
						ev = `{"op":"edit","gone":1,` + ev[1:]
					}
					docs[i] = ev
				}
				out, dlq, err := p.Process(t.Context(), jsonRecs(docs...), nil)
				if err != nil {
					t.Fatal(err)
				}
				if len(out) != 1900 || len(dlq) != 100 {
					t.Fatalf("batch %d: %d out, %d dead letters", b, len(out), len(dlq))
				}
				var want []string
				for _, r := range out {
					want = append(want, recordString(r))
				}
				for _, d := range dlq {
					want = append(want, dlqString(d))
				}
				if !strings.Contains(want[0], `"region":"`) || strings.Contains(want[0], `"ua"`) || !strings.Contains(want[len(want)-1], `bad `) {
					t.Fatalf("batch %d is not what the chain makes: %s / %s", b, want[0], want[len(want)-1])
				}
				batches = append(batches, batch{out, dlq, want})
			}
			reused := slabReused.Load() - reused0
			for _, bt := range batches {
				var got []string
				for _, r := range bt.out {
					got = append(got, recordString(r))
				}
				for _, d := range bt.dlq {
					got = append(got, dlqString(d))
				}
				for i := range got {
					if got[i] != bt.want[i] {
						t.Fatalf("an earlier batch changed:\n got  %s\n want %s", got[i], bt.want[i])
					}
				}
			}
			// The check above is only worth something if chunks were
			// handed out again.
			if reused == 0 {
				t.Fatal("no chunk was reused: the test does not exercise the slab's recycling")
			}
			t.Logf("%d chunks reused", reused)
		})
	}
}
