package engine

import "time"

// Format says how a record's Value is encoded.
type Format uint8

const (
	// FormatJSON is a single JSON value (usually an object). The default.
	FormatJSON Format = iota
	// FormatRaw is opaque bytes the engine never parses.
	FormatRaw
)

// String returns the format's name.
func (f Format) String() string {
	switch f {
	case FormatJSON:
		return "json"
	case FormatRaw:
		return "raw"
	default:
		return "unknown"
	}
}

// Header is one record header, as in a Kafka record.
type Header struct {
	Key   string
	Value []byte
}

// Record is one event on its way from a source to a sink.
//
// Value is owned by the record: a receiver hands over bytes nobody else
// mutates, and a stage that edits a record replaces Value rather than writing
// into it, so a record nobody edited is written out as its original bytes.
type Record struct {
	// Value is the payload (a JSON document for FormatJSON).
	Value []byte
	// Key is the partitioning key; nil means none.
	Key []byte
	// Topic is the output topic; "" means the sink's default topic.
	Topic string
	// Headers are carried to the sink unchanged unless a transform sets them.
	Headers []Header
	// Format says how Value is encoded.
	Format Format
	// Seq is the record's position in its source unit, assigned by the
	// source and carried like Tag (the gateway: the index of the event in
	// its request body, so a request's per-event results can be told).
	// Records a transform emits inherit their parent's. The engine never
	// reads it. (It sits in Format's padding: a Record stays 128 bytes.)
	Seq uint32
	// Timestamp is when the record entered sluice (zero: the sink decides).
	Timestamp time.Time
	// Tag is an opaque value the source assigns (the gateway: its request
	// id) and every stage carries through: records a transform emits inherit
	// the tag of the record they came from, dead letters keep theirs. Sinks
	// use it to count outcomes per source unit. The engine never reads it.
	Tag uint64
}

// Size is the number of payload bytes the record accounts for against memory
// and byte budgets: its value, key and headers.
func (r *Record) Size() int {
	n := len(r.Value) + len(r.Key)
	for i := range r.Headers {
		n += len(r.Headers[i].Key) + len(r.Headers[i].Value)
	}
	return n
}

// DLQEntry is a dead letter: a record that could not be processed, with the
// reason. Dead letters travel with their batch and are routed by the driver's
// one DLQ policy before the batch's tokens are committed; they never vanish.
type DLQEntry struct {
	// Record is the record as it was when it failed (its original bytes for
	// a parse error).
	Record Record
	// Reason says why, for an operator ("parse error: ...", "trap: ...").
	Reason string
	// Stage names what produced the dead letter ("parse", a transform name,
	// "receiver", StageSink).
	Stage string
}

// StageSink is the Stage of a dead letter the driver made from a record
// its sink reported as failed (RecordErrors).
const StageSink = "sink"
