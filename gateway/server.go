package gateway

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice/engine"
	"github.com/sluicehq/sluice/governor"
	"github.com/valyala/fasthttp"
)

// streamAbove is the body size above which fasthttp hands the body to the
// handler as a stream, so that the gate and the limits are checked before
// the body is read.
const streamAbove = 64 << 10

// readBufferSize bounds the request line and headers of one request
// (larger: 431). It is also each connection's read buffer.
const readBufferSize = 8 << 10

// tenant is a resolved API key.
type tenant struct {
	name  string
	topic string // "" = the sink's default topic
}

// Server is the ingest front door: POST /v1/events, GET /healthz and
// GET /readyz on one fasthttp listener.
type Server struct {
	cfg    *Config
	recv   *Receiver
	gov    *governor.Governor
	m      *Metrics
	log    *slog.Logger
	keys   map[string]*tenant // nil: ingest is open (default tenant)
	def    *tenant
	ready  func() error
	nextID atomic.Uint64

	srv *fasthttp.Server
	ln  net.Listener
}

// newServer builds the front door; ready reports nil when sluice can take
// traffic (the sink is healthy and it is not shutting down).
func newServer(cfg *Config, recv *Receiver, gov *governor.Governor, m *Metrics, log *slog.Logger, ready func() error) *Server {
	s := &Server{cfg: cfg, recv: recv, gov: gov, m: m, log: log, ready: ready, def: &tenant{}}
	if len(cfg.APIKeys) > 0 || len(cfg.Tenants) > 0 {
		s.keys = make(map[string]*tenant)
		for _, k := range cfg.APIKeys {
			s.keys[k] = s.def
		}
		for _, t := range cfg.Tenants {
			tt := &tenant{name: t.Name, topic: t.Topic}
			for _, k := range t.Keys {
				s.keys[k] = tt
			}
		}
	}
	s.srv = &fasthttp.Server{
		Name:                         "sluice",
		Handler:                      s.handle,
		ErrorHandler:                 s.errorHandler,
		MaxRequestBodySize:           streamAbove,
		ReadBufferSize:               readBufferSize,
		StreamRequestBody:            true,
		DisablePreParseMultipartForm: true,
		ReadTimeout:                  30 * time.Second,
		WriteTimeout:                 30 * time.Second,
		IdleTimeout:                  60 * time.Second,
		CloseOnShutdown:              true,
		NoDefaultContentType:         true,
		Logger:                       slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return s
}

// listen binds the listener.
func (s *Server) listen() error {
	ln, err := net.Listen("tcp", s.cfg.HTTPAddr)
	if err != nil {
		return err
	}
	s.ln = ln
	return nil
}

// Addr returns the bound address.
func (s *Server) Addr() string {
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// errorHandler answers requests fasthttp could not read. fasthttp's own
// messages quote the offending bytes; they are logged at debug level, never
// echoed to the client.
func (s *Server) errorHandler(ctx *fasthttp.RequestCtx, err error) {
	var small *fasthttp.ErrSmallBuffer
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		err = ErrBodyTooLarge
	case errors.As(err, &small):
		err = ErrHeadersTooLarge
	default:
		s.log.Debug("unreadable request", "remote", ctx.RemoteAddr().String(), "err", err)
		err = ErrMalformedRequest
	}
	ctx.SetConnectionClose()
	s.m.request(writeError(ctx, err, 0))
}

func (s *Server) handle(ctx *fasthttp.RequestCtx) {
	switch string(ctx.Path()) {
	case "/v1/events":
		code := s.ingest(ctx)
		if code != fasthttp.StatusOK {
			s.drainUnread(ctx)
		}
		s.m.request(code)
	case "/healthz":
		writeJSON(ctx, fasthttp.StatusOK, `{"status":"ok"}`)
	case "/readyz":
		readyz(ctx, s.ready)
	default:
		writeError(ctx, ErrNotFound, 0)
	}
}

// drainAllowance is how many unread body bytes a rejected request may still
// send before its connection is closed instead of drained (at least the body
// cap).
const drainAllowance = 8 << 20

// drainUnread reads and drops what a rejected request left of its streamed
// body (through io.Discard's pooled buffer: no memory is held), so the client
// reads the answer — a 503's Retry-After, a 413 — instead of a connection
// reset while it is still sending. A body longer than the allowance, or one
// that does not end, closes the connection instead; a declared length past
// the allowance closes it without reading.
func (s *Server) drainUnread(ctx *fasthttp.RequestCtx) {
	if !ctx.Request.IsBodyStream() || ctx.Response.ConnectionClose() {
		return
	}
	limit := max(int64(s.cfg.MaxBody), drainAllowance)
	if cl := int64(ctx.Request.Header.ContentLength()); cl > limit {
		ctx.SetConnectionClose()
		return
	}
	n, err := io.CopyN(io.Discard, ctx.RequestBodyStream(), limit+1)
	if err != io.EOF || n > limit {
		ctx.SetConnectionClose()
	}
}

// readyz answers 200 when ready() is nil, else 503 with the reason.
func readyz(ctx *fasthttp.RequestCtx, ready func() error) {
	if err := ready(); err != nil {
		ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
		ctx.SetContentType("application/json")
		b := appendJSONString([]byte(`{"status":"not ready","error":`), err.Error())
		ctx.SetBody(append(b, '}', '\n'))
		return
	}
	writeJSON(ctx, fasthttp.StatusOK, `{"status":"ready"}`)
}

func writeJSON(ctx *fasthttp.RequestCtx, code int, body string) {
	ctx.SetStatusCode(code)
	ctx.SetContentType("application/json")
	ctx.SetBodyString(body + "\n")
}

// ingest serves POST /v1/events and returns the status it answered.
func (s *Server) ingest(ctx *fasthttp.RequestCtx) int {
	if !ctx.IsPost() {
		code := writeError(ctx, ErrMethodNotAllowed, 0)
		ctx.Response.Header.Set("Allow", "POST")
		return code
	}
	t, err := s.auth(ctx)
	if err != nil {
		return writeError(ctx, err, 0)
	}
	// The gate, before the body is read.
	if s.gov.Gate().Evaluate() == governor.Hold {
		p := s.gov.Pressure()
		src := p.LatchedBy()
		s.m.gateRejection(src)
		perr := &PressureError{Source: src, Level: p.Level(), RetryAfter: time.Second, Err: ErrOverloaded}
		if src == "sink" {
			perr.Err = ErrSinkUnavailable
		}
		return writeError(ctx, perr, time.Second)
	}
	kind, err := bodyKindOf(ctx.Request.Header.ContentType())
	if err != nil {
		return writeError(ctx, err, 0)
	}
	enc := string(bytes.ToLower(ctx.Request.Header.ContentEncoding()))
	switch enc {
	case "", "identity":
		enc = ""
	case "gzip", "x-gzip", "deflate", "br", "zstd":
		if enc == "x-gzip" {
			enc = "gzip"
		}
	default:
		return writeError(ctx, ErrUnsupportedEncoding, 0)
	}
	maxBody := int64(s.cfg.MaxBody)
	cl := int64(ctx.Request.Header.ContentLength())
	if cl > maxBody {
		return writeError(ctx, ErrBodyTooLarge, 0)
	}
	guard := s.gov.Guard()
	var lease *governor.Lease
	if cl > 0 {
		lease = guard.Lease(cl)
	}
	body, err := readBody(ctx, cl, maxBody)
	if err == nil && enc != "" {
		body, err = decompress(enc, body, maxBody)
	}
	if err != nil {
		lease.Release()
		return writeError(ctx, err, 0)
	}
	if n := int64(len(body)); lease == nil || lease.Bytes() != n {
		lease.Release()
		lease = guard.Lease(n)
	}
	id := s.nextID.Add(1)
	out := splitOut{maxEvent: int(s.cfg.MaxEvent), tag: id, topic: t.topic}
	if n := bytes.Count(body, []byte{'\n'}); n > 0 {
		out.recs = make([]engine.Record, 0, n+1)
	}
	if err := split(body, kind, &out); err != nil {
		lease.Release()
		return writeError(ctx, err, 0)
	}
	a := newAck(id, &out, lease)
	a.tenant = t.name
	if err := s.recv.Enqueue(a); err != nil {
		lease.Release()
		var pe *PressureError
		if errors.As(err, &pe) {
			s.m.gateRejection(pe.Source)
		}
		return writeError(ctx, err, time.Second)
	}
	s.m.ingestEvents.Add(a.inputs)
	s.m.ingestBytes.Add(len(body))
	timer := time.NewTimer(s.cfg.AckTimeout)
	defer timer.Stop()
	select {
	case err := <-a.done:
		if err != nil {
			return writeError(ctx, err, time.Second)
		}
	case <-timer.C:
		return writeError(ctx, ErrAckTimeout, 0)
	}
	s.m.ackLatency.UpdateDuration(a.start)
	acc, drop, dead := a.Counts()
	buf := make([]byte, 0, 64)
	buf = append(buf, `{"accepted":`...)
	buf = strconv.AppendInt(buf, acc, 10)
	buf = append(buf, `,"dropped":`...)
	buf = strconv.AppendInt(buf, drop, 10)
	buf = append(buf, `,"dead_lettered":`...)
	buf = strconv.AppendInt(buf, dead, 10)
	buf = append(buf, '}', '\n')
	ctx.SetStatusCode(fasthttp.StatusOK)
	ctx.SetContentType("application/json")
	ctx.SetBody(buf)
	return fasthttp.StatusOK
}

// auth resolves the API key to a tenant.
func (s *Server) auth(ctx *fasthttp.RequestCtx) (*tenant, error) {
	if s.keys == nil {
		return s.def, nil
	}
	key := ctx.Request.Header.Peek("X-API-Key")
	if len(key) == 0 {
		if h := ctx.Request.Header.Peek("Authorization"); len(h) > 7 && bytes.EqualFold(h[:7], []byte("bearer ")) {
			key = bytes.TrimSpace(h[7:])
		}
	}
	if t, ok := s.keys[string(key)]; ok && len(key) > 0 {
		return t, nil
	}
	return nil, ErrUnauthorized
}

// bodyKindOf maps a Content-Type to how the body is split.
func bodyKindOf(ct []byte) (bodyKind, error) {
	if i := bytes.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	mt := string(bytes.ToLower(bytes.TrimSpace(ct)))
	switch mt {
	case "", "application/x-www-form-urlencoded", "text/plain", "application/octet-stream":
		return kindSniff, nil
	case "application/json":
		return kindJSON, nil
	case "application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonlines", "application/jsonlines":
		return kindNDJSON, nil
	}
	if len(mt) > 5 && mt[len(mt)-5:] == "+json" {
		return kindJSON, nil
	}
	return 0, ErrUnsupportedMediaType
}

// readBody copies the request body into a buffer the request owns, reading
// at most maxBody bytes.
func readBody(ctx *fasthttp.RequestCtx, cl, maxBody int64) ([]byte, error) {
	if !ctx.Request.IsBodyStream() {
		b := ctx.PostBody()
		if int64(len(b)) > maxBody {
			return nil, ErrBodyTooLarge
		}
		return append([]byte(nil), b...), nil
	}
	r := ctx.RequestBodyStream()
	if cl >= 0 {
		body := make([]byte, cl)
		if _, err := io.ReadFull(r, body); err != nil {
			return nil, errors.Join(ErrInvalidJSON, err)
		}
		return body, nil
	}
	body, err := io.ReadAll(io.LimitReader(r, maxBody+1))
	if err != nil {
		return nil, errors.Join(ErrInvalidJSON, err)
	}
	if int64(len(body)) > maxBody {
		return nil, ErrBodyTooLarge
	}
	return body, nil
}

// decompress decodes body by its Content-Encoding, capped at maxBody bytes
// (a gzip bomb is ErrBodyTooLarge).
func decompress(enc string, body []byte, maxBody int64) ([]byte, error) {
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	req.Header.SetContentEncoding(enc)
	req.SetBodyRaw(body)
	out, err := req.BodyUncompressedWithLimit(int(maxBody))
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		return nil, ErrBodyTooLarge
	case errors.Is(err, fasthttp.ErrContentEncodingUnsupported):
		return nil, ErrUnsupportedEncoding
	case err != nil:
		return nil, errors.Join(ErrInvalidJSON, errors.New("cannot decode the "+enc+" body"), err)
	}
	return out, nil
}
