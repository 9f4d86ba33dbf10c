//go:build faults

package faults

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/e2e"
)

// floodBody generates, without holding it, an NDJSON body of n events of
// about floodEventPad bytes whose ids are "<prefix>-<i>": hundreds of
// flooding connections cost the test next to no memory.
type floodBody struct {
	prefix string
	n, i   int
	pad    string
	buf    []byte
}

// floodEventPad is the padding of each flood event in bytes.
const floodEventPad = 3900

func newFloodBody(prefix string, n int) *floodBody {
	return &floodBody{prefix: prefix, n: n, pad: strings.Repeat("abcdefghij", floodEventPad/10)}
}

// line renders event i.
func (b *floodBody) line(dst []byte, i int) []byte {
	dst = append(dst, `{"id":"`...)
	dst = append(dst, b.prefix...)
	dst = append(dst, '-')
	dst = strconv.AppendInt(dst, int64(i), 10)
	dst = append(dst, `","event":"flood","pad":"`...)
	dst = append(dst, b.pad...)
	return append(dst, "\"}\n"...)
}

// size is the body's length in bytes.
func (b *floodBody) size() int64 {
	var n int64
	var tmp []byte
	for i := range b.n {
		tmp = b.line(tmp[:0], i)
		n += int64(len(tmp))
	}
	return n
}

func (b *floodBody) Read(p []byte) (int, error) {
	for len(b.buf) == 0 {
		if b.i == b.n {
			return 0, io.EOF
		}
		b.buf = b.line(b.buf[:0], b.i)
		b.i++
	}
	n := copy(p, b.buf)
	b.buf = b.buf[n:]
	return n, nil
}

