package admin_test

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/valyala/fasthttp"

	"github.com/sluicehq/sluice/gateway/admin"
	"github.com/sluicehq/sluice/wasmhost"
)

// Example wires the admin API over a WASM host the way the gateway does,
// and shows a request without the token and one with it.
func Example() {
	ctx := context.Background()
	host, err := wasmhost.New(ctx, wasmhost.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		panic(err)
	}
	defer host.Close(ctx)
	reg := admin.NewHostRegistry(host, nil)
	h, err := admin.New(admin.Config{Token: "s3cret"}, admin.Deps{
		Transforms: reg,
		Pipelines:  reg,
		Logger:     slog.New(slog.DiscardHandler),
	})
	if err != nil {
		panic(err)
	}
	defer h.Close() // stops the history sampler
	// The listener: fasthttp.Server{Handler: h.ServeFastHTTP,
	// ErrorHandler: h.WriteServerError, MaxRequestBodySize: h.MaxRequestBodySize()}.
	get := func(path, token string) {
		var rc fasthttp.RequestCtx
		rc.Request.SetRequestURI(path)
		if token != "" {
			rc.Request.Header.Set("Authorization", "Bearer "+token)
		}
		h.ServeFastHTTP(&rc)
		fmt.Printf("%d %s", rc.Response.StatusCode(), rc.Response.Body())
	}
	get("/admin/pipeline", "")
	get("/admin/pipeline", "s3cret")
	// Output:
	// 401 {"error":"missing or invalid admin token","status":401}
	// 200 {"tenant":"default","transforms":[],"tenants":[],"available":true}
}
