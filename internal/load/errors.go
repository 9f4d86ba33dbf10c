package load

import (
	"errors"
	"fmt"
)

var (
	// ErrUsage is returned (wrapped) by Config.Validate and flag parsing when
	// the command line or configuration is invalid; Main exits with code 2.
	ErrUsage = errors.New("invalid usage")
	// ErrEventWithoutID is returned when --record-acks is given with an
	// --events file that has a line without a top-level "id" (non-empty string or
	// number): its acknowledgement could not be recorded.
	ErrEventWithoutID = errors.New(`event has no top-level "id" (needed by --record-acks)`)
	// ErrNoEvents is returned when the --events file holds no events.
	ErrNoEvents = errors.New("no events")
)

// EventsFileError reports a bad line of an --events file.
type EventsFileError struct {
	Path string
	Line int // 1-based; 0 when the error is about the whole file
	Err  error
}

// Error describes the file, the line and the cause.
func (e *EventsFileError) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("events file %s: %v", e.Path, e.Err)
	}
	return fmt.Sprintf("events file %s line %d: %v", e.Path, e.Line, e.Err)
}

// Unwrap returns the underlying error.
func (e *EventsFileError) Unwrap() error { return e.Err }

func usagef(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrUsage}, args...)...)
}
