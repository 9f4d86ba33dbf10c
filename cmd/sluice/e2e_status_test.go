package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/internal/e2e"
)

func gz(t testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// counts parses a 200 body.
func counts(t testing.TB, r response) (accepted, dropped, dead int) {
	t.Helper()
	var c struct {
		Accepted     *int `json:"accepted"`
		Dropped      *int `json:"dropped"`
		DeadLettered *int `json:"dead_lettered"`
	}
	if err := json.Unmarshal([]byte(r.body), &c); err != nil || c.Accepted == nil || c.Dropped == nil || c.DeadLettered == nil {
		t.Fatalf("200 body %q: %v", r.body, err)
	}
	return *c.Accepted, *c.Dropped, *c.DeadLettered
}

// jsonError checks a JSON error body and returns its message.
func jsonError(t testing.TB, r response) string {
	t.Helper()
	var e struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal([]byte(r.body), &e); err != nil || e.Error == "" {
		t.Fatalf("status %d: body %q is not {\"error\": ...}: %v", r.code, r.body, err)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("status %d: Content-Type %q", r.code, ct)
	}
	return e.Error
}

// TestStatusCodes checks every status of POST /v1/events from a real HTTP
// client against the real binary writing to Kafka, then reads Kafka back.
func TestStatusCodes(t *testing.T) {
	k := newKafka(t)
	brokers := k.ListenAddrs()
	p := startSluice(t, "--brokers", brokers[0], "--api-key", "k1", "--api-key", "k2",
		"--max-body", "64KiB", "--max-event", "512")
	ev := func(id string) string { return fmt.Sprintf(`{"id":%q,"event":"page_view"}`, id) }
	auth := []string{"Authorization", "Bearer k1"}
	post := func(body []byte, headers ...string) response {
		return do(t, "POST", p.URL("/v1/events"), body, append(slices.Clone(auth), headers...)...)
	}
	type okCase struct {
		name       string
		body       []byte
		headers    []string
		acc, dlq   int
		wantValues []string
	}
	big := `{"id":"big","pad":"` + strings.Repeat("x", 600) + `"}`
	for _, c := range []okCase{
		{"object", []byte(ev("o1")), []string{"Content-Type", "application/json"}, 1, 0, []string{ev("o1")}},
		{"array", []byte("[" + ev("a1") + ",\n " + ev("a2") + "," + ev("a3") + "]"), []string{"Content-Type", "application/json; charset=utf-8"}, 3, 0, []string{ev("a1"), ev("a2"), ev("a3")}},
		{"ndjson with bad lines", []byte(ev("n1") + "\n{broken\n" + ev("n2") + "\r\n\n" + big + "\n" + ev("n3") + "\n"), []string{"Content-Type", "application/x-ndjson"}, 3, 2, []string{ev("n1"), ev("n2"), ev("n3")}},
		{"sniffed form default", []byte(ev("s1")), []string{"Content-Type", "application/x-www-form-urlencoded"}, 1, 0, []string{ev("s1")}},
		{"sniffed ndjson", []byte(ev("s2") + "\n" + ev("s3") + "\n"), nil, 2, 0, []string{ev("s2"), ev("s3")}},
		{"gzip", gz(t, []byte(ev("g1")+"\n"+ev("g2"))), []string{"Content-Type", "application/x-ndjson", "Content-Encoding", "gzip"}, 2, 0, []string{ev("g1"), ev("g2")}},
	} {
		r := post(c.body, c.headers...)
		if r.code != 200 {
			t.Fatalf("%s: status %d %s", c.name, r.code, r.body)
		}
		if acc, drop, dead := counts(t, r); acc != c.acc || drop != 0 || dead != c.dlq {
			t.Fatalf("%s: accepted %d dropped %d dead-lettered %d; want %d 0 %d", c.name, acc, drop, dead, c.acc, c.dlq)
		}
	}
	r := do(t, "POST", p.URL("/v1/events"), []byte(ev("x1")), "X-API-Key", "k2", "Content-Type", "application/json")
	if r.code != 200 {
		t.Fatalf("X-API-Key: status %d %s", r.code, r.body)
	}

	bomb := gz(t, bytes.Repeat([]byte(" "), 10<<20))
	for _, c := range []struct {
		name    string
		method  string
		path    string
		body    []byte
		headers []string
		code    int
	}{
		{"empty body", "POST", "/v1/events", nil, auth, 400},
		{"whitespace body", "POST", "/v1/events", []byte(" \n "), auth, 400},
		{"invalid application/json", "POST", "/v1/events", []byte(`{"a":`), append(slices.Clone(auth), "Content-Type", "application/json"), 400},
		{"two objects as application/json", "POST", "/v1/events", []byte(ev("j1") + ev("j2")), append(slices.Clone(auth), "Content-Type", "application/json"), 400},
		{"form body that is not JSON", "POST", "/v1/events", []byte("a=1&b=2"), append(slices.Clone(auth), "Content-Type", "application/x-www-form-urlencoded"), 400},
		{"missing key", "POST", "/v1/events", []byte(ev("u1")), nil, 401},
		{"unknown key", "POST", "/v1/events", []byte(ev("u2")), []string{"Authorization", "Bearer nope"}, 401},
		{"GET", "GET", "/v1/events", nil, auth, 405},
		{"PUT", "PUT", "/v1/events", []byte(ev("p1")), auth, 405},
		{"unknown path", "POST", "/v2/things", []byte(ev("p2")), auth, 404},
		{"body over the cap", "POST", "/v1/events", bytes.Repeat([]byte(" "), 100<<10), auth, 413},
		{"gzip bomb", "POST", "/v1/events", bomb, append(slices.Clone(auth), "Content-Encoding", "gzip"), 413},
		{"xml", "POST", "/v1/events", []byte("<event/>"), append(slices.Clone(auth), "Content-Type", "application/xml"), 415},
		{"unknown encoding", "POST", "/v1/events", []byte(ev("e1")), append(slices.Clone(auth), "Content-Encoding", "compress"), 415},
	} {
		r := do(t, c.method, p.URL(c.path), c.body, c.headers...)
		if r.code != c.code {
			t.Fatalf("%s: status %d (%s), want %d", c.name, r.code, r.body, c.code)
		}
		msg := jsonError(t, r)
		if c.code == 405 && r.header.Get("Allow") != "POST" {
			t.Fatalf("405 without Allow: POST")
		}
		t.Logf("%s: %d %s", c.name, r.code, msg)
	}

	// Kafka has exactly the accepted events; the DLQ the two dead letters.
	want := []string{ev("o1"), ev("a1"), ev("a2"), ev("a3"), ev("n1"), ev("n2"), ev("n3"), ev("s1"), ev("s2"), ev("s3"), ev("g1"), ev("g2"), ev("x1")}
	var got []string
	for _, rec := range consume(t, brokers, "events") {
		got = append(got, string(rec.Value))
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("events topic:\n got %q\nwant %q", got, want)
	}
	dlq := consume(t, brokers, "sluice.dlq")
	reasons := map[string]string{}
	for _, rec := range dlq {
		reasons[e2e.Header(rec, "sluice-reason")] = string(rec.Value)
	}
	if len(dlq) != 2 {
		t.Fatalf("DLQ has %d records, want 2: %v", len(dlq), reasons)
	}
	var sawParse, sawLarge bool
	for reason, v := range reasons {
		switch {
		case strings.Contains(reason, "not valid JSON") && v == "{broken":
			sawParse = true
		case strings.Contains(reason, "event too large") && v == big:
			sawLarge = true
		}
	}
	if !sawParse || !sawLarge {
		t.Fatalf("DLQ reasons %v", reasons)
	}

	// The metrics count what happened.
	for name, want := range map[string]float64{
		`sluice_ingest_requests_total{code="200"}`:      7,
		`sluice_ingest_requests_total{code="400"}`:      5,
		`sluice_ingest_requests_total{code="401"}`:      2,
		`sluice_ingest_requests_total{code="405"}`:      2,
		`sluice_ingest_requests_total{code="413"}`:      2,
		`sluice_ingest_requests_total{code="415"}`:      2,
		`sluice_ingest_events_total`:                    15,
		`sluice_sink_records_total`:                     13,
		`sluice_dlq_events_total{reason="parse_error"}`: 1,
		`sluice_dlq_events_total{reason="too_large"}`:   1,
		`sluice_gate_latched`:                           0,
		`sluice_sink_healthy`:                           1,
	} {
		if got := p.metric(t, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	m := do(t, "GET", p.AdminURL("/metrics"), nil)
	for _, s := range []string{"# HELP sluice_ingest_requests_total", "# TYPE sluice_sink_latency_seconds histogram", "process_resident_memory_bytes", "go_goroutines"} {
		if !strings.Contains(m.body, s) {
			t.Errorf("/metrics lacks %q", s)
		}
	}
	for _, u := range []string{p.URL("/healthz"), p.URL("/readyz"), p.AdminURL("/healthz"), p.AdminURL("/readyz")} {
		if r := do(t, "GET", u, nil); r.code != 200 {
			t.Errorf("%s: %d %s", u, r.code, r.body)
		}
	}
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit code %d", code)
	}
}
