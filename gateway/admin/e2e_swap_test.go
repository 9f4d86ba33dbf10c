package admin_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// loadRequest is one ingest request of the concurrent client and its answer.
type loadRequest struct {
	ids []string
	res ingestResult
	err error
}

// loader posts requests of unique event ids until stopped and keeps every
// answer, so the test can account for each id exactly.
type loader struct {
	mu   sync.Mutex
	reqs []loadRequest
	wg   sync.WaitGroup
	stop context.CancelFunc
}

// startLoad posts from workers goroutines, perRequest events a request;
// hdr (names and values) go with every request.
func startLoad(p *sluiceProc, workers, perRequest int, hdr ...string) *loader {
	ctx, cancel := context.WithCancel(context.Background())
	l := &loader{stop: cancel}
	for w := range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for seq := 0; ctx.Err() == nil; seq++ {
				var b strings.Builder
				ids := make([]string, perRequest)
				for i := range ids {
					ids[i] = fmt.Sprintf("w%d-r%d-e%d", w, seq, i)
					fmt.Fprintf(&b, "{\"id\":%q,\"event\":\"click\",\"n\":%d}\n", ids[i], i)
				}
				res, err := p.post([]byte(b.String()), "application/x-ndjson", hdr...)
				l.mu.Lock()
				l.reqs = append(l.reqs, loadRequest{ids: ids, res: res, err: err})
				l.mu.Unlock()
			}
		}()
	}
	return l
}

