package kafka

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/sluicehq/sluice/engine"
	"github.com/sluicehq/sluice/internal/e2e"
)

// secureBroker starts a kfake broker with the default and DLQ topics and
// opts (TLS, SASL users), closed at cleanup.
func secureBroker(tb testing.TB, opts ...kfake.Opt) []string {
	tb.Helper()
	c := e2e.Kafka(tb, e2e.KafkaConfig{Topics: []string{DefaultTopic, DefaultDLQTopic}, Opts: opts})
	return c.ListenAddrs()
}

// writeAndReadBack writes n records through a sink with sec and reads them
// back with a client of readOpts; it checks every value arrived.
func writeAndReadBack(t *testing.T, brokers []string, sec Security, readOpts []kgo.Opt, n int) {
	t.Helper()
	s := newSink(t, Config{Brokers: brokers, Security: sec, DialTimeout: 3 * time.Second})
	recs := make([]engine.Record, n)
	for i := range recs {
		recs[i] = engine.Record{Value: fmt.Appendf(nil, `{"i":%d}`, i)}
	}
	if err := s.Write(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	got := e2e.ReadTopics(t, brokers, e2e.ReadOptions{Strict: true, Timeout: 20 * time.Second, ClientOpts: readOpts}, DefaultTopic)
	seen := map[string]bool{}
	for _, r := range got {
		seen[string(r.Value)] = true
	}
	for i := range n {
		if !seen[fmt.Sprintf(`{"i":%d}`, i)] {
			t.Fatalf("record %d is not in %s (%d records read)", i, DefaultTopic, len(got))
		}
	}
	if len(got) != n {
		t.Fatalf("read %d records, want %d", len(got), n)
	}
}

// TestSinkTLSAndScramSHA512 connects over TLS (the broker's certificate
// checked against a CA file) and logs in with SCRAM-SHA-512.
func TestSinkTLSAndScramSHA512(t *testing.T) {
	ca := e2e.NewCA(t)
	brokers := secureBroker(t, kfake.TLS(ca.ServerTLS(t, false)), kfake.EnableSASL(),
		kfake.Superuser("SCRAM-SHA-512", "sluice", "s3cret-512"))
	tc, err := NewTLSConfig(TLSFiles{CAFile: ca.CertFile})
	if err != nil {
		t.Fatal(err)
	}
	sec := NewSecurity(tc, SASL{Mechanism: SASLScramSHA512, User: "sluice", Password: "s3cret-512"})
	writeAndReadBack(t, brokers, sec, []kgo.Opt{
		kgo.DialTLSConfig(ca.ClientTLS(nil)),
		kgo.SASL(scram.Auth{User: "sluice", Pass: "s3cret-512"}.AsSha512Mechanism()),
	}, 50)
	if got := sec.String(); got != "tls, SASL SCRAM-SHA-512 as sluice" {
		t.Fatalf("Security.String() = %q", got)
	}
}

// TestSinkMutualTLSAndPlain presents a client certificate the broker
// requires, and logs in with PLAIN; without the certificate the TLS
// handshake fails plainly.
func TestSinkMutualTLSAndPlain(t *testing.T) {
	ca := e2e.NewCA(t)
	client := ca.Issue(t, "sluice-client")
	brokers := secureBroker(t, kfake.TLS(ca.ServerTLS(t, true)), kfake.EnableSASL(),
		kfake.Superuser("PLAIN", "sluice", "plain-pass"))
	tc, err := NewTLSConfig(TLSFiles{CAFile: ca.CertFile, CertFile: client.CertFile, KeyFile: client.KeyFile})
	if err != nil {
		t.Fatal(err)
	}
	sec := NewSecurity(tc, SASL{Mechanism: SASLPlain, User: "sluice", Password: "plain-pass"})
	writeAndReadBack(t, brokers, sec, []kgo.Opt{
		kgo.DialTLSConfig(ca.ClientTLS(&client)),
		kgo.SASL(plain.Auth{User: "sluice", Pass: "plain-pass"}.AsMechanism()),
	}, 20)

	// No client certificate: refused in the handshake.
	noCert, err := NewTLSConfig(TLSFiles{CAFile: ca.CertFile})
	if err != nil {
		t.Fatal(err)
	}
	_, err = NewSink(context.Background(), Config{Brokers: brokers, DialTimeout: 2 * time.Second,
		Security: NewSecurity(noCert, sec.SASL)}, nil)
	var ae *AuthError
	if err = AuthFailure(err, sec); !errors.As(err, &ae) || !ae.TLS {
		t.Fatalf("without a client certificate: %v; want a TLS *AuthError", err)
	}
}

// TestSinkWrongPassword fails at once with an error that names SASL
// authentication and the mechanism, and not the password.
func TestSinkWrongPassword(t *testing.T) {
	ca := e2e.NewCA(t)
	brokers := secureBroker(t, kfake.TLS(ca.ServerTLS(t, false)), kfake.EnableSASL(),
		kfake.Superuser("SCRAM-SHA-512", "sluice", "right-password"))
	tc, err := NewTLSConfig(TLSFiles{CAFile: ca.CertFile})
	if err != nil {
		t.Fatal(err)
	}
	sec := NewSecurity(tc, SASL{Mechanism: SASLScramSHA512, User: "sluice", Password: "wrong-password"})
	start := time.Now()
	_, err = NewSink(context.Background(), Config{Brokers: brokers, Security: sec, DialTimeout: 5 * time.Second}, nil)
	err = AuthFailure(err, sec)
	var ae *AuthError
	if !errors.As(err, &ae) || ae.TLS || ae.Mechanism != "SCRAM-SHA-512" || !errors.Is(err, ErrAuth) {
		t.Fatalf("wrong password: %v; want a SASL *AuthError", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, "SASL authentication failed") || !strings.Contains(msg, "SCRAM-SHA-512") || strings.Contains(msg, "wrong-password") {
		t.Fatalf("wrong password message: %q", msg)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("the failure took %v", d)
	}
}

// TestSinkUntrustedBroker refuses a broker whose certificate no trusted CA
// signed (the system roots here).
func TestSinkUntrustedBroker(t *testing.T) {
	ca := e2e.NewCA(t)
	brokers := secureBroker(t, kfake.TLS(ca.ServerTLS(t, false)))
	tc, err := NewTLSConfig(TLSFiles{})
	if err != nil {
		t.Fatal(err)
	}
	sec := Security{TLS: tc}
	_, err = NewSink(context.Background(), Config{Brokers: brokers, Security: sec, DialTimeout: 2 * time.Second}, nil)
	var ae *AuthError
	if err = AuthFailure(err, sec); !errors.As(err, &ae) || !ae.TLS || !strings.Contains(err.Error(), "TLS handshake") {
		t.Fatalf("untrusted broker: %v; want a TLS *AuthError", err)
	}
	// InsecureSkipVerify accepts it.
	insecure, err := NewTLSConfig(TLSFiles{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	newSink(t, Config{Brokers: brokers, Security: Security{TLS: insecure}, DialTimeout: 2 * time.Second})
}

// TestOAuthBearerTokenFileReadPerSession reads the token file again for
// every new connection.
func TestOAuthBearerTokenFileReadPerSession(t *testing.T) {
	file := filepath.Join(t.TempDir(), "token")
	m := SASL{Mechanism: SASLOAuthBearer, TokenFile: file}.mechanism()
	for _, tok := range []string{"first-token", "second-token"} {
		if err := os.WriteFile(file, []byte(tok+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, msg, err := m.Authenticate(context.Background(), "127.0.0.1:9092")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(msg, []byte("auth=Bearer "+tok+"\x01")) {
			t.Fatalf("session message %q does not carry %q", msg, tok)
		}
	}
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	if _, _, err := m.Authenticate(context.Background(), "127.0.0.1:9092"); err == nil || !strings.Contains(err.Error(), "token file") {
		t.Fatalf("a missing token file: %v", err)
	}
}

func TestSecretIsRedacted(t *testing.T) {
	s := SASL{Mechanism: SASLPlain, User: "u", Password: "hunter2"}
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("x", "sasl", s, "password", s.Password)
	j, _ := json.Marshal(s)
	for _, out := range []string{fmt.Sprint(s), fmt.Sprintf("%+v %#v %s %q", s, s, s.Password, s.Password), logs.String(), string(j),
		Security{SASL: s}.String()} {
		if strings.Contains(out, "hunter2") {
			t.Fatalf("the password leaked: %s", out)
		}
	}
	if string(s.Password) != "hunter2" {
		t.Fatal("the value itself is lost")
	}
}

func TestSASLValidate(t *testing.T) {
	for _, c := range []struct {
		s  SASL
		ok bool
	}{
		{SASL{}, true},
		{SASL{Mechanism: SASLNone}, true},
		{SASL{Mechanism: SASLPlain, User: "u", Password: "p"}, true},
		{SASL{Mechanism: SASLPlain, User: "u"}, false},
		{SASL{Mechanism: SASLScramSHA256, Password: "p"}, false},
		{SASL{Mechanism: SASLOAuthBearer}, false},
		{SASL{Mechanism: SASLOAuthBearer, TokenFile: "/x"}, true},
		{SASL{Mechanism: SASLAWSMSKIAM}, true},
		{SASL{Mechanism: "gssapi"}, false},
	} {
		if err := c.s.validate(); (err == nil) != c.ok {
			t.Errorf("%+v: validate() = %v", c.s, err)
		}
	}
}

// TestAWSMSKIAMReadsTheStandardEnvironment: the mechanism takes its
// credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /
// AWS_SESSION_TOKEN at each session, and says which are missing.
func TestAWSMSKIAMReadsTheStandardEnvironment(t *testing.T) {
	m := SASL{Mechanism: SASLAWSMSKIAM}.mechanism()
	if m.Name() != "AWS_MSK_IAM" {
		t.Fatalf("mechanism %q", m.Name())
	}
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	if _, _, err := m.Authenticate(context.Background(), "b-1.kafka.eu-west-1.amazonaws.com:9098"); err == nil || !strings.Contains(err.Error(), "AWS_ACCESS_KEY_ID") {
		t.Fatalf("without credentials: %v", err)
	}
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
	t.Setenv("AWS_SESSION_TOKEN", "session-token")
	_, msg, err := m.Authenticate(context.Background(), "b-1.kafka.eu-west-1.amazonaws.com:9098")
	if err != nil {
		t.Fatal(err)
	}
	var payload map[string]string
	if err := json.Unmarshal(msg, &payload); err != nil {
		t.Fatalf("the first message is not the signed JSON payload: %v (%s)", err, msg)
	}
	if payload["x-amz-security-token"] != "session-token" || !strings.Contains(payload["x-amz-credential"], "AKIDEXAMPLE/") ||
		!strings.Contains(payload["x-amz-credential"], "/eu-west-1/kafka-cluster/") || payload["x-amz-signature"] == "" {
		t.Fatalf("signed payload %v", payload)
	}
	if strings.Contains(string(msg), "wJalrXUtnFEMI") {
		t.Fatal("the secret key is sent")
	}
}
