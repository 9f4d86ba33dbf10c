//go:build faults

package faults

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
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
)

// Topics every scenario's cluster carries (the binary's defaults).
const (
	topicEvents = "events"
	topicDLQ    = "sluice.dlq"
	adminToken  = "faults-admin-token"
)

// binDir holds the binary built once by TestMain.
var (
	binDir    string
	sluiceBin string
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "sluice-faults-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binDir = dir
	sluiceBin = filepath.Join(dir, "sluice")
	start := time.Now()
	cmd := exec.Command("go", "build", "-o", sluiceBin, "./cmd/sluice")
	cmd.Dir = repoRoot()
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "build sluice: %v\n", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "built %s in %v\n", sluiceBin, time.Since(start).Round(time.Millisecond))
	return m.Run()
}

// repoRoot is the module root (the tests run in faults/).
func repoRoot() string {
	wd, _ := os.Getwd()
	return filepath.Dir(wd)
}

var guestBuilds sync.Map // name → *guestBuild

type guestBuild struct {
	once sync.Once
	path string
	err  error
}

// buildGuest compiles the guest NAME of the guest module in src (a folder
// relative to the module root, such as wasmhost/testdata/guests) into its
// own folder and returns that folder (for --transforms).
func buildGuest(t testing.TB, src, name string) string {
	t.Helper()
	v, _ := guestBuilds.LoadOrStore(name, &guestBuild{})
	g := v.(*guestBuild)
	g.once.Do(func() {
		dir := filepath.Join(binDir, "guests", name)
		if g.err = os.MkdirAll(dir, 0o755); g.err != nil {
			return
		}
		start := time.Now()
		cmd := exec.Command("go", "build", "-trimpath", "-buildmode=c-shared", "-o", filepath.Join(dir, name+".wasm"), "./"+name)
		cmd.Dir = filepath.Join(repoRoot(), filepath.FromSlash(src))
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
		out, err := cmd.CombinedOutput()
		if err != nil {
			g.err = fmt.Errorf("build guest %s: %v\n%s", name, err, out)
			return
		}
		g.path = dir
		t.Logf("built guest %s in %v", name, time.Since(start).Round(time.Millisecond))
	})
	if g.err != nil {
		t.Fatal(g.err)
	}
	return g.path
}

// freePort returns a port that was free a moment ago on 127.0.0.1.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// cluster is a kfake Kafka cluster owned by the test, on a fixed free port,
// with the default and DLQ topics seeded.
type cluster struct {
	*kfake.Cluster
	addr string
}

