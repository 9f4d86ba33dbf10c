package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/internal/e2e"
)

// failClosedConfig is a config of two tenants: acme redacts (its events
// carry e-mail addresses), beta filters.
func failClosedConfig(t *testing.T, brokers []string, extra string) string {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "sluice.yaml")
	if err := os.WriteFile(cfg, []byte(`
brokers: [`+brokers[0]+`]
admin_token: tok
tenants:
  - name: acme
    keys: [ka]
    topic: acme.events
    pipeline: [redact]
  - name: beta
    keys: [kb]
    topic: beta.events
    pipeline: [filter]
`+extra), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// acmeEvent is an acme event with a personal e-mail address.
func acmeEvent(i int) string {
	return fmt.Sprintf(`{"id":"a%d","event":"click","email":"person%d@example.com","ip":"10.9.0.%d"}`, i, i, i%250)
}

// upload PUTs a module over the admin API and fails unless it was stored.
func upload(t *testing.T, p *proc, name string, wasm []byte) {
	t.Helper()
	r := do(t, "PUT", p.AdminURL("/admin/transforms/"+name), wasm, "Authorization", "Bearer tok")
	if r.code != 200 && r.code != 201 {
		t.Fatalf("upload %s: %d %s", name, r.code, r.body)
	}
}

// wantUnavailable checks that acme's requests get 503 naming redact and
// why, with a Retry-After, while beta's get 200, and that /readyz and the
// admin API say so.
func wantUnavailable(t *testing.T, p *proc, why string, i int) {
	t.Helper()
	r := do(t, "POST", p.URL("/v1/events"), []byte(acmeEvent(i)), "Authorization", "Bearer ka")
	if r.code != 503 || !strings.Contains(r.body, `transform \"redact\" cannot be loaded`) || !strings.Contains(r.body, why) ||
		r.header.Get("Retry-After") == "" {
		t.Fatalf("acme with redact not loaded: %d %q Retry-After %q; want 503 naming redact and %q", r.code, r.body, r.header.Get("Retry-After"), why)
	}
	if r := do(t, "POST", p.URL("/v1/events"), []byte(`{"id":"b`+fmt.Sprint(i)+`","event":"click"}`), "Authorization", "Bearer kb"); r.code != 200 {
		t.Fatalf("beta while acme's pipeline is unavailable: %d %s", r.code, r.body)
	}
	for _, url := range []string{p.URL("/readyz"), p.AdminURL("/readyz")} {
		r := do(t, "GET", url, nil)
		if r.code != 200 || !strings.Contains(r.body, `"status":"degraded"`) || !strings.Contains(r.body, `pipeline \"acme\" is unavailable`) || !strings.Contains(r.body, why) {
			t.Fatalf("%s: %d %s", url, r.code, r.body)
		}
	}
	if got := p.metric(t, "sluice_pipelines_unavailable"); got != 1 {
		t.Fatalf("sluice_pipelines_unavailable = %v, want 1", got)
	}
	var pl struct {
		Transforms []string `json:"transforms"`
		Available  bool     `json:"available"`
		Error      string   `json:"error"`
	}
	r = do(t, "GET", p.AdminURL("/admin/pipeline?tenant=acme"), nil, "Authorization", "Bearer tok")
	if err := json.Unmarshal([]byte(r.body), &pl); err != nil || r.code != 200 || pl.Available || len(pl.Transforms) != 1 || !strings.Contains(pl.Error, why) {
		t.Fatalf("GET /admin/pipeline?tenant=acme: %d %s", r.code, r.body)
	}
	r = do(t, "GET", p.AdminURL("/admin/pipeline?tenant=beta"), nil, "Authorization", "Bearer tok")
	if !strings.Contains(r.body, `"available":true`) {
		t.Fatalf("GET /admin/pipeline?tenant=beta: %d %s", r.code, r.body)
	}
	var list struct {
		Transforms []struct {
			Name, Error string
		} `json:"transforms"`
	}
	r = do(t, "GET", p.AdminURL("/admin/transforms"), nil, "Authorization", "Bearer tok")
	if err := json.Unmarshal([]byte(r.body), &list); err != nil {
		t.Fatal(err)
	}
	errs := map[string]string{}
	for _, tr := range list.Transforms {
		errs[tr.Name] = tr.Error
	}
	if _, listed := errs["redact"]; listed && !strings.Contains(errs["redact"], why) || errs["filter"] != "" {
		t.Fatalf("GET /admin/transforms: %s", r.body)
	}
}

// wantRedacting checks that acme's requests get 200 again.
func wantRedacting(t *testing.T, p *proc, i int) {
	t.Helper()
	if r := do(t, "POST", p.URL("/v1/events"), []byte(acmeEvent(i)), "Authorization", "Bearer ka"); r.code != 200 {
		t.Fatalf("acme after redact was uploaded again: %d %s", r.code, r.body)
	}
	if r := do(t, "GET", p.URL("/readyz"), nil); r.code != 200 || !strings.Contains(r.body, `"status":"ready"`) {
		t.Fatalf("/readyz after the repair: %d %s", r.code, r.body)
	}
	if got := p.metric(t, "sluice_pipelines_unavailable"); got != 0 {
		t.Fatalf("sluice_pipelines_unavailable after the repair = %v", got)
	}
}

// TestFailClosedStoredTransform damages the stored redact transform of a
// data folder in four ways (truncated, bytes flipped, deleted, another
// module in its place so that its digest does not match), restarting each
// time: acme's requests get 503 naming redact and why, beta's keep getting
// 200, /readyz and the admin API say so, and uploading redact again makes
// acme's requests succeed without a restart. It starts from a data folder
// where acme's and beta's transforms do not exist yet (named in the YAML,
// uploaded afterwards). In the end acme's topic holds exactly the events
// that got 200, each redacted: nothing was delivered untransformed.
func TestFailClosedStoredTransform(t *testing.T) {
	wasmDir := t.TempDir()
	buildExamples(t, wasmDir, "filter", "redact")
	redact, err := os.ReadFile(filepath.Join(wasmDir, "redact.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	filter, err := os.ReadFile(filepath.Join(wasmDir, "filter.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	k := newKafka(t, kfake.SeedTopics(1, "acme.events", "beta.events"))
	brokers := k.ListenAddrs()
	cfg := failClosedConfig(t, brokers, "")
	data := t.TempDir()
	blob := filepath.Join(data, "wasm", "transforms", "redact", hexSHA256(redact)+".wasm")

	// A cold start: the YAML names transforms that do not exist yet.
	p := startSluice(t, "--config", cfg, "--data-dir", data)
	r := do(t, "POST", p.URL("/v1/events"), []byte(acmeEvent(0)), "Authorization", "Bearer ka")
	if r.code != 503 || !strings.Contains(r.body, `no transform \"redact\" is stored`) {
		t.Fatalf("acme before redact exists: %d %s", r.code, r.body)
	}
	if r := do(t, "GET", p.URL("/readyz"), nil); r.code != 503 || !strings.Contains(r.body, "no pipeline in use can run") {
		t.Fatalf("/readyz with no pipeline that can run: %d %s", r.code, r.body)
	}
	upload(t, p, "filter", filter)
	wantUnavailable(t, p, "is stored (never added", 0)
	upload(t, p, "redact", redact)
	accepted := 0
	wantRedacting(t, p, accepted)
	accepted++
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit code %d", code)
	}

	for _, tc := range []struct {
		name   string
		damage func()
		why    string
	}{
		{"truncated", func() { b := mustRead(t, blob); mustWrite(t, blob, b[:len(b)/2]) }, "is altered or truncated"},
		{"bytes flipped", func() { b := mustRead(t, blob); b[len(b)/2] ^= 0x5a; mustWrite(t, blob, b) }, "is altered or truncated"},
		{"deleted", func() {
			if err := os.Remove(blob); err != nil {
				t.Fatal(err)
			}
		}, "is missing"},
		{"digest mismatch", func() { mustWrite(t, blob, filter) }, "is altered or truncated"},
	} {
		tc.damage()
		p := startSluice(t, "--config", cfg, "--data-dir", data)
		if !strings.Contains(p.Log.String(), "stored transform cannot be loaded") {
			t.Fatalf("%s: no log line says redact failed to load:\n%s", tc.name, p.Log.String())
		}
		wantUnavailable(t, p, tc.why, 100+accepted)
		upload(t, p, "redact", redact)
		wantRedacting(t, p, accepted)
		accepted++
		if code := p.stop(t); code != 0 {
			t.Fatalf("%s: exit code %d", tc.name, code)
		}
	}

	// Only the accepted events are in acme's topic, each one redacted.
	recs := consume(t, brokers, "acme.events", "beta.events", "events", "sluice.dlq")
	var acme int
	for _, rec := range recs {
		v := string(rec.Value)
		if strings.Contains(v, "@example.com") || strings.Contains(v, `"ip"`) {
			t.Fatalf("untransformed record in %s: %s", rec.Topic, v)
		}
		if rec.Topic == "acme.events" {
			var ev map[string]any
			if err := json.Unmarshal(rec.Value, &ev); err != nil {
				t.Fatal(err)
			}
			i := acme
			if ev["id"] != fmt.Sprintf("a%d", i) || ev["email"] != hexSHA256([]byte(fmt.Sprintf("person%d@example.com", i))) {
				t.Fatalf("acme record %d: %s", i, v)
			}
			acme++
		}
	}
	if acme != accepted {
		t.Fatalf("%d records in acme.events, want the %d accepted", acme, accepted)
	}
}

// TestFailClosedAtStart starts with transforms that cannot be loaded from
// the configuration itself: a module of --transforms that does not compile,
// and a --pipeline naming a transform that does not exist.
func TestFailClosedAtStart(t *testing.T) {
	wasmDir := t.TempDir()
	buildExamples(t, wasmDir, "filter", "redact")
	redact := mustRead(t, filepath.Join(wasmDir, "redact.wasm"))
	// redact.wasm in the start-up folder is cut short: it does not compile.
	mustWrite(t, filepath.Join(wasmDir, "redact.wasm"), redact[:len(redact)/3])
	k := newKafka(t, kfake.SeedTopics(1, "acme.events", "beta.events"))
	brokers := k.ListenAddrs()

	t.Run("does not compile", func(t *testing.T) {
		p := startSluice(t, "--config", failClosedConfig(t, brokers, ""), "--transforms", wasmDir)
		if !strings.Contains(p.Log.String(), "transform failed to load") {
			t.Fatalf("no log line says redact failed to load:\n%s", p.Log.String())
		}
		wantUnavailable(t, p, "invalid transform module", 0)
		upload(t, p, "redact", redact)
		wantRedacting(t, p, 0)
	})
	t.Run("does not exist", func(t *testing.T) {
		p := startSluice(t, "--brokers", brokers[0], "--transforms", wasmDir, "--pipeline", "filter,nosuch", "--admin-token", "tok")
		r := do(t, "POST", p.URL("/v1/events"), []byte(`{"event":"click"}`))
		if r.code != 503 || !strings.Contains(r.body, `transform \"nosuch\" cannot be loaded`) || r.header.Get("Retry-After") == "" {
			t.Fatalf("default tenant, pipeline naming a missing transform: %d %s", r.code, r.body)
		}
		// The only pipeline in use cannot run: not ready.
		if r := do(t, "GET", p.AdminURL("/readyz"), nil); r.code != 503 || !strings.Contains(r.body, `transform \"nosuch\" cannot be loaded`) {
			t.Fatalf("/readyz: %d %s", r.code, r.body)
		}
		// Changing the pipeline repairs it.
		if r := do(t, "PUT", p.AdminURL("/admin/pipeline"), []byte(`{"transforms":["filter"]}`), "Authorization", "Bearer tok"); r.code != 200 {
			t.Fatalf("PUT /admin/pipeline: %d %s", r.code, r.body)
		}
		if r := do(t, "POST", p.URL("/v1/events"), []byte(`{"event":"click"}`)); r.code != 200 {
			t.Fatalf("after the pipeline changed: %d %s", r.code, r.body)
		}
		if r := do(t, "GET", p.AdminURL("/readyz"), nil); r.code != 200 {
			t.Fatalf("/readyz after the repair: %d %s", r.code, r.body)
		}
	})
}

func hexSHA256(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustWrite(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestFailClosedKafkaSource: a Kafka source line whose pipeline's transform
// failed to restore pauses fetching (a pull source has no 503) and delivers
// nothing, not even untransformed; once the transform is uploaded again
// the records flow, each one redacted.
func TestFailClosedKafkaSource(t *testing.T) {
	wasmDir := t.TempDir()
	buildExamples(t, wasmDir, "redact")
	redact := mustRead(t, filepath.Join(wasmDir, "redact.wasm"))
	c := e2e.Kafka(t, e2e.KafkaConfig{Topics: []string{"events", "sluice.dlq"}, Opts: []kfake.Opt{kfake.SeedTopics(1, "in")}})
	broker := c.ListenAddrs()[0]
	cfg := filepath.Join(t.TempDir(), "sluice.yaml")
	mustWrite(t, cfg, []byte("admin_token: tok\nsources:\n  - name: pii\n    topics: [in]\n    group: g\n    session_timeout: 6s\n    pipeline: [redact]\n"))
	data := t.TempDir()
	p := startSluice(t, "--config", cfg, "--brokers", broker, "--data-dir", data, "--transforms", wasmDir)
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	blob := filepath.Join(data, "wasm", "transforms", "redact", hexSHA256(redact)+".wasm")
	b := mustRead(t, blob)
	mustWrite(t, blob, b[:len(b)-100])

	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.DefaultProduceTopic("in"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	const n = 20
	for i := range n {
		if err := cl.ProduceSync(context.Background(), &kgo.Record{Value: []byte(acmeEvent(i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	p = startSluice(t, "--config", cfg, "--brokers", broker, "--data-dir", data)
	wait(t, 30*time.Second, "the source to pause", func() bool {
		return strings.Contains(p.Log.String(), "pipeline unavailable: pausing the Kafka source")
	})
	if r := do(t, "GET", p.URL("/readyz"), nil); r.code != 200 || !strings.Contains(r.body, `pipeline \"source.pii\" is unavailable`) {
		t.Fatalf("/readyz: %d %s", r.code, r.body)
	}
	time.Sleep(2 * time.Second)
	if got := e2e.EndOffsets(t, []string{broker}, "events", "sluice.dlq"); got["events"] != 0 || got["sluice.dlq"] != 0 {
		t.Fatalf("records delivered while the pipeline is unavailable: %v", got)
	}
	upload(t, p, "redact", redact)
	wait(t, 30*time.Second, "the records after the upload", func() bool {
		return e2e.EndOffsets(t, []string{broker}, "events")["events"] >= n
	})
	recs := consume(t, []string{broker}, "events")
	if len(recs) != n {
		t.Fatalf("%d records in events, want %d", len(recs), n)
	}
	for _, r := range recs {
		if strings.Contains(string(r.Value), "@example.com") || strings.Contains(string(r.Value), `"ip"`) {
			t.Fatalf("untransformed record: %s", r.Value)
		}
	}
	if !strings.Contains(p.Log.String(), "resuming the Kafka source") {
		t.Fatalf("no log line says the source resumed:\n%s", e2e.TailLines(p.Log.String(), 20))
	}
}
