package gateway

import (
	"bytes"
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
// configured pipelines. A transform that cannot be loaded (a stored one
// that fails to restore, a module of TransformsDir that fails to compile,
// a name no transform has) does not stop the start: the pipelines that use
// it are unavailable (their tenants get 503 naming it, /readyz says so)
// and the others run.
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
	key, err := a.cfg.hashKey()
	if err != nil {
		return nil, err
	}
	hc.HashKey = key
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
	a.pipes = map[string]*wasmhost.Pipeline{"": h.Pipeline(wasmhost.DefaultPipeline)}
	for _, t := range a.cfg.Tenants {
		a.pipes[t.Name] = h.Pipeline(pipelineName(t.Name))
	}
	for _, u := range a.unavailablePipelines() {
		a.log.Error("pipeline unavailable: its requests get 503 until the transform is uploaded again or the pipeline changed (admin API)",
			"pipeline", u.Pipeline, "transform", u.Transform, "err", u.Err)
	}
	a.proc = &tenantProcessor{host: h, recv: a.recv, single: len(a.cfg.Tenants) == 0, pipes: a.pipes}
	if hs := a.gov.Heap(); hs != nil {
		hs.Refresh() // count the loaded transforms' code and pools from the start
	}
	return stop, nil
}

// hashKey returns the key of hash_field: SLUICE_HASH_KEY or the contents
// of HashKeyFile (nil: none, plain SHA-256).
func (c *Config) hashKey() ([]byte, error) {
	if c.HashKeyFile == "" {
		if c.HashKey == "" {
			return nil, nil
		}
		return []byte(c.HashKey), nil
	}
	b, err := os.ReadFile(c.HashKeyFile)
	if err != nil {
		return nil, fmt.Errorf("hash key file: %w", err)
	}
	b = bytes.TrimRight(b, "\r\n")
	if len(b) < wasmhost.MinHashKey {
		return nil, fmt.Errorf("hash key file %s holds %d bytes: want at least %d (e.g. openssl rand -hex 32 > %s)", c.HashKeyFile, len(b), wasmhost.MinHashKey, c.HashKeyFile)
	}
	return b, nil
}

// loadTransforms adds every .wasm of dir ("": none) to h, named by its
// file name, compiling as many at a time as the memory limit allows (see
// compileParallelism: a Go guest takes about half a second and about 40 MB
// of compiler memory). The hooks, when set, run around each transform
// added (see loadHooks). A module that cannot be read or added is marked
// unavailable on the host (its pipelines fail closed) and logged; the
// error returned is a hook's (it stops the loading) or a folder that
// cannot be listed.
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
			name := strings.TrimSuffix(filepath.Base(f), ".wasm")
			t := time.Now()
			b, err := os.ReadFile(f)
			var info wasmhost.Info
			if err == nil {
				if hooks.before != nil {
					hooks.before(int64(len(b)))
				}
				info, err = h.Add(ctx, name, b)
				if hooks.after != nil {
					if herr := hooks.after(int64(len(b))); herr != nil {
						errs[i] = fmt.Errorf("load transform %s: %w", f, herr)
						failed.Store(true)
						return
					}
				}
			}
			if err != nil {
				if ctx.Err() != nil {
					errs[i] = ctx.Err()
					return
				}
				err = fmt.Errorf("load %s: %w", f, err)
				h.MarkUnavailable(name, err)
				log.Error("transform failed to load: every pipeline that uses it is unavailable until it is uploaded", "name", name, "err", err)
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
// folder (set over the admin API), else gets the default chain. A chain
// that names a transform that is not loaded makes its pipeline unavailable.
func setPipelines(h *wasmhost.Host, cfg *Config) error {
	if len(cfg.Pipeline) > 0 {
		if err := h.SetPipelineAllowUnavailable(wasmhost.DefaultPipeline, cfg.Pipeline); err != nil {
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
		if err := h.SetPipelineAllowUnavailable(pipelineName(t.Name), chain); err != nil {
			return err
		}
	}
	for _, s := range cfg.sources() {
		if len(s.Pipeline) > 0 {
			if err := h.SetPipelineAllowUnavailable(sourcePipeline(s), s.Pipeline); err != nil {
				return err
			}
		}
	}
	return nil
}

// unavailablePipelines returns why each pipeline in use cannot run (a
// tenant's or a Kafka source's; the default pipeline counts when the
// default tenant can send: open ingest or api_keys), sorted by pipeline.
func (a *App) unavailablePipelines() []*wasmhost.UnavailableError {
	var out []*wasmhost.UnavailableError
	for _, u := range a.host.Unavailable() {
		if a.pipelineInUse(u.Pipeline) {
			out = append(out, u)
		}
	}
	return out
}

// pipelineInUse reports whether a tenant's requests or a Kafka source's
// records run through pipeline.
func (a *App) pipelineInUse(pipeline string) bool {
	if pipeline == wasmhost.DefaultPipeline && (len(a.cfg.Tenants) == 0 || len(a.cfg.APIKeys) > 0) {
		return true
	}
	for _, s := range a.cfg.sources() {
		if sourcePipeline(s) == pipeline {
			return true
		}
	}
	for _, t := range a.cfg.Tenants {
		if pipelineName(t.Name) == pipeline {
			return true
		}
	}
	return false
}

// pipelineErr returns the 503 of tenant's requests while its pipeline is
// unavailable, else nil (the front door asks it before reading a body).
func (a *App) pipelineErr(tenant string) error {
	if p := a.pipes[tenant]; p != nil {
		if err := p.Err(); err != nil {
			return &PipelineError{Err: err}
		}
	}
	return nil
}

// pipelinesReady returns nil when every pipeline in use can run; an error
// wrapping ErrDegraded when only some can; else (none can) an error
// wrapping ErrPipelineUnavailable. Each names the pipelines and why.
func (a *App) pipelinesReady() error {
	if a.host == nil {
		return nil
	}
	down := a.unavailablePipelines()
	if len(down) == 0 {
		return nil
	}
	inUse := 0
	for name := range a.host.Pipelines() {
		if a.pipelineInUse(name) {
			inUse++
		}
	}
	msgs := make([]string, len(down))
	for i, u := range down {
		msgs[i] = u.Error()
	}
	why := strings.Join(msgs, "; ")
	if len(down) < inUse {
		return fmt.Errorf("%w: %s", ErrDegraded, why)
	}
	return fmt.Errorf("%w: no pipeline in use can run: %s", ErrPipelineUnavailable, why)
}
