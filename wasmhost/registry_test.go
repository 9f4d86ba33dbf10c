package wasmhost

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestVersionsAndRollback(t *testing.T) {
	h := newHost(t, Config{DataDir: t.TempDir()})
	ctx := context.Background()
	filter, noop := guest(t, "filter"), guest(t, "noop")
	i1, err := h.Add(ctx, "t", filter)
	if err != nil {
		t.Fatal(err)
	}
	if i1.Version != 1 || i1.Digest != digestOf(filter) || i1.Size != len(filter) || i1.ABIVersion != ABIVersion || !i1.Current {
		t.Fatalf("info %+v", i1)
	}
	if i1.Exports[0] != "_initialize" || len(i1.Exports) != 3 {
		t.Fatalf("exports %v", i1.Exports)
	}
	// The same bytes again: no new version.
	if again, _ := h.Add(ctx, "t", filter); again.Version != 1 {
		t.Fatalf("re-adding the same bytes made version %d", again.Version)
	}
	if err := h.SetPipeline("p", []string{"t"}); err != nil {
		t.Fatal(err)
	}
	run := func() int {
		out, _, err := h.Pipeline("p").Process(ctx, jsonRecs(`{"event":"heartbeat"}`), nil)
		if err != nil {
			t.Fatal(err)
		}
		return len(out)
	}
	if run() != 0 {
		t.Fatal("v1 (filter) did not drop")
	}
	i2, err := h.Add(ctx, "t", noop)
	if err != nil || i2.Version != 2 {
		t.Fatalf("v2: %+v %v", i2, err)
	}
	if run() != 1 {
		t.Fatal("pipeline did not switch to v2 (noop)")
	}
	vs, _ := h.Versions("t")
	if len(vs) != 2 || vs[0].Current || !vs[1].Current {
		t.Fatalf("versions %+v", vs)
	}
	back, err := h.Rollback(ctx, "t")
	if err != nil || back.Version != 1 {
		t.Fatalf("rollback: %+v %v", back, err)
	}
	if run() != 0 {
		t.Fatal("pipeline did not roll back to v1")
	}
	if _, err := h.Rollback(ctx, "t"); !errors.Is(err, ErrNoPrevious) {
		t.Fatalf("second rollback: %v", err)
	}
	// A new upload after a rollback gets the next number.
	i3, err := h.Add(ctx, "t", guest(t, "route"))
	if err != nil || i3.Version != 3 {
		t.Fatalf("v3: %+v %v", i3, err)
	}
	if _, err := h.Rollback(ctx, "missing"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("rollback missing: %v", err)
	}
}

func TestKeepVersionsPrunes(t *testing.T) {
	dir := t.TempDir()
	h := newHost(t, Config{DataDir: dir, KeepVersions: 2})
	ctx := context.Background()
	for _, g := range []string{"filter", "noop", "route"} {
		if _, err := h.Add(ctx, "t", guest(t, g)); err != nil {
			t.Fatal(err)
		}
	}
	vs, _ := h.Versions("t")
	if len(vs) != 2 || vs[0].Version != 2 || vs[1].Version != 3 {
		t.Fatalf("versions %+v", vs)
	}
	if _, err := os.Stat(filepath.Join(dir, "transforms", "t", digestOf(guest(t, "filter"))+".wasm")); !os.IsNotExist(err) {
		t.Fatalf("pruned blob still on disk: %v", err)
	}
}

func TestDeleteInUse(t *testing.T) {
	dir := t.TempDir()
	h := newHost(t, Config{DataDir: dir})
	addGuests(t, h, "filter")
	if err := h.SetPipeline(DefaultPipeline, []string{"filter"}); err != nil {
		t.Fatal(err)
	}
	if err := h.Delete("filter"); !errors.Is(err, ErrInUse) {
		t.Fatalf("delete in use: %v", err)
	}
	if err := h.SetPipeline("tenant-x", []string{"filter"}); err != nil {
		t.Fatal(err)
	}
	if err := h.SetPipeline(DefaultPipeline, nil); err != nil {
		t.Fatal(err)
	}
	if err := h.Delete("filter"); !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), `"tenant-x"`) {
		t.Fatalf("delete in use by tenant-x: %v", err)
	}
	if err := h.DeletePipeline("tenant-x"); err != nil {
		t.Fatal(err)
	}
	if err := h.DeletePipeline("tenant-x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("delete missing pipeline: %v", err)
	}
	if err := h.Delete("filter"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Get("filter"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get deleted: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "transforms", "filter")); !os.IsNotExist(err) {
		t.Fatalf("deleted transform still on disk: %v", err)
	}
	if err := h.SetPipeline("p", []string{"filter"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("pipeline with a deleted transform: %v", err)
	}
}

