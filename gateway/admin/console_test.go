package admin

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sluicehq/sluice/governor"
)

// fakeTraffic is a TrafficReader whose counters the test sets.
type fakeTraffic struct {
	mu sync.Mutex
	tr Traffic
}

func (f *fakeTraffic) Traffic() Traffic {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.tr
	f.tr.SinkLatencyMax = 0
	return t
}

func (f *fakeTraffic) add(fn func(*Traffic)) {
	f.mu.Lock()
	fn(&f.tr)
	f.mu.Unlock()
}

// fakeStatus is a StatusReader the test sets.
type fakeStatus struct {
	mu          sync.Mutex
	ready, sink error
}

func (f *fakeStatus) Ready() error     { f.mu.Lock(); defer f.mu.Unlock(); return f.ready }
func (f *fakeStatus) SinkError() error { f.mu.Lock(); defer f.mu.Unlock(); return f.sink }
func (f *fakeStatus) set(ready, sink error) {
	f.mu.Lock()
	f.ready, f.sink = ready, sink
	f.mu.Unlock()
}

// source is a pressure source the test moves.
type source struct {
	name  string
	level float64
	mu    sync.Mutex
}

func (s *source) Name() string { return s.name }
func (s *source) Level() float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.level
}
func (s *source) Hard() bool { return false }
func (s *source) set(l float64) {
	s.mu.Lock()
	s.level = l
	s.mu.Unlock()
}

func testGovernor(tb testing.TB, srcs ...governor.Source) *governor.Governor {
	tb.Helper()
	g, err := governor.New(governor.Config{MemoryLimit: 1 << 20, HeapLimit: -1, Sources: srcs})
	if err != nil {
		tb.Fatal(err)
	}
	return g
}

