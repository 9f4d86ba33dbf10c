package gateway

import (
	"bytes"
	"fmt"
	"net/netip"
	"time"

	"github.com/sluicehq/sluice/engine"
	"github.com/valyala/fasthttp"
)

// Record headers the front door adds.
const (
	// HeaderIdempotencyKey carries a request's Idempotency-Key on each of
	// its records, for consumers to deduplicate across instances.
	HeaderIdempotencyKey = "idempotency-key"
	// HeaderReceivedAt is when sluice received the request (RFC 3339, UTC,
	// milliseconds), with --record-metadata.
	HeaderReceivedAt = "sluice-received-at"
	// HeaderClientIP is the client's address, with --record-metadata.
	HeaderClientIP = "sluice-client-ip"
	// HeaderTenant is the tenant of the request's API key ("default" for
	// the keys of api_keys and open ingest), with --record-metadata.
	HeaderTenant = "sluice-tenant"
)

// receivedAtLayout is RFC 3339 with milliseconds, in UTC.
const receivedAtLayout = "2006-01-02T15:04:05.000Z07:00"

// parsePrefix parses a trusted proxy: a CIDR, or one address.
func parsePrefix(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q: want a CIDR (10.0.0.0/8, fd00::/8) or an address", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// proxySet is the trusted proxies.
type proxySet []netip.Prefix

// newProxySet parses the prefixes (already valid: Validate checked them).
func newProxySet(list []string) proxySet {
	var s proxySet
	for _, p := range list {
		if pp, err := parsePrefix(p); err == nil {
			s = append(s, pp)
		}
	}
	return s
}

func (s proxySet) trusted(a netip.Addr) bool {
	for _, p := range s {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// clientAddr is the client of a request: the connection's peer, or, when
// that peer is a trusted proxy, the nearest X-Forwarded-For hop (walking
// from the right, the last appended) that is not itself trusted. When
// every hop is trusted it is the leftmost; a hop that is not an address
// ends the walk at the trusted hop that reported it.
func (s proxySet) clientAddr(ctx *fasthttp.RequestCtx) netip.Addr {
	peer, _ := netip.AddrFromSlice(ctx.RemoteIP())
	peer = peer.Unmap()
	if len(s) == 0 || !s.trusted(peer) {
		return peer
	}
	addr := peer
	vals := ctx.Request.Header.PeekAll("X-Forwarded-For")
	for i := len(vals) - 1; i >= 0; i-- {
		v := vals[i]
		for len(v) > 0 {
			hop := v
			if j := bytes.LastIndexByte(v, ','); j >= 0 {
				hop, v = v[j+1:], v[:j]
			} else {
				v = nil
			}
			hop = bytes.TrimSpace(hop)
			if len(hop) == 0 {
				continue
			}
			a, ok := parseHop(hop)
			if !ok {
				return addr
			}
			if !s.trusted(a) {
				return a
			}
			addr = a
		}
	}
	return addr
}

// parseHop parses one X-Forwarded-For entry: an address, with a port
// ("1.2.3.4:80", "[::1]:80") or in brackets.
func parseHop(b []byte) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(string(b)); err == nil {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(string(b)); err == nil {
		return ap.Addr().Unmap(), true
	}
	if len(b) > 2 && b[0] == '[' && b[len(b)-1] == ']' {
		if a, err := netip.ParseAddr(string(b[1 : len(b)-1])); err == nil {
			return a.Unmap(), true
		}
	}
	return netip.Addr{}, false
}

// requestHeaders returns the record headers of one request: its
// Idempotency-Key (nil: none) and, with metadata, when it was received,
// its client and its tenant. Every record of the request shares the slice
// (stages copy headers before they change them).
func (s *Server) requestHeaders(ctx *fasthttp.RequestCtx, t *tenant, idemKey []byte, received time.Time) []engine.Header {
	if idemKey == nil && !s.cfg.RecordMetadata {
		return nil
	}
	h := make([]engine.Header, 0, 4)
	if idemKey != nil {
		h = append(h, engine.Header{Key: HeaderIdempotencyKey, Value: bytes.Clone(idemKey)})
	}
	if s.cfg.RecordMetadata {
		ip := s.proxies.clientAddr(ctx)
		h = append(h,
			engine.Header{Key: HeaderReceivedAt, Value: received.UTC().AppendFormat(make([]byte, 0, 24), receivedAtLayout)},
			engine.Header{Key: HeaderClientIP, Value: ip.AppendTo(make([]byte, 0, 16))},
			engine.Header{Key: HeaderTenant, Value: []byte(t.label)},
		)
	}
	return h
}
