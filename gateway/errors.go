package gateway

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"
)

// Sentinel errors of the front door. StatusOf maps each to its HTTP status.
var (
	// ErrEmptyBody is returned when a request carries no body (400).
	ErrEmptyBody = errors.New("request body is empty: send a JSON object, a JSON array of objects or NDJSON")
	// ErrInvalidJSON is returned when an application/json body (or a sniffed
	// body) is not valid JSON (400); nothing of it is accepted.
	ErrInvalidJSON = errors.New("body is not valid JSON: send a JSON object, a JSON array of objects, or NDJSON with Content-Type: application/x-ndjson")
	// ErrUnauthorized is returned for a missing or unknown API key (401).
	ErrUnauthorized = errors.New("missing or unknown API key: send Authorization: Bearer KEY, X-API-Key: KEY, Basic auth with the key as the user name, or ?api_key=KEY")
	// ErrOriginNotAllowed is returned for a browser request (or preflight)
	// from an origin the tenant's CORS origins do not allow (403).
	ErrOriginNotAllowed = errors.New("origin not allowed: add it to --cors-origin (or the tenant's cors.origins)")
	// ErrRateLimited is wrapped by the *RateLimitError of a request past
	// its key's rate limit (429).
	ErrRateLimited = errors.New("rate limit exceeded")
	// ErrIdempotencyKey is returned for an Idempotency-Key header that is
	// not 1–255 visible ASCII characters (400).
	ErrIdempotencyKey = errors.New("invalid Idempotency-Key: use 1–255 visible ASCII characters (a UUID, say)")
	// ErrIdempotencyInFlight is returned for a request whose
	// Idempotency-Key's first request was still in flight when the wait for
	// it ran out (409); retry it.
	ErrIdempotencyInFlight = errors.New("a request with this Idempotency-Key is still being processed: retry after the Retry-After delay")
	// ErrMethodNotAllowed is returned for a method other than POST on the
	// ingest path (405).
	ErrMethodNotAllowed = errors.New("method not allowed: use POST /v1/events")
	// ErrNotFound is returned for an unknown path (404).
	ErrNotFound = errors.New("not found: events go to POST /v1/events")
	// ErrBodyTooLarge is returned when a body exceeds the body cap, before or
	// after decompression (413).
	ErrBodyTooLarge = errors.New("request body too large: split it into smaller requests")
	// ErrTooManyEvents is wrapped by the *TooManyEventsError of a body that
	// carries more events than the per-request cap (413); nothing of it is
	// accepted.
	ErrTooManyEvents = errors.New("too many events in one request")
	// ErrUnsupportedMediaType is returned for a Content-Type that is not JSON
	// (415).
	ErrUnsupportedMediaType = errors.New("unsupported Content-Type: use application/json or application/x-ndjson")
	// ErrUnsupportedEncoding is returned for a Content-Encoding other than
	// gzip, deflate, br or zstd (415).
	ErrUnsupportedEncoding = errors.New("unsupported Content-Encoding: use gzip or zstd, or none")
	// ErrOverloaded is returned when the gate holds or the queue is full
	// (503); the client should retry after Retry-After.
	ErrOverloaded = errors.New("sluice is overloaded: retry after the Retry-After delay, or add capacity (--memory-limit, more instances)")
	// ErrReadLimit is wrapped by the *ReadLimitError of a request that found
	// every body-read slot taken for its whole queue timeout (503).
	ErrReadLimit = errors.New("too many concurrent body reads")
	// ErrSinkUnavailable is returned when the sink (Kafka) failed or is down
	// (503); nothing of the request was acknowledged and it must be retried.
	ErrSinkUnavailable = errors.New("the sink is unavailable (Kafka down or failing): retry after the Retry-After delay; check the brokers")
	// ErrShuttingDown is returned for requests that arrive or are still
	// waiting while sluice shuts down (503).
	ErrShuttingDown = errors.New("sluice is shutting down: retry against another instance")
	// ErrAckTimeout is returned when the sink did not acknowledge a request
	// within the ack timeout (504). Its records may still be written: a
	// retry can create duplicates (at-least-once).
	ErrAckTimeout = errors.New("the sink did not acknowledge the events within the ack timeout: retry (duplicates are possible)")
	// ErrHeadersTooLarge is returned when the request line and headers do not
	// fit the read buffer (431).
	ErrHeadersTooLarge = errors.New("request headers too large: keep the request line and headers under 8 KiB")
	// ErrMalformedRequest is returned for a request that is not valid HTTP/1.1
	// (400).
	ErrMalformedRequest = errors.New("malformed HTTP request: send POST /v1/events with a valid request line, headers and body framing")
	// ErrConfig is wrapped by every configuration error.
	ErrConfig = errors.New("invalid configuration")
	// ErrPipelineUnavailable is wrapped by a *PipelineError: the tenant's
	// pipeline cannot run because one of its transforms is not loaded (503);
	// nothing of the request was accepted.
	ErrPipelineUnavailable = errors.New("pipeline unavailable")
	// ErrDegraded is wrapped by what /readyz reads while some pipelines are
	// unavailable and others run: sluice takes traffic (/readyz answers 200
	// with status "degraded" and why).
	ErrDegraded = errors.New("degraded")
)

