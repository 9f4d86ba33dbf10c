package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/e2e"
)

// hashKeyEvents are redact's inputs: plain, escaped and non-ASCII
// addresses, a missing one and one that is not a string.
var hashKeyEvents = []struct{ line, email string }{
	{`{"id":"1","email":"a@b.c","ip":"10.0.0.1","ua":"x"}`, "a@b.c"},
	{`{"id":"2","email":"x\u0040y.z"}`, "x@y.z"},
	{`{"id":"3","email":"é😀@exämple.org"}`, "é😀@exämple.org"},
	{`{"id":"4"}`, ""},
	{`{"id":"5","email":7}`, ""},
}

// TestHashKeyRedact runs the Go and the Rust redact examples with a hash
// key from the environment and from a file: every email becomes the
// HMAC-SHA-256 of the address under that key (the same from both
// languages), the key shows in no log, admin answer or metric, and without
// a key the digest is the plain SHA-256 and the start warns that it is
// unkeyed.
func TestHashKeyRedact(t *testing.T) {
	const key = "k3y-of-the-test-0123456789abcdef"
	goDir := t.TempDir()
	buildExamples(t, goDir, "redact")
	rustDir := chainDir(t, e2e.RustGuestFiles(t, e2e.RustExample("redact")), nil)
	keyFile := filepath.Join(t.TempDir(), "hash.key")
	mustWrite(t, keyFile, []byte(key+"\n"))

	var body strings.Builder
	for _, e := range hashKeyEvents {
		body.WriteString(e.line + "\n")
	}
	run := func(name, dir string, env []string, args ...string) []string {
		t.Helper()
		p := &proc{e2e.Start(t, e2e.Options{Stdout: true, Env: env},
			append([]string{"--sink", "stdout", "--transforms", dir, "--pipeline", "redact", "--admin-token", "tok"}, args...)...)}
		r := do(t, "POST", p.URL("/v1/events"), []byte(body.String()), "Content-Type", "application/x-ndjson")
		if r.code != 200 || !strings.Contains(r.body, `"accepted":5`) {
			t.Fatalf("%s: %d %s", name, r.code, r.body)
		}
		var served strings.Builder
		for _, u := range []string{"/admin/transforms", "/admin/transforms/redact", "/admin/pipeline", "/admin/budget", "/admin/status", "/readyz", "/metrics"} {
			served.WriteString(do(t, "GET", p.AdminURL(u), nil, "Authorization", "Bearer tok").body)
		}
		if strings.Contains(served.String(), key) {
			t.Fatalf("%s: the admin listener serves the hash key", name)
		}
		var out []string
		deadline := time.Now().Add(10 * time.Second)
		for len(out) < len(hashKeyEvents) {
			out = out[:0]
			for l := range strings.SplitSeq(p.Log.String(), "\n") {
				if strings.HasPrefix(l, `{"id"`) {
					out = append(out, l)
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d records on stdout:\n%s", name, len(out), p.Log.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
		if code := p.stop(t); code != 0 {
			t.Fatalf("%s: exit code %d", name, code)
		}
		log := p.Log.String()
		if strings.Contains(log, key) {
			t.Fatalf("%s: the hash key is in the output:\n%s", name, log)
		}
		if unkeyed := strings.Contains(log, "unkeyed SHA-256"); unkeyed != (len(env) == 0 && len(args) == 0) {
			t.Fatalf("%s: the unkeyed warning logged %v:\n%s", name, unkeyed, log)
		}
		slices.Sort(out)
		return out
	}
	goEnv := run("go, key from the environment", goDir, []string{"SLUICE_HASH_KEY=" + key})
	rustEnv := run("rust, key from the environment", rustDir, []string{"SLUICE_HASH_KEY=" + key})
	goFile := run("go, key from a file", goDir, nil, "--hash-key-file", keyFile)
	plain := run("go, no key", goDir, nil)
	if !slices.Equal(goEnv, rustEnv) || !slices.Equal(goEnv, goFile) {
		t.Fatalf("outputs differ:\n go (env):  %q\n rust (env): %q\n go (file): %q", goEnv, rustEnv, goFile)
	}
	check := func(what string, out []string, digest func(string) string) {
		t.Helper()
		for i, e := range hashKeyEvents {
			var got, in map[string]any
			if err := json.Unmarshal([]byte(out[i]), &got); err != nil {
				t.Fatal(err)
			}
			_ = json.Unmarshal([]byte(e.line), &in)
			delete(in, "ip")
			delete(in, "ua")
			if e.email != "" {
				in["email"] = digest(e.email)
			}
			if a, b := mustJSON(t, got), mustJSON(t, in); a != b {
				t.Fatalf("%s: event %d: %s, want %s", what, i, a, b)
			}
		}
	}
	check("keyed", goEnv, func(s string) string {
		m := hmac.New(sha256.New, []byte(key))
		m.Write([]byte(s))
		return hex.EncodeToString(m.Sum(nil))
	})
	check("unkeyed", plain, func(s string) string {
		sum := sha256.Sum256([]byte(s))
		return hex.EncodeToString(sum[:])
	})

	// A key that is too short is refused at start, without echoing it.
	cmd := exec.Command(e2e.Sluice(t), "run", "--sink", "discard", "--http", "127.0.0.1:0", "--admin", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "SLUICE_HASH_KEY=tooshort")
	out, err := cmd.CombinedOutput()
	if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 2 || !strings.Contains(string(out), "SLUICE_HASH_KEY has 8 bytes: want at least 16") ||
		strings.Contains(string(out), "tooshort") {
		t.Fatalf("a short hash key: %v\n%s", err, out)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
