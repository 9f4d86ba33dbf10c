package admin

import (
	"net/http"
	"sort"
	"strings"

	"github.com/valyala/fasthttp"
)

// HandlerFunc serves one admin route. It writes a success response itself
// and returns an error otherwise; the router writes every error through one
// JSON error writer (writeError). p holds the route's path parameters.
type HandlerFunc func(ctx *fasthttp.RequestCtx, p Params) error

// Route is one method + path pattern of the admin API. A pattern segment
// "{name}" matches one non-empty path segment and is available as
// p.Get("name").
type Route struct {
	// Method is the HTTP method (GET, PUT, POST, DELETE).
	Method string
	// Pattern is the path pattern, e.g. "/admin/transforms/{name}".
	Pattern string
	// Handler serves the route.
	Handler HandlerFunc
	// Public routes skip the bearer-token check (health probes only).
	Public bool
}

// Router is a set of routes: the admin API's own (Handler.Routes) or routes
// another box adds to it.
type Router interface {
	Routes() []Route
}

// Params are a matched route's path parameters.
type Params struct {
	names, values []string
}

// Get returns the value of the parameter name, or "".
func (p Params) Get(name string) string {
	for i, n := range p.names {
		if n == name {
			return p.values[i]
		}
	}
	return ""
}

// mux matches paths to routes. It is built once and read-only afterwards.
type mux struct {
	patterns []*pattern
}

// pattern is one path pattern with its methods.
type pattern struct {
	segs    []string // literal segment, or "{name}"
	methods map[string]Route
	allow   string // sorted, comma-separated methods for 405's Allow
}

func newMux(routes []Route) (*mux, error) {
	m := &mux{}
	byPattern := map[string]*pattern{}
	for _, r := range routes {
		if r.Handler == nil || r.Method == "" || !strings.HasPrefix(r.Pattern, "/") {
			return nil, Invalidf("admin: bad route %s %q", r.Method, r.Pattern)
		}
		p, ok := byPattern[r.Pattern]
		if !ok {
			p = &pattern{segs: splitPath(r.Pattern), methods: map[string]Route{}}
			byPattern[r.Pattern] = p
			m.patterns = append(m.patterns, p)
		}
		if _, dup := p.methods[r.Method]; dup {
			return nil, Invalidf("admin: duplicate route %s %s", r.Method, r.Pattern)
		}
		p.methods[r.Method] = r
	}
	for _, p := range m.patterns {
		ms := make([]string, 0, len(p.methods)+1)
		for k := range p.methods {
			ms = append(ms, k)
		}
		if _, ok := p.methods[http.MethodGet]; ok {
			if _, ok := p.methods[http.MethodHead]; !ok {
				ms = append(ms, http.MethodHead)
			}
		}
		sort.Strings(ms)
		p.allow = strings.Join(ms, ", ")
	}
	// Literal segments win over parameters: "/admin/pipeline/test" must not
	// be shadowed by a "/admin/pipeline/{x}". Sort by specificity.
	sort.SliceStable(m.patterns, func(i, j int) bool {
		return literals(m.patterns[i]) > literals(m.patterns[j])
	})
	return m, nil
}

func literals(p *pattern) int {
	n := 0
	for _, s := range p.segs {
		if !isParam(s) {
			n++
		}
	}
	return n
}

func isParam(seg string) bool {
	return len(seg) > 2 && seg[0] == '{' && seg[len(seg)-1] == '}'
}

// splitPath splits "/a/b/" into ["a", "b"]: one trailing slash is ignored.
func splitPath(path string) []string {
	path = strings.TrimPrefix(path, "/")
	path = strings.TrimSuffix(path, "/")
	if path == "" {
		return nil
	}
	return strings.Split(path, "/")
}

// match finds the pattern of path. It returns nil when no pattern matches.
func (m *mux) match(path string) (*pattern, Params) {
	segs := splitPath(path)
	for _, p := range m.patterns {
		if len(p.segs) != len(segs) {
			continue
		}
		var ps Params
		ok := true
		for i, s := range p.segs {
			if isParam(s) {
				if segs[i] == "" {
					ok = false
					break
				}
				ps.names = append(ps.names, s[1:len(s)-1])
				ps.values = append(ps.values, segs[i])
				continue
			}
			if s != segs[i] {
				ok = false
				break
			}
		}
		if ok {
			return p, ps
		}
	}
	return nil, Params{}
}

// route returns the route for method on p; HEAD falls back to GET.
func (p *pattern) route(method string) (Route, bool) {
	r, ok := p.methods[method]
	if !ok && method == http.MethodHead {
		r, ok = p.methods[http.MethodGet]
	}
	return r, ok
}
