package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sluicehq/sluice/internal/load"
)

// sample is the start of the workload: the first request bodies of a load
// run with the benchmark's seed and settings, as the load generator sends
// them (it cycles through at most 64 distinct bodies, so 64 requests hold
// every distinct event of a run but for ids and ts).
type sample struct {
	bodies [][]byte
	stats  workloadStats
}

// workloadStats describe the events of a sample.
type workloadStats struct {
	events, heartbeats int
	bytes, hbBytes     int // JSON bytes of all events / of the heartbeats (no newline)
}

// meanSize is the mean event size in bytes.
func (w workloadStats) meanSize() float64 { return float64(w.bytes) / float64(max(w.events, 1)) }

// heartbeatShare is the share of heartbeat events.
func (w workloadStats) heartbeatShare() float64 {
	return float64(w.heartbeats) / float64(max(w.events, 1))
}

func (w workloadStats) String() string {
	others := w.events - w.heartbeats
	return fmt.Sprintf("%d events, mean %.1f B (other events %.1f B, heartbeats %.1f B), %.1f %% heartbeats",
		w.events, w.meanSize(), float64(w.bytes-w.hbBytes)/float64(max(others, 1)),
		float64(w.hbBytes)/float64(max(w.heartbeats, 1)), 100*w.heartbeatShare())
}

// measureWorkload counts the events of NDJSON bodies.
func measureWorkload(bodies [][]byte) (workloadStats, error) {
	var w workloadStats
	for _, b := range bodies {
		for line := range bytes.SplitSeq(b, []byte("\n")) {
			if len(bytes.TrimSpace(line)) == 0 {
				continue
			}
			var ev struct {
				Event string `json:"event"`
			}
			if err := json.Unmarshal(line, &ev); err != nil {
				return w, fmt.Errorf("workload event %q: %w", line, err)
			}
			w.events++
			w.bytes += len(line)
			if ev.Event == "heartbeat" {
				w.heartbeats++
				w.hbBytes += len(line)
			}
		}
	}
	return w, nil
}

// captureSample runs the load generator in process against a loopback
// server that keeps the bodies: requests requests of perRequest events with
// the benchmark's seed, one connection, so the bodies arrive in order.
func captureSample(requests, perRequest int) (*sample, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	var mu sync.Mutex
	var bodies [][]byte
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		bodies = append(bodies, b)
		mu.Unlock()
	})}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	cfg := load.DefaultConfig()
	cfg.URL = "http://" + ln.Addr().String() + "/v1/events"
	cfg.EventsPerRequest = perRequest
	cfg.Connections = 1
	cfg.Requests = int64(requests)
	cfg.Seed = seed
	cfg.ProgressInterval = 0
	rep, err := load.Run(context.Background(), cfg, nil)
	if err != nil {
		return nil, fmt.Errorf("capture the workload: %w", err)
	}
	if rep.Requests.OK != uint64(requests) || len(bodies) != requests {
		return nil, fmt.Errorf("capture the workload: %d of %d requests answered 200, %d bodies kept", rep.Requests.OK, requests, len(bodies))
	}
	st, err := measureWorkload(bodies)
	if err != nil {
		return nil, err
	}
	return &sample{bodies: bodies, stats: st}, nil
}

// outcome is what the example chain makes of one event that it keeps.
type outcome struct {
	topic  string // "" for the default topic
	key    string
	hasKey bool
	value  map[string]any
}

// regions is enrich's table (examples/enrich/main.go).
var regions = map[string]string{
	"AU": "apac", "NZ": "apac", "JP": "apac", "SG": "apac",
	"US": "amer", "CA": "amer", "BR": "amer", "MX": "amer",
	"GB": "emea", "DE": "emea", "FR": "emea", "NL": "emea", "IE": "emea",
}

