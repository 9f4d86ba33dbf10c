package kafka

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/aws"
	"github.com/twmb/franz-go/pkg/sasl/oauth"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// SASL mechanisms of SASL.Mechanism.
const (
	SASLNone        = "none"
	SASLPlain       = "plain"
	SASLScramSHA256 = "scram-sha-256"
	SASLScramSHA512 = "scram-sha-512"
	SASLOAuthBearer = "oauthbearer"
	SASLAWSMSKIAM   = "aws-msk-iam"
)

// The standard AWS environment variables an aws-msk-iam client reads.
const (
	envAWSAccessKeyID     = "AWS_ACCESS_KEY_ID"
	envAWSSecretAccessKey = "AWS_SECRET_ACCESS_KEY"
	envAWSSessionToken    = "AWS_SESSION_TOKEN"
)

// Security is how a client connects to the brokers and authenticates:
// TLS and SASL. The zero value is plaintext without authentication. The
// Sink and the Source share it. Build it with NewSecurity so that
// AuthFailure can also recognise a broker that drops the connection on a
// failed login (instead of answering with an error code).
type Security struct {
	// TLS, when non-nil, wraps every broker connection in TLS with this
	// configuration (NewTLSConfig builds one from files). franz-go sets
	// its ServerName to each broker's host when it is empty.
	TLS *tls.Config

	// SASL authenticates every connection (after TLS, if any).
	SASL SASL

	watch *authWatch // shared by the copies of one NewSecurity
}

// NewSecurity returns the Security of tlsConfig (nil: plaintext) and s.
func NewSecurity(tlsConfig *tls.Config, s SASL) Security {
	return Security{TLS: tlsConfig, SASL: s, watch: &authWatch{}}
}

// authWatch is a kgo hook that remembers the last failed read of a
// SASLAuthenticate response: a broker that refuses a login may close the
// connection instead of answering with SASL_AUTHENTICATION_FAILED.
type authWatch struct {
	last atomic.Pointer[error]
}

var _ kgo.HookBrokerRead = (*authWatch)(nil)

// OnBrokerRead implements kgo.HookBrokerRead.
func (w *authWatch) OnBrokerRead(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if err != nil && key == kmsg.SASLAuthenticate.Int16() {
		w.last.Store(&err)
	}
}

// failed returns the last SASL read failure (nil: none).
func (w *authWatch) failed() error {
	if w == nil {
		return nil
	}
	if p := w.last.Load(); p != nil {
		return *p
	}
	return nil
}

// SASL is a SASL login.
type SASL struct {
	// Mechanism is one of "" or SASLNone (no SASL), SASLPlain,
	// SASLScramSHA256, SASLScramSHA512, SASLOAuthBearer, SASLAWSMSKIAM.
	Mechanism string

	// User is the user of plain and scram-*.
	User string

	// Password is the password of plain and scram-*. It never appears in
	// logs or errors (Secret).
	Password Secret

	// TokenFile holds the OAUTHBEARER token. It is read again for every
	// new session (connection), so a token rotated on disk is picked up.
	TokenFile string
}

// Secret is a string that formats as "[redacted]": in logs (slog), fmt,
// JSON and YAML. Use string(s) where the value itself is needed.
type Secret string

// String implements fmt.Stringer.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "[redacted]"
}

// GoString implements fmt.GoStringer (%#v).
func (s Secret) GoString() string { return `"` + s.String() + `"` }

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText implements encoding.TextMarshaler (JSON, YAML).
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// MechanismName returns the SASL mechanism's name as Kafka spells it
// ("SCRAM-SHA-512"), "" for none.
func (s SASL) MechanismName() string {
	switch strings.ToLower(s.Mechanism) {
	case "", SASLNone:
		return ""
	case SASLAWSMSKIAM:
		return "AWS_MSK_IAM"
	default:
		return strings.ToUpper(s.Mechanism)
	}
}

