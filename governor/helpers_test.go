package governor

import (
	"errors"
	"sync"
	"testing"
)

// newPressure returns a UnifiedPressure over srcs with h, failing the test on
// error.
func newPressure(tb testing.TB, h Hysteresis, srcs ...Source) *UnifiedPressure {
	tb.Helper()
	p, err := NewUnifiedPressure(h, srcs...)
	if err != nil {
		tb.Fatalf("NewUnifiedPressure(%+v): %v", h, err)
	}
	return p
}

// newBudget returns a ByteBudget, failing the test on error.
func newBudget(tb testing.TB, cfg BudgetConfig, p *UnifiedPressure) *ByteBudget {
	tb.Helper()
	b, err := NewByteBudget(cfg, p)
	if err != nil {
		tb.Fatalf("NewByteBudget(%+v): %v", cfg, err)
	}
	return b
}

// wantConfigErr checks that err is a *ConfigError on field wrapping
// ErrInvalidConfig (field "" expects nil).
func wantConfigErr(tb testing.TB, err error, field string) {
	tb.Helper()
	if field == "" {
		if err != nil {
			tb.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if !errors.Is(err, ErrInvalidConfig) {
		tb.Fatalf("error %v does not wrap ErrInvalidConfig", err)
	}
	var ce *ConfigError
	if !errors.As(err, &ce) {
		tb.Fatalf("error %v is not a *ConfigError", err)
	}
	if ce.Field != field {
		tb.Fatalf("error names field %q, want %q (%v)", ce.Field, field, err)
	}
}

// edgeRecorder is an Actuator that records every edge, in order, and checks
// that calls never overlap.
type edgeRecorder struct {
	mu      sync.Mutex
	events  []string // "pause:<by>" or "resume"
	levels  []float64
	inCall  bool
	overlap bool
}

func (r *edgeRecorder) enter() {
	r.mu.Lock()
	if r.inCall {
		r.overlap = true
	}
	r.inCall = true
	r.mu.Unlock()
}

func (r *edgeRecorder) leave() {
	r.mu.Lock()
	r.inCall = false
	r.mu.Unlock()
}

func (r *edgeRecorder) Pause(by string, level float64) {
	r.enter()
	defer r.leave()
	r.mu.Lock()
	r.events = append(r.events, "pause:"+by)
	r.levels = append(r.levels, level)
	r.mu.Unlock()
}

func (r *edgeRecorder) Resume(level float64) {
	r.enter()
	defer r.leave()
	r.mu.Lock()
	r.events = append(r.events, "resume")
	r.levels = append(r.levels, level)
	r.mu.Unlock()
}

func (r *edgeRecorder) snapshot() ([]string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.events...), r.overlap
}

// checkAlternating fails unless events alternate pause, resume, … starting
// with a pause; it returns the pause and resume counts.
func checkAlternating(tb testing.TB, events []string) (pauses, resumes int) {
	tb.Helper()
	for i, e := range events {
		isPause := len(e) >= 5 && e[:5] == "pause"
		if isPause != (i%2 == 0) {
			tb.Fatalf("event %d is %q: edges do not alternate (%v)", i, e, events)
		}
		if isPause {
			pauses++
		} else {
			resumes++
		}
	}
	return pauses, resumes
}
