package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestReasonClass(t *testing.T) {
	for _, tc := range []struct{ reason, stage, want string }{
		{"parse error: line 3 is not valid JSON", "receiver", ReasonParseError},
		{"event too large: 3000 bytes over the 2048-byte per-event cap", "receiver", ReasonTooLarge},
		{"parse error: invalid JSON", "parse", ReasonParseError},
		{"trap: filter: wasm error: unreachable", "filter", ReasonTrap},
		{"oom: enrich: out of memory", "enrich", ReasonTrap},
		{"abort: route: status 1", "route", ReasonTrap},
		{"deadline: loop exceeded 50ms", "loop", ReasonDeadline},
		{"missing user_id, json says so", "route", ReasonTransform},
	} {
		if got := reasonClass(tc.reason, tc.stage); got != tc.want {
			t.Errorf("reasonClass(%q, %q) = %q, want %q", tc.reason, tc.stage, got, tc.want)
		}
	}
}

// exercisedMetrics returns a metric set in which every family of Catalog
// has a sample: each recording path ran once.
func exercisedMetrics() *Metrics {
	m := newMetrics(gaugeFuncs{})
	m.request(200)
	m.request(429) // a status that is not pre-registered
	m.gateRejection("go_heap")
	m.dlqEvent(ReasonTrap)
	m.sinkWrite(3, time.Now(), nil)
	m.sinkWrite(1, time.Now(), errors.New("down"))
	m.TransformCall("filter", time.Millisecond)
	m.TransformTrap("filter")
	m.ingestEvents.Add(5)
	m.ingestBytes.Add(100)
	m.eventsDropped.Inc()
	m.driverRestarts.Inc()
	m.ackLatency.Update(0.01)
	m.recvBlockBytes.Set(10)
	rl := m.tenantRate(&tenant{label: "acme", rate: 10})
	rl.limitedRequests.Inc()
	rl.limitedEvents.Add(3)
	rl.admittedEvents.Add(7)
	m.idempotentReplays.Inc()
	expiry, failures := m.tlsListener("ingest")
	expiry.Set(1.8e9)
	failures.Inc()
	return m
}

// families parses a text exposition into each family's HELP text and
// TYPE (families without a HELP line are absent).
func families(text string) (help, typ map[string]string) {
	help, typ = map[string]string{}, map[string]string{}
	for l := range strings.SplitSeq(text, "\n") {
		if rest, ok := strings.CutPrefix(l, "# HELP "); ok {
			name, h, _ := strings.Cut(rest, " ")
			help[name] = h
		}
		if rest, ok := strings.CutPrefix(l, "# TYPE "); ok {
			name, t, _ := strings.Cut(rest, " ")
			typ[name] = t
		}
	}
	return help, typ
}

// TestMetricsHaveHelp: every sluice_* family /metrics serves has a HELP
// text and the TYPE of its Catalog row; every row is served.
func TestMetricsHaveHelp(t *testing.T) {
	m := exercisedMetrics()
	var buf bytes.Buffer
	m.WritePrometheus(&buf)
	help, typ := families(buf.String())
	var missing []string
	for name, h := range help {
		if strings.HasPrefix(name, "sluice_") && strings.TrimSpace(h) == "" {
			missing = append(missing, name)
		}
	}
	slices.Sort(missing)
	if len(missing) > 0 {
		t.Errorf("sluice metrics without a HELP text (add a row to gateway.Catalog): %s", strings.Join(missing, ", "))
	}
	for _, mi := range Catalog {
		if _, ok := help[mi.Name]; !ok {
			t.Errorf("Catalog row %s is not served (a stale row, or a path exercisedMetrics does not run)", mi.Name)
			continue
		}
		if typ[mi.Name] != mi.Type {
			t.Errorf("%s: served as %q, Catalog says %q", mi.Name, typ[mi.Name], mi.Type)
		}
		if !strings.HasSuffix(mi.Help, ".") || len(mi.Help) < 20 {
			t.Errorf("%s: HELP %q should be a sentence saying what it measures", mi.Name, mi.Help)
		}
	}
	for _, name := range m.Set().ListMetricNames() {
		fam, _, _ := strings.Cut(name, "{")
		for _, suf := range []string{"_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(fam, suf); ok && helpOf[base] != "" {
				fam = base
			}
		}
		if helpOf[fam] == "" {
			t.Errorf("metric %s is registered but its family %s has no Catalog row", name, fam)
		}
	}
	if !strings.Contains(buf.String(), "# HELP go_") {
		t.Error("the Go process metrics are missing")
	}
}

