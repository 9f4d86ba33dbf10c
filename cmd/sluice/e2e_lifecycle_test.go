package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/e2e"
	"github.com/twmb/franz-go/pkg/kmsg"
	"golang.org/x/sys/unix"
)

// starveListener makes pid's listener on addr fail for good: it lowers
// pid's soft limit of open files to the number it has open (prlimit(2) on
// a process of the same user needs no privilege) and connects to addr, so
// the listener's next accept fails with EMFILE, which fasthttp's Serve
// takes as permanent and returns with.
func starveListener(t *testing.T, pid int, addr string) {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	var old unix.Rlimit
	if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, nil, &old); err != nil {
		t.Fatalf("prlimit(%d): %v", pid, err)
	}
	lim := unix.Rlimit{Cur: uint64(len(ents)), Max: old.Max}
	if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, &lim, nil); err != nil {
		t.Fatalf("prlimit(%d, RLIMIT_NOFILE %d): %v", pid, lim.Cur, err)
	}
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if errors.Is(err, syscall.ECONNRESET) {
		// The kernel completed the handshake, the process's accept failed
		// and it closed the listener before this side read the connection's
		// state: the reset is the outcome the caller waits for.
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
}

// TestDeadListenerEndsProcess makes the ingest listener, then (in another
// process) the admin listener of a running sluice fail for good: it logs
// why and exits 1 instead of living on half-dead.
func TestDeadListenerEndsProcess(t *testing.T) {
	for _, which := range []string{"ingest", "admin"} {
		t.Run(which, func(t *testing.T) {
			p := startSluice(t, "--sink", "discard")
			if r := do(t, "POST", p.URL("/v1/events"), []byte(`{"a":1}`)); r.code != 200 {
				t.Fatalf("before: %d %s", r.code, r.body)
			}
			addr := p.HTTP
			if which == "admin" {
				addr = p.Admin
			}
			starveListener(t, p.Pid(), addr)
			select {
			case <-p.Done():
			case <-time.After(30 * time.Second):
				t.Fatalf("sluice still running 30 s after its %s listener died:\n%s", which, e2e.TailLines(p.Log.String(), 20))
			}
			if code := p.Cmd.ProcessState.ExitCode(); code != 1 {
				t.Fatalf("exit code %d, want 1", code)
			}
			log := p.Log.String()
			if !strings.Contains(log, which+" listener "+addr+" stopped accepting connections") || !strings.Contains(log, "too many open files") ||
				!strings.Contains(log, "shutting down after a failure") {
				t.Fatalf("the log does not say the %s listener died:\n%s", which, e2e.TailLines(log, 20))
			}
		})
	}
}

