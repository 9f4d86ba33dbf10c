package load

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/e2e"
	"github.com/valyala/fasthttp"
)

func every5th503(n int64) int {
	if n%5 == 4 {
		return fasthttp.StatusServiceUnavailable
	}
	return fasthttp.StatusOK
}

func TestRequestsExactCounts(t *testing.T) {
	srv := newIngestServer(t, every5th503)
	cfg := testConfig(srv.URL)
	cfg.Requests, cfg.EventsPerRequest, cfg.Connections = 53, 7, 4
	rep := runLoad(t, cfg)

	srv.mu.Lock()
	defer srv.mu.Unlock()
	if srv.requests != 53 || srv.events != 53*7 {
		t.Fatalf("server saw %d requests, %d events; want 53, %d", srv.requests, srv.events, 53*7)
	}
	if rep.Requests.Total != 53 || rep.Events.Sent != 53*7 {
		t.Fatalf("report: %d requests, %d events sent", rep.Requests.Total, rep.Events.Sent)
	}
	for code, n := range srv.status {
		if got := rep.Status[fmt.Sprint(code)]; got != uint64(n) {
			t.Errorf("status %d: report %d, server %d", code, got, n)
		}
	}
	if len(rep.Status) != len(srv.status) {
		t.Errorf("report statuses %v, server %v", rep.Status, srv.status)
	}
	if want := uint64(srv.status[200] * 7); rep.Events.Acked != want || rep.Requests.OK != uint64(srv.status[200]) {
		t.Errorf("acked %d events / %d requests; want %d / %d", rep.Events.Acked, rep.Requests.OK, want, srv.status[200])
	}
	// Every event id is unique and is <seed>-<seq> for seq in [0, R·N).
	if len(srv.allIDs) != 53*7 || srv.badJSON != 0 {
		t.Fatalf("%d distinct ids, %d bad lines; want %d, 0", len(srv.allIDs), srv.badJSON, 53*7)
	}
	for seq := range 53 * 7 {
		if id := fmt.Sprintf("42-%012d", seq); srv.allIDs[id] != 1 {
			t.Fatalf("id %s seen %d times", id, srv.allIDs[id])
		}
	}
	if rep.Latency.Count != 53 || rep.Latency.P50 <= 0 || rep.Latency.Max < rep.Latency.P99 {
		t.Errorf("latency %+v", rep.Latency)
	}
	var tlReq uint64
	for _, s := range rep.Timeline {
		tlReq += s.Requests
	}
	if tlReq != 53 {
		t.Errorf("timeline holds %d requests, want 53", tlReq)
	}
}

func TestMainJSONReportAndPlot(t *testing.T) {
	srv := newIngestServer(t, every5th503)
	dir := t.TempDir()
	jsonPath, svgPath := filepath.Join(dir, "r.json"), filepath.Join(dir, "r.svg")
	var stdout, stderr bytes.Buffer
	code := Main(t.Context(), []string{
		"--url", srv.URL, "--requests", "20", "--events-per-request", "3", "--connections", "2",
		"--quiet", "--seed", "7", "--json", jsonPath, "--plot", svgPath,
	}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d, stderr: %s", code, stderr.String())
	}
	if stderr.Len() != 0 {
		t.Errorf("--quiet wrote to stderr: %q", stderr.String())
	}
	for _, want := range []string{"requests  20 sent", "latency", "p99.9", "200: 16", "503: 4", "events/s", "MB/s"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, stdout.String())
		}
	}
	raw, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("JSON report: %v", err)
	}
	for _, k := range []string{"url", "started", "duration_seconds", "config", "requests", "events", "bytes", "latency_ms", "status", "errors", "timeline"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON report lacks %q", k)
		}
	}
	lat := m["latency_ms"].(map[string]any)
	for _, k := range []string{"p50", "p90", "p99", "p99_9", "max"} {
		if _, ok := lat[k].(float64); !ok {
			t.Errorf("latency_ms lacks %q", k)
		}
	}
	var rep Report
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Requests.Total != 20 || rep.Status["200"] != 16 || rep.Status["503"] != 4 || rep.Events.Acked != 48 || rep.Config.Seed != 7 {
		t.Errorf("JSON report: %+v", rep)
	}
	series := svgSeries(t, svgPath)
	for _, want := range []string{"requests", "ok", "non_ok", "errors", "events", "p50", "p90", "p99", "max"} {
		if _, ok := series[want]; !ok {
			t.Errorf("SVG lacks series %q (has %v)", want, series)
		}
	}
	if _, ok := series["byte_budget"]; ok {
		t.Error("SVG has governor series without --admin-url")
	}
}

