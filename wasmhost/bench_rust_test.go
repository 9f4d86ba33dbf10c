package wasmhost

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/sluicehq/sluice/internal/e2e"
)

// rustGuests builds the Rust examples (examples/rust) from source, once per
// test binary, and puts them beside the Go guests as rust-NAME, so the
// benchmarks' helpers load them by name.
func rustGuests(tb testing.TB) []string {
	tb.Helper()
	guests := make([]e2e.RustGuest, len(chainNames))
	for i, n := range chainNames {
		guests[i] = e2e.RustExample(n)
	}
	names := make([]string, len(chainNames))
	for i, path := range e2e.RustGuestFiles(tb, guests...) {
		names[i] = "rust-" + chainNames[i]
		dst := filepath.Join(guestDir, names[i]+".wasm")
		if _, err := os.Stat(dst); err == nil {
			continue
		}
		b, err := os.ReadFile(path)
		if err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	return names
}

// BenchmarkChainSerialRust is BenchmarkChainSerial with the Rust examples:
// filter, redact, route and enrich on one instance each (no sharding),
// 1,000-record batches.
func BenchmarkChainSerialRust(b *testing.B) {
	benchPipelineN(b, Config{PoolSize: 1}, benchBatch, rustGuests(b)...)
}

// BenchmarkExampleRust runs each Rust example alone on one instance, to
// place the chain's cost; BenchmarkExampleGo is the same for the Go
// examples.
func BenchmarkExampleRust(b *testing.B) {
	names := rustGuests(b)
	for i, n := range chainNames {
		b.Run(n, func(b *testing.B) { benchPipelineN(b, Config{PoolSize: 1}, benchBatch, names[i]) })
	}
}

// BenchmarkExampleGo: see BenchmarkExampleRust.
func BenchmarkExampleGo(b *testing.B) {
	for _, n := range chainNames {
		b.Run(n, func(b *testing.B) { benchPipelineN(b, Config{PoolSize: 1}, benchBatch, n) })
	}
}
