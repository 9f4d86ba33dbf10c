// Command benchrun is the end-to-end part of `make bench`: it builds the
// sluice binary and the example transforms (into bin/transforms, as `make
// transforms` does), then starts `sluice run` twice on loopback with the example
// pipeline filter,redact,route,enrich — once with --sink discard and once
// with the embedded Kafka broker (--dev) — drives each with `sluice load`
// (100 events per request, a fixed duration, enough connections to
// saturate the machine) and prints, per run, acknowledged events/s, the
// p50/p99 request latency, the CPU seconds the sluice process spent per
// million events (utime+stime from /proc/PID/stat, before and after the
// load) and its peak RSS (VmHWM from /proc/PID/status).
//
// Usage (from the module root):
//
//	go run ./internal/benchrun [-duration 20s] [-connections 64] [-events-per-request 100] [-pipeline filter,redact,route,enrich] [-modes discard,dev] [-markdown]
//
// The load generator runs on the same machine and competes for the same
// cores; its own CPU time is printed too, so the figures can be read with
// that in mind.
package main

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// examples are the transforms of the pipeline, in order.
var examples = []string{"filter", "redact", "route", "enrich"}

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat; it
// is 100 on every Linux architecture Go supports.
const clockTicks = 100

func main() {
	os.Exit(doMain(os.Args[1:], os.Stdout, os.Stderr))
}

type options struct {
	duration    time.Duration
	connections int
	perRequest  int
	markdown    bool
	modes       string
	pipeline    string
}

