package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
)

// TestTenantsFromConfigFile maps API keys to tenants through a YAML file
// (one key from the environment): each tenant's events land in its own
// default topic.
func TestTenantsFromConfigFile(t *testing.T) {
	k := newKafka(t, kfake.SeedTopics(3, "acme.events"))
	brokers := k.ListenAddrs()
	cfg := filepath.Join(t.TempDir(), "sluice.yaml")
	if err := os.WriteFile(cfg, []byte(`
brokers: [`+brokers[0]+`]
api_keys: [kd]
tenants:
  - name: acme
    keys: [ka]
    key_env: ACME_KEY_FOR_TEST
    topic: acme.events
`), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("ACME_KEY_FOR_TEST", "ka-env")
	p := startSluice(t, "--config", cfg)
	for key, id := range map[string]string{"kd": "d1", "ka": "a1", "ka-env": "a2"} {
		r := do(t, "POST", p.URL("/v1/events"), []byte(`{"id":"`+id+`"}`), "Authorization", "Bearer "+key)
		if r.code != 200 {
			t.Fatalf("key %s: %d %s", key, r.code, r.body)
		}
	}
	if r := do(t, "POST", p.URL("/v1/events"), []byte(`{"id":"x"}`), "Authorization", "Bearer ACME_KEY_FOR_TEST"); r.code != 401 {
		t.Fatalf("an env variable's name is not a key: %d", r.code)
	}
	got := map[string][]string{}
	for _, rec := range consume(t, brokers, "events", "acme.events") {
		got[rec.Topic] = append(got[rec.Topic], string(rec.Value))
	}
	if len(got["events"]) != 1 || got["events"][0] != `{"id":"d1"}` || len(got["acme.events"]) != 2 {
		t.Fatalf("topics: %v", got)
	}
}