// svgSeries parses the SVG at path as XML and returns, per data-series, the
// number of points (polyline) or child rects (g).
func svgSeries(tb testing.TB, path string) map[string]int {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	dec := xml.NewDecoder(f)
	out := map[string]int{}
	var group string
	depth, groupDepth := 0, -1
	root := ""
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			tb.Fatalf("SVG is not well-formed XML: %v", err)
		}
		switch el := tok.(type) {
		case xml.StartElement:
			depth++
			if root == "" {
				root = el.Name.Local
			}
			for _, a := range el.Attr {
				if a.Name.Local != "data-series" {
					continue
				}
				switch el.Name.Local {
				case "polyline":
					for _, b := range el.Attr {
						if b.Name.Local == "points" {
							out[a.Value] = len(strings.Fields(b.Value))
						}
					}
				case "g":
					group, groupDepth = a.Value, depth
					out[group] = 0
				}
			}
			if el.Name.Local == "rect" && groupDepth > 0 && depth == groupDepth+1 {
				out[group]++
			}
		case xml.EndElement:
			if depth == groupDepth {
				groupDepth = -1
			}
			depth--
		}
	}
	if root != "svg" {
		tb.Fatalf("root element %q, want svg", root)
	}
	return out
}

func TestAdminBudgetPlot(t *testing.T) {
	srv := newIngestServer(t, nil)
	// The admin endpoint: the gate is held on polls 2 and 3.
	var (
		mu    sync.Mutex
		polls int
		auth  string
	)
	adminSrv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		if string(ctx.Path()) != "/admin/budget" {
			ctx.Error("not found", 404)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		auth = string(ctx.Request.Header.Peek("Authorization"))
		polls++
		gate, level := "open", 0.3
		if polls == 2 || polls == 3 {
			gate, level = "held", 0.85
		}
		fmt.Fprintf(ctx, `{"byte_budget":%d,"record_cap":4096,"pressure":{"level":%g,"latched":%t,"sources":{}},"gate":{"state":%q,"rejections":%d},"in_flight_bytes":0}`,
			(8-polls)<<20, level, gate == "held", gate, polls)
	}}
	ln := listen(t)
	go adminSrv.Serve(ln)
	t.Cleanup(func() { adminSrv.Shutdown() })

	cfg := testConfig(srv.URL)
	cfg.Duration, cfg.Rate, cfg.Connections, cfg.EventsPerRequest = 800*time.Millisecond, 100, 2, 2
	cfg.AdminURL, cfg.AdminToken = "http://"+ln.Addr().String(), "tok"
	cfg.adminEvery = 100 * time.Millisecond
	rep := runLoad(t, cfg)
	if len(rep.Admin) < 5 {
		t.Fatalf("%d admin samples, want ≥ 5", len(rep.Admin))
	}
	mu.Lock()
	if auth != "Bearer tok" {
		t.Errorf("admin Authorization %q", auth)
	}
	mu.Unlock()
	s := rep.Admin[1]
	if s.Error != "" || s.Gate != "held" || !s.Latched || s.Pressure != 0.85 || s.ByteBudget != 6<<20 || s.RecordCap != 4096 || s.Rejections != 2 {
		t.Errorf("sample 1: %+v", s)
	}
	path := filepath.Join(t.TempDir(), "p.svg")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.WriteSVG(f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	series := svgSeries(t, path)
	for _, want := range []string{"byte_budget", "pressure", "latched"} {
		if series[want] != len(rep.Admin) {
			t.Errorf("series %q has %d points, want %d", want, series[want], len(rep.Admin))
		}
	}
	if series["gate_held"] != 1 {
		t.Errorf("gate_held has %d spans, want 1", series["gate_held"])
	}
}

