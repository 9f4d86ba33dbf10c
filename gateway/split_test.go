package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/engine"
	"github.com/sluicehq/sluice/engine/codec"
)

func TestSplit(t *testing.T) {
	f := func(t *testing.T, body string, kind bodyKind, maxEvent int, wantRecs []string, wantDLQ []string, wantErr error) {
		t.Helper()
		out := splitOut{maxEvent: maxEvent, tag: 7, topic: "t"}
		err := split([]byte(body), kind, &out)
		if !errors.Is(err, wantErr) {
			t.Fatalf("split(%q): err %v, want %v", body, err, wantErr)
		}
		if err != nil {
			return
		}
		var got []string
		for _, r := range out.records() {
			if r.Tag != 7 || r.Topic != "t" {
				t.Fatalf("record %q: tag %d topic %q", r.Value, r.Tag, r.Topic)
			}
			got = append(got, string(r.Value))
		}
		if fmt.Sprint(got) != fmt.Sprint(wantRecs) {
			t.Fatalf("split(%q): records %q, want %q", body, got, wantRecs)
		}
		var reasons []string
		for _, d := range out.deadLetters() {
			if d.Record.Tag != 7 || d.Stage != "receiver" {
				t.Fatalf("dead letter %+v", d)
			}
			reasons = append(reasons, reasonClass(d.Reason, d.Stage)+":"+string(d.Record.Value))
		}
		if fmt.Sprint(reasons) != fmt.Sprint(wantDLQ) {
			t.Fatalf("split(%q): dead letters %q, want %q", body, reasons, wantDLQ)
		}
	}
	t.Run("object", func(t *testing.T) {
		f(t, ` {"a":1} `, kindJSON, 0, []string{`{"a":1}`}, nil, nil)
		f(t, `{"a":"}\"]"}`, kindSniff, 0, []string{`{"a":"}\"]"}`}, nil, nil)
	})
	t.Run("array", func(t *testing.T) {
		f(t, `[{"a":1}, {"b":[1,{"c":"]"}]} ]`, kindJSON, 0, []string{`{"a":1}`, `{"b":[1,{"c":"]"}]}`}, nil, nil)
		f(t, "[{\"a\":1},\n{\"b\":2}]", kindSniff, 0, []string{`{"a":1}`, `{"b":2}`}, nil, nil)
		f(t, `[{"a":1},2]`, kindJSON, 0, []string{`{"a":1}`}, []string{"parse_error:2"}, nil)
	})
	t.Run("ndjson", func(t *testing.T) {
		f(t, "{\"a\":1}\r\n\n{bad}\n{\"b\":2}\n[1]", kindNDJSON, 0, []string{`{"a":1}`, `{"b":2}`},
			[]string{"parse_error:{bad}", "parse_error:[1]"}, nil)
		f(t, "{\"a\":1}\n{\"b\":2}\n", kindSniff, 0, []string{`{"a":1}`, `{"b":2}`}, nil, nil)
		f(t, "{\"a\":\"\\q\"}\n", kindNDJSON, 0, nil, []string{`parse_error:{"a":"\q"}`}, nil)
	})
	t.Run("duplicate keys", func(t *testing.T) {
		f(t, "{\"a\":1}\n{\"ip\":\"a\",\"ip\":\"b\"}\n{\"b\":{\"c\":1,\"\\u0063\":2}}\n", kindNDJSON, 0, []string{`{"a":1}`},
			[]string{`parse_error:{"ip":"a","ip":"b"}`, `parse_error:{"b":{"c":1,"\u0063":2}}`}, nil)
		f(t, `[{"a":1},{"x":[{"k":1},{"k":1,"k":2}]},{"b":2}]`, kindJSON, 0, []string{`{"a":1}`, `{"b":2}`},
			[]string{`parse_error:{"x":[{"k":1},{"k":1,"k":2}]}`}, nil)
		f(t, ` {"ip":"a","ip":"b"} `, kindJSON, 0, nil, []string{`parse_error:{"ip":"a","ip":"b"}`}, nil)
		f(t, `{"ip":"a","ip":"b"}`, kindSniff, 0, nil, []string{`parse_error:{"ip":"a","ip":"b"}`}, nil)
		f(t, `[{"ip":"a","ip":"0123456789"}]`, kindJSON, 10, nil, []string{`too_large:{"ip":"a","ip":"0123456789"}`}, nil)
		out := splitOut{}
		if err := split([]byte(`[{"ip":"a","\u0069p":"b"}]`), kindJSON, &out); err != nil || len(out.dlq) != 1 ||
			out.deadLetters()[0].Reason != `duplicate key "ip"` {
			t.Fatalf("reason: %v %+v", err, out.deadLetters())
		}
	})
	t.Run("too large", func(t *testing.T) {
		f(t, "{\"a\":1}\n{\"b\":\"0123456789\"}\n", kindNDJSON, 10, []string{`{"a":1}`}, []string{`too_large:{"b":"0123456789"}`}, nil)
		f(t, `[{"b":"0123456789"}]`, kindJSON, 10, nil, []string{`too_large:{"b":"0123456789"}`}, nil)
	})
	t.Run("errors", func(t *testing.T) {
		for _, tc := range []struct {
			body string
			kind bodyKind
			err  error
		}{
			{"", kindJSON, ErrEmptyBody},
			{" \n ", kindNDJSON, ErrEmptyBody},
			{"\n\n", kindNDJSON, ErrEmptyBody},
			{"[]", kindJSON, ErrEmptyBody},
			{`{"a":`, kindJSON, ErrInvalidJSON},
			{`{"a":1}{"b":2}`, kindJSON, ErrInvalidJSON},
			{"{\"a\":1}\n{\"b\":2}", kindJSON, ErrInvalidJSON},
			{`[{"a":1},]`, kindJSON, ErrInvalidJSON},
			{`[{"a":1}`, kindJSON, ErrInvalidJSON},
			{`[{"a":1}] x`, kindJSON, ErrInvalidJSON},
			{`{"a":"\q"}`, kindJSON, ErrInvalidJSON},
			{`a=1&b=2`, kindSniff, ErrInvalidJSON},
			{`<xml/>`, kindSniff, ErrInvalidJSON},
			{`42`, kindJSON, ErrInvalidJSON},
			{`{"a":1`, kindSniff, ErrInvalidJSON},
			{`[{"a":1,"a":2},]`, kindJSON, ErrInvalidJSON},
			{`{"a":1,"a":2} x`, kindJSON, ErrInvalidJSON},
			{`[{"a":1,"a":"\q"}]`, kindJSON, ErrInvalidJSON},
		} {
			out := splitOut{}
			if err := split([]byte(tc.body), tc.kind, &out); !errors.Is(err, tc.err) {
				t.Errorf("split(%q, %d) = %v, want %v", tc.body, tc.kind, err, tc.err)
			}
		}
	})
}