// validate reports a login that cannot work, without I/O.
func (s SASL) validate() error {
	switch strings.ToLower(s.Mechanism) {
	case "", SASLNone:
	case SASLPlain, SASLScramSHA256, SASLScramSHA512:
		if s.User == "" || s.Password == "" {
			return &ConfigError{Field: "SASL", Reason: fmt.Sprintf("%s needs a user and a password", s.Mechanism)}
		}
	case SASLOAuthBearer:
		if s.TokenFile == "" {
			return &ConfigError{Field: "SASL", Reason: "oauthbearer needs a token file"}
		}
	case SASLAWSMSKIAM:
	default:
		return &ConfigError{Field: "SASL", Reason: fmt.Sprintf("unknown mechanism %q (want none, plain, scram-sha-256, scram-sha-512, oauthbearer or aws-msk-iam)", s.Mechanism)}
	}
	return nil
}

// mechanism returns the franz-go mechanism (nil for none).
func (s SASL) mechanism() sasl.Mechanism {
	user, pass := s.User, string(s.Password)
	switch strings.ToLower(s.Mechanism) {
	case SASLPlain:
		return plain.Auth{User: user, Pass: pass}.AsMechanism()
	case SASLScramSHA256:
		return scram.Auth{User: user, Pass: pass}.AsSha256Mechanism()
	case SASLScramSHA512:
		return scram.Auth{User: user, Pass: pass}.AsSha512Mechanism()
	case SASLOAuthBearer:
		file := s.TokenFile
		return oauth.Oauth(func(context.Context) (oauth.Auth, error) {
			b, err := os.ReadFile(file)
			if err != nil {
				return oauth.Auth{}, fmt.Errorf("read the OAUTHBEARER token file: %w", err)
			}
			tok := strings.TrimSpace(string(b))
			if tok == "" {
				return oauth.Auth{}, fmt.Errorf("the OAUTHBEARER token file %s is empty", file)
			}
			return oauth.Auth{Token: tok}, nil
		})
	case SASLAWSMSKIAM:
		return aws.ManagedStreamingIAM(func(context.Context) (aws.Auth, error) {
			a := aws.Auth{
				AccessKey:    os.Getenv(envAWSAccessKeyID),
				SecretKey:    os.Getenv(envAWSSecretAccessKey),
				SessionToken: os.Getenv(envAWSSessionToken),
			}
			if a.AccessKey == "" || a.SecretKey == "" {
				return aws.Auth{}, fmt.Errorf("aws-msk-iam needs %s and %s in the environment", envAWSAccessKeyID, envAWSSecretAccessKey)
			}
			return a, nil
		})
	}
	return nil
}

// opts returns the client options of s.
func (s Security) opts() []kgo.Opt {
	var opts []kgo.Opt
	if s.TLS != nil {
		opts = append(opts, kgo.DialTLSConfig(s.TLS.Clone()))
	}
	if m := s.SASL.mechanism(); m != nil {
		opts = append(opts, kgo.SASL(m))
		if s.watch != nil {
			opts = append(opts, kgo.WithHooks(s.watch))
		}
	}
	return opts
}

