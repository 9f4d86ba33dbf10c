package engine

// Batch is the unit the driver moves: the records of one receive, the INPUT
// commit tokens of that receive, and the dead letters found so far.
//
// Tokens are decoupled from Records: a process stage may fan records out
// (1→N) or in (drop, merge) without touching the tokens, and the driver
// commits exactly the input tokens, once, after the sink accepted the whole
// output. T is the source's token type (a Kafka offset, an HTTP request's ack).
type Batch[T any] struct {
	Records []Record
	Tokens  []T
	DLQ     []DLQEntry
	// Release gives back memory the records and dead letters borrow (set
	// by Process from what its Processor registered with ReleasesFrom).
	// The driver calls each function once, after the block holding them is
	// committed, and only when every sink and dead-letter write of the
	// block succeeded; after any failure it never calls them and the
	// memory is left to the garbage collector.
	Release []func()
}

// Len returns the number of records.
func (b *Batch[T]) Len() int { return len(b.Records) }

// Bytes returns the sum of the records' Size.
func (b *Batch[T]) Bytes() int64 {
	var n int64
	for i := range b.Records {
		n += int64(b.Records[i].Size())
	}
	return n
}

// MapRecords replaces the records with f(records) and keeps the tokens and
// dead letters: the way a process stage changes records without disturbing
// the source acks.
func (b Batch[T]) MapRecords(f func([]Record) []Record) Batch[T] {
	b.Records = f(b.Records)
	return b
}
