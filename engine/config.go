package engine

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/sluicehq/sluice/governor"
)

// DLQPolicy is the one policy every dead letter goes through before its
// block is committed: inbound dead letters a receiver attached to a batch,
// parse failures, dead letters the process stage produced, and records the
// sink reported as failed (RecordErrors).
type DLQPolicy uint8

const (
	// DLQReject (the default): dead letters are a terminal error
	// (*DLQRouteError wrapping ErrDLQRejected); nothing is committed.
	DLQReject DLQPolicy = iota
	// DLQRoute writes dead letters to Config.DLQ before the block's sink
	// call (the sink's failed records right after it), before the commit; a
	// DLQ write failure is terminal.
	DLQRoute
	// DLQDiscardWithMetric drops dead letters and counts them in
	// Stats.DLQDiscarded: opt-in, counted loss.
	DLQDiscardWithMetric
)

// String returns the policy's name.
func (p DLQPolicy) String() string {
	switch p {
	case DLQReject:
		return "reject"
	case DLQRoute:
		return "route"
	case DLQDiscardWithMetric:
		return "discard_with_metric"
	default:
		return fmt.Sprintf("DLQPolicy(%d)", uint8(p))
	}
}

// ParseErrorAction says what RunParsed does with a record that does not
// parse.
type ParseErrorAction uint8

const (
	// ParseErrorDLQ (the default): the record becomes a dead letter (stage
	// "parse") routed through the DLQ policy before the commit.
	ParseErrorDLQ ParseErrorAction = iota
	// ParseErrorSkip drops the record and counts it in Stats.ParseSkipped.
	ParseErrorSkip
	// ParseErrorFailBatch fails the block (ErrParseBatchFailed): terminal,
	// nothing committed.
	ParseErrorFailBatch
)

// String returns the action's name.
func (a ParseErrorAction) String() string {
	switch a {
	case ParseErrorDLQ:
		return "dlq"
	case ParseErrorSkip:
		return "skip"
	case ParseErrorFailBatch:
		return "fail_batch"
	default:
		return fmt.Sprintf("ParseErrorAction(%d)", uint8(a))
	}
}

// DefaultMaxRecords is the record cap of one receive when Config.MaxRecords
// is 0.
const DefaultMaxRecords = 1000

// Config configures a Driver. It is validated once by NewDriver and never
// changes afterwards; the zero value (with nothing optional set) is valid.
type Config struct {
	// MaxRecords caps the records of one receive. Default 1000 (0 selects
	// it). RunGoverned uses min(MaxRecords, Budget.RecordCap()).
	MaxRecords int
	// DLQPolicy routes every dead letter. Default DLQReject.
	DLQPolicy DLQPolicy
	// DLQ receives dead letters under DLQRoute; required for it, unused
	// otherwise.
	DLQ DLQSink
	// ParseError is RunParsed's action on a record that does not parse.
	// Default ParseErrorDLQ.
	ParseError ParseErrorAction
	// Guard, when set, accounts each block's (or, when streaming, each
	// sub-block's) bytes (Record.Size) while it is processed and sunk; the
	// lease is released on every exit path. Optional.
	Guard *governor.MemoryGuard
	// Budget, when set, makes RunGoverned bound each receive by the current
	// byte budget and stream sub-blocks of that size, feeding the AIMD loop.
	// Without it RunGoverned behaves as Run. Optional.
	Budget *governor.ByteBudget
	// TickEvery is the period of OnTick (flush timers, maintenance). 0
	// disables ticking. Ticks run on the loop goroutine between receives,
	// never concurrently with each other; a receive is bounded by the next
	// tick's deadline. With Depth ≤ 1 that is between blocks, so never
	// concurrently with process or sink; with Depth > 1 blocks received
	// earlier may be in flight.
	TickEvery time.Duration
	// OnTick is called every TickEvery. Its error is logged and counted in
	// Stats.TickErrors; it does not stop the loop. Required iff TickEvery > 0.
	OnTick func(context.Context) error
	// Logger receives lifecycle and terminal-error logs (never per block).
	// Default: discard.
	Logger *slog.Logger
	// Observer receives per-block and per-budget measurements (for metrics
	// export). Optional; called one at a time per run (with Depth > 1 from
	// the run's stage goroutines), must not block.
	Observer Observer
	// Depth is how many sub-blocks RunGoverned keeps in flight at once
	// (received and leased, being processed, or waiting for the sink): with
	// Depth > 1 up to Depth sub-blocks are processed concurrently while
	// earlier ones are sunk and committed in receive order, so the process
	// stage does not wait for the sink's acknowledgements nor the sink for
	// the guests. The driver then leases up to Depth × the byte budget.
	// 0 or 1 (the default): one block at a time. At most MaxDepth. Run and
	// RunParsed ignore it.
	Depth int
}

