package admin_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/valyala/fasthttp"
)

// The end-to-end tests start the real sluice binary (built once, without
// -race: it is the product under test) on 127.0.0.1:0 against an
// in-process kfake broker, and drive it over HTTP, Kafka and /metrics.

const e2eToken = "e2e-admin-token"

var binary struct {
	once sync.Once
	path string
	err  error
	mu   sync.Mutex
	runs []*sluiceProc
}

func sluiceBinary(tb testing.TB) string {
	tb.Helper()
	binary.once.Do(func() {
		// SLUICE_TEST_BINARY tests a prebuilt binary instead.
		if bin := os.Getenv("SLUICE_TEST_BINARY"); bin != "" {
			binary.path = bin
			return
		}
		binary.path = filepath.Join(guests.dir, "sluice")
		cmd := exec.Command("go", "build", "-o", binary.path, "./cmd/sluice")
		cmd.Dir = repoRoot()
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			binary.err = fmt.Errorf("build sluice: %v\n%s", err, out)
		}
	})
	if binary.err != nil {
		tb.Fatal(binary.err)
	}
	return binary.path
}

// stopBinaries kills any sluice a failed test left behind.
func stopBinaries() {
	binary.mu.Lock()
	defer binary.mu.Unlock()
	for _, p := range binary.runs {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
		}
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// stop sends SIGTERM and waits for a clean exit.
func (p *sluiceProc) stop(tb testing.TB) {
	tb.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		tb.Fatalf("sluice did not exit within 30s of SIGTERM:\n%s", tail(p.stderr.String(), 40))
	}
	if p.exitErr != nil {
		tb.Fatalf("sluice exited with %v:\n%s", p.exitErr, tail(p.stderr.String(), 40))
	}
}

// sluiceProc is a running sluice binary.
type sluiceProc struct {
	cmd         *exec.Cmd
	http, admin string
	stderr      *syncBuffer
	done        chan struct{}
	exitErr     error
	api         *adminClient
}

// startSluice runs `sluice run` against brokers with args, and waits until
// both listeners are bound (the --ready-file names them). Without a
// --data-dir in args it gets a fresh one.
func startSluice(tb testing.TB, brokers string, args ...string) *sluiceProc {
	tb.Helper()
	bin := sluiceBinary(tb)
	rf := filepath.Join(tb.TempDir(), "ready")
	all := []string{"run", "--http", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--ready-file", rf,
		"--brokers", brokers, "--admin-token", e2eToken}
	if !slices.Contains(args, "--data-dir") {
		all = append(all, "--data-dir", tb.TempDir())
	}
	all = append(all, args...)
	p := &sluiceProc{cmd: exec.Command(bin, all...), stderr: &syncBuffer{}, done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = io.Discard, p.stderr
	if err := p.cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	binary.mu.Lock()
	binary.runs = append(binary.runs, p)
	binary.mu.Unlock()
	go func() {
		p.exitErr = p.cmd.Wait()
		close(p.done)
	}()
	tb.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.done:
			case <-time.After(30 * time.Second):
				_ = p.cmd.Process.Kill()
				<-p.done
			}
		}
		if tb.Failed() {
			tb.Logf("sluice stderr (tail):\n%s", tail(p.stderr.String(), 60))
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		if b, err := os.ReadFile(rf); err == nil {
			for _, f := range strings.Fields(string(b)) {
				k, v, _ := strings.Cut(f, "=")
				switch k {
				case "http":
					p.http = v
				case "admin":
					p.admin = v
				}
			}
			break
		}
		select {
		case <-p.done:
			tb.Fatalf("sluice exited at start: %v\n%s", p.exitErr, p.stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			tb.Fatalf("sluice did not start within 60s:\n%s", p.stderr.String())
		}
	}
	p.api = &adminClient{
		c:     &fasthttp.Client{MaxResponseBodySize: 64 << 20, ReadTimeout: 60 * time.Second, WriteTimeout: 60 * time.Second},
		base:  "http://" + p.admin,
		token: e2eToken,
	}
	return p
}

