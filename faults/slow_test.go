//go:build faults

package faults

import (
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestFaultSlowClients opens hundreds of hostile connections (bodies sent
// a byte at a time, headers sent a byte at a time, connections that send
// nothing) and measures that a normal client still gets its 200s within a
// bound while they are open, and that the server's read timeout ends every
// request that never completes.
func TestFaultSlowClients(t *testing.T) {
	const (
		slowBodies  = 200
		slowHeaders = 100
		idle        = 200
		minHold     = 10 * time.Second       // the normal client runs at least this long
		maxHold     = 50 * time.Second       // and at most this long, waiting for the read timeout
		drip        = 200 * time.Millisecond // one byte per drip per connection
		bound       = 2 * time.Second        // a normal request's latency bound
	)
	c := newCluster(t)
	p := startSluice(t, "--brokers", c.addr, "--memory-limit", "256MiB")

	var (
		wg                sync.WaitGroup
		opened, closedBy  atomic.Int64 // connections opened; dripping connections closed by the server
		idleClosed        atomic.Int64 // idle connections closed by the server
		lastClose         atomic.Int64 // when the last dripping connection was closed, ns since start
		begin             = time.Now()
		stop              = make(chan struct{})
		conns             []net.Conn
		connsMu           sync.Mutex
		bodyHead          = fmt.Sprintf("POST /v1/events HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-ndjson\r\nContent-Length: 4096\r\n\r\n", p.http)
		slowHeaderRequest = fmt.Sprintf("POST /v1/events HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-ndjson\r\nX-Slow: %s\r\n", p.http, strings.Repeat("s", 200))
	)
	dial := func() net.Conn {
		conn, err := net.DialTimeout("tcp", p.http, 5*time.Second)
		if err != nil {
			t.Errorf("dial: %v", err)
			return nil
		}
		opened.Add(1)
		connsMu.Lock()
		conns = append(conns, conn)
		connsMu.Unlock()
		return conn
	}
	closed := func() {
		closedBy.Add(1)
		lastClose.Store(int64(time.Since(begin)))
	}
	dripper := func(conn net.Conn, prefix, trickle string) {
		defer wg.Done()
		if _, err := conn.Write([]byte(prefix)); err != nil {
			closed()
			return
		}
		tk := time.NewTicker(drip)
		defer tk.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tk.C:
			}
			if _, err := conn.Write([]byte{trickle[i%len(trickle)]}); err != nil {
				closed()
				return
			}
		}
	}
	for range slowBodies {
		if conn := dial(); conn != nil {
			wg.Add(1)
			go dripper(conn, bodyHead, `{"id":"slow","pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}`+"\n")
		}
	}
	for range slowHeaders {
		if conn := dial(); conn != nil {
			wg.Add(1)
			go dripper(conn, "", slowHeaderRequest)
		}
	}
	for range idle {
		if conn := dial(); conn != nil {
			wg.Go(func() {
				// An idle connection sends nothing; a read returns once
				// the server closes it (or the test does).
				var b [64]byte
				if _, err := conn.Read(b[:]); err != nil {
					select {
					case <-stop:
					default:
						idleClosed.Add(1)
					}
				}
			})
		}
	}
	t.Cleanup(func() {
		connsMu.Lock()
		defer connsMu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	time.Sleep(time.Second) // let every hostile connection be accepted

	// The normal client: requests of 100 events, one after another.
	var lat []time.Duration
	statuses := map[int]int{}
	acked := map[string]struct{}{}
	start := time.Now()
	dripping := int64(slowBodies + slowHeaders)
	var stillOpenAtMin int64 = -1
	for seq := 0; ; seq++ {
		el := time.Since(start)
		if el >= minHold && stillOpenAtMin < 0 {
			stillOpenAtMin = opened.Load() - idle - closedBy.Load()
		}
		if el >= maxHold || el >= minHold && closedBy.Load() >= dripping {
			break
		}
		var body strings.Builder
		ids := make([]string, 0, 100)
		for i := range 100 {
			id := fmt.Sprintf("normal-%d-%d", seq, i)
			ids = append(ids, id)
			fmt.Fprintf(&body, `{"id":"%s","event":"click"}`+"\n", id)
		}
		t0 := time.Now()
		code, resp, err := post(p.URL("/v1/events"), "application/x-ndjson", nil, []byte(body.String()))
		lat = append(lat, time.Since(t0))
		statuses[code]++
		if err != nil || code != http.StatusOK {
			t.Errorf("normal request %d: %d %s %v", seq, code, resp, err)
			continue
		}
		for _, id := range ids {
			acked[id] = struct{}{}
		}
		time.Sleep(20 * time.Millisecond)
	}
	close(stop)
	connsMu.Lock()
	for _, c := range conns {
		_ = c.Close() // wakes the idle readers
	}
	connsMu.Unlock()
	wg.Wait()

	slices.Sort(lat)
	q := func(f float64) time.Duration { return lat[min(len(lat)-1, int(f*float64(len(lat))))] }
	recs := readTopic(t, c.addr, topicEvents)
	tl, lost := matchAcks(acked, recs)
	t.Logf("slow clients: %d hostile connections (%d byte-a-time bodies, %d byte-a-time headers, %d idle); %d dripping connections still open after %v; %d of %d dripping connections closed by the server, the last after %v; %d of %d idle connections closed by the server; normal client: %d requests over %v, statuses %v, latency p50 %v p99 %v max %v; events acked %d, found %d, lost %d, duplicates %d; peak RSS %s",
		opened.Load(), slowBodies, slowHeaders, idle, stillOpenAtMin, minHold, closedBy.Load(), dripping, time.Duration(lastClose.Load()).Round(time.Millisecond),
		idleClosed.Load(), idle, len(lat), time.Since(start).Round(time.Millisecond), statuses,
		q(0.5).Round(time.Microsecond), q(0.99).Round(time.Microsecond), lat[len(lat)-1].Round(time.Microsecond),
		tl.acked, tl.found, tl.lost, tl.duplicates, mib(p.peakRSS()))
	if opened.Load() < slowBodies+slowHeaders+idle {
		t.Fatalf("only %d hostile connections opened", opened.Load())
	}
	if stillOpenAtMin < dripping/2 {
		t.Errorf("only %d dripping connections were still open after %v: the fault was not exercised", stillOpenAtMin, minHold)
	}
	// A read timeout must end a request that never completes: otherwise
	// slow clients hold their connections (and server state) forever.
	if closedBy.Load() < dripping {
		t.Errorf("%d of %d connections sending a byte every %v were still open after %v: no read timeout ends them",
			dripping-closedBy.Load(), dripping, drip, maxHold)
	}
	if len(lat) < 20 {
		t.Errorf("only %d normal requests completed", len(lat))
	}
	if q(0.99) > bound {
		t.Errorf("normal client p99 %v over the %v bound while slow clients are open", q(0.99), bound)
	}
	if tl.lost > 0 {
		t.Errorf("%d acknowledged events are not in Kafka, e.g. %q", tl.lost, lost)
	}
	p.checkServing(t, 10*time.Second)
}
