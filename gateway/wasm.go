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
	"sync/atomic"
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
	if a.cfg.MemoryLimitSet() {
		hc.PoolSize = poolSize(int64(a.cfg.MemoryLimit))
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
	if err := a.precheckTransforms(); err != nil {
		_ = stop(ctx)
		return nil, err
	}
	if err := loadTransforms(ctx, h, a.cfg.TransformsDir, int64(a.cfg.MemoryLimit), a.log, a.compileHooks()); err != nil {
		_ = stop(ctx)
		return nil, err
	}
	if err := setPipelines(h, &a.cfg); err != nil {
		_ = stop(ctx)
		return nil, err
	}
	a.proc = &tenantProcessor{host: h, recv: a.recv, single: len(a.cfg.Tenants) == 0}
	if hs := a.gov.Heap(); hs != nil {
		hs.Refresh() // count the loaded transforms' code and pools from the start
	}
	return stop, nil
}

// loadTransforms adds every .wasm of dir ("": none) to h, named by its
// file name, compiling as many at a time as the memory limit allows (see
// compileParallelism: a Go guest takes about half a second and about 40 MB
// of compiler memory). The hooks, when set, run around each transform
// added (see loadHooks).
func loadTransforms(ctx context.Context, h *wasmhost.Host, dir string, limit int64, log *slog.Logger, hooks loadHooks) error {
	if dir == "" {
		return nil
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.wasm"))
	if err != nil {
		return err
	}
	errs := make([]error, len(files))
	var (
		wg     sync.WaitGroup
		sem    = make(chan struct{}, compileParallelism(limit, len(files)))
		failed atomic.Bool
	)
	for i, f := range files {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if failed.Load() {
				return
			}
			b, err := os.ReadFile(f)
			if err != nil {
				errs[i] = err
				return
			}
			name := strings.TrimSuffix(filepath.Base(f), ".wasm")
			t := time.Now()
			if hooks.before != nil {
				hooks.before(int64(len(b)))
			}
			info, err := h.Add(ctx, name, b)
			if hooks.after != nil {
				if herr := hooks.after(int64(len(b))); err == nil {
					err = herr
				}
			}
			if err != nil {
				errs[i] = fmt.Errorf("load transform %s: %w", f, err)
				failed.Store(true)
				return
			}
			log.Info("transform loaded", "name", name, "digest", info.Digest, "duration", time.Since(t))
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// loadHooks run around each transform loadTransforms adds: before with the
// module's size, after with the same size once it is added (or failed);
// an error from after stops the loading.
type loadHooks struct {
	before func(size int64)
	after  func(size int64) error
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
