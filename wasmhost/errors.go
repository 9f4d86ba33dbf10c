package wasmhost

import (
	"errors"
	"fmt"
)

var (
	// ErrNotFound is returned when a transform, a version or a pipeline does
	// not exist.
	ErrNotFound = errors.New("wasmhost: not found")
	// ErrInUse is returned by Delete while a pipeline uses the transform:
	// remove it from every pipeline first.
	ErrInUse = errors.New("wasmhost: transform in use by a pipeline")
	// ErrInvalidModule is wrapped by every error of Add that is the module's
	// fault: garbage or truncated bytes, a missing export, a forbidden
	// import, a wrong ABI version. The message names what is wrong.
	ErrInvalidModule = errors.New("wasmhost: invalid transform module")
	// ErrBadName is returned for a transform or pipeline name outside
	// [A-Za-z0-9_.-]{1,64}.
	ErrBadName = errors.New("wasmhost: bad name")
	// ErrNoPrevious is returned by Rollback when there is no older version.
	ErrNoPrevious = errors.New("wasmhost: no previous version")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("wasmhost: host closed")
	// ErrTrap is wrapped by a *TrapError: a guest trapped, ran past its
	// deadline or out of memory.
	ErrTrap = errors.New("wasmhost: transform failed")
)

// TrapKind says how a guest call failed.
type TrapKind string

const (
	// TrapPanic is a wasm trap (unreachable, out-of-bounds access, a Go
	// panic).
	TrapPanic TrapKind = "trap"
	// TrapDeadline is a call that ran past its deadline and was interrupted.
	TrapDeadline TrapKind = "deadline"
	// TrapOOM is a guest that ran out of its memory limit.
	TrapOOM TrapKind = "oom"
	// TrapAbort is a guest whose sluice_process returned non-zero.
	TrapAbort TrapKind = "abort"
)

// TrapError is a failed guest call. With OnTrap=FailBatch, Pipeline.Process
// returns it (it wraps ErrTrap); with OnTrap=DLQ its Reason() is the dead
// letters' reason.
type TrapError struct {
	Transform string
	Kind      TrapKind
	Detail    string // first line of the runtime's message
}

// Error implements error.
func (e *TrapError) Error() string { return "wasmhost: " + e.Reason() }

// Reason is the operator-facing reason: "trap: <transform>: wasm error:
// unreachable", "deadline: <transform> exceeded 50ms", "oom: ...".
func (e *TrapError) Reason() string {
	switch e.Kind {
	case TrapDeadline:
		return fmt.Sprintf("deadline: %s %s", e.Transform, e.Detail)
	default:
		return fmt.Sprintf("%s: %s: %s", e.Kind, e.Transform, e.Detail)
	}
}

// Unwrap returns ErrTrap.
func (e *TrapError) Unwrap() error { return ErrTrap }
