package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

// sampleRequests is the number of request bodies the check runs send: the
// load generator cycles through at most 64 distinct bodies, so these hold
// every distinct event of a timed run.
const sampleRequests = 64

// peerSystem is one row of the comparison.
type peerSystem struct {
	key   string // its -systems name
	chain string // "go" or "rust"; "" for Benthos
	sink  string // "discard" or "dev"; "" for Benthos
}

// peerSystems are the rows, in the order they run.
var peerSystems = []peerSystem{
	{key: "benthos"},
	{key: "go-discard", chain: "go", sink: "discard"},
	{key: "go-dev", chain: "go", sink: "dev"},
	{key: "rust-discard", chain: "rust", sink: "discard"},
	{key: "rust-dev", chain: "rust", sink: "dev"},
}

// peerKeys are the -systems names.
func peerKeys() []string {
	var k []string
	for _, s := range peerSystems {
		k = append(k, s.key)
	}
	return k
}

// label names the row; markdown quotes the flags.
func (s peerSystem) label(benthosVersion string, markdown bool) string {
	if s.chain == "" {
		return "Benthos " + benthosVersion + " (http_server → Bloblang mapping → drop)"
	}
	q := func(f string) string {
		if markdown {
			return "`" + f + "`"
		}
		return f
	}
	sink := q("--sink discard")
	if s.sink == "dev" {
		sink = q("--dev") + " (embedded broker, acks=all)"
	}
	chain := "Go"
	if s.chain == "rust" {
		chain = "Rust"
	}
	return "sluice " + sink + ", " + chain + " example chain"
}

// selectSystems returns the rows that -systems asks for (all when empty).
func selectSystems(list string) ([]peerSystem, error) {
	if strings.TrimSpace(list) == "" {
		return slices.Clone(peerSystems), nil
	}
	var out []peerSystem
	for k := range strings.SplitSeq(list, ",") {
		k = strings.TrimSpace(k)
		i := slices.IndexFunc(peerSystems, func(s peerSystem) bool { return s.key == k })
		if i < 0 {
			return nil, fmt.Errorf("-systems: unknown system %q (want %s)", k, strings.Join(peerKeys(), ", "))
		}
		if !slices.ContainsFunc(out, func(s peerSystem) bool { return s.key == k }) {
			out = append(out, peerSystems[i])
		}
	}
	// Keep the canonical order whatever the order of the list.
	slices.SortFunc(out, func(a, b peerSystem) int {
		return slices.IndexFunc(peerSystems, func(s peerSystem) bool { return s.key == a.key }) -
			slices.IndexFunc(peerSystems, func(s peerSystem) bool { return s.key == b.key })
	})
	return out, nil
}

// rustTransforms resolves -rust: the folder of the Rust example guests, or
// "" when there is none and none was asked for.
func rustTransforms(root, flagValue string, wanted bool) (string, error) {
	dir := flagValue
	if flagValue == "auto" {
		dir = filepath.Join(root, "bin", "transforms-rust")
		if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
			if wanted {
				return "", fmt.Errorf("no %s for the Rust rows: build the Rust examples first (make build)", dir)
			}
			return "", nil
		}
	}
	if dir == "" {
		if wanted {
			return "", errors.New("-rust \"\" leaves out the Rust rows that -systems asks for")
		}
		return "", nil
	}
	for _, name := range examples {
		if _, err := os.Stat(filepath.Join(dir, name+".wasm")); err != nil {
			return "", fmt.Errorf("Rust example transforms in %s: %w (build them with make build)", dir, err)
		}
	}
	return dir, nil
}

