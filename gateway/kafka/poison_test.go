package kafka

// Per-record outcomes of Write against kfake with topic auto-creation off:
// a record whose topic is invalid, unknown or not authorised, or that the
// broker refuses as too large or invalid, fails alone (an
// *engine.RecordErrors); every other record of the write is acknowledged
// and read back.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicehq/sluice/engine"
)

// strictCluster starts one kfake broker with auto-creation off and the
// default, DLQ and extra topics (three partitions each).
func strictCluster(tb testing.TB, extra []string, opts ...kfake.Opt) *kfake.Cluster {
	tb.Helper()
	o := append([]kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(3, append([]string{DefaultTopic, DefaultDLQTopic}, extra...)...)}, opts...)
	c, err := kfake.NewCluster(o...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.Close)
	return c
}

// readAll reads every record of topic (its end offsets as of now).
func readAll(tb testing.TB, brokers []string, topic string) []*kgo.Record {
	tb.Helper()
	n := endOffsets(tb, brokers, topic)
	if n == 0 {
		return nil
	}
	return consume(tb, brokers, topic, int(n))
}

// values returns the records' values as strings.
func values(recs []*kgo.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = string(r.Value)
	}
	slices.Sort(out)
	return out
}

// wantValues returns the sorted values of recs minus the records at skip.
func wantValues(recs []engine.Record, skip ...int) []string {
	var out []string
	for i := range recs {
		if !slices.Contains(skip, i) {
			out = append(out, string(recs[i].Value))
		}
	}
	slices.Sort(out)
	return out
}

func TestWriteInvalidTopicNames(t *testing.T) {
	// Auto-creation is on here: the name check must happen before
	// producing, whatever the cluster would do with the name.
	c := strictCluster(t, nil, kfake.AllowAutoTopicCreation())
	s := newSink(t, Config{Brokers: c.ListenAddrs(), AllowAutoTopicCreation: true})
	long := "events." + strings.Repeat("x", 300)
	bad := map[int]string{
		1: long,
		3: "events/clicks",
		4: "events clicks",
		6: ".",
		7: "..",
		9: "événements",
	}
	recs := records(10)
	for i, topic := range bad {
		recs[i].Topic = topic
	}
	start := time.Now()
	err := s.Write(context.Background(), recs)
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("Write took %v", el)
	}
	re := recordErrors(t, err, 1, 3, 4, 6, 7, 9)
	for _, f := range re.Failed {
		var rerr *RecordError
		errors.As(f.Err, &rerr)
		if rerr.Reason != ReasonInvalidTopic || rerr.Topic != bad[f.Index] || !strings.HasPrefix(f.Err.Error(), `invalid topic "`) {
			t.Fatalf("record %d: %v (%+v), want an invalid-topic failure naming its topic", f.Index, f.Err, rerr)
		}
	}
	if got := re.Failed[0].Err.Error(); !strings.Contains(got, "307 bytes long, more than Kafka's 249") || len(got) > 200 {
		t.Fatalf("over-long topic reason %q: want the length named and the name cut short", got)
	}
	if got := values(readAll(t, c.ListenAddrs(), DefaultTopic)); !slices.Equal(got, wantValues(recs, 1, 3, 4, 6, 7, 9)) {
		t.Fatalf("events holds %d records, want the 4 good ones", len(got))
	}
	// No topic was created for any of the names.
	td, err := kadm.NewClient(s.cl).ListTopics(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if names := td.Names(); len(names) != 2 {
		t.Fatalf("topics %v, want only the seeded two", names)
	}
}

func TestCheckTopicName(t *testing.T) {
	f := func(name string, ok bool) {
		t.Helper()
		if err := checkTopicName(name); (err == nil) != ok {
			t.Errorf("checkTopicName(%q) = %v, want ok=%v", name, err, ok)
		}
	}
	f("events", true)
	f("a.b_c-D9", true)
	f(strings.Repeat("a", 249), true)
	f(strings.Repeat("a", 250), false)
	f("", false)
	f(".", false)
	f("..", false)
	f("...", true)
	f("a b", false)
	f("a/b", false)
	f("a:b", false)
	f("a\x00", false)
}

