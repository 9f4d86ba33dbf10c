package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice/engine"
	"github.com/sluicehq/sluice/gateway/admin"
	"github.com/sluicehq/sluice/gateway/kafka"
	"github.com/sluicehq/sluice/governor"
	"github.com/sluicehq/sluice/wasmhost"
	"github.com/valyala/fasthttp"
)

// App wires sluice together: the governor, the sink (Kafka, its dev broker,
// or discard/stdout), the WASM host, the admin listener, the driver and its
// supervisor, and the ingest front door. Start brings them up in that
// order, Stop takes them down in reverse; each step is logged with its
// duration.
type App struct {
	cfg    Config
	log    *slog.Logger
	stdout io.Writer

	m          *Metrics
	gov        *governor.Governor
	sinkHealth *governor.Gauge
	recv       *Receiver

	broker *kafka.DevBroker
	ksink  *kafka.Sink
	sink   Sink
	tally  *tallySink
	host   *wasmhost.Host
	guests atomic.Pointer[wasmhost.Host] // the host, for the governor's reading of guest memory
	proc   engine.Processor
	server *Server

	admin        *fasthttp.Server
	adminLn      net.Listener
	adminHandler atomic.Pointer[fasthttp.RequestHandler]

	healthy    atomic.Bool
	stopping   atomic.Bool
	started    atomic.Bool
	sinkErrMu  sync.Mutex
	sinkErr    error
	driverStop context.CancelFunc
	driverDone chan struct{}

	stops []step // started steps, stopped in reverse
}

type step struct {
	name string
	stop func(ctx context.Context) error
}

// New validates cfg and builds the App; it does no I/O (Start does).
// stdout receives the dev banner; logger the logs.
func New(cfg Config, logger *slog.Logger, stdout io.Writer) (*App, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Dev && cfg.AdminToken == "" {
		var b [16]byte
		_, _ = rand.Read(b[:])
		cfg.AdminToken = hex.EncodeToString(b[:])
	}
	if logger == nil {
		logger = slog.Default()
	}
	if stdout == nil {
		stdout = io.Discard
	}
	a := &App{cfg: cfg, log: logger, stdout: stdout, sinkHealth: governor.NewGauge("sink")}
	a.recv = NewReceiver(ReceiverConfig{QueueBytes: cfg.queueBytes()})
	guardLimit := int64(cfg.MemoryLimit) / 4
	// The heap is measured against the explicit limit, else GOMEMLIMIT or
	// the cgroup's limit (the governor's defaults). The WASM guests' linear
	// memory lies outside the Go heap (GOMEMLIMIT, which stays the whole
	// limit, does not see it): the heap source adds it to its reading.
	var heapLimit int64
	if cfg.MemoryLimitSet() {
		heapLimit = int64(cfg.MemoryLimit)
	}
	gov, err := governor.New(governor.Config{
		MemoryLimit: guardLimit,
		HeapLimit:   heapLimit,
		ExtraMemory: a.guestMemory,
		Budget: governor.BudgetConfig{
			Max: min(16<<20, max(guardLimit/4, 256<<10)),
			Min: 64 << 10,
		},
		Sources: []governor.Source{a.recv.Fill(), a.sinkHealth},
	})
	if err != nil {
		return nil, fmt.Errorf("%w: governor: %w", ErrConfig, err)
	}
	a.gov = gov
	p := gov.Pressure()
	b2f := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	a.m = newMetrics(gaugeFuncs{
		latched:     func() float64 { return b2f(p.Latched()) },
		budget:      func() float64 { return float64(gov.Budget().Bytes()) },
		pressure:    func() float64 { return p.Level() },
		inflight:    func() float64 { return float64(gov.Guard().InFlight()) },
		sinkHealthy: func() float64 { return b2f(a.healthy.Load()) },
		queueBytes:  func() float64 { return float64(a.recv.QueuedBytes()) },
	})
	a.server = newServer(&a.cfg, a.recv, gov, a.m, logger, a.Ready)
	return a, nil
}

