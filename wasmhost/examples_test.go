package wasmhost

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"
)

func TestExampleFilter(t *testing.T) {
	h := newHost(t, Config{})
	addGuests(t, h, "filter")
	in := []string{
		`{"event":"heartbeat","user_id":"u1"}`,
		`{"event":"click","user_id":"u1"}`,
		`{"user_id":"u2"}`,
		`{"event":"heartbeats"}`,
		`{"event":"heart\u0062eat"}`,
		`{ "event" : "heartbeat" }`,
	}
	out, dlq := process(t, h, "p", []string{"filter"}, in...)
	want := []string{in[1], in[2], in[3]}
	if got := values(out); !equalStrings(got, want) {
		t.Fatalf("out = %q, want %q", got, want)
	}
	if len(dlq) != 0 {
		t.Fatalf("dlq = %v", dlq)
	}
	// Kept records are the very records that came in (tags intact).
	for i, tag := range []uint64{1, 2, 3} {
		if out[i].Tag != tag {
			t.Fatalf("out[%d].Tag = %d, want %d", i, out[i].Tag, tag)
		}
	}
}

func TestExampleRedact(t *testing.T) {
	h := newHost(t, Config{})
	addGuests(t, h, "redact")
	sum := sha256.Sum256([]byte("a@b.c"))
	hash := hex.EncodeToString(sum[:])
	in := []string{
		`{"event":"click","ua":"Mozilla/5.0","ip":"10.0.0.1","email":"a@b.c"}`,
		`{"event":"click"}`,
		`{"ip":"1.2.3.4"}`,
		`{"email":"a@b.c","ua":"x"}`,
		`{"email":null,"n":1}`,
		`{"email":"a\u0040b.c","ip":"x"}`,
		`{"email":5}`,
	}
	out, dlq := process(t, h, "p", []string{"redact"}, in...)
	want := []string{
		`{"event":"click","email":"` + hash + `"}`,
		`{"event":"click"}`,
		`{}`,
		`{"email":"` + hash + `"}`,
		`{"email":null,"n":1}`,
		`{"email":"` + hash + `"}`, // the decoded value is hashed
		`{"email":5}`,
	}
	if got := values(out); !equalStrings(got, want) {
		t.Fatalf("out = %q\nwant  %q", got, want)
	}
	if len(dlq) != 0 {
		t.Fatalf("dlq = %v", dlq)
	}
}

func TestExampleRoute(t *testing.T) {
	h := newHost(t, Config{})
	addGuests(t, h, "route")
	in := []string{
		`{"event":"click","user_id":"u1"}`,
		`{"event":"signup","user_id":42}`,
		`{"user_id":"u2"}`,
		`{"event":"view"}`,
	}
	out, _ := process(t, h, "p", []string{"route"}, in...)
	type tk struct{ topic, key string }
	want := []tk{{"events.click", "u1"}, {"events.signup", "42"}, {"", "u2"}, {"events.view", ""}}
	if len(out) != len(want) {
		t.Fatalf("got %d records", len(out))
	}
	for i, w := range want {
		if out[i].Topic != w.topic || string(out[i].Key) != w.key {
			t.Errorf("rec %d: topic %q key %q, want %q %q", i, out[i].Topic, out[i].Key, w.topic, w.key)
		}
		if string(out[i].Value) != in[i] {
			t.Errorf("rec %d: value changed to %s", i, out[i].Value)
		}
	}
	if out[3].Key != nil {
		t.Errorf("rec 3: key %q, want nil", out[3].Key)
	}
}

func TestExampleEnrich(t *testing.T) {
	h := newHost(t, Config{})
	addGuests(t, h, "enrich")
	cases := map[string]string{
		"AU": "apac", "NZ": "apac", "JP": "apac", "SG": "apac",
		"US": "amer", "CA": "amer", "BR": "amer", "MX": "amer",
		"GB": "emea", "DE": "emea", "FR": "emea", "NL": "emea", "IE": "emea",
		"CN": "other", "": "other",
	}
	var in, want []string
	for c, r := range cases {
		in = append(in, `{"geo":{"country":"`+c+`"},"n":1}`)
		want = append(want, `{"geo":{"country":"`+c+`"},"n":1,"region":"`+r+`"}`)
	}
	in = append(in, `{"event":"x"}`, `{"geo":{"country":7}}`, `{"region":"old","geo":{"country":"JP"}}`, `{}`)
	want = append(want, `{"event":"x","region":"other"}`, `{"geo":{"country":7},"region":"other"}`, `{"region":"apac","geo":{"country":"JP"}}`, `{"region":"other"}`)
	out, _ := process(t, h, "p", []string{"enrich"}, in...)
	if got := values(out); !equalStrings(got, want) {
		t.Fatalf("out = %q\nwant  %q", got, want)
	}
}

func TestExampleChain(t *testing.T) {
	h := newHost(t, Config{})
	addGuests(t, h, "filter", "redact", "route", "enrich")
	out, dlq := process(t, h, "p", []string{"filter", "redact", "route", "enrich"},
		`{"event":"heartbeat"}`,
		`{"event":"click","user_id":"u1","ip":"1.1.1.1","geo":{"country":"DE"}}`,
	)
	if len(out) != 1 || len(dlq) != 0 {
		t.Fatalf("out %d dlq %d", len(out), len(dlq))
	}
	if got, want := string(out[0].Value), `{"event":"click","user_id":"u1","geo":{"country":"DE"},"region":"emea"}`; got != want {
		t.Fatalf("value %s, want %s", got, want)
	}
	if out[0].Topic != "events.click" || string(out[0].Key) != "u1" || out[0].Tag != 1 {
		t.Fatalf("topic %q key %q tag %d", out[0].Topic, out[0].Key, out[0].Tag)
	}
}
