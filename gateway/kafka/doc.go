// Package kafka is sluice's Kafka shell: the Sink that writes batches to
// Kafka, the Source that reads a consumer group (Kafka → transforms →
// Kafka), and the DevBroker that embeds a Kafka-protocol broker for
// `sluice run --dev` and tests. It is built on franz-go (kgo, kadm, kfake);
// no franz-go type appears in its API.
//
// # Sink: the delivery contract
//
// Sink implements engine.RecordSink and engine.DLQSink. Records enter via
// Write (topic = Record.Topic or Config.DefaultTopic) and dead letters via
// WriteDLQ (to Config.DLQTopic with the headers sluice-reason, sluice-stage
// and sluice-topic). The producer runs with acks=all and idempotence
// (Config.Acks "leader" trades both for latency). Keyed records go to the
// partition the Java client's default partitioner picks (murmur2).
//
// Write produces every record asynchronously and waits for all of them:
//
//   - nil means Kafka acknowledged every record with acks=all; the engine
//     may commit the batch (for HTTP: answer 200).
//   - An *engine.RecordErrors lists records that failed for a reason of
//     their own or of their topic, each with a *RecordError (invalid topic
//     name, unknown topic, record too large, topic not authorised, invalid
//     record, with the broker's error); every other record was
//     acknowledged. The engine dead-letters the listed records and commits.
//     Topic names are checked before producing, a topic not seen before is
//     looked up once, and a missing or refused topic is remembered for
//     Config.TopicErrorTTL. A batch the broker refused for one bad record
//     is re-produced in halves until only the bad records fail.
//   - Any other error (*WriteError: how many failed, the first cause) means
//     the batch is not written as a whole. The engine must not commit it;
//     the gateway answers the affected requests with a 5xx and clients
//     retry. Records that did get through become duplicates on retry:
//     delivery is at-least-once, never at-most-once.
//   - An outage surfaces as an error within about Config.DeliveryTimeout
//     (ErrDeliveryTimeout, or the last connection error), never as a hang.
//
// WriteDLQ has no per-record outcome: any dead letter it cannot write fails
// the call (*WriteError), so the engine stops before the commit.
//
// Records keep their order within a partition (same key, same partition).
// The producer never blocks in its promise callbacks, and a steady stream of
// writes allocates nothing per record beyond franz-go's own bookkeeping.
//
// NewSink fails at start with an *UnreachableError naming the brokers when
// none answers; Ping serves readiness probes.
//
// # Security
//
// Config.Security and SourceConfig.Security hold TLS (NewTLSConfig: a CA
// bundle, a client certificate for mutual TLS, a server name) and SASL
// (PLAIN, SCRAM-SHA-256/512, OAUTHBEARER from a token file read per
// session, AWS MSK IAM from the standard AWS environment variables),
// through franz-go's pkg/sasl. Passwords are Secrets: they format as
// "[redacted]" everywhere. AuthFailure turns a failed login or TLS
// handshake into an *AuthError (ErrAuth) that names the mechanism, so a
// wrong password is not reported as unreachable brokers.
//
// # Metrics hooks
//
// The package imports no metrics library. Config.Observer receives one
// WriteStats per Write and WriteDLQ (records, failed records, bytes,
// latency from first produce to last ack, the error); the gateway turns it
// into sluice_kafka_* counters and a latency histogram. Source.Stats
// reports records received and commits.
//
// # Source
//
// Source implements engine.Receiver[Offset] on a consumer group with
// manual, ordered commits: a rebalance cannot revoke a partition while
// records polled from it are still on their way through the engine, and
// Commit writes the offsets synchronously before the source lets a
// rebalance proceed. What was never committed is read again by the next
// owner (at-least-once).
//
// # DevBroker
//
// DevBroker is one in-process kfake broker on a loopback address, topics
// auto-created, optionally persisted to a directory. Any Kafka client
// (kcat, kgo, librdkafka) can use it.
package kafka
