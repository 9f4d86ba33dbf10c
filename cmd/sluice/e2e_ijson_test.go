package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/internal/e2e"
)

// exampleDir links the example transforms, built once per test binary, into
// one --transforms folder.
func exampleDir(t testing.TB, names ...string) string {
	t.Helper()
	guests := make([]e2e.Guest, len(names))
	for i, n := range names {
		guests[i] = e2e.Example(n)
	}
	dir := t.TempDir()
	for i, f := range e2e.GuestFiles(t, guests...) {
		if err := os.Symlink(f, filepath.Join(dir, names[i]+".wasm")); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestDuplicateKeysDeadLettered sends events that repeat a name — the
// fields redact removes or hashes among them, at the top level, nested, in
// arrays of objects, escaped ("\u0069p" is "ip") — through the example
// pipeline (filter, redact, route, enrich) on the real binary, and checks
// that every one is dead-lettered by the receiver with the reason
// `duplicate key "NAME"`, that none of their raw values reaches an events
// topic, and that the well-formed events around them are delivered
// redacted.
func TestDuplicateKeysDeadLettered(t *testing.T) {
	dir := exampleDir(t, "filter", "redact", "route", "enrich")
	broker := fmt.Sprintf("127.0.0.1:%d", e2e.FreePort(t))
	p := startSluice(t, "--dev", "--dev-broker", broker, "--transforms", dir,
		"--pipeline", "filter,redact,route,enrich", "--ack-timeout", "30s")

	// Every raw value that must not reach an events topic holds "RAW".
	dups := []struct{ line, key string }{
		{`{"id":"d1","event":"click","ip":"10.0.0.1","ip":"RAW-1"}`, "ip"},
		{`{"id":"d2","event":"click","email":"a@example.com","email":"RAW-2@example.com"}`, "email"},
		{`{"id":"d3","event":"click","ua":"Mozilla","user_id":"u1","ua":"RAW-3"}`, "ua"},
		{`{"id":"d4","event":"click","ip":"10.0.0.1","\u0069p":"RAW-4"}`, "ip"},
		{`{"id":"d5","event":"click","\u0069\u0070":"RAW-5","ip":"10.0.0.1"}`, "ip"},
		{`{"id":"d6","event":"click","em\u0061il":"RAW-6@example.com","email":"b@example.com"}`, "email"},
		{`{"id":"d7","event":"click","geo":{"country":"FR","ip":"1","ip":"RAW-7"}}`, "ip"},
		{`{"id":"d8","event":"click","items":[{"sku":"a"},{"sku":"b","ip":"RAW-8","ip":"x"}]}`, "ip"},
		{`{"id":"d9","event":"click","ip":"1","props":{"ip":"2"},"ip":"RAW-9"}`, "ip"},
	}
	var body strings.Builder
	for i := range 40 {
		body.WriteString(analyticsEvent(i*5 + 1)) // never a heartbeat: filter keeps it
		body.WriteByte('\n')
		if i < len(dups) {
			body.WriteString(dups[i].line + "\n")
		}
	}
	// One escaped name alone is no duplicate: the event is delivered, and
	// redact removes the field it names.
	body.WriteString(`{"id":"e1","event":"click","\u0069p":"RAW-E1","user_id":"u9"}` + "\n")
	r := do(t, "POST", p.URL("/v1/events"), []byte(body.String()), "Content-Type", "application/x-ndjson")
	if r.code != 200 {
		t.Fatalf("NDJSON: status %d %s", r.code, r.body)
	}
	if acc, drop, dead := counts(t, r); acc != 41 || drop != 0 || dead != len(dups) {
		t.Fatalf("NDJSON: accepted %d dropped %d dead-lettered %d; want 41 0 %d", acc, drop, dead, len(dups))
	}
	// A JSON array: its well-formed element is delivered, the other one is
	// dead-lettered; the body as a whole is valid JSON.
	arr := `[{"id":"a1","event":"click","ip":"10.0.0.2"},{"id":"a2","event":"click","ip":"1","ip":"RAW-A2"}]`
	r = do(t, "POST", p.URL("/v1/events"), []byte(arr), "Content-Type", "application/json")
	if r.code != 200 {
		t.Fatalf("array: status %d %s", r.code, r.body)
	}
	if acc, drop, dead := counts(t, r); acc != 1 || drop != 0 || dead != 1 {
		t.Fatalf("array: accepted %d dropped %d dead-lettered %d; want 1 0 1", acc, drop, dead)
	}
	// A single object that repeats a name: 200, dead-lettered.
	r = do(t, "POST", p.URL("/v1/events"), []byte(`{"id":"o1","event":"click","ip":"1","ip":"RAW-O1"}`), "Content-Type", "application/json")
	if acc, _, dead := counts(t, r); r.code != 200 || acc != 0 || dead != 1 {
		t.Fatalf("object: status %d %s", r.code, r.body)
	}

	brokers := []string{broker}
	topics := []string{"events", "events.page_view", "events.click", "events.purchase", "events.signup", "events.heartbeat"}
	var ids []string
	for _, rec := range consume(t, brokers, topics...) {
		v := string(rec.Value)
		if strings.Contains(v, "RAW") {
			t.Fatalf("a raw value reached %s: %s", rec.Topic, v)
		}
		if strings.Contains(v, `"ip"`) || strings.Contains(v, `"ua"`) || strings.Contains(v, `\u0069`) {
			t.Fatalf("redact left a field in %s: %s", rec.Topic, v)
		}
		i := strings.Index(v, `"id":"`)
		ids = append(ids, v[i+6:i+6+strings.IndexByte(v[i+6:], '"')])
	}
	if len(ids) != 42 || !slices.Contains(ids, "e1") || !slices.Contains(ids, "a1") {
		t.Fatalf("%d events delivered (want 42, with e1 and a1): %v", len(ids), ids)
	}

	want := map[string]string{"a2": `duplicate key "ip"`, "o1": `duplicate key "ip"`}
	for i, d := range dups {
		want[fmt.Sprintf("d%d", i+1)] = fmt.Sprintf("duplicate key %q", d.key)
	}
	dlq := consume(t, brokers, "sluice.dlq")
	if len(dlq) != len(want) {
		t.Fatalf("DLQ holds %d records, want %d", len(dlq), len(want))
	}
	for _, rec := range dlq {
		v := string(rec.Value)
		i := strings.Index(v, `"id":"`)
		id := v[i+6 : i+6+strings.IndexByte(v[i+6:], '"')]
		if got := e2e.Header(rec, "sluice-reason"); got != want[id] {
			t.Errorf("dead letter %s: reason %q, want %q", id, got, want[id])
		}
		if got := e2e.Header(rec, "sluice-stage"); got != "receiver" {
			t.Errorf("dead letter %s: stage %q, want receiver", id, got)
		}
		delete(want, id)
	}
	if len(want) > 0 {
		t.Fatalf("not dead-lettered: %v", want)
	}
	if got := p.metric(t, `sluice_dlq_events_total{reason="parse_error"}`); got != float64(len(dups)+2) {
		t.Errorf(`sluice_dlq_events_total{reason="parse_error"} = %v, want %d`, got, len(dups)+2)
	}
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit code %d", code)
	}
}
