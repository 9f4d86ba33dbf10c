package gateway

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sluicehq/sluice/engine"
	"github.com/sluicehq/sluice/gateway/kafka"
	"github.com/sluicehq/sluice/wasmhost"
)

// Defaults of Config. They are the `default` tags of Config's fields
// (TestDefaultsMatchTags keeps the two equal); the tags are what the flags,
// the help and the documented example read.
const (
	DefaultHTTPAddr        = ":8080"
	DefaultAdminAddr       = "127.0.0.1:9090"
	DefaultDevBroker       = "127.0.0.1:9092"
	DefaultTopic           = "events"
	DefaultDLQTopic        = "sluice.dlq"
	DefaultMemoryLimit     = 1 << 30
	DefaultMaxBody         = 4 << 20
	DefaultMaxEvent        = 1 << 20
	DefaultAckTimeout      = 10 * time.Second
	DefaultShutdownTimeout = 30 * time.Second
	// DevDriverDepth is DriverDepth's default with Dev writing to its
	// embedded broker.
	DevDriverDepth = 2
)

// Sink kinds.
const (
	SinkKafka   = "kafka"
	SinkDiscard = "discard"
	SinkStdout  = "stdout"
)

// Config is sluice's whole configuration: one flat, validated struct whose
// field tags are the single description of every option. LoadConfig reads
// the flags, the YAML file (--config), the environment and the defaults
// from these tags, `sluice run --help` prints them, and examples/sluice.yaml
// and the README's flag table are generated from them
// (`go test ./gateway -run TestConfigDocs -update`). It is never mutated
// after start.
//
// The tags of an option (a field), read by kong and by LoadConfig:
//
//	name     the flag, --NAME (a group's prefix is prepended: kafka-…)
//	yaml     the key in the YAML file (a group's fields nest under its key)
//	default  the default value, in the flag's syntax
//	env      an environment variable that sets the option (secrets); the
//	         file beats it and a flag beats both
//	merge    a list whose file, environment and flag values add up instead
//	         of overriding one another
//	help     the one description: --help, the example file, the README
//	example  the value examples/sluice.yaml shows, when not the default
//	kong:"-" a YAML-only option (a list of structs such as tenants)
//
// Adding an option is one field here (with the tags above) and its check in
// Validate; then regenerate the docs.
type Config struct {
	// ConfigFile is the YAML file read before the flags (--config).
	ConfigFile ConfigPath `name:"config" yaml:"-" placeholder:"FILE" help:"YAML configuration file (every key: examples/sluice.yaml); flags given on the command line override it."`

	// HTTPAddr is the ingest listener (POST /v1/events, /healthz, /readyz).
	HTTPAddr string `name:"http" yaml:"http" default:":8080" help:"Ingest listener: POST /v1/events, GET /healthz, GET /readyz. Port 0 picks a free port."`
	// AdminAddr is the admin listener (/metrics, /healthz, /readyz, the
	// admin API).
	AdminAddr string `name:"admin" yaml:"admin" default:"127.0.0.1:9090" help:"Admin listener: GET /metrics, /healthz, /readyz and the admin REST API (/admin/...). Keep it private."`
	// Brokers are the Kafka seed brokers. Required for the kafka sink
	// unless Dev is set.
	Brokers []string `name:"brokers" yaml:"brokers" placeholder:"HOST:PORT" example:"kafka-1:9092,kafka-2:9092" help:"Kafka seed brokers, comma separated. Required for the kafka sink unless dev is on."`
	// Dev starts an embedded Kafka-protocol broker (kfake) on DevBroker and
	// points the sink at it; topics are auto-created.
	Dev bool `name:"dev" yaml:"dev" help:"Start an embedded Kafka-protocol broker (franz-go kfake) on dev_broker and write to it; topics are auto-created. For trying sluice on one machine."`
	// DevBroker is the embedded broker's address.
	DevBroker string `name:"dev-broker" yaml:"dev_broker" default:"127.0.0.1:9092" help:"Address of the embedded broker (with dev)."`
	// Sink is kafka, discard (benchmarks) or stdout (NDJSON, for debugging).
	Sink string `name:"sink" yaml:"sink" default:"kafka" help:"Where records go: kafka, discard (benchmarks) or stdout (NDJSON, for debugging)."`
	// Topic is the default topic of records no transform routed.
	Topic string `name:"topic" yaml:"topic" default:"events" help:"Default topic of records no transform routed."`
	// DLQTopic is the dead-letter topic.
	DLQTopic string `name:"dlq-topic" yaml:"dlq_topic" default:"sluice.dlq" help:"Dead-letter topic: unparseable lines, oversized events, records a transform rejected or trapped on, with the reason in the sluice-reason header."`
	// Kafka is how sluice connects to Kafka and produces (flags
	// --kafka-..., keys under kafka:).
	Kafka KafkaOptions `embed:"" prefix:"kafka-" yaml:"kafka" group:"Kafka: connecting and producing" help:"Connecting to Kafka (TLS, SASL) and producing (compression, linger, record size, acks). Secrets never appear in logs, --help or the admin API."`
	// APIKeys are accepted API keys of the default tenant. With no keys and
	// no tenants, ingest is open.
	APIKeys []string `name:"api-key" yaml:"api_keys" env:"SLUICE_API_KEYS" merge:"" placeholder:"KEY" help:"API keys of the default tenant, sent as \"Authorization: Bearer KEY\", \"X-API-Key: KEY\", HTTP Basic auth with the key as the user name, or ?api_key=KEY (beacons); repeatable, comma separated. Keys of the file, the environment and the flags add up. With no keys and no tenants, ingest is open."`
	// Tenants map API keys to tenants with their own default topic and
	// pipeline.
	Tenants []Tenant `kong:"-" yaml:"tenants" help:"Tenants: API keys mapped to a tenant with its own default topic and pipeline."`
	// FromTopics and Group are one Kafka source given by flags: a shortcut
	// for one entry of Sources (flag-only).
	FromTopics []string `name:"from-topics" yaml:"-" placeholder:"TOPIC" help:"Consume these topics (comma separated) in the consumer group --group, through the default pipeline, into the sink: a Kafka source line beside HTTP ingest (the YAML form is sources:)."`
	// Group is the consumer group of FromTopics.
	Group string `name:"group" yaml:"-" placeholder:"GROUP" help:"Consumer group of --from-topics: sluices in one group share its partitions."`
	// Sources are Kafka consumer-group sources, each a line of its own.
	Sources []SourceOptions `kong:"-" yaml:"sources" help:"Kafka consumer-group sources, each a line of its own beside HTTP ingest: topics → pipeline → the sink, each partition's offsets committed in order only after the sink acknowledged its records. Records that are not JSON objects are dead-lettered. When pressure latches, a source pauses fetching."`
	// AdminToken is the bearer token of the admin API. Dev generates one
	// when empty; without a token the admin API routes answer 404 (the
	// health and metrics routes stay).
	AdminToken string `name:"admin-token" yaml:"admin_token" env:"SLUICE_ADMIN_TOKEN" placeholder:"TOKEN" help:"Admin API bearer token (prefer the environment for secrets). With dev and no token, one is generated and printed. Without a token the admin REST API is off; health and metrics stay on."`
	// TransformsDir holds .wasm transforms loaded at start, each named by
	// its file name without the extension.
	TransformsDir string `name:"transforms" yaml:"transforms" placeholder:"DIR" example:"./transforms" help:"Load every .wasm in this folder at start, named by its file name (filter.wasm is \"filter\")."`
	// Pipeline is the default tenant's chain of transform names. Empty:
	// records pass through unchanged.
	Pipeline []string `name:"pipeline" yaml:"pipeline" placeholder:"NAME" example:"filter,redact,route,enrich" help:"Transform chain of the default tenant, in order, comma separated. Empty: records pass through unchanged."`
	// HashKey keys the host-side hashing of transforms (hash_field):
	// environment only, never logged or served.
	HashKey kafka.Secret `kong:"-" yaml:"-" env:"SLUICE_HASH_KEY" help:"Secret key of the transforms' host-side hashing (hash_field; the redact example's email): a hashed value becomes HMAC-SHA-256(key, value), which nobody without the key can recompute from a guessed value. Without a key it is a plain SHA-256 that anyone can recompute (pseudonymisation, not anonymisation). At least 16 bytes, from the environment only (or hash_key_file); never logged or served. Changing it changes every hash."`
	// HashKeyFile holds the hash key instead of the environment.
	HashKeyFile string `name:"hash-key-file" yaml:"hash_key_file" placeholder:"FILE" help:"File holding the hash key (a trailing newline is ignored), instead of SLUICE_HASH_KEY."`
	// MemoryLimit is the process memory budget in bytes. When given it sets
	// GOMEMLIMIT (less the memory outside the Go runtime: compiled WASM code,
	// the binary's pages); it sizes the governor: a quarter of it may be in
	// flight (leased), an eighth may wait in the receive queue. Its fixed
	// part (runtime, compiled code, instance pools) is the baseline,
	// measured at start; start refuses a baseline that leaves under a
	// quarter of the limit to traffic. Under 512 MiB transforms compile one
	// at a time and keep one instance each.
	MemoryLimit ByteSize `name:"memory-limit" yaml:"memory_limit" default:"1GiB" help:"Memory budget of the whole process (Go heap, compiled WASM code, guest memory, in-flight events). Sets GOMEMLIMIT when given; a quarter of it may be in flight and an eighth may wait in the receive queue before the gate answers 503. Start fails when the fixed memory (runtime, compiled transforms, instance pools) leaves under a quarter of it."`
	// MaxBody caps a request body in bytes, before and after
	// decompression; larger is 413.
	MaxBody ByteSize `name:"max-body" yaml:"max_body" default:"4MiB" help:"Cap of one request body, before and after decompression (gzip, zstd, deflate, br): larger is 413."`
	// MaxEvent caps one event in bytes; a larger event is dead-lettered
	// ("event too large"). When not given it follows a smaller MaxBody.
	MaxEvent ByteSize `name:"max-event" yaml:"max_event" default:"1MiB" help:"Cap of one event: larger events go to the DLQ (\"event too large\", first 64 KiB kept). At most max_body; when not given it follows a smaller max_body."`
	// MaxEvents caps the events (records and dead letters) of one request;
	// a body with more is 413 and nothing of it is accepted
	// (DefaultMaxEvents).
	MaxEvents int `name:"max-events" yaml:"max_events" default:"100000" help:"Cap of the events (records and dead letters) in one request: a body with more is 413 and nothing of it is accepted; send it as several requests."`
	// MaxConcurrentReads caps the requests whose bodies are read,
	// decompressed and split at once. 0: 2 × GOMAXPROCS.
	MaxConcurrentReads int `name:"max-concurrent-reads" yaml:"max_concurrent_reads" placeholder:"N" example:"8" help:"Requests whose bodies are read, decompressed and split at the same time; a request waiting for its client's bytes holds no slot. Past it a request waits up to read_queue_timeout, then gets 503 with Retry-After. Default 2 per CPU (GOMAXPROCS)."`
	// ReadQueueTimeout bounds a request's wait for a body-read slot; then
	// 503 (DefaultReadQueueTimeout).
	ReadQueueTimeout time.Duration `name:"read-queue-timeout" yaml:"read_queue_timeout" default:"1s" help:"How long a request may wait for a body-read slot (max_concurrent_reads) before it gets 503 with Retry-After."`
	// QueueBytes caps the bytes waiting for the driver; a request that does
	// not fit is 503. 0: MemoryLimit/8 (at least MaxBody).
	QueueBytes ByteSize `name:"queue-bytes" yaml:"queue_bytes" placeholder:"SIZE" example:"128MiB" help:"Bytes that may wait for the driver; a request that does not fit is 503. Default memory_limit/8 (at least max_body)."`
	// DriverDepth is how many batches each line's driver keeps in flight
	// (engine.Config.Depth): up to DriverDepth are run through the
	// transforms at once while earlier ones are written to the sink and
	// committed, in order. The byte budget's ceiling and the record cap of
	// one receive are divided by it, so a line holds no more in flight
	// than one batch could with 1 (one batch at a time). With Dev, when
	// it is not given, it is DevDriverDepth.
	DriverDepth int `name:"driver-depth" yaml:"driver_depth" default:"4" help:"Batches each line's driver keeps in flight (2 with --dev writing to its broker, unless given: the embedded broker shares the cores): up to this many run through the transforms at once while earlier ones are written to Kafka and committed, in order (a client still gets 200 only once all its events are written). 1: one batch at a time. The byte budget and record cap of a batch are divided by it, so the bytes in flight stay within the same bound."`
	// GuestMemory caps the linear memory of one WASM transform instance; a
	// guest that needs more fails its call (its records are dead-lettered
	// "oom: ..."). 0: MemoryLimit/16, between 16 MiB and 64 MiB, so the
	// pooled instances of a few transforms stay within the memory limit.
	GuestMemory ByteSize `name:"guest-memory" yaml:"guest_memory" placeholder:"SIZE" example:"64MiB" help:"Linear memory cap of one WASM transform instance (instances are pooled, about one per core per transform). A guest that needs more fails its call and its records are dead-lettered (\"oom: ...\"). Default memory_limit/16, at least 16MiB and at most 64MiB."`
	// AckTimeout bounds how long a request waits for its ack; then 504.
	AckTimeout time.Duration `name:"ack-timeout" yaml:"ack_timeout" default:"10s" help:"How long a request waits for Kafka's ack before 504. Its events may still be written (at-least-once)."`
	// ShutdownTimeout bounds the drain on SIGTERM; requests still waiting
	// then get 503.
	ShutdownTimeout time.Duration `name:"shutdown-timeout" yaml:"shutdown_timeout" default:"30s" help:"Drain deadline on SIGTERM: requests still waiting then get 503."`
	// TLSCert and TLSKey serve ingest over HTTPS; the pair is reloaded
	// when the files change and on SIGHUP (tlsreload.go).
	TLSCert string `name:"tls-cert" yaml:"tls_cert" placeholder:"FILE" help:"Serve ingest over HTTPS with this certificate (PEM: the leaf, then its chain), with tls_key. The pair is reloaded when the files change (checked every tls_reload_interval) and on SIGHUP, without dropping connections; a new pair that does not load is logged and the previous one kept."`
	// TLSKey is the key of TLSCert.
	TLSKey string `name:"tls-key" yaml:"tls_key" placeholder:"FILE" help:"Key (PEM) of tls_cert."`
	// AdminTLSCert and AdminTLSKey serve the admin listener over HTTPS,
	// reloaded like TLSCert.
	AdminTLSCert string `name:"admin-tls-cert" yaml:"admin_tls_cert" placeholder:"FILE" help:"Serve the admin listener (metrics, health, admin API, console) over HTTPS with this certificate (PEM), with admin_tls_key; reloaded like tls_cert."`
	// AdminTLSKey is the key of AdminTLSCert.
	AdminTLSKey string `name:"admin-tls-key" yaml:"admin_tls_key" placeholder:"FILE" help:"Key (PEM) of admin_tls_cert."`
	// TLSReloadInterval is how often the certificate files are checked.
	TLSReloadInterval time.Duration `name:"tls-reload-interval" yaml:"tls_reload_interval" default:"10s" help:"How often the certificate and key files (tls_cert, admin_tls_cert) are read to see whether they changed. 0: only on SIGHUP."`
	// CORS lets browser pages on other origins post events (flags
	// --cors-..., keys under cors:).
	CORS CORSOptions `embed:"" prefix:"cors-" yaml:"cors" group:"CORS: browser pages on other origins" help:"Browser pages on other origins that may post events (fetch, sendBeacon): preflights, and the Access-Control-* headers on every answer to them."`
	// RateLimit is the events per second each API key may send (token
	// bucket; 0: no limit).
	RateLimit int `name:"rate-limit" yaml:"rate_limit" placeholder:"N" example:"1000" help:"Events per second each API key may send (a token bucket per key; with open ingest, one for everyone). A request is admitted or refused whole: past the limit it gets 429 with Retry-After, the seconds until its events fit. A tenant's rate_limit overrides it. 0: no limit."`
	// RateBurst is the bucket's size in events (0: RateLimit, one
	// second's worth).
	RateBurst int `name:"rate-burst" yaml:"rate_burst" placeholder:"N" example:"5000" help:"Size of each key's token bucket in events: the most events one key may send at once after a quiet spell. A request of more events than the burst can never fit and gets 413. Default: one second's worth (rate_limit)."`
	// IdempotencyWindow is how long an Idempotency-Key's answer is
	// remembered (0: the header is ignored).
	IdempotencyWindow time.Duration `name:"idempotency-window" yaml:"idempotency_window" default:"10m" help:"How long the answer to a request with an Idempotency-Key header is remembered: a retry with the same key (same tenant) gets the first answer with Idempotent-Replayed: true and writes nothing; a duplicate sent while the first is in flight waits for it. Answers of 5xx and 429 are not remembered. Per instance: behind a load balancer, deduplicate downstream with the records' idempotency-key header. 0: off."`
	// IdempotencyMaxKeys bounds the remembered keys (least recently used
	// go first).
	IdempotencyMaxKeys int `name:"idempotency-max-keys" yaml:"idempotency_max_keys" default:"100000" help:"Most Idempotency-Keys remembered at once; past it the least recently used is forgotten first. The answers they keep are also capped at a thirty-second of memory_limit."`
	// RecordMetadata adds the sluice-received-at, sluice-client-ip and
	// sluice-tenant headers to every record.
	RecordMetadata bool `name:"record-metadata" yaml:"record_metadata" help:"Add Kafka headers to every record of a request: sluice-received-at (RFC 3339 UTC, milliseconds), sluice-client-ip (the connection's address, or the client's from X-Forwarded-For behind trusted_proxies) and sluice-tenant."`
	// TrustedProxies are the proxies whose X-Forwarded-For is believed.
	TrustedProxies []string `name:"trusted-proxy" yaml:"trusted_proxies" placeholder:"CIDR" example:"10.0.0.0/8" help:"Proxies (CIDR or address, repeatable) whose X-Forwarded-For is believed for sluice-client-ip: from a trusted peer, the nearest hop of X-Forwarded-For that is not itself trusted is the client. From any other peer the header is ignored."`
	// DataDir keeps transforms, the compilation cache and (with Dev) the
	// embedded broker's data across restarts. Empty: nothing persists.
	DataDir string `name:"data-dir" yaml:"data_dir" placeholder:"DIR" example:"/var/lib/sluice" help:"Keeps transforms, pipelines, the compiled-code cache and (with dev) the embedded broker's data across restarts. Empty: nothing persists."`
	// LogFormat is text or json.
	LogFormat string `name:"log-format" yaml:"log_format" default:"text" example:"json" help:"Log format: text or json."`
	// LogLevel is debug, info, warn or error.
	LogLevel string `name:"log-level" yaml:"log_level" default:"info" help:"Log level: debug, info, warn or error."`
	// ReadyFile, when set, is written once both listeners are bound, with
	// one line "http=ADDR admin=ADDR".
	ReadyFile string `name:"ready-file" yaml:"ready_file" placeholder:"FILE" help:"Written once both listeners are bound, one line \"http=ADDR admin=ADDR\"."`

	memoryLimitSet bool
	// adminTokenFrom says where a supplied admin token came from (the dev
	// banner names it instead of printing the token); set by LoadConfig.
	adminTokenFrom string
}

