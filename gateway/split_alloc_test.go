//go:build !race

// The race detector's instrumentation allocates; allocation counts are
// asserted in normal builds only.

package gateway

import (
	"strings"
	"testing"
)

// TestSplitZeroAllocs asserts that splitting valid events allocates nothing
// per record once the output slice has room.
func TestSplitZeroAllocs(t *testing.T) {
	body := ndjsonBody(100)
	arr := "[" + strings.ReplaceAll(strings.TrimSpace(string(body)), "\n", ",") + "]"
	out := splitOut{spans: make([]span, 0, 200)}
	for _, tc := range []struct {
		body []byte
		kind bodyKind
	}{{body, kindNDJSON}, {[]byte(arr), kindJSON}} {
		allocs := testing.AllocsPerRun(20, func() {
			out.spans = out.spans[:0]
			if err := split(tc.body, tc.kind, &out); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Fatalf("kind %d: %v allocs per split of 100 events, want 0", tc.kind, allocs)
		}
	}
}
