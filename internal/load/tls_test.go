package load

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// selfSignedPEM returns a certificate and key for 127.0.0.1.
func selfSignedPEM(tb testing.TB) (certPEM, keyPEM []byte) {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

func TestHTTPS(t *testing.T) {
	cert, key := selfSignedPEM(t)
	ln := listen(t)
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {}, Logger: discardLogger{}}
	go srv.ServeTLSEmbed(ln, cert, key)
	t.Cleanup(func() { srv.Shutdown() })

	cfg := testConfig("https://" + ln.Addr().String() + "/v1/events")
	cfg.Requests, cfg.Connections, cfg.EventsPerRequest = 5, 1, 2
	rep := runLoad(t, cfg)
	if rep.Requests.OK != 0 || rep.Errors["other"]+rep.Errors["connection"] != 5 {
		t.Errorf("self-signed certificate accepted without --insecure: status %v errors %v", rep.Status, rep.Errors)
	}
	cfg.Insecure = true
	rep = runLoad(t, cfg)
	if rep.Requests.OK != 5 {
		t.Errorf("--insecure: status %v errors %v %v", rep.Status, rep.Errors, rep.ErrorSamples)
	}
}

// discardLogger drops the server's log lines (the rejected handshakes).
type discardLogger struct{}

func (discardLogger) Printf(string, ...any) {}
