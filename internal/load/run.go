package load

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

// Error kinds counted in the report.
const (
	errTimeout    = iota // the request's deadline passed
	errConnection        // dial, reset, refused, closed by the server
	errOther             // anything else
	numErrKinds
)

var errKindNames = [numErrKinds]string{"timeout", "connection", "other"}

// classify maps a client error to its kind.
func classify(err error) int {
	var ne net.Error
	switch {
	case errors.Is(err, fasthttp.ErrTimeout), errors.Is(err, fasthttp.ErrDialTimeout),
		errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return errTimeout
	case errors.Is(err, fasthttp.ErrConnectionClosed), errors.Is(err, io.EOF),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, fasthttp.ErrNoFreeConns), errors.Is(err, net.ErrClosed):
		return errConnection
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return errConnection
	}
	return errOther
}

// run is the state of one load run shared by its workers.
type run struct {
	cfg      Config
	src      eventSource
	hc       *fasthttp.HostClient
	start    time.Time
	end      time.Time // zero: no time bound
	interval float64   // ns between intended sends (open loop); 0: closed loop
	next     atomic.Int64
	tl       *timeline
	acks     *ackWriter // nil without --record-acks
	pool     *bodyPool  // pre-rendered built-in bodies; nil with --events
}

// Body pool limits: at most poolMaxBodies bodies and about poolMaxBytes.
const (
	poolMaxBodies = 64
	poolMaxBytes  = 8 << 20
)

// bodyPool holds request bodies of built-in events rendered once at the
// start. Request k copies body k mod len(bodies) and patches in its event ids
// (fixed width, see seqWidth) and the send time, which costs a copy instead
// of rendering every field of every event; the copy keeps the pool read-only
// and so shareable by all workers.
type bodyPool struct {
	bodies [][]byte
	seqAt  [][]int32 // per body, per event: offset of the id's seq digits
	tsAt   [][]int32 // per body, per event: offset of ts
}

func newBodyPool(g *builtinEvents, cfg *Config) *bodyPool {
	n := cfg.EventsPerRequest
	array := cfg.jsonArrayBody()
	ts := []byte("0000-00-00T00:00:00.000Z")
	p := &bodyPool{}
	render := func(t int) {
		var b []byte
		seqAt, tsAt := make([]int32, n), make([]int32, n)
		if array {
			b = append(b, '[')
		}
		for i := range n {
			if array && i > 0 {
				b = append(b, ',')
			}
			seq := uint64(t*n + i)
			var sa, ta int
			b, sa, ta = g.render(b, seq, seq, ts)
			seqAt[i], tsAt[i] = int32(sa), int32(ta)
			if !array {
				b = append(b, '\n')
			}
		}
		if array {
			b = append(b, ']')
		}
		p.bodies = append(p.bodies, b)
		p.seqAt = append(p.seqAt, seqAt)
		p.tsAt = append(p.tsAt, tsAt)
	}
	render(0)
	count := min(poolMaxBodies, max(1, poolMaxBytes/len(p.bodies[0])))
	if cfg.Requests > 0 {
		count = int(min(int64(count), cfg.Requests))
	}
	for t := 1; t < count; t++ {
		render(t)
	}
	return p
}

