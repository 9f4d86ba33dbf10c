//go:build faults

package faults

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// brokerEnv, set in the environment of the test binary, makes it a Kafka
// broker instead of a test run (see runBrokerProcess): "PORT DIR TOPIC...".
// A broker in a process of its own can be SIGKILLed, as a crashed broker
// would be, and restarted from its data folder.
const brokerEnv = "SLUICE_FAULTS_BROKER"

// brokerReady is the line the broker process prints once it listens.
const brokerReady = "broker listening on "

// runBrokerProcess serves a kfake broker on the port and data folder spec
// names, seeding its topics (kfake re-creates seeded topics at start and
// finds their data again after a crash; topics created later would be
// lost), until the process is killed (or, closing the broker cleanly,
// interrupted). It never returns.
func runBrokerProcess(spec string) {
	f := strings.Fields(spec)
	if len(f) < 2 {
		fmt.Fprintf(os.Stderr, "%s=%q: want PORT DIR TOPIC...\n", brokerEnv, spec)
		os.Exit(2)
	}
	port, err := strconv.Atoi(f[0])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var c *kfake.Cluster
	for range 100 { // the port may linger for a moment after a kill
		c, err = kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(port), kfake.DataDir(f[1]), kfake.SeedTopics(3, f[2:]...))
		if err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(brokerReady + c.ListenAddrs()[0])
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	c.Close()
	os.Exit(0)
}

// brokerProcess is a kfake broker in a child process on a fixed port with
// a data folder: it can be killed and started again with its data.
type brokerProcess struct {
	t      testing.TB
	port   int
	dir    string
	topics []string
	addr   string
	cmd    *exec.Cmd
}

// newBrokerProcess starts a broker process seeding topics and kills it at
// cleanup.
func newBrokerProcess(t testing.TB, topics ...string) *brokerProcess {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	b := &brokerProcess{t: t, port: port, dir: t.TempDir(), topics: topics}
	b.start()
	t.Cleanup(b.kill)
	return b
}

// start runs the broker and returns once it listens.
func (b *brokerProcess) start() {
	b.t.Helper()
	exe, err := os.Executable()
	if err != nil {
		b.t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), brokerEnv+"="+strings.Join(append([]string{strconv.Itoa(b.port), b.dir}, b.topics...), " "))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.t.Fatal(err)
	}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if addr, ok := strings.CutPrefix(sc.Text(), brokerReady); ok {
				ready <- addr
			}
		}
		close(ready)
	}()
	select {
	case addr, ok := <-ready:
		if !ok {
			_ = cmd.Wait()
			b.t.Fatalf("broker process exited before listening: %v", cmd.ProcessState)
		}
		b.addr, b.cmd = addr, cmd
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		b.t.Fatal("broker process did not listen within 30 s")
	}
}

// kill SIGKILLs the broker process (no clean shutdown: what a crash
// leaves) and waits for it to be gone.
func (b *brokerProcess) kill() {
	if b.cmd == nil {
		return
	}
	_ = b.cmd.Process.Kill()
	_ = b.cmd.Wait()
	b.cmd = nil
}
