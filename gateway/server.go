package gateway

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net"
	"runtime"
	"sync/atomic"
	"time"

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

// tenant is the tenant of a resolved API key.
type tenant struct {
	name  string
	topic string // "" = the sink's default topic
	// label names the tenant in metrics and the sluice-tenant header: its
	// name, or defaultTenantName.
	label string
	// origins are the CORS origins of its keys (its own, else
	// cors.origins); nil: no CORS for it.
	origins *originSet
	// rate and burst are each of its keys' limit (rate 0: none).
	rate, burst int
	rl          *rateMetrics // nil without a limit
}

// apiKey is one API key (or, with open ingest, everyone): its tenant and
// its own token bucket.
type apiKey struct {
	t      *tenant
	bucket *bucket // nil: no rate limit
}

// keyHash is the SHA-256 of an API key. Keys are looked up by their hash,
// never compared byte by byte: the lookup's timing depends only on the
// hash of the presented key, which tells nothing about the bytes of a valid
// key (the constant-time property without a loop over every key).
type keyHash [sha256.Size]byte

// Defaults of ServerConfig.
const (
	DefaultMaxEvents        = 100_000
	DefaultReadQueueTimeout = time.Second
)

// DefaultMaxConcurrentReads is the default of
// ServerConfig.MaxConcurrentReads: two per CPU, so reading, decompressing
// and splitting bodies keeps the CPUs busy without thrashing them.
func DefaultMaxConcurrentReads() int { return 2 * runtime.GOMAXPROCS(0) }

// ServerConfig holds the front door's request limits (Config's
// max_events, max_concurrent_reads, read_queue_timeout).
type ServerConfig struct {
	// MaxEvents caps the events (records and dead letters) of one request;
	// a body with more is answered 413 and nothing of it is accepted.
	// Default 100,000.
	MaxEvents int
	// MaxConcurrentReads caps the requests whose bodies are being read,
	// decompressed and split at the same time. A request past it waits in
	// a queue (ReadQueueTimeout); time a request spends waiting for its
	// client's bytes does not hold a slot, so slow clients cannot take
	// them all. Default 2 × GOMAXPROCS.
	MaxConcurrentReads int
	// ReadQueueTimeout bounds the wait for a read slot; past it the request
	// gets 503 with Retry-After. Default 1s.
	ReadQueueTimeout time.Duration
}

// withDefaults fills the zero fields.
func (c ServerConfig) withDefaults() ServerConfig {
	if c.MaxEvents <= 0 {
		c.MaxEvents = DefaultMaxEvents
	}
	if c.MaxConcurrentReads <= 0 {
		c.MaxConcurrentReads = DefaultMaxConcurrentReads()
	}
	if c.ReadQueueTimeout <= 0 {
		c.ReadQueueTimeout = DefaultReadQueueTimeout
	}
	return c
}

// Server is the ingest front door: POST /v1/events, GET /healthz and
// GET /readyz on one fasthttp listener.
type Server struct {
	cfg    *Config
	lim    ServerConfig
	reads  *readLimiter
	recv   *Receiver
	gov    *governor.Governor
	m      *Metrics
	log    *slog.Logger
	keys   map[keyHash]*apiKey // nil: ingest is open (the key open)
	open   *apiKey
	ready  func() error
	nextID atomic.Uint64

	cors    *corsPolicy // nil: no origin configured anywhere
	idem    *idemCache  // nil: Idempotency-Key is ignored
	proxies proxySet
	tls     *certReloader // nil: plain HTTP

	srv *fasthttp.Server
	ln  net.Listener

	// pipelineErr returns the 503 of a tenant whose pipeline is
	// unavailable (nil: none; set by the App).
	pipelineErr func(tenant string) error
}

