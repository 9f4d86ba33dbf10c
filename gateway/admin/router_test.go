package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"

	"github.com/sluicehq/sluice/governor"
)

const testToken = "s3cret-token"

// emptyRegistry is a registry with no transforms and a default pipeline
// only: enough to exercise routing, auth and errors, which never reach a
// real registry. Handler tests with real guests run the wasmhost registry.
type emptyRegistry struct{}

func (emptyRegistry) Put(context.Context, string, []byte) (TransformInfo, error) {
	return TransformInfo{}, Invalidf("module does not compile")
}
func (emptyRegistry) List(context.Context) ([]TransformInfo, error) { return nil, nil }
func (emptyRegistry) Get(_ context.Context, name string) (TransformInfo, error) {
	return TransformInfo{}, ErrNotFound
}
func (emptyRegistry) Delete(context.Context, string) error { return ErrNotFound }
func (emptyRegistry) Rollback(context.Context, string) (TransformInfo, error) {
	return TransformInfo{}, ErrNotFound
}
func (emptyRegistry) DryRun(_ context.Context, chain []string, events [][]byte) (DryRunResult, error) {
	res := DryRunResult{Transforms: chain}
	for i, e := range events {
		res.Events = append(res.Events, DryRunEvent{Index: i, Decision: DecisionKept, Outputs: 1})
		res.Records = append(res.Records, DryRunRecord{Input: i, Value: e})
	}
	return res, nil
}
func (emptyRegistry) Pipeline(tenant string) ([]string, error) {
	return []string{}, nil
}
func (emptyRegistry) SetPipeline(tenant string, chain []string) error {
	if len(chain) > 0 {
		return Invalidf("unknown transform %q", chain[0])
	}
	return nil
}
func (emptyRegistry) Tenants() []string { return []string{"acme"} }