// pipelineRetryAfter is the Retry-After of a request whose pipeline is
// unavailable: it takes an operator to repair it.
const pipelineRetryAfter = 10 * time.Second

// PipelineError is the 503 of a request whose tenant's pipeline is
// unavailable (wasmhost.UnavailableError): it names the transform that is
// not loaded and why. Nothing of the request is delivered, not even
// untransformed: the client retries once an operator uploaded the
// transform again or changed the pipeline.
type PipelineError struct {
	// Err is the host's *wasmhost.UnavailableError.
	Err error
}

// Error implements error.
func (e *PipelineError) Error() string {
	return e.Err.Error() + "; nothing of the request was accepted: retry after the Retry-After delay (an operator must upload the transform again or change the pipeline)"
}

// Unwrap returns ErrPipelineUnavailable and the host's error.
func (e *PipelineError) Unwrap() []error { return []error{ErrPipelineUnavailable, e.Err} }

// PressureError is a 503 caused by the governor: the gate latched or the
// receive queue is full. It names the pressure source so an operator knows
// which limit to raise.
type PressureError struct {
	// Source is the pressure source that latched ("memory_guard",
	// "go_heap", "queue", "sink").
	Source string
	// Level is the unified pressure level in [0, 1] at rejection.
	Level float64
	// RetryAfter is the delay the client is told to wait.
	RetryAfter time.Duration
	// Err is ErrOverloaded or ErrSinkUnavailable.
	Err error
}

// Error implements error.
func (e *PressureError) Error() string {
	return fmt.Sprintf("%v (pressure %s at %.2f)", e.Err, e.Source, e.Level)
}

// Unwrap returns the sentinel.
func (e *PressureError) Unwrap() error { return e.Err }

// ReadLimitError is a 503 for a request that waited its whole queue
// timeout for one of the read slots (--max-concurrent-reads): sluice was
// busy reading, decompressing and splitting other bodies. It wraps
// ErrReadLimit.
type ReadLimitError struct {
	// Slots is the number of concurrent body reads allowed.
	Slots int
	// Waited is how long the request waited (--read-queue-timeout).
	Waited time.Duration
}

// Error implements error; the message tells the operator what to raise.
func (e *ReadLimitError) Error() string {
	return fmt.Sprintf("sluice is busy: %d request bodies are being read and split at once and this one waited %v for a slot; "+
		"retry after the Retry-After delay, or raise --max-concurrent-reads (or --read-queue-timeout), or add CPUs or instances", e.Slots, e.Waited)
}

// Unwrap returns ErrReadLimit.
func (e *ReadLimitError) Unwrap() error { return ErrReadLimit }

// TooManyEventsError is a 413 for a body of more events (records and
// dead letters) than the per-request cap. It wraps ErrTooManyEvents.
type TooManyEventsError struct {
	// Max is the cap (--max-events).
	Max int
}

// Error implements error; the message says the cap and what to do.
func (e *TooManyEventsError) Error() string {
	return fmt.Sprintf("too many events in one request: more than %d (--max-events); split the body into smaller requests, or raise --max-events", e.Max)
}

// Unwrap returns ErrTooManyEvents.
func (e *TooManyEventsError) Unwrap() error { return ErrTooManyEvents }

// RateLimitError is the answer to a request past its API key's rate limit
// (--rate-limit, a tenant's rate_limit): 429 with Retry-After, the seconds
// until the key's bucket holds the request's events. A request of more
// events than the burst can never fit: it is 413 instead. It wraps
// ErrRateLimited (or ErrTooManyEvents for the 413).
type RateLimitError struct {
	// Limit is the key's rate in events per second; Burst its bucket size.
	Limit, Burst int
	// Events are the request's events (0: refused before its body was
	// read, the bucket being empty).
	Events int
	// RetryAfter is how long until the events fit (0 for the 413).
	RetryAfter time.Duration
}

// Error implements error; the message says the limit and what to do.
func (e *RateLimitError) Error() string {
	switch {
	case e.Events > e.Burst:
		return fmt.Sprintf("too many events for the rate limit: this request has %d events and this API key's bucket holds at most %d (%d events/s, burst %d); split it into requests of at most %d events, or raise --rate-burst",
			e.Events, e.Burst, e.Limit, e.Burst, e.Burst)
	case e.Events == 0:
		return fmt.Sprintf("rate limit exceeded: this API key may send %d events/s (burst %d) and has used them; retry after the Retry-After delay (%ds)", e.Limit, e.Burst, retryAfterSeconds(e.RetryAfter))
	default:
		return fmt.Sprintf("rate limit exceeded: this API key may send %d events/s (burst %d); this request's %d events fit again in %ds: retry after the Retry-After delay", e.Limit, e.Burst, e.Events, retryAfterSeconds(e.RetryAfter))
	}
}

