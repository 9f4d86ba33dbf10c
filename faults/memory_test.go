//go:build faults

package faults

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/e2e"
)

// exampleChain is the example pipeline, and routedTopics the topics its
// route transform writes the built-in load events to ("events.<event>";
// heartbeats are dropped by filter, and the runs send none).
var (
	exampleChain = []string{"filter", "redact", "route", "enrich"}
	routedTopics = []string{"events.page_view", "events.click", "events.purchase", "events.signup"}
)

// exampleTransforms builds the example guests into one folder (for
// --transforms) and returns it.
func exampleTransforms(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "transforms")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, path := range e2e.GuestFiles(t, e2e.Example(exampleChain[0]), e2e.Example(exampleChain[1]), e2e.Example(exampleChain[2]), e2e.Example(exampleChain[3])) {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, exampleChain[i]+".wasm"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// checkServingChain is checkServing for a gateway running the example
// chain: its probe is an event route sends to a seeded topic.
func checkServingChain(t testing.TB, p *proc, d time.Duration) {
	t.Helper()
	if !p.Alive() {
		t.Fatalf("sluice is not running: %v", p.ExitErr())
	}
	deadline := time.Now().Add(d)
	var last string
	for time.Now().Before(deadline) {
		code, body, err := post(p.URL("/v1/events"), "application/json", nil, []byte(`{"id":"alive-check","event":"click","user_id":"u0"}`))
		if err == nil && code == http.StatusOK {
			return
		}
		last = fmt.Sprintf("%d %s %v", code, body, err)
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("sluice did not serve a good request within %v: last %s", d, last)
}

// closedLoopRun is the outcome of one closed-loop run at one memory limit.
type closedLoopRun struct {
	limit     string
	requests  uint64
	ok        uint64
	perSecond float64 // events acknowledged per second
	peakRSS   int64   // VmHWM over the whole process life (start-up included)
	startRSS  int64   // VmHWM when the gateway was ready, before any traffic
	acked     int
	lost      int
	status    map[string]uint64
}

func (r closedLoopRun) okShare() float64 {
	if r.requests == 0 {
		return 0
	}
	return float64(r.ok) / float64(r.requests)
}

func (r closedLoopRun) String() string {
	return fmt.Sprintf("--memory-limit %s: requests %d, 200 %d (%.1f %%), statuses %v, goodput %.0f events/s, peak RSS %s (%s at ready), events acked %d, lost %d",
		r.limit, r.requests, r.ok, 100*r.okShare(), r.status, r.perSecond, mib(r.peakRSS), mib(r.startRSS), r.acked, r.lost)
}

// runClosedLoop starts sluice with the example chain from a cold data
// folder at limit, drives 32 closed-loop connections of 100-event requests
// for 10 s, and checks the acknowledged events against Kafka (a cluster of
// its own, so the read-back is of this run alone).
func runClosedLoop(t *testing.T, transforms, limit string) closedLoopRun {
	t.Helper()
	c := newCluster(t, routedTopics...)
	p := startSluice(t, "--brokers", c.addr, "--memory-limit", limit, "--data-dir", t.TempDir(),
		"--transforms", transforms, "--pipeline", strings.Join(exampleChain, ","))
	r := closedLoopRun{limit: limit, startRSS: p.peakRSS()}
	l := startLoad(t, p, "--connections", "32", "--events-per-request", "100", "--duration", "10s",
		"--heartbeat-share", "0", "--seed", fmt.Sprint(time.Now().UnixNano()))
	rep, acked := l.wait(t, 2*time.Minute)
	r.peakRSS = p.peakRSS()
	r.requests, r.ok, r.perSecond, r.status = rep.Requests.Total, rep.Requests.OK, rep.Events.PerSecond, rep.Status
	checkServingChain(t, p, 30*time.Second)
	var recs [][]kafkaRecord
	for _, topic := range append([]string{topicEvents}, routedTopics...) {
		recs = append(recs, readTopic(t, c.addr, topic))
	}
	tl, lost := matchAcks(acked, recs...)
	r.acked, r.lost = tl.acked, tl.lost
	if tl.lost > 0 {
		t.Errorf("%s: %d acknowledged events are not in Kafka, e.g. %q", limit, tl.lost, lost)
	}
	if code := p.signalAndWait(os.Interrupt, 30*time.Second); code != 0 {
		t.Errorf("%s: exit status %d after SIGINT", limit, code)
	}
	return r
}

// TestFaultMemoryLimit128 is the memory target of the example chain:
// with --memory-limit 128MiB, from a cold data folder (every transform
// compiled at start), 32 closed-loop connections of 100-event requests for
// 10 s must keep the peak RSS (start-up included) at or under 128 MiB, get
// 200 for at least 95 % of the requests, and deliver a fair share of the
// events per second of the same run at 1 GiB. Nothing acknowledged may be
// lost. The goodput target (≥ 60 % of 1 GiB's) is a figure reported in
// BENCHMARKS.md (77–145 % measured); the test fails below 40 %, well above
// what the defect it guards against gave (14 %, with 0.6 % of requests
// answered 200) and below what a noisy or differently sized machine can
// take from one of the two runs.
func TestFaultMemoryLimit128(t *testing.T) {
	const limit = 128 << 20
	transforms := exampleTransforms(t)
	wide := runClosedLoop(t, transforms, "1GiB")
	t.Logf("reference: %v", wide)
	tight := runClosedLoop(t, transforms, "128MiB")
	t.Logf("target:    %v", tight)
	ratio := 0.0
	if wide.perSecond > 0 {
		ratio = tight.perSecond / wide.perSecond
	}
	t.Logf("128 MiB vs 1 GiB: peak RSS %s (limit %s), 200 share %.1f %%, goodput %.0f vs %.0f events/s = %.0f %%",
		mib(tight.peakRSS), mib(limit), 100*tight.okShare(), tight.perSecond, wide.perSecond, 100*ratio)
	if wide.ok == 0 {
		t.Fatal("the 1 GiB reference run got no 200")
	}
	if tight.peakRSS <= 0 {
		t.Fatal("no peak RSS reading")
	}
	if tight.peakRSS > limit {
		t.Errorf("peak RSS %s over the %s limit (%s when ready, before traffic)", mib(tight.peakRSS), mib(limit), mib(tight.startRSS))
	}
	if s := tight.okShare(); s < 0.95 {
		t.Errorf("%.1f %% of the requests got 200 at 128 MiB, want ≥ 95 %%", 100*s)
	}
	if ratio < 0.4 {
		t.Errorf("goodput at 128 MiB is %.0f %% of 1 GiB's (%.0f vs %.0f events/s), want ≥ 40 %% (target 60 %%)", 100*ratio, tight.perSecond, wide.perSecond)
	}
}

// TestFaultMemoryBaselineRefused: a limit the example chain's fixed
// memory (runtime, compiled code, instance pools) leaves less than a
// quarter of is refused at start, with the numbers and what to change;
// the process exits non-zero and never listens.
func TestFaultMemoryBaselineRefused(t *testing.T) {
	transforms := exampleTransforms(t)
	ready := filepath.Join(t.TempDir(), "ready")
	cmd := exec.Command(e2e.Sluice(t), "run", "--sink", "discard", "--http", "127.0.0.1:0", "--admin", "127.0.0.1:0",
		"--ready-file", ready, "--memory-limit", "48MiB", "--data-dir", t.TempDir(),
		"--transforms", transforms, "--pipeline", strings.Join(exampleChain, ","))
	out := &e2e.Buffer{Limit: 1 << 20}
	cmd.Stdout, cmd.Stderr = out, out
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(2 * time.Minute):
		_ = cmd.Process.Kill()
		t.Fatalf("sluice still running after 2 minutes at 48MiB:\n%s", out.Tail(4000))
	}
	log := out.String()
	t.Logf("exit after %v: %v\n%s", time.Since(start).Round(time.Millisecond), err, out.Tail(2000))
	if err == nil {
		t.Fatal("sluice started with a baseline over 75 % of --memory-limit")
	}
	if _, serr := os.Stat(ready); serr == nil {
		t.Error("sluice wrote its ready file (listened) before refusing")
	}
	for _, want := range []string{"memory baseline", "compiled code", "instance pools", "48.0 MiB memory limit", "at least 25%", "--memory-limit"} {
		if !strings.Contains(log, want) {
			t.Errorf("the refusal does not say %q:\n%s", want, out.Tail(2000))
		}
	}
}
