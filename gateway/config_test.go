package gateway

import (
	"errors"
	"flag"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/gateway/kafka"
)

func TestParseSize(t *testing.T) {
	f := func(in string, want int64) {
		t.Helper()
		got, err := ParseSize(in)
		if err != nil || got != want {
			t.Fatalf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	f("1024", 1024)
	f("256MiB", 256<<20)
	f("4 MiB", 4<<20)
	f("1GiB", 1<<30)
	f("64k", 64<<10)
	f("2MB", 2_000_000)
	f("1.5KiB", 1536)
	for _, bad := range []string{"", "MiB", "12XB", "-1", "1..2"} {
		if _, err := ParseSize(bad); err == nil {
			t.Fatalf("ParseSize(%q) succeeded", bad)
		}
	}
	if s := ByteSize(128 << 20).String(); s != "128MiB" {
		t.Fatalf("String() = %q", s)
	}
}

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	yml := filepath.Join(dir, "sluice.yaml")
	err := os.WriteFile(yml, []byte(`
http: 127.0.0.1:8181
brokers: [k1:9092, k2:9092]
topic: in
memory_limit: 256MiB
max_body: 2MiB
ack_timeout: 3s
api_keys: [k-default]
tenants:
  - name: acme
    keys: [k-acme]
    key_env: ACME_KEY
    topic: acme.events
    pipeline: [filter]
pipeline: [filter, route]
`), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"SLUICE_ADMIN_TOKEN": "tok", "ACME_KEY": "k-acme-2", "SLUICE_API_KEYS": "k-env"}
	cfg, err := LoadConfig([]string{"--config", yml, "--topic", "flagged", "--api-key", "k-flag", "--max-event", "4KiB"},
		func(k string) string { return env[k] }, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTPAddr != "127.0.0.1:8181" || cfg.Topic != "flagged" || cfg.AdminAddr != DefaultAdminAddr {
		t.Fatalf("addresses/topic: %+v", cfg)
	}
	if strings.Join(cfg.Brokers, ",") != "k1:9092,k2:9092" || strings.Join(cfg.Pipeline, ",") != "filter,route" {
		t.Fatalf("lists: %v %v", cfg.Brokers, cfg.Pipeline)
	}
	if cfg.MemoryLimit != 256<<20 || !cfg.MemoryLimitSet() || cfg.MaxBody != 2<<20 || cfg.MaxEvent != 4<<10 || cfg.AckTimeout != 3*time.Second {
		t.Fatalf("sizes: %+v", cfg)
	}
	if cfg.AdminToken != "tok" || strings.Join(cfg.APIKeys, ",") != "k-default,k-env,k-flag" {
		t.Fatalf("secrets: %q %v", cfg.AdminToken, cfg.APIKeys)
	}
	if len(cfg.Tenants) != 1 || strings.Join(cfg.Tenants[0].Keys, ",") != "k-acme,k-acme-2" || cfg.Tenants[0].Topic != "acme.events" {
		t.Fatalf("tenants: %+v", cfg.Tenants)
	}
	if cfg.queueBytes() != 32<<20 {
		t.Fatalf("queue bytes %d", cfg.queueBytes())
	}
}

func TestConfigValidate(t *testing.T) {
	f := func(args []string, wantInErr string) {
		t.Helper()
		_, err := LoadConfig(args, func(string) string { return "" }, &strings.Builder{})
		if err == nil || !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), wantInErr) {
			t.Fatalf("LoadConfig(%q) = %v; want an ErrConfig naming %q", args, err, wantInErr)
		}
	}
	f([]string{}, "--brokers")
	f([]string{"--sink", "s3"}, "--sink")
	f([]string{"--dev", "--http", "nope"}, "--http")
	f([]string{"--dev", "--max-event", "8MiB"}, "--max-event")
	f([]string{"--dev", "--memory-limit", "1MiB"}, "--memory-limit")
	f([]string{"--dev", "--log-format", "xml"}, "--log-format")
	f([]string{"--dev", "--dlq-topic", "events"}, "must differ")
	f([]string{"--dev", "--bogus"}, "bogus")
	f([]string{"--dev", "--max-body", "ten"}, "max-body")
	if _, err := LoadConfig([]string{"--sink", "discard"}, nil, os.Stderr); err != nil {
		t.Fatalf("discard sink needs no brokers: %v", err)
	}
}