// newServer builds the front door; ready reports nil when sluice can take
// traffic (the sink is healthy and it is not shutting down).
func newServer(cfg *Config, recv *Receiver, gov *governor.Governor, m *Metrics, log *slog.Logger, ready func() error) *Server {
	s := &Server{cfg: cfg, recv: recv, gov: gov, m: m, log: log, ready: ready,
		cors: newCORSPolicy(cfg), proxies: newProxySet(cfg.TrustedProxies)}
	s.setLimits(ServerConfig{MaxEvents: cfg.MaxEvents, MaxConcurrentReads: cfg.MaxConcurrentReads, ReadQueueTimeout: cfg.ReadQueueTimeout})
	if cfg.IdempotencyWindow > 0 {
		s.idem = newIdemCache(cfg.IdempotencyWindow, cfg.IdempotencyMaxKeys, int64(cfg.MemoryLimit)/32)
	}
	global := newOriginSet(cfg.CORS.Origins)
	def := &tenant{label: defaultTenantName, origins: global, rate: cfg.RateLimit, burst: burstOf(cfg.RateLimit, cfg.RateBurst)}
	def.rl = m.tenantRate(def)
	newKey := func(t *tenant) *apiKey {
		k := &apiKey{t: t}
		if t.rate > 0 {
			k.bucket = newBucket(t.rate, t.burst)
		}
		return k
	}
	s.open = newKey(def)
	if len(cfg.APIKeys) > 0 || len(cfg.Tenants) > 0 {
		s.keys = make(map[keyHash]*apiKey)
		for _, k := range cfg.APIKeys {
			s.keys[sha256.Sum256([]byte(k))] = newKey(def)
		}
		for _, t := range cfg.Tenants {
			tt := &tenant{name: t.Name, topic: t.Topic, label: t.Name, origins: global, rate: def.rate, burst: def.burst}
			if len(t.CORS.Origins) > 0 {
				tt.origins = newOriginSet(t.CORS.Origins)
			}
			switch {
			case t.RateLimit < 0:
				tt.rate, tt.burst = 0, 0
			case t.RateLimit > 0:
				tt.rate, tt.burst = t.RateLimit, burstOf(t.RateLimit, t.RateBurst)
			case t.RateBurst > 0:
				tt.burst = t.RateBurst
			}
			tt.rl = m.tenantRate(tt)
			for _, k := range t.Keys {
				s.keys[sha256.Sum256([]byte(k))] = newKey(tt)
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

// burstOf is a bucket's size: burst, or one second's worth of rate.
func burstOf(rate, burst int) int {
	if burst > 0 {
		return burst
	}
	return rate
}

// setLimits sets the request limits (zero fields: defaults). Call before
// the server serves.
func (s *Server) setLimits(c ServerConfig) {
	s.lim = c.withDefaults()
	s.reads = newReadLimiter(s.lim.MaxConcurrentReads, s.lim.ReadQueueTimeout)
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

// serve serves the bound listener (over TLS with a certificate) until
// shutdown.
func (s *Server) serve() error {
	ln := s.ln
	if s.tls != nil {
		ln = s.tls.listener(ln)
	}
	return s.srv.Serve(ln)
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
	if s.cors != nil {
		if origin := ctx.Request.Header.Peek("Origin"); s.cors.union.allows(origin) {
			s.cors.allow(ctx, origin)
		}
	}
	s.m.request(writeError(ctx, err, 0))
}

func (s *Server) handle(ctx *fasthttp.RequestCtx) {
	switch string(ctx.Path()) {
	case "/v1/events":
		if ctx.IsOptions() {
			s.m.request(s.preflight(ctx))
			return
		}
		code, unread := s.ingest(ctx)
		if unread {
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

// readyz answers 200 when ready() is nil, 200 "degraded" with the reason
// when it wraps ErrDegraded, else 503 with the reason.
func readyz(ctx *fasthttp.RequestCtx, ready func() error) {
	err := ready()
	if errors.Is(err, ErrDegraded) {
		ctx.SetStatusCode(fasthttp.StatusOK)
		ctx.SetContentType("application/json")
		b := appendJSONString([]byte(`{"status":"degraded","error":`), err.Error())
		ctx.SetBody(append(b, '}', '\n'))
		return
	}
	if err != nil {
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

// ingest serves POST /v1/events and returns the status it answered and
// whether the body may be left unread (to drain). In order: the CORS
// headers of the origin, the method, the key, the tenant's origins, the
// Idempotency-Key (a remembered answer is replayed here), then process.
func (s *Server) ingest(ctx *fasthttp.RequestCtx) (int, bool) {
	var origin []byte
	if s.cors != nil {
		// Before the key is known every answer to an origin some tenant
		// allows carries the CORS headers (cors.go).
		if origin = ctx.Request.Header.Peek("Origin"); s.cors.union.allows(origin) {
			s.cors.allow(ctx, origin)
		}
	}
	if !ctx.IsPost() {
		code := writeError(ctx, ErrMethodNotAllowed, 0)
		ctx.Response.Header.Set("Allow", "POST")
		return code, true
	}
	k, err := s.auth(ctx)
	if err != nil {
		return writeError(ctx, err, 0), true
	}
	if len(origin) > 0 && s.cors != nil {
		switch {
		case k.t.origins == nil:
			s.cors.strip(ctx) // a tenant without CORS: as if none were configured
		case !k.t.origins.allows(origin):
			s.cors.strip(ctx)
			return writeError(ctx, ErrOriginNotAllowed, 0), true
		}
	}
	if s.idem != nil {
		key, err := idempotencyKey(ctx)
		if err != nil {
			return writeError(ctx, err, 0), true
		}
		if key != nil {
			return s.ingestOnce(ctx, k, key)
		}
	}
	code := s.process(ctx, k, nil)
	return code, code != fasthttp.StatusOK
}

// ingestOnce serves a request with an Idempotency-Key: it replays the
// answer remembered for the key (Idempotent-Replayed: true), or waits for
// the key's first request still in flight and looks again, or processes
// the request and remembers its answer when it is final (remembered).
func (s *Server) ingestOnce(ctx *fasthttp.RequestCtx, k *apiKey, key []byte) (int, bool) {
	ck := cacheKey(k.t.name, key)
	var timer *time.Timer
	for {
		ans, inflight, own := s.idem.begin(ck, time.Now())
		switch {
		case ans != nil:
			s.m.idempotentReplays.Inc()
			ctx.SetStatusCode(ans.code)
			ctx.SetContentType("application/json")
			ctx.SetBody(ans.body)
			ctx.Response.Header.Set("Idempotent-Replayed", "true")
			return ans.code, true
		case inflight != nil:
			if timer == nil {
				timer = time.NewTimer(s.cfg.AckTimeout + s.lim.ReadQueueTimeout + time.Second)
				defer timer.Stop()
			}
			select {
			case <-inflight:
				continue
			case <-timer.C:
				return writeError(ctx, ErrIdempotencyInFlight, 0), true
			}
		}
		code := s.processOnce(ctx, k, key, own)
		return code, code != fasthttp.StatusOK
	}
}

// processOnce processes the first request of an Idempotency-Key and
// finishes own with its answer, remembered when final.
func (s *Server) processOnce(ctx *fasthttp.RequestCtx, k *apiKey, key []byte, own *idemEntry) int {
	finished := false
	defer func() {
		if !finished { // a panic: forget the key, wake the waiters
			s.idem.finish(own, nil, time.Now())
		}
	}()
	code := s.process(ctx, k, key)
	var ans *idemAnswer
	if remembered(code) {
		ans = &idemAnswer{code: code, body: bytes.Clone(ctx.Response.Body())}
	}
	finished = true
	s.idem.finish(own, ans, time.Now())
	return code
}

// process takes one request past its key and idempotency check: the gate,
// the key's rate limit (an empty bucket refuses before the body is read),
// the body (read, decompressed, split), the rate limit again (the whole
// request's events, or nothing), the queue, the ack; then the answer with
// the counts (and per-event results when asked). idemKey (nil: none) goes
// into each record's idempotency-key header.
func (s *Server) process(ctx *fasthttp.RequestCtx, k *apiKey, idemKey []byte) int {
	if s.pipelineErr != nil {
		if err := s.pipelineErr(k.t.name); err != nil {
			return writeError(ctx, err, 0)
		}
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
	if k.bucket != nil {
		if w := k.bucket.empty(time.Now()); w > 0 {
			return s.rateLimited(ctx, k, 0, w)
		}
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
	// Reading, decompressing and splitting hold a read slot (not while
	// waiting for the client's bytes); the ack wait below does not.
	if err := s.reads.acquire(); err != nil {
		s.m.readLimitRejection()
		return writeError(ctx, err, time.Second)
	}
	a, err := s.readAndSplit(ctx, k.t, kind, enc, cl, maxBody)
	if !errors.Is(err, ErrReadLimit) { // else a stream read gave the slot up and could not take it back
		s.reads.release()
	}
	if err != nil {
		if errors.Is(err, ErrReadLimit) {
			s.m.readLimitRejection()
		}
		return writeError(ctx, err, time.Second)
	}
	if k.bucket != nil {
		if a.inputs > k.t.burst {
			a.lease.Release()
			return s.rateLimited(ctx, k, a.inputs, 0)
		}
		if w := k.bucket.take(a.inputs, time.Now()); w > 0 {
			a.lease.Release()
			return s.rateLimited(ctx, k, a.inputs, w)
		}
		k.t.rl.admittedEvents.Add(a.inputs)
	}
	if len(ctx.URI().QueryString()) > 0 && ctx.QueryArgs().GetBool("results") {
		a.extras().res = newEventResults(a.inputs)
	}
	if h := s.requestHeaders(ctx, k.t, idemKey, ctx.Time()); h != nil {
		a.extras().headers = h
	}
	code := s.enqueueAndWait(ctx, a)
	if code >= 500 && k.bucket != nil {
		// Nothing of a 5xx is acknowledged: its retry pays again.
		k.bucket.refund(a.inputs)
	}
	return code
}

// rateLimited answers a request refused by its key's rate limit: 429
// with Retry-After (wait), or 413 for more events than the burst.
func (s *Server) rateLimited(ctx *fasthttp.RequestCtx, k *apiKey, events int, wait time.Duration) int {
	k.t.rl.limitedRequests.Inc()
	k.t.rl.limitedEvents.Add(events)
	return writeError(ctx, &RateLimitError{Limit: k.t.rate, Burst: k.t.burst, Events: events, RetryAfter: wait}, 0)
}

// enqueueAndWait queues the request, waits for its ack and answers.
func (s *Server) enqueueAndWait(ctx *fasthttp.RequestCtx, a *Ack) int {
	if err := s.recv.Enqueue(a); err != nil {
		a.lease.Release()
		var pe *PressureError
		if errors.As(err, &pe) {
			s.m.gateRejection(pe.Source)
		}
		return writeError(ctx, err, time.Second)
	}
	s.m.ingestEvents.Add(a.inputs)
	s.m.ingestBytes.Add(a.size)
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
	ctx.SetStatusCode(fasthttp.StatusOK)
	ctx.SetContentType("application/json")
	res := a.results()
	if res == nil {
		// A constant-size buffer stays on the stack (SetBody copies it).
		buf := appendCounts(make([]byte, 0, 64), acc, drop, dead)
		ctx.SetBody(append(buf, '}', '\n'))
		return fasthttp.StatusOK
	}
	buf := appendCounts(make([]byte, 0, 64+res.resultsBodySize()), acc, drop, dead)
	buf = res.appendJSON(append(buf, ','))
	ctx.SetBody(append(buf, '}', '\n'))
	return fasthttp.StatusOK
}

// readAndSplit reads the body (at most maxBody bytes, decompressed by enc),
// splits it and returns the request's unqueued Ack, whose lease covers the
// body and the request's bookkeeping. The caller holds a read slot; a
// stream read gives it up while it waits for the client, and when it cannot
// take it back the error is a *ReadLimitError (the slot is then not held).
// On error nothing is leased.
func (s *Server) readAndSplit(ctx *fasthttp.RequestCtx, t *tenant, kind bodyKind, enc string, cl, maxBody int64) (*Ack, error) {
	guard := s.gov.Guard()
	var reading *governor.Lease // a streamed body's bytes while it is read
	if cl > 0 && ctx.Request.IsBodyStream() {
		reading = guard.Lease(cl)
	}
	body, err := readBody(ctx, s.reads, cl, maxBody)
	pooled := body // a buffer from getBody, given back when the request is done
	if err == nil && enc != "" {
		body, err = decompress(enc, body, maxBody)
		putBody(pooled) // the decoded body is a buffer of its own
		pooled = nil
	}
	if err != nil {
		reading.Release()
		return nil, err
	}
	// The records' spans are sized by the body's lines (capped by the
	// events cap): lease them with the body before they are allocated.
	id := s.nextID.Add(1)
	out := splitOut{maxEvent: int(s.cfg.MaxEvent), maxEvents: s.lim.MaxEvents, tag: id, topic: t.topic}
	out.spans = make([]span, 0, min(bytes.Count(body, []byte{'\n'}), s.lim.MaxEvents)+1)
	est := bookkeeping(&out)
	lease := guard.Lease(int64(cap(body)) + est)
	reading.Release()
	if err := split(body, kind, &out); err != nil {
		lease.Release()
		putBody(pooled)
		return nil, err
	}
	if n := bookkeeping(&out); n != est { // dead letters, or more records than lines
		lease.Release()
		lease = guard.Lease(int64(cap(body)) + n)
	}
	a := newAck(id, &out, lease)
	a.buf = pooled
	a.tenant = t.name
	a.size = len(body)
	return a, nil
}

// auth resolves the API key in time independent of the bytes of the
// valid keys (keyHash). The key is, first found first: the X-API-Key
// header, Authorization: Bearer KEY, Authorization: Basic with the key as
// the user name (the password is ignored; the Segment and RudderStack
// convention), or the query's api_key (what a beacon can send).
func (s *Server) auth(ctx *fasthttp.RequestCtx) (*apiKey, error) {
	if s.keys == nil {
		return s.open, nil
	}
	key := ctx.Request.Header.Peek("X-API-Key")
	var basic [192]byte
	if len(key) == 0 {
		h := ctx.Request.Header.Peek("Authorization")
		switch {
		case len(h) > 7 && bytes.EqualFold(h[:7], []byte("bearer ")):
			key = bytes.TrimSpace(h[7:])
		case len(h) > 6 && bytes.EqualFold(h[:6], []byte("basic ")):
			key = basicUser(bytes.TrimSpace(h[6:]), basic[:0])
		}
	}
	if len(key) == 0 && len(ctx.URI().QueryString()) > 0 {
		key = ctx.QueryArgs().Peek("api_key")
	}
	if len(key) == 0 {
		return nil, ErrUnauthorized
	}
	if k := s.lookupKey(key); k != nil {
		return k, nil
	}
	return nil, ErrUnauthorized
}

// lookupKey returns the key's entry by its hash (nil: unknown, or open
// ingest).
func (s *Server) lookupKey(key []byte) *apiKey {
	return s.keys[sha256.Sum256(key)]
}

// basicUser returns the user name of HTTP Basic credentials (base64 of
// "user:password"), decoded into buf when it fits; nil when they do not
// decode.
func basicUser(enc, buf []byte) []byte {
	n := base64.StdEncoding.DecodedLen(len(enc))
	if n > cap(buf) {
		buf = make([]byte, 0, n)
	}
	dst := buf[:n]
	n, err := base64.StdEncoding.Decode(dst, enc)
	if err != nil {
		return nil
	}
	user, _, _ := bytes.Cut(dst[:n], []byte{':'})
	return user
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
// at most maxBody bytes. A streamed body is read through rl (nil: none):
// each read gives the caller's slot up while it waits for the client.
func readBody(ctx *fasthttp.RequestCtx, rl *readLimiter, cl, maxBody int64) ([]byte, error) {
	if !ctx.Request.IsBodyStream() {
		b := ctx.PostBody()
		if int64(len(b)) > maxBody {
			return nil, ErrBodyTooLarge
		}
		body := getBody(len(b))
		copy(body, b)
		return body, nil
	}
	return readStream(ctx.RequestBodyStream(), rl, cl, maxBody)
}

// readStream reads a streamed body of cl bytes (cl < 0: up to maxBody)
// from r, through a slotReader when rl is set. When the slot could not be
// taken back after a read the error is the *ReadLimitError, even if the
// body was complete: the caller does not hold its slot then.
func readStream(r io.Reader, rl *readLimiter, cl, maxBody int64) ([]byte, error) {
	var sr *slotReader
	if rl != nil {
		sr = &slotReader{r: r, l: rl}
		r = sr
	}
	var body []byte
	fail := func(err error) ([]byte, error) {
		putBody(body)
		if sr != nil && sr.err != nil {
			return nil, sr.err
		}
		if errors.Is(err, ErrBodyTooLarge) {
			return nil, err
		}
		return nil, errors.Join(ErrInvalidJSON, err)
	}
	var err error
	if cl >= 0 {
		body = getBody(int(cl))
		_, err = io.ReadFull(r, body)
	} else if body, err = io.ReadAll(io.LimitReader(r, maxBody+1)); err == nil && int64(len(body)) > maxBody {
		err = ErrBodyTooLarge
	}
	if err != nil || sr != nil && sr.err != nil {
		return fail(err)
	}
	return body, nil
}

// readLimiter bounds the requests that read, decompress and split a body
// at the same time (VictoriaMetrics' write concurrency limiter is the
// model): a slot is a token in a buffered channel; past the capacity a
// request waits up to the queue timeout, then fails with a *ReadLimitError.
// Safe for concurrent use.
type readLimiter struct {
	slots   chan struct{}
	timeout time.Duration
}

func newReadLimiter(n int, timeout time.Duration) *readLimiter {
	return &readLimiter{slots: make(chan struct{}, n), timeout: timeout}
}

// acquire takes a slot, waiting at most the queue timeout.
func (l *readLimiter) acquire() error {
	select {
	case l.slots <- struct{}{}:
		return nil
	default:
	}
	t := time.NewTimer(l.timeout)
	defer t.Stop()
	select {
	case l.slots <- struct{}{}:
		return nil
	case <-t.C:
		return &ReadLimitError{Slots: cap(l.slots), Waited: l.timeout}
	}
}

// release gives a slot back.
func (l *readLimiter) release() { <-l.slots }

// slotReader gives its request's read slot up for the duration of each
// Read (a read may wait for a slow client) and takes it back after. When
// that fails past the queue timeout the slot is not held: err keeps the
// *ReadLimitError, and this Read and every later one return it.
type slotReader struct {
	r   io.Reader
	l   *readLimiter
	err error // the failed re-acquire; the slot is not held
}

// Read implements io.Reader.
func (s *slotReader) Read(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	s.l.release()
	n, err := s.r.Read(p)
	if aerr := s.l.acquire(); aerr != nil {
		s.err = aerr
		return n, aerr
	}
	return n, err
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
