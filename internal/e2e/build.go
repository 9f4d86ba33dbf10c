package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// BinaryEnv names an environment variable: when set, Sluice returns its
// value (a prebuilt sluice binary) instead of building one.
const BinaryEnv = "SLUICE_TEST_BINARY"

// Root returns the module root: the nearest folder at or above the working
// directory that holds a go.mod.
func Root() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		up := filepath.Dir(dir)
		if up == dir {
			return "", ErrNoModule
		}
		dir = up
	}
}

// GoEnv is the environment for child go commands: the test's own, without
// -race in GOFLAGS (wasm has no race detector, and the product under test
// is built as it ships).
func GoEnv() []string {
	env := os.Environ()
	for i, kv := range env {
		if v, ok := strings.CutPrefix(kv, "GOFLAGS="); ok {
			var keep []string
			for _, f := range strings.Fields(v) {
				if f != "-race" && f != "--race" && f != "-race=true" {
					keep = append(keep, f)
				}
			}
			env[i] = "GOFLAGS=" + strings.Join(keep, " ")
		}
	}
	return env
}

// shared is the state one test binary keeps across tests: its scratch
// folder, the built binary and guests, and every process started.
var shared struct {
	mu    sync.Mutex
	dir   string
	procs []*Proc

	browsers  []*Browser
	artifacts string // ArtifactsDir's default root, kept after the tests

	binOnce sync.Once
	bin     string
	binErr  error

	guests sync.Map // guest name → *guestBuild
}

// scratch returns the test binary's scratch folder, made on first use and
// removed by Main.
func scratch() (string, error) {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.dir == "" {
		d, err := os.MkdirTemp("", "sluice-e2e-")
		if err != nil {
			return "", err
		}
		shared.dir = d
	}
	return shared.dir, nil
}

// BuildSluice builds ./cmd/sluice of the module into out/sluice without
// -race and with CGO_ENABLED=0 (as the release image builds it) and
// returns its path.
func BuildSluice(out string) (string, error) {
	root, err := Root()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(out, "sluice")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/sluice")
	cmd.Dir = root
	cmd.Env = append(GoEnv(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build sluice: %v\n%s", err, b)
	}
	return bin, nil
}

// Sluice returns the sluice binary under test: the value of BinaryEnv when
// set, otherwise the binary BuildSluice built on the first call of this
// test binary.
func Sluice(tb testing.TB) string {
	tb.Helper()
	shared.binOnce.Do(func() {
		if bin := os.Getenv(BinaryEnv); bin != "" {
			shared.bin = bin
			return
		}
		dir, err := scratch()
		if err != nil {
			shared.binErr = err
			return
		}
		start := time.Now()
		shared.bin, shared.binErr = BuildSluice(dir)
		if shared.binErr == nil {
			tb.Logf("built %s in %v", shared.bin, time.Since(start).Round(time.Millisecond))
		}
	})
	if shared.binErr != nil {
		tb.Fatal(shared.binErr)
	}
	return shared.bin
}

// Guest is a transform built from Go source with GOOS=wasip1 GOARCH=wasm
// -buildmode=c-shared.
type Guest struct {
	// Name is the module's name; it is built into Name.wasm.
	Name string
	// Dir is the Go module folder of its source, relative to the module
	// root (such as "examples" or "wasmhost/testdata/guests").
	Dir string
	// Pkg is the package to build inside Dir; "" means "./" + Name.
	Pkg string
}

// Example is the example transform name of examples/.
func Example(name string) Guest { return Guest{Name: name, Dir: "examples"} }

// buildGuest builds g into out/g.Name.wasm.
func buildGuest(root, out string, g Guest) error {
	pkg := g.Pkg
	if pkg == "" {
		pkg = "./" + g.Name
	}
	cmd := exec.Command("go", "build", "-trimpath", "-buildmode=c-shared", "-o", filepath.Join(out, g.Name+".wasm"), pkg)
	cmd.Dir = filepath.Join(root, filepath.FromSlash(g.Dir))
	cmd.Env = append(GoEnv(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0", "GOWORK=off")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build guest %s: %v\n%s", g.Name, err, b)
	}
	return nil
}

// parallel runs f(i) for i in [0, n), GOMAXPROCS at a time, and returns
// the first error by index.
func parallel(n int, f func(i int) error) error {
	errs := make([]error, n)
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			errs[i] = f(i)
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// BuildGuests builds every guest into the folder out (made if missing),
// several at a time, and returns the first error. It builds afresh on
// every call; GuestFiles builds each guest once per test binary.
func BuildGuests(out string, guests ...Guest) error {
	root, err := Root()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	return parallel(len(guests), func(i int) error { return buildGuest(root, out, guests[i]) })
}

type guestBuild struct {
	once sync.Once
	path string
	err  error
}

// GuestFiles returns the built module of each guest, in order. Each guest
// is built once per test binary (several at a time), alone in its own
// folder of the scratch folder, so filepath.Dir of its path can serve as a
// --transforms folder. Guests are told apart by Name.
func GuestFiles(tb testing.TB, guests ...Guest) []string {
	tb.Helper()
	root, err := Root()
	if err != nil {
		tb.Fatal(err)
	}
	dir, err := scratch()
	if err != nil {
		tb.Fatal(err)
	}
	builds := make([]*guestBuild, len(guests))
	for i, g := range guests {
		v, _ := shared.guests.LoadOrStore(g.Name, &guestBuild{})
		builds[i] = v.(*guestBuild)
	}
	err = parallel(len(guests), func(i int) error {
		g, b := guests[i], builds[i]
		b.once.Do(func() {
			out := filepath.Join(dir, "guests", g.Name)
			if b.err = os.MkdirAll(out, 0o755); b.err != nil {
				return
			}
			start := time.Now()
			if b.err = buildGuest(root, out, g); b.err == nil {
				b.path = filepath.Join(out, g.Name+".wasm")
				tb.Logf("built guest %s in %v", g.Name, time.Since(start).Round(time.Millisecond))
			}
		})
		return b.err
	})
	if err != nil {
		tb.Fatal(err)
	}
	paths := make([]string, len(builds))
	for i, b := range builds {
		paths[i] = b.path
	}
	return paths
}

// Scratch returns the test binary's scratch folder (where Sluice and
// GuestFiles build), shared by its tests and removed by Main.
func Scratch(tb testing.TB) string {
	tb.Helper()
	dir, err := scratch()
	if err != nil {
		tb.Fatal(err)
	}
	return dir
}