// TestHistorySamples drives the sampler by hand: rates are the counters'
// deltas over the time between two samples, the latch and its source are
// recorded, a source that appears later is null before, and the ring
// keeps the newest samples in order.
func TestHistorySamples(t *testing.T) {
	q := &source{name: "queue"}
	g := testGovernor(t, q)
	tr, st := &fakeTraffic{}, &fakeStatus{}
	deps := Deps{Pressure: g.Pressure(), Budget: g.Budget(), Memory: g.Guard(), Traffic: tr, Status: st,
		HeapBytes: func() uint64 { return 7 << 20 }}
	hs := newHistory(&deps, time.Second, 5*time.Second) // 5 samples
	t0 := time.UnixMilli(1_700_000_000_000)
	hs.take(t0)
	tr.add(func(x *Traffic) {
		x.IngestRequests, x.IngestEvents, x.IngestBytes, x.GateRejections = 10, 200, 20_000, 4
		x.SinkWrites, x.SinkLatency, x.SinkLatencyMax, x.SinkRecords = 4, 40*time.Millisecond, 25*time.Millisecond, 180
		x.Dropped, x.DeadLettered, x.SinkErrors = 6, 2, 1
	})
	q.set(0.9) // latches (pause above 0.80)
	st.set(errors.New("sink down"), errors.New("kafka: unreachable"))
	hs.take(t0.Add(2 * time.Second))

	b := hs.since(0)
	if len(b.T) != 2 || b.T[0] != t0.UnixMilli() || b.T[1] != t0.UnixMilli()+2000 || b.IntervalMS != 1000 || b.LengthSeconds != 5 {
		t.Fatalf("t = %v, interval %d, length %d", b.T, b.IntervalMS, b.LengthSeconds)
	}
	want := map[string][2]float64{
		"ingest_requests_per_second": {math.NaN(), 5},
		"ingest_events_per_second":   {math.NaN(), 100},
		"ingest_bytes_per_second":    {math.NaN(), 10_000},
		"gate_rejections_per_second": {math.NaN(), 2},
		"dropped_per_second":         {math.NaN(), 3},
		"dead_letters_per_second":    {math.NaN(), 1},
		"sink_records_per_second":    {math.NaN(), 90},
		"sink_errors_per_second":     {math.NaN(), 0.5},
		"sink_latency_mean_ms":       {math.NaN(), 10},
		"sink_latency_max_ms":        {math.NaN(), 25},
		"latched":                    {0, 1},
		"pressure_level":             {0, 0.9},
		"sink_healthy":               {1, 0},
		"ready":                      {1, 0},
		"heap_bytes":                 {7 << 20, 7 << 20},
		"inflight_limit_bytes":       {1 << 20, 1 << 20},
	}
	for name, w := range want {
		got := b.Series[name]
		for i := range 2 {
			if !(math.IsNaN(w[i]) && math.IsNaN(got[i])) && math.Abs(got[i]-w[i]) > 1e-9 {
				t.Errorf("%s[%d] = %v, want %v", name, i, got[i], w[i])
			}
		}
	}
	if b.LatchedBy[0] != "" || b.LatchedBy[1] != "queue" {
		t.Errorf("latched_by = %q", b.LatchedBy)
	}
	if len(b.Series) != len(seriesNames) {
		t.Errorf("%d series, want %d", len(b.Series), len(seriesNames))
	}
	if lv := b.Sources["queue"]; len(lv) != 2 || lv[1] != 0.9 {
		t.Errorf("sources = %v", b.Sources)
	}

	// A source that appears later reads null before it existed.
	g.Pressure().AddSource(&source{name: "late", level: 0.1})
	for i := 3; i <= 6; i++ {
		hs.take(t0.Add(time.Duration(i) * time.Second))
	}
	b = hs.since(0)
	if len(b.T) != 5 || b.T[0] != t0.UnixMilli()+2000 || b.T[4] != t0.UnixMilli()+6000 {
		t.Fatalf("after wrapping the ring: t = %v", b.T)
	}
	late := b.Sources["late"]
	if !math.IsNaN(late[0]) || late[1] != 0.1 || late[4] != 0.1 {
		t.Fatalf("late source = %v", late)
	}
	if got := hs.since(t0.UnixMilli() + 4000); len(got.T) != 2 || got.T[0] != t0.UnixMilli()+5000 {
		t.Fatalf("since +4s: t = %v", got.T)
	}
	if got := hs.since(t0.UnixMilli() + 6000); len(got.T) != 0 || len(got.Series["pressure_level"]) != 0 {
		t.Fatalf("since the last sample: %v", got.T)
	}

	// JSON: NaN is null.
	j, err := json.Marshal(hs.since(t0.UnixMilli() + 5000))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(j), `"ingest_events_per_second":[0]`) || strings.Contains(string(j), "NaN") {
		t.Fatalf("JSON: %s", j)
	}
	if j, _ := json.Marshal(floats{1, math.NaN(), 0.25, math.Inf(1)}); string(j) != "[1,null,0.25,null]" {
		t.Fatalf("floats JSON = %s", j)
	}
}

// TestHistoryUnconfigured: without readers every series is null, and the
// sampler still runs.
func TestHistoryUnconfigured(t *testing.T) {
	deps := Deps{HeapBytes: func() uint64 { return 1 }}
	hs := newHistory(&deps, time.Second, time.Minute)
	hs.take(time.Now())
	b := hs.since(0)
	for name, v := range b.Series {
		if name == "heap_bytes" {
			continue
		}
		if len(v) != 1 || !math.IsNaN(v[0]) {
			t.Errorf("%s = %v, want [NaN]", name, v)
		}
	}
}

