package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/sluicehq/sluice/internal/e2e"
)

// secureKafka starts a kfake broker with the events and DLQ topics (no
// auto-create) and opts (TLS, SASL users).
func secureKafka(t *testing.T, opts ...kfake.Opt) string {
	t.Helper()
	return e2e.Kafka(t, e2e.KafkaConfig{Topics: []string{"events", "sluice.dlq"}, Opts: opts}).ListenAddrs()[0]
}

// postEvents posts n events and expects 200.
func postEvents(t *testing.T, p *e2e.Proc, n int) {
	t.Helper()
	var body strings.Builder
	for i := range n {
		fmt.Fprintf(&body, "{\"id\":\"e%d\"}\n", i)
	}
	r := do(t, "POST", p.URL("/v1/events"), []byte(body.String()), "Content-Type", "application/x-ndjson")
	if r.code != 200 || !strings.Contains(r.body, fmt.Sprintf(`"accepted":%d`, n)) {
		t.Fatalf("POST: %d %s", r.code, r.body)
	}
}

// noSecret fails the test when secret shows up in the process's log, its
// /metrics or the admin API's budget.
func noSecret(t *testing.T, p *e2e.Proc, secret string) {
	t.Helper()
	if strings.Contains(p.Log.String(), secret) {
		t.Fatalf("the password is in the log")
	}
	for _, u := range []string{p.AdminURL("/metrics"), p.AdminURL("/readyz"), p.AdminURL("/admin/budget")} {
		if r := do(t, "GET", u, nil); strings.Contains(r.body, secret) {
			t.Fatalf("the password is served at %s", u)
		}
	}
}

