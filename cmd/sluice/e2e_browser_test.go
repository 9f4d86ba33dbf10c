package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/e2e"
)

// browserPage is the page of another origin that posts to sluice: fetch
// with JSON, a bearer key and an Idempotency-Key (a preflighted request),
// the same again (a replay), a fetch with a wrong key (a 401 the page must
// be able to read), and a beacon with the key in the query. It writes what
// it read into #out as JSON.
const browserPage = `<!doctype html>
<html><head><meta charset="utf-8"><title>shop</title></head>
<body><pre id="out">running</pre>
<script>
(async () => {
  const url = "INGEST";
  const out = {};
  const post = (key, idem, id) => fetch(url, {
    method: "POST",
    headers: {"Content-Type": "application/json", "Authorization": "Bearer " + key, "Idempotency-Key": idem},
    body: JSON.stringify({id: id, event: "click"}),
  });
  try {
    const r = await post("kb", "page-1", "fetch-1");
    out.status = r.status;
    out.body = await r.json();
    const again = await post("kb", "page-1", "fetch-1-retry");
    out.replayStatus = again.status;
    out.replayed = again.headers.get("Idempotent-Replayed");
    out.replayBody = await again.json();
    const bad = await post("wrong", "page-2", "fetch-bad");
    out.badStatus = bad.status;
    out.badError = (await bad.json()).error;
    out.beacon = navigator.sendBeacon(url + "?api_key=kb", JSON.stringify({id: "beacon-1", event: "unload"}));
  } catch (e) {
    out.error = String(e);
  }
  const el = document.getElementById("out");
  el.textContent = JSON.stringify(out);
  el.dataset.done = "1";
})();
</script></body></html>`

// TestBrowserFetchAndBeacon: headless Chromium opens a page served from
// another origin; the page posts with fetch (JSON, Authorization: Bearer,
// an Idempotency-Key: preflighted) and with navigator.sendBeacon
// (?api_key=, text/plain); the page reads the 200, the replay and a 401;
// both events are in Kafka once.
func TestBrowserFetchAndBeacon(t *testing.T) {
	b := e2e.StartBrowser(t, e2e.BrowserOptions{})
	var ingest atomic.Pointer[string]
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(strings.Replace(browserPage, "INGEST", *ingest.Load(), 1)))
	}))
	defer page.Close()
	k := newKafka(t)
	brokers := k.ListenAddrs()
	p := startSluice(t, "--brokers", brokers[0], "--api-key", "kb", "--cors-origin", page.URL)
	u := p.URL("/v1/events")
	ingest.Store(&u)
	if strings.HasPrefix(u, page.URL) {
		t.Fatalf("the page (%s) and ingest (%s) must be different origins", page.URL, u)
	}

	b.Open(page.URL + "/shop.html")
	b.WaitJS(20*time.Second, `document.getElementById("out").dataset.done === "1"`)
	var out struct {
		Status     int
		Body       struct{ Accepted int }
		ReplayStat int `json:"replayStatus"`
		Replayed   string
		ReplayBody struct{ Accepted int } `json:"replayBody"`
		BadStatus  int                    `json:"badStatus"`
		BadError   string                 `json:"badError"`
		Beacon     bool
		Error      string
	}
	text := b.Find("#out").Text()
	if err := json.Unmarshal([]byte(text), &out); err != nil {
		t.Fatalf("page output %q: %v", text, err)
	}
	if out.Error != "" || out.Status != 200 || out.Body.Accepted != 1 || out.ReplayStat != 200 || out.Replayed != "true" ||
		out.ReplayBody.Accepted != 1 || out.BadStatus != 401 || !strings.Contains(out.BadError, "API key") || !out.Beacon {
		t.Fatalf("the page read: %s", text)
	}
	b.Screenshot("posted")
	var ids []string
	waitFor(t, 20*time.Second, "the beacon's event in Kafka", func() bool {
		ids = ids[:0]
		for _, r := range consume(t, brokers, "events") {
			var v struct{ ID string }
			_ = json.Unmarshal(r.Value, &v)
			ids = append(ids, v.ID+"/"+e2e.Header(r, "idempotency-key"))
		}
		return len(ids) >= 2
	})
	sort.Strings(ids)
	if strings.Join(ids, " ") != "beacon-1/ fetch-1/page-1" {
		t.Fatalf("events in Kafka (id/idempotency-key): %v", ids)
	}
	if n := p.metric(t, `sluice_ingest_requests_total{code="204"}`); n < 1 {
		t.Fatalf("no preflight was answered 204 (%v)", n)
	}
}