func newCluster(t testing.TB, topics ...string) *cluster {
	t.Helper()
	topics = append([]string{topicEvents, topicDLQ}, topics...)
	var c *kfake.Cluster
	var err error
	for range 5 { // a free port can be taken between freePort and the bind
		c, err = kfake.NewCluster(kfake.Ports(freePort(t)), kfake.SeedTopics(3, topics...))
		if err == nil {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return &cluster{Cluster: c, addr: c.ListenAddrs()[0]}
}

// proc is one running `sluice run`.
type proc struct {
	t         testing.TB
	cmd       *exec.Cmd
	http      string // ingest address
	admin     string // admin address
	logs      *logBuffer
	apiKey    string // sent by checkServing when --api-key was given
	done      chan struct{}
	exitErr   error
	exitState *os.ProcessState
}

// logBuffer keeps the last bytes the process logged.
type logBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if len(b.buf) > 1<<20 {
		b.buf = append(b.buf[:0], b.buf[len(b.buf)-(512<<10):]...)
	}
	return len(p), nil
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

func (b *logBuffer) tail(n int) string {
	s := b.String()
	if len(s) > n {
		s = "…" + s[len(s)-n:]
	}
	return s
}

// startSluice starts `sluice run` on 127.0.0.1:0 with the given extra
// flags and waits until it listens. The process is killed at cleanup if
// it is still running; its log tail is printed when the test failed.
func startSluice(t testing.TB, args ...string) *proc {
	t.Helper()
	ready := filepath.Join(t.TempDir(), "ready")
	full := append([]string{"run",
		"--http", "127.0.0.1:0", "--admin", "127.0.0.1:0",
		"--admin-token", adminToken, "--ready-file", ready,
		"--log-level", "warn",
	}, args...)
	p := &proc{t: t, logs: &logBuffer{}, done: make(chan struct{})}
	if i := slices.Index(args, "--api-key"); i >= 0 && i+1 < len(args) {
		p.apiKey = args[i+1]
	}
	p.cmd = exec.Command(sluiceBin, full...)
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.exitErr = p.cmd.Wait()
		p.exitState = p.cmd.ProcessState
		close(p.done)
	}()
	t.Cleanup(func() {
		if p.alive() {
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("sluice %s log tail:\n%s", strings.Join(full, " "), p.logs.tail(6000))
		}
	})
	deadline := time.Now().Add(90 * time.Second)
	for {
		b, err := os.ReadFile(ready)
		if err == nil {
			for f := range strings.FieldsSeq(string(b)) {
				k, v, _ := strings.Cut(f, "=")
				switch k {
				case "http":
					p.http = v
				case "admin":
					p.admin = v
				}
			}
			if p.http == "" || p.admin == "" {
				t.Fatalf("ready file %q: %q", ready, b)
			}
			return p
		}
		if !p.alive() {
			t.Fatalf("sluice exited before listening (%v):\n%s", p.exitErr, p.logs.tail(4000))
		}
		if time.Now().After(deadline) {
			t.Fatalf("sluice did not listen within 90s:\n%s", p.logs.tail(4000))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *proc) alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) url(path string) string { return "http://" + p.http + path }

// signalAndWait sends sig and waits up to d for the exit; it returns the
// exit code.
func (p *proc) signalAndWait(sig os.Signal, d time.Duration) int {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal: %v", err)
	}
	select {
	case <-p.done:
	case <-time.After(d):
		p.t.Fatalf("sluice did not exit within %v of %v", d, sig)
	}
	return p.exitState.ExitCode()
}

// peakRSS returns VmHWM of the process in bytes (its peak resident set).
func (p *proc) peakRSS() int64 {
	return procStatusBytes(p.pid(), "VmHWM:")
}

// procStatusBytes reads a "kB" field of /proc/PID/status.
func procStatusBytes(pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return -1
}

// checkServing asserts that the process is alive and that a good request
// gets 200 within d (retrying 503s, which a recovering gateway may answer).
func (p *proc) checkServing(t testing.TB, d time.Duration) {
	t.Helper()
	if !p.alive() {
		t.Fatalf("sluice is not running: %v", p.exitErr)
	}
	deadline := time.Now().Add(d)
	var last string
	for time.Now().Before(deadline) {
		hdr := http.Header{}
		if p.apiKey != "" {
			hdr.Set("X-API-Key", p.apiKey)
		}
		code, body, err := post(p.url("/v1/events"), "application/json", hdr, []byte(`{"id":"alive-check","event":"ping"}`))
		if err == nil && code == http.StatusOK {
			return
		}
		last = fmt.Sprintf("%d %s %v", code, body, err)
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("sluice did not serve a good request within %v: last %s", d, last)
}

var httpClient = &http.Client{
	Timeout: 30 * time.Second,
	Transport: &http.Transport{
		MaxIdleConnsPerHost: 512,
		DisableCompression:  true,
	},
}

// post sends one request and returns its status and body.
func post(url, contentType string, hdr http.Header, body []byte) (int, []byte, error) {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// budget is the part of GET /admin/budget the scenarios read.
type budget struct {
	Pressure *struct {
		Level     float64 `json:"level"`
		Latched   bool    `json:"latched"`
		LatchedBy string  `json:"latched_by"`
		Pauses    uint64  `json:"pauses"`
	} `json:"pressure"`
	Gate *struct {
		State      string `json:"state"`
		Rejections uint64 `json:"rejections"`
	} `json:"gate"`
}

// adminBudget reads GET /admin/budget.
func (p *proc) adminBudget() (budget, error) {
	var b budget
	req, _ := http.NewRequest(http.MethodGet, "http://"+p.admin+"/admin/budget", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := httpClient.Do(req)
	if err != nil {
		return b, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return b, fmt.Errorf("GET /admin/budget: %d %s", resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, &b); err != nil {
		return b, fmt.Errorf("GET /admin/budget: %w: %s", err, body)
	}
	return b, nil
}

// kafkaRecord is what the scenarios keep of a record read back.
type kafkaRecord struct {
	id     string
	reason string // sluice-reason header (DLQ)
	stage  string // sluice-stage header (DLQ)
}

// readTopic reads every record of topic up to its current end offsets.
func readTopic(t testing.TB, brokers, topic string) []kafkaRecord {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	adm, err := kgo.NewClient(kgo.SeedBrokers(brokers))
	if err != nil {
		t.Fatal(err)
	}
	ends, err := kadm.NewClient(adm).ListEndOffsets(ctx, topic)
	adm.Close()
	if err != nil {
		t.Fatalf("list end offsets of %s: %v", topic, err)
	}
	want := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			t.Fatalf("end offset of %s/%d: %v", topic, o.Partition, o.Err)
		}
		if o.Offset > 0 {
			want[o.Partition] = o.Offset
		}
	})
	var out []kafkaRecord
	if len(want) == 0 {
		return out
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxBytes(64<<20))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for len(want) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("reading %s back: %v (partitions left %v)", topic, err, want)
		}
		fs.EachError(func(_ string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			kr := kafkaRecord{id: eventID(r.Value)}
			for _, h := range r.Headers {
				switch h.Key {
				case "sluice-reason":
					kr.reason = string(h.Value)
				case "sluice-stage":
					kr.stage = string(h.Value)
				}
			}
			out = append(out, kr)
			if end, ok := want[r.Partition]; ok && r.Offset+1 >= end {
				delete(want, r.Partition)
			}
		})
	}
	return out
}

