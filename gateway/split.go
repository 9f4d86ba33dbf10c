package gateway

import (
	"bytes"
	"sync"

	"github.com/sluicehq/sluice/engine/codec"
)

// bodyKind says how a request body is split into records.
type bodyKind uint8

const (
	// kindSniff: no JSON media type was given (curl's form default, text/plain,
	// none); the body's first bytes decide.
	kindSniff bodyKind = iota
	// kindJSON: application/json — one object or an array of objects, and the
	// whole body must be valid JSON.
	kindJSON
	// kindNDJSON: application/x-ndjson — one JSON object per line; bad lines
	// are dead-lettered, the rest proceed.
	kindNDJSON
)

// maxDLQValue caps the bytes of an oversized event kept in its dead letter,
// so that the dead letter itself fits in a Kafka message.
const maxDLQValue = 64 << 10

// span is one record of a body: body[off : off+n]. A request holds its
// records as spans (8 bytes each) for as long as it is in flight; the
// receiver makes an engine.Record (128 bytes) of a span only when the
// driver takes it, a block at a time.
type span struct{ off, n uint32 }

// maxSplitBody is the largest body a span can index.
const maxSplitBody uint64 = 1<<32 - 1

// deadLetter is one rejected event of a body, 20 bytes instead of an
// engine.DLQEntry's 160 and its reason's text: the receiver makes the
// entry, reason and all, only when the driver takes it.
type deadLetter struct {
	span        // the bytes kept (an oversized event: its first maxDLQValue)
	why  dlKind // which reason
	n    uint32 // the line or array element; dlTooLarge: the event's size; dlReason: index in reasons
	seq  uint32 // the event's index in the body (Record.Seq)
}

// dlKind says why an event was dead-lettered.
type dlKind uint8

const (
	dlLineNotJSON   dlKind = iota // NDJSON line n is not valid JSON
	dlLineNotObject               // NDJSON line n is not an object
	dlElemNotObject               // array element n is not an object
	dlTooLarge                    // over the per-event cap; n is its size
	dlReason                      // reasons[n] (a repeated name, …)
)

// splitOut collects the records and dead letters of one body. Records
// reference the body's bytes (no copy); the body must not be mutated while
// they are in flight.
type splitOut struct {
	body      []byte // the body the spans index
	spans     []span
	bytes     int64 // payload bytes of the spans and dead letters
	dlq       []deadLetter
	reasons   []string // the reasons of dlReason dead letters
	maxEvent  int      // per-event cap in bytes; ≤ 0: none
	maxEvents int      // cap on the events (records + dead letters) of the body; ≤ 0: none
	tag       uint64   // Record.Tag of every record and dead letter
	topic     string   // Record.Topic of every record ("" = sink default)
	ck        *codec.Checker
}

// checkers keeps codec.Checkers with grown buffers across requests.
var checkers = sync.Pool{New: func() any { return new(codec.Checker) }}

// spanOf returns the span of v, a sub-slice of o.body.
func (o *splitOut) spanOf(v []byte) span {
	return span{off: uint32(cap(o.body) - cap(v)), n: uint32(len(v))}
}

// add appends the record v, a sub-slice of o.body.
func (o *splitOut) add(v []byte) {
	o.spans = append(o.spans, o.spanOf(v))
	o.bytes += int64(len(v))
}

// record takes the record v, or dead-letters it when it is over the
// per-event cap.
func (o *splitOut) record(v []byte) {
	if o.maxEvent > 0 && len(v) > o.maxEvent {
		o.tooLarge(v)
		return
	}
	o.add(v)
}

// tooLarge dead-letters v, over the per-event cap, keeping its first
// maxDLQValue bytes.
func (o *splitOut) tooLarge(v []byte) {
	o.deadLetter(v[:min(len(v), maxDLQValue)], dlTooLarge, len(v))
}

// deadLetter dead-letters v (a sub-slice of o.body) for why.
func (o *splitOut) deadLetter(v []byte, why dlKind, n int) {
	o.dlq = append(o.dlq, deadLetter{span: o.spanOf(v), why: why, n: uint32(n), seq: uint32(o.inputs())})
	o.bytes += int64(len(v))
}

// reject dead-letters v, a sub-slice of o.body, with reason (kept once
// when it repeats the previous one: a body of the same bad event costs one
// text).
func (o *splitOut) reject(v []byte, reason string) {
	if n := len(o.reasons); n == 0 || o.reasons[n-1] != reason {
		o.reasons = append(o.reasons, reason)
	}
	o.deadLetter(v, dlReason, len(o.reasons)-1)
}

// inputs is the number of events the body carried (records + rejects).
func (o *splitOut) inputs() int { return len(o.spans) + len(o.dlq) }

// full reports whether the body already holds maxEvents events: one more
// makes it a *TooManyEventsError.
func (o *splitOut) full() bool { return o.maxEvents > 0 && o.inputs() >= o.maxEvents }

// tooMany is the error of a body past maxEvents.
func (o *splitOut) tooMany() error { return &TooManyEventsError{Max: o.maxEvents} }