// KafkaOptions are the Kafka connection and producer options of Config
// (flags --kafka-..., YAML keys under kafka:).
type KafkaOptions struct {
	// TLS connects over TLS with the system roots (or TLSCA).
	TLS bool `name:"tls" yaml:"tls" help:"Connect to the brokers over TLS, checking their certificates against the system roots (or tls_ca)."`
	// TLSCA is a PEM bundle of the brokers' CAs; implies TLS.
	TLSCA string `name:"tls-ca" yaml:"tls_ca" placeholder:"FILE" help:"PEM bundle of the CAs that sign the brokers' certificates, instead of the system roots; implies tls."`
	// TLSCert is the client certificate of mutual TLS (with TLSKey).
	TLSCert string `name:"tls-cert" yaml:"tls_cert" placeholder:"FILE" help:"Client certificate (PEM) for mutual TLS, with tls_key; implies tls."`
	// TLSKey is the client certificate's key.
	TLSKey string `name:"tls-key" yaml:"tls_key" placeholder:"FILE" help:"Key (PEM) of the client certificate."`
	// TLSServerName overrides the name checked in the brokers'
	// certificates.
	TLSServerName string `name:"tls-server-name" yaml:"tls_server_name" placeholder:"NAME" help:"Name the brokers' certificates must carry, when it is not the host of the broker address; implies tls."`
	// TLSInsecureSkipVerify accepts any broker certificate (warned at
	// start).
	TLSInsecureSkipVerify bool `name:"tls-insecure-skip-verify" yaml:"tls_insecure_skip_verify" help:"Accept any broker certificate: anyone on the path can read and change the traffic. Logged as a warning at start; implies tls."`
	// SASL is the SASL mechanism.
	SASL string `name:"sasl" yaml:"sasl" default:"none" help:"SASL mechanism: none, plain, scram-sha-256, scram-sha-512, oauthbearer (token from sasl_token_file) or aws-msk-iam (credentials from the standard AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN)."`
	// SASLUser is the user of plain and scram-*.
	SASLUser string `name:"sasl-user" yaml:"sasl_user" placeholder:"NAME" help:"SASL user of plain and scram-*."`
	// SASLPassword is the password of plain and scram-* (environment
	// only).
	SASLPassword kafka.Secret `kong:"-" yaml:"-" env:"SLUICE_KAFKA_SASL_PASSWORD" help:"SASL password of plain and scram-*: from the environment only (or sasl_password_file), so it is never in a process listing or a config file. Never logged or served."`
	// SASLPasswordFile holds the password instead.
	SASLPasswordFile string `name:"sasl-password-file" yaml:"sasl_password_file" placeholder:"FILE" help:"File holding the SASL password (a trailing newline is ignored), instead of SLUICE_KAFKA_SASL_PASSWORD."`
	// SASLTokenFile holds the OAUTHBEARER token.
	SASLTokenFile string `name:"sasl-token-file" yaml:"sasl_token_file" placeholder:"FILE" help:"File holding the OAUTHBEARER token; read again for every new connection, so a token rotated on disk is picked up."`
	// Compression is the batch codec.
	Compression string `name:"compression" yaml:"compression" default:"snappy" help:"Batch compression: none, gzip, snappy, lz4 or zstd."`
	// Linger is how long a partition's batch waits for more records.
	Linger time.Duration `name:"linger" yaml:"linger" default:"5ms" help:"How long a partition's batch waits for more records. Every request waits for it too: longer buys bigger batches at the cost of latency."`
	// MaxRecordBytes caps one produced record.
	MaxRecordBytes ByteSize `name:"max-record-bytes" yaml:"max_record_bytes" default:"1MiB" help:"Largest record produced (key + value + headers): a larger one is dead-lettered \"too large for Kafka\" before the produce. Keep it at most the topics' max.message.bytes."`
	// TopicErrorTTL is how long a topic found missing or not authorised
	// stays so for the sink (kafka.Config.TopicErrorTTL).
	TopicErrorTTL time.Duration `name:"topic-error-ttl" yaml:"topic_error_ttl" default:"10s" help:"How long a topic the cluster does not have, or that sluice may not write, is remembered as such: its records are dead-lettered (stage sink) at once instead of asking the brokers again, so a client naming a bad topic costs no retry storm. A topic created or an ACL granted meanwhile is used at most this long later. 0: ask every time."`
	// ClientID is the Kafka client id.
	ClientID string `name:"client-id" yaml:"client_id" default:"sluice" help:"Client id the brokers see (logs, quotas, ACLs)."`
	// Acks is all or leader.
	Acks string `name:"acks" yaml:"acks" default:"all" help:"all: a 200 means every in-sync replica has the events (idempotent producer). leader: only the partition leader has them, so a 200 no longer means replicated (warned at start)."`
	// Wait bounds how long start retries the brokers.
	Wait time.Duration `name:"wait" yaml:"wait" default:"0s" help:"How long start keeps retrying brokers that are unreachable or refuse the login, /readyz saying why meanwhile; then sluice exits non-zero. 0: one bounded attempt."`
}

