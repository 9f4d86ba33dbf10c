package gateway

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// zstdFrame builds a zstd frame by hand: raw blocks carry data, RLE blocks
// repeat one byte (a decompression bomb in a few bytes).
func zstdFrame(raw []byte, rleBlocks int) []byte {
	b := []byte{0x28, 0xb5, 0x2f, 0xfd}
	b = append(b, 0x00, 0x58) // no single segment, no checksum; window 8 MiB
	block := func(typ, size int, last bool) {
		h := typ<<1 | size<<3
		if last {
			h |= 1
		}
		b = append(b, byte(h), byte(h>>8), byte(h>>16))
	}
	block(0, len(raw), rleBlocks == 0)
	b = append(b, raw...)
	for i := range rleBlocks {
		block(1, 128<<10, i == rleBlocks-1)
		b = append(b, ' ')
	}
	return b
}

func TestDecompress(t *testing.T) {
	ev := []byte(`{"a":1}` + "\n" + `{"b":2}`)
	for _, tc := range []struct {
		name, enc string
		body      []byte
		want      []byte
		err       error
	}{
		{"gzip", "gzip", fasthttp.AppendGzipBytes(nil, ev), ev, nil},
		{"deflate", "deflate", fasthttp.AppendDeflateBytes(nil, ev), ev, nil},
		{"br", "br", fasthttp.AppendBrotliBytes(nil, ev), ev, nil},
		{"zstd", "zstd", zstdFrame(ev, 0), ev, nil},
		{"gzip bomb", "gzip", fasthttp.AppendGzipBytes(nil, make([]byte, 8<<20)), nil, ErrBodyTooLarge},
		{"zstd bomb", "zstd", zstdFrame(ev, 64), nil, ErrBodyTooLarge},
		{"broken gzip", "gzip", []byte("not gzip"), nil, ErrInvalidJSON},
	} {
		got, err := decompress(tc.enc, tc.body, 1<<20)
		if !errors.Is(err, tc.err) || (err == nil && !bytes.Equal(got, tc.want)) {
			t.Errorf("%s: %q, %v; want %q, %v", tc.name, got, err, tc.want, tc.err)
		}
		if err != nil && tc.err == ErrBodyTooLarge && StatusOf(err) != 413 {
			t.Errorf("%s: status %d", tc.name, StatusOf(err))
		}
	}
}

func TestBodyKindOf(t *testing.T) {
	for ct, want := range map[string]bodyKind{
		"": kindSniff, "application/x-www-form-urlencoded": kindSniff, "text/plain; charset=utf-8": kindSniff,
		"application/json": kindJSON, "Application/JSON; charset=utf-8": kindJSON, "application/vnd.acme+json": kindJSON,
		"application/x-ndjson": kindNDJSON, "application/jsonl": kindNDJSON,
	} {
		if got, err := bodyKindOf([]byte(ct)); err != nil || got != want {
			t.Errorf("bodyKindOf(%q) = %v, %v; want %v", ct, got, err, want)
		}
	}
	for _, ct := range []string{"application/xml", "text/html", "multipart/form-data; boundary=x", "image/png"} {
		if _, err := bodyKindOf([]byte(ct)); !errors.Is(err, ErrUnsupportedMediaType) {
			t.Errorf("bodyKindOf(%q) = %v, want 415", ct, err)
		}
	}
}

