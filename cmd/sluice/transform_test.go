package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/internal/e2e"
)

// run runs a command in dir and fails the test with its output on error.
func runIn(t *testing.T, dir string, env []string, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir, cmd.Env = dir, env
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s in %s: %v\n%s", name, strings.Join(args, " "), dir, err, b)
	}
}

// initTransformT runs `sluice transform init` through doMain.
func initTransformT(t *testing.T, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	if code := doMain(append([]string{"transform", "init"}, args...), &out, &errb); code != 0 {
		t.Fatalf("transform init %v: exit %d: %s", args, code, errb.String())
	}
	return out.String()
}

// TestTransformInit scaffolds a Go and a Rust transform, runs each
// project's own test, builds each as its README says, uploads both to the
// real binary and dry-runs them over its admin API on the sample events.
func TestTransformInit(t *testing.T) {
	root := t.TempDir()
	goDir, rustDir := filepath.Join(root, "hello-go"), filepath.Join(root, "hello-rust")
	// The Go SDK is found above the working folder (this checkout).
	if out := initTransformT(t, "--lang", "go", "hello-go", goDir); !strings.Contains(out, goDir) {
		t.Fatalf("init output %q does not name the folder", out)
	}
	initTransformT(t, "hello-rust", rustDir, "--lang", "rust") // flags after the arguments
	for _, f := range []string{"README.md", "go.mod", "main.go", "verdict.go", "verdict_test.go", "testdata/sample.ndjson", ".gitignore"} {
		if _, err := os.Stat(filepath.Join(goDir, f)); err != nil {
			t.Errorf("go: %v", err)
		}
	}
	for _, f := range []string{"README.md", "Cargo.toml", ".cargo/config.toml", "src/lib.rs", "testdata/sample.ndjson", ".gitignore", "vendor/sluice/Cargo.toml", "vendor/sluice/src/lib.rs"} {
		if _, err := os.Stat(filepath.Join(rustDir, f)); err != nil {
			t.Errorf("rust: %v", err)
		}
	}
	for dir, want := range map[string][]string{
		goDir:   {"GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o hello-go.wasm .", "go test ./...", "/admin/transforms/hello-go/test", "/admin/pipeline"},
		rustDir: {"cargo build --offline --release --target wasm32-wasi", "target/wasm32-wasi/release/hello_rust.wasm", "cargo test", "/admin/transforms/hello-rust/test", "/admin/pipeline"},
	} {
		readme, err := os.ReadFile(filepath.Join(dir, "README.md"))
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range want {
			if !strings.Contains(string(readme), w) {
				t.Errorf("%s/README.md lacks %q", filepath.Base(dir), w)
			}
		}
	}

	// Test and build each as its README says.
	goEnv := append(e2e.GoEnv(), "GOWORK=off", "CGO_ENABLED=0")
	runIn(t, goDir, goEnv, "go", "test", "./...")
	runIn(t, goDir, append(goEnv, "GOOS=wasip1", "GOARCH=wasm"), "go", "build", "-buildmode=c-shared", "-o", "hello-go.wasm", ".")
	cargo, rustEnv, err := e2e.RustToolchain()
	if err != nil {
		t.Fatal(err)
	}
	runIn(t, rustDir, rustEnv, cargo, "test", "--offline")
	runIn(t, rustDir, rustEnv, cargo, "build", "--offline", "--release", "--target", e2e.RustTarget)
	modules := map[string]string{
		"hello-go":   filepath.Join(goDir, "hello-go.wasm"),
		"hello-rust": filepath.Join(rustDir, "target", e2e.RustTarget, "release", "hello_rust.wasm"),
	}

	// Upload and dry-run both on the sample events through the admin API.
	p := startSluice(t, "--sink", "discard", "--admin-token", "tok")
	auth := []string{"Authorization", "Bearer tok"}
	for name, module := range modules {
		wasm, err := os.ReadFile(module)
		if err != nil {
			t.Fatal(err)
		}
		if r := do(t, "PUT", p.AdminURL("/admin/transforms/"+name), wasm, auth...); r.code/100 != 2 {
			t.Fatalf("upload %s: %d %s", name, r.code, r.body)
		}
		sample, err := os.ReadFile(filepath.Join(root, name, "testdata", "sample.ndjson"))
		if err != nil {
			t.Fatal(err)
		}
		r := do(t, "POST", p.AdminURL("/admin/transforms/"+name+"/test"), sample, auth...)
		if r.code != 200 {
			t.Fatalf("dry-run %s: %d %s", name, r.code, r.body)
		}
		var dr struct {
			Summary struct {
				Events, Kept, Dropped int
				DeadLettered          int `json:"dead_lettered"`
			} `json:"summary"`
			Events []struct {
				Decision, Reason string
			} `json:"events"`
			Records []struct {
				Value json.RawMessage `json:"value"`
			} `json:"records"`
		}
		if err := json.Unmarshal([]byte(r.body), &dr); err != nil {
			t.Fatalf("dry-run %s: %v: %s", name, err, r.body)
		}
		s := dr.Summary
		if s.Events != 3 || s.Kept != 1 || s.Dropped != 1 || s.DeadLettered != 1 || len(dr.Events) != 3 || len(dr.Records) != 1 {
			t.Fatalf("dry-run %s: %s", name, r.body)
		}
		if got, want := string(dr.Records[0].Value), `{"event":"click","user_id":"u1","geo":{"country":"DE"},"processed_by":"`+name+`"}`; got != want {
			t.Errorf("dry-run %s: record %s, want %s", name, got, want)
		}
		if e := dr.Events[2]; e.Decision != "dead_lettered" || !strings.Contains(e.Reason, name+`: no "event" field`) {
			t.Errorf("dry-run %s: third event %+v", name, e)
		}
	}
}

func TestTransformInitErrors(t *testing.T) {
	dir := t.TempDir()
	full := filepath.Join(dir, "full")
	if err := os.MkdirAll(full, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(full, "x"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"transform"}, 2, "Usage"},
		{[]string{"transform", "frob"}, 2, "unknown command"},
		{[]string{"transform", "init"}, 2, "Usage"},
		{[]string{"transform", "init", "a", "b", "c"}, 2, "Usage"},
		{[]string{"transform", "init", "--lang", "cobol", "x", filepath.Join(dir, "x")}, 1, `"cobol": want go or rust`},
		{[]string{"transform", "init", "Bad.Name", filepath.Join(dir, "y")}, 1, "name \"Bad.Name\""},
		{[]string{"transform", "init", "ok", full}, 1, "is not empty"},
		{[]string{"transform", "init", "--lang", "go", "--sdk", dir, "g", filepath.Join(dir, "g")}, 1, "no go.mod"},
	} {
		var out, errb bytes.Buffer
		if code := doMain(tc.args, &out, &errb); code != tc.code || !strings.Contains(errb.String(), tc.msg) {
			t.Errorf("%v: exit %d, %q; want %d and %q", tc.args, code, errb.String(), tc.code, tc.msg)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "x")); err == nil {
		t.Error("a failed init left a folder behind")
	}
	var out, errb bytes.Buffer
	if code := doMain([]string{"transform", "help"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "--lang") {
		t.Errorf("transform help: %d %q", code, out.String())
	}
}
