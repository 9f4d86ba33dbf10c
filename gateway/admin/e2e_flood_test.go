package admin_test

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// budgetJSON is GET /admin/budget.
type budgetJSON struct {
	ByteBudget int64 `json:"byte_budget"`
	RecordCap  int   `json:"record_cap"`
	AIMD       struct {
		Bytes        int64   `json:"bytes"`
		Min          int64   `json:"min"`
		Max          int64   `json:"max"`
		Increases    uint64  `json:"increases"`
		Decreases    uint64  `json:"decreases"`
		HardShrinks  uint64  `json:"hard_shrinks"`
		Observations uint64  `json:"observations"`
		LastUtil     float64 `json:"last_utilisation"`
	} `json:"aimd"`
	Pressure struct {
		Level        float64 `json:"level"`
		Latched      bool    `json:"latched"`
		LatchedSince *string `json:"latched_since"`
		LatchedBy    string  `json:"latched_by"`
		Sources      []struct {
			Name  string  `json:"name"`
			Level float64 `json:"level"`
			Hard  bool    `json:"hard"`
		} `json:"sources"`
	} `json:"pressure"`
	Memory struct {
		Inflight int64  `json:"inflight_bytes"`
		Limit    int64  `json:"limit_bytes"`
		Heap     uint64 `json:"heap_bytes"`
	} `json:"memory"`
	Gate struct {
		State      string `json:"state"`
		Rejections uint64 `json:"rejections"`
	} `json:"gate"`
}