// runPeers is `make bench-peers`: the same workload against Benthos and
// sluice, in one run.
func runPeers(root, tmp string, o options, stdout, stderr io.Writer) error {
	if o.rounds < 1 {
		return errors.New("-rounds: want ≥ 1")
	}
	systems, err := selectSystems(o.systems)
	if err != nil {
		return err
	}
	explicitRust := o.systems != "" && slices.ContainsFunc(systems, func(s peerSystem) bool { return s.chain == "rust" })
	rustDir, err := rustTransforms(root, o.rust, explicitRust)
	if err != nil {
		return err
	}
	if rustDir == "" {
		systems = slices.DeleteFunc(systems, func(s peerSystem) bool { return s.chain == "rust" })
		fmt.Fprintln(stderr, "benchrun: no Rust example transforms (bin/transforms-rust): the Rust rows are left out")
	}
	has := func(f func(peerSystem) bool) bool { return slices.ContainsFunc(systems, f) }
	hasBenthos := has(func(s peerSystem) bool { return s.chain == "" })

	sluiceBin, err := buildSluice(root, tmp, stderr)
	if err != nil {
		return err
	}
	goDir, err := ensureTransforms(root, stderr)
	if err != nil {
		return err
	}
	chains := map[string]string{"go": goDir, "rust": rustDir}
	benthosVer, err := benthosVersion(filepath.Join(root, benthosDir))
	if err != nil {
		return err
	}
	benthosBin := o.benthos
	if hasBenthos && benthosBin == "" {
		if benthosBin, err = benthosBuild(root, tmp, benthosVer, stderr); err != nil {
			return err
		}
	}
	benchConf, checkConf, err := benthosConfigs(root, tmp)
	if err != nil {
		return err
	}
	if hasBenthos {
		if err := benthosLint(benthosBin, benchConf, checkConf); err != nil {
			return err
		}
	}

	s, err := captureSample(sampleRequests, o.perRequest)
	if err != nil {
		return err
	}
	checkBodies := append(slices.Clone(s.bodies), edgeEvents)
	e, err := expect(checkBodies)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "benchrun: workload sample (%d requests, seed %d): %s\n", sampleRequests, seed, s.stats)

	release, err := acquireLock(o.lock, stderr)
	if err != nil {
		return err
	}
	defer release()

	// Check that every system does the work before timing any.
	if hasBenthos {
		if err := checkBenthos(benthosBin, checkConf, checkBodies, e, o.checkOut, stderr); err != nil {
			return fmt.Errorf("%w: Benthos: %w", errCheck, err)
		}
		fmt.Fprintf(stderr, "benchrun: check: Benthos wrote the expected %d records (topic, key, value) for %d events\n", len(e.kept), len(e.kept)+len(e.dropped))
	}
	for _, chain := range []string{"go", "rust"} {
		if !has(func(p peerSystem) bool { return p.chain == chain }) {
			continue
		}
		sr := sluiceRun{bin: sluiceBin, transforms: chains[chain], pipeline: strings.Join(examples, ",")}
		if err := checkSluice(sr, chain, checkBodies, e, tmp, o.checkOut, stderr); err != nil {
			return fmt.Errorf("%w: sluice, %s chain: %w", errCheck, chain, err)
		}
		fmt.Fprintf(stderr, "benchrun: check: sluice with the %s chain wrote the expected %d records (topic, key, value) for %d events\n", chain, len(e.kept), len(e.kept)+len(e.dropped))
	}

	runs := map[string][]result{}
	for round := range o.rounds {
		for _, sys := range systems {
			name := sys.key
			if o.rounds > 1 {
				name = fmt.Sprintf("%s#%d", sys.key, round+1)
			}
			r, err := measurePeer(sys, name, sluiceBin, benthosBin, benchConf, chains, tmp, o.loadSettings, stderr)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			r.name = sys.key
			if r.nonOK > 0 {
				fmt.Fprintf(stderr, "benchrun: warning: %s: %d requests not answered 200\n", name, r.nonOK)
			}
			fmt.Fprintf(stderr, "benchrun: %s: %.0f events/s, %.2f CPU s/M events, peak RSS %.1f MiB\n", name, r.events, r.cpuPerMillion, mib(r.peakRSS))
			runs[sys.key] = append(runs[sys.key], r)
		}
	}
	release()

	t := peerTable{benthosVersion: benthosVer, ls: o.loadSettings, rounds: o.rounds, stats: s.stats}
	for _, sys := range systems {
		t.rows = append(t.rows, peerRow{sys: sys, r: median(runs[sys.key]), runs: runs[sys.key]})
	}
	fmt.Fprintln(stdout, hostLine(root, benthosVer))
	fmt.Fprintln(stdout, t.workloadLine())
	fmt.Fprintln(stdout)
	t.writeText(stdout)
	if o.rounds > 1 {
		fmt.Fprintln(stdout)
		t.writeRuns(stdout)
	}
	if o.markdown {
		fmt.Fprintln(stdout)
		t.writeMarkdown(stdout)
	}
	return nil
}

