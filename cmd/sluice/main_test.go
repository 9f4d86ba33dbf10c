package main

import (
	"bytes"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/e2e"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestMain(m *testing.M) { os.Exit(e2e.Main(m)) }

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

// proc is a running sluice binary.
type proc struct{ *e2e.Proc }

// startSluice starts `sluice run` on free ports with args and waits until
// it listens (it writes the bound addresses to its --ready-file).
func startSluice(t testing.TB, args ...string) *proc {
	t.Helper()
	return &proc{e2e.Start(t, e2e.Options{}, args...)}
}

// stop sends SIGTERM and returns the exit code.
func (p *proc) stop(t testing.TB) int {
	t.Helper()
	return p.Signal(t, syscall.SIGTERM, 60*time.Second)
}

// vmHWM returns the process's peak resident set in bytes.
func (p *proc) vmHWM(t testing.TB) int64 {
	t.Helper()
	n, err := p.PeakRSS()
	if err != nil {
		t.Fatal(err)
	}
	return n
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
	r, err := e2e.Do(client, method, url, body, headers...)
	return response{code: r.Code, header: r.Header, body: string(r.Body)}, err
}

// metric returns the value of the sample named exactly name (with labels)
// on the admin listener's /metrics (0 when there is none).
func (p *proc) metric(t testing.TB, name string) float64 {
	t.Helper()
	return p.Metrics(t, client)[name]
}

// newKafka starts an in-process kfake broker.
func newKafka(t testing.TB, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	return e2e.Kafka(t, e2e.KafkaConfig{Topics: []string{"events", "sluice.dlq"}, AutoCreateTopics: true, Opts: opts})
}

// consume reads every record of topics (as of now) from the beginning.
func consume(t testing.TB, brokers []string, topics ...string) []*kgo.Record {
	t.Helper()
	return e2e.ReadTopics(t, brokers, e2e.ReadOptions{}, topics...)
}

// lostAcks fails the test unless every acknowledged event id is in the
// events topic.
func lostAcks(t testing.TB, brokers []string, acked map[string]bool) {
	t.Helper()
	inKafka := map[string]bool{}
	for _, rec := range consume(t, brokers, "events") {
		v := string(rec.Value)
		i := strings.Index(v, `"id":"`)
		j := strings.Index(v[i+6:], `"`)
		inKafka[v[i+6:i+6+j]] = true
	}
	lost := 0
	for id := range acked {
		if !inKafka[id] {
			lost++
		}
	}
	if lost > 0 {
		t.Fatalf("%d of %d acknowledged events are not in Kafka", lost, len(acked))
	}
}
