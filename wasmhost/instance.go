package wasmhost

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice/engine"
	"github.com/sluicehq/sluice/internal/wasmloop"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/sys"
)

// guestGOGC is the GOGC a Go guest gets in its environment (Go's default is
// 100): an allocating handler measured 7.5 MiB of linear memory at 100 and
// 5.3 MiB at 50.
const guestGOGC = "50"

// instantiateTimeout bounds a guest's initialiser (_initialize): a module
// that loops at start is interrupted and rejected.
var instantiateTimeout = 10 * time.Second

// counters are a transform's lifetime counters (across versions).
type counters struct {
	calls, records, traps atomic.Uint64
}

// version is one compiled version of a transform with its instance pool.
type version struct {
	host     *Host
	name     string
	meta     versionMeta
	counters *counters
	lim      *logLimiter // guest output
	trapLim  *logLimiter // the host's warnings about failed calls

	compileMu  sync.Mutex // held while compiling
	compiled   wazero.CompiledModule
	compileErr error
	wasm       []byte // held until compiled
	blobPath   string // where to read wasm from when nil (restored versions)
	hasInit    bool
	hasStart   bool // the module had a start function, exported as exportStart

	pool    chan *instance // idle instances
	slots   chan struct{}  // one token per live instance (cap PoolSize)
	retired atomic.Bool
	peakMem atomic.Uint32
	initMem atomic.Int64 // an instance's linear memory after its initialiser, bytes (see FixedMemory)
	cost    atomic.Int64 // guest time per record, ns (EWMA); 0 until measured
}

// instance is one live module: single-threaded, used by one call at a time.
type instance struct {
	mod     api.Module
	process api.Function
	mem     api.Memory
	stack   []uint64
	state   callState
	stdout  *guestLog
	stderr  *guestLog
	intr    *interrupter
	memSize int64     // linear memory counted in Host.guestMem, bytes
	idle    time.Time // when it was last released to the pool
}

func (h *Host) newVersion(name string, meta versionMeta, wasm []byte, c *counters) *version {
	return &version{
		host:     h,
		name:     name,
		meta:     meta,
		counters: c,
		lim:      newLogLimiter(h.cfg.GuestLogRate),
		trapLim:  newLogLimiter(1),
		wasm:     wasm,
		pool:     make(chan *instance, h.cfg.PoolSize),
		slots:    make(chan struct{}, h.cfg.PoolSize),
	}
}

// compileEntered, when set (by tests), is called by every compile once it
// holds its compilation slot, before it compiles.
var compileEntered func()

// compile compiles the module once, waiting for a compilation slot
// (Config.CompileConcurrency). A ctx done while waiting fails this call
// only; a module that does not compile fails every call.
func (v *version) compile(ctx context.Context) error {
	v.compileMu.Lock()
	defer v.compileMu.Unlock()
	if v.compiled != nil || v.compileErr != nil {
		return v.compileErr
	}
	if v.wasm == nil && v.blobPath != "" {
		b, err := readBlob(v.blobPath, v.meta.Digest)
		if err != nil {
			v.compileErr = err
			return err
		}
		v.wasm = b
	}
	release, err := v.host.compileSlot(ctx)
	if err != nil {
		return fmt.Errorf("compile %q: %w", v.name, err)
	}
	if compileEntered != nil {
		compileEntered()
	}
	// Every loop of the module checks the host's interrupt flag
	// (interrupt.go); its start function, if any, is run by the host.
	bin, hasStart, err := wasmloop.Instrument(v.wasm, exportInterrupt, exportStart)
	var cm wazero.CompiledModule
	if err == nil {
		cm, err = v.host.rt.CompileModule(ctx, bin)
	} else if orig, cerr := v.host.rt.CompileModule(ctx, v.wasm); cerr != nil {
		// A malformed module gets the compiler's own words for its defect.
		err = cerr
	} else {
		// It compiles, but uses what the host cannot bound.
		orig.Close(context.Background())
		err = fmt.Errorf("the host cannot bound its loops: %w", err)
	}
	// Compiling leaves tens of megabytes of garbage in the Go heap: collect
	// it before the next compile takes the slot, so compiles one after the
	// other reuse the same memory instead of stacking up.
	runtime.GC()
	release()
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return fmt.Errorf("compile %q: %w", v.name, cerr)
		}
		v.compileErr = fmt.Errorf("%w: compile %q: %s", ErrInvalidModule, v.name, err.Error())
		return v.compileErr
	}
	v.compiled = cm
	v.hasStart = hasStart
	_, v.hasInit = cm.ExportedFunctions()[ExportInitialize]
	v.wasm = nil
	return nil
}

// instantiate starts a new instance of the pool: newInstance, counted in
// the version's peak memory, the host's guest memory and the hooks.
func (v *version) instantiate(ctx context.Context) (*instance, error) {
	start := time.Now()
	in, err := v.newInstance(ctx)
	if err != nil {
		return nil, err
	}
	v.notePeak(in)
	v.host.noteMem(in)
	v.noteInitMem(in)
	v.host.cfg.Hooks.instantiate(v.name, time.Since(start))
	return in, nil
}

