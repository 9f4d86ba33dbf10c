package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"time"
)

func TestSplitEvents(t *testing.T) {
	tests := []struct {
		name string
		body string
		want []string // nil = error
	}{
		{"array", `[{"a":1}, {"b":2}]`, []string{`{"a":1}`, `{"b":2}`}},
		{"array spaced", " \n[ 1 , \"x\" ]\n", []string{`1`, `"x"`}},
		{"one object", `{"a":1}`, []string{`{"a":1}`}},
		{"pretty object", "{\n  \"a\": 1\n}\n", []string{"{\n  \"a\": 1\n}"}},
		{"ndjson", "{\"a\":1}\n{\"b\":2}\n", []string{`{"a":1}`, `{"b":2}`}},
		{"ndjson crlf blank lines", "{\"a\":1}\r\n\r\n  {\"b\":2}  \r\n", []string{`{"a":1}`, `{"b":2}`}},
		{"empty", "", nil},
		{"blank", " \n\t ", nil},
		{"empty array", "[]", nil},
		{"truncated array", `[{"a":1}`, nil},
		{"bad line", "{\"a\":1}\n{oops}\n", nil},
		{"garbage", "hello", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := SplitEvents([]byte(tt.body))
			if tt.want == nil {
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("SplitEvents(%q) = %q, %v; want ErrInvalid", tt.body, got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
			for i := range got {
				if string(got[i]) != tt.want[i] {
					t.Fatalf("event %d = %q, want %q", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestSplitEventsNamesBadLine(t *testing.T) {
	_, err := SplitEvents([]byte("{\"a\":1}\n\n{\"b\":}\n"))
	if err == nil || err.Error() != "sample line 3 is not valid JSON (NDJSON: one JSON value per line)" {
		t.Fatalf("err = %v", err)
	}
}

// FuzzSplitEvents: whatever the body, SplitEvents either fails with
// ErrInvalid or returns at least one event, each valid JSON and a
// sub-slice of the body.
func FuzzSplitEvents(f *testing.F) {
	for _, s := range []string{`[{"a":1},{"b":2}]`, "{\"a\":1}\n{\"b\":2}", `{"a":1}`, "[", "\n\n", `[1,2,]`, "{\"a\":\"\\u00\"}"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		events, err := SplitEvents(body)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v is not ErrInvalid", err)
			}
			return
		}
		if len(events) == 0 {
			t.Fatal("no events and no error")
		}
		for i, e := range events {
			if !json.Valid(e) {
				t.Fatalf("event %d %q is not valid JSON", i, e)
			}
			if !bytes.Contains(body, e) {
				t.Fatalf("event %d %q is not from the body", i, e)
			}
		}
	})
}

func TestEncodeDryRun(t *testing.T) {
	res := DryRunResult{
		Transforms: []string{"f"},
		Events: []DryRunEvent{
			{Index: 0, Decision: DecisionKept, Outputs: 1, Duration: 1500 * time.Nanosecond},
			{Index: 1, Decision: DecisionDropped},
			{Index: 2, Decision: DecisionDeadLettered, Reason: "trap: f: unreachable", Stage: "f"},
			{Index: 3, Decision: DecisionFannedOut, Outputs: 2},
		},
		Records: []DryRunRecord{
			{Input: 0, Topic: "t", Key: []byte("k"), Headers: []DryRunHeader{{Key: "h", Value: []byte("v")}}, Value: []byte(`{"a":1}`)},
			{Input: 3, Value: []byte("plain text")},
			{Input: 3, Key: []byte{0xff}, Value: []byte{0xff, 0xfe}},
		},
		PeakMemoryBytes: 2 << 20,
		Duration:        time.Millisecond,
	}
	b, err := json.Marshal(encodeDryRun(res, 4))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"transforms":["f"],"summary":{"events":4,"kept":1,"dropped":1,"dead_lettered":1,"fanned_out":1,"records_out":3},` +
		`"events":[{"index":0,"decision":"kept","outputs":1,"duration_us":1.5},{"index":1,"decision":"dropped","outputs":0,"duration_us":0},` +
		`{"index":2,"decision":"dead_lettered","outputs":0,"reason":"trap: f: unreachable","stage":"f","duration_us":0},` +
		`{"index":3,"decision":"fanned_out","outputs":2,"duration_us":0}],` +
		`"records":[{"input":0,"topic":"t","key":"k","headers":[{"key":"h","value":"v"}],"value":{"a":1}},` +
		`{"input":3,"topic":"","key":null,"headers":[],"value_string":"plain text"},` +
		`{"input":3,"topic":"","key":null,"key_base64":"/w==","headers":[],"value_base64":"//4="}],` +
		`"peak_memory_bytes":2097152,"duration_us":1000}`
	if string(b) != want {
		t.Fatalf("got\n%s\nwant\n%s", b, want)
	}
}
