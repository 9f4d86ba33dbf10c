package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// Response is an HTTP response read whole.
type Response struct {
	// Code is the status code.
	Code int
	// Header is the response header.
	Header http.Header
	// Body is the whole body.
	Body []byte
}

// Do sends one request with c and reads the whole response; headers
// alternate names and values. When reading the body fails, the response
// read so far is returned with the error.
func Do(c *http.Client, method, url string, body []byte, headers ...string) (Response, error) {
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		return Response{}, err
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := c.Do(req)
	if err != nil {
		return Response{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return Response{Code: res.StatusCode, Header: res.Header, Body: b}, err
}

// ParseMetrics returns every sample of a Prometheus text exposition by its
// full name (with labels); comments and blank lines are skipped.
func ParseMetrics(text []byte) (map[string]float64, error) {
	out := map[string]float64{}
	for l := range strings.SplitSeq(string(text), "\n") {
		if l == "" || l[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(l, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(l[i+1:], 64)
		if err != nil {
			return nil, fmt.Errorf("metric line %q: %w", l, err)
		}
		out[l[:i]] = v
	}
	return out, nil
}

// ReadMetrics GETs url with c and parses it with ParseMetrics. It does not
// touch a testing.TB, so goroutines may call it.
func ReadMetrics(c *http.Client, url string) (map[string]float64, error) {
	r, err := Do(c, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	if r.Code != http.StatusOK {
		return nil, fmt.Errorf("GET %s: status %d: %s", url, r.Code, r.Body)
	}
	return ParseMetrics(r.Body)
}

// Metrics is ReadMetrics of p's admin /metrics with c, failing the test on
// an error.
func (p *Proc) Metrics(tb testing.TB, c *http.Client) map[string]float64 {
	tb.Helper()
	m, err := ReadMetrics(c, p.AdminURL("/metrics"))
	if err != nil {
		tb.Fatal(err)
	}
	return m
}
