package gateway

import (
	"math"
	"sync"
	"time"
)

// bucket is one API key's token bucket: rate tokens (events) a second up to
// burst. A request takes as many tokens as it has events, all or none.
// Each key has its own bucket and lock, so one key's flood never waits on
// another's. Safe for concurrent use.
type bucket struct {
	rate  float64 // tokens a second
	burst float64

	mu     sync.Mutex
	tokens float64
	last   time.Time
}

// newBucket returns a full bucket of rate events/s and burst events.
func newBucket(rate, burst int) *bucket {
	return &bucket{rate: float64(rate), burst: float64(burst), tokens: float64(burst)}
}

// refill adds the tokens earned since the last call. b.mu is held.
// A caller's clock reading may be older than the last one (taken before
// it waited for the lock): time only moves forward.
func (b *bucket) refill(now time.Time) {
	switch {
	case b.last.IsZero():
		b.last = now
	case now.After(b.last):
		b.tokens = math.Min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
		b.last = now
	}
}

// waitFor returns how long until the bucket holds n tokens. b.mu is held.
func (b *bucket) waitFor(n float64) time.Duration {
	if b.tokens >= n {
		return 0
	}
	return time.Duration((n - b.tokens) / b.rate * float64(time.Second))
}

// empty returns how long until the bucket holds one token: 0 when it
// does. It takes nothing (the check before a body is read).
func (b *bucket) empty(now time.Time) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refill(now)
	return b.waitFor(1)
}

// take takes n tokens if the bucket holds them and returns 0; else it
// takes nothing and returns how long until it would hold them. n above
// the burst never fits (the caller answers 413).
func (b *bucket) take(n int, now time.Time) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refill(now)
	if w := b.waitFor(float64(n)); w > 0 {
		return w
	}
	b.tokens -= float64(n)
	return 0
}

// refund gives back n tokens taken for a request that failed.
func (b *bucket) refund(n int) {
	b.mu.Lock()
	b.tokens = math.Min(b.burst, b.tokens+float64(n))
	b.mu.Unlock()
}

// retryAfterSeconds rounds a wait up to whole seconds (at least 1), the
// unit of Retry-After.
func retryAfterSeconds(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}
