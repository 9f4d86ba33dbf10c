package wasmhost

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/engine/codec"
)

// The index is checked against the byte-level reference (codec.Get and the
// jsonedit.go splices), which is what the host did before the index: every
// lookup must find the same bytes, every edit must produce the same
// document, and the index must stay right after any sequence of edits.

func mustPath(tb testing.TB, s string) *hpath {
	tb.Helper()
	hp, ok := compilePath(s)
	if !ok {
		tb.Fatalf("compilePath(%q) failed", s)
	}
	return hp
}

// refGet is the reference lookup.
func refGet(doc []byte, hp *hpath) ([]byte, bool, error) {
	v, err := codec.Get(doc, hp.p)
	if errors.Is(err, codec.ErrNotFound) {
		return nil, false, nil
	}
	return v, err == nil, err
}

// pair edits one document through the index and a copy through the
// reference, and compares them after every step.
type pair struct {
	tb   testing.TB
	d    doc
	ref  []byte
	slab slab
	own  bool
}

func newPair(tb testing.TB, src string) *pair {
	p := &pair{tb: tb, ref: []byte(src)}
	p.d.reset([]byte(src))
	return p
}

func (p *pair) editor() editor { return editor{own: p.own, slab: &p.slab} }

func (p *pair) get(path string) {
	p.tb.Helper()
	hp := mustPath(p.tb, path)
	want, wantFound, err := refGet(p.ref, hp)
	if err != nil {
		p.tb.Fatalf("reference get %q on %q: %v", path, p.ref, err)
	}
	got, found, ok := p.d.get(hp.segs)
	if !ok {
		p.tb.Fatalf("get %q: the index gave up on a valid document %q", path, p.d.val)
	}
	if found != wantFound || string(got) != string(want) {
		p.tb.Fatalf("get %q on %q: index %q (found %v), reference %q (found %v)", path, p.ref, got, found, want, wantFound)
	}
}

func errClass(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, codec.ErrNotFound):
		return "not found"
	case errors.Is(err, errNotObject):
		return "not object"
	case errors.Is(err, codec.ErrBadPath):
		return "bad path"
	}
	return "other: " + err.Error()
}

func (p *pair) set(path, val string) {
	p.tb.Helper()
	hp := mustPath(p.tb, path)
	v, gerr := codec.Get(p.ref, hp.p)
	want, werr := jsonSetAt(p.ref, hp.p, []byte(val), v, gerr, false)
	before := string(p.d.val)
	got, err, ok := p.d.set(p.editor(), hp, []byte(val))
	if !ok {
		p.tb.Fatalf("set %q: the index gave up on %q", path, before)
	}
	if errClass(err) != errClass(werr) {
		p.tb.Fatalf("set %q=%s on %q: index %v, reference %v", path, val, before, err, werr)
	}
	if werr != nil {
		if string(p.d.val) != before {
			p.tb.Fatalf("set %q failed but changed the document", path)
		}
		return
	}
	if string(got) != string(want) {
		p.tb.Fatalf("set %q=%s on %q:\nindex     %q\nreference %q", path, val, before, got, want)
	}
	p.ref = want
	p.own = !p.own
}

func (p *pair) del(path string) {
	p.tb.Helper()
	hp := mustPath(p.tb, path)
	v, gerr := codec.Get(p.ref, hp.p)
	want, werr := jsonDeleteAt(p.ref, v, gerr, false)
	before := string(p.d.val)
	got, err, ok := p.d.del(p.editor(), hp)
	if !ok {
		p.tb.Fatalf("delete %q: the index gave up on %q", path, before)
	}
	if errClass(err) != errClass(werr) {
		p.tb.Fatalf("delete %q on %q: index %v, reference %v", path, before, err, werr)
	}
	if werr != nil {
		return
	}
	if string(got) != string(want) {
		p.tb.Fatalf("delete %q on %q:\nindex     %q\nreference %q", path, before, got, want)
	}
	p.ref = want
	p.own = !p.own
}

