package wasmhost

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// storedHost stores redact (in pipeline "secure", after filter) and filter
// (alone in pipeline "plain") in a fresh data folder, closes that host and
// returns the folder and the path of redact's module.
func storedHost(t *testing.T) (dir, blob string) {
	t.Helper()
	dir = t.TempDir()
	ctx := context.Background()
	h, err := New(ctx, Config{DataDir: dir, CacheDir: cacheDir, Logger: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	addGuests(t, h, "filter", "redact")
	if err := h.SetPipeline("secure", []string{"filter", "redact"}); err != nil {
		t.Fatal(err)
	}
	if err := h.SetPipeline("plain", []string{"filter"}); err != nil {
		t.Fatal(err)
	}
	if err := h.Close(ctx); err != nil {
		t.Fatal(err)
	}
	return dir, filepath.Join(dir, "transforms", "redact", digestOf(guest(t, "redact"))+".wasm")
}

const pii = `{"event":"click","email":"a@example.com","ip":"10.0.0.1"}`

// TestRestoreFailsClosed damages redact's stored files in each way a disk,
// an operator or an attacker can, restarts the host and checks that the
// pipeline using redact is unavailable (nothing passes through it, the
// error names redact and why), that the pipeline without it still runs,
// and that uploading redact again makes the pipeline available at once.
func TestRestoreFailsClosed(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, dir, blob string)
		want   string // in the pipeline's error
	}{
		{"truncated", func(t *testing.T, _, blob string) {
			b, _ := os.ReadFile(blob)
			write(t, blob, b[:len(b)/2])
		}, "altered or truncated"},
		{"flipped", func(t *testing.T, _, blob string) {
			b, _ := os.ReadFile(blob)
			b[len(b)/3] ^= 0xff
			write(t, blob, b)
		}, "altered or truncated"},
		{"deleted", func(t *testing.T, _, blob string) {
			if err := os.Remove(blob); err != nil {
				t.Fatal(err)
			}
		}, "is missing"},
		{"another module", func(t *testing.T, _, blob string) {
			// A valid module that is not the one uploaded: its digest does
			// not match, so it must not run in redact's place.
			write(t, blob, guest(t, "filter"))
		}, "altered or truncated"},
		{"manifest damaged", func(t *testing.T, dir, _ string) {
			write(t, filepath.Join(dir, "transforms", "redact", "manifest.json"), []byte(`{"name":"redact","cur`))
		}, "manifest redact/manifest.json is damaged"},
		{"transform folder deleted", func(t *testing.T, dir, _ string) {
			if err := os.RemoveAll(filepath.Join(dir, "transforms", "redact")); err != nil {
				t.Fatal(err)
			}
		}, `no transform "redact" is stored`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, blob := storedHost(t)
			tc.damage(t, dir, blob)
			h := newHost(t, Config{DataDir: dir})
			ctx := context.Background()

			p := h.Pipeline("secure")
			err := p.Err()
			var ue *UnavailableError
			if !errors.As(err, &ue) || !errors.Is(err, ErrUnavailable) || ue.Pipeline != "secure" || ue.Transform != "redact" ||
				!strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), `transform "redact" cannot be loaded`) {
				t.Fatalf("secure: Err() = %v; want an *UnavailableError naming redact and %q", err, tc.want)
			}
			if got := p.Transforms(); !equalStrings(got, []string{"filter", "redact"}) {
				t.Fatalf("the unavailable pipeline lost its chain: %v", got)
			}
			out, dlq, err := p.Process(ctx, jsonRecs(pii), nil)
			if !errors.As(err, &ue) || len(out) != 0 || len(dlq) != 0 {
				t.Fatalf("Process on an unavailable pipeline: %d records, %d dead letters, err %v", len(out), len(dlq), err)
			}
			if u := h.Unavailable(); len(u) != 1 || u[0].Pipeline != "secure" {
				t.Fatalf("Unavailable() = %v", u)
			}
			if h.Pipeline("plain").Err() != nil {
				t.Fatalf("plain: %v", h.Pipeline("plain").Err())
			}
			if out := processed(t, h, "plain", `{"event":"heartbeat"}`, `{"event":"x"}`); !equalStrings(out, []string{`{"event":"x"}`}) {
				t.Fatalf("plain: %q", out)
			}
			in, err := h.Get("redact")
			if tc.name == "transform folder deleted" {
				if !errors.Is(err, ErrNotFound) {
					t.Fatalf("Get of a transform whose folder is gone: %+v %v", in, err)
				}
			} else if err != nil || !strings.Contains(in.Error, tc.want) || in.Current {
				t.Fatalf("Get(redact) = %+v, %v; want its Error", in, err)
			}
			// The operator cannot swap in a chain with a transform that does
			// not load, and cannot delete it while a pipeline names it.
			err = h.SetPipeline("other", []string{"redact"})
			if tc.name == "transform folder deleted" {
				if !errors.Is(err, ErrNotFound) {
					t.Fatalf("SetPipeline with a missing transform: %v", err)
				}
			} else if !errors.Is(err, ErrNotLoaded) {
				t.Fatalf("SetPipeline with a transform that does not load: %v", err)
			}
			if err := h.Delete("redact"); tc.name != "transform folder deleted" && !errors.Is(err, ErrInUse) {
				t.Fatalf("Delete of a transform an unavailable pipeline names: %v", err)
			}

			// Upload again: available, without a restart, and redacting.
			info, err := h.Add(ctx, "redact", guest(t, "redact"))
			if err != nil {
				t.Fatal(err)
			}
			if info.Version != 1 || info.Error != "" || !info.Current {
				t.Fatalf("re-uploaded: %+v; want version 1 again, loaded", info)
			}
			if err := p.Err(); err != nil {
				t.Fatalf("after the upload: %v", err)
			}
			if out := processed(t, h, "secure", pii); len(out) != 1 || strings.Contains(out[0], "a@example.com") || strings.Contains(out[0], "10.0.0.1") {
				t.Fatalf("secure after the upload: %q", out)
			}
			if u := h.Unavailable(); len(u) != 0 {
				t.Fatalf("Unavailable() after the upload = %v", u)
			}
			// And it stays repaired across a restart.
			if err := h.Close(ctx); err != nil {
				t.Fatal(err)
			}
			h2 := newHost(t, Config{DataDir: dir})
			if err := h2.Pipeline("secure").Err(); err != nil {
				t.Fatalf("after a restart: %v", err)
			}
		})
	}
}

