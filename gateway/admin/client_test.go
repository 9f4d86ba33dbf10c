package admin_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// adminClient talks to an admin API (in process or the real binary).
type adminClient struct {
	c     *fasthttp.Client
	base  string
	token string
}

type result struct {
	status int
	body   []byte
	allow  string
}

func (a *adminClient) do(tb testing.TB, method, path string, body []byte, hdr ...string) result {
	tb.Helper()
	return a.doToken(tb, a.token, method, path, body, hdr...)
}

func (a *adminClient) doToken(tb testing.TB, token, method, path string, body []byte, hdr ...string) result {
	tb.Helper()
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(a.base + path)
	req.Header.SetMethod(method)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	if body != nil {
		req.SetBody(body)
	}
	if err := a.c.DoTimeout(req, resp, 60*time.Second); err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	return result{status: resp.StatusCode(), body: append([]byte(nil), resp.Body()...), allow: string(resp.Header.Peek("Allow"))}
}

// json decodes the body into v, failing the test on error.
func (r result) json(tb testing.TB, v any) {
	tb.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		tb.Fatalf("decode %q: %v", r.body, err)
	}
}

// want fails the test unless the status is status.
func (r result) want(tb testing.TB, status int, what string) result {
	tb.Helper()
	if r.status != status {
		tb.Fatalf("%s: status %d, want %d: %s", what, r.status, status, r.body)
	}
	return r
}

// errMsg returns the "error" of a JSON error body.
func (r result) errMsg(tb testing.TB) string {
	tb.Helper()
	var e struct {
		Error  string `json:"error"`
		Status int    `json:"status"`
	}
	r.json(tb, &e)
	if e.Status != r.status || e.Error == "" {
		tb.Fatalf("error body %q does not match status %d", r.body, r.status)
	}
	return e.Error
}

// transformJSON is TransformInfo as the API writes it.
type transformJSON struct {
	Name       string    `json:"name"`
	Digest     string    `json:"digest"`
	Size       int64     `json:"size"`
	ABIVersion int       `json:"abi_version"`
	Exports    []string  `json:"exports"`
	Version    int       `json:"version"`
	Versions   []int     `json:"versions"`
	Created    time.Time `json:"created"`
	UsedBy     []string  `json:"used_by"`
	Calls      uint64    `json:"calls"`
	Records    uint64    `json:"records"`
	Traps      uint64    `json:"traps"`
	PeakMemory uint64    `json:"peak_memory_bytes"`
}

// dryRunJSON is a dry-run result as the API writes it.
type dryRunJSON struct {
	Transforms []string `json:"transforms"`
	Summary    struct {
		Events, Kept, Dropped, DeadLettered, FannedOut, RecordsOut int
	} `json:"summary"`
	Events []struct {
		Index      int     `json:"index"`
		Decision   string  `json:"decision"`
		Outputs    int     `json:"outputs"`
		Reason     string  `json:"reason"`
		Stage      string  `json:"stage"`
		DurationUS float64 `json:"duration_us"`
	} `json:"events"`
	Records []struct {
		Input   int               `json:"input"`
		Topic   string            `json:"topic"`
		Key     *string           `json:"key"`
		Headers []json.RawMessage `json:"headers"`
		Value   json.RawMessage   `json:"value"`
	} `json:"records"`
	PeakMemoryBytes int64   `json:"peak_memory_bytes"`
	DurationUS      float64 `json:"duration_us"`
}

func (d *dryRunJSON) UnmarshalJSON(b []byte) error {
	type plain dryRunJSON
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	var s struct {
		Summary struct {
			Events       int `json:"events"`
			Kept         int `json:"kept"`
			Dropped      int `json:"dropped"`
			DeadLettered int `json:"dead_lettered"`
			FannedOut    int `json:"fanned_out"`
			RecordsOut   int `json:"records_out"`
		} `json:"summary"`
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	*d = dryRunJSON(p)
	d.Summary.Events, d.Summary.Kept, d.Summary.Dropped = s.Summary.Events, s.Summary.Kept, s.Summary.Dropped
	d.Summary.DeadLettered, d.Summary.FannedOut, d.Summary.RecordsOut = s.Summary.DeadLettered, s.Summary.FannedOut, s.Summary.RecordsOut
	return nil
}
