package codec

import (
	"encoding/json"
	"errors"
	"runtime"
	"strings"
	"testing"

	"github.com/bytedance/sonic"
)

const event = `{"type":"click","ts":1732650000123,"user":{"id":"u-42","geo":{"country":"FR","city":"Lyon"}},` +
	`"items":[{"sku":"a1","qty":2},{"sku":"b2","qty":1}],"msg":"caf\u00e9 \"ok\"","big":9007199254740993,` +
	`"ok":true,"none":null,"tags":["x","y","z"]}`

func TestNativeSonicOnFastArch(t *testing.T) {
	if runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64" {
		if Native() {
			t.Fatalf("Native() = true on %s", runtime.GOARCH)
		}
		return
	}
	if sonic.APIKind != sonic.UseSonicJSON {
		t.Fatalf("sonic.APIKind = %v, want UseSonicJSON on %s (fast path not in use)", sonic.APIKind, runtime.GOARCH)
	}
	if !Native() || !nativeExpected() {
		t.Fatal("Native() disagrees with sonic.APIKind")
	}
}

func TestParsePath(t *testing.T) {
	f := func(in string, wantLen int, wantErr bool) {
		t.Helper()
		p, err := ParsePath(in)
		if wantErr {
			if !errors.Is(err, ErrBadPath) {
				t.Fatalf("ParsePath(%q) err = %v, want ErrBadPath", in, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("ParsePath(%q): %v", in, err)
		}
		if p.Len() != wantLen || p.String() != in {
			t.Fatalf("ParsePath(%q) = len %d %q", in, p.Len(), p.String())
		}
	}
	f("type", 1, false)
	f("user.geo.country", 3, false)
	f("items.1.sku", 3, false)
	f("", 0, true)
	f(".a", 0, true)
	f("a.", 0, true)
	f("a..b", 0, true)
	f("99999999999999999999999", 0, true)
}

func TestGet(t *testing.T) {
	doc := []byte(event)
	f := func(path, want string) {
		t.Helper()
		got, err := Get(doc, MustParsePath(path))
		if err != nil {
			t.Fatalf("Get(%q): %v", path, err)
		}
		if string(got) != want {
			t.Fatalf("Get(%q) = %s, want %s", path, got, want)
		}
	}
	f("type", `"click"`)
	f("ts", `1732650000123`)
	f("user.geo.country", `"FR"`)
	f("user.geo", `{"country":"FR","city":"Lyon"}`)
	f("items.1.sku", `"b2"`)
	f("items.0", `{"sku":"a1","qty":2}`)
	f("msg", `"caf\u00e9 \"ok\""`)
	f("big", `9007199254740993`)
	f("ok", `true`)
	f("none", `null`)
	f("tags", `["x","y","z"]`)
	f("tags.2", `"z"`)

	for _, path := range []string{"nope", "user.nope", "user.geo.country.x", "items.5", "tags.3", "type.x"} {
		if _, err := Get(doc, MustParsePath(path)); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Get(%q) err = %v, want ErrNotFound", path, err)
		}
	}
	if got, err := Get(doc, Path{}); err != nil || string(got) != event {
		t.Fatalf("Get(zero path) = %q, %v", got, err)
	}
	if _, err := Get(nil, MustParsePath("a")); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Get(empty doc) err = %v, want ErrInvalid", err)
	}
}

func TestGetResultAliasesDocument(t *testing.T) {
	doc := []byte(`{"a":"xyz"}`)
	got, err := Get(doc, MustParsePath("a"))
	if err != nil {
		t.Fatal(err)
	}
	if &got[0] != &doc[5] {
		t.Fatal("Get copied the value; it must alias the document")
	}
}

func TestGetOnBrokenDocumentNeverSilentlyFindsGarbage(t *testing.T) {
	// Get's contract: documents are validated first. Documents that fail
	// Valid must never be reported as Valid, whatever Get returns on them.
	for _, doc := range []string{`{"a":}, "type":"x"}`, `{"type":"x"`, `{"b":tru, "type":"x"}`} {
		if Valid([]byte(doc)) {
			t.Fatalf("Valid(%q) = true", doc)
		}
	}
}