func tail(s string, lines int) string {
	l := strings.Split(s, "\n")
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return strings.Join(l, "\n")
}

// newKafka starts an in-process kfake broker with the default topics.
func newKafka(tb testing.TB) string {
	tb.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "events", "sluice.dlq", "events.click", "acme.events"), kfake.AllowAutoTopicCreation())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.Close)
	return c.ListenAddrs()[0]
}

// consume reads every record of topic (as of now) from the beginning.
func consume(tb testing.TB, broker, topic string) []*kgo.Record {
	tb.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker))
	if err != nil {
		tb.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		tb.Fatal(err)
	}
	var total int64
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err == nil {
			total += o.Offset
		}
	})
	if total == 0 {
		return nil
	}
	cc, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxBytes(64<<20))
	if err != nil {
		tb.Fatal(err)
	}
	defer cc.Close()
	var out []*kgo.Record
	for int64(len(out)) < total {
		fs := cc.PollFetches(ctx)
		if ctx.Err() != nil {
			tb.Fatalf("consumed %d of %d records of %s before the timeout", len(out), total, topic)
		}
		out = append(out, fs.Records()...)
	}
	return out
}

var ingestClient = &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 128}}

type ingestResult struct {
	code                    int
	accepted, dropped, dead int
	body                    string
}

// post sends one ingest request; hdr alternates header names and values.
func (p *sluiceProc) post(body []byte, contentType string, hdr ...string) (ingestResult, error) {
	req, err := http.NewRequest("POST", "http://"+p.http+"/v1/events", bytes.NewReader(body))
	if err != nil {
		return ingestResult{}, err
	}
	req.Header.Set("Content-Type", contentType)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := ingestClient.Do(req)
	if err != nil {
		return ingestResult{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	r := ingestResult{code: res.StatusCode, body: string(b)}
	if res.StatusCode == 200 {
		var c struct {
			Accepted     int `json:"accepted"`
			Dropped      int `json:"dropped"`
			DeadLettered int `json:"dead_lettered"`
		}
		if jerr := jsonUnmarshal(b, &c); jerr != nil {
			return r, fmt.Errorf("200 body %q: %w", b, jerr)
		}
		r.accepted, r.dropped, r.dead = c.Accepted, c.Dropped, c.DeadLettered
	}
	return r, err
}

// metrics returns every sample of /metrics by its full name (with labels).
func (p *sluiceProc) metrics(tb testing.TB) map[string]float64 {
	tb.Helper()
	r := p.api.doToken(tb, "", "GET", "/metrics", nil).want(tb, 200, "/metrics")
	out := map[string]float64{}
	for _, l := range strings.Split(string(r.body), "\n") {
		if l == "" || l[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(l, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(l[i+1:], 64)
		if err != nil {
			tb.Fatalf("metric line %q: %v", l, err)
		}
		out[l[:i]] = v
	}
	return out
}

// metricNames are the metrics sluice documents as its interface (see the
// package doc). Labelled ones are checked by their family name.
var metricNames = []string{
	"sluice_ingest_requests_total", "sluice_ingest_events_total", "sluice_ingest_bytes_total",
	"sluice_gate_rejections_total", "sluice_gate_latched", "sluice_byte_budget_bytes", "sluice_recv_block_bytes",
	"sluice_pressure_ratio", "sluice_memory_inflight_bytes", "sluice_transform_calls_total",
	"sluice_transform_duration_seconds", "sluice_transform_traps_total", "sluice_events_dropped_total",
	"sluice_dlq_events_total", "sluice_sink_records_total", "sluice_sink_errors_total", "sluice_sink_latency_seconds",
}

// family sums every sample of a metric family (any labels; histograms by
// their _count).
func family(m map[string]float64, name string) (sum float64, found bool) {
	for k, v := range m {
		base, _, _ := strings.Cut(k, "{")
		if base == name || base == name+"_count" {
			sum += v
			found = true
		}
	}
	return sum, found
}
