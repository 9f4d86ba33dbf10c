package gateway

import (
	"context"

	"github.com/sluicehq/sluice/gateway/admin"
)

// The operator console (admin /ui/) reads the traffic counters and the
// readiness through the admin API's history and status routes.

// consoleDeps adds what the console's history and status read to deps:
// the metrics' traffic counters, and readiness with the sink's health.
func (a *App) consoleDeps(deps *admin.Deps) {
	deps.Traffic = a.m
	deps.Status = a.health
}

var _ admin.StatusReader = (*health)(nil)

// SinkError returns nil while the sink is healthy (or before the first
// start), else the error that made it unhealthy.
func (h *health) SinkError() error {
	if h.healthy.Load() {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.err
}

// stopAdmin is the admin listener's stop step, which also stops the admin
// API's history sampler (api may be nil: no admin API).
func stopAdmin(stop func(context.Context) error, api *admin.Handler) func(context.Context) error {
	return func(ctx context.Context) error {
		err := stop(ctx)
		api.Close()
		return err
	}
}