// newInstance compiles the version if needed and starts an instance that
// nothing counts yet (dry runs use it directly).
func (v *version) newInstance(ctx context.Context) (*instance, error) {
	if err := v.compile(ctx); err != nil {
		return nil, err
	}
	in := &instance{
		stack:  make([]uint64, 1),
		stdout: &guestLog{log: v.host.cfg.Logger, lim: v.lim, transform: v.name, stream: "stdout"},
		stderr: &guestLog{log: v.host.cfg.Logger, lim: v.lim, transform: v.name, stream: "stderr"},
	}
	in.state.hasher = newFieldHasher(v.host.cfg.HashKey)
	mc := wazero.NewModuleConfig().
		WithName("").
		WithStdout(in.stdout).
		WithStderr(in.stderr).
		// random_get gets real randomness: wazero's default source is a
		// fixed-seed generator, the same sequence in every instance.
		WithRandSource(rand.Reader).
		// A Go guest's runtime reads its garbage collector's settings from
		// the environment: linear memory never shrinks, so a smaller heap
		// goal keeps an instance small, and a soft limit below the hard
		// one makes the guest collect harder instead of dying at the cap.
		WithEnv("GOGC", guestGOGC).
		WithEnv("GOMEMLIMIT", strconv.FormatInt(v.host.cfg.MemoryLimit/2, 10))
	// The host runs the start function and the initialiser itself, under
	// the interrupter: a module that loops at start is stopped.
	mc = mc.WithStartFunctions()
	ictx := ctx
	if alloc, _ := guestAllocator(); alloc != nil {
		ictx = experimental.WithMemoryAllocator(ictx, alloc)
	}
	mod, err := v.host.rt.InstantiateModule(ictx, v.compiled, mc)
	if err == nil {
		err = v.start(ctx, in, mod)
	}
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			// The caller gave up (deadline, shutdown): not the module's fault.
			return nil, fmt.Errorf("instantiate %q: %w", v.name, cerr)
		}
		if errors.Is(err, ErrClosed) {
			return nil, err
		}
		detail := firstLine(err.Error())
		if s := in.stderr.summary(); s != "" {
			detail += ": " + s
		}
		return nil, fmt.Errorf("%w: instantiate %q: %s", ErrInvalidModule, v.name, detail)
	}
	in.mod = mod
	in.process = mod.ExportedFunction(ExportProcess)
	in.mem = mod.Memory()
	if in.process == nil || in.mem == nil {
		mod.Close(context.Background())
		return nil, fmt.Errorf("%w: %q lacks %s or memory", ErrInvalidModule, v.name, ExportProcess)
	}
	return in, nil
}

