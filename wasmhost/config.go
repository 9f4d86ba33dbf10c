package wasmhost

import (
	"fmt"
	"log/slog"
	"runtime"
	"time"
)

// TrapPolicy says what happens to a batch whose guest call failed.
type TrapPolicy uint8

const (
	// TrapDLQ (the default) sends the failed call's records to the DLQ with
	// the reason; the batch goes on.
	TrapDLQ TrapPolicy = iota
	// TrapFailBatch fails the whole batch with a *TrapError.
	TrapFailBatch
)

// String returns "dlq" or "fail_batch".
func (p TrapPolicy) String() string {
	if p == TrapFailBatch {
		return "fail_batch"
	}
	return "dlq"
}

// Config configures a Host. The zero value is valid: every zero field takes
// its default. Do not change a Config after NewHost.
type Config struct {
	// DataDir is where transforms are stored (<DataDir>/transforms) and, if
	// CacheDir is empty, compiled code is cached (<DataDir>/cache). Empty:
	// transforms live in memory only and do not survive a restart.
	DataDir string
	// CacheDir is the compilation cache directory. Default <DataDir>/cache;
	// empty with an empty DataDir: an in-memory cache. A cached Go guest
	// compiles in about 60 ms instead of 500 ms.
	CacheDir string
	// CompileConcurrency is the most modules compiled at once, by every
	// path that compiles (Add, Rollback, restoring the data dir, dry runs
	// of a new version): compiling a Go guest holds about 35 MB of
	// compiler memory in the Go heap for half a second to a few seconds,
	// so compiling several at once multiplies the start-up peak. Default
	// 1: compiles are serialised and the peak holds one compilation's
	// memory; a gateway with memory to spare may raise it to start faster.
	// A module found in the compilation cache is not compiled and takes no
	// slot for long.
	CompileConcurrency int
	// PoolSize is the most instances kept per transform version, that is
	// the most concurrent calls to one transform; more callers wait.
	// Default GOMAXPROCS. Instances are created on demand (4–6 ms each for
	// a Go guest).
	PoolSize int
	// IdleTimeout is how long an instance may sit idle in its pool before
	// it is closed, down to one instance per transform version: pools grow
	// with demand (a sharded batch takes one instance per shard) and shrink
	// back when it passes. Default 30 s; negative keeps idle instances.
	IdleTimeout time.Duration
	// MemoryLimit is each instance's linear memory limit in bytes, rounded
	// down to 64 KiB pages. Default 64 MiB. A guest that needs more fails its
	// call with an "oom" trap.
	MemoryLimit int64
	// CallDeadline is the base deadline of one guest call. Default 50 ms.
	CallDeadline time.Duration
	// CallDeadlinePerRecord is added to CallDeadline for every record of the
	// call. Default 20 µs (a 1,000-record call gets 70 ms).
	CallDeadlinePerRecord time.Duration
	// OnTrap says what a failed call does to its batch. Default TrapDLQ.
	OnTrap TrapPolicy
	// IsolateTraps, when > 0, retries the records of a call that trapped
	// one by one on a fresh instance so only the records that trap are
	// dead-lettered; after IsolateTraps records trapped in one batch the
	// rest are dead-lettered with the batch's reason. Each isolated trap
	// costs an instantiation (4–6 ms) plus, for a deadline, the deadline.
	// Default 3; negative disables isolation (the whole call is
	// dead-lettered).
	IsolateTraps int
	// RecycleAbove recycles an instance whose linear memory grew past this
	// many bytes after a call. Default 3/4 of MemoryLimit; negative never.
	RecycleAbove int64
	// MaxEmitPerCall caps the records one call may emit. Default 100,000;
	// emit returns StatusLimit past it.
	MaxEmitPerCall int
	// KeepVersions is how many versions of a transform are kept (current
	// included) for Rollback. Default 5.
	KeepVersions int
	// Logger receives guest stdout/stderr (rate-limited) and host events.
	// Default slog.Default().
	Logger *slog.Logger
	// GuestLogRate is how many guest output lines per second per transform
	// reach the log (burst twice that); the rest are counted and summarised.
	// Default 10.
	GuestLogRate int
	// Hooks receives metrics events. Default: none.
	Hooks Hooks
	// HashKey, when set, keys hash_field: the digest of a value is then
	// HMAC-SHA-256(HashKey, value) instead of SHA-256(value), so nobody
	// without the key can recompute it from a guessed value. Guests never
	// see the key; the host keeps it for its lifetime and logs it nowhere.
	// At least 16 bytes.
	HashKey []byte
}

