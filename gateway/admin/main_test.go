package admin_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/sluicehq/sluice/internal/e2e"
)

// guests are the .wasm modules the tests upload, built from source once
// per test binary on first use: the example transforms, this package's
// test guest (testdata/guests/dropall) and the wasmhost's hostile guests.
var guests = []e2e.Guest{
	e2e.Example("filter"),
	e2e.Example("route"),
	e2e.Example("redact"),
	e2e.Example("enrich"),
	{Name: "dropall", Dir: "gateway/admin/testdata/guests"},
	{Name: "wrongabi", Dir: "wasmhost/testdata/guests"},
	{Name: "forbidden", Dir: "wasmhost/testdata/guests"},
	{Name: "trapper", Dir: "wasmhost/testdata/guests"},
}

// guestPath returns the built module of guest name (building every guest
// on first use): filter, route, redact, enrich, dropall, wrongabi,
// forbidden, trapper.
func guestPath(tb testing.TB, name string) string {
	tb.Helper()
	paths := e2e.GuestFiles(tb, guests...)
	for i, g := range guests {
		if g.Name == name {
			return paths[i]
		}
	}
	tb.Fatalf("no test guest %q", name)
	return ""
}

func guestBytes(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(guestPath(tb, name))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// examplesDir returns a --transforms folder holding the four example
// transforms.
func examplesDir(tb testing.TB) string {
	tb.Helper()
	dir := tb.TempDir()
	for _, name := range []string{"filter", "redact", "route", "enrich"} {
		if err := os.WriteFile(filepath.Join(dir, name+".wasm"), guestBytes(tb, name), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	return dir
}

func TestMain(m *testing.M) { os.Exit(e2e.Main(m)) }
