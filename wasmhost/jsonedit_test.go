package wasmhost

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"unsafe"

	"github.com/sluicehq/sluice/engine/codec"
)

func TestJSONSet(t *testing.T) {
	tests := []struct{ doc, path, val, want string }{
		{`{"a":1}`, "a", `2`, `{"a":2}`},
		{`{"a":1,"b":"x"}`, "b", `"y"`, `{"a":1,"b":"y"}`},
		{`{"a":1}`, "b", `true`, `{"a":1,"b":true}`},
		{`{}`, "b", `1`, `{"b":1}`},
		{` { } `, "b", `1`, ` { "b":1} `},
		{`{"a":{"b":1}}`, "a.c", `2`, `{"a":{"b":1,"c":2}}`},
		{`{"a":1}`, "x.y.z", `[1]`, `{"a":1,"x":{"y":{"z":[1]}}}`},
		{`{"a":[1,2,3]}`, "a.1", `9`, `{"a":[1,9,3]}`},
		{`{"a":{"b":1}}`, "a", `null`, `{"a":null}`},
		{"{\n  \"a\": 1\n}", "b", `2`, "{\n  \"a\": 1\n,\"b\":2}"},
		{`{"we\"ird":1}`, "k\"q", `1`, `{"we\"ird":1,"k\"q":1}`},
	}
	for _, tc := range tests {
		got, err := jsonSet([]byte(tc.doc), codec.MustParsePath(tc.path), []byte(tc.val))
		if err != nil || string(got) != tc.want {
			t.Errorf("set %s %s=%s: %s, %v; want %s", tc.doc, tc.path, tc.val, got, err, tc.want)
		}
	}
	for _, tc := range []struct{ doc, path string }{
		{`{"a":1}`, "a.b"},   // parent is a number
		{`{"a":[1]}`, "a.5"}, // missing array index
		{`[1,2]`, "x"},       // root is not an object
		{`{"a":"s"}`, "a.b.c"},
	} {
		if _, err := jsonSet([]byte(tc.doc), codec.MustParsePath(tc.path), []byte(`1`)); !errors.Is(err, errNotObject) {
			t.Errorf("set %s %s: err %v, want errNotObject", tc.doc, tc.path, err)
		}
	}
}

func TestJSONDelete(t *testing.T) {
	tests := []struct{ doc, path, want string }{
		{`{"a":1,"b":2,"c":3}`, "a", `{"b":2,"c":3}`},
		{`{"a":1,"b":2,"c":3}`, "b", `{"a":1,"c":3}`},
		{`{"a":1,"b":2,"c":3}`, "c", `{"a":1,"b":2}`},
		{`{"a":1}`, "a", `{}`},
		{`{ "a" : 1 , "b" : 2 }`, "b", `{ "a" : 1  }`},
		{`{ "a" : 1 , "b" : 2 }`, "a", `{ "b" : 2 }`},
		{`{"x\"y":1,"b":2}`, "b", `{"x\"y":1}`},
		{`{"a\\":1,"b":2}`, "b", `{"a\\":1}`},
		{`{"a":{"b":{"c":1,"d":2}}}`, "a.b.c", `{"a":{"b":{"d":2}}}`},
		{`{"a":[1,2,3]}`, "a.1", `{"a":[1,3]}`},
		{`{"a":[1,2,3]}`, "a.2", `{"a":[1,2]}`},
		{`{"a":[{"k":1}]}`, "a.0", `{"a":[]}`},
	}
	for _, tc := range tests {
		got, err := jsonDelete([]byte(tc.doc), codec.MustParsePath(tc.path))
		if err != nil || string(got) != tc.want {
			t.Errorf("delete %s %s: %s, %v; want %s", tc.doc, tc.path, got, err, tc.want)
		}
	}
	if _, err := jsonDelete([]byte(`{"a":1}`), codec.MustParsePath("b")); !errors.Is(err, codec.ErrNotFound) {
		t.Errorf("delete missing: %v", err)
	}
}

