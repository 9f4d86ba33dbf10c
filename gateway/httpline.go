package gateway

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"
)

// httpLine is the HTTP ingest line: the front door (Server) enqueues
// requests on the Receiver, the line's governed driver drains it through
// the tenants' pipelines into the sink, and each commit answers the
// waiting clients. A terminal driver error fails every waiting request
// with 503 before the line's supervisor probes the sink and restarts.
type httpLine struct {
	line
	recv            *Receiver
	server          *Server
	shutdownTimeout time.Duration
	serveDone       chan struct{}
	// died is told when Serve returns while the line is not draining (the
	// socket failed): the App then ends the process.
	died     func(error)
	draining atomic.Bool
}

// newHTTPLine returns the HTTP ingest line over recv and server.
func newHTTPLine(d driveDeps, recv *Receiver, server *Server, h *health, probe func(context.Context) error, shutdownTimeout time.Duration, log *slog.Logger) *httpLine {
	l := &httpLine{recv: recv, server: server, shutdownTimeout: shutdownTimeout}
	l.line = line{
		name:   "http",
		log:    log,
		run:    func(ctx context.Context) error { return runGoverned(ctx, d, recv) },
		health: h,
		probe:  probe,
		failed: func(err error) {
			n := recv.FailAll(sinkDown())
			log.Error("driver stopped; failing waiting requests and probing the sink", "line", "http", "err", err, "failed_requests", n)
		},
		restarted: d.m.driverRestarts.Inc,
	}
	return l
}

// listen binds the ingest listener and serves it.
func (l *httpLine) listen() error {
	if err := l.server.listen(); err != nil {
		return err
	}
	l.serveDone = make(chan struct{})
	go func() {
		defer close(l.serveDone)
		err := l.server.serve()
		if !l.draining.Load() && l.died != nil {
			l.died(listenerDied("ingest", l.server.ln.Addr(), err))
		}
	}()
	return nil
}

// drain stops accepting requests; what is queued drains through the driver
// and every waiting client is answered. Drained when the driver returned
// (queue closed and empty) or no request is left unanswered (e.g. the sink
// is down and the driver waits to restart); past shutdownTimeout or ctx,
// the requests still waiting get 503.
func (l *httpLine) drain(ctx context.Context) error {
	l.draining.Store(true)
	l.recv.Close()
	shut := make(chan error, 1)
	go func() { shut <- l.server.srv.ShutdownWithContext(ctx) }()
	deadline := time.NewTimer(l.shutdownTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
drain:
	for {
		select {
		case <-l.Done():
			break drain
		case <-tick.C:
			if l.recv.Pending() == 0 {
				break drain
			}
		case <-deadline.C:
			n := l.recv.FailAll(ErrShuttingDown)
			l.log.Warn("drain deadline passed: failed waiting requests", "requests", n)
			break drain
		case <-ctx.Done():
			l.recv.FailAll(ErrShuttingDown)
			break drain
		}
	}
	err := <-shut
	// Shutdown closes only the listeners Serve has registered: when Stop
	// follows Start at once, Serve may not have begun yet.
	_ = l.server.ln.Close()
	<-l.serveDone
	return err
}
