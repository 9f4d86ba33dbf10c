package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/sluicehq/sluice/gateway/kafka"
)

// kafkaSecurity builds the brokers' connection security from the options:
// it reads the CA bundle, the client certificate and the password file, so
// a missing or unreadable file fails the start with its name.
func kafkaSecurity(o *KafkaOptions) (kafka.Security, error) {
	s := kafka.SASL{Mechanism: o.SASL, User: o.SASLUser, Password: o.SASLPassword, TokenFile: o.SASLTokenFile}
	if o.SASLPasswordFile != "" {
		b, err := os.ReadFile(o.SASLPasswordFile)
		if err != nil {
			return kafka.Security{}, fmt.Errorf("kafka: SASL password file: %w", err)
		}
		s.Password = kafka.Secret(strings.TrimRight(string(b), "\r\n"))
		if s.Password == "" {
			return kafka.Security{}, fmt.Errorf("kafka: SASL password file %s is empty", o.SASLPasswordFile)
		}
	}
	if !o.tlsEnabled() {
		return kafka.NewSecurity(nil, s), nil
	}
	tc, err := kafka.NewTLSConfig(kafka.TLSFiles{
		CAFile: o.TLSCA, CertFile: o.TLSCert, KeyFile: o.TLSKey,
		ServerName: o.TLSServerName, InsecureSkipVerify: o.TLSInsecureSkipVerify,
	})
	if err != nil {
		return kafka.Security{}, err
	}
	return kafka.NewSecurity(tc, s), nil
}

// warnKafka logs how sluice connects to Kafka and warns about the options
// that weaken the guarantees.
func warnKafka(log *slog.Logger, o *KafkaOptions, sec kafka.Security) {
	log.Info("kafka connection", "security", sec.String(), "acks", o.Acks, "compression", o.Compression, "client_id", o.ClientID)
	if o.TLSInsecureSkipVerify {
		log.Warn("kafka: the brokers' TLS certificates are NOT verified (--kafka-tls-insecure-skip-verify): anyone on the network path can read and change the traffic; use --kafka-tls-ca instead")
	}
	if o.Acks == kafka.AcksLeader {
		log.Warn("kafka: --kafka-acks leader: a 200 no longer means the events are replicated; the partition leader's failure can lose acknowledged events, and producer retries may duplicate them")
	}
}

// retryKafka runs connect until it succeeds or wait has passed (wait 0:
// once). Between attempts it reports the failure through waiting (the
// reason /readyz gives) and backs off. The error it returns names an
// authentication failure as such (kafka.AuthFailure).
func retryKafka(ctx context.Context, log *slog.Logger, wait time.Duration, sec kafka.Security, what string, connect func(context.Context) error, waiting func(error)) error {
	deadline := time.Now().Add(wait)
	backoff := 500 * time.Millisecond
	for {
		err := kafka.AuthFailure(connect(ctx), sec)
		if err == nil {
			waiting(nil)
			return nil
		}
		if wait <= 0 || time.Now().Add(backoff).After(deadline) {
			return err
		}
		waiting(err)
		log.Warn("kafka not ready; retrying", "what", what, "err", err, "next_attempt", backoff, "gives_up_in", time.Until(deadline).Round(time.Second))
		select {
		case <-ctx.Done():
			return err
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}
