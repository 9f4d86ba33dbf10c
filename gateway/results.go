package gateway

import (
	"strconv"
	"sync"
)

// Per-event results (?results=true): the answer lists one result per event
// of the body, in body order. Records carry their event's index in
// engine.Record.Seq (records a transform emits inherit their parent's), and
// the sink's tally marks each event by what became of its records:
//
//   - dead_lettered, with the reason of its first dead letter, when any of
//     its records went to the dead-letter topic (at the receiver, in a
//     transform, or refused by Kafka);
//   - else accepted, when any of its records was written to its topic;
//   - else dropped: a transform dropped it (and everything it emitted).
//
// So an event a transform fans out into several records is accepted when
// they all were, and dead_lettered (with that reason) when one of them was;
// records a transform merges into one count for the event the surviving
// record came from, and the others are dropped. The counts (accepted,
// dropped, dead_lettered) stay counts of records.

// Event outcomes, in order of precedence.
const (
	eventDropped uint8 = iota
	eventAccepted
	eventDeadLettered
)

// eventResults is a request's per-event outcome.
type eventResults struct {
	mu      sync.Mutex // the driver writes, orphaned sub-blocks may race a FailAll
	status  []uint8
	reasons map[uint32]string
}

// newEventResults returns the results of a request of n events.
func newEventResults(n int) *eventResults {
	return &eventResults{status: make([]uint8, n)}
}

// accepted marks event seq: one of its records was written.
func (r *eventResults) accepted(seq uint32) {
	r.mu.Lock()
	if int(seq) < len(r.status) && r.status[seq] == eventDropped {
		r.status[seq] = eventAccepted
	}
	r.mu.Unlock()
}

// deadLettered marks event seq: one of its records was dead-lettered for
// reason (the first reason is kept).
func (r *eventResults) deadLettered(seq uint32, reason string) {
	r.mu.Lock()
	if int(seq) < len(r.status) && r.status[seq] != eventDeadLettered {
		r.status[seq] = eventDeadLettered
		if r.reasons == nil {
			r.reasons = map[uint32]string{}
		}
		r.reasons[seq] = reason
	}
	r.mu.Unlock()
}

// appendJSON appends `"results":[...]`.
func (r *eventResults) appendJSON(b []byte) []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	b = append(b, `"results":[`...)
	for i, st := range r.status {
		if i > 0 {
			b = append(b, ',')
		}
		switch st {
		case eventAccepted:
			b = append(b, `{"status":"accepted"}`...)
		case eventDeadLettered:
			b = append(b, `{"status":"dead_lettered","reason":`...)
			b = appendJSONString(b, r.reasons[uint32(i)])
			b = append(b, '}')
		default:
			b = append(b, `{"status":"dropped"}`...)
		}
	}
	return append(b, ']')
}

// resultsBodySize estimates the answer's bytes, to size its buffer.
func (r *eventResults) resultsBodySize() int {
	n := 16 + 24*len(r.status)
	for _, reason := range r.reasons {
		n += len(reason) + 32
	}
	return n
}

// appendCounts appends the counts object's members.
func appendCounts(b []byte, acc, drop, dead int64) []byte {
	b = append(b, `{"accepted":`...)
	b = strconv.AppendInt(b, acc, 10)
	b = append(b, `,"dropped":`...)
	b = strconv.AppendInt(b, drop, 10)
	b = append(b, `,"dead_lettered":`...)
	return strconv.AppendInt(b, dead, 10)
}