// FuzzJSONEdit: on any valid JSON object, set then get returns the value,
// delete then get is not found, and both results stay valid JSON.
func FuzzJSONEdit(f *testing.F) {
	f.Add(`{"a":1,"b":{"c":[1,2,{"d":"x"}]}}`, "b.c.2.d", `"y"`)
	f.Add(`{"a":1}`, "a", `{"n":null}`)
	f.Add(`{ "k\"" : "v" , "z" : [ ] }`, "z", `1.5e3`)
	f.Add(`{}`, "x.y", `[]`)
	f.Fuzz(func(t *testing.T, doc, path, val string) {
		if !json.Valid([]byte(doc)) || !json.Valid([]byte(val)) {
			return
		}
		var probe map[string]any
		if json.Unmarshal([]byte(doc), &probe) != nil {
			return // root must be an object
		}
		p, err := codec.ParsePath(path)
		if err != nil {
			return
		}
		v := trimSpace([]byte(val))
		set, err := jsonSet([]byte(doc), p, v)
		if err == nil {
			if !json.Valid(set) {
				t.Fatalf("set %q %q=%q gave invalid JSON %q", doc, path, val, set)
			}
			got, err := codec.Get(set, p)
			if err != nil {
				t.Fatalf("set %q %q=%q then get: %v (doc %q)", doc, path, val, err, set)
			}
			if !jsonEqual(got, v) {
				t.Fatalf("set %q %q=%q then get %q", doc, path, val, got)
			}
		}
		if err == nil {
			// In place on a private copy: the same bytes.
			own, oerr := inPlace(doc, func(d []byte) ([]byte, error) {
				g, gerr := codec.Get(d, p)
				return jsonSetAt(d, p, v, g, gerr, true)
			})
			if oerr != nil || string(own) != string(set) {
				t.Fatalf("set %q %q=%q in place: %q (%v), copied %q", doc, path, val, own, oerr, set)
			}
		}
		del, err := jsonDelete([]byte(doc), p)
		if err == nil && !json.Valid(del) {
			t.Fatalf("delete %q %q gave invalid JSON %q", doc, path, del)
		}
		if err == nil {
			own, oerr := inPlace(doc, func(d []byte) ([]byte, error) {
				g, gerr := codec.Get(d, p)
				return jsonDeleteAt(d, g, gerr, true)
			})
			if oerr != nil || string(own) != string(del) {
				t.Fatalf("delete %q %q in place: %q (%v), copied %q", doc, path, own, oerr, del)
			}
		}
	})
}

// inPlace runs edit on a private copy of doc with spare capacity and checks
// that the edit did not allocate when the result fits.
func inPlace(doc string, edit func([]byte) ([]byte, error)) ([]byte, error) {
	buf := make([]byte, len(doc), len(doc)+spliceSlack+len(doc))
	copy(buf, doc)
	out, err := edit(buf)
	if err == nil && len(out) <= cap(buf) && unsafe.SliceData(out) != unsafe.SliceData(buf) {
		return nil, errors.New("a fitting edit was copied")
	}
	return out, err
}

func TestSpliceOwn(t *testing.T) {
	for _, c := range []struct {
		doc, ins string
		from, to int
	}{
		{"abcdef", "XY", 1, 3},
		{"abcdef", "XYZW", 1, 2},
		{"abcdef", "", 0, 6},
		{"abcdef", "", 2, 4},
		{"abcdef", "123", 6, 6},
		{"abcdef", "123", 0, 0},
	} {
		want := string(splice([]byte(c.doc), c.from, c.to, []byte(c.ins)))
		buf := make([]byte, len(c.doc), 32)
		copy(buf, c.doc)
		got := spliceOwn(buf, c.from, c.to, []byte(c.ins), true)
		if string(got) != want || unsafe.SliceData(got) != unsafe.SliceData(buf) {
			t.Errorf("spliceOwn(%q, %d, %d, %q) = %q, want %q in place", c.doc, c.from, c.to, c.ins, got, want)
		}
		full := []byte(c.doc)[:len(c.doc):len(c.doc)]
		if got := spliceOwn(full, c.from, c.to, []byte(c.ins), false); string(got) != want || (len(got) > 0 && unsafe.SliceData(got) == unsafe.SliceData(full)) {
			t.Errorf("spliceOwn not own: %q, want a copy of %q", got, want)
		}
	}
}

func jsonEqual(a, b []byte) bool {
	// Numbers stay their literals (json.Number): a float64 cannot hold
	// 2e308, which is valid JSON all the same.
	decode := func(b []byte, v *any) error {
		d := json.NewDecoder(bytes.NewReader(b))
		d.UseNumber()
		return d.Decode(v)
	}
	var x, y any
	if decode(a, &x) != nil || decode(b, &y) != nil {
		return false
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return string(xa) == string(ya)
}