// Start brings sluice up in order: memory limit, dev broker, sink, WASM
// host, admin listener, driver, ingest listener. On failure it stops what
// it started and returns the error.
func (a *App) Start(ctx context.Context) error {
	steps := []struct {
		name  string
		start func(context.Context) (func(context.Context) error, error)
	}{
		{"memory limit", a.startMemoryLimit},
		{"dev broker", a.startDevBroker},
		{"sink", a.startSink},
		{"wasm host", a.startHost},
		{"admin listener", a.startAdmin},
		{"driver", a.startDriver},
		{"ingest listener", a.startIngest},
	}
	for _, s := range steps {
		t := time.Now()
		stop, err := s.start(ctx)
		if err != nil {
			a.log.Error("start failed", "step", s.name, "duration", time.Since(t), "err", err)
			_ = a.Stop(context.Background())
			return fmt.Errorf("start %s: %w", s.name, err)
		}
		if stop != nil {
			a.stops = append(a.stops, step{s.name, stop})
		}
		a.log.Info("started", "step", s.name, "duration", time.Since(t))
	}
	a.started.Store(true)
	a.log.Info("listening", "http", a.HTTPAddr(), "admin", a.AdminAddr())
	if a.cfg.ReadyFile != "" {
		line := fmt.Sprintf("http=%s admin=%s\n", a.HTTPAddr(), a.AdminAddr())
		tmp := a.cfg.ReadyFile + ".tmp"
		if err := os.WriteFile(tmp, []byte(line), 0o644); err != nil {
			return fmt.Errorf("ready file: %w", err)
		}
		if err := os.Rename(tmp, a.cfg.ReadyFile); err != nil {
			return fmt.Errorf("ready file: %w", err)
		}
	}
	if a.cfg.Dev {
		a.printDevBanner()
	}
	return nil
}

// Stop takes sluice down in reverse order of Start: the ingest listener
// stops accepting and the queued requests drain through the driver (every
// waiting client is answered), then the driver stops, then the admin
// listener, the WASM host, the sink (flushed) and the dev broker. ctx
// bounds the whole stop; the drain is also bounded by ShutdownTimeout.
func (a *App) Stop(ctx context.Context) error {
	a.stopping.Store(true)
	var errs []error
	for i := len(a.stops) - 1; i >= 0; i-- {
		s := a.stops[i]
		t := time.Now()
		if err := s.stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop %s: %w", s.name, err))
			a.log.Error("stop failed", "step", s.name, "duration", time.Since(t), "err", err)
			continue
		}
		a.log.Info("stopped", "step", s.name, "duration", time.Since(t))
	}
	a.stops = nil
	return errors.Join(errs...)
}

func (a *App) startMemoryLimit(context.Context) (func(context.Context) error, error) {
	if !a.cfg.MemoryLimitSet() {
		return nil, nil
	}
	prev := debug.SetMemoryLimit(int64(a.cfg.MemoryLimit))
	return func(context.Context) error { debug.SetMemoryLimit(prev); return nil }, nil
}

// topics returns the topics sluice writes to by configuration.
func (a *App) topics() []string {
	ts := []string{a.cfg.Topic, a.cfg.DLQTopic}
	for _, t := range a.cfg.Tenants {
		if t.Topic != "" {
			ts = append(ts, t.Topic)
		}
	}
	return ts
}

func (a *App) startDevBroker(context.Context) (func(context.Context) error, error) {
	if !a.cfg.Dev || a.cfg.Sink != SinkKafka {
		return nil, nil
	}
	dir := ""
	if a.cfg.DataDir != "" {
		dir = filepath.Join(a.cfg.DataDir, "kafka")
	}
	b, err := kafka.StartDevBroker(a.cfg.DevBroker, a.topics(), dir)
	if err != nil {
		return nil, err
	}
	a.broker = b
	a.log.Info("dev broker", "addr", b.Addr())
	return func(context.Context) error { b.Close(); return nil }, nil
}

func (a *App) startSink(ctx context.Context) (func(context.Context) error, error) {
	switch a.cfg.Sink {
	case SinkDiscard:
		a.sink = DiscardSink{}
	case SinkStdout:
		a.sink = NewStdoutSink(a.stdout)
	default:
		brokers := a.cfg.Brokers
		if a.broker != nil {
			brokers = a.broker.Brokers()
		}
		kc := kafka.DefaultConfig(brokers...)
		kc.DefaultTopic = a.cfg.Topic
		kc.DLQTopic = a.cfg.DLQTopic
		kc.AllowAutoTopicCreation = a.cfg.Dev
		kc.DeliveryTimeout = max(time.Second, a.cfg.AckTimeout/2)
		s, err := kafka.NewSink(ctx, kc, a.log.With("component", "kafka"))
		if err != nil {
			return nil, err
		}
		a.ksink = s
		a.sink = s
	}
	a.tally = &tallySink{inner: a.sink, recv: a.recv, m: a.m}
	a.setHealthy(nil)
	if a.ksink == nil {
		return nil, nil
	}
	return func(ctx context.Context) error {
		err := a.ksink.Flush(ctx)
		a.ksink.Close()
		return err
	}, nil
}