// serveInMemory serves h over an in-memory listener the way the gateway's
// admin listener does, and returns a client for it.
func serveInMemory(tb testing.TB, h *Handler) *fasthttp.Client {
	tb.Helper()
	ln := fasthttputil.NewInmemoryListener()
	srv := &fasthttp.Server{
		Handler:            h.ServeFastHTTP,
		ErrorHandler:       h.WriteServerError,
		MaxRequestBodySize: h.MaxRequestBodySize(),
		Logger:             quietLogger{},
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	tb.Cleanup(func() {
		_ = srv.Shutdown()
		<-done
	})
	return &fasthttp.Client{Dial: func(string) (net.Conn, error) { return ln.Dial() }}
}

func newTestHandler(tb testing.TB, cfg Config, deps Deps) *Handler {
	tb.Helper()
	if cfg.Token == "" {
		cfg.Token = testToken
	}
	if deps.Transforms == nil {
		deps.Transforms = emptyRegistry{}
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Pipelines == nil {
		deps.Pipelines = emptyRegistry{}
	}
	h, err := New(cfg, deps)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(h.Close)
	return h
}

type response struct {
	status  int
	body    []byte
	headers map[string]string
}

func do(tb testing.TB, c *fasthttp.Client, method, path, token string, body []byte, hdr ...string) response {
	tb.Helper()
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI("http://admin" + path)
	req.Header.SetMethod(method)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	if body != nil {
		req.SetBody(body)
	}
	if err := c.DoTimeout(req, resp, 10*time.Second); err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	r := response{status: resp.StatusCode(), body: append([]byte(nil), resp.Body()...), headers: map[string]string{}}
	for _, k := range []string{"Allow", "Content-Type", "WWW-Authenticate"} {
		r.headers[k] = string(resp.Header.Peek(k))
	}
	return r
}

func TestMuxMatch(t *testing.T) {
	h := newTestHandler(t, Config{}, Deps{})
	tests := []struct {
		path    string
		pattern string // "" = no match
		name    string
	}{
		{"/admin/transforms", "/admin/transforms", ""},
		{"/admin/transforms/", "/admin/transforms", ""},
		{"/admin/transforms/filter", "/admin/transforms/{name}", "filter"},
		{"/admin/transforms/filter/", "/admin/transforms/{name}", "filter"},
		{"/admin/transforms/filter/rollback", "/admin/transforms/{name}/rollback", "filter"},
		{"/admin/transforms/filter/test", "/admin/transforms/{name}/test", "filter"},
		{"/admin/transforms/filter/other", "", ""},
		{"/admin/pipeline", "/admin/pipeline", ""},
		{"/admin/pipeline/test", "/admin/pipeline/test", ""},
		{"/admin/budget", "/admin/budget", ""},
		{"/admin", "", ""},
		{"/", "", ""},
		{"/admin/budgets", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			p, ps := h.mux.match(tt.path)
			got := ""
			if p != nil {
				got = "/" + strings.Join(p.segs, "/")
			}
			if got != tt.pattern {
				t.Fatalf("match(%q) = %q, want %q", tt.path, got, tt.pattern)
			}
			if n := ps.Get("name"); n != tt.name {
				t.Fatalf("name = %q, want %q", n, tt.name)
			}
		})
	}
}

func TestNewMuxRejectsBadRoutes(t *testing.T) {
	ok := func(*fasthttp.RequestCtx, Params) error { return nil }
	tests := []struct {
		name   string
		routes []Route
	}{
		{"duplicate", []Route{{Method: "GET", Pattern: "/a", Handler: ok}, {Method: "GET", Pattern: "/a", Handler: ok}}},
		{"nil handler", []Route{{Method: "GET", Pattern: "/a"}}},
		{"relative", []Route{{Method: "GET", Pattern: "a", Handler: ok}}},
		{"no method", []Route{{Pattern: "/a", Handler: ok}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := newMux(tt.routes); !errors.Is(err, ErrInvalid) {
				t.Fatalf("newMux: %v, want ErrInvalid", err)
			}
		})
	}
}

func TestStatusOf(t *testing.T) {
	tests := []struct {
		err  error
		want int
	}{
		{ErrInvalid, 400},
		{Invalidf("bad %d", 1), 400},
		{fmt.Errorf("ctx: %w", &InvalidError{Reason: "abi"}), 400},
		{ErrUnauthorized, 401},
		{fmt.Errorf("x: %w", ErrNotFound), 404},
		{fmt.Errorf("x: %w", ErrInUse), 409},
		{ErrNoPrevious, 409},
		{fmt.Errorf("%w: cap", ErrTooLarge), 413},
		{ErrUnavailable, 503},
		{errors.New("boom"), 500},
		{APIError{HTTPStatus: 418, Message: "teapot"}, 418},
		{fmt.Errorf("wrapped: %w", APIError{HTTPStatus: 422}), 422},
		{APIError{Err: ErrNotFound}, 404},
	}
	for _, tt := range tests {
		if got := statusOf(tt.err); got != tt.want {
			t.Errorf("statusOf(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}

func TestWriteError(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		status     int
		msg        string
		header     string
		headerWant string
	}{
		{"api error message", APIError{HTTPStatus: 404, Message: "nope"}, 404, "nope", "", ""},
		{"api error cause", APIError{HTTPStatus: 400, Err: errors.New("cause")}, 400, "cause", "", ""},
		{"plain", errors.New("boom"), 500, "boom", "", ""},
		{"unauthorized", ErrUnauthorized, 401, ErrUnauthorized.Error(), "WWW-Authenticate", `Bearer realm="sluice-admin"`},
		{"405", methodNotAllowed{allow: "GET, HEAD", method: "PUT"}, 405, "method PUT not allowed; allowed: GET, HEAD", "Allow", "GET, HEAD"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ctx fasthttp.RequestCtx
			ctx.Response.Header.Set("X-Stale", "1")
			ctx.SetBodyString("partial output")
			writeError(&ctx, tt.err)
			if got := ctx.Response.StatusCode(); got != tt.status {
				t.Fatalf("status %d, want %d", got, tt.status)
			}
			if ct := string(ctx.Response.Header.ContentType()); ct != "application/json" {
				t.Fatalf("content type %q", ct)
			}
			var body errorBody
			if err := json.Unmarshal(ctx.Response.Body(), &body); err != nil {
				t.Fatalf("body %q: %v", ctx.Response.Body(), err)
			}
			if body.Error != tt.msg || body.Status != tt.status {
				t.Fatalf("body %+v, want error %q status %d", body, tt.msg, tt.status)
			}
			if tt.header != "" {
				if got := string(ctx.Response.Header.Peek(tt.header)); got != tt.headerWant {
					t.Fatalf("%s = %q, want %q", tt.header, got, tt.headerWant)
				}
			}
		})
	}
}

func TestAuth(t *testing.T) {
	c := serveInMemory(t, newTestHandler(t, Config{}, Deps{}))
	tests := []struct {
		name   string
		auth   string
		status int
	}{
		{"none", "", 401},
		{"wrong token", "Bearer nope", 401},
		{"prefix of token", "Bearer " + testToken[:4], 401},
		{"token plus suffix", "Bearer " + testToken + "x", 401},
		{"basic scheme", "Basic " + testToken, 401},
		{"bare token", testToken, 401},
		{"right", "Bearer " + testToken, 200},
		{"scheme case-insensitive", "bearer " + testToken, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hdr []string
			if tt.auth != "" {
				hdr = []string{"Authorization", tt.auth}
			}
			r := do(t, c, "GET", "/admin/transforms", "", nil, hdr...)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.body)
			}
		})
	}
	// Unknown paths and wrong methods are 401 too without the token: the
	// API says nothing about its routes to a stranger.
	for _, path := range []string{"/nope", "/admin/transforms/x/nope"} {
		if r := do(t, c, "GET", path, "", nil); r.status != 401 {
			t.Fatalf("GET %s without token: %d", path, r.status)
		}
	}
	if r := do(t, c, "PATCH", "/admin/budget", "", nil); r.status != 401 {
		t.Fatalf("PATCH without token: %d", r.status)
	}
}

