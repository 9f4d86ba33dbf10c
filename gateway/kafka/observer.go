package kafka

import "time"

// WriteStats describes one finished Write or WriteDLQ.
type WriteStats struct {
	// DLQ is true for WriteDLQ.
	DLQ bool
	// Records is how many records the write held.
	Records int
	// Failed is how many of them were not acknowledged.
	Failed int
	// Bytes is the sum of the records' value, key and header bytes.
	Bytes int64
	// Latency is the time from the first produce to the last ack (or to
	// giving up).
	Latency time.Duration
	// Err is what Write returned (nil on success).
	Err error
}

// Observer receives one WriteStats per Write and WriteDLQ, so the gateway can
// export metrics (records produced, failures, produce latency) without this
// package depending on a metrics library. ObserveWrite is called from the
// writing goroutine after the write finished; it may be called concurrently
// by concurrent writes and must not block.
type Observer interface {
	ObserveWrite(WriteStats)
}

// ObserverFunc adapts a function to Observer.
type ObserverFunc func(WriteStats)

// ObserveWrite calls f.
func (f ObserverFunc) ObserveWrite(s WriteStats) { f(s) }

// nopObserver is the Observer of a Sink that has none.
type nopObserver struct{}

func (nopObserver) ObserveWrite(WriteStats) {}