func (a *App) startHost(ctx context.Context) (func(context.Context) error, error) {
	hooks := wasmhost.Hooks{
		OnCall: func(name string, s wasmhost.CallStats) {
			a.m.TransformCall(name, s.Duration)
			a.m.eventsDropped.Add(s.Dropped)
		},
		OnTrap: func(name string, _ wasmhost.TrapKind) { a.m.TransformTrap(name) },
	}
	// A guest call is bounded by a deadline (an infinite loop is
	// interrupted). Batches here hold up to driverMaxRecords records and
	// share two cores with the front door and Kafka, so the per-record
	// allowance is generous: a runaway guest still stops within ~2s.
	hc := wasmhost.Config{
		Logger:                a.log.With("component", "wasmhost"),
		Hooks:                 hooks,
		CallDeadline:          100 * time.Millisecond,
		CallDeadlinePerRecord: 200 * time.Microsecond,
		MemoryLimit:           a.cfg.guestMemory(),
	}
	if a.cfg.DataDir != "" {
		hc.DataDir = filepath.Join(a.cfg.DataDir, "wasm")
	}
	h, err := wasmhost.New(ctx, hc)
	if err != nil {
		return nil, err
	}
	a.host = h
	a.guests.Store(h)
	stop := func(ctx context.Context) error { return h.Close(ctx) }
	if a.cfg.TransformsDir != "" {
		files, err := filepath.Glob(filepath.Join(a.cfg.TransformsDir, "*.wasm"))
		if err != nil {
			_ = stop(ctx)
			return nil, err
		}
		// Compile in parallel: a Go guest takes about half a second each.
		errs := make([]error, len(files))
		var wg sync.WaitGroup
		for i, f := range files {
			wg.Go(func() {
				b, err := os.ReadFile(f)
				if err != nil {
					errs[i] = err
					return
				}
				name := strings.TrimSuffix(filepath.Base(f), ".wasm")
				t := time.Now()
				info, err := h.Add(ctx, name, b)
				if err != nil {
					errs[i] = fmt.Errorf("load transform %s: %w", f, err)
					return
				}
				a.log.Info("transform loaded", "name", name, "digest", info.Digest, "duration", time.Since(t))
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			_ = stop(ctx)
			return nil, err
		}
	}
	if len(a.cfg.Pipeline) > 0 {
		if err := h.SetPipeline(wasmhost.DefaultPipeline, a.cfg.Pipeline); err != nil {
			_ = stop(ctx)
			return nil, err
		}
	}
	stored := h.Pipelines()
	for _, t := range a.cfg.Tenants {
		chain := t.Pipeline
		if len(chain) == 0 {
			if _, ok := stored[pipelineName(t.Name)]; ok {
				// Set over the admin API and kept in the data folder: a
				// restart does not undo it unless the config names a chain.
				continue
			}
			chain = a.cfg.Pipeline
		}
		if err := h.SetPipeline(pipelineName(t.Name), chain); err != nil {
			_ = stop(ctx)
			return nil, err
		}
	}
	a.proc = &tenantProcessor{host: h, recv: a.recv, single: len(a.cfg.Tenants) == 0}
	if hs := a.gov.Heap(); hs != nil {
		hs.Refresh() // count the loaded transforms' instances from the start
	}
	return stop, nil
}

// guestMemory returns the linear memory of the WASM guests' live instances
// in bytes (0 before the host starts). The governor's heap source adds it
// to the Go heap, so guest memory counts against --memory-limit.
func (a *App) guestMemory() int64 {
	if h := a.guests.Load(); h != nil {
		return h.GuestMemoryBytes()
	}
	return 0
}

// pipelineName is the WASM host pipeline of a tenant ("" = default).
func pipelineName(tenant string) string {
	if tenant == "" {
		return wasmhost.DefaultPipeline
	}
	return tenant
}

func (a *App) startAdmin(context.Context) (func(context.Context) error, error) {
	ln, err := net.Listen("tcp", a.cfg.AdminAddr)
	if err != nil {
		return nil, err
	}
	a.adminLn = ln
	maxBody, errHandler := 32<<20, func(ctx *fasthttp.RequestCtx, err error) {
		if errors.Is(err, fasthttp.ErrBodyTooLarge) {
			writeError(ctx, ErrBodyTooLarge, 0)
			return
		}
		writeError(ctx, errors.Join(ErrInvalidJSON, err), 0)
	}
	if a.cfg.AdminToken != "" {
		h, err := a.newAdminAPI()
		if err != nil {
			ln.Close()
			return nil, err
		}
		a.SetAdminHandler(h.ServeFastHTTP)
		maxBody, errHandler = h.MaxRequestBodySize(), h.WriteServerError
	}
	a.admin = &fasthttp.Server{
		Name:                         "sluice-admin",
		Handler:                      a.serveAdmin,
		MaxRequestBodySize:           maxBody,
		DisablePreParseMultipartForm: true,
		ReadTimeout:                  30 * time.Second,
		WriteTimeout:                 30 * time.Second,
		IdleTimeout:                  60 * time.Second,
		CloseOnShutdown:              true,
		ErrorHandler:                 errHandler,
		Logger:                       slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := a.admin.Serve(ln); err != nil {
			a.log.Error("admin listener", "err", err)
		}
	}()
	return func(ctx context.Context) error {
		err := a.admin.ShutdownWithContext(ctx)
		<-done
		return err
	}, nil
}

// newAdminAPI builds the admin REST API over the WASM host and the
// governor, behind the admin token.
func (a *App) newAdminAPI() (*admin.Handler, error) {
	reg := admin.NewHostRegistry(a.host, a.TenantPipelines())
	deps := admin.Deps{
		Transforms: reg,
		Pipelines:  reg,
		Pressure:   a.gov.Pressure(),
		Budget:     a.gov.Budget(),
		Memory:     a.gov.Guard(),
		Gate:       a.gov.Gate(),
		Logger:     a.log.With("component", "admin"),
	}
	if hs := a.gov.Heap(); hs != nil {
		deps.HeapBytes = func() uint64 { return uint64(max(hs.HeapBytes(), 0)) }
	}
	return admin.New(admin.Config{Token: a.cfg.AdminToken}, deps)
}

// TenantPipelines maps each configured tenant to the WASM host pipeline its
// events run through ("" → the default pipeline).
func (a *App) TenantPipelines() map[string]string {
	m := map[string]string{"": wasmhost.DefaultPipeline}
	for _, t := range a.cfg.Tenants {
		m[t.Name] = pipelineName(t.Name)
	}
	return m
}

// SetAdminHandler sets the handler of every admin-listener path besides
// /healthz, /readyz and /metrics (the admin REST API). Safe at any time;
// nil restores the default (404 JSON).
func (a *App) SetAdminHandler(h fasthttp.RequestHandler) {
	if h == nil {
		a.adminHandler.Store(nil)
		return
	}
	a.adminHandler.Store(&h)
}

func (a *App) serveAdmin(ctx *fasthttp.RequestCtx) {
	switch string(ctx.Path()) {
	case "/metrics":
		ctx.SetContentType("text/plain; version=0.0.4; charset=utf-8")
		a.m.WritePrometheus(ctx)
		return
	case "/healthz":
		writeJSON(ctx, fasthttp.StatusOK, `{"status":"ok"}`)
		return
	case "/readyz":
		readyz(ctx, a.Ready)
		return
	}
	if h := a.adminHandler.Load(); h != nil {
		(*h)(ctx)
		return
	}
	writeError(ctx, errors.New("not found: the admin API is not enabled (set --admin-token)"), 0)
	ctx.SetStatusCode(fasthttp.StatusNotFound)
}

func (a *App) startDriver(context.Context) (func(context.Context) error, error) {
	// The driver outlives the start context: it is stopped by Stop.
	ctx, cancel := context.WithCancel(context.Background())
	a.driverStop = cancel
	a.driverDone = make(chan struct{})
	go func() {
		defer close(a.driverDone)
		a.supervise(ctx)
	}()
	return func(context.Context) error {
		cancel()
		<-a.driverDone
		return nil
	}, nil
}

func (a *App) startIngest(context.Context) (func(context.Context) error, error) {
	if err := a.server.listen(); err != nil {
		return nil, err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := a.server.srv.Serve(a.server.ln); err != nil {
			a.log.Error("ingest listener", "err", err)
		}
	}()
	return func(ctx context.Context) error {
		// Stop accepting; what is queued drains through the driver and
		// every waiting client is answered.
		a.recv.Close()
		shut := make(chan error, 1)
		go func() { shut <- a.server.srv.ShutdownWithContext(ctx) }()
		// Drained when the driver returned (queue closed and empty) or no
		// request is left unanswered (e.g. the sink is down and the driver
		// waits to restart).
		deadline := time.NewTimer(a.cfg.ShutdownTimeout)
		defer deadline.Stop()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
	drain:
		for {
			select {
			case <-a.driverDone:
				break drain
			case <-tick.C:
				if a.recv.Pending() == 0 {
					break drain
				}
			case <-deadline.C:
				n := a.recv.FailAll(ErrShuttingDown)
				a.log.Warn("drain deadline passed: failed waiting requests", "requests", n)
				break drain
			case <-ctx.Done():
				a.recv.FailAll(ErrShuttingDown)
				break drain
			}
		}
		err := <-shut
		// Shutdown closes only the listeners Serve has registered: when
		// Stop follows Start at once, Serve may not have begun yet.
		_ = a.server.ln.Close()
		<-done
		return err
	}, nil
}

// supervise runs the driver, and after a terminal error fails the waiting
// requests (503), marks the sink unhealthy (the gate holds, /readyz is not
// ready), probes it with capped exponential backoff and restarts the
// driver once it answers.
func (a *App) supervise(ctx context.Context) {
	const minBackoff, maxBackoff = 100 * time.Millisecond, 5 * time.Second
	backoff := minBackoff
	for {
		t := time.Now()
		err := a.runDriver(ctx)
		if err == nil || ctx.Err() != nil {
			return
		}
		a.m.driverRestarts.Inc()
		a.setHealthy(err)
		n := a.recv.FailAll(&PressureError{Source: "sink", Level: 1, RetryAfter: time.Second, Err: ErrSinkUnavailable})
		a.log.Error("driver stopped; failing waiting requests and probing the sink", "err", err, "failed_requests", n)
		if time.Since(t) > time.Minute {
			backoff = minBackoff
		}
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, maxBackoff)
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			perr := a.sink.Ping(pctx)
			cancel()
			if perr == nil {
				break
			}
			a.log.Warn("sink still unavailable", "err", perr, "next_probe", backoff)
		}
		a.setHealthy(nil)
		a.log.Info("sink healthy again; driver restarting")
	}
}