func TestRouting(t *testing.T) {
	c := serveInMemory(t, newTestHandler(t, Config{MaxUpload: 1024, MaxSample: 512}, Deps{}))
	big := make([]byte, 2048)
	tests := []struct {
		method, path string
		body         []byte
		status       int
		allow        string
		errContains  string
	}{
		{"GET", "/nope", nil, 404, "", "no admin route /nope"},
		{"GET", "/admin/transforms/x/y", nil, 404, "", "no admin route"},
		{"POST", "/admin/transforms", nil, 405, "GET, HEAD", "method POST not allowed"},
		{"PATCH", "/admin/transforms/x", nil, 405, "DELETE, GET, HEAD, PUT", ""},
		{"GET", "/admin/transforms/x/rollback", nil, 405, "POST", ""},
		{"DELETE", "/admin/pipeline", nil, 405, "GET, HEAD, PUT", ""},
		{"GET", "/admin/pipeline/test", nil, 405, "POST", ""},
		{"PUT", "/admin/budget", nil, 405, "GET, HEAD", ""},
		{"GET", "/admin/transforms/Bad", nil, 400, "", "invalid transform name"},
		{"GET", "/admin/transforms/-x", nil, 400, "", "invalid transform name"},
		{"GET", "/admin/transforms/" + strings.Repeat("a", 64), nil, 400, "", "invalid transform name"},
		{"PUT", "/admin/transforms/a.b", []byte("x"), 400, "", "invalid transform name"},
		{"GET", "/admin/transforms/missing", nil, 404, "", "not found"},
		{"DELETE", "/admin/transforms/missing", nil, 404, "", "not found"},
		{"POST", "/admin/transforms/missing/rollback", nil, 404, "", "not found"},
		{"POST", "/admin/transforms/missing/test", []byte(`{"a":1}`), 404, "", "not found"},
		{"PUT", "/admin/transforms/ok", nil, 400, "", "empty body"},
		{"PUT", "/admin/transforms/ok", big[:1025], 413, "", "capped at 1024 bytes"},
		{"PUT", "/admin/transforms/ok", big, 413, "", ""},
		{"PUT", "/admin/transforms/ok", []byte("garbage"), 400, "", "does not compile"},
		{"POST", "/admin/pipeline/test", big[:513], 413, "", "capped at 512"},
		{"POST", "/admin/pipeline/test", []byte("{"), 400, "", "not valid JSON"},
		{"POST", "/admin/pipeline/test", []byte(""), 400, "", "no sample events"},
		{"PUT", "/admin/pipeline", []byte(`{"transforms":["nope"]}`), 400, "", `unknown transform "nope"`},
		{"PUT", "/admin/pipeline", []byte(`{"transforms":["Bad"]}`), 400, "", `invalid transform name`},
		{"PUT", "/admin/pipeline", []byte(`{"chain":[]}`), 400, "", `unknown field`},
		{"PUT", "/admin/pipeline", []byte(`{}`), 400, "", `use [] for pass-through`},
		{"PUT", "/admin/pipeline", []byte(`[`), 400, "", ``},
		{"GET", "/admin/pipeline?tenant=ghost", nil, 404, "", `tenant "ghost"`},
		{"PUT", "/admin/pipeline?tenant=ghost", []byte(`{"transforms":[]}`), 404, "", `configured tenants: acme`},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			r := do(t, c, tt.method, tt.path, testToken, tt.body)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.body)
			}
			if r.headers["Content-Type"] != "application/json" {
				t.Fatalf("content type %q", r.headers["Content-Type"])
			}
			var body errorBody
			if err := json.Unmarshal(r.body, &body); err != nil || body.Status != tt.status || body.Error == "" {
				t.Fatalf("error body %q (%v)", r.body, err)
			}
			if !strings.Contains(body.Error, tt.errContains) {
				t.Fatalf("error %q does not contain %q", body.Error, tt.errContains)
			}
			if r.headers["Allow"] != tt.allow {
				t.Fatalf("Allow %q, want %q", r.headers["Allow"], tt.allow)
			}
		})
	}
}

