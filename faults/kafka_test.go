//go:build faults

package faults

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestFaultKafkaOutage makes every produce fail for 10 s in the middle of
// a load run, then lets Kafka recover. Requests during the outage must be
// refused (503/504, never 200 without Kafka having the events); after it,
// sluice must serve again, and every event that got 200 must be in Kafka.
func TestFaultKafkaOutage(t *testing.T) {
	c := newCluster(t)
	p := startSluice(t, "--brokers", c.addr, "--memory-limit", "256MiB")
	l := startLoad(t, p, "--duration", "24s", "--connections", "8", "--rate", "400", "--events-per-request", "100", "--seed", "7001")

	time.Sleep(6 * time.Second)
	outage := c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Err: kerr.NotEnoughReplicas, Count: -1})
	start := time.Now()
	var readyDuring bool
	for time.Since(start) < 10*time.Second {
		code, _, err := get("http://" + p.admin + "/readyz")
		if err == nil && code != 200 {
			readyDuring = true // the sink is reported unhealthy
		}
		time.Sleep(250 * time.Millisecond)
	}
	outage.Remove()
	hits := outage.Hits()
	t.Logf("outage: %d produce requests failed over %v", hits, time.Since(start).Round(time.Millisecond))

	rep, acked := l.wait(t, 90*time.Second)
	p.checkServing(t, 30*time.Second)
	recs := readTopic(t, c.addr, topicEvents)
	tl, lost := matchAcks(acked, recs)
	refused := rep.Status["503"] + rep.Status["504"]
	t.Logf("kafka outage: requests %d, 200 %d, 503 %d, 504 %d, other errors %v; events acked %d, found %d, lost %d, duplicates %d, records in Kafka %d; /readyz not ready during the outage: %v; peak RSS %s",
		rep.Requests.Total, rep.Requests.OK, rep.Status["503"], rep.Status["504"], rep.Errors,
		tl.acked, tl.found, tl.lost, tl.duplicates, tl.records, readyDuring, mib(p.peakRSS()))
	if hits == 0 {
		t.Fatal("the outage failed no produce request: the fault was not exercised")
	}
	if tl.acked == 0 {
		t.Fatal("no event was acknowledged")
	}
	if refused == 0 {
		t.Error("no request was refused (503/504) during a 10 s Kafka outage")
	}
	if tl.lost > 0 {
		t.Errorf("%d acknowledged events are not in Kafka, e.g. %q", tl.lost, lost)
	}
}
