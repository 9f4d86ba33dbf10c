//go:build faults

package faults

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Guest modules, relative to the module root.
const (
	hostGuests  = "wasmhost/testdata/guests"
	faultGuests = "faults/testdata/guests"
)

// TestFaultHostileTransforms runs a pipeline of one hostile guest from
// wasmhost/testdata/guests that fails on one record in a thousand: by a
// trap (panic), by looping forever, or by exhausting its memory. The
// flagged records must be dead-lettered with the reason of their failure
// and never written to the events topic; the other records flow; nothing
// acknowledged is lost; the process keeps serving.
func TestFaultHostileTransforms(t *testing.T) {
	for _, tc := range []struct {
		src, guest, flag string
		reasons          []string // accepted reason prefixes
	}{
		{hostGuests, "trapper", "trap", []string{"trap: trapper:"}},
		{hostGuests, "looper", "loop", []string{"deadline: looper"}},
		// hog grows 1 MiB at a time: depending on the call deadline and
		// the machine's speed it runs out of its memory limit or is
		// interrupted by the deadline first; either way a reason.
		{hostGuests, "hog", "hog", []string{"oom: hog:", "deadline: hog"}},
		// gulp asks for 256 MiB at once: out of memory at once.
		{faultGuests, "gulp", "gulp", []string{"oom: gulp:"}},
	} {
		t.Run(tc.guest, func(t *testing.T) {
			dir := buildGuest(t, tc.src, tc.guest)
			c := newCluster(t)
			p := startSluice(t, "--brokers", c.addr, "--memory-limit", "256MiB",
				"--transforms", dir, "--pipeline", tc.guest)
			const (
				conns    = 4
				requests = 60 // per connection
				perReq   = 100
				every    = 1000 // one flagged record in this many
			)
			var (
				mu       sync.Mutex
				acked    = map[string]struct{}{}
				flagged  = map[string]struct{}{}
				status   = map[int]int{}
				nextSeq  atomic.Int64
				failures atomic.Int64
			)
			start := time.Now()
			var wg sync.WaitGroup
			for w := range conns {
				wg.Go(func() {
					for r := range requests {
						var body strings.Builder
						ids := make([]string, 0, perReq)
						var flags []string
						for range perReq {
							seq := nextSeq.Add(1)
							id := fmt.Sprintf("%s-%d-%d-%d", tc.guest, w, r, seq)
							ids = append(ids, id)
							fl := ""
							if seq%every == every/2 {
								fl = `,"` + tc.flag + `":true`
								flags = append(flags, id)
							}
							fmt.Fprintf(&body, `{"id":"%s","event":"page_view","user_id":"u-%d","props":{"path":"/docs"}%s}`+"\n", id, seq%5000, fl)
						}
						// Retry 503s (pressure while a guest is being
						// replaced) for up to 20 s, like a real client.
						deadline := time.Now().Add(20 * time.Second)
						for {
							code, resp, err := post(p.URL("/v1/events"), "application/x-ndjson", nil, []byte(body.String()))
							mu.Lock()
							status[code]++
							if code == http.StatusOK {
								for _, id := range ids {
									acked[id] = struct{}{}
								}
								for _, id := range flags {
									flagged[id] = struct{}{}
								}
							}
							mu.Unlock()
							if code == http.StatusOK {
								break
							}
							if code != http.StatusServiceUnavailable && code != http.StatusGatewayTimeout || time.Now().After(deadline) {
								failures.Add(1)
								t.Errorf("request %d/%d: %d %s %v", w, r, code, resp, err)
								break
							}
							time.Sleep(100 * time.Millisecond)
						}
					}
				})
			}
			wg.Wait()
			elapsed := time.Since(start)
			p.checkServing(t, 10*time.Second)

			events := readTopic(t, c.addr, topicEvents)
			dlq := readTopic(t, c.addr, topicDLQ)
			tl, lost := matchAcks(acked, events, dlq)
			inEvents := map[string]bool{}
			for _, r := range events {
				inEvents[r.id] = true
			}
			reasons := map[string]string{}
			otherDLQ := 0
			for _, r := range dlq {
				if _, ok := flagged[r.id]; ok {
					reasons[r.id] = r.reason
				} else if _, ok := acked[r.id]; ok {
					otherDLQ++
				}
			}
			var flaggedOut, badReason int
			var sample, badSample string
			kinds := map[string]int{}
			for id := range flagged {
				if inEvents[id] {
					flaggedOut++
				}
				ok := false
				for _, pre := range tc.reasons {
					ok = ok || strings.HasPrefix(reasons[id], pre)
				}
				if !ok {
					badReason++
					badSample = fmt.Sprintf("%s: %q", id, reasons[id])
				} else {
					kinds[strings.SplitN(reasons[id], ":", 2)[0]]++
					if sample == "" {
						sample = reasons[id]
					}
				}
			}
			unflagged := tl.acked - len(flagged)
			flowed := 0
			for id := range acked {
				if _, ok := flagged[id]; !ok && inEvents[id] {
					flowed++
				}
			}
			t.Logf("%s: %d requests in %v, statuses %v; events acked %d (flagged %d), found %d, lost %d, duplicates %d; flagged dead-lettered with reason %d %v, flagged written to events %d; unflagged flowed %d of %d, unflagged dead-lettered with a batch reason %d; reason e.g. %q; peak RSS %s",
				tc.guest, conns*requests, elapsed.Round(time.Millisecond), status, tl.acked, len(flagged), tl.found, tl.lost, tl.duplicates,
				len(flagged)-badReason, kinds, flaggedOut, flowed, unflagged, otherDLQ, sample, mib(p.peakRSS()))
			if len(flagged) == 0 {
				t.Fatal("no flagged record was acknowledged: the fault was not exercised")
			}
			if tl.lost > 0 {
				t.Errorf("%d acknowledged events are neither in %s nor in %s, e.g. %q", tl.lost, topicEvents, topicDLQ, lost)
			}
			if flaggedOut > 0 {
				t.Errorf("%d flagged records were written to %s", flaggedOut, topicEvents)
			}
			if badReason > 0 {
				t.Errorf("%d of %d flagged records are not dead-lettered with a reason starting with one of %q, e.g. %s", badReason, len(flagged), tc.reasons, badSample)
			}
			// The rest flow: a trapping call's records are retried one by
			// one, so only a batch with more traps than the isolation cap
			// dead-letters its unflagged records.
			if flowed < unflagged*9/10 {
				t.Errorf("only %d of %d unflagged records flowed to %s", flowed, unflagged, topicEvents)
			}
		})
	}
}