// TestKafkaTLSScramSHA512 runs the binary against a broker that requires
// TLS and SCRAM-SHA-512; the password comes from the environment.
func TestKafkaTLSScramSHA512(t *testing.T) {
	ca := e2e.NewCA(t)
	const user, pass = "sluice", "e2e-scram-512-secret"
	broker := secureKafka(t, kfake.TLS(ca.ServerTLS(t, false)), kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-512", user, pass))
	p := e2e.Start(t, e2e.Options{Env: []string{"SLUICE_KAFKA_SASL_PASSWORD=" + pass}},
		"--brokers", broker, "--kafka-tls-ca", ca.CertFile, "--kafka-sasl", "scram-sha-512", "--kafka-sasl-user", user,
		"--kafka-compression", "zstd", "--kafka-linger", "1ms", "--admin-token", "tok")
	postEvents(t, p, 25)
	recs := e2e.ReadTopics(t, []string{broker}, e2e.ReadOptions{Strict: true, Timeout: 20 * time.Second, ClientOpts: []kgo.Opt{
		kgo.DialTLSConfig(ca.ClientTLS(nil)), kgo.SASL(scram.Auth{User: user, Pass: pass}.AsSha512Mechanism()),
	}}, "events")
	if len(recs) != 25 {
		t.Fatalf("read %d records over TLS+SCRAM, want 25", len(recs))
	}
	if !strings.Contains(p.Log.String(), "SASL SCRAM-SHA-512 as sluice") {
		t.Fatalf("the start log does not say how it connects")
	}
	noSecret(t, p, pass)
}

// TestKafkaMutualTLSPlainFromYAML configures mutual TLS and PLAIN in the
// YAML file's kafka: section, the password in a file.
func TestKafkaMutualTLSPlainFromYAML(t *testing.T) {
	ca := e2e.NewCA(t)
	client := ca.Issue(t, "sluice-client")
	const user, pass = "sluice", "e2e-plain-secret"
	broker := secureKafka(t, kfake.TLS(ca.ServerTLS(t, true)), kfake.EnableSASL(), kfake.Superuser("PLAIN", user, pass))
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "password")
	if err := os.WriteFile(pwFile, []byte(pass+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "sluice.yaml")
	yml := fmt.Sprintf("brokers: [%q]\nkafka:\n  tls_ca: %q\n  tls_cert: %q\n  tls_key: %q\n  sasl: plain\n  sasl_user: %s\n  sasl_password_file: %q\n  acks: leader\n",
		broker, ca.CertFile, client.CertFile, client.KeyFile, user, pwFile)
	if err := os.WriteFile(cfg, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	p := e2e.Start(t, e2e.Options{}, "--config", cfg)
	postEvents(t, p, 10)
	recs := e2e.ReadTopics(t, []string{broker}, e2e.ReadOptions{Strict: true, Timeout: 20 * time.Second, ClientOpts: []kgo.Opt{
		kgo.DialTLSConfig(ca.ClientTLS(&client)), kgo.SASL(plain.Auth{User: user, Pass: pass}.AsMechanism()),
	}}, "events")
	if len(recs) != 10 {
		t.Fatalf("read %d records over mTLS+PLAIN, want 10", len(recs))
	}
	if !strings.Contains(p.Log.String(), "a 200 no longer means the events are replicated") {
		t.Fatalf("--kafka-acks leader did not warn")
	}
	noSecret(t, p, pass)
}

// TestKafkaWrongPassword: the real binary exits non-zero at once, naming
// SASL authentication and the mechanism, never the password.
func TestKafkaWrongPassword(t *testing.T) {
	ca := e2e.NewCA(t)
	broker := secureKafka(t, kfake.TLS(ca.ServerTLS(t, false)), kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-512", "sluice", "the-right-one"))
	const wrong = "not-the-password"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, e2e.Sluice(t), "run", "--http", "127.0.0.1:0", "--admin", "127.0.0.1:0",
		"--brokers", broker, "--kafka-tls-ca", ca.CertFile, "--kafka-sasl", "scram-sha-512", "--kafka-sasl-user", "sluice")
	cmd.Env = append(os.Environ(), "SLUICE_KAFKA_SASL_PASSWORD="+wrong)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() == 0 {
		t.Fatalf("sluice with a wrong password: %v\n%s", err, out)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Fatalf("the failure took %v", d)
	}
	s := string(out)
	if !strings.Contains(s, "SASL authentication failed") || !strings.Contains(s, "SCRAM-SHA-512") {
		t.Fatalf("the message does not name SASL authentication and the mechanism:\n%s", s)
	}
	if strings.Contains(s, wrong) {
		t.Fatalf("the password is in the output:\n%s", s)
	}
	for l := range strings.SplitSeq(s, "\n") {
		if strings.Contains(l, "sluice failed to start") {
			t.Logf("exit %d after %v: %s", ee.ExitCode(), time.Since(start).Round(time.Millisecond), l)
		}
	}
}

// TestKafkaWaitReportsWhyOnReadyz: told to wait, sluice keeps retrying the
// login, /readyz says why, and it exits non-zero once the wait is over.
func TestKafkaWaitReportsWhyOnReadyz(t *testing.T) {
	broker := secureKafka(t, kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-256", "sluice", "right"))
	admin := "127.0.0.1:" + strconv.Itoa(e2e.FreePort(t))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, e2e.Sluice(t), "run", "--http", "127.0.0.1:0", "--admin", admin,
		"--brokers", broker, "--kafka-sasl", "scram-sha-256", "--kafka-sasl-user", "sluice", "--kafka-wait", "4s")
	cmd.Env = append(os.Environ(), "SLUICE_KAFKA_SASL_PASSWORD=wrong")
	log := &e2e.Buffer{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var readyz string
	for readyz == "" {
		select {
		case err := <-done:
			t.Fatalf("sluice exited before /readyz said why: %v\n%s", err, log.String())
		case <-time.After(100 * time.Millisecond):
		}
		r, err := e2e.Do(&http.Client{Timeout: time.Second}, "GET", "http://"+admin+"/readyz", nil)
		if err == nil && strings.Contains(string(r.Body), "SASL authentication failed") {
			if r.Code != 503 {
				t.Fatalf("/readyz while waiting: %d %s", r.Code, r.Body)
			}
			readyz = string(r.Body)
		}
	}
	if !strings.Contains(readyz, "SCRAM-SHA-256") {
		t.Fatalf("/readyz does not name the mechanism: %s", readyz)
	}
	select {
	case err := <-done:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() == 0 {
			t.Fatalf("after the wait: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("sluice did not give up after --kafka-wait")
	}
}

// TestKafkaMaxRecordBytes: a record over --kafka-max-record-bytes is
// dead-lettered "too large for Kafka" before the produce; the rest of its
// request is written.
func TestKafkaMaxRecordBytes(t *testing.T) {
	broker := newKafka(t).ListenAddrs()[0]
	p := startSluice(t, "--brokers", broker, "--kafka-max-record-bytes", "2KiB")
	big := `{"id":"big","pad":"` + strings.Repeat("x", 3000) + `"}`
	body := "{\"id\":\"small-1\"}\n" + big + "\n{\"id\":\"small-2\"}\n"
	r := do(t, "POST", p.URL("/v1/events"), []byte(body), "Content-Type", "application/x-ndjson")
	if r.code != 200 || r.body != "{\"accepted\":2,\"dropped\":0,\"dead_lettered\":1}\n" {
		t.Fatalf("POST: %d %s", r.code, r.body)
	}
	if got := consume(t, []string{broker}, "events"); len(got) != 2 {
		t.Fatalf("events holds %d records, want 2", len(got))
	}
	dlq := consume(t, []string{broker}, "sluice.dlq")
	if len(dlq) != 1 || !strings.Contains(e2e.Header(dlq[0], "sluice-reason"), "too large for Kafka") || e2e.Header(dlq[0], "sluice-stage") != "sink" ||
		string(dlq[0].Value) != big {
		t.Fatalf("dead letters: %d, first %q %q", len(dlq), e2e.Header(dlq[0], "sluice-reason"), dlq[0].Value)
	}
}
