// Package admin is sluice's admin REST API: upload, version, roll back,
// delete and dry-run WASM transforms, read and swap pipelines, and read the
// governor's state.
//
// The central type is Handler, a fasthttp handler built by New from a Config
// (the bearer token, the upload cap) and Deps (the small interfaces it
// consumes: Transforms, Pipelines, the governor readers, the traffic and
// status readers). Close stops its history sampler. The gateway's
// admin listener serves GET /healthz, /readyz and /metrics itself and
// delegates every other path to Handler.ServeFastHTTP. The listener must
// accept bodies of Handler.MaxRequestBodySize and use
// Handler.WriteServerError as its ErrorHandler, so that an oversized body is
// answered 413 in the API's JSON error shape.
//
// Requests enter at ServeFastHTTP, are authenticated (Authorization: Bearer
// <token>, compared in constant time; 401 otherwise, for every path but the
// console's static files under /ui/, so an unauthenticated client learns
// nothing about routes), routed (404 JSON for
// an unknown path, 405 with Allow for a known path and a wrong method), and
// served by a HandlerFunc that returns an error. Every error is written by
// one JSON error writer as {"error": "...", "status": N}; the status comes
// from one mapping of the sentinel errors in errors.go (ErrInvalid 400,
// ErrUnauthorized 401, ErrNotFound 404, ErrInUse and ErrNoPrevious 409,
// ErrTooLarge 413, ErrUnavailable 503, anything else 500).
//
// # Routes
//
//	PUT    /admin/transforms/{name}           body: .wasm bytes (gzip ok) → 201 TransformInfo (200: same bytes as current)
//	GET    /admin/transforms                  → 200 {"transforms": [TransformInfo...]}
//	GET    /admin/transforms/{name}           → 200 TransformInfo | 404
//	DELETE /admin/transforms/{name}           → 204 | 404 | 409 while a pipeline uses it
//	POST   /admin/transforms/{name}/rollback  → 200 TransformInfo (previous version) | 409 none kept
//	POST   /admin/transforms/{name}/test      body: sample events → 200 dry-run result
//	GET    /admin/pipeline[?tenant=T]         → 200 {"tenant","transforms","tenants","available","error"}
//	PUT    /admin/pipeline[?tenant=T]         {"transforms":["a","b"]} → 200 {"tenant","transforms","previous"}
//	POST   /admin/pipeline/test[?tenant=T][&transforms=a,b]  body: sample events → 200 dry-run result
//	GET    /admin/budget                      → 200 governor state
//	GET    /admin/history[?since=MS]          → 200 the governor's and the traffic's last minutes, one sample a second
//	GET    /admin/status                      → 200 readiness and the sink's health, with the reason when something is wrong
//	GET    /ui/                               → the console (public static files; the page asks for the token)
//
// A transform name is [a-z0-9][a-z0-9_-]{0,62}. Uploading new bytes under an
// existing name creates a new version and keeps the previous one for
// rollback. TransformInfo is
//
//	{"name","digest","size","abi_version","exports","version","versions",
//	 "created","used_by","calls","records","traps","peak_memory_bytes","error"}
//
// "error" is present when the transform is not loaded (it failed to load at
// start: its module missing, altered or not compiling); every pipeline that
// uses it is then unavailable — GET /admin/pipeline says "available": false
// with the "error", and its tenant's ingest requests get 503 — until the
// transform is uploaded again (the same bytes are fine), rolled back, or the
// pipeline is changed. A pipeline cannot be set to a chain with such a
// transform (400).
//
// Sample events are a JSON array, one JSON value, or NDJSON. A dry run
// produces nothing downstream and runs on instances of its own: the pools
// that serve traffic, the transforms' counters and the metrics do not move
// (one dry run runs at a time; another waits within DryRunTimeout). Its
// result is
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
//	 "pressure": {"level","pause_above","resume_below","latched","latched_since","latched_by",
//	              "hard","pauses","resumes","sources":[{"name","level","hard"}]},
//	 "memory": {"inflight_bytes","limit_bytes","heap_bytes",
//	            "baseline": {"limit_bytes","total_bytes","runtime_bytes","binary_bytes","code_bytes",
//	                         "pools_bytes","traffic_bytes","traffic_share","go_memory_limit_bytes","measured_at"}},
//	 "gate": {"state","rejections"}}
//
// GET /admin/history is columnar, oldest sample first (for charts):
//
//	{"interval_ms", "length_seconds", "pause_above", "resume_below",
//	 "t": [unix ms...], "latched_by": ["" or the source, ...],
//	 "series": {NAME: [number or null, ...]}, "sources": {SOURCE: [level or null, ...]}}
//
// with the series byte_budget_bytes, record_cap, pressure_level, latched
// (0/1), hard (0/1), inflight_bytes, inflight_limit_bytes, heap_bytes,
// ingest_requests_per_second, ingest_events_per_second,
// ingest_bytes_per_second, gate_rejections_per_second, dropped_per_second,
// dead_letters_per_second, sink_records_per_second, sink_errors_per_second,
// sink_latency_mean_ms, sink_latency_max_ms (the longest write of the
// interval), sink_healthy (0/1) and ready (0/1). A series whose part is not
// configured is null; rates are null on the first sample. ?since=MS returns
// only the samples after MS (the t of the last sample the caller holds).
// The samples are taken by a goroutine from New to Close, so the history
// covers the minutes before anyone looked.
//
// GET /admin/status is
//
//	{"ready", "reason", "sink": {"healthy","error"}, "started", "uptime_seconds"}
//
// # Console
//
// GET /ui/ serves the operator console: static files embedded in the binary
// (ui/, with uPlot vendored under ui/vendor/uplot with its MIT licence),
// nothing fetched from the network (its Content-Security-Policy allows only
// this origin). The page asks for the admin token (or takes it from
// #token=...), keeps it in the tab's sessionStorage, and uses only the
// routes above: live governor charts from /admin/history, the transform
// list with upload, roll back and delete, the pipelines per tenant, dry
// runs, and readiness from /admin/status.
//
// # Metrics
//
// GET /metrics on the admin listener (no token) is served by the gateway;
// its families, with their HELP texts, are the table gateway.Catalog
// (gateway/metrics.go), which README.md's metrics table is generated from.
// The end-to-end tests of this package check against the real binary that
// every sluice_* family it serves has a HELP text (and that promtool check
// metrics finds nothing to say about them), and that the counters move by
// exactly what the answered requests say (e2e_swap_test.go) or as the
// flood and recovery require (e2e_flood_test.go).
package admin