func doMain(args []string, stdout, stderr io.Writer) int {
	var o options
	fs := flag.NewFlagSet("benchrun", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.DurationVar(&o.duration, "duration", 20*time.Second, "load duration of each run")
	fs.IntVar(&o.connections, "connections", 64, "load connections (one request in flight each)")
	fs.IntVar(&o.perRequest, "events-per-request", 100, "events per request")
	fs.BoolVar(&o.markdown, "markdown", false, "also print the results as a Markdown table")
	fs.StringVar(&o.pipeline, "pipeline", strings.Join(examples, ","), "the pipeline: example transforms, comma separated (\"\" for none, a pass-through baseline)")
	fs.StringVar(&o.modes, "modes", "discard,dev", "runs, comma separated: discard (--sink discard) and dev (--dev, embedded Kafka)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if runtime.GOOS != "linux" {
		fmt.Fprintln(stderr, "benchrun: needs Linux (/proc) to measure CPU time and RSS")
		return 1
	}
	root, err := moduleRoot()
	if err != nil {
		fmt.Fprintf(stderr, "benchrun: %v\n", err)
		return 1
	}
	tmp, err := os.MkdirTemp("", "sluice-benchrun-")
	if err != nil {
		fmt.Fprintf(stderr, "benchrun: %v\n", err)
		return 1
	}
	defer os.RemoveAll(tmp)

	bin := filepath.Join(tmp, "sluice")
	t := time.Now()
	if err := run(root, nil, stderr, "go", "build", "-trimpath", "-o", bin, "./cmd/sluice"); err != nil {
		fmt.Fprintf(stderr, "benchrun: build sluice: %v\n", err)
		return 1
	}
	fmt.Fprintf(stderr, "benchrun: built sluice in %v\n", time.Since(t).Round(time.Millisecond))
	transforms, err := ensureTransforms(root, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "benchrun: %v\n", err)
		return 1
	}

	fmt.Fprintf(stdout, "end-to-end: sluice run + sluice load on one machine (%d CPUs, %s), pipeline %s, %d events/request, %d connections, %v per run\n",
		runtime.NumCPU(), cpuModel(), cmp.Or(o.pipeline, "none"), o.perRequest, o.connections, o.duration)
	var results []result
	for _, mode := range strings.Split(o.modes, ",") {
		mode = strings.TrimSpace(mode)
		var sinkArgs []string
		switch mode {
		case "discard":
			sinkArgs = []string{"--sink", "discard"}
		case "dev":
			sinkArgs = []string{"--dev", "--dev-broker", "127.0.0.1:0"}
		default:
			fmt.Fprintf(stderr, "benchrun: unknown mode %q (want discard or dev)\n", mode)
			return 2
		}
		r, err := benchOne(bin, transforms, tmp, mode, sinkArgs, o, stderr)
		if err != nil {
			fmt.Fprintf(stderr, "benchrun: %s: %v\n", mode, err)
			return 1
		}
		results = append(results, r)
		fmt.Fprintln(stdout, r.line())
	}
	if o.markdown {
		fmt.Fprintln(stdout)
		fmt.Fprintln(stdout, "| sink | events/s | requests/s | p50 ms | p99 ms | non-200 | sluice CPU s / M events | sluice cores in use | load CPU s / M events | sluice peak RSS |")
		fmt.Fprintln(stdout, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
		for _, r := range results {
			fmt.Fprintln(stdout, r.markdownRow())
		}
	}
	return 0
}

// result is one run's figures.
type result struct {
	mode          string
	events        float64 // acked events per second
	requests      float64 // requests per second
	p50, p99      float64 // ms
	nonOK         uint64
	cpuPerMillion float64 // sluice CPU seconds per million acked events
	loadPerMil    float64 // load generator CPU seconds per million acked events
	cores         float64 // sluice CPU seconds per second of the run: cores in use
	loadAvg       string  // the machine's 1-minute load average before the run
	peakRSS       int64
	acked         uint64
}

func (r result) line() string {
	return fmt.Sprintf("%-8s %10.0f events/s  %8.0f req/s  p50 %6.2f ms  p99 %7.2f ms  non-200 %d  sluice CPU %.2f s/M events (%.2f cores)  load CPU %.2f s/M events  peak RSS %.1f MiB  (%d events acked; load average before %s)",
		r.mode, r.events, r.requests, r.p50, r.p99, r.nonOK, r.cpuPerMillion, r.cores, r.loadPerMil, float64(r.peakRSS)/(1<<20), r.acked, r.loadAvg)
}

func (r result) markdownRow() string {
	sink := map[string]string{"discard": "`--sink discard`", "dev": "`--dev` (embedded kfake)"}[r.mode]
	return fmt.Sprintf("| %s | %.0f | %.0f | %.2f | %.2f | %d | %.2f | %.2f | %.2f | %.1f MiB |",
		sink, r.events, r.requests, r.p50, r.p99, r.nonOK, r.cpuPerMillion, r.cores, r.loadPerMil, float64(r.peakRSS)/(1<<20))
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

// benchOne starts sluice with sinkArgs, loads it and stops it.
func benchOne(bin, transforms, tmp, mode string, sinkArgs []string, o options, stderr io.Writer) (result, error) {
	r := result{mode: mode}
	ready := filepath.Join(tmp, mode+".ready")
	args := []string{"run", "--http", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--ready-file", ready, "--log-level", "warn"}
	if o.pipeline != "" {
		args = append(args, "--transforms", transforms, "--pipeline", o.pipeline)
	}
	args = append(args, sinkArgs...)
	var logs bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		return r, err
	}
	var waitErr error
	exited := make(chan struct{})
	go func() { waitErr = cmd.Wait(); close(exited) }()
	defer func() {
		select {
		case <-exited:
		default:
			_ = cmd.Process.Kill()
			<-exited
		}
	}()
	httpAddr, err := waitReady(ready, exited, 2*time.Minute)
	if err != nil {
		return r, fmt.Errorf("%w\n%s", err, logs.String())
	}
	pid := cmd.Process.Pid
	cpu0, err := cpuSeconds(pid)
	if err != nil {
		return r, err
	}
	wall0 := time.Now()
	report := filepath.Join(tmp, mode+".json")
	load := exec.Command(bin, "load", "--url", "http://"+httpAddr+"/v1/events", "--quiet",
		"--events-per-request", strconv.Itoa(o.perRequest), "--connections", strconv.Itoa(o.connections),
		"--duration", o.duration.String(), "--seed", "42", "--json", report)
	load.Stdout, load.Stderr = io.Discard, stderr
	r.loadAvg = loadAverage()
	fmt.Fprintf(stderr, "benchrun: %s: loading for %v (1-minute load average before: %s) …\n", mode, o.duration, r.loadAvg)
	if err := load.Run(); err != nil {
		return r, fmt.Errorf("sluice load: %w", err)
	}
	cpu1, err := cpuSeconds(pid)
	if err != nil {
		return r, err
	}
	r.cores = (cpu1 - cpu0) / time.Since(wall0).Seconds()
	r.peakRSS = peakRSS(pid)
	loadCPU := (load.ProcessState.UserTime() + load.ProcessState.SystemTime()).Seconds()

	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
		if waitErr != nil {
			fmt.Fprintf(stderr, "benchrun: %s: sluice exited with %v\n", mode, waitErr)
		}
	case <-time.After(60 * time.Second):
		return r, errors.New("sluice did not stop within 60s of SIGTERM")
	}

	b, err := os.ReadFile(report)
	if err != nil {
		return r, err
	}
	var rep loadReport
	if err := json.Unmarshal(b, &rep); err != nil {
		return r, fmt.Errorf("load report: %w", err)
	}
	if rep.Events.Acked == 0 {
		return r, fmt.Errorf("no event was acknowledged:\n%s", logs.String())
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

// waitReady waits for sluice's ready file and returns the ingest address.
func waitReady(path string, exited <-chan struct{}, d time.Duration) (string, error) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(path); err == nil {
			for f := range strings.FieldsSeq(string(b)) {
				if v, ok := strings.CutPrefix(f, "http="); ok {
					return v, nil
				}
			}
			return "", fmt.Errorf("ready file %q has no http address: %q", path, b)
		}
		select {
		case <-exited:
			return "", errors.New("sluice exited before listening")
		case <-time.After(20 * time.Millisecond):
		}
	}
	return "", fmt.Errorf("sluice did not listen within %v", d)
}

// cpuSeconds returns utime+stime of pid in seconds (/proc/PID/stat fields
// 14 and 15).
func cpuSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; fields resume after ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	// f[0] is field 3 (state), so utime (14) is f[11] and stime (15) f[12].
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return float64(ut+st) / clockTicks, nil
}

// peakRSS returns VmHWM of pid in bytes (-1 if unknown).
func peakRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return -1
}

// loadAverage returns the 1-minute load average (/proc/loadavg): other
// work on the machine skews every figure, and this shows how much there was.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	if f := strings.Fields(string(b)); len(f) > 0 {
		return f[0]
	}
	return "unknown"
}

// cpuModel returns the first "model name" of /proc/cpuinfo.
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

// moduleRoot returns the folder of the main module's go.mod.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("run benchrun from inside the sluice module")
	}
	return filepath.Dir(gomod), nil
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

// run runs a command in dir with extra environment, its output to stderr.
func run(dir string, env []string, stderr io.Writer, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = stderr, stderr
	return cmd.Run()
}
