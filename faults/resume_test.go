//go:build faults

package faults

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// resumeWithin is how soon after the broker is back the first request
// must be acknowledged again.
const resumeWithin = 5 * time.Second

// TestFaultOutageResume: under load, with the example chain and
// --memory-limit 128MiB, the Kafka broker (a process of its own) is
// SIGKILLed and, 5 s later, restarted from its data folder on the same
// port. The first 200 must come within 5 s of the broker listening again;
// every event acknowledged before, during or after the outage must be in
// Kafka.
func TestFaultOutageResume(t *testing.T) {
	transforms := exampleTransforms(t)
	topics := append([]string{topicEvents, topicDLQ}, routedTopics...)
	b := newBrokerProcess(t, topics...)
	p := startSluice(t, "--brokers", b.addr, "--memory-limit", "128MiB", "--data-dir", t.TempDir(),
		"--transforms", transforms, "--pipeline", strings.Join(exampleChain, ","))
	l := startLoad(t, p, "--duration", "25s", "--connections", "16", "--rate", "600", "--events-per-request", "100",
		"--heartbeat-share", "0", "--seed", fmt.Sprint(time.Now().UnixNano()))

	time.Sleep(6 * time.Second)
	b.kill()
	killed := time.Now()
	time.Sleep(5 * time.Second)
	b.start()
	back := time.Now()
	t.Logf("broker SIGKILLed, back after %v", back.Sub(killed).Round(time.Millisecond))

	// Probe from the moment the broker listens again: one small request
	// every 50 ms (each may wait for its ack), until one is acknowledged.
	var (
		mu      sync.Mutex
		first   time.Duration // from back to the first 200, 0: none yet
		probes  int
		codes   = map[int]int{}
		wg      sync.WaitGroup
		stopped = make(chan struct{})
	)
	go func() {
		defer close(stopped)
		for i := 0; time.Since(back) < 30*time.Second; i++ {
			mu.Lock()
			done := first > 0
			mu.Unlock()
			if done {
				break
			}
			wg.Go(func() {
				body := fmt.Sprintf(`{"id":"probe-%d","event":"click","user_id":"u%d"}`, i, i)
				code, _, err := post(p.URL("/v1/events"), "application/json", nil, []byte(body))
				mu.Lock()
				defer mu.Unlock()
				probes++
				if err != nil {
					codes[-1]++
					return
				}
				codes[code]++
				if code == http.StatusOK && first == 0 {
					first = time.Since(back)
				}
			})
			time.Sleep(50 * time.Millisecond)
		}
	}()
	<-stopped
	wg.Wait()

	t.Logf("outage resume: first 200 %v after the broker was back (%d probes, statuses %v)", first.Round(time.Millisecond), probes, codes)
	rep, acked := l.wait(t, 2*time.Minute)
	checkServingChain(t, p, 30*time.Second)
	var recs [][]kafkaRecord
	for _, topic := range append([]string{topicEvents}, routedTopics...) {
		recs = append(recs, readTopic(t, b.addr, topic))
	}
	// An acknowledged event may also have been dead-lettered (with a
	// reason): delivered, not lost, but reported.
	dlq := readTopic(t, b.addr, topicDLQ)
	dead := map[string]int{}
	for _, r := range dlq {
		if _, ok := acked[r.id]; ok {
			dead[r.stage+": "+r.reason]++
		}
	}
	tl, lost := matchAcks(acked, append(recs, dlq)...)
	b2, _ := p.adminBudget()
	var pauses uint64
	if b2.Pressure != nil {
		pauses = b2.Pressure.Pauses
	}
	t.Logf("outage resume: load: requests %d, 200 %d, statuses %v; events acked %d, found %d (dead-lettered %v), lost %d, duplicates %d; latch closed %d times; peak RSS %s",
		rep.Requests.Total, rep.Requests.OK, rep.Status,
		tl.acked, tl.found, dead, tl.lost, tl.duplicates, pauses, mib(p.peakRSS()))
	if first == 0 {
		t.Errorf("no request was acknowledged within 30 s of the broker being back")
	} else if first > resumeWithin {
		t.Errorf("first 200 %v after the broker was back, want ≤ %v", first.Round(time.Millisecond), resumeWithin)
	}
	if tl.acked == 0 {
		t.Fatal("no event was acknowledged")
	}
	if tl.lost > 0 {
		t.Errorf("%d acknowledged events are not in Kafka, e.g. %q", tl.lost, lost)
	}
}