// reference is the example chain filter,redact,route,enrich written
// directly in Go, from examples/*/main.go: the outcome every system must
// produce for a JSON object event. kept is false for a dropped event.
func reference(event []byte) (o outcome, kept bool, err error) {
	var v map[string]any
	if err := json.Unmarshal(event, &v); err != nil {
		return o, false, err
	}
	// filter
	if ev, ok := v["event"].(string); ok && ev == "heartbeat" {
		return o, false, nil
	}
	// redact
	delete(v, "ua")
	delete(v, "ip")
	if email, ok := v["email"].(string); ok {
		sum := sha256.Sum256([]byte(email))
		v["email"] = hex.EncodeToString(sum[:])
	}
	// route
	if ev, ok := v["event"].(string); ok && ev != "" {
		o.topic = "events." + ev
	}
	if uid, ok := v["user_id"]; ok && uid != nil {
		o.hasKey = true
		if s, ok := uid.(string); ok {
			o.key = s
		} else {
			b, _ := json.Marshal(uid)
			o.key = string(b)
		}
	}
	// enrich
	region := "other"
	if geo, ok := v["geo"].(map[string]any); ok {
		if c, ok := geo["country"].(string); ok && regions[c] != "" {
			region = regions[c]
		}
	}
	v["region"] = region
	o.value = v
	return o, true, nil
}

// expectation is the reference outcome of every event of a sample.
type expectation struct {
	kept    map[string]outcome // by event id
	dropped map[string]bool
	// perBody are the accepted and dropped counts of each body.
	perBody [][2]int
}

// edgeEvents is one more body the check runs send after the sample: events
// the load generator does not make, where a mapping could quietly differ
// from the example chain (a null or numeric user_id, a non-string email, an
// empty event, geo that is not an object, a missing geo, non-ASCII text,
// an unknown country, a heartbeat with personal data).
var edgeEvents = []byte(`{"id":"edge-1","event":"click","user_id":null,"email":42,"geo":{"country":"XX"},"ip":"10.0.0.1"}
{"id":"edge-2","event":"","user_id":7,"geo":"AU","ua":"curl/8"}
{"id":"edge-3","event":"signup"}
{"id":"edge-4","event":"page_view","user_id":"u-é","email":"Ünïcode+tag@Example.COM","ip":"::1","ua":"x","geo":{"country":"JP","city":"東京"}}
{"id":"edge-5","event":"heartbeat","email":"hb@example.com","user_id":"u-1"}
{"id":"edge-6","event":"purchase","user_id":"u-2","email":"","geo":{"country":"NL"},"props":{"amount":10.50,"items":[1,2,{"n":null}]}}
`)

// expect applies the reference chain to every event of bodies.
func expect(bodies [][]byte) (*expectation, error) {
	e := &expectation{kept: map[string]outcome{}, dropped: map[string]bool{}}
	for _, b := range bodies {
		var counts [2]int
		for line := range bytes.SplitSeq(b, []byte("\n")) {
			if len(bytes.TrimSpace(line)) == 0 {
				continue
			}
			var id struct {
				ID string `json:"id"`
			}
			if err := json.Unmarshal(line, &id); err != nil || id.ID == "" {
				return nil, fmt.Errorf("workload event without a string id: %q", line)
			}
			o, kept, err := reference(line)
			if err != nil {
				return nil, err
			}
			if _, dup := e.kept[id.ID]; dup || e.dropped[id.ID] {
				return nil, fmt.Errorf("workload event id %s twice", id.ID)
			}
			if kept {
				e.kept[id.ID] = o
				counts[0]++
			} else {
				e.dropped[id.ID] = true
				counts[1]++
			}
		}
		e.perBody = append(e.perBody, counts)
	}
	return e, nil
}

// written is one record a system wrote, as its check run shows it.
type written struct {
	topic  string // "" for the default topic
	key    string
	hasKey bool
	value  []byte
}

