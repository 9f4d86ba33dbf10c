package e2e

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Options tune Start. The zero value starts the binary of Sluice, waits
// 60 s for it to listen, keeps its standard error unbounded and stops it
// with SIGTERM at cleanup.
type Options struct {
	// Binary is the sluice binary to run; "": Sluice(tb).
	Binary string
	// StartTimeout bounds the wait for the ready file; 0: 60 s.
	StartTimeout time.Duration
	// KillAtCleanup kills a process still running at cleanup at once;
	// false: SIGTERM, then a kill after CleanupGrace.
	KillAtCleanup bool
	// Stdout keeps the process's standard output in Log as well as its
	// standard error; false: standard output is discarded.
	Stdout bool
	// LogLimit is Log's Limit in bytes; 0: unlimited.
	LogLimit int
	// Env are more "KEY=value" environment variables of the process, on
	// top of the test's environment.
	Env []string
}

// CleanupGrace is how long cleanup waits after SIGTERM before it kills a
// process (unless Options.KillAtCleanup).
const CleanupGrace = 30 * time.Second

// Proc is one running `sluice run`.
type Proc struct {
	// HTTP and Admin are the bound ingest and admin addresses (host:port).
	HTTP, Admin string
	// Args is the full command line after the binary.
	Args []string
	// Cmd is the running command.
	Cmd *exec.Cmd
	// Log holds the process's standard error (and standard output with
	// Options.Stdout).
	Log *Buffer

	done    chan struct{}
	exitErr error
}

// Start runs `sluice run --http 127.0.0.1:0 --admin 127.0.0.1:0
// --ready-file F` followed by args and waits until the process has written
// both bound addresses to F. It fails the test if the process exits first
// or does not listen within the start timeout. At cleanup a process still
// running is stopped (see Options), and when the test failed the tail of
// its log is logged.
func Start(tb testing.TB, o Options, args ...string) *Proc {
	tb.Helper()
	bin := o.Binary
	if bin == "" {
		bin = Sluice(tb)
	}
	if o.StartTimeout == 0 {
		o.StartTimeout = 60 * time.Second
	}
	ready := filepath.Join(tb.TempDir(), "ready")
	p := &Proc{
		Args: append([]string{"run", "--http", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--ready-file", ready}, args...),
		Log:  &Buffer{Limit: o.LogLimit},
		done: make(chan struct{}),
	}
	p.Cmd = exec.Command(bin, p.Args...)
	if len(o.Env) > 0 {
		p.Cmd.Env = append(os.Environ(), o.Env...)
	}
	p.Cmd.Stdout, p.Cmd.Stderr = io.Discard, p.Log
	if o.Stdout {
		p.Cmd.Stdout = p.Log
	}
	if err := p.Cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	shared.mu.Lock()
	shared.procs = append(shared.procs, p)
	shared.mu.Unlock()
	go func() {
		p.exitErr = p.Cmd.Wait()
		close(p.done)
	}()
	tb.Cleanup(func() {
		if p.Alive() {
			if !o.KillAtCleanup {
				_ = p.Cmd.Process.Signal(syscall.SIGTERM)
				select {
				case <-p.done:
				case <-time.After(CleanupGrace):
				}
			}
			p.Kill()
		}
		if tb.Failed() {
			tb.Logf("sluice %s\nlog tail:\n%s", strings.Join(p.Args, " "), tailOf(p.Log.String(), 60, 8000))
		}
	})
	deadline := time.Now().Add(o.StartTimeout)
	for {
		if b, err := os.ReadFile(ready); err == nil {
			if p.HTTP, p.Admin, err = ParseReady(b); err != nil {
				tb.Fatalf("%s: %v", ready, err)
			}
			return p
		}
		select {
		case <-p.done:
			tb.Fatalf("sluice exited at start: %v\n%s", p.exitErr, tailOf(p.Log.String(), 200, 16000))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			tb.Fatalf("sluice did not start within %v:\n%s", o.StartTimeout, tailOf(p.Log.String(), 200, 16000))
		}
	}
}

// tailOf is the last lines of s, at most maxBytes of them.
func tailOf(s string, lines, maxBytes int) string {
	s = TailLines(s, lines)
	if len(s) > maxBytes {
		s = "…" + s[len(s)-maxBytes:]
	}
	return s
}

// ParseReady returns the addresses a --ready-file names ("http=ADDR
// admin=ADDR").
func ParseReady(b []byte) (httpAddr, adminAddr string, err error) {
	for f := range strings.FieldsSeq(string(b)) {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "http":
			httpAddr = v
		case "admin":
			adminAddr = v
		}
	}
	if httpAddr == "" || adminAddr == "" {
		return httpAddr, adminAddr, fmt.Errorf("%w: %q", ErrNotReady, b)
	}
	return httpAddr, adminAddr, nil
}

// URL is the ingest listener's URL of path.
func (p *Proc) URL(path string) string { return "http://" + p.HTTP + path }

// AdminURL is the admin listener's URL of path.
func (p *Proc) AdminURL(path string) string { return "http://" + p.Admin + path }

// Pid is the process id.
func (p *Proc) Pid() int { return p.Cmd.Process.Pid }

// Alive reports whether the process has not exited yet.
func (p *Proc) Alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// ExitErr is what waiting for the process returned; valid once Done is
// closed.
func (p *Proc) ExitErr() error { return p.exitErr }

// Kill kills the process if it runs and waits for it to exit.
func (p *Proc) Kill() {
	if p.Alive() {
		_ = p.Cmd.Process.Kill()
	}
	<-p.done
}

// Signal sends sig, waits up to d for the process to exit and returns its
// exit code (-1 when a signal ended it). It fails the test if the process
// does not exit in time or cannot be waited for.
func (p *Proc) Signal(tb testing.TB, sig os.Signal, d time.Duration) int {
	tb.Helper()
	if err := p.Cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		tb.Fatalf("signal %v: %v", sig, err)
	}
	select {
	case <-p.done:
	case <-time.After(d):
		tb.Fatalf("sluice did not exit within %v of %v:\n%s", d, sig, TailLines(p.Log.String(), 40))
	}
	var ee *exec.ExitError
	if p.exitErr != nil && !errors.As(p.exitErr, &ee) {
		tb.Fatal(p.exitErr)
	}
	return p.Cmd.ProcessState.ExitCode()
}

// PeakRSS returns the process's peak resident set (VmHWM) in bytes.
func (p *Proc) PeakRSS() (int64, error) {
	return ProcStatusBytes(p.Pid(), "VmHWM:")
}

// ProcStatusBytes reads a "kB" field (such as "VmHWM:") of
// /proc/PID/status, in bytes.
func ProcStatusBytes(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for l := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("/proc/%d/status %s: %w", pid, field, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("/proc/%d/status has no %s", pid, field)
}

// Main runs m's tests, then kills every process Start started that is
// still running, closes every browser StartBrowser or NewBrowser started,
// and removes the scratch folder (built binary and guests).
// It returns the exit code: func TestMain(m *testing.M) {
// os.Exit(e2e.Main(m)) }.
func Main(m *testing.M) int {
	code := m.Run()
	shared.mu.Lock()
	procs, browsers, dir := shared.procs, shared.browsers, shared.dir
	shared.procs, shared.browsers, shared.dir = nil, nil, ""
	shared.mu.Unlock()
	for _, p := range procs {
		p.Kill()
	}
	for _, b := range browsers {
		b.Close()
	}
	if dir != "" {
		os.RemoveAll(dir)
	}
	return code
}
