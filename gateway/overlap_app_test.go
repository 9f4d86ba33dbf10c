package gateway_test

import (
	"bytes"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/sluicehq/sluice/internal/e2e"
)

// The example chain (filter, redact, route, enrich: the real guests) under
// a driver with overlapped stages writes exactly what the sequential driver
// writes, and answers every request with the same counts: concurrent
// Process calls of one line through the WASM pipeline change nothing.
func TestAppOverlappedDriverMatchesSequential(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "transforms")
	if err := e2e.BuildGuests(dir, e2e.Example("filter"), e2e.Example("redact"), e2e.Example("route"), e2e.Example("enrich")); err != nil {
		t.Fatal(err)
	}
	data := t.TempDir() // shared: the second app finds the compiled guests cached
	const requests, perRequest = 96, 40
	bodies := make([][]byte, requests)
	countries := []string{"AU", "DE", "US", "FR", "JP", "BR", "xx"}
	events := []string{"page_view", "click", "heartbeat", "purchase", "signup"}
	for r := range bodies {
		var b bytes.Buffer
		for i := range perRequest {
			n := r*perRequest + i
			fmt.Fprintf(&b, `{"id":"e%d","event":%q,"user_id":"u%d","email":"User%d@Example.com","ip":"10.0.%d.%d","ua":"Mozilla/5.0 (%d)","geo":{"country":%q,"city":"c\u00e9%d"},"props":{"path":"/p/%d","n":[%d,{"k":"v"}]}}`+"\n",
				n, events[n%len(events)], n%97, n, n%256, n%7, n, countries[n%len(countries)], n, n, n)
		}
		bodies[r] = b.Bytes()
	}
	run := func(depth int) (lines []string, answers []string) {
		var out lockedBuffer
		app := startApp(t, &out, "--sink", "stdout", "--transforms", dir, "--pipeline", "filter,redact,route,enrich",
			"--driver-depth", fmt.Sprint(depth), "--data-dir", data)
		url := "http://" + app.HTTPAddr() + "/v1/events"
		c := &fasthttp.Client{MaxConnsPerHost: 64}
		answers = make([]string, requests)
		var wg sync.WaitGroup
		for w := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for r := w; r < requests; r += 16 {
					code, body := post(t, c, url, bodies[r], "Content-Type", "application/x-ndjson")
					if code != 200 {
						t.Errorf("depth %d, request %d: %d %s", depth, r, code, body)
					}
					answers[r] = body
				}
			}()
		}
		wg.Wait()
		if err := app.Stop(t.Context()); err != nil {
			t.Fatal(err)
		}
		lines = strings.Split(strings.TrimSpace(out.String()), "\n")
		slices.Sort(lines)
		return lines, answers
	}
	wantLines, wantAnswers := run(1)
	if n := len(wantLines); n < requests*perRequest/2 {
		t.Fatalf("the sequential run wrote %d records", n)
	}
	gotLines, gotAnswers := run(4)
	if !slices.Equal(gotAnswers, wantAnswers) {
		for i := range gotAnswers {
			if gotAnswers[i] != wantAnswers[i] {
				t.Fatalf("request %d answered %s, sequentially %s", i, gotAnswers[i], wantAnswers[i])
			}
		}
	}
	if !slices.Equal(gotLines, wantLines) {
		t.Fatalf("depth 4 wrote %d records, depth 1 %d; first difference: %q", len(gotLines), len(wantLines), firstDiff(gotLines, wantLines))
	}
}

func firstDiff(a, b []string) string {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return a[i] + " vs " + b[i]
		}
	}
	return "(one is a prefix of the other)"
}