func TestRestartRestoresTransformsAndPipelines(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	h1, err := New(ctx, Config{DataDir: dir, CacheDir: cacheDir, Logger: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range []string{"filter", "noop"} {
		if _, err := h1.Add(ctx, "t", guest(t, g)); err != nil {
			t.Fatal(err)
		}
	}
	addGuests(t, h1, "enrich")
	if err := h1.SetPipeline("tenant-a", []string{"t", "enrich"}); err != nil {
		t.Fatal(err)
	}
	if _, err := h1.Rollback(ctx, "t"); err != nil { // current: v1 = filter
		t.Fatal(err)
	}
	if err := h1.Close(ctx); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	h2 := newHost(t, Config{DataDir: dir})
	t.Logf("restart with 2 transforms: %v", time.Since(start))
	list := h2.List()
	if len(list) != 2 || list[0].Name != "enrich" || list[1].Name != "t" || list[1].Version != 1 {
		t.Fatalf("restored %+v", list)
	}
	if vs, _ := h2.Versions("t"); len(vs) != 2 {
		t.Fatalf("versions after restart %+v", vs)
	}
	if got := h2.Pipelines()["tenant-a"]; len(got) != 2 || got[0] != "t" || got[1] != "enrich" {
		t.Fatalf("pipelines %v", h2.Pipelines())
	}
	out, _, err := h2.Pipeline("tenant-a").Process(ctx, jsonRecs(`{"event":"heartbeat"}`, `{"event":"x"}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := values(out); !equalStrings(got, []string{`{"event":"x","region":"other"}`}) {
		t.Fatalf("out %q", got)
	}
	// Versions not compiled at start compile on rollback... and forward
	// again by upload.
	if _, err := h2.Add(ctx, "t", guest(t, "noop")); err != nil {
		t.Fatal(err)
	}
}

// TestSwapUnderLoad hammers a pipeline from many goroutines while its
// transform flips between two versions and the pipeline itself is
// replaced. Every batch must see exactly one version: all heartbeats
// dropped (filter) or all kept (noop), never a mix and never an error.
func TestSwapUnderLoad(t *testing.T) {
	// A generous deadline: the test overloads two cores on purpose, and a
	// wall-clock deadline would otherwise dead-letter a descheduled call.
	withShards(t, 32, 2)
	h := newHost(t, Config{PoolSize: 4, CallDeadline: 10 * time.Second})
	ctx := context.Background()
	filter, noop := guest(t, "filter"), guest(t, "noop")
	if _, err := h.Add(ctx, "t", filter); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Add(ctx, "u", noop); err != nil {
		t.Fatal(err)
	}
	if err := h.SetPipeline("p", []string{"t"}); err != nil {
		t.Fatal(err)
	}
	p := h.Pipeline("p")
	// Half the workers send batches big enough to be sharded.
	const workers, minBatches = 6, 10
	var sawDrop, sawKeep atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, workers)
	done := make(chan struct{})
	for w := 0; w < workers; w++ {
		wg.Add(1)
		size := 20
		if w%2 == 1 {
			size = 300
		}
		go func() {
			defer wg.Done()
			docs := make([]string, size)
			for i := range docs {
				docs[i] = `{"event":"heartbeat"}`
			}
			for b := 0; ; b++ {
				if b >= minBatches {
					select {
					case <-done:
						return
					default:
					}
				}
				out, dlq, err := p.Process(ctx, jsonRecs(docs...), nil)
				switch {
				case err != nil:
					errc <- err
					return
				case len(dlq) != 0:
					errc <- fmt.Errorf("unexpected dead letters: %q", dlqReasons(dlq))
					return
				case len(out) == 0:
					sawDrop.Add(1)
				case len(out) == size:
					sawKeep.Add(1)
				default:
					errc <- errors.New("a batch saw two versions")
					return
				}
			}
		}()
	}
	// Readers of the registry run alongside (for the race detector).
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			h.List()
			h.Versions("t")
			h.Pipelines()
			p.Transforms()
		}
	}()
	go func() {
		defer close(done)
		for i := 0; i < 12; i++ {
			var err error
			switch i % 4 {
			case 0:
				_, err = h.Add(ctx, "t", noop)
			case 1:
				_, err = h.Rollback(ctx, "t")
			case 2:
				err = h.SetPipeline("p", []string{"u"})
			case 3:
				err = h.SetPipeline("p", []string{"t"})
			}
			if err != nil {
				errc <- err
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	wg.Wait()
	<-done
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	if sawDrop.Load() == 0 || sawKeep.Load() == 0 {
		t.Fatalf("batches on filter %d, on noop %d: the swaps were not exercised", sawDrop.Load(), sawKeep.Load())
	}
	t.Logf("batches on filter %d, on noop %d", sawDrop.Load(), sawKeep.Load())
}