func TestIndexGet(t *testing.T) {
	docs := []string{
		`{"a":1,"b":{"c":[1,2,{"d":"x"}],"e":{}},"f":"s","g":[],"h":null}`,
		" \r\n{ \"a\" :\r\n 1 ,\t\"b\" : { \"c\" : [ 1 , 2 , { \"d\" : \"x\" } ] } }\r\n",
		`{"a\u0062":1,"x\"y":2,"p\\q":3,"é":4,"\u00e9t\u00e9":5,"a\ud83d\ude00":6}`,
		`{"ab":1,"ab":2}`,
		`{"s":"a\"b\\","t":"}{][,:","u":"\\\\"}`,
		`[{"x":1},[2,[3]],"z"]`,
		`"just a string"`,
		`42`,
		`{"0":1,"a":{"1":2},"n":[0,1,2,3,4,5,6,7,8,9,10]}`,
		`{"k":"` + strings.Repeat("long value ", 40) + `","last":true}`,
	}
	paths := []string{"a", "ab", "b", "b.c", "b.c.0", "b.c.2", "b.c.2.d", "b.c.3", "b.e", "b.e.x", "f", "f.x", "g", "g.0",
		"h", "x\"y", `p\q`, "é", "été", "a😀", "s", "t", "u", "0", "0.x", "1", "1.1", "1.1.0", "2", "a.1", "n.10", "n.11", "n.01",
		"k", "last", "missing", "a.b.c"}
	for _, src := range docs {
		p := newPair(t, src)
		for _, path := range paths {
			p.get(path)
		}
		// And again, now that everything is indexed.
		for _, path := range paths {
			p.get(path)
		}
	}
}

func TestIndexEdits(t *testing.T) {
	p := newPair(t, `{"event":"click","ua":"Mozilla","ip":"10.0.0.1","email":"a@b.c","geo":{"country":"DE"},"items":[1,{"k":2},3]}`)
	p.get("event")
	p.del("ua")
	p.get("ip")
	p.del("ip")
	p.set("email", `"hashed"`)
	p.get("geo.country")
	p.set("region", `"emea"`)
	p.set("geo.city", `"Berlin"`)
	p.get("geo")
	p.set("a.b.c", `{"d":[1]}`)
	p.get("a.b.c.d.0")
	p.set("a.b.e", `2`)
	p.get("a")
	p.del("items.1")
	p.get("items.1")
	p.del("items.0")
	p.del("items.0")
	p.get("items")
	p.set("items", `{"x":1}`)
	p.get("items.x")
	p.set("items.y", `[]`)
	p.del("event")
	p.del("region")
	p.del("nope")
	p.set("geo.country.x", `1`)
	p.set("items.0", `1`)
	for _, path := range []string{"email", "geo", "geo.city", "a.b", "items.y", "region", "event"} {
		p.get(path)
	}
	if want := `{"email":"hashed","geo":{"country":"DE","city":"Berlin"},"items":{"x":1,"y":[]},"a":{"b":{"c":{"d":[1]},"e":2}}}`; string(p.d.val) != want {
		t.Fatalf("doc %s\nwant %s", p.d.val, want)
	}
}

// TestIndexEditsPartialScan: edits made before an object was fully scanned
// keep the scan right (the scan resumes over shifted bytes).
func TestIndexEditsPartialScan(t *testing.T) {
	for _, c := range []struct {
		src  string
		ops  []string // "g path", "d path", "s path=val"
		gets []string
	}{
		{`{"a":1,"b":2,"c":3,"d":4}`, []string{"g a", "d a", "g c"}, []string{"b", "c", "d", "a"}},
		{`{"a":1,"b":2,"c":3,"d":4}`, []string{"g b", "d b", "g d"}, []string{"a", "c", "d"}},
		{`{"a":1 , "b":2 , "c":3}`, []string{"g b", "d b", "g c"}, []string{"a", "c"}},
		{`{"a":1,"b":2,"c":3}`, []string{"g b", "s b=[1,2,3]", "g c", "g b.1"}, []string{"a", "b", "c"}},
		{`{"a":{"x":1,"y":2},"b":2}`, []string{"g a.x", "d a.x", "g b", "g a.y"}, []string{"a", "a.y", "b"}},
		{`{"a":[1,2,3,4],"b":2}`, []string{"g a.1", "d a.1", "g a.2", "d a.0"}, []string{"a", "a.0", "a.1", "a.2", "b"}},
		{`{"a":[1,2,3,4]}`, []string{"g a.3", "d a.3", "g a.2"}, []string{"a"}},
		// A set checks a key's absence in the unscanned bytes (absent): the
		// key there raw, escaped, as a value or nested, and at the edges.
		{`{"a":1,"region":2}`, []string{"g a", "s region=3"}, []string{"a", "region"}},
		{`{"a":1,"reg\u0069on":2}`, []string{"g a", "s region=3"}, []string{"a", "region"}},
		{`{"a":"region","b":{"region":1}}`, []string{"s region=3", "s b.region=4"}, []string{"a", "b.region", "region"}},
		{`{"ab":1}`, []string{"s ab=2", "s abc=3", "s b=4"}, []string{"ab", "abc", "b"}},
		{`{"a":1,"b":2}`, []string{"s b=3", "s a=4", "s c=5", "s c=6"}, []string{"a", "b", "c"}},
		{`{ }`, []string{"s x=1", "s x=2", "s y=3", "g x", "s y=4"}, []string{"x", "y"}},
		{`{"a":1,"b":2,"c":3}`, []string{"g a", "d b", "s b=5", "s c=6"}, []string{"a", "b", "c"}},
		{`{"a":{"k":1},"k":2}`, []string{"g a.k", "s k=3", "s a.j=4"}, []string{"a.k", "a.j", "k"}},
	} {
		p := newPair(t, c.src)
		for _, op := range c.ops {
			arg := op[2:]
			switch op[0] {
			case 'g':
				p.get(arg)
			case 'd':
				p.del(arg)
			case 's':
				k, v, _ := strings.Cut(arg, "=")
				p.set(k, v)
			}
		}
		for _, g := range c.gets {
			p.get(g)
		}
	}
}

