package wasmhost

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/sluicehq/sluice/engine"
	"github.com/sluicehq/sluice/engine/codec"
	"github.com/tetratelabs/wazero/api"
)

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// hashCall runs hash_field on a live instance's memory (the path is
// written into it) against the call state st.
type hashCall struct {
	in *instance
	st *callState
	fn api.GoModuleFunc
}

const hashPathAt = 1 << 20

func newHashCall(tb testing.TB, recs ...engine.Record) *hashCall {
	c := &hashCall{in: fuzzInstance(tb), st: &callState{}, fn: hostFuncs()[FuncHashField]}
	c.st.reset(recs, 4)
	return c
}

func (c *hashCall) call(rec int32, path string, algo int32) int32 {
	if !c.in.mem.Write(hashPathAt, []byte(path)) {
		panic("path does not fit")
	}
	stack := []uint64{api.EncodeI32(rec), hashPathAt, uint64(len(path)), api.EncodeI32(algo)}
	ctx := context.WithValue(context.Background(), stateKey{}, c.st)
	c.fn(ctx, c.in.mod, stack)
	return api.DecodeI32(stack[0])
}

func TestHashField(t *testing.T) {
	for _, tc := range []struct {
		name, doc, path string
		algo            int32
		want            int32
		out             string // the record after the call ("" = unchanged)
	}{
		{"found", `{"email":"a@b.c","n":1}`, "email", HashSHA256, StatusOK, `{"email":"` + sha256Hex("a@b.c") + `","n":1}`},
		{"nested", `{"u": {"email" : "a@b.c"}, "z":[1]}`, "u.email", HashSHA256, StatusOK, `{"u": {"email" : "` + sha256Hex("a@b.c") + `"}, "z":[1]}`},
		{"array element", `{"a":["x","y"]}`, "a.1", HashSHA256, StatusOK, `{"a":["x","` + sha256Hex("y") + `"]}`},
		{"empty string", `{"e":""}`, "e", HashSHA256, StatusOK, `{"e":"` + sha256Hex("") + `"}`},
		{"escapes resolved", `{"e":"a\u0040b.c"}`, "e", HashSHA256, StatusOK, `{"e":"` + sha256Hex("a@b.c") + `"}`},
		{"simple escapes", `{"e":"x\"y\\z\/\n\t\r\b\f"}`, "e", HashSHA256, StatusOK, `{"e":"` + sha256Hex("x\"y\\z/\n\t\r\b\f") + `"}`},
		{"surrogate pair", `{"e":"\ud83d\ude00é"}`, "e", HashSHA256, StatusOK, `{"e":"` + sha256Hex("😀é") + `"}`},
		{"absent", `{"email":"a@b.c"}`, "mail", HashSHA256, StatusNotFound, ""},
		{"absent parent", `{"email":"a@b.c"}`, "u.email", HashSHA256, StatusNotFound, ""},
		{"number", `{"e":42}`, "e", HashSHA256, StatusWrongType, ""},
		{"null", `{"e":null}`, "e", HashSHA256, StatusWrongType, ""},
		{"object", `{"e":{"s":"x"}}`, "e", HashSHA256, StatusWrongType, ""},
		{"empty path", `{"e":"x"}`, "", HashSHA256, StatusBadPath, ""},
		{"empty segment", `{"e":"x"}`, "a..e", HashSHA256, StatusBadPath, ""},
		{"algorithm 0", `{"e":"x"}`, "e", 0, StatusUnsupported, ""},
		{"algorithm 2", `{"e":"x"}`, "e", 2, StatusUnsupported, ""},
		{"algorithm -1", `{"e":"x"}`, "e", -1, StatusUnsupported, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newHashCall(t, engine.Record{Value: []byte(tc.doc), Format: engine.FormatJSON})
			if got := c.call(0, tc.path, tc.algo); got != tc.want {
				t.Fatalf("hash_field(%q, %d) = %d, want %d", tc.path, tc.algo, got, tc.want)
			}
			want := tc.out
			if want == "" {
				want = tc.doc
				if c.st.recs[0].mod {
					t.Fatalf("record marked edited after status %d", tc.want)
				}
			}
			if got := string(c.st.record(0).Value); got != want {
				t.Fatalf("record = %s\nwant     %s", got, want)
			}
			if !codec.Valid(c.st.record(0).Value) {
				t.Fatalf("record is not valid JSON: %s", c.st.record(0).Value)
			}
		})
	}
}

func TestHashFieldErrors(t *testing.T) {
	c := newHashCall(t,
		engine.Record{Value: []byte(`{"e":"x"}`), Format: engine.FormatJSON},
		engine.Record{Value: []byte(`{"e":"x"}`), Format: engine.FormatRaw},
	)
	for _, rec := range []int32{-1, 2, 1 << 30} {
		if got := c.call(rec, "e", HashSHA256); got != StatusBadRecord {
			t.Fatalf("record %d: %d, want BAD_RECORD", rec, got)
		}
	}
	if got := c.call(1, "e", HashSHA256); got != StatusInvalidJSON {
		t.Fatalf("raw record: %d, want INVALID_JSON", got)
	}
	stack := []uint64{0, uint64(c.in.mem.Size() - 1), 2, api.EncodeI32(HashSHA256)}
	c.fn(context.WithValue(context.Background(), stateKey{}, c.st), c.in.mod, stack)
	if got := api.DecodeI32(stack[0]); got != StatusBadMemory {
		t.Fatalf("path past memory: %d, want BAD_MEMORY", got)
	}
	c.fn(context.Background(), c.in.mod, stack) // outside a call
	if got := api.DecodeI32(stack[0]); got != StatusBadRecord {
		t.Fatalf("no call: %d, want BAD_RECORD", got)
	}
}

