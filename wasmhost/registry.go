package wasmhost

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/tetratelabs/wazero/api"
)

// Info describes a transform version.
type Info struct {
	Name       string    `json:"name"`
	Version    int       `json:"version"`     // 1, 2, … per name
	Current    bool      `json:"current"`     // the version pipelines run
	Digest     string    `json:"digest"`      // sha256 of the module, hex
	Size       int       `json:"size"`        // module bytes
	ABIVersion int       `json:"abi_version"` // what sluice_abi_version returned
	Exports    []string  `json:"exports"`     // exported function names, sorted
	Created    time.Time `json:"created"`
	// Lifetime counters of the transform (all versions, since start).
	Calls   uint64 `json:"calls"`
	Records uint64 `json:"records"`
	Traps   uint64 `json:"traps"`
	// PeakMemory is the largest linear memory an instance of this version
	// reached, in bytes (0 before the first instance).
	PeakMemory uint64 `json:"peak_memory"`
	// Error says why the transform is not loaded (it failed to load at
	// start: the pipelines that use it are unavailable); empty when loaded.
	// A transform that failed to load before any version of it could be
	// read has only Name and Error.
	Error string `json:"error,omitempty"`
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

func checkName(kind, name string) error {
	if !nameRE.MatchString(name) || name == "." || name == ".." {
		return fmt.Errorf("%w: %s name %q: use 1–64 of A-Z a-z 0-9 _ . -", ErrBadName, kind, name)
	}
	return nil
}

func (v *version) info(current bool) Info {
	return Info{
		Name:       v.name,
		Version:    v.meta.Version,
		Current:    current,
		Digest:     v.meta.Digest,
		Size:       v.meta.Size,
		ABIVersion: v.meta.ABIVersion,
		Exports:    slices.Clone(v.meta.Exports),
		Created:    v.meta.Created,
		Calls:      v.counters.calls.Load(),
		Records:    v.counters.records.Load(),
		Traps:      v.counters.traps.Load(),
		PeakMemory: uint64(v.peakMem.Load()),
	}
}

var wasmMagic = []byte{0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00}

// Add compiles, validates and stores a transform module under name. When
// name exists with other bytes, the module becomes its new current version
// (the previous one is kept for Rollback) and every pipeline that uses name
// switches to it atomically: batches in flight finish on the old version.
// Adding the current bytes again changes nothing, unless the transform is
// not loaded (its stored bytes were lost or altered): then they replace the
// current version under its number. A transform that was not loaded is
// loaded once Add succeeds, and the pipelines that use it become available.
//
// A module that is not valid WASM, imports anything but sluice_v1 and the
// WASI functions a reactor needs, lacks an export, or was built for another
// ABI version is rejected with an error wrapping ErrInvalidModule that
// names the problem.
func (h *Host) Add(ctx context.Context, name string, wasm []byte) (Info, error) {
	if err := checkName("transform", name); err != nil {
		return Info{}, err
	}
	digest := digestOf(wasm)
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return Info{}, ErrClosed
	}
	if t, ok := h.transforms[name]; ok && t.current.meta.Digest == digest && h.broken[name] == nil {
		info := t.current.info(true)
		h.mu.Unlock()
		return info, nil
	}
	h.mu.Unlock()

	if !bytes.HasPrefix(wasm, wasmMagic) {
		return Info{}, fmt.Errorf("%w: %q is not a WebAssembly module (bad magic or version header)", ErrInvalidModule, name)
	}
	meta := versionMeta{Digest: digest, Size: len(wasm), Created: time.Now().UTC()}
	v := h.newVersion(name, meta, bytes.Clone(wasm), nil)
	if err := v.compile(ctx); err != nil {
		return Info{}, err
	}
	exports, err := checkModule(name, v)
	if err != nil {
		v.close()
		return Info{}, err
	}
	h.warnUnkeyed(name, v)
	v.meta.Exports = exports
	// Start one instance: it runs the initialiser and answers the ABI
	// version; it then serves as the pool's first instance.
	v.counters = &counters{}
	abi, err := v.abiVersion(ctx)
	if err != nil {
		v.close()
		return Info{}, err
	}
	v.meta.ABIVersion = abi

	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		v.close()
		return Info{}, ErrClosed
	}
	t, ok := h.transforms[name]
	if !ok {
		t = &transform{name: name, counters: v.counters}
	}
	v.counters = t.counters
	next := 1
	for _, old := range t.versions {
		next = max(next, old.meta.Version+1)
	}
	v.meta.Version = next
	if h.store != nil {
		if err := h.store.putBlob(name, digest, wasm); err != nil {
			v.close()
			return Info{}, fmt.Errorf("wasmhost: store %q: %w", name, err)
		}
	}
	prev := t.current
	before := slices.Clone(t.versions)
	if i := slices.Index(t.versions, prev); i >= 0 && h.broken[name] != nil && prev.meta.Digest == digest {
		// The current version's bytes again, after they failed to load.
		v.meta.Version = prev.meta.Version
		t.versions = slices.Delete(t.versions, i, i+1)
	}
	t.versions = append(t.versions, v)
	t.current = v
	pruned := h.pruneLocked(t)
	if err := h.saveManifestLocked(t); err != nil {
		// Undo: the stored state still names the previous version.
		t.versions = before
		t.current = prev
		v.close()
		return Info{}, err
	}
	h.transforms[name] = t
	delete(h.broken, name)
	h.swapLocked(name)
	switch {
	case prev == nil:
	case slices.Contains(t.versions, prev):
		prev.retire()
	default:
		prev.close() // replaced: its bytes had failed to load
	}
	for _, p := range pruned {
		p.close()
		if h.store != nil && !t.usesDigest(p.meta.Digest) {
			h.store.removeBlob(name, p.meta.Digest)
		}
	}
	return v.info(true), nil
}

