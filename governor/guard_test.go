package governor

import (
	"testing"
)

func TestMemoryGuardLevelAndHard(t *testing.T) {
	tests := []struct {
		name     string
		limit    int64
		hardAt   float64
		lease    int64
		level    float64
		hard     bool
		inFlight int64
	}{
		{"empty", 1000, 0.9, 0, 0, false, 0},
		{"half", 1000, 0.9, 500, 0.5, false, 500},
		{"just below hard", 1000, 0.9, 899, 0.899, false, 899},
		{"at hard", 1000, 0.9, 900, 0.9, true, 900},
		{"over limit clamps level", 1000, 0.9, 2500, 1, true, 2500},
		{"default hardAt", 1000, 0, 900, 0.9, true, 900},
		{"hardAt 1", 1000, 1, 999, 0.999, false, 999},
		{"hardAt 1 at limit", 1000, 1, 1000, 1, true, 1000},
		{"fractional hard bytes round up", 10, 0.85, 8, 0.8, false, 8},
		{"fractional hard bytes reached", 10, 0.85, 9, 0.9, true, 9},
		{"unlimited", 0, 0.9, 1 << 40, 0, false, 1 << 40},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := NewMemoryGuard(tc.limit, tc.hardAt)
			l := g.Lease(tc.lease)
			t.Cleanup(l.Release)
			if got := g.Level(); got != tc.level {
				t.Errorf("Level = %v, want %v", got, tc.level)
			}
			if got := g.Hard(); got != tc.hard {
				t.Errorf("Hard = %v, want %v", got, tc.hard)
			}
			if got := g.InFlight(); got != tc.inFlight {
				t.Errorf("InFlight = %d, want %d", got, tc.inFlight)
			}
			if g.Name() != "memory_guard" {
				t.Errorf("Name = %q", g.Name())
			}
			if g.Limit() != tc.limit {
				t.Errorf("Limit = %d, want %d", g.Limit(), tc.limit)
			}
		})
	}
}

func TestMemoryGuardInvalidPanics(t *testing.T) {
	for _, tc := range []struct {
		name   string
		limit  int64
		hardAt float64
	}{
		{"negative limit", -1, 0.9},
		{"negative hardAt", 10, -0.1},
		{"hardAt above 1", 10, 1.5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			NewMemoryGuard(tc.limit, tc.hardAt)
		})
	}
}

func TestLeaseReleaseIdempotent(t *testing.T) {
	g := NewMemoryGuard(1000, 0.9)
	a, b := g.Lease(300), g.Lease(200)
	if g.InFlight() != 500 || g.Peak() != 500 {
		t.Fatalf("InFlight %d Peak %d, want 500 500", g.InFlight(), g.Peak())
	}
	if a.Bytes() != 300 || a.Released() {
		t.Fatalf("lease a: Bytes %d Released %v", a.Bytes(), a.Released())
	}
	a.Release()
	a.Release()
	a.Release()
	if g.InFlight() != 200 {
		t.Fatalf("after triple release of a: InFlight %d, want 200", g.InFlight())
	}
	if !a.Released() || a.Bytes() != 300 {
		t.Fatalf("released lease: Released %v Bytes %d", a.Released(), a.Bytes())
	}
	b.Release()
	b.Release()
	if g.InFlight() != 0 {
		t.Fatalf("InFlight %d, want 0", g.InFlight())
	}
	if g.Peak() != 500 {
		t.Fatalf("Peak %d after release, want 500 (high-water)", g.Peak())
	}
	c := g.Lease(100)
	defer c.Release()
	g.ResetPeak()
	if g.Peak() != 100 {
		t.Fatalf("Peak after ResetPeak %d, want 100", g.Peak())
	}
}

func TestLeaseNilAndEmpty(t *testing.T) {
	g := NewMemoryGuard(1000, 0.9)
	for _, n := range []int64{0, -5} {
		l := g.Lease(n)
		if l != nil {
			t.Fatalf("Lease(%d) = %v, want nil", n, l)
		}
		l.Release() // must not panic
		if l.Bytes() != 0 || !l.Released() {
			t.Fatalf("nil lease: Bytes %d Released %v", l.Bytes(), l.Released())
		}
	}
	var nilGuard *MemoryGuard
	if l := nilGuard.Lease(10); l != nil {
		t.Fatalf("nil guard Lease = %v, want nil", l)
	}
	if g.InFlight() != 0 || g.Peak() != 0 {
		t.Fatalf("InFlight %d Peak %d, want 0 0", g.InFlight(), g.Peak())
	}
}

func TestLeaseDeferOnEveryExitPath(t *testing.T) {
	g := NewMemoryGuard(1000, 0.9)
	work := func(fail bool) (err error) {
		l := g.Lease(400)
		defer l.Release()
		if fail {
			return errTest
		}
		l.Release() // an early explicit release plus the deferred one
		return nil
	}
	_ = work(true)
	_ = work(false)
	func() {
		defer func() { _ = recover() }()
		l := g.Lease(100)
		defer l.Release()
		panic("boom")
	}()
	if g.InFlight() != 0 {
		t.Fatalf("InFlight %d, want 0", g.InFlight())
	}
}

var errTest = &ConfigError{Field: "test"}