// TestMaxEvents: a body of more events than the cap is 413 with a JSON
// reason naming the cap, and nothing of it is queued; at the cap it is
// accepted. Dead letters count as events.
func TestMaxEvents(t *testing.T) {
	s := newTestServer(t, ServerConfig{MaxEvents: 10})
	for _, tc := range []struct {
		name string
		body string
		code int
	}{
		{"at the cap", strings.Repeat("{}\n", 10), 200},
		{"over the cap", strings.Repeat("{}\n", 11), 413},
		{"dead letters count", strings.Repeat("{}\n", 9) + "x\ny\n", 413},
		{"blank lines do not", strings.Repeat("{}\n\n\n", 10), 200},
	} {
		done := make(chan struct{})
		var code int
		var body string
		go func() { code, body = s.post(t, []byte(tc.body)); close(done) }()
		if tc.code == 200 {
			waitUntil(t, func() bool { return s.recv.Pending() == 1 })
			s.drain(t)
		}
		<-done
		if code != tc.code {
			t.Fatalf("%s: status %d %s, want %d", tc.name, code, body, tc.code)
		}
		if code == 413 && (!strings.Contains(body, `"error":"too many events in one request: more than 10 (--max-events)`) ||
			!strings.Contains(body, "split the body")) {
			t.Fatalf("%s: body %s", tc.name, body)
		}
		if s.recv.Pending() != 0 || s.gov.Guard().InFlight() != 0 {
			t.Fatalf("%s: %d pending, %d bytes leased after the answer", tc.name, s.recv.Pending(), s.gov.Guard().InFlight())
		}
	}
	// A JSON array too.
	if code, body := s.post(t, []byte("["+strings.Repeat("{},", 10)+"{}]"), "Content-Type", "application/json"); code != 413 {
		t.Fatalf("array over the cap: %d %s", code, body)
	}
}

// TestReadLimit: with every read slot taken, a request waits the queue
// timeout and gets 503 with Retry-After and a message naming the flags to
// raise, counted in the metric; once a slot is free it is served.
func TestReadLimit(t *testing.T) {
	s := newTestServer(t, ServerConfig{MaxConcurrentReads: 1, ReadQueueTimeout: 50 * time.Millisecond})
	if err := s.reads.acquire(); err != nil { // the only slot is busy
		t.Fatal(err)
	}
	start := time.Now()
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	req.SetRequestURI(s.url)
	req.Header.SetMethod("POST")
	req.SetBodyString(`{"a":1}`)
	if err := s.client.Do(req, resp); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); resp.StatusCode() != 503 || took < 50*time.Millisecond {
		t.Fatalf("status %d after %v, want 503 after the 50ms queue timeout", resp.StatusCode(), took)
	}
	if ra := string(resp.Header.Peek("Retry-After")); ra != "1" {
		t.Fatalf("Retry-After %q", ra)
	}
	if b := string(resp.Body()); !strings.Contains(b, "--max-concurrent-reads") || !strings.Contains(b, "1 request bodies") {
		t.Fatalf("body %s", b)
	}
	if got := s.m.readRejected.Get(); got != 1 {
		t.Fatalf("%s = %d, want 1", MetricReadLimitRejected, got)
	}
	s.reads.release()
	done := make(chan int, 1)
	go func() { code, _ := s.post(t, []byte(`{"a":1}`)); done <- code }()
	waitUntil(t, func() bool { return s.recv.Pending() == 1 })
	s.drain(t)
	if code := <-done; code != 200 {
		t.Fatalf("after the slot was freed: %d", code)
	}
}

// TestReadLimitSlowClient: a client that stalls in the middle of a
// streamed body does not hold the only read slot: another request is
// served meanwhile.
func TestReadLimitSlowClient(t *testing.T) {
	s := newTestServer(t, ServerConfig{MaxConcurrentReads: 1, ReadQueueTimeout: 50 * time.Millisecond})
	conn, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	big := bytes.Repeat([]byte(`{"pad":"`+strings.Repeat("x", 90)+`"}`+"\n"), 1000) // streamed: over 64 KiB
	fmt.Fprintf(conn, "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\nContent-Length: %d\r\n\r\n", len(big))
	if _, err := conn.Write(big[:len(big)/2]); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // the slow request is now waiting for its body
	done := make(chan int, 1)
	go func() { code, _ := s.post(t, []byte(`{"a":1}`)); done <- code }()
	waitUntil(t, func() bool { return s.recv.Pending() == 1 })
	s.drain(t)
	if code := <-done; code != 200 {
		t.Fatalf("a request beside a stalled body: %d", code)
	}
	if _, err := conn.Write(big[len(big)/2:]); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, func() bool { return s.recv.Pending() == 1 })
	s.drain(t)
	var resp fasthttp.Response
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if err := resp.Read(bufio.NewReader(conn)); err != nil || resp.StatusCode() != 200 {
		t.Fatalf("the slow request: %v %d %s", err, resp.StatusCode(), resp.Body())
	}
}

