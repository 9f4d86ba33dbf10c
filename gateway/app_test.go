package gateway_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/gateway"
	"github.com/valyala/fasthttp"
)

// lockedBuffer is a bytes.Buffer safe for concurrent use.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startApp starts an in-process App on free ports with args.
func startApp(tb testing.TB, stdout io.Writer, args ...string) *gateway.App {
	tb.Helper()
	cfg, err := gateway.LoadConfig(append([]string{"--http", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--data-dir", tb.TempDir()}, args...), func(string) string { return "" }, io.Discard)
	if err != nil {
		tb.Fatal(err)
	}
	app, err := gateway.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), stdout)
	if err != nil {
		tb.Fatal(err)
	}
	if err := app.Start(context.Background()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = app.Stop(context.Background()) })
	return app
}

func post(tb testing.TB, c *fasthttp.Client, url string, body []byte, headers ...string) (int, string) {
	tb.Helper()
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(url)
	req.Header.SetMethod("POST")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	req.SetBody(body)
	if err := c.DoTimeout(req, resp, 20*time.Second); err != nil {
		tb.Fatal(err)
	}
	return resp.StatusCode(), string(resp.Body())
}

// TestAppStdoutSinkConcurrentClientsAndDrain runs the whole App in process
// (under -race in CI) with the stdout sink: concurrent clients, a tenant
// with its own default topic, dead letters, then a graceful Stop that
// answers everyone.
func TestAppStdoutSinkConcurrentClientsAndDrain(t *testing.T) {
	out := &lockedBuffer{}
	app := startApp(t, out, "--sink", "stdout", "--api-key", "k", "--max-event", "200")
	url := "http://" + app.HTTPAddr() + "/v1/events"
	c := &fasthttp.Client{}
	const clients, perClient = 6, 40
	var wg sync.WaitGroup
	for w := range clients {
		wg.Go(func() {
			for i := range perClient {
				body := fmt.Sprintf("{\"w\":%d,\"i\":%d}\nnope\n{\"w\":%d,\"i\":%d,\"second\":true}\n", w, i, w, i)
				code, resp := post(t, c, url, []byte(body), "X-API-Key", "k")
				if code != 200 || resp != "{\"accepted\":2,\"dropped\":0,\"dead_lettered\":1}\n" {
					t.Errorf("client %d request %d: %d %s", w, i, code, resp)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := app.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	var records, dead int
	for l := range strings.SplitSeq(strings.TrimSpace(out.String()), "\n") {
		var v map[string]any
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("stdout line %q is not JSON", l)
		}
		if dl, ok := v["dead_letter"].(map[string]any); ok {
			if !strings.Contains(dl["reason"].(string), "not valid JSON") || v["value"] != "nope" {
				t.Fatalf("dead letter %q", l)
			}
			dead++
		} else {
			records++
		}
	}
	if records != 2*clients*perClient || dead != clients*perClient {
		t.Fatalf("stdout has %d records and %d dead letters; want %d and %d", records, dead, 2*clients*perClient, clients*perClient)
	}
	if n := app.Receiver().Pending(); n != 0 {
		t.Fatalf("%d requests pending after Stop", n)
	}
	if inflight := app.Governor().Guard().InFlight(); inflight != 0 {
		t.Fatalf("%d bytes still leased after Stop", inflight)
	}
	if err := app.Ready(); err == nil {
		t.Fatal("ready after Stop")
	}
}

// TestAppAdminListener checks the admin listener's own routes and the
// delegation of the rest.
func TestAppAdminListener(t *testing.T) {
	app := startApp(t, io.Discard, "--sink", "discard")
	base := "http://" + app.AdminAddr()
	get := func(path string) (int, string) {
		code, body, err := fasthttp.Get(nil, base+path)
		if err != nil {
			t.Fatal(err)
		}
		return code, string(body)
	}
	if code, body := get("/metrics"); code != 200 || !strings.Contains(body, "# TYPE sluice_ingest_requests_total counter") {
		t.Fatalf("/metrics: %d %.200s", code, body)
	}
	if code, _ := get("/readyz"); code != 200 {
		t.Fatalf("/readyz: %d", code)
	}
	if code, body := get("/admin/budget"); code != 404 || !strings.Contains(body, "admin-token") {
		t.Fatalf("admin API without a token: %d %s", code, body)
	}
	app.SetAdminHandler(func(ctx *fasthttp.RequestCtx) { ctx.SetStatusCode(299) })
	if code, _ := get("/admin/anything"); code != 299 {
		t.Fatalf("delegated route: %d", code)
	}
	if p := app.Pipelines()[""]; len(p) != 0 {
		t.Fatalf("default pipeline %v, want pass-through", p)
	}
}

// BenchmarkIngest measures the front door, the receiver and the driver in
// process: 66-event NDJSON requests from concurrent clients into the
// discard sink.
func BenchmarkIngest(b *testing.B) {
	app := startApp(b, io.Discard, "--sink", "discard", "--log-level", "error")
	url := "http://" + app.HTTPAddr() + "/v1/events"
	var body bytes.Buffer
	for i := range 66 {
		fmt.Fprintf(&body, `{"id":"e%d","event":"page_view","user_id":"u%d","email":"u@example.com","ip":"10.0.0.1","ua":"Mozilla/5.0","geo":{"country":"AU"},"ts":1767225600,"props":{"path":"/p/%d"}}`+"\n", i, i, i)
	}
	c := &fasthttp.Client{MaxConnsPerHost: 512}
	b.ReportAllocs()
	b.SetBytes(int64(body.Len()))
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		req.SetRequestURI(url)
		req.Header.SetMethod("POST")
		req.Header.SetContentType("application/x-ndjson")
		req.SetBody(body.Bytes())
		for pb.Next() {
			if err := c.Do(req, resp); err != nil || resp.StatusCode() != 200 {
				b.Errorf("ingest: %v %d %s", err, resp.StatusCode(), resp.Body())
				return
			}
		}
	})
	b.ReportMetric(float64(b.N*66)/b.Elapsed().Seconds(), "events/s")
}

// TestRejectedStreamedBodyIsDrained sends a rejected request whose body is
// far past fasthttp's own drain limit, then a second request on the same
// connection: the first answer must be readable (a client still sending
// must not see a reset) and the connection must stay usable.
func TestRejectedStreamedBodyIsDrained(t *testing.T) {
	app := startApp(t, io.Discard, "--sink", "discard", "--api-key", "k1")
	conn, err := net.Dial("tcp", app.HTTPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	big := bytes.Repeat([]byte(`{"event":"x"}`+"\n"), (1<<20)/14)
	var reqs bytes.Buffer
	fmt.Fprintf(&reqs, "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\nContent-Length: %d\r\n\r\n", len(big))
	reqs.Write(big)
	fmt.Fprintf(&reqs, "POST /v1/events HTTP/1.1\r\nHost: x\r\nX-API-Key: k1\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
	go func() { _, _ = conn.Write(reqs.Bytes()) }()
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(conn)
	for i, want := range []int{401, 200} {
		var resp fasthttp.Response
		if err := resp.Read(br); err != nil {
			t.Fatalf("response %d: %v", i+1, err)
		}
		if resp.StatusCode() != want {
			t.Fatalf("response %d: status %d (%s), want %d", i+1, resp.StatusCode(), resp.Body(), want)
		}
		if i == 0 && resp.ConnectionClose() {
			t.Fatal("the rejected request closed the connection instead of draining its body")
		}
	}
}

// TestUnreadableRequests: headers past the read buffer get 431 and a
// malformed request line gets 400, each with a JSON error that does not echo
// the request's bytes.
func TestUnreadableRequests(t *testing.T) {
	app := startApp(t, io.Discard, "--sink", "discard")
	for _, tc := range []struct {
		name string
		raw  string
		want int
	}{
		{"huge header", "POST /v1/events HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("secret", 3000) + "\r\nContent-Length: 2\r\n\r\n{}", 431},
		{"broken request line", "POST\x00secret /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}", 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", app.HTTPAddr())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.WriteString(conn, tc.raw); err != nil {
				t.Fatal(err)
			}
			var resp fasthttp.Response
			if err := resp.Read(bufio.NewReader(conn)); err != nil {
				t.Fatal(err)
			}
			var body struct{ Error string }
			if err := json.Unmarshal(resp.Body(), &body); err != nil || body.Error == "" {
				t.Fatalf("body %q is not a JSON error: %v", resp.Body(), err)
			}
			if resp.StatusCode() != tc.want || strings.Contains(body.Error, "secret") {
				t.Fatalf("status %d, error %q; want %d without the request's bytes", resp.StatusCode(), body.Error, tc.want)
			}
		})
	}
}

// TestOversizedBodyAnswersBeforeReset: a body over the cap by Content-Length
// gets a readable 413 and the connection stays usable.
func TestOversizedBodyAnswersBeforeReset(t *testing.T) {
	app := startApp(t, io.Discard, "--sink", "discard", "--max-body", "64KiB")
	conn, err := net.Dial("tcp", app.HTTPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	big := bytes.Repeat([]byte(" "), 100<<10)
	var reqs bytes.Buffer
	fmt.Fprintf(&reqs, "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", len(big))
	reqs.Write(big)
	fmt.Fprintf(&reqs, "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
	go func() { _, _ = conn.Write(reqs.Bytes()) }()
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(conn)
	for i, want := range []int{413, 200} {
		var resp fasthttp.Response
		if err := resp.Read(br); err != nil {
			t.Fatalf("response %d: %v", i+1, err)
		}
		if resp.StatusCode() != want {
			t.Fatalf("response %d: status %d (%s), want %d", i+1, resp.StatusCode(), resp.Body(), want)
		}
	}
}
