package e2e_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/e2e"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestMain(m *testing.M) { os.Exit(e2e.Main(m)) }

func TestBufferLimitAndTail(t *testing.T) {
	b := &e2e.Buffer{Limit: 10}
	fmt.Fprint(b, "0123456789")
	if got := b.String(); got != "0123456789" {
		t.Fatalf("at the limit: %q", got)
	}
	fmt.Fprint(b, "ab") // 12 > 10: keeps the last 5
	if got := b.String(); got != "789ab" {
		t.Fatalf("past the limit: %q", got)
	}
	if got := b.Tail(3); got != "…9ab" {
		t.Fatalf("Tail(3) = %q", got)
	}
	if got := b.Tail(10); got != "789ab" {
		t.Fatalf("Tail(10) = %q", got)
	}

	var u e2e.Buffer // unlimited, written concurrently
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 1000 {
				u.Write([]byte("x"))
				_ = u.String()
			}
		})
	}
	wg.Wait()
	if n := len(u.String()); n != 4000 {
		t.Fatalf("unlimited buffer holds %d bytes, want 4000", n)
	}
}

func TestTailLines(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"a\nb\nc", 2, "b\nc"},
		{"a\nb\nc", 5, "a\nb\nc"},
		{"a\nb\n", 1, ""},
		{"a\nb\n", 2, "b\n"},
	} {
		if got := e2e.TailLines(tc.in, tc.n); got != tc.want {
			t.Errorf("TailLines(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}

func TestParseReady(t *testing.T) {
	h, a, err := e2e.ParseReady([]byte("http=127.0.0.1:1234 admin=127.0.0.1:5678\n"))
	if err != nil || h != "127.0.0.1:1234" || a != "127.0.0.1:5678" {
		t.Fatalf("ParseReady = %q, %q, %v", h, a, err)
	}
	for _, bad := range []string{"", "http=127.0.0.1:1", "admin=127.0.0.1:2", "http= admin=x"} {
		if _, _, err := e2e.ParseReady([]byte(bad)); !errors.Is(err, e2e.ErrNotReady) {
			t.Errorf("ParseReady(%q): %v, want ErrNotReady", bad, err)
		}
	}
}

func TestParseMetrics(t *testing.T) {
	m, err := e2e.ParseMetrics([]byte("# HELP x y\n\nsluice_a_total 3\nsluice_b{tenant=\"a b\",le=\"+Inf\"} 1.5e+06\nsluice_c NaN\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 3 || m["sluice_a_total"] != 3 || m[`sluice_b{tenant="a b",le="+Inf"}`] != 1.5e6 || m["sluice_c"] == m["sluice_c"] {
		t.Fatalf("ParseMetrics = %v", m)
	}
	if _, err := e2e.ParseMetrics([]byte("sluice_a_total three\n")); err == nil {
		t.Fatal("a value that is no number parsed")
	}
}

func TestRootAndGoEnv(t *testing.T) {
	root, err := e2e.Root()
	if err != nil {
		t.Fatal(err)
	}
	wd, _ := os.Getwd()
	if want := filepath.Dir(filepath.Dir(wd)); root != want {
		t.Fatalf("Root = %s, want %s", root, want)
	}
	t.Setenv("GOFLAGS", "-race -count=1 -race=true")
	var flags []string
	for _, kv := range e2e.GoEnv() {
		if v, ok := strings.CutPrefix(kv, "GOFLAGS="); ok {
			flags = append(flags, v)
		}
	}
	if len(flags) != 1 || flags[0] != "-count=1" {
		t.Fatalf("GOFLAGS in GoEnv: %q", flags)
	}
}

func TestFreePort(t *testing.T) {
	port := e2e.FreePort(t)
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatalf("FreePort %d cannot be bound: %v", port, err)
	}
	ln.Close()
}

func TestDoAndReadMetrics(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/metrics":
			fmt.Fprintf(w, "x_total %s\n", r.Header.Get("X-Value"))
		case "/echo":
			var b bytes.Buffer
			b.ReadFrom(r.Body)
			w.Header().Set("X-Method", r.Method)
			w.WriteHeader(http.StatusAccepted)
			fmt.Fprintf(w, "%s %s", r.Header.Get("Content-Type"), b.String())
		default:
			http.Error(w, "no", http.StatusInternalServerError)
		}
	}))
	t.Cleanup(srv.Close)
	c := srv.Client()
	r, err := e2e.Do(c, "PUT", srv.URL+"/echo", []byte("body"), "Content-Type", "text/plain", "Odd")
	if err != nil || r.Code != http.StatusAccepted || string(r.Body) != "text/plain body" || r.Header.Get("X-Method") != "PUT" {
		t.Fatalf("Do = %d %q %v, %v", r.Code, r.Body, r.Header, err)
	}
	if _, err := e2e.Do(c, "GET", "http://127.0.0.1:"+strconv.Itoa(e2e.FreePort(t)), nil); err == nil {
		t.Fatal("Do to a closed port did not fail")
	}
	if _, err := e2e.ReadMetrics(c, srv.URL+"/other"); err == nil || !strings.Contains(err.Error(), "500") {
		t.Fatalf("ReadMetrics of a 500: %v", err)
	}
}