func TestRoutingSuccess(t *testing.T) {
	c := serveInMemory(t, newTestHandler(t, Config{}, Deps{}))
	r := do(t, c, "GET", "/admin/transforms", testToken, nil)
	if r.status != 200 || strings.TrimSpace(string(r.body)) != `{"transforms":[]}` {
		t.Fatalf("list: %d %s", r.status, r.body)
	}
	r = do(t, c, "GET", "/admin/pipeline?tenant=acme", testToken, nil)
	if r.status != 200 || strings.TrimSpace(string(r.body)) != `{"tenant":"acme","transforms":[],"tenants":["acme"],"available":true}` {
		t.Fatalf("pipeline: %d %s", r.status, r.body)
	}
	r = do(t, c, "PUT", "/admin/pipeline", testToken, []byte(`{"transforms":[]}`))
	if r.status != 200 || strings.TrimSpace(string(r.body)) != `{"tenant":"default","transforms":[],"previous":[]}` {
		t.Fatalf("put pipeline: %d %s", r.status, r.body)
	}
	// HEAD is GET without a body.
	if r := do(t, c, "HEAD", "/admin/budget", testToken, nil); r.status != 200 {
		t.Fatalf("HEAD budget: %d", r.status)
	}
}

func TestBudgetFromGovernor(t *testing.T) {
	g, err := governor.New(governor.Config{MemoryLimit: 1000, HeapLimit: -1})
	if err != nil {
		t.Fatal(err)
	}
	c := serveInMemory(t, newTestHandler(t, Config{}, Deps{
		Pressure: g.Pressure(), Budget: g.Budget(), Memory: g.Guard(), Gate: g.Gate(),
		HeapBytes: func() uint64 { return 42 },
	}))
	type budget struct {
		ByteBudget int64 `json:"byte_budget"`
		RecordCap  int   `json:"record_cap"`
		AIMD       struct {
			Bytes, Min, Max int64
		} `json:"aimd"`
		Pressure struct {
			Level        float64    `json:"level"`
			Latched      bool       `json:"latched"`
			LatchedSince *time.Time `json:"latched_since"`
			LatchedBy    string     `json:"latched_by"`
			Sources      []struct {
				Name  string  `json:"name"`
				Level float64 `json:"level"`
				Hard  bool    `json:"hard"`
			} `json:"sources"`
		} `json:"pressure"`
		Memory struct {
			Inflight int64  `json:"inflight_bytes"`
			Limit    int64  `json:"limit_bytes"`
			Heap     uint64 `json:"heap_bytes"`
		} `json:"memory"`
		Gate struct {
			State      string `json:"state"`
			Rejections uint64 `json:"rejections"`
		} `json:"gate"`
	}
	read := func() budget {
		r := do(t, c, "GET", "/admin/budget", testToken, nil)
		if r.status != 200 {
			t.Fatalf("budget: %d %s", r.status, r.body)
		}
		var b budget
		if err := json.Unmarshal(r.body, &b); err != nil {
			t.Fatal(err)
		}
		return b
	}
	b := read()
	if b.Pressure.Latched || b.Pressure.LatchedSince != nil || b.Gate.State != "open" || b.Memory.Limit != 1000 ||
		b.Memory.Heap != 42 || b.ByteBudget != g.Budget().Bytes() || b.RecordCap != g.Budget().RecordCap() ||
		len(b.Pressure.Sources) != 1 || b.Pressure.Sources[0].Name != g.Guard().Name() {
		t.Fatalf("idle budget: %+v", b)
	}
	lease := g.Guard().Lease(950) // over HardAt (0.9): hard, latched
	defer lease.Release()
	if g.Gate().Evaluate() != governor.Hold {
		t.Fatal("gate did not hold at 95% memory")
	}
	b = read()
	if !b.Pressure.Latched || b.Pressure.LatchedSince == nil || b.Pressure.LatchedBy != g.Guard().Name() ||
		b.Gate.State != "held" || b.Gate.Rejections != 1 || b.Memory.Inflight != 950 ||
		!b.Pressure.Sources[0].Hard || b.Pressure.Level < 0.9 {
		t.Fatalf("latched budget: %+v", b)
	}
}

