package wasmhost

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/engine"
	"github.com/tetratelabs/wazero/api"
)

var testHashKey = []byte("0123456789abcdef-test-hash-key")

func hmacHex(key []byte, s string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(s))
	return hex.EncodeToString(m.Sum(nil))
}

// TestHashFieldKeyed: with a hash key, hash_field writes the HMAC-SHA-256
// of the decoded value (escapes resolved), never its plain SHA-256.
func TestHashFieldKeyed(t *testing.T) {
	for _, tc := range []struct{ doc, path, value string }{
		{`{"email":"a@b.c","n":1}`, "email", "a@b.c"},
		{`{"u":{"email":"a\u0040b.c"}}`, "u.email", "a@b.c"},
		{`{"e":""}`, "e", ""},
		{`{"e":"\ud83d\ude00é\n"}`, "e", "😀é\n"},
		{`{"e":"` + strings.Repeat("x", 200) + `"}`, "e", strings.Repeat("x", 200)},
	} {
		c := newHashCall(t, engine.Record{Value: []byte(tc.doc), Format: engine.FormatJSON})
		c.st.hasher = newFieldHasher(testHashKey)
		// Twice: the keyed hash is reset between values.
		for range 2 {
			c.st.reset([]engine.Record{{Value: []byte(tc.doc), Format: engine.FormatJSON}}, 4)
			if st := c.call(0, tc.path, HashSHA256); st != StatusOK {
				t.Fatalf("%s: status %d", tc.doc, st)
			}
			got := string(c.st.record(0).Value)
			if want := hmacHex(testHashKey, tc.value); !strings.Contains(got, `"`+want+`"`) || strings.Contains(got, sha256Hex(tc.value)) {
				t.Fatalf("%s: %s; want the HMAC %s", tc.doc, got, want)
			}
		}
	}
}

// TestHashFieldKeyedAllocs: the keyed hash allocates nothing more than the
// plain one (the edited record's bytes).
func TestHashFieldKeyedAllocs(t *testing.T) {
	recs := []engine.Record{{Value: []byte(`{"email":"user1@example.com","n":1}`), Format: engine.FormatJSON}}
	allocs := func(key []byte) float64 {
		c := newHashCall(t, recs...)
		c.st.hasher = newFieldHasher(key)
		c.in.mem.Write(hashPathAt, []byte("email"))
		ctx := context.WithValue(context.Background(), stateKey{}, c.st)
		stack := make([]uint64, 4)
		hash := func() {
			c.st.reset(recs, 4)
			stack[0], stack[1], stack[2], stack[3] = 0, hashPathAt, 5, uint64(HashSHA256)
			c.fn(ctx, c.in.mod, stack)
			if st := api.DecodeI32(stack[0]); st != StatusOK {
				t.Fatalf("hash_field = %d", st)
			}
		}
		hash()
		return testing.AllocsPerRun(100, hash)
	}
	if keyed, plain := allocs(testHashKey), allocs(nil); keyed > plain {
		t.Fatalf("keyed hash_field %v allocs, plain %v", keyed, plain)
	}
}

// TestHashKeyConfig: a key shorter than MinHashKey is refused.
func TestHashKeyConfig(t *testing.T) {
	if err := (Config{HashKey: []byte("short")}).Validate(); err == nil || !strings.Contains(err.Error(), "at least 16") {
		t.Fatalf("short key: %v", err)
	}
	if err := (Config{HashKey: testHashKey}).Validate(); err != nil {
		t.Fatal(err)
	}
}

// TestRedactWithHashKey runs the redact example on a host with a hash key:
// the email becomes its HMAC, through the instances the pipeline starts
// and through a dry run alike.
func TestRedactWithHashKey(t *testing.T) {
	h := newHost(t, Config{HashKey: testHashKey})
	addGuests(t, h, "redact")
	out, _ := process(t, h, "p", []string{"redact"}, `{"email":"a@b.c","ip":"10.0.0.1"}`, `{"email":"x\u0040y.z"}`)
	want := []string{`{"email":"` + hmacHex(testHashKey, "a@b.c") + `"}`, `{"email":"` + hmacHex(testHashKey, "x@y.z") + `"}`}
	if got := values(out); !equalStrings(got, want) {
		t.Fatalf("got %q\nwant %q", got, want)
	}
	res, err := h.DryRun(context.Background(), []string{"redact"}, [][]byte{[]byte(`{"email":"a@b.c"}`)})
	if err != nil {
		t.Fatal(err)
	}
	var v struct{ Email string }
	if len(res.Records) != 1 || json.Unmarshal(res.Records[0].Value, &v) != nil || v.Email != hmacHex(testHashKey, "a@b.c") {
		t.Fatalf("dry run: %+v", res.Records)
	}
}

// BenchmarkHashFieldKeyed is BenchmarkHashField with a hash key
// (HMAC-SHA-256 instead of SHA-256).
func BenchmarkHashFieldKeyed(b *testing.B) {
	recs := jsonRecs(benchEvent(0))
	c := newHashCall(b, recs...)
	c.st.hasher = newFieldHasher(testHashKey)
	const path = "email"
	c.in.mem.Write(hashPathAt, []byte(path))
	ctx := context.WithValue(context.Background(), stateKey{}, c.st)
	stack := make([]uint64, 4)
	b.ReportAllocs()
	for b.Loop() {
		c.st.reset(recs, 0)
		stack[0], stack[1], stack[2], stack[3] = 0, hashPathAt, uint64(len(path)), uint64(HashSHA256)
		c.fn(ctx, c.in.mod, stack)
		if st := api.DecodeI32(stack[0]); st != StatusOK {
			b.Fatalf("status %d", st)
		}
	}
}