// Run performs one load run as cfg says, writing a progress line to progress
// every cfg.ProgressInterval (progress may be nil), and returns the report.
// It returns early, with the report so far, when ctx is done; in-flight
// requests finish first (bounded by cfg.Timeout). An error means the run could
// not start or its outputs could not be written.
func Run(ctx context.Context, cfg Config, progress io.Writer) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	u, _ := url.Parse(cfg.URL) // validated
	isTLS := u.Scheme == "https"
	r := &run{cfg: cfg}
	if cfg.EventsFile != "" {
		fe, err := loadEventsFile(cfg.EventsFile, cfg.RecordAcks != "")
		if err != nil {
			return nil, err
		}
		r.src = fe
	}
	if cfg.RecordAcks != "" {
		f, err := os.Create(cfg.RecordAcks)
		if err != nil {
			return nil, fmt.Errorf("record acks: %w", err)
		}
		r.acks = &ackWriter{f: f, w: bufio.NewWriterSize(f, 256<<10)}
	}
	r.hc = &fasthttp.HostClient{
		Addr:                      fasthttp.AddMissingPort(u.Host, isTLS),
		IsTLS:                     isTLS,
		Name:                      "sluice-load",
		MaxConns:                  cfg.Connections,
		MaxConnWaitTimeout:        cfg.Timeout,
		ReadTimeout:               cfg.Timeout,
		WriteTimeout:              cfg.Timeout,
		MaxIdemponentCallAttempts: 1, // never resend: a resent request would double-count
		DisablePathNormalizing:    true,
	}
	if cfg.Insecure {
		r.hc.TLSConfig = &tls.Config{InsecureSkipVerify: true}
	}
	defer r.hc.CloseIdleConnections()

	if cfg.Seed == 0 {
		cfg.Seed = uint64(time.Now().UnixNano())
		r.cfg.Seed = cfg.Seed
	}
	if r.src == nil {
		g := newBuiltinEvents(cfg.Seed, cfg.HeartbeatShare)
		r.src = g
		if int64(cfg.EventsPerRequest) < 1<<31/1024 { // int32 offsets
			r.pool = newBodyPool(g, &r.cfg)
		}
	}
	// The schedule starts once everything is ready.
	r.start = time.Now()
	if cfg.Duration > 0 {
		r.end = r.start.Add(cfg.Duration)
	}
	if cfg.Rate > 0 {
		r.interval = float64(time.Second) / cfg.Rate
	}
	r.tl = newTimeline(r.start)

	var admin *adminPoller
	if cfg.AdminURL != "" {
		every := cfg.adminEvery
		if every <= 0 {
			every = time.Second
		}
		admin = startAdminPoller(cfg.AdminURL, cfg.AdminToken, cfg.Insecure, every, r.start)
	}
	stopProgress := make(chan struct{})
	var progressDone sync.WaitGroup
	if progress != nil && cfg.ProgressInterval > 0 {
		progressDone.Add(1)
		go func() {
			defer progressDone.Done()
			r.progressLoop(progress, stopProgress)
		}()
	}

	workers := make([]*worker, cfg.Connections)
	var wg sync.WaitGroup
	for i := range workers {
		workers[i] = newWorker(r)
		wg.Add(1)
		go func(w *worker) {
			defer wg.Done()
			w.loop(ctx)
		}(workers[i])
	}
	wg.Wait()
	elapsed := time.Since(r.start)
	close(stopProgress)
	progressDone.Wait()
	var samples []AdminSample
	if admin != nil {
		samples = admin.stop()
	}
	rep := r.report(workers, elapsed, samples)
	if r.acks != nil {
		if err := r.acks.close(); err != nil {
			return rep, fmt.Errorf("record acks: %w", err)
		}
	}
	return rep, nil
}

// ackWriter appends acknowledged event ids to the --record-acks file.
type ackWriter struct {
	mu  sync.Mutex
	f   *os.File
	w   *bufio.Writer
	err error
}

func (a *ackWriter) write(p []byte) {
	a.mu.Lock()
	if a.err == nil {
		_, a.err = a.w.Write(p)
	}
	a.mu.Unlock()
}

func (a *ackWriter) close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	err := a.err
	if ferr := a.w.Flush(); err == nil {
		err = ferr
	}
	if cerr := a.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// worker owns one connection's worth of sending: one request in flight, its
// Request/Response and body buffers reused for every request.
type worker struct {
	r     *run
	req   *fasthttp.Request
	resp  *fasthttp.Response
	raw   []byte
	gz    *sliceWriter // nil without --gzip
	ids   []byte
	ts    []byte
	timer *time.Timer

	hist      *Histogram
	status    [600]uint64 // by status code; [0] holds codes outside 100–599
	errs      [numErrKinds]uint64
	errSample [numErrKinds]string
	sent      uint64
	events    uint64
	acked     uint64
	wire      uint64
	rawBytes  uint64
}

