package admin_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/e2e"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/valyala/fasthttp"
)

// The end-to-end tests start the real sluice binary (built once, without
// -race: it is the product under test) on 127.0.0.1:0 against an
// in-process kfake broker, and drive it over HTTP, Kafka and /metrics.

const e2eToken = "e2e-admin-token"

// sluiceProc is a running sluice binary.
type sluiceProc struct {
	*e2e.Proc
	http, admin string
	api         *adminClient
}

// stop sends SIGTERM and waits for a clean exit.
func (p *sluiceProc) stop(tb testing.TB) {
	tb.Helper()
	if code := p.Signal(tb, syscall.SIGTERM, 30*time.Second); code != 0 {
		tb.Fatalf("sluice exited with %v:\n%s", p.ExitErr(), e2e.TailLines(p.Log.String(), 40))
	}
}

// startSluice runs `sluice run` against brokers with args, and waits until
// both listeners are bound (the --ready-file names them). Without a
// --data-dir in args it gets a fresh one.
func startSluice(tb testing.TB, brokers string, args ...string) *sluiceProc {
	tb.Helper()
	all := []string{"--brokers", brokers, "--admin-token", e2eToken}
	if !slices.Contains(args, "--data-dir") {
		all = append(all, "--data-dir", tb.TempDir())
	}
	p := &sluiceProc{Proc: e2e.Start(tb, e2e.Options{}, append(all, args...)...)}
	p.http, p.admin = p.HTTP, p.Admin
	p.api = &adminClient{
		c:     &fasthttp.Client{MaxResponseBodySize: 64 << 20, ReadTimeout: 60 * time.Second, WriteTimeout: 60 * time.Second},
		base:  "http://" + p.admin,
		token: e2eToken,
	}
	return p
}

// newKafka starts an in-process kfake broker with the default topics.
func newKafka(tb testing.TB) string {
	tb.Helper()
	c := e2e.Kafka(tb, e2e.KafkaConfig{Topics: []string{"events", "sluice.dlq", "events.click", "acme.events"}, AutoCreateTopics: true})
	return c.ListenAddrs()[0]
}

// consume reads every record of topic (as of now) from the beginning.
func consume(tb testing.TB, broker, topic string) []*kgo.Record {
	tb.Helper()
	return e2e.ReadTopics(tb, []string{broker}, e2e.ReadOptions{}, topic)
}

var ingestClient = &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 128}}

type ingestResult struct {
	code                    int
	accepted, dropped, dead int
	body                    string
}

// post sends one ingest request; hdr alternates header names and values.
func (p *sluiceProc) post(body []byte, contentType string, hdr ...string) (ingestResult, error) {
	res, err := e2e.Do(ingestClient, "POST", "http://"+p.http+"/v1/events", body, append([]string{"Content-Type", contentType}, hdr...)...)
	if res.Code == 0 {
		return ingestResult{}, err
	}
	b := res.Body
	r := ingestResult{code: res.Code, body: string(b)}
	if res.Code == 200 {
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
	m, err := e2e.ParseMetrics(r.body)
	if err != nil {
		tb.Fatal(err)
	}
	return m
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
