package admin

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sort"
	"time"

	"github.com/sluicehq/sluice/wasmhost"
)

// HostRegistry serves Transforms and Pipelines from a *wasmhost.Host: it
// maps the host's errors onto the API's sentinels and its types onto the
// API's JSON shapes. Safe for concurrent use (the host is).
type HostRegistry struct {
	host    *wasmhost.Host
	tenants map[string]string // tenant → wasmhost pipeline name
}

var (
	_ Transforms = (*HostRegistry)(nil)
	_ Pipelines  = (*HostRegistry)(nil)
)

// NewHostRegistry returns the registry of host. tenantPipelines maps each
// configured tenant to the name of the wasmhost pipeline its events run
// through; the default tenant "" runs wasmhost.DefaultPipeline unless the
// map says otherwise. The map is copied.
func NewHostRegistry(host *wasmhost.Host, tenantPipelines map[string]string) *HostRegistry {
	m := maps.Clone(tenantPipelines)
	if m == nil {
		m = map[string]string{}
	}
	if _, ok := m[""]; !ok {
		m[""] = wasmhost.DefaultPipeline
	}
	return &HostRegistry{host: host, tenants: m}
}

// hostError keeps the host's message and matches the API's sentinel.
type hostError struct {
	err      error
	sentinel error
}

func (e *hostError) Error() string        { return e.err.Error() }
func (e *hostError) Unwrap() error        { return e.err }
func (e *hostError) Is(target error) bool { return target == e.sentinel }

// mapHostErr translates wasmhost's sentinels to the API's.
func mapHostErr(err error) error {
	if err == nil {
		return nil
	}
	var s error
	switch {
	case errors.Is(err, wasmhost.ErrInvalidModule), errors.Is(err, wasmhost.ErrBadName), errors.Is(err, wasmhost.ErrNotLoaded):
		return &InvalidError{Err: err}
	case errors.Is(err, wasmhost.ErrNotFound):
		s = ErrNotFound
	case errors.Is(err, wasmhost.ErrInUse):
		s = ErrInUse
	case errors.Is(err, wasmhost.ErrNoPrevious):
		s = ErrNoPrevious
	case errors.Is(err, wasmhost.ErrClosed):
		s = ErrUnavailable
	default:
		return err
	}
	return &hostError{err: err, sentinel: s}
}

// info converts a host Info, adding the kept versions and the pipelines
// that use the transform.
func (r *HostRegistry) info(in wasmhost.Info, pipelines map[string][]string) TransformInfo {
	out := TransformInfo{
		Name: in.Name, Digest: in.Digest, Size: int64(in.Size), ABIVersion: in.ABIVersion,
		Exports: in.Exports, Version: in.Version, Created: in.Created,
		Calls: in.Calls, Records: in.Records, Traps: in.Traps, PeakMemoryBytes: in.PeakMemory, UsedBy: []string{}, Error: in.Error,
	}
	if vs, err := r.host.Versions(in.Name); err == nil {
		for _, v := range vs {
			out.Versions = append(out.Versions, v.Version)
		}
	}
	for p, chain := range pipelines {
		if slices.Contains(chain, in.Name) {
			out.UsedBy = append(out.UsedBy, p)
		}
	}
	sort.Strings(out.UsedBy)
	return out
}

// Put adds module as name (a new version when name exists).
func (r *HostRegistry) Put(ctx context.Context, name string, module []byte) (TransformInfo, error) {
	in, err := r.host.Add(ctx, name, module)
	if err != nil {
		return TransformInfo{}, mapHostErr(err)
	}
	return r.info(in, r.host.Pipelines()), nil
}

// List returns every transform's current version, sorted by name.
func (r *HostRegistry) List(context.Context) ([]TransformInfo, error) {
	ps := r.host.Pipelines()
	list := r.host.List()
	out := make([]TransformInfo, 0, len(list))
	for _, in := range list {
		out = append(out, r.info(in, ps))
	}
	return out, nil
}

// Get returns a transform's current version.
func (r *HostRegistry) Get(_ context.Context, name string) (TransformInfo, error) {
	in, err := r.host.Get(name)
	if err != nil {
		return TransformInfo{}, mapHostErr(err)
	}
	return r.info(in, r.host.Pipelines()), nil
}