// setHealthy records the sink's health: nil is healthy; an error holds the
// gate (hard pressure "sink"), fails new requests fast and makes /readyz
// not ready.
func (a *App) setHealthy(err error) {
	a.sinkErrMu.Lock()
	a.sinkErr = err
	a.sinkErrMu.Unlock()
	if err != nil {
		a.healthy.Store(false)
		a.sinkHealth.Set(1, true)
		a.recv.SetDown(&PressureError{Source: "sink", Level: 1, RetryAfter: time.Second, Err: ErrSinkUnavailable})
		return
	}
	a.recv.SetDown(nil)
	a.sinkHealth.Set(0, false)
	a.healthy.Store(true)
}

// Ready returns nil when sluice takes traffic, else why not.
func (a *App) Ready() error {
	switch {
	case a.stopping.Load():
		return ErrShuttingDown
	case !a.started.Load():
		return errors.New("starting")
	case !a.healthy.Load():
		a.sinkErrMu.Lock()
		defer a.sinkErrMu.Unlock()
		return fmt.Errorf("%w: %v", ErrSinkUnavailable, a.sinkErr)
	}
	return nil
}

func (a *App) printDevBanner() {
	var b strings.Builder
	fmt.Fprintf(&b, "\nsluice is running (dev mode)\n\n")
	fmt.Fprintf(&b, "  ingest:  curl -XPOST http://%s/v1/events -H 'Content-Type: application/json' -d '{\"event\":\"hello\"}'\n", hostPort(a.HTTPAddr()))
	fmt.Fprintf(&b, "  metrics: http://%s/metrics\n", hostPort(a.AdminAddr()))
	fmt.Fprintf(&b, "  admin:   curl -H 'Authorization: Bearer %s' http://%s/admin/budget\n", a.cfg.AdminToken, hostPort(a.AdminAddr()))
	fmt.Fprintf(&b, "  admin token: %s\n", a.cfg.AdminToken)
	if a.broker != nil {
		fmt.Fprintf(&b, "  kafka:   kcat -b %s -C -t %s -o beginning\n", a.broker.Addr(), a.cfg.Topic)
		fmt.Fprintf(&b, "  dlq:     kcat -b %s -C -t %s -o beginning -f '%%h %%s\\n'\n", a.broker.Addr(), a.cfg.DLQTopic)
	}
	b.WriteString("\n")
	w := a.stdout
	if a.cfg.Sink == SinkStdout {
		w = os.Stderr // keep stdout pure NDJSON
	}
	_, _ = io.WriteString(w, b.String())
}