// TestSecondSignalExitsAtOnce: while the drain after SIGTERM waits for a
// request whose produce the broker holds back, a second SIGTERM ends the
// process at once, exit code 143, saying so.
func TestSecondSignalExitsAtOnce(t *testing.T) {
	k := newKafka(t)
	release, hit := make(chan struct{}), make(chan struct{})
	var once sync.Once
	k.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		k.KeepControl()
		once.Do(func() { close(hit) })
		k.SleepControl(func() { <-release })
		return nil, nil, false
	})
	t.Cleanup(func() { close(release) }) // before the cluster closes
	p := startSluice(t, "--brokers", k.ListenAddrs()[0], "--ack-timeout", "60s", "--shutdown-timeout", "60s")
	go func() { _, _ = doErr("POST", p.URL("/v1/events"), []byte(`{"a":1}`)) }()
	select {
	case <-hit:
	case <-time.After(30 * time.Second):
		t.Fatal("the request's produce never reached the broker")
	}
	if err := p.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(p.Log.String(), "signal received; shutting down") {
		if time.Now().After(deadline) {
			t.Fatalf("no shutdown after SIGTERM:\n%s", p.Log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	if !p.Alive() {
		t.Fatalf("sluice did not wait for the waiting request to drain:\n%s", e2e.TailLines(p.Log.String(), 20))
	}
	start := time.Now()
	code := p.Signal(t, syscall.SIGTERM, 5*time.Second)
	if code != 128+int(syscall.SIGTERM) {
		t.Fatalf("exit code %d after a second SIGTERM, want %d", code, 128+int(syscall.SIGTERM))
	}
	if !strings.Contains(p.Log.String(), "second signal: exiting at once") {
		t.Fatalf("no log line says why:\n%s", e2e.TailLines(p.Log.String(), 20))
	}
	t.Logf("exited %v after the second SIGTERM", time.Since(start).Round(time.Millisecond))
}

// TestDevBannerHidesSuppliedToken: the dev banner prints a token it
// generated, never one the user supplied (flag, environment or file); it
// names where that one came from instead, and the process prints it
// nowhere else either.
func TestDevBannerHidesSuppliedToken(t *testing.T) {
	const secret = "s3cret-token-of-the-user"
	cfg := t.TempDir() + "/sluice.yaml"
	if err := os.WriteFile(cfg, []byte("admin_token: "+secret+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		env  []string
		args []string
		from string
	}{
		{"flag", nil, []string{"--admin-token", secret}, "(--admin-token)"},
		{"env", []string{"SLUICE_ADMIN_TOKEN=" + secret}, nil, "(SLUICE_ADMIN_TOKEN)"},
		{"file", nil, []string{"--config", cfg}, "(admin_token in " + cfg + ")"},
		{"generated", nil, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := e2e.Start(t, e2e.Options{Stdout: true, Env: tc.env}, append([]string{"--dev", "--sink", "discard"}, tc.args...)...)
			deadline := time.Now().Add(10 * time.Second)
			for !strings.Contains(p.Log.String(), "kafka:") && !strings.Contains(p.Log.String(), "admin token:") {
				if time.Now().After(deadline) {
					t.Fatalf("no banner:\n%s", p.Log.String())
				}
				time.Sleep(20 * time.Millisecond)
			}
			time.Sleep(100 * time.Millisecond)
			out := p.Log.String()
			if tc.from == "" {
				i := strings.Index(out, "admin token: ")
				tok := strings.Fields(out[i+len("admin token: "):])[0]
				if len(tok) != 32 || !strings.Contains(out, "#token="+tok) {
					t.Fatalf("generated token not printed:\n%s", out)
				}
				if r := do(t, "GET", p.AdminURL("/admin/budget"), nil, "Authorization", "Bearer "+tok); r.code != 200 {
					t.Fatalf("the printed token: %d", r.code)
				}
				return
			}
			if strings.Contains(out, secret) {
				t.Fatalf("the supplied token is printed:\n%s", out)
			}
			if !strings.Contains(out, "admin token: the one you supplied "+tc.from) {
				t.Fatalf("the banner does not say where the token came from:\n%s", out)
			}
			if r := do(t, "GET", p.AdminURL("/admin/budget"), nil, "Authorization", "Bearer "+secret); r.code != 200 {
				t.Fatalf("the supplied token: %d", r.code)
			}
		})
	}
}

// TestMemoryLimitFromYAML: memory_limit in the file sets GOMEMLIMIT as the
// flag does (go_memlimit_bytes, which the Go runtime reports, on
// /metrics), and without either GOMEMLIMIT stays unset.
func TestMemoryLimitFromYAML(t *testing.T) {
	cfg := t.TempDir() + "/sluice.yaml"
	if err := os.WriteFile(cfg, []byte("memory_limit: 256MiB\nsink: discard\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	memlimit := func(args ...string) float64 {
		p := startSluice(t, args...)
		v, ok := p.Metrics(t, client)["go_memlimit_bytes"]
		if !ok {
			t.Fatal("no go_memlimit_bytes on /metrics")
		}
		return v
	}
	fromFile, fromFlag := memlimit("--config", cfg), memlimit("--sink", "discard", "--memory-limit", "256MiB")
	unset := memlimit("--sink", "discard")
	// The limit may be lowered by memory the Go runtime does not manage, but
	// never raised, and the file and the flag give the same.
	for what, v := range map[string]float64{"memory_limit in the file": fromFile, "--memory-limit": fromFlag} {
		if v > 256<<20 || v < 128<<20 {
			t.Errorf("%s 256MiB: GOMEMLIMIT %.0f", what, v)
		}
	}
	if unset < 1<<62 {
		t.Errorf("no memory limit given: GOMEMLIMIT %.0f, want unset", unset)
	}
}