func TestStatusOf(t *testing.T) {
	for err, want := range map[error]int{
		nil: 200, ErrEmptyBody: 400, ErrInvalidJSON: 400, ErrMalformedRequest: 400, ErrHeadersTooLarge: 431,
		ErrUnauthorized: 401, ErrNotFound: 404,
		ErrMethodNotAllowed: 405, ErrBodyTooLarge: 413, ErrUnsupportedMediaType: 415, ErrUnsupportedEncoding: 415,
		ErrOverloaded: 503, ErrSinkUnavailable: 503, ErrShuttingDown: 503, ErrAckTimeout: 504,
		&PressureError{Source: "queue", Err: ErrOverloaded}: 503, errors.New("boom"): 500,
	} {
		if got := StatusOf(err); got != want {
			t.Errorf("StatusOf(%v) = %d, want %d", err, got, want)
		}
	}
}

// TestExampleConfigLoads keeps examples/sluice.yaml in step with Config:
// every key in it must be known.
func TestExampleConfigLoads(t *testing.T) {
	cfg, err := LoadConfig([]string{"--config", "../examples/sluice.yaml"},
		func(k string) string { return map[string]string{"ACME_API_KEY": "acme-key"}[k] }, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Brokers) != 2 || cfg.Tenants[0].Keys[0] != "acme-key" || cfg.QueueBytes != 128<<20 || cfg.LogFormat != "json" {
		t.Fatalf("example config read as %+v", cfg)
	}
}

func TestGuestMemoryCap(t *testing.T) {
	f := func(args []string, want int64) {
		t.Helper()
		cfg, err := LoadConfig(append([]string{"--sink", "discard"}, args...), func(string) string { return "" }, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if got := cfg.guestMemory(); got != want {
			t.Fatalf("%v: guest memory cap %d, want %d", args, got, want)
		}
	}
	f(nil, 64<<20)                                  // 1 GiB default limit → capped at 64 MiB
	f([]string{"--memory-limit", "512MiB"}, 32<<20) // a sixteenth
	f([]string{"--memory-limit", "128MiB"}, 16<<20) // floor
	f([]string{"--memory-limit", "64MiB"}, 16<<20)  // floor
	f([]string{"--memory-limit", "128MiB", "--guest-memory", "8MiB"}, 8<<20)
	if _, err := LoadConfig([]string{"--sink", "discard", "--guest-memory", "1MiB"}, func(string) string { return "" }, io.Discard); err == nil || !strings.Contains(err.Error(), "guest_memory") {
		t.Fatalf("a 1 MiB guest cap was accepted: %v", err)
	}
}

// TestLoadConfigPrecedence checks flag > file > environment > default, and
// that an empty value in the file leaves the environment's.
func TestLoadConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	write := func(body string) string {
		t.Helper()
		p := filepath.Join(dir, "c.yaml")
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	env := func(k string) string { return map[string]string{"SLUICE_ADMIN_TOKEN": "from-env"}[k] }
	f := func(args []string, wantToken, wantTopic string) {
		t.Helper()
		cfg, err := LoadConfig(append([]string{"--sink", "discard"}, args...), env, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.AdminToken != wantToken || cfg.Topic != wantTopic {
			t.Fatalf("%q: token %q topic %q; want %q %q", args, cfg.AdminToken, cfg.Topic, wantToken, wantTopic)
		}
	}
	f(nil, "from-env", "events")
	f([]string{"--config", write("admin_token: \"\"\ntopic: t1\n")}, "from-env", "t1")
	f([]string{"--config", write("admin_token: from-file\n")}, "from-file", "events")
	f([]string{"--config", write("admin_token: from-file\ntopic: t1\n"), "--admin-token", "from-flag", "--topic", "t2"}, "from-flag", "t2")
	// The last of a repeated flag wins; lists add up.
	cfg, err := LoadConfig([]string{"--sink", "discard", "--http", "127.0.0.1:1", "--http", "127.0.0.1:2", "--pipeline", "a,b", "--pipeline", "c"}, env, io.Discard)
	if err != nil || cfg.HTTPAddr != "127.0.0.1:2" || strings.Join(cfg.Pipeline, ",") != "a,b,c" {
		t.Fatalf("repeated flags: %v %q %v", err, cfg.HTTPAddr, cfg.Pipeline)
	}
	// The memory limit counts as given from the file too (it then sets GOMEMLIMIT).
	cfg, err = LoadConfig([]string{"--sink", "discard", "--config", write("memory_limit: 1GiB\n")}, env, io.Discard)
	if err != nil || !cfg.MemoryLimitSet() {
		t.Fatalf("memory_limit from the file: %v, set %v", err, cfg.MemoryLimitSet())
	}
	if cfg, _ := LoadConfig([]string{"--sink", "discard"}, env, io.Discard); cfg.MemoryLimitSet() {
		t.Fatal("the default memory limit counts as given")
	}
	// A smaller body cap pulls the default event cap down with it.
	cfg, err = LoadConfig([]string{"--sink", "discard", "--max-body", "256KiB"}, env, io.Discard)
	if err != nil || cfg.MaxEvent != 256<<10 {
		t.Fatalf("max-event follows max-body: %v %v", err, cfg.MaxEvent)
	}
	// The driver depth: 4, or 2 with --dev writing to its broker, unless
	// given (on the command line or in the file).
	for _, c := range []struct {
		args []string
		want int
	}{
		{[]string{"--sink", "discard"}, 4},
		{[]string{"--dev"}, DevDriverDepth},
		{[]string{"--dev", "--sink", "discard"}, 4},
		{[]string{"--dev", "--driver-depth", "4"}, 4},
		{[]string{"--dev", "--driver-depth", "1"}, 1},
		{[]string{"--dev", "--config", write("driver_depth: 3\n")}, 3},
		{[]string{"--sink", "discard", "--driver-depth", "2"}, 2},
	} {
		cfg, err := LoadConfig(c.args, env, io.Discard)
		if err != nil || cfg.DriverDepth != c.want {
			t.Errorf("%q: driver depth %d (%v), want %d", c.args, cfg.DriverDepth, err, c.want)
		}
	}
}

func TestLoadConfigFileErrors(t *testing.T) {
	dir := t.TempDir()
	f := func(body, wantInErr string) {
		t.Helper()
		p := filepath.Join(dir, "c.yaml")
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := LoadConfig([]string{"--sink", "discard", "--config", p}, func(string) string { return "" }, io.Discard)
		if err == nil || !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), wantInErr) {
			t.Fatalf("%q: %v; want an ErrConfig naming %q", body, err, wantInErr)
		}
	}
	f("topic: a\nbogus_key: 1\n", "line 2")
	f("max_body: ten\n", "ten")
	f("ack_timeout: forever\n", "forever")
	f("tenants: {a: 1}\n", "Tenant")
	if _, err := LoadConfig([]string{"--config", filepath.Join(dir, "missing.yaml")}, nil, io.Discard); err == nil || !errors.Is(err, ErrConfig) {
		t.Fatalf("a missing file: %v", err)
	}
	// An empty file is no configuration.
	p := filepath.Join(dir, "empty.yaml")
	_ = os.WriteFile(p, nil, 0o644)
	if _, err := LoadConfig([]string{"--sink", "discard", "--config", p}, nil, io.Discard); err != nil {
		t.Fatalf("an empty file: %v", err)
	}
}

