package sluice

import (
	"encoding/json"
	"errors"
	"math"
	"testing"
	"unicode/utf8"
)

func TestValue(t *testing.T) {
	tests := []struct {
		raw    string
		exists bool
		str    string
		isStr  bool
	}{
		{`"DE"`, true, "DE", true},
		{`"a\"b\\c\u00e9\ud83d\ude00"`, true, "a\"b\\cé😀", true},
		{`42`, true, "42", false},
		{`null`, true, "null", false},
		{``, false, "", false},
	}
	for _, tc := range tests {
		var v Value
		if tc.exists {
			v = Value(tc.raw)
		}
		if v.Exists() != tc.exists || v.String() != tc.str || v.IsString() != tc.isStr {
			t.Errorf("%q: exists %v string %q isString %v", tc.raw, v.Exists(), v.String(), v.IsString())
		}
	}
	if string(Value(`"a\nb"`).Bytes()) != "a\nb" || string(Value(`"ab"`).Bytes()) != "ab" || string(Value(`12`).Bytes()) != "12" {
		t.Error("Bytes")
	}
	if !Value(`"heartbeat"`).Equal("heartbeat") || Value(`"heartbeats"`).Equal("heartbeat") || Value(`1`).Equal("1") {
		t.Error("Equal")
	}
	if !Value(`"heart\u0062eat"`).Equal("heartbeat") {
		t.Error("Equal with an escape")
	}
	if n, ok := Value(`-12`).Int(); !ok || n != -12 {
		t.Error("Int")
	}
	if _, ok := Value(`1.5`).Int(); ok {
		t.Error("Int of a float")
	}
	if f, ok := Value(`1.5e2`).Float(); !ok || f != 150 {
		t.Error("Float")
	}
	if _, ok := Value(`"1"`).Float(); ok {
		t.Error("Float of a string")
	}
	if b, ok := Value(`true`).Bool(); !ok || !b {
		t.Error("Bool")
	}
	if !Value(`null`).IsNull() || Value(nil).IsNull() {
		t.Error("IsNull")
	}
}

func TestAppendJSON(t *testing.T) {
	tests := []struct {
		v    any
		want string
	}{
		{nil, `null`},
		{"a\"b\n\x01é", `"a\"b\n\u0001é"`},
		{"\xff", `"\ufffd"`},
		{true, `true`},
		{42, `42`},
		{int64(-7), `-7`},
		{uint64(7), `7`},
		{1.5, `1.5`},
		{Value(`{"x":1}`), `{"x":1}`},
		{Value(nil), `null`},
		{RawJSON(`[1]`), `[1]`},
		{map[string]int{"a": 1}, `{"a":1}`},
	}
	for _, tc := range tests {
		got, err := appendJSON(nil, tc.v)
		if err != nil || string(got) != tc.want {
			t.Errorf("%#v: %s, %v; want %s", tc.v, got, err, tc.want)
		}
	}
	if _, err := appendJSON(nil, math.NaN()); !errors.Is(err, ErrInvalidJSON) {
		t.Errorf("NaN: %v", err)
	}
}

// FuzzQuoteRoundTrip: appendQuoted produces JSON that encoding/json and
// unquote both decode to the same string (for valid UTF-8).
func FuzzQuoteRoundTrip(f *testing.F) {
	f.Add("plain")
	f.Add("quote\" back\\ nl\n ctl\x01 é 😀")
	f.Fuzz(func(t *testing.T, s string) {
		q := appendQuoted(nil, s)
		var viaStd string
		if err := json.Unmarshal(q, &viaStd); err != nil {
			t.Fatalf("%q: invalid JSON %s: %v", s, q, err)
		}
		got, ok := unquote(q)
		if !ok || got != viaStd {
			t.Fatalf("%q: unquote %q %v, encoding/json %q", s, got, ok, viaStd)
		}
	})
}

// FuzzUnquote: unquote agrees with encoding/json on valid UTF-8 (on
// invalid UTF-8 it keeps the bytes where encoding/json substitutes U+FFFD).
func FuzzUnquote(f *testing.F) {
	f.Add(`"a\u00e9\ud83d\ude00"`)
	f.Add(`"\ud800"`)
	f.Add(`"bad \q"`)
	f.Fuzz(func(t *testing.T, q string) {
		if !utf8.ValidString(q) {
			return
		}
		got, ok := unquote([]byte(q))
		var want string
		err := json.Unmarshal([]byte(q), &want)
		if ok != (err == nil) {
			t.Fatalf("%q: unquote ok=%v, encoding/json err=%v", q, ok, err)
		}
		if ok && got != want {
			t.Fatalf("%q: unquote %q, encoding/json %q", q, got, want)
		}
	})
}

func TestStatusErr(t *testing.T) {
	for st, want := range map[int32]error{
		StatusNotFound: ErrNotFound, StatusBadRecord: ErrBadRecord, StatusBadMemory: ErrBadMemory,
		StatusInvalidJSON: ErrInvalidJSON, StatusBadPath: ErrBadPath, StatusLimit: ErrLimit, StatusWrongType: ErrWrongType,
	} {
		if err := statusErr("op", "", st); !errors.Is(err, want) {
			t.Errorf("%d: %v", st, err)
		}
	}
	if statusErr("op", "", 5) != nil || statusErr("op", "", StatusOK) != nil {
		t.Error("non-negative is success")
	}
	var se *StatusError
	if err := statusErr("set", "a.b", -99); !errors.As(err, &se) || err.Error() != "sluice: set a.b: status -99" {
		t.Errorf("unknown status: %v", err)
	}
}

