package e2e

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// PromtoolEnv names the promtool binary for Promtool (default "promtool"
// on the PATH: Debian's prometheus package).
const PromtoolEnv = "SLUICE_TEST_PROMTOOL"

// Promtool runs `promtool check metrics` over a Prometheus text exposition
// and returns its remarks, one per line ("name problem"). It fails the
// test when promtool is not installed (it says what to install) or when
// the text does not parse.
func Promtool(tb testing.TB, text []byte) []string {
	tb.Helper()
	bin := firstOf(os.Getenv(PromtoolEnv), "promtool")
	path, err := exec.LookPath(bin)
	if err != nil {
		tb.Fatalf("promtool (%s) is not installed: Debian: apt-get install prometheus (%v)", bin, err)
	}
	cmd := exec.Command(path, "check", "metrics")
	cmd.Stdin = bytes.NewReader(text)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		tb.Fatalf("promtool: %v", err)
	}
	var remarks []string
	for l := range strings.SplitSeq(strings.TrimSpace(out.String()), "\n") {
		if l == "" {
			continue
		}
		if strings.HasPrefix(l, "error while linting") {
			tb.Fatalf("promtool cannot parse the metrics: %s", l)
		}
		remarks = append(remarks, l)
	}
	if err != nil && len(remarks) == 0 {
		tb.Fatalf("promtool failed without a remark: %v", err)
	}
	return remarks
}
