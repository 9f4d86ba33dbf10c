//go:build faults

package faults

import (
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/e2e"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// outageWindow is how long Kafka is unavailable in the middle of the load.
const outageWindow = 10 * time.Second

// TestFaultKafkaOutage makes Kafka unavailable for 10 s in the middle of a
// load run, then lets it recover, in two ways: every produce request fails
// (the broker answers NOT_ENOUGH_REPLICAS), or the broker process is gone
// (closed, its port refusing connections, then restarted on the same port
// from its data directory). Requests during the outage must be refused
// (503/504, never 200 without Kafka having the events); after it, sluice
// must serve again, and every event that got 200 must be in Kafka.
func TestFaultKafkaOutage(t *testing.T) {
	t.Run("produce-fails", func(t *testing.T) {
		c := newCluster(t)
		var outage *kfake.FaultHandle
		runOutage(t, c.addr, func() {
			outage = c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Err: kerr.NotEnoughReplicas, Count: -1})
		}, func() {
			outage.Remove()
			t.Logf("produce requests failed during the outage: %d", outage.Hits())
			if outage.Hits() == 0 {
				t.Error("the outage failed no produce request: the fault was not exercised")
			}
		}, func() string { return c.addr }, false)
	})
	t.Run("broker-down", func(t *testing.T) {
		rc := newRestartableCluster(t)
		runOutage(t, rc.addr, rc.stop, func() { rc.start(t) }, func() string { return rc.addr }, true)
	})
}

// runOutage starts sluice against brokers, loads it for 24 s, calls down
// after 6 s and up 10 s later, then checks the acknowledged events against
// the topic read from addr(). With wantNotReady, /readyz must report the
// outage: when the broker is gone the sink's probe fails; when it is up but
// refuses writes the probe succeeds and readiness may only flicker, so it
// is reported, not required.
func runOutage(t *testing.T, brokers string, down, up func(), addr func() string, wantNotReady bool) {
	p := startSluice(t, "--brokers", brokers, "--memory-limit", "256MiB")
	l := startLoad(t, p, "--duration", "24s", "--connections", "8", "--rate", "400", "--events-per-request", "100", "--seed", "7001")

	time.Sleep(6 * time.Second)
	down()
	start := time.Now()
	var notReady bool
	for time.Since(start) < outageWindow { // /readyz, sampled every 250 ms
		code, _, err := get("http://" + p.admin + "/readyz")
		if err == nil && code != 200 {
			notReady = true // the sink is reported unhealthy
		}
		time.Sleep(250 * time.Millisecond)
	}
	up()
	back := time.Now()
	t.Logf("Kafka was unavailable for %v", back.Sub(start).Round(time.Millisecond))
	// How long until a new request is acknowledged again.
	p.checkServing(t, 30*time.Second)
	t.Logf("first 200 after Kafka came back: %v", time.Since(back).Round(time.Millisecond))

	rep, acked := l.wait(t, 90*time.Second)
	p.checkServing(t, 30*time.Second)
	recs := readTopic(t, addr(), topicEvents)
	tl, lost := matchAcks(acked, recs)
	refused := rep.Status["503"] + rep.Status["504"]
	t.Logf("kafka outage: requests %d, 200 %d, 503 %d, 504 %d, other errors %v; events acked %d, found %d, lost %d, duplicates %d, records in Kafka %d; /readyz not ready during the outage: %v; peak RSS %s",
		rep.Requests.Total, rep.Requests.OK, rep.Status["503"], rep.Status["504"], rep.Errors,
		tl.acked, tl.found, tl.lost, tl.duplicates, tl.records, notReady, mib(p.peakRSS()))
	if tl.acked == 0 {
		t.Fatal("no event was acknowledged")
	}
	if refused == 0 {
		t.Error("no request was refused (503/504) during a 10 s Kafka outage")
	}
	if wantNotReady && !notReady {
		t.Error("/readyz stayed ready during a 10 s Kafka outage")
	}
	if tl.lost > 0 {
		t.Errorf("%d acknowledged events are not in Kafka, e.g. %q", tl.lost, lost)
	}
}

// restartableCluster is a kfake cluster on a fixed port with a data
// directory, so that it can be closed (the broker is gone) and started
// again with its data.
type restartableCluster struct {
	mu   sync.Mutex
	c    *kfake.Cluster
	port int
	dir  string
	addr string
}

func newRestartableCluster(t *testing.T) *restartableCluster {
	rc := &restartableCluster{port: e2e.FreePort(t), dir: t.TempDir()}
	rc.start(t)
	t.Cleanup(rc.stop)
	return rc
}

func (rc *restartableCluster) start(t *testing.T) {
	t.Helper()
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var err error
	for range 50 { // the port may linger for a moment after Close
		rc.c, err = kfake.NewCluster(kfake.Ports(rc.port), kfake.DataDir(rc.dir), kfake.SeedTopics(3, topicEvents, topicDLQ))
		if err == nil {
			rc.addr = rc.c.ListenAddrs()[0]
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("restart kfake on port %d: %v", rc.port, err)
}

func (rc *restartableCluster) stop() {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.c != nil {
		rc.c.Close()
		rc.c = nil
	}
}