func (c Config) withDefaults() Config {
	if c.CompileConcurrency == 0 {
		c.CompileConcurrency = 1
	}
	if c.PoolSize == 0 {
		c.PoolSize = runtime.GOMAXPROCS(0)
	}
	if c.MemoryLimit == 0 {
		c.MemoryLimit = 64 << 20
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = 30 * time.Second
	}
	if c.CallDeadline == 0 {
		c.CallDeadline = 50 * time.Millisecond
	}
	if c.CallDeadlinePerRecord == 0 {
		c.CallDeadlinePerRecord = 20 * time.Microsecond
	}
	if c.IsolateTraps == 0 {
		c.IsolateTraps = 3
	}
	if c.RecycleAbove == 0 {
		c.RecycleAbove = c.MemoryLimit / 4 * 3
	}
	if c.MaxEmitPerCall == 0 {
		c.MaxEmitPerCall = 100_000
	}
	if c.KeepVersions == 0 {
		c.KeepVersions = 5
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.GuestLogRate == 0 {
		c.GuestLogRate = 10
	}
	if c.CacheDir == "" && c.DataDir != "" {
		c.CacheDir = c.DataDir + "/cache"
	}
	return c
}

// Validate reports a configuration that cannot work. Zero fields are valid
// (they take defaults).
func (c Config) Validate() error {
	switch {
	case c.PoolSize < 0:
		return fmt.Errorf("wasmhost: PoolSize %d < 0", c.PoolSize)
	case c.CompileConcurrency < 0:
		return fmt.Errorf("wasmhost: CompileConcurrency %d < 0", c.CompileConcurrency)
	case c.MemoryLimit < 0:
		return fmt.Errorf("wasmhost: MemoryLimit %d < 0", c.MemoryLimit)
	case c.MemoryLimit > 0 && c.MemoryLimit < 4<<20:
		return fmt.Errorf("wasmhost: MemoryLimit %d below 4 MiB: a Go guest needs about 2.4 MiB to start", c.MemoryLimit)
	case c.MemoryLimit > 4<<30:
		return fmt.Errorf("wasmhost: MemoryLimit %d above 4 GiB (wasm32 maximum)", c.MemoryLimit)
	case c.CallDeadline < 0 || c.CallDeadlinePerRecord < 0:
		return fmt.Errorf("wasmhost: negative call deadline")
	case c.OnTrap > TrapFailBatch:
		return fmt.Errorf("wasmhost: unknown OnTrap %d", c.OnTrap)
	case c.MaxEmitPerCall < 0:
		return fmt.Errorf("wasmhost: MaxEmitPerCall %d < 0", c.MaxEmitPerCall)
	case c.KeepVersions < 0:
		return fmt.Errorf("wasmhost: KeepVersions %d < 0", c.KeepVersions)
	case c.GuestLogRate < 0:
		return fmt.Errorf("wasmhost: GuestLogRate %d < 0", c.GuestLogRate)
	case len(c.HashKey) > 0 && len(c.HashKey) < MinHashKey:
		return fmt.Errorf("wasmhost: HashKey of %d bytes: want at least %d", len(c.HashKey), MinHashKey)
	}
	return nil
}

// memoryLimitPages converts the limit to 64 KiB pages.
func (c Config) memoryLimitPages() uint32 { return uint32(c.MemoryLimit >> 16) }

// deadline returns the deadline of a call over n records.
func (c Config) deadline(n int) time.Duration {
	return c.CallDeadline + time.Duration(n)*c.CallDeadlinePerRecord
}