func newWorker(r *run) *worker {
	w := &worker{
		r:     r,
		req:   new(fasthttp.Request),
		resp:  new(fasthttp.Response),
		hist:  NewHistogram(DefaultSubBits),
		timer: time.NewTimer(time.Hour),
	}
	w.timer.Stop()
	cfg := &r.cfg
	w.req.SetRequestURI(cfg.URL)
	w.req.Header.SetMethod(fasthttp.MethodPost)
	w.req.Header.SetContentType(cfg.ContentType)
	if cfg.APIKey != "" {
		if cfg.AuthHeader != AuthXAPIKey {
			w.req.Header.Set("Authorization", "Bearer "+cfg.APIKey)
		}
		if cfg.AuthHeader != AuthBearer {
			w.req.Header.Set("X-API-Key", cfg.APIKey)
		}
	}
	if cfg.Gzip {
		w.req.Header.SetContentEncoding("gzip")
		w.gz = &sliceWriter{}
	}
	return w
}

func (w *worker) loop(ctx context.Context) {
	r := w.r
	for ctx.Err() == nil {
		k := r.next.Add(1) - 1
		if r.cfg.Requests > 0 && k >= r.cfg.Requests {
			return
		}
		var intended time.Time
		if r.interval > 0 {
			intended = r.start.Add(time.Duration(float64(k) * r.interval))
			if !r.end.IsZero() && !intended.Before(r.end) {
				return
			}
			if d := time.Until(intended); d > 0 {
				w.timer.Reset(d)
				select {
				case <-w.timer.C:
				case <-ctx.Done():
					w.timer.Stop()
					return
				}
			}
		} else {
			intended = time.Now()
			if !r.end.IsZero() && !intended.Before(r.end) {
				return
			}
		}
		w.send(k, intended)
	}
}

// body renders the body of request k into the worker's buffers.
func (w *worker) body(k int64) []byte {
	cfg := &w.r.cfg
	n := cfg.EventsPerRequest
	seq := uint64(k) * uint64(n)
	w.ts = time.Now().UTC().AppendFormat(w.ts[:0], tsLayout)
	var b []byte
	if p := w.r.pool; p != nil && seq+uint64(n) <= maxPaddedSeq {
		t := k % int64(len(p.bodies))
		b = append(w.raw[:0], p.bodies[t]...)
		for i, at := range p.seqAt[t] {
			putDigits(b[at:at+seqWidth], seq+uint64(i))
		}
		for _, at := range p.tsAt[t] {
			copy(b[at:], w.ts)
		}
	} else {
		array := cfg.jsonArrayBody()
		b = w.raw[:0]
		if array {
			b = append(b, '[')
		}
		for i := range n {
			if array && i > 0 {
				b = append(b, ',')
			}
			b = w.r.src.appendEvent(b, seq+uint64(i), w.ts)
			if !array {
				b = append(b, '\n')
			}
		}
		if array {
			b = append(b, ']')
		}
	}
	w.raw = b
	w.rawBytes += uint64(len(b))
	if w.gz == nil {
		return b
	}
	// fasthttp's pooled gzip writers (klauspost/compress) at best speed are
	// about 3× faster than compress/gzip here and do not allocate when the
	// destination is not one of the writers fasthttp special-cases.
	w.gz.b = w.gz.b[:0]
	fasthttp.WriteGzipLevel(w.gz, b, fasthttp.CompressBestSpeed) // a sliceWriter cannot fail
	return w.gz.b
}

// sliceWriter appends to b.
type sliceWriter struct{ b []byte }

func (s *sliceWriter) Write(p []byte) (int, error) {
	s.b = append(s.b, p...)
	return len(p), nil
}

