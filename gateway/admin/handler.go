package admin

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sluicehq/sluice/governor"
)

// Deps are what the API reads and changes. Transforms and Pipelines are
// required; a nil governor part leaves its section of GET /admin/budget null.
type Deps struct {
	// Transforms is the transform registry.
	Transforms Transforms
	// Pipelines reads and swaps the pipelines.
	Pipelines Pipelines
	// Pressure, Budget, Memory and Gate feed GET /admin/budget.
	Pressure PressureReader
	Budget   BudgetReader
	Memory   MemoryReader
	Gate     GateReader
	// Traffic feeds the traffic series of GET /admin/history; nil leaves
	// them null.
	Traffic TrafficReader
	// Status feeds GET /admin/status and the readiness and sink series of
	// the history; nil: status 503 ErrUnavailable.
	Status StatusReader
	// HeapBytes returns the Go heap in use; nil reads runtime/metrics.
	HeapBytes func() uint64
	// Baseline returns the governor's memory baseline (nil: the budget's
	// memory.baseline is null).
	Baseline func() governor.Baseline
	// Logger receives one line per mutating request and per 5xx
	// (default slog.Default()).
	Logger *slog.Logger
	// Extra routes served behind the same token and error writer.
	Extra []Router
}

// Handler is the admin REST API: a fasthttp handler that authenticates,
// routes, and writes every error as JSON. Safe for concurrent use.
type Handler struct {
	cfg      Config
	deps     Deps
	log      *slog.Logger
	tokenSum [sha256.Size]byte
	mux      *mux
	history  *history
	started  time.Time
	dryRuns  chan struct{} // one token per dry run in progress
	ui       *uiFiles
}

// New validates cfg and deps and returns the handler. It starts the
// history's sampler (one reading per Config.HistoryInterval): Close stops
// it.
func New(cfg Config, deps Deps) (*Handler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Transforms == nil || deps.Pipelines == nil {
		return nil, errors.New("admin: Deps.Transforms and Deps.Pipelines are required")
	}
	h := &Handler{
		cfg:      cfg.withDefaults(),
		deps:     deps,
		log:      deps.Logger,
		tokenSum: sha256.Sum256([]byte(cfg.Token)),
		started:  time.Now(),
		dryRuns:  make(chan struct{}, maxDryRuns),
		ui:       uiAssets,
	}
	if h.log == nil {
		h.log = slog.Default()
	}
	if h.deps.HeapBytes == nil {
		h.deps.HeapBytes = readHeapBytes
	}
	routes := h.Routes()
	for _, r := range deps.Extra {
		routes = append(routes, r.Routes()...)
	}
	m, err := newMux(routes)
	if err != nil {
		return nil, err
	}
	h.mux = m
	h.history = newHistory(&h.deps, h.cfg.HistoryInterval, h.cfg.HistoryLength)
	go h.history.run()
	return h, nil
}

// Close stops the history's sampler. The handler keeps serving (the
// history no longer moves). Safe to call more than once, and on a nil
// Handler.
func (h *Handler) Close() {
	if h != nil {
		h.history.close()
	}
}

// Routes returns the admin API's routes (Handler is a Router).
func (h *Handler) Routes() []Route {
	return []Route{
		{Method: http.MethodGet, Pattern: "/admin/transforms", Handler: h.listTransforms},
		{Method: http.MethodGet, Pattern: "/admin/transforms/{name}", Handler: h.getTransform},
		{Method: http.MethodPut, Pattern: "/admin/transforms/{name}", Handler: h.putTransform},
		{Method: http.MethodDelete, Pattern: "/admin/transforms/{name}", Handler: h.deleteTransform},
		{Method: http.MethodPost, Pattern: "/admin/transforms/{name}/rollback", Handler: h.rollbackTransform},
		{Method: http.MethodPost, Pattern: "/admin/transforms/{name}/test", Handler: h.testTransform},
		{Method: http.MethodGet, Pattern: "/admin/pipeline", Handler: h.getPipeline},
		{Method: http.MethodPut, Pattern: "/admin/pipeline", Handler: h.putPipeline},
		{Method: http.MethodPost, Pattern: "/admin/pipeline/test", Handler: h.testPipeline},
		{Method: http.MethodGet, Pattern: "/admin/budget", Handler: h.getBudget},
		{Method: http.MethodGet, Pattern: "/admin/history", Handler: h.getHistory},
		{Method: http.MethodGet, Pattern: "/admin/status", Handler: h.getStatus},
		// The console's static files: public, since the page itself asks
		// for the token (it holds no data).
		{Method: http.MethodGet, Pattern: "/ui", Handler: h.serveUI, Public: true},
		{Method: http.MethodGet, Pattern: "/ui/{file}", Handler: h.serveUI, Public: true},
		{Method: http.MethodGet, Pattern: "/ui/vendor/uplot/{file}", Handler: h.serveUI, Public: true},
	}
}

// MaxRequestBodySize is the body size the listener serving h must accept
// (fasthttp.Server.MaxRequestBodySize): the larger of the upload and sample
// caps plus one byte, so that a body one byte over the cap reaches the
// handler and is answered 413 with a JSON error.
func (h *Handler) MaxRequestBodySize() int {
	n := max(h.cfg.MaxUpload, h.cfg.MaxSample)
	return int(n) + 1
}