// Delete removes a transform (ErrInUse while a pipeline uses it).
func (r *HostRegistry) Delete(_ context.Context, name string) error {
	return mapHostErr(r.host.Delete(name))
}

// Rollback makes the previous version current.
func (r *HostRegistry) Rollback(ctx context.Context, name string) (TransformInfo, error) {
	in, err := r.host.Rollback(ctx, name)
	if err != nil {
		return TransformInfo{}, mapHostErr(err)
	}
	return r.info(in, r.host.Pipelines()), nil
}

// DryRun runs events through the chain on the host, producing nothing. A
// transform that is not loaded is ErrInvalid, with why.
func (r *HostRegistry) DryRun(ctx context.Context, chain []string, events [][]byte) (DryRunResult, error) {
	start := time.Now()
	for _, name := range chain {
		if in, err := r.host.Get(name); err == nil && in.Error != "" {
			return DryRunResult{}, Invalidf("transform %q cannot be loaded: %s: upload it again", name, in.Error)
		}
	}
	res, err := r.host.DryRun(ctx, chain, events)
	if err != nil {
		return DryRunResult{}, mapHostErr(err)
	}
	out := DryRunResult{
		Transforms:      slices.Clone(chain),
		Events:          make([]DryRunEvent, len(res.Events)),
		Records:         make([]DryRunRecord, len(res.Records)),
		PeakMemoryBytes: int64(res.PeakMemory),
		Duration:        time.Since(start),
	}
	for i, e := range res.Events {
		out.Events[i] = DryRunEvent{
			Index: i, Decision: string(e.Decision), Outputs: e.Outputs,
			Reason: e.Reason, Stage: e.Stage, Duration: e.Duration,
		}
	}
	for i, rec := range res.Records {
		o := DryRunRecord{Input: rec.Event, Topic: rec.Topic, Value: rec.Value}
		if rec.Key != "" {
			o.Key = []byte(rec.Key)
		}
		for _, h := range rec.Headers {
			o.Headers = append(o.Headers, DryRunHeader{Key: h.Key, Value: []byte(h.Value)})
		}
		out.Records[i] = o
	}
	return out, nil
}

// pipelineName returns the wasmhost pipeline of tenant.
func (r *HostRegistry) pipelineName(tenant string) (string, error) {
	name, ok := r.tenants[tenant]
	if !ok {
		return "", &hostError{err: errors.New("unknown tenant " + tenant), sentinel: ErrNotFound}
	}
	return name, nil
}

// Pipeline returns tenant's current chain.
func (r *HostRegistry) Pipeline(tenant string) ([]string, error) {
	name, err := r.pipelineName(tenant)
	if err != nil {
		return nil, err
	}
	chain := r.host.Pipelines()[name]
	if chain == nil {
		chain = []string{}
	}
	return chain, nil
}

// SetPipeline atomically replaces tenant's chain. An unknown transform is
// ErrInvalid.
func (r *HostRegistry) SetPipeline(tenant string, chain []string) error {
	name, err := r.pipelineName(tenant)
	if err != nil {
		return err
	}
	if err := r.host.SetPipeline(name, chain); err != nil {
		if errors.Is(err, wasmhost.ErrNotFound) {
			return &InvalidError{Reason: "unknown transform", Err: err}
		}
		if errors.Is(err, wasmhost.ErrNotLoaded) {
			return &InvalidError{Reason: "a transform of the chain cannot be loaded: upload it again first", Err: err}
		}
		return mapHostErr(err)
	}
	return nil
}

// PipelineErr returns nil when tenant's pipeline can run, else the host's
// *wasmhost.UnavailableError (a transform of its chain is not loaded).
func (r *HostRegistry) PipelineErr(tenant string) error {
	name, err := r.pipelineName(tenant)
	if err != nil {
		return err
	}
	return r.host.Pipeline(name).Err()
}

// Tenants returns the configured tenants, sorted (the default "" excluded).
func (r *HostRegistry) Tenants() []string {
	out := make([]string, 0, len(r.tenants))
	for t := range r.tenants {
		if t != "" {
			out = append(out, t)
		}
	}
	sort.Strings(out)
	return out
}
