package wasmhost

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice/engine"
)

var _ engine.Processor = (*Pipeline)(nil)

// Pipeline is a named, ordered chain of transforms: the engine's process
// stage. It is a stable handle: SetPipeline, Add (a new version) and
// Rollback swap its chain atomically, and a batch runs start to end on the
// chain it started with. Safe for concurrent use; calls run in parallel up
// to each transform's PoolSize.
type Pipeline struct {
	host *Host
	name string
	cur  atomic.Pointer[chain]
}

// chain is an immutable snapshot of a pipeline's transforms. An
// unavailable chain (err set) keeps its names and runs nothing.
type chain struct {
	names    []string
	versions []*version
	err      *UnavailableError
}

func newPipeline(h *Host, name string) *Pipeline {
	p := &Pipeline{host: h, name: name}
	p.cur.Store(&chain{})
	return p
}

// Name returns the pipeline's name.
func (p *Pipeline) Name() string { return p.name }

// Transforms returns the names of the current chain, in order.
func (p *Pipeline) Transforms() []string { return slices.Clone(p.cur.Load().names) }

// Process runs recs through every transform of the current chain and
// returns the records to write and dlq with the dead letters appended. The
// output may reuse recs' backing array. An empty chain returns recs as is.
//
// A batch whose estimated guest time is large enough (see shardCount: at
// least 32 records and 50 µs of measured guest time per shard) is cut into
// up to min(PoolSize, GOMAXPROCS) contiguous shards that run in parallel,
// each on its own instances through the whole chain; the output is the same as an
// unsharded run's: records in input order (emitted records after their
// parent), dead letters transform by transform in input order. Each shard
// makes its own guest calls, so Hooks.OnCall reports one call per shard per
// transform (the counts add up exactly), a call's deadline scales with its
// shard's records, and trap isolation and IsolateTraps apply per shard. A
// failed shard (TrapFailBatch, a done ctx) fails the whole batch; the other
// shards stop at their next transform.
//
// A guest failure (trap, deadline, out of memory) fails that call only:
// with OnTrap=TrapDLQ its records become dead letters with the reason (the
// records that trap are isolated first, see Config.IsolateTraps) and the
// batch goes on; with TrapFailBatch Process returns a *TrapError. A done ctx
// returns ctx's error. Process never touches the batch's commit tokens: it
// only sees records.
//
// An unavailable pipeline (a transform of its chain is not loaded, see Err)
// fails every batch with its *UnavailableError and returns no records: it
// never passes records through.
func (p *Pipeline) Process(ctx context.Context, recs []engine.Record, dlq []engine.DLQEntry) ([]engine.Record, []engine.DLQEntry, error) {
	c := p.cur.Load()
	if c.err != nil {
		return nil, dlq, c.err
	}
	if len(c.versions) == 0 {
		return recs, dlq, nil
	}
	if k := p.host.shardCount(c, len(recs)); k > 1 {
		return p.processSharded(ctx, c, recs, dlq, k)
	}
	cr, order := getRun(len(recs))
	defer putRun(cr)
	from := len(dlq)
	for i, v := range c.versions {
		if len(recs) == 0 {
			break
		}
		cr.stage(i == len(c.versions)-1)
		var err error
		recs, order, dlq, err = p.host.runIn(ctx, v, recs, order, cr, dlq, p.host.cfg.OnTrap)
		if err != nil {
			return nil, dlq, err
		}
	}
	cr.recycle(engine.ReleasesFrom(ctx), recs, dlq[from:])
	return recs, dlq, nil
}

// runVersion is one transform over one batch outside a chain, with the
// trap policy.
func (h *Host) runVersion(ctx context.Context, v *version, recs []engine.Record, dlq []engine.DLQEntry, policy TrapPolicy) ([]engine.Record, []engine.DLQEntry, error) {
	cr, order := getRun(len(recs))
	defer putRun(cr)
	out, _, dlq, err := h.runIn(ctx, v, recs, order, cr, dlq, policy)
	return out, dlq, err
}

// runIn is one transform over one batch of a chain run (the records' docs
// are order's slots in cr), with the trap policy. It returns the output,
// its doc slots and dlq with the dead letters appended.
func (h *Host) runIn(ctx context.Context, v *version, recs []engine.Record, order []int32, cr *chainRun, dlq []engine.DLQEntry, policy TrapPolicy) ([]engine.Record, []int32, []engine.DLQEntry, error) {
	start := time.Now()
	n := len(recs)
	out, outOrder, dlq2, t, err := v.run(ctx, recs, order, cr, dlq)
	if err == nil {
		h.cfg.Hooks.call(v.name, CallStats{RecordsIn: n, RecordsOut: t.out, Dropped: t.dropped, DeadLettered: t.dead, Emitted: t.emitted, Duration: time.Since(start)})
		return out, outOrder, dlq2, nil
	}
	var te *TrapError
	if !errors.As(err, &te) {
		return nil, nil, dlq, err
	}
	if ok, suppressed := v.trapLim.allow(); ok {
		h.cfg.Logger.Warn("transform call failed", "transform", v.name, "kind", string(te.Kind), "records", n,
			"reason", te.Reason(), "policy", policy.String(), "suppressed", suppressed)
	}
	if policy == TrapFailBatch {
		return nil, nil, dlq, te
	}
	var res []engine.Record
	var resOrder []int32
	stats := CallStats{RecordsIn: n}
	if n > 1 && h.cfg.IsolateTraps > 0 && te.Kind != TrapAbort {
		res, resOrder, dlq, err = h.isolate(ctx, v, recs, order, cr, dlq, te, &stats)
		if err != nil {
			return nil, nil, dlq, err
		}
	} else {
		for i := range recs {
			dlq = append(dlq, engine.DLQEntry{Record: recs[i], Reason: te.Reason(), Stage: v.name})
		}
		stats.DeadLettered = n
		res, resOrder = recs[:0], order[:0]
	}
	stats.RecordsOut = len(res)
	stats.Duration = time.Since(start)
	h.cfg.Hooks.call(v.name, stats)
	return res, resOrder, dlq, nil
}