func TestIndexBroken(t *testing.T) {
	for _, src := range []string{``, `   `, `{`, `{"a":1`, `{"a" 1}`, `{"a":1,,"b":2}`, `{"a":}`, `{"a":1}}`, `{1:2}`, `{"a":"x}`, `[1,2`, `{"a":[1,2}`} {
		var d doc
		d.reset([]byte(src))
		hp := mustPath(t, "b")
		if _, found, ok := d.get(hp.segs); ok && found {
			t.Errorf("%q: found b in a broken document", src)
		}
	}
	var d doc
	d.reset([]byte(`{"a":1,,"b":2}`))
	if _, _, ok := d.get(mustPath(t, "b").segs); ok {
		t.Fatalf("a double comma is not reported broken")
	}
}

// candidatePaths lists paths into the document (every key and index it
// has, up to a depth) and a few near misses, sorted.
func candidatePaths(src string) []string {
	var v any
	if json.Unmarshal([]byte(src), &v) != nil {
		return nil
	}
	set := map[string]bool{"zz": true, "a.zz": true, "0": true}
	var walk func(prefix string, v any, depth int)
	walk = func(prefix string, v any, depth int) {
		if depth > 4 || len(set) > 64 {
			return
		}
		join := func(k string) string {
			if prefix == "" {
				return k
			}
			return prefix + "." + k
		}
		switch x := v.(type) {
		case map[string]any:
			for k, c := range x {
				if k == "" || strings.Contains(k, ".") {
					continue
				}
				set[join(k)] = true
				set[join(k)+".new"] = true
				walk(join(k), c, depth+1)
			}
		case []any:
			for i, c := range x {
				set[join(fmt.Sprint(i))] = true
				walk(join(fmt.Sprint(i)), c, depth+1)
			}
			set[join(fmt.Sprint(len(x)))] = true
		}
	}
	walk("", v, 0)
	out := make([]string, 0, len(set))
	for k := range set {
		if _, ok := compilePath(k); ok {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

var fuzzValues = []string{`1`, `"s"`, `null`, `{}`, `[]`, `{"n":{"m":[1,"x"]}}`, `"é\"\\"`, `[1,[2,{"q":3}]]`, `true`, `-0.5e3`}

// FuzzIndex runs a script of lookups and edits (each byte picks an
// operation, a path into the document and a value) on any valid JSON
// document through the index and through the byte-level reference: the
// lookups must agree, the edits must give the same bytes, and after every
// edit every path must still be found where the reference finds it.
func FuzzIndex(f *testing.F) {
	f.Add(`{"event":"click","ua":"x","geo":{"country":"DE"},"items":[1,2,{"k":"v"}]}`, []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	f.Add(" {\r\n \"a\" : [ ] , \"b\\u0062\" : { } }\r\n", []byte{0x31, 0x52, 0x13, 0x84, 0x25})
	f.Add(`{"a":{"b":{"c":1}},"x\"":"\ud83d\ude00"}`, []byte{0x10, 0x21, 0x32, 0x43, 0x54, 0x65})
	f.Add(`[1,{"a":2},[3]]`, []byte{0x01, 0x12, 0x23, 0x34})
	f.Fuzz(func(t *testing.T, src string, script []byte) {
		if !codec.Valid([]byte(src)) || len(src) > 4096 || hasLoneSurrogate(src) {
			return
		}
		paths := candidatePaths(src)
		if len(paths) == 0 {
			return
		}
		if len(script) > 64 {
			script = script[:64]
		}
		p := newPair(t, src)
		for i, b := range script {
			path := paths[(int(b>>2)+i)%len(paths)]
			switch b & 3 {
			case 0:
				p.get(path)
			case 1:
				p.set(path, fuzzValues[(int(b>>4)+i)%len(fuzzValues)])
			case 2:
				p.del(path)
			case 3:
				for _, q := range paths {
					p.get(q)
				}
			}
			if string(p.d.val) != string(p.ref) {
				t.Fatalf("documents diverged: %q vs %q", p.d.val, p.ref)
			}
		}
		for _, q := range paths {
			p.get(q)
		}
	})
}

// hasLoneSurrogate reports whether the JSON text s escapes a UTF-16
// surrogate that is not half of a pair. The reference, sonic's Get, finds
// no member after a key holding one (`{"\ud800":{},"zz":{}}` has no "zz"
// for it), while the index finds it, as encoding/json would (the key reads
// as U+FFFD): FuzzIndex leaves such documents out rather than compare with
// that answer.
func hasLoneSurrogate(s string) bool {
	hex := func(i int) (rune, bool) {
		if i+6 > len(s) || s[i] != '\\' || s[i+1] != 'u' {
			return 0, false
		}
		v, err := strconv.ParseUint(s[i+2:i+6], 16, 16)
		return rune(v), err == nil
	}
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 >= len(s) {
			continue
		}
		r, ok := hex(i)
		if !ok {
			i++ // a two-byte escape (\\, \", \n, …)
			continue
		}
		switch {
		case r >= 0xd800 && r < 0xdc00: // high: a low one must follow
			if lo, ok := hex(i + 6); ok && lo >= 0xdc00 && lo < 0xe000 {
				i += 11
				continue
			}
			return true
		case r >= 0xdc00 && r < 0xe000:
			return true
		}
		i += 5
	}
	return false
}

func TestHasLoneSurrogate(t *testing.T) {
	for s, want := range map[string]bool{
		`{"\ud800":{}}`:        true,
		`{"\udc00x":1}`:        true,
		`{"a":"\ud83d\ude00"}`: false,
		`{"a":"\ud83dx"}`:      true,
		`{"a":"\\ud800"}`:      false, // an escaped backslash, then text
		`{"a":"\u00e9\n\"\\"}`: false,
		`{"a":"\ud83d\u0041"}`: true,
	} {
		if got := hasLoneSurrogate(s); got != want {
			t.Errorf("hasLoneSurrogate(%s) = %v, want %v", s, got, want)
		}
	}
}

// TestDifferentialReference: the byte-level reference path (useIndex off)
// kept in the host gives the golden outputs too, so the index is compared
// with the code that was there before it on every run of FuzzIndex.
func TestDifferentialReference(t *testing.T) {
	useIndex = false
	t.Cleanup(func() { useIndex = true })
	h := differentialHost(t)
	want, err := os.ReadFile(goldenPath)
	if err != nil {
		t.Fatal(err)
	}
	if got := runDifferential(t, h, 1)[0]; got != string(want) {
		t.Fatalf("the reference path differs from %s:\n%s", goldenPath, firstDiff(string(want), got))
	}
}

// BenchmarkIndexScan indexes every member of a ~330-byte event and of its
// nested objects: the most a record's index ever costs.
func BenchmarkIndexScan(b *testing.B) {
	src := []byte(benchEvent(7))
	hps := []*hpath{mustPath(b, "zz"), mustPath(b, "geo.zz"), mustPath(b, "props.zz")}
	var d doc
	b.ReportAllocs()
	b.SetBytes(int64(len(src)))
	for i := 0; i < b.N; i++ {
		d.reset(src)
		for _, hp := range hps {
			if _, found, ok := d.get(hp.segs); found || !ok {
				b.Fatal("zz found")
			}
		}
	}
}
