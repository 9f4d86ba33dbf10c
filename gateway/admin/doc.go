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
// GET /metrics on the admin listener (no token) is served by the gateway;
// its families, with their HELP texts, are the table gateway.Catalog
// (gateway/metrics.go), which README.md's metrics table is generated from.
// The end-to-end tests of this package check against the real binary that
// every sluice_* family it serves has a HELP text (and that promtool check
// metrics finds nothing to say about them), and that the counters move by
// exactly what the answered requests say (e2e_swap_test.go) or as the
// flood and recovery require (e2e_flood_test.go).
package admin
