package main

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/e2e"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

var exampleNames = []string{"filter", "redact", "route", "enrich"}

// goChainDir and rustChainDir build the example transforms from source
// (examples/ with Go, examples/rust with cargo) and copy them into one
// --transforms folder each.
func goChainDir(t testing.TB) string {
	t.Helper()
	guests := make([]e2e.Guest, len(exampleNames))
	for i, n := range exampleNames {
		guests[i] = e2e.Example(n)
	}
	return chainDir(t, e2e.GuestFiles(t, guests...), nil)
}

func rustChainDir(t testing.TB) string {
	t.Helper()
	guests := make([]e2e.RustGuest, len(exampleNames))
	for i, n := range exampleNames {
		guests[i] = e2e.RustExample(n)
	}
	return chainDir(t, e2e.RustGuestFiles(t, guests...), nil)
}

// chainDir copies files into a new folder, under the names given (by
// index; the file's own name when missing).
func chainDir(t testing.TB, files, names []string) string {
	t.Helper()
	dir := t.TempDir()
	for i, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Base(f)
		if i < len(names) {
			name = names[i]
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// diffLines are the corpus of the Go/Rust differential test: every kind of
// value the examples look at, in every shape they may meet.
var diffLines = []string{
	// Unicode.
	`{"id":"uni-1","event":"click","user_id":"ü-1","email":"zoë@exämple.com","ip":"::1","ua":"Mözilla/5.0","geo":{"country":"DE","city":"Köln"},"note":"日本語 😀"}`,
	`{"id":"uni-2","event":"view","user_id":"用户42","geo":{"country":"JP"},"email":"\u7528@example.jp","ua":"\u2028"}`,
	// Events whose topic Kafka refuses (dead-lettered by the sink, alone).
	`{"id":"uni-3","event":"clíck","user_id":"u3"}`,
	`{"id":"top-1","event":"page view","user_id":"u4"}`,
	`{"id":"top-2","event":"` + strings.Repeat("e", 250) + `","user_id":"u5"}`,
	// Escapes, in the fields the examples read and in the ones they edit.
	`{"id":"esc-1","event":"cl\u0069ck","user_id":"u\"q\\b","email":"a\\b@c.d","geo":{"country":"J\u0050"}}`,
	`{"id":"esc-2","event":"heart\u0062eat","user_id":"u2"}`,
	`{"id":"esc-3","event":"sign\u0075p","user_id":"\ud83d\ude00","email":"\ud800@x"}`,
	`{"id":"esc-4","event":"view","user_id":"\ud800x\udc00\ud800\u0041"}`,
	`{"id":"esc-5","event":"view","user_id":"tab\there\nnl \u0000 nul \/ slash","email":"\"quoted\"@x"}`,
	"{\"id\":\"esc-7\",\"event\":\"view\",\"user_id\":\"bad \xff utf-8 \\n escaped\",\"email\":\"\xfe@x\"}",
	`{"id":"esc-6","event":"view","user_id":"\u00e9\u0301","geo":{"country":"\u0044\u0045"}}`,
	// Nested values.
	`{"id":"nest-1","event":"click","user_id":{"org":"o1","n":[1,2,{"x":null}]},"geo":{"country":{"code":"DE"}},"props":{"deep":{"deeper":{"deepest":[{"a":1}]}}}}`,
	`{"id":"nest-2","event":"click","geo":"DE","user_id":["a","b"]}`,
	`{"id":"nest-3","event":"view","geo":{"country":"US","city":{"name":"NYC"}},"email":{"addr":"x@y"},"ua":{"raw":"x"},"ip":[10,0,0,1]}`,
	// Missing fields.
	`{}`,
	`{"id":"miss-1"}`,
	`{"id":"miss-2","event":"","user_id":""}`,
	`{"id":"miss-3","event":"click","user_id":null,"geo":null}`,
	`{"id":"miss-4","geo":{}}`,
	// Wrong types.
	`{"id":"type-1","event":42,"user_id":42,"email":42,"geo":{"country":42}}`,
	`{"id":"type-2","event":true,"user_id":1.5e3,"email":null,"ip":null,"ua":false}`,
	`{"id":"type-3","event":null,"user_id":-0.0,"email":["a@b"],"geo":{"country":null}}`,
	`{"id":"type-4","event":["click"],"user_id":true,"geo":[{"country":"DE"}]}`,
	`{"id":"type-5","event":"heartbeat","user_id":{"nested":"hb"}}`,
	`{"id":"type-6","event":{"name":"heartbeat"},"region":7}`,
	// Layout the host must keep, and a field enrich overwrites.
	`{ "id" : "ws-1" , "event" : "click" , "user_id" : "u 1" , "geo" : { "country" : "FR" } , "ua" : "x" , "ip" : "y" }`,
	`{"id":"reg-1","event":"click","region":"mars","geo":{"country":"NZ"},"email":"` + strings.Repeat("long", 300) + `@x"}`,
	// Duplicate keys (I-JSON: dead-lettered at the receiver).
	`{"id":"dup-1","event":"click","event":"view"}`,
	`{"id":"dup-2","geo":{"country":"DE","country":"FR"}}`,
	// Not records.
	`{"id":"broken",`,
	`not json at all`,
	`["an","array"]`,
	`"just a string"`,
	`42`,
	`{"id":"huge","pad":"` + strings.Repeat("z", 3000) + `"}`,
}

// diffBodies are the requests of the differential test, sent in order: the
// corpus as NDJSON (with the analytics events of TestPipelineExamples), as
// NDJSON with CRLF line ends, the well-formed objects as a JSON array, and
// one object alone.
func diffBodies() [][]byte {
	var lf, crlf, arr strings.Builder
	for i := range 200 {
		lf.WriteString(analyticsEvent(i))
		lf.WriteByte('\n')
	}
	arr.WriteByte('[')
	for _, l := range diffLines {
		lf.WriteString(l + "\n")
		crlf.WriteString(l + "\r\n")
		if l[0] == '{' && strings.HasSuffix(l, "}") && !strings.Contains(l, `"huge"`) {
			if arr.Len() > 1 {
				arr.WriteString(",\n ")
			}
			arr.WriteString(l)
		}
	}
	arr.WriteByte(']')
	return [][]byte{[]byte(lf.String()), []byte(crlf.String()), []byte(arr.String()), []byte(diffLines[0])}
}

// chainRun is what one chain did with the corpus.
type chainRun struct {
	responses []string
	// records are every record of every topic, one line each (topic, key,
	// headers, value; sorted within a topic), by topic.
	records map[string][]string
}

// runChain starts sluice --dev with the pipeline of the transforms in dir,
// posts bodies (NDJSON, or JSON when one starts with '[' or '{' and holds no
// newline) and reads back every topic of its broker.
func runChain(t *testing.T, dir string, pipeline []string, bodies [][]byte, args ...string) chainRun {
	t.Helper()
	broker := fmt.Sprintf("127.0.0.1:%d", e2e.FreePort(t))
	p := startSluice(t, append([]string{"--dev", "--dev-broker", broker, "--transforms", dir,
		"--pipeline", strings.Join(pipeline, ","), "--ack-timeout", "30s"}, args...)...)
	var run chainRun
	for _, body := range bodies {
		ct := "application/x-ndjson"
		if body[0] == '[' || !bytes.Contains(body, []byte("\n")) {
			ct = "application/json"
		}
		r := do(t, "POST", p.URL("/v1/events"), body, "Content-Type", ct)
		run.responses = append(run.responses, fmt.Sprintf("%d %s", r.code, r.body))
	}
	brokers := []string{broker}
	run.records = map[string][]string{}
	for _, rec := range consume(t, brokers, listTopics(t, brokers)...) {
		run.records[rec.Topic] = append(run.records[rec.Topic], recordLine(rec))
	}
	for _, recs := range run.records {
		slices.Sort(recs)
	}
	if code := p.stop(t); code != 0 {
		t.Errorf("exit code %d", code)
	}
	return run
}

// listTopics returns every topic of the cluster.
func listTopics(t testing.TB, brokers []string) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	td, err := kadm.NewClient(cl).ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return td.Names()
}

// recordLine is a record as one comparable line: key (nil and empty told
// apart), headers in order, value; not the partition, offset or timestamp.
func recordLine(r *kgo.Record) string {
	var b strings.Builder
	if r.Key == nil {
		b.WriteString("key=<none>")
	} else {
		fmt.Fprintf(&b, "key=%q", r.Key)
	}
	for _, h := range r.Headers {
		fmt.Fprintf(&b, " %s=%q", h.Key, h.Value)
	}
	fmt.Fprintf(&b, " value=%q", r.Value)
	return b.String()
}

// TestExamplesGoRustDifferential sends one corpus through the Go example
// chain and through the Rust one (each built from source, each in the real
// binary with its dev broker) and requires the same response to every
// request and the same records in every topic, the dead-letter topic and
// its reasons included, byte for byte.
func TestExamplesGoRustDifferential(t *testing.T) {
	goDir, rustDir := goChainDir(t), rustChainDir(t)
	goRun := runChain(t, goDir, exampleNames, diffBodies(), "--max-event", "2KiB")
	rustRun := runChain(t, rustDir, exampleNames, diffBodies(), "--max-event", "2KiB")
	compareRuns(t, goRun, rustRun)

	// The corpus exercises what it should: drops, routes, keys, edits and
	// dead letters (checked on the Go chain, the reference).
	for i, r := range goRun.responses {
		if !strings.HasPrefix(r, "200 ") || (i < 3 && strings.Contains(r, `"dropped":0`)) || (i < 2 && strings.Contains(r, `"dead_lettered":0`)) {
			t.Errorf("response %d: %s; want a 200 (with drops and dead letters)", i, r)
		}
	}
	var routed int
	for tp, recs := range goRun.records {
		if strings.HasPrefix(tp, "events.") {
			routed += len(recs)
		}
	}
	dlq := strings.Join(goRun.records["sluice.dlq"], "\n")
	for _, want := range []string{"is not valid JSON", "is not a JSON object", "event too large", `sluice-stage="sink"`} {
		if !strings.Contains(dlq, want) {
			t.Errorf("no dead letter with %q in:\n%s", want, short(dlq))
		}
	}
	want := map[string]string{
		"esc-1":  `key="u\"q\\b"`,                                   // decoded string key
		"esc-4":  "key=\"\ufffdx\ufffd\ufffdA\"",                    // lone surrogates
		"nest-1": `key="{\"org\":\"o1\",\"n\":[1,2,{\"x\":null}]}"`, // raw JSON key
		"type-2": `key="1.5e3"`,
		"miss-2": `key=""`,
		"miss-3": `key=<none>`,
	}
	for id, key := range want {
		found := false
		for _, recs := range goRun.records {
			for _, l := range recs {
				if strings.Contains(l, `\"id\":\"`+id+`\"`) || strings.Contains(l, `\"id\" : \"`+id+`\"`) {
					found = true
					if !strings.HasPrefix(l, key+" ") {
						t.Errorf("%s: %s; want %s", id, short(l), key)
					}
				}
			}
		}
		if !found {
			t.Errorf("%s: no record", id)
		}
	}
	if routed < 150 || len(goRun.records["events.click"]) == 0 || len(goRun.records["events.signup"]) == 0 {
		t.Errorf("routing: %d records in events.* topics; topics %v", routed, slices.Sorted(maps.Keys(goRun.records)))
	}
}

// compareRuns fails the test unless both runs got the same responses and
// wrote the same records to the same topics.
func compareRuns(t *testing.T, goRun, rustRun chainRun) {
	t.Helper()
	if !slices.Equal(goRun.responses, rustRun.responses) {
		t.Errorf("responses differ:\n  go:   %q\n  rust: %q", goRun.responses, rustRun.responses)
	}
	topics := map[string]bool{}
	for tp := range goRun.records {
		topics[tp] = true
	}
	for tp := range rustRun.records {
		topics[tp] = true
	}
	for _, tp := range slices.Sorted(maps.Keys(topics)) {
		g, r := goRun.records[tp], rustRun.records[tp]
		if slices.Equal(g, r) {
			continue
		}
		t.Errorf("topic %s: %d records from the Go chain, %d from the Rust chain", tp, len(g), len(r))
		for _, l := range g {
			if !slices.Contains(r, l) {
				t.Errorf("  only Go:   %s", short(l))
			}
		}
		for _, l := range r {
			if !slices.Contains(g, l) {
				t.Errorf("  only Rust: %s", short(l))
			}
		}
	}
}

// short cuts long runs of one byte (the corpus's oversized values) out of
// a failure message.
func short(s string) string {
	for _, c := range []string{"z", "long"} {
		long := strings.Repeat(c, 64)
		for strings.Contains(s, long+c) {
			s = strings.ReplaceAll(s, long+c, long)
		}
		s = strings.ReplaceAll(s, long, c+"…")
	}
	return s
}

// TestRustExampleSizes: the Rust examples stay small, release-built and
// stripped (no name or debug sections), at most 300 KB each.
func TestRustExampleSizes(t *testing.T) {
	guests := make([]e2e.RustGuest, len(exampleNames))
	for i, n := range exampleNames {
		guests[i] = e2e.RustExample(n)
	}
	for i, f := range e2e.RustGuestFiles(t, guests...) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s.wasm: %d bytes", exampleNames[i], len(b))
		if len(b) > 300_000 {
			t.Errorf("%s.wasm is %d bytes, over 300 KB", exampleNames[i], len(b))
		}
		for _, section := range []string{"name", ".debug_info", "producers"} {
			if customSection(b, section) {
				t.Errorf("%s.wasm has a %q section: not stripped", exampleNames[i], section)
			}
		}
	}
}

