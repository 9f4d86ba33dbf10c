package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/gateway"
	"github.com/sluicehq/sluice/governor"
	"github.com/sluicehq/sluice/internal/e2e"
	"github.com/valyala/fasthttp"
)

// checkHeapReading refreshes the governor's heap source and fails unless
// its reading counts the WASM host's compiled code outside the Go heap
// (and the guests' linear memory only inside it, where wazero allocates
// it), its baseline is the measured runtime plus the host's code and pools,
// and its level is the traffic's share of what the baseline leaves. It
// returns the baseline. No call may be in flight.
func checkHeapReading(tb testing.TB, app interface {
	Governor() *governor.Governor
}, fixed func() (code, pools, guests int64, offHeap bool)) governor.Baseline {
	tb.Helper()
	hs := app.Governor().Heap()
	hs.Refresh()
	code, pools, guests, offHeap := fixed()
	// Guests' linear memory is counted once: outside the Go heap where
	// the host maps it (Linux), else inside the live heap.
	if offHeap != (runtime.GOOS == "linux") {
		tb.Fatalf("guests off the heap: %v on %s", offHeap, runtime.GOOS)
	}
	outside := code
	if offHeap {
		outside += guests
	}
	if hs.ExtraBytes() != outside {
		tb.Fatalf("heap source counts %d bytes outside the Go heap; the host's compiled code is %d, its guests (off heap: %v) %d", hs.ExtraBytes(), code, offHeap, guests)
	}
	if hs.UsedBytes() < hs.LiveBytes()+outside || (!offHeap && hs.LiveBytes() < guests) {
		tb.Fatalf("heap source reads %d bytes: live heap %d, guests %d (off heap: %v), code %d", hs.UsedBytes(), hs.LiveBytes(), guests, offHeap, code)
	}
	b := hs.Baseline()
	if b.MeasuredAt.IsZero() || b.Runtime <= 0 || b.Code != code || b.Pools != pools || b.Total != b.Runtime+b.Other+b.Code+b.Pools {
		tb.Fatalf("baseline %+v; host code %d pools %d", b, code, pools)
	}
	want := float64(max(hs.UsedBytes()-b.Total, 0)) / float64(hs.Limit()-b.Total)
	if lvl := hs.Level(); lvl < want-0.001 || lvl > want+0.001 {
		tb.Fatalf("go_heap level %v, want (used − baseline) / (limit − baseline) = %v", lvl, want)
	}
	return b
}

// TestAppMemoryBaseline: with --memory-limit the governor measures the
// baseline at start (runtime, compiled code, pools at their reserved size)
// and reads the process's memory net of it; the WASM guests' linear memory
// (mapped outside the Go heap on Linux) is counted once.
func TestAppMemoryBaseline(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "transforms")
	if err := e2e.BuildGuests(dir, e2e.Example("filter")); err != nil {
		t.Fatal(err)
	}

	// No transforms: no pools; the host modules' few pages of code.
	bare := startApp(t, io.Discard, "--sink", "stdout", "--memory-limit", "1GiB")
	bareFixed := func() (int64, int64, int64, bool) {
		f := bare.Host().FixedMemory()
		return f.Code, f.Pools, f.Guests, f.GuestsOffHeap
	}
	b0 := checkHeapReading(t, bare, bareFixed)
	if b0.Pools != 0 || b0.Limit != 1<<30 {
		t.Fatalf("no transforms: baseline %+v, want no pools and the --memory-limit", b0)
	}

	app := startApp(t, io.Discard, "--sink", "stdout", "--memory-limit", "1GiB", "--transforms", dir, "--pipeline", "filter")
	appFixed := func() (int64, int64, int64, bool) {
		f := app.Host().FixedMemory()
		return f.Code, f.Pools, f.Guests, f.GuestsOffHeap
	}
	loaded := checkHeapReading(t, app, appFixed)
	// Pools are PoolSize instances at the memory an initialised instance
	// holds (Add measured it on the instance it validated with, then
	// closed: pools grow with demand).
	if f := app.Host().FixedMemory(); f.PoolSize < 1 || loaded.Pools%int64(f.PoolSize) != 0 || loaded.Pools/int64(f.PoolSize) < 1<<20 {
		t.Fatalf("pools %d, want %d instances of at least 1 MiB each", loaded.Pools, f.PoolSize)
	}
	if loaded.Code < 1<<20 {
		t.Fatalf("a Go transform loaded: code %d bytes", loaded.Code)
	}

	url := "http://" + app.HTTPAddr() + "/v1/events"
	c := &fasthttp.Client{}
	for range 5 {
		if code, resp := post(t, c, url, []byte(`{"event":"click","n":1}`+"\n"+`{"event":"heartbeat"}`)); code != 200 {
			t.Fatalf("%d %s", code, resp)
		}
	}
	if after := checkHeapReading(t, app, appFixed); after.Runtime != loaded.Runtime || after.MeasuredAt != loaded.MeasuredAt {
		t.Fatalf("traffic moved the measured baseline: %+v, was %+v", after, loaded)
	}
}

