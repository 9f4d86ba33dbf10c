package admin_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/internal/e2e"
)

// TestE2EMetricsHelp: every sluice_* family the real binary serves has a
// HELP text, and promtool check metrics has nothing to say about them.
func TestE2EMetricsHelp(t *testing.T) {
	broker := newKafka(t)
	p := startSluice(t, broker, "--transforms", examplesDir(t), "--pipeline", "filter,redact,route,enrich")
	if res, err := p.post([]byte("{\"event\":\"click\",\"user_id\":\"u1\"}\n{\"event\":\"heartbeat\"}\n{not json\n"), "application/x-ndjson"); err != nil || res.code != 200 {
		t.Fatalf("ingest: %+v %v", res, err)
	}
	text := string(p.api.doToken(t, "", "GET", "/metrics", nil).want(t, 200, "/metrics").body)
	help := map[string]string{}
	for l := range strings.SplitSeq(text, "\n") {
		if rest, ok := strings.CutPrefix(l, "# HELP "); ok {
			name, h, _ := strings.Cut(rest, " ")
			help[name] = h
		}
	}
	var missing []string
	for name, h := range help {
		if strings.HasPrefix(name, "sluice_") && strings.TrimSpace(h) == "" {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		t.Errorf("served without a HELP text (add a row to gateway.Catalog): %s", strings.Join(missing, ", "))
	}
	if len(help) < 30 {
		t.Fatalf("only %d families served", len(help))
	}
	served := 0
	for _, name := range metricNames {
		if h, ok := help[name]; ok {
			served++
			if len(h) < 20 {
				t.Errorf("%s: HELP %q says too little", name, h)
			}
		}
	}
	if served < len(metricNames)-2 { // gate rejections and traps appear with the first one
		t.Errorf("%d of the %d documented families served", served, len(metricNames))
	}
	problems := e2e.Promtool(t, []byte(text))
	for _, pr := range problems {
		if strings.HasPrefix(pr, "sluice_") {
			t.Errorf("promtool check metrics: %s", pr)
		}
	}
	t.Logf("promtool: %d remarks, none about sluice_* (Go runtime metrics are not ours)", len(problems))
}
