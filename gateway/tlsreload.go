package gateway

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// certReloader serves a listener's certificate and reloads the pair from
// its files: every interval when their contents changed, and on Reload
// (SIGHUP). The pair in use is swapped atomically, so handshakes in
// progress and open connections keep theirs; a new pair that does not load
// (unreadable, not PEM, key not matching, expired) is logged and the
// previous one stays. Safe for concurrent use.
type certReloader struct {
	name              string // the listener: "ingest" or "admin"
	certFile, keyFile string
	log               *slog.Logger
	expiry            *metrics.Gauge // NotAfter of the certificate in use, Unix seconds
	failures          *metrics.Counter

	cur atomic.Pointer[tls.Certificate]

	mu      sync.Mutex // serialises loads
	seen    [sha256.Size]byte
	lastErr string // the last failure logged ("" after a success)

	stop chan struct{}
	done chan struct{}
}

// newCertReloader loads the pair (an error when it does not load) and,
// with interval > 0, checks the files every interval until close.
func newCertReloader(name, certFile, keyFile string, interval time.Duration, m *Metrics, log *slog.Logger) (*certReloader, error) {
	r := &certReloader{name: name, certFile: certFile, keyFile: keyFile, log: log,
		stop: make(chan struct{}), done: make(chan struct{})}
	if m != nil {
		r.expiry, r.failures = m.tlsListener(name)
	}
	if _, err := r.load(true); err != nil {
		return nil, fmt.Errorf("%s TLS certificate: %w", name, err)
	}
	if interval <= 0 {
		close(r.done)
		return r, nil
	}
	go func() {
		defer close(r.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-r.stop:
				return
			case <-t.C:
				_, _ = r.load(false)
			}
		}
	}()
	return r, nil
}

// GetCertificate is the tls.Config hook: the pair in use.
func (r *certReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return r.cur.Load(), nil
}

// tlsConfig returns the listener's TLS configuration (TLS 1.2 and up,
// HTTP/1.1).
func (r *certReloader) tlsConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: r.GetCertificate, NextProtos: []string{"http/1.1"}}
}

// listener wraps ln in TLS with the reloaded certificate.
func (r *certReloader) listener(ln net.Listener) net.Listener {
	return tls.NewListener(ln, r.tlsConfig())
}

// Reload loads the pair again, whether or not the files changed; on
// error the previous pair stays in use.
func (r *certReloader) Reload() error {
	_, err := r.load(true)
	return err
}

// load reads both files and, when force or their contents changed since
// the last attempt, parses the pair and swaps it in. It reports whether it
// swapped.
func (r *certReloader) load(force bool) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	certPEM, err1 := os.ReadFile(r.certFile)
	keyPEM, err2 := os.ReadFile(r.keyFile)
	if err := errors.Join(err1, err2); err != nil {
		return false, r.failed(err, force)
	}
	h := sha256.New()
	h.Write(certPEM)
	h.Write([]byte{0})
	h.Write(keyPEM)
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	if !force && sum == r.seen {
		return false, nil
	}
	r.seen = sum
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return false, r.failed(err, force)
	}
	leaf := pair.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return false, r.failed(err, force)
		}
		pair.Leaf = leaf
	}
	if now := time.Now(); now.After(leaf.NotAfter) {
		return false, r.failed(fmt.Errorf("the certificate expired at %s", leaf.NotAfter.UTC().Format(time.RFC3339)), force)
	}
	r.lastErr = ""
	prev := r.cur.Swap(&pair)
	if r.expiry != nil {
		r.expiry.Set(float64(leaf.NotAfter.Unix()))
	}
	if prev != nil && bytes.Equal(prev.Certificate[0], pair.Certificate[0]) {
		return true, nil
	}
	r.log.Info("TLS certificate loaded", "listener", r.name, "cert", r.certFile, "subject", leaf.Subject.String(),
		"dns_names", leaf.DNSNames, "not_after", leaf.NotAfter.UTC().Format(time.RFC3339), "reload", prev != nil)
	return true, nil
}

// failed logs and counts a failed load — when forced, else once per
// distinct failure, so a check every interval does not repeat it; a
// listener already serving keeps its pair. r.mu is held.
func (r *certReloader) failed(err error, force bool) error {
	err = fmt.Errorf("load %s and %s: %w", r.certFile, r.keyFile, err)
	if r.cur.Load() == nil {
		return err // at start: the caller fails
	}
	if msg := err.Error(); force || msg != r.lastErr {
		r.lastErr = msg
		if r.failures != nil {
			r.failures.Inc()
		}
		r.log.Error("TLS certificate reload failed; keeping the previous certificate", "listener", r.name, "err", err)
	}
	return err
}

// close stops the checks.
func (r *certReloader) close() {
	select {
	case <-r.stop:
	default:
		close(r.stop)
	}
	<-r.done
}
