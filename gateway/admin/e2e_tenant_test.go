package admin_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestE2ETenantPipelineAndRestart sets a tenant's pipeline over the API and
// checks that only that tenant's events run through it; then restarts the
// binary on the same data folder and finds the transforms, their versions
// and the pipelines set over the API again.
func TestE2ETenantPipelineAndRestart(t *testing.T) {
	broker := newKafka(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "sluice.yaml")
	err := os.WriteFile(cfg, []byte(`api_keys: [default-key]
tenants:
  - name: acme
    keys: [acme-key]
    topic: acme.events
`), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	p := startSluice(t, broker, "--config", cfg, "--data-dir", data)
	api := p.api
	filter, dropall := guestBytes(t, "filter"), guestBytes(t, "dropall")

	api.do(t, "PUT", "/admin/transforms/filter", filter).want(t, 201, "upload filter")
	api.do(t, "PUT", "/admin/transforms/filter", dropall).want(t, 201, "upload filter v2")
	api.do(t, "POST", "/admin/transforms/filter/rollback", nil).want(t, 200, "rollback to v1")
	api.do(t, "PUT", "/admin/pipeline?tenant=acme", []byte(`{"transforms":["filter"]}`)).want(t, 200, "tenant pipeline")

	var pl struct {
		Tenant     string   `json:"tenant"`
		Transforms []string `json:"transforms"`
		Tenants    []string `json:"tenants"`
	}
	api.do(t, "GET", "/admin/pipeline", nil).want(t, 200, "default pipeline").json(t, &pl)
	if pl.Tenant != "default" || len(pl.Transforms) != 0 || !slices.Equal(pl.Tenants, []string{"acme"}) {
		t.Fatalf("default pipeline: %+v", pl)
	}
	api.do(t, "GET", "/admin/pipeline?tenant=acme", nil).want(t, 200, "acme pipeline").json(t, &pl)
	if pl.Tenant != "acme" || !slices.Equal(pl.Transforms, []string{"filter"}) {
		t.Fatalf("acme pipeline: %+v", pl)
	}
	api.do(t, "GET", "/admin/pipeline?tenant=ghost", nil).want(t, 404, "unknown tenant")

	body := []byte("{\"event\":\"click\",\"id\":\"1\"}\n{\"event\":\"heartbeat\",\"id\":\"2\"}\n")
	res, err := p.post(body, "application/x-ndjson", "X-API-Key", "acme-key")
	if err != nil || res.code != 200 || res.accepted != 1 || res.dropped != 1 {
		t.Fatalf("acme ingest: %+v %v", res, err)
	}
	res, err = p.post(body, "application/x-ndjson", "X-API-Key", "default-key")
	if err != nil || res.code != 200 || res.accepted != 2 || res.dropped != 0 {
		t.Fatalf("default ingest: %+v %v", res, err)
	}
	if n := len(consume(t, broker, "acme.events")); n != 1 {
		t.Fatalf("acme.events has %d records, want 1", n)
	}
	if n := len(consume(t, broker, "events")); n != 2 {
		t.Fatalf("events has %d records, want 2", n)
	}
	var info transformJSON
	api.do(t, "GET", "/admin/transforms/filter", nil).want(t, 200, "get").json(t, &info)
	if !slices.Equal(info.UsedBy, []string{"acme"}) || info.Version != 1 || !slices.Equal(info.Versions, []int{1, 2}) {
		t.Fatalf("filter: %s", mustJSON(info))
	}

	// The default pipeline too, then restart on the same data folder.
	api.do(t, "PUT", "/admin/pipeline", []byte(`{"transforms":["filter"]}`)).want(t, 200, "default pipeline")
	p.stop(t)
	p = startSluice(t, broker, "--config", cfg, "--data-dir", data)
	api = p.api
	var again transformJSON
	api.do(t, "GET", "/admin/transforms/filter", nil).want(t, 200, "after restart").json(t, &again)
	if again.Digest != info.Digest || again.Version != 1 || !slices.Equal(again.Versions, []int{1, 2}) {
		t.Fatalf("after restart: %s, before: %s", mustJSON(again), mustJSON(info))
	}
	api.do(t, "GET", "/admin/pipeline", nil).want(t, 200, "default pipeline after restart").json(t, &pl)
	if !slices.Equal(pl.Transforms, []string{"filter"}) {
		t.Fatalf("default pipeline after restart: %+v", pl)
	}
	res, err = p.post(body, "application/x-ndjson", "X-API-Key", "default-key")
	if err != nil || res.code != 200 || res.accepted != 1 || res.dropped != 1 {
		t.Fatalf("default ingest after restart: %+v %v", res, err)
	}
	api.do(t, "GET", "/admin/pipeline?tenant=acme", nil).want(t, 200, "acme pipeline after restart").json(t, &pl)
	if !slices.Equal(pl.Transforms, []string{"filter"}) {
		t.Fatalf("acme pipeline after restart: %+v", pl)
	}
	res, err = p.post(body, "application/x-ndjson", "X-API-Key", "acme-key")
	if err != nil || res.code != 200 || res.accepted != 1 || res.dropped != 1 {
		t.Fatalf("acme ingest after restart: %+v %v", res, err)
	}
	// Version 2 is still there to move forward to… by uploading it again.
	var v transformJSON
	api.do(t, "PUT", "/admin/transforms/filter", dropall).want(t, 201, "re-upload v2").json(t, &v)
	if v.Digest != sha(dropall) || !strings.HasPrefix(v.Created.String(), "20") {
		t.Fatalf("re-upload: %s", mustJSON(v))
	}
}