func TestKafkaReadTopics(t *testing.T) {
	for _, fixed := range []bool{false, true} {
		t.Run(fmt.Sprintf("fixed port %v", fixed), func(t *testing.T) {
			c := e2e.Kafka(t, e2e.KafkaConfig{Topics: []string{"a", "b"}, FixedPort: fixed})
			brokers := c.ListenAddrs()
			if len(brokers) != 1 {
				t.Fatalf("%d brokers, want 1", len(brokers))
			}
			if got := e2e.ReadTopics(t, brokers, e2e.ReadOptions{Strict: true}, "a", "b"); len(got) != 0 {
				t.Fatalf("empty topics read %d records", len(got))
			}
			cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			var recs []*kgo.Record
			for i := range 30 {
				topic := "a"
				if i%3 == 0 {
					topic = "b"
				}
				recs = append(recs, &kgo.Record{Topic: topic, Value: []byte(strconv.Itoa(i)),
					Headers: []kgo.RecordHeader{{Key: "n", Value: []byte(strconv.Itoa(i))}, {Key: "n", Value: []byte("second")}}})
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
				t.Fatal(err)
			}
			if ends := e2e.EndOffsets(t, brokers, "a", "b"); ends["a"] != 20 || ends["b"] != 10 {
				t.Fatalf("EndOffsets = %v", ends)
			}
			got := e2e.ReadTopics(t, brokers, e2e.ReadOptions{Strict: true}, "a", "b")
			seen := map[string]string{}
			for _, r := range got {
				seen[string(r.Value)] = r.Topic
				if h := e2e.Header(r, "n"); h != string(r.Value) {
					t.Fatalf("Header(n) = %q on record %s", h, r.Value)
				}
				if h := e2e.Header(r, "missing"); h != "" {
					t.Fatalf("Header(missing) = %q", h)
				}
			}
			if len(got) != 30 || len(seen) != 30 || seen["3"] != "b" || seen["4"] != "a" {
				t.Fatalf("read %d records, %d distinct: %v", len(got), len(seen), seen)
			}
			if got := e2e.ReadTopics(t, brokers, e2e.ReadOptions{}, "b"); len(got) != 10 {
				t.Fatalf("topic b: %d records, want 10", len(got))
			}
		})
	}
}

