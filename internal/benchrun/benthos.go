package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sluicehq/sluice/internal/e2e"
)

// benthosDir is the Benthos module, relative to the module root: its own
// go.mod, so that Benthos and its dependencies stay out of sluice's.
const benthosDir = "bench/benthos"

// benthosModule is the module path of the Benthos core.
const benthosModule = "github.com/redpanda-data/benthos/v4"

// benthosAddrEnv names the environment variable that config.yaml reads
// the http_server address from.
const benthosAddrEnv = "BENCH_HTTP_ADDRESS"

// benthosCheckOutput replaces the drop output in the check run: one JSON
// line per message with its topic and key metadata and its value.
var benthosCheckOutput = map[string]any{
	"stdout": map[string]any{"codec": "lines"},
	"processors": []any{
		map[string]any{"mapping": `root = {"topic": @topic, "key": @key, "value": this}`},
	},
}

// benthosBuild builds bench/benthos (which requires Benthos version) into
// dir and returns the binary.
func benthosBuild(root, dir, version string, stderr io.Writer) (string, error) {
	bin := filepath.Join(dir, "benthos")
	t := time.Now()
	fmt.Fprintf(stderr, "benchrun: building Benthos %s (%s) …\n", version, benthosDir)
	if err := run(filepath.Join(root, benthosDir), []string{"GOWORK=off"}, stderr, "go", "build", "-trimpath", "-o", bin, "."); err != nil {
		return "", fmt.Errorf("build Benthos: %w", err)
	}
	fmt.Fprintf(stderr, "benchrun: built Benthos in %v\n", time.Since(t).Round(time.Millisecond))
	return bin, nil
}

// benthosVersion is the version of the Benthos core that the module in
// dir requires.
func benthosVersion(dir string) (string, error) {
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Version}}", benthosModule)
	cmd.Dir = dir
	cmd.Env = append(e2e.GoEnv(), "GOWORK=off")
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err = fmt.Errorf("%w: %s", err, ee.Stderr)
		}
		return "", fmt.Errorf("go list -m %s in %s: %w", benthosModule, dir, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// benthosConfigs reads the benchmark configuration and writes it, and the
// check run's variant (the same document with the output replaced), into
// dir; it returns their paths.
func benthosConfigs(root, dir string) (bench, check string, err error) {
	src := filepath.Join(root, benthosDir, "config.yaml")
	b, err := os.ReadFile(src)
	if err != nil {
		return "", "", err
	}
	checkDoc, err := checkConfig(b)
	if err != nil {
		return "", "", fmt.Errorf("%s: %w", src, err)
	}
	bench, check = filepath.Join(dir, "benthos.yaml"), filepath.Join(dir, "benthos-check.yaml")
	if err := os.WriteFile(bench, b, 0o644); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(check, checkDoc, 0o644); err != nil {
		return "", "", err
	}
	return bench, check, nil
}

// checkConfig returns the benchmark configuration with its output replaced
// by benthosCheckOutput; input and pipeline stay as they are.
func checkConfig(bench []byte) ([]byte, error) {
	var doc map[string]any
	if err := yaml.Unmarshal(bench, &doc); err != nil {
		return nil, err
	}
	for _, k := range []string{"input", "pipeline", "output"} {
		if _, ok := doc[k]; !ok {
			return nil, fmt.Errorf("no %s section", k)
		}
	}
	doc["output"] = benthosCheckOutput
	return yaml.Marshal(doc)
}

// benthosLint runs `benthos lint` on each config.
func benthosLint(bin string, configs ...string) error {
	cmd := exec.Command(bin, append([]string{"lint"}, configs...)...)
	cmd.Env = append(os.Environ(), benthosAddrEnv+"=127.0.0.1:1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("benthos lint %s: %w\n%s", strings.Join(configs, " "), err, out)
	}
	return nil
}

// startBenthos starts Benthos with config on a free loopback port and
// waits until it accepts connections; it returns the process and the
// ingest URL. stdout receives Benthos' stdout (nil: its log).
func startBenthos(bin, config, name string, stdout io.Writer) (*process, string, error) {
	var last error
	for range 3 { // the free port may be taken before Benthos binds it
		addr, err := freeAddr()
		if err != nil {
			return nil, "", err
		}
		p, err := startProcess(name, bin, []string{"-c", config}, []string{benthosAddrEnv + "=" + addr}, stdout)
		if err != nil {
			return nil, "", err
		}
		if last = p.waitListening(addr, time.Minute); last == nil {
			return p, "http://" + addr + "/v1/events", nil
		}
		p.kill()
	}
	return nil, "", last
}

// checkBenthos runs the check configuration, posts the bodies and compares
// what Benthos printed with the expectation.
func checkBenthos(bin, config string, bodies [][]byte, e *expectation, outDir string, stderr io.Writer) error {
	var stdout e2e.Buffer
	p, url, err := startBenthos(bin, config, "benthos check", &stdout)
	if err != nil {
		return err
	}
	defer p.kill()
	if _, err := postAll(url, bodies); err != nil {
		return fmt.Errorf("%w\n%s", err, p.logTail())
	}
	// Every response came after the output acknowledged its messages, so
	// every line is written; stopping flushes nothing more but makes sure.
	if err := p.stop(30*time.Second, stderr); err != nil {
		return err
	}
	got, err := parseBenthosCheck([]byte(stdout.String()))
	if err != nil {
		return err
	}
	if err := saveCheck(outDir, "benthos", got); err != nil {
		return err
	}
	return e.compare(got)
}

// parseBenthosCheck reads the lines benthosCheckOutput prints.
func parseBenthosCheck(out []byte) ([]written, error) {
	var got []written
	for line := range bytes.SplitSeq(out, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var m struct {
			Topic *string         `json:"topic"`
			Key   *string         `json:"key"`
			Value json.RawMessage `json:"value"`
		}
		if err := json.Unmarshal(line, &m); err != nil || len(m.Value) == 0 {
			return nil, fmt.Errorf("benthos check output line %q is not {topic, key, value}", line)
		}
		w := written{value: m.Value}
		if m.Topic != nil {
			w.topic = *m.Topic
		}
		if m.Key != nil {
			w.key, w.hasKey = *m.Key, true
		}
		got = append(got, w)
	}
	return got, nil
}