// waitFor waits until cond holds over the answers received since from.
func (l *loader) waitFor(tb testing.TB, what string, from int, cond func(done []loadRequest) bool) int {
	tb.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		l.mu.Lock()
		n := len(l.reqs)
		ok := cond(l.reqs[min(from, n):n])
		l.mu.Unlock()
		if ok {
			return n
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s: not seen within 60s (%d answers)", what, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func countWhere(reqs []loadRequest, f func(loadRequest) bool) int {
	n := 0
	for _, r := range reqs {
		if f(r) {
			n++
		}
	}
	return n
}

// TestE2ESwapAndRollbackUnderLoad uploads a transform, tests it, puts it in
// the pipeline, then — while a concurrent client posts events with unique
// ids — swaps in a new version that drops everything, rolls back, and swaps
// the whole pipeline to a drop-everything chain and back. Every
// acknowledged id is either in Kafka exactly once or was counted as dropped
// in its request's answer; nothing is lost or duplicated across the swaps.
// The metrics move by exactly the answered counts.
func TestE2ESwapAndRollbackUnderLoad(t *testing.T) {
	broker := newKafka(t)
	p := startSluice(t, broker)
	api := p.api
	filter, dropall := guestBytes(t, "filter"), guestBytes(t, "dropall")

	var info transformJSON
	api.do(t, "PUT", "/admin/transforms/gate", filter).want(t, 201, "upload v1").json(t, &info)
	var dr dryRunJSON
	api.do(t, "POST", "/admin/transforms/gate/test", []byte(`[{"id":"x","event":"click"}]`)).want(t, 200, "test v1").json(t, &dr)
	if dr.Summary.Kept != 1 {
		t.Fatalf("v1 dry-run: %s", mustJSON(dr))
	}
	api.do(t, "PUT", "/admin/pipeline", []byte(`{"transforms":["gate"]}`)).want(t, 200, "pipeline")
	before := p.metrics(t)

	const workers, perRequest = 3, 10
	l := startLoad(p, workers, perRequest)
	defer l.stop()
	kept := func(r loadRequest) bool { return r.err == nil && r.res.code == 200 && r.res.accepted == perRequest }
	allDropped := func(r loadRequest) bool { return r.err == nil && r.res.code == 200 && r.res.dropped == perRequest }

	at := l.waitFor(t, "traffic through v1", 0, func(d []loadRequest) bool { return countWhere(d, kept) >= 20 })

	// v2 drops everything; the pipeline switches to it atomically.
	api.do(t, "PUT", "/admin/transforms/gate", dropall).want(t, 201, "upload v2").json(t, &info)
	if info.Version != 2 || info.Digest != sha(dropall) || len(info.Versions) != 2 {
		t.Fatalf("v2: %s", mustJSON(info))
	}
	at = l.waitFor(t, "requests dropped by v2", at, func(d []loadRequest) bool { return countWhere(d, allDropped) >= 10 })

	// Roll back: v1 is current again.
	api.do(t, "POST", "/admin/transforms/gate/rollback", nil).want(t, 200, "rollback").json(t, &info)
	if info.Version != 1 || info.Digest != sha(filter) {
		t.Fatalf("rollback: %s", mustJSON(info))
	}
	at = l.waitFor(t, "traffic through v1 again", at, func(d []loadRequest) bool { return countWhere(d, kept) >= 20 })

	// Swap whole pipelines too: to dropall (uploaded as its own
	// transform), back to gate.
	api.do(t, "PUT", "/admin/transforms/sink-hole", dropall).want(t, 201, "upload sink-hole")
	api.do(t, "PUT", "/admin/pipeline", []byte(`{"transforms":["sink-hole"]}`)).want(t, 200, "pipeline → sink-hole")
	at = l.waitFor(t, "requests dropped by the sink-hole pipeline", at, func(d []loadRequest) bool { return countWhere(d, allDropped) >= 10 })
	api.do(t, "PUT", "/admin/pipeline", []byte(`{"transforms":["gate"]}`)).want(t, 200, "pipeline → gate")
	l.waitFor(t, "traffic through gate again", at, func(d []loadRequest) bool { return countWhere(d, kept) >= 20 })
	l.stop()
	l.wg.Wait()

	// Exact accounting, request by request.
	recs := consume(t, broker, "events")
	inKafka := map[string]int{}
	for _, r := range recs {
		var v struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(r.Value, &v); err != nil || v.ID == "" {
			t.Fatalf("record %q: %v", r.Value, err)
		}
		inKafka[v.ID]++
	}
	var acked, accepted, dropped, events int
	known := map[string]bool{}
	for _, r := range l.reqs {
		for _, id := range r.ids {
			known[id] = true
		}
		if r.err != nil || r.res.code != 200 {
			t.Fatalf("request failed without pressure: %+v %v", r.res, r.err)
		}
		acked++
		events += len(r.ids)
		if r.res.accepted+r.res.dropped != len(r.ids) || r.res.dead != 0 {
			t.Fatalf("answer %+v does not account for its %d events", r.res, len(r.ids))
		}
		n := 0
		for _, id := range r.ids {
			n += inKafka[id]
		}
		if n != r.res.accepted {
			t.Fatalf("request %s…: %d of its events in Kafka, answer said %d accepted", r.ids[0], n, r.res.accepted)
		}
		accepted += r.res.accepted
		dropped += r.res.dropped
	}
	for id, n := range inKafka {
		if n != 1 {
			t.Fatalf("event %s is in Kafka %d times", id, n)
		}
		if !known[id] {
			t.Fatalf("event %s in Kafka was never sent", id)
		}
	}
	if accepted != len(recs) || dropped == 0 || accepted == 0 {
		t.Fatalf("accepted %d, dropped %d, Kafka has %d", accepted, dropped, len(recs))
	}
	t.Logf("%d requests, %d events: %d in Kafka, %d dropped by the drop-everything version and pipeline", acked, events, accepted, dropped)

	// The metrics moved by exactly the answered counts.
	after := p.metrics(t)
	delta := func(name string) float64 { return after[name] - before[name] }
	for _, c := range []struct {
		name string
		want float64
	}{
		{`sluice_ingest_requests_total{code="200"}`, float64(acked)},
		{"sluice_ingest_events_total", float64(events)},
		{"sluice_events_dropped_total", float64(dropped)},
		{"sluice_sink_records_total", float64(accepted)},
		{"sluice_sink_errors_total", 0},
	} {
		if got := delta(c.name); got != c.want {
			t.Errorf("%s moved by %v, want %v", c.name, got, c.want)
		}
	}
	for _, name := range []string{
		`sluice_transform_calls_total{transform="gate"}`, `sluice_transform_duration_seconds_count{transform="gate"}`,
		`sluice_transform_calls_total{transform="sink-hole"}`,
		"sluice_sink_latency_seconds_count", "sluice_ingest_bytes_total",
	} {
		if delta(name) <= 0 {
			t.Errorf("%s did not move (%v → %v)", name, before[name], after[name])
		}
	}
	for _, name := range []string{"sluice_byte_budget_bytes", "sluice_recv_block_bytes"} {
		if after[name] <= 0 {
			t.Errorf("%s = %v, want > 0", name, after[name])
		}
	}
	api.do(t, "GET", "/admin/transforms/gate", nil).want(t, 200, "get").json(t, &info)
	if info.Calls == 0 || info.Records == 0 || info.Version != 1 {
		t.Fatalf("gate after load: %s", mustJSON(info))
	}
}

// TestE2ETrapsAndDeadLetters: a transform that traps on one record sends
// that record (and an unparseable one) to the DLQ topic with the reason;
// the traps and dead-letter metrics move by exactly that, and every metric
// of the documented interface is exported.
func TestE2ETrapsAndDeadLetters(t *testing.T) {
	broker := newKafka(t)
	p := startSluice(t, broker)
	api := p.api
	api.do(t, "PUT", "/admin/transforms/trapper", guestBytes(t, "trapper")).want(t, 201, "upload trapper")
	var dr dryRunJSON
	api.do(t, "POST", "/admin/transforms/trapper/test", []byte(`[{"event":"ok"},{"event":"boom","trap":true}]`)).want(t, 200, "test").json(t, &dr)
	if dr.Summary.Kept != 1 || dr.Summary.DeadLettered != 1 || dr.Events[1].Decision != "dead_lettered" ||
		!strings.Contains(dr.Events[1].Reason, "trap") || dr.Events[1].Stage != "trapper" {
		t.Fatalf("trap dry-run: %s", mustJSON(dr))
	}
	api.do(t, "PUT", "/admin/pipeline", []byte(`{"transforms":["trapper"]}`)).want(t, 200, "pipeline")
	before := p.metrics(t)
	res, err := p.post([]byte("{\"event\":\"ok\",\"id\":\"a\"}\n{\"event\":\"boom\",\"id\":\"b\",\"trap\":true}\n{not json\n{\"event\":\"ok\",\"id\":\"c\"}\n"), "application/x-ndjson")
	if err != nil || res.code != 200 || res.accepted != 2 || res.dead != 2 {
		t.Fatalf("ingest: %+v %v", res, err)
	}
	after := p.metrics(t)
	delta := func(name string) float64 { return after[name] - before[name] }
	for _, c := range []struct {
		name string
		want float64
	}{
		{`sluice_dlq_events_total{reason="trap"}`, 1},
		{`sluice_dlq_events_total{reason="parse_error"}`, 1},
		{"sluice_sink_records_total", 2},
	} {
		if got := delta(c.name); got != c.want {
			t.Errorf("%s moved by %v, want %v", c.name, got, c.want)
		}
	}
	if delta(`sluice_transform_traps_total{transform="trapper"}`) < 1 {
		t.Errorf("sluice_transform_traps_total{transform=\"trapper\"} did not move")
	}
	dlq := consume(t, broker, "sluice.dlq")
	if len(dlq) != 2 {
		t.Fatalf("DLQ topic has %d records, want 2", len(dlq))
	}
	var reasons []string
	for _, r := range dlq {
		for _, h := range r.Headers {
			if strings.Contains(strings.ToLower(h.Key), "reason") {
				reasons = append(reasons, string(h.Value))
			}
		}
	}
	if len(reasons) != 2 {
		t.Fatalf("DLQ reasons %q", reasons)
	}
	if n := len(consume(t, broker, "events")); n != 2 {
		t.Fatalf("events topic has %d records, want 2", n)
	}
	var info transformJSON
	api.do(t, "GET", "/admin/transforms/trapper", nil).want(t, 200, "get").json(t, &info)
	if info.Traps == 0 {
		t.Fatalf("trapper traps not counted: %s", mustJSON(info))
	}
	// Every documented metric family is exported (gate rejections appear
	// with their first rejection: see TestE2EFloodLatchesAndRecovers).
	for _, name := range metricNames {
		if name == "sluice_gate_rejections_total" {
			continue
		}
		if _, ok := family(after, name); !ok {
			t.Errorf("metric %s is not exported", name)
		}
	}
}
