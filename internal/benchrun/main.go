// Command benchrun is the end-to-end part of `make bench`, and with -peers
// the whole of `make bench-peers`.
//
// Without -peers it builds the sluice binary and the example transforms
// (into bin/transforms, as `make transforms` does), then starts `sluice run`
// twice on loopback with the example pipeline filter,redact,route,enrich —
// once with --sink discard and once with the embedded Kafka broker (--dev) —
// drives each with `sluice load` (100 events per request, a fixed duration,
// enough connections to saturate the machine) and prints, per run,
// acknowledged events/s, the p50/p99 request latency, the CPU seconds the
// sluice process spent per million events (utime+stime from /proc/PID/stat,
// before and after the load) and its peak RSS (VmHWM from /proc/PID/status).
//
// With -peers it compares sluice with Benthos on the same workload, in one
// run: it builds Benthos from its own module in bench/benthos (the
// open-source core with the pure and io bundles; its go.mod pins the
// version) and runs bench/benthos/config.yaml (http_server → the example
// chain's work as one Bloblang mapping → drop). Before timing anything it
// checks that every system does the work: it captures the first 64 request
// bodies of the load generator (with the benchmark's seed: every distinct
// event of a run), adds a body of edge cases, computes what the example
// chain must make of each event (reference, the examples written in plain
// Go) and compares every record each system writes — Benthos through a
// variant of its config that prints topic, key and value, sluice through its
// embedded broker — and sluice's response counts. Then it measures Benthos
// and sluice with the Go example chain (and the Rust one, when
// bin/transforms-rust exists), each with --sink discard and --dev, every
// sluice process from a fresh data dir (so start-up compiles the
// transforms, and the peak RSS includes it), with the same load settings
// for all, and prints events/s, the ratio to Benthos, CPU per event, and
// RSS after start-up and at the peak.
//
// Usage (from the module root):
//
//	go run ./internal/benchrun [-duration 20s] [-connections 64] [-events-per-request 100] [-pipeline filter,redact,route,enrich] [-modes discard,dev] [-markdown] [-lock FILE] [-sluice BINARY] [-sluice-flags FLAGS]
//	go run ./internal/benchrun -peers [-rounds 3] [-systems benthos,go-discard,…] [-benthos BIN] [-rust DIR] [-check-out DIR] [flags above]
//
// The load generator runs on the same machine and competes for the same
// cores; its own CPU time is printed too, so the figures can be read with
// that in mind. -lock FILE holds an exclusive flock(2) on FILE from the
// first check run to the last measurement, so that two measurements on a
// shared machine never overlap.
package main

import (
	"cmp"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"
)

// examples are the transforms of the pipeline, in order.
var examples = []string{"filter", "redact", "route", "enrich"}

func main() {
	os.Exit(doMain(os.Args[1:], os.Stdout, os.Stderr))
}

type options struct {
	loadSettings
	markdown bool
	modes    string
	pipeline string
	lock     string
	bin      string // a sluice binary to run instead of building one
	flags    string // more sluice run flags, space separated

	// The peer comparison (-peers).
	peers    bool
	benthos  string
	rust     string
	systems  string
	rounds   int
	checkOut string
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
	fs.StringVar(&o.bin, "sluice", "", "run this sluice `BINARY` instead of building the module's (to compare two builds)")
	fs.StringVar(&o.flags, "sluice-flags", "", "more flags for sluice run, space separated (e.g. \"--driver-depth 1\")")
	fs.StringVar(&o.lock, "lock", "", "hold an exclusive flock(2) on this `FILE` while measuring, so that measurements on a shared machine never overlap (do not also wrap benchrun in flock(1) on the same file)")
	fs.BoolVar(&o.peers, "peers", false, "compare with Benthos instead (make bench-peers): Benthos and sluice on the same workload in one run")
	fs.StringVar(&o.benthos, "benthos", "", "with -peers: a Benthos binary to use instead of building bench/benthos")
	fs.StringVar(&o.rust, "rust", "auto", "with -peers: folder of the Rust example transforms (auto: bin/transforms-rust when it exists; \"\" for none)")
	fs.StringVar(&o.systems, "systems", "", "with -peers: only these rows, comma separated ("+strings.Join(peerKeys(), ", ")+"; default all)")
	fs.IntVar(&o.rounds, "rounds", 1, "with -peers: run every system this many times, interleaved, and report each system's median run")
	fs.StringVar(&o.checkOut, "check-out", "", "with -peers: write the outputs of the check runs to this `FOLDER`")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "benchrun: unexpected arguments %q\n", fs.Args())
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
	if o.peers {
		if err := runPeers(root, tmp, o, stdout, stderr); err != nil {
			fmt.Fprintf(stderr, "benchrun: %v\n", err)
			return 1
		}
		return 0
	}
	return runModes(root, tmp, o, stdout, stderr)
}

// runModes is the end-to-end part of `make bench`: the pipeline with each
// sink mode.
func runModes(root, tmp string, o options, stdout, stderr io.Writer) int {
	bin := o.bin
	if bin == "" {
		var err error
		if bin, err = buildSluice(root, tmp, stderr); err != nil {
			fmt.Fprintf(stderr, "benchrun: %v\n", err)
			return 1
		}
	}
	transforms, err := ensureTransforms(root, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "benchrun: %v\n", err)
		return 1
	}
	release, err := acquireLock(o.lock, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "benchrun: %v\n", err)
		return 1
	}
	defer release()

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
		s := sluiceRun{bin: bin, transforms: transforms, pipeline: o.pipeline, sinkArgs: sinkArgs, extra: strings.Fields(o.flags)}
		r, err := benchOne(s, mode, tmp, o.loadSettings, stderr)
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

// benchOne starts sluice as s says, loads it and stops it.
func benchOne(s sluiceRun, name, tmp string, ls loadSettings, stderr io.Writer) (result, error) {
	p, addr, err := startSluice(s, name, tmp)
	if err != nil {
		return result{name: name}, err
	}
	defer p.kill()
	r, err := measure(s.bin, "http://"+addr+"/v1/events", tmp, p, name, ls, stderr)
	if err != nil {
		return r, err
	}
	if err := p.stop(60*time.Second, stderr); err != nil {
		return r, err
	}
	return r, nil
}

func (r result) line() string {
	return fmt.Sprintf("%-8s %10.0f events/s  %8.0f req/s  p50 %6.2f ms  p99 %7.2f ms  non-200 %d  sluice CPU %.2f s/M events (%.2f cores)  load CPU %.2f s/M events  peak RSS %.1f MiB  (%d events acked; load average before %s)",
		r.name, r.events, r.requests, r.p50, r.p99, r.nonOK, r.cpuPerMillion, r.cores, r.loadPerMil, float64(r.peakRSS)/(1<<20), r.acked, r.loadAvg)
}

func (r result) markdownRow() string {
	sink := map[string]string{"discard": "`--sink discard`", "dev": "`--dev` (embedded kfake)"}[r.name]
	return fmt.Sprintf("| %s | %.0f | %.0f | %.2f | %.2f | %d | %.2f | %.2f | %.2f | %.1f MiB |",
		sink, r.events, r.requests, r.p50, r.p99, r.nonOK, r.cpuPerMillion, r.cores, r.loadPerMil, float64(r.peakRSS)/(1<<20))
}