// CORSOptions are the browser origins that may post events (flags
// --cors-..., YAML keys under cors:).
type CORSOptions struct {
	// Origins are the allowed origins ("*": any).
	Origins []string `name:"origin" yaml:"origins" placeholder:"ORIGIN" example:"https://app.example.com,https://*.example.org" help:"Origins whose pages may post events (scheme://host[:port]; https://*.example.com for its subdomains; * for any), repeatable. A preflight from one gets 204 with the Access-Control-* headers, every answer to it (errors too) Access-Control-Allow-Origin; other origins get no CORS headers, 403 to a preflight and to a post. A tenant's cors.origins replaces these for its keys. Empty: no CORS."`
	// MaxAge is how long a browser may cache a preflight's answer.
	MaxAge time.Duration `name:"max-age" yaml:"max_age" default:"2h" help:"How long a browser may reuse a preflight's answer (Access-Control-Max-Age; Chromium caps it at 2h)."`
}

// TenantCORS is a tenant's own allowed origins (tenants[].cors).
type TenantCORS struct {
	// Origins replace CORSOptions.Origins for the tenant's keys.
	Origins []string `yaml:"origins" example:"https://shop.acme.com" help:"Origins whose pages may post with this tenant's keys, instead of cors.origins (same syntax)."`
}

