package wasmhost

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// A pipeline fails closed. When a transform of its chain is not loaded —
// never added, its stored files gone, or it failed to load (bytes missing,
// truncated or altered, a module that no longer compiles or validates) —
// the pipeline is unavailable: Process fails every batch with an
// *UnavailableError and nothing goes through a chain with a hole in it,
// not even as a pass-through. It becomes available again, without a
// restart, as soon as the transform is added (Add, Rollback) or the chain
// no longer names it (SetPipeline).

var (
	// ErrUnavailable is wrapped by an *UnavailableError: a pipeline cannot
	// run because a transform of its chain is not loaded.
	ErrUnavailable = errors.New("wasmhost: pipeline unavailable")
	// ErrNotLoaded is wrapped by the error saying why a stored or configured
	// transform failed to load (restore, MarkUnavailable). SetPipeline
	// refuses a chain that names such a transform.
	ErrNotLoaded = errors.New("wasmhost: transform not loaded")
)

// UnavailableError is why a pipeline cannot run: Transform, the first
// transform of its chain that is not loaded, and Err, why (it wraps
// ErrNotFound when no transform of that name is stored, else ErrNotLoaded).
// It matches ErrUnavailable with errors.Is.
type UnavailableError struct {
	Pipeline  string
	Transform string
	Err       error
}

// Error implements error: `pipeline "P" is unavailable: transform "T"
// cannot be loaded: why`.
func (e *UnavailableError) Error() string {
	return fmt.Sprintf("pipeline %q is unavailable: transform %q cannot be loaded: %s",
		e.Pipeline, e.Transform, strings.TrimPrefix(e.Err.Error(), "wasmhost: "))
}

// Unwrap returns ErrUnavailable.
func (e *UnavailableError) Unwrap() error { return ErrUnavailable }

// notLoadedError is why a transform is not loaded.
type notLoadedError struct{ err error }

func (e *notLoadedError) Error() string { return e.err.Error() }

func (e *notLoadedError) Unwrap() []error { return []error{ErrNotLoaded, e.err} }

// Err returns nil while the pipeline can run, else an *UnavailableError
// naming the transform that is not loaded and why.
func (p *Pipeline) Err() error {
	if c := p.cur.Load(); c.err != nil {
		return c.err
	}
	return nil
}

// Unavailable returns the error of every pipeline that cannot run, sorted
// by pipeline name (nil when every pipeline can run).
func (h *Host) Unavailable() []*UnavailableError {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []*UnavailableError
	for _, p := range h.pipelines {
		if c := p.cur.Load(); c.err != nil {
			out = append(out, c.err)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Pipeline < out[j].Pipeline })
	return out
}

// MarkUnavailable records that transform name cannot be loaded because of
// err (a module of the start-up folder that fails to compile, say): every
// pipeline that uses it is unavailable until the transform is added again,
// even when an older version of it is stored. Get and List report err.
func (h *Host) MarkUnavailable(name string, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.broken[name] = &notLoadedError{err: err}
	h.rebuildLocked(name)
}

// loadErrLocked returns nil when transform name is loaded, else why not.
func (h *Host) loadErrLocked(name string) error {
	if err := h.broken[name]; err != nil {
		return err
	}
	if _, ok := h.transforms[name]; !ok {
		return fmt.Errorf("%w: no transform %q is stored (never added, or its files were deleted from the data folder)", ErrNotFound, name)
	}
	return nil
}

// chainLocked resolves names to their current versions. When one is not
// loaded the chain is unavailable: it keeps the names, runs nothing and
// carries the error of the first one missing.
func (h *Host) chainLocked(pipeline string, names []string) *chain {
	c := &chain{names: append([]string(nil), names...)}
	for _, tn := range names {
		if err := h.loadErrLocked(tn); err != nil {
			c.versions = nil
			c.err = &UnavailableError{Pipeline: pipeline, Transform: tn, Err: err}
			return c
		}
		c.versions = append(c.versions, h.transforms[tn].current)
	}
	return c
}

// rebuildLocked re-resolves, atomically, every pipeline whose chain names
// transform name (a new current version, a rollback, a transform that
// became loaded or not).
func (h *Host) rebuildLocked(name string) {
	for pn, p := range h.pipelines {
		c := p.cur.Load()
		for _, tn := range c.names {
			if tn == name {
				p.cur.Store(h.chainLocked(pn, c.names))
				break
			}
		}
	}
}

// restoreTransform loads a stored transform: its current version's bytes
// (checked against the manifest's digest), compiled, validated against the
// ABI and started once (that instance stays in the pool), as Add does. It
// returns the transform with every stored version even when the current
// one fails (so that Rollback can reach an older one), or nil when the
// manifest names no stored current version.
func (h *Host) restoreTransform(ctx context.Context, m manifest) (*transform, error) {
	t := &transform{name: m.Name, counters: &counters{}}
	for _, vm := range m.Versions {
		v := h.newVersion(m.Name, vm, nil, t.counters)
		v.blobPath = h.store.blobPath(m.Name, vm.Digest)
		t.versions = append(t.versions, v)
		if vm.Version == m.Current {
			t.current = v
		} else {
			v.retired.Store(true)
		}
	}
	if t.current == nil {
		return nil, fmt.Errorf("its manifest %s names current version %d, which it does not list", h.store.rel(m.Name, "manifest.json"), m.Current)
	}
	v := t.current
	err := v.compile(ctx)
	if err == nil {
		_, err = checkModule(m.Name, v)
	}
	if err == nil {
		_, err = v.abiVersion(ctx)
	}
	if err == nil {
		h.warnUnkeyed(m.Name, v)
	}
	if err != nil {
		return t, fmt.Errorf("stored version %d: %w", m.Current, err)
	}
	return t, nil
}