// start makes the instance's interrupter and runs the module's start
// function and initialiser, when it has them, each within
// instantiateTimeout; it closes mod when one fails.
func (v *version) start(ctx context.Context, in *instance, mod api.Module) error {
	flag, ok := mod.ExportedGlobal(exportInterrupt).(api.MutableGlobal)
	if !ok { // cannot happen: compile added it
		mod.Close(context.Background())
		return fmt.Errorf("no %s global", exportInterrupt)
	}
	in.intr = newInterrupter(v.host, flag)
	for _, f := range []struct {
		name string
		has  bool
	}{{exportStart, v.hasStart}, {ExportInitialize, v.hasInit}} {
		if !f.has {
			continue
		}
		err, why := in.intr.call(ctx, mod.ExportedFunction(f.name), nil, instantiateTimeout)
		if err == nil {
			continue
		}
		mod.Close(context.Background())
		name := f.name
		if name == exportStart {
			name = "the start function"
		}
		switch why {
		case stopClosed:
			return ErrClosed
		case stopDeadline:
			return fmt.Errorf("%s ran past %v", name, instantiateTimeout)
		}
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

func (v *version) notePeak(in *instance) {
	sz := in.mem.Size()
	for {
		old := v.peakMem.Load()
		if sz <= old || v.peakMem.CompareAndSwap(old, sz) {
			return
		}
	}
}

// acquire returns an idle instance, starts a new one when fewer than
// PoolSize are live, or waits for one.
func (v *version) acquire(ctx context.Context) (*instance, error) {
	select {
	case in := <-v.pool:
		return in, nil
	default:
	}
	select {
	case in := <-v.pool:
		return in, nil
	case v.slots <- struct{}{}:
		in, err := v.instantiate(ctx)
		if err != nil {
			<-v.slots
			return nil, err
		}
		return in, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// release returns an instance to the pool, or discards it (freeing its
// slot) when broken, recycled or the version is retired.
func (v *version) release(in *instance, discard bool) {
	in.state.release()
	v.host.noteMem(in)
	if discard || v.retired.Load() {
		in.mod.Close(context.Background())
		v.host.forgetMem(in)
		<-v.slots
		return
	}
	in.idle = time.Now()
	v.pool <- in
	if v.retired.Load() {
		// retire ran between the check and the push: drain again.
		v.drain()
	}
}

// retire closes idle instances; busy ones are closed when released.
func (v *version) retire() {
	v.retired.Store(true)
	v.drain()
}

// drain closes every idle instance.
func (v *version) drain() {
	for {
		select {
		case in := <-v.pool:
			in.mod.Close(context.Background())
			v.host.forgetMem(in)
			<-v.slots
		default:
			return
		}
	}
}

// closeGrace is how long a deleted or pruned version's compiled code
// outlives it: a batch that loaded a chain before the change may still
// start instances of it, and batches last milliseconds.
const closeGrace = 30 * time.Second

// close retires the version and, after closeGrace, frees its compiled code
// (unless the host closed first: closing the runtime frees it).
func (v *version) close() {
	v.retire()
	if v.compiled == nil {
		return
	}
	time.AfterFunc(closeGrace, func() {
		v.host.mu.Lock()
		defer v.host.mu.Unlock()
		if !v.host.closed {
			v.compiled.Close(context.Background())
		}
	})
}

// run calls the guest over recs (whose docs are order's slots in cr) on
// one instance and returns its output, the output's doc slots, and dlq
// with the call's dead letters appended. A failed call returns a
// *TrapError (the instance is then discarded) or, when ctx itself is done,
// ctx's error.
func (v *version) run(ctx context.Context, recs []engine.Record, order []int32, cr *chainRun, dlq []engine.DLQEntry) ([]engine.Record, []int32, []engine.DLQEntry, tally, error) {
	in, err := v.acquire(ctx)
	if err != nil {
		return recs, order, dlq, tally{}, err
	}
	h := v.host
	st := &in.state
	st.resetIn(recs, order, cr, h.cfg.MaxEmitPerCall)
	in.stdout.reset()
	in.stderr.reset()
	deadline := h.cfg.deadline(len(recs))
	cctx := context.WithValue(ctx, stateKey{}, st)
	in.stack[0] = uint64(len(recs))
	callStart := time.Now()
	callErr, why := in.intr.call(cctx, in.process, in.stack, deadline)
	took := time.Since(callStart)
	v.counters.calls.Add(1)
	v.counters.records.Add(uint64(len(recs)))

	if callErr == nil && api.DecodeI32(in.stack[0]) == 0 {
		v.noteCost(took, len(recs))
		out, outOrder, dlq, t := st.collectIn(recs, order, dlq, v.name)
		v.notePeak(in)
		recycle := h.cfg.RecycleAbove > 0 && int64(in.mem.Size()) > h.cfg.RecycleAbove
		if recycle {
			h.cfg.Hooks.recycle(v.name, "memory")
		}
		v.release(in, recycle)
		return out, outOrder, dlq, t, nil
	}
	if callErr == nil {
		// The guest aborted: its instance is still sound.
		code := api.DecodeI32(in.stack[0])
		v.release(in, false)
		v.counters.traps.Add(1)
		h.cfg.Hooks.trap(v.name, TrapAbort)
		return recs, order, dlq, tally{}, &TrapError{Transform: v.name, Kind: TrapAbort, Detail: fmt.Sprintf("sluice_process returned %d", code)}
	}
	if ctx.Err() != nil {
		h.cfg.Hooks.recycle(v.name, "canceled")
		v.release(in, true)
		return recs, order, dlq, tally{}, ctx.Err()
	}
	if why == stopClosed || h.shut.Load() {
		// Close ended the call: the records did nothing wrong, and are
		// not dead-lettered.
		v.release(in, true)
		return recs, order, dlq, tally{}, ErrClosed
	}
	te := v.classify(in, callErr, deadline, why)
	v.notePeak(in)
	v.counters.traps.Add(1)
	h.cfg.Hooks.trap(v.name, te.Kind)
	h.cfg.Hooks.recycle(v.name, string(te.Kind))
	v.release(in, true)
	return recs, order, dlq, tally{}, te
}

// classify names a failed call, which the interrupter stopped for why
// (stopNone: the guest failed by itself).
func (v *version) classify(in *instance, err error, deadline time.Duration, why stopReason) *TrapError {
	switch why {
	case stopDeadline:
		return &TrapError{Transform: v.name, Kind: TrapDeadline, Detail: "exceeded " + deadline.String()}
	case stopCanceled:
		return &TrapError{Transform: v.name, Kind: TrapDeadline, Detail: "canceled"}
	}
	var ee *sys.ExitError
	if errors.As(err, &ee) {
		switch ee.ExitCode() {
		case sys.ExitCodeDeadlineExceeded:
			return &TrapError{Transform: v.name, Kind: TrapDeadline, Detail: "exceeded " + deadline.String()}
		case sys.ExitCodeContextCanceled:
			return &TrapError{Transform: v.name, Kind: TrapDeadline, Detail: "canceled"}
		}
	}
	if in.stderr.oom {
		return &TrapError{Transform: v.name, Kind: TrapOOM, Detail: fmt.Sprintf("out of memory (limit %d MiB)", v.host.cfg.MemoryLimit>>20)}
	}
	detail := firstLine(err.Error())
	if ee != nil {
		detail = fmt.Sprintf("exit code %d", ee.ExitCode())
	}
	if s := in.stderr.summary(); s != "" {
		detail += ": " + s
	}
	return &TrapError{Transform: v.name, Kind: TrapPanic, Detail: detail}
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
