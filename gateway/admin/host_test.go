package admin_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"

	"github.com/sluicehq/sluice/gateway/admin"
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
		compileCache.dir = filepath.Join(guests.dir, "wazero-cache")
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
	ln := fasthttputil.NewInmemoryListener()
	srv := &fasthttp.Server{Handler: h.ServeFastHTTP, ErrorHandler: h.WriteServerError, MaxRequestBodySize: h.MaxRequestBodySize()}
	done := make(chan struct{})
	go func() { srv.Serve(ln); close(done) }()
	tb.Cleanup(func() { srv.Shutdown(); <-done })
	c := &fasthttp.Client{Dial: func(string) (net.Conn, error) { return ln.Dial() }, MaxResponseBodySize: 64 << 20}
	return &adminClient{c: c, base: "http://admin", token: "tok"}, host
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestTransformLifecycle(t *testing.T) {
	api, host := newHostAPI(t, nil)
	filter, dropall := guestBytes(t, "filter"), guestBytes(t, "dropall")

	// Upload.
	var info transformJSON
	api.do(t, "PUT", "/admin/transforms/gate", filter).want(t, 201, "upload").json(t, &info)
	if info.Name != "gate" || info.Digest != sha(filter) || info.Size != int64(len(filter)) || info.Version != 1 ||
		info.ABIVersion != wasmhost.ABIVersion || !slices.Contains(info.Exports, "sluice_process") ||
		!slices.Equal(info.Versions, []int{1}) || len(info.UsedBy) != 0 || info.Created.IsZero() {
		t.Fatalf("upload info %+v", info)
	}

	// Dry-run of the transform alone: the heartbeat is dropped.
	var dr dryRunJSON
	api.do(t, "POST", "/admin/transforms/gate/test",
		[]byte("{\"event\":\"click\",\"id\":1}\n{\"event\":\"heartbeat\",\"id\":2}\n")).want(t, 200, "test").json(t, &dr)
	if dr.Summary.Events != 2 || dr.Summary.Kept != 1 || dr.Summary.Dropped != 1 || len(dr.Records) != 1 ||
		dr.Events[0].Decision != "kept" || dr.Events[1].Decision != "dropped" || dr.Records[0].Input != 0 ||
		string(dr.Records[0].Value) != `{"event":"click","id":1}` || dr.PeakMemoryBytes <= 0 || dr.Events[0].DurationUS <= 0 {
		t.Fatalf("dry-run %s", mustJSON(dr))
	}

	// Into the pipeline; now it is in use.
	api.do(t, "PUT", "/admin/pipeline", []byte(`{"transforms":["gate"]}`)).want(t, 200, "set pipeline")
	api.do(t, "GET", "/admin/transforms/gate", nil).want(t, 200, "get").json(t, &info)
	if !slices.Equal(info.UsedBy, []string{"default"}) {
		t.Fatalf("used_by %v", info.UsedBy)
	}
	if msg := api.do(t, "DELETE", "/admin/transforms/gate", nil).want(t, 409, "delete in use").errMsg(t); !strings.Contains(msg, "pipeline") {
		t.Fatalf("409 message %q", msg)
	}

	// Nothing to roll back to yet.
	api.do(t, "POST", "/admin/transforms/gate/rollback", nil).want(t, 409, "rollback at v1")

	// A new version: the pipeline switches to it.
	api.do(t, "PUT", "/admin/transforms/gate", dropall).want(t, 201, "upload v2").json(t, &info)
	if info.Version != 2 || info.Digest != sha(dropall) || !slices.Equal(info.Versions, []int{1, 2}) {
		t.Fatalf("v2 info %+v", info)
	}
	recs, _, err := host.Pipeline(wasmhost.DefaultPipeline).Process(context.Background(), records(`{"event":"click"}`), nil)
	if err != nil || len(recs) != 0 {
		t.Fatalf("pipeline on v2 kept %d records (%v), want 0", len(recs), err)
	}

	// Roll back: v1 is current again and the pipeline runs it.
	api.do(t, "POST", "/admin/transforms/gate/rollback", nil).want(t, 200, "rollback").json(t, &info)
	if info.Version != 1 || info.Digest != sha(filter) {
		t.Fatalf("rolled back to %+v", info)
	}
	recs, _, err = host.Pipeline(wasmhost.DefaultPipeline).Process(context.Background(), records(`{"event":"click"}`, `{"event":"heartbeat"}`), nil)
	if err != nil || len(recs) != 1 {
		t.Fatalf("pipeline after rollback kept %d records (%v), want 1", len(recs), err)
	}

	// List shows counters of the calls above.
	var list struct{ Transforms []transformJSON }
	api.do(t, "GET", "/admin/transforms", nil).want(t, 200, "list").json(t, &list)
	if len(list.Transforms) != 1 || list.Transforms[0].Name != "gate" || list.Transforms[0].Calls == 0 || list.Transforms[0].Records == 0 {
		t.Fatalf("list %+v", list)
	}

	// Out of the pipeline, then delete.
	api.do(t, "PUT", "/admin/pipeline", []byte(`{"transforms":[]}`)).want(t, 200, "empty pipeline")
	api.do(t, "DELETE", "/admin/transforms/gate", nil).want(t, 204, "delete")
	api.do(t, "GET", "/admin/transforms/gate", nil).want(t, 404, "get deleted")
	api.do(t, "DELETE", "/admin/transforms/gate", nil).want(t, 404, "delete again")
}