// TestE2EFloodLatchesAndRecovers floods a sluice with a small memory limit
// with concurrent large requests and reads, from /admin/budget and
// /metrics, the latch closing (with the source that closed it), the gate
// holding and counting rejections, the byte budget shrinking, and then —
// once the flood stops — the latch opening again.
func TestE2EFloodLatchesAndRecovers(t *testing.T) {
	broker := newKafka(t)
	p := startSluice(t, broker, "--memory-limit", "64MiB", "--max-body", "2MiB")
	api := p.api

	var idle budgetJSON
	api.do(t, "GET", "/admin/budget", nil).want(t, 200, "idle budget").json(t, &idle)
	if idle.Pressure.Latched || idle.Gate.State != "open" || idle.Memory.Limit <= 0 || idle.ByteBudget <= 0 ||
		idle.RecordCap <= 0 || len(idle.Pressure.Sources) == 0 || idle.Pressure.LatchedSince != nil {
		t.Fatalf("idle budget: %s", mustJSON(idle))
	}

	// ~1 MiB NDJSON bodies.
	var b strings.Builder
	for i := 0; b.Len() < 1<<20; i++ {
		fmt.Fprintf(&b, "{\"id\":%d,\"event\":\"flood\",\"pad\":\"%s\"}\n", i, strings.Repeat(fmt.Sprintf("%x", i*7919), 100))
	}
	body := []byte(b.String())

	var stop atomic.Bool
	var ok200, rejected503, transportErrs atomic.Int64
	var otherMu sync.Mutex
	other := map[int]int{} // unexpected statuses
	var wg sync.WaitGroup
	for range 24 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				res, err := p.post(body, "application/x-ndjson")
				switch {
				case err != nil:
					// The gate answers before reading the body and closes
					// the connection: a client still sending sees a reset.
					transportErrs.Add(1)
				case res.code == 200:
					ok200.Add(1)
				case res.code == 503:
					rejected503.Add(1)
				default:
					otherMu.Lock()
					other[res.code]++
					otherMu.Unlock()
				}
			}
		}()
	}
	defer func() { stop.Store(true); wg.Wait() }()

	// Read the latch, the source, the rejections and the budget while the
	// flood runs.
	var sawLatch, sawBudgetMove, sawMetricLatched bool
	var latchedBy string
	var rejections uint64
	var last budgetJSON
	idleMetrics := p.metrics(t)
	var maxRatio, maxMetricInflight float64
	minMetricBudget := idleMetrics["sluice_byte_budget_bytes"]
	var maxInflight int64
	deadline := time.Now().Add(45 * time.Second)
	for !(sawLatch && sawBudgetMove && sawMetricLatched && rejections > 0) {
		if time.Now().After(deadline) {
			t.Fatalf("under flood: latch %v (by %q), budget moved %v, metric latched %v, rejections %d; 200s %d, 503s %d; max in flight %d; last %s",
				sawLatch, latchedBy, sawBudgetMove, sawMetricLatched, rejections, ok200.Load(), rejected503.Load(), maxInflight, mustJSON(last))
		}
		var s budgetJSON
		api.do(t, "GET", "/admin/budget", nil).want(t, 200, "budget").json(t, &s)
		last = s
		maxInflight = max(maxInflight, s.Memory.Inflight)
		if s.Pressure.Latched && s.Pressure.LatchedBy != "" && s.Pressure.LatchedSince != nil && s.Gate.State == "held" {
			sawLatch = true
			latchedBy = s.Pressure.LatchedBy
			known := false
			for _, src := range s.Pressure.Sources {
				known = known || src.Name == latchedBy
			}
			if !known {
				t.Fatalf("latched_by %q is not one of the sources %s", latchedBy, mustJSON(s.Pressure.Sources))
			}
		}
		if s.ByteBudget < idle.ByteBudget || s.AIMD.HardShrinks > 0 || s.AIMD.Decreases > 0 {
			sawBudgetMove = true
		}
		rejections = max(rejections, s.Gate.Rejections)
		m := p.metrics(t)
		if m["sluice_gate_latched"] == 1 {
			sawMetricLatched = true
		}
		maxRatio = max(maxRatio, m["sluice_pressure_ratio"])
		maxMetricInflight = max(maxMetricInflight, m["sluice_memory_inflight_bytes"])
		minMetricBudget = min(minMetricBudget, m["sluice_byte_budget_bytes"])
		time.Sleep(20 * time.Millisecond)
	}
	stop.Store(true)
	wg.Wait()

	// The gauges moved with the flood.
	if maxRatio < 0.65 || maxRatio <= idleMetrics["sluice_pressure_ratio"] {
		t.Errorf("sluice_pressure_ratio peaked at %v under flood (idle %v)", maxRatio, idleMetrics["sluice_pressure_ratio"])
	}
	if maxMetricInflight <= 0 {
		t.Errorf("sluice_memory_inflight_bytes stayed 0 under flood")
	}
	t.Logf("byte budget: idle %v, lowest seen %v; budget JSON at the end %s",
		idleMetrics["sluice_byte_budget_bytes"], minMetricBudget, mustJSON(last.AIMD))
	if rejected503.Load() == 0 || ok200.Load() == 0 || len(other) > 0 {
		t.Fatalf("flood answers: %d 200s, %d 503s, %d transport errors, unexpected statuses %v",
			ok200.Load(), rejected503.Load(), transportErrs.Load(), other)
	}
	m := p.metrics(t)
	rej, ok := family(m, "sluice_gate_rejections_total")
	if !ok || rej == 0 {
		t.Fatalf("sluice_gate_rejections_total not exported or zero after %d 503s", rejected503.Load())
	}
	if m[`sluice_ingest_requests_total{code="503"}`] == 0 {
		t.Fatalf("sluice_ingest_requests_total{code=\"503\"} did not move")
	}

	// The flood is over: the latch opens again.
	deadline = time.Now().Add(30 * time.Second)
	for {
		var s budgetJSON
		api.do(t, "GET", "/admin/budget", nil).want(t, 200, "budget").json(t, &s)
		if !s.Pressure.Latched && s.Gate.State == "open" && s.Pressure.LatchedSince == nil {
			if s.Gate.Rejections < rejections {
				t.Fatalf("rejections went back from %d to %d", rejections, s.Gate.Rejections)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("latch still closed 30s after the flood: %s", mustJSON(s))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if m := p.metrics(t); m["sluice_gate_latched"] != 0 {
		t.Fatalf("sluice_gate_latched = %v after recovery", m["sluice_gate_latched"])
	}
	t.Logf("flood: %d 200s, %d 503s, %d transport errors; latched by %s; %d gate rejections",
		ok200.Load(), rejected503.Load(), transportErrs.Load(), latchedBy, rejections)
}
