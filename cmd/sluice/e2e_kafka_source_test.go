package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/internal/e2e"
)

// sourceKafka starts a broker with the input topic in (partitions
// partitions), events and the DLQ, auto-create off.
func sourceKafka(t *testing.T, partitions int32) string {
	t.Helper()
	c := e2e.Kafka(t, e2e.KafkaConfig{Topics: []string{"events", "sluice.dlq"}, Opts: []kfake.Opt{kfake.SeedTopics(partitions, "in")}})
	return c.ListenAddrs()[0]
}

// sourceConfig writes a config file with one source (group g, topics in)
// and returns its path.
func sourceConfig(t *testing.T, group string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "sluice.yaml")
	yml := fmt.Sprintf("sources:\n  - name: ingest-in\n    topics: [in]\n    group: %s\n    session_timeout: 6s\n", group)
	if err := os.WriteFile(p, []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// producer writes records {"id":"rN"} to topic in, every tenth one not
// JSON (bad), keyed by id, in bursts until stopped or n records.
type producer struct {
	cl       *kgo.Client
	n        int
	produced atomic.Int64
	bad      atomic.Int64
	stop     chan struct{}
	done     chan struct{}
}

func startProducer(t *testing.T, broker string, n, burst int, every time.Duration) *producer {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.DefaultProduceTopic("in"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	p := &producer{cl: cl, n: n, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for i := 0; i < n; {
			var recs []*kgo.Record
			for j := 0; j < burst && i < n; j, i = j+1, i+1 {
				v := fmt.Sprintf(`{"id":"r%d"}`, i)
				if i%10 == 9 {
					v = fmt.Sprintf(`not json r%d`, i)
					p.bad.Add(1)
				}
				recs = append(recs, &kgo.Record{Key: fmt.Appendf(nil, "r%d", i), Value: []byte(v)})
			}
			if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
				t.Errorf("produce: %v", err)
				return
			}
			p.produced.Add(int64(len(recs)))
			select {
			case <-p.stop:
				return
			case <-time.After(every):
			}
		}
	}()
	return p
}

// wait polls cond until it holds or the timeout passes.
func wait(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkOutput checks that every good input record is in events and every
// bad one in the DLQ with its reason, and returns the duplicates.
func checkOutput(t *testing.T, broker string, n int) (dupEvents, dupDead int) {
	t.Helper()
	seen := map[string]int{}
	evs := consume(t, []string{broker}, "events")
	for _, r := range evs {
		seen[string(r.Value)]++
	}
	t.Logf("events: %d records, %d distinct", len(evs), len(seen))
	dead := map[string]int{}
	for _, r := range consume(t, []string{broker}, "sluice.dlq") {
		if reason := e2e.Header(r, "sluice-reason"); !strings.HasPrefix(reason, "parse error: record in/") || !strings.Contains(reason, "is not valid JSON") {
			t.Fatalf("dead letter %q has reason %q", r.Value, reason)
		}
		dead[string(r.Value)]++
	}
	for i := range n {
		if i%10 == 9 {
			v := fmt.Sprintf("not json r%d", i)
			if dead[v] == 0 {
				t.Fatalf("bad record %d is not in the DLQ", i)
			}
			dupDead += dead[v] - 1
			continue
		}
		v := fmt.Sprintf(`{"id":"r%d"}`, i)
		if seen[v] == 0 {
			t.Fatalf("record %d is not in events (%d distinct there)", i, len(seen))
		}
		dupEvents += seen[v] - 1
	}
	return dupEvents, dupDead
}

// committedAtEnd reports whether group's committed offsets are at the end
// of every partition of in.
func committedAtEnd(t *testing.T, broker, group string) bool {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ends, err := adm.ListEndOffsets(ctx, "in")
	if err != nil {
		t.Fatal(err)
	}
	committed, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return false
	}
	ok := true
	ends.Each(func(e kadm.ListedOffset) {
		c, found := committed.Lookup("in", e.Partition)
		if !found || c.At != e.Offset {
			ok = false
		}
	})
	return ok
}

// TestKafkaSourceCrashAndRestart consumes a topic while it is written,
// kills sluice mid-way with SIGKILL, restarts it, and checks that every
// input record is in the output (duplicates counted, not hidden), bad
// records are in the DLQ with their position, and the group's offsets end
// at the log end. HTTP ingest keeps working beside the source.
func TestKafkaSourceCrashAndRestart(t *testing.T) {
	broker := sourceKafka(t, 3)
	cfg := sourceConfig(t, "crash")
	// A backlog, then a stream: the kill lands while sluice works through
	// the backlog, with blocks in flight.
	const n = 40000
	prod := startProducer(t, broker, n, 100, 20*time.Millisecond) // about 9 s of records
	wait(t, 60*time.Second, "a backlog", func() bool { return prod.produced.Load() >= n/4 })
	p := e2e.Start(t, e2e.Options{KillAtCleanup: true}, "--brokers", broker, "--config", cfg)
	for deadline := time.Now().Add(60 * time.Second); e2e.EndOffsets(t, []string{broker}, "events")["events"] < n/20; time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no records in events within 60s")
		}
	}
	if prod.produced.Load() >= n {
		t.Fatalf("the producer finished before the crash: the test would not crash mid-way")
	}
	p.Kill() // SIGKILL: no drain, no commit
	t.Logf("killed after %d records produced, %d in events", prod.produced.Load(), e2e.EndOffsets(t, []string{broker}, "events")["events"])

	p = e2e.Start(t, e2e.Options{KillAtCleanup: true}, "--brokers", broker, "--config", cfg)
	// HTTP ingest beside the source.
	if r := do(t, "POST", p.URL("/v1/events"), []byte(`{"id":"via-http"}`)); r.code != 200 {
		t.Fatalf("HTTP ingest beside the source: %d %s", r.code, r.body)
	}
	<-prod.done
	wait(t, 90*time.Second, "the group's commits at the log end", func() bool { return committedAtEnd(t, broker, "crash") })
	dupEvents, dupDead := checkOutput(t, broker, n)
	t.Logf("%d records (%d bad): %d duplicated in events, %d in the DLQ after the crash", n, prod.bad.Load(), dupEvents, dupDead)
	if code := p.Signal(t, syscall.SIGTERM, 60*time.Second); code != 0 {
		t.Fatalf("exit code %d", code)
	}
}

