package admin_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// guests are the .wasm modules the tests upload, built once per test
// binary from source: the example transforms, this package's test guest
// (testdata/guests/dropall) and the wasmhost's hostile guests.
var guests struct {
	dir  string
	once sync.Once
	err  error
}

// repoRoot is the module root, two levels up from gateway/admin.
func repoRoot() string {
	wd, _ := os.Getwd()
	return filepath.Clean(filepath.Join(wd, "..", ".."))
}

// guestPath returns the built module of guest name (building every guest
// on first use): filter, route, redact, dropall, wrongabi, forbidden,
// trapper.
func guestPath(tb testing.TB, name string) string {
	tb.Helper()
	guests.once.Do(func() { guests.err = buildGuests() })
	if guests.err != nil {
		tb.Fatal(guests.err)
	}
	return filepath.Join(guests.dir, name+".wasm")
}

func guestBytes(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(guestPath(tb, name))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func buildGuests() error {
	root := repoRoot()
	jobs := []struct{ dir, pkg, name string }{
		{filepath.Join(root, "examples"), "./filter", "filter"},
		{filepath.Join(root, "examples"), "./route", "route"},
		{filepath.Join(root, "examples"), "./redact", "redact"},
		{filepath.Join(root, "gateway", "admin", "testdata", "guests"), "./dropall", "dropall"},
		// The wasmhost's hostile test guests.
		{filepath.Join(root, "wasmhost", "testdata", "guests"), "./wrongabi", "wrongabi"},
		{filepath.Join(root, "wasmhost", "testdata", "guests"), "./forbidden", "forbidden"},
		{filepath.Join(root, "wasmhost", "testdata", "guests"), "./trapper", "trapper"},
	}
	errs := make(chan error, len(jobs))
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	for _, j := range jobs {
		go func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			cmd := exec.Command("go", "build", "-trimpath", "-buildmode=c-shared", "-o", filepath.Join(guests.dir, j.name+".wasm"), j.pkg)
			cmd.Dir = j.dir
			cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
			if out, err := cmd.CombinedOutput(); err != nil {
				errs <- fmt.Errorf("build guest %s: %v\n%s", j.name, err, out)
				return
			}
			errs <- nil
		}()
	}
	for range jobs {
		if err := <-errs; err != nil {
			return err
		}
	}
	return nil
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sluice-admin-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	guests.dir = dir
	code := m.Run()
	stopBinaries()
	os.RemoveAll(dir)
	os.Exit(code)
}
