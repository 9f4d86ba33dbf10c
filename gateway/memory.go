package gateway

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"

	"github.com/sluicehq/sluice/governor"
)

// The memory limit and the governor's baseline at start-up.
//
// With --memory-limit set, the "memory limit" step sets GOMEMLIMIT and
// measures the bare runtime; the governor then keeps GOMEMLIMIT at the
// limit less the memory outside the Go runtime (compiled WASM code, the
// binary's pages), so the GC keeps the whole process under the limit from
// the first compile on. The "wasm host" step sizes the instance pools to
// the limit (poolSize), compiles the transforms one at a time when the
// limit is tight (compileParallelism) and stops as soon as the fixed
// memory leaves traffic too little (checkBaseline). The
// "memory baseline" step, the last before the ingest listener, measures
// the baseline with everything loaded and refuses to start when it leaves
// less than governor.DefaultMinTrafficShare of the limit.

// compileBudget is the memory limit per transform compiled at once at
// start: compiling a Go guest holds about 40 MB of compiler garbage on top
// of its code, so a gateway under 512 MiB compiles one at a time.
const compileBudget = 256 << 20

// compileParallelism is how many of n transforms start-up compiles at once
// under a memory limit of limit bytes: at least one, at most n.
func compileParallelism(limit int64, n int) int {
	return int(min(max(limit/compileBudget, 1), int64(max(n, 1))))
}

// poolSize is the most instances the WASM host keeps per transform under
// a memory limit of limit bytes: one per compileBudget of the limit, at
// least one, at most GOMAXPROCS (the host's default). A Go guest holds
// about 3 MiB at rest and more under batches; a second pooled instance
// per transform lets shards of a batch run on both cores, which a tight
// limit cannot afford.
func poolSize(limit int64) int {
	return int(min(max(limit/compileBudget, 1), int64(runtime.GOMAXPROCS(0))))
}

// codePerModuleByte is how many bytes of machine code start-up expects per
// byte of a module before compiling it (wazero emits about 3.6 for a Go
// guest): enough to refuse a limit the transforms cannot fit before
// spending seconds compiling them under it.
const codePerModuleByte = 3

// hostMemory reports the WASM host's memory to the governor (zero before
// the host starts), with the code of the modules being compiled at start
// counted ahead (see compileHooks).
func (a *App) hostMemory() governor.HostMemory {
	h := a.guests.Load()
	if h == nil {
		return governor.HostMemory{}
	}
	f := h.FixedMemory()
	return governor.HostMemory{Code: f.Code + a.pendingCode.Load(), Pools: f.Pools, Guests: f.Guests, GuestsOffHeap: f.GuestsOffHeap}
}

// startMemoryLimit sets GOMEMLIMIT to --memory-limit when it was given,
// measures the runtime before anything is loaded and lets the governor
// manage GOMEMLIMIT from then on; stop restores the previous GOMEMLIMIT.
func (a *App) startMemoryLimit(context.Context) (func(context.Context) error, error) {
	if !a.cfg.MemoryLimitSet() {
		return nil, nil
	}
	prev := debug.SetMemoryLimit(int64(a.cfg.MemoryLimit))
	hs := a.gov.Heap()
	if hs != nil {
		hs.MeasureBaseline()
		hs.ManageGoMemoryLimit(true)
	}
	return func(context.Context) error {
		if hs != nil {
			hs.ManageGoMemoryLimit(false)
		}
		debug.SetMemoryLimit(prev)
		return nil
	}, nil
}

// precheckTransforms refuses, before compiling anything, transforms whose
// expected code alone would leave traffic too little of the limit.
func (a *App) precheckTransforms() error {
	if !a.cfg.MemoryLimitSet() || a.cfg.TransformsDir == "" {
		return nil
	}
	files, err := filepath.Glob(filepath.Join(a.cfg.TransformsDir, "*.wasm"))
	if err != nil || len(files) == 0 {
		return err
	}
	var size int64
	for _, f := range files {
		if st, err := os.Stat(f); err == nil {
			size += st.Size()
		}
	}
	b := a.gov.Baseline()
	b.Code += codePerModuleByte * size
	b.Total += codePerModuleByte * size
	if err := b.Check(governor.DefaultMinTrafficShare); err != nil {
		return a.baselineAdvice(err, len(files), true)
	}
	return nil
}

// checkBaseline refuses a baseline that leaves traffic less than
// governor.DefaultMinTrafficShare of --memory-limit (only when the limit
// was given: the default is a guess, not the operator's word).
func (a *App) checkBaseline(b governor.Baseline) error {
	if !a.cfg.MemoryLimitSet() {
		return nil
	}
	if err := b.Check(governor.DefaultMinTrafficShare); err != nil {
		n := 0
		if h := a.guests.Load(); h != nil {
			n = h.FixedMemory().Versions
		}
		return a.baselineAdvice(err, n, false)
	}
	return nil
}

// baselineAdvice adds what to change to a baseline refusal.
func (a *App) baselineAdvice(err error, transforms int, estimated bool) error {
	be, ok := err.(*governor.BaselineError)
	if !ok {
		return err
	}
	what := "measured"
	if estimated {
		what = fmt.Sprintf("expected before compiling (compiled code estimated at %d× the modules' size)", codePerModuleByte)
	}
	return fmt.Errorf("%w: %w (%s); raise --memory-limit to at least %dMiB, or load fewer or smaller transforms (%d in --transforms; a Go guest costs about 8 MiB of compiled code plus %d pooled instances of about 2.5 MiB, a Rust guest a few hundred KiB)",
		ErrConfig, err, what, be.Baseline.MinLimit(be.MinShare)>>20, transforms, a.poolSize())
}

// poolSize is the WASM host's instances per transform.
func (a *App) poolSize() int {
	if h := a.guests.Load(); h != nil {
		return h.Config().PoolSize
	}
	return runtime.GOMAXPROCS(0) // wasmhost's default
}

// startBaseline measures the memory baseline with everything loaded and
// before any traffic, logs it, and refuses to go on when it leaves traffic
// too little of the limit.
func (a *App) startBaseline(context.Context) (func(context.Context) error, error) {
	b := a.gov.MeasureBaseline()
	a.log.Info("memory baseline", "total", b.Total, "runtime", b.Runtime, "binary", b.Other, "code", b.Code,
		"pools", b.Pools, "limit", b.Limit, "traffic", b.Traffic(), "gomemlimit", b.GoMemoryLimit)
	return nil, a.checkBaseline(b)
}

// compileHooks are the start-up's hooks around each compile (see
// loadHooks): while a module compiles, the machine code it will map is
// counted as pending host code (codePerModuleByte × its size), so
// GOMEMLIMIT leaves room for it before it appears; once it is added, a
// gateway that compiles one at a time hands the compiler's garbage back to
// the OS, the baseline is measured again (there is no traffic yet: what
// the process holds is fixed), and a baseline that already leaves traffic
// too little stops the start-up.
func (a *App) compileHooks() loadHooks {
	return loadHooks{
		before: func(size int64) {
			a.pendingCode.Add(codePerModuleByte * size)
			if hs := a.gov.Heap(); hs != nil {
				hs.Refresh()
			}
		},
		after: func(size int64) error {
			a.pendingCode.Add(-codePerModuleByte * size)
			hs := a.gov.Heap()
			if hs == nil {
				return nil
			}
			if compileParallelism(int64(a.cfg.MemoryLimit), 2) == 1 {
				debug.FreeOSMemory()
			}
			return a.checkBaseline(hs.MeasureBaseline())
		},
	}
}
