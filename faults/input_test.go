//go:build faults

package faults

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

const inputKey = "faults-key"

// hostileCase is one request of the hostile-input corpus, written raw to a
// fresh connection so that nothing normalises it on the way.
type hostileCase struct {
	name string
	// raw is the whole request; when nil it is built from method, header
	// and body.
	raw     []byte
	method  string
	ctype   string
	header  []string // extra "Name: value" lines
	noKey   bool
	body    []byte
	want    []int    // accepted statuses (the first is the documented one)
	counts  string   // for 200: a substring of the counts the body must carry
	ids     []string // for 200: the ids of the events accepted
	noJSON  bool     // the answer need not be a JSON error (connection-level)
	comment string
}

func (c hostileCase) request(host string) []byte {
	if c.raw != nil {
		return c.raw
	}
	var b bytes.Buffer
	m := c.method
	if m == "" {
		m = http.MethodPost
	}
	fmt.Fprintf(&b, "%s /v1/events HTTP/1.1\r\nHost: %s\r\n", m, host)
	if !c.noKey {
		fmt.Fprintf(&b, "X-API-Key: %s\r\n", inputKey)
	}
	if c.ctype != "" {
		fmt.Fprintf(&b, "Content-Type: %s\r\n", c.ctype)
	}
	for _, h := range c.header {
		b.WriteString(h + "\r\n")
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\nConnection: close\r\n\r\n", len(c.body))
	b.Write(c.body)
	return b.Bytes()
}

func gz(t testing.TB, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	w, _ := gzip.NewWriterLevel(&out, gzip.BestCompression)
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// hostileCorpus returns the corpus; statuses are the documented ones of
// DESIGN.md (200 with counts, 400 unsplittable body or Idempotency-Key,
// 401 bad key, 403 an origin CORS does not allow, 405 method, 413 too
// large, 415 unknown type or encoding).
func hostileCorpus(t testing.TB) []hostileCase {
	const jsonCT, ndjsonCT = "application/json", "application/x-ndjson"
	deepOK := []byte(`{"id":"deep","a":` + strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000) + "}")
	deepOpen := bytes.Repeat([]byte("["), 1<<20)
	hugeString := []byte(`{"id":"huge","s":"` + strings.Repeat("x", 2<<20) + `"}` + "\n" + `{"id":"small"}` + "\n")
	bomb := gz(t, make([]byte, 100<<20)) // 100 MiB of zeros in about 100 KiB
	good := gz(t, []byte(`{"id":"gz-1","event":"click"}`+"\n"+`{"id":"gz-2","event":"click"}`))
	truncated := good[:len(good)/2]
	return []hostileCase{
		{name: "malformed object", ctype: jsonCT, body: []byte(`{"id":"m1","a":`), want: []int{400}},
		{name: "malformed array", ctype: jsonCT, body: []byte(`[{"id":"m2"},{"id":`), want: []int{400}},
		{name: "trailing garbage", ctype: jsonCT, body: []byte(`{"id":"m3"} xyz`), want: []int{400}},
		{name: "bad escape", ctype: jsonCT, body: []byte(`{"id":"m4","s":"\q"}`), want: []int{400}},
		{name: "not an object", ctype: jsonCT, body: []byte(`"just a string"`), want: []int{400}},
		{name: "array of non-objects dead-lettered", ctype: jsonCT, body: []byte(`[1,"two",null]`), want: []int{200}, counts: `"dead_lettered":3`},
		{name: "ndjson bad lines dead-lettered", ctype: ndjsonCT, body: []byte("{\"id\":\"n1\"}\n{broken\n\x00\x00\x00\n{\"id\":\"n2\"}\n"), want: []int{200}, counts: `"accepted":2`, ids: []string{"n1", "n2"}},
		{name: "deep nesting (valid)", ctype: jsonCT, body: deepOK, want: []int{400}},
		{name: "deep nesting (unclosed)", ctype: jsonCT, body: deepOpen, want: []int{400}},
		{name: "deep nesting ndjson line", ctype: ndjsonCT, body: append(append([]byte(`{"id":"ok-next-to-deep"}`+"\n"), deepOK...), '\n'), want: []int{200}, counts: `"dead_lettered":1`, ids: []string{"ok-next-to-deep"}},
		{name: "huge string over the event cap", ctype: ndjsonCT, body: hugeString, want: []int{200}, counts: `"dead_lettered":1`, ids: []string{"small"}},
		{name: "body over the body cap", ctype: ndjsonCT, body: bytes.Repeat([]byte(`{"id":"big","pad":"`+strings.Repeat("y", 1000)+`"}`+"\n"), 5000), want: []int{413}},
		{name: "invalid UTF-8 passes as bytes", ctype: jsonCT, body: []byte("{\"id\":\"utf\",\"s\":\"\xff\xfe\xc3\"}"), want: []int{200}, counts: `"accepted":1`, ids: []string{"utf"}},
		{name: "NUL bytes in a string", ctype: jsonCT, body: []byte("{\"id\":\"nul\",\"s\":\"a\x00b\"}"), want: []int{400}},
		{name: "NUL bytes only", ctype: jsonCT, body: []byte("\x00\x00\x00\x00"), want: []int{400}},
		{name: "empty body", ctype: jsonCT, body: nil, want: []int{400}},
		{name: "whitespace body", ctype: ndjsonCT, body: []byte(" \n\n\t\n"), want: []int{400}},
		{name: "content type xml", ctype: "text/xml", body: []byte(`<e id="x"/>`), want: []int{415}},
		{name: "content type multipart", ctype: "multipart/form-data; boundary=x", body: []byte("--x\r\n\r\n{}\r\n--x--\r\n"), want: []int{415}},
		{name: "content type image", ctype: "image/png", body: []byte("\x89PNG\r\n\x1a\n"), want: []int{415}},
		{name: "unknown content encoding", ctype: jsonCT, header: []string{"Content-Encoding: compress"}, body: []byte(`{"id":"enc"}`), want: []int{415}},
		{name: "gzip bomb", ctype: ndjsonCT, header: []string{"Content-Encoding: gzip"}, body: bomb, want: []int{413}},
		{name: "truncated gzip", ctype: ndjsonCT, header: []string{"Content-Encoding: gzip"}, body: truncated, want: []int{400}},
		{name: "gzip header on plain body", ctype: jsonCT, header: []string{"Content-Encoding: gzip"}, body: []byte(`{"id":"plain"}`), want: []int{400}},
		{name: "good gzip", ctype: ndjsonCT, header: []string{"Content-Encoding: gzip"}, body: good, want: []int{200}, counts: `"accepted":2`, ids: []string{"gz-1", "gz-2"}},
		{name: "missing API key", noKey: true, ctype: jsonCT, body: []byte(`{"id":"nokey"}`), want: []int{401}},
		{name: "wrong API key", noKey: true, header: []string{"Authorization: Bearer wrong"}, ctype: jsonCT, body: []byte(`{"id":"badkey"}`), want: []int{401}},
		{name: "Basic auth not base64", noKey: true, header: []string{"Authorization: Basic %%%not-base64%%%"}, ctype: jsonCT, body: []byte(`{"id":"basic"}`), want: []int{401}},
		{name: "Basic auth of 5 KiB", noKey: true, header: []string{"Authorization: Basic " + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("k"), 5<<10))}, ctype: jsonCT, body: []byte(`{"id":"basic-big"}`), want: []int{401}},
		{name: "query key of 6 KiB", raw: []byte("POST /v1/events?api_key=" + strings.Repeat("q", 6<<10) + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"), want: []int{401}},
		{name: "query key with broken escapes", raw: []byte("POST /v1/events?api_key=%zz%" + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"), want: []int{401}},
		{name: "Idempotency-Key too long", ctype: jsonCT, header: []string{"Idempotency-Key: " + strings.Repeat("i", 300)}, body: []byte(`{"id":"idem-long"}`), want: []int{400}},
		{name: "Idempotency-Key with a control byte", ctype: jsonCT, header: []string{"Idempotency-Key: a\x01b"}, body: []byte(`{"id":"idem-ctl"}`), want: []int{400}},
		{name: "X-Forwarded-For garbage", ctype: jsonCT, header: []string{"X-Forwarded-For: ]]],::::,999.1.1.1, \xff"}, body: []byte(`{"id":"xff"}`), want: []int{200}, counts: `"accepted":1`, ids: []string{"xff"}},
		{name: "results on a broken body", raw: []byte("POST /v1/events?results=true HTTP/1.1\r\nHost: x\r\nX-API-Key: " + inputKey + "\r\nContent-Type: application/json\r\nContent-Length: 6\r\nConnection: close\r\n\r\n{\"id\":"), want: []int{400}},
		{name: "preflight from an origin not allowed", method: http.MethodOptions, header: []string{"Origin: https://evil.example", "Access-Control-Request-Method: POST"}, want: []int{403}},
		{name: "OPTIONS that is not a preflight", method: http.MethodOptions, want: []int{405}},
		{name: "post from an origin not allowed", ctype: jsonCT, header: []string{"Origin: null"}, body: []byte(`{"id":"origin-null"}`), want: []int{403}},
		{name: "origin with garbage", ctype: jsonCT, header: []string{"Origin: https://app.example\x00.evil"}, body: []byte(`{"id":"origin-nul"}`), want: []int{403, 400}},
		{name: "GET", method: http.MethodGet, want: []int{405}},
		{name: "PUT", method: http.MethodPut, ctype: jsonCT, body: []byte(`{"id":"put"}`), want: []int{405}},
		{name: "DELETE", method: http.MethodDelete, want: []int{405}},
		{name: "PATCH", method: http.MethodPatch, ctype: jsonCT, body: []byte(`{"id":"patch"}`), want: []int{405}},
		{name: "unknown path", raw: []byte("POST /v2/events HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"), want: []int{404}},
		// A header block larger than the read buffer (8 KiB): 431.
		{name: "huge header", ctype: jsonCT, header: []string{"X-Huge: " + strings.Repeat("h", 64<<10)}, body: []byte(`{"id":"hdr"}`), want: []int{431}},
		{name: "many headers", ctype: jsonCT, header: slices.Repeat([]string{"X-Many: 0123456789"}, 2000), body: []byte(`{"id":"many"}`), want: []int{431}},
		{name: "garbage request line", raw: []byte("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http\r\n\r\n"), want: []int{400}, noJSON: true},
		{name: "content length larger than body", raw: []byte("POST /v1/events HTTP/1.1\r\nHost: x\r\nX-API-Key: " + inputKey + "\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"id\":\"short\"}"), want: []int{0, 400}, noJSON: true, comment: "the client half-closes; no answer is also fine"},
		{name: "negative content length", raw: []byte("POST /v1/events HTTP/1.1\r\nHost: x\r\nX-API-Key: " + inputKey + "\r\nContent-Type: application/json\r\nContent-Length: -5\r\nConnection: close\r\n\r\n{}"), want: []int{400}, noJSON: true},
	}
}

// TestFaultHostileInput sends the hostile-input corpus: each request gets
// its documented status with a JSON error (or, for a 200, the counts), and
// afterwards the process is alive and serves a good request.
func TestFaultHostileInput(t *testing.T) {
	c := newCluster(t)
	// The edge features parse headers too: client addresses behind a
	// trusted proxy (X-Forwarded-For), origins.
	p := startSluice(t, "--brokers", c.addr, "--memory-limit", "256MiB", "--api-key", inputKey,
		"--record-metadata", "--trusted-proxy", "127.0.0.1", "--cors-origin", "https://app.example")
	var outcomes []string
	acked := map[string]struct{}{}
	for _, hc := range hostileCorpus(t) {
		code, hdr, body, err := rawExchange(p.http, hc.request(p.http), hc.raw != nil && hc.want[0] == 0)
		outcomes = append(outcomes, fmt.Sprintf("%s=%d", hc.name, code))
		if err != nil {
			t.Errorf("%s: %v", hc.name, err)
			continue
		}
		if !slices.Contains(hc.want, code) {
			t.Errorf("%s: status %d, want %v; body %.300s", hc.name, code, hc.want, body)
			continue
		}
		if code == 0 || hc.noJSON && hdr.Get("Content-Type") != "application/json" {
			continue
		}
		if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("%s: Content-Type %q, want application/json; body %.300s", hc.name, ct, body)
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			t.Errorf("%s: body is not JSON (%v): %.300s", hc.name, err, body)
			continue
		}
		switch {
		case code == http.StatusOK:
			if !strings.Contains(string(body), hc.counts) {
				t.Errorf("%s: counts %s, want %s", hc.name, body, hc.counts)
			}
			for _, id := range hc.ids {
				acked[id] = struct{}{}
			}
		default:
			if msg, _ := m["error"].(string); msg == "" {
				t.Errorf("%s: no \"error\" message in %.300s", hc.name, body)
			}
			if code == http.StatusMethodNotAllowed && hdr.Get("Allow") != "POST" {
				t.Errorf("%s: Allow %q, want POST", hc.name, hdr.Get("Allow"))
			}
		}
	}
	t.Logf("hostile input: %d cases: %s", len(outcomes), strings.Join(outcomes, ", "))
	p.checkServing(t, 10*time.Second)
	if code, _, err := get(p.URL("/healthz")); err != nil || code != http.StatusOK {
		t.Errorf("/healthz after the corpus: %d %v", code, err)
	}
	// The dead letters of the accepted bodies reached the DLQ topic with
	// their reasons: 3 non-objects, 2 bad NDJSON lines, 1 deep line, 1
	// oversized event.
	dlq := readTopic(t, c.addr, topicDLQ)
	tl, lost := matchAcks(acked, readTopic(t, c.addr, topicEvents))
	if tl.lost > 0 {
		t.Errorf("%d acknowledged events are not in %s: %q", tl.lost, topicEvents, lost)
	}
	reasons := map[string]int{}
	for _, r := range dlq {
		if r.reason == "" {
			t.Errorf("dead letter %q has no reason", r.id)
		}
		reasons[r.reason]++
	}
	if len(dlq) < 7 {
		t.Errorf("%d dead letters in %s, want at least 7", len(dlq), topicDLQ)
	}
	t.Logf("after the corpus: alive, serving; events acked %d, found %d, lost %d; %d dead letters by reason %v; peak RSS %s",
		tl.acked, tl.found, tl.lost, len(dlq), reasons, mib(p.peakRSS()))
}

// rawExchange writes req to a new connection and reads one response.
// With halfClose the write side is closed after the request (a client that
// sent less than it announced); a connection closed without an answer is
// status 0 then.
func rawExchange(addr string, req []byte, halfClose bool) (int, http.Header, []byte, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return 0, nil, nil, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	// The server may answer (413, 431) and close before the whole request
	// is written: a write error is not a failure, the answer is.
	_, werr := conn.Write(req)
	if halfClose {
		_ = conn.(*net.TCPConn).CloseWrite()
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		if halfClose {
			return 0, nil, nil, nil
		}
		return 0, nil, nil, fmt.Errorf("no response (write error %v): %w", werr, err)
	}
	defer resp.Body.Close()
	var body bytes.Buffer
	_, _ = body.ReadFrom(resp.Body)
	return resp.StatusCode, resp.Header, body.Bytes(), nil
}
