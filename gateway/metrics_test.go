package gateway

import "testing"

func TestReasonClass(t *testing.T) {
	for _, tc := range []struct{ reason, stage, want string }{
		{"parse error: line 3 is not valid JSON", "receiver", ReasonParseError},
		{"event too large: 3000 bytes over the 2048-byte per-event cap", "receiver", ReasonTooLarge},
		{"parse error: invalid JSON", "parse", ReasonParseError},
		{"trap: filter: wasm error: unreachable", "filter", ReasonTrap},
		{"oom: enrich: out of memory", "enrich", ReasonTrap},
		{"abort: route: status 1", "route", ReasonTrap},
		{"deadline: loop exceeded 50ms", "loop", ReasonDeadline},
		{"missing user_id, json says so", "route", ReasonTransform},
	} {
		if got := reasonClass(tc.reason, tc.stage); got != tc.want {
			t.Errorf("reasonClass(%q, %q) = %q, want %q", tc.reason, tc.stage, got, tc.want)
		}
	}
}
