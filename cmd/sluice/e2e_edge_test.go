package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicehq/sluice/internal/e2e"
)

// writeConfig writes a YAML configuration file and returns its path.
func writeConfig(t testing.TB, yaml string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "sluice.yaml")
	if err := os.WriteFile(p, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// installPair copies an issued certificate and key over certFile and
// keyFile, each by an atomic rename (as a certificate manager does).
func installPair(t testing.TB, c e2e.Cert, certFile, keyFile string) {
	t.Helper()
	for src, dst := range map[string]string{c.CertFile: certFile, c.KeyFile: keyFile} {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst+".new", b, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(dst+".new", dst); err != nil {
			t.Fatal(err)
		}
	}
}

// peerName does one request over a new TLS connection and returns the
// common name of the certificate the server presented.
func peerName(t testing.TB, ca *e2e.CA, url string) string {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: ca.ClientTLS(nil)}
	defer tr.CloseIdleConnections()
	res, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get(url)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.TLS.PeerCertificates[0].Subject.CommonName
}

// TestEdgeTLSReload serves ingest and admin over HTTPS; a certificate
// rotated on disk is picked up by new connections while an open keep-alive
// connection goes on with its own; a broken pair keeps the previous one;
// the events posted over TLS are in Kafka.
func TestEdgeTLSReload(t *testing.T) {
	k := newKafka(t)
	brokers := k.ListenAddrs()
	ca := e2e.NewCA(t)
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	acert, akey := filepath.Join(dir, "admin.crt"), filepath.Join(dir, "admin.key")
	installPair(t, ca.Issue(t, "one", "127.0.0.1"), cert, key)
	installPair(t, ca.Issue(t, "admin-one", "127.0.0.1"), acert, akey)
	p := startSluice(t, "--brokers", brokers[0], "--api-key", "k1", "--tls-cert", cert, "--tls-key", key,
		"--admin-tls-cert", acert, "--admin-tls-key", akey, "--tls-reload-interval", "100ms")
	ingest, admin := "https://"+p.HTTP, "https://"+p.Admin

	// Plain HTTP to the TLS listener gets nothing useful.
	if r, err := doErr("POST", "http://"+p.HTTP+"/v1/events", []byte(`{"id":"plain"}`), "X-API-Key", "k1"); err == nil && r.code == 200 {
		t.Fatal("plain HTTP was served on the TLS listener")
	}
	kept := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: ca.ClientTLS(nil), MaxConnsPerHost: 1}}
	post := func(id string) (cn string, reused bool) {
		t.Helper()
		ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused }})
		req, _ := http.NewRequestWithContext(ctx, "POST", ingest+"/v1/events", strings.NewReader(`{"id":"`+id+`"}`))
		req.Header.Set("X-API-Key", "k1")
		res, err := kept.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body) // read to the end: the connection goes back to the pool
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("POST %s over TLS: %d", id, res.StatusCode)
		}
		return res.TLS.PeerCertificates[0].Subject.CommonName, reused
	}
	if cn, _ := post("t1"); cn != "one" {
		t.Fatalf("ingest certificate %q, want one", cn)
	}
	installPair(t, ca.Issue(t, "two", "127.0.0.1"), cert, key)
	waitFor(t, 10*time.Second, "new connections to get the rotated certificate", func() bool { return peerName(t, ca, ingest+"/healthz") == "two" })
	// The open connection was not dropped: it is reused and still has the
	// handshake (and certificate) it began with.
	if cn, reused := post("t2"); cn != "one" || !reused {
		t.Fatalf("kept connection after the rotation: certificate %q, reused %v; want one, reused", cn, reused)
	}
	// A broken pair (a key that does not match) keeps the previous one.
	b, err := os.ReadFile(filepath.Join(dir, "admin.key"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, b, 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the failed reload to be logged", func() bool {
		return strings.Contains(p.Log.String(), "keeping the previous certificate")
	})
	if cn := peerName(t, ca, ingest+"/healthz"); cn != "two" {
		t.Fatalf("after a broken pair new connections get %q, want two", cn)
	}
	if cn, _ := post("t3"); cn != "one" {
		t.Fatalf("kept connection: %q", cn)
	}
	// The admin listener is HTTPS too, with its own certificate.
	if cn := peerName(t, ca, admin+"/healthz"); cn != "admin-one" {
		t.Fatalf("admin certificate %q", cn)
	}
	mc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: ca.ClientTLS(nil)}}
	m, err := e2e.ReadMetrics(mc, admin+"/metrics")
	if err != nil {
		t.Fatal(err)
	}
	if m[`sluice_tls_certificate_expiry_timestamp_seconds{listener="ingest"}`] < float64(time.Now().Unix()) ||
		m[`sluice_tls_certificate_expiry_timestamp_seconds{listener="admin"}`] < float64(time.Now().Unix()) ||
		m[`sluice_tls_reload_errors_total{listener="ingest"}`] != 1 {
		t.Fatalf("TLS metrics: %v", m)
	}
	var ids []string
	for _, r := range consume(t, brokers, "events") {
		ids = append(ids, string(r.Value))
	}
	sort.Strings(ids)
	if fmt.Sprint(ids) != `[{"id":"t1"} {"id":"t2"} {"id":"t3"}]` {
		t.Fatalf("events in Kafka: %v", ids)
	}
}

