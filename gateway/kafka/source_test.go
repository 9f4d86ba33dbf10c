package kafka

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/engine"
)

// newSource returns a Source closed at cleanup.
func newSource(tb testing.TB, cfg SourceConfig) *Source {
	tb.Helper()
	s, err := NewSource(context.Background(), cfg, testLogger(tb))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Close)
	return s
}

// fillTopic writes n keyed events to topic through a Sink.
func fillTopic(tb testing.TB, brokers []string, topic string, n int) {
	tb.Helper()
	s := newSink(tb, Config{Brokers: brokers, DefaultTopic: topic})
	recs := records(n)
	for i := range recs {
		recs[i].Key = fmt.Appendf(nil, "k%d", i%7)
		recs[i].Headers = []engine.Header{{Key: "i", Value: fmt.Appendf(nil, "%d", i)}}
	}
	if err := s.Write(context.Background(), recs); err != nil {
		tb.Fatal(err)
	}
}

func TestSourceConfigValidate(t *testing.T) {
	ok := SourceConfig{Brokers: []string{"h:1"}, Group: "g", Topics: []string{"t"}}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for field, mutate := range map[string]func(*SourceConfig){
		"Brokers":           func(c *SourceConfig) { c.Brokers = nil },
		"Group":             func(c *SourceConfig) { c.Group = "" },
		"Topics":            func(c *SourceConfig) { c.Topics = []string{"a b"} },
		"PollTimeout":       func(c *SourceConfig) { c.PollTimeout = time.Nanosecond },
		"SessionTimeout":    func(c *SourceConfig) { c.SessionTimeout = time.Millisecond },
		"HeartbeatInterval": func(c *SourceConfig) { c.HeartbeatInterval = time.Minute },
	} {
		c := ok
		mutate(&c)
		var ce *ConfigError
		if err := c.Validate(); !errors.As(err, &ce) || ce.Field != field {
			t.Fatalf("%s: got %v", field, err)
		}
	}
}

func TestNewSourceUnreachable(t *testing.T) {
	addr := closedPort(t)
	_, err := NewSource(context.Background(), SourceConfig{Brokers: []string{addr}, Group: "g", Topics: []string{"t"}, DialTimeout: time.Second}, nil)
	if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), addr) {
		t.Fatalf("got %v, want an unreachable error naming %s", err, addr)
	}
}

// TestSourceRecvLimited checks the byte cap, the floor of one record and
// that what does not fit stays buffered: every record arrives exactly once,
// values, keys and headers intact, in offset order per partition.
func TestSourceRecvLimited(t *testing.T) {
	d := startBroker(t, "in")
	const n = 120
	fillTopic(t, d.Brokers(), "in", n)
	src := newSource(t, SourceConfig{Brokers: d.Brokers(), Group: "limited", Topics: []string{"in"}, PollTimeout: 200 * time.Millisecond})
	recSize := int64(len(event(0)))

	seen := map[string]bool{}
	last := map[int32]int64{}
	ctx := context.Background()
	deadline := time.Now().Add(20 * time.Second)
	for calls := 0; len(seen) < n; calls++ {
		if time.Now().After(deadline) {
			t.Fatalf("got %d of %d records", len(seen), n)
		}
		lim := engine.RecvLimits{MaxRecords: 50, MaxBytes: 3 * recSize}
		if calls%2 == 1 {
			lim.MaxBytes = 1 // below one record: the floor of one applies
		}
		b, err := src.RecvLimited(ctx, lim)
		if err != nil {
			t.Fatal(err)
		}
		if len(b.Records) != len(b.Tokens) {
			t.Fatalf("%d records, %d tokens", len(b.Records), len(b.Tokens))
		}
		if lim.MaxBytes == 1 && len(b.Records) > 1 || len(b.Records) > 0 && b.Bytes() > 3*recSize+10 {
			t.Fatalf("batch of %d records (%d bytes) exceeds %+v", len(b.Records), b.Bytes(), lim)
		}
		for i, r := range b.Records {
			tok := b.Tokens[i]
			if seen[string(r.Value)] {
				t.Fatalf("record delivered twice: %s", r.Value)
			}
			seen[string(r.Value)] = true
			if prev, ok := last[tok.Partition]; ok && tok.Offset <= prev {
				t.Fatalf("partition %d: offset %d after %d", tok.Partition, tok.Offset, prev)
			}
			last[tok.Partition] = tok.Offset
			var id int
			fmt.Sscanf(string(r.Value), `{"id":%d`, &id)
			if r.Topic != "" || string(r.Key) != fmt.Sprintf("k%d", id%7) || len(r.Headers) != 1 || string(r.Headers[0].Value) != fmt.Sprint(id) {
				t.Fatalf("record %d came back as topic %q key %q headers %v", id, r.Topic, r.Key, r.Headers)
			}
		}
		if err := src.Commit(ctx, b.Tokens); err != nil {
			t.Fatal(err)
		}
	}
	if st := src.Stats(); st.Received != n || st.Committed != n {
		t.Fatalf("stats %+v", st)
	}
}