func TestValidIsStrict(t *testing.T) {
	f := func(doc string, want bool) {
		t.Helper()
		if got := Valid([]byte(doc)); got != want {
			t.Fatalf("Valid(%q) = %v, want %v", doc, got, want)
		}
		if std := json.Valid([]byte(doc)); std != want {
			t.Fatalf("test case wrong: json.Valid(%q) = %v", doc, std)
		}
	}
	f(event, true)
	f(`{}`, true)
	f(" \n\t{\"a\" :\r\n [1, 2.5e3, -0, true, false, null]}\n", true)
	f(`"plain"`, true)
	f(`"esc \n \" \\ \/ \b \f \r \t \u00e9"`, true)
	f(`"\q"`, false)
	f(`"\u00"`, false)
	f(`"\u12G4"`, false)
	f("\"raw\x01ctl\"", false)
	f("\"raw\ttab\"", false)
	f("\"raw\nnl\"", false)
	f("{\x01}", false)
	f(`{"a":}`, false)
	f(`{"a":1`, false)
	f(`{"a":1}}`, false)
	f(`{"a":1} {"b":2}`, false)
	f(`01`, false)
	f(`1.`, false)
	f(`-`, false)
	f(`NaN`, false)
	f(`[1,]`, false)
	f(`{'a':1}`, false)
	f(``, false)
	f(`   `, false)
	// sonic over-reads bare literals: "nu" followed in memory by "ll".
	f("\"0000000000000000000000000000000}", false) // sonic accepts this unterminated string
	for _, full := range []string{"null", "true", "false", " null "} {
		b := []byte(full)
		for i := 1; i < len(b); i++ {
			if Valid(b[:i]) != json.Valid(b[:i]) {
				t.Fatalf("Valid(%q) disagrees with encoding/json", b[:i])
			}
		}
	}
}

func TestParse(t *testing.T) {
	v, err := Parse([]byte(event))
	if err != nil {
		t.Fatal(err)
	}
	if v.Kind() != KindObject {
		t.Fatalf("kind = %v", v.Kind())
	}
	str := func(path, want string) {
		t.Helper()
		got, err := v.Lookup(MustParsePath(path))
		if err != nil {
			t.Fatalf("Lookup(%q): %v", path, err)
		}
		s, ok := got.Str()
		if !ok || s != want {
			t.Fatalf("Lookup(%q) = %v", path, got.Interface())
		}
	}
	str("user.geo.country", "FR")
	str("items.1.sku", "b2")
	str("msg", `café "ok"`)
	big, _ := v.Lookup(MustParsePath("big"))
	if n, ok := big.Int64(); !ok || n != 9007199254740993 {
		t.Fatalf("big = %v (precision lost?)", big.Interface())
	}
	if f, ok := big.Float64(); !ok || f < 9e15 {
		t.Fatalf("big as float = %v", f)
	}
	ok, _ := v.Lookup(MustParsePath("ok"))
	if b, isBool := ok.Bool(); !isBool || !b {
		t.Fatal("ok != true")
	}
	none, _ := v.Lookup(MustParsePath("none"))
	if none.Kind() != KindNull {
		t.Fatalf("none kind = %v", none.Kind())
	}
	for _, path := range []string{"nope", "items.9", "type.x", "tags.x"} {
		if _, err := v.Lookup(MustParsePath(path)); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Lookup(%q) err = %v", path, err)
		}
	}
	obj, err := Parse([]byte(`{"0":"zero"}`))
	if err != nil {
		t.Fatal(err)
	}
	if z, err := obj.Lookup(MustParsePath("0")); err != nil || z.Interface() != "zero" {
		t.Fatalf("digit key on object = %v, %v", z.Interface(), err)
	}
	out, err := v.MarshalJSON()
	if err != nil || !json.Valid(out) {
		t.Fatalf("MarshalJSON = %s, %v", out, err)
	}
	for _, bad := range []string{`{"a":}`, `"\q"`, "\"\x01\"", `{"a":1`, ``} {
		if _, err := Parse([]byte(bad)); !errors.Is(err, ErrInvalid) {
			t.Fatalf("Parse(%q) err = %v, want ErrInvalid", bad, err)
		}
	}
}