// TestEdgeTLSSighup: with no periodic check, a rotated pair is loaded on
// SIGHUP; a bad pair on SIGHUP is logged and the process serves on with
// the previous one.
func TestEdgeTLSSighup(t *testing.T) {
	ca := e2e.NewCA(t)
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	installPair(t, ca.Issue(t, "one", "127.0.0.1"), cert, key)
	p := startSluice(t, "--sink", "discard", "--tls-cert", cert, "--tls-key", key, "--tls-reload-interval", "0")
	url := "https://" + p.HTTP + "/healthz"
	installPair(t, ca.Issue(t, "two", "127.0.0.1"), cert, key)
	time.Sleep(300 * time.Millisecond)
	if cn := peerName(t, ca, url); cn != "one" {
		t.Fatalf("reloaded without SIGHUP (--tls-reload-interval 0): %q", cn)
	}
	if err := p.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "SIGHUP to load the rotated certificate", func() bool { return peerName(t, ca, url) == "two" })
	if err := os.WriteFile(cert, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := p.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the failed reload to be logged", func() bool {
		return strings.Contains(p.Log.String(), "keeping the previous certificate")
	})
	if cn := peerName(t, ca, url); cn != "two" || !p.Alive() {
		t.Fatalf("after a bad pair: %q, alive %v", cn, p.Alive())
	}
}

// corsPreflight sends a CORS preflight for a POST with the headers a
// fetch with JSON, a bearer key and an Idempotency-Key asks for.
func corsPreflight(t testing.TB, url, origin string) response {
	t.Helper()
	return do(t, "OPTIONS", url, nil, "Origin", origin, "Access-Control-Request-Method", "POST",
		"Access-Control-Request-Headers", "authorization,content-type,idempotency-key")
}

