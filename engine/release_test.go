package engine_test

// Batch.Release: what a Processor registers with ReleasesFrom is called
// once, after the commit of the block that holds its records, and only when
// every sink write of that block succeeded — in the sequential loop, with
// sub-blocks and with overlapped stages.

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/engine"
)

// releaseLog records every release call of a run.
type releaseLog struct {
	r   *seqReceiver
	mu  sync.Mutex
	n   map[int]int // seq → times released
	bad []string
}

// processor registers, per process call, a release that checks its
// records are committed and counts them.
func (l *releaseLog) processor() engine.Processor {
	return engine.ProcessorFunc(func(ctx context.Context, recs []engine.Record, dlq []engine.DLQEntry) ([]engine.Record, []engine.DLQEntry, error) {
		rs := engine.ReleasesFrom(ctx)
		if rs == nil {
			return nil, nil, errors.New("no ReleaseSet in the process stage's context")
		}
		seqs := tags(recs)
		rs.Add(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			for _, s := range seqs {
				if int64(s) > l.r.committed.Load() {
					l.bad = append(l.bad, fmt.Sprintf("seq %d released before its commit (watermark %d)", s, l.r.committed.Load()))
				}
				l.n[s]++
			}
		})
		return recs, dlq, nil
	})
}

func TestReleaseAfterCleanCommit(t *testing.T) {
	for _, mode := range []string{"run", "sub-blocks", "overlapped"} {
		t.Run(mode, func(t *testing.T) {
			for _, failing := range []string{"", "record-errors", "sink", "commit"} {
				r := newSeqReceiver(300, 10, 24)
				if failing == "commit" {
					r.failCommit = 187
				}
				l := &releaseLog{r: r, n: map[int]int{}}
				cfg := engine.Config{DLQPolicy: engine.DLQRoute, DLQ: funcDLQ(func(context.Context, []engine.DLQEntry) error { return nil })}
				if mode != "run" {
					_, cfg.Budget = fixedBudget(t, 1<<20, 3*24) // 3 records a sub-block
				}
				if mode == "overlapped" {
					cfg.Depth = 4
				}
				d := newDriver(t, cfg)
				var mu sync.Mutex
				dirty := map[int]bool{} // first seq of blocks a sink write of which failed
				sink := func(_ context.Context, b *engine.Batch[uint64]) error {
					for i, rec := range b.Records {
						seq := int(rec.Tag)
						if (failing == "record-errors" && seq%50 == 7) || (failing == "sink" && seq == 143) {
							mu.Lock()
							dirty[r.blockOf(seq)] = true
							mu.Unlock()
							if failing == "sink" {
								return errBoom
							}
							return &engine.RecordErrors{Failed: []engine.RecordFailure{{Index: i, Err: errBoom}}}
						}
					}
					return nil
				}
				process := engine.Process[uint64](l.processor())
				ctx := testCtx(t, 10*time.Second)
				var err error
				if mode == "run" {
					err = d.Run(ctx, r, process, sink)
				} else {
					err = d.RunGoverned(ctx, r, process, sink)
				}
				if (err != nil) != (failing == "sink" || failing == "commit") {
					t.Fatalf("failing %q: run: %v", failing, err)
				}
				if v := r.violations(); len(v) > 0 {
					t.Fatal(v)
				}
				l.mu.Lock()
				if len(l.bad) > 0 {
					t.Fatalf("failing %q: %v", failing, l.bad[0])
				}
				watermark := int(r.committed.Load())
				released := 0
				for seq := range 300 {
					want := 0
					if seq <= watermark && !dirty[r.blockOf(seq)] {
						want = 1 // committed, every write of its block clean
					}
					if l.n[seq] != want {
						t.Fatalf("failing %q: seq %d (block %d, watermark %d) released %d times, want %d", failing, seq, r.blockOf(seq), watermark, l.n[seq], want)
					}
					released += l.n[seq]
				}
				l.mu.Unlock()
				if released < 100 {
					t.Fatalf("failing %q: only %d records released", failing, released)
				}
				if failing != "" && len(dirty) == 0 && failing != "commit" {
					t.Fatalf("failing %q: no sink write failed", failing)
				}
			}
		})
	}
}
