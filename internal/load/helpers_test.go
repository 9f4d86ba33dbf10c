package load

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// ingestServer is an in-process HTTP ingest endpoint on 127.0.0.1:0 that
// counts requests and events and answers with scripted statuses.
type ingestServer struct {
	URL string

	// script returns the status of the n-th request (0-based); nil: 200.
	script func(n int64) int
	// delay is slept before answering.
	delay time.Duration

	n        atomic.Int64
	mu       sync.Mutex
	requests int
	events   int
	status   map[int]int
	okIDs    map[string]int // id → times seen in 200-answered requests
	allIDs   map[string]int
	lines    [][]byte // every event line received (decompressed)
	headers  map[string]string
	bodies   [][]byte // raw (possibly compressed) bodies, when keepBodies
	keep     bool
	badJSON  int
	arrivals []time.Time
}

func newIngestServer(tb testing.TB, script func(n int64) int) *ingestServer {
	tb.Helper()
	s := &ingestServer{script: script, status: map[int]int{}, okIDs: map[string]int{}, allIDs: map[string]int{}, headers: map[string]string{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: s.handle, ReadTimeout: 5 * time.Second, CloseOnShutdown: true}
	go srv.Serve(ln)
	tb.Cleanup(func() { srv.Shutdown() })
	s.URL = "http://" + ln.Addr().String() + "/v1/events"
	return s
}

func (s *ingestServer) handle(ctx *fasthttp.RequestCtx) {
	arrived := time.Now()
	n := s.n.Add(1) - 1
	if s.delay > 0 {
		time.Sleep(s.delay)
	}
	status := fasthttp.StatusOK
	if s.script != nil {
		status = s.script(n)
	}
	body := ctx.Request.Body()
	if string(ctx.Request.Header.ContentEncoding()) == "gzip" {
		var err error
		if body, err = ctx.Request.BodyGunzip(); err != nil {
			ctx.Error("bad gzip: "+err.Error(), fasthttp.StatusBadRequest)
			return
		}
	}
	var lines [][]byte
	if bytes.HasPrefix(body, []byte("[")) {
		var arr []json.RawMessage
		if err := json.Unmarshal(body, &arr); err != nil {
			ctx.Error("bad array", fasthttp.StatusBadRequest)
			return
		}
		for _, m := range arr {
			lines = append(lines, m)
		}
	} else {
		for _, l := range bytes.Split(body, []byte("\n")) {
			if len(l) > 0 {
				lines = append(lines, append([]byte(nil), l...))
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	s.events += len(lines)
	s.arrivals = append(s.arrivals, arrived)
	s.status[status]++
	ctx.Request.Header.VisitAll(func(k, v []byte) { s.headers[string(k)] = string(v) })
	if s.keep {
		s.bodies = append(s.bodies, append([]byte(nil), ctx.Request.Body()...))
	}
	for _, l := range lines {
		s.lines = append(s.lines, l)
		var doc struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(l, &doc) != nil {
			s.badJSON++
			continue
		}
		s.allIDs[doc.ID]++
		if status == fasthttp.StatusOK {
			s.okIDs[doc.ID]++
		}
	}
	ctx.SetStatusCode(status)
	if status == fasthttp.StatusServiceUnavailable {
		ctx.Response.Header.Set("Retry-After", "1")
	}
}

// testConfig is a quiet configuration against url.
func testConfig(url string) Config {
	cfg := DefaultConfig()
	cfg.URL = url
	cfg.ProgressInterval = 0
	cfg.Timeout = 5 * time.Second
	cfg.Seed = 42
	return cfg
}

func runLoad(tb testing.TB, cfg Config) *Report {
	tb.Helper()
	rep, err := Run(tb.Context(), cfg, nil)
	if err != nil {
		tb.Fatalf("Run: %v", err)
	}
	return rep
}

func readLines(tb testing.TB, path string) []string {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}

func listen(tb testing.TB) net.Listener {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	return ln
}
