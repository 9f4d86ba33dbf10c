// Package gateway is sluice's shell: the fasthttp front door, its HTTP
// receiver, the admin listener, the sinks besides Kafka, the metrics, the
// configuration and the App that wires the engine, the governor, the WASM
// host and Kafka together.
//
// The central type is App. It runs supervised lines, each a source → the
// governed driver → the pipeline → the sink, sharing the governor, the sink
// and the WASM host; HTTP ingest is one line, each Kafka consumer-group
// source (kafkaline.go) another. Data enters at POST /v1/events (Server), is split
// into records without a full parse (split.go) and enqueued on the HTTP
// Receiver, a byte-bounded queue that implements engine.Receiver[*Ack]. The
// engine's governed driver pulls byte-capped batches from it, runs the
// pipeline and writes to the sink; its commit of a batch resolves the Acks of
// the requests whose last record the batch carried, which answers the
// waiting clients with 200 and their counts.
//
// Delivery: a request gets 200 only after every one of its records was
// accepted by the sink (Kafka: acks=all), dropped by a transform, or routed
// to the dead-letter queue. A terminal driver error (sink, commit or DLQ
// failure) fails every waiting request with 503; the supervisor marks the
// sink unhealthy (the gate holds and /readyz is not ready), probes the sink
// with capped exponential backoff and restarts the driver when it answers.
//
// Configuration is one tagged struct, Config: its tags give every option's
// flag, YAML key, environment variable, default and help (LoadConfig).
//
// Memory: every request body, with its bookkeeping (a span per record, its
// dead letters), is leased from the governor's MemoryGuard from read to ack;
// a request holds at most --max-events events (413 past it); at most
// --max-concurrent-reads bodies are read, decompressed and split at once
// (503 after --read-queue-timeout); the queue is bounded in bytes and
// rejects with 503 when full; the inbound gate is evaluated before a body
// is read. The memory limit (--memory-limit) also sets GOMEMLIMIT, which
// the governor then keeps at the limit less the memory outside the Go
// runtime (compiled WASM code, the binary's pages); its heap source reads
// the process's memory net of the baseline measured at start, and start
// refuses a baseline that leaves traffic under a quarter of the limit
// (memory.go).
//
// The front door's edge, for browsers, mobile apps and SDKs: HTTPS with
// certificates reloaded from their files and on SIGHUP (tlsreload.go), CORS
// for allowed origins (cors.go), API keys in headers, Basic auth or the
// query (Server.auth), a token bucket per key (ratelimit.go, 429 with
// Retry-After), Idempotency-Key replays (idempotency.go), per-event results
// (results.go, from engine.Record.Seq) and record metadata headers
// (metadata.go).
//
// Errors map to HTTP statuses in one function, StatusOf; each rejection
// carries a JSON body {"error": "..."} that says what to do next.
package gateway