// TestAuthByKeyHash: keys are found by their SHA-256, a wrong or empty key
// is 401.
func TestAuthByKeyHash(t *testing.T) {
	s := newTestServer(t, ServerConfig{}, "k1", "another-key")
	for _, tc := range []struct {
		headers []string
		code    int
	}{
		{nil, 401},
		{[]string{"X-API-Key", ""}, 401},
		{[]string{"X-API-Key", "k2"}, 401},
		{[]string{"X-API-Key", "k1x"}, 401},
		{[]string{"Authorization", "Bearer "}, 401},
		{[]string{"Authorization", "Bearer another-ke"}, 401},
		{[]string{"X-API-Key", "k1"}, 200},
		{[]string{"Authorization", "bearer another-key"}, 200},
	} {
		done := make(chan int, 1)
		go func() { code, _ := s.post(t, []byte(`{"a":1}`), tc.headers...); done <- code }()
		if tc.code == 200 {
			waitUntil(t, func() bool { return s.recv.Pending() == 1 })
			s.drain(t)
		}
		if code := <-done; code != tc.code {
			t.Fatalf("%q: status %d, want %d", tc.headers, code, tc.code)
		}
	}
	if _, ok := s.keys[sha256.Sum256([]byte("k1"))]; !ok || len(s.keys) != 2 {
		t.Fatalf("keys are not held by their hash: %d entries", len(s.keys))
	}
}

// TestServerConfigDefaults keeps ServerConfig's defaults equal to Config's
// default tags.
func TestServerConfigDefaults(t *testing.T) {
	c := DefaultConfig()
	if c.MaxEvents != DefaultMaxEvents || c.ReadQueueTimeout != DefaultReadQueueTimeout || c.MaxConcurrentReads != 0 {
		t.Fatalf("max_events %d, read_queue_timeout %v, max_concurrent_reads %d", c.MaxEvents, c.ReadQueueTimeout, c.MaxConcurrentReads)
	}
	if got := (ServerConfig{}).withDefaults(); got.MaxEvents != DefaultMaxEvents || got.MaxConcurrentReads != DefaultMaxConcurrentReads() ||
		got.ReadQueueTimeout != DefaultReadQueueTimeout {
		t.Fatalf("withDefaults = %+v", got)
	}
}

// grabReader gives all of its data in one Read, and during that read
// another request takes the only read slot (and keeps it).
type grabReader struct {
	data []byte
	l    *readLimiter
}

func (g *grabReader) Read(p []byte) (int, error) {
	if len(g.data) == 0 {
		return 0, io.EOF
	}
	if err := g.l.acquire(); err != nil {
		return 0, err
	}
	n := copy(p, g.data)
	g.data = g.data[n:]
	return n, nil
}

// TestReadStreamSlotLost: when a stream read cannot take its slot back,
// even after the body's last bytes, readStream fails with the
// *ReadLimitError (the caller must not release a slot it does not hold),
// and the other request keeps its slot.
func TestReadStreamSlotLost(t *testing.T) {
	for _, cl := range []int64{5, -1} {
		l := newReadLimiter(1, time.Millisecond)
		if err := l.acquire(); err != nil { // the caller's slot
			t.Fatal(err)
		}
		body, err := readStream(&grabReader{data: []byte("{}\n{}"), l: l}, l, cl, 1<<20)
		if !errors.Is(err, ErrReadLimit) || body != nil {
			t.Fatalf("cl %d: %q, %v; want the read-limit error", cl, body, err)
		}
		if len(l.slots) != 1 {
			t.Fatalf("cl %d: %d slots taken, want 1 (the other request's)", cl, len(l.slots))
		}
	}
	// Without contention the body is read whole and the slot is held.
	l := newReadLimiter(1, time.Millisecond)
	_ = l.acquire()
	body, err := readStream(strings.NewReader("{}\n{}"), l, -1, 1<<20)
	if err != nil || string(body) != "{}\n{}" || len(l.slots) != 1 {
		t.Fatalf("%q, %v, %d slots", body, err, len(l.slots))
	}
	if _, err := readStream(strings.NewReader("{}\n{}"), l, -1, 3); !errors.Is(err, ErrBodyTooLarge) {
		t.Fatalf("over the cap: %v", err)
	}
}
