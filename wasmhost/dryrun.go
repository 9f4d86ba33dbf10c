package wasmhost

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/sluicehq/sluice/engine"
	"github.com/sluicehq/sluice/engine/codec"
	"github.com/tetratelabs/wazero/api"
)

// Decision is what a dry run did with one input event.
type Decision string

const (
	// Kept: one record out (possibly edited or re-routed).
	Kept Decision = "kept"
	// Dropped: no record out, no dead letter.
	Dropped Decision = "dropped"
	// DeadLettered: the event went to the DLQ (Reason says why).
	DeadLettered Decision = "dead_lettered"
	// FannedOut: more than one record out (Outputs says how many).
	FannedOut Decision = "fanned_out"
)

// DryRunHeader is a header of a dry-run output record.
type DryRunHeader struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// DryRunRecord is one output record of a dry run.
type DryRunRecord struct {
	Event   int             `json:"event"` // index of the input it came from
	Topic   string          `json:"topic,omitempty"`
	Key     string          `json:"key,omitempty"`
	Headers []DryRunHeader  `json:"headers,omitempty"`
	Value   json.RawMessage `json:"value"`
}

// DryRunEvent is what happened to one input event.
type DryRunEvent struct {
	Decision Decision      `json:"decision"`
	Outputs  int           `json:"outputs"`
	Reason   string        `json:"reason,omitempty"` // for DeadLettered
	Stage    string        `json:"stage,omitempty"`  // the transform that dead-lettered it
	Duration time.Duration `json:"duration_ns"`      // through the whole chain, starting instances excluded
}

// DryRunResult is the outcome of DryRun.
type DryRunResult struct {
	Records []DryRunRecord `json:"records"`
	Events  []DryRunEvent  `json:"events"`
	// PeakMemory is the largest linear memory, in bytes, any of the dry
	// run's own instances reached.
	PeakMemory uint64 `json:"peak_memory"`
}

// DryRun runs events (one JSON document each) through the named
// transforms, one event at a time, without touching any pipeline or sink.
// Guest failures are reported as dead letters whatever OnTrap says. An
// unknown transform is an error wrapping ErrNotFound.
//
// A dry run uses instances of its own, started for it and closed when it
// returns: the pools that serve traffic, the transforms' counters (calls,
// records, traps, peak memory, cost), the Hooks and the host's log of
// failed calls are left alone. Its instances' linear memory counts in
// GuestMemoryBytes while they live (they take real memory).
func (h *Host) DryRun(ctx context.Context, transforms []string, events [][]byte) (DryRunResult, error) {
	h.mu.Lock()
	vs := make([]*version, 0, len(transforms))
	for _, n := range transforms {
		t, err := h.lookup(n)
		if err != nil {
			h.mu.Unlock()
			return DryRunResult{}, fmt.Errorf("dry run: %w", err)
		}
		vs = append(vs, t.current)
	}
	h.mu.Unlock()

	d := &dryRun{h: h, vs: vs, ins: make([]*instance, len(vs))}
	defer d.close()
	res := DryRunResult{Records: []DryRunRecord{}, Events: make([]DryRunEvent, len(events))}
	for i, ev := range events {
		start, startup := time.Now(), d.startup
		if !codec.Valid(ev) {
			res.Events[i] = DryRunEvent{Decision: DeadLettered, Reason: "parse error: invalid JSON", Stage: "parse", Duration: time.Since(start)}
			continue
		}
		recs := []engine.Record{{Value: ev, Format: engine.FormatJSON}}
		var dlq []engine.DLQEntry
		for j := range vs {
			if len(recs) == 0 {
				break
			}
			var err error
			recs, dlq, err = d.run(ctx, j, recs, dlq)
			if err != nil {
				res.PeakMemory = d.peak
				return res, fmt.Errorf("dry run event %d: %w", i, err)
			}
		}
		e := DryRunEvent{Outputs: len(recs), Duration: time.Since(start) - (d.startup - startup)}
		switch {
		case len(dlq) > 0:
			e.Decision, e.Reason, e.Stage = DeadLettered, dlq[0].Reason, dlq[0].Stage
		case len(recs) == 0:
			e.Decision = Dropped
		case len(recs) == 1:
			e.Decision = Kept
		default:
			e.Decision = FannedOut
		}
		res.Events[i] = e
		for _, r := range recs {
			out := DryRunRecord{Event: i, Topic: r.Topic, Key: string(r.Key), Value: json.RawMessage(r.Value)}
			for _, hd := range r.Headers {
				out.Headers = append(out.Headers, DryRunHeader{Key: hd.Key, Value: string(hd.Value)})
			}
			res.Records = append(res.Records, out)
		}
	}
	res.PeakMemory = d.peak
	return res, nil
}

// dryRun holds a dry run's own instance of each transform of its chain
// (started on first use, replaced after a failed call).
type dryRun struct {
	h       *Host
	vs      []*version
	ins     []*instance
	peak    uint64
	startup time.Duration // spent starting instances: no event's time
}

// run calls transform j of the chain over recs on the dry run's instance.
// A failed guest call dead-letters recs with the reason (stage: the
// transform); only a done ctx or an instance that cannot start is an
// error.
func (d *dryRun) run(ctx context.Context, j int, recs []engine.Record, dlq []engine.DLQEntry) ([]engine.Record, []engine.DLQEntry, error) {
	v, h := d.vs[j], d.h
	in := d.ins[j]
	if in == nil {
		var err error
		t := time.Now()
		in, err = v.newInstance(ctx)
		d.startup += time.Since(t)
		if err != nil {
			return recs, dlq, err
		}
		d.ins[j] = in
		d.note(in)
	}
	st := &in.state
	st.reset(recs, h.cfg.MaxEmitPerCall)
	in.stdout.reset()
	in.stderr.reset()
	deadline := h.cfg.deadline(len(recs))
	cctx := context.WithValue(ctx, stateKey{}, st)
	in.stack[0] = uint64(len(recs))
	callErr, why := in.intr.call(cctx, in.process, in.stack, deadline)
	d.note(in)
	if callErr == nil && api.DecodeI32(in.stack[0]) == 0 {
		out, dlq, _ := st.collect(recs, dlq, v.name)
		st.release()
		return out, dlq, nil
	}
	st.release()
	var te *TrapError
	switch {
	case callErr == nil:
		// The guest aborted: its instance is still sound.
		te = &TrapError{Transform: v.name, Kind: TrapAbort, Detail: fmt.Sprintf("%s returned %d", ExportProcess, api.DecodeI32(in.stack[0]))}
	case ctx.Err() != nil:
		return recs, dlq, ctx.Err()
	case why == stopClosed || h.shut.Load(): // as in version.run
		d.discard(j)
		return recs, dlq, ErrClosed
	default:
		te = v.classify(in, callErr, deadline, why)
		d.discard(j)
	}
	for i := range recs {
		dlq = append(dlq, engine.DLQEntry{Record: recs[i], Reason: te.Reason(), Stage: v.name})
	}
	return recs[:0], dlq, nil
}

// note records in's memory in the run's peak and the host's guest memory.
func (d *dryRun) note(in *instance) {
	d.peak = max(d.peak, uint64(in.mem.Size()))
	d.h.noteMem(in)
}

// discard closes the instance of transform j.
func (d *dryRun) discard(j int) {
	if in := d.ins[j]; in != nil {
		in.mod.Close(context.Background())
		d.h.forgetMem(in)
		d.ins[j] = nil
	}
}

// close closes every instance of the run.
func (d *dryRun) close() {
	for j := range d.ins {
		d.discard(j)
	}
}
