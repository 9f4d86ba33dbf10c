package load

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

type builtinDoc struct {
	ID     string         `json:"id"`
	Event  string         `json:"event"`
	TS     string         `json:"ts"`
	UserID string         `json:"user_id"`
	Email  string         `json:"email"`
	IP     string         `json:"ip"`
	UA     string         `json:"ua"`
	Geo    map[string]any `json:"geo"`
	Props  map[string]any `json:"props"`
}

func TestBuiltinEvents(t *testing.T) {
	const n = 5_000
	g := newBuiltinEvents(99, 0.1)
	now := time.Date(2026, 11, 26, 20, 0, 0, 123e6, time.UTC).AppendFormat(nil, tsLayout)
	kinds := map[string]int{}
	countries := map[string]int{}
	var size, sizeFull int
	var buf []byte
	for seq := range uint64(n) {
		buf = g.appendEvent(buf[:0], seq, now)
		var d builtinDoc
		if err := json.Unmarshal(buf, &d); err != nil || !json.Valid(buf) {
			t.Fatalf("event %d is not valid JSON (%v): %s", seq, err, buf)
		}
		if want := string(g.appendID(nil, seq)); d.ID != want || want != fmt.Sprintf("99-%012d", seq) {
			t.Fatalf("id %q, want 99-%d", d.ID, seq)
		}
		if d.TS != "2026-11-26T20:00:00.123Z" || d.UserID == "" || d.Geo["country"] == nil || d.Props == nil {
			t.Fatalf("event %d lacks fields: %s", seq, buf)
		}
		kinds[d.Event]++
		countries[d.Geo["country"].(string)]++
		size += len(buf)
		if d.Event != "heartbeat" {
			sizeFull += len(buf)
			if d.Email == "" || d.IP == "" || d.UA == "" {
				t.Fatalf("event %d lacks email/ip/ua: %s", seq, buf)
			}
		}
		// Deterministic: same seed and seq, same bytes.
		if again := g.appendEvent(nil, seq, now); !bytes.Equal(again, buf) {
			t.Fatalf("event %d not deterministic", seq)
		}
	}
	for _, k := range []string{"page_view", "click", "purchase", "signup", "heartbeat"} {
		if kinds[k] == 0 {
			t.Errorf("no %s events in %v", k, kinds)
		}
	}
	if hb := float64(kinds["heartbeat"]) / n; hb < 0.08 || hb > 0.12 {
		t.Errorf("heartbeat share %.3f, want 0.1", hb)
	}
	for _, c := range []string{"AU", "NZ", "JP", "SG", "US", "CA", "BR", "MX", "GB", "DE", "FR", "NL", "IE"} {
		if countries[c] == 0 {
			t.Errorf("no events from %s", c)
		}
	}
	if len(countries) < 16 {
		t.Errorf("only %d countries", len(countries))
	}
	if avg := sizeFull / (n - kinds["heartbeat"]); avg < 300 || avg > 380 {
		t.Errorf("average non-heartbeat event %d bytes, want about 330", avg)
	}
	t.Logf("average event %d bytes (non-heartbeat %d), kinds %v", size/n, sizeFull/(n-kinds["heartbeat"]), kinds)

	other := newBuiltinEvents(100, 0.1).appendEvent(nil, 5, now)
	if bytes.Equal(other[10:], g.appendEvent(nil, 5, now)[10:]) {
		t.Error("different seeds render the same event")
	}
	if none := newBuiltinEvents(1, 0); bytes.Contains(none.appendEvent(nil, 3, now), []byte("heartbeat")) {
		t.Error("heartbeat with share 0")
	}
}

