package codec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

// refCheck is the reference of Check: validity by encoding/json.Valid (and
// the depth limit), duplicates by a walk of encoding/json's decoder, which
// decodes every name (escapes, invalid UTF-8 and lone surrogates as U+FFFD)
// the way a downstream reader does. dups holds every repeated name.
func refCheck(doc []byte) (valid bool, dups map[string]bool) {
	if !json.Valid(doc) || depthOf(doc) > MaxDepth {
		return false, nil
	}
	type fr struct {
		obj, wantKey bool
		keys         map[string]bool
	}
	var stack []*fr
	dups = map[string]bool{}
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return true, dups
		}
		if err != nil {
			panic(fmt.Sprintf("decoder on a valid document %q: %v", doc, err))
		}
		var top *fr
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			stack = stack[:len(stack)-1]
			continue
		}
		if s, ok := tok.(string); ok && top != nil && top.obj && top.wantKey {
			if top.keys[s] {
				dups[s] = true
			}
			top.keys[s] = true
			top.wantKey = false
			continue
		}
		if top != nil && top.obj {
			top.wantKey = true // a value: a name comes next
		}
		if d, ok := tok.(json.Delim); ok {
			stack = append(stack, &fr{obj: d == '{', wantKey: true, keys: map[string]bool{}})
		}
	}
}

// depthOf returns the deepest nesting of a valid document.
func depthOf(doc []byte) int {
	depth, deepest, inStr := 0, 0, false
	for i := 0; i < len(doc); i++ {
		switch c := doc[i]; {
		case inStr && c == '\\':
			i++
		case c == '"':
			inStr = !inStr
		case inStr:
		case c == '{' || c == '[':
			depth++
			deepest = max(deepest, depth)
		case c == '}' || c == ']':
			depth--
		}
	}
	return deepest
}

func TestCheck(t *testing.T) {
	f := func(t *testing.T, doc string, want string) {
		t.Helper()
		err := Check([]byte(doc))
		var got string
		var de *DuplicateKeyError
		switch {
		case err == nil:
			got = "ok"
		case errors.Is(err, ErrInvalid):
			got = "invalid"
		case errors.As(err, &de) && errors.Is(err, ErrDuplicateKey):
			got = de.Error()
		default:
			t.Fatalf("Check(%q) = %v", doc, err)
		}
		if got != want {
			t.Fatalf("Check(%.80q) = %s, want %s", doc, got, want)
		}
		var c Checker // a reused Checker agrees
		for range 2 {
			if err2 := c.Check([]byte(doc)); fmt.Sprint(err2) != fmt.Sprint(err) {
				t.Fatalf("Checker.Check(%q) = %v, Check = %v", doc, err2, err)
			}
		}
		valid, dups := refCheck([]byte(doc))
		if valid != (got != "invalid") || (len(dups) > 0) != (de != nil) || de != nil && !dups[de.Key] {
			t.Fatalf("Check(%.80q) = %s, reference: valid %v, repeated %v", doc, got, valid, dups)
		}
	}
	t.Run("valid", func(t *testing.T) {
		f(t, `{}`, "ok")
		f(t, ` {"a":1} `, "ok")
		f(t, `{"a":{"a":{"a":1}}}`, "ok") // the same name in different objects
		f(t, `[{"sku":1},{"sku":2}]`, "ok")
		f(t, `{"ip":"a","IP":"b","ip ":"c"}`, "ok")
		f(t, `{"a":[{"b":1,"c":2},{"b":1,"c":2}],"b":1}`, "ok")
		f(t, `{"ab":1,"a\u0062c":2}`, "ok")
		f(t, `{"":1,"\u0000":2}`, "ok")
		f(t, "\t\n\r [1, -0.5e+10, true, false, null, \"x\", {}, []] \n", "ok")
		f(t, `"scalar"`, "ok")
		f(t, `12`, "ok")
		f(t, event, "ok")
	})
	t.Run("duplicate", func(t *testing.T) {
		f(t, `{"ip":"a","ip":"b"}`, `duplicate key "ip"`)
		f(t, `{"ip":"a","email":"x","ip":"b"}`, `duplicate key "ip"`)
		f(t, `{"user":{"geo":{"ip":1,"ip":2}}}`, `duplicate key "ip"`)
		f(t, `[{"a":1},{"b":1,"b":2}]`, `duplicate key "b"`)
		f(t, `{"a":[1,{"x":{"y":[{"z":1,"z":2}]}}]}`, `duplicate key "z"`)
		f(t, `{"ip":"a","\u0069p":"b"}`, `duplicate key "ip"`)
		f(t, `{"\u0069\u0070":"a","i\u0070":"b"}`, `duplicate key "ip"`)
		f(t, `{"a\/b":1,"a/b":2}`, `duplicate key "a/b"`)
		f(t, `{"\ud83d\ude00":1,"😀":2}`, `duplicate key "😀"`)
		f(t, `{"\ud800":1,"\ufffd":2}`, `duplicate key "�"`) // a lone surrogate reads as U+FFFD
		f(t, "{\"\xff\":1,\"\xfe\":2}", `duplicate key "�"`) // so does invalid UTF-8
		f(t, `{"":1,"":2}`, `duplicate key ""`)
		f(t, `{"a" : 1 , "a" : 2}`, `duplicate key "a"`)
		f(t, `{"email":"x","props":{},"email":"y"}`, `duplicate key "email"`)
	})
	t.Run("long and many names", func(t *testing.T) {
		long := strings.Repeat("k", 1000)
		f(t, `{"`+long+`":1,"`+long+`x":2}`, "ok")
		f(t, `{"`+long+`":1,"`+long+`":2}`, `duplicate key "`+strings.Repeat("k", 64)+`"… (1000 bytes)`)
		f(t, `{"`+long[:9]+`":1,"`+long[:8]+`":2}`, "ok") // same first eight bytes
		var many strings.Builder
		many.WriteByte('{')
		for i := range 5000 {
			fmt.Fprintf(&many, `"k%d":%d,`, i, i)
		}
		f(t, many.String()+`"last":0}`, "ok")
		f(t, many.String()+`"k4321":0}`, `duplicate key "k4321"`)
		f(t, many.String()+`"k\u0034321":0}`, `duplicate key "k4321"`)
		f(t, `[`+many.String()+`"k0":0},`+many.String()+`"z":0}]`, `duplicate key "k0"`)
	})
	t.Run("invalid", func(t *testing.T) {
		for _, doc := range []string{
			``, ` `, `{`, `}`, `{"a"}`, `{"a":}`, `{"a":1,}`, `{,"a":1}`, `{"a":1 "b":2}`, `{1:2}`,
			`[1,]`, `[,1]`, `[1 2]`, `[1}`, `{"a":1]`, `01`, `-`, `1.`, `.5`, `1e`, `1e+`, `+1`, `0x1`,
			`tru`, `nul`, `falsey`, `"\q"`, `"\u00"`, `"\u12G4"`, "\"\x01\"", "\"a\tb\"", `"abc`, `"\"`,
			`{"a":1}{"b":2}`, `{"a":1} x`, `[1]]`, `{"a":1,"a":2} x`, `{"a":1,"a":2,}`, `{"a":1,"a":"\q"}`,
		} {
			f(t, doc, "invalid")
		}
	})
	t.Run("depth", func(t *testing.T) {
		f(t, strings.Repeat("[", MaxDepth)+strings.Repeat("]", MaxDepth), "ok")
		f(t, strings.Repeat("[", MaxDepth+1)+strings.Repeat("]", MaxDepth+1), "invalid")
		f(t, strings.Repeat(`{"a":`, MaxDepth-1)+`{}`+strings.Repeat("}", MaxDepth-1), "ok")
		f(t, strings.Repeat(`{"a":`, MaxDepth)+`{}`+strings.Repeat("}", MaxDepth), "invalid")
	})
}