// TestEdgeCORS: preflights from allowed and other origins, with the
// tenant known from ?api_key= or not; posts from allowed origins carry
// Access-Control-Allow-Origin on every answer (errors, 503 included),
// others get 403 and write nothing.
func TestEdgeCORS(t *testing.T) {
	k := newKafka(t, kfake.SeedTopics(3, "acme.events"))
	brokers := k.ListenAddrs()
	cfg := writeConfig(t, `
brokers: [`+brokers[0]+`]
api_keys: [kd]
ack_timeout: 2s
cors:
  origins: [https://app.example.com]
  max_age: 10m
tenants:
  - name: acme
    keys: [ka]
    topic: acme.events
    rate_limit: 1
    cors:
      origins: ["https://*.acme.com"]
`)
	p := startSluice(t, "--config", cfg)
	url := p.URL("/v1/events")
	const app, shop, evil = "https://app.example.com", "https://shop.acme.com", "https://evil.example"

	for _, tc := range []struct {
		name, url, origin string
		allowed           bool
	}{
		{"global origin, key unknown", url, app, true},
		{"a tenant's origin, key unknown", url, shop, true},
		{"other origin", url, evil, false},
		{"default tenant's key in the query", url + "?api_key=kd", app, true},
		{"acme's key in the query, acme's origin", url + "?api_key=ka", shop, true},
		{"acme's key in the query, the global origin", url + "?api_key=ka", app, false},
		{"default key in the query, acme's origin", url + "?api_key=kd", shop, false},
	} {
		r := corsPreflight(t, tc.url, tc.origin)
		h := r.header
		switch {
		case tc.allowed:
			if r.code != 204 || h.Get("Access-Control-Allow-Origin") != tc.origin || !slices.Contains(h.Values("Vary"), "Origin") ||
				h.Get("Access-Control-Allow-Methods") != "POST" || h.Get("Access-Control-Max-Age") != "600" ||
				h.Get("Access-Control-Allow-Headers") != "content-type, content-encoding, authorization, x-api-key, idempotency-key" {
				t.Errorf("%s: %d %v", tc.name, r.code, h)
			}
		default:
			if r.code != 403 || h.Get("Access-Control-Allow-Origin") != "" || h.Get("Access-Control-Allow-Methods") != "" {
				t.Errorf("%s: %d %v, want 403 without CORS headers", tc.name, r.code, h)
			}
		}
	}
	if r := do(t, "OPTIONS", url, nil); r.code != 405 || r.header.Get("Allow") != "POST" {
		t.Errorf("OPTIONS that is not a preflight: %d %v", r.code, r.header)
	}

	type post struct {
		name, origin string
		headers      []string
		body         string
		code         int
		cors         bool // Access-Control-Allow-Origin: origin
	}
	for _, tc := range []post{
		{"default tenant from the global origin", app, []string{"Authorization", "Bearer kd"}, `{"id":"c1"}`, 200, true},
		{"acme from its own origin", shop, []string{"X-API-Key", "ka"}, `{"id":"c2"}`, 200, true},
		{"no Origin (a server)", "", []string{"X-API-Key", "kd"}, `{"id":"c3"}`, 200, false},
		{"acme from the global origin", app, []string{"X-API-Key", "ka"}, `{"id":"x1"}`, 403, false},
		{"default tenant from acme's origin", shop, []string{"X-API-Key", "kd"}, `{"id":"x2"}`, 403, false},
		{"other origin", evil, []string{"X-API-Key", "kd"}, `{"id":"x3"}`, 403, false},
		{"a 401 is readable", app, []string{"X-API-Key", "wrong"}, `{"id":"x4"}`, 401, true},
		{"a 400 is readable", app, []string{"X-API-Key", "kd"}, `{"id":`, 400, true},
		{"a 415 is readable", app, []string{"X-API-Key", "kd", "Content-Type", "text/xml"}, `<x/>`, 415, true},
		{"a 429 is readable", shop, []string{"X-API-Key", "ka"}, `{"id":"x5"}`, 429, true},
	} {
		h := tc.headers
		if tc.origin != "" {
			h = append(h, "Origin", tc.origin)
		}
		r := do(t, "POST", url, []byte(tc.body), h...)
		acao := r.header.Get("Access-Control-Allow-Origin")
		if r.code != tc.code || (tc.cors && acao != tc.origin) || (!tc.cors && acao != "") {
			t.Errorf("%s: %d, Access-Control-Allow-Origin %q; want %d, cors %v (%s)", tc.name, r.code, acao, tc.code, tc.cors, r.body)
		}
		if tc.cors && !strings.Contains(r.header.Get("Access-Control-Expose-Headers"), "Retry-After") {
			t.Errorf("%s: Retry-After is not exposed: %v", tc.name, r.header)
		}
		if tc.code == 429 && r.header.Get("Retry-After") == "" {
			t.Errorf("%s: no Retry-After", tc.name)
		}
	}
	got := map[string][]string{}
	for _, rec := range consume(t, brokers, "events", "acme.events") {
		got[rec.Topic] = append(got[rec.Topic], string(rec.Value))
	}
	sort.Strings(got["events"])
	if fmt.Sprint(got["events"]) != `[{"id":"c1"} {"id":"c3"}]` || fmt.Sprint(got["acme.events"]) != `[{"id":"c2"}]` {
		t.Fatalf("Kafka: %v (refused origins must write nothing)", got)
	}

	// A 503 (Kafka down) is readable by the page too, with its Retry-After.
	k.Close()
	var r503 response
	waitFor(t, 20*time.Second, "a 503 while Kafka is down", func() bool {
		r, err := doErr("POST", url, []byte(`{"id":"down"}`), "X-API-Key", "kd", "Origin", app)
		r503 = r
		return err == nil && r.code == 503
	})
	if r503.header.Get("Access-Control-Allow-Origin") != app || r503.header.Get("Retry-After") == "" {
		t.Fatalf("503: %v %s", r503.header, r503.body)
	}
}

// TestEdgeKeysInQueryAndBasic: keys in ?api_key= (a beacon's text/plain
// body) and in Basic auth as the user name reach their tenant; the headers
// come first.
func TestEdgeKeysInQueryAndBasic(t *testing.T) {
	k := newKafka(t, kfake.SeedTopics(3, "acme.events"))
	brokers := k.ListenAddrs()
	cfg := writeConfig(t, `
brokers: [`+brokers[0]+`]
api_keys: [kd]
tenants:
  - name: acme
    keys: [ka]
    topic: acme.events
`)
	p := startSluice(t, "--config", cfg)
	url := p.URL("/v1/events")
	basic := func(userPass string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(userPass)) }
	for _, tc := range []struct {
		name, query string
		headers     []string
		body        string
		code        int
		counts      string
	}{
		{"beacon: query key, text/plain", "?api_key=ka", []string{"Content-Type", "text/plain;charset=UTF-8"}, `{"id":"q1"}`, 200, `"accepted":1`},
		{"beacon: NDJSON as text/plain", "?api_key=kd", []string{"Content-Type", "text/plain;charset=UTF-8"}, "{\"id\":\"q2\"}\n{\"id\":\"q3\"}\n", 200, `"accepted":2`},
		{"query key among other parameters", "?x=1&api_key=ka&results=false", nil, `{"id":"q4"}`, 200, `"accepted":1`},
		{"Basic: key as user, empty password", "", []string{"Authorization", basic("ka:")}, `{"id":"b1"}`, 200, `"accepted":1`},
		{"Basic: key as user, any password", "", []string{"Authorization", basic("kd:secret")}, `{"id":"b2"}`, 200, `"accepted":1`},
		{"Basic: key as password is not a key", "", []string{"Authorization", basic(":ka")}, `{"id":"x1"}`, 401, ""},
		{"Basic: not base64", "", []string{"Authorization", "Basic !!!"}, `{"id":"x2"}`, 401, ""},
		{"query: unknown key", "?api_key=nope", nil, `{"id":"x3"}`, 401, ""},
		{"query: empty key", "?api_key=", nil, `{"id":"x4"}`, 401, ""},
		{"a header key comes before the query's", "?api_key=ka", []string{"X-API-Key", "wrong"}, `{"id":"x5"}`, 401, ""},
		{"bearer before the query", "?api_key=kd", []string{"Authorization", "Bearer ka"}, `{"id":"h1"}`, 200, `"accepted":1`},
	} {
		r := do(t, "POST", url+tc.query, []byte(tc.body), tc.headers...)
		if r.code != tc.code || !strings.Contains(r.body, tc.counts) {
			t.Errorf("%s: %d %s; want %d %s", tc.name, r.code, r.body, tc.code, tc.counts)
		}
		if r.code == 401 && !strings.Contains(r.body, "api_key") {
			t.Errorf("%s: the 401 does not say where keys go: %s", tc.name, r.body)
		}
	}
	got := map[string][]string{}
	for _, rec := range consume(t, brokers, "events", "acme.events") {
		got[rec.Topic] = append(got[rec.Topic], string(rec.Value))
	}
	for _, ids := range got {
		sort.Strings(ids)
	}
	if fmt.Sprint(got["acme.events"]) != `[{"id":"b1"} {"id":"h1"} {"id":"q1"} {"id":"q4"}]` ||
		fmt.Sprint(got["events"]) != `[{"id":"b2"} {"id":"q2"} {"id":"q3"}]` {
		t.Fatalf("Kafka: %v", got)
	}
}

