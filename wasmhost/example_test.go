package wasmhost_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/sluicehq/sluice/engine"
	"github.com/sluicehq/sluice/wasmhost"
)

// A Host validates every module it is given: bytes that are not a
// WebAssembly module are rejected before anything runs. An empty pipeline
// passes records through untouched.
func Example() {
	ctx := context.Background()
	h, err := wasmhost.New(ctx, wasmhost.Config{})
	if err != nil {
		panic(err)
	}
	defer h.Close(ctx)

	_, err = h.Add(ctx, "filter", []byte("not wasm"))
	fmt.Println(errors.Is(err, wasmhost.ErrInvalidModule))
	fmt.Println(err)

	out, _, _ := h.Pipeline(wasmhost.DefaultPipeline).Process(ctx,
		[]engine.Record{{Value: []byte(`{"event":"click"}`)}}, nil)
	fmt.Println(string(out[0].Value))

	err = h.SetPipeline(wasmhost.DefaultPipeline, []string{"filter"})
	fmt.Println(errors.Is(err, wasmhost.ErrNotFound))
	// Output:
	// true
	// wasmhost: invalid transform module: "filter" is not a WebAssembly module (bad magic or version header)
	// {"event":"click"}
	// true
}
