package wasmhost

import (
	"context"
	"time"
)

// Pools sized by demand. Instances are started when a call finds no idle
// one (up to PoolSize per version), so a pool holds what the busiest
// moment needed: a sharded batch takes one instance per shard. The reaper
// closes instances that sat idle for Config.IdleTimeout, keeping the most
// recently used one of every version, so an idle gateway holds one Go
// guest (about 2.5 MiB of linear memory) per transform instead of
// PoolSize.

// reapEvery is how often the reaper looks, as a fraction of IdleTimeout.
const reapEvery = 4

// reap runs until ctx is done, closing idle instances.
func (h *Host) reap(ctx context.Context) {
	every := h.cfg.IdleTimeout / reapEvery
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			h.reapIdle(now)
		}
	}
}

// reapIdle closes, in every version's pool, the instances idle since
// before now - IdleTimeout, except the most recently used one.
func (h *Host) reapIdle(now time.Time) {
	h.mu.Lock()
	var vs []*version
	for _, t := range h.transforms {
		vs = append(vs, t.versions...)
	}
	h.mu.Unlock()
	for _, v := range vs {
		v.reapIdle(now.Add(-h.cfg.IdleTimeout))
	}
}

// reapIdle closes the idle instances released before cutoff, keeping the
// most recently released one. A caller that finds the pool empty while
// the reaper holds its instances waits for them (their slots are taken)
// or starts a new one; neither loses a call.
func (v *version) reapIdle(cutoff time.Time) {
	var held []*instance
	for {
		select {
		case in := <-v.pool:
			held = append(held, in)
			continue
		default:
		}
		break
	}
	if len(held) == 0 {
		return
	}
	newest := 0
	for i, in := range held {
		if in.idle.After(held[newest].idle) {
			newest = i
		}
	}
	for i, in := range held {
		if i != newest && in.idle.Before(cutoff) {
			in.mod.Close(context.Background())
			v.host.forgetMem(in)
			<-v.slots
			v.host.cfg.Hooks.recycle(v.name, "idle")
			continue
		}
		v.pool <- in
	}
	if v.retired.Load() {
		v.drain()
	}
}
