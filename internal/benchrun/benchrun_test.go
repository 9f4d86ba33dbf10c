package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func TestParseStatCPU(t *testing.T) {
	// A command name with spaces and parentheses; utime 1234, stime 566.
	stat := "4242 (my (odd) proc) S 1 4242 4242 0 -1 4194560 100 0 0 0 1234 566 0 0 20 0 8 0 12345 1000000 200 18446744073709551615\n"
	got, err := parseStatCPU(stat)
	if err != nil || got != 18.00 {
		t.Fatalf("parseStatCPU = %v, %v; want 18.00", got, err)
	}
	for _, bad := range []string{"", "4242 no paren S 1", "4242 (x) S 1 2 3", "4242 (x) S 1 4242 4242 0 -1 4194560 100 0 0 0 abc 566"} {
		if _, err := parseStatCPU(bad); err == nil {
			t.Errorf("parseStatCPU(%q) did not fail", bad)
		}
	}
	// The live file of this process parses, and CPU time only grows.
	a, err := cpuSeconds(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(30 * time.Millisecond); time.Now().Before(end); {
	}
	b, err := cpuSeconds(os.Getpid())
	if err != nil || b < a {
		t.Fatalf("cpuSeconds went from %v to %v (%v)", a, b, err)
	}
	if rss := peakRSS(os.Getpid()); rss < 1<<20 {
		t.Fatalf("peakRSS of this process = %d bytes", rss)
	}
}

func TestReference(t *testing.T) {
	for _, c := range []struct {
		in   string
		kept bool
		want outcome
		js   string // the expected value
	}{
		{in: `{"id":"a","event":"heartbeat","email":"x@y","ip":"1","geo":{"country":"AU"}}`},
		{
			in:   `{"id":"a","event":"click","user_id":"u-1","email":"A@B.c","ip":"1.2.3.4","ua":"M","geo":{"country":"AU"},"n":1.50}`,
			kept: true, want: outcome{topic: "events.click", key: "u-1", hasKey: true},
			// sha256("A@B.c"): the value as sent, not lowercased.
			js: `{"id":"a","event":"click","user_id":"u-1","email":"` + sha256Hex("A@B.c") + `","geo":{"country":"AU"},"n":1.5,"region":"apac"}`,
		},
		{
			in:   `{"id":"b","event":"","user_id":7,"email":42,"geo":"DE"}`,
			kept: true, want: outcome{key: "7", hasKey: true},
			js: `{"id":"b","event":"","user_id":7,"email":42,"geo":"DE","region":"other"}`,
		},
		{
			in:   `{"id":"c","event":5,"user_id":null,"geo":{"country":"XX"}}`,
			kept: true,
			js:   `{"id":"c","event":5,"user_id":null,"geo":{"country":"XX"},"region":"other"}`,
		},
		{
			in:   `{"id":"d","user_id":{"k":[1,"x"]},"geo":{"country":"NL"}}`,
			kept: true, want: outcome{key: `{"k":[1,"x"]}`, hasKey: true},
			js: `{"id":"d","user_id":{"k":[1,"x"]},"geo":{"country":"NL"},"region":"emea"}`,
		},
	} {
		got, kept, err := reference([]byte(c.in))
		if err != nil || kept != c.kept {
			t.Errorf("reference(%s): kept %v, err %v; want kept %v", c.in, kept, err, c.kept)
			continue
		}
		if !kept {
			continue
		}
		if err := json.Unmarshal([]byte(c.js), &c.want.value); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("reference(%s)\n got %+v\nwant %+v", c.in, got, c.want)
		}
	}
	if _, _, err := reference([]byte(`{"id":`)); err == nil {
		t.Error("reference of broken JSON did not fail")
	}
}