// split cuts body into records without a full parse: NDJSON by line, an
// array element by element. Every record is checked (codec.Checker) to be
// strictly valid JSON, a JSON object, and free of repeated names. It returns
// ErrEmptyBody for a body without events, ErrInvalidJSON for a JSON body
// that is not valid JSON, and a *TooManyEventsError for a body of more than
// out.maxEvents events (nothing of such a body is to be accepted); bad
// NDJSON lines, records that repeat a name and oversized events become dead
// letters in out.
func split(body []byte, kind bodyKind, out *splitOut) error {
	if uint64(len(body)) > maxSplitBody {
		return ErrBodyTooLarge
	}
	out.body = body
	if out.ck == nil {
		out.ck = checkers.Get().(*codec.Checker)
		defer func() { checkers.Put(out.ck); out.ck = nil }()
	}
	start := skipWS(body, 0)
	if start == len(body) {
		return ErrEmptyBody
	}
	switch kind {
	case kindNDJSON:
		return splitNDJSON(body, out)
	case kindJSON:
		return splitJSON(body, start, out)
	}
	// Sniff: an array, a single object, or NDJSON.
	switch body[start] {
	case '[':
		return splitJSON(body, start, out)
	case '{':
		end, ok := skipValue(body, start)
		if ok && skipWS(body, end) == len(body) {
			return splitJSON(body, start, out)
		}
		if bytes.IndexByte(body[start:], '\n') >= 0 {
			return splitNDJSON(body, out)
		}
		return ErrInvalidJSON
	default:
		return ErrInvalidJSON
	}
}

// splitNDJSON splits by line; empty lines are skipped.
func splitNDJSON(body []byte, out *splitOut) error {
	line := 0
	for len(body) > 0 {
		line++
		var l []byte
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			l, body = body[:i], body[i+1:]
		} else {
			l, body = body, nil
		}
		l = trimWS(l)
		if len(l) == 0 {
			continue
		}
		if out.full() {
			return out.tooMany()
		}
		if out.maxEvent > 0 && len(l) > out.maxEvent {
			out.tooLarge(l)
			continue
		}
		switch err := out.ck.Check(l); {
		case err == codec.ErrInvalid:
			out.deadLetter(l, dlLineNotJSON, line)
		case err != nil:
			out.reject(l, err.Error())
		case l[0] != '{':
			out.deadLetter(l, dlLineNotObject, line)
		default:
			out.add(l)
		}
	}
	if out.inputs() == 0 {
		return ErrEmptyBody
	}
	return nil
}

// splitJSON handles one object or an array of objects starting at body[i].
// The body must be valid JSON as a whole; an element that repeats a name
// (codec.DuplicateKeyError) is dead-lettered, the rest proceed. One pass
// of codec.Checker.Next both checks each element and finds its end.
func splitJSON(body []byte, i int, out *splitOut) error {
	switch body[i] {
	case '{':
		end, err := out.ck.Next(body, i)
		if err == codec.ErrInvalid || skipWS(body, end) != len(body) {
			return ErrInvalidJSON
		}
		out.element(body[i:end], err, 0)
		return nil
	case '[':
	default:
		return ErrInvalidJSON
	}
	i = skipWS(body, i+1)
	if i < len(body) && body[i] == ']' {
		if skipWS(body, i+1) != len(body) {
			return ErrInvalidJSON
		}
		return ErrEmptyBody
	}
	for n := 1; ; n++ {
		if out.full() {
			return out.tooMany()
		}
		end, err := out.ck.Next(body, i)
		if err == codec.ErrInvalid {
			return ErrInvalidJSON
		}
		out.element(body[i:end], err, n)
		i = skipWS(body, end)
		if i == len(body) {
			return ErrInvalidJSON
		}
		switch body[i] {
		case ',':
			i = skipWS(body, i+1)
		case ']':
			if skipWS(body, i+1) != len(body) {
				return ErrInvalidJSON
			}
			return nil
		default:
			return ErrInvalidJSON
		}
	}
}

// element takes the checked JSON value v, element n of an array (0: the
// body's single object), whose check returned err (nil or a
// *codec.DuplicateKeyError).
func (o *splitOut) element(v []byte, err error, n int) {
	switch {
	case err != nil:
		if o.maxEvent > 0 && len(v) > o.maxEvent {
			o.tooLarge(v)
			return
		}
		o.reject(v, err.Error())
	case v[0] != '{':
		o.deadLetter(v, dlElemNotObject, n)
	default:
		o.record(v)
	}
}

// skipValue returns the end of the JSON value starting at b[i] by a
// structural skip: strings and nesting are tracked, nothing else is checked
// (the value is validated separately). ok is false when the value does not
// end inside b.
func skipValue(b []byte, i int) (end int, ok bool) {
	if i >= len(b) {
		return i, false
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				e, ok := skipString(b, i)
				if !ok {
					return e, false
				}
				i = e
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1, true
				}
			}
			i++
		}
		return i, false
	case '}', ']', ',', ':':
		return i, false
	default:
		for i < len(b) {
			switch b[i] {
			case ',', ']', '}', ' ', '\t', '\r', '\n':
				return i, true
			}
			i++
		}
		return i, true
	}
}

// skipString returns the index after the closing quote of the string that
// starts at b[i].
func skipString(b []byte, i int) (int, bool) {
	i++
	for {
		j := bytes.IndexAny(b[i:], `"\`)
		if j < 0 {
			return len(b), false
		}
		i += j
		if b[i] == '"' {
			return i + 1, true
		}
		i += 2 // a backslash and the byte it escapes
		if i > len(b) {
			return len(b), false
		}
	}
}

func isWS(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

func skipWS(b []byte, i int) int {
	for i < len(b) && isWS(b[i]) {
		i++
	}
	return i
}

func trimWS(b []byte) []byte {
	for len(b) > 0 && isWS(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isWS(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}
