package gateway

import (
	"bytes"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/valyala/fasthttp"
)

// CORS: which browser pages may post events.
//
// Origins come from cors.origins (every tenant) and tenants[].cors.origins
// (that tenant's keys, instead). A request's allowed origins depend on its
// tenant, which is known only once its key is: a preflight (OPTIONS) carries
// no Authorization or X-API-Key header, so
//
//   - a preflight whose URL names a key (?api_key=KEY) is answered with
//     that key's tenant's origins;
//   - any other preflight, and any answer given before the key is known
//     (401, 405), uses the union of every tenant's origins and
//     cors.origins: an origin that some tenant allows may send the request,
//     and the browser may read why it was refused;
//   - once the key is known, its tenant's origins decide: an origin they do
//     not allow gets 403 and no CORS headers, before anything is read or
//     written; a tenant without origins (none of its own, no cors.origins)
//     serves any origin as without CORS (no headers, no check).
//
// Credentials (cookies) are never allowed: keys travel in headers, the
// query or Basic auth, which CORS does not count as credentials.

// corsAllowHeaders are the request headers a preflight allows.
const corsAllowHeaders = "content-type, content-encoding, authorization, x-api-key, idempotency-key"

// corsExposeHeaders are the response headers a page's script may read
// besides the CORS-safelisted ones (Retry-After is not one).
const corsExposeHeaders = "Retry-After, Idempotent-Replayed"

// originSet is a set of allowed origins: exact origins, wildcard
// subdomains (https://*.example.com) and "*" (any).
type originSet struct {
	any   bool
	exact map[string]struct{}
	wild  []wildOrigin
}

// wildOrigin is https://*.example.com[:port]: scheme "https://", suffix
// ".example.com", port ":port" or empty.
type wildOrigin struct{ scheme, suffix, port []byte }

// parseOrigin normalises one configured origin: "*", or
// scheme://host[:port] (lowercase; the scheme's default port dropped, as
// browsers serialise it), where the host may start with "*." for its
// subdomains.
func parseOrigin(o string) (string, error) {
	if o == "*" {
		return o, nil
	}
	u, err := url.Parse(o)
	if err != nil || u.Scheme == "" || u.Host == "" || u.Opaque != "" || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("origin %q: want scheme://host[:port] (no path), https://*.example.com for subdomains, or *", o)
	}
	scheme, host, port := strings.ToLower(u.Scheme), strings.ToLower(u.Hostname()), u.Port()
	if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		port = ""
	}
	if strings.Contains(host, "*") && (!strings.HasPrefix(host, "*.") || strings.Count(host, "*") > 1 || len(host) < 3) {
		return "", fmt.Errorf("origin %q: a wildcard is allowed only as the first label (https://*.example.com)", o)
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	out := scheme + "://" + host
	if port != "" {
		out += ":" + port
	}
	return out, nil
}

// newOriginSet returns the set of origins (already valid: Validate checked
// them), or nil when there are none.
func newOriginSet(origins ...[]string) *originSet {
	s := &originSet{exact: map[string]struct{}{}}
	n := 0
	for _, list := range origins {
		for _, o := range list {
			norm, err := parseOrigin(o)
			if err != nil {
				continue
			}
			n++
			switch {
			case norm == "*":
				s.any = true
			case strings.Contains(norm, "://*."):
				scheme, rest, _ := strings.Cut(norm, "://*")
				w := wildOrigin{scheme: []byte(scheme + "://"), suffix: []byte(rest)}
				if i := strings.LastIndexByte(rest, ':'); i >= 0 {
					w.suffix, w.port = []byte(rest[:i]), []byte(rest[i:])
				}
				s.wild = append(s.wild, w)
			default:
				s.exact[norm] = struct{}{}
			}
		}
	}
	if n == 0 {
		return nil
	}
	return s
}