// TestSourceGroupHandover consumes part of a topic with one member,
// commits, leaves one batch uncommitted and closes; a second member of the
// same group must get exactly the rest (the uncommitted batch again,
// nothing already committed), and the group's committed offsets must cover
// every record.
func TestSourceGroupHandover(t *testing.T) {
	d := startBroker(t, "in")
	const n = 1000
	fillTopic(t, d.Brokers(), "in", n)
	cfg := SourceConfig{Brokers: d.Brokers(), Group: "handover", Topics: []string{"in"}, PollTimeout: 200 * time.Millisecond}
	ctx := context.Background()
	type pos struct {
		p int32
		o int64
	}

	a, err := NewSource(ctx, cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	committedByA := map[pos]bool{}
	for len(committedByA) < 400 {
		b, err := a.Recv(ctx, 100)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Commit(ctx, b.Tokens); err != nil {
			t.Fatal(err)
		}
		for _, tok := range b.Tokens {
			committedByA[pos{tok.Partition, tok.Offset}] = true
		}
	}
	var inFlight engine.Batch[Offset]
	for len(inFlight.Tokens) == 0 {
		if inFlight, err = a.Recv(ctx, 50); err != nil {
			t.Fatal(err)
		}
	}
	a.Close() // crash-like: the in-flight batch is never committed
	if _, err := a.Recv(ctx, 1); !errors.Is(err, ErrClosed) {
		t.Fatalf("Recv after Close: %v", err)
	}

	b := newSource(t, cfg)
	gotByB := map[pos]bool{}
	deadline := time.Now().Add(30 * time.Second)
	for len(committedByA)+len(gotByB) < n {
		if time.Now().After(deadline) {
			t.Fatalf("second member got %d records, want %d", len(gotByB), n-len(committedByA))
		}
		batch, err := b.Recv(ctx, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, tok := range batch.Tokens {
			p := pos{tok.Partition, tok.Offset}
			if committedByA[p] || gotByB[p] {
				t.Fatalf("offset %d/%d delivered again after it was committed", p.p, p.o)
			}
			gotByB[p] = true
		}
		if err := b.Commit(ctx, batch.Tokens); err != nil {
			t.Fatal(err)
		}
	}
	for _, tok := range inFlight.Tokens {
		if !gotByB[pos{tok.Partition, tok.Offset}] {
			t.Fatalf("uncommitted offset %d/%d was not redelivered", tok.Partition, tok.Offset)
		}
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(d.Brokers()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	offs, err := kadm.NewClient(cl).FetchOffsets(ctx, cfg.Group)
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	offs.Each(func(o kadm.OffsetResponse) { sum += o.At })
	if sum != n {
		t.Fatalf("committed offsets sum to %d, want %d", sum, n)
	}
}

// TestSourceRebalance runs two members of one group concurrently, the second
// joining while the first is mid-stream: together they must commit every
// record, and the group's offsets must end at the topic's end.
func TestSourceRebalance(t *testing.T) {
	d := startBroker(t, "in")
	const n = 3000
	fillTopic(t, d.Brokers(), "in", n)
	cfg := SourceConfig{Brokers: d.Brokers(), Group: "rebalance", Topics: []string{"in"},
		PollTimeout: 100 * time.Millisecond, HeartbeatInterval: 100 * time.Millisecond}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	var mu sync.Mutex
	seen := map[Offset]int{}
	done := make(chan struct{})
	run := func(src *Source) error {
		for {
			select {
			case <-done:
				return nil
			default:
			}
			b, err := src.Recv(ctx, 20)
			if err != nil {
				return err
			}
			time.Sleep(5 * time.Millisecond) // processing
			if err := src.Commit(ctx, b.Tokens); err != nil {
				return err
			}
			mu.Lock()
			for _, tok := range b.Tokens {
				tok.LeaderEpoch = 0
				seen[tok]++
			}
			if len(seen) == n {
				select {
				case <-done:
				default:
					close(done)
				}
			}
			mu.Unlock()
		}
	}
	errs := make(chan error, 2)
	a := newSource(t, cfg)
	go func() { errs <- run(a) }()
	for {
		mu.Lock()
		k := len(seen)
		mu.Unlock()
		if k > 300 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	b := newSource(t, cfg)
	go func() { errs <- run(b) }()
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatalf("member failed: %v (records seen %d of %d)", err, len(seen), n)
		}
	}
	dups := 0
	for _, c := range seen {
		dups += c - 1
	}
	t.Logf("a received %d, b received %d, redelivered %d", a.Stats().Received, b.Stats().Received, dups)
	if b.Stats().Received == 0 {
		t.Fatal("the second member got no partition: no rebalance happened")
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(d.Brokers()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	offs, err := kadm.NewClient(cl).FetchOffsets(context.Background(), cfg.Group)
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	offs.Each(func(o kadm.OffsetResponse) { sum += o.At })
	if sum != n {
		t.Fatalf("committed offsets sum to %d, want %d", sum, n)
	}
}