// sha256Hex is the hex SHA-256 of s, computed the way redact does.
func sha256Hex(s string) string {
	o, _, _ := reference([]byte(`{"email":` + mustJSON(s) + `}`))
	return o.value["email"].(string)
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func TestSHA256HexKnown(t *testing.T) {
	// echo -n abc | sha256sum
	if got := sha256Hex("abc"); got != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Fatalf("sha256Hex(abc) = %s", got)
	}
}

// reverseKeys re-renders a JSON object with its top-level keys in reverse
// sorted order.
func reverseKeys(t *testing.T, obj []byte) []byte {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(obj, &m); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	slices.Reverse(keys)
	b := []byte{'{'}
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, mustJSON(k)...)
		b = append(b, ':')
		b = append(b, m[k]...)
	}
	return append(b, '}')
}

// expectedRecords renders what a correct system writes for bodies.
func expectedRecords(t *testing.T, e *expectation) []written {
	t.Helper()
	var out []written
	for _, o := range e.kept {
		out = append(out, written{topic: o.topic, key: o.key, hasKey: o.hasKey, value: []byte(mustJSON(o.value))})
	}
	return out
}

func TestCompare(t *testing.T) {
	e, err := expect([][]byte{edgeEvents, []byte("{\"id\":\"z\",\"event\":\"heartbeat\"}\n\n")})
	if err != nil {
		t.Fatal(err)
	}
	if len(e.kept) != 5 || len(e.dropped) != 2 || !reflect.DeepEqual(e.perBody, [][2]int{{5, 1}, {0, 1}}) {
		t.Fatalf("expectation: %d kept, %d dropped, per body %v", len(e.kept), len(e.dropped), e.perBody)
	}
	good := expectedRecords(t, e)
	if err := e.compare(good); err != nil {
		t.Fatalf("the expected records do not compare equal: %v", err)
	}
	// Key order and number spelling do not matter.
	reordered := slices.Clone(good)
	for i, w := range reordered {
		reordered[i].value = reverseKeys(t, w.value)
		reordered[i].value = bytes.ReplaceAll(reordered[i].value, []byte(`"amount":10.5`), []byte(`"amount":10.50`))
	}
	if !slices.ContainsFunc(reordered, func(w written) bool { return bytes.Contains(w.value, []byte(`"amount":10.50`)) }) {
		t.Fatal("the edge events lost their amount")
	}
	if err := e.compare(reordered); err != nil {
		t.Fatalf("key order or number spelling made a difference: %v", err)
	}
	edit := func(f func([]written) []written) []written { return f(slices.Clone(good)) }
	set := func(i int, f func(*written)) []written {
		return edit(func(ws []written) []written { f(&ws[i]); return ws })
	}
	for name, bad := range map[string][]written{
		"missing":   good[1:],
		"twice":     append(slices.Clone(good), good[0]),
		"topic":     set(0, func(w *written) { w.topic += "x" }),
		"key":       set(0, func(w *written) { w.key += "x" }),
		"key unset": set(0, func(w *written) { w.hasKey = !w.hasKey }),
		"value": set(0, func(w *written) {
			w.value = bytes.Replace(w.value, []byte(`"region":"`), []byte(`"ua":"x","region":"`), 1)
		}),
		"not json": set(0, func(w *written) { w.value = []byte("nope") }),
		"dropped":  append(slices.Clone(good), written{value: []byte(`{"id":"edge-5","event":"heartbeat"}`)}),
		"unknown":  append(slices.Clone(good), written{value: []byte(`{"id":"who"}`)}),
	} {
		if err := e.compare(bad); err == nil {
			t.Errorf("%s: compare did not fail", name)
		}
	}
}