// TestCheckNext cuts the elements of an array with Checker.Next.
func TestCheckNext(t *testing.T) {
	doc := []byte(`[{"a":1} ,{"b":2,"b":3},"x"]`)
	var c Checker
	var got []string
	for i := 1; doc[i-1] != ']'; {
		end, err := c.Next(doc, skipSpace(doc, i))
		if errors.Is(err, ErrInvalid) {
			t.Fatalf("Next at %d: %v", i, err)
		}
		got = append(got, fmt.Sprintf("%s:%v", doc[skipSpace(doc, i):end], err))
		i = skipSpace(doc, end) + 1
	}
	if want := `[{"a":1}:<nil> {"b":2,"b":3}:duplicate key "b" "x":<nil>]`; fmt.Sprint(got) != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}

// FuzzCheck holds Check to its reference: encoding/json.Valid (within
// MaxDepth) on validity, and a walk of encoding/json's decoder on whether
// some object repeats a decoded name, and which.
func FuzzCheck(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	for _, s := range []string{
		`{"ip":"a","ip":"b"}`, `{"ip":"a","\u0069p":"b"}`, `[{"a":1},{"a":1,"a":2}]`, `{"a":{"a":{"a":1}}}`,
		`{"\ud800":1,"\udbff":2}`, "{\"\xff\":1,\"\xfe\":2}", `{"\ud83d\ude00":1,"😀":2}`, `{"a\/b":1,"a/b":2}`,
		`{"aaaaaaaab":1,"aaaaaaaac":2,"aaaaaaaab":3}`, `{"a":[1,2,{"b":{"c":null,"c":true}}]}`,
		`{"k0":0,"k1":1,"k2":2,"k3":3,"k4":4,"k5":5,"k6":6,"k7":7,"k8":8,"k9":9,"k10":10,"k11":11,"k12":12,` +
			`"k13":13,"k14":14,"k15":15,"k16":16,"k17":17,"k18":18,"k19":19,"k20":20,"k21":21,"k22":22,"k23":23,` +
			`"k24":24,"k25":25,"k26":26,"k27":27,"k28":28,"k29":29,"k30":30,"k31":31,"k32":32,"k33":33,"k7":0}`,
	} {
		f.Add([]byte(s))
	}
	var c Checker
	f.Fuzz(func(t *testing.T, doc []byte) {
		err := c.Check(doc)
		valid, dups := refCheck(doc)
		var de *DuplicateKeyError
		switch {
		case !valid:
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Check(%q) = %v; encoding/json says invalid", doc, err)
			}
		case len(dups) > 0:
			if !errors.As(err, &de) || !dups[de.Key] {
				t.Fatalf("Check(%q) = %v; the reference repeats %v", doc, err, dups)
			}
		case err != nil:
			t.Fatalf("Check(%q) = %v; the reference says valid, no repeated name", doc, err)
		}
	})
}
