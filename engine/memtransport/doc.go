// Package memtransport is an in-memory transport for the engine: a source
// (Receiver) with Kafka-like offsets and a cumulative committed watermark,
// and a sink (RecordSink, DLQSink) that keeps what it was sent. Tests of the
// engine, the wasm host and the gateway drive real run loops over it.
//
// The central type is Transport. Records enter with Inject (each gets the
// next offset, its commit token) and leave through Recv/RecvLimited; Commit
// advances the committed watermark to the highest offset it is given.
// Close ends the source: once the queue is drained, Recv returns
// engine.ErrSourceClosed. The sink side (Send, SendBatch, Write, WriteDLQ)
// copies what it is given and exposes it with Sent and DeadLetters.
//
// A Transport is safe for concurrent use.
package memtransport