// Validate reports an unusable configuration (wrapping ErrInvalidConfig).
func (c Config) Validate() error {
	bad := func(field string, v any, why string) error {
		return fmt.Errorf("%w: %s = %v: %s", ErrInvalidConfig, field, v, why)
	}
	switch {
	case c.MaxRecords < 0:
		return bad("MaxRecords", c.MaxRecords, "must be ≥ 0 (0 selects 1000)")
	case c.DLQPolicy > DLQDiscardWithMetric:
		return bad("DLQPolicy", c.DLQPolicy, "unknown DLQ policy")
	case c.DLQPolicy == DLQRoute && c.DLQ == nil:
		return bad("DLQ", nil, "a DLQ sink is required by DLQPolicy route")
	case c.ParseError > ParseErrorFailBatch:
		return bad("ParseError", c.ParseError, "unknown parse-error action")
	case c.Depth < 0 || c.Depth > MaxDepth:
		return bad("Depth", c.Depth, fmt.Sprintf("must be in [0, %d] (0 and 1: one block at a time)", MaxDepth))
	case c.TickEvery < 0:
		return bad("TickEvery", c.TickEvery, "must be ≥ 0")
	case c.TickEvery > 0 && c.OnTick == nil:
		return bad("OnTick", nil, "required when TickEvery > 0")
	case c.TickEvery == 0 && c.OnTick != nil:
		return bad("TickEvery", c.TickEvery, "must be > 0 when OnTick is set")
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.MaxRecords == 0 {
		c.MaxRecords = DefaultMaxRecords
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Observer receives the driver's measurements so the gateway can export
// metrics without the engine importing a metrics library. Calls come one
// at a time per run (from the run loop goroutine, or with Config.Depth > 1
// from the run's stage goroutines); they must be cheap and must not block.
type Observer interface {
	// ObserveBlock is called after each block was sunk and committed.
	ObserveBlock(BlockStats)
	// ObserveBudget is called by RunGoverned after each receive (also an
	// empty one) once the AIMD loop folded it in (with Depth > 1: a block
	// when it was committed, an empty receive at once).
	ObserveBudget(BudgetSample)
}

// BlockStats describes one block that completed.
type BlockStats struct {
	// Records and Bytes are the block as received (Bytes is the sum of
	// Record.Size; 0 unless a Guard, Budget or Observer needs it — with an
	// Observer it is always filled).
	Records int
	Bytes   int64
	// OutRecords is the number of records handed to the sink (after fan-out
	// or filtering), summed over sub-blocks.
	OutRecords int
	// DeadLetters is the number of dead letters routed or discarded;
	// SinkDeadLetters is how many of them the sink reported (RecordErrors).
	DeadLetters, SinkDeadLetters int
	// SubBlocks is the number of sink calls (1 unless streaming).
	SubBlocks int
	// Process, Sink and Commit are the time spent in each stage (summed over
	// sub-blocks); Total spans the block from receipt to commit.
	Process, Sink, Commit, Total time.Duration
}

// BudgetSample is what RunGoverned fed the byte budget for one receive.
type BudgetSample struct {
	// BlockBytes is the received block's bytes (0 for an empty receive).
	BlockBytes int64
	// ProcessTime is the time to drive the block (0 for an empty receive);
	// with Config.Depth > 1, the block's time from its receive to its commit
	// divided by Depth (its share of the driver's capacity).
	ProcessTime time.Duration
	// IngestInterval is the time since the previous receive returned.
	IngestInterval time.Duration
	// BudgetBytes and RecordCap are the budget after the observation.
	BudgetBytes int64
	RecordCap   int
}