// customSection reports whether the wasm module b has a custom section
// (id 0) called name.
func customSection(b []byte, name string) bool {
	uleb := func(i int) (uint64, int) {
		var v uint64
		for s := 0; i < len(b); s += 7 {
			c := b[i]
			i++
			v |= uint64(c&0x7f) << s
			if c < 0x80 {
				break
			}
		}
		return v, i
	}
	for i := 8; i < len(b); {
		id := b[i]
		size, j := uleb(i + 1)
		end := j + int(size)
		if end > len(b) {
			return false
		}
		if id == 0 {
			n, k := uleb(j)
			if k+int(n) <= end && string(b[k:k+int(n)]) == name {
				return true
			}
		}
		i = end
	}
	return false
}

// kitchenLines are the corpus of the SDK differential test: every
// operation of the kitchen guests (testdata/kitchen), each alone and many
// times in one batch.
func kitchenLines() []string {
	lines := []string{
		`{"id":"k1","op":"dlq"}`,
		`{"id":"k2","op":"err"}`,
		`{"id":"k3","op":"drop-err"}`,
		`{"id":"k4","op":"dlq-err"}`,
		`{"id":"k5","op":"split","items":[{"x":1},{"x":"two"},[3],"four",null]}`,
		`{"id":"k6","op":"meta"}`,
		`{"id":"k7","op":"edit","gone":1,"a":{"b":{"d":0}}}`,
		`{"id":"k7b","op":"edit","a":"not an object"}`,
		`{"id":"k8","op":"types","src":{"deep":[1,"x",{"y":null}]}}`,
		`{"id":"k9","op":"big","blob":"` + strings.Repeat("b", 40000) + `"}`,
		`{"id":"k10","op":"str","s":"a\"b\\é\u00e9","n":5}`,
		`{"id":"k11","op":"raw","x":[1,2]}`,
		`{"id":"k12","op":"badjson"}`,
		`{"id":"k13","op":"hash","email":"A@B.c","n":42,"nested":{"email":"n@x","n":1},"obj":{"a":1}}`,
		`{"id":"k13b","op":"hash","email":null,"nested":"flat"}`,
		`{"id":"k14","op":"hash-after-edit","email":"old@x","n":7,"gone":"x"}`,
		`{"id":"k14b","op":"hash-after-edit","email":42}`,
		`{"id":"k15","op":"set-nested-bad","geo":{"country":"DE"}}`,
		`{"id":"k16","op":"delete-nested","geo":{"city":"x","country":"DE"},"list":[1,2]}`,
		`{"id":"k17","op":"value","v":{"s":"x","esc":"\u00e9\n","n":-12,"f":1.5e3,"t":true,"null":null,"obj":{"a":[1]},"bad":"\ud800"}}`,
		`{"id":"k18","op":"paths","p":[` + strings.TrimSuffix(strings.Repeat("1,", 30), ",") + `]}`,
		`{"id":"k19","op":"emit-edit"}`,
		`{"id":"k20","op":"long-reason"}`,
		`{"id":"k21","op":"key","user_id":{"z":1}}`,
		`{"id":"k22","op":"key","user_id":"\u0075\u0031"}`,
		`{"id":"k23","op":"unknown"}`,
		`{"id":"k25","op":"route-to"}`,
		`{"id":"k26","op":"array-shift","list":[1,{"b":2},"three"]}`,
		`{"id":"k26b","op":"array-shift","list":"not an array"}`,
		`{"id":"k27","op":"edit-others","ua":"Mozilla","email":"a@b.c","geo":{"city":"x","country":"DE"},"n":1}`,
		`{"id":"k27b","op":"edit-others","email":7,"geo":"flat","tag":"old"}`,
		`{"id":"k24"}`,
	}
	// The same operations again and again in one batch, with varied data.
	emails := []string{`"a@b.c"`, `42`, `null`, `{"x":1}`, `"é@\u00e9"`, `""`}
	for i := range 60 {
		lines = append(lines,
			fmt.Sprintf(`{"id":"h%d","op":"hash","email":%s,"n":%d}`, i, emails[i%len(emails)], i),
			fmt.Sprintf(`{"id":"e%d","op":"edit","gone":%d}`, i, i),
			fmt.Sprintf(`{"id":"m%d","op":"meta"}`, i),
			fmt.Sprintf(`{"id":"s%d","op":"split","items":[{"x":%d},{"x":"y"}]}`, i, i),
			fmt.Sprintf(`{"id":"v%d","op":"value","v":{"s":"s%d","n":%d}}`, i, i, i),
			fmt.Sprintf(`{"id":"r%d","op":"route-to"}`, i),
			fmt.Sprintf(`{"id":"a%d","op":"array-shift","list":[%d,%d,%d,%d]}`, i, i, i+1, i+2, i+3),
			fmt.Sprintf(`{"id":"o%d","op":"edit-others","ua":"u%d","email":%s,"geo":{"city":"c","country":"C%d"},"n":%d}`, i, i, emails[i%len(emails)], i, i),
		)
	}
	return lines
}