// hostPort makes a listen address usable in a URL (":8080" → "127.0.0.1:8080").
func hostPort(addr string) string {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if h == "" || h == "::" || h == "0.0.0.0" {
		h = "127.0.0.1"
	}
	return net.JoinHostPort(h, p)
}

// Config returns the configuration in use (with a generated dev token).
func (a *App) Config() Config { return a.cfg }

// HTTPAddr returns the ingest listener's bound address ("" before Start).
func (a *App) HTTPAddr() string { return a.server.Addr() }

// AdminAddr returns the admin listener's bound address ("" before Start).
func (a *App) AdminAddr() string {
	if a.adminLn == nil {
		return ""
	}
	return a.adminLn.Addr().String()
}

// Host returns the WASM host (nil before Start).
func (a *App) Host() *wasmhost.Host { return a.host }

// Governor returns the governor: guard, pressure, budget, gate.
func (a *App) Governor() *governor.Governor { return a.gov }

// Metrics returns the metric set served at /metrics.
func (a *App) Metrics() *Metrics { return a.m }

// Receiver returns the HTTP receiver.
func (a *App) Receiver() *Receiver { return a.recv }

// Tenants returns the configured tenant names, sorted (without the default
// tenant "").
func (a *App) Tenants() []string {
	names := make([]string, 0, len(a.cfg.Tenants))
	for _, t := range a.cfg.Tenants {
		names = append(names, t.Name)
	}
	sort.Strings(names)
	return names
}