func TestBodyRenderAllocs(t *testing.T) {
	for _, gz := range []bool{false, true} {
		for _, pooled := range []bool{false, true} {
			cfg := testConfig("http://127.0.0.1:1/x")
			cfg.Gzip = gz
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			g := newBuiltinEvents(1, 0.1)
			r := &run{cfg: cfg, src: g}
			if pooled {
				r.pool = newBodyPool(g, &r.cfg)
			}
			w := newWorker(r)
			k := int64(0)
			w.body(k) // size the buffers
			// Under -race, sync.Pool drops fasthttp's pooled gzip writers at
			// random; only a -race build tolerates the re-allocations.
			allowed := 0.0
			if gz && raceEnabled {
				allowed = 30
			}
			if n := testing.AllocsPerRun(50, func() { k++; w.body(k) }); n > allowed {
				t.Errorf("gzip=%t pooled=%t: rendering a body allocates %v times", gz, pooled, n)
			}
		}
	}
}

var tsRE = regexp.MustCompile(`"ts":"[^"]*"`)

// TestBodyPool checks that a pooled body is the body the events render to
// (ids and ts patched in), for NDJSON and JSON array bodies.
func TestBodyPool(t *testing.T) {
	for _, ct := range []string{"application/x-ndjson", "application/json"} {
		cfg := testConfig("http://127.0.0.1:1/x")
		cfg.EventsPerRequest, cfg.ContentType, cfg.Requests = 13, ct, 1000
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		g := newBuiltinEvents(5, 0.3)
		pooled := &run{cfg: cfg, src: g, pool: newBodyPool(g, &cfg)}
		plain := &run{cfg: cfg, src: g}
		if n := len(pooled.pool.bodies); n != poolMaxBodies {
			t.Fatalf("%d pooled bodies", n)
		}
		wp, wr := newWorker(pooled), newWorker(plain)
		for k := range int64(3 * poolMaxBodies) {
			bp := string(wp.body(k))
			br := string(wr.body(k))
			// The two bodies were rendered at different times: compare them
			// without ts.
			if k < poolMaxBodies && tsRE.ReplaceAllString(bp, "") != tsRE.ReplaceAllString(br, "") {
				t.Fatalf("%s: body %d differs:\n%s\n%s", ct, k, bp, br)
			}
			// Every request carries its own ids.
			for i := range 13 {
				id := fmt.Sprintf(`"id":"5-%012d"`, k*13+int64(i))
				if !strings.Contains(bp, id) {
					t.Fatalf("%s: body %d lacks %s", ct, k, id)
				}
			}
			if !json.Valid([]byte(bp)) && ct == "application/json" {
				t.Fatalf("body %d is not a JSON array", k)
			}
		}
	}
}

// FuzzEventsFile feeds arbitrary files to the --events loader: it either
// fails with an EventsFileError or returns only valid JSON lines, and with
// ids required every line has one.
func FuzzEventsFile(f *testing.F) {
	f.Add([]byte("{\"id\":\"a\"}\n{\"id\":2}\n"), true)
	f.Add([]byte("{\"event\":\"x\"}\n\n  \n[1,2]\n"), false)
	f.Add([]byte("{\"id\":{\"nested\":1}}\n"), true)
	f.Add([]byte("not json\n"), false)
	f.Fuzz(func(t *testing.T, data []byte, needIDs bool) {
		path := filepath.Join(t.TempDir(), "ev.ndjson")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		fe, err := loadEventsFile(path, needIDs)
		if err != nil {
			var efe *EventsFileError
			if !errors.As(err, &efe) {
				t.Fatalf("error %v is not an EventsFileError", err)
			}
			return
		}
		if len(fe.lines) == 0 || len(fe.lines) != len(fe.ids) {
			t.Fatalf("%d lines, %d ids", len(fe.lines), len(fe.ids))
		}
		for i, l := range fe.lines {
			if !json.Valid(l) || bytes.ContainsAny(l, "\n") {
				t.Fatalf("line %d invalid: %q", i, l)
			}
			if needIDs && len(fe.ids[i]) == 0 {
				t.Fatalf("line %d has no id", i)
			}
		}
	})
}