// TestAppRefusesBaselineOverLimit: a --memory-limit the fixed memory
// leaves less than a quarter of is refused at start, before the ingest
// listener, naming the numbers and what to change.
func TestAppRefusesBaselineOverLimit(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "transforms")
	if err := e2e.BuildGuests(dir, e2e.Example("filter"), e2e.Example("redact")); err != nil {
		t.Fatal(err)
	}
	cfg, err := gateway.LoadConfig([]string{"--http", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--data-dir", t.TempDir(),
		"--sink", "discard", "--memory-limit", "24MiB", "--transforms", dir, "--pipeline", "filter,redact"}, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	app, err := gateway.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	err = app.Start(context.Background())
	if err == nil {
		_ = app.Stop(context.Background())
		t.Fatal("started with a baseline over 75 % of a 24 MiB limit")
	}
	if !errors.Is(err, governor.ErrBaselineTooLarge) || !errors.Is(err, gateway.ErrConfig) {
		t.Fatalf("error %v: want governor.ErrBaselineTooLarge and gateway.ErrConfig", err)
	}
	for _, want := range []string{"memory baseline", "24.0 MiB memory limit", "at least 25%", "raise --memory-limit to at least", "2 in --transforms"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the refusal does not say %q: %v", want, err)
		}
	}
	if addr := app.HTTPAddr(); addr != "" {
		t.Errorf("the ingest listener was started (%s) before the refusal", addr)
	}
}

// TestAppServesBaseline: /admin/budget and /metrics show the baseline.
func TestAppServesBaseline(t *testing.T) {
	app := startApp(t, io.Discard, "--sink", "stdout", "--memory-limit", "512MiB", "--admin-token", "tok")
	b := app.Governor().Baseline()
	req, _ := http.NewRequest(http.MethodGet, "http://"+app.AdminAddr()+"/admin/budget", nil)
	req.Header.Set("Authorization", "Bearer tok")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var body struct {
		Memory struct {
			Baseline *struct {
				Limit      int64      `json:"limit_bytes"`
				Total      int64      `json:"total_bytes"`
				Runtime    int64      `json:"runtime_bytes"`
				Traffic    int64      `json:"traffic_bytes"`
				Share      float64    `json:"traffic_share"`
				GoLimit    int64      `json:"go_memory_limit_bytes"`
				MeasuredAt *time.Time `json:"measured_at"`
			} `json:"baseline"`
		} `json:"memory"`
	}
	err = json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /admin/budget: %d %v", resp.StatusCode, err)
	}
	bb := body.Memory.Baseline
	if bb == nil || bb.Limit != 512<<20 || bb.Total <= 0 || bb.Runtime != b.Runtime || bb.Traffic != bb.Limit-bb.Total ||
		bb.Share <= 0.25 || bb.GoLimit <= 0 || bb.GoLimit >= bb.Limit || bb.MeasuredAt == nil {
		t.Fatalf("/admin/budget memory.baseline = %+v; governor's %+v", bb, b)
	}

	resp, err = http.Get("http://" + app.AdminAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`sluice_memory_baseline_bytes{part="total"} `, `sluice_memory_baseline_bytes{part="runtime"} `,
		`sluice_memory_baseline_bytes{part="binary"} `, `sluice_memory_baseline_bytes{part="code"} `,
		`sluice_memory_baseline_bytes{part="pools"} `, "sluice_memory_used_bytes ",
	} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if want := fmt.Sprintf(`sluice_memory_baseline_bytes{part="runtime"} %d`, b.Runtime); !strings.Contains(string(raw), want) {
		t.Errorf("/metrics lacks %q", want)
	}
}