func TestGuests(t *testing.T) {
	g := e2e.Guest{Name: "noop", Dir: "wasmhost/testdata/guests"}
	p1 := e2e.GuestFiles(t, g)[0]
	start := time.Now()
	p2 := e2e.GuestFiles(t, g)[0]
	if p1 != p2 || time.Since(start) > time.Second {
		t.Fatalf("second GuestFiles: %s (first %s) after %v", p2, p1, time.Since(start))
	}
	b, err := os.ReadFile(p1)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("\x00asm")) {
		t.Fatalf("%s is no wasm module: % x", p1, b[:min(8, len(b))])
	}
	if !strings.HasPrefix(p1, e2e.Scratch(t)) || filepath.Base(filepath.Dir(p1)) != "noop" {
		t.Fatalf("guest built to %s, not its own folder of %s", p1, e2e.Scratch(t))
	}
	err = e2e.BuildGuests(t.TempDir(), g, e2e.Guest{Name: "nosuch", Dir: "wasmhost/testdata/guests"})
	if err == nil || !strings.Contains(err.Error(), "build guest nosuch") {
		t.Fatalf("building a missing guest: %v", err)
	}
}

// TestStartSluice runs the real binary against kfake: an event posted to
// it is in Kafka, /metrics counts it, and SIGTERM stops it with code 0.
func TestStartSluice(t *testing.T) {
	k := e2e.Kafka(t, e2e.KafkaConfig{Topics: []string{"events", "sluice.dlq"}})
	brokers := k.ListenAddrs()
	p := e2e.Start(t, e2e.Options{Stdout: true, LogLimit: 1 << 20}, "--brokers", brokers[0], "--data-dir", t.TempDir())
	if !p.Alive() || p.HTTP == "" || p.Admin == "" || p.URL("/x") != "http://"+p.HTTP+"/x" || p.AdminURL("/y") != "http://"+p.Admin+"/y" {
		t.Fatalf("started: alive %v, http %q, admin %q", p.Alive(), p.HTTP, p.Admin)
	}
	c := &http.Client{Timeout: 30 * time.Second}
	r, err := e2e.Do(c, "POST", p.URL("/v1/events"), []byte(`{"id":"e1","event":"ping"}`), "Content-Type", "application/json")
	if err != nil || r.Code != http.StatusOK {
		t.Fatalf("POST: %d %s %v", r.Code, r.Body, err)
	}
	if m := p.Metrics(t, c); m["sluice_ingest_events_total"] < 1 {
		t.Fatalf("sluice_ingest_events_total = %v", m["sluice_ingest_events_total"])
	}
	recs := e2e.ReadTopics(t, brokers, e2e.ReadOptions{Strict: true}, "events")
	if len(recs) != 1 || !strings.Contains(string(recs[0].Value), `"e1"`) {
		t.Fatalf("events topic: %d records", len(recs))
	}
	if rss, err := p.PeakRSS(); err != nil || rss < 1<<20 {
		t.Fatalf("PeakRSS = %d, %v", rss, err)
	}
	if code := p.Signal(t, syscall.SIGTERM, 60*time.Second); code != 0 {
		t.Fatalf("exit code %d after SIGTERM:\n%s", code, p.Log.String())
	}
	if p.Alive() || p.ExitErr() != nil {
		t.Fatalf("after exit: alive %v, %v", p.Alive(), p.ExitErr())
	}
	if _, err := p.PeakRSS(); err == nil {
		t.Fatal("PeakRSS of an exited process did not fail")
	}
	p.Kill() // a no-op on an exited process
	if p.Signal(t, syscall.SIGTERM, time.Second) != 0 {
		t.Fatal("Signal of an exited process changed its exit code")
	}
}

func TestPromtool(t *testing.T) {
	good := []byte("# HELP x_total Things done.\n# TYPE x_total counter\nx_total 1\n")
	if r := e2e.Promtool(t, good); len(r) != 0 {
		t.Fatalf("remarks on clean metrics: %q", r)
	}
	r := e2e.Promtool(t, []byte("# HELP y_total\n# TYPE y_total counter\ny_total 1\n"))
	if len(r) != 1 || !strings.HasPrefix(r[0], "y_total") || !strings.Contains(r[0], "no help text") {
		t.Fatalf("remarks on a HELP without text: %q", r)
	}
}
