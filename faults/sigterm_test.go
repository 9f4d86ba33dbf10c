//go:build faults

package faults

import (
	"syscall"
	"testing"
	"time"
)

// TestFaultSIGTERMUnderLoad sends SIGTERM while sluice is loaded: it must
// drain what it accepted, exit 0, and every event that got 200 must be in
// Kafka.
func TestFaultSIGTERMUnderLoad(t *testing.T) {
	c := newCluster(t)
	p := startSluice(t, "--brokers", c.addr, "--memory-limit", "256MiB", "--shutdown-timeout", "20s")
	l := startLoad(t, p, "--duration", "9s", "--connections", "16", "--rate", "800", "--events-per-request", "100", "--seed", "7002")

	time.Sleep(5 * time.Second)
	peak := p.peakRSS()
	start := time.Now()
	code := p.signalAndWait(syscall.SIGTERM, 45*time.Second)
	stopped := time.Since(start)

	rep, acked := l.wait(t, 60*time.Second)
	recs := readTopic(t, c.addr, topicEvents)
	tl, lost := matchAcks(acked, recs)
	t.Logf("SIGTERM under load: exit %d after %v; requests %d, 200 %d, statuses %v, errors %v; events acked %d, found %d, lost %d, duplicates %d; peak RSS %s",
		code, stopped.Round(time.Millisecond), rep.Requests.Total, rep.Requests.OK, rep.Status, rep.Errors,
		tl.acked, tl.found, tl.lost, tl.duplicates, mib(peak))
	if code != 0 {
		t.Errorf("exit status %d, want 0", code)
	}
	if tl.acked == 0 {
		t.Fatal("no event was acknowledged before SIGTERM")
	}
	if tl.lost > 0 {
		t.Errorf("%d acknowledged events are not in Kafka, e.g. %q", tl.lost, lost)
	}
}