func TestKindString(t *testing.T) {
	for k, want := range map[Kind]string{KindNull: "null", KindBool: "bool", KindNumber: "number",
		KindString: "string", KindArray: "array", KindObject: "object", Kind(99): "unknown"} {
		if k.String() != want {
			t.Fatalf("%d.String() = %q", k, k.String())
		}
	}
}

func TestGetConcurrent(t *testing.T) {
	doc := []byte(event)
	p := MustParsePath("user.geo.country")
	done := make(chan error, 4)
	for range 4 {
		go func() {
			for range 1000 {
				got, err := Get(doc, p)
				if err != nil || string(got) != `"FR"` {
					done <- errors.New("concurrent Get returned " + string(got))
					return
				}
			}
			done <- nil
		}()
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

// sonic's validator was seen reading past the end of its slice (a bare "nu"
// followed in memory by "ll" validated). Valid must judge only doc: truncated
// documents followed in memory by bytes that would complete them stay
// invalid.
func TestValidDoesNotReadPastTheSlice(t *testing.T) {
	for n := 0; n < 140; n += 3 {
		zeros := strings.Repeat("0", n)
		for _, s := range []string{`["` + zeros + `]`, `{"a":"` + zeros + `}`, `[1,"` + zeros + `]`, `"` + zeros + `}`, `n`, `nu`, `tr`, `fals`} {
			for _, tail := range []string{`"`, `]`, `"}`, `ll`, `ue`, `e`} {
				buf := []byte(s + strings.Repeat(tail, 40))
				doc := buf[:len(s)]
				if got, want := Valid(doc), json.Valid(doc); got != want {
					t.Fatalf("Valid(%q) followed in memory by %q = %v, want %v", doc, tail, got, want)
				}
			}
		}
	}
}

// A parsed Value is shared read-only by the process stage; reads from
// several goroutines must not race (run with -race).
func TestParsedValueConcurrentReads(t *testing.T) {
	v, err := Parse([]byte(event))
	if err != nil {
		t.Fatal(err)
	}
	paths := []Path{MustParsePath("user.geo.country"), MustParsePath("items.1.sku"), MustParsePath("tags.0")}
	done := make(chan error, 4)
	for range 4 {
		go func() {
			for range 200 {
				for _, p := range paths {
					f, err := v.Lookup(p)
					if err != nil {
						done <- err
						return
					}
					if _, ok := f.Str(); !ok {
						done <- errors.New("not a string")
						return
					}
				}
				_ = v.Interface()
			}
			done <- nil
		}()
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

func TestZeroValueIsNull(t *testing.T) {
	var v Value
	if v.Kind() != KindNull || v.Interface() != nil {
		t.Fatalf("zero Value = %v %v", v.Kind(), v.Interface())
	}
	if b, err := v.MarshalJSON(); err != nil || string(b) != "null" {
		t.Fatalf("MarshalJSON = %s, %v", b, err)
	}
	if _, err := v.Lookup(MustParsePath("a")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Lookup on null: %v", err)
	}
	if _, ok := v.Str(); ok {
		t.Fatal("Str on null")
	}
	if _, ok := v.Int64(); ok {
		t.Fatal("Int64 on null")
	}
	all, err := Parse([]byte(`{"s":"x","n":1.5,"b":false,"z":null,"a":[1],"o":{}}`))
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]Kind{"s": KindString, "n": KindNumber, "b": KindBool, "z": KindNull, "a": KindArray, "o": KindObject} {
		f, err := all.Lookup(MustParsePath(path))
		if err != nil || f.Kind() != want {
			t.Fatalf("%s: kind %v, %v; want %v", path, f.Kind(), err, want)
		}
	}
	n, _ := all.Lookup(MustParsePath("n"))
	if _, ok := n.Int64(); ok {
		t.Fatal("1.5 read as an int64")
	}
	if f, ok := n.Float64(); !ok || f != 1.5 {
		t.Fatalf("Float64 = %v", f)
	}
	b, _ := all.Lookup(MustParsePath("b"))
	if x, ok := b.Bool(); !ok || x {
		t.Fatal("false misread")
	}
}