func records(values ...string) []engineRecord {
	out := make([]engineRecord, len(values))
	for i, v := range values {
		out[i] = engineRecord{Value: []byte(v)}
	}
	return out
}

func TestUploadRejectsBadModules(t *testing.T) {
	api, _ := newHostAPI(t, nil)
	filter := guestBytes(t, "filter")
	tests := []struct {
		name string
		body []byte
		want []string // substrings of the error
	}{
		{"garbage", []byte("this is not wasm at all"), []string{"invalid transform module"}},
		{"truncated", filter[:len(filter)/2], []string{"invalid transform module"}},
		{"magic only", []byte{0, 'a', 's', 'm', 1, 0, 0, 0}, []string{"invalid transform module"}},
		{"wrong abi", guestBytes(t, "wrongabi"), []string{"99", "1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := api.do(t, "PUT", "/admin/transforms/bad", tt.body).want(t, 400, tt.name).errMsg(t)
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Fatalf("error %q does not name %q", msg, w)
				}
			}
		})
	}
	api.do(t, "GET", "/admin/transforms/bad", nil).want(t, 404, "nothing stored")
	// Over the cap: 413 from the handler (Content-Length over MaxUpload)…
	big := bytes.Repeat([]byte{0}, 8<<20+1)
	api.do(t, "PUT", "/admin/transforms/big", big).want(t, 413, "over cap")
	// …and from the listener when the body is larger than it accepts at all.
	api.do(t, "PUT", "/admin/transforms/big", append(big, make([]byte, 1<<20)...)).want(t, 413, "over listener cap")
	// A gzipped module is accepted.
	var gz bytes.Buffer
	gzw := fasthttp.AppendGzipBytes(nil, filter)
	gz.Write(gzw)
	var info transformJSON
	api.do(t, "PUT", "/admin/transforms/zipped", gz.Bytes(), "Content-Encoding", "gzip").want(t, 201, "gzip upload").json(t, &info)
	if info.Digest != sha(filter) {
		t.Fatalf("gzip upload digest %s, want digest of the decompressed module", info.Digest)
	}
}

