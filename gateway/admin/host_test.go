package admin_test

import (
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"

	"github.com/sluicehq/sluice/gateway/admin"
	"github.com/sluicehq/sluice/internal/e2e"
	"github.com/sluicehq/sluice/wasmhost"
)

// compileCache is shared by every in-process host of this test binary, so a
// guest compiles once (about 0.5 s, more under -race).
var compileCache struct {
	once sync.Once
	dir  string
}

// newHostAPI starts a real wasmhost.Host behind the admin API, served over
// an in-memory listener.
func newHostAPI(tb testing.TB, tenants map[string]string) (*adminClient, *wasmhost.Host) {
	tb.Helper()
	compileCache.once.Do(func() {
		compileCache.dir = filepath.Join(e2e.Scratch(tb), "wazero-cache")
		os.MkdirAll(compileCache.dir, 0o755)
	})
	ctx := context.Background()
	quiet := slog.New(slog.DiscardHandler)
	host, err := wasmhost.New(ctx, wasmhost.Config{DataDir: tb.TempDir(), CacheDir: compileCache.dir, Logger: quiet, PoolSize: 2})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { host.Close(ctx) })
	h, err := admin.New(admin.Config{Token: "tok", MaxUpload: 8 << 20},
		admin.Deps{Transforms: admin.NewHostRegistry(host, tenants), Pipelines: admin.NewHostRegistry(host, tenants), Logger: quiet})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(h.Close)
	ln := fasthttputil.NewInmemoryListener()
	srv := &fasthttp.Server{Handler: h.ServeFastHTTP, ErrorHandler: h.WriteServerError, MaxRequestBodySize: h.MaxRequestBodySize()}
	done := make(chan struct{})
	go func() { srv.Serve(ln); close(done) }()
	tb.Cleanup(func() { srv.Shutdown(); <-done })
	c := &fasthttp.Client{Dial: func(string) (net.Conn, error) { return ln.Dial() }, MaxResponseBodySize: 64 << 20}
	return &adminClient{c: c, base: "http://admin", token: "tok"}, host
}

// TestHostRegistryErrors checks the adapter's mapping of the host's errors
// onto the API's statuses, with modules that fail before any compile (the
// full lifecycle with real guests runs against the binary, see e2e_test.go).
func TestHostRegistryErrors(t *testing.T) {
	api, _ := newHostAPI(t, map[string]string{"acme": "acme"})
	tests := []struct {
		method, path string
		body         []byte
		status       int
		contains     string
	}{
		{"PUT", "/admin/transforms/bad", []byte("this is not wasm at all"), 400, "invalid transform module"},
		{"PUT", "/admin/transforms/bad", []byte{0, 'a', 's', 'm', 1, 0, 0}, 400, "invalid transform module"},
		{"GET", "/admin/transforms/bad", nil, 404, "not found"},
		{"DELETE", "/admin/transforms/bad", nil, 404, "not found"},
		{"POST", "/admin/transforms/bad/rollback", nil, 404, "not found"},
		{"POST", "/admin/transforms/bad/test", []byte(`{}`), 404, "not found"},
		{"PUT", "/admin/pipeline", []byte(`{"transforms":["bad"]}`), 400, `unknown transform "bad"`},
		{"PUT", "/admin/pipeline?tenant=ghost", []byte(`{"transforms":[]}`), 404, `tenant "ghost"`},
		{"POST", "/admin/pipeline/test?transforms=bad", []byte(`{}`), 404, "not found"},
	}
	for _, tt := range tests {
		msg := api.do(t, tt.method, tt.path, tt.body).want(t, tt.status, tt.method+" "+tt.path).errMsg(t)
		if !strings.Contains(msg, tt.contains) {
			t.Fatalf("%s %s: error %q does not contain %q", tt.method, tt.path, msg, tt.contains)
		}
	}
	var list struct{ Transforms []transformJSON }
	api.do(t, "GET", "/admin/transforms", nil).want(t, 200, "list").json(t, &list)
	if list.Transforms == nil || len(list.Transforms) != 0 {
		t.Fatalf("list %s", mustJSON(list))
	}
	// A pass-through pipeline dry-runs without any guest: every event kept,
	// an invalid one dead-lettered by the parse stage.
	var dr dryRunJSON
	api.do(t, "POST", "/admin/pipeline/test?tenant=acme", []byte(`[{"a":1},{"b":2}]`)).want(t, 200, "pass-through").json(t, &dr)
	if dr.Summary.Kept != 2 || len(dr.Records) != 2 || string(dr.Records[1].Value) != `{"b":2}` || len(dr.Transforms) != 0 {
		t.Fatalf("pass-through dry-run %s", mustJSON(dr))
	}
}