// Pipelines returns each tenant's transform chain ("" is the default
// tenant).
func (a *App) Pipelines() map[string][]string {
	m := map[string][]string{}
	if a.host == nil {
		return m
	}
	all := a.host.Pipelines()
	m[""] = all[wasmhost.DefaultPipeline]
	for _, t := range a.cfg.Tenants {
		m[t.Name] = all[pipelineName(t.Name)]
	}
	return m
}

// tenantProcessor runs each record through its tenant's pipeline: records
// of one request are consecutive, so the batch is cut into runs by tenant.
type tenantProcessor struct {
	host   *wasmhost.Host
	recv   *Receiver
	single bool // no tenants: everything goes through the default pipeline
}

// Process implements engine.Processor.
func (p *tenantProcessor) Process(ctx context.Context, recs []engine.Record, dlq []engine.DLQEntry) ([]engine.Record, []engine.DLQEntry, error) {
	if p.single {
		return p.host.Pipeline(wasmhost.DefaultPipeline).Process(ctx, recs, dlq)
	}
	var out []engine.Record
	for i := 0; i < len(recs); {
		name := p.tenantOf(recs[i].Tag)
		j := i + 1
		for j < len(recs) && (recs[j].Tag == recs[i].Tag || p.tenantOf(recs[j].Tag) == name) {
			j++
		}
		res, d, err := p.host.Pipeline(pipelineName(name)).Process(ctx, recs[i:j:j], dlq)
		if err != nil {
			return nil, d, err
		}
		dlq = d
		out = append(out, res...)
		i = j
	}
	return out, dlq, nil
}

func (p *tenantProcessor) tenantOf(tag uint64) string {
	if a := p.recv.lookup(tag); a != nil {
		return a.tenant
	}
	return ""
}