// TestSDKKitchenGoRustDifferential runs the Go SDK's kitchen guest and the
// Rust SDK's (testdata/kitchen: the same operations, step for step) over
// one corpus in the real binary and requires byte-identical output: values,
// topics, keys, headers, dead letters and their reasons, responses.
func TestSDKKitchenGoRustDifferential(t *testing.T) {
	goDir := chainDir(t, e2e.GuestFiles(t, e2e.Guest{Name: "sdk-kitchen", Dir: "cmd/sluice/testdata/kitchen/go", Pkg: "."}), []string{"kitchen.wasm"})
	rust := e2e.RustGuest{Name: "kitchen", Dir: "cmd/sluice/testdata/kitchen/rust"}
	perRecord := rust
	perRecord.NoDefaultFeatures = true
	files := e2e.RustGuestFiles(t, rust, perRecord)
	lines := kitchenLines()
	// A batch of a few operations only, so the SDKs read every path of
	// theirs from a column.
	var few []string
	for _, l := range lines {
		if strings.Contains(l, `"op":"array-shift"`) || strings.Contains(l, `"op":"edit-others"`) || strings.Contains(l, `"op":"hash"`) {
			few = append(few, l)
		}
	}
	bodies := [][]byte{[]byte(strings.Join(lines, "\n") + "\n"), []byte(lines[5]), []byte(lines[13]), []byte(strings.Join(few, "\n") + "\n"), []byte(strings.Join(few, "\n") + "\n")}
	goRun := runChain(t, goDir, []string{"kitchen"}, bodies)
	// The Rust SDK with the per-batch host functions (its default) and
	// with per-record calls only.
	for i, mode := range []string{"per-batch", "per-record"} {
		t.Run(mode, func(t *testing.T) {
			rustRun := runChain(t, chainDir(t, files[i:i+1], nil), []string{"kitchen"}, bodies)
			compareRuns(t, goRun, rustRun)
		})
	}

	// The corpus reached every operation (checked on the Go guest).
	all := ""
	for _, recs := range goRun.records {
		all += strings.Join(recs, "\n") + "\n"
	}
	for _, want := range []string{
		`sluice-reason="bad k1"`, `sluice-reason="handler error k2"`, `sluice-reason="first k4"`,
		`seen="items.1|two"`, `seen="key=k-k6 h1=v1/true h2=/false topic=meta.t"`, `\"echo\":\"true/42/\"`,
		`sluice-reason="sluice: not found"`, `\"blob_len\":40000`, `\"got\":\"a\\\"b\\\\éé/true/false/false\"`,
		`{\"wrapped\":`, `\"checked\":\"sluice: invalid JSON|sluice: invalid JSON|sluice: bad path|sluice: bad path|sluice: bad path|sluice: invalid JSON\"`,
		`email=true/ok,n=false/sluice: wrong JSON type,missing=false/ok`, `\"sum\":24`, `child_seen`, `raison: ünïcödé`,
		`key="{\"z\":1}"`, `key="u1"`, `t="rt.k25"`, `t="rt.r7"`,
		`\"shifted\":\"{\\\"b\\\":2}/three/\"`, `\"shifted\":\"8/9/10\"`,
		`\"seen\":\"true/ok//t-o0/{\\\"country\\\":\\\"C0\\\"}/C0/`,
	} {
		if !strings.Contains(all, want) {
			t.Errorf("no output with %s", want)
		}
	}
	if t.Failed() {
		t.Logf("Go guest output:\n%s", short(all))
	}
}