// measurePeer starts one system from scratch (sluice from a fresh, empty
// data dir, so start-up compiles every transform), loads it and stops it.
func measurePeer(sys peerSystem, name, sluiceBin, benthosBin, benthosConf string, chains map[string]string, tmp string, ls loadSettings, stderr io.Writer) (result, error) {
	var p *process
	var url string
	if sys.chain == "" {
		var err error
		if p, url, err = startBenthos(benthosBin, benthosConf, "benthos", nil); err != nil {
			return result{}, err
		}
	} else {
		dataDir := filepath.Join(tmp, "data-"+strings.ReplaceAll(name, "#", "-"))
		defer os.RemoveAll(dataDir)
		sr := sluiceRun{bin: sluiceBin, transforms: chains[sys.chain], pipeline: strings.Join(examples, ","), dataDir: dataDir}
		switch sys.sink {
		case "discard":
			sr.sinkArgs = []string{"--sink", "discard"}
		case "dev":
			sr.sinkArgs = []string{"--dev", "--dev-broker", "127.0.0.1:0"}
		}
		var addr string
		var err error
		if p, addr, err = startSluice(sr, name, tmp); err != nil {
			return result{}, err
		}
		url = "http://" + addr + "/v1/events"
	}
	defer p.kill()
	r, err := measure(sluiceBin, url, tmp, p, strings.ReplaceAll(name, "#", "-"), ls, stderr)
	if err != nil {
		return r, err
	}
	return r, p.stop(60*time.Second, stderr)
}

// checkSluice starts sluice with the chain and the embedded broker (from a
// fresh data dir), posts the bodies, checks each response's counts and
// compares every record in every topic with the expectation.
func checkSluice(sr sluiceRun, chain string, bodies [][]byte, e *expectation, tmp, outDir string, stderr io.Writer) error {
	broker, err := freeAddr()
	if err != nil {
		return err
	}
	name := "check-" + chain
	sr.dataDir = filepath.Join(tmp, "data-"+name)
	defer os.RemoveAll(sr.dataDir)
	const topic = "events"
	sr.sinkArgs = []string{"--dev", "--dev-broker", broker, "--topic", topic}
	p, addr, err := startSluice(sr, name, tmp)
	if err != nil {
		return err
	}
	defer p.kill()
	responses, err := postAll("http://"+addr+"/v1/events", bodies)
	if err != nil {
		return fmt.Errorf("%w\n%s", err, p.logTail())
	}
	if err := e.checkSluiceCounts(responses); err != nil {
		return err
	}
	got, err := readAllTopics(broker, topic, time.Minute)
	if err != nil {
		return err
	}
	if err := p.stop(60*time.Second, stderr); err != nil {
		return err
	}
	if err := saveCheck(outDir, "sluice-"+chain, got); err != nil {
		return err
	}
	return e.compare(got)
}

// median returns the run with the median events/s (the lower middle one
// of an even number).
func median(runs []result) result {
	s := slices.Clone(runs)
	slices.SortFunc(s, func(a, b result) int {
		switch {
		case a.events < b.events:
			return -1
		case a.events > b.events:
			return 1
		}
		return 0
	})
	return s[(len(s)-1)/2]
}

// peerRow is one system's figures.
type peerRow struct {
	sys  peerSystem
	r    result   // the median run
	runs []result // every run, in order
}

// peerTable is the comparison's result.
type peerTable struct {
	benthosVersion string
	ls             loadSettings
	rounds         int
	stats          workloadStats
	rows           []peerRow
}

// baseline is the Benthos row, if it ran.
func (t *peerTable) baseline() (result, bool) {
	for _, row := range t.rows {
		if row.sys.chain == "" {
			return row.r, true
		}
	}
	return result{}, false
}

// ratios returns r's events/s and events per CPU-second relative to
// Benthos' ("" without a Benthos row).
func (t *peerTable) ratios(r result) (rate, perCPU string) {
	b, ok := t.baseline()
	if !ok || b.events == 0 || r.cpuPerMillion == 0 {
		return "", ""
	}
	return fmt.Sprintf("%.2f", r.events/b.events), fmt.Sprintf("%.2f", b.cpuPerMillion/r.cpuPerMillion)
}