// ndjson returns n events id0…id(n-1) as NDJSON.
func ndjson(prefix string, n int) []byte {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, `{"id":"%s-%d"}`+"\n", prefix, i)
	}
	return []byte(b.String())
}

// TestEdgeRateLimit: per-key token buckets (a tenant's own limit, the
// global one), 429 with Retry-After and a JSON body naming the limit, 413
// past the burst, requests admitted or refused whole, per-tenant counters,
// and a flood on one key that leaves another tenant's requests as they
// were.
func TestEdgeRateLimit(t *testing.T) {
	k := newKafka(t)
	brokers := k.ListenAddrs()
	cfg := writeConfig(t, `
brokers: [`+brokers[0]+`]
rate_limit: 100000
tenants:
  - name: acme
    keys: [ka, ka2]
    rate_limit: 10
    rate_burst: 10
  - name: beta
    keys: [kb]
`)
	p := startSluice(t, "--config", cfg)
	url := p.URL("/v1/events")
	send := func(key, prefix string, n int) response {
		return do(t, "POST", url, ndjson(prefix, n), "X-API-Key", key)
	}
	if r := send("ka", "toobig", 11); r.code != 413 || !strings.Contains(r.body, "--rate-burst") {
		t.Fatalf("more than the burst: %d %s", r.code, r.body)
	}
	if r := send("ka", "a", 10); r.code != 200 {
		t.Fatalf("the burst: %d %s", r.code, r.body)
	}
	// The bucket is empty: refused before the body is read.
	r := send("ka", "refused", 1)
	var body struct {
		Error string
		Limit struct {
			EventsPerSecond int `json:"events_per_second"`
			Burst           int
		}
		RetryAfter int `json:"retry_after_seconds"`
	}
	if err := json.Unmarshal([]byte(r.body), &body); err != nil {
		t.Fatalf("429 body %q: %v", r.body, err)
	}
	if r.code != 429 || r.header.Get("Retry-After") != "1" || body.Limit.EventsPerSecond != 10 || body.Limit.Burst != 10 ||
		body.RetryAfter != 1 || !strings.Contains(body.Error, "10 events/s") {
		t.Fatalf("past the limit: %d Retry-After %q %s", r.code, r.header.Get("Retry-After"), r.body)
	}
	if r := send("ka2", "a2", 10); r.code != 200 {
		t.Fatalf("another key of the same tenant has its own bucket: %d %s", r.code, r.body)
	}
	if r := send("kb", "b", 500); r.code != 200 {
		t.Fatalf("another tenant: %d %s", r.code, r.body)
	}
	time.Sleep(1100 * time.Millisecond) // Retry-After
	if r := send("ka", "a-after", 10); r.code != 200 {
		t.Fatalf("after Retry-After: %d %s", r.code, r.body)
	}
	if p.metric(t, `sluice_ingest_rate_limited_requests_total{tenant="acme"}`) != 2 ||
		p.metric(t, `sluice_ingest_rate_limited_events_total{tenant="acme"}`) != 11 ||
		p.metric(t, `sluice_ingest_rate_admitted_events_total{tenant="acme"}`) != 30 ||
		p.metric(t, `sluice_ingest_rate_admitted_events_total{tenant="beta"}`) != 500 ||
		p.metric(t, `sluice_ingest_rate_limited_requests_total{tenant="beta"}`) != 0 ||
		p.metric(t, `sluice_ingest_requests_total{code="429"}`) != 1 {
		t.Fatalf("rate metrics: %v", p.Metrics(t, client))
	}

	// A flood on ka: beta's requests are not slowed (beyond the CPU the
	// refusals cost) and never refused; ka gets no more than its bucket.
	latency := func(n int) []time.Duration {
		var ds []time.Duration
		for i := range n {
			start := time.Now()
			if r := send("kb", fmt.Sprintf("lat%d", i), 10); r.code != 200 {
				t.Errorf("beta during the flood: %d %s", r.code, r.body)
			}
			ds = append(ds, time.Since(start))
		}
		slices.Sort(ds)
		return ds
	}
	before := latency(30)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var floodOK, flood429, floodOther atomic.Int64
	floodStart := time.Now()
	for range 16 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				r, err := doErr("POST", url, ndjson("flood", 5), "X-API-Key", "ka")
				switch {
				case err == nil && r.code == 200:
					floodOK.Add(1)
				case err == nil && r.code == 429:
					flood429.Add(1)
				default:
					floodOther.Add(1)
				}
			}
		})
	}
	time.Sleep(time.Second) // the bucket refills a little: some of the flood is admitted
	during := latency(30)
	close(stop)
	wg.Wait()
	floodFor := time.Since(floodStart)
	med := func(ds []time.Duration) time.Duration { return ds[len(ds)/2] }
	t.Logf("beta's latency: median %v, p90 %v before; median %v, p90 %v during a flood of %d requests on ka (%d admitted, %d refused) in %v",
		med(before), before[len(before)*9/10], med(during), during[len(during)*9/10], floodOK.Load()+flood429.Load()+floodOther.Load(),
		floodOK.Load(), flood429.Load(), floodFor.Round(time.Millisecond))
	if floodOther.Load() != 0 || flood429.Load() == 0 {
		t.Fatalf("flood: %d admitted, %d refused with 429, %d other", floodOK.Load(), flood429.Load(), floodOther.Load())
	}
	if limit := int64(10+10*floodFor.Seconds()) / 5; floodOK.Load() > limit+1 {
		t.Fatalf("the flooded key got %d requests of 5 events in %v; its bucket allows %d", floodOK.Load(), floodFor, limit)
	}
	if med(during) > 4*med(before)+100*time.Millisecond {
		t.Fatalf("another tenant was slowed by the flood: median %v → %v", med(before), med(during))
	}
	// Admitted or refused whole: every admitted request is in Kafka, all of
	// it, and nothing of a refused one.
	counts := map[string]int{}
	for _, rec := range consume(t, brokers, "events") {
		v := string(rec.Value)
		counts[v[strings.Index(v, `"id":"`)+6:strings.LastIndex(v, "-")]]++
	}
	if counts["a"] != 10 || counts["a2"] != 10 || counts["a-after"] != 10 || counts["b"] != 500 || counts["refused"] != 0 ||
		counts["toobig"] != 0 || counts["flood"] != int(floodOK.Load())*5 {
		t.Fatalf("Kafka by request: %v (flood admitted %d)", counts, floodOK.Load())
	}
}