func TestLoadConfigHelp(t *testing.T) {
	var out strings.Builder
	_, err := LoadConfig([]string{"--help"}, nil, &out)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: %v", err)
	}
	for _, want := range []string{"--http", "--memory-limit=1GiB", "$SLUICE_ADMIN_TOKEN", "--config=FILE"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("help lacks %q:\n%s", want, out.String())
		}
	}
}

func TestKafkaOptions(t *testing.T) {
	dir := t.TempDir()
	yml := filepath.Join(dir, "k.yaml")
	if err := os.WriteFile(yml, []byte("brokers: [k:9092]\nkafka:\n  tls_ca: /ca.pem\n  sasl: scram-sha-512\n  sasl_user: from-file\n  compression: lz4\n  max_record_bytes: 2MiB\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"SLUICE_KAFKA_SASL_PASSWORD": "pw"}
	cfg, err := LoadConfig([]string{"--config", yml, "--kafka-sasl-user", "from-flag", "--kafka-acks", "leader", "--kafka-linger", "0"},
		func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	k := cfg.Kafka
	if k.TLSCA != "/ca.pem" || !k.tlsEnabled() || k.SASL != "scram-sha-512" || k.SASLUser != "from-flag" || string(k.SASLPassword) != "pw" ||
		k.Compression != "lz4" || k.MaxRecordBytes != 2<<20 || k.Acks != "leader" || k.Linger != 0 || k.ClientID != "sluice" {
		t.Fatalf("kafka options: %+v", k)
	}
	if d := DefaultConfig().Kafka; d.SASL != "none" || d.Compression != "snappy" || d.Linger != 5*time.Millisecond || d.Acks != "all" || d.MaxRecordBytes != 1<<20 || d.tlsEnabled() {
		t.Fatalf("kafka defaults: %+v", d)
	}
	f := func(args []string, env map[string]string, wantInErr string) {
		t.Helper()
		_, err := LoadConfig(append([]string{"--brokers", "k:9092"}, args...), func(k string) string { return env[k] }, io.Discard)
		if err == nil || !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), wantInErr) {
			t.Fatalf("%q: %v; want an ErrConfig naming %q", args, err, wantInErr)
		}
	}
	f([]string{"--kafka-tls-cert", "c.pem"}, nil, "--kafka-tls-key")
	f([]string{"--kafka-sasl", "plain", "--kafka-sasl-user", "u"}, nil, "SLUICE_KAFKA_SASL_PASSWORD")
	f([]string{"--kafka-sasl", "scram-sha-256"}, env, "--kafka-sasl-user")
	f([]string{"--kafka-sasl", "plain", "--kafka-sasl-user", "u", "--kafka-sasl-password-file", "/pw"}, env, "given twice")
	f([]string{"--kafka-sasl", "oauthbearer"}, nil, "--kafka-sasl-token-file")
	f([]string{"--kafka-sasl", "gssapi"}, nil, "--kafka-sasl")
	f([]string{"--kafka-compression", "brotli"}, nil, "--kafka-compression")
	f([]string{"--kafka-acks", "none"}, nil, "--kafka-acks")
	f([]string{"--kafka-linger", "10s"}, nil, "--kafka-linger")
	f([]string{"--kafka-topic-error-ttl", "-1s"}, nil, "--kafka-topic-error-ttl")
	f([]string{"--kafka-max-record-bytes", "100"}, nil, "--kafka-max-record-bytes")
	f([]string{"--dev", "--kafka-tls"}, nil, "plaintext")
	// There is no password flag: a password never sits in a process listing.
	f([]string{"--kafka-sasl-password", "x"}, nil, "unknown flag")
	if _, err := LoadConfig([]string{"--brokers", "k:9092", "--kafka-sasl", "aws-msk-iam"}, nil, io.Discard); err != nil {
		t.Fatalf("aws-msk-iam takes its credentials at start: %v", err)
	}
}

func TestKafkaSecurityFromFiles(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	sec, err := kafkaSecurity(&KafkaOptions{SASL: "plain", SASLUser: "u", SASLPasswordFile: pw})
	if err != nil || string(sec.SASL.Password) != "s3cret" || sec.TLS != nil {
		t.Fatalf("password file: %v %+v", err, sec)
	}
	if _, err := kafkaSecurity(&KafkaOptions{SASL: "plain", SASLUser: "u", SASLPasswordFile: filepath.Join(dir, "missing")}); err == nil || !strings.Contains(err.Error(), "password file") {
		t.Fatalf("a missing password file: %v", err)
	}
	sec, err = kafkaSecurity(&KafkaOptions{TLSServerName: "kafka.internal"})
	if err != nil || sec.TLS == nil || sec.TLS.ServerName != "kafka.internal" {
		t.Fatalf("server name implies TLS: %v %+v", err, sec)
	}
	if _, err := kafkaSecurity(&KafkaOptions{TLSCA: filepath.Join(dir, "missing.pem")}); err == nil || !strings.Contains(err.Error(), "CA file") {
		t.Fatalf("a missing CA file: %v", err)
	}
}

func TestKafkaSinkConfig(t *testing.T) {
	f := func(args []string, wantBatch int32, wantLinger time.Duration) {
		t.Helper()
		cfg, err := LoadConfig(append([]string{"--brokers", "k:9092"}, args...), func(string) string { return "" }, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		kc := (&App{cfg: cfg}).kafkaSinkConfig(cfg.Brokers, kafka.Security{})
		if kc.BatchMaxBytes != wantBatch || kc.Linger != wantLinger || kc.Acks != cfg.Kafka.Acks || kc.Compression != cfg.Kafka.Compression {
			t.Fatalf("%q: %+v", args, kc)
		}
		wantTTL := cfg.Kafka.TopicErrorTTL
		if wantTTL == 0 {
			wantTTL = -1 // the sink caches nothing
		}
		if kc.TopicErrorTTL != wantTTL {
			t.Fatalf("%q: topic error TTL %v from %v", args, kc.TopicErrorTTL, cfg.Kafka.TopicErrorTTL)
		}
		if err := kc.Validate(); err != nil {
			t.Fatal(err)
		}
	}
	f(nil, kafka.DefaultBatchMaxBytes, 5*time.Millisecond)                                   // within the brokers' default message.max.bytes
	f([]string{"--kafka-max-record-bytes", "4MiB"}, 4<<20+batchOverhead, 5*time.Millisecond) // a raised cap fits in a batch
	f([]string{"--kafka-linger", "0", "--kafka-compression", "zstd", "--kafka-acks", "leader"}, kafka.DefaultBatchMaxBytes, -1)
	f([]string{"--kafka-topic-error-ttl", "1m"}, kafka.DefaultBatchMaxBytes, 5*time.Millisecond)
	f([]string{"--kafka-topic-error-ttl", "0"}, kafka.DefaultBatchMaxBytes, 5*time.Millisecond)
}

func TestSourceOptions(t *testing.T) {
	dir := t.TempDir()
	yml := filepath.Join(dir, "s.yaml")
	if err := os.WriteFile(yml, []byte("brokers: [k:9092]\ntenants:\n  - {name: acme, keys: [k1], topic: acme.events}\nsources:\n  - {topics: [a, b], group: g1, tenant: acme}\n  - {name: second, topics: [c], group: g2, pipeline: [filter], session_timeout: 10s}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig([]string{"--config", yml, "--from-topics", "d,e", "--group", "g3"}, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	srcs := cfg.sources()
	if len(srcs) != 3 || srcs[0].Name != "g1" || srcs[1].Name != "second" || srcs[2].Name != "g3" || strings.Join(srcs[2].Topics, ",") != "d,e" ||
		srcs[1].SessionTimeout != 10*time.Second {
		t.Fatalf("sources %+v", srcs)
	}
	if sourcePipeline(srcs[0]) != "acme" || sourcePipeline(srcs[1]) != "source.second" || sourcePipeline(srcs[2]) != "default" {
		t.Fatalf("pipelines %q %q %q", sourcePipeline(srcs[0]), sourcePipeline(srcs[1]), sourcePipeline(srcs[2]))
	}
	if got := (&App{cfg: cfg}).sourceTopic(srcs[0]); got != "acme.events" {
		t.Fatalf("a tenant source's topic %q", got)
	}
	f := func(args []string, wantInErr string) {
		t.Helper()
		_, err := LoadConfig(args, func(string) string { return "" }, io.Discard)
		if err == nil || !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), wantInErr) {
			t.Fatalf("%q: %v; want an ErrConfig naming %q", args, err, wantInErr)
		}
	}
	f([]string{"--dev", "--from-topics", "a"}, "go together")
	f([]string{"--dev", "--group", "g"}, "go together")
	f([]string{"--dev", "--from-topics", "events", "--group", "g"}, "its own output")
	f([]string{"--dev", "--from-topics", "sluice.dlq", "--group", "g"}, "its own output")
	f([]string{"--sink", "stdout", "--from-topics", "a", "--group", "g"}, "need --brokers")
	f([]string{"--dev", "--from-topics", "a", "--group", "bad/name"}, "source name")
	for body, want := range map[string]string{
		"sources: [{topics: [a], group: g, pipeline: [x], tenant: t}]\ntenants: [{name: t, keys: [k]}]": "not both",
		"sources: [{topics: [a], group: g, tenant: nobody}]":                                            "no tenant",
		"sources: [{topics: [a]}]":                                    "no group",
		"sources: [{group: g}]":                                       "no topics",
		"sources: [{topics: [a], group: g}, {topics: [b], group: g}]": "repeated",
		"sources: [{topics: [a], group: g, session_timeout: 1s}]":     "session_timeout",
	} {
		if err := os.WriteFile(yml, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		f([]string{"--dev", "--config", yml}, want)
	}
}

func TestWarnKafka(t *testing.T) {
	var logs strings.Builder
	log := slog.New(slog.NewTextHandler(&logs, nil))
	o := DefaultConfig().Kafka
	warnKafka(log, &o, kafka.Security{})
	if strings.Contains(logs.String(), "WARN") {
		t.Fatalf("the defaults warn: %s", logs.String())
	}
	o.TLSInsecureSkipVerify, o.Acks = true, kafka.AcksLeader
	warnKafka(log, &o, kafka.Security{})
	if !strings.Contains(logs.String(), "NOT verified") || !strings.Contains(logs.String(), "no longer means the events are replicated") {
		t.Fatalf("no warnings: %s", logs.String())
	}
}
