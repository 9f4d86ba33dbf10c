package gateway

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice/governor"
)

// health is sluice's readiness: starting, running, stopping, and the
// health of the sink every line writes to. An unhealthy sink is a hard
// pressure source (the gate holds), fails new requests fast (the receiver
// is down) and makes /readyz not ready.
type health struct {
	gauge *governor.Gauge // the governor's "sink" pressure source
	recv  *Receiver

	started  atomic.Bool
	stopping atomic.Bool
	healthy  atomic.Bool
	mu       sync.Mutex
	err      error // why the sink is unhealthy
	startErr error // why start is still waiting (for Kafka)
}

// waiting records why start is still waiting (nil: no longer).
func (h *health) waiting(err error) {
	h.mu.Lock()
	h.startErr = err
	h.mu.Unlock()
}

func newHealth(recv *Receiver) *health {
	return &health{gauge: governor.NewGauge("sink"), recv: recv}
}

// sinkDown is the 503 of requests while the sink is down.
func sinkDown() *PressureError {
	return &PressureError{Source: "sink", Level: 1, RetryAfter: time.Second, Err: ErrSinkUnavailable}
}

// down marks the sink unhealthy because of err.
func (h *health) down(err error) {
	h.mu.Lock()
	h.err = err
	h.mu.Unlock()
	h.healthy.Store(false)
	h.gauge.Set(1, true)
	h.recv.SetDown(sinkDown())
}

// up marks the sink healthy.
func (h *health) up() {
	h.mu.Lock()
	h.err = nil
	h.mu.Unlock()
	h.recv.SetDown(nil)
	h.gauge.Set(0, false)
	h.healthy.Store(true)
}

// Healthy reports whether the sink is healthy.
func (h *health) Healthy() bool { return h.healthy.Load() }

// Ready returns nil when sluice takes traffic, else why not.
func (h *health) Ready() error {
	switch {
	case h.stopping.Load():
		return ErrShuttingDown
	case !h.started.Load():
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.startErr != nil {
			return fmt.Errorf("starting: waiting for Kafka: %w", h.startErr)
		}
		return errors.New("starting")
	case !h.healthy.Load():
		h.mu.Lock()
		defer h.mu.Unlock()
		return fmt.Errorf("%w: %v", ErrSinkUnavailable, h.err)
	}
	return nil
}
