package e2e

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Environment variables that name the Rust toolchain RustToolchain uses.
const (
	// CargoEnv names the cargo binary (default: /usr/bin/cargo when it
	// exists, else cargo on PATH).
	CargoEnv = "SLUICE_CARGO"
	// RustcEnv names the rustc binary cargo runs (default: /usr/bin/rustc
	// when it exists, else rustc on PATH). It must have the wasm32-wasi
	// target.
	RustcEnv = "SLUICE_RUSTC"
)

// RustTarget is the target Rust guests are built for.
const RustTarget = "wasm32-wasi"

// ErrNoRust is returned when no cargo or rustc is found.
var ErrNoRust = errors.New("e2e: no Rust toolchain (apt-get install rustc cargo libstd-rust-dev-wasm32, or set " + CargoEnv + " and " + RustcEnv + ")")

// RustGuest is a transform built from Rust source: a cdylib crate built with
// `cargo build --offline --release --target wasm32-wasi`.
type RustGuest struct {
	// Name is the crate's package name (a "-" becomes "_" in the file
	// cargo writes); it is built into Name.wasm.
	Name string
	// Dir is the folder cargo runs in, relative to the module root: the
	// crate, or the workspace that has it as a member (such as
	// "examples/rust"). Its .cargo/config.toml applies.
	Dir string
	// NoDefaultFeatures builds the crate with --no-default-features.
	NoDefaultFeatures bool
}

// RustExample is the Rust example transform name of examples/rust.
func RustExample(name string) RustGuest { return RustGuest{Name: name, Dir: "examples/rust"} }

// RustToolchain returns the cargo binary and the environment to run it
// with (RUSTC and RUSTDOC set to the toolchain's). Debian's toolchain in
// /usr/bin comes first: a rustup toolchain earlier on PATH may lack the
// wasm32-wasi target.
func RustToolchain() (cargo string, env []string, err error) {
	pick := func(envName, debian, name string) (string, error) {
		if v := os.Getenv(envName); v != "" {
			return v, nil
		}
		if _, err := os.Stat(debian); err == nil {
			return debian, nil
		}
		p, err := exec.LookPath(name)
		if err != nil {
			return "", ErrNoRust
		}
		return p, nil
	}
	if cargo, err = pick(CargoEnv, "/usr/bin/cargo", "cargo"); err != nil {
		return "", nil, err
	}
	rustc, err := pick(RustcEnv, "/usr/bin/rustc", "rustc")
	if err != nil {
		return "", nil, err
	}
	env = append(os.Environ(), "RUSTC="+rustc)
	if doc := filepath.Join(filepath.Dir(rustc), "rustdoc"); fileExists(doc) {
		env = append(env, "RUSTDOC="+doc)
	}
	return cargo, env, nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// BuildRustGuests builds every guest with cargo (one cargo run per Dir and
// feature choice, with targetDir as CARGO_TARGET_DIR) and copies each module
// to out/NAME.wasm (out is made if missing; guests of one Name overwrite
// each other there).
func BuildRustGuests(out, targetDir string, guests ...RustGuest) error {
	root, err := Root()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	cargo, env, err := RustToolchain()
	if err != nil {
		return err
	}
	env = append(env, "CARGO_TARGET_DIR="+targetDir)
	// One cargo run per folder and feature choice, in order.
	type run struct {
		dir   string
		noDef bool
	}
	var runs []run
	names := map[run][]string{}
	for _, g := range guests {
		r := run{g.Dir, g.NoDefaultFeatures}
		if names[r] == nil {
			runs = append(runs, r)
		}
		names[r] = append(names[r], g.Name)
	}
	for _, r := range runs {
		args := []string{"build", "--offline", "--release", "--target", RustTarget}
		if r.noDef {
			args = append(args, "--no-default-features")
		}
		for _, n := range names[r] {
			args = append(args, "-p", n)
		}
		cmd := exec.Command(cargo, args...)
		cmd.Dir = filepath.Join(root, filepath.FromSlash(r.dir))
		cmd.Env = env
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("build Rust guests %s in %s: %v\n%s", strings.Join(names[r], ", "), r.dir, err, b)
		}
		for _, n := range names[r] {
			built := filepath.Join(targetDir, RustTarget, "release", strings.ReplaceAll(n, "-", "_")+".wasm")
			b, err := os.ReadFile(built)
			if err != nil {
				return fmt.Errorf("build Rust guest %s: %w", n, err)
			}
			if err := os.WriteFile(filepath.Join(out, n+".wasm"), b, 0o644); err != nil {
				return err
			}
		}
	}
	return nil
}

// rustBuilds are the Rust guests a test binary built, by Dir and Name.
var rustBuilds struct {
	mu    sync.Mutex
	paths map[RustGuest]string
}

// RustGuestFiles returns the built module of each Rust guest, in order.
// Guests are built once per test binary (all missing ones in one cargo run
// per Dir), each alone in its own folder of the scratch folder, so
// filepath.Dir of its path can serve as a --transforms folder. It fails the
// test when the toolchain is missing or a build fails.
func RustGuestFiles(tb testing.TB, guests ...RustGuest) []string {
	tb.Helper()
	dir, err := scratch()
	if err != nil {
		tb.Fatal(err)
	}
	rustBuilds.mu.Lock()
	defer rustBuilds.mu.Unlock()
	if rustBuilds.paths == nil {
		rustBuilds.paths = map[RustGuest]string{}
	}
	var missing []RustGuest
	for _, g := range guests {
		if _, ok := rustBuilds.paths[g]; !ok {
			missing = append(missing, g)
		}
	}
	for len(missing) > 0 {
		// Guests of one Name (built with other features) go in later runs.
		var now, later []RustGuest
		seen := map[string]bool{}
		for _, g := range missing {
			if seen[g.Name] {
				later = append(later, g)
				continue
			}
			seen[g.Name] = true
			now = append(now, g)
		}
		start := time.Now()
		out := filepath.Join(dir, "rust-build")
		if err := BuildRustGuests(out, filepath.Join(dir, "cargo-target"), now...); err != nil {
			tb.Fatal(err)
		}
		for _, g := range now {
			own := filepath.Join(dir, "rust-guests", fmt.Sprintf("%d-%s", len(rustBuilds.paths), g.Name))
			if err := os.MkdirAll(own, 0o755); err != nil {
				tb.Fatal(err)
			}
			p := filepath.Join(own, g.Name+".wasm")
			if err := os.Rename(filepath.Join(out, g.Name+".wasm"), p); err != nil {
				tb.Fatal(err)
			}
			rustBuilds.paths[g] = p
		}
		tb.Logf("built Rust guests %v in %v", now, time.Since(start).Round(time.Millisecond))
		missing = later
	}
	paths := make([]string, len(guests))
	for i, g := range guests {
		paths[i] = rustBuilds.paths[g]
	}
	return paths
}