func TestWriteUnknownTopicIsDeadLetteredAndCached(t *testing.T) {
	c := strictCluster(t, nil)
	const ttl = 500 * time.Millisecond
	s := newSink(t, Config{Brokers: c.ListenAddrs(), TopicErrorTTL: ttl})
	// Count the metadata requests that ask for the missing topic.
	asked := c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Metadata}, Topic: "nope", Observe: true, Count: -1})
	defer asked.Remove()

	recs := records(6)
	recs[2].Topic, recs[4].Topic = "nope", "nope"
	start := time.Now()
	err := s.Write(context.Background(), recs)
	first := time.Since(start)
	re := recordErrors(t, err, 2, 4)
	for _, f := range re.Failed {
		var rerr *RecordError
		if !errors.As(f.Err, &rerr) || rerr.Reason != ReasonUnknownTopic || rerr.Cached || !errors.Is(f.Err, kerr.UnknownTopicOrPartition) ||
			!strings.HasPrefix(f.Err.Error(), `unknown topic "nope": UNKNOWN_TOPIC_OR_PARTITION`) {
			t.Fatalf("record %d: %v, want the broker's UNKNOWN_TOPIC_OR_PARTITION", f.Index, f.Err)
		}
	}
	if first > time.Second {
		t.Fatalf("first write to an unknown topic took %v, want one metadata round trip", first)
	}
	lookups := asked.Hits()
	if lookups == 0 {
		t.Fatal("no metadata request asked for the unknown topic")
	}

	// Again, within the TTL: no request asks for it, no wait.
	for range 20 {
		start = time.Now()
		err = s.Write(context.Background(), recs)
		if el := time.Since(start); el > 500*time.Millisecond {
			t.Fatalf("cached unknown topic: write took %v", el)
		}
		re = recordErrors(t, err, 2, 4)
		if !strings.HasSuffix(re.Failed[0].Err.Error(), "(cached)") {
			t.Fatalf("reason %q, want it marked cached", re.Failed[0].Err)
		}
	}
	if got := asked.Hits(); got != lookups {
		t.Fatalf("%d more metadata requests for a cached unknown topic, want none", got-lookups)
	}
	t.Logf("first write %v; %d lookups for 21 writes", first, lookups)

	// The topic is created; once the TTL has passed it is used.
	if _, err := kadm.NewClient(s.cl).CreateTopic(context.Background(), 1, 1, nil, "nope"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(ttl)
	if err := s.Write(context.Background(), recs); err != nil {
		t.Fatalf("after the TTL the created topic must be used: %v", err)
	}
	if got := values(readAll(t, c.ListenAddrs(), "nope")); !slices.Equal(got, []string{string(recs[2].Value), string(recs[4].Value)}) {
		t.Fatalf("nope holds %v", got)
	}
	// 4 good records per write × 22 writes.
	if n := endOffsets(t, c.ListenAddrs(), DefaultTopic); n != 4*22 {
		t.Fatalf("events holds %d records, want %d", n, 4*22)
	}
}

