package gateway_test

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/valyala/fasthttp"
)

// BenchmarkIngestEdge is BenchmarkIngest with every edge feature on the
// request path: an API key (Basic auth), an allowed Origin (CORS headers),
// a rate limit that admits everything, a fresh Idempotency-Key per request
// (the cache's miss, insert and remember), ?results=true and record
// metadata behind a trusted proxy. Compared with BenchmarkIngest it is the
// cost of the features when they are used.
func BenchmarkIngestEdge(b *testing.B) {
	app := startApp(b, io.Discard, "--sink", "discard", "--log-level", "error", "--api-key", "bench-key",
		"--cors-origin", "https://app.example.com", "--rate-limit", "1000000000", "--record-metadata",
		"--trusted-proxy", "127.0.0.1")
	url := "http://" + app.HTTPAddr() + "/v1/events?results=true"
	var body bytes.Buffer
	for i := range 66 {
		fmt.Fprintf(&body, `{"id":"e%d","event":"page_view","user_id":"u%d","email":"u@example.com","ip":"10.0.0.1","ua":"Mozilla/5.0","geo":{"country":"AU"},"ts":1767225600,"props":{"path":"/p/%d"}}`+"\n", i, i, i)
	}
	c := &fasthttp.Client{MaxConnsPerHost: 512}
	var seq atomic.Int64
	b.ReportAllocs()
	b.SetBytes(int64(body.Len()))
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		req.SetRequestURI(url)
		req.Header.SetMethod("POST")
		req.Header.SetContentType("application/x-ndjson")
		req.Header.Set("Authorization", "Basic YmVuY2gta2V5Og==") // bench-key:
		req.Header.Set("Origin", "https://app.example.com")
		req.Header.Set("X-Forwarded-For", "203.0.113.7")
		req.SetBody(body.Bytes())
		var key []byte
		for pb.Next() {
			key = strconv.AppendInt(append(key[:0], "bench-"...), seq.Add(1), 10)
			req.Header.SetBytesV("Idempotency-Key", key)
			if err := c.Do(req, resp); err != nil || resp.StatusCode() != 200 || len(resp.Header.Peek("Access-Control-Allow-Origin")) == 0 {
				b.Errorf("ingest: %v %d %s", err, resp.StatusCode(), resp.Body())
				return
			}
		}
	})
	b.ReportMetric(float64(b.N*66)/b.Elapsed().Seconds(), "events/s")
}
