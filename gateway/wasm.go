package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/sluicehq/sluice/wasmhost"
)

// Guest call deadlines. Batches hold up to driverMaxRecords records and
// share two cores with the front door and Kafka, so the per-record
// allowance is generous: a runaway guest still stops within ~2s.
const (
	guestCallDeadline          = 100 * time.Millisecond
	guestCallDeadlinePerRecord = 200 * time.Microsecond
)

// startHost starts the WASM host shared by every line, loads the
// transforms of TransformsDir (compiled in parallel) and sets the
// configured pipelines.
func (a *App) startHost(ctx context.Context) (func(context.Context) error, error) {
	hooks := wasmhost.Hooks{
		OnCall: func(name string, s wasmhost.CallStats) {
			a.m.TransformCall(name, s.Duration)
			a.m.eventsDropped.Add(s.Dropped)
		},
		OnTrap: func(name string, _ wasmhost.TrapKind) { a.m.TransformTrap(name) },
	}
	hc := wasmhost.Config{
		Logger:                a.log.With("component", "wasmhost"),
		Hooks:                 hooks,
		CallDeadline:          guestCallDeadline,
		CallDeadlinePerRecord: guestCallDeadlinePerRecord,
		MemoryLimit:           a.cfg.guestMemory(),
	}
	if a.cfg.DataDir != "" {
		hc.DataDir = filepath.Join(a.cfg.DataDir, "wasm")
	}
	h, err := wasmhost.New(ctx, hc)
	if err != nil {
		return nil, err
	}
	a.host = h
	a.guests.Store(h) // guest memory counts from the first compiled instance
	stop := func(ctx context.Context) error { return h.Close(ctx) }
	if err := loadTransforms(ctx, h, a.cfg.TransformsDir, a.log); err != nil {
		_ = stop(ctx)
		return nil, err
	}
	if err := setPipelines(h, &a.cfg); err != nil {
		_ = stop(ctx)
		return nil, err
	}
	a.proc = &tenantProcessor{host: h, recv: a.recv, single: len(a.cfg.Tenants) == 0}
	if hs := a.gov.Heap(); hs != nil {
		hs.Refresh() // count the loaded transforms' instances from the start
	}
	return stop, nil
}

// loadTransforms adds every .wasm of dir ("": none) to h, named by its
// file name, compiling them in parallel (a Go guest takes about half a
// second each).
func loadTransforms(ctx context.Context, h *wasmhost.Host, dir string, log *slog.Logger) error {
	if dir == "" {
		return nil
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.wasm"))
	if err != nil {
		return err
	}
	errs := make([]error, len(files))
	var wg sync.WaitGroup
	for i, f := range files {
		wg.Go(func() {
			b, err := os.ReadFile(f)
			if err != nil {
				errs[i] = err
				return
			}
			name := strings.TrimSuffix(filepath.Base(f), ".wasm")
			t := time.Now()
			info, err := h.Add(ctx, name, b)
			if err != nil {
				errs[i] = fmt.Errorf("load transform %s: %w", f, err)
				return
			}
			log.Info("transform loaded", "name", name, "digest", info.Digest, "duration", time.Since(t))
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// setPipelines sets the default pipeline and each tenant's. A tenant
// without a chain in the configuration keeps the one stored in the data
// folder (set over the admin API), else gets the default chain.
func setPipelines(h *wasmhost.Host, cfg *Config) error {
	if len(cfg.Pipeline) > 0 {
		if err := h.SetPipeline(wasmhost.DefaultPipeline, cfg.Pipeline); err != nil {
			return err
		}
	}
	stored := h.Pipelines()
	for _, t := range cfg.Tenants {
		chain := t.Pipeline
		if len(chain) == 0 {
			if _, ok := stored[pipelineName(t.Name)]; ok {
				continue // a restart does not undo it unless the config names a chain
			}
			chain = cfg.Pipeline
		}
		if err := h.SetPipeline(pipelineName(t.Name), chain); err != nil {
			return err
		}
	}
	for _, s := range cfg.sources() {
		if len(s.Pipeline) > 0 {
			if err := h.SetPipeline(sourcePipeline(s), s.Pipeline); err != nil {
				return err
			}
		}
	}
	return nil
}

// guestMemory returns the linear memory of the WASM guests' live instances
// in bytes (0 before the host starts). The governor's heap source adds it
// to the Go heap, so guest memory counts against --memory-limit.
func (a *App) guestMemory() int64 {
	if h := a.guests.Load(); h != nil {
		return h.GuestMemoryBytes()
	}
	return 0
}
