package wasmhost

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice/engine"
)

// Sharding pays when the work of a shard outweighs its fixed cost: a
// goroutine hand-off to the other core and back (measured 15–20 µs on a
// 2-vCPU VM, where waking an idle thread is slow) plus one more guest call
// per transform. So a batch is cut only into shards of at least minShard
// records AND of at least minShardWork estimated guest time, the estimate
// being the chain's measured cost per record. Measured (BenchmarkShardSize):
// the example chain (about 18 µs/record) gains 1.5× from two shards of 32
// records, while a guest that does nothing (about 90 ns/record) loses up to
// 512 records and breaks even near 1,000. Variables for tests.
var (
	minShard     = 32
	minShardWork = 50 * time.Microsecond
)

// shardCount returns how many shards a batch of n records through c is cut
// into: min(PoolSize, GOMAXPROCS, n/minShard, estimated work/minShardWork),
// at least 1. A transform not measured yet counts as free (a new chain's
// first batch is not sharded; a chain whose first stage drops everything
// is judged by that stage).
func (h *Host) shardCount(c *chain, n int) int {
	k := min(h.cfg.PoolSize, runtime.GOMAXPROCS(0), n/minShard)
	if k < 2 {
		return 1
	}
	if minShardWork > 0 {
		var perRecord int64
		for _, v := range c.versions {
			perRecord += v.cost.Load()
		}
		k = min(k, int(int64(n)*perRecord/int64(minShardWork)))
	}
	return max(k, 1)
}

// noteCost folds the measured guest time of a successful call over n
// records into the version's cost per record (an EWMA, 1/8 weight). Calls
// of fewer than minShard records are skipped: their fixed cost would
// dominate.
func (v *version) noteCost(d time.Duration, n int) {
	if n < minShard {
		return
	}
	per := max(d.Nanoseconds()/int64(n), 1)
	old := v.cost.Load()
	if old != 0 {
		per = old + (per-old)/8
	}
	v.cost.Store(max(per, 1))
}

// shard is one contiguous slice of a sharded batch and what the chain made
// of it.
type shard struct {
	lo, hi int               // the input range
	out    []engine.Record   // the shard's output records
	dlq    []engine.DLQEntry // the shard's dead letters, transform after transform
	ends   []int             // ends[t]: len(dlq) after transform t
	err    error
}

// shardSet is the per-batch scratch of a sharded Process, pooled.
type shardSet struct {
	shards []shard
	wg     sync.WaitGroup
	failed atomic.Bool // a shard failed: the others stop at the next transform
}

var shardSets = sync.Pool{New: func() any { return new(shardSet) }}

// processSharded runs recs through c as k contiguous shards in parallel,
// each on its own instances through the whole chain, and joins the outputs
// in input order: the records of shard 0, then of shard 1, ...; the dead
// letters transform by transform and, within a transform, shard by shard —
// the order an unsharded run produces.
func (p *Pipeline) processSharded(ctx context.Context, c *chain, recs []engine.Record, dlq []engine.DLQEntry, k int) ([]engine.Record, []engine.DLQEntry, error) {
	set := shardSets.Get().(*shardSet)
	defer func() {
		for i := range set.shards {
			sh := &set.shards[i]
			sh.out = nil
			clear(sh.dlq)
			sh.dlq, sh.ends, sh.err = sh.dlq[:0], sh.ends[:0], nil
		}
		set.failed.Store(false)
		shardSets.Put(set)
	}()
	if cap(set.shards) < k {
		set.shards = make([]shard, k)
	}
	set.shards = set.shards[:k]
	n := len(recs)
	for i := range set.shards {
		sh := &set.shards[i]
		sh.lo, sh.hi = i*n/k, (i+1)*n/k
	}
	set.wg.Add(k - 1)
	for i := 1; i < k; i++ {
		go func(sh *shard) {
			defer set.wg.Done()
			p.runShard(ctx, c, recs, sh, &set.failed)
		}(&set.shards[i])
	}
	p.runShard(ctx, c, recs, &set.shards[0], &set.failed)
	set.wg.Wait()

	for i := range set.shards {
		if err := set.shards[i].err; err != nil {
			return nil, dlq, err
		}
	}
	for t := range c.versions {
		for i := range set.shards {
			sh := &set.shards[i]
			from := 0
			if t > 0 {
				from = sh.ends[t-1]
			}
			dlq = append(dlq, sh.dlq[from:sh.ends[t]]...)
		}
	}
	return joinShards(recs, set.shards), dlq, nil
}

// runShard runs recs[sh.lo:sh.hi] through every transform of c.
func (p *Pipeline) runShard(ctx context.Context, c *chain, recs []engine.Record, sh *shard, failed *atomic.Bool) {
	h := p.host
	out := recs[sh.lo:sh.hi:sh.hi]
	cr, order := getRun(len(out))
	defer putRun(cr)
	for i, v := range c.versions {
		if len(out) > 0 {
			if failed.Load() {
				return
			}
			cr.stage(i == len(c.versions)-1)
			var err error
			out, order, sh.dlq, err = h.runIn(ctx, v, out, order, cr, sh.dlq, h.cfg.OnTrap)
			if err != nil {
				sh.err = err
				failed.Store(true)
				return
			}
		}
		sh.ends = append(sh.ends, len(sh.dlq))
	}
	cr.recycle(engine.ReleasesFrom(ctx), out, sh.dlq)
	sh.out = out
}

// joinShards concatenates the shards' outputs in order. When every output
// fits before the next shard's input range (no shard fanned out past its
// own range) they are moved down inside recs' backing array, else copied
// into a new slice.
func joinShards(recs []engine.Record, shards []shard) []engine.Record {
	pos, total, inPlace := 0, 0, true
	for i := range shards {
		total += len(shards[i].out)
		limit := len(recs)
		if i+1 < len(shards) {
			limit = shards[i+1].lo
		}
		pos += len(shards[i].out)
		if pos > limit {
			inPlace = false
		}
	}
	var dst []engine.Record
	if inPlace {
		dst = recs[:total]
	} else {
		dst = make([]engine.Record, total)
	}
	pos = 0
	for i := range shards {
		pos += copy(dst[pos:], shards[i].out)
	}
	return dst
}
