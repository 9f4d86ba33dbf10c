package main

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/e2e"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// waitFor polls cond every 20ms until it holds or d passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestAckTimeoutAndQueueFull stalls Kafka's produce path: a request whose
// ack does not come within --ack-timeout gets 504, and once the queue is
// full the gate answers 503 with Retry-After, naming the queue.
func TestAckTimeoutAndQueueFull(t *testing.T) {
	k := newKafka(t)
	var stall atomic.Bool
	stall.Store(true)
	k.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		k.KeepControl()
		if stall.Load() {
			k.SleepControl(func() { time.Sleep(1500 * time.Millisecond) })
		}
		return nil, nil, false
	})
	// One batch in flight (--driver-depth 1), so the second request waits
	// in the queue while the first is in the stalled sink; with a deeper
	// driver the second would be taken for processing and a third queued.
	p := startSluice(t, "--brokers", k.ListenAddrs()[0], "--ack-timeout", "400ms",
		"--max-body", "64KiB", "--queue-bytes", "64KiB", "--driver-depth", "1")
	body := func(tag string) []byte {
		var b strings.Builder
		for i := 0; b.Len() < 56<<10; i++ {
			fmt.Fprintf(&b, `{"id":"%s-%d","pad":"%s"}`+"\n", tag, i, strings.Repeat("p", 200))
		}
		return []byte(b.String())
	}
	results := make(chan response, 2)
	go func() { results <- do(t, "POST", p.URL("/v1/events"), body("a")) }()
	// A is in the (stalled) sink: leased but no longer queued.
	waitFor(t, 5*time.Second, "request A in the sink", func() bool {
		return p.metric(t, "sluice_memory_inflight_bytes") > 0 && p.metric(t, "sluice_queue_bytes") == 0
	})
	go func() { results <- do(t, "POST", p.URL("/v1/events"), body("b")) }()
	waitFor(t, 5*time.Second, "request B queued", func() bool { return p.metric(t, "sluice_queue_bytes") > 0 })
	start := time.Now()
	r := do(t, "POST", p.URL("/v1/events"), body("c"))
	if r.code != 503 {
		t.Fatalf("request C with a full queue: %d %s", r.code, r.body)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("503 took %v", d)
	}
	if msg := jsonError(t, r); !strings.Contains(msg, "queue") {
		t.Fatalf("503 does not name the queue: %q", msg)
	}
	if r.header.Get("Retry-After") == "" {
		t.Fatal("503 without Retry-After")
	}
	for range 2 {
		r := <-results
		if r.code != 504 && r.code != 503 {
			t.Fatalf("stalled request: %d %s", r.code, r.body)
		}
		jsonError(t, r)
	}
	if p.metric(t, `sluice_ingest_requests_total{code="504"}`) < 1 {
		t.Fatal("no 504 counted")
	}
	if p.metric(t, `sluice_gate_rejections_total{source="queue"}`) < 1 {
		t.Fatal("no queue rejection counted")
	}
	// Kafka answers again: traffic flows.
	stall.Store(false)
	waitFor(t, 20*time.Second, "a 200 after the stall", func() bool {
		r, err := doErr("POST", p.URL("/v1/events"), []byte(`{"id":"after"}`))
		return err == nil && r.code == 200
	})
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit code %d", code)
	}
}

// TestKafkaOutage stops the Kafka cluster under sluice and starts it again
// on the same port: clients get 503 and /readyz is not ready during the
// outage, traffic flows again after it without a restart, and every event
// that got 200 is in Kafka.
func TestKafkaOutage(t *testing.T) {
	port := e2e.FreePort(t)
	dir := t.TempDir()
	start := func() *kfake.Cluster {
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(port), kfake.DataDir(dir),
			kfake.SeedTopics(3, "events", "sluice.dlq"))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	k := start()
	brokers := k.ListenAddrs()
	p := startSluice(t, "--brokers", brokers[0], "--ack-timeout", "3s")

	var mu sync.Mutex
	acked := map[string]bool{}
	var seq atomic.Int64
	send := func() response {
		n := seq.Add(1)
		var ids []string
		var b strings.Builder
		for i := range 20 {
			id := fmt.Sprintf("r%d-%d", n, i)
			ids = append(ids, id)
			fmt.Fprintf(&b, `{"id":%q,"event":"click"}`+"\n", id)
		}
		r, err := doErr("POST", p.URL("/v1/events"), []byte(b.String()))
		if err != nil {
			return response{code: -1, body: err.Error()}
		}
		if r.code == 200 {
			mu.Lock()
			for _, id := range ids {
				acked[id] = true
			}
			mu.Unlock()
		}
		return r
	}
	for range 5 {
		if r := send(); r.code != 200 {
			t.Fatalf("before the outage: %d %s", r.code, r.body)
		}
	}
	// Background load through the whole outage.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	codes := map[int]int{}
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				r := send()
				mu.Lock()
				codes[r.code]++
				mu.Unlock()
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
	time.Sleep(200 * time.Millisecond)
	k.Close()
	var r503 response
	waitFor(t, 15*time.Second, "503 while Kafka is down", func() bool {
		r := send()
		if r.code == 503 {
			r503 = r
			return true
		}
		return false
	})
	if msg := jsonError(t, r503); r503.header.Get("Retry-After") == "" || !strings.Contains(strings.ToLower(msg), "sink") {
		t.Fatalf("503 during the outage: %q, Retry-After %q", msg, r503.header.Get("Retry-After"))
	}
	if r := do(t, "GET", p.URL("/readyz"), nil); r.code != 503 {
		t.Fatalf("/readyz during the outage: %d %s", r.code, r.body)
	}
	if r := do(t, "GET", p.AdminURL("/readyz"), nil); r.code != 503 {
		t.Fatalf("admin /readyz during the outage: %d %s", r.code, r.body)
	}
	if p.metric(t, "sluice_sink_healthy") != 0 || p.metric(t, "sluice_gate_latched") != 1 {
		t.Fatal("metrics do not show the outage")
	}
	time.Sleep(500 * time.Millisecond)
	k = start()
	defer k.Close()
	waitFor(t, 30*time.Second, "/readyz after recovery", func() bool {
		r, err := doErr("GET", p.URL("/readyz"), nil)
		return err == nil && r.code == 200
	})
	waitFor(t, 15*time.Second, "a 200 after recovery", func() bool { return send().code == 200 })
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	mu.Lock()
	defer mu.Unlock()
	t.Logf("statuses during the run: %v; %d events acknowledged", codes, len(acked))
	for code := range codes {
		if code != 200 && code != 503 && code != 504 {
			t.Errorf("unexpected status %d during the outage", code)
		}
	}
	lostAcks(t, brokers, acked)
}