// tlsEnabled reports whether any TLS option asks for TLS.
func (k *KafkaOptions) tlsEnabled() bool {
	return k.TLS || k.TLSCA != "" || k.TLSCert != "" || k.TLSServerName != "" || k.TLSInsecureSkipVerify
}

// validate reports the invalid Kafka options.
func (k *KafkaOptions) validate(c *Config, bad func(string, ...any)) {
	if (k.TLSCert == "") != (k.TLSKey == "") {
		bad("--kafka-tls-cert and --kafka-tls-key go together (mutual TLS)")
	}
	switch k.SASL {
	case kafka.SASLNone, "":
	case kafka.SASLPlain, kafka.SASLScramSHA256, kafka.SASLScramSHA512:
		if k.SASLUser == "" {
			bad("--kafka-sasl %s needs --kafka-sasl-user", k.SASL)
		}
		switch {
		case k.SASLPassword == "" && k.SASLPasswordFile == "":
			bad("--kafka-sasl %s needs a password: env SLUICE_KAFKA_SASL_PASSWORD or --kafka-sasl-password-file", k.SASL)
		case k.SASLPassword != "" && k.SASLPasswordFile != "":
			bad("the SASL password is given twice: env SLUICE_KAFKA_SASL_PASSWORD and --kafka-sasl-password-file")
		}
	case kafka.SASLOAuthBearer:
		if k.SASLTokenFile == "" {
			bad("--kafka-sasl oauthbearer needs --kafka-sasl-token-file")
		}
	case kafka.SASLAWSMSKIAM:
	default:
		bad("--kafka-sasl %q: want none, plain, scram-sha-256, scram-sha-512, oauthbearer or aws-msk-iam", k.SASL)
	}
	switch k.Compression {
	case "none", "gzip", "snappy", "lz4", "zstd":
	default:
		bad("--kafka-compression %q: want none, gzip, snappy, lz4 or zstd", k.Compression)
	}
	switch k.Acks {
	case kafka.AcksAll, kafka.AcksLeader:
	default:
		bad("--kafka-acks %q: want all or leader", k.Acks)
	}
	if k.Linger < 0 || k.Linger >= c.deliveryTimeout() {
		bad("--kafka-linger %v: want at least 0 and below the delivery timeout %v (half the ack timeout, at least 1s)", k.Linger, c.deliveryTimeout())
	}
	if k.TopicErrorTTL < 0 {
		bad("--kafka-topic-error-ttl %v: want at least 0", k.TopicErrorTTL)
	}
	if k.MaxRecordBytes < 1<<10 {
		bad("--kafka-max-record-bytes %v: want at least 1KiB", k.MaxRecordBytes)
	}
	if k.Wait < 0 {
		bad("--kafka-wait %v: want at least 0", k.Wait)
	}
}