func TestFillHelp(t *testing.T) {
	in := "# HELP sluice_sink_healthy\n# TYPE sluice_sink_healthy gauge\nsluice_sink_healthy 1\n" +
		"# HELP sluice_queue_bytes already said\n# HELP other_metric\n# HELP sluice_unknown\n# HELP sluice_queue_bytes"
	want := "# HELP sluice_sink_healthy " + helpOf[MetricSinkHealthy] + "\n# TYPE sluice_sink_healthy gauge\nsluice_sink_healthy 1\n" +
		"# HELP sluice_queue_bytes already said\n# HELP other_metric\n# HELP sluice_unknown\n# HELP sluice_queue_bytes " + helpOf[MetricQueueBytes]
	if got := string(fillHelp([]byte(in))); got != want {
		t.Fatalf("fillHelp:\n%s\nwant:\n%s", got, want)
	}
	if got := fillHelp(nil); len(got) != 0 {
		t.Fatalf("fillHelp(nil) = %q", got)
	}
	// "# HELP " that does not start a line is left alone.
	odd := "x_total{l=\"# HELP sluice_queue_bytes\"} 1\n# HELP sluice_queue_bytes\n"
	if got, want := string(fillHelp([]byte(odd))), "x_total{l=\"# HELP sluice_queue_bytes\"} 1\n# HELP sluice_queue_bytes "+helpOf[MetricQueueBytes]+"\n"; got != want {
		t.Fatalf("fillHelp(%q) = %q, want %q", odd, got, want)
	}
}

func TestHelpIndex(t *testing.T) {
	m := helpIndex([]MetricInfo{{Name: "sluice_x", Help: "a\\b\nc."}})
	if got := m["sluice_x"]; got != `a\\b\nc.` {
		t.Fatalf("escaped HELP = %q", got)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("a name twice in the catalog did not panic")
		}
	}()
	helpIndex([]MetricInfo{{Name: "sluice_x"}, {Name: "sluice_x"}})
}

const (
	tableBegin = "<!-- metrics table: generated from gateway.Catalog (make docs) -->"
	tableEnd   = "<!-- end of metrics table -->"
)

// metricsTable renders Catalog as README.md's table.
func metricsTable() string {
	var b strings.Builder
	b.WriteString("| metric | type | labels | what it measures |\n|---|---|---|---|\n")
	for _, mi := range Catalog {
		labels := ""
		if mi.Labels != "" {
			labels = "`" + mi.Labels + "`"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", mi.Name, mi.Type, labels, strings.ReplaceAll(mi.Help, "|", `\|`))
	}
	return b.String()
}

func TestTraffic(t *testing.T) {
	m := exercisedMetrics()
	tr := m.Traffic()
	if tr.IngestRequests != 2 || tr.IngestEvents != 5 || tr.IngestBytes != 100 || tr.GateRejections != 1 ||
		tr.Dropped != 1 || tr.DeadLettered != 1 || tr.SinkRecords != 3 || tr.SinkErrors != 1 || tr.SinkWrites != 2 {
		t.Fatalf("Traffic = %+v", tr)
	}
	if tr.SinkLatency <= 0 || tr.SinkLatencyMax <= 0 || tr.SinkLatencyMax > tr.SinkLatency {
		t.Fatalf("sink latency total %v, max %v", tr.SinkLatency, tr.SinkLatencyMax)
	}
	if again := m.Traffic(); again.SinkLatencyMax != 0 || again.SinkLatency != tr.SinkLatency {
		t.Fatalf("second reading: max %v (want 0: no write since), total %v", again.SinkLatencyMax, again.SinkLatency)
	}
}

// TestMetricsTableInREADME: README.md's metrics table is Catalog's (make
// docs, or -update, rewrites it).
func TestMetricsTableInREADME(t *testing.T) {
	path := filepath.Join("..", "README.md")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i, j := strings.Index(s, tableBegin), strings.Index(s, tableEnd)
	if i < 0 || j < i {
		t.Fatalf("README.md lacks the metrics table markers:\n%s\n…\n%s", tableBegin, tableEnd)
	}
	want := tableBegin + "\n" + metricsTable() + tableEnd
	if got := s[i : j+len(tableEnd)]; got != want {
		if *update {
			if err := os.WriteFile(path, []byte(s[:i]+want+s[j+len(tableEnd):]), 0o644); err != nil {
				t.Fatal(err)
			}
			return
		}
		t.Fatalf("README.md's metrics table differs from gateway.Catalog; run make docs\nwant:\n%s", want)
	}
}

// BenchmarkWritePrometheus is one scrape of /metrics: the set, the process
// metrics, and the HELP texts filled in.
func BenchmarkWritePrometheus(b *testing.B) {
	m := exercisedMetrics()
	var buf bytes.Buffer
	b.ReportAllocs()
	for b.Loop() {
		buf.Reset()
		m.WritePrometheus(&buf)
	}
	b.SetBytes(int64(buf.Len()))
}

// BenchmarkSinkWrite is the metrics' part of one sink write.
func BenchmarkSinkWrite(b *testing.B) {
	m := exercisedMetrics()
	start := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		m.sinkWrite(100, start, nil)
	}
}
