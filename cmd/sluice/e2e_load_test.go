package main

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/e2e"
	"github.com/twmb/franz-go/pkg/kfake"
)

// TestFloodBoundedMemory floods sluice, limited to 128 MiB, with many times
// that in 1 MiB bodies from concurrent clients: it stays alive, its peak
// RSS stays under twice the limit, it answers 503 quickly while latched,
// and Kafka holds at least every event it acknowledged.
func TestFloodBoundedMemory(t *testing.T) {
	const limit = 128 << 20
	k := newKafka(t, kfake.BlackholeProduce())
	brokers := k.ListenAddrs()
	p := startSluice(t, "--brokers", brokers[0], "--memory-limit", "128MiB", "--ack-timeout", "10s", "--log-level", "warn")

	var body bytes.Buffer
	for i := 0; body.Len() < 1<<20-400; i++ {
		body.WriteString(analyticsEvent(i))
		body.WriteByte('\n')
	}
	events := int64(bytes.Count(body.Bytes(), []byte{'\n'}))

	const workers, duration = 16, 8 * time.Second
	var (
		offered, accepted atomic.Int64
		mu                sync.Mutex
		codes             = map[int]int{}
		lat503            []time.Duration
		transportErrs     int
	)
	deadline := time.Now().Add(duration)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				start := time.Now()
				offered.Add(int64(body.Len()))
				r, err := doErr("POST", p.URL("/v1/events"), body.Bytes(), "Content-Type", "application/x-ndjson")
				d := time.Since(start)
				mu.Lock()
				switch {
				case err != nil:
					transportErrs++
				case r.code == 200:
					acc, _, _ := counts(t, r)
					accepted.Add(int64(acc))
				case r.code == 503:
					lat503 = append(lat503, d)
				}
				if err == nil {
					codes[r.code]++
				}
				mu.Unlock()
				if err != nil || r.code == 503 {
					time.Sleep(5 * time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
	hwm := p.vmHWM(t)
	t.Logf("offered %d MiB (%.1f× the limit) in %v; statuses %v; transport errors %d; accepted %d events; peak RSS %d MiB",
		offered.Load()>>20, float64(offered.Load())/limit, duration, codes, transportErrs, accepted.Load(), hwm>>20)

	if offered.Load() < 4*limit {
		t.Fatalf("offered only %d MiB: not a flood", offered.Load()>>20)
	}
	if hwm >= 2*limit {
		t.Fatalf("peak RSS %d MiB ≥ twice the %d MiB limit", hwm>>20, limit>>20)
	}
	if codes[200] == 0 || codes[503] == 0 {
		t.Fatalf("want both 200s and 503s under a flood, got %v", codes)
	}
	for code := range codes {
		if code != 200 && code != 503 {
			t.Errorf("unexpected status %d under the flood", code)
		}
	}
	slices.Sort(lat503)
	if p50 := lat503[len(lat503)/2]; p50 > 500*time.Millisecond {
		t.Errorf("median 503 took %v: rejections are not quick", p50)
	}
	if p.metric(t, `sluice_gate_rejections_total{source="go_heap"}`)+p.metric(t, `sluice_gate_rejections_total{source="memory_guard"}`)+
		p.metric(t, `sluice_gate_rejections_total{source="queue"}`) == 0 {
		t.Error("no gate rejection is counted by source")
	}
	// Still alive and serving.
	waitFor(t, 20*time.Second, "a 200 after the flood", func() bool {
		r, err := doErr("POST", p.URL("/v1/events"), []byte(analyticsEvent(1)))
		if err == nil && r.code == 200 {
			accepted.Add(1)
			return true
		}
		return false
	})
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	inKafka := e2e.EndOffsets(t, brokers, "events")["events"]
	if inKafka < accepted.Load() {
		t.Fatalf("Kafka holds %d events, fewer than the %d acknowledged", inKafka, accepted.Load())
	}
	if inKafka > offered.Load()/int64(body.Len())*events+1 {
		t.Fatalf("Kafka holds %d events, more than were sent", inKafka)
	}
}

// TestSigtermUnderLoad sends SIGTERM while clients are posting: sluice
// stops accepting, answers every waiting client, exits 0, and every event
// it acknowledged is in Kafka.
func TestSigtermUnderLoad(t *testing.T) {
	k := newKafka(t)
	brokers := k.ListenAddrs()
	p := startSluice(t, "--brokers", brokers[0], "--log-level", "warn")

	var mu sync.Mutex
	acked := map[string]bool{}
	codes := map[int]int{}
	var seq atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 6 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				n := seq.Add(1)
				var b strings.Builder
				ids := make([]string, 50)
				for i := range ids {
					ids[i] = fmt.Sprintf("s%d-%d", n, i)
					fmt.Fprintf(&b, `{"id":%q,"event":"click","pad":"%s"}`+"\n", ids[i], strings.Repeat("x", 100))
				}
				r, err := doErr("POST", p.URL("/v1/events"), []byte(b.String()))
				mu.Lock()
				if err != nil {
					codes[-1]++
				} else {
					codes[r.code]++
				}
				if err == nil && r.code == 200 {
					for _, id := range ids {
						acked[id] = true
					}
				}
				mu.Unlock()
				if err != nil {
					time.Sleep(10 * time.Millisecond)
				}
			}
		})
	}
	time.Sleep(1500 * time.Millisecond)
	start := time.Now()
	code := p.stop(t)
	took := time.Since(start)
	close(stop)
	wg.Wait()
	if code != 0 {
		t.Fatalf("exit code %d after SIGTERM", code)
	}
	mu.Lock()
	defer mu.Unlock()
	t.Logf("exited in %v; statuses %v (-1: connection refused after exit); %d events acknowledged", took, codes, len(acked))
	if codes[200] == 0 {
		t.Fatal("no request succeeded before SIGTERM")
	}
	for c := range codes {
		if c != 200 && c != 503 && c != -1 {
			t.Errorf("unexpected status %d around SIGTERM", c)
		}
	}
	lostAcks(t, brokers, acked)
}
