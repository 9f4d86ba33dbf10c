package gateway

import (
	"fmt"
	"io"
	"net"
	"os"
	"strings"
)

// devBanner is what `sluice run --dev` prints once it listens: how to
// ingest, read the metrics, call the admin API and consume with kcat. It
// prints the admin token only when sluice generated it: a token the user
// supplied is a secret that may be in use elsewhere, and terminals and
// logs keep what they show, so the banner says where it came from instead.
type devBanner struct {
	httpAddr, adminAddr string
	adminToken          string // generated: printed
	tokenFrom           string // where the user's token came from ("" = generated)
	brokerAddr          string // "" without the embedded broker
	topic, dlqTopic     string
	httpScheme          string // "http" or "https" (--tls-cert)
	adminScheme         string // "http" or "https" (--admin-tls-cert)
}

// write prints the banner to w.
func (b devBanner) write(w io.Writer) {
	var s strings.Builder
	fmt.Fprintf(&s, "\nsluice is running (dev mode)\n\n")
	hs, as := b.httpScheme, b.adminScheme
	if hs == "" {
		hs = "http"
	}
	if as == "" {
		as = "http"
	}
	fmt.Fprintf(&s, "  ingest:  curl -XPOST %s://%s/v1/events -H 'Content-Type: application/json' -d '{\"event\":\"hello\"}'\n", hs, hostPort(b.httpAddr))
	fmt.Fprintf(&s, "  metrics: %s://%s/metrics\n", as, hostPort(b.adminAddr))
	if b.tokenFrom == "" {
		fmt.Fprintf(&s, "  admin:   curl -H 'Authorization: Bearer %s' %s://%s/admin/budget\n", b.adminToken, as, hostPort(b.adminAddr))
		fmt.Fprintf(&s, "  console: %s://%s/ui/#token=%s\n", as, hostPort(b.adminAddr), b.adminToken)
		fmt.Fprintf(&s, "  admin token: %s (generated for this run)\n", b.adminToken)
	} else {
		fmt.Fprintf(&s, "  admin:   curl -H \"Authorization: Bearer $TOKEN\" %s://%s/admin/budget\n", as, hostPort(b.adminAddr))
		fmt.Fprintf(&s, "  console: %s://%s/ui/ (it asks for the token)\n", as, hostPort(b.adminAddr))
		fmt.Fprintf(&s, "  admin token: the one you supplied (%s); not shown\n", b.tokenFrom)
	}
	if b.brokerAddr != "" {
		fmt.Fprintf(&s, "  kafka:   kcat -b %s -C -t %s -o beginning\n", b.brokerAddr, b.topic)
		fmt.Fprintf(&s, "  dlq:     kcat -b %s -C -t %s -o beginning -f '%%h %%s\\n'\n", b.brokerAddr, b.dlqTopic)
	}
	s.WriteString("\n")
	_, _ = io.WriteString(w, s.String())
}

// printDevBanner prints the banner to stdout (stderr with the stdout sink,
// to keep stdout pure NDJSON).
func (a *App) printDevBanner() {
	b := devBanner{
		httpAddr: a.HTTPAddr(), adminAddr: a.AdminAddr(), topic: a.cfg.Topic, dlqTopic: a.cfg.DLQTopic,
	}
	if a.tokenGenerated {
		b.adminToken = a.cfg.AdminToken
	} else {
		b.tokenFrom = a.cfg.adminTokenFrom
		if b.tokenFrom == "" {
			b.tokenFrom = "the configuration"
		}
	}
	if a.broker != nil {
		b.brokerAddr = a.broker.Addr()
	}
	if a.server.tls != nil {
		b.httpScheme = "https"
	}
	if a.admin.tls != nil {
		b.adminScheme = "https"
	}
	w := a.stdout
	if a.cfg.Sink == SinkStdout {
		w = os.Stderr
	}
	b.write(w)
}

// hostPort makes a listen address usable in a URL (":8080" → "127.0.0.1:8080").
func hostPort(addr string) string {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if h == "" || h == "::" || h == "0.0.0.0" {
		h = "127.0.0.1"
	}
	return net.JoinHostPort(h, p)
}