// FuzzSplit checks the splitter's invariants on untrusted bodies: it never
// panics; every record is a valid JSON object without a repeated name that
// is a sub-slice of the body; a dead letter for a repeated name holds valid
// JSON that does repeat one; for a JSON body, success means the body is
// valid JSON.
func FuzzSplit(f *testing.F) {
	for _, s := range []string{
		`{"a":1}`, `[{"a":1},{"b":[2,"]"]}]`, "{\"a\":1}\n{bad}\n{\"c\":\"\\\"\"}\n",
		`[1,{"a":{}}]`, `{"a":"\u00e9"}`, "[\n]", `"str"`, `[{"a":1},]`, "{\"a\":1}\r\n",
		`[{"a":1,"a":2},{"b":1}]`, "{\"a\":1,\"\\u0061\":2}\n{\"b\":[{\"c\":1,\"c\":1}]}\n", `{"ip":"a","ip":"b"}`,
	} {
		for k := range 3 {
			f.Add([]byte(s), uint8(k), uint16(0))
			f.Add([]byte(s), uint8(k), uint16(4))
		}
	}
	f.Fuzz(func(t *testing.T, body []byte, kind uint8, maxEvent uint16) {
		out := splitOut{maxEvent: int(maxEvent)}
		err := split(body, bodyKind(kind%3), &out)
		if err != nil {
			if !errors.Is(err, ErrEmptyBody) && !errors.Is(err, ErrInvalidJSON) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if out.inputs() == 0 {
			t.Fatalf("success without events")
		}
		for _, r := range out.records() {
			if !json.Valid(r.Value) || r.Value[0] != '{' {
				t.Fatalf("record %q is not a valid JSON object", r.Value)
			}
			if err := codec.Check(r.Value); err != nil {
				t.Fatalf("record %q: %v", r.Value, err)
			}
			if maxEvent > 0 && len(r.Value) > int(maxEvent) {
				t.Fatalf("record of %d bytes over the cap %d", len(r.Value), maxEvent)
			}
			if !bytes.Contains(body, r.Value) {
				t.Fatalf("record %q not from the body", r.Value)
			}
		}
		for _, d := range out.deadLetters() {
			if strings.HasPrefix(d.Reason, "duplicate key") {
				if !json.Valid(d.Record.Value) || !errors.Is(codec.Check(d.Record.Value), codec.ErrDuplicateKey) {
					t.Fatalf("dead letter %q (%s) repeats no name", d.Record.Value, d.Reason)
				}
			}
		}
		if bodyKind(kind%3) == kindJSON {
			if !json.Valid(body) {
				t.Fatalf("JSON body %q accepted but not valid", body)
			}
		}
	})
}

func ndjsonBody(n int) []byte {
	var b bytes.Buffer
	for i := range n {
		fmt.Fprintf(&b, `{"id":"run-%d","event":"page_view","user_id":"u%d","email":"u%d@example.com","ip":"10.0.0.%d","ua":"Mozilla/5.0 (X11; Linux x86_64)","geo":{"country":"AU","city":"Sydney"},"ts":1767225600,"props":{"path":"/products/%d","ref":"search"}}`+"\n", i, i%97, i%97, i%250, i)
	}
	return b.Bytes()
}

func benchSplit(b *testing.B, body []byte, kind bodyKind) {
	out := splitOut{maxEvent: 1 << 20, spans: make([]span, 0, 2000)}
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	for b.Loop() {
		out.spans = out.spans[:0]
		if err := split(body, kind, &out); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(out.spans)), "ns/record")
}

// records returns the records of out's spans, as the receiver makes them.
func (o *splitOut) records() []engine.Record { return newAck(o.tag, o, nil).records() }

func BenchmarkSplitNDJSON(b *testing.B) { benchSplit(b, ndjsonBody(1000), kindNDJSON) }

func BenchmarkSplitArray(b *testing.B) {
	nd := bytes.TrimSpace(ndjsonBody(1000))
	body := append(append([]byte{'['}, bytes.ReplaceAll(nd, []byte("\n"), []byte(","))...), ']')
	benchSplit(b, body, kindJSON)
}
