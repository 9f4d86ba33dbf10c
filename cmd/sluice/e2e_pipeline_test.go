package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/internal/e2e"
)

// buildExamples builds the example transforms from examples/ with the Go
// toolchain into dir, as a user would.
func buildExamples(t testing.TB, dir string, names ...string) {
	t.Helper()
	guests := make([]e2e.Guest, len(names))
	for i, n := range names {
		guests[i] = e2e.Example(n)
	}
	if err := e2e.BuildGuests(dir, guests...); err != nil {
		t.Fatal(err)
	}
}

var (
	kinds     = []string{"page_view", "click", "purchase", "signup", "heartbeat"}
	countries = []string{"AU", "NZ", "JP", "SG", "US", "CA", "BR", "MX", "GB", "DE", "FR", "NL", "IE", "AR", "ZA"}
	regions   = map[string]string{
		"AU": "apac", "NZ": "apac", "JP": "apac", "SG": "apac",
		"US": "amer", "CA": "amer", "BR": "amer", "MX": "amer",
		"GB": "emea", "DE": "emea", "FR": "emea", "NL": "emea", "IE": "emea",
	}
)

// analyticsEvent is the i-th test event.
func analyticsEvent(i int) string {
	return fmt.Sprintf(`{"id":"e%d","event":%q,"user_id":"u%d","email":"u%d@example.com","ip":"10.1.%d.%d","ua":"Mozilla/5.0 (X11; Linux x86_64) Test/%d","geo":{"country":%q,"city":"c%d"},"ts":%d,"props":{"n":%d,"tags":["a","b"]}}`,
		i, kinds[i%len(kinds)], i%37, i%37, i%250, i%7, i, countries[i%len(countries)], i%11, 1767225600+i, i)
}

// TestPipelineExamples sends 1,000 analytics events (plus broken and
// oversized lines) through filter, redact, route and enrich built from
// examples/, and checks every record in every topic, the dead letters and
// the response counts.
func TestPipelineExamples(t *testing.T) {
	if runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64" {
		t.Logf("note: wazero runs the interpreter on %s; this test is slower", runtime.GOARCH)
	}
	wasmDir := t.TempDir()
	buildExamples(t, wasmDir, "filter", "redact", "route", "enrich")
	broker := fmt.Sprintf("127.0.0.1:%d", e2e.FreePort(t))
	p := startSluice(t, "--dev", "--dev-broker", broker, "--transforms", wasmDir,
		"--pipeline", "filter,redact,route,enrich", "--admin-token", "tok", "--max-event", "2KiB", "--ack-timeout", "30s")

	const n = 1000
	var body strings.Builder
	for i := range n {
		body.WriteString(analyticsEvent(i))
		body.WriteByte('\n')
		switch i {
		case 100:
			body.WriteString(`{"id":"broken-1",` + "\n")
		case 500:
			body.WriteString("not json at all\n")
		case 700:
			body.WriteString(`["an","array"]` + "\n")
		case 900:
			body.WriteString(`{"id":"huge","pad":"` + strings.Repeat("z", 3000) + `"}` + "\n")
		}
	}
	r := do(t, "POST", p.URL("/v1/events"), []byte(body.String()), "Content-Type", "application/x-ndjson")
	if r.code != 200 {
		t.Fatalf("status %d %s", r.code, r.body)
	}
	acc, drop, dead := counts(t, r)
	if acc != 800 || drop != 200 || dead != 4 {
		t.Fatalf("accepted %d dropped %d dead-lettered %d; want 800 200 4", acc, drop, dead)
	}

	brokers := []string{broker}
	topics := []string{"events", "events.page_view", "events.click", "events.purchase", "events.signup", "events.heartbeat"}
	got := map[string]*struct {
		topic, key string
		value      map[string]any
	}{}
	for _, rec := range consume(t, brokers, topics...) {
		var v map[string]any
		if err := json.Unmarshal(rec.Value, &v); err != nil {
			t.Fatalf("record in %s is not JSON: %q", rec.Topic, rec.Value)
		}
		id, _ := v["id"].(string)
		if got[id] != nil {
			t.Fatalf("event %s written twice", id)
		}
		got[id] = &struct {
			topic, key string
			value      map[string]any
		}{rec.Topic, string(rec.Key), v}
	}
	if len(got) != 800 {
		t.Fatalf("%d records in the topics, want 800", len(got))
	}
	for i := range n {
		var want map[string]any
		if err := json.Unmarshal([]byte(analyticsEvent(i)), &want); err != nil {
			t.Fatal(err)
		}
		id := want["id"].(string)
		ev := want["event"].(string)
		g := got[id]
		if ev == "heartbeat" {
			if g != nil {
				t.Fatalf("heartbeat %s was not dropped", id)
			}
			continue
		}
		if g == nil {
			t.Fatalf("event %s missing", id)
		}
		delete(want, "ua")
		delete(want, "ip")
		sum := sha256.Sum256([]byte(want["email"].(string)))
		want["email"] = hex.EncodeToString(sum[:])
		region := regions[want["geo"].(map[string]any)["country"].(string)]
		if region == "" {
			region = "other"
		}
		want["region"] = region
		if g.topic != "events."+ev || g.key != want["user_id"] {
			t.Fatalf("event %s: topic %q key %q; want %q %q", id, g.topic, g.key, "events."+ev, want["user_id"])
		}
		if !reflect.DeepEqual(g.value, want) {
			t.Fatalf("event %s:\n got %v\nwant %v", id, g.value, want)
		}
	}

	dlq := consume(t, brokers, "sluice.dlq")
	var reasons []string
	for _, rec := range dlq {
		reasons = append(reasons, e2e.Header(rec, "sluice-reason"))
	}
	if len(dlq) != 4 {
		t.Fatalf("DLQ: %d records, want 4: %q", len(dlq), reasons)
	}
	joined := strings.Join(reasons, "|")
	for _, want := range []string{"line 102 is not valid JSON", "line 503 is not valid JSON", "line 704 is not a JSON object", "event too large"} {
		if !strings.Contains(joined, want) {
			t.Errorf("no DLQ reason %q in %q", want, reasons)
		}
	}

	// Metrics and the admin API see the same run.
	for name, want := range map[string]float64{
		`sluice_events_dropped_total`:                   200,
		`sluice_sink_records_total`:                     800,
		`sluice_dlq_events_total{reason="parse_error"}`: 3,
		`sluice_dlq_events_total{reason="too_large"}`:   1,
		`sluice_ingest_events_total`:                    1004,
	} {
		if got := p.metric(t, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	for _, tr := range []string{"filter", "redact", "route", "enrich"} {
		if p.metric(t, fmt.Sprintf(`sluice_transform_calls_total{transform=%q}`, tr)) < 1 {
			t.Errorf("no calls counted for %s", tr)
		}
	}
	pr := do(t, "GET", p.AdminURL("/admin/pipeline"), nil, "Authorization", "Bearer tok")
	if pr.code != 200 || !strings.Contains(pr.body, `"filter","redact","route","enrich"`) {
		t.Fatalf("GET /admin/pipeline: %d %s", pr.code, pr.body)
	}
	if r := do(t, "GET", p.AdminURL("/admin/budget"), nil); r.code != 401 {
		t.Fatalf("admin API without the token: %d", r.code)
	}
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit code %d", code)
	}
}
