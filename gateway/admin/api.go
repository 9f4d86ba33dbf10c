package admin

import (
	"context"
	"time"

	"github.com/sluicehq/sluice/governor"
)

// Transforms is the transform registry the API manages (the wasmhost Host,
// through HostTransforms). Implementations are safe for concurrent use; the
// API calls them from many request goroutines. Byte slices passed in belong
// to the implementation after the call (the API never reuses them); slices
// returned belong to the API.
//
// Errors: ErrNotFound for an unknown name, ErrInUse when a pipeline still
// uses the transform, ErrNoPrevious when there is nothing to roll back to,
// ErrInvalid (or an *InvalidError) for a module that does not compile or
// does not follow the ABI. Anything else is a 500.
type Transforms interface {
	// Put compiles, validates and stores module under name. A name that
	// exists gets a new version; the previous one is kept for Rollback.
	Put(ctx context.Context, name string, module []byte) (TransformInfo, error)
	// List returns every transform, sorted by name.
	List(ctx context.Context) ([]TransformInfo, error)
	// Get returns one transform.
	Get(ctx context.Context, name string) (TransformInfo, error)
	// Delete removes a transform and all its versions.
	Delete(ctx context.Context, name string) error
	// Rollback makes the previous version current and returns it.
	Rollback(ctx context.Context, name string) (TransformInfo, error)
	// DryRun runs events through the named transforms, in order, without
	// producing anything downstream.
	DryRun(ctx context.Context, transforms []string, events [][]byte) (DryRunResult, error)
}

// Pipelines reads and swaps the transform chain of the default pipeline and
// of each tenant's. Tenant "" is the default pipeline. Safe for concurrent
// use. SetPipeline is atomic: batches in flight finish on the old chain.
// An unknown transform is ErrInvalid; an unknown tenant is ErrNotFound.
type Pipelines interface {
	// Pipeline returns the current chain of tenant.
	Pipeline(tenant string) ([]string, error)
	// SetPipeline replaces the chain of tenant.
	SetPipeline(tenant string, transforms []string) error
	// Tenants returns the configured tenants (without the default "").
	Tenants() []string
}

// PressureReader is the unified pressure (*governor.UnifiedPressure).
type PressureReader interface {
	Snapshot() governor.Snapshot
	// Hysteresis returns the latch's thresholds.
	Hysteresis() governor.Hysteresis
}

// BudgetReader is the AIMD byte budget (*governor.ByteBudget).
type BudgetReader interface {
	Stats() governor.BudgetStats
}

// MemoryReader is the in-flight memory guard (*governor.MemoryGuard).
type MemoryReader interface {
	InFlight() int64
	Limit() int64
}

// GateReader is the inbound gate (*governor.InboundGate).
type GateReader interface {
	State() string
	Rejections() uint64
}

// TrafficReader reads the gateway's traffic counters (the gateway's
// Metrics). Safe for concurrent use.
type TrafficReader interface {
	// Traffic returns the counters since start. Its SinkLatencyMax is the
	// longest sink write since the previous call: the history sampler is
	// the one caller.
	Traffic() Traffic
}

// Traffic is a reading of the gateway's counters, cumulative since start
// (except SinkLatencyMax).
type Traffic struct {
	// IngestRequests are ingest requests answered, any status.
	IngestRequests uint64
	// IngestEvents are events accepted into the receive queue.
	IngestEvents uint64
	// IngestBytes are body bytes (decompressed) accepted into the queue.
	IngestBytes uint64
	// GateRejections are ingest requests answered 503 under pressure.
	GateRejections uint64
	// Dropped are records dropped by transforms.
	Dropped uint64
	// DeadLettered are records written to the dead-letter topic.
	DeadLettered uint64
	// SinkRecords are records the sink acknowledged; SinkErrors failed
	// sink writes; SinkWrites all sink writes.
	SinkRecords, SinkErrors, SinkWrites uint64
	// SinkLatency is the total duration of the SinkWrites.
	SinkLatency time.Duration
	// SinkLatencyMax is the longest sink write since the previous call.
	SinkLatencyMax time.Duration
}

