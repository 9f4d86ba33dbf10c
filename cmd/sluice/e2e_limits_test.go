package main

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// TestMaxEventsStatus: past --max-events a request is 413 with a JSON
// reason naming the cap and what to do, and nothing of it reaches Kafka;
// a request at the cap is 200.
func TestMaxEventsStatus(t *testing.T) {
	k := newKafka(t)
	brokers := k.ListenAddrs()
	p := startSluice(t, "--brokers", brokers[0], "--max-events", "5")
	body := func(prefix string, n int, extra string) []byte {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, `{"id":"%s%d"}`+"\n", prefix, i)
		}
		b.WriteString(extra)
		return []byte(b.String())
	}
	for _, c := range []struct {
		name string
		body []byte
		ct   string
	}{
		{"six records", body("over", 6, ""), "application/x-ndjson"},
		{"five records and a bad line", body("bad", 5, "not json\n"), "application/x-ndjson"},
		{"an array of six", []byte(`[{"id":"a1"},{"id":"a2"},{"id":"a3"},{"id":"a4"},{"id":"a5"},{"id":"a6"}]`), "application/json"},
	} {
		r := do(t, "POST", p.URL("/v1/events"), c.body, "Content-Type", c.ct)
		if r.code != 413 {
			t.Fatalf("%s: status %d %s, want 413", c.name, r.code, r.body)
		}
		if msg := jsonError(t, r); !strings.Contains(msg, "more than 5 (--max-events)") || !strings.Contains(msg, "smaller requests") {
			t.Fatalf("%s: message %q", c.name, msg)
		}
	}
	r := do(t, "POST", p.URL("/v1/events"), body("ok", 5, "\n\n"), "Content-Type", "application/x-ndjson")
	if r.code != 200 {
		t.Fatalf("five records: status %d %s", r.code, r.body)
	}
	if acc, _, _ := counts(t, r); acc != 5 {
		t.Fatalf("five records: %d accepted", acc)
	}
	var got []string
	for _, rec := range consume(t, brokers, "events") {
		got = append(got, string(rec.Value))
	}
	if len(got) != 5 || !strings.HasPrefix(got[0], `{"id":"ok`) {
		t.Fatalf("events topic: %q; want only the five accepted", got)
	}
	if n := p.metric(t, `sluice_ingest_requests_total{code="413"}`); n != 3 {
		t.Fatalf("413s counted: %v", n)
	}
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit code %d", code)
	}
}

// TestReadLimitStatus: with one body-read slot and a 1 ms queue timeout,
// concurrent large requests collide: the losers get 503 with Retry-After
// and a message naming --max-concurrent-reads, counted in
// sluice_ingest_read_limit_rejections_total; every other request is 200.
func TestReadLimitStatus(t *testing.T) {
	p := startSluice(t, "--sink", "discard", "--max-concurrent-reads", "1", "--read-queue-timeout", "1ms")
	var b bytes.Buffer
	for i := 0; b.Len() < 3<<20; i++ {
		fmt.Fprintf(&b, `{"id":"e%d","event":"page_view","n":%d}`+"\n", i, i)
	}
	body := b.Bytes()
	var mu sync.Mutex
	codes := map[int]int{}
	var first503 *response
	var errs []error
	for round := 0; round < 20 && codes[503] == 0; round++ {
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				r, err := doErr("POST", p.URL("/v1/events"), body, "Content-Type", "application/x-ndjson")
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, err)
					return
				}
				codes[r.code]++
				if r.code == 503 && first503 == nil {
					first503 = &r
				}
			})
		}
		wg.Wait()
	}
	if len(errs) > 0 {
		t.Fatalf("%d requests failed (status codes %v): %v", len(errs), codes, errs[0])
	}
	if codes[503] == 0 || codes[200] == 0 || codes[200]+codes[503] != sumCodes(codes) {
		t.Fatalf("status codes %v: want 200s and 503s only, some of each", codes)
	}
	msg, retryAfter := jsonError(t, *first503), first503.header.Get("Retry-After")
	if !strings.Contains(msg, "--max-concurrent-reads") || !strings.Contains(msg, "1 request bodies") {
		t.Fatalf("503 message %q", msg)
	}
	if ra, err := strconv.Atoi(retryAfter); err != nil || ra < 1 {
		t.Fatalf("Retry-After %q", retryAfter)
	}
	if n := p.metric(t, "sluice_ingest_read_limit_rejections_total"); int(n) != codes[503] {
		t.Fatalf("sluice_ingest_read_limit_rejections_total = %v, %d 503s answered", n, codes[503])
	}
	t.Logf("status codes %v", codes)
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit code %d", code)
	}
}

func sumCodes(m map[int]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
