package admin_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestE2EAdminRoutes drives every admin route of the real binary through
// its success and error cases, and checks that a pipeline set over the API
// is the one events flow through to Kafka.
func TestE2EAdminRoutes(t *testing.T) {
	broker := newKafka(t)
	p := startSluice(t, broker)
	api := p.api
	filter, route := guestBytes(t, "filter"), guestBytes(t, "route")

	// Health and metrics are open; everything else needs the token.
	api.doToken(t, "", "GET", "/healthz", nil).want(t, 200, "healthz")
	api.doToken(t, "", "GET", "/readyz", nil).want(t, 200, "readyz")
	api.doToken(t, "", "GET", "/metrics", nil).want(t, 200, "metrics")
	for _, rt := range []struct{ method, path string }{
		{"GET", "/admin/transforms"}, {"PUT", "/admin/transforms/x"}, {"GET", "/admin/transforms/x"},
		{"DELETE", "/admin/transforms/x"}, {"POST", "/admin/transforms/x/rollback"}, {"POST", "/admin/transforms/x/test"},
		{"GET", "/admin/pipeline"}, {"PUT", "/admin/pipeline"}, {"POST", "/admin/pipeline/test"},
		{"GET", "/admin/budget"}, {"GET", "/admin/nope"}, {"PATCH", "/admin/budget"},
	} {
		for _, tok := range []string{"", "wrong-token", e2eToken + "x"} {
			api.doToken(t, tok, rt.method, rt.path, []byte(`{}`)).want(t, 401, rt.method+" "+rt.path+" token "+tok).errMsg(t)
		}
	}

	// Unknown paths and wrong methods.
	api.do(t, "GET", "/admin/nope", nil).want(t, 404, "unknown path").errMsg(t)
	if r := api.do(t, "POST", "/admin/budget", nil).want(t, 405, "POST budget"); r.allow != "GET, HEAD" {
		t.Fatalf("Allow %q", r.allow)
	}
	if r := api.do(t, "PATCH", "/admin/transforms/filter", nil).want(t, 405, "PATCH transform"); r.allow != "DELETE, GET, HEAD, PUT" {
		t.Fatalf("Allow %q", r.allow)
	}

	// Invalid modules and names are 400 and name the problem; nothing is stored.
	for _, c := range []struct {
		name, path string
		body       []byte
		want       []string
	}{
		{"garbage", "/admin/transforms/bad", []byte("definitely not wasm"), []string{"invalid transform module"}},
		{"truncated", "/admin/transforms/bad", filter[:len(filter)/3], []string{"invalid transform module"}},
		{"wrong abi", "/admin/transforms/bad", guestBytes(t, "wrongabi"), []string{"invalid transform module", "ABI", "2", "1"}},
		{"forbidden import", "/admin/transforms/bad", guestBytes(t, "forbidden"), []string{"invalid transform module", "http_get"}},
		{"bad name", "/admin/transforms/Bad.Name", filter, []string{"invalid transform name"}},
		{"empty", "/admin/transforms/bad", []byte{}, []string{"empty body"}},
	} {
		msg := api.do(t, "PUT", c.path, c.body).want(t, 400, c.name).errMsg(t)
		for _, w := range c.want {
			if !strings.Contains(msg, w) {
				t.Fatalf("%s: error %q does not name %q", c.name, msg, w)
			}
		}
	}
	api.do(t, "GET", "/admin/transforms/bad", nil).want(t, 404, "bad not stored")
	// Over the 16 MiB default cap: 413 from the handler…
	api.do(t, "PUT", "/admin/transforms/huge", bytes.Repeat([]byte{1}, 16<<20+1)).want(t, 413, "over cap").errMsg(t)
	// …and from the listener, in the same JSON shape, for a body larger
	// than it reads at all.
	conn, err := net.Dial("tcp", p.admin)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "PUT /admin/transforms/huge HTTP/1.1\r\nHost: admin\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n", e2eToken, 1<<30)
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	rb, err := io.ReadAll(resp.Body)
	if resp.StatusCode != 413 || !bytes.Contains(rb, []byte(`"status":413`)) {
		t.Fatalf("1 GiB Content-Length: %d %q (%v)", resp.StatusCode, rb, err)
	}

	// Upload.
	var info transformJSON
	api.do(t, "PUT", "/admin/transforms/filter", filter).want(t, 201, "upload filter").json(t, &info)
	if info.Name != "filter" || info.Digest != sha(filter) || info.Size != int64(len(filter)) || info.Version != 1 ||
		info.ABIVersion != 1 || !slices.Contains(info.Exports, "sluice_process") || len(info.UsedBy) != 0 {
		t.Fatalf("upload: %s", mustJSON(info))
	}
	api.do(t, "PUT", "/admin/transforms/filter", filter).want(t, 200, "same bytes again").json(t, &info)
	if info.Version != 1 {
		t.Fatalf("same bytes made version %d", info.Version)
	}
	api.do(t, "PUT", "/admin/transforms/route", route).want(t, 201, "upload route")
	api.do(t, "GET", "/admin/transforms/filter", nil).want(t, 200, "get").json(t, &info)
	if info.Digest != sha(filter) {
		t.Fatalf("get: %s", mustJSON(info))
	}
	api.do(t, "GET", "/admin/transforms/ghost", nil).want(t, 404, "get unknown")
	var list struct{ Transforms []transformJSON }
	api.do(t, "GET", "/admin/transforms", nil).want(t, 200, "list").json(t, &list)
	if len(list.Transforms) != 2 || list.Transforms[0].Name != "filter" || list.Transforms[1].Name != "route" {
		t.Fatalf("list: %s", mustJSON(list))
	}

	// Dry-run one transform: nothing goes to Kafka.
	var dr dryRunJSON
	api.do(t, "POST", "/admin/transforms/filter/test",
		[]byte("{\"event\":\"click\",\"id\":\"t1\"}\n{\"event\":\"heartbeat\",\"id\":\"t2\"}\n")).want(t, 200, "test").json(t, &dr)
	if dr.Summary.Events != 2 || dr.Summary.Kept != 1 || dr.Summary.Dropped != 1 || len(dr.Records) != 1 ||
		dr.Events[0].Decision != "kept" || dr.Events[1].Decision != "dropped" || dr.PeakMemoryBytes <= 0 ||
		string(dr.Records[0].Value) != `{"event":"click","id":"t1"}` {
		t.Fatalf("dry-run: %s", mustJSON(dr))
	}
	api.do(t, "POST", "/admin/transforms/filter/test", []byte("not json")).want(t, 400, "bad sample")
	api.do(t, "POST", "/admin/transforms/ghost/test", []byte(`{}`)).want(t, 404, "test unknown")

	// Pipeline.
	var pl struct {
		Tenant     string   `json:"tenant"`
		Transforms []string `json:"transforms"`
		Previous   []string `json:"previous"`
	}
	api.do(t, "GET", "/admin/pipeline", nil).want(t, 200, "get pipeline").json(t, &pl)
	if pl.Tenant != "default" || len(pl.Transforms) != 0 {
		t.Fatalf("initial pipeline: %+v", pl)
	}
	api.do(t, "PUT", "/admin/pipeline", []byte(`{"transforms":["filter","ghost"]}`)).want(t, 400, "unknown in pipeline")
	api.do(t, "PUT", "/admin/pipeline", []byte(`{"transforms":"filter"}`)).want(t, 400, "malformed pipeline")
	api.do(t, "PUT", "/admin/pipeline", []byte(`{"transforms":["filter","route"]}`)).want(t, 200, "set pipeline").json(t, &pl)
	if !slices.Equal(pl.Transforms, []string{"filter", "route"}) || len(pl.Previous) != 0 {
		t.Fatalf("set pipeline: %+v", pl)
	}
	api.do(t, "GET", "/admin/pipeline", nil).want(t, 200, "get pipeline").json(t, &pl)
	if !slices.Equal(pl.Transforms, []string{"filter", "route"}) {
		t.Fatalf("pipeline after set: %+v", pl)
	}
	api.do(t, "POST", "/admin/pipeline/test", []byte(`[{"event":"click","user_id":"u9"},{"event":"heartbeat"}]`)).
		want(t, 200, "pipeline test").json(t, &dr)
	if dr.Summary.Kept != 1 || dr.Summary.Dropped != 1 || dr.Records[0].Topic != "events.click" || dr.Records[0].Key == nil || *dr.Records[0].Key != "u9" {
		t.Fatalf("pipeline dry-run: %s", mustJSON(dr))
	}

	// In use: 409; nothing to roll back to: 409.
	if msg := api.do(t, "DELETE", "/admin/transforms/filter", nil).want(t, 409, "delete in use").errMsg(t); !strings.Contains(msg, "pipeline") {
		t.Fatalf("409: %q", msg)
	}
	api.do(t, "POST", "/admin/transforms/filter/rollback", nil).want(t, 409, "rollback at v1")
	api.do(t, "POST", "/admin/transforms/ghost/rollback", nil).want(t, 404, "rollback unknown")

	// Events flow through the pipeline set over the API: the heartbeat is
	// dropped, the click is routed to events.click keyed by its user.
	res, err := p.post([]byte("{\"event\":\"click\",\"user_id\":\"u1\",\"id\":\"e1\"}\n{\"event\":\"heartbeat\",\"id\":\"e2\"}\n"), "application/x-ndjson")
	if err != nil || res.code != 200 || res.accepted != 1 || res.dropped != 1 {
		t.Fatalf("ingest: %+v %v", res, err)
	}
	recs := consume(t, broker, "events.click")
	if len(recs) != 1 || string(recs[0].Key) != "u1" || !strings.Contains(string(recs[0].Value), `"id":"e1"`) {
		t.Fatalf("events.click has %d records: %v", len(recs), recs)
	}
	if n := len(consume(t, broker, "events")); n != 0 {
		t.Fatalf("default topic has %d records, want 0 (everything was routed)", n)
	}
	api.do(t, "GET", "/admin/transforms/filter", nil).want(t, 200, "get").json(t, &info)
	if info.Calls == 0 || info.Records < 2 || !slices.Equal(info.UsedBy, []string{"default"}) {
		t.Fatalf("filter after traffic: %s", mustJSON(info))
	}

	// Out of the pipeline, then delete.
	api.do(t, "PUT", "/admin/pipeline", []byte(`{"transforms":["filter"]}`)).want(t, 200, "shrink pipeline").json(t, &pl)
	if !slices.Equal(pl.Previous, []string{"filter", "route"}) {
		t.Fatalf("previous: %+v", pl)
	}
	api.do(t, "DELETE", "/admin/transforms/route", nil).want(t, 204, "delete route")
	api.do(t, "GET", "/admin/transforms/route", nil).want(t, 404, "deleted")
	api.do(t, "DELETE", "/admin/transforms/route", nil).want(t, 404, "delete again")
}