// allows reports whether origin (a request's Origin header) is in the set.
// A nil set allows nothing.
func (s *originSet) allows(origin []byte) bool {
	if s == nil || len(origin) == 0 {
		return false
	}
	if s.any {
		return true
	}
	if _, ok := s.exact[string(origin)]; ok {
		return true
	}
	for _, w := range s.wild {
		if !bytes.HasPrefix(origin, w.scheme) {
			continue
		}
		host, port := origin[len(w.scheme):], []byte(nil)
		if i := bytes.LastIndexByte(host, ':'); i >= 0 && host[len(host)-1] != ']' {
			host, port = host[:i], host[i:]
		}
		// At least one label before the suffix ("x.example.com", not
		// "example.com"), and a host name: nothing a URL could hide a
		// different host behind ("evil.test/x.example.com").
		if bytes.Equal(port, w.port) && len(host) > len(w.suffix) && bytes.HasSuffix(host, w.suffix) && isHostName(host) {
			return true
		}
	}
	return false
}

// isHostName reports whether b is made of lowercase letters, digits, dots
// and hyphens (a host name as browsers serialise it in an Origin).
func isHostName(b []byte) bool {
	for _, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// corsPolicy is the front door's CORS configuration; nil when no origin is
// configured anywhere (then CORS costs nothing).
type corsPolicy struct {
	// union allows an origin that cors.origins or any tenant allows: the
	// rule before the key is known.
	union  *originSet
	maxAge string // Access-Control-Max-Age, seconds
}

// newCORSPolicy returns the policy of cfg, or nil without origins.
func newCORSPolicy(cfg *Config) *corsPolicy {
	lists := [][]string{cfg.CORS.Origins}
	for _, t := range cfg.Tenants {
		lists = append(lists, t.CORS.Origins)
	}
	u := newOriginSet(lists...)
	if u == nil {
		return nil
	}
	return &corsPolicy{union: u, maxAge: strconv.Itoa(int(cfg.CORS.MaxAge.Seconds()))}
}

// allow adds the headers of an answer to an allowed origin.
func (p *corsPolicy) allow(ctx *fasthttp.RequestCtx, origin []byte) {
	h := &ctx.Response.Header
	h.SetBytesV("Access-Control-Allow-Origin", origin)
	h.Set("Vary", "Origin")
	h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
}

// strip removes what allow added (the tenant turned out not to allow the
// origin).
func (p *corsPolicy) strip(ctx *fasthttp.RequestCtx) {
	h := &ctx.Response.Header
	h.Del("Access-Control-Allow-Origin")
	h.Del("Access-Control-Expose-Headers")
}

// preflight answers OPTIONS /v1/events. A CORS preflight (Origin and
// Access-Control-Request-Method) from an allowed origin gets 204 with the
// Access-Control-* headers; from any other origin 403 without them. An
// OPTIONS that is not a preflight gets 405.
func (s *Server) preflight(ctx *fasthttp.RequestCtx) int {
	origin := ctx.Request.Header.Peek("Origin")
	if len(origin) == 0 || len(ctx.Request.Header.Peek("Access-Control-Request-Method")) == 0 {
		code := writeError(ctx, ErrMethodNotAllowed, 0)
		ctx.Response.Header.Set("Allow", "POST")
		return code
	}
	ctx.Response.Header.Set("Vary", "Origin")
	var set *originSet
	if s.cors != nil {
		set = s.cors.union
		// A key in the URL (a beacon's ?api_key=) names the tenant.
		if len(ctx.URI().QueryString()) > 0 {
			if key := ctx.QueryArgs().Peek("api_key"); len(key) > 0 {
				if k := s.lookupKey(key); k != nil {
					set = k.t.origins
				}
			}
		}
	}
	if !set.allows(origin) {
		return writeError(ctx, ErrOriginNotAllowed, 0)
	}
	h := &ctx.Response.Header
	h.SetBytesV("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Allow-Methods", "POST")
	h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
	h.Set("Access-Control-Max-Age", s.cors.maxAge)
	if bytes.EqualFold(ctx.Request.Header.Peek("Access-Control-Request-Private-Network"), []byte("true")) {
		h.Set("Access-Control-Allow-Private-Network", "true")
	}
	ctx.SetStatusCode(fasthttp.StatusNoContent)
	return fasthttp.StatusNoContent
}
