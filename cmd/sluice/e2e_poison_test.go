package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicehq/sluice/internal/e2e"
)

// poison kinds: what a poison client puts in one event of each request, and
// the reason the dead letter must carry.
var poisonKinds = []struct {
	name   string
	event  func(id string) string
	reason string // prefix of sluice-reason
	topic  string // sluice-topic header
}{
	{"invalid-topic", func(id string) string {
		return fmt.Sprintf(`{"id":%q,"event":%q,"user_id":"p"}`, id, strings.Repeat("x", 300))
	}, `invalid topic "events.xxx`, "events." + strings.Repeat("x", 300)},
	{"unknown-topic", func(id string) string {
		return fmt.Sprintf(`{"id":%q,"event":"nosuch","user_id":"p"}`, id)
	}, `unknown topic "events.nosuch": UNKNOWN_TOPIC_OR_PARTITION`, "events.nosuch"},
	{"denied-topic", func(id string) string {
		return fmt.Sprintf(`{"id":%q,"event":"secret","user_id":"p"}`, id)
	}, `topic not authorized "events.secret": TOPIC_AUTHORIZATION_FAILED`, "events.secret"},
	{"oversize", func(id string) string {
		raw := make([]byte, 96<<10)
		_, _ = rand.Read(raw)
		return fmt.Sprintf(`{"id":%q,"event":"click","user_id":"p","blob":%q}`, id, base64.StdEncoding.EncodeToString(raw))
	}, `record too large "events.click": MESSAGE_TOO_LARGE`, "events.click"},
}

