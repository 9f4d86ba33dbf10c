//go:build faults

package faults

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/e2e"
	"github.com/twmb/franz-go/pkg/kfake"
)

// Topics every scenario's cluster carries (the binary's defaults).
const (
	topicEvents = "events"
	topicDLQ    = "sluice.dlq"
	adminToken  = "faults-admin-token"
)

func TestMain(m *testing.M) {
	if spec := os.Getenv(brokerEnv); spec != "" {
		runBrokerProcess(spec) // this process is a test's Kafka broker
	}
	os.Exit(e2e.Main(m))
}

// buildGuest compiles the guest NAME of the guest module in src (a folder
// relative to the module root, such as wasmhost/testdata/guests) into its
// own folder and returns that folder (for --transforms).
func buildGuest(t testing.TB, src, name string) string {
	t.Helper()
	return filepath.Dir(e2e.GuestFiles(t, e2e.Guest{Name: name, Dir: src})[0])
}

// cluster is a kfake Kafka cluster owned by the test, on a fixed free port,
// with the default and DLQ topics seeded.
type cluster struct {
	*kfake.Cluster
	addr string
}

func newCluster(t testing.TB, topics ...string) *cluster {
	t.Helper()
	c := e2e.Kafka(t, e2e.KafkaConfig{Topics: append([]string{topicEvents, topicDLQ}, topics...), FixedPort: true})
	return &cluster{Cluster: c, addr: c.ListenAddrs()[0]}
}

// proc is one running `sluice run`.
type proc struct {
	*e2e.Proc
	t      testing.TB
	http   string // ingest address
	admin  string // admin address
	apiKey string // sent by checkServing when --api-key was given
}

// startSluice starts `sluice run` on 127.0.0.1:0 with the given extra
// flags and waits until it listens. The process is killed at cleanup if
// it is still running; its log tail is printed when the test failed.
func startSluice(t testing.TB, args ...string) *proc {
	t.Helper()
	full := append([]string{"--admin-token", adminToken, "--log-level", "warn"}, args...)
	p := &proc{t: t, Proc: e2e.Start(t, e2e.Options{StartTimeout: 90 * time.Second, KillAtCleanup: true, Stdout: true, LogLimit: 1 << 20}, full...)}
	p.http, p.admin = p.HTTP, p.Admin
	if i := slices.Index(args, "--api-key"); i >= 0 && i+1 < len(args) {
		p.apiKey = args[i+1]
	}
	return p
}

// signalAndWait sends sig and waits up to d for the exit; it returns the
// exit code.
func (p *proc) signalAndWait(sig os.Signal, d time.Duration) int {
	p.t.Helper()
	return p.Signal(p.t, sig, d)
}

// peakRSS returns VmHWM of the process in bytes (its peak resident set),
// -1 when it cannot be read.
func (p *proc) peakRSS() int64 {
	n, err := p.PeakRSS()
	if err != nil {
		return -1
	}
	return n
}

// checkServing asserts that the process is alive and that a good request
// gets 200 within d (retrying 503s, which a recovering gateway may answer).
func (p *proc) checkServing(t testing.TB, d time.Duration) {
	t.Helper()
	if !p.Alive() {
		t.Fatalf("sluice is not running: %v", p.ExitErr())
	}
	deadline := time.Now().Add(d)
	var last string
	for time.Now().Before(deadline) {
		hdr := http.Header{}
		if p.apiKey != "" {
			hdr.Set("X-API-Key", p.apiKey)
		}
		code, body, err := post(p.URL("/v1/events"), "application/json", hdr, []byte(`{"id":"alive-check","event":"ping"}`))
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
	var h []string
	if contentType != "" {
		h = append(h, "Content-Type", contentType)
	}
	for k, vs := range hdr {
		for _, v := range vs {
			h = append(h, k, v)
		}
	}
	r, err := e2e.Do(httpClient, http.MethodPost, url, body, h...)
	return r.Code, r.Body, err
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
	var out []kafkaRecord
	for _, r := range e2e.ReadTopics(t, []string{brokers}, e2e.ReadOptions{Timeout: 3 * time.Minute, Strict: true}, topic) {
		out = append(out, kafkaRecord{id: eventID(r.Value), reason: e2e.Header(r, "sluice-reason"), stage: e2e.Header(r, "sluice-stage")})
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
	out    *e2e.Buffer
	done   chan error
}

// startLoad starts `sluice load` against p with the ack file and JSON
// report in a temporary folder; extra flags are appended.
func startLoad(t testing.TB, p *proc, extra ...string) *loadRun {
	t.Helper()
	dir := t.TempDir()
	l := &loadRun{acks: filepath.Join(dir, "acks"), report: filepath.Join(dir, "report.json"), out: &e2e.Buffer{Limit: 1 << 20}, done: make(chan error, 1)}
	args := append([]string{"load", "--url", p.URL("/v1/events"), "--quiet",
		"--record-acks", l.acks, "--json", l.report, "--timeout", "15s"}, extra...)
	l.cmd = exec.Command(e2e.Sluice(t), args...)
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
		t.Fatalf("sluice load did not finish within %v:\n%s", d, l.out.Tail(2000))
	}
	var rep loadReport
	b, err := os.ReadFile(l.report)
	if err != nil {
		t.Fatalf("load report: %v\n%s", err, l.out.Tail(2000))
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
	r, err := e2e.Do(httpClient, http.MethodGet, url, nil)
	return r.Code, r.Body, err
}
