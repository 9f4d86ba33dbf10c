package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice/engine"
	"github.com/sluicehq/sluice/gateway/admin"
	"github.com/sluicehq/sluice/gateway/kafka"
	"github.com/sluicehq/sluice/governor"
	"github.com/sluicehq/sluice/wasmhost"
	"github.com/valyala/fasthttp"
)

// App wires sluice together and runs its lines. The shared parts come up
// first: the governor (built by New), the sink (Kafka, its dev broker, or
// discard/stdout), the WASM host and the admin listener; then the lines,
// each a source → governed driver → pipeline → sink with its own
// supervisor (line.go); HTTP ingest is one line (httpline.go), and its
// listener opens last. Start brings the steps up in that order, Stop takes
// them down in reverse; each step is logged with its duration.
//
// Where each job lives: configuration (config.go, configload.go), lines and
// their supervisor (line.go, drive.go), the HTTP line and its drain
// (httpline.go), readiness and sink health (health.go), the admin listener
// (adminlistener.go), the WASM host and transforms (wasm.go), tenants'
// pipelines (tenants.go), the dev banner (banner.go).
type App struct {
	cfg    Config
	log    *slog.Logger
	stdout io.Writer

	m      *Metrics
	gov    *governor.Governor
	health *health
	recv   *Receiver

	broker *kafka.DevBroker
	ksink  *kafka.Sink
	sink   Sink
	tally  *tallySink
	host   *wasmhost.Host
	guests atomic.Pointer[wasmhost.Host] // the host, for the governor's reading of its memory
	pipes  map[string]*wasmhost.Pipeline // tenant ("" default) → its pipeline, set by startHost
	proc   engine.Processor
	server *Server

	pendingCode atomic.Int64 // code expected from the modules compiling at start (see compileHooks)

	admin *adminListener
	http  *httpLine
	died  chan error   // a part that failed while running (Failed)
	kafka []*kafkaLine // the Kafka source lines
	ksec  kafka.Security

	stops []step // started steps, stopped in reverse

	tokenGenerated bool // the admin token was generated (dev), so the banner may print it
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
	generated := false
	if cfg.Dev && cfg.AdminToken == "" {
		var b [16]byte
		_, _ = rand.Read(b[:])
		cfg.AdminToken = hex.EncodeToString(b[:])
		generated = true
	}
	if logger == nil {
		logger = slog.Default()
	}
	if stdout == nil {
		stdout = io.Discard
	}
	a := &App{cfg: cfg, log: logger, stdout: stdout, tokenGenerated: generated}
	a.recv = NewReceiver(ReceiverConfig{QueueBytes: cfg.queueBytes()})
	a.health = newHealth(a.recv)
	gov, err := newGovernor(&cfg, a.recv, a.health.gauge, a.hostMemory)
	if err != nil {
		return nil, err
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
		sinkHealthy: func() float64 { return b2f(a.health.Healthy()) },
		queueBytes:  func() float64 { return float64(a.recv.QueuedBytes()) },
		baseline:    gov.Baseline,
		pipelinesUnavailable: func() float64 {
			if a.host == nil {
				return 0
			}
			return float64(len(a.unavailablePipelines()))
		},
		memoryUsed: func() float64 {
			if hs := gov.Heap(); hs != nil {
				return float64(hs.UsedBytes())
			}
			return 0
		},
	})
	a.server = newServer(&a.cfg, a.recv, gov, a.m, logger, a.readiness)
	a.server.pipelineErr = a.pipelineErr
	a.died = make(chan error, 1)
	a.admin = &adminListener{addr: cfg.AdminAddr, m: a.m, ready: a.readiness, log: logger, died: a.fail}
	return a, nil
}

// newGovernor sizes the governor from the memory limit: a quarter of it
// may be leased (in flight), the byte budget moves between 64 KiB and
// min(16 MiB, a quarter of that) divided by the driver depth, as each line's
// driver holds up to depth batches of the budget. Its pressure sources are the receive
// queue's fill and the sink's health. The heap is measured against the
// explicit limit, else GOMEMLIMIT or the cgroup's limit (the governor's
// defaults). hostMemory reports the WASM host's compiled code (outside the
// Go heap) and pools: fixed memory, part of the baseline (see memory.go).
func newGovernor(cfg *Config, recv *Receiver, sinkHealth *governor.Gauge, hostMemory func() governor.HostMemory) (*governor.Governor, error) {
	guardLimit := int64(cfg.MemoryLimit) / 4
	var heapLimit int64
	if cfg.MemoryLimitSet() {
		heapLimit = int64(cfg.MemoryLimit)
	}
	gov, err := governor.New(governor.Config{
		MemoryLimit: guardLimit,
		HeapLimit:   heapLimit,
		HostMemory:  hostMemory,
		Budget: governor.BudgetConfig{
			Max: max(min(16<<20, guardLimit/4)/int64(max(cfg.DriverDepth, 1)), 256<<10),
			Min: 64 << 10,
		},
		Sources: []governor.Source{recv.Fill(), sinkHealth},
	})
	if err != nil {
		return nil, fmt.Errorf("%w: governor: %w", ErrConfig, err)
	}
	return gov, nil
}

