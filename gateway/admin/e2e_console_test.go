package admin_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/sluicehq/sluice/internal/e2e"
)

// chartState is what a console chart shows: its sample count, the last
// value of each series, and its canvas as a PNG data URL.
type chartState struct {
	Points int       `json:"points"`
	Last   []float64 `json:"last"`
	Pixels string    `json:"pixels"`
}

func charts(tb testing.TB, b *e2e.Browser) map[string]chartState {
	tb.Helper()
	var out map[string]chartState
	b.Exec(&out, `const out = {};
		for (const f of document.querySelectorAll("figure.chart")) {
			const c = f.querySelector("canvas");
			out[f.id] = {points: Number(f.dataset.points || 0), last: JSON.parse(f.dataset.last || "[]").map(v => v === null ? -1 : v),
				pixels: c ? c.toDataURL() : ""};
		}
		return out;`)
	return out
}

// TestE2EConsole drives the operator console in headless Chromium against
// the real binary with the example pipeline: the token form, the governor
// charts moving under load, the transform list, a dry run, a roll back
// through the confirmation dialog, a pipeline edit; with the keyboard where
// a user would, and a label on every control. Screenshots are saved as test
// artifacts.
func TestE2EConsole(t *testing.T) {
	kafka := e2e.Kafka(t, e2e.KafkaConfig{Topics: []string{"events", "sluice.dlq", "acme.events"}, AutoCreateTopics: true})
	cfg := filepath.Join(t.TempDir(), "sluice.yaml")
	if err := os.WriteFile(cfg, []byte("api_keys: [default-key]\ntenants:\n  - name: acme\n    keys: [acme-key]\n    topic: acme.events\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startSluice(t, kafka.ListenAddrs()[0], "--config", cfg, "--transforms", examplesDir(t), "--pipeline", "filter,redact,route,enrich")
	b := e2e.StartBrowser(t, e2e.BrowserOptions{Width: 1400, Height: 1000})
	const wait = 20 * time.Second

	// The token form, submitted with the keyboard; a wrong token is
	// refused with a message.
	b.Open("http://" + p.admin + "/ui/")
	tok := b.WaitFind("#token", wait)
	if !tok.Focused() {
		t.Fatal("the token field does not have the focus on a fresh page")
	}
	tok.Type("not-the-token" + e2e.KeyEnter)
	if msg := b.WaitText("#login-error", "401", wait); !strings.Contains(msg, "refused") {
		t.Fatalf("wrong token: %q", msg)
	}
	b.Find("#token").Type(e2eToken + e2e.KeyEnter)
	b.WaitJS(wait, `!document.getElementById("app").hidden`)
	if got := b.Eval(`sessionStorage.getItem("sluice.admin.token")`); got != e2eToken {
		t.Fatalf("sessionStorage holds %v", got)
	}

	// The transforms list shows the examples, used by the default pipeline.
	for _, name := range []string{"enrich", "filter", "redact", "route"} {
		row := b.WaitText(`#tr-body tr[data-name="`+name+`"]`, name, wait)
		if !strings.Contains(row, "v1") || !strings.Contains(row, "default") || !regexp.MustCompile(`[0-9a-f]{12}`).MatchString(row) {
			t.Fatalf("transform row of %s: %q", name, row)
		}
	}
	b.Screenshot("connected")

	// Under load the charts fill and move, and the ingest chart reads a
	// rate above zero.
	load := startLoad(p, 4, 20, "X-API-Key", "default-key")
	var first map[string]chartState
	b.Wait(wait, "the ingest chart to read events/s > 0 under load", func() bool {
		first = charts(t, b)
		c := first["chart-ingest"]
		return c.Points >= 3 && len(c.Last) > 0 && c.Last[0] > 0
	})
	time.Sleep(2500 * time.Millisecond)
	second := charts(t, b)
	for _, id := range []string{"chart-pressure", "chart-budget", "chart-inflight", "chart-ingest", "chart-sink"} {
		f, s := first[id], second[id]
		if f.Pixels == "" || len(f.Pixels) < 2000 {
			t.Errorf("%s: no canvas drawn (%d bytes)", id, len(f.Pixels))
		}
		if s.Points <= f.Points {
			t.Errorf("%s: %d samples, then %d 2.5 s later: not moving", id, f.Points, s.Points)
		}
		if s.Pixels == f.Pixels {
			t.Errorf("%s: the canvas did not change in 2.5 s under load", id)
		}
	}
	if tile := b.Find("#tile-events").Text(); !regexp.MustCompile(`[1-9][0-9.]*k?/s`).MatchString(tile) {
		t.Errorf("ingest tile under load: %q", tile)
	}
	if health := b.Find("#health").Text(); !strings.Contains(health, "ready") || !strings.Contains(health, "sink healthy") || !strings.Contains(health, "gate open") {
		t.Errorf("health strip: %q", health)
	}
	b.Screenshot("governor-under-load")
	load.stop()
	load.wg.Wait()

	// A dry run shows one decision per event.
	events := b.Find("#dr-events")
	events.Clear()
	events.Type(`{"event":"page_view","user_id":"u1","email":"ann@example.com","ip":"10.1.2.3"}` + "\n" +
		`{"event":"heartbeat","user_id":"u2"}` + "\n" + `{"event":"click","user_id":"u3"}`)
	b.Find("#dr-run").Click()
	b.WaitText("#dr-msg", "Done", wait)
	var decisions []string
	b.Exec(&decisions, `return Array.from(document.querySelectorAll("#dr-events-table tbody tr"), r => r.dataset.decision);`)
	if !slices.Equal(decisions, []string{"kept", "dropped", "kept"}) {
		t.Fatalf("dry-run decisions %q", decisions)
	}
	records := b.Find("#dr-records-table tbody").Text()
	if !strings.Contains(records, "events.page_view") || strings.Contains(records, "ann@example.com") || strings.Contains(records, "10.1.2.3") {
		t.Fatalf("dry-run records (redacted, routed): %q", records)
	}
	if sum := b.Find("#dr-summary").Text(); !strings.Contains(sum, "3 events → 2 kept, 1 dropped") || !strings.Contains(sum, " ms in all") {
		t.Fatalf("dry-run summary %q", sum)
	}
	b.Screenshot("dry-run")

	// A new version of filter, uploaded with the file picker, then rolled
	// back through the confirmation dialog with the keyboard.
	b.Find("#up-name").Type("filter")
	b.Find("#up-file").Type(guestPath(t, "dropall"))
	b.Find("#up-submit").Click()
	b.WaitText("#tr-msg", "Uploaded filter v2", wait)
	if v := b.WaitFind(`#tr-body tr[data-name="filter"] td[data-version]`, wait).Attr("data-version"); v != "2" {
		t.Fatalf("filter's version after the upload: %q", v)
	}
	rb := b.Find("#rollback-filter")
	rb.Click()
	b.WaitJS(wait, `document.getElementById("confirm").open`)
	if !b.Find("#confirm-cancel").Focused() {
		t.Fatal("the confirmation dialog does not focus Cancel")
	}
	b.Screenshot("rollback-confirm")
	b.Keys(e2e.KeyTab, e2e.KeyEnter) // Tab to "Roll back", press it
	b.WaitText("#tr-msg", "Rolled back filter: v1 is current", wait)
	b.WaitJS(wait, `document.querySelector('#tr-body tr[data-name="filter"] td[data-version]').dataset.version === "1"`)
	var info transformJSON
	p.api.do(t, "GET", "/admin/transforms/filter", nil).want(t, 200, "filter").json(t, &info)
	if info.Version != 1 || !slices.Equal(info.Versions, []int{1, 2}) {
		t.Fatalf("after the roll back the API says v%d of %v", info.Version, info.Versions)
	}
	b.Screenshot("rolled-back")

	// Delete: a transform in use is refused with the API's reason; an
	// unused one goes.
	b.Find("#up-name").Type("spare")
	b.Find("#up-file").Type(guestPath(t, "dropall"))
	b.Find("#up-submit").Click()
	b.WaitText("#tr-msg", "Uploaded spare v1", wait)
	b.WaitClick("#delete-redact", wait)
	b.WaitJS(wait, `document.getElementById("confirm").open`)
	b.Keys(e2e.KeyTab, e2e.KeyEnter)
	if msg := b.WaitText("#tr-msg", "Delete redact", wait); !strings.Contains(msg, "in use") {
		t.Fatalf("deleting a transform in use: %q", msg)
	}
	b.WaitClick("#delete-spare", wait)
	b.WaitJS(wait, `document.getElementById("confirm").open`)
	b.Keys(e2e.KeyTab, e2e.KeyEnter)
	b.WaitText("#tr-msg", "Deleted spare.", wait)
	b.WaitJS(wait, `!document.querySelector('#tr-body tr[data-name="spare"]')`)
	p.api.do(t, "GET", "/admin/transforms/spare", nil).want(t, 404, "spare after delete")

	// Pipelines per tenant: the default one edited, then acme's, chosen
	// with the keyboard.
	chain := b.Find("#pl-chain")
	chain.Clear()
	chain.Type("filter, route" + e2e.KeyEnter)
	b.WaitText("#pl-msg", "Applied to default: filter → route", wait)
	var pl struct {
		Transforms []string `json:"transforms"`
	}
	p.api.do(t, "GET", "/admin/pipeline", nil).want(t, 200, "pipeline").json(t, &pl)
	if !slices.Equal(pl.Transforms, []string{"filter", "route"}) {
		t.Fatalf("pipeline after Apply: %v", pl.Transforms)
	}
	b.Exec(nil, `document.getElementById("pl-tenant").focus();`)
	b.Keys(e2e.KeyArrowDown)
	b.WaitJS(wait, `document.getElementById("pl-tenant").value === "acme"`)
	var acme struct {
		Transforms []string `json:"transforms"`
	}
	p.api.do(t, "GET", "/admin/pipeline?tenant=acme", nil).want(t, 200, "acme pipeline").json(t, &acme)
	b.WaitJS(wait, `document.getElementById("pl-chain").value === `+jsString(strings.Join(acme.Transforms, ", ")))
	chain.Clear()
	chain.Type("redact" + e2e.KeyEnter)
	b.WaitText("#pl-msg", "Applied to acme: redact", wait)
	p.api.do(t, "GET", "/admin/pipeline?tenant=acme", nil).want(t, 200, "acme pipeline").json(t, &acme)
	p.api.do(t, "GET", "/admin/pipeline", nil).want(t, 200, "pipeline").json(t, &pl)
	if !slices.Equal(acme.Transforms, []string{"redact"}) || !slices.Equal(pl.Transforms, []string{"filter", "route"}) {
		t.Fatalf("after applying to acme: acme %v, default %v", acme.Transforms, pl.Transforms)
	}
	if cur := b.Find("#pl-current").Text(); cur != "redact" {
		t.Fatalf("current pipeline shown: %q", cur)
	}

	// Every control has a label, and the page fetched nothing but its own
	// files and the admin API.
	var unlabelled []string
	b.Exec(&unlabelled, `return Array.from(document.querySelectorAll("input, select, textarea, button"))
		.filter(e => !(e.labels && e.labels.length) && !e.getAttribute("aria-label") && !e.textContent.trim())
		.map(e => e.outerHTML.slice(0, 80));`)
	if len(unlabelled) > 0 {
		t.Errorf("controls without a label: %q", unlabelled)
	}
	var urls []string
	b.Exec(&urls, `return performance.getEntriesByType("resource").map(e => e.name);`)
	for _, u := range urls {
		if !strings.HasPrefix(u, "http://"+p.admin+"/ui/") && !strings.HasPrefix(u, "http://"+p.admin+"/admin/") {
			t.Errorf("the page fetched %s", u)
		}
	}
	if len(urls) < 10 {
		t.Errorf("only %d fetches recorded: %q", len(urls), urls)
	}
	if log := b.ConsoleLog(); strings.Contains(log, "SEVERE") && !strings.Contains(log, "401") {
		t.Errorf("browser console errors:\n%s", log)
	}

	// Sign out forgets the token.
	b.Find("#signout").Click()
	b.WaitFind("#token", wait)
	if got := b.Eval(`sessionStorage.getItem("sluice.admin.token")`); got != nil {
		t.Fatalf("after sign out sessionStorage holds %v", got)
	}

	// #token= signs in and leaves the address bar.
	b.Open("http://" + p.admin + "/ui/#token=" + e2eToken)
	b.WaitJS(wait, `!document.getElementById("app").hidden`)
	if u := b.URL(); strings.Contains(u, e2eToken) {
		t.Fatalf("the token stays in the URL: %s", u)
	}

	// Kafka goes away: the console says the gateway is not ready, and why.
	kafka.Close()
	go p.post([]byte(`{"event":"click","user_id":"u9"}`), "application/json", "X-API-Key", "default-key")
	banner := b.WaitText("#readiness", "Not ready", 45*time.Second)
	if !strings.Contains(banner, "sink is unavailable") || !strings.Contains(banner, "kafka") {
		t.Fatalf("readiness banner: %q", banner)
	}
	b.WaitText("#pill-sink", "sink unhealthy", wait)
	b.WaitText("#tile-sink", "unhealthy", wait)
	if ready := b.Find("#pill-ready").Text(); ready != "not ready" {
		t.Fatalf("ready pill: %q", ready)
	}
	b.Find("#governor").Click() // scroll up to the charts
	b.Exec(nil, `document.getElementById("main").scrollIntoView();`)
	b.Screenshot("sink-down")
}

// TestE2ENoAdminToken: without an admin token the admin API and the
// console are not there, and the listener says so with a 404 (not a 500);
// /metrics, /healthz and /readyz still answer.
func TestE2ENoAdminToken(t *testing.T) {
	broker := newKafka(t)
	p := e2e.Start(t, e2e.Options{}, "--brokers", broker, "--data-dir", t.TempDir())
	c := &adminClient{c: &fasthttp.Client{ReadTimeout: 30 * time.Second}, base: "http://" + p.Admin}
	for _, path := range []string{"/admin/budget", "/admin/transforms", "/ui/", "/nope"} {
		r := c.doToken(t, "", "GET", path, nil).want(t, 404, path)
		if got := strings.TrimSpace(string(r.body)); got != `{"error":"not found: the admin API is not enabled (set --admin-token or SLUICE_ADMIN_TOKEN)","status":404}` {
			t.Errorf("GET %s: %s", path, got)
		}
	}
	for _, path := range []string{"/metrics", "/healthz", "/readyz"} {
		c.doToken(t, "", "GET", path, nil).want(t, 200, path)
	}
}

func jsString(s string) string { b, _ := json.Marshal(s); return string(b) }
