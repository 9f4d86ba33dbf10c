package codec

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/bytedance/sonic"
)

func benchGet(b *testing.B, path string, want string) {
	doc := []byte(event)
	p := MustParsePath(path)
	b.ReportAllocs()
	b.SetBytes(int64(len(doc)))
	for b.Loop() {
		got, err := Get(doc, p)
		if err != nil || len(got) != len(want) {
			b.Fatalf("Get = %s, %v", got, err)
		}
	}
}

func BenchmarkGetTopLevel(b *testing.B) { benchGet(b, "type", `"click"`) }
func BenchmarkGetLastTopLevel(b *testing.B) {
	benchGet(b, "tags", `["x","y","z"]`)
}
func BenchmarkGetNested(b *testing.B) { benchGet(b, "user.geo.country", `"FR"`) }

// ndjson is 1,000 typical events without escapes, as the gateway validates them.
func ndjsonLines() [][]byte {
	line := strings.ReplaceAll(event, `caf\u00e9 \"ok\"`, "cafe ok")
	lines := make([][]byte, 1000)
	for i := range lines {
		lines[i] = []byte(line)
	}
	return lines
}

// BenchmarkValid compares the strict candidates (and sonic's lax validator as
// the floor): Valid is the hybrid the package ships; check is Check (which
// also rejects duplicate names) with a reused Checker, check_pooled the
// package-level Check.
func BenchmarkValid(b *testing.B) {
	lines := ndjsonLines()
	var total int64
	for _, l := range lines {
		total += int64(len(l))
	}
	strictSonic := sonic.Config{ValidateString: true}.Froze()
	run := func(name string, valid func([]byte) bool) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(total)
			for b.Loop() {
				for _, l := range lines {
					if !valid(l) {
						b.Fatal("invalid")
					}
				}
			}
		})
	}
	var c Checker
	run("check", func(d []byte) bool { return c.Check(d) == nil })
	run("check_pooled", func(d []byte) bool { return Check(d) == nil })
	run("hybrid", Valid)
	run("encoding_json", json.Valid)
	run("sonic_strict_unmarshal", func(d []byte) bool {
		var v any
		return strictSonic.Unmarshal(d, &v) == nil
	})
	run("sonic_lax", sonic.ConfigStd.Valid)
	escaped := bytes.Repeat([]byte(event), 1)
	b.Run("hybrid_escaped", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(escaped)))
		for b.Loop() {
			if !Valid(escaped) {
				b.Fatal("invalid")
			}
		}
	})
	b.Run("check_escaped", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(escaped)))
		for b.Loop() {
			if c.Check(escaped) != nil {
				b.Fatal("invalid")
			}
		}
	})
}

// BenchmarkParse compares the two strict full decodes, each followed by one
// nested lookup: "ast" is Parse (Valid + sonic ast.Node LoadAll), "map" is
// a strict sonic decode into map[string]any with json.Number. Parse uses the
// ast form because it measured faster with 11 allocations instead of 60.
func BenchmarkParse(b *testing.B) {
	doc := []byte(event)
	p := MustParsePath("user.geo.country")
	b.Run("ast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			v, err := Parse(doc)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := v.Lookup(p); err != nil {
				b.Fatal(err)
			}
		}
	})
	strict := sonic.Config{ValidateString: true, CopyString: true, UseNumber: true}.Froze()
	b.Run("map", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var v any
			if err := strict.Unmarshal(doc, &v); err != nil {
				b.Fatal(err)
			}
			m, _ := v.(map[string]any)["user"].(map[string]any)
			if _, ok := m["geo"].(map[string]any)["country"].(string); !ok {
				b.Fatal("lookup")
			}
		}
	})
}
