package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sluicehq/sluice/internal/e2e"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat; it
// is 100 on every Linux architecture Go supports.
const clockTicks = 100

// process is a child process under measurement: a gateway (sluice or a
// peer) whose CPU time and peak RSS are read from /proc.
type process struct {
	name    string
	cmd     *exec.Cmd
	log     *e2e.Buffer // stderr (and stdout unless the caller took it)
	exited  chan struct{}
	waitErr error
}

// startProcess starts bin with args. Its stderr goes to the process's log,
// its stdout to stdout, or to the log when stdout is nil.
func startProcess(name, bin string, args []string, env []string, stdout io.Writer) (*process, error) {
	p := &process{name: name, log: &e2e.Buffer{Limit: 1 << 20}, exited: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	if env != nil {
		p.cmd.Env = append(os.Environ(), env...)
	}
	p.cmd.Stdout, p.cmd.Stderr = stdout, p.log
	if stdout == nil {
		p.cmd.Stdout = p.log
	}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() { p.waitErr = p.cmd.Wait(); close(p.exited) }()
	return p, nil
}

// pid is the process id.
func (p *process) pid() int { return p.cmd.Process.Pid }

// logTail is the end of the process's log, for error messages.
func (p *process) logTail() string { return e2e.TailLines(p.log.String(), 40) }

// stop sends SIGTERM and waits up to grace for the exit, then kills. It
// returns an error when the process had to be killed; a non-zero exit after
// SIGTERM is reported on stderr only (the figures are already taken).
func (p *process) stop(grace time.Duration, stderr io.Writer) error {
	select {
	case <-p.exited:
		return nil
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		if p.waitErr != nil {
			fmt.Fprintf(stderr, "benchrun: %s exited with %v after SIGTERM\n", p.name, p.waitErr)
		}
		return nil
	case <-time.After(grace):
		p.kill()
		return fmt.Errorf("%s did not stop within %v of SIGTERM", p.name, grace)
	}
}

// kill kills the process (if it still runs) and waits for it.
func (p *process) kill() {
	select {
	case <-p.exited:
	default:
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// waitReadyFile waits for a sluice --ready-file and returns the ingest
// address it names.
func (p *process) waitReadyFile(path string, d time.Duration) (string, error) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(path); err == nil {
			httpAddr, _, err := e2e.ParseReady(b)
			if err != nil || httpAddr == "" {
				return "", fmt.Errorf("ready file %q has no http address: %q", path, b)
			}
			return httpAddr, nil
		}
		select {
		case <-p.exited:
			return "", fmt.Errorf("%s exited before listening (%v):\n%s", p.name, p.waitErr, p.logTail())
		case <-time.After(20 * time.Millisecond):
		}
	}
	return "", fmt.Errorf("%s did not listen within %v:\n%s", p.name, d, p.logTail())
}

// waitListening waits until addr accepts TCP connections (for a peer that
// has no ready file).
func (p *process) waitListening(addr string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return nil
		}
		select {
		case <-p.exited:
			return fmt.Errorf("%s exited before listening on %s (%v):\n%s", p.name, addr, p.waitErr, p.logTail())
		case <-time.After(20 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s did not listen on %s within %v:\n%s", p.name, addr, d, p.logTail())
}

// freeAddr returns a 127.0.0.1 address that nothing listened on a moment
// ago, for a child that cannot bind port 0 and report the port.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// cpuSeconds returns utime+stime of pid in seconds (/proc/PID/stat fields
// 14 and 15).
func cpuSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStatCPU(string(b))
}

// parseStatCPU returns utime+stime in seconds from the text of a
// /proc/PID/stat file.
func parseStatCPU(s string) (float64, error) {
	// The command name (field 2) may hold spaces; fields resume after ')'.
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("/proc/PID/stat: unexpected format")
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, errors.New("/proc/PID/stat: unexpected format")
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
	n, err := e2e.ProcStatusBytes(pid, "VmHWM:")
	if err != nil {
		return -1
	}
	return n
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

// memTotal returns MemTotal of /proc/meminfo in bytes (-1 if unknown).
func memTotal() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return -1
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return -1
			}
			return kb << 10
		}
	}
	return -1
}

// kernelRelease returns the running kernel's release ("6.18.0").
func kernelRelease() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(b))
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

// run runs a command in dir with extra environment, its output to stderr.
func run(dir string, env []string, stderr io.Writer, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(e2e.GoEnv(), env...)
	cmd.Stdout, cmd.Stderr = stderr, stderr
	return cmd.Run()
}