func (t *peerTable) workloadLine() string {
	rounds := ""
	if t.rounds > 1 {
		rounds = fmt.Sprintf(", the median of %d interleaved runs per system", t.rounds)
	}
	return fmt.Sprintf("workload: NDJSON bodies of %d built-in events of sluice load (seed %d; sample: %s), closed loop, %d connections, %v per run%s, load generator on the same machine",
		t.ls.perRequest, seed, t.stats, t.ls.connections, t.ls.duration, rounds)
}

func (t *peerTable) writeText(w io.Writer) {
	fmt.Fprintf(w, "%-62s %10s %7s %9s %8s %8s %8s %7s %9s %6s %10s %10s\n",
		"system", "events/s", "vs B.", "CPU vs B.", "p50 ms", "p99 ms", "non-200", "acked", "CPU s/M", "cores", "start RSS", "peak RSS")
	for _, row := range t.rows {
		r := row.r
		rate, perCPU := t.ratios(r)
		fmt.Fprintf(w, "%-62s %10.0f %7s %9s %8.2f %8.2f %8d %7s %9.2f %6.2f %6.1f MiB %6.1f MiB\n",
			row.sys.label(t.benthosVersion, false), r.events, rate, perCPU, r.p50, r.p99, r.nonOK,
			shortCount(r.acked), r.cpuPerMillion, r.cores, mib(r.startRSS), mib(r.peakRSS))
	}
}

func (t *peerTable) writeMarkdown(w io.Writer) {
	fmt.Fprintln(w, "| system | events/s | vs Benthos | events per CPU-second vs Benthos | p50 ms | p99 ms | non-200 | CPU s / M events | cores in use | RSS after start-up | peak RSS |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, row := range t.rows {
		r := row.r
		rate, perCPU := t.ratios(r)
		fmt.Fprintf(w, "| %s | %s | %s | %s | %.1f | %.1f | %d | %.2f | %.2f | %.1f MiB | %.1f MiB |\n",
			row.sys.label(t.benthosVersion, true), thousands(r.events), rate, perCPU, r.p50, r.p99, r.nonOK,
			r.cpuPerMillion, r.cores, mib(r.startRSS), mib(r.peakRSS))
	}
}

// writeRuns lists every run's events/s and CPU per event, in the order
// they ran, so that the spread on a shared machine shows.
func (t *peerTable) writeRuns(w io.Writer) {
	fmt.Fprintln(w, "every run, in order (events/s, CPU s / M events):")
	for _, row := range t.rows {
		var runs []string
		for _, r := range row.runs {
			runs = append(runs, fmt.Sprintf("%s (%.2f)", thousands(r.events), r.cpuPerMillion))
		}
		fmt.Fprintf(w, "  %-12s %s\n", row.sys.key, strings.Join(runs, ", "))
	}
}

// hostLine describes the machine and the code measured.
func hostLine(root, benthosVersion string) string {
	commit := "unknown"
	if out, err := exec.Command("git", "-C", root, "rev-parse", "--short", "HEAD").Output(); err == nil {
		commit = strings.TrimSpace(string(out))
		if st, err := exec.Command("git", "-C", root, "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(st) > 0 {
			commit += " (with uncommitted changes)"
		}
	}
	return fmt.Sprintf("peer comparison: %s, %d CPUs (%s), %.0f GiB RAM, Linux %s, %s, sluice %s, Benthos %s; 1-minute load average at the end %s",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), runtime.NumCPU(), cpuModel(), float64(memTotal())/(1<<30),
		kernelRelease(), runtime.Version(), commit, benthosVersion, loadAverage())
}

// mib is bytes in MiB.
func mib(b int64) float64 { return float64(b) / (1 << 20) }

// thousands formats v rounded to an integer with comma separators.
func thousands(v float64) string {
	s := fmt.Sprintf("%.0f", v)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// shortCount formats a count as 1.2M or 345k.
func shortCount(n uint64) string {
	switch {
	case n >= 1e6:
		return fmt.Sprintf("%.1fM", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.0fk", float64(n)/1e3)
	}
	return fmt.Sprint(n)
}