func TestCheckSluiceCounts(t *testing.T) {
	e := &expectation{perBody: [][2]int{{90, 10}, {95, 5}}}
	ok := [][]byte{[]byte(`{"accepted":90,"dropped":10,"dead_lettered":0}`), []byte(`{"accepted":95,"dropped":5,"dead_lettered":0}` + "\n")}
	if err := e.checkSluiceCounts(ok); err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][][]byte{
		ok[:1],
		{ok[0], []byte(`{"accepted":95,"dropped":5,"dead_lettered":1}`)},
		{ok[0], []byte(`{"accepted":94,"dropped":6,"dead_lettered":0}`)},
		{ok[0], []byte(`{"accepted":95,"dropped":5}`)},
		{ok[0], []byte(`ok`)},
	} {
		if err := e.checkSluiceCounts(bad); err == nil {
			t.Errorf("checkSluiceCounts(%q) did not fail", bad)
		}
	}
}

// TestWorkload checks what the comparison says of its workload: the load
// generator's bodies with the benchmark's seed are NDJSON bodies of 100
// analytics events of about 330 bytes, about 10 % of them heartbeats, every
// event with a distinct id.
func TestWorkload(t *testing.T) {
	s, err := captureSample(sampleRequests, 100)
	if err != nil {
		t.Fatal(err)
	}
	st := s.stats
	if st.events != sampleRequests*100 {
		t.Fatalf("%d events in %d bodies of 100", st.events, sampleRequests)
	}
	if m := st.meanSize(); m < 310 || m > 350 {
		t.Errorf("mean event size %.1f B, want about 330", m)
	}
	if h := st.heartbeatShare(); h < 0.08 || h > 0.12 {
		t.Errorf("heartbeat share %.3f, want about 0.1", h)
	}
	e, err := expect(s.bodies)
	if err != nil {
		t.Fatal(err)
	}
	if len(e.kept)+len(e.dropped) != st.events || len(e.dropped) != st.heartbeats {
		t.Fatalf("expectation: %d kept + %d dropped for %d events, %d heartbeats", len(e.kept), len(e.dropped), st.events, st.heartbeats)
	}
	if !strings.Contains(st.String(), "6400 events") {
		t.Errorf("stats line %q", st.String())
	}
}

