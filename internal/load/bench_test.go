package load

import (
	"net"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// noopServer answers 200 to everything without reading the body beyond what
// fasthttp does; it returns the ingest URL.
func noopServer(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {}, CloseOnShutdown: true}
	go srv.Serve(ln)
	tb.Cleanup(func() { srv.Shutdown() })
	return "http://" + ln.Addr().String() + "/v1/events"
}

func benchWorker(b *testing.B, gz bool, n int) *worker {
	cfg := testConfig(noopServer(b))
	cfg.EventsPerRequest, cfg.Gzip, cfg.Connections = n, gz, 1
	if err := cfg.Validate(); err != nil {
		b.Fatal(err)
	}
	g := newBuiltinEvents(1, 0.1)
	r := &run{cfg: cfg, src: g, start: time.Now()}
	r.pool = newBodyPool(g, &r.cfg)
	r.tl = newTimeline(r.start)
	r.hc = &fasthttp.HostClient{Addr: cfg.URL[len("http://") : len(cfg.URL)-len("/v1/events")], MaxConns: 1, MaxIdemponentCallAttempts: 1}
	return newWorker(r)
}

// BenchmarkSend is one connection's request loop against a no-op server:
// render the body, send it, wait for the answer, record the outcome.
func BenchmarkSend(b *testing.B) {
	for _, bc := range []struct {
		name string
		gz   bool
		n    int
	}{{"events=1", false, 1}, {"events=100", false, 100}, {"events=100/gzip", true, 100}} {
		b.Run(bc.name, func(b *testing.B) {
			w := benchWorker(b, bc.gz, bc.n)
			w.send(0, time.Now()) // connect
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				w.send(int64(i), time.Now())
			}
			b.ReportMetric(float64(b.N)*float64(bc.n)/b.Elapsed().Seconds(), "events/s")
			if w.status[200] != uint64(b.N)+1 {
				b.Fatalf("%d of %d answered 200", w.status[200], b.N+1)
			}
		})
	}
}

// BenchmarkRun is a whole closed-loop run with 16 connections and 100 events
// per request against a no-op server on the same machine.
func BenchmarkRun(b *testing.B) {
	cfg := testConfig(noopServer(b))
	cfg.Connections, cfg.EventsPerRequest = 16, 100
	b.ReportAllocs()
	cfg.Requests = int64(b.N)
	rep, err := Run(b.Context(), cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(rep.Requests.PerSecond, "req/s")
	b.ReportMetric(rep.Events.PerSecond, "events/s")
	b.ReportMetric(rep.Latency.P99*1e6, "p99-ns")
}

func BenchmarkAppendEvent(b *testing.B) {
	g := newBuiltinEvents(1, 0.1)
	buf := make([]byte, 0, 1024)
	now := time.Now().UTC().AppendFormat(nil, tsLayout)
	b.ReportAllocs()
	var size int
	for i := 0; b.Loop(); i++ {
		buf = g.appendEvent(buf[:0], uint64(i), now)
		size += len(buf)
	}
	b.SetBytes(int64(size / max(b.N, 1)))
}

func BenchmarkHistogramRecord(b *testing.B) {
	h := NewHistogram(DefaultSubBits)
	h.Record(1e10)
	b.ReportAllocs()
	v := uint64(1)
	for b.Loop() {
		h.Record(v)
		v = (v*2862933555777941757 + 3037000493) % 1e9
	}
}
