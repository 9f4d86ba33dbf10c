package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"unicode/utf8"

	"github.com/valyala/fasthttp"
)

func errorsIsBodyTooLarge(err error) bool { return errors.Is(err, fasthttp.ErrBodyTooLarge) }

// samples reads the events of a dry-run request: a JSON array of events,
// one JSON value, or NDJSON (one value per line; blank lines skipped).
func (h *Handler) samples(ctx *fasthttp.RequestCtx) ([][]byte, error) {
	body, err := h.body(ctx, h.cfg.MaxSample, "sample body")
	if err != nil {
		return nil, err
	}
	events, err := SplitEvents(body)
	if err != nil {
		return nil, err
	}
	if len(events) > h.cfg.MaxSampleEvents {
		return nil, Invalidf("%d sample events, at most %d per dry-run", len(events), h.cfg.MaxSampleEvents)
	}
	return events, nil
}

// SplitEvents splits a dry-run body into events: a JSON array's elements, a
// single JSON value, or NDJSON lines. Every event must be valid JSON; the
// error names the first one that is not. The events alias body.
func SplitEvents(body []byte) ([][]byte, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil, Invalidf("no sample events: send a JSON array, one JSON object, or NDJSON")
	}
	if trimmed[0] == '[' {
		var raw []json.RawMessage
		if err := json.Unmarshal(trimmed, &raw); err != nil {
			return nil, Invalidf("sample body is not a valid JSON array: %w", err)
		}
		events := make([][]byte, len(raw))
		for i, r := range raw {
			events[i] = []byte(r)
		}
		if len(events) == 0 {
			return nil, Invalidf("no sample events: the array is empty")
		}
		return events, nil
	}
	if json.Valid(trimmed) {
		// One value, possibly pretty-printed over several lines.
		return [][]byte{trimmed}, nil
	}
	var events [][]byte
	line := 0
	for rest := trimmed; len(rest) > 0; {
		line++
		var l []byte
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			l, rest = rest[:i], rest[i+1:]
		} else {
			l, rest = rest, nil
		}
		l = bytes.TrimSpace(l)
		if len(l) == 0 {
			continue
		}
		if !json.Valid(l) {
			return nil, Invalidf("sample line %d is not valid JSON (NDJSON: one JSON value per line)", line)
		}
		events = append(events, l)
	}
	return events, nil
}

// dryRunBody is the JSON of a dry-run response.
type dryRunBody struct {
	Transforms      []string       `json:"transforms"`
	Summary         dryRunSummary  `json:"summary"`
	Events          []dryRunEvent  `json:"events"`
	Records         []dryRunRecord `json:"records"`
	PeakMemoryBytes int64          `json:"peak_memory_bytes"`
	DurationUS      float64        `json:"duration_us"`
}

type dryRunSummary struct {
	Events       int `json:"events"`
	Kept         int `json:"kept"`
	Dropped      int `json:"dropped"`
	DeadLettered int `json:"dead_lettered"`
	FannedOut    int `json:"fanned_out"`
	RecordsOut   int `json:"records_out"`
}

type dryRunEvent struct {
	Index      int     `json:"index"`
	Decision   string  `json:"decision"`
	Outputs    int     `json:"outputs"`
	Reason     string  `json:"reason,omitempty"`
	Stage      string  `json:"stage,omitempty"`
	DurationUS float64 `json:"duration_us"`
}

type dryRunRecord struct {
	Input       int             `json:"input"`
	Topic       string          `json:"topic"`
	Key         *string         `json:"key"`
	KeyBase64   []byte          `json:"key_base64,omitempty"`
	Headers     []dryRunHeader  `json:"headers"`
	Value       json.RawMessage `json:"value,omitempty"`
	ValueString *string         `json:"value_string,omitempty"`
	ValueBase64 []byte          `json:"value_base64,omitempty"`
}

type dryRunHeader struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// encodeDryRun turns a result into its JSON shape: values as JSON when they
// are valid JSON, as a string when they are UTF-8 text, base64 otherwise.
func encodeDryRun(res DryRunResult, inputs int) dryRunBody {
	out := dryRunBody{
		Transforms:      res.Transforms,
		Events:          make([]dryRunEvent, 0, len(res.Events)),
		Records:         make([]dryRunRecord, 0, len(res.Records)),
		PeakMemoryBytes: res.PeakMemoryBytes,
		DurationUS:      float64(res.Duration.Nanoseconds()) / 1e3,
	}
	out.Summary.Events = inputs
	for _, e := range res.Events {
		switch e.Decision {
		case DecisionKept:
			out.Summary.Kept++
		case DecisionDropped:
			out.Summary.Dropped++
		case DecisionDeadLettered:
			out.Summary.DeadLettered++
		case DecisionFannedOut:
			out.Summary.FannedOut++
		}
		out.Events = append(out.Events, dryRunEvent{
			Index: e.Index, Decision: e.Decision, Outputs: e.Outputs, Reason: e.Reason, Stage: e.Stage,
			DurationUS: float64(e.Duration.Nanoseconds()) / 1e3,
		})
	}
	out.Summary.RecordsOut = len(res.Records)
	for _, r := range res.Records {
		rec := dryRunRecord{Input: r.Input, Topic: r.Topic, Headers: make([]dryRunHeader, 0, len(r.Headers))}
		if r.Key != nil {
			if utf8.Valid(r.Key) {
				k := string(r.Key)
				rec.Key = &k
			} else {
				rec.KeyBase64 = r.Key
			}
		}
		for _, hd := range r.Headers {
			rec.Headers = append(rec.Headers, dryRunHeader{Key: hd.Key, Value: string(hd.Value)})
		}
		switch {
		case json.Valid(r.Value):
			rec.Value = json.RawMessage(r.Value)
		case utf8.Valid(r.Value):
			s := string(r.Value)
			rec.ValueString = &s
		default:
			rec.ValueBase64 = r.Value
		}
		out.Records = append(out.Records, rec)
	}
	return out
}
