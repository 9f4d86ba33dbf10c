package engine

import (
	"context"
	"sync"
)

// Giving memory back after a commit.
//
// A process stage may build its output records in memory it would reuse
// for later batches (the WASM host carves edited records from large
// chunks). It may not reuse it while anything can still read those
// records: the sink writing them, a dead-letter write, a producer retrying
// them. The driver knows when that is over: once the block is committed
// after every write of it succeeded. So a Processor registers, per
// process call, functions that give the memory back (ReleaseSet.Add); the
// driver calls them after that commit (Batch.Release) and drops them after
// any failure, leaving the memory to the collector.

// A ReleaseSet collects the functions of one process call that give back
// memory its output borrows. It is safe for concurrent use (a Processor
// may process parts of a batch in parallel).
type ReleaseSet struct {
	mu  sync.Mutex
	fns []func()
}

type releaseKey struct{}

// ReleasesFrom returns the ReleaseSet of the process call ctx belongs to,
// or nil when ctx does not come from the driver's process stage (a direct
// Processor call, a dry run): memory the output borrows must then be left
// to the collector.
func ReleasesFrom(ctx context.Context) *ReleaseSet {
	rs, _ := ctx.Value(releaseKey{}).(*ReleaseSet)
	return rs
}

// Add registers fn, to be called once after the records the call returns
// are committed (see Batch.Release).
func (rs *ReleaseSet) Add(fn func()) {
	rs.mu.Lock()
	rs.fns = append(rs.fns, fn)
	rs.mu.Unlock()
}

func (rs *ReleaseSet) take() []func() {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	fns := rs.fns
	rs.fns = nil
	return fns
}

// release calls fns, once each, after a clean commit.
func release(fns []func()) {
	for _, fn := range fns {
		fn()
	}
}

// releases are a block's Release functions, gathered over its sub-blocks.
type releases struct {
	fns   []func()
	clean bool // every sink write of the block succeeded
}

func (r *releases) add(fns []func()) { r.fns = append(r.fns, fns...) }

// commit runs the functions after the block's commit when it was clean.
func (r *releases) commit() {
	if r.clean {
		release(r.fns)
	}
	*r = releases{}
}