// ServeFastHTTP serves one admin request: token check, routing, handler,
// and the one error writer.
func (h *Handler) ServeFastHTTP(ctx *fasthttp.RequestCtx) {
	start := time.Now()
	err := h.serve(ctx)
	if err != nil {
		writeError(ctx, err)
	}
	status := ctx.Response.StatusCode()
	method := string(ctx.Method())
	switch {
	case status >= 500:
		h.log.Error("admin request failed", "method", method, "path", string(ctx.Path()),
			"status", status, "err", err, "duration", time.Since(start))
	case status == http.StatusUnauthorized:
		h.log.Warn("admin request unauthorized", "method", method, "path", string(ctx.Path()),
			"remote", ctx.RemoteAddr().String())
	case method != http.MethodGet && method != http.MethodHead:
		// Changes are logged (an audit trail of uploads, swaps, rollbacks).
		h.log.Info("admin request", "method", method, "path", string(ctx.Path()),
			"status", status, "duration", time.Since(start), "remote", ctx.RemoteAddr().String())
	}
}

func (h *Handler) serve(ctx *fasthttp.RequestCtx) error {
	p, params := h.mux.match(string(ctx.Path()))
	method := string(ctx.Method())
	var r Route
	var found bool
	if p != nil {
		r, found = p.route(method)
	}
	if !(found && r.Public) {
		// Authenticate before telling anything about routes.
		if !h.authorized(ctx) {
			return ErrUnauthorized
		}
	}
	if p == nil {
		return APIError{HTTPStatus: http.StatusNotFound,
			Message: fmt.Sprintf("not found: no admin route %s; see GET /admin/transforms, /admin/pipeline, /admin/budget, /admin/status, /admin/history and the console at /ui/", ctx.Path())}
	}
	if !found {
		return methodNotAllowed{allow: p.allow, method: method}
	}
	return r.Handler(ctx, params)
}

// authorized compares the bearer token in constant time (hashes of equal
// length, so neither content nor length leaks through timing).
func (h *Handler) authorized(ctx *fasthttp.RequestCtx) bool {
	auth := ctx.Request.Header.Peek(fasthttp.HeaderAuthorization)
	const prefix = "bearer "
	if len(auth) < len(prefix) || !strings.EqualFold(string(auth[:len(prefix)]), prefix) {
		return false
	}
	got := sha256.Sum256(bytes.TrimSpace(auth[len(prefix):]))
	return subtle.ConstantTimeCompare(got[:], h.tokenSum[:]) == 1
}

// methodNotAllowed is a 405 that carries the Allow header's value.
type methodNotAllowed struct{ allow, method string }

func (e methodNotAllowed) Error() string {
	return fmt.Sprintf("method %s not allowed; allowed: %s", e.method, e.allow)
}

// errorBody is the JSON of every error response.
type errorBody struct {
	Error  string `json:"error"`
	Status int    `json:"status"`
}

// writeError is the one error writer: every failed admin request is
// answered by it, as {"error": "...", "status": N}.
func writeError(ctx *fasthttp.RequestCtx, err error) {
	status := statusOf(err)
	msg := err.Error()
	var mna methodNotAllowed
	isMNA := errors.As(err, &mna)
	if isMNA {
		status = http.StatusMethodNotAllowed
	}
	ctx.Response.ResetBody()
	ctx.Response.Header.Del(fasthttp.HeaderContentEncoding)
	writeJSON(ctx, status, errorBody{Error: msg, Status: status})
	// Headers go after the body helpers, which may reset them.
	switch {
	case isMNA:
		ctx.Response.Header.Set(fasthttp.HeaderAllow, mna.allow)
	case status == http.StatusUnauthorized:
		ctx.Response.Header.Set(fasthttp.HeaderWWWAuthenticate, `Bearer realm="sluice-admin"`)
	}
}

// WriteServerError answers an error the fasthttp server met before the
// handler ran: set it as fasthttp.Server.ErrorHandler of the admin listener.
// It writes the API's JSON error shape; a body over MaxRequestBodySize is
// 413, not fasthttp's default 400.
func (h *Handler) WriteServerError(ctx *fasthttp.RequestCtx, err error) {
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		writeError(ctx, fmt.Errorf("%w: modules are capped at %d bytes, sample bodies at %d",
			ErrTooLarge, h.cfg.MaxUpload, h.cfg.MaxSample))
	default:
		writeError(ctx, APIError{HTTPStatus: http.StatusBadRequest, Err: err, Message: "cannot parse request: " + err.Error()})
	}
}

// writeJSON writes v as the JSON response body with status.
func writeJSON(ctx *fasthttp.RequestCtx, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		status = http.StatusInternalServerError
		buf.Reset()
		fmt.Fprintf(&buf, `{"error":%q,"status":500}`+"\n", "encode response: "+err.Error())
	}
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBody(buf.Bytes())
}

// NotEnabled answers a request to the admin listener of a process that
// runs without an admin token (so without this API): 404
// {"error":"not found: the admin API is not enabled (set --admin-token)","status":404}.
func NotEnabled(ctx *fasthttp.RequestCtx) {
	writeError(ctx, APIError{HTTPStatus: http.StatusNotFound, Err: ErrNotFound,
		Message: "not found: the admin API is not enabled (set --admin-token or SLUICE_ADMIN_TOKEN)"})
}