// Unwrap returns ErrRateLimited, or ErrTooManyEvents for a request larger
// than the burst.
func (e *RateLimitError) Unwrap() error {
	if e.Events > e.Burst {
		return ErrTooManyEvents
	}
	return ErrRateLimited
}

// appendFields adds the limit to the JSON error body.
func (e *RateLimitError) appendFields(b []byte) []byte {
	b = append(b, `,"limit":{"events_per_second":`...)
	b = strconv.AppendInt(b, int64(e.Limit), 10)
	b = append(b, `,"burst":`...)
	b = strconv.AppendInt(b, int64(e.Burst), 10)
	b = append(b, '}')
	if e.Events <= e.Burst {
		b = append(b, `,"retry_after_seconds":`...)
		b = strconv.AppendInt(b, int64(retryAfterSeconds(e.RetryAfter)), 10)
	}
	return b
}

// errorFields is an error that adds fields to its JSON error body.
type errorFields interface {
	appendFields(b []byte) []byte
}

// StatusOf maps an error to its HTTP status code: the one place where this
// mapping lives.
func StatusOf(err error) int {
	switch {
	case err == nil:
		return fasthttp.StatusOK
	case errors.Is(err, ErrEmptyBody), errors.Is(err, ErrInvalidJSON), errors.Is(err, ErrMalformedRequest), errors.Is(err, ErrIdempotencyKey):
		return fasthttp.StatusBadRequest
	case errors.Is(err, ErrHeadersTooLarge):
		return fasthttp.StatusRequestHeaderFieldsTooLarge
	case errors.Is(err, ErrUnauthorized):
		return fasthttp.StatusUnauthorized
	case errors.Is(err, ErrOriginNotAllowed):
		return fasthttp.StatusForbidden
	case errors.Is(err, ErrRateLimited):
		return fasthttp.StatusTooManyRequests
	case errors.Is(err, ErrIdempotencyInFlight):
		return fasthttp.StatusConflict
	case errors.Is(err, ErrNotFound):
		return fasthttp.StatusNotFound
	case errors.Is(err, ErrMethodNotAllowed):
		return fasthttp.StatusMethodNotAllowed
	case errors.Is(err, ErrBodyTooLarge), errors.Is(err, fasthttp.ErrBodyTooLarge), errors.Is(err, ErrTooManyEvents):
		return fasthttp.StatusRequestEntityTooLarge
	case errors.Is(err, ErrUnsupportedMediaType), errors.Is(err, ErrUnsupportedEncoding),
		errors.Is(err, fasthttp.ErrContentEncodingUnsupported):
		return fasthttp.StatusUnsupportedMediaType
	case errors.Is(err, ErrOverloaded), errors.Is(err, ErrSinkUnavailable), errors.Is(err, ErrShuttingDown),
		errors.Is(err, ErrReadLimit), errors.Is(err, ErrPipelineUnavailable):
		return fasthttp.StatusServiceUnavailable
	case errors.Is(err, ErrAckTimeout):
		return fasthttp.StatusGatewayTimeout
	default:
		return fasthttp.StatusInternalServerError
	}
}

// retryAfterOf returns the Retry-After delay for a 503, a 429 or a 409
// (zero otherwise).
func retryAfterOf(err error, def time.Duration) time.Duration {
	var pe *PressureError
	if errors.As(err, &pe) && pe.RetryAfter > 0 {
		return pe.RetryAfter
	}
	if errors.Is(err, ErrPipelineUnavailable) {
		return pipelineRetryAfter
	}
	var rl *RateLimitError
	if errors.As(err, &rl) {
		return rl.RetryAfter
	}
	switch StatusOf(err) {
	case fasthttp.StatusServiceUnavailable:
		return def
	case fasthttp.StatusConflict:
		return time.Second
	}
	return 0
}

// writeError answers with err's status and a JSON body {"error": "..."}.
// Retry-After is set after ctx.Error-style resets, so it survives.
func writeError(ctx *fasthttp.RequestCtx, err error, retryAfter time.Duration) int {
	code := StatusOf(err)
	ctx.Response.ResetBody()
	ctx.SetStatusCode(code)
	ctx.SetContentType("application/json")
	msg := err.Error()
	if code == fasthttp.StatusInternalServerError {
		msg = "internal error: " + msg
	}
	b := ctx.Response.BodyWriter()
	buf := make([]byte, 0, len(msg)+16)
	buf = append(buf, `{"error":`...)
	buf = appendJSONString(buf, msg)
	if f, ok := err.(errorFields); ok { //nolint:errorlint // only the error itself adds fields
		buf = f.appendFields(buf)
	}
	buf = append(buf, '}', '\n')
	_, _ = b.Write(buf)
	if ra := retryAfterOf(err, retryAfter); ra > 0 {
		ctx.Response.Header.Set("Retry-After", strconv.Itoa(retryAfterSeconds(ra)))
	}
	return code
}

// appendJSONString appends s as a JSON string literal.
func appendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c == '\n':
			dst = append(dst, '\\', 'n')
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}