// deliveryTimeout is how long the Kafka sink waits for a record's ack:
// half the ack timeout (at least 1 s), so a request sees the failure and
// answers 503 before its own deadline.
func (c *Config) deliveryTimeout() time.Duration { return max(time.Second, c.AckTimeout/2) }

// SourceOptions is one Kafka consumer-group source (YAML: `sources:`; the
// flags --from-topics and --group give one).
type SourceOptions struct {
	// Name names the source's line; default its group.
	Name string `yaml:"name" example:"clicks" help:"Names the source's line (logs). Default: its group."`
	// Topics are the topics consumed.
	Topics []string `yaml:"topics" example:"raw.clicks" help:"Topics to consume."`
	// Group is the consumer group.
	Group string `yaml:"group" example:"sluice-clicks" help:"Consumer group: sluices in one group share the partitions."`
	// Pipeline is the source's transform chain ("" = the default
	// pipeline's).
	Pipeline []string `yaml:"pipeline" example:"filter,redact" help:"Transform chain of the source's records (default: the default pipeline). Not with tenant."`
	// Tenant runs the records as that tenant's (pipeline and topic).
	Tenant string `yaml:"tenant" help:"Run the records through this tenant's pipeline, to its default topic. Not with pipeline."`
	// SessionTimeout is how long the group waits for a silent member.
	SessionTimeout time.Duration `yaml:"session_timeout" example:"45s" help:"How long the group waits for a member that stopped heartbeating (crashed) before its partitions move to the others. Default 45s; the brokers bound it (group.min/max.session.timeout.ms)."`
}