// TestPoisonRecordsCostOnlyThemselves runs the real binary against a kfake
// cluster that creates no topics, limits records to 64 KiB and denies
// writes to one topic, with six normal clients and two poison clients whose
// every request carries one bad event (a 300-byte event name, so route
// picks an invalid topic; a topic the cluster does not have; the denied
// topic; a record over the broker's max.message.bytes). Every request must
// get 200; the poison lands in the DLQ with the broker's reason; everything
// acknowledged is read back from Kafka, byte for byte.
func TestPoisonRecordsCostOnlyThemselves(t *testing.T) {
	wasmDir := t.TempDir()
	buildExamples(t, wasmDir, "route")
	// Without SASL every client is User:ANONYMOUS, and kfake's ACLs apply
	// to it: it may do anything but write events.secret.
	allow := func(rt kmsg.ACLResourceType, name string) kfake.ACL {
		return kfake.ACL{Resource: rt, Name: name, Pattern: kmsg.ACLResourcePatternTypeLiteral, Operation: kmsg.ACLOperationAll, Allow: true}
	}
	c := e2e.Kafka(t, e2e.KafkaConfig{
		Topics: []string{"events", "events.page_view", "events.click", "events.purchase", "events.secret"},
		Opts: []kfake.Opt{
			kfake.BrokerConfigs(map[string]string{"message.max.bytes": "65536"}),
			kfake.EnableACLs(),
			kfake.User("PLAIN", "ANONYMOUS", "unused",
				allow(kmsg.ACLResourceTypeCluster, "kafka-cluster"), allow(kmsg.ACLResourceTypeTopic, "*"), allow(kmsg.ACLResourceTypeGroup, "*"),
				kfake.ACL{Resource: kmsg.ACLResourceTypeTopic, Name: "events.secret", Pattern: kmsg.ACLResourcePatternTypeLiteral, Operation: kmsg.ACLOperationWrite}),
		},
	})
	brokers := c.ListenAddrs()
	// The DLQ must take what the event topics refuse.
	adm, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	mmb := "1048576"
	if _, err := kadm.NewClient(adm).CreateTopic(context.Background(), 3, 1, map[string]*string{"max.message.bytes": &mmb}, "sluice.dlq"); err != nil {
		t.Fatal(err)
	}

	p := startSluice(t, "--brokers", strings.Join(brokers, ","), "--transforms", wasmDir, "--pipeline", "route", "--ack-timeout", "30s")

	const normal, poisoners, requests, perRequest = 6, 2, 12, 10
	kinds := []string{"page_view", "click", "purchase"}
	type sent struct {
		value, topic string
	}
	var (
		mu      sync.Mutex
		acked   = map[string]sent{} // id → what a 200 covered
		poisons = map[string]int{}  // id → poison kind
		fails   []string
		wg      sync.WaitGroup
	)
	for cl := range normal + poisoners {
		wg.Go(func() {
			for r := range requests {
				var body bytes.Buffer
				batch := map[string]sent{}
				poisonAt, kind := -1, (cl+r)%len(poisonKinds)
				if cl >= normal {
					poisonAt = r % perRequest
				}
				for e := range perRequest {
					id := fmt.Sprintf("c%d-r%d-e%d", cl, r, e)
					var v string
					if e == poisonAt {
						v = poisonKinds[kind].event(id)
						mu.Lock()
						poisons[id] = kind
						mu.Unlock()
					} else {
						k := kinds[(cl+r+e)%len(kinds)]
						v = fmt.Sprintf(`{"id":%q,"event":%q,"user_id":"u%d","n":%d}`, id, k, e%4, r)
						batch[id] = sent{value: v, topic: "events." + k}
					}
					body.WriteString(v)
					body.WriteByte('\n')
				}
				resp, err := doErr("POST", p.URL("/v1/events"), body.Bytes(), "Content-Type", "application/x-ndjson")
				wantDead := 0
				if poisonAt >= 0 {
					wantDead = 1
				}
				want := fmt.Sprintf(`{"accepted":%d,"dropped":0,"dead_lettered":%d}`, perRequest-wantDead, wantDead)
				mu.Lock()
				if err != nil || resp.code != 200 || strings.TrimSpace(resp.body) != want {
					fails = append(fails, fmt.Sprintf("client %d request %d: %d %s %v (want 200 %s)", cl, r, resp.code, strings.TrimSpace(resp.body), err, want))
				} else {
					for id, s := range batch {
						acked[id] = s
					}
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(fails) > 0 {
		t.Fatalf("%d of %d requests not answered 200 as expected; first: %s", len(fails), (normal+poisoners)*requests, fails[0])
	}

	// Every acknowledged event once, unchanged, in its topic; nothing else.
	recs := consume(t, brokers, "events", "events.page_view", "events.click", "events.purchase", "events.secret", "sluice.dlq")
	seen := map[string]bool{}
	dead := map[string]*kgo.Record{}
	for _, r := range recs {
		id := eventIDOf(r.Value)
		if r.Topic == "sluice.dlq" {
			if dead[id] != nil {
				t.Fatalf("dead letter %s written twice", id)
			}
			dead[id] = r
			continue
		}
		s, ok := acked[id]
		switch {
		case !ok:
			t.Fatalf("record %q in %s was never acknowledged", id, r.Topic)
		case seen[id]:
			t.Fatalf("event %s written twice", id)
		case r.Topic != s.topic || string(r.Value) != s.value:
			t.Fatalf("event %s: %s %q, want %s %q", id, r.Topic, r.Value, s.topic, s.value)
		}
		seen[id] = true
	}
	if len(seen) != len(acked) || len(acked) != normal*requests*perRequest+poisoners*requests*(perRequest-1) {
		t.Fatalf("%d of %d acknowledged events in Kafka (want %d acknowledged)", len(seen), len(acked), normal*requests*perRequest+poisoners*requests*(perRequest-1))
	}
	if len(dead) != len(poisons) {
		t.Fatalf("%d dead letters, want the %d poison records", len(dead), len(poisons))
	}
	perKind := make([]int, len(poisonKinds))
	for id, k := range poisons {
		r := dead[id]
		pk := poisonKinds[k]
		if r == nil {
			t.Fatalf("poison %s (%s) is not in the DLQ", id, pk.name)
		}
		if got := e2e.Header(r, "sluice-stage"); got != "sink" {
			t.Fatalf("poison %s: sluice-stage %q, want sink", id, got)
		}
		if got := e2e.Header(r, "sluice-reason"); !strings.HasPrefix(got, pk.reason) {
			t.Fatalf("poison %s (%s): sluice-reason %q, want prefix %q", id, pk.name, got, pk.reason)
		}
		if got := e2e.Header(r, "sluice-topic"); got != pk.topic {
			t.Fatalf("poison %s: sluice-topic %q, want %q", id, got, pk.topic)
		}
		if eventIDOf(r.Value) != id || !bytes.HasPrefix(r.Value, []byte(`{"id":"`+id+`"`)) {
			t.Fatalf("poison %s: DLQ value %.80q is not the record as sent", id, r.Value)
		}
		perKind[k]++
	}
	m := p.Metrics(t, client)
	for k, class := range []string{"sink_invalid_topic", "sink_unknown_topic", "sink_topic_not_authorized", "sink_record_too_large"} {
		if got := m[`sluice_dlq_events_total{reason="`+class+`"}`]; int(got) != perKind[k] {
			t.Errorf("sluice_dlq_events_total{reason=%q} = %v, want %d", class, got, perKind[k])
		}
	}
	if got := m[`sluice_ingest_requests_total{code="503"}`]; got != 0 {
		t.Errorf("%v requests answered 503", got)
	}
	if got := m["sluice_driver_restarts_total"]; got != 0 {
		t.Errorf("driver restarted %v times", got)
	}
	t.Logf("%d requests all 200; %d events delivered; %d poison records dead-lettered (%v by kind)", (normal+poisoners)*requests, len(seen), len(dead), perKind)
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

// eventIDOf returns the "id" of an event that starts with it.
func eventIDOf(v []byte) string {
	const key = `{"id":"`
	if !bytes.HasPrefix(v, []byte(key)) {
		return ""
	}
	rest := v[len(key):]
	if j := bytes.IndexByte(rest, '"'); j >= 0 {
		return string(rest[:j])
	}
	return ""
}