// TestHistoryRoute runs the sampler goroutine: samples arrive at the
// interval, ?since= filters, Close stops it.
func TestHistoryRoute(t *testing.T) {
	g := testGovernor(t)
	h := newTestHandler(t, Config{HistoryInterval: 20 * time.Millisecond, HistoryLength: time.Second},
		Deps{Pressure: g.Pressure(), Budget: g.Budget(), Memory: g.Guard(), Traffic: &fakeTraffic{}})
	c := serveInMemory(t, h)
	read := func(q string) historyBody {
		r := do(t, c, "GET", "/admin/history"+q, testToken, nil)
		if r.status != 200 {
			t.Fatalf("history%s: %d %s", q, r.status, r.body)
		}
		var b struct {
			historyBody
			Series map[string][]*float64 `json:"series"`
		}
		if err := json.Unmarshal(r.body, &b); err != nil {
			t.Fatal(err)
		}
		return b.historyBody
	}
	deadline := time.Now().Add(5 * time.Second)
	var b historyBody
	for b = read(""); len(b.T) < 5; b = read("") {
		if time.Now().After(deadline) {
			t.Fatalf("%d samples after 5 s at a 20 ms interval", len(b.T))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if b.PauseAbove == nil || *b.PauseAbove != 0.8 || b.ResumeBelow == nil || *b.ResumeBelow != 0.65 || b.IntervalMS != 20 || b.LengthSeconds != 1 {
		t.Fatalf("header: pause %v resume %v interval %d length %d", b.PauseAbove, b.ResumeBelow, b.IntervalMS, b.LengthSeconds)
	}
	for i := 1; i < len(b.T); i++ {
		if b.T[i] < b.T[i-1] {
			t.Fatalf("t not in order: %v", b.T)
		}
	}
	last := b.T[len(b.T)-1]
	if n := read("?since=" + itoa(last)); len(n.T) > 0 && n.T[0] <= last {
		t.Fatalf("since %d returned %v", last, n.T)
	}
	if r := do(t, c, "GET", "/admin/history?since=yesterday", testToken, nil); r.status != 400 || !strings.Contains(string(r.body), "unix milliseconds") {
		t.Fatalf("bad since: %d %s", r.status, r.body)
	}
	if r := do(t, c, "GET", "/admin/history", "", nil); r.status != 401 {
		t.Fatalf("history without the token: %d", r.status)
	}
	h.Close()
	n := len(read("").T)
	time.Sleep(100 * time.Millisecond)
	if m := len(read("").T); m != n {
		t.Fatalf("samples kept coming after Close: %d → %d", n, m)
	}
	h.Close() // idempotent
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

func TestStatusRoute(t *testing.T) {
	st := &fakeStatus{}
	c := serveInMemory(t, newTestHandler(t, Config{}, Deps{Status: st}))
	read := func() statusBody {
		r := do(t, c, "GET", "/admin/status", testToken, nil)
		if r.status != 200 {
			t.Fatalf("status: %d %s", r.status, r.body)
		}
		var s statusBody
		if err := json.Unmarshal(r.body, &s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	if s := read(); !s.Ready || s.Reason != "" || !s.Sink.Healthy || s.Sink.Error != "" || s.UptimeSeconds < 0 || time.Since(s.Started) > time.Minute {
		t.Fatalf("healthy status: %+v", s)
	}
	st.set(errors.New("sink unavailable: kafka: no broker answered"), errors.New("kafka: no broker answered"))
	if s := read(); s.Ready || s.Reason != "sink unavailable: kafka: no broker answered" || s.Sink.Healthy || s.Sink.Error != "kafka: no broker answered" {
		t.Fatalf("unhealthy status: %+v", s)
	}
	c2 := serveInMemory(t, newTestHandler(t, Config{}, Deps{}))
	if r := do(t, c2, "GET", "/admin/status", testToken, nil); r.status != 503 || !strings.Contains(string(r.body), "no status reader") {
		t.Fatalf("status without a reader: %d %s", r.status, r.body)
	}
}

// blockingRegistry's dry runs wait until released.
type blockingRegistry struct {
	emptyRegistry
	started chan struct{}
	release chan struct{}
}

func (b blockingRegistry) Get(_ context.Context, name string) (TransformInfo, error) {
	return TransformInfo{Name: name}, nil
}

func (b blockingRegistry) DryRun(ctx context.Context, chain []string, events [][]byte) (DryRunResult, error) {
	b.started <- struct{}{}
	<-b.release
	return b.emptyRegistry.DryRun(ctx, chain, events)
}

// TestDryRunsOneAtATime: a second dry run waits for the first, and gives
// up with a 503 that says why when its timeout passes first.
func TestDryRunsOneAtATime(t *testing.T) {
	reg := blockingRegistry{started: make(chan struct{}, 2), release: make(chan struct{})}
	c := serveInMemory(t, newTestHandler(t, Config{DryRunTimeout: 300 * time.Millisecond}, Deps{Transforms: reg}))
	first := make(chan response, 1)
	go func() { first <- do(t, c, "POST", "/admin/transforms/x/test", testToken, []byte(`{"a":1}`)) }()
	<-reg.started
	r := do(t, c, "POST", "/admin/transforms/x/test", testToken, []byte(`{"a":2}`))
	if r.status != 503 || !strings.Contains(string(r.body), "one runs at a time") {
		t.Fatalf("second dry run while the first runs: %d %s", r.status, r.body)
	}
	close(reg.release)
	if r := <-first; r.status != 200 {
		t.Fatalf("first dry run: %d %s", r.status, r.body)
	}
	if r := do(t, c, "POST", "/admin/transforms/x/test", testToken, []byte(`{"a":3}`)); r.status != 200 {
		t.Fatalf("dry run after the first finished: %d %s", r.status, r.body)
	}
}

func TestBudgetThresholds(t *testing.T) {
	g := testGovernor(t)
	c := serveInMemory(t, newTestHandler(t, Config{}, Deps{Pressure: g.Pressure()}))
	r := do(t, c, "GET", "/admin/budget", testToken, nil)
	var b struct {
		Pressure struct {
			PauseAbove  float64 `json:"pause_above"`
			ResumeBelow float64 `json:"resume_below"`
		} `json:"pressure"`
	}
	if err := json.Unmarshal(r.body, &b); err != nil || b.Pressure.PauseAbove != 0.8 || b.Pressure.ResumeBelow != 0.65 {
		t.Fatalf("budget: %s, %v", r.body, err)
	}
}

// TestConsoleFiles: the console is public, served from the embed with its
// content types and a same-origin CSP; /ui redirects to /ui/; every file
// the page links is embedded; the page's own code names no other origin
// and calls only /admin/ routes.
func TestConsoleFiles(t *testing.T) {
	c := serveInMemory(t, newTestHandler(t, Config{}, Deps{}))
	get := func(path string, hdr ...string) response {
		t.Helper()
		r := do(t, c, "GET", path, "", nil, hdr...)
		return r
	}
	if r := fetchRaw(t, c, "/ui"); r.status != 301 || !strings.HasSuffix(r.h["Location"], "/ui/") {
		t.Fatalf("/ui: %d, Location %q", r.status, r.h["Location"])
	}
	var r response
	r = get("/ui/")
	if r.status != 200 || r.headers["Content-Type"] != "text/html; charset=utf-8" || !strings.Contains(string(r.body), "<title>sluice console</title>") {
		t.Fatalf("/ui/: %d %q", r.status, r.headers["Content-Type"])
	}
	index := string(r.body)
	for path, ct := range map[string]string{
		"/ui/console.js":                     "text/javascript; charset=utf-8",
		"/ui/console.css":                    "text/css; charset=utf-8",
		"/ui/index.html":                     "text/html; charset=utf-8",
		"/ui/vendor/uplot/uPlot.iife.min.js": "text/javascript; charset=utf-8",
		"/ui/vendor/uplot/uPlot.min.css":     "text/css; charset=utf-8",
		"/ui/vendor/uplot/LICENSE":           "text/plain; charset=utf-8",
	} {
		if r := get(path); r.status != 200 || r.headers["Content-Type"] != ct || len(r.body) < 500 {
			t.Errorf("%s: %d %q, %d bytes", path, r.status, r.headers["Content-Type"], len(r.body))
		}
	}
	if r := get("/ui/nosuch.js"); r.status != 404 || !strings.HasPrefix(string(r.body), `{"error":"not found`) {
		t.Errorf("/ui/nosuch.js: %d %s", r.status, r.body)
	}
	if r := do(t, c, "POST", "/ui/", "", nil); r.status != 401 {
		t.Errorf("POST /ui/ without a token: %d (only GET and HEAD of the console are public)", r.status)
	}

	// Headers and revalidation.
	f := uiAssets.files["console.js"]
	var resp = fetchRaw(t, c, "/ui/console.js", "If-None-Match", f.etag)
	if resp.status != 304 {
		t.Errorf("revalidation with the ETag: %d", resp.status)
	}
	resp = fetchRaw(t, c, "/ui/console.js")
	if resp.h["Content-Security-Policy"] != uiCSP || resp.h["X-Content-Type-Options"] != "nosniff" || resp.h["ETag"] != f.etag || resp.h["Cache-Control"] != "no-cache" {
		t.Errorf("console.js headers: %v", resp.h)
	}
	for _, dir := range []string{"default-src 'none'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(uiCSP, dir) {
			t.Errorf("CSP lacks %s", dir)
		}
	}

	// Every /ui/ file the page links is embedded; nothing else is linked.
	refs := regexp.MustCompile(`(?:src|href)="([^"#]+)"`).FindAllStringSubmatch(index, -1)
	if len(refs) < 4 {
		t.Fatalf("index.html links %d files", len(refs))
	}
	for _, m := range refs {
		if m[1] == "data:," { // the empty favicon: no request at all
			continue
		}
		name, ok := strings.CutPrefix(m[1], "/ui/")
		if !ok {
			t.Errorf("index.html links %q outside /ui/", m[1])
			continue
		}
		if _, ok := uiAssets.files[name]; !ok {
			t.Errorf("index.html links %s, which is not embedded", m[1])
		}
	}
	js := string(uiAssets.files["console.js"].body)
	if m := regexp.MustCompile(`https?://|//[a-z0-9-]+\.[a-z]`).FindString(js + index + string(uiAssets.files["console.css"].body)); m != "" {
		t.Errorf("the console names another origin: %q", m)
	}
	calls := regexp.MustCompile(`api\("[A-Z]+", "([^"]+)"`).FindAllStringSubmatch(js, -1)
	if len(calls) < 8 {
		t.Fatalf("console.js has %d API calls", len(calls))
	}
	for _, m := range calls {
		if !strings.HasPrefix(m[1], "/admin/") {
			t.Errorf("console.js calls %s, not an /admin/ route", m[1])
		}
		path := strings.TrimRight(strings.SplitN(m[1], "?", 2)[0], "/")
		if strings.Count(path, "/") >= 3 { // "/admin/transforms/" + name + …
			path = "/admin/transforms/{name}"
		}
		if p, _ := newTestHandler(t, Config{}, Deps{}).mux.match(path); p == nil {
			t.Errorf("console.js calls %s, which is no admin route", m[1])
		}
	}
	if !strings.Contains(js, "fetch(") || strings.Count(js, "fetch(") != 1 {
		t.Errorf("console.js should fetch through api() only (%d fetch calls)", strings.Count(js, "fetch("))
	}
}

type rawResponse struct {
	status int
	h      map[string]string
}

// fetchRaw GETs path without a token and returns the status and the
// console's response headers.
func fetchRaw(tb testing.TB, c *fasthttp.Client, path string, hdr ...string) rawResponse {
	tb.Helper()
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI("http://admin" + path)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	if err := c.DoTimeout(req, resp, 10*time.Second); err != nil {
		tb.Fatal(err)
	}
	out := rawResponse{status: resp.StatusCode(), h: map[string]string{}}
	for _, k := range []string{"Content-Security-Policy", "X-Content-Type-Options", "ETag", "Cache-Control", "Location"} {
		out.h[k] = string(resp.Header.Peek(k))
	}
	return out
}
