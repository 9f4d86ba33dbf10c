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
	b.rec = Record{idx: int32(i), flags: recDirect}
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
		startBatch(n)
		runRecords(recordHandler, n)
		endBatch()
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

// runRecords calls h for records 0 … n-1. A guest pays for every loop
// iteration and every jump between the parts of a function (the host's
// guard against runaway guests runs at each), so the loop is unrolled over
// four records, each with its own handle, and their errors are looked at
// once per four.
func runRecords(h func(*Record) error, n int32) {
	r := &quad
	i := int32(0)
	for ; i+4 <= n; i += 4 {
		r[0].idx, r[0].k, r[0].flags, r[0].nEdits = i, 0, 0, 0
		e0 := h(&r[0])
		r[1].idx, r[1].k, r[1].flags, r[1].nEdits = i+1, 0, 0, 0
		e1 := h(&r[1])
		r[2].idx, r[2].k, r[2].flags, r[2].nEdits = i+2, 0, 0, 0
		e2 := h(&r[2])
		r[3].idx, r[3].k, r[3].flags, r[3].nEdits = i+3, 0, 0, 0
		e3 := h(&r[3])
		if e0 != nil || e1 != nil || e2 != nil || e3 != nil {
			failed(&r[0], e0)
			failed(&r[1], e1)
			failed(&r[2], e2)
			failed(&r[3], e3)
		}
	}
	for ; i < n; i++ {
		r[0].idx, r[0].k, r[0].flags, r[0].nEdits = i, 0, 0, 0
		failed(&r[0], h(&r[0]))
	}
}

// quad are the handles of the records runRecords calls a handler with.
var quad [4]Record

// failed dead-letters the record whose handler returned err (if not nil),
// unless the handler decided about it already.
func failed(rec *Record, err error) {
	if err != nil && rec.flags&recDecided == 0 {
		rec.DeadLetter(err.Error())
	}
}
