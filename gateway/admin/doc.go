// Package admin is sluice's admin REST API: upload, version, roll back,
// delete and dry-run WASM transforms, read and swap pipelines, and read the
// governor's state.
//
// The central type is Handler, a fasthttp handler built by New from a Config
// (the bearer token, the upload cap) and Deps (the small interfaces it
// consumes: Transforms, Pipelines and the governor readers). The gateway's
// admin listener serves GET /healthz, /readyz and /metrics itself and
// delegates every other path to Handler.ServeFastHTTP. The listener must
// accept bodies of Handler.MaxRequestBodySize and use
// Handler.WriteServerError as its ErrorHandler, so that an oversized body is
// answered 413 in the API's JSON error shape.
//
// Requests enter at ServeFastHTTP, are authenticated (Authorization: Bearer
// <token>, compared in constant time; 401 otherwise, for every path, so an
// unauthenticated client learns nothing about routes), routed (404 JSON for
// an unknown path, 405 with Allow for a known path and a wrong method), and
// served by a HandlerFunc that returns an error. Every error is written by
// one JSON error writer as {"error": "...", "status": N}; the status comes
// from one mapping of the sentinel errors in errors.go (ErrInvalid 400,
// ErrUnauthorized 401, ErrNotFound 404, ErrInUse and ErrNoPrevious 409,
// ErrTooLarge 413, anything else 500).
//
// # Routes
//
//	PUT    /admin/transforms/{name}           body: .wasm bytes (gzip ok) → 201 TransformInfo (200: same bytes as current)
//	GET    /admin/transforms                  → 200 {"transforms": [TransformInfo...]}
//	GET    /admin/transforms/{name}           → 200 TransformInfo | 404
//	DELETE /admin/transforms/{name}           → 204 | 404 | 409 while a pipeline uses it
//	POST   /admin/transforms/{name}/rollback  → 200 TransformInfo (previous version) | 409 none kept
//	POST   /admin/transforms/{name}/test      body: sample events → 200 dry-run result
//	GET    /admin/pipeline[?tenant=T]         → 200 {"tenant","transforms","tenants"}
//	PUT    /admin/pipeline[?tenant=T]         {"transforms":["a","b"]} → 200 {"tenant","transforms","previous"}
//	POST   /admin/pipeline/test[?tenant=T][&transforms=a,b]  body: sample events → 200 dry-run result
//	GET    /admin/budget                      → 200 governor state
//
// A transform name is [a-z0-9][a-z0-9_-]{0,62}. Uploading new bytes under an
// existing name creates a new version and keeps the previous one for
// rollback. TransformInfo is
//
//	{"name","digest","size","abi_version","exports","version","versions",
//	 "created","used_by","calls","records","traps"}
//
// Sample events are a JSON array, one JSON value, or NDJSON. A dry-run
// produces nothing downstream; its result is
//
//	{"transforms": [...],
//	 "summary": {"events","kept","dropped","dead_lettered","fanned_out","records_out"},
//	 "events":  [{"index","decision","outputs","reason","stage","duration_us"}],
//	 "records": [{"input","topic","key","headers":[{"key","value"}],"value"}],
//	 "peak_memory_bytes", "duration_us"}
//
// where decision is kept, dropped, dead_lettered or fanned_out, and a
// record's value is inlined as JSON when it is valid JSON (else
// "value_string" or "value_base64").
//
// GET /admin/budget is
//
//	{"byte_budget", "record_cap",
//	 "aimd": {"bytes","min","max","record_cap","increases","decreases","hard_shrinks","last_utilisation","observations"},
//	 "pressure": {"level","latched","latched_since","latched_by","hard","pauses","resumes",
//	              "sources":[{"name","level","hard"}]},
//	 "memory": {"inflight_bytes","limit_bytes","heap_bytes"},
//	 "gate": {"state","rejections"}}
//
// # Metrics
//
// GET /metrics on the admin listener (no token) exports these in Prometheus
// text format with HELP and TYPE lines, followed by the Go process metrics.
// They are defined in gateway/metrics.go; their names and labels are part of
// sluice's interface (dashboards and alerts depend on them). Histograms are
// Prometheus histograms (le buckets, _sum, _count).
//
//	name                                      type       labels     meaning
//	sluice_ingest_requests_total              counter    code       ingest requests answered, by HTTP status (200, 400, 401, 413, 415, 503, 504, …)
//	sluice_ingest_events_total                counter               events accepted into the receive queue
//	sluice_ingest_bytes_total                 counter               request body bytes (decompressed) accepted into the queue
//	sluice_gate_rejections_total              counter    source     requests answered 503 by the inbound gate, by the pressure source that latched it
//	                                                                (memory_guard, go_heap, queue, sink); a source appears with its first rejection
//	sluice_gate_latched                       gauge                 1 while the pressure latch is closed and the front door answers 503, else 0
//	sluice_byte_budget_bytes                  gauge                 the AIMD byte budget: the most bytes one receive of the driver takes
//	sluice_recv_block_bytes                   gauge                 bytes of the last block the driver received
//	sluice_pressure_ratio                     gauge                 unified pressure level in [0, 1] (the max of the sources)
//	sluice_memory_inflight_bytes              gauge                 bytes leased from the memory guard (bodies between read and ack)
//	sluice_transform_calls_total              counter    transform  guest calls (one per transform per batch)
//	sluice_transform_duration_seconds         histogram  transform  guest call duration
//	sluice_transform_traps_total              counter    transform  failed guest calls: traps, deadlines, guest out-of-memory
//	sluice_events_dropped_total               counter               records dropped by transforms (a transform's decision, not a loss)
//	sluice_dlq_events_total                   counter    reason     dead letters by reason class: parse_error, too_large, trap, deadline, transform, sink_invalid_topic, sink_unknown_topic, sink_record_too_large, sink_topic_not_authorized, sink_invalid_record
//	sluice_sink_records_total                 counter               records written to their topics and acknowledged (acks=all); dead letters excluded
//	sluice_sink_errors_total                  counter               failed sink writes (the affected requests get 503)
//	sluice_sink_latency_seconds               histogram             duration of one sink write
//
// The gateway also exports sluice_sink_healthy (gauge, 1 when the sink is
// healthy), sluice_driver_restarts_total (counter),
// sluice_queue_bytes (gauge, bytes waiting in the receive queue),
// sluice_ingest_ack_latency_seconds (histogram, enqueue to ack of 200
// requests) and sluice_ingest_request_body_bytes_current (gauge, bytes of
// bodies between read and ack).
//
// Every metric of the table is checked by the end-to-end tests of this
// package against the real binary: each is exported, and the counters move
// by exactly what the answered requests say (e2e_swap_test.go) or as the
// flood and recovery require (e2e_flood_test.go).
package admin