// eventID returns the value of the event's "id" field ("" without one).
// Events of the scenarios carry it as their first field, so a scan for the
// key is enough; a full decode is the fallback.
func eventID(v []byte) string {
	const key = `"id":"`
	if i := bytes.Index(v, []byte(key)); i >= 0 {
		rest := v[i+len(key):]
		if j := bytes.IndexByte(rest, '"'); j >= 0 {
			return string(rest[:j])
		}
	}
	var e struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(v, &e)
	return e.ID
}

// tally is the outcome of matching acknowledged ids against Kafka.
type tally struct {
	acked      int // distinct ids acknowledged with 200
	found      int // of those, present in Kafka
	lost       int // acknowledged but absent
	duplicates int // extra copies in Kafka of acknowledged ids
	records    int // records read back
}

// matchAcks counts how many acked ids are in recs.
func matchAcks(acked map[string]struct{}, recs ...[]kafkaRecord) (tally, []string) {
	seen := make(map[string]int, len(acked))
	var tl tally
	for _, rs := range recs {
		tl.records += len(rs)
		for _, r := range rs {
			seen[r.id]++
		}
	}
	var lost []string
	tl.acked = len(acked)
	for id := range acked {
		n := seen[id]
		if n == 0 {
			tl.lost++
			if len(lost) < 10 {
				lost = append(lost, id)
			}
			continue
		}
		tl.found++
		tl.duplicates += n - 1
	}
	return tl, lost
}

// readAckFile reads the ids `sluice load --record-acks` wrote.
func readAckFile(t testing.TB, path string) map[string]struct{} {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ids := map[string]struct{}{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if s := strings.TrimSpace(sc.Text()); s != "" {
			ids[s] = struct{}{}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return ids
}

// loadReport is the part of `sluice load --json` the scenarios read.
type loadReport struct {
	Requests struct {
		Total uint64 `json:"total"`
		OK    uint64 `json:"ok"`
	} `json:"requests"`
	Events struct {
		Sent      uint64  `json:"sent"`
		Acked     uint64  `json:"acked"`
		PerSecond float64 `json:"per_second"`
	} `json:"events"`
	Latency struct {
		P50 float64 `json:"p50"`
		P99 float64 `json:"p99"`
		Max float64 `json:"max"`
	} `json:"latency_ms"`
	Status map[string]uint64 `json:"status"`
	Errors map[string]uint64 `json:"errors"`
}

// loadRun is a running `sluice load`.
type loadRun struct {
	cmd    *exec.Cmd
	acks   string
	report string
	out    *logBuffer
	done   chan error
}

// startLoad starts `sluice load` against p with the ack file and JSON
// report in a temporary folder; extra flags are appended.
func startLoad(t testing.TB, p *proc, extra ...string) *loadRun {
	t.Helper()
	dir := t.TempDir()
	l := &loadRun{acks: filepath.Join(dir, "acks"), report: filepath.Join(dir, "report.json"), out: &logBuffer{}, done: make(chan error, 1)}
	args := append([]string{"load", "--url", p.url("/v1/events"), "--quiet",
		"--record-acks", l.acks, "--json", l.report, "--timeout", "15s"}, extra...)
	l.cmd = exec.Command(sluiceBin, args...)
	l.cmd.Stdout, l.cmd.Stderr = l.out, l.out
	if err := l.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { l.done <- l.cmd.Wait() }()
	t.Cleanup(func() {
		select {
		case <-l.done:
		default:
			_ = l.cmd.Process.Kill()
		}
	})
	return l
}

// wait waits for the load run and returns its report and acked ids.
func (l *loadRun) wait(t testing.TB, d time.Duration) (loadReport, map[string]struct{}) {
	t.Helper()
	select {
	case err := <-l.done:
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatalf("sluice load: %v", err)
		}
	case <-time.After(d):
		_ = l.cmd.Process.Signal(syscall.SIGINT)
		t.Fatalf("sluice load did not finish within %v:\n%s", d, l.out.tail(2000))
	}
	var rep loadReport
	b, err := os.ReadFile(l.report)
	if err != nil {
		t.Fatalf("load report: %v\n%s", err, l.out.tail(2000))
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("load report: %v", err)
	}
	return rep, readAckFile(t, l.acks)
}

// mib formats bytes in MiB.
func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// get sends a GET and returns its status and body.
func get(url string) (int, []byte, error) {
	resp, err := httpClient.Get(url)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}