// sources returns the configured sources: those of the file, then the one
// of --from-topics.
func (c *Config) sources() []SourceOptions {
	out := append([]SourceOptions(nil), c.Sources...)
	if len(c.FromTopics) > 0 {
		out = append(out, SourceOptions{Topics: c.FromTopics, Group: c.Group})
	}
	for i := range out {
		if out[i].Name == "" {
			out[i].Name = out[i].Group
		}
	}
	return out
}

// validateSources reports the invalid sources.
func (c *Config) validateSources(bad func(string, ...any)) {
	if (len(c.FromTopics) == 0) != (c.Group == "") {
		bad("--from-topics and --group go together")
	}
	outputs := map[string]bool{c.Topic: true, c.DLQTopic: true}
	tenants := map[string]bool{}
	for _, t := range c.Tenants {
		tenants[t.Name] = true
		if t.Topic != "" {
			outputs[t.Topic] = true
		}
	}
	names := map[string]bool{}
	srcs := c.sources()
	for _, s := range srcs {
		switch {
		case s.Group == "":
			bad("source %q has no group", s.Name)
		case !validLineName(s.Name):
			bad("source name %q: use 1–57 of A-Z a-z 0-9 _ . -", s.Name)
		case names[s.Name]:
			bad("source name %q is repeated (name the sources)", s.Name)
		}
		names[s.Name] = true
		if len(s.Topics) == 0 {
			bad("source %q has no topics", s.Name)
		}
		for _, t := range s.Topics {
			if outputs[t] {
				bad("source %q consumes %q, which sluice writes to: it would read its own output", s.Name, t)
			}
		}
		if len(s.Pipeline) > 0 && s.Tenant != "" {
			bad("source %q: give pipeline or tenant, not both", s.Name)
		}
		if s.Tenant != "" && !tenants[s.Tenant] {
			bad("source %q: no tenant %q", s.Name, s.Tenant)
		}
		if s.SessionTimeout != 0 && s.SessionTimeout < 4*time.Second {
			bad("source %q: session_timeout %v: want at least 4s (heartbeats go every 3s)", s.Name, s.SessionTimeout)
		}
	}
	if len(srcs) > 0 && !c.Dev && len(c.Brokers) == 0 {
		bad("Kafka sources need --brokers (or --dev)")
	}
}

// validLineName reports whether a source name makes a WASM host pipeline
// name ("source." + name: 1–64 of A-Z a-z 0-9 _ . -).
func validLineName(n string) bool {
	if n == "" || len(n) > 57 {
		return false
	}
	for _, r := range n {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '.' || r == '-') {
			return false
		}
	}
	return true
}

// Tenant is one API key's tenant (YAML only: `tenants:`).
type Tenant struct {
	// Name identifies the tenant (admin API, logs).
	Name string `yaml:"name" example:"acme" help:"Identifies the tenant (admin API, logs, metrics)."`
	// Keys are the tenant's API keys.
	Keys []string `yaml:"keys" help:"The tenant's API keys."`
	// KeyEnv names an environment variable holding one more key.
	KeyEnv string `yaml:"key_env" example:"ACME_API_KEY" help:"An environment variable holding one more key."`
	// Topic is the tenant's default topic ("" = Config.Topic).
	Topic string `yaml:"topic" example:"acme.events" help:"The tenant's default topic (default: topic)."`
	// Pipeline is the tenant's chain ("" = Config.Pipeline).
	Pipeline []string `yaml:"pipeline" example:"filter,redact" help:"The tenant's transform chain (default: pipeline)."`
	// RateLimit is the events/s of each of the tenant's keys (0:
	// Config.RateLimit; -1: none).
	RateLimit int `yaml:"rate_limit" example:"500" help:"Events per second each of the tenant's keys may send, instead of rate_limit; -1: no limit."`
	// RateBurst is the bucket size of each of the tenant's keys (0: one
	// second's worth).
	RateBurst int `yaml:"rate_burst" help:"Token bucket size of each of the tenant's keys in events. Default: one second's worth of its rate_limit."`
	// CORS are the tenant's own allowed origins.
	CORS TenantCORS `yaml:"cors" embed:"" help:"The tenant's own CORS origins."`
}