// A topic that disappears after the sink produced to it: the producer's
// UNKNOWN_TOPIC_OR_PARTITION (after franz-go's bounded retries) is a
// per-record failure too, and is cached.
func TestWriteDeletedTopic(t *testing.T) {
	c := strictCluster(t, []string{"gone"})
	s := newSink(t, Config{Brokers: c.ListenAddrs(), DeliveryTimeout: 5 * time.Second})
	recs := records(4)
	recs[1].Topic = "gone"
	if err := s.Write(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	if _, err := kadm.NewClient(s.cl).DeleteTopic(context.Background(), "gone"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err := s.Write(context.Background(), recs)
	took := time.Since(start)
	re := recordErrors(t, err, 1)
	if !errors.Is(re.Failed[0].Err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("got %v", err)
	}
	start = time.Now()
	re = recordErrors(t, s.Write(context.Background(), recs), 1)
	if el := time.Since(start); el > 500*time.Millisecond || !strings.HasSuffix(re.Failed[0].Err.Error(), "(cached)") {
		t.Fatalf("second write after deletion took %v: %v", el, re.Failed[0].Err)
	}
	t.Logf("deleted topic detected after %v", took)
	if n := endOffsets(t, c.ListenAddrs(), DefaultTopic); n != 9 {
		t.Fatalf("events holds %d records, want 9", n)
	}
}

// aclsFor seeds ACLs for the principal of a client without SASL:
// kfake, like Kafka, names it User:ANONYMOUS.
func aclsFor(acls ...kfake.ACL) kfake.Opt {
	return kfake.User("PLAIN", "ANONYMOUS", "unused", acls...)
}

var (
	allowIdempotentWrite = kfake.ACL{Resource: kmsg.ACLResourceTypeCluster, Name: "kafka-cluster", Pattern: kmsg.ACLResourcePatternTypeLiteral, Operation: kmsg.ACLOperationIdempotentWrite, Allow: true}
	allowTopics          = kfake.ACL{Resource: kmsg.ACLResourceTypeTopic, Name: "*", Pattern: kmsg.ACLResourcePatternTypeLiteral, Operation: kmsg.ACLOperationAll, Allow: true}
)

// ACLs without SASL: the anonymous principal may write every topic but
// "secret" (it may still describe it) and may not even see "hidden".
func TestWriteTopicNotAuthorized(t *testing.T) {
	c := strictCluster(t, []string{"secret", "hidden"}, kfake.EnableACLs(), aclsFor(
		allowIdempotentWrite, allowTopics,
		kfake.ACL{Resource: kmsg.ACLResourceTypeTopic, Name: "secret", Pattern: kmsg.ACLResourcePatternTypeLiteral, Operation: kmsg.ACLOperationWrite},
		kfake.ACL{Resource: kmsg.ACLResourceTypeTopic, Name: "hidden", Pattern: kmsg.ACLResourcePatternTypeLiteral, Operation: kmsg.ACLOperationAll},
	))
	s := newSink(t, Config{Brokers: c.ListenAddrs()})
	recs := records(8)
	recs[1].Topic, recs[5].Topic = "secret", "secret"
	recs[3].Topic = "hidden"
	for round := range 2 {
		re := recordErrors(t, s.Write(context.Background(), recs), 1, 3, 5)
		for _, f := range re.Failed {
			var rerr *RecordError
			if !errors.As(f.Err, &rerr) || rerr.Reason != ReasonTopicNotAuthorized || !errors.Is(f.Err, kerr.TopicAuthorizationFailed) ||
				rerr.Cached != (round == 1) {
				t.Fatalf("round %d record %d: %v, want TOPIC_AUTHORIZATION_FAILED (cached: %v)", round, f.Index, f.Err, round == 1)
			}
			if want := fmt.Sprintf("topic not authorized %q: TOPIC_AUTHORIZATION_FAILED", recs[f.Index].Topic); !strings.HasPrefix(f.Err.Error(), want) {
				t.Fatalf("reason %q, want prefix %q", f.Err, want)
			}
		}
	}
	if n := endOffsets(t, c.ListenAddrs(), DefaultTopic); n != 10 {
		t.Fatalf("events holds %d records, want 2 × 5", n)
	}
}

// The client's own authorisation failing is the cluster's problem, not a
// record's: the write fails as a whole.
func TestWriteClusterAuthorizationFailureIsTerminal(t *testing.T) {
	// Describe only: no IdempotentWrite, no Write on any topic.
	c := strictCluster(t, nil, kfake.EnableACLs(), aclsFor(kfake.ACL{Resource: kmsg.ACLResourceTypeTopic, Name: "*",
		Pattern: kmsg.ACLResourcePatternTypeLiteral, Operation: kmsg.ACLOperationDescribe, Allow: true}))
	s := newSink(t, Config{Brokers: c.ListenAddrs(), DeliveryTimeout: 2 * time.Second})
	err := s.Write(context.Background(), records(5))
	var we *WriteError
	if !errors.As(err, &we) || we.Failed != 5 || !errors.Is(err, kerr.ClusterAuthorizationFailed) {
		t.Fatalf("got %T %v, want a *WriteError with CLUSTER_AUTHORIZATION_FAILED", err, err)
	}
}

// incompressible returns a JSON record of about n bytes snappy cannot
// shrink.
func incompressible(tb testing.TB, id string, n int) []byte {
	tb.Helper()
	raw := make([]byte, n*3/4)
	if _, err := rand.Read(raw); err != nil {
		tb.Fatal(err)
	}
	return fmt.Appendf(nil, `{"id":%q,"blob":%q}`, id, base64.StdEncoding.EncodeToString(raw))
}

// A broker whose message.max.bytes is below some records: the broker fails
// their whole partition batch; Write isolates them so that only the
// records too large alone are failed, and the rest is written.
func TestWriteRecordTooLargeForTheBroker(t *testing.T) {
	c := strictCluster(t, nil, kfake.BrokerConfigs(map[string]string{"message.max.bytes": "16384"}))
	s := newSink(t, Config{Brokers: c.ListenAddrs()})
	recs := records(200)
	for _, i := range []int{17, 18, 120} {
		recs[i].Value = incompressible(t, fmt.Sprint(i), 32<<10)
	}
	re := recordErrors(t, s.Write(context.Background(), recs), 17, 18, 120)
	for _, f := range re.Failed {
		var rerr *RecordError
		if !errors.As(f.Err, &rerr) || rerr.Reason != ReasonRecordTooLarge || !errors.Is(f.Err, kerr.MessageTooLarge) {
			t.Fatalf("record %d: %v, want MESSAGE_TOO_LARGE", f.Index, f.Err)
		}
	}
	if got := values(readAll(t, c.ListenAddrs(), DefaultTopic)); !slices.Equal(got, wantValues(recs, 17, 18, 120)) {
		t.Fatalf("events holds %d records, want the 197 that fit", len(got))
	}
}

// Every record fits but a batch of them does not: isolation splits the
// batch until the halves fit, nothing is failed, and records of one key
// keep their order.
func TestWriteBatchLargerThanTheBrokerLimit(t *testing.T) {
	c := strictCluster(t, nil, kfake.BrokerConfigs(map[string]string{"message.max.bytes": "4096"}))
	s := newSink(t, Config{Brokers: c.ListenAddrs(), Compression: "none"})
	recs := records(40)
	for i := range recs {
		recs[i].Key = []byte("one-partition")
	}
	if err := s.Write(context.Background(), recs); err != nil {
		t.Fatalf("got %v, want every record written", err)
	}
	got := readAll(t, c.ListenAddrs(), DefaultTopic)
	if len(got) != len(recs) {
		t.Fatalf("read %d records, want %d", len(got), len(recs))
	}
	for i := range got {
		if !bytes.Equal(got[i].Value, recs[i].Value) {
			t.Fatalf("record %d out of order: %s", i, got[i].Value[:12])
		}
	}
}

// invalidRecordFault makes the broker refuse, with INVALID_RECORD, every
// produce partition whose (uncompressed) batch holds a record with marker,
// as Kafka refuses a batch with one key-less record on a compacted topic.
func invalidRecordFault(c *kfake.Cluster, marker string) *kfake.FaultHandle {
	return c.Fault(kfake.Fault{
		Keys: []kmsg.Key{kmsg.Produce}, Count: -1, Err: kerr.InvalidRecord,
		When: func(req kmsg.Request) bool {
			for _, t := range req.(*kmsg.ProduceRequest).Topics {
				for _, p := range t.Partitions {
					if bytes.Contains(p.Records, []byte(marker)) {
						return true
					}
				}
			}
			return false
		},
	})
}

func TestWriteInvalidRecordIsIsolated(t *testing.T) {
	c := strictCluster(t, nil)
	s := newSink(t, Config{Brokers: c.ListenAddrs(), Compression: "none"})
	h := invalidRecordFault(c, "INVALID-MARK")
	defer h.Remove()
	recs := records(100)
	for _, i := range []int{0, 55, 99} {
		recs[i].Value = fmt.Appendf(nil, `{"id":%d,"bad":"INVALID-MARK"}`, i)
	}
	re := recordErrors(t, s.Write(context.Background(), recs), 0, 55, 99)
	for _, f := range re.Failed {
		if !errors.Is(f.Err, kerr.InvalidRecord) || !strings.HasPrefix(f.Err.Error(), `invalid record "events": INVALID_RECORD`) {
			t.Fatalf("record %d: %v", f.Index, f.Err)
		}
	}
	if got := values(readAll(t, c.ListenAddrs(), DefaultTopic)); !slices.Equal(got, wantValues(recs, 0, 55, 99)) {
		t.Fatalf("events holds %d records, want 97", len(got))
	}
	t.Logf("%d produce requests refused while isolating 3 of 100 records", h.Hits())
}

// A failure that is not the record's (NOT_ENOUGH_REPLICAS, retried until
// the delivery timeout) fails the whole write, even when other records of
// it failed for their own reasons.
func TestWriteClusterFailureWinsOverRecordFailures(t *testing.T) {
	c, failing := failingCluster(t)
	s := newSink(t, Config{Brokers: c.ListenAddrs(), DeliveryTimeout: time.Second})
	if err := s.Write(context.Background(), records(2)); err != nil {
		t.Fatal(err)
	}
	failing.Store(true)
	recs := records(5)
	recs[1].Topic = "bad/name"
	err := s.Write(context.Background(), recs)
	var we *WriteError
	if !errors.As(err, &we) || we.Total != 5 || we.Failed != 5 || !errors.Is(err, ErrDeliveryTimeout) {
		t.Fatalf("got %T %v, want a *WriteError of 5 records (delivery timeout)", err, err)
	}
}

// WriteDLQ never reports a per-record outcome: a dead letter the DLQ topic
// refuses fails the write, after isolation, so the engine stops before the
// commit.
func TestWriteDLQRecordFailureIsTerminal(t *testing.T) {
	c := strictCluster(t, nil, kfake.BrokerConfigs(map[string]string{"message.max.bytes": "16384"}))
	s := newSink(t, Config{Brokers: c.ListenAddrs()})
	entries := make([]engine.DLQEntry, 10)
	for i := range entries {
		entries[i] = engine.DLQEntry{Record: engine.Record{Value: event(i)}, Reason: "test", Stage: "sink"}
	}
	entries[6].Record.Value = incompressible(t, "6", 32<<10)
	err := s.WriteDLQ(context.Background(), entries)
	var we *WriteError
	if !errors.As(err, &we) || !we.DLQ || we.Failed != 1 || we.Total != 10 || !errors.Is(err, kerr.MessageTooLarge) {
		t.Fatalf("got %T %v, want a *WriteError of 1 of 10 dead letters", err, err)
	}
	if _, ok := err.(*engine.RecordErrors); ok { //nolint:errorlint // the contract: not per record
		t.Fatal("WriteDLQ returned a per-record outcome")
	}
	// The other dead letters are written (a retry duplicates them).
	if n := endOffsets(t, c.ListenAddrs(), DefaultDLQTopic); n != 9 {
		t.Fatalf("DLQ holds %d, want 9", n)
	}
}

func TestClassify(t *testing.T) {
	f := func(err error, want class, reason string) {
		t.Helper()
		if c, r := classify(err); c != want || r != reason {
			t.Errorf("classify(%v) = %d %q, want %d %q", err, c, r, want, reason)
		}
	}
	f(nil, classOK, "")
	f(kerr.UnknownTopicOrPartition, classTopic, ReasonUnknownTopic)
	f(kerr.UnknownTopicID, classTopic, ReasonUnknownTopic)
	f(kerr.TopicAuthorizationFailed, classTopic, ReasonTopicNotAuthorized)
	f(kerr.InvalidTopicException, classTopic, ReasonInvalidTopic)
	f(fmt.Errorf("%w (uncompressed_bytes=1)", kerr.MessageTooLarge), classBatch, ReasonRecordTooLarge)
	f(kerr.RecordListTooLarge, classBatch, ReasonRecordTooLarge)
	f(kerr.InvalidRecord, classBatch, ReasonInvalidRecord)
	f(kerr.CorruptMessage, classBatch, ReasonInvalidRecord)
	f(kerr.InvalidTimestamp, classBatch, ReasonInvalidRecord)
	// Cluster-wide: the write fails as a whole.
	f(kerr.NotEnoughReplicas, classFatal, "")
	f(kerr.NotEnoughReplicasAfterAppend, classFatal, "")
	f(kerr.SaslAuthenticationFailed, classFatal, "")
	f(kerr.ClusterAuthorizationFailed, classFatal, "")
	f(kerr.RequestTimedOut, classFatal, "")
	f(context.DeadlineExceeded, classFatal, "")
	f(fmt.Errorf("%w, last err: %w", kgo.ErrRecordTimeout, kerr.UnknownTopicOrPartition), classFatal, "")
	f(kgo.ErrClientClosed, classFatal, "")
	f(errors.New("unable to dial: connection refused"), classFatal, "")
}

func TestTopicCacheBounded(t *testing.T) {
	c := newTopicCache(time.Minute)
	now := time.Now()
	for i := range maxTopicStates + 10 {
		c.failed(&RecordError{Reason: ReasonUnknownTopic, Topic: fmt.Sprint("t", i), Err: kerr.UnknownTopicOrPartition}, now)
	}
	if n := len(c.m); n > maxTopicStates {
		t.Fatalf("%d entries, want at most %d", n, maxTopicStates)
	}
	if v, _ := c.lookup(fmt.Sprint("t", maxTopicStates+9), now); v != failIt {
		t.Fatalf("latest entry lost: %v", v)
	}
	if v, _ := c.lookup(fmt.Sprint("t", maxTopicStates+9), now.Add(2*time.Minute)); v != checkIt {
		t.Fatalf("expired entry still fails: %v", v)
	}
	off := newTopicCache(-1)
	off.failed(&RecordError{Topic: "x"}, now)
	if v, _ := off.lookup("x", now); v != checkIt {
		t.Fatal("a negative TTL cached a failure")
	}
}
