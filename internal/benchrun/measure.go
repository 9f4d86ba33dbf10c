package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

// result is one run's figures.
type result struct {
	name          string  // the run: a sluice mode or a peer-comparison system key
	events        float64 // acked events per second
	requests      float64 // requests per second
	p50, p99      float64 // ms
	nonOK         uint64
	cpuPerMillion float64 // the gateway's CPU seconds per million acked events
	loadPerMil    float64 // load generator CPU seconds per million acked events
	cores         float64 // the gateway's CPU seconds per second of the run: cores in use
	loadAvg       string  // the machine's 1-minute load average before the run
	startRSS      int64   // VmHWM once listening, before the load: start-up peak (compilation included)
	peakRSS       int64   // VmHWM after the load: the peak of the whole run
	acked         uint64
}

// loadReport is the part of `sluice load --json` read here.
type loadReport struct {
	Requests struct {
		Total     uint64  `json:"total"`
		OK        uint64  `json:"ok"`
		PerSecond float64 `json:"per_second"`
	} `json:"requests"`
	Events struct {
		Acked     uint64  `json:"acked"`
		PerSecond float64 `json:"per_second"`
	} `json:"events"`
	Latency struct {
		P50 float64 `json:"p50"`
		P99 float64 `json:"p99"`
	} `json:"latency_ms"`
}

// loadSettings are the load generator's settings, the same for every run.
type loadSettings struct {
	duration    time.Duration
	connections int
	perRequest  int
}

// seed of the built-in events of every run: the same events every time.
const seed = 42

// measure drives url with `sluice load` (loadBin) as ls says, closed loop,
// and returns the figures of p, the gateway under load. p keeps running.
func measure(loadBin, url, tmp string, p *process, name string, ls loadSettings, stderr io.Writer) (result, error) {
	r := result{name: name}
	pid := p.pid()
	r.startRSS = peakRSS(pid)
	cpu0, err := cpuSeconds(pid)
	if err != nil {
		return r, err
	}
	wall0 := time.Now()
	report := filepath.Join(tmp, name+".json")
	load := exec.Command(loadBin, "load", "--url", url, "--quiet",
		"--events-per-request", strconv.Itoa(ls.perRequest), "--connections", strconv.Itoa(ls.connections),
		"--duration", ls.duration.String(), "--seed", strconv.Itoa(seed), "--json", report)
	load.Stdout, load.Stderr = io.Discard, stderr
	r.loadAvg = loadAverage()
	fmt.Fprintf(stderr, "benchrun: %s: loading for %v (1-minute load average before: %s) …\n", name, ls.duration, r.loadAvg)
	if err := load.Run(); err != nil {
		return r, fmt.Errorf("sluice load: %w", err)
	}
	cpu1, err := cpuSeconds(pid)
	if err != nil {
		return r, fmt.Errorf("%s after the load: %w", p.name, err)
	}
	r.cores = (cpu1 - cpu0) / time.Since(wall0).Seconds()
	r.peakRSS = peakRSS(pid)
	loadCPU := (load.ProcessState.UserTime() + load.ProcessState.SystemTime()).Seconds()

	b, err := os.ReadFile(report)
	if err != nil {
		return r, err
	}
	var rep loadReport
	if err := json.Unmarshal(b, &rep); err != nil {
		return r, fmt.Errorf("load report: %w", err)
	}
	if rep.Events.Acked == 0 {
		return r, fmt.Errorf("no event was acknowledged:\n%s", p.logTail())
	}
	r.acked = rep.Events.Acked
	r.events, r.requests = rep.Events.PerSecond, rep.Requests.PerSecond
	r.p50, r.p99 = rep.Latency.P50, rep.Latency.P99
	r.nonOK = rep.Requests.Total - rep.Requests.OK
	millions := float64(rep.Events.Acked) / 1e6
	r.cpuPerMillion = (cpu1 - cpu0) / millions
	r.loadPerMil = loadCPU / millions
	return r, nil
}

// sluiceRun is how one sluice process is started.
type sluiceRun struct {
	bin        string
	transforms string   // folder of NAME.wasm ("" with no pipeline)
	pipeline   string   // --pipeline ("" for none)
	sinkArgs   []string // --sink discard, or --dev and its broker
	dataDir    string   // --data-dir ("" for none)
	extra      []string // more flags
}

// startSluice starts `sluice run` on loopback and waits until it listens;
// it returns the process and its ingest address.
func startSluice(s sluiceRun, name, tmp string) (*process, string, error) {
	ready := filepath.Join(tmp, name+".ready")
	_ = os.Remove(ready)
	args := []string{"run", "--http", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--ready-file", ready, "--log-level", "warn"}
	if s.pipeline != "" {
		args = append(args, "--transforms", s.transforms, "--pipeline", s.pipeline)
	}
	if s.dataDir != "" {
		args = append(args, "--data-dir", s.dataDir)
	}
	args = append(args, s.sinkArgs...)
	args = append(args, s.extra...)
	p, err := startProcess("sluice "+name, s.bin, args, nil, nil)
	if err != nil {
		return nil, "", err
	}
	addr, err := p.waitReadyFile(ready, 2*time.Minute)
	if err != nil {
		p.kill()
		return nil, "", err
	}
	return p, addr, nil
}

// buildSluice builds the sluice binary of the module at root into dir.
func buildSluice(root, dir string, stderr io.Writer) (string, error) {
	bin := filepath.Join(dir, "sluice")
	t := time.Now()
	if err := run(root, nil, stderr, "go", "build", "-trimpath", "-o", bin, "./cmd/sluice"); err != nil {
		return "", fmt.Errorf("build sluice: %w", err)
	}
	fmt.Fprintf(stderr, "benchrun: built sluice in %v\n", time.Since(t).Round(time.Millisecond))
	return bin, nil
}

// ensureTransforms (re)builds the example guests into bin/transforms, as
// `make transforms` does, and returns that folder. It always builds, so
// that the run never measures guests left from an older SDK; the Go build
// cache makes an unchanged guest cost a fraction of a second.
func ensureTransforms(root string, stderr io.Writer) (string, error) {
	dir := filepath.Join(root, "bin", "transforms")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	for _, name := range examples {
		out := filepath.Join(dir, name+".wasm")
		t := time.Now()
		env := []string{"GOOS=wasip1", "GOARCH=wasm"}
		if err := run(filepath.Join(root, "examples"), env, stderr, "go", "build", "-trimpath", "-buildmode=c-shared", "-o", out, "./"+name); err != nil {
			return "", fmt.Errorf("build transform %s: %w", name, err)
		}
		fmt.Fprintf(stderr, "benchrun: built transform %s in %v\n", name, time.Since(t).Round(time.Millisecond))
	}
	return dir, nil
}
