package wasmhost

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/sluicehq/sluice/engine"
	"github.com/sluicehq/sluice/engine/codec"
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
	Duration time.Duration `json:"duration_ns"`      // through the whole chain
}

// DryRunResult is the outcome of DryRun.
type DryRunResult struct {
	Records []DryRunRecord `json:"records"`
	Events  []DryRunEvent  `json:"events"`
	// PeakMemory is the largest linear memory, in bytes, any instance of
	// the chain's transforms has reached.
	PeakMemory uint64 `json:"peak_memory"`
}

// DryRun runs events (one JSON document each) through the named
// transforms, one event at a time, without touching any pipeline or sink.
// Guest failures are reported as dead letters whatever OnTrap says. An
// unknown transform is an error wrapping ErrNotFound.
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

	res := DryRunResult{Records: []DryRunRecord{}, Events: make([]DryRunEvent, len(events))}
	for i, ev := range events {
		start := time.Now()
		if !codec.Valid(ev) {
			res.Events[i] = DryRunEvent{Decision: DeadLettered, Reason: "parse error: invalid JSON", Stage: "parse", Duration: time.Since(start)}
			continue
		}
		recs := []engine.Record{{Value: ev, Format: engine.FormatJSON}}
		var dlq []engine.DLQEntry
		for _, v := range vs {
			if len(recs) == 0 {
				break
			}
			var err error
			recs, dlq, err = h.runVersion(ctx, v, recs, dlq, TrapDLQ)
			if err != nil {
				return res, fmt.Errorf("dry run event %d: %w", i, err)
			}
		}
		e := DryRunEvent{Outputs: len(recs), Duration: time.Since(start)}
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
	for _, v := range vs {
		res.PeakMemory = max(res.PeakMemory, uint64(v.peakMem.Load()))
	}
	return res, nil
}
