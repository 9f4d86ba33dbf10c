package admin

import (
	"errors"
	"fmt"
	"net/http"
)

// Sentinel errors. The dependencies the API consumes (Transforms, Pipelines)
// return these — wrapped with context is fine — so that the one status mapping
// in statusOf turns them into the right HTTP status.
var (
	// ErrNotFound is returned when a transform (or tenant) does not exist. → 404
	ErrNotFound = errors.New("not found")
	// ErrInUse is returned when a transform cannot be deleted because a
	// pipeline uses it. → 409
	ErrInUse = errors.New("in use by a pipeline")
	// ErrNoPrevious is returned by a rollback when no earlier version is kept. → 409
	ErrNoPrevious = errors.New("no previous version to roll back to")
	// ErrInvalid is returned for a request the API refuses as malformed: a
	// module that does not compile or does not follow the ABI, a bad name, an
	// unknown transform in a pipeline, an unparseable sample. → 400
	ErrInvalid = errors.New("invalid request")
	// ErrTooLarge is returned when a request body exceeds its cap. → 413
	ErrTooLarge = errors.New("request body too large")
	// ErrUnauthorized is returned when the bearer token is missing or wrong. → 401
	ErrUnauthorized = errors.New("missing or invalid admin token")
	// ErrUnavailable is returned when a dependency the route needs is not
	// configured in this process. → 503
	ErrUnavailable = errors.New("not available in this process")
)

// InvalidError is a 400 with a reason naming what is wrong (the import,
// export or ABI version of a module, the field of a request). It matches
// ErrInvalid with errors.Is.
type InvalidError struct {
	// Reason says what is wrong, for the operator.
	Reason string
	// Err is the underlying error, if any.
	Err error
}

// Error returns the reason and the underlying error.
func (e *InvalidError) Error() string {
	if e.Err != nil {
		if e.Reason == "" {
			return e.Err.Error()
		}
		return e.Reason + ": " + e.Err.Error()
	}
	return e.Reason
}

// Unwrap returns the underlying error.
func (e *InvalidError) Unwrap() error { return e.Err }

// Is reports ErrInvalid as a match.
func (e *InvalidError) Is(target error) bool { return target == ErrInvalid }

// Invalidf returns an *InvalidError with a formatted reason. A %w verb wraps
// its argument as the underlying error.
func Invalidf(format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	return &InvalidError{Reason: err.Error(), Err: errors.Unwrap(err)}
}

// APIError is the error every handler may return to choose the status and
// the message of the JSON error body ({"error": Message}). When Message is
// empty, Err.Error() is used. A handler may also return any other error: the
// one status mapping (statusOf) picks the status from the sentinels above,
// defaulting to 500.
type APIError struct {
	// HTTPStatus is the response status (0 means: derive it from Err).
	HTTPStatus int
	// Err is the cause (may be nil when Message is set).
	Err error
	// Message is the text shown to the client (default: Err.Error()).
	Message string
}

// Error returns the message or the cause's text.
func (e APIError) Error() string {
	if e.Message != "" {
		return e.Message
	}
	if e.Err != nil {
		return e.Err.Error()
	}
	return http.StatusText(e.HTTPStatus)
}

// Unwrap returns the cause.
func (e APIError) Unwrap() error { return e.Err }

// statusOf maps an error to its HTTP status: the one place where errors
// become status codes.
func statusOf(err error) int {
	var ae APIError
	if errors.As(err, &ae) && ae.HTTPStatus != 0 {
		return ae.HTTPStatus
	}
	switch {
	case errors.Is(err, ErrUnauthorized):
		return http.StatusUnauthorized
	case errors.Is(err, ErrTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, ErrInUse), errors.Is(err, ErrNoPrevious):
		return http.StatusConflict
	case errors.Is(err, ErrUnavailable):
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// errNoStatus is the cause of GET /admin/status in a process that gave
// the API no StatusReader.
var errNoStatus = errors.New("status: " + ErrUnavailable.Error() + " (no status reader configured)")
