//go:build faults

package faults

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicehq/sluice/internal/e2e"
)

// eventTopics are the topics the example chain's route transform writes the
// load generator's events to (heartbeats are filtered out).
var eventTopics = []string{"events.page_view", "events.click", "events.purchase", "events.signup"}

// TestFaultPoisonRecords is issue 9's poison measurement: the example chain
// (filter, redact, route, enrich) against a Kafka cluster that creates no
// topics, 6 closed-loop clients sending 100 good events per request and 2
// clients putting one poison record in each of their 100-event requests:
// an event name of 300 bytes (route picks an invalid topic), a topic the
// cluster does not have, a topic the client may not write, a record over
// the broker's message.max.bytes. The normal clients must get 200 for
// every request, the poison clients too (their poison dead-lettered with
// the broker's reason, stage sink), and every acknowledged event must be in
// Kafka. The 200 shares are logged per variant.
func TestFaultPoisonRecords(t *testing.T) {
	// The example chain, built from examples/ into one --transforms folder.
	dir := t.TempDir()
	for _, f := range e2e.GuestFiles(t, e2e.Example("filter"), e2e.Example("redact"), e2e.Example("route"), e2e.Example("enrich")) {
		if err := os.Symlink(f, filepath.Join(dir, filepath.Base(f))); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name   string
		poison func(t testing.TB) string // the poison event (id "poison")
		reason string                    // sluice-reason prefix
	}{
		// The control: the same load without poison.
		{"none", func(testing.TB) string {
			return `{"id":"pgood-0","event":"page_view","user_id":"u-0","geo":{"country":"DE"},"props":{"path":"/"}}`
		}, ""},
		{"invalid-topic", func(testing.TB) string {
			return `{"id":"poison","event":"` + strings.Repeat("x", 300) + `","user_id":"u-1"}`
		}, `invalid topic "events.xxxx`},
		{"unknown-topic", func(testing.TB) string {
			return `{"id":"poison","event":"nosuch","user_id":"u-1"}`
		}, `unknown topic "events.nosuch": UNKNOWN_TOPIC_OR_PARTITION`},
		{"denied-topic", func(testing.TB) string {
			return `{"id":"poison","event":"secret","user_id":"u-1"}`
		}, `topic not authorized "events.secret": TOPIC_AUTHORIZATION_FAILED`},
		{"oversize", func(t testing.TB) string {
			raw := make([]byte, 96<<10) // ~128 KiB of base64: over 64 KiB even compressed
			if _, err := rand.Read(raw); err != nil {
				t.Fatal(err)
			}
			return `{"id":"poison","event":"click","user_id":"u-1","blob":"` + base64.StdEncoding.EncodeToString(raw) + `"}`
		}, `record too large "events.click": MESSAGE_TOO_LARGE`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			allow := func(rt kmsg.ACLResourceType, name string) kfake.ACL {
				return kfake.ACL{Resource: rt, Name: name, Pattern: kmsg.ACLResourcePatternTypeLiteral, Operation: kmsg.ACLOperationAll, Allow: true}
			}
			c := e2e.Kafka(t, e2e.KafkaConfig{
				Topics: append([]string{topicEvents, "events.secret"}, eventTopics...),
				Opts: []kfake.Opt{
					kfake.BrokerConfigs(map[string]string{"message.max.bytes": "65536"}),
					// Without SASL every client is User:ANONYMOUS; it may do
					// anything but write events.secret.
					kfake.EnableACLs(),
					kfake.User("PLAIN", "ANONYMOUS", "unused",
						allow(kmsg.ACLResourceTypeCluster, "kafka-cluster"), allow(kmsg.ACLResourceTypeTopic, "*"), allow(kmsg.ACLResourceTypeGroup, "*"),
						kfake.ACL{Resource: kmsg.ACLResourceTypeTopic, Name: "events.secret", Pattern: kmsg.ACLResourcePatternTypeLiteral, Operation: kmsg.ACLOperationWrite}),
				},
			})
			addr := c.ListenAddrs()[0]
			createDLQ(t, addr)

			// The poison clients' events: one poison, then 99 good events,
			// cycled (request k carries lines 0..99).
			var file strings.Builder
			file.WriteString(tc.poison(t) + "\n")
			for i := 1; i < 100; i++ {
				fmt.Fprintf(&file, `{"id":"pgood-%d","event":"page_view","user_id":"u-%d","email":"p%d@example.com","ip":"10.0.0.%d","geo":{"country":"DE"},"props":{"path":"/"}}`+"\n", i, i, i, i)
			}
			events := filepath.Join(t.TempDir(), "poison.ndjson")
			if err := os.WriteFile(events, []byte(file.String()), 0o600); err != nil {
				t.Fatal(err)
			}

			p := startSluice(t, "--brokers", addr, "--transforms", dir, "--pipeline", "filter,redact,route,enrich")
			normal := startLoad(t, p, "--duration", "8s", "--connections", "6", "--events-per-request", "100", "--heartbeat-share", "0", "--seed", "9001")
			poison := startLoad(t, p, "--duration", "8s", "--connections", "2", "--events-per-request", "100", "--events", events)
			nrep, acked := normal.wait(t, 60*time.Second)
			prep, _ := poison.wait(t, 60*time.Second)

			var recs [][]kafkaRecord
			for _, topic := range eventTopics {
				recs = append(recs, readTopic(t, addr, topic))
			}
			tl, lost := matchAcks(acked, recs...)
			var dead, deadOK int
			for _, r := range readTopic(t, addr, topicDLQ) {
				dead++
				if r.id == "poison" && r.stage == "sink" && strings.HasPrefix(r.reason, tc.reason) {
					deadOK++
				}
			}
			share := func(rep loadReport) float64 {
				if rep.Requests.Total == 0 {
					return 0
				}
				return 100 * float64(rep.Requests.OK) / float64(rep.Requests.Total)
			}
			t.Logf("poison %s: normal clients %d/%d requests 200 (%.1f %%), status %v; poison clients %d/%d 200 (%.1f %%), status %v; "+
				"normal events acked %d, found %d, lost %d, duplicates %d; dead letters %d (%d with stage sink and reason %q…); %.0f events/s acked by the normal clients",
				tc.name, nrep.Requests.OK, nrep.Requests.Total, share(nrep), nrep.Status, prep.Requests.OK, prep.Requests.Total, share(prep), prep.Status,
				tl.acked, tl.found, tl.lost, tl.duplicates, dead, deadOK, tc.reason, nrep.Events.PerSecond)
			if nrep.Requests.Total == 0 || nrep.Requests.OK != nrep.Requests.Total {
				t.Errorf("normal clients: %d of %d requests 200, want all", nrep.Requests.OK, nrep.Requests.Total)
			}
			if prep.Requests.Total == 0 || prep.Requests.OK != prep.Requests.Total {
				t.Errorf("poison clients: %d of %d requests 200, want all (the poison dead-lettered)", prep.Requests.OK, prep.Requests.Total)
			}
			if tl.lost > 0 {
				t.Errorf("%d acknowledged events are not in Kafka, e.g. %q", tl.lost, lost)
			}
			if tc.reason == "" { // the control
				deadOK = int(prep.Requests.OK)
			}
			if uint64(deadOK) != prep.Requests.OK || (tc.reason != "" && dead != deadOK) || (tc.reason == "" && dead != 0) {
				t.Errorf("%d dead letters, %d of them the poison with stage sink and the broker's reason; want one per poison request answered 200 (%d)", dead, deadOK, prep.Requests.OK)
			}
			p.checkServing(t, 10*time.Second)
		})
	}
}

// createDLQ creates the DLQ topic with a max.message.bytes of 1 MiB, so that
// it takes the records the event topics refuse as too large.
func createDLQ(t testing.TB, addr string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	mmb := "1048576"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 3, 1, map[string]*string{"max.message.bytes": &mmb}, topicDLQ); err != nil {
		t.Fatal(err)
	}
}