func TestRatePaces(t *testing.T) {
	srv := newIngestServer(t, nil)
	cfg := testConfig(srv.URL)
	cfg.Rate, cfg.Duration, cfg.Connections, cfg.EventsPerRequest = 200, time.Second, 8, 5
	rep := runLoad(t, cfg)
	if n := rep.Requests.Total; n < 150 || n > 250 {
		t.Fatalf("rate 200/s for 1 s sent %d requests, want 150–250", n)
	}
	// Paced, not sent at once: request 100 is due 495 ms after the start,
	// and however late the sender runs, it never sends early.
	srv.mu.Lock()
	arr := slices.Clone(srv.arrivals)
	srv.mu.Unlock()
	slices.SortFunc(arr, time.Time.Compare)
	if at := arr[99].Sub(rep.Started); at < 490*time.Millisecond {
		t.Fatalf("100th request arrived %v after the start, want ≥ 495ms at 200/s", at)
	}
	if rep.DurationSeconds < 0.95 {
		t.Fatalf("a 1 s run at 200/s took %.3f s", rep.DurationSeconds)
	}
}

// TestOpenLoopLatency checks that latency counts from the intended send
// time: one connection against a server that needs 20 ms per request cannot
// keep a 100 req/s schedule, and the backlog must show in the latency
// instead of being hidden (coordinated omission).
func TestOpenLoopLatency(t *testing.T) {
	srv := newIngestServer(t, nil)
	srv.delay = 20 * time.Millisecond
	cfg := testConfig(srv.URL)
	cfg.Rate, cfg.Requests, cfg.Connections, cfg.EventsPerRequest = 100, 20, 1, 1
	rep := runLoad(t, cfg)
	// Request k is due at 10k ms and done at about 20(k+1) ms: the last one
	// waited ≈ 210 ms.
	if rep.Latency.Min < 19 || rep.Latency.P90 < 150 {
		t.Fatalf("latency min %.1f ms, p90 %.1f ms; want min ≥ 19, p90 ≥ 150", rep.Latency.Min, rep.Latency.P90)
	}
	// Closed loop, the same server shows only its service time.
	cfg.Rate = 0
	rep = runLoad(t, cfg)
	if rep.Latency.P50 > 100 {
		t.Fatalf("closed loop median latency %.1f ms", rep.Latency.P50)
	}
}

func TestGzipBodies(t *testing.T) {
	srv := newIngestServer(t, nil)
	cfg := testConfig(srv.URL)
	cfg.Requests, cfg.EventsPerRequest, cfg.Connections, cfg.Gzip = 10, 20, 2, true
	rep := runLoad(t, cfg)
	plain := newIngestServer(t, nil)
	cfg.URL, cfg.Gzip = plain.URL, false
	runLoad(t, cfg)

	srv.mu.Lock()
	defer srv.mu.Unlock()
	if srv.headers["Content-Encoding"] != "gzip" {
		t.Errorf("Content-Encoding %q", srv.headers["Content-Encoding"])
	}
	if srv.events != 200 || srv.badJSON != 0 || len(srv.allIDs) != 200 {
		t.Fatalf("gzip: %d events, %d bad, %d ids", srv.events, srv.badJSON, len(srv.allIDs))
	}
	if rep.Bytes.Sent >= rep.Bytes.Uncompressed {
		t.Errorf("gzip sent %d bytes of %d uncompressed", rep.Bytes.Sent, rep.Bytes.Uncompressed)
	}
	// The decompressed events are those of the same seed sent plain (but
	// for ts, the send time).
	norm := func(lines [][]byte) []string {
		var out []string
		for _, l := range lines {
			var m map[string]any
			if err := json.Unmarshal(l, &m); err != nil {
				t.Fatal(err)
			}
			delete(m, "ts")
			b, _ := json.Marshal(m)
			out = append(out, string(b))
		}
		slices.Sort(out)
		return out
	}
	plain.mu.Lock()
	defer plain.mu.Unlock()
	if !slices.Equal(norm(srv.lines), norm(plain.lines)) {
		t.Fatal("gzip bodies decompress to other events than the plain run")
	}
}

