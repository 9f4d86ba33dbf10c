package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
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

// sluiceBin is the binary under test, built once by TestMain without -race
// (it is the product; the tests around it run with -race).
var sluiceBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sluice-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	sluiceBin = filepath.Join(dir, "sluice")
	build := exec.Command("go", "build", "-o", sluiceBin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build sluice: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func TestDoMainVersionAndUsage(t *testing.T) {
	var out, errb bytes.Buffer
	if code := doMain([]string{"version"}, &out, &errb); code != 0 || !strings.HasPrefix(out.String(), "sluice ") {
		t.Fatalf("version: code %d, %q", code, out.String())
	}
	if code := doMain(nil, &out, &errb); code != 2 {
		t.Fatalf("no command: code %d", code)
	}
	errb.Reset()
	if code := doMain([]string{"frobnicate"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "unknown command") {
		t.Fatalf("unknown command: code %d, %q", code, errb.String())
	}
	errb.Reset()
	if code := doMain([]string{"run", "--sink", "kafka"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "--brokers") {
		t.Fatalf("run without brokers: code %d, %q", code, errb.String())
	}
}

// syncBuffer is a bytes.Buffer safe for a writer process and a reader test.
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

// proc is a running sluice binary.
type proc struct {
	cmd         *exec.Cmd
	http, admin string
	stdout      *syncBuffer
	stderr      *syncBuffer
	done        chan struct{}
	exitErr     error
}

// startSluice starts `sluice run` on free ports with args and waits until
// it listens (it writes the bound addresses to its --ready-file).
func startSluice(t testing.TB, args ...string) *proc {
	t.Helper()
	rf := filepath.Join(t.TempDir(), "ready")
	all := append([]string{"run", "--http", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--ready-file", rf}, args...)
	p := &proc{cmd: exec.Command(sluiceBin, all...), stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.exitErr = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
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
		if t.Failed() {
			t.Logf("sluice stderr:\n%s", tail(p.stderr.String(), 60))
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		b, err := os.ReadFile(rf)
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
			return p
		}
		select {
		case <-p.done:
			t.Fatalf("sluice exited at start: %v\n%s", p.exitErr, p.stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("sluice did not start within 60s:\n%s", p.stderr.String())
		}
	}
}

func tail(s string, lines int) string {
	l := strings.Split(s, "\n")
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return strings.Join(l, "\n")
}

// stop sends SIGTERM and returns the exit code.
func (p *proc) stop(t testing.TB) int {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		t.Fatalf("sluice did not exit within 60s of SIGTERM:\n%s", tail(p.stderr.String(), 40))
	}
	var ee *exec.ExitError
	if errors.As(p.exitErr, &ee) {
		return ee.ExitCode()
	}
	if p.exitErr != nil {
		t.Fatal(p.exitErr)
	}
	return 0
}

func (p *proc) url(path string) string { return "http://" + p.http + path }

func (p *proc) adminURL(path string) string { return "http://" + p.admin + path }

// vmHWM returns the process's peak resident set in bytes.
func (p *proc) vmHWM(t testing.TB) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for l := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM")
	return 0
}

var client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

type response struct {
	code   int
	header http.Header
	body   string
}

// do sends one request; headers alternate name, value.
func do(t testing.TB, method, url string, body []byte, headers ...string) response {
	t.Helper()
	r, err := doErr(method, url, body, headers...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func doErr(method, url string, body []byte, headers ...string) (response, error) {
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		return response{}, err
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := client.Do(req)
	if err != nil {
		return response{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return response{code: res.StatusCode, header: res.Header, body: string(b)}, err
}

// metric returns the value of the sample named exactly name (with labels)
// on the admin listener's /metrics.
func (p *proc) metric(t testing.TB, name string) float64 {
	t.Helper()
	r := do(t, "GET", p.adminURL("/metrics"), nil)
	for l := range strings.SplitSeq(r.body, "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	return 0
}

// freePort returns a port nothing listens on right now.
func freePort(t testing.TB) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// newKafka starts an in-process kfake broker.
func newKafka(t testing.TB, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(3, "events", "sluice.dlq"), kfake.AllowAutoTopicCreation()}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// endOffsets returns the record count of each existing topic.
func endOffsets(t testing.TB, brokers []string, topics ...string) map[string]int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topics...)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err == nil {
			out[o.Topic] += o.Offset
		}
	})
	return out
}

// consume reads every record of topics (as of now) from the beginning.
func consume(t testing.TB, brokers []string, topics ...string) []*kgo.Record {
	t.Helper()
	var total int64
	var existing []string
	for topic, n := range endOffsets(t, brokers, topics...) {
		total += n
		if n > 0 {
			existing = append(existing, topic)
		}
	}
	if total == 0 {
		return nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(existing...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxBytes(64<<20))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out []*kgo.Record
	for int64(len(out)) < total {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records of %v before the timeout", len(out), total, topics)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Logf("fetch %s/%d: %v", topic, p, err) })
		out = append(out, fs.Records()...)
	}
	return out
}

func header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}
