package admin_test

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestE2EDryRunLeavesProductionAlone: dry runs of a transform and of a
// pipeline, a trap included, move no sluice_* counter or histogram of the
// real binary and no counter of its transforms.
func TestE2EDryRunLeavesProductionAlone(t *testing.T) {
	broker := newKafka(t)
	p := startSluice(t, broker)
	api := p.api
	api.do(t, "PUT", "/admin/transforms/filter", guestBytes(t, "filter")).want(t, 201, "upload filter")
	api.do(t, "PUT", "/admin/transforms/trapper", guestBytes(t, "trapper")).want(t, 201, "upload trapper")
	api.do(t, "PUT", "/admin/pipeline", []byte(`{"transforms":["filter","trapper"]}`)).want(t, 200, "pipeline")
	if res, err := p.post([]byte("{\"event\":\"click\",\"id\":1}\n{\"event\":\"click\",\"id\":2,\"trap\":true}\n"), "application/x-ndjson"); err != nil || res.code != 200 || res.dead != 1 {
		t.Fatalf("ingest: %+v %v", res, err)
	}
	counters := func() map[string]float64 {
		out := map[string]float64{}
		for k, v := range p.metrics(t) {
			base, _, _ := strings.Cut(k, "{")
			if strings.HasPrefix(base, "sluice_") && (strings.HasSuffix(base, "_total") || strings.HasSuffix(base, "_count") ||
				strings.HasSuffix(base, "_sum") || strings.HasSuffix(base, "_bucket")) {
				out[k] = v
			}
		}
		return out
	}
	list := func() string {
		var l struct {
			Transforms []transformJSON `json:"transforms"`
		}
		api.do(t, "GET", "/admin/transforms", nil).want(t, 200, "list").json(t, &l)
		j, _ := json.Marshal(l.Transforms)
		return string(j)
	}
	beforeM, beforeT := counters(), list()
	if !strings.Contains(beforeT, `"peak_memory_bytes":`) || strings.Contains(beforeT, `"peak_memory_bytes":0`) {
		t.Fatalf("transforms served traffic but report no peak memory: %s", beforeT)
	}
	sample := []byte("{\"event\":\"click\",\"id\":3}\n{\"event\":\"click\",\"id\":4,\"trap\":true}\n{\"event\":\"heartbeat\"}\n")
	var dr dryRunJSON
	api.do(t, "POST", "/admin/pipeline/test", sample).want(t, 200, "pipeline dry run").json(t, &dr)
	if len(dr.Events) != 3 || dr.Events[1].Decision != "dead_lettered" || dr.Events[2].Decision != "dropped" || dr.PeakMemoryBytes < 1<<20 {
		t.Fatalf("pipeline dry run: %s", mustJSON(dr))
	}
	api.do(t, "POST", "/admin/transforms/trapper/test", sample).want(t, 200, "transform dry run")
	afterM, afterT := counters(), list()
	for k, v := range afterM {
		if beforeM[k] != v {
			t.Errorf("%s moved by a dry run: %v → %v", k, beforeM[k], v)
		}
	}
	if len(afterM) != len(beforeM) {
		t.Errorf("a dry run added metrics: %d → %d series", len(beforeM), len(afterM))
	}
	if afterT != beforeT {
		t.Errorf("a dry run moved the transforms' counters:\n before %s\n after  %s", beforeT, afterT)
	}
}
