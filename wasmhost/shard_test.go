package wasmhost

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/engine"
)

// withShards makes batches of at least 2×min records shardable into up to
// procs shards, whatever their cost, for the test's duration.
func withShards(tb testing.TB, min, procs int) {
	tb.Helper()
	oldMin, oldWork, oldProcs := minShard, minShardWork, runtime.GOMAXPROCS(procs)
	minShard, minShardWork = min, 0
	tb.Cleanup(func() {
		minShard, minShardWork = oldMin, oldWork
		runtime.GOMAXPROCS(oldProcs)
	})
}

// mixedDocs returns n events exercising keep, edit, drop (heartbeats),
// guest dead letters, header edits and fan-out (split, whose children run
// through the rest of the chain).
func mixedDocs(n int) []string {
	docs := make([]string, n)
	for i := range docs {
		switch i % 7 {
		case 0:
			docs[i] = fmt.Sprintf(`{"op":"split","id":%d,"items":[{"event":"click","user_id":"c%d","ip":"1.2.3.4"},{"event":"heartbeat"},{"event":"view","user_id":"d%d","geo":{"country":"JP"}}]}`, i, i, i)
		case 1:
			docs[i] = fmt.Sprintf(`{"op":"dlq","id":%d}`, i)
		case 2:
			docs[i] = `{"event":"heartbeat"}`
		case 3:
			docs[i] = fmt.Sprintf(`{"op":"edit","id":%d,"gone":1,"event":"signup","email":"x@y"}`, i)
		case 4:
			docs[i] = fmt.Sprintf(`{"op":"meta","id":%d,"event":"click","user_id":"m%d"}`, i, i)
		default:
			docs[i] = benchEvent(i)
		}
	}
	return docs
}

// recordString renders everything a record carries that the sink writes.
func recordString(r engine.Record) string {
	var b strings.Builder
	fmt.Fprintf(&b, "tag=%d topic=%s key=%s value=%s", r.Tag, r.Topic, r.Key, r.Value)
	for _, h := range r.Headers {
		fmt.Fprintf(&b, " %s=%s", h.Key, h.Value)
	}
	return b.String()
}

func dlqString(d engine.DLQEntry) string {
	return fmt.Sprintf("%s | %s | %s", d.Stage, d.Reason, recordString(d.Record))
}

// runBoth runs docs through transforms on a one-instance host (never
// sharded) and on a sharded host, and fails unless their outputs and dead
// letters are equal. It returns the sharded host's call statistics.
func runBoth(t *testing.T, cfg Config, transforms []string, docs []string) (*hooksRecorder, []engine.Record, []engine.DLQEntry) {
	t.Helper()
	serialCfg := cfg
	serialCfg.PoolSize = 1
	serial := newHost(t, serialCfg)
	addGuests(t, serial, transforms...)
	wantOut, wantDLQ := process(t, serial, "p", transforms, docs...)

	rec, hooks := newHooksRecorder()
	cfg.Hooks = hooks
	sharded := newHost(t, cfg)
	addGuests(t, sharded, transforms...)
	out, dlq := process(t, sharded, "p", transforms, docs...)

	if len(out) != len(wantOut) {
		t.Fatalf("sharded: %d records, unsharded %d", len(out), len(wantOut))
	}
	for i := range out {
		if got, want := recordString(out[i]), recordString(wantOut[i]); got != want {
			t.Fatalf("record %d:\n sharded   %s\n unsharded %s", i, got, want)
		}
	}
	if len(dlq) != len(wantDLQ) {
		t.Fatalf("sharded: %d dead letters, unsharded %d", len(dlq), len(wantDLQ))
	}
	for i := range dlq {
		if got, want := dlqString(dlq[i]), dlqString(wantDLQ[i]); got != want {
			t.Fatalf("dead letter %d:\n sharded   %s\n unsharded %s", i, got, want)
		}
	}
	return rec, out, dlq
}

