package kafka

import (
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Defaults of Config. A zero field in Config means its default.
const (
	DefaultTopic              = "events"
	DefaultDLQTopic           = "sluice.dlq"
	DefaultCompression        = "snappy"
	DefaultLinger             = 5 * time.Millisecond
	DefaultBatchMaxBytes      = 1 << 20
	DefaultMaxBufferedRecords = 100_000
	DefaultDeliveryTimeout    = 10 * time.Second
	DefaultDialTimeout        = 5 * time.Second
	DefaultClientID           = "sluice"
	DefaultTopicErrorTTL      = 10 * time.Second
)

// Acknowledgement levels of Config.Acks.
const (
	// AcksAll waits for every in-sync replica (acks=all) and produces
	// idempotently: a record acknowledged is replicated.
	AcksAll = "all"
	// AcksLeader waits for the partition leader only (acks=1), without
	// idempotence: an acknowledged record is lost if the leader fails
	// before its followers copied it, and retries may duplicate records.
	AcksLeader = "leader"
)

// Config configures the Kafka producer behind a Sink. It is flat and
// immutable: NewSink copies it, fills the defaults (a zero field means its
// default) and validates it; changing it afterwards has no effect.
//
// A Sink produces with acks=all and idempotence unless Acks says leader,
// because the gateway answers a client only after Kafka has its events.
// Keyed records land on the partition the Java client's default partitioner
// picks (murmur2 of the key), so sluice and Java producers co-partition.
type Config struct {
	// Brokers are the seed brokers, "host:port". Required, at least one.
	Brokers []string

	// Security is TLS and SASL (NewSecurity). The zero value is plaintext
	// without authentication.
	Security Security

	// Acks is AcksAll (default) or AcksLeader.
	Acks string

	// ClientID is the Kafka client id the brokers see in their logs and
	// quotas. Default "sluice".
	ClientID string

	// DefaultTopic is where a record goes when its Topic is "" (a transform
	// did not route it). Default "events".
	DefaultTopic string

	// DLQTopic receives dead letters (WriteDLQ). Default "sluice.dlq". It
	// must differ from DefaultTopic.
	DLQTopic string

	// Compression is the batch codec: "none", "gzip", "snappy", "lz4" or
	// "zstd". Default "snappy" (the fastest on realistic JSON events).
	Compression string

	// Linger is how long a partition's batch waits for more records before
	// it is sent. Default 5 ms; a negative value means no linger. Write
	// waits for its records anyway, so a longer linger adds latency to every
	// request and buys only bigger batches.
	Linger time.Duration

	// BatchMaxBytes caps one record batch (uncompressed) per partition.
	// Default 1 MiB; it must not exceed the brokers' message.max.bytes
	// (1 MiB + 12 B by default). A single record larger than this fails
	// with MESSAGE_TOO_LARGE.
	BatchMaxBytes int32

	// MaxBufferedRecords caps the records the producer holds that Kafka has
	// not acknowledged yet. Default 100,000. When full, Write blocks until
	// space frees up, its context is done, or DeliveryTimeout passes.
	MaxBufferedRecords int

	// DeliveryTimeout bounds how long a record may wait for its ack
	// (Kafka's delivery.timeout.ms). Default 10 s. When the brokers are down,
	// Write fails within about this long instead of hanging, so the caller
	// can answer 503 and the outage shows up as errors, not stalls.
	DeliveryTimeout time.Duration

	// DialTimeout bounds one connection attempt and the reachability check
	// NewSink makes at start. Default 5 s.
	DialTimeout time.Duration

	// AllowAutoTopicCreation lets producing to an unknown topic create it
	// (if the brokers allow it). Default false: in production topics are
	// provisioned; the dev broker turns this on.
	AllowAutoTopicCreation bool

	// TopicErrorTTL is how long a topic found missing or not authorised
	// stays so: records to it are dead-lettered at once, without asking
	// the brokers again. Default 10 s; a negative value caches nothing. A
	// topic created (or an ACL granted) meanwhile is used at most this
	// long later.
	TopicErrorTTL time.Duration

	// Observer receives the outcome of every write, for metrics. Optional
	// (nil: none). It is wiring, not a setting read from files.
	Observer Observer
}

// DefaultConfig returns the configuration with every default filled in for
// the given brokers.
func DefaultConfig(brokers ...string) Config {
	return Config{Brokers: brokers}.withDefaults()
}

// withDefaults returns c with each zero field set to its default.
func (c Config) withDefaults() Config {
	if c.ClientID == "" {
		c.ClientID = DefaultClientID
	}
	if c.DefaultTopic == "" {
		c.DefaultTopic = DefaultTopic
	}
	if c.DLQTopic == "" {
		c.DLQTopic = DefaultDLQTopic
	}
	if c.Compression == "" {
		c.Compression = DefaultCompression
	}
	if c.Linger == 0 {
		c.Linger = DefaultLinger
	}
	if c.BatchMaxBytes == 0 {
		c.BatchMaxBytes = DefaultBatchMaxBytes
	}
	if c.MaxBufferedRecords == 0 {
		c.MaxBufferedRecords = DefaultMaxBufferedRecords
	}
	if c.DeliveryTimeout == 0 {
		c.DeliveryTimeout = DefaultDeliveryTimeout
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.TopicErrorTTL == 0 {
		c.TopicErrorTTL = DefaultTopicErrorTTL
	}
	if c.Acks == "" {
		c.Acks = AcksAll
	}
	return c
}

// clientOpts returns the producer options that follow from Security, Acks
// and the partitioner; NewSink adds them to its own.
func (c Config) clientOpts() []kgo.Opt {
	opts := c.Security.opts()
	if c.Acks == AcksLeader {
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	}
	// franz-go's default, spelled out because the contract depends on it:
	// keyed records go to murmur2(key) mod partitions, as the Java client's
	// default partitioner does; unkeyed records fill 64 KiB sticky batches.
	opts = append(opts, kgo.RecordPartitioner(kgo.UniformBytesPartitioner(64<<10, true, true, nil)))
	return opts
}

// Validate reports a configuration NewSink would reject. Zero fields are
// taken as their defaults.
func (c Config) Validate() error {
	c = c.withDefaults()
	if len(c.Brokers) == 0 {
		return &ConfigError{Field: "Brokers", Reason: "at least one broker is required"}
	}
	for _, b := range c.Brokers {
		if err := validBroker(b); err != nil {
			return &ConfigError{Field: "Brokers", Reason: err.Error()}
		}
	}
	if c.DefaultTopic == c.DLQTopic {
		return &ConfigError{Field: "DLQTopic", Reason: fmt.Sprintf("must differ from DefaultTopic %q", c.DefaultTopic)}
	}
	for _, t := range [...]struct{ field, name string }{{"DefaultTopic", c.DefaultTopic}, {"DLQTopic", c.DLQTopic}} {
		if err := validTopic(t.name); err != nil {
			return &ConfigError{Field: t.field, Reason: err.Error()}
		}
	}
	if _, err := codec(c.Compression); err != nil {
		return &ConfigError{Field: "Compression", Reason: err.Error()}
	}
	if c.BatchMaxBytes < 1024 {
		return &ConfigError{Field: "BatchMaxBytes", Reason: fmt.Sprintf("%d is below 1 KiB", c.BatchMaxBytes)}
	}
	if c.MaxBufferedRecords < 0 {
		return &ConfigError{Field: "MaxBufferedRecords", Reason: "must be positive"}
	}
	if c.DeliveryTimeout < 100*time.Millisecond {
		return &ConfigError{Field: "DeliveryTimeout", Reason: fmt.Sprintf("%v is below 100ms", c.DeliveryTimeout)}
	}
	if c.Linger >= c.DeliveryTimeout {
		return &ConfigError{Field: "Linger", Reason: fmt.Sprintf("%v must be below DeliveryTimeout %v", c.Linger, c.DeliveryTimeout)}
	}
	if c.DialTimeout < 0 {
		return &ConfigError{Field: "DialTimeout", Reason: "must be positive"}
	}
	if c.Acks != AcksAll && c.Acks != AcksLeader {
		return &ConfigError{Field: "Acks", Reason: fmt.Sprintf("%q: want all or leader", c.Acks)}
	}
	return c.Security.SASL.validate()
}

// validBroker checks a "host:port" seed.
func validBroker(b string) error {
	i := strings.LastIndexByte(b, ':')
	if b == "" || i <= 0 || i == len(b)-1 {
		return fmt.Errorf("broker %q is not host:port", b)
	}
	return nil
}

// validTopic checks a Kafka topic name: 1–249 characters of [a-zA-Z0-9._-].
func validTopic(t string) error {
	if err := checkTopicName(t); err != nil {
		return fmt.Errorf("invalid topic name %q: %w", t, err)
	}
	return nil
}

// codec maps a Compression name to the franz-go codec.
func codec(name string) (kgo.CompressionCodec, error) {
	switch strings.ToLower(name) {
	case "none":
		return kgo.NoCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	default:
		return kgo.CompressionCodec{}, fmt.Errorf("unknown codec %q (want none, gzip, snappy, lz4 or zstd)", name)
	}
}