// TestRestoreCurrentVersionUnlisted: a manifest whose current version is not
// among its versions leaves the pipeline unavailable.
func TestRestoreCurrentVersionUnlisted(t *testing.T) {
	dir, _ := storedHost(t)
	mf := filepath.Join(dir, "transforms", "redact", "manifest.json")
	b, _ := os.ReadFile(mf)
	write(t, mf, []byte(strings.Replace(string(b), `"current": 1`, `"current": 7`, 1)))
	h := newHost(t, Config{DataDir: dir})
	if err := h.Pipeline("secure").Err(); err == nil || !strings.Contains(err.Error(), "names current version 7") {
		t.Fatalf("Err() = %v", err)
	}
	if in, err := h.Get("redact"); err != nil || in.Error == "" || in.Digest != "" {
		t.Fatalf("Get = %+v %v; want only the name and the error", in, err)
	}
	// Delete is allowed once no pipeline names it.
	if err := h.SetPipeline("secure", []string{"filter"}); err != nil {
		t.Fatal(err)
	}
	if err := h.Delete("redact"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Get("redact"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "transforms", "redact")); !os.IsNotExist(err) {
		t.Fatalf("deleted transform still on disk: %v", err)
	}
}

// TestRollbackRepairs: with the current version's bytes lost, a rollback to
// an older intact version makes the pipeline available.
func TestRollbackRepairs(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	h1, err := New(ctx, Config{DataDir: dir, CacheDir: cacheDir, Logger: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range []string{"noop", "filter"} {
		if _, err := h1.Add(ctx, "t", guest(t, g)); err != nil {
			t.Fatal(err)
		}
	}
	if err := h1.SetPipeline("p", []string{"t"}); err != nil {
		t.Fatal(err)
	}
	h1.Close(ctx)
	if err := os.Remove(filepath.Join(dir, "transforms", "t", digestOf(guest(t, "filter"))+".wasm")); err != nil {
		t.Fatal(err)
	}
	h := newHost(t, Config{DataDir: dir})
	if h.Pipeline("p").Err() == nil {
		t.Fatal("pipeline available with its current version's module gone")
	}
	back, err := h.Rollback(ctx, "t")
	if err != nil || back.Version != 1 {
		t.Fatalf("rollback: %+v %v", back, err)
	}
	if err := h.Pipeline("p").Err(); err != nil {
		t.Fatal(err)
	}
	if out := processed(t, h, "p", `{"event":"heartbeat"}`); len(out) != 1 {
		t.Fatalf("v1 (noop) should keep the heartbeat: %q", out)
	}
}

// TestPipelineAllowUnavailable: a chain configured with a transform that
// does not exist yet is unavailable, and available once it is added; a
// transform marked unavailable (its start-up module failed to load) makes
// its pipelines unavailable even though an older version is stored.
func TestPipelineAllowUnavailable(t *testing.T) {
	h := newHost(t, Config{})
	ctx := context.Background()
	addGuests(t, h, "filter")
	if err := h.SetPipeline("p", []string{"filter", "later"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("strict SetPipeline with an unknown transform: %v", err)
	}
	if _, ok := h.Pipelines()["p"]; ok {
		t.Fatal("a refused SetPipeline created the pipeline")
	}
	if err := h.SetPipelineAllowUnavailable("p", []string{"filter", "later"}); err != nil {
		t.Fatal(err)
	}
	var ue *UnavailableError
	if err := h.Pipeline("p").Err(); !errors.As(err, &ue) || ue.Transform != "later" || !errors.Is(ue.Err, ErrNotFound) {
		t.Fatalf("Err() = %v", err)
	}
	if _, err := h.Add(ctx, "later", guest(t, "noop")); err != nil {
		t.Fatal(err)
	}
	if err := h.Pipeline("p").Err(); err != nil {
		t.Fatalf("after adding the missing transform: %v", err)
	}

	h.MarkUnavailable("filter", errors.New("load transform filter.wasm: bad magic"))
	if err := h.Pipeline("p").Err(); !errors.As(err, &ue) || ue.Transform != "filter" || !strings.Contains(err.Error(), "bad magic") {
		t.Fatalf("after MarkUnavailable: %v", err)
	}
	if in, _ := h.Get("filter"); !strings.Contains(in.Error, "bad magic") {
		t.Fatalf("Get after MarkUnavailable: %+v", in)
	}
	// The same bytes again load it (the stored version is not enough).
	if _, err := h.Add(ctx, "filter", guest(t, "filter")); err != nil {
		t.Fatal(err)
	}
	if err := h.Pipeline("p").Err(); err != nil {
		t.Fatalf("after adding filter again: %v", err)
	}
	if in, _ := h.Get("filter"); in.Error != "" || in.Version != 1 {
		t.Fatalf("filter after re-adding: %+v", in)
	}
	// Changing the chain is the other way out.
	h.MarkUnavailable("later", errors.New("gone"))
	if err := h.SetPipeline("p", []string{"filter"}); err != nil {
		t.Fatal(err)
	}
	if err := h.Pipeline("p").Err(); err != nil {
		t.Fatalf("after dropping the transform from the chain: %v", err)
	}
}

func write(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// processed runs docs through an existing pipeline and returns the output
// values.
func processed(t *testing.T, h *Host, pipeline string, docs ...string) []string {
	t.Helper()
	out, _, err := h.Pipeline(pipeline).Process(context.Background(), jsonRecs(docs...), nil)
	if err != nil {
		t.Fatal(err)
	}
	return values(out)
}
