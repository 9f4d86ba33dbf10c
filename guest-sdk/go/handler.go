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
// non-nil error dead-letters every record of the batch that is neither
// dropped nor dead-lettered yet. It replaces a record handler.
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
	cur     Batch
	scratch = make([]byte, 4096) // grow-only buffer the host writes into
	arena   = make([]byte, 0, 4096)
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

// fetch runs a host getter that writes into scratch, growing scratch and
// retrying when the host reports the value is larger than the buffer. It
// returns a copy in the arena, or nil and a status.
func fetch(call func(buf unsafe.Pointer, capacity uint32) int32) ([]byte, int32) {
	for {
		n := call(unsafe.Pointer(unsafe.SliceData(scratch)), uint32(len(scratch)))
		if n < 0 {
			return nil, n
		}
		if int(n) <= len(scratch) {
			start := len(arena)
			arena = append(arena, scratch[:n]...)
			return arena[start:len(arena):len(arena)], StatusOK
		}
		scratch = make([]byte, growTo(int(n)))
	}
}

func growTo(n int) int {
	c := 2 * len(scratch)
	for c < n {
		c *= 2
	}
	return c
}

// ptr returns a pointer to b's first byte, or nil for an empty slice.
func ptr(b []byte) unsafe.Pointer { return unsafe.Pointer(unsafe.SliceData(b)) }

type unsafeBuf = unsafe.Pointer