// DefaultConfig returns the defaults (the `default` tags).
func DefaultConfig() Config {
	var c Config
	if err := applyDefaults(&c); err != nil {
		panic("gateway: Config default tags: " + err.Error()) // a broken tag is a bug
	}
	return c
}

// MemoryLimitSet reports whether the memory limit was given explicitly (a
// flag or the file), and so sets GOMEMLIMIT.
func (c *Config) MemoryLimitSet() bool { return c.memoryLimitSet }

// queueBytes returns the effective queue cap.
func (c *Config) queueBytes() int64 {
	if c.QueueBytes > 0 {
		return int64(c.QueueBytes)
	}
	return max(int64(c.MemoryLimit)/8, int64(c.MaxBody))
}

// guestMemory returns the effective per-instance guest memory cap.
func (c *Config) guestMemory() int64 {
	if c.GuestMemory > 0 {
		return int64(c.GuestMemory)
	}
	return min(max(int64(c.MemoryLimit)/16, minGuestMemory), maxGuestMemory)
}

// Bounds of the derived per-instance guest memory cap: a Go guest needs
// about 3 MiB to start; 64 MiB is the host's own default.
const (
	minGuestMemory = 16 << 20
	maxGuestMemory = 64 << 20
)

// Validate reports every invalid field.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	for _, a := range []struct{ name, v string }{{"http", c.HTTPAddr}, {"admin", c.AdminAddr}} {
		if _, _, err := net.SplitHostPort(a.v); err != nil {
			bad("--%s %q: want HOST:PORT (%v)", a.name, a.v, err)
		}
	}
	switch c.Sink {
	case SinkKafka:
		if !c.Dev && len(c.Brokers) == 0 {
			bad("--sink kafka needs --brokers (or --dev for the embedded broker)")
		}
	case SinkDiscard, SinkStdout:
	default:
		bad("--sink %q: want kafka, discard or stdout", c.Sink)
	}
	if c.Dev {
		if _, _, err := net.SplitHostPort(c.DevBroker); err != nil {
			bad("--dev-broker %q: want HOST:PORT (%v)", c.DevBroker, err)
		}
		if c.Kafka.tlsEnabled() || (c.Kafka.SASL != "" && c.Kafka.SASL != kafka.SASLNone) {
			bad("--dev's embedded broker speaks plaintext without SASL: drop the --kafka-tls* and --kafka-sasl* options, or use --brokers")
		}
	}
	if c.Topic == "" || c.DLQTopic == "" {
		bad("--topic and --dlq-topic must not be empty")
	}
	if c.Topic == c.DLQTopic {
		bad("--topic and --dlq-topic must differ (both %q)", c.Topic)
	}
	if c.MemoryLimit < 16<<20 {
		bad("--memory-limit %v: want at least 16MiB", c.MemoryLimit)
	}
	if c.MaxBody <= 0 || c.MaxEvent <= 0 {
		bad("--max-body and --max-event must be > 0")
	}
	if c.MaxEvent > c.MaxBody {
		bad("--max-event %v must not exceed --max-body %v", c.MaxEvent, c.MaxBody)
	}
	if c.GuestMemory < 0 || (c.GuestMemory > 0 && c.GuestMemory < 4<<20) {
		bad("guest_memory %v must be at least 4MiB (a Go guest needs about 3 MiB to start)", c.GuestMemory)
	}
	if c.DriverDepth < 1 || c.DriverDepth > engine.MaxDepth {
		bad("--driver-depth %d: want 1 to %d", c.DriverDepth, engine.MaxDepth)
	}
	if c.QueueBytes < 0 || (c.QueueBytes > 0 && c.QueueBytes < c.MaxBody) {
		bad("queue_bytes %v must be ≥ --max-body %v", c.QueueBytes, c.MaxBody)
	}
	if c.MaxEvents <= 0 {
		bad("--max-events %d must be > 0", c.MaxEvents)
	}
	if c.MaxConcurrentReads < 0 {
		bad("--max-concurrent-reads %d must be ≥ 0 (0: 2 per CPU)", c.MaxConcurrentReads)
	}
	if c.ReadQueueTimeout <= 0 {
		bad("--read-queue-timeout %v must be > 0", c.ReadQueueTimeout)
	}
	if c.AckTimeout <= 0 || c.ShutdownTimeout <= 0 {
		bad("--ack-timeout and --shutdown-timeout must be > 0")
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		bad("--log-format %q: want text or json", c.LogFormat)
	}
	switch strings.ToLower(c.LogLevel) {
	case "debug", "info", "warn", "error":
	default:
		bad("--log-level %q: want debug, info, warn or error", c.LogLevel)
	}
	c.Kafka.validate(c, bad)
	switch {
	case c.HashKey != "" && c.HashKeyFile != "":
		bad("the hash key is given twice: env SLUICE_HASH_KEY and --hash-key-file")
	case c.HashKey != "" && len(c.HashKey) < wasmhost.MinHashKey:
		bad("SLUICE_HASH_KEY has %d bytes: want at least %d (e.g. openssl rand -hex 32)", len(c.HashKey), wasmhost.MinHashKey)
	}
	c.validateSources(bad)
	c.validateEdge(bad)
	keys := map[string]string{}
	for _, k := range c.APIKeys {
		if k == "" {
			bad("an API key is empty")
		}
		keys[k] = ""
	}
	names := map[string]bool{"": true}
	for _, t := range c.Tenants {
		if names[t.Name] {
			bad("tenant name %q is empty or repeated", t.Name)
		}
		if t.Name == defaultTenantName {
			bad("tenant name %q is reserved: it names the default tenant (the keys of api_keys) in pipelines, metrics and record headers", t.Name)
		}
		names[t.Name] = true
		if len(t.Keys) == 0 {
			bad("tenant %q has no API key (keys or key_env)", t.Name)
		}
		for _, k := range t.Keys {
			if prev, ok := keys[k]; ok {
				bad("tenant %q: API key already used by tenant %q", t.Name, prev)
			}
			keys[k] = t.Name
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return nil
}

// validateEdge reports the invalid options of the front door's edge
// features: TLS, CORS, rate limits, idempotency, record metadata.
func (c *Config) validateEdge(bad func(string, ...any)) {
	if (c.TLSCert == "") != (c.TLSKey == "") {
		bad("--tls-cert and --tls-key go together")
	}
	if (c.AdminTLSCert == "") != (c.AdminTLSKey == "") {
		bad("--admin-tls-cert and --admin-tls-key go together")
	}
	if c.TLSReloadInterval < 0 {
		bad("--tls-reload-interval %v must be ≥ 0 (0: only on SIGHUP)", c.TLSReloadInterval)
	}
	for _, o := range c.CORS.Origins {
		if _, err := parseOrigin(o); err != nil {
			bad("--cors-origin: %v", err)
		}
	}
	if c.CORS.MaxAge < 0 {
		bad("--cors-max-age %v must be ≥ 0", c.CORS.MaxAge)
	}
	if c.RateLimit < 0 || c.RateBurst < 0 {
		bad("--rate-limit %d and --rate-burst %d must be ≥ 0", c.RateLimit, c.RateBurst)
	}
	if c.RateBurst > 0 && c.RateLimit == 0 {
		bad("--rate-burst needs --rate-limit")
	}
	if c.IdempotencyWindow < 0 {
		bad("--idempotency-window %v must be ≥ 0 (0: off)", c.IdempotencyWindow)
	}
	if c.IdempotencyMaxKeys < 1 {
		bad("--idempotency-max-keys %d must be ≥ 1", c.IdempotencyMaxKeys)
	}
	for _, p := range c.TrustedProxies {
		if _, err := parsePrefix(p); err != nil {
			bad("--trusted-proxy: %v", err)
		}
	}
	for _, t := range c.Tenants {
		if t.RateLimit < -1 || t.RateBurst < 0 {
			bad("tenant %q: rate_limit %d must be ≥ -1 (-1: none) and rate_burst %d ≥ 0", t.Name, t.RateLimit, t.RateBurst)
		}
		if t.RateBurst > 0 && t.RateLimit <= 0 && (t.RateLimit < 0 || c.RateLimit == 0) {
			bad("tenant %q: rate_burst needs a rate limit (its rate_limit or --rate-limit)", t.Name)
		}
		for _, o := range t.CORS.Origins {
			if _, err := parseOrigin(o); err != nil {
				bad("tenant %q: cors.origins: %v", t.Name, err)
			}
		}
	}
}

// ByteSize is a size in bytes that reads "256MiB", "4MB", "1GiB" or "1024".
type ByteSize int64

// String formats the size with the largest exact binary unit.
func (s ByteSize) String() string {
	for _, u := range []struct {
		n    int64
		name string
	}{{1 << 30, "GiB"}, {1 << 20, "MiB"}, {1 << 10, "KiB"}} {
		if s != 0 && int64(s)%u.n == 0 {
			return strconv.FormatInt(int64(s)/u.n, 10) + u.name
		}
	}
	return strconv.FormatInt(int64(s), 10)
}

// Set parses a size (flag.Value).
func (s *ByteSize) Set(v string) error {
	n, err := ParseSize(v)
	if err != nil {
		return err
	}
	*s = ByteSize(n)
	return nil
}

// UnmarshalText parses a size (flags and the environment).
func (s *ByteSize) UnmarshalText(b []byte) error { return s.Set(string(b)) }

// UnmarshalYAML parses a size from a YAML scalar.
func (s *ByteSize) UnmarshalYAML(n *yaml.Node) error { return s.Set(n.Value) }

// ParseSize parses "256MiB", "4MB", "64k", "1GiB" or a byte count.
func ParseSize(v string) (int64, error) {
	s := strings.TrimSpace(v)
	i := len(s)
	for i > 0 && (s[i-1] < '0' || s[i-1] > '9') {
		i--
	}
	num, unit := s[:i], strings.ToLower(strings.TrimSpace(s[i:]))
	mult := map[string]int64{
		"": 1, "b": 1,
		"k": 1 << 10, "kb": 1000, "kib": 1 << 10,
		"m": 1 << 20, "mb": 1000 * 1000, "mib": 1 << 20,
		"g": 1 << 30, "gb": 1000 * 1000 * 1000, "gib": 1 << 30,
	}[unit]
	n, err := strconv.ParseFloat(num, 64)
	if err != nil || mult == 0 || n < 0 {
		return 0, fmt.Errorf("size %q: want a number with an optional unit (KiB, MiB, GiB, KB, MB, GB)", v)
	}
	return int64(n * float64(mult)), nil
}