// send sends request k, due at intended, and records its outcome.
func (w *worker) send(k int64, intended time.Time) {
	r := w.r
	body := w.body(k)
	w.req.SetBodyRaw(body)
	err := r.hc.DoTimeout(w.req, w.resp, r.cfg.Timeout)
	done := time.Now()
	lat := done.Sub(intended)
	n := uint64(r.cfg.EventsPerRequest)
	w.sent++
	w.events += n
	w.wire += uint64(len(body))
	status, kind := 0, -1
	if err != nil {
		kind = classify(err)
		w.errs[kind]++
		if w.errSample[kind] == "" {
			w.errSample[kind] = err.Error()
		}
	} else {
		status = w.resp.StatusCode()
		if status >= 100 && status < len(w.status) {
			w.status[status]++
		} else {
			w.status[0]++
		}
		w.hist.Record(uint64(max(lat, 0)))
		if status == fasthttp.StatusOK {
			w.acked += n
			if r.acks != nil {
				w.recordAcks(uint64(k) * n)
			}
		}
	}
	r.tl.add(done, lat, status, kind, n, uint64(len(body)))
}

func (w *worker) recordAcks(seq uint64) {
	b := w.ids[:0]
	for i := range uint64(w.r.cfg.EventsPerRequest) {
		b = w.r.src.appendID(b, seq+i)
		b = append(b, '\n')
	}
	w.ids = b
	w.r.acks.write(b)
}

// timeline aggregates outcomes by the second (since the start) in which the
// request completed. Safe for concurrent use.
type timeline struct {
	mu    sync.Mutex
	start time.Time
	secs  []secStats
	total secStats // hist unused
}

type secStats struct {
	requests, ok, nonOK, errors uint64
	eventsAcked, bytes          uint64
	hist                        *Histogram
}

// timelineSubBits is the precision of the per-second latency histograms:
// buckets under 1/32 wide keep an hour-long run's timeline small.
const timelineSubBits = 5

func newTimeline(start time.Time) *timeline { return &timeline{start: start} }

func (t *timeline) add(done time.Time, lat time.Duration, status, errKind int, events, bytes uint64) {
	s := max(int(done.Sub(t.start)/time.Second), 0)
	t.mu.Lock()
	for len(t.secs) <= s {
		t.secs = append(t.secs, secStats{hist: NewHistogram(timelineSubBits)})
	}
	for _, st := range [2]*secStats{&t.secs[s], &t.total} {
		st.requests++
		st.bytes += bytes
		switch {
		case errKind >= 0:
			st.errors++
		case status == fasthttp.StatusOK:
			st.ok++
			st.eventsAcked += events
		default:
			st.nonOK++
		}
	}
	if errKind < 0 {
		t.secs[s].hist.Record(uint64(max(lat, 0)))
	}
	t.mu.Unlock()
}

// progressLoop prints one progress line per interval until stop closes.
func (r *run) progressLoop(out io.Writer, stop <-chan struct{}) {
	tk := time.NewTicker(r.cfg.ProgressInterval)
	defer tk.Stop()
	var prev secStats
	prevT := r.start
	for {
		select {
		case <-stop:
			return
		case now := <-tk.C:
			r.tl.mu.Lock()
			tot := r.tl.total
			var p99 uint64
			if s := int(now.Sub(r.start)/time.Second) - 1; s >= 0 && s < len(r.tl.secs) {
				p99 = r.tl.secs[s].hist.Quantile(0.99)
			}
			r.tl.mu.Unlock()
			dt := now.Sub(prevT).Seconds()
			fmt.Fprintf(out, "%7.1fs  %9d req %9.0f req/s %11.0f ev/s %8.2f MB/s  200:%d other:%d err:%d  p99(last s) %s\n",
				now.Sub(r.start).Seconds(), tot.requests,
				float64(tot.requests-prev.requests)/dt,
				float64(tot.eventsAcked-prev.eventsAcked)/dt,
				float64(tot.bytes-prev.bytes)/dt/1e6,
				tot.ok, tot.nonOK, tot.errors, fmtDuration(p99))
			prev, prevT = tot, now
		}
	}
}

func fmtDuration(ns uint64) string {
	d := time.Duration(ns)
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.2fs", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%.2fms", float64(d)/1e6)
	default:
		return fmt.Sprintf("%.0fµs", float64(d)/1e3)
	}
}