// StatusReader reads the gateway's readiness and its sink's health (the
// gateway's App). Safe for concurrent use.
type StatusReader interface {
	// Ready returns nil when the gateway takes traffic, else why not.
	Ready() error
	// SinkError returns nil while the sink is healthy, else the error that
	// made it unhealthy.
	SinkError() error
}

// TransformInfo describes a transform: its current version and counters.
type TransformInfo struct {
	// Name is the transform's name ([a-z0-9][a-z0-9_-]{0,62}).
	Name string `json:"name"`
	// Digest is the hex SHA-256 of the current version's module bytes.
	Digest string `json:"digest"`
	// Size is the current module's size in bytes.
	Size int64 `json:"size"`
	// ABIVersion is the ABI version the module was built for.
	ABIVersion int `json:"abi_version"`
	// Exports are the module's exported functions.
	Exports []string `json:"exports"`
	// Version is the current version number (1 for the first upload).
	Version int `json:"version"`
	// Versions lists the version numbers kept, oldest first.
	Versions []int `json:"versions,omitempty"`
	// Created is when the current version was uploaded.
	Created time.Time `json:"created"`
	// UsedBy lists the pipelines that use the transform ("default" or a tenant).
	UsedBy []string `json:"used_by"`
	// Calls, Records and Traps count guest calls, records processed and
	// traps since start.
	Calls   uint64 `json:"calls"`
	Records uint64 `json:"records"`
	Traps   uint64 `json:"traps"`
	// PeakMemoryBytes is the largest linear memory an instance of the
	// current version reached serving traffic (0 before its first
	// instance; dry runs do not count).
	PeakMemoryBytes uint64 `json:"peak_memory_bytes"`
	// Error says why the transform is not loaded (it failed to load at
	// start: every pipeline that uses it is unavailable until it is
	// uploaded again); absent when it is loaded.
	Error string `json:"error,omitempty"`
}

// PipelineAvailability is implemented by Pipelines that know whether a
// tenant's chain can run (HostRegistry does). GET /admin/pipeline then says
// "available" and, when not, why.
type PipelineAvailability interface {
	// PipelineErr returns nil when tenant's pipeline can run, else why not
	// (a transform of its chain is not loaded).
	PipelineErr(tenant string) error
}

// Decisions of DryRunEvent.Decision.
const (
	DecisionKept         = "kept"
	DecisionDropped      = "dropped"
	DecisionDeadLettered = "dead_lettered"
	DecisionFannedOut    = "fanned_out"
)

// DryRunResult is what a dry-run shows: every output record and every
// input's decision. Nothing of it went downstream.
type DryRunResult struct {
	// Transforms is the chain that ran.
	Transforms []string
	// Events has one entry per input event, in input order.
	Events []DryRunEvent
	// Records are the output records, in output order.
	Records []DryRunRecord
	// PeakMemoryBytes is the largest guest linear memory seen during the run.
	PeakMemoryBytes int64
	// Duration is the whole run's wall time.
	Duration time.Duration
}

// DryRunEvent is one input's fate.
type DryRunEvent struct {
	// Index is the input's position (0-based).
	Index int
	// Decision is one of DecisionKept, DecisionDropped,
	// DecisionDeadLettered, DecisionFannedOut.
	Decision string
	// Outputs is how many output records the input became.
	Outputs int
	// Reason and Stage say why and where it was dead-lettered.
	Reason, Stage string
	// Duration is the guest time spent on this event.
	Duration time.Duration
}

// DryRunRecord is one output record as the sink would write it.
type DryRunRecord struct {
	// Input is the index of the input event it came from (-1 if unknown).
	Input int
	// Topic is the output topic ("" = the sink's default).
	Topic string
	// Key is the partitioning key (nil = none).
	Key []byte
	// Headers are the record's headers, in order.
	Headers []DryRunHeader
	// Value is the payload.
	Value []byte
}

// DryRunHeader is one record header.
type DryRunHeader struct {
	Key   string
	Value []byte
}