func TestMeasureWorkload(t *testing.T) {
	st, err := measureWorkload([][]byte{[]byte("{\"event\":\"a\"}\n{\"event\":\"heartbeat\"}\n\n"), []byte(`{"event":"b"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if want := (workloadStats{events: 3, heartbeats: 1, bytes: 13 + 21 + 13, hbBytes: 21}); st != want {
		t.Fatalf("measureWorkload = %+v, want %+v", st, want)
	}
	if _, err := measureWorkload([][]byte{[]byte("{\"event\":\n")}); err == nil {
		t.Fatal("a broken event did not fail")
	}
}

// TestBenthosConfig checks bench/benthos/config.yaml and the check run's
// variant: the same input and pipeline, an http_server on /v1/events whose
// address comes from the environment, and a drop output replaced by the
// printing one.
func TestBenthosConfig(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("..", "..", benthosDir, "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var bench, check map[string]any
	if err := yaml.Unmarshal(src, &bench); err != nil {
		t.Fatal(err)
	}
	out, err := checkConfig(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(out, &check); err != nil {
		t.Fatal(err)
	}
	hs, _ := bench["input"].(map[string]any)["http_server"].(map[string]any)
	if hs["path"] != "/v1/events" || !strings.HasPrefix(hs["address"].(string), "${"+benthosAddrEnv) {
		t.Errorf("http_server %v: want path /v1/events and the address from $%s", hs, benthosAddrEnv)
	}
	if !reflect.DeepEqual(bench["output"], map[string]any{"drop": map[string]any{}}) {
		t.Errorf("benchmark output %v, want drop", bench["output"])
	}
	for _, k := range []string{"input", "pipeline", "http", "logger"} {
		if !reflect.DeepEqual(bench[k], check[k]) {
			t.Errorf("check config %s differs:\n%v\n%v", k, check[k], bench[k])
		}
	}
	var wantOut map[string]any
	b, _ := yaml.Marshal(benthosCheckOutput)
	_ = yaml.Unmarshal(b, &wantOut)
	if !reflect.DeepEqual(check["output"], wantOut) {
		t.Errorf("check output %v", check["output"])
	}
	if _, err := checkConfig([]byte("input: {}\noutput: {}\n")); err == nil {
		t.Error("a config without pipeline was accepted")
	}
}

func TestParseBenthosCheck(t *testing.T) {
	got, err := parseBenthosCheck([]byte(`{"key":"u-1","topic":"events.click","value":{"id":"a"}}
{"key":null,"topic":null,"value":{"id":"b"}}

`))
	if err != nil {
		t.Fatal(err)
	}
	want := []written{{topic: "events.click", key: "u-1", hasKey: true, value: []byte(`{"id":"a"}`)}, {value: []byte(`{"id":"b"}`)}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("parseBenthosCheck = %+v", got)
	}
	for _, bad := range []string{"{", `{"topic":"x"}`} {
		if _, err := parseBenthosCheck([]byte(bad)); err == nil {
			t.Errorf("parseBenthosCheck(%q) did not fail", bad)
		}
	}
}

func TestSelectSystems(t *testing.T) {
	all, err := selectSystems("")
	if err != nil || len(all) != len(peerSystems) {
		t.Fatalf("selectSystems(\"\") = %v, %v", all, err)
	}
	got, err := selectSystems("go-dev, benthos,go-dev")
	if err != nil {
		t.Fatal(err)
	}
	if keys := []string{got[0].key, got[1].key}; len(got) != 2 || !slices.Equal(keys, []string{"benthos", "go-dev"}) {
		t.Fatalf("selectSystems = %v", got)
	}
	if _, err := selectSystems("benthos,flink"); err == nil {
		t.Fatal("an unknown system was accepted")
	}
}

func TestRustTransforms(t *testing.T) {
	root := t.TempDir()
	if dir, err := rustTransforms(root, "auto", false); err != nil || dir != "" {
		t.Fatalf("no bin/transforms-rust: %q, %v", dir, err)
	}
	if _, err := rustTransforms(root, "auto", true); err == nil {
		t.Fatal("asked-for Rust rows without transforms did not fail")
	}
	dir := filepath.Join(root, "bin", "transforms-rust")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range examples[:3] {
		if err := os.WriteFile(filepath.Join(dir, n+".wasm"), []byte("\x00asm"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := rustTransforms(root, "auto", false); err == nil || !strings.Contains(err.Error(), "enrich.wasm") {
		t.Fatalf("an incomplete folder: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "enrich.wasm"), []byte("\x00asm"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := rustTransforms(root, "auto", false); err != nil || got != dir {
		t.Fatalf("rustTransforms = %q, %v; want %q", got, err, dir)
	}
	if got, err := rustTransforms(root, "", false); err != nil || got != "" {
		t.Fatalf("-rust \"\" = %q, %v", got, err)
	}
}

func TestMedian(t *testing.T) {
	rs := []result{{name: "a", events: 3}, {name: "b", events: 1}, {name: "c", events: 2}}
	if m := median(rs); m.name != "c" {
		t.Fatalf("median of 3 = %s", m.name)
	}
	if m := median(rs[:2]); m.name != "b" {
		t.Fatalf("median of 2 = %s (want the lower)", m.name)
	}
	if m := median(rs[:1]); m.name != "a" {
		t.Fatalf("median of 1 = %s", m.name)
	}
	if rs[0].name != "a" || rs[1].name != "b" {
		t.Fatal("median reordered its argument")
	}
}

func TestPeerTable(t *testing.T) {
	tb := peerTable{
		benthosVersion: "v4.60.0",
		ls:             loadSettings{duration: 20 * time.Second, connections: 64, perRequest: 100},
		rounds:         3,
		stats:          workloadStats{events: 100, heartbeats: 10, bytes: 33000, hbBytes: 1600},
		rows: []peerRow{
			{sys: peerSystems[0], r: result{events: 100000, p50: 40, p99: 80.04, cpuPerMillion: 20, cores: 1.8, startRSS: 20 << 20, peakRSS: 45 << 20, acked: 2_000_000}},
			{sys: peerSystems[1], r: result{events: 250000, p50: 20, p99: 40, nonOK: 2, cpuPerMillion: 8, cores: 1.5, startRSS: 250 << 20, peakRSS: 260 << 20, acked: 5_000_000}},
		},
	}
	var md bytes.Buffer
	tb.writeMarkdown(&md)
	want := "| system | events/s | vs Benthos | events per CPU-second vs Benthos | p50 ms | p99 ms | non-200 | CPU s / M events | cores in use | RSS after start-up | peak RSS |\n" +
		"|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n" +
		"| Benthos v4.60.0 (http_server → Bloblang mapping → drop) | 100,000 | 1.00 | 1.00 | 40.0 | 80.0 | 0 | 20.00 | 1.80 | 20.0 MiB | 45.0 MiB |\n" +
		"| sluice `--sink discard`, Go example chain | 250,000 | 2.50 | 2.50 | 20.0 | 40.0 | 2 | 8.00 | 1.50 | 250.0 MiB | 260.0 MiB |\n"
	if md.String() != want {
		t.Fatalf("markdown:\n%s\nwant:\n%s", md.String(), want)
	}
	var text bytes.Buffer
	tb.writeText(&text)
	lines := strings.Split(strings.TrimSpace(text.String()), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[2], "sluice --sink discard, Go example chain") || !strings.Contains(lines[2], " 2.50 ") || !strings.Contains(lines[2], "5.0M") {
		t.Fatalf("text table:\n%s", text.String())
	}
	if w := tb.workloadLine(); !strings.Contains(w, "median of 3 interleaved runs") || !strings.Contains(w, "64 connections, 20s per run") {
		t.Fatalf("workload line %q", w)
	}
	tb.rows[1].runs = []result{{events: 1234.4, cpuPerMillion: 8.004}, tb.rows[1].r}
	var runs bytes.Buffer
	tb.writeRuns(&runs)
	if !strings.Contains(runs.String(), "  go-discard   1,234 (8.00), 250,000 (8.00)\n") {
		t.Fatalf("runs:\n%s", runs.String())
	}
	// Without a Benthos row there are no ratios.
	tb.rows = tb.rows[1:]
	if rate, perCPU := tb.ratios(tb.rows[0].r); rate != "" || perCPU != "" {
		t.Fatalf("ratios without Benthos: %q %q", rate, perCPU)
	}
	if l := peerSystems[4].label("", true); l != "sluice `--dev` (embedded broker, acks=all), Rust example chain" {
		t.Fatalf("label %q", l)
	}
}

func TestThousands(t *testing.T) {
	for in, want := range map[float64]string{0: "0", 999: "999", 1000: "1,000", 123456.6: "123,457", 1234567: "1,234,567", -4321: "-4,321"} {
		if got := thousands(in); got != want {
			t.Errorf("thousands(%v) = %q, want %q", in, got, want)
		}
	}
}

func TestAcquireLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bench.lock")
	release, err := acquireLock(path, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan func(), 1)
	var waitMsg bytes.Buffer
	go func() {
		r, err := acquireLock(path, &waitMsg)
		if err != nil {
			t.Error(err)
			r = func() {}
		}
		got <- r
	}()
	select {
	case <-got:
		t.Fatal("a second holder got the lock while the first held it")
	case <-time.After(100 * time.Millisecond):
	}
	release()
	select {
	case r := <-got:
		r()
	case <-time.After(5 * time.Second):
		t.Fatal("the lock was not handed over after its release")
	}
	if !strings.Contains(waitMsg.String(), "waiting for the lock") {
		t.Errorf("no waiting message: %q", waitMsg.String())
	}
	if r, err := acquireLock("", nil); err != nil {
		t.Fatal(err)
	} else {
		r()
	}
}
