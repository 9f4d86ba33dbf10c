package gateway

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sluicehq/sluice/engine"
	"github.com/sluicehq/sluice/internal/e2e"
)

func TestParseOrigin(t *testing.T) {
	for in, want := range map[string]string{
		"*":                           "*",
		"https://App.Example.com":     "https://app.example.com",
		"https://app.example.com/":    "https://app.example.com",
		"https://app.example.com:443": "https://app.example.com",
		"http://127.0.0.1:8080":       "http://127.0.0.1:8080",
		"http://example.com:80":       "http://example.com",
		"https://*.example.com":       "https://*.example.com",
		"https://*.example.com:8443":  "https://*.example.com:8443",
		"http://[::1]:3000":           "http://[::1]:3000",
	} {
		if got, err := parseOrigin(in); err != nil || got != want {
			t.Errorf("parseOrigin(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "example.com", "https://example.com/path", "https://x.com?q=1", "https://a.*.com",
		"https://*", "https://user@x.com", "https://**.x.com", "null"} {
		if got, err := parseOrigin(in); err == nil {
			t.Errorf("parseOrigin(%q) = %q, want an error", in, got)
		}
	}
}

func TestOriginSetAllows(t *testing.T) {
	s := newOriginSet([]string{"https://app.example.com", "https://*.example.org", "http://localhost:3000", "https://*.shop.io:8443"})
	for origin, want := range map[string]bool{
		"https://app.example.com":         true,
		"https://app.example.com:443":     false, // browsers never send the default port
		"http://app.example.com":          false,
		"https://evil.example.com":        false,
		"https://a.example.org":           true,
		"https://a.b.example.org":         true,
		"https://example.org":             false,
		"https://.example.org":            false,
		"https://a.example.org:8443":      false,
		"https://aexample.org":            false,
		"http://localhost:3000":           true,
		"http://localhost:3001":           false,
		"https://x.shop.io:8443":          true,
		"https://x.shop.io":               false,
		"":                                false,
		"null":                            false,
		"https://app.example.com.evil":    false,
		"https://evil.test/a.example.org": false,
		"https://u@a.example.org":         false,
		"https://A.example.org":           false,
	} {
		if got := s.allows([]byte(origin)); got != want {
			t.Errorf("allows(%q) = %v, want %v", origin, got, want)
		}
	}
	if any := newOriginSet([]string{"*"}); !any.allows([]byte("https://anything.test")) || !any.allows([]byte("null")) {
		t.Error("* must allow any origin")
	}
	if newOriginSet(nil, []string{}) != nil {
		t.Error("no origins must be a nil set")
	}
	var none *originSet
	if none.allows([]byte("https://app.example.com")) {
		t.Error("a nil set allows nothing")
	}
}

func TestBucket(t *testing.T) {
	t0 := time.Unix(1000, 0)
	b := newBucket(10, 20) // 10 events/s, 20 at once
	if w := b.take(20, t0); w != 0 {
		t.Fatalf("a full bucket refused its burst: wait %v", w)
	}
	if w := b.empty(t0); w != 100*time.Millisecond {
		t.Fatalf("empty bucket: wait %v, want 100ms for one token", w)
	}
	if w := b.take(5, t0.Add(200*time.Millisecond)); w != 300*time.Millisecond {
		t.Fatalf("2 tokens after 200ms, 5 asked: wait %v, want 300ms", w)
	}
	// Refused whole: the 2 tokens are still there.
	if w := b.take(2, t0.Add(200*time.Millisecond)); w != 0 {
		t.Fatalf("2 tokens asked of 2: wait %v", w)
	}
	b.refund(2)
	if w := b.take(2, t0.Add(200*time.Millisecond)); w != 0 {
		t.Fatalf("refunded tokens: wait %v", w)
	}
	// Refill caps at the burst.
	if w := b.take(21, t0.Add(time.Hour)); w <= 0 {
		t.Fatal("more than the burst fitted")
	}
	if w := b.take(20, t0.Add(time.Hour)); w != 0 {
		t.Fatalf("a refilled bucket refused its burst: wait %v", w)
	}
	for d, want := range map[time.Duration]int{1: 1, 100 * time.Millisecond: 1, time.Second: 1, 1001 * time.Millisecond: 2, 2500 * time.Millisecond: 3} {
		if got := retryAfterSeconds(d); got != want {
			t.Errorf("retryAfterSeconds(%v) = %d, want %d", d, got, want)
		}
	}
}

// TestBucketHammer: concurrent takers never get more than the burst plus
// what the rate earned.
func TestBucketHammer(t *testing.T) {
	b := newBucket(1000, 100)
	start := time.Now()
	var mu sync.Mutex
	taken := 0
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for time.Since(start) < 200*time.Millisecond {
				if b.take(3, time.Now()) == 0 {
					mu.Lock()
					taken += 3
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if limit := 100 + int(time.Since(start).Seconds()*1000) + 3; taken > limit {
		t.Fatalf("took %d tokens in %v; at most %d fit", taken, time.Since(start), limit)
	}
	if taken < 100 {
		t.Fatalf("took only %d tokens", taken)
	}
}

func TestIdemCache(t *testing.T) {
	now := time.Unix(1000, 0)
	c := newIdemCache(time.Minute, 3, 1<<20)
	if len(c.shards) != 1 {
		t.Fatalf("a small cache is %d shards, want one exact LRU", len(c.shards))
	}
	k := func(s string) string { return cacheKey("t", []byte(s)) }
	ans, wait, own := c.begin(k("a"), now)
	if ans != nil || wait != nil || own == nil {
		t.Fatal("a new key must be owned")
	}
	// A duplicate while in flight waits.
	_, wait, own2 := c.begin(k("a"), now)
	if wait == nil || own2 != nil {
		t.Fatal("a duplicate in flight must wait")
	}
	c.finish(own, &idemAnswer{code: 200, body: []byte(`{"accepted":1}`)}, now)
	select {
	case <-wait:
	default:
		t.Fatal("finish must wake the waiters")
	}
	if ans, _, _ := c.begin(k("a"), now.Add(59*time.Second)); ans == nil || string(ans.body) != `{"accepted":1}` {
		t.Fatalf("replay within the window: %+v", ans)
	}
	if ans, _, own := c.begin(k("a"), now.Add(61*time.Second)); ans != nil || own == nil {
		t.Fatal("past the window the key runs anew")
	} else {
		c.finish(own, nil, now) // failed: forgotten
	}
	if _, _, own := c.begin(k("a"), now); own == nil {
		t.Fatal("a forgotten key runs anew")
	} else {
		c.finish(own, &idemAnswer{code: 200}, now)
	}
	// Another tenant's same key is another key.
	if _, _, own := c.begin(cacheKey("u", []byte("a")), now); own == nil {
		t.Fatal("keys are per tenant")
	} else {
		c.finish(own, &idemAnswer{code: 200}, now)
	}
	// LRU (cap 3): with t/a, u/a and b remembered, a replay of t/a makes
	// u/a the least recently used, and c pushes it out.
	_, _, own = c.begin(k("b"), now)
	c.finish(own, &idemAnswer{code: 200}, now)
	if ans, _, _ := c.begin(k("a"), now); ans == nil {
		t.Fatal("a was forgotten too early")
	}
	_, _, own = c.begin(k("c"), now)
	c.finish(own, &idemAnswer{code: 200}, now)
	if n := c.len(); n != 3 {
		t.Fatalf("%d keys, want 3 (the cap)", n)
	}
	if ans, _, _ := c.begin(k("a"), now); ans == nil {
		t.Fatal("the recently used key was forgotten")
	}
	if ans, _, own := c.begin(cacheKey("u", []byte("a")), now); ans != nil || own == nil {
		t.Fatal("the least recently used key must be the one forgotten")
	} else {
		c.finish(own, &idemAnswer{code: 200}, now)
	}
	if n := c.len(); n != 3 {
		t.Fatalf("%d keys, want the cap of 3", n)
	}
	// Keys in flight are never forgotten, even over the cap.
	one := newIdemCache(time.Minute, 1, 1<<20)
	_, _, x := one.begin(k("x"), now)
	_, _, y := one.begin(k("y"), now)
	if n := one.len(); n != 2 || x == nil || y == nil {
		t.Fatalf("%d keys in flight kept, want 2", n)
	}
	one.finish(x, &idemAnswer{code: 200}, now)
	one.finish(y, &idemAnswer{code: 200}, now)
	if n := one.len(); n != 1 {
		t.Fatalf("%d keys answered under a cap of 1", n)
	}
	// Answers' bytes are capped too.
	big := newIdemCache(time.Minute, 1000, 1) // floor: 64 KiB
	for i := range 100 {
		_, _, own := big.begin(k(fmt.Sprint(i)), now)
		big.finish(own, &idemAnswer{code: 200, body: make([]byte, 4<<10)}, now)
	}
	if n := big.len(); n > 16 {
		t.Fatalf("%d answers of 4 KiB kept under a 64 KiB cap", n)
	}
	for code, want := range map[int]bool{200: true, 400: true, 413: true, 415: true, 401: false, 403: false, 429: false, 500: false, 503: false, 504: false} {
		if remembered(code) != want {
			t.Errorf("remembered(%d) = %v", code, !want)
		}
	}
}

// TestIdemCacheHammer: many goroutines on a few keys; exactly one owner
// per key at a time, and every other either waits or replays.
func TestIdemCacheHammer(t *testing.T) {
	c := newIdemCache(time.Minute, 1<<16, 1<<30)
	var owners sync.Map
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 200 {
				key := cacheKey("t", []byte(fmt.Sprint(i%7)))
				for {
					ans, wait, own := c.begin(key, time.Now())
					if ans != nil {
						break
					}
					if wait != nil {
						<-wait
						continue
					}
					if _, dup := owners.LoadOrStore(key, g); dup {
						t.Errorf("two owners of %q", key)
					}
					owners.Delete(key)
					var a *idemAnswer
					if i%3 == 0 {
						a = &idemAnswer{code: 200}
					}
					c.finish(own, a, time.Now())
					break
				}
			}
		})
	}
	wg.Wait()
}

func TestIdempotencyKeyHeader(t *testing.T) {
	for in, want := range map[string]string{"abc-123": "abc-123", `"8e03978e-40d5"`: "8e03978e-40d5", "": ""} {
		var ctx fasthttp.RequestCtx
		if in != "" {
			ctx.Request.Header.Set("Idempotency-Key", in)
		}
		got, err := idempotencyKey(&ctx)
		if err != nil || string(got) != want {
			t.Errorf("idempotencyKey(%q) = %q, %v", in, got, err)
		}
	}
	for _, in := range []string{strings.Repeat("k", 256), "has space", `""`, "tab\tin", "é"} {
		var ctx fasthttp.RequestCtx
		ctx.Request.Header.Set("Idempotency-Key", in)
		if _, err := idempotencyKey(&ctx); !errors.Is(err, ErrIdempotencyKey) || StatusOf(err) != 400 {
			t.Errorf("idempotencyKey(%q): %v, want a 400", in, err)
		}
	}
}

func TestClientAddr(t *testing.T) {
	proxies := newProxySet([]string{"127.0.0.1", "10.0.0.0/8", "fd00::/8"})
	for _, tc := range []struct {
		name, peer string
		xff        []string
		set        proxySet
		want       string
	}{
		{"no proxies: the peer", "127.0.0.1", []string{"203.0.113.9"}, nil, "127.0.0.1"},
		{"untrusted peer: the header is ignored", "198.51.100.1", []string{"203.0.113.9"}, proxies, "198.51.100.1"},
		{"one trusted hop", "127.0.0.1", []string{"203.0.113.9"}, proxies, "203.0.113.9"},
		{"nearest untrusted hop", "127.0.0.1", []string{"198.51.100.7, 203.0.113.5, 10.1.2.3"}, proxies, "203.0.113.5"},
		{"spoofed left part ignored", "127.0.0.1", []string{"1.1.1.1", "203.0.113.5,10.9.9.9"}, proxies, "203.0.113.5"},
		{"every hop trusted: the leftmost", "127.0.0.1", []string{"10.0.0.2, 10.0.0.3"}, proxies, "10.0.0.2"},
		{"ports and brackets", "127.0.0.1", []string{"[2001:db8::1]:443, 10.0.0.3:80"}, proxies, "2001:db8::1"},
		{"garbage ends the walk", "127.0.0.1", []string{"203.0.113.1, unknown, 10.0.0.4"}, proxies, "10.0.0.4"},
		{"no header", "127.0.0.1", nil, proxies, "127.0.0.1"},
		{"mapped IPv4 peer", "::ffff:127.0.0.1", []string{"203.0.113.9"}, proxies, "203.0.113.9"},
	} {
		var ctx fasthttp.RequestCtx
		var req fasthttp.Request
		for _, v := range tc.xff {
			req.Header.Add("X-Forwarded-For", v)
		}
		ctx.Init(&req, &net.TCPAddr{IP: net.ParseIP(tc.peer), Port: 5555}, nil)
		if got := tc.set.clientAddr(&ctx); got != netip.MustParseAddr(tc.want) {
			t.Errorf("%s: %v, want %s", tc.name, got, tc.want)
		}
	}
	if _, err := parsePrefix("10.0.0.0/33"); err == nil {
		t.Error("a bad CIDR parsed")
	}
}

func TestBasicUser(t *testing.T) {
	enc := func(s string) []byte { return []byte(base64.StdEncoding.EncodeToString([]byte(s))) }
	var buf [192]byte
	for in, want := range map[string]string{"key:": "key", "key:secret": "key", "key": "key", ":pw": "", strings.Repeat("k", 300) + ":": strings.Repeat("k", 300)} {
		if got := basicUser(enc(in), buf[:0]); string(got) != want {
			t.Errorf("basicUser(%q) = %q, want %q", in, got, want)
		}
	}
	if got := basicUser([]byte("not base64!"), buf[:0]); got != nil {
		t.Errorf("undecodable credentials gave %q", got)
	}
}

// TestEventIndexes: records carry their event's index in the body
// (Record.Seq) past the receiver's dead letters, across batches, and the
// results mark each event by precedence (dead letter > accepted >
// dropped).
func TestEventIndexes(t *testing.T) {
	body := []byte("nope\n{\"a\":0}\n{\"a\":1}\n{\"d\":1,\"d\":2}\n{\"a\":2}\nalso nope\n\n{\"a\":3}\n")
	out := splitOut{tag: 9}
	if err := split(body, kindNDJSON, &out); err != nil {
		t.Fatal(err)
	}
	recv := NewReceiver(ReceiverConfig{QueueBytes: 1 << 20})
	a := newAck(9, &out, nil)
	a.extras().res = newEventResults(a.inputs)
	if err := recv.Enqueue(a); err != nil {
		t.Fatal(err)
	}
	var seqs []uint32
	var dead []engine.DLQEntry
	var recs []engine.Record
	for len(seqs) < 4 {
		b, err := recv.RecvLimited(context.Background(), engine.RecvLimits{MaxRecords: 3})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range b.Records {
			seqs = append(seqs, r.Seq)
		}
		recs = append(recs, b.Records...)
		dead = append(dead, b.DLQ...)
	}
	if fmt.Sprint(seqs) != "[1 2 4 6]" {
		t.Fatalf("record event indexes %v, want [1 2 4 6]", seqs)
	}
	var dseqs []uint32
	for _, d := range dead {
		dseqs = append(dseqs, d.Record.Seq)
	}
	if fmt.Sprint(dseqs) != "[0 3 5]" {
		t.Fatalf("dead letter event indexes %v, want [0 3 5]", dseqs)
	}
	// The sink: event 1 accepted, event 2 fanned out (one child accepted,
	// one dead-lettered by Kafka), event 4 dropped by a transform, event 6
	// accepted twice (fan-out).
	inner := &poisonInner{}
	tally := &tallySink{inner: inner, recv: recv, m: newMetrics(gaugeFuncs{})}
	child := recs[1]
	child.Value = []byte(`{"nope":true}`)
	sent := []engine.Record{recs[0], recs[1], child, recs[3], recs[3]}
	err := tally.Write(context.Background(), sent)
	var re *engine.RecordErrors
	if !errors.As(err, &re) || len(re.Failed) != 1 {
		t.Fatalf("write: %v", err)
	}
	dead = append(dead, engine.DLQEntry{Record: child, Reason: "unknown topic nope", Stage: engine.StageSink})
	if err := tally.WriteDLQ(context.Background(), dead); err != nil {
		t.Fatal(err)
	}
	got := string(a.results().appendJSON(nil))
	want := `"results":[{"status":"dead_lettered","reason":"parse error: line 1 is not valid JSON"},{"status":"accepted"},` +
		`{"status":"dead_lettered","reason":"unknown topic nope"},{"status":"dead_lettered","reason":"duplicate key \"d\""},` +
		`{"status":"dropped"},{"status":"dead_lettered","reason":"parse error: line 6 is not valid JSON"},{"status":"accepted"}]`
	if got != want {
		t.Fatalf("results\n%s\nwant\n%s", got, want)
	}
	var v map[string]any
	if err := json.Unmarshal([]byte("{"+got+"}"), &v); err != nil {
		t.Fatalf("results are not JSON: %v", err)
	}
	recv.FailAll(ErrShuttingDown)
}

// TestCertReloader: a changed pair is swapped in on the next check; a pair
// that does not load keeps the previous one and is logged once per
// change; Reload loads even unchanged files.
func TestCertReloader(t *testing.T) {
	ca := e2e.NewCA(t)
	one, two := ca.Issue(t, "one", "127.0.0.1"), ca.Issue(t, "two", "127.0.0.1")
	dir := t.TempDir()
	certFile, keyFile := dir+"/cert.pem", dir+"/key.pem"
	install := func(c e2e.Cert) {
		for src, dst := range map[string]string{c.CertFile: certFile, c.KeyFile: keyFile} {
			b, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(dst+".tmp", b, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(dst+".tmp", dst); err != nil {
				t.Fatal(err)
			}
		}
	}
	cn := func(r *certReloader) string {
		c, _ := r.GetCertificate(nil)
		return c.Leaf.Subject.CommonName
	}
	if _, err := newCertReloader("ingest", certFile, keyFile, 0, nil, slog.Default()); err == nil {
		t.Fatal("missing files must fail at start")
	}
	install(one)
	var logs lockedLog
	m := newMetrics(gaugeFuncs{})
	r, err := newCertReloader("ingest", certFile, keyFile, 0, m, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()
	if cn(r) != "one" {
		t.Fatalf("serving %q", cn(r))
	}
	install(two)
	if swapped, err := r.load(false); !swapped || err != nil || cn(r) != "two" {
		t.Fatalf("changed files: swapped %v, %v, serving %q", swapped, err, cn(r))
	}
	if swapped, _ := r.load(false); swapped {
		t.Fatal("unchanged files were loaded again")
	}
	// A key that does not match the certificate.
	b, _ := os.ReadFile(one.KeyFile)
	if err := os.WriteFile(keyFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := r.load(false); err == nil {
		t.Fatal("a mismatched pair loaded")
	}
	for range 2 { // checked again, unchanged: not loaded, not logged again
		if swapped, _ := r.load(false); swapped {
			t.Fatal("a mismatched pair loaded")
		}
	}
	if cn(r) != "two" {
		t.Fatalf("after a bad pair serving %q, want the previous two", cn(r))
	}
	if n := strings.Count(logs.String(), "keeping the previous certificate"); n != 1 {
		t.Fatalf("the bad pair was logged %d times, want once:\n%s", n, logs.String())
	}
	if err := r.Reload(); err == nil || strings.Count(logs.String(), "keeping the previous certificate") != 2 {
		t.Fatalf("a forced reload of the bad pair: %v\n%s", err, logs.String())
	}
	install(one)
	if err := r.Reload(); err != nil || cn(r) != "one" {
		t.Fatalf("reload: %v, serving %q", err, cn(r))
	}
	var buf bytes.Buffer
	m.WritePrometheus(&buf)
	if !strings.Contains(buf.String(), `sluice_tls_reload_errors_total{listener="ingest"} 2`) ||
		!strings.Contains(buf.String(), `sluice_tls_certificate_expiry_timestamp_seconds{listener="ingest"}`) {
		t.Fatalf("TLS metrics:\n%s", grepLines(buf.String(), "sluice_tls"))
	}
	// A handshake gets the certificate in use.
	cfg := r.tlsConfig()
	if c, err := cfg.GetCertificate(&tls.ClientHelloInfo{}); err != nil || c.Leaf.Subject.CommonName != "one" {
		t.Fatalf("GetCertificate: %v", err)
	}
}

// lockedLog is a log destination safe for concurrent use.
type lockedLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func grepLines(text, substr string) string {
	var out []string
	for l := range strings.SplitSeq(text, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestRateLimitError: the 429's message, body fields and Retry-After, and
// the 413 of a request larger than the burst.
func TestRateLimitError(t *testing.T) {
	var ctx fasthttp.RequestCtx
	code := writeError(&ctx, &RateLimitError{Limit: 10, Burst: 20, Events: 5, RetryAfter: 1500 * time.Millisecond}, 0)
	var body struct {
		Error string
		Limit struct {
			EventsPerSecond int `json:"events_per_second"`
			Burst           int
		}
		RetryAfter int `json:"retry_after_seconds"`
	}
	if err := json.Unmarshal(ctx.Response.Body(), &body); err != nil {
		t.Fatalf("%v: %s", err, ctx.Response.Body())
	}
	if code != 429 || string(ctx.Response.Header.Peek("Retry-After")) != "2" || body.Limit.EventsPerSecond != 10 || body.Limit.Burst != 20 ||
		body.RetryAfter != 2 || !strings.Contains(body.Error, "10 events/s") {
		t.Fatalf("429: %d Retry-After %q %s", code, ctx.Response.Header.Peek("Retry-After"), ctx.Response.Body())
	}
	ctx.Response.Reset()
	code = writeError(&ctx, &RateLimitError{Limit: 10, Burst: 20, Events: 21}, 0)
	if code != 413 || len(ctx.Response.Header.Peek("Retry-After")) != 0 || !strings.Contains(string(ctx.Response.Body()), "--rate-burst") {
		t.Fatalf("over the burst: %d %s", code, ctx.Response.Body())
	}
	if StatusOf(ErrOriginNotAllowed) != 403 || StatusOf(ErrIdempotencyInFlight) != 409 {
		t.Fatal("403 / 409 mapping")
	}
}

// TestEdgeChecksDoNotAllocate: the per-request checks of CORS, the rate
// limit and the Idempotency-Key header allocate nothing.
func TestEdgeChecksDoNotAllocate(t *testing.T) {
	set := newOriginSet([]string{"https://app.example.com", "https://*.example.org"})
	b := newBucket(1e9, 1e9)
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.Set("Idempotency-Key", "8e03978e-40d5-43e8-bc93-6894a57f9324")
	now := time.Now()
	origin, wild := []byte("https://app.example.com"), []byte("https://a.example.org")
	if n := testing.AllocsPerRun(1000, func() {
		_ = set.allows(origin)
		_ = set.allows(wild)
		_ = b.empty(now)
		_ = b.take(66, now)
		_, _ = idempotencyKey(&ctx)
	}); n != 0 {
		t.Fatalf("%v allocations per request", n)
	}
}

// FuzzBasicUser: the user name of Basic credentials is what
// encoding/base64 decodes, up to the first colon; nil when it does not
// decode.
func FuzzBasicUser(f *testing.F) {
	for _, s := range []string{"a2V5Og==", "a2V5OnNlY3JldA==", "!!!", "", "a2V5", "OnB3"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, enc []byte) {
		var buf [192]byte
		got := basicUser(enc, buf[:0])
		dec, err := base64.StdEncoding.DecodeString(string(enc))
		if err != nil {
			if got != nil {
				t.Fatalf("undecodable %q gave %q", enc, got)
			}
			return
		}
		want, _, _ := bytes.Cut(dec, []byte{':'})
		if !bytes.Equal(got, want) {
			t.Fatalf("basicUser(%q) = %q, want %q", enc, got, want)
		}
	})
}

// FuzzClientAddr: the client of a request from a trusted proxy is the
// peer or one of its X-Forwarded-For hops, and an untrusted one whenever
// any hop up to the first unparseable one is untrusted.
func FuzzClientAddr(f *testing.F) {
	for _, s := range []string{"203.0.113.9", "198.51.100.7, 203.0.113.5, 10.1.2.3", "", "unknown", "[::1]:80, 10.0.0.1", ",,,", "1.2.3.4:99999"} {
		f.Add(s)
	}
	proxies := newProxySet([]string{"127.0.0.1", "10.0.0.0/8"})
	f.Fuzz(func(t *testing.T, xff string) {
		var ctx fasthttp.RequestCtx
		var req fasthttp.Request
		req.Header.Set("X-Forwarded-For", xff)
		ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}, nil)
		got := proxies.clientAddr(&ctx)
		if !got.IsValid() {
			t.Fatalf("no address for %q", xff)
		}
		hops := []netip.Addr{netip.MustParseAddr("127.0.0.1")}
		untrusted := false
		stop := false
		parts := strings.Split(string(req.Header.Peek("X-Forwarded-For")), ",")
		for i := len(parts) - 1; i >= 0 && !stop; i-- {
			p := strings.TrimSpace(parts[i])
			if p == "" {
				continue
			}
			a, ok := parseHop([]byte(p))
			if !ok {
				stop = true
				continue
			}
			hops = append(hops, a)
			if !proxies.trusted(a) {
				untrusted = true
				stop = true
			}
		}
		if !slices.Contains(hops, got) {
			t.Fatalf("client %v of %q is neither the peer nor a hop %v", got, xff, hops)
		}
		if untrusted && proxies.trusted(got) {
			t.Fatalf("client %v of %q is a trusted proxy though a hop is not", got, xff)
		}
	})
}

// FuzzOriginAllows: an origin is allowed only when it is one of the
// configured ones or a subdomain of the wildcard's.
func FuzzOriginAllows(f *testing.F) {
	for _, s := range []string{"https://app.example.com", "https://a.example.org", "https://example.org", "http://a.example.org", "https://a.example.org:1", "null", ""} {
		f.Add(s)
	}
	set := newOriginSet([]string{"https://app.example.com", "https://*.example.org"})
	f.Fuzz(func(t *testing.T, origin string) {
		got := set.allows([]byte(origin))
		host, ok := strings.CutPrefix(origin, "https://")
		want := origin == "https://app.example.com" ||
			ok && strings.HasSuffix(host, ".example.org") && len(host) > len(".example.org") &&
				strings.Trim(host, "abcdefghijklmnopqrstuvwxyz0123456789.-") == ""
		if got != want {
			t.Fatalf("allows(%q) = %v, want %v", origin, got, want)
		}
	})
}