func TestPipelineRoutes(t *testing.T) {
	api, host := newHostAPI(t, map[string]string{"acme": "acme"})
	api.do(t, "PUT", "/admin/transforms/filter", guestBytes(t, "filter")).want(t, 201, "upload filter")
	api.do(t, "PUT", "/admin/transforms/route", guestBytes(t, "route")).want(t, 201, "upload route")

	var p struct {
		Tenant     string   `json:"tenant"`
		Transforms []string `json:"transforms"`
		Previous   []string `json:"previous"`
		Tenants    []string `json:"tenants"`
	}
	api.do(t, "GET", "/admin/pipeline", nil).want(t, 200, "get").json(t, &p)
	if p.Tenant != "default" || len(p.Transforms) != 0 || !slices.Equal(p.Tenants, []string{"acme"}) {
		t.Fatalf("initial pipeline %+v", p)
	}
	msg := api.do(t, "PUT", "/admin/pipeline", []byte(`{"transforms":["filter","nope"]}`)).want(t, 400, "unknown").errMsg(t)
	if !strings.Contains(msg, `"nope"`) {
		t.Fatalf("400 message %q", msg)
	}
	api.do(t, "PUT", "/admin/pipeline", []byte(`{"transforms":["filter","route"]}`)).want(t, 200, "set").json(t, &p)
	if !slices.Equal(p.Transforms, []string{"filter", "route"}) || len(p.Previous) != 0 {
		t.Fatalf("set %+v", p)
	}
	if got := host.Pipelines()[wasmhost.DefaultPipeline]; !slices.Equal(got, []string{"filter", "route"}) {
		t.Fatalf("host default pipeline %v", got)
	}
	// The tenant's pipeline is separate.
	api.do(t, "PUT", "/admin/pipeline?tenant=acme", []byte(`{"transforms":["route"]}`)).want(t, 200, "set tenant")
	api.do(t, "GET", "/admin/pipeline?tenant=acme", nil).want(t, 200, "get tenant").json(t, &p)
	if p.Tenant != "acme" || !slices.Equal(p.Transforms, []string{"route"}) {
		t.Fatalf("tenant pipeline %+v", p)
	}
	api.do(t, "GET", "/admin/pipeline?tenant=ghost", nil).want(t, 404, "unknown tenant")

	// Dry-run of the default pipeline: filter then route.
	var dr dryRunJSON
	api.do(t, "POST", "/admin/pipeline/test",
		[]byte(`[{"event":"click","user_id":"u1"},{"event":"heartbeat","user_id":"u2"},{"event":"buy","user_id":"u3"}]`)).
		want(t, 200, "pipeline test").json(t, &dr)
	if !slices.Equal(dr.Transforms, []string{"filter", "route"}) || dr.Summary.Kept != 2 || dr.Summary.Dropped != 1 ||
		len(dr.Records) != 2 || dr.Records[0].Topic != "events.click" || dr.Records[1].Topic != "events.buy" ||
		dr.Records[0].Key == nil || *dr.Records[0].Key != "u1" || dr.Records[1].Input != 2 {
		t.Fatalf("pipeline dry-run %s", mustJSON(dr))
	}
	// ?transforms= tries another chain without installing it.
	api.do(t, "POST", "/admin/pipeline/test?transforms=route", []byte(`{"event":"heartbeat","user_id":"u2"}`)).
		want(t, 200, "override").json(t, &dr)
	if dr.Summary.Kept != 1 || dr.Records[0].Topic != "events.heartbeat" {
		t.Fatalf("override dry-run %s", mustJSON(dr))
	}
	api.do(t, "POST", "/admin/pipeline/test?transforms=ghost", []byte(`{}`)).want(t, 404, "override unknown")
	api.do(t, "POST", "/admin/pipeline/test", []byte("{\"a\":1}\nnot json\n")).want(t, 400, "bad sample")
	// Nothing of a dry-run counts as pipeline traffic for the tenant pipeline.
	api.do(t, "DELETE", "/admin/transforms/route", nil).want(t, 409, "route used by two pipelines")
	var info transformJSON
	api.do(t, "GET", "/admin/transforms/route", nil).want(t, 200, "get route").json(t, &info)
	if !slices.Equal(info.UsedBy, []string{"acme", "default"}) {
		t.Fatalf("route used_by %v", info.UsedBy)
	}
}