func FuzzFastScans(f *testing.F) {
	f.Add([]byte("heartbeat"), "heartbeat")
	f.Add([]byte(`0123456789abcdef"x`), "0123456789abcdef\"x")
	f.Add([]byte("tab\there and a long tail"), "tab")
	f.Fuzz(func(t *testing.T, b []byte, s string) {
		if got, want := equalString(b, s), string(b) == s; got != want {
			t.Fatalf("equalString(%q, %q) = %v", b, s, got)
		}
		want := true
		for _, c := range b {
			if c < 0x20 || c == '\\' || c == '"' {
				want = false
			}
		}
		if got := plainString(b); got != want {
			t.Fatalf("plainString(%q) = %v", b, got)
		}
	})
}

// FuzzValueEqual: Equal and Bytes, with their loop-free paths for short
// strings, agree with their straightforward versions (kept here as the
// reference) on any input, well-formed or not.
func FuzzValueEqual(f *testing.F) {
	for _, c := range [][2]string{{`"heartbeat"`, "heartbeat"}, {`"click"`, "heartbeat"}, {`"heart\u0062eat"`, "heartbeat"},
		{`"a"`, "a"}, {`""`, ""}, {`"ab\"c"`, `ab"c`}, {`"0123456789abcdef"`, "0123456789abcdef"}, {`"x\ny"`, "x\ny"}, {`"é"`, "é"}, {`5`, "5"}, {`"00`, "0"}} {
		f.Add(c[0], c[1])
	}
	f.Fuzz(func(t *testing.T, raw, s string) {
		v := Value(raw)
		if got, want := v.Equal(s), equalRef(v, s); got != want {
			t.Fatalf("Value(%q).Equal(%q) = %v, want %v", raw, s, got, want)
		}
		if got, want := v.Bytes(), bytesRef(v); string(got) != string(want) {
			t.Fatalf("Value(%q).Bytes() = %q, want %q", raw, got, want)
		}
	})
}

func equalRef(v Value, s string) bool {
	if !v.IsString() {
		return false
	}
	inner := v[1 : len(v)-1]
	if string(inner) == s {
		return plainString(inner)
	}
	if plainString(inner) {
		return false
	}
	u, ok := unquote(v)
	return ok && u == s
}

func bytesRef(v Value) []byte {
	if v.IsString() {
		inner := v[1 : len(v)-1]
		if plainString(inner) {
			return inner
		}
		s, _ := unquote(v)
		return []byte(s)
	}
	return v
}

type textish struct{ s string }

func (t textish) MarshalText() ([]byte, error) { return []byte("<" + t.s + ">"), nil }

type jsonish struct{}

func (jsonish) MarshalJSON() ([]byte, error) { return []byte(" { \"a\" : [ 1 , \"<&>\" ] } "), nil }

// TestSetEncodingLikeEncodingJSON: the types Set encodes that used to go
// through encoding/json still give encoding/json's bytes.
func TestSetEncodingLikeEncodingJSON(t *testing.T) {
	vals := []any{
		int8(-3), int16(300), uint(7), uint8(200), uint16(65000), float32(1.5), float32(3e-7), float32(1e22),
		[]byte("hi\x00"), []byte{}, textish{"x&y"}, jsonish{},
		[]any{1, "a<b", 2.5, 1e21, 1e-7, -0.0, true, nil, []any{"\u2028\u2029"}, map[string]any{"z": 1, "a": []string{"x"}}},
		[]string{"q\"\\\n\t\x01é😀</>", "\xff"}, []int{1, -2}, []int64{1 << 62}, []float64{0.1, 123456789, 1e100}, []bool{true},
		map[string]any{"b": 1, "a": "x", "\u00e9": nil, "<": map[string]bool{"t": true}},
		map[string]string{"k2": "v", "k1": "&"}, map[string]int{"x": 1}, map[string]int64{"y": 2}, map[string]float64{"f": 0.000001},
		map[string]bool{}, []any(nil), map[string]any(nil),
	}
	for _, v := range vals {
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		got, err := appendJSON(nil, v)
		if err != nil || string(got) != string(want) {
			t.Errorf("Set(%#v) encodes %s (%v), encoding/json %s", v, got, err, want)
		}
	}
	// RawJSON and Value inside a container are JSON text (encoding/json
	// took them for []byte and wrote base64), compacted as encoding/json
	// compacts json.RawMessage.
	if got, err := appendJSON(nil, []any{RawJSON(`[ 1, {"a" : "<"} ]`), Value(`"v"`)}); err != nil || string(got) != `[[1,{"a":"\u003c"}],"v"]` {
		t.Errorf("nested RawJSON: %s, %v", got, err)
	}
	if _, err := appendJSON(nil, struct{ A int }{1}); !errors.Is(err, ErrCannotEncode) {
		t.Errorf("a struct: %v, want ErrCannotEncode", err)
	}
	if _, err := appendJSON(nil, []any{math.NaN()}); !errors.Is(err, ErrInvalidJSON) {
		t.Errorf("NaN: %v", err)
	}
}

// FuzzNestedStrings: strings and floats inside a container are encoded as
// encoding/json encodes them.
func FuzzNestedStrings(f *testing.F) {
	f.Add("a<b>&c\u2028", 1.5)
	f.Add("\xff\x01\"\\", 1e-7)
	f.Fuzz(func(t *testing.T, s string, x float64) {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return
		}
		v := map[string]any{s: []any{s, x, float32(x)}}
		want, err := json.Marshal(v)
		if err != nil {
			return
		}
		got, err := appendJSON(nil, v)
		if err != nil || string(got) != string(want) {
			t.Fatalf("encodes %s (%v), encoding/json %s", got, err, want)
		}
	})
}