func (t *transform) usesDigest(d string) bool {
	for _, v := range t.versions {
		if v.meta.Digest == d {
			return true
		}
	}
	return false
}

// pruneLocked drops the oldest versions past KeepVersions (never the
// current one) and returns them for closing.
func (h *Host) pruneLocked(t *transform) []*version {
	var pruned []*version
	for len(t.versions) > h.cfg.KeepVersions {
		i := 0
		if t.versions[0] == t.current {
			i = 1
		}
		pruned = append(pruned, t.versions[i])
		t.versions = slices.Delete(t.versions, i, i+1)
	}
	return pruned
}

func (h *Host) saveManifestLocked(t *transform) error {
	if h.store == nil {
		return nil
	}
	m := manifest{Name: t.name, Current: t.current.meta.Version}
	for _, v := range t.versions {
		m.Versions = append(m.Versions, v.meta)
	}
	if err := h.store.putManifest(m); err != nil {
		return fmt.Errorf("wasmhost: store manifest of %q: %w", t.name, err)
	}
	return nil
}

// checkModule validates a compiled module's imports and exports against
// the ABI and returns its exported function names.
func checkModule(name string, v *version) ([]string, error) {
	cm := v.compiled
	for _, f := range cm.ImportedFunctions() {
		mod, fn, _ := f.Import()
		switch {
		case mod == ImportModule:
			n, ok := hostFuncParams[fn]
			if !ok {
				return nil, fmt.Errorf("%w: %q imports unknown host function %s.%s", ErrInvalidModule, name, mod, fn)
			}
			if !sigIs(f, n, 1) {
				return nil, fmt.Errorf("%w: %q imports %s.%s with signature %s; want %d i32 params and an i32 result",
					ErrInvalidModule, name, mod, fn, sigString(f), n)
			}
		case mod == wasiModule:
			if !wasiAllowed[fn] {
				return nil, fmt.Errorf("%w: %q imports forbidden WASI function %s.%s (the sandbox allows no filesystem, network or process access)", ErrInvalidModule, name, mod, fn)
			}
		case strings.HasPrefix(mod, importModulePrefix):
			return nil, fmt.Errorf("%w: %q imports %s.%s: it was built for ABI %s, this host implements ABI v%d (%s)",
				ErrInvalidModule, name, mod, fn, strings.TrimPrefix(mod, "sluice_"), ABIVersion, ImportModule)
		default:
			return nil, fmt.Errorf("%w: %q imports unknown function %s.%s: only %s and WASI are allowed", ErrInvalidModule, name, mod, fn, ImportModule)
		}
	}
	if len(cm.ImportedMemories()) > 0 {
		return nil, fmt.Errorf("%w: %q imports a memory; it must define and export its own", ErrInvalidModule, name)
	}
	exp := cm.ExportedFunctions()
	for _, want := range []struct {
		name            string
		params, results int
	}{{ExportABIVersion, 0, 1}, {ExportProcess, 1, 1}} {
		f, ok := exp[want.name]
		if !ok {
			return nil, fmt.Errorf("%w: %q does not export %s (is it built with the sluice SDK, -buildmode=c-shared?)", ErrInvalidModule, name, want.name)
		}
		if !sigIs(f, want.params, want.results) {
			return nil, fmt.Errorf("%w: %q exports %s with signature %s; want %d i32 params and %d i32 result", ErrInvalidModule, name, want.name, sigString(f), want.params, want.results)
		}
	}
	if f, ok := exp[ExportInitialize]; ok && (len(f.ParamTypes()) != 0 || len(f.ResultTypes()) != 0) {
		return nil, fmt.Errorf("%w: %q exports %s with signature %s; want no params and no results", ErrInvalidModule, name, ExportInitialize, sigString(f))
	}
	if _, ok := cm.ExportedMemories()[ExportMemory]; !ok {
		return nil, fmt.Errorf("%w: %q does not export its memory as %q", ErrInvalidModule, name, ExportMemory)
	}
	names := make([]string, 0, len(exp))
	for n := range exp {
		if n != exportStart { // the host's export of the start function
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names, nil
}

func sigIs(f api.FunctionDefinition, params, results int) bool {
	if len(f.ParamTypes()) != params || len(f.ResultTypes()) != results {
		return false
	}
	for _, t := range f.ParamTypes() {
		if t != i32 {
			return false
		}
	}
	for _, t := range f.ResultTypes() {
		if t != i32 {
			return false
		}
	}
	return true
}

func sigString(f api.FunctionDefinition) string {
	var b strings.Builder
	b.WriteByte('(')
	for i, t := range f.ParamTypes() {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(api.ValueTypeName(t))
	}
	b.WriteString(") -> (")
	for i, t := range f.ResultTypes() {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(api.ValueTypeName(t))
	}
	b.WriteByte(')')
	return b.String()
}

// abiVersion starts an instance, asks it its ABI version and closes it:
// pools are sized by demand, so a transform holds no instance until its
// first batch (an instance costs a Go guest about 2.5 MiB, starting one 4–6
// ms).
func (v *version) abiVersion(ctx context.Context) (int, error) {
	in, err := v.acquire(ctx)
	if err != nil {
		return 0, err
	}
	f := in.mod.ExportedFunction(ExportABIVersion)
	res := []uint64{0}
	err, why := in.intr.call(ctx, f, res, v.host.cfg.deadline(0))
	if err != nil {
		v.release(in, true)
		if why == stopClosed {
			return 0, ErrClosed
		}
		if cerr := ctx.Err(); cerr != nil {
			return 0, cerr
		}
		detail := firstLine(err.Error())
		if why == stopDeadline {
			detail = "exceeded " + v.host.cfg.deadline(0).String()
		}
		return 0, fmt.Errorf("%w: %q: %s failed: %s", ErrInvalidModule, v.name, ExportABIVersion, detail)
	}
	got := int(api.DecodeI32(res[0]))
	if got != ABIVersion {
		v.release(in, true)
		return 0, fmt.Errorf("%w: %q was built for ABI version %d, this host implements ABI version %d: rebuild it with a matching SDK",
			ErrInvalidModule, v.name, got, ABIVersion)
	}
	v.release(in, true)
	return got, nil
}

// Get returns the current version of a transform. A transform that is not
// loaded is returned with its Error (and only its name when no version of
// it could be read).
func (h *Host) Get(name string) (Info, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.transforms[name]; !ok && h.broken[name] != nil {
		return h.infoLocked(name), nil
	}
	if _, err := h.lookup(name); err != nil {
		return Info{}, err
	}
	return h.infoLocked(name), nil
}

// List returns the current version of every transform, sorted by name,
// those that are not loaded included (see Get).
func (h *Host) List() []Info {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]Info, 0, len(h.transforms)+len(h.broken))
	for name := range h.transforms {
		out = append(out, h.infoLocked(name))
	}
	for name := range h.broken {
		if _, ok := h.transforms[name]; !ok {
			out = append(out, h.infoLocked(name))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// infoLocked describes a known transform (stored or not loaded).
func (h *Host) infoLocked(name string) Info {
	var in Info
	if t, ok := h.transforms[name]; ok {
		in = t.current.info(true)
	} else {
		in.Name = name
	}
	if err := h.broken[name]; err != nil {
		in.Current = false
		in.Error = strings.TrimPrefix(err.Error(), "wasmhost: ")
	}
	return in
}

// Versions returns every kept version of a transform, oldest first.
func (h *Host) Versions(name string) ([]Info, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t, err := h.lookup(name)
	if err != nil {
		return nil, err
	}
	out := make([]Info, 0, len(t.versions))
	for _, v := range t.versions {
		out = append(out, v.info(v == t.current))
	}
	return out, nil
}

// Rollback makes the version before the current one current (the newer
// one stays listed) and switches the pipelines that use the transform.
func (h *Host) Rollback(ctx context.Context, name string) (Info, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t, err := h.lookup(name)
	if err != nil {
		return Info{}, err
	}
	var prev *version
	for _, v := range t.versions {
		if v.meta.Version < t.current.meta.Version && (prev == nil || v.meta.Version > prev.meta.Version) {
			prev = v
		}
	}
	if prev == nil {
		return Info{}, fmt.Errorf("%w: transform %q is at its oldest kept version %d", ErrNoPrevious, name, t.current.meta.Version)
	}
	if err := prev.compile(ctx); err != nil {
		return Info{}, err
	}
	old := t.current
	t.current = prev
	if err := h.saveManifestLocked(t); err != nil {
		t.current = old
		return Info{}, err
	}
	prev.retired.Store(false)
	delete(h.broken, name)
	h.swapLocked(name)
	old.retire()
	return prev.info(true), nil
}

// Delete removes a transform and all its versions, from memory and disk,
// also one that is not loaded. It fails with ErrInUse while a pipeline
// uses it.
func (h *Host) Delete(name string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	t, err := h.lookup(name)
	if err != nil && h.broken[name] == nil {
		return err
	}
	for _, p := range h.pipelines {
		if slices.Contains(p.cur.Load().names, name) {
			return fmt.Errorf("%w: %q is in pipeline %q", ErrInUse, name, p.name)
		}
	}
	if h.store != nil {
		if err := h.store.remove(name); err != nil {
			return fmt.Errorf("wasmhost: delete %q: %w", name, err)
		}
	}
	delete(h.transforms, name)
	delete(h.broken, name)
	if t != nil {
		for _, v := range t.versions {
			v.close()
		}
	}
	return nil
}