// TestFaultMemoryFlood floods sluice, run with --memory-limit 128MiB, with
// ten times what that limit allows: 320 connections each sending 4 MB
// bodies back to back (1.28 GB offered at once). Peak RSS must stay under
// twice the limit; the gate must latch and answer 503 with Retry-After;
// /admin/budget must show the latch, and the latch must open again within
// 5 s of the flood's end; nothing acknowledged may be lost and the process
// must keep serving.
func TestFaultMemoryFlood(t *testing.T) {
	const (
		limit    = 128 << 20
		conns    = 320
		perBody  = 1000 // events of about 3.9 KB: a body of about 3.9 MB
		duration = 12 * time.Second
	)
	c := newCluster(t)
	p := startSluice(t, "--brokers", c.addr, "--memory-limit", "128MiB")
	bodySize := newFloodBody("f0-0", perBody).size()
	t.Logf("flood: %d connections × %s bodies = %s offered at once against a %s limit",
		conns, mib(bodySize), mib(conns*bodySize), mib(limit))

	tr := &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr, Timeout: 60 * time.Second}

	var (
		mu        sync.Mutex
		ackedReqs []string // prefixes of acknowledged bodies
		statuses  = map[int]int{}
		errs      = map[string]int{}
		noRetry   atomic.Int64 // 503s without Retry-After
		stop      = make(chan struct{})
		wg        sync.WaitGroup
	)
	for w := range conns {
		wg.Go(func() {
			for r := 0; ; r++ {
				select {
				case <-stop:
					return
				default:
				}
				prefix := fmt.Sprintf("f%d-%d", w, r)
				body := newFloodBody(prefix, perBody)
				req, _ := http.NewRequest(http.MethodPost, p.URL("/v1/events"), body)
				req.ContentLength = body.size()
				req.Header.Set("Content-Type", "application/x-ndjson")
				resp, err := client.Do(req)
				if err != nil {
					mu.Lock()
					errs[classify(err)]++
					mu.Unlock()
					time.Sleep(50 * time.Millisecond)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				mu.Lock()
				statuses[resp.StatusCode]++
				if resp.StatusCode == http.StatusOK {
					ackedReqs = append(ackedReqs, prefix)
				}
				mu.Unlock()
				if resp.StatusCode == http.StatusServiceUnavailable {
					if resp.Header.Get("Retry-After") == "" {
						noRetry.Add(1)
					}
					time.Sleep(50 * time.Millisecond) // a flood does not honour Retry-After
				}
			}
		})
	}

	// Watch the governor while the flood runs.
	var (
		latchedSeen, budgetOK int
		budgetErr             error
		latchedBy             = map[string]int{}
		maxLevel              float64
		maxRejections         uint64
		metricsLatched        int
	)
	start := time.Now()
	for time.Since(start) < duration {
		if b, err := p.adminBudget(); err != nil {
			budgetErr = err
		} else {
			budgetOK++
			if b.Pressure != nil {
				maxLevel = max(maxLevel, b.Pressure.Level)
				if b.Pressure.Latched {
					latchedSeen++
					latchedBy[b.Pressure.LatchedBy]++
				}
			}
			if b.Gate != nil {
				maxRejections = max(maxRejections, b.Gate.Rejections)
			}
		}
		if v, ok := p.metric("sluice_gate_latched"); ok && v == 1 {
			metricsLatched++
		}
		time.Sleep(100 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	tr.CloseIdleConnections()
	// Once the flood is over the latch must open again by itself (the
	// memory the flood held is garbage; nothing else is pressure).
	over := time.Now()
	var reopen time.Duration = -1
	for time.Since(over) < 30*time.Second {
		if b, err := p.adminBudget(); err == nil && b.Pressure != nil && !b.Pressure.Latched {
			reopen = time.Since(over)
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	peak := p.peakRSS()
	p.checkServing(t, 30*time.Second)

	acked := make(map[string]struct{}, len(ackedReqs)*perBody)
	for _, prefix := range ackedReqs {
		for i := range perBody {
			acked[prefix+"-"+strconv.Itoa(i)] = struct{}{}
		}
	}
	recs := readTopic(t, c.addr, topicEvents)
	tl, lost := matchAcks(acked, recs)
	t.Logf("flood: statuses %v, transport errors %v, 503 without Retry-After %d; /admin/budget polls ok %d (last error %v), latched in %d (by %v), max level %.2f, gate rejections %d; sluice_gate_latched=1 in %d polls; latch open again %v after the flood; events acked %d, found %d, lost %d, duplicates %d; peak RSS %s (limit %s)",
		statuses, errs, noRetry.Load(), budgetOK, budgetErr, latchedSeen, latchedBy, maxLevel, maxRejections, metricsLatched,
		reopen.Round(time.Millisecond), tl.acked, tl.found, tl.lost, tl.duplicates, mib(peak), mib(limit))
	if reopen < 0 || reopen > latchRelease {
		t.Errorf("the latch did not open within %v of the flood's end (took %v; -1: not within 30 s)", latchRelease, reopen.Round(time.Millisecond))
	}
	if peak <= 0 {
		t.Fatal("no peak RSS reading")
	}
	if peak >= 2*limit {
		t.Errorf("peak RSS %s, want under %s (twice --memory-limit)", mib(peak), mib(2*limit))
	}
	if statuses[http.StatusServiceUnavailable] == 0 {
		t.Error("no 503 under a flood of ten times the memory limit")
	}
	if noRetry.Load() > 0 {
		t.Errorf("%d 503s without Retry-After", noRetry.Load())
	}
	if statuses[http.StatusOK] == 0 {
		t.Error("no request got 200 during the flood: sluice stopped serving")
	}
	if budgetOK == 0 {
		t.Errorf("GET /admin/budget never answered: %v", budgetErr)
	} else if latchedSeen == 0 {
		t.Error("/admin/budget never showed the pressure latch during the flood")
	}
	if tl.lost > 0 {
		t.Errorf("%d acknowledged events are not in Kafka, e.g. %q", tl.lost, lost)
	}
}

// latchRelease is how soon the latch must open once traffic's pressure is
// gone.
const latchRelease = 5 * time.Second

// classify names a transport error for the report.
func classify(err error) string {
	s := err.Error()
	switch {
	case strings.Contains(s, "reset"):
		return "reset"
	case strings.Contains(s, "refused"):
		return "refused"
	case strings.Contains(s, "EOF"), strings.Contains(s, "closed"), strings.Contains(s, "broken pipe"):
		return "closed"
	case strings.Contains(s, "Timeout"), strings.Contains(s, "timeout"):
		return "timeout"
	}
	return "other"
}

// metric reads one unlabelled sample from the admin listener's /metrics.
func (p *proc) metric(name string) (float64, bool) {
	m, err := e2e.ReadMetrics(httpClient, p.AdminURL("/metrics"))
	if err != nil {
		return 0, false
	}
	v, ok := m[name]
	return v, ok
}