func TestRecordAcks(t *testing.T) {
	srv := newIngestServer(t, func(n int64) int {
		switch n % 4 {
		case 1:
			return fasthttp.StatusServiceUnavailable
		case 2:
			if n%8 == 2 {
				return fasthttp.StatusInternalServerError
			}
		}
		return fasthttp.StatusOK
	})
	path := filepath.Join(t.TempDir(), "acks.txt")
	cfg := testConfig(srv.URL)
	cfg.Requests, cfg.EventsPerRequest, cfg.Connections, cfg.RecordAcks = 40, 9, 3, path
	rep := runLoad(t, cfg)
	acks := readLines(t, path)
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if len(acks) != len(srv.okIDs) || uint64(len(acks)) != rep.Events.Acked {
		t.Fatalf("%d acks, server acknowledged %d events, report %d", len(acks), len(srv.okIDs), rep.Events.Acked)
	}
	seen := map[string]bool{}
	for _, id := range acks {
		if srv.okIDs[id] != 1 || seen[id] {
			t.Fatalf("ack %q: server 200-count %d, duplicate %t", id, srv.okIDs[id], seen[id])
		}
		seen[id] = true
	}
	if len(srv.okIDs) >= len(srv.allIDs) {
		t.Fatal("script answered everything 200")
	}
}

func TestEventsFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ev.ndjson")
	os.WriteFile(path, []byte("{\"id\":\"a\",\"event\":\"x\"}\n\n{\"id\":2,\"event\":\"y\"}\n{\"id\":\"c\"}\n"), 0o644)
	srv := newIngestServer(t, nil)
	cfg := testConfig(srv.URL)
	cfg.EventsFile, cfg.Requests, cfg.EventsPerRequest, cfg.Connections = path, 4, 2, 1
	cfg.RecordAcks = filepath.Join(dir, "acks")
	runLoad(t, cfg)
	srv.mu.Lock()
	// id 2 is a number: "bad" for the test server's string decoder.
	if got := srv.allIDs; got["a"] != 3 || got["c"] != 2 || srv.badJSON != 3 || srv.events != 8 {
		t.Errorf("ids %v, bad %d, events %d", got, srv.badJSON, srv.events)
	}
	srv.mu.Unlock()
	acks := readLines(t, cfg.RecordAcks)
	if want := []string{"a", "2", "c", "a", "2", "c", "a", "2"}; !slices.Equal(sorted(acks), sorted(want)) {
		t.Errorf("acks %v, want %v", acks, want)
	}

	os.WriteFile(path, []byte("{\"id\":\"a\"}\n{\"event\":\"no id\"}\n"), 0o644)
	_, err := Run(t.Context(), cfg, nil)
	var fe *EventsFileError
	if !errors.Is(err, ErrEventWithoutID) || !errors.As(err, &fe) || fe.Line != 2 {
		t.Errorf("missing id with --record-acks: %v", err)
	}
	os.WriteFile(path, []byte("{\"id\":\"a\"}\nnot json\n"), 0o644)
	cfg.RecordAcks = ""
	if _, err := Run(t.Context(), cfg, nil); !errors.As(err, &fe) || fe.Line != 2 {
		t.Errorf("bad line: %v", err)
	}
}

func sorted(s []string) []string { s = slices.Clone(s); slices.Sort(s); return s }

func TestJSONArrayBodyAndHeaders(t *testing.T) {
	srv := newIngestServer(t, nil)
	cfg := testConfig(srv.URL)
	cfg.Requests, cfg.EventsPerRequest, cfg.Connections = 3, 4, 1
	cfg.ContentType, cfg.APIKey, cfg.AuthHeader = "application/json", "k1", AuthBoth
	runLoad(t, cfg)
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if srv.events != 12 || srv.badJSON != 0 {
		t.Errorf("array bodies: %d events, %d bad", srv.events, srv.badJSON)
	}
	h := srv.headers
	if h["Content-Type"] != "application/json" || h["Authorization"] != "Bearer k1" || h["X-Api-Key"] != "k1" {
		t.Errorf("headers %v", h)
	}
}