// compare checks the records a system wrote against the expectation: every
// kept event exactly once, with the expected topic, key and value (compared
// as JSON values: key order and number spelling may differ), and no dropped
// event. It returns nil or an error naming the first differences.
func (e *expectation) compare(got []written) error {
	var problems []string
	add := func(format string, a ...any) {
		if len(problems) < 5 {
			problems = append(problems, fmt.Sprintf(format, a...))
		}
	}
	seen := map[string]bool{}
	for _, w := range got {
		var v map[string]any
		if err := json.Unmarshal(w.value, &v); err != nil {
			add("a record is not a JSON object: %q", w.value)
			continue
		}
		id, _ := v["id"].(string)
		switch {
		case seen[id]:
			add("event %q written twice", id)
			continue
		case e.dropped[id]:
			add("event %q should have been dropped", id)
			continue
		}
		want, ok := e.kept[id]
		if !ok {
			add("unexpected record %q", w.value)
			continue
		}
		seen[id] = true
		if w.topic != want.topic {
			add("event %q: topic %q, want %q", id, w.topic, want.topic)
		}
		if w.hasKey != want.hasKey || w.key != want.key {
			add("event %q: key %q (set: %v), want %q (set: %v)", id, w.key, w.hasKey, want.key, want.hasKey)
		}
		if !reflect.DeepEqual(v, want.value) {
			wb, _ := json.Marshal(want.value)
			add("event %q:\n     got %s\n    want %s", id, w.value, wb)
		}
	}
	var missing []string
	for id := range e.kept {
		if !seen[id] {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		add("%d of %d kept events missing (first: %s)", len(missing), len(e.kept), missing[0])
	}
	if len(problems) > 0 {
		return fmt.Errorf("%d records written, %d expected:\n  %s", len(got), len(e.kept), strings.Join(problems, "\n  "))
	}
	return nil
}

// postAll sends every body to url, one after the other, and returns the
// response bodies; any status but 200 is an error.
func postAll(url string, bodies [][]byte) ([][]byte, error) {
	c := &http.Client{Timeout: 30 * time.Second}
	var out [][]byte
	for i, b := range bodies {
		resp, err := c.Post(url, "application/x-ndjson", bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("request %d: %w", i, err)
		}
		rb, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("request %d: %w", i, err)
		}
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("request %d: status %d: %s", i, resp.StatusCode, rb)
		}
		out = append(out, rb)
	}
	return out, nil
}

// checkSluiceCounts checks sluice's response to each body: its accepted,
// dropped and dead-lettered counts.
func (e *expectation) checkSluiceCounts(responses [][]byte) error {
	if len(responses) != len(e.perBody) {
		return fmt.Errorf("%d responses for %d bodies", len(responses), len(e.perBody))
	}
	for i, rb := range responses {
		var c struct {
			Accepted     *int `json:"accepted"`
			Dropped      *int `json:"dropped"`
			DeadLettered *int `json:"dead_lettered"`
		}
		if err := json.Unmarshal(rb, &c); err != nil || c.Accepted == nil || c.Dropped == nil || c.DeadLettered == nil {
			return fmt.Errorf("response %d: %q is not {accepted, dropped, dead_lettered}", i, rb)
		}
		if want := e.perBody[i]; *c.Accepted != want[0] || *c.Dropped != want[1] || *c.DeadLettered != 0 {
			return fmt.Errorf("response %d: %s; want accepted %d, dropped %d, dead_lettered 0", i, rb, want[0], want[1])
		}
	}
	return nil
}

// saveCheck writes a check run's records to dir/name.ndjson (one JSON
// object per record: topic, key, value), when dir is set.
func saveCheck(dir, name string, got []written) error {
	if dir == "" {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var b bytes.Buffer
	for _, w := range got {
		var key any
		if w.hasKey {
			key = w.key
		}
		line, err := json.Marshal(struct {
			Topic string          `json:"topic"`
			Key   any             `json:"key"`
			Value json.RawMessage `json:"value"`
		}{w.topic, key, w.value})
		if err != nil {
			return fmt.Errorf("%s: record %q: %w", name, w.value, err)
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	return os.WriteFile(filepath.Join(dir, name+".ndjson"), b.Bytes(), 0o644)
}

// errCheck marks a failed check: the system under test does not do the
// work, so its figures would be worthless.
var errCheck = errors.New("check failed")
