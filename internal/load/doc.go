// Package load is an HTTP load generator for sluice, or for any HTTP ingest
// endpoint that takes NDJSON or JSON bodies. The sluice binary runs it as
// "sluice load"; cmd/sluice-load runs the same Main on its own. Run is the
// same tool as a library call (the fault suite and benchmarks use it).
//
// # How it sends
//
// --connections workers each keep one request in flight over their own
// keep-alive connection (fasthttp.HostClient, MaxConns = connections, no
// resends). Request k carries events k·N … k·N+N−1 (N = --events-per-request),
// so every event of a run has a distinct sequence number.
//
// Without --rate the run is closed-loop: a worker sends its next request as
// soon as the previous one is answered, and latency is measured from the
// send. With --rate R the run is open-loop: request k is due at start + k/R,
// whatever happened to the requests before it, and its latency is measured
// from that intended time. When the server (or the number of connections)
// cannot keep up, the backlog shows in the latency instead of silently
// lowering the offered load (no coordinated omission).
//
// The run ends at the first of --requests (exactly that many requests are
// sent) and --duration (no request due at or after start + duration is sent),
// or when the context is cancelled (SIGINT/SIGTERM in the binaries). Requests
// in flight then finish, bounded by --timeout, and the report is written.
//
// # Events
//
// The built-in event is an analytics event of about 330 bytes (heartbeats,
// --heartbeat-share of them, about 160):
//
//	{"id":"42-000000000123","event":"page_view","ts":"2026-11-26T20:44:19.123Z",
//	 "user_id":"u-31337","email":"user31337@example.com","ip":"93.184.216.34",
//	 "ua":"Mozilla/5.0 …","geo":{"country":"AU"},
//	 "props":{"path":"/pricing","referrer":"https://t.co/x","session":"s-1f2e3d"}}
//
// id is "<seed>-<seq>" with seq zero-padded to 12 digits, unique within a run
// and, with distinct seeds, across runs (--seed defaults to the start time in
// Unix nanoseconds; the report states it). event is page_view, click,
// purchase, signup or heartbeat; geo.country is a mix of AU NZ JP SG US CA BR
// MX GB DE FR NL IE and a few others; props depend on the event. Every field
// but ts (the send time) is deterministic for a seed. The generator renders up
// to 64 distinct request bodies once at the start and patches each request's
// ids and ts into a copy, so the hot loop does not render JSON and does not
// allocate.
//
// --events FILE sends the lines of an NDJSON file instead, cycled in order
// (event seq is line seq mod lines); blank lines are skipped and every line
// must be valid JSON. With --record-acks every line needs a top-level "id"
// (non-empty string or number).
//
// Bodies are NDJSON (one event per line) unless --content-type is
// application/json, which sends a JSON array of the events.
//
// # Flags
//
//	--url URL                 ingest endpoint (default http://127.0.0.1:8080/v1/events)
//	--events-per-request N    events per body (default 100)
//	--connections C           concurrent connections, one request in flight each (default 16)
//	--duration D              run time (default 10s when --requests is not set)
//	--requests R              send exactly R requests
//	--rate R                  target requests/s over all connections, open loop (default: closed loop)
//	--gzip                    gzip bodies (Content-Encoding: gzip, best speed)
//	--api-key KEY             sent as "Authorization: Bearer KEY"
//	--auth-header MODE        bearer (default), x-api-key ("X-API-Key: KEY") or both
//	--content-type TYPE       default application/x-ndjson; application/json sends an array
//	--seed S                  seed of the built-in events (default: start time)
//	--heartbeat-share F       share of heartbeat events, 0–1 (default 0.1)
//	--events FILE             NDJSON events to send instead of the built-in event
//	--timeout D               per-request timeout (default 10s)
//	--insecure                skip TLS certificate verification for https URLs
//	--admin-url URL           sluice admin listener; GET /admin/budget once a second
//	--admin-token TOKEN       bearer token for --admin-url
//	--record-acks FILE        ids of the events of every request answered 200, one per line
//	--json FILE|-             the report as JSON (- : on stdout instead of the text report)
//	--plot FILE.svg           an SVG chart of the run
//	--quiet                   no progress line
//
// While running, a progress line goes to stderr once a second: elapsed time,
// requests sent, requests/s, acknowledged events/s and MB/s over the last
// second, counts of 200, other statuses and errors, and the p99 latency of
// the last complete second.
//
// Main exits 0 after a run in which at least one request got an HTTP answer,
// 1 when none did or an output could not be written, 2 on a usage error.
//
// # The report
//
// The text report (stdout) and the JSON report (--json) hold the same data.
// Rates are per second of wall time from the start to the last answer; MB are
// 10^6 bytes; latency is in milliseconds and covers requests that got an
// HTTP answer of any status (requests that failed are counted under errors).
// The JSON schema (Report):
//
//	{
//	  "url": "http://…", "started": "RFC 3339 time", "duration_seconds": 10.01,
//	  "config": {"events_per_request", "connections", "rate", "duration_limit_seconds",
//	             "requests_limit", "gzip", "content_type", "seed", "heartbeat_share", "events_file"},
//	  "requests": {"total", "ok", "per_second", "ok_per_second"},      // ok: answered 200
//	  "events":   {"sent", "acked", "per_second"},                     // acked: in 200-answered requests; per_second: acked
//	  "bytes":    {"sent", "uncompressed", "mb_per_second"},           // body bytes of all requests; sent: as sent (gzipped with --gzip)
//	  "latency_ms": {"count", "min", "mean", "p50", "p90", "p99", "p99_9", "max"},
//	  "status": {"200": n, "503": n, …},                               // "other" for codes outside 100–599
//	  "errors": {"timeout": n, "connection": n, "other": n},           // requests without an answer
//	  "error_samples": {"connection": "first message", …},
//	  "timeline": [{"t", "requests", "ok", "non_ok", "errors", "events_acked", "bytes_sent",
//	                "p50_ms", "p90_ms", "p99_ms", "max_ms"}, …],       // one per second, by completion time
//	  "admin": [{"t", "byte_budget", "record_cap", "pressure", "latched", "gate", "rejections", "error"}, …]
//	}
//
// admin is present with --admin-url: one poll of GET /admin/budget per
// second, read from the document {"byte_budget":N,"record_cap":N,
// "pressure":{"level":F,"latched":B,…},"gate":{"state":"open|held",
// "rejections":N},…}; t is seconds since the start; a failed poll keeps its
// error and zero values.
//
// # The plot
//
// --plot writes a standalone SVG (no scripts, no external resources) with
// panels sharing a time axis in seconds: requests/s (all, 200, other
// statuses, errors), acknowledged events/s, and latency p50/p90/p99/max per
// second; with --admin-url also the byte budget (MiB) and the pressure level
// and latch, with the periods in which the gate was held shaded, so an
// operator can see the governor work. Each line is a <polyline> with a
// data-series attribute (requests, ok, non_ok, errors, events, p50, p90, p99,
// max, byte_budget, pressure, latched) and the held periods are the <rect>s
// of <g data-series="gate_held">.
//
// # Latency histogram
//
// Histogram is a log-linear (HdrHistogram-like) bucket histogram: exact
// below 128 ns, then 128 buckets per power of two, so a quantile is within
// 1/128 (0.8 %) of the true value; it grows to the largest value seen and
// merges across workers. Each worker keeps its own; the per-second timeline
// uses a coarser one (1/32).
//
// # Acknowledged ids
//
// --record-acks writes, for every request answered 200, the ids of its
// events, one per line, in no particular order. A fault test can check that
// every id in the file reached Kafka: sluice answers 200 only after Kafka has
// every record of the request. Requests answered otherwise, or not at all,
// are not listed (their events may or may not have been written).
package load
