package gateway

import (
	"hash/maphash"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// Idempotency-Key: a request that carries the header is remembered, per
// tenant and key, for the idempotency window. A retry with the same key
// gets the first answer with Idempotent-Replayed: true and writes nothing;
// a duplicate that arrives while the first is in flight waits for it (up to
// the ack timeout plus a second, then 409). Only final answers are
// remembered: 200 and the 4xx that depend on the request alone (400, 413,
// 415); a 5xx, a 429 and a 403 are not, so the retry runs anew. The window
// is per instance: behind a load balancer a retry may reach another
// instance, so every record also carries the key in its idempotency-key
// header for consumers to deduplicate.

// maxIdempotencyKey is the longest Idempotency-Key accepted.
const maxIdempotencyKey = 255

// The cache is cut into up to maxIdemShards independently locked parts of
// at least idemShardKeys keys each (a small cache is one exact LRU).
const (
	maxIdemShards = 16
	idemShardKeys = 4096
)

// idemCache remembers answers by tenant and Idempotency-Key: at most
// maxKeys entries (least recently used forgotten first, per shard) and
// maxBytes of answers, each for window after it was answered. Safe for
// concurrent use.
type idemCache struct {
	window time.Duration
	seed   maphash.Seed
	shards []idemShard
}

// idemShard is one locked part of the cache: a map and an LRU list.
type idemShard struct {
	mu       sync.Mutex
	m        map[string]*idemEntry
	head     *idemEntry // most recently used
	tail     *idemEntry
	maxKeys  int
	bytes    int64
	maxBytes int64
}

// idemEntry is one key: in flight (done open) or answered.
type idemEntry struct {
	key        string
	done       chan struct{} // closed when the first request finished
	ans        *idemAnswer   // set before done is closed; nil: not remembered
	expires    time.Time
	prev, next *idemEntry
	size       int64
}

// idemAnswer is a remembered answer.
type idemAnswer struct {
	code int
	body []byte
}

// idemEntryCost is the bytes an entry holds beyond its key and answer's
// body (entry, map slot, answer).
const idemEntryCost = 192

// newIdemCache returns a cache of maxKeys entries and maxBytes of answers.
func newIdemCache(window time.Duration, maxKeys int, maxBytes int64) *idemCache {
	n := min(max(1, maxKeys/idemShardKeys), maxIdemShards)
	c := &idemCache{window: window, seed: maphash.MakeSeed(), shards: make([]idemShard, n)}
	for i := range c.shards {
		keys := maxKeys / n
		if i < maxKeys%n {
			keys++
		}
		c.shards[i] = idemShard{m: map[string]*idemEntry{}, maxKeys: keys, maxBytes: max(64<<10, maxBytes/int64(n))}
	}
	return c
}

// cacheKey is the tenant-scoped key.
func cacheKey(tenant string, key []byte) string {
	b := make([]byte, 0, len(tenant)+1+len(key))
	b = append(b, tenant...)
	b = append(b, 0)
	return string(append(b, key...))
}

func (c *idemCache) shard(key string) *idemShard {
	if len(c.shards) == 1 {
		return &c.shards[0]
	}
	return &c.shards[maphash.String(c.seed, key)%uint64(len(c.shards))]
}

// begin looks key up. It returns the remembered answer (replay it), or the
// channel of a first request still in flight (wait, then begin again), or
// a new entry this request owns (process, then finish).
func (c *idemCache) begin(key string, now time.Time) (ans *idemAnswer, inflight <-chan struct{}, own *idemEntry) {
	s := c.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.m[key]; e != nil {
		switch {
		case e.ans == nil:
			return nil, e.done, nil
		case now.Before(e.expires):
			s.moveToFront(e)
			return e.ans, nil, nil
		default:
			s.remove(e)
		}
	}
	e := &idemEntry{key: key, done: make(chan struct{}), size: int64(len(key)) + idemEntryCost}
	s.m[key] = e
	s.pushFront(e)
	s.bytes += e.size
	s.evict()
	return nil, nil, e
}

// finish ends the first request of e: ans is remembered for the window,
// or (nil) forgotten so that a retry runs anew. Waiters are woken.
func (c *idemCache) finish(e *idemEntry, ans *idemAnswer, now time.Time) {
	s := c.shard(e.key)
	s.mu.Lock()
	if s.m[e.key] == e {
		if ans != nil {
			e.ans = ans
			e.expires = now.Add(c.window)
			n := int64(len(ans.body))
			e.size += n
			s.bytes += n
			s.evict()
		} else {
			s.remove(e)
		}
	}
	s.mu.Unlock()
	close(e.done)
}

// len returns the remembered and in-flight keys.
func (c *idemCache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}

// evict forgets answered entries from the least recently used end while
// the shard is over its caps. Entries in flight are kept (their number is
// bounded by the requests being served). s.mu is held.
func (s *idemShard) evict() {
	e := s.tail
	for (len(s.m) > s.maxKeys || s.bytes > s.maxBytes) && e != nil {
		prev := e.prev
		if e.ans != nil {
			s.remove(e)
		}
		e = prev
	}
}

func (s *idemShard) remove(e *idemEntry) {
	delete(s.m, e.key)
	s.bytes -= e.size
	s.unlink(e)
}

func (s *idemShard) pushFront(e *idemEntry) {
	e.prev, e.next = nil, s.head
	if s.head != nil {
		s.head.prev = e
	}
	s.head = e
	if s.tail == nil {
		s.tail = e
	}
}

func (s *idemShard) unlink(e *idemEntry) {
	if e.prev != nil {
		e.prev.next = e.next
	} else if s.head == e {
		s.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else if s.tail == e {
		s.tail = e.prev
	}
	e.prev, e.next = nil, nil
}

func (s *idemShard) moveToFront(e *idemEntry) {
	if s.head == e {
		return
	}
	s.unlink(e)
	s.pushFront(e)
}

// remembered reports whether an answer of status code is final and kept
// for a retry with the same key.
func remembered(code int) bool {
	switch {
	case code >= 500, code == fasthttp.StatusTooManyRequests, code == fasthttp.StatusForbidden, code == fasthttp.StatusUnauthorized:
		return false
	default:
		return true
	}
}

// idempotencyKey returns the request's Idempotency-Key (surrounding
// quotes of the structured-field form removed), nil without one, or
// ErrIdempotencyKey.
func idempotencyKey(ctx *fasthttp.RequestCtx) ([]byte, error) {
	k := ctx.Request.Header.Peek("Idempotency-Key")
	if len(k) == 0 {
		return nil, nil
	}
	if len(k) >= 2 && k[0] == '"' && k[len(k)-1] == '"' {
		k = k[1 : len(k)-1]
	}
	if len(k) == 0 || len(k) > maxIdempotencyKey {
		return nil, ErrIdempotencyKey
	}
	for _, c := range k {
		if c < 0x21 || c > 0x7e {
			return nil, ErrIdempotencyKey
		}
	}
	return k, nil
}