func TestShardedMatchesUnsharded(t *testing.T) {
	withShards(t, 16, 3)
	chain := []string{"kitchen", "filter", "redact", "route", "enrich"}
	// 3 shards of uneven sizes (100 records: 33, 33, 34).
	docs := mixedDocs(100)
	rec, out, dlq := runBoth(t, Config{PoolSize: 3}, chain, docs)
	if len(out) <= len(docs)/2 || len(dlq) == 0 {
		t.Fatalf("the mix is not exercised: %d out, %d dead letters", len(out), len(dlq))
	}
	// Fan-out children follow their parent (split drops the parent).
	if !strings.Contains(recordString(out[0]), `"user_id":"c0"`) || !strings.Contains(recordString(out[1]), `"user_id":"d0"`) {
		t.Fatalf("first records %s / %s", recordString(out[0]), recordString(out[1]))
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	// One call per shard.
	if n := rec.ncalls["kitchen"]; n != 3 {
		t.Fatalf("kitchen called %d times", n)
	}
	// 15 splits (parent dropped, 3 children each) and 15 dead letters.
	k := rec.calls["kitchen"]
	if k.RecordsIn != 100 || k.RecordsOut != 100-15-15+3*15 || k.Emitted != 45 || k.DeadLettered != 15 || k.Dropped != 15 {
		t.Fatalf("kitchen stats %+v", k)
	}
	// Every record was counted once per stage: what one stage let through
	// the next one received.
	for i := 1; i < len(chain); i++ {
		prev, cur := rec.calls[chain[i-1]], rec.calls[chain[i]]
		if cur.RecordsIn != prev.RecordsOut {
			t.Fatalf("%s in %d, %s out %d", chain[i], cur.RecordsIn, chain[i-1], prev.RecordsOut)
		}
	}
	if last := rec.calls[chain[len(chain)-1]]; last.RecordsOut != len(out) {
		t.Fatalf("last stage out %d, records %d", last.RecordsOut, len(out))
	}
	var dead int
	for _, c := range rec.calls {
		dead += c.DeadLettered
	}
	if dead != len(dlq) {
		t.Fatalf("dead letters counted %d, got %d", dead, len(dlq))
	}
}

func TestShardedExamplesMatchUnsharded(t *testing.T) {
	withShards(t, 32, 2)
	docs := make([]string, 301)
	for i := range docs {
		docs[i] = benchEvent(i)
	}
	runBoth(t, Config{PoolSize: 2}, []string{"filter", "redact", "route", "enrich"}, docs)
}

func TestShardCount(t *testing.T) {
	withShards(t, 32, 2)
	minShardWork = 50 * time.Microsecond
	h := newHost(t, Config{PoolSize: 4})
	addGuests(t, h, "noop", "filter")
	noop, filter := h.transforms["noop"].current, h.transforms["filter"].current
	cheap, costly := &chain{versions: []*version{noop}}, &chain{versions: []*version{noop, filter}}
	// Not measured yet: not sharded.
	if got := h.shardCount(costly, 10_000); got != 1 {
		t.Fatalf("unmeasured: shardCount = %d", got)
	}
	// Measured, but one transform only.
	filter.cost.Store(1_100)
	if got, want := h.shardCount(costly, 10_000), 2; got != want {
		t.Fatalf("one measured: shardCount = %d", got)
	}
	noop.cost.Store(100)
	for _, c := range []struct {
		c    *chain
		n    int
		want int
	}{
		{cheap, 0, 1}, {cheap, 63, 1}, {cheap, 512, 1}, {cheap, 999, 1}, {cheap, 1_000, 2}, {cheap, 100_000, 2},
		{costly, 63, 1}, {costly, 64, 1}, {costly, 84, 2}, {costly, 10_000, 2},
	} {
		if got := h.shardCount(c.c, c.n); got != c.want {
			t.Errorf("shardCount(%d versions at %d ns/record, %d) = %d, want %d", len(c.c.versions), c.c.versions[len(c.c.versions)-1].cost.Load(), c.n, got, c.want)
		}
	}
	runtime.GOMAXPROCS(3)
	if got := h.shardCount(costly, 10_000); got != 3 {
		t.Errorf("3 procs: shardCount = %d", got)
	}
	one := newHost(t, Config{PoolSize: 1})
	if got := one.shardCount(costly, 10_000); got != 1 {
		t.Errorf("PoolSize 1: shardCount = %d", got)
	}
}

// TestCostMeasured: calls measure their transform's cost per record, and a
// measured costly chain shards its next batches with the default settings.
func TestCostMeasured(t *testing.T) {
	withShards(t, 32, 2)
	minShardWork = 50 * time.Microsecond
	rec, hooks := newHooksRecorder()
	h := newHost(t, Config{PoolSize: 2, Hooks: hooks})
	addGuests(t, h, "redact")
	docs := make([]string, 200)
	for i := range docs {
		docs[i] = benchEvent(i)
	}
	process(t, h, "p", []string{"redact"}, docs...)
	if c := h.transforms["redact"].current.cost.Load(); c < 100 {
		t.Fatalf("redact cost %d ns/record", c)
	}
	process(t, h, "p", []string{"redact"}, docs...)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if n := rec.ncalls["redact"]; n != 3 {
		t.Fatalf("redact called %d times, want 1 then 2 shards", n)
	}
}

// trapDocs returns n records of which those at the indexes trap.
func trapDocs(n int, traps ...int) []string {
	docs := make([]string, n)
	for i := range docs {
		docs[i] = fmt.Sprintf(`{"id":%d}`, i)
	}
	for _, i := range traps {
		docs[i] = fmt.Sprintf(`{"id":%d,"trap":true}`, i)
	}
	return docs
}

func TestShardedTrapLosesNothing(t *testing.T) {
	withShards(t, 16, 3)
	// Records 70 and 95 trap, both in the last of three shards.
	docs := trapDocs(100, 70, 95)
	rec, out, dlq := runBoth(t, Config{PoolSize: 3}, []string{"trapper", "filter"}, docs)
	var want []string
	for i, d := range docs {
		if i != 70 && i != 95 {
			want = append(want, d)
		}
	}
	if got := values(out); !equalStrings(got, want) {
		t.Fatalf("out = %q\nwant %q", got, want)
	}
	if len(dlq) != 2 || dlq[0].Record.Tag != 70 || dlq[1].Record.Tag != 95 {
		t.Fatalf("dlq = %q", dlqReasons(dlq))
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	// The shard's call and the two isolated records.
	if rec.traps[TrapPanic] != 3 {
		t.Fatalf("traps %v", rec.traps)
	}
	if c := rec.calls["trapper"]; c.RecordsIn != 100 || c.RecordsOut != 98 || c.DeadLettered != 2 {
		t.Fatalf("trapper stats %+v", c)
	}
}

func TestShardedTrapFailBatch(t *testing.T) {
	withShards(t, 16, 2)
	h := newHost(t, Config{PoolSize: 2, OnTrap: TrapFailBatch})
	addGuests(t, h, "trapper", "filter")
	if err := h.SetPipeline("p", []string{"trapper", "filter"}); err != nil {
		t.Fatal(err)
	}
	out, dlq, err := h.Pipeline("p").Process(context.Background(), jsonRecs(trapDocs(64, 50)...), nil)
	var te *TrapError
	if !errors.As(err, &te) || te.Reason() != "trap: trapper: wasm error: unreachable: panic: boom on 50" {
		t.Fatalf("err = %v", err)
	}
	if out != nil || len(dlq) != 0 {
		t.Fatalf("out %d dlq %d", len(out), len(dlq))
	}
	// The host serves the next batch.
	out, dlq, err = h.Pipeline("p").Process(context.Background(), jsonRecs(trapDocs(64)...), nil)
	if err != nil || len(out) != 64 || len(dlq) != 0 {
		t.Fatalf("after: out %d dlq %d err %v", len(out), len(dlq), err)
	}
}

// TestShardedDeadlineScales: a shard's call gets the deadline of its own
// records, not the batch's.
func TestShardedDeadlineScales(t *testing.T) {
	withShards(t, 16, 2)
	h := newHost(t, Config{PoolSize: 2, CallDeadline: 100 * time.Millisecond, CallDeadlinePerRecord: time.Millisecond, IsolateTraps: -1})
	addGuests(t, h, "looper")
	docs := make([]string, 40)
	for i := range docs {
		docs[i] = fmt.Sprintf(`{"id":%d}`, i)
	}
	docs[5] = `{"id":5,"loop":true}`
	out, dlq := process(t, h, "p", []string{"looper"}, docs...)
	if len(out) != 20 || len(dlq) != 20 || out[0].Tag != 20 || dlq[0].Record.Tag != 0 {
		t.Fatalf("out %d dlq %d", len(out), len(dlq))
	}
	if got, want := dlq[0].Reason, "deadline: looper exceeded 120ms"; got != want {
		t.Fatalf("reason %q, want %q", got, want)
	}
}

func TestShardedCallerContextDone(t *testing.T) {
	withShards(t, 16, 2)
	h := newHost(t, Config{PoolSize: 2})
	addGuests(t, h, "looper")
	if err := h.SetPipeline("p", []string{"looper"}); err != nil {
		t.Fatal(err)
	}
	docs := trapDocs(64)
	docs[40] = `{"loop":true}`
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, _, err := h.Pipeline("p").Process(ctx, jsonRecs(docs...), nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
}

// TestShardedEmptyPassThroughAllocs: an empty chain stays free for a big
// batch.
func TestShardedEmptyPassThroughAllocs(t *testing.T) {
	withShards(t, 16, 2)
	h := newHost(t, Config{PoolSize: 2})
	p := h.Pipeline("empty")
	recs := jsonRecs(trapDocs(1000)...)
	allocs := testing.AllocsPerRun(20, func() {
		if out, _, err := p.Process(context.Background(), recs, nil); err != nil || len(out) != len(recs) {
			t.Fatalf("out %d err %v", len(out), err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations", allocs)
	}
}
