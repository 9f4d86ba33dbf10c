package admin

import (
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/sluicehq/sluice/governor"
)

// benchServe serves one request to h in process, as the listener would.
func benchServe(b *testing.B, h *Handler, method, path, auth string) {
	b.Helper()
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.SetMethod(method)
	ctx.Request.SetRequestURI(path)
	if auth != "" {
		ctx.Request.Header.Set("Authorization", auth)
	}
	b.ReportAllocs()
	for b.Loop() {
		ctx.Response.Reset()
		h.ServeFastHTTP(&ctx)
	}
	if ctx.Response.StatusCode() == 0 {
		b.Fatal("no response")
	}
}

// BenchmarkBudget is a dashboard polling GET /admin/budget: token check,
// routing, governor snapshot, JSON.
func BenchmarkBudget(b *testing.B) {
	g, err := governor.New(governor.Config{MemoryLimit: 1 << 30, HeapLimit: -1})
	if err != nil {
		b.Fatal(err)
	}
	h := newTestHandler(b, Config{}, Deps{Pressure: g.Pressure(), Budget: g.Budget(), Memory: g.Guard(), Gate: g.Gate()})
	benchServe(b, h, "GET", "/admin/budget", "Bearer "+testToken)
}

// BenchmarkUnauthorized is the cost of turning away a request without the
// token (a scanner hammering the admin port).
func BenchmarkUnauthorized(b *testing.B) {
	h := newTestHandler(b, Config{}, Deps{})
	benchServe(b, h, "GET", "/admin/transforms", "Bearer wrong")
}