func TestBudgetWithoutGovernor(t *testing.T) {
	c := serveInMemory(t, newTestHandler(t, Config{}, Deps{}))
	r := do(t, c, "GET", "/admin/budget", testToken, nil)
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil || r.status != 200 {
		t.Fatalf("%d %s %v", r.status, r.body, err)
	}
	for _, k := range []string{"byte_budget", "record_cap", "aimd", "pressure", "gate"} {
		if v, ok := m[k]; !ok || v != nil {
			t.Fatalf("%s = %v, want null", k, v)
		}
	}
	if heap := m["memory"].(map[string]any)["heap_bytes"].(float64); heap <= 0 {
		t.Fatalf("heap_bytes %v", heap)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"token only", Config{Token: "t"}, true},
		{"no token", Config{}, false},
		{"negative upload", Config{Token: "t", MaxUpload: -1}, false},
		{"negative sample", Config{Token: "t", MaxSample: -1}, false},
		{"negative events", Config{Token: "t", MaxSampleEvents: -1}, false},
		{"negative timeout", Config{Token: "t", DryRunTimeout: -time.Second}, false},
	}
	for _, tt := range tests {
		if err := tt.cfg.Validate(); (err == nil) != tt.ok {
			t.Errorf("%s: Validate() = %v", tt.name, err)
		}
	}
	if _, err := New(Config{Token: "t"}, Deps{}); err == nil {
		t.Fatal("New without deps succeeded")
	}
	h := newTestHandler(t, Config{}, Deps{})
	if got := h.MaxRequestBodySize(); got != DefaultMaxUpload+1 {
		t.Fatalf("MaxRequestBodySize %d", got)
	}
}

func TestValidName(t *testing.T) {
	for _, n := range []string{"a", "0", "filter", "my-transform_2", strings.Repeat("a", 63)} {
		if !ValidName(n) {
			t.Errorf("ValidName(%q) = false", n)
		}
	}
	for _, n := range []string{"", "-a", "_a", "A", "a.b", "a/b", "a b", "é", strings.Repeat("a", 64)} {
		if ValidName(n) {
			t.Errorf("ValidName(%q) = true", n)
		}
	}
}

// quietLogger silences fasthttp's connection-error log in tests.
type quietLogger struct{}

func (quietLogger) Printf(string, ...any) {}

// FuzzServe: whatever the method, path, token and body, the handler answers
// with one of the API's statuses and, but for 204, a JSON body; an
// unauthenticated request is always 401.
func FuzzServe(f *testing.F) {
	h := newTestHandler(f, Config{MaxUpload: 64, MaxSample: 64}, Deps{})
	f.Add("GET", "/admin/transforms", testToken, []byte(nil))
	f.Add("PUT", "/admin/transforms/a", testToken, []byte("\x00asm"))
	f.Add("POST", "/admin/pipeline/test?tenant=acme", testToken, []byte(`[{"a":1}]`))
	f.Add("PUT", "/admin/pipeline", testToken, []byte(`{"transforms":["x"]}`))
	f.Add("DELETE", "/admin/transforms/..%2f", "", []byte(nil))
	f.Add("GET", "//admin//budget/", testToken, []byte(nil))
	allowed := map[int]bool{200: true, 201: true, 204: true, 400: true, 401: true, 404: true, 405: true, 409: true, 413: true}
	f.Fuzz(func(t *testing.T, method, path, token string, body []byte) {
		var ctx fasthttp.RequestCtx
		ctx.Request.Header.SetMethod(method)
		ctx.Request.SetRequestURI(path)
		if token != "" {
			ctx.Request.Header.Set("Authorization", "Bearer "+token)
		}
		ctx.Request.SetBody(body)
		h.ServeFastHTTP(&ctx)
		st := ctx.Response.StatusCode()
		if !allowed[st] {
			t.Fatalf("%s %q: status %d", method, path, st)
		}
		if strings.TrimSpace(token) != testToken && st != 401 {
			t.Fatalf("%s %q with token %q: %d, want 401", method, path, token, st)
		}
		if st != 204 && !json.Valid(ctx.Response.Body()) {
			t.Fatalf("%s %q: %d body %q is not JSON", method, path, st, ctx.Response.Body())
		}
	})
}