// TestKafkaSourceRebalance runs two sluices in one group: the second joins
// while records flow (a rebalance in the middle); every record is
// processed and the committed offsets end at the log end.
func TestKafkaSourceRebalance(t *testing.T) {
	broker := sourceKafka(t, 6)
	cfg := sourceConfig(t, "pair")
	const n = 8000
	prod := startProducer(t, broker, n, 20, 20*time.Millisecond) // about 8 s of records
	a := e2e.Start(t, e2e.Options{}, "--brokers", broker, "--config", cfg)
	wait(t, 60*time.Second, "records in events", func() bool {
		return e2e.EndOffsets(t, []string{broker}, "events")["events"] >= n/8
	})
	b := e2e.Start(t, e2e.Options{}, "--brokers", broker, "--config", cfg)
	// Both members own partitions once the rebalance settles.
	var members int
	wait(t, 60*time.Second, "two members with partitions", func() bool {
		members = assignedMembers(t, broker, "pair")
		return members == 2
	})
	// Then the first leaves gracefully (SIGTERM) while records still flow:
	// a second rebalance hands its partitions to the other.
	wait(t, 60*time.Second, "more records in events", func() bool {
		return e2e.EndOffsets(t, []string{broker}, "events")["events"] >= n/3
	})
	if code := a.Signal(t, syscall.SIGTERM, 60*time.Second); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	if prod.produced.Load() >= n {
		t.Fatalf("the producer finished before the rebalances: the test would not rebalance mid-way")
	}
	<-prod.done
	wait(t, 90*time.Second, "the group's commits at the log end", func() bool { return committedAtEnd(t, broker, "pair") })
	dupEvents, dupDead := checkOutput(t, broker, n)
	t.Logf("%d records, a member joining and one leaving: %d duplicated in events, %d in the DLQ", n, dupEvents, dupDead)
	// Both hand-offs were graceful: each member committed what it had
	// written before it gave a partition up, so nothing was read twice.
	if dupEvents+dupDead != 0 {
		t.Fatalf("graceful rebalances duplicated %d records", dupEvents+dupDead)
	}
	if code := b.Signal(t, syscall.SIGTERM, 60*time.Second); code != 0 {
		t.Fatalf("exit code %d", code)
	}
}

// assignedMembers returns how many members of group own partitions.
func assignedMembers(t *testing.T, broker, group string) int {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	gs, err := kadm.NewClient(cl).DescribeGroups(ctx, group)
	if err != nil {
		return 0
	}
	n := 0
	for _, m := range gs[group].Members {
		if ca, ok := m.Assigned.AsConsumer(); ok && len(ca.Topics) > 0 {
			n++
		}
	}
	return n
}

// TestKafkaSourceFromTopicsFlag is the flag form: --from-topics and
// --group, the records through the default pipeline into events.
func TestKafkaSourceFromTopicsFlag(t *testing.T) {
	broker := sourceKafka(t, 3)
	const n = 200
	prod := startProducer(t, broker, n, n, time.Millisecond)
	<-prod.done
	p := e2e.Start(t, e2e.Options{}, "--brokers", broker, "--from-topics", "in", "--group", "flags")
	wait(t, 60*time.Second, "the group's commits at the log end", func() bool { return committedAtEnd(t, broker, "flags") })
	if dupEvents, dupDead := checkOutput(t, broker, n); dupEvents+dupDead != 0 {
		t.Fatalf("%d duplicates without a crash or a rebalance", dupEvents+dupDead)
	}
	if code := p.Signal(t, syscall.SIGTERM, 60*time.Second); code != 0 {
		t.Fatalf("exit code %d", code)
	}
}
