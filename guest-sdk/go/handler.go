package sluice

import "unsafe"

var (
	recordHandler func(*Record) error
	batchHandler  func(*Batch) error
)

// HandleRecord registers the per-record handler, called once for every
// record of every batch, in order. Returning a non-nil error dead-letters the
// record with the error's text. Register it in init or main; the last
// registration wins, and it replaces a batch handler.
func HandleRecord(h func(rec *Record) error) {
	recordHandler, batchHandler = h, nil
}

// HandleBatch registers a handler called once per batch, for transforms that
// look across records (deduplicate, aggregate, reorder emits). Returning a
// non-nil error dead-letters every record of the batch. It replaces a record
// handler.
func HandleBatch(h func(b *Batch) error) {
	batchHandler, recordHandler = h, nil
}

// Batch is the set of records of one call. It is valid only while the batch
// handler runs.
type Batch struct {
	n   int32
	rec Record
}

// Len returns the number of records in the batch (emitted records are not
// counted).
func (b *Batch) Len() int { return int(b.n) }

// Record returns record i (0 ≤ i < Len). The returned pointer is reused: it
// is valid until the next call to Record.
func (b *Batch) Record(i int) *Record {
	b.rec = Record{idx: int32(i)}
	return &b.rec
}

var (
	cur Batch
	// arena holds every value the host returned during the current batch.
	// The host writes straight into its free capacity; it is reset (not
	// freed) at the start of each batch and only ever grows.
	arena = make([]byte, 0, 16<<10)
)

// process runs the registered handler over n records.
func process(n int32) int32 {
	arena = arena[:0]
	cur.n = n
	switch {
	case batchHandler != nil:
		if err := batchHandler(&cur); err != nil {
			msg := err.Error()
			for i := int32(0); i < n; i++ {
				hostDeadLetter(i, msg)
			}
		}
	case recordHandler != nil:
		rec := &cur.rec
		for i := int32(0); i < n; i++ {
			*rec = Record{idx: i}
			if err := recordHandler(rec); err != nil && !rec.decided {
				hostDeadLetter(i, err.Error())
			}
		}
	}
	return StatusOK
}

// Getters, for fetch.
const (
	getValue = iota
	getField
	getString
	getTopic
	getKey
	getHeader
)

func callGetter(op int, rec int32, arg string, buf unsafe.Pointer, capacity uint32) int32 {
	switch op {
	case getValue:
		return hostRecordValue(rec, buf, capacity)
	case getField:
		return hostGetField(rec, arg, buf, capacity)
	case getString:
		return hostGetString(rec, arg, buf, capacity)
	case getTopic:
		return hostRecordTopic(rec, buf, capacity)
	case getKey:
		return hostRecordKey(rec, buf, capacity)
	default:
		return hostRecordHeader(rec, arg, buf, capacity)
	}
}

// fetch runs a host getter that writes into the arena's free capacity,
// growing the arena and retrying when the host reports the value is larger.
// It returns the value (in the arena) or nil and a status. No closure and no
// copy: guest code pays for every call and loop iteration.
func fetch(op int, rec int32, arg string) ([]byte, int32) {
	for {
		start := len(arena)
		free := arena[start:cap(arena)]
		n := callGetter(op, rec, arg, ptr(free), uint32(len(free)))
		if n < 0 {
			return nil, n
		}
		if int(n) <= len(free) {
			end := start + int(n)
			arena = arena[:end]
			return arena[start:end:end], StatusOK
		}
		// Values already handed out keep the old array.
		arena = make([]byte, 0, max(2*cap(arena), 2*int(n)))
	}
}

// ptr returns a pointer to b's first byte, or nil for an empty slice.
func ptr(b []byte) unsafe.Pointer { return unsafe.Pointer(unsafe.SliceData(b)) }
