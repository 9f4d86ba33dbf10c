package wasmhost

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// DefaultPipeline is the name of the pipeline every tenant without its own
// uses.
const DefaultPipeline = "default"

// Host runs WASM transforms: one wazero runtime (optimizing compiler,
// interruptible calls, memory limit), the transform registry, instance pools
// and the named pipelines. Safe for concurrent use.
type Host struct {
	cfg   Config
	rt    wazero.Runtime
	cache wazero.CompilationCache
	store *store // nil without DataDir

	mu         sync.Mutex
	transforms map[string]*transform
	broken     map[string]error // transforms that failed to load, and why (availability.go)
	pipelines  map[string]*Pipeline
	closed     bool
	shut       atomic.Bool // closed, readable without mu: a call failing under Close is not a trap
	calls      sync.Map    // *interrupter → its call's number: the calls in flight (Close stops them)

	guestMem atomic.Int64 // linear memory of all live instances, bytes (see GuestMemoryBytes)

	compiles chan struct{} // one token per compilation in progress (Config.CompileConcurrency)
	stopReap func()        // stops the idle-instance reaper
}

// transform is a named transform and its kept versions (ascending).
type transform struct {
	name     string
	versions []*version
	current  *version
	counters *counters
}

// New validates cfg, starts the runtime and, with a DataDir, restores the
// stored transforms and pipelines.
func New(ctx context.Context, cfg Config) (*Host, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	h := &Host{
		compiles:   make(chan struct{}, cfg.CompileConcurrency),
		cfg:        cfg,
		transforms: make(map[string]*transform),
		broken:     make(map[string]error),
		pipelines:  make(map[string]*Pipeline),
	}
	rc := wazero.NewRuntimeConfig().
		// Guests are interrupted by the loop checks the host adds to
		// every module (interrupt.go), not by wazero's exit to Go at
		// every loop header.
		WithCloseOnContextDone(false).
		WithMemoryLimitPages(cfg.memoryLimitPages())
	if cfg.CacheDir != "" {
		c, err := wazero.NewCompilationCacheWithDir(cfg.CacheDir)
		if err != nil {
			return nil, fmt.Errorf("wasmhost: compilation cache %q: %w", cfg.CacheDir, err)
		}
		h.cache = c
	} else {
		h.cache = wazero.NewCompilationCache()
	}
	rc = rc.WithCompilationCache(h.cache)
	h.rt = wazero.NewRuntimeWithConfig(ctx, rc)
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, h.rt); err != nil {
		h.rt.Close(ctx)
		return nil, fmt.Errorf("wasmhost: wasi: %w", err)
	}
	b := h.rt.NewHostModuleBuilder(ImportModule)
	for name, fn := range hostFuncs() {
		params := make([]api.ValueType, hostFuncParams[name])
		for i := range params {
			params[i] = i32
		}
		b.NewFunctionBuilder().WithGoModuleFunction(fn, params, []api.ValueType{i32}).Export(name)
	}
	if _, err := b.Instantiate(ctx); err != nil {
		h.rt.Close(ctx)
		return nil, fmt.Errorf("wasmhost: host module: %w", err)
	}
	h.pipelines[DefaultPipeline] = newPipeline(h, DefaultPipeline)
	if cfg.DataDir != "" {
		s, err := openStore(cfg.DataDir)
		if err != nil {
			h.rt.Close(ctx)
			return nil, err
		}
		h.store = s
		if err := h.restore(ctx); err != nil {
			h.rt.Close(ctx)
			return nil, err
		}
	}
	rctx, stop := context.WithCancel(context.Background())
	h.stopReap = stop
	if cfg.IdleTimeout > 0 {
		go h.reap(rctx)
	}
	return h, nil
}

// Close closes every instance and the runtime. Calls in flight fail.
func (h *Host) Close(ctx context.Context) error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	h.shut.Store(true)
	h.stopAll()
	h.stopReap()
	for _, t := range h.transforms {
		for _, v := range t.versions {
			v.retire()
		}
	}
	h.mu.Unlock()
	err := h.rt.Close(ctx)
	if cerr := h.cache.Close(ctx); err == nil {
		err = cerr
	}
	return err
}

// compileSlot waits for a compilation slot (Config.CompileConcurrency) and
// returns its release, or ctx's error when ctx is done first.
func (h *Host) compileSlot(ctx context.Context) (func(), error) {
	select {
	case h.compiles <- struct{}{}:
		return func() { <-h.compiles }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Config returns the effective configuration (defaults filled in).
func (h *Host) Config() Config { return h.cfg }

// restore loads stored transforms (compiling each current version, from
// the compilation cache when warm) and pipelines. A transform that fails to
// load is kept as not loaded, with why (its pipelines are unavailable, see
// availability.go); a pipeline is restored whatever its transforms' state.
func (h *Host) restore(ctx context.Context) error {
	mans, bad, err := h.store.manifests()
	if err != nil {
		return err
	}
	for name, err := range bad {
		h.broken[name] = &notLoadedError{err: err}
	}
	for _, m := range mans {
		t, err := h.restoreTransform(ctx, m)
		if t != nil {
			h.transforms[m.Name] = t
		}
		if err != nil {
			h.broken[m.Name] = &notLoadedError{err: err}
		}
	}
	for name, err := range h.broken {
		h.cfg.Logger.Error("stored transform cannot be loaded: every pipeline that uses it is unavailable until it is added again",
			"transform", name, "err", err, "dir", h.store.dir)
	}
	pls, err := h.store.pipelines()
	if err != nil {
		return err
	}
	for name, names := range pls {
		if err := h.setPipelineLocked(name, names, false, true); err != nil {
			return err
		}
	}
	return nil
}

func (h *Host) lookup(name string) (*transform, error) {
	t, ok := h.transforms[name]
	if !ok {
		return nil, fmt.Errorf("%w: transform %q", ErrNotFound, name)
	}
	return t, nil
}