// String describes the connection for logs: "tls, SASL SCRAM-SHA-512 as
// user", never a secret.
func (s Security) String() string {
	var parts []string
	if s.TLS != nil {
		p := "tls"
		if s.TLS.InsecureSkipVerify {
			p += " (certificates NOT verified)"
		}
		if len(s.TLS.Certificates) > 0 || s.TLS.GetClientCertificate != nil {
			p += " with a client certificate"
		}
		parts = append(parts, p)
	} else {
		parts = append(parts, "plaintext")
	}
	if m := s.SASL.MechanismName(); m != "" {
		p := "SASL " + m
		if s.SASL.User != "" {
			p += " as " + s.SASL.User
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, ", ")
}

// TLSFiles names the files and settings of a TLS client configuration.
type TLSFiles struct {
	// CAFile is a PEM bundle of the CAs that sign the brokers'
	// certificates. Empty: the system roots.
	CAFile string
	// CertFile and KeyFile are the client's PEM certificate and key
	// (mutual TLS). Both or neither.
	CertFile, KeyFile string
	// ServerName overrides the name the brokers' certificates are checked
	// against. Empty: each broker's host.
	ServerName string
	// InsecureSkipVerify accepts any broker certificate. For tests only:
	// it gives up the protection TLS exists for.
	InsecureSkipVerify bool
}

// NewTLSConfig reads the files of f into a TLS client configuration
// (TLS 1.2 at least).
func NewTLSConfig(f TLSFiles) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: f.ServerName, InsecureSkipVerify: f.InsecureSkipVerify} //nolint:gosec // the operator's explicit choice, warned at start
	if f.CAFile != "" {
		pem, err := os.ReadFile(f.CAFile)
		if err != nil {
			return nil, fmt.Errorf("kafka: TLS CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("kafka: TLS CA file %s holds no PEM certificate", f.CAFile)
		}
		c.RootCAs = pool
	}
	if (f.CertFile == "") != (f.KeyFile == "") {
		return nil, errors.New("kafka: a TLS client certificate needs both its certificate and its key file")
	}
	if f.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("kafka: TLS client certificate: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// ErrAuth is returned (wrapped in an *AuthError) when the brokers refused
// the client's SASL login or its TLS handshake failed.
var ErrAuth = errors.New("kafka: authentication failed")

// AuthError says the client could not authenticate to the brokers: SASL
// (wrong user or password, unknown mechanism) or TLS (an untrusted or
// mismatched certificate). Retrying does not help until the configuration
// or the credentials change. It matches ErrAuth with errors.Is.
type AuthError struct {
	// Mechanism is the SASL mechanism ("SCRAM-SHA-512"), "" when TLS failed
	// without SASL.
	Mechanism string
	// TLS is true when the TLS handshake failed.
	TLS bool
	// Err is the broker's or the TLS stack's error.
	Err error
}

// Error implements error.
func (e *AuthError) Error() string {
	if e.TLS {
		return fmt.Sprintf("kafka: TLS handshake with the brokers failed (check --kafka-tls-ca, --kafka-tls-server-name and the client certificate): %v", e.Err)
	}
	return fmt.Sprintf("kafka: SASL authentication failed (mechanism %s; check --kafka-sasl-user and the password or token): %v", e.Mechanism, e.Err)
}

// Unwrap returns ErrAuth and the cause.
func (e *AuthError) Unwrap() []error { return []error{ErrAuth, e.Err} }

// AuthFailure returns err as an *AuthError when it is an authentication
// failure of a client configured with s (a SASL error from the brokers, a
// TLS certificate error), else err unchanged. NewSink and NewSource report
// unreachable brokers as an *UnreachableError; this tells the operator
// which of the two it really is.
func AuthFailure(err error, s Security) error {
	if err == nil {
		return nil
	}
	var ae *AuthError
	if errors.As(err, &ae) {
		return err
	}
	for _, k := range []error{kerr.SaslAuthenticationFailed, kerr.UnsupportedSaslMechanism, kerr.IllegalSaslState} {
		if errors.Is(err, k) {
			return &AuthError{Mechanism: s.SASL.MechanismName(), Err: err}
		}
	}
	if s.SASL.MechanismName() != "" {
		if werr := s.watch.failed(); werr != nil {
			return &AuthError{Mechanism: s.SASL.MechanismName(), Err: fmt.Errorf("the broker closed the connection during the SASL exchange (%v): %w", werr, err)}
		}
	}
	var (
		unknownCA *x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
		verify    *tls.CertificateVerificationError
		alert     tls.AlertError
		header    tls.RecordHeaderError
	)
	if errors.As(err, &unknownCA) || errors.As(err, &hostname) || errors.As(err, &invalid) ||
		errors.As(err, &verify) || errors.As(err, &alert) ||
		(s.TLS != nil && (errors.As(err, &header) || strings.Contains(err.Error(), "remote error: tls:"))) {
		return &AuthError{Mechanism: s.SASL.MechanismName(), TLS: true, Err: err}
	}
	return err
}
