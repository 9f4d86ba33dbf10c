package wasmhost

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/sluicehq/sluice/engine"
	"github.com/sluicehq/sluice/internal/e2e"
)

// Guests are built from source once per test binary, into guestDir, and
// compiled through one shared on-disk compilation cache.
var (
	guestDir string
	cacheDir string
)

// guests are the modules the tests load, built from source.
var guests = []e2e.Guest{
	e2e.Example("filter"),
	e2e.Example("redact"),
	e2e.Example("route"),
	e2e.Example("enrich"),
	{Name: "trapper", Dir: "wasmhost/testdata/guests"},
	{Name: "looper", Dir: "wasmhost/testdata/guests"},
	{Name: "hog", Dir: "wasmhost/testdata/guests"},
	{Name: "wrongabi", Dir: "wasmhost/testdata/guests"},
	{Name: "forbidden", Dir: "wasmhost/testdata/guests"},
	{Name: "noop", Dir: "wasmhost/testdata/guests"},
	{Name: "kitchen", Dir: "wasmhost/testdata/guests"},
	{Name: "batcher", Dir: "wasmhost/testdata/guests"},
	{Name: "sequences", Dir: "wasmhost/testdata/guests"},
}

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	flag.Parse()
	if f := flag.Lookup("test.list"); f != nil && f.Value.String() != "" {
		return m.Run() // listing tests needs no guests
	}
	if cache := os.Getenv(precompileEnv); cache != "" {
		if err := precompileHere(os.Getenv("GUESTS"), cache); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return 0
	}
	dir, err := os.MkdirTemp("", "wasmhost-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	guestDir, cacheDir = filepath.Join(dir, "guests"), filepath.Join(dir, "cache")
	if err := e2e.BuildGuests(guestDir, guests...); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := precompile(guestDir, cacheDir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// precompileEnv names the cache directory when the test binary runs only
// to fill the compilation cache (see precompile).
const precompileEnv = "WASMHOST_TEST_PRECOMPILE"

// precompile fills the compilation cache with every guest. Under -race
// wazero's compiler is about 30 times slower (10–30 s per Go guest), so a
// race build runs a normal build of this same test binary to compile them:
// the cache key (module, wazero version, CPU) does not depend on the build
// mode, and a test binary reports the same wazero version either way.
func precompile(guests, cache string) error {
	if !raceEnabled {
		return nil // compiled on first use, as fast as here
	}
	bin := filepath.Join(filepath.Dir(cache), "precompile.test")
	build := exec.Command("go", "test", "-c", "-o", bin, ".")
	build.Env = e2e.GoEnv()
	if b, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("build precompiler: %v\n%s", err, b)
	}
	run := exec.Command(bin, "-test.run=^$")
	run.Env = append(os.Environ(), precompileEnv+"="+cache, "GUESTS="+guests)
	if b, err := run.CombinedOutput(); err != nil {
		return fmt.Errorf("precompile: %v\n%s", err, b)
	}
	return nil
}

// precompileHere compiles every guest of dir into cache, two at a time.
func precompileHere(dir, cache string) error {
	ctx := context.Background()
	h, err := New(ctx, Config{CacheDir: cache, Logger: quietLog})
	if err != nil {
		return err
	}
	defer h.Close(ctx)
	wasm, err := filepath.Glob(filepath.Join(dir, "*.wasm"))
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 2)
	for _, path := range wasm {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			b, err := os.ReadFile(path)
			if err != nil {
				return
			}
			v := h.newVersion(filepath.Base(path), versionMeta{}, b, &counters{})
			v.compile(ctx)
			v.close()
		}()
	}
	wg.Wait()
	return nil
}

// guest returns the bytes of a built guest.
func guest(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(guestDir, name+".wasm"))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

// newHost starts a Host for a test (shared compilation cache, quiet log
// unless cfg sets one) and closes it at cleanup.
func newHost(tb testing.TB, cfg Config) *Host {
	tb.Helper()
	if cfg.CacheDir == "" {
		cfg.CacheDir = cacheDir
	}
	if cfg.Logger == nil {
		cfg.Logger = quietLog
	}
	h, err := New(context.Background(), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { h.Close(context.Background()) })
	return h
}

// addGuests adds the named built guests under their own names.
func addGuests(tb testing.TB, h *Host, names ...string) {
	tb.Helper()
	for _, n := range names {
		if _, err := h.Add(context.Background(), n, guest(tb, n)); err != nil {
			tb.Fatalf("add %s: %v", n, err)
		}
	}
}

// jsonRecs makes JSON records from documents, tagged with their index.
func jsonRecs(docs ...string) []engine.Record {
	out := make([]engine.Record, len(docs))
	for i, d := range docs {
		out[i] = engine.Record{Value: []byte(d), Format: engine.FormatJSON, Tag: uint64(i)}
	}
	return out
}

// values returns the records' values as strings.
func values(recs []engine.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = string(r.Value)
	}
	return out
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// process runs a one-off pipeline of transforms over docs.
func process(tb testing.TB, h *Host, pipeline string, transforms []string, docs ...string) ([]engine.Record, []engine.DLQEntry) {
	tb.Helper()
	if err := h.SetPipeline(pipeline, transforms); err != nil {
		tb.Fatal(err)
	}
	out, dlq, err := h.Pipeline(pipeline).Process(context.Background(), jsonRecs(docs...), nil)
	if err != nil {
		tb.Fatal(err)
	}
	return out, dlq
}