func TestErrorsCounted(t *testing.T) {
	slow := newIngestServer(t, nil)
	slow.delay = 300 * time.Millisecond
	cfg := testConfig(slow.URL)
	cfg.Requests, cfg.Connections, cfg.Timeout = 3, 3, 50*time.Millisecond
	rep := runLoad(t, cfg)
	if rep.Errors["timeout"] != 3 || len(rep.Status) != 0 || rep.Latency.Count != 0 {
		t.Errorf("timeouts: errors %v, status %v", rep.Errors, rep.Status)
	}

	ln := listen(t)
	addr := ln.Addr().String()
	ln.Close()
	var stdout, stderr bytes.Buffer
	code := Main(t.Context(), []string{"--url", "http://" + addr + "/v1/events", "--requests", "4", "--quiet", "--json", "-"}, &stdout, &stderr)
	if code != 1 {
		t.Errorf("exit %d with no answers, want 1", code)
	}
	var r Report
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("--json -: %v\n%s", err, stdout.String())
	}
	if r.Errors["connection"] != 4 || r.ErrorSamples["connection"] == "" {
		t.Errorf("refused: errors %v samples %v", r.Errors, r.ErrorSamples)
	}
}

func TestCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var cancelled atomic.Int64 // unix nanoseconds of the cancel
	srv := newIngestServer(t, func(n int64) int {
		if n == 5 {
			cancelled.Store(time.Now().UnixNano())
			cancel()
		}
		return fasthttp.StatusOK
	})
	cfg := testConfig(srv.URL)
	cfg.Duration, cfg.Rate = time.Hour, 50
	start := time.Now()
	rep, err := Run(ctx, cfg, nil)
	took := time.Since(start)
	// The open loop sends one request every 20 ms until it sees the
	// cancel: past the five before it, at most the ones its schedule had
	// due between the cancel and Run's return (a slow machine stretches
	// that), plus one in flight.
	after := time.Duration(time.Now().UnixNano() - cancelled.Load())
	most := 5 + 2 + uint64(max(after, 0)/(20*time.Millisecond))
	if err != nil || took > 5*time.Second || rep.Requests.Total < 6 || rep.Requests.Total > most {
		t.Fatalf("cancelled run: %v after %v, %d requests (want 6 to %d, %v after the cancel)", err, took, rep.Requests.Total, most, after)
	}
}

func TestProgressLine(t *testing.T) {
	srv := newIngestServer(t, nil)
	cfg := testConfig(srv.URL)
	cfg.Duration, cfg.Rate, cfg.ProgressInterval = 500*time.Millisecond, 100, 100*time.Millisecond
	var buf e2e.Buffer
	if _, err := Run(t.Context(), cfg, &buf); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) < 2 || !strings.Contains(lines[0], "req/s") || !strings.Contains(lines[0], "200:") {
		t.Fatalf("progress:\n%s", buf.String())
	}
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{
		{"--url", "ftp://x"}, {"--connections", "0"}, {"--events-per-request", "0"},
		{"--heartbeat-share", "1.5"}, {"--rate", "-1"}, {"--auth-header", "basic"},
		{"--no-such-flag"}, {"extra"}, {"--admin-url", "nohost"},
	} {
		var stdout, stderr bytes.Buffer
		if code := Main(t.Context(), args, &stdout, &stderr); code != 2 || stderr.Len() == 0 {
			t.Errorf("%q: exit %d, stderr %q", args, code, stderr.String())
		}
	}
	var stdout, stderr bytes.Buffer
	if code := Main(t.Context(), []string{"-h"}, &stdout, &stderr); code != 0 || !strings.Contains(stderr.String(), "-record-acks") {
		t.Errorf("-h: exit %d, stderr %q", code, stderr.String())
	}
	cfg := Config{URL: "http://h/x", EventsPerRequest: 1, Connections: 1}
	if err := cfg.Validate(); err != nil || cfg.Duration != 10*time.Second || cfg.Timeout != 10*time.Second || cfg.AuthHeader != AuthBearer {
		t.Errorf("defaults: %v %+v", err, cfg)
	}
}