// TestHashFieldAfterEdits: the cached lookup of get_field is reused, and a
// record edited before (the host owns its bytes) is edited again in place.
func TestHashFieldAfterEdits(t *testing.T) {
	c := newHashCall(t, engine.Record{Value: []byte(`{"ip":"1.2.3.4","email":"a@b.c","n":1}`), Format: engine.FormatJSON})
	if v, st := c.st.getField(0, []byte("email")); st != StatusOK || string(v) != `"a@b.c"` {
		t.Fatalf("get_field = %s, %d", v, st)
	}
	if got := c.call(0, "email", HashSHA256); got != StatusOK {
		t.Fatalf("hash = %d", got)
	}
	once := `{"ip":"1.2.3.4","email":"` + sha256Hex("a@b.c") + `","n":1}`
	if got := string(c.st.record(0).Value); got != once {
		t.Fatalf("record = %s\nwant     %s", got, once)
	}
	if got := c.call(0, "email", HashSHA256); got != StatusOK {
		t.Fatalf("second hash = %d", got)
	}
	twice := `{"ip":"1.2.3.4","email":"` + sha256Hex(sha256Hex("a@b.c")) + `","n":1}`
	if got := string(c.st.record(0).Value); got != twice {
		t.Fatalf("record = %s\nwant     %s", got, twice)
	}
	if c.st.in[0].Value[0] != '{' || string(c.st.in[0].Value) != `{"ip":"1.2.3.4","email":"a@b.c","n":1}` {
		t.Fatalf("the input record changed: %s", c.st.in[0].Value)
	}
}

// TestHashFieldAllocs: hash_field allocates no more than set_string does
// for the same edit (the edited record's bytes), escaped strings included.
func TestHashFieldAllocs(t *testing.T) {
	for _, doc := range []string{`{"email":"user1@example.com","n":1}`, `{"email":"user1\u0040example.com\n","n":1}`} {
		recs := []engine.Record{{Value: []byte(doc), Format: engine.FormatJSON}}
		c := newHashCall(t, recs...)
		c.in.mem.Write(hashPathAt, []byte("email"))
		c.in.mem.Write(hashPathAt+64, []byte(sha256Hex("x")))
		ctx := context.WithValue(context.Background(), stateKey{}, c.st)
		stack := make([]uint64, 5)
		hash := func() {
			c.st.reset(recs, 4)
			stack[0], stack[1], stack[2], stack[3] = 0, hashPathAt, 5, uint64(HashSHA256)
			c.fn(ctx, c.in.mod, stack)
			if st := api.DecodeI32(stack[0]); st != StatusOK {
				t.Fatalf("hash_field = %d", st)
			}
		}
		setString := hostFuncs()[FuncSetString]
		set := func() {
			c.st.reset(recs, 4)
			stack[0], stack[1], stack[2], stack[3], stack[4] = 0, hashPathAt, 5, hashPathAt+64, 64
			setString(ctx, c.in.mod, stack)
			if st := api.DecodeI32(stack[0]); st != StatusOK {
				t.Fatalf("set_string = %d", st)
			}
		}
		hash() // warm the path cache and the scratch
		set()
		h, s := testing.AllocsPerRun(100, hash), testing.AllocsPerRun(100, set)
		if h > s {
			t.Fatalf("%s: hash_field %v allocs, set_string %v", doc, h, s)
		}
	}
}

// unescapeCases are JSON string tokens unescapeInto must decode exactly as
// decodeString does.
var unescapeCases = []string{
	`""`, `"a"`, `"a@b.c"`, `"\\"`, `"\""`, `"\/"`, `"\b\f\n\r\t"`, `"\u0041\u00e9\u4e2d"`,
	`"\ud83d\ude00"`, `"\ud800"`, `"\udc00"`, `"\ud800x"`, `"\ud800\u0041"`, `"\uDBFF\uDFFF"`,
	`"\uZZZZ"`, `"\u12"`, `"\x"`, `"é\n"`, "\"\xff\\n\"", "\"\x01\\n\"", `"\ufffd\n"`,
	`"abc\\"`, `"\u0000"`,
}

func TestUnescapeIntoMatchesDecodeString(t *testing.T) {
	for _, tc := range unescapeCases {
		checkUnescape(t, []byte(tc))
	}
}

func checkUnescape(t *testing.T, raw []byte) {
	t.Helper()
	want, wantSt := decodeString(raw)
	scratch := []byte("prefix")
	got, rest, st := unescapeInto(scratch, raw)
	if st != wantSt || (st == StatusOK && !bytes.Equal(got, want)) {
		t.Fatalf("unescapeInto(%q) = %q, %d; decodeString = %q, %d", raw, got, st, want, wantSt)
	}
	if len(rest) < len("prefix") || string(rest[:len("prefix")]) != "prefix" {
		t.Fatalf("unescapeInto(%q) lost the scratch's prefix: %q", raw, rest)
	}
}

// FuzzUnescape: unescapeInto and decodeString agree on any token.
func FuzzUnescape(f *testing.F) {
	for _, tc := range unescapeCases {
		f.Add([]byte(tc))
	}
	f.Fuzz(func(t *testing.T, inner []byte) {
		raw := make([]byte, 0, len(inner)+2)
		raw = append(append(append(raw, '"'), inner...), '"')
		checkUnescape(t, raw)
		checkUnescape(t, inner)
	})
}

// BenchmarkHashField is hash_field on the email of a benchmark event: the
// lookup, SHA-256, hex and the splice (one new record value per op).
func BenchmarkHashField(b *testing.B) {
	recs := jsonRecs(benchEvent(0))
	c := newHashCall(b, recs...)
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