// holdProduce makes the cluster hold the next produce request until
// release is closed; arrived is closed when it is held.
func holdProduce(k *kfake.Cluster) (arrived, release chan struct{}) {
	arrived, release = make(chan struct{}), make(chan struct{})
	var once sync.Once
	k.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		first := false
		once.Do(func() { first = true })
		if !first {
			k.DropControl()
			return nil, nil, false
		}
		close(arrived)
		k.SleepControl(func() { <-release })
		return nil, nil, false
	})
	return arrived, release
}

// failProduce makes the cluster answer every produce request with
// NOT_ENOUGH_REPLICAS (a cluster-wide failure: the request gets 503) until
// stop is called.
func failProduce(k *kfake.Cluster) (stop func()) {
	var failing atomic.Bool
	failing.Store(true)
	k.ControlKey(int16(kmsg.Produce), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		if !failing.Load() {
			k.DropControl()
			return nil, nil, false
		}
		k.KeepControl()
		req := kreq.(*kmsg.ProduceRequest)
		resp := req.ResponseKind().(*kmsg.ProduceResponse)
		for _, rt := range req.Topics {
			st := kmsg.NewProduceResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewProduceResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.ErrorCode = kerr.NotEnoughReplicas.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
	return func() { failing.Store(false) }
}

// byIdempotencyKey counts the records of topics by their idempotency-key
// header ("" for none) and fails on any sluice-* metadata header (off by
// default).
func byIdempotencyKey(t testing.TB, brokers []string, topics ...string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, r := range consume(t, brokers, topics...) {
		out[e2e.Header(r, "idempotency-key")]++
		for _, h := range r.Headers {
			if strings.HasPrefix(h.Key, "sluice-received") || h.Key == "sluice-client-ip" || h.Key == "sluice-tenant" {
				t.Fatalf("record %s has metadata header %s without --record-metadata", r.Value, h.Key)
			}
		}
	}
	return out
}

// TestEdgeIdempotency: a retry with the same Idempotency-Key gets the first
// answer with Idempotent-Replayed and writes nothing; keys are per tenant;
// a concurrent duplicate waits for the first; a first attempt that failed
// (5xx) is not remembered; answers expire after the window; the least
// recently used key is forgotten past --idempotency-max-keys; every
// record carries the key in its idempotency-key header.
func TestEdgeIdempotency(t *testing.T) {
	k := newKafka(t, kfake.SeedTopics(3, "acme.events"))
	brokers := k.ListenAddrs()
	cfg := writeConfig(t, `
brokers: [`+brokers[0]+`]
api_keys: [kd]
ack_timeout: 2s
idempotency_window: 2s
idempotency_max_keys: 3
tenants:
  - name: acme
    keys: [ka]
    topic: acme.events
`)
	p := startSluice(t, "--config", cfg)
	url := p.URL("/v1/events")
	send := func(key, idem string, body []byte) response {
		t.Helper()
		return do(t, "POST", url, body, "X-API-Key", key, "Idempotency-Key", idem)
	}
	replayed := func(r response) bool { return r.header.Get("Idempotent-Replayed") == "true" }

	first := send("kd", "k1", ndjson("k1", 2))
	again := send("kd", "k1", ndjson("k1-retry", 2))
	if first.code != 200 || replayed(first) || again.code != 200 || !replayed(again) || again.body != first.body {
		t.Fatalf("retry: first %d %v %s, retry %d %v %s", first.code, first.header, first.body, again.code, again.header, again.body)
	}
	if r := send("ka", "k1", ndjson("acme-k1", 1)); r.code != 200 || replayed(r) {
		t.Fatalf("the same key of another tenant must run: %d %v", r.code, r.header)
	}
	if r := send("kd", `"`+strings.Repeat("x", 300)+`"`, ndjson("bad", 1)); r.code != 400 {
		t.Fatalf("a 300-byte key: %d %s", r.code, r.body)
	}

	// A duplicate sent while the first is in flight waits for it.
	arrived, release := holdProduce(k)
	type result struct {
		r    response
		took time.Duration
	}
	firstDone, dupDone := make(chan result, 1), make(chan result, 1)
	go func() { s := time.Now(); firstDone <- result{send("kd", "k2", ndjson("k2", 3)), time.Since(s)} }()
	<-arrived
	go func() { s := time.Now(); dupDone <- result{send("kd", "k2", ndjson("k2-dup", 3)), time.Since(s)} }()
	time.Sleep(300 * time.Millisecond)
	select {
	case d := <-dupDone:
		t.Fatalf("the duplicate was answered while the first was in flight: %d %s", d.r.code, d.r.body)
	default:
	}
	close(release)
	f, d := <-firstDone, <-dupDone
	if f.r.code != 200 || replayed(f.r) || d.r.code != 200 || !replayed(d.r) || d.r.body != f.r.body || d.took < 300*time.Millisecond {
		t.Fatalf("in flight: first %d %s; duplicate %d %v %s after %v", f.r.code, f.r.body, d.r.code, d.r.header, d.r.body, d.took)
	}

	// A first attempt that failed is not remembered: the retry runs.
	stopFailing := failProduce(k)
	if r := send("kd", "k3", ndjson("k3", 2)); r.code < 500 {
		t.Fatalf("while Kafka fails: %d %s", r.code, r.body)
	}
	stopFailing()
	var ok response
	waitFor(t, 30*time.Second, "a 200 for the retry of a failed attempt", func() bool {
		ok = send("kd", "k3", ndjson("k3", 2))
		if replayed(ok) {
			t.Fatalf("a 5xx was replayed: %d %s", ok.code, ok.body)
		}
		return ok.code == 200
	})
	if r := send("kd", "k3", ndjson("k3", 2)); !replayed(r) || r.body != ok.body {
		t.Fatalf("after its 200, k3 must replay: %d %v", r.code, r.header)
	}

	// The window: a retry after it runs anew.
	if r := send("kd", "k4", ndjson("k4", 1)); r.code != 200 || !replayed(send("kd", "k4", ndjson("k4", 1))) {
		t.Fatal("k4 did not replay within the window")
	}
	time.Sleep(2500 * time.Millisecond)
	if r := send("kd", "k4", ndjson("k4", 1)); r.code != 200 || replayed(r) {
		t.Fatalf("past the window k4 must run anew: %d %v", r.code, r.header)
	}
	// At most 3 keys: four more push the least recently used out.
	for _, key := range []string{"m1", "m2", "m3", "m4"} {
		if r := send("kd", key, ndjson(key, 1)); r.code != 200 || replayed(r) {
			t.Fatalf("%s: %d %v", key, r.code, r.header)
		}
	}
	if r := send("kd", "m4", ndjson("m4", 1)); !replayed(r) {
		t.Fatal("the most recent key was forgotten")
	}
	if r := send("kd", "m1", ndjson("m1", 1)); replayed(r) {
		t.Fatal("past --idempotency-max-keys the least recently used key must be forgotten")
	}
	if n := p.metric(t, "sluice_ingest_idempotent_replays_total"); n != 5 {
		t.Fatalf("%v replays counted, want 5", n)
	}

	got := byIdempotencyKey(t, brokers, "events", "acme.events")
	// k1: 2 (not the retry's), acme's k1: 1, k2: 3, k3: 2, k4: 1 + 1 after
	// the window, m1: 1 + 1 after it was forgotten, m2–m4: 1 each.
	want := map[string]int{"k1": 3, "k2": 3, "k3": 2, "k4": 2, "m1": 2, "m2": 1, "m3": 1, "m4": 1}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("records by idempotency-key header: %v, want %v", got, want)
	}
	values := map[string]bool{}
	for _, r := range consume(t, brokers, "events", "acme.events") {
		values[string(r.Value)] = true
	}
	for _, v := range []string{`{"id":"k1-retry-0"}`, `{"id":"k2-dup-0"}`} {
		if values[v] {
			t.Fatalf("a replayed request's event %s was written", v)
		}
	}
}

// TestEdgeResults: ?results=true lists one result per event in body order:
// accepted, dropped by a transform, dead-lettered at the receiver, by a
// transform or before Kafka, and a fanned-out event by its records; the
// dead letters' reasons are the DLQ's.
func TestEdgeResults(t *testing.T) {
	files := e2e.GuestFiles(t, e2e.Example("filter"), e2e.Guest{Name: "kitchen", Dir: "wasmhost/testdata/guests"})
	k := newKafka(t, kfake.SeedTopics(3, "items.0", "items.1"))
	brokers := k.ListenAddrs()
	p := startSluice(t, "--brokers", brokers[0], "--transforms", chainDir(t, files, nil), "--pipeline", "filter,kitchen",
		"--kafka-max-record-bytes", "1KiB")
	pad := strings.Repeat("p", 1500)
	body := strings.Join([]string{
		`{"id":"a1"}`,
		`{"id":"h1","event":"heartbeat"}`,
		`not json`,
		`{"id":"d1","op":"dlq"}`,
		`{"id":"s1","op":"split","items":[{"x":1},{"x":2}]}`,
		`{"id":"big","pad":"` + pad + `"}`,
		`{"id":"a2"}`,
		`{"id":"dup","k":1,"k":2}`,
		`{"id":"s2","op":"split","items":[{"x":3},{"big":"` + pad + `"}]}`,
	}, "\n") + "\n"
	r := do(t, "POST", p.URL("/v1/events?results=true"), []byte(body), "Content-Type", "application/x-ndjson")
	var res struct {
		Accepted, Dropped int
		DeadLettered      int `json:"dead_lettered"`
		Results           []struct{ Status, Reason string }
	}
	if err := json.Unmarshal([]byte(r.body), &res); r.code != 200 || err != nil {
		t.Fatalf("%d %s (%v)", r.code, r.body, err)
	}
	want := []struct{ status, reason string }{
		{"accepted", ""},
		{"dropped", ""},
		{"dead_lettered", "parse error: line 3 is not valid JSON"},
		{"dead_lettered", "bad d1"},
		{"accepted", ""},
		{"dead_lettered", "record too large for Kafka"},
		{"accepted", ""},
		{"dead_lettered", `duplicate key "k"`},
		{"dead_lettered", "record too large for Kafka"},
	}
	if len(res.Results) != len(want) {
		t.Fatalf("%d results for 9 events: %s", len(res.Results), r.body)
	}
	reasons := map[string]bool{}
	for i, w := range want {
		g := res.Results[i]
		if g.Status != w.status || !strings.HasPrefix(g.Reason, w.reason) || (w.reason == "" && g.Reason != "") {
			t.Errorf("event %d: %s %q, want %s %q", i, g.Status, g.Reason, w.status, w.reason)
		}
		if g.Reason != "" {
			reasons[g.Reason] = true
		}
	}
	// The counts stay counts of records: 5 written (a1, a2, s1's two
	// items, s2's small one), 5 dead letters.
	if res.Accepted != 5 || res.DeadLettered != 5 {
		t.Errorf("counts %+v", res)
	}
	// Without the parameter there are no results.
	r = do(t, "POST", p.URL("/v1/events"), []byte(`[{"id":"a3"},{"id":"h2","event":"heartbeat"}]`), "Content-Type", "application/json")
	if r.code != 200 || strings.Contains(r.body, "results") {
		t.Fatalf("without ?results: %d %s", r.code, r.body)
	}
	r = do(t, "POST", p.URL("/v1/events?results=1"), []byte(`[{"id":"a4"},{"id":"h3","event":"heartbeat"}]`), "Content-Type", "application/json")
	if r.code != 200 || !strings.Contains(r.body, `"results":[{"status":"accepted"},{"status":"dropped"}]`) {
		t.Fatalf("a JSON array with ?results=1: %d %s", r.code, r.body)
	}
	got := map[string][]string{}
	dlqReasons := map[string]bool{}
	for _, rec := range consume(t, brokers, "events", "items.0", "items.1", "sluice.dlq") {
		if rec.Topic == "sluice.dlq" {
			dlqReasons[e2e.Header(rec, "sluice-reason")] = true
			continue
		}
		got[rec.Topic] = append(got[rec.Topic], string(rec.Value))
	}
	for _, v := range got {
		sort.Strings(v)
	}
	if fmt.Sprint(got["events"]) != `[{"id":"a1"} {"id":"a2"} {"id":"a3"} {"id":"a4"}]` ||
		fmt.Sprint(got["items.0"]) != `[{"x":1} {"x":3}]` || fmt.Sprint(got["items.1"]) != `[{"x":2}]` {
		t.Fatalf("Kafka: %v", got)
	}
	for reason := range reasons {
		if !dlqReasons[reason] {
			t.Errorf("result reason %q is not a DLQ reason (%v)", reason, dlqReasons)
		}
	}
}

// TestEdgeRecordMetadata: --record-metadata adds sluice-received-at,
// sluice-client-ip (the socket's address; behind trusted proxies the
// nearest X-Forwarded-For hop that is not one) and sluice-tenant.
func TestEdgeRecordMetadata(t *testing.T) {
	k := newKafka(t, kfake.SeedTopics(3, "plain", "proxied"))
	brokers := k.ListenAddrs()
	direct := startSluice(t, "--brokers", brokers[0], "--topic", "plain", "--record-metadata")
	cfg := writeConfig(t, `
brokers: [`+brokers[0]+`]
topic: proxied
record_metadata: true
trusted_proxies: [127.0.0.1, 10.0.0.0/8]
tenants:
  - name: acme
    keys: [ka]
`)
	proxied := startSluice(t, "--config", cfg)
	before := time.Now().Add(-time.Millisecond)
	for _, r := range []response{
		do(t, "POST", direct.URL("/v1/events"), []byte(`{"id":"direct"}`), "X-Forwarded-For", "203.0.113.9", "Idempotency-Key", "m-1"),
		do(t, "POST", proxied.URL("/v1/events"), []byte(`{"id":"one-hop"}`), "X-API-Key", "ka", "X-Forwarded-For", "203.0.113.9"),
		do(t, "POST", proxied.URL("/v1/events"), []byte(`{"id":"chain"}`), "X-API-Key", "ka", "X-Forwarded-For", "198.51.100.7, 203.0.113.5, 10.1.2.3"),
		do(t, "POST", proxied.URL("/v1/events"), []byte(`{"id":"all-trusted"}`), "X-API-Key", "ka", "X-Forwarded-For", "10.0.0.2, 10.0.0.3"),
		do(t, "POST", proxied.URL("/v1/events"), []byte(`{"id":"no-header"}`), "X-API-Key", "ka"),
	} {
		if r.code != 200 {
			t.Fatalf("%d %s", r.code, r.body)
		}
	}
	after := time.Now()
	want := map[string]struct{ ip, tenant string }{
		"direct":      {"127.0.0.1", "default"},
		"one-hop":     {"203.0.113.9", "acme"},
		"chain":       {"203.0.113.5", "acme"},
		"all-trusted": {"10.0.0.2", "acme"},
		"no-header":   {"127.0.0.1", "acme"},
	}
	recs := consume(t, brokers, "plain", "proxied")
	if len(recs) != len(want) {
		t.Fatalf("%d records, want %d", len(recs), len(want))
	}
	for _, rec := range recs {
		var v struct{ ID string }
		_ = json.Unmarshal(rec.Value, &v)
		w, ok := want[v.ID]
		if !ok {
			t.Fatalf("unexpected record %s", rec.Value)
		}
		at := e2e.Header(rec, "sluice-received-at")
		ts, err := time.Parse(time.RFC3339Nano, at)
		if err != nil || !strings.HasSuffix(at, "Z") || len(at) != len("2006-01-02T15:04:05.000Z") || ts.Before(before.Truncate(time.Millisecond)) || ts.After(after) {
			t.Errorf("%s: sluice-received-at %q (%v), want RFC 3339 UTC milliseconds in [%v, %v]", v.ID, at, err, before, after)
		}
		if ip, tenant := e2e.Header(rec, "sluice-client-ip"), e2e.Header(rec, "sluice-tenant"); ip != w.ip || tenant != w.tenant {
			t.Errorf("%s: client %q tenant %q, want %q %q", v.ID, ip, tenant, w.ip, w.tenant)
		}
		if v.ID == "direct" && e2e.Header(rec, "idempotency-key") != "m-1" {
			t.Errorf("direct: idempotency-key header %q", e2e.Header(rec, "idempotency-key"))
		}
	}
}
