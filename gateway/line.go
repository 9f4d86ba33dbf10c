package gateway

import (
	"context"
	"log/slog"
	"time"
)

// Restart backoff of a line: capped exponential, reset after a run that
// lasted longer than lineBackoffReset. The cap is also the sink probe's
// period during an outage, so it bounds how long after the brokers are
// back the gateway notices (the first 200 must follow within seconds);
// a probe of a broker that refuses connections costs next to nothing.
const (
	lineMinBackoff   = 100 * time.Millisecond
	lineMaxBackoff   = time.Second
	lineBackoffReset = time.Minute
	lineProbeTimeout = 5 * time.Second
)

// line is one supervised flow: a source → the governed driver → the
// pipeline → the sink. The App runs one per source (HTTP ingest is one);
// each has its own driver and restart backoff, and they share the governor,
// the sink and the WASM host.
//
// Its supervisor runs the driver; after a terminal error (the ack barrier:
// nothing after the failed block is committed) it calls failed (the HTTP
// line answers its waiting requests with 503), marks the shared sink
// unhealthy (the gate holds, /readyz is not ready), probes the sink with
// capped exponential backoff and restarts the driver once it answers.
type line struct {
	name string
	log  *slog.Logger
	// run runs one driver until its source is drained or closed (nil), ctx
	// is done (nil), or a terminal error.
	run func(ctx context.Context) error
	// failed is called after a terminal error, before the sink is probed.
	// Optional.
	failed func(err error)
	// health is the sink's health, shared by every line.
	health *health
	// probe reports whether the sink accepts writes again.
	probe func(ctx context.Context) error
	// restarted counts a restart after a terminal error. Optional.
	restarted func()
	// sinkFault reports whether a terminal error is the sink's (then the
	// shared sink is marked down and probed before the restart); any other
	// error (the source's: a lost partition, unreachable brokers) only
	// backs off. Nil: every error is the sink's.
	sinkFault func(err error) bool

	cancel context.CancelFunc
	done   chan struct{}
}

// start runs the line's supervisor until stop. The line outlives the start
// context.
func (l *line) start() {
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	l.done = make(chan struct{})
	go func() {
		defer close(l.done)
		l.supervise(ctx)
	}()
}

// stop cancels the line and waits for its driver to return.
func (l *line) stop(context.Context) error {
	l.cancel()
	<-l.done
	return nil
}

// Done is closed once the line's supervisor returned: its source was
// drained, or the line was stopped.
func (l *line) Done() <-chan struct{} { return l.done }

// supervise runs the driver and restarts it after terminal errors (see
// line).
func (l *line) supervise(ctx context.Context) {
	backoff := lineMinBackoff
	for {
		t := time.Now()
		err := l.run(ctx)
		if err == nil || ctx.Err() != nil {
			return
		}
		if l.restarted != nil {
			l.restarted()
		}
		if time.Since(t) > lineBackoffReset {
			backoff = lineMinBackoff
		}
		if l.sinkFault != nil && !l.sinkFault(err) {
			if l.failed != nil {
				l.failed(err)
			}
			l.log.Warn("line stopped; restarting", "line", l.name, "err", err, "backoff", backoff)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, lineMaxBackoff)
			continue
		}
		l.health.down(err)
		if l.failed != nil {
			l.failed(err)
		}
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, lineMaxBackoff)
			pctx, cancel := context.WithTimeout(ctx, lineProbeTimeout)
			perr := l.probe(pctx)
			cancel()
			if perr == nil {
				break
			}
			l.log.Warn("sink still unavailable", "line", l.name, "err", perr, "next_probe", backoff)
		}
		l.health.up()
		l.log.Info("sink healthy again; driver restarting", "line", l.name)
	}
}