// Start brings sluice up in order: memory limit, TLS certificates, dev
// broker, WASM host, admin listener, sink, the lines' drivers, ingest
// listener. The admin
// listener comes before the sink so that /readyz says why while start waits
// for Kafka (--kafka-wait). On failure it stops what it started and returns
// the error.
func (a *App) Start(ctx context.Context) error {
	steps := []struct {
		name  string
		start func(context.Context) (func(context.Context) error, error)
	}{
		{"memory limit", a.startMemoryLimit},
		{"tls certificates", a.startTLS},
		{"dev broker", a.startDevBroker},
		{"wasm host", a.startHost},
		{"admin listener", a.startAdmin},
		{"sink", a.startSink},
		{"driver", a.startLines},
		{"memory baseline", a.startBaseline},
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
	a.health.started.Store(true)
	a.log.Info("listening", "http", a.HTTPAddr(), "admin", a.AdminAddr())
	if a.cfg.ReadyFile != "" {
		if err := writeReadyFile(a.cfg.ReadyFile, a.HTTPAddr(), a.AdminAddr()); err != nil {
			return err
		}
	}
	if a.cfg.Dev {
		a.printDevBanner()
	}
	return nil
}

// writeReadyFile writes "http=ADDR admin=ADDR" to path atomically.
func writeReadyFile(path, httpAddr, adminAddr string) error {
	line := fmt.Sprintf("http=%s admin=%s\n", httpAddr, adminAddr)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(line), 0o644); err != nil {
		return fmt.Errorf("ready file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("ready file: %w", err)
	}
	return nil
}

// Stop takes sluice down in reverse order of Start: the ingest listener
// stops accepting and the queued requests drain through the driver (every
// waiting client is answered), then the lines stop, then the sink
// (flushed), the admin listener, the WASM host and the dev broker. ctx
// bounds the whole stop; the drain is also bounded by ShutdownTimeout.
func (a *App) Stop(ctx context.Context) error {
	a.health.stopping.Store(true)
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

// startTLS loads the listeners' certificates (start fails on a pair that
// does not load) and starts checking their files for changes.
func (a *App) startTLS(context.Context) (func(context.Context) error, error) {
	var rs []*certReloader
	closeAll := func(context.Context) error {
		for _, r := range rs {
			r.close()
		}
		return nil
	}
	for _, l := range []struct {
		name, cert, key string
		set             func(*certReloader)
	}{
		{"ingest", a.cfg.TLSCert, a.cfg.TLSKey, func(r *certReloader) { a.server.tls = r }},
		{"admin", a.cfg.AdminTLSCert, a.cfg.AdminTLSKey, func(r *certReloader) { a.admin.tls = r }},
	} {
		if l.cert == "" {
			continue
		}
		r, err := newCertReloader(l.name, l.cert, l.key, a.cfg.TLSReloadInterval, a.m, a.log)
		if err != nil {
			_ = closeAll(context.Background())
			return nil, err
		}
		l.set(r)
		rs = append(rs, r)
	}
	if len(rs) == 0 {
		return nil, nil
	}
	return closeAll, nil
}

// Reload reloads what sluice reloads on SIGHUP: the TLS certificates of
// the listeners, from their files, whether or not they changed. A pair
// that does not load is logged and the previous one stays in use; the
// errors are returned.
func (a *App) Reload() error {
	var errs []error
	for _, r := range []*certReloader{a.server.tls, a.admin.tls} {
		if r != nil {
			if err := r.Reload(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// topics returns the topics sluice writes to by configuration.
func (a *App) topics() []string {
	ts := []string{a.cfg.Topic, a.cfg.DLQTopic}
	for _, t := range a.cfg.Tenants {
		if t.Topic != "" {
			ts = append(ts, t.Topic)
		}
	}
	for _, s := range a.cfg.sources() {
		ts = append(ts, s.Topics...)
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

// startSink opens the sink every line writes to.
func (a *App) startSink(ctx context.Context) (func(context.Context) error, error) {
	switch a.cfg.Sink {
	case SinkDiscard:
		a.sink = DiscardSink{}
	case SinkStdout:
		a.sink = NewStdoutSink(a.stdout)
	default:
		sec, err := a.kafkaSecurity()
		if err != nil {
			return nil, err
		}
		kc := a.kafkaSinkConfig(a.kafkaBrokers(), sec)
		var s *kafka.Sink
		err = retryKafka(ctx, a.log, a.cfg.Kafka.Wait, sec, "sink", func(ctx context.Context) error {
			var err error
			s, err = kafka.NewSink(ctx, kc, a.log.With("component", "kafka"))
			return err
		}, a.health.waiting)
		if err != nil {
			return nil, err
		}
		a.ksink = s
		a.sink = s
	}
	a.tally = &tallySink{inner: a.sink, recv: a.recv, m: a.m}
	a.health.up()
	if a.ksink == nil {
		return nil, nil
	}
	return func(ctx context.Context) error {
		err := a.ksink.Flush(ctx)
		a.ksink.Close()
		return err
	}, nil
}

// kafkaBrokers returns the seed brokers: the dev broker's or --brokers.
func (a *App) kafkaBrokers() []string {
	if a.broker != nil {
		return a.broker.Brokers()
	}
	return a.cfg.Brokers
}

// kafkaSecurity builds the Kafka connection security once (the sink and
// the sources share it) and logs how sluice connects.
func (a *App) kafkaSecurity() (kafka.Security, error) {
	if a.ksec != (kafka.Security{}) {
		return a.ksec, nil
	}
	sec, err := kafkaSecurity(&a.cfg.Kafka)
	if err != nil {
		return kafka.Security{}, err
	}
	warnKafka(a.log, &a.cfg.Kafka, sec)
	a.ksec = sec
	return sec, nil
}

// batchOverhead bounds a record batch's framing around one record.
const batchOverhead = 1 << 10

// kafkaSinkConfig returns the Kafka sink's configuration.
func (a *App) kafkaSinkConfig(brokers []string, sec kafka.Security) kafka.Config {
	o := &a.cfg.Kafka
	kc := kafka.DefaultConfig(brokers...)
	kc.DefaultTopic = a.cfg.Topic
	kc.DLQTopic = a.cfg.DLQTopic
	kc.AllowAutoTopicCreation = a.cfg.Dev
	kc.DeliveryTimeout = a.cfg.deliveryTimeout()
	kc.Security = sec
	kc.ClientID = o.ClientID
	kc.Compression = o.Compression
	kc.Linger = o.Linger
	if o.Linger == 0 {
		kc.Linger = -1 // no linger (the kafka package's zero means its default)
	}
	kc.TopicErrorTTL = o.TopicErrorTTL
	if o.TopicErrorTTL == 0 {
		kc.TopicErrorTTL = -1 // cache nothing (the kafka package's zero means its default)
	}
	// A record up to a raised cap (dead-lettered above it, capRecords) must
	// fit in a batch with its framing. The default batch cap stays within
	// the brokers' default message.max.bytes (1 MiB + 12 B); a record just
	// under the default 1 MiB cap that does not fit with its framing fails
	// in the producer and is dead-lettered by the sink's per-record outcome.
	if need := int64(o.MaxRecordBytes) + batchOverhead; o.MaxRecordBytes > 1<<20 && need > int64(kc.BatchMaxBytes) {
		kc.BatchMaxBytes = int32(min(need, 1<<30))
	}
	kc.Acks = o.Acks
	return kc
}

func (a *App) startAdmin(context.Context) (func(context.Context) error, error) {
	var api *admin.Handler
	if a.cfg.AdminToken != "" {
		h, err := a.newAdminAPI()
		if err != nil {
			return nil, err
		}
		api = h
	}
	if err := a.admin.start(api); err != nil {
		api.Close()
		return nil, err
	}
	return stopAdmin(a.admin.stop, api), nil
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
		Baseline:   a.gov.Baseline,
		Logger:     a.log.With("component", "admin"),
	}
	if hs := a.gov.Heap(); hs != nil {
		deps.HeapBytes = func() uint64 { return uint64(max(hs.HeapBytes(), 0)) }
	}
	a.consoleDeps(&deps)
	return admin.New(admin.Config{Token: a.cfg.AdminToken}, deps)
}

// startLines starts every line's supervised driver: HTTP ingest, then one
// per Kafka source. Stop stops them in reverse.
func (a *App) startLines(context.Context) (func(context.Context) error, error) {
	proc, maxRecord := a.proc, 0
	if a.ksink != nil {
		maxRecord = int(a.cfg.Kafka.MaxRecordBytes)
		proc = capRecords{inner: proc, max: maxRecord}
	}
	d := driveDeps{gov: a.gov, sink: a.tally, proc: proc, m: a.m, log: a.log, depth: a.cfg.DriverDepth}
	a.http = newHTTPLine(d, a.recv, a.server, a.health, a.sink.Ping, a.cfg.ShutdownTimeout, a.log)
	a.http.died = a.fail
	srcs := a.cfg.sources()
	var sec kafka.Security
	if len(srcs) > 0 {
		var err error
		if sec, err = a.kafkaSecurity(); err != nil {
			return nil, err
		}
	}
	// A Kafka line's records carry no request: the tally credits them to
	// nobody and feeds the sink metrics.
	kd := kafkaLineDeps{drive: d, host: a.host, latched: a.gov.Pressure().Latched, maxRecord: maxRecord,
		health: a.health, probe: a.sink.Ping, log: a.log, grace: a.cfg.ShutdownTimeout}
	for _, o := range srcs {
		a.kafka = append(a.kafka, newKafkaLine(o, a.sourceConfig(o, sec), a.sourceTopic(o), kd))
	}
	a.http.start()
	for _, l := range a.kafka {
		l.start()
		a.log.Info("kafka source", "line", l.name, "group", l.src.Group, "topics", l.src.Topics)
	}
	return func(ctx context.Context) error {
		for i := len(a.kafka) - 1; i >= 0; i-- {
			_ = a.kafka[i].stop(ctx)
		}
		return a.http.stop(ctx)
	}, nil
}

// sourceConfig returns the consumer configuration of source o.
func (a *App) sourceConfig(o SourceOptions, sec kafka.Security) kafka.SourceConfig {
	return kafka.SourceConfig{
		Brokers:        a.kafkaBrokers(),
		Group:          o.Group,
		Topics:         o.Topics,
		ClientID:       a.cfg.Kafka.ClientID,
		SessionTimeout: o.SessionTimeout,
		Security:       sec,
		// What the client buffers ahead of the engine counts against the
		// memory limit: a thirty-second of it, 1–16 MiB.
		FetchMaxBytes: int32(min(max(int64(a.cfg.MemoryLimit)/32, 1<<20), kafka.DefaultFetchMaxBytes)),
	}
}

// sourceTopic is the default topic of source o's records: its tenant's,
// else the sink's ("").
func (a *App) sourceTopic(o SourceOptions) string {
	for _, t := range a.cfg.Tenants {
		if t.Name == o.Tenant && o.Tenant != "" {
			return t.Topic
		}
	}
	return ""
}

// startIngest opens the ingest listener; its stop drains the HTTP line.
func (a *App) startIngest(context.Context) (func(context.Context) error, error) {
	if err := a.http.listen(); err != nil {
		return nil, err
	}
	return a.http.drain, nil
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
func (a *App) SetAdminHandler(h fasthttp.RequestHandler) { a.admin.setHandler(h) }

// Failed receives the error of a part of sluice that died while running
// (the ingest or the admin listener stopped accepting connections): the
// process cannot serve as configured, so its caller stops the App and exits
// non-zero. It receives at most one error.
func (a *App) Failed() <-chan error { return a.died }

// fail reports a part that died while running (see Failed).
func (a *App) fail(err error) {
	a.log.Error("sluice cannot go on", "err", err)
	select {
	case a.died <- err:
	default:
	}
}

// Ready returns nil when sluice takes traffic, else why not. While some
// of the tenants' pipelines are unavailable (a transform is not loaded) and
// others run it takes traffic (nil; /readyz says "degraded" and why); when
// no pipeline in use can run it is not ready.
func (a *App) Ready() error {
	if err := a.readiness(); !errors.Is(err, ErrDegraded) {
		return err
	}
	return nil
}

// readiness is what /readyz answers: Ready's error, or an error wrapping
// ErrDegraded that names the unavailable pipelines while others run.
func (a *App) readiness() error {
	if err := a.health.Ready(); err != nil {
		return err
	}
	return a.pipelinesReady()
}

// Config returns the configuration in use (with a generated dev token).
func (a *App) Config() Config { return a.cfg }

// HTTPAddr returns the ingest listener's bound address ("" before Start).
func (a *App) HTTPAddr() string { return a.server.Addr() }

// AdminAddr returns the admin listener's bound address ("" before Start).
func (a *App) AdminAddr() string { return a.admin.Addr() }

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