// isolate reruns a trapped call's records one by one so only the records
// that trap are dead-lettered. It stops isolating after IsolateTraps traps
// and dead-letters the rest with the batch's reason: each trap costs a new
// instance (and a deadline trap its deadline), so the cost is bounded.
func (h *Host) isolate(ctx context.Context, v *version, recs []engine.Record, order []int32, cr *chainRun, dlq []engine.DLQEntry, first *TrapError, stats *CallStats) ([]engine.Record, []int32, []engine.DLQEntry, error) {
	res := make([]engine.Record, 0, len(recs))
	resOrder := make([]int32, 0, len(recs))
	traps := 0
	for i := range recs {
		if traps >= h.cfg.IsolateTraps {
			for _, r := range recs[i:] {
				dlq = append(dlq, engine.DLQEntry{Record: r, Reason: first.Reason(), Stage: v.name})
				stats.DeadLettered++
			}
			break
		}
		in := recs[i]
		out, outOrder, d, t, err := v.run(ctx, recs[i:i+1], order[i:i+1], cr, dlq)
		var te *TrapError
		switch {
		case err == nil:
			res = append(res, out...)
			resOrder = append(resOrder, outOrder...)
			dlq = d
			stats.Dropped += t.dropped
			stats.DeadLettered += t.dead
			stats.Emitted += t.emitted
		case errors.As(err, &te):
			traps++
			dlq = append(dlq, engine.DLQEntry{Record: in, Reason: te.Reason(), Stage: v.name})
			stats.DeadLettered++
		default:
			return nil, nil, dlq, err
		}
	}
	return res, resOrder, dlq, nil
}

// SetPipeline sets (creating if needed) the named pipeline's chain. Every
// name must be a loaded transform, else nothing changes and the error
// wraps ErrNotFound (no such transform) or ErrNotLoaded (it failed to
// load). An empty list makes a pass-through pipeline. With a DataDir the
// pipelines survive restart.
func (h *Host) SetPipeline(name string, transforms []string) error {
	return h.setPipeline(name, transforms, false)
}

// SetPipelineAllowUnavailable is SetPipeline for a chain that may name
// transforms that are not loaded (start-up configuration: a missing
// transform costs only the pipelines that use it): the pipeline is then
// unavailable (see Pipeline.Err) until each of them is added.
func (h *Host) SetPipelineAllowUnavailable(name string, transforms []string) error {
	return h.setPipeline(name, transforms, true)
}

func (h *Host) setPipeline(name string, transforms []string, allowUnavailable bool) error {
	if err := checkName("pipeline", name); err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return ErrClosed
	}
	return h.setPipelineLocked(name, transforms, true, allowUnavailable)
}

func (h *Host) setPipelineLocked(name string, transforms []string, persist, allowUnavailable bool) error {
	c := h.chainLocked(name, transforms)
	if c.err != nil && !allowUnavailable {
		return fmt.Errorf("pipeline %q: transform %q cannot be loaded: %w", name, c.err.Transform, c.err.Err)
	}
	p, ok := h.pipelines[name]
	if !ok {
		p = newPipeline(h, name)
	}
	old := p.cur.Load()
	p.cur.Store(c)
	h.pipelines[name] = p
	if persist && h.store != nil {
		if err := h.store.putPipelines(h.pipelineMapLocked()); err != nil {
			p.cur.Store(old)
			return fmt.Errorf("wasmhost: store pipelines: %w", err)
		}
	}
	return nil
}

// DeletePipeline removes a named pipeline (the default pipeline is emptied
// instead). Handles obtained earlier keep their last chain.
func (h *Host) DeletePipeline(name string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.pipelines[name]; !ok {
		return fmt.Errorf("%w: pipeline %q", ErrNotFound, name)
	}
	if name == DefaultPipeline {
		h.pipelines[name].cur.Store(&chain{})
	} else {
		delete(h.pipelines, name)
	}
	if h.store != nil {
		return h.store.putPipelines(h.pipelineMapLocked())
	}
	return nil
}

// Pipeline returns the stable handle of the named pipeline, creating an
// empty (pass-through) one if it does not exist yet.
func (h *Host) Pipeline(name string) *Pipeline {
	h.mu.Lock()
	defer h.mu.Unlock()
	p, ok := h.pipelines[name]
	if !ok {
		p = newPipeline(h, name)
		h.pipelines[name] = p
	}
	return p
}

// Pipelines returns every pipeline's transform names.
func (h *Host) Pipelines() map[string][]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.pipelineMapLocked()
}

func (h *Host) pipelineMapLocked() map[string][]string {
	m := make(map[string][]string, len(h.pipelines))
	for n, p := range h.pipelines {
		m[n] = slices.Clone(p.cur.Load().names)
	}
	return m
}

// swapLocked rebuilds, atomically, the chain of every pipeline that uses
// the transform name, on its current version.
func (h *Host) swapLocked(name string) { h.rebuildLocked(name) }
