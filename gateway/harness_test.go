package gateway

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/sluicehq/sluice/engine"
	"github.com/sluicehq/sluice/governor"
	"github.com/valyala/fasthttp"
)

// testServer is the front door alone, in process, on 127.0.0.1:0: a real
// fasthttp listener, receiver and governor, no driver. A test resolves the
// queued requests itself (drain: as if the sink accepted everything).
type testServer struct {
	*Server
	url    string
	client *fasthttp.Client
}

// newTestServer starts a front door with lim; keys, if any, are its API
// keys.
func newTestServer(tb testing.TB, lim ServerConfig, keys ...string) *testServer {
	tb.Helper()
	cfg := DefaultConfig()
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.APIKeys = keys
	cfg.Sink = SinkDiscard
	recv := NewReceiver(ReceiverConfig{QueueBytes: 64 << 20, PollTimeout: 10 * time.Millisecond})
	gov, err := governor.New(governor.Config{MemoryLimit: 256 << 20, HeapLimit: -1, Sources: []governor.Source{recv.Fill()}})
	if err != nil {
		tb.Fatal(err)
	}
	s := newServer(&cfg, recv, gov, newMetrics(gaugeFuncs{}), slog.New(slog.NewTextHandler(io.Discard, nil)), func() error { return nil })
	s.setLimits(lim)
	if err := s.listen(); err != nil {
		tb.Fatal(err)
	}
	go func() { _ = s.srv.Serve(s.ln) }()
	tb.Cleanup(func() {
		recv.FailAll(ErrShuttingDown)
		_ = s.srv.Shutdown()
	})
	return &testServer{Server: s, url: "http://" + s.Addr() + "/v1/events", client: &fasthttp.Client{}}
}

// post sends body as NDJSON; headers alternate name, value.
func (s *testServer) post(tb testing.TB, body []byte, headers ...string) (int, string) {
	tb.Helper()
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(s.url)
	req.Header.SetMethod("POST")
	req.Header.SetContentType("application/x-ndjson")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	req.SetBody(body)
	if err := s.client.DoTimeout(req, resp, 30*time.Second); err != nil {
		tb.Error(err)
		return 0, ""
	}
	return resp.StatusCode(), string(resp.Body())
}

// drain receives every queued request and commits it, as a driver whose
// sink accepted everything would.
func (s *testServer) drain(tb testing.TB) {
	tb.Helper()
	for s.recv.QueuedBytes() > 0 || s.recv.Pending() > 0 {
		b, err := s.recv.RecvLimited(context.Background(), engine.RecvLimits{MaxRecords: 1 << 20})
		if err != nil {
			tb.Fatal(err)
		}
		for _, a := range b.Tokens {
			a.written.Add(int64(len(b.Records)))
		}
		if err := s.recv.Commit(context.Background(), b.Tokens); err != nil {
			tb.Fatal(err)
		}
	}
}

// waitUntil polls cond for up to 10 s.
func waitUntil(tb testing.TB, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatal("condition not met within 10s")
		}
		time.Sleep(time.Millisecond)
	}
}

// appendRecord adds a record of value v to o, appending v to o.body (the
// spans index o.body by offset, so it may grow).
func (o *splitOut) appendRecord(v []byte) {
	o.spans = append(o.spans, span{off: uint32(len(o.body)), n: uint32(len(v))})
	o.body = append(o.body, v...)
	o.bytes += int64(len(v))
}

// appendReject adds a dead letter of value v with reason to o, appending v
// to o.body.
func (o *splitOut) appendReject(v []byte, reason string) {
	off := len(o.body)
	o.body = append(o.body, v...)
	o.reject(o.body[off:off+len(v)], reason)
}

// records returns the records of a's spans not yet received, as
// RecvLimited makes them.
func (a *Ack) records() []engine.Record {
	var recs []engine.Record
	for _, sp := range a.spans[a.next:] {
		recs = append(recs, engine.Record{Value: a.body[sp.off : sp.off+sp.n], Topic: a.topic, Tag: a.id})
	}
	return recs
}

// deadLetters returns the dead letters of o as the receiver makes them.
func (o *splitOut) deadLetters() []engine.DLQEntry {
	a := newAck(o.tag, o, nil)
	var dl []engine.DLQEntry
	for i := range a.dlq {
		dl = append(dl, a.entry(i))
	}
	return dl
}
