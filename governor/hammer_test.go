package governor

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// hammer runs fn(worker, rng) on p goroutines released together, and
// returns when all have finished.
func hammer(tb testing.TB, p int, fn func(worker int, rng *rand.Rand)) {
	tb.Helper()
	var wg sync.WaitGroup
	start := make(chan struct{})
	for w := range p {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			fn(w, rand.New(rand.NewPCG(uint64(w), 0x5eed)))
		}()
	}
	close(start)
	wg.Wait()
}

// iterations scales a hammer's loop count down under -short.
func iterations(n int) int {
	if testing.Short() {
		return n / 10
	}
	return n
}

func TestHammerMemoryGuard(t *testing.T) {
	const (
		workers  = 8
		held     = 3   // leases a worker holds at most
		maxLease = 100 // bytes
	)
	n := iterations(20_000)
	g := NewMemoryGuard(workers*held*maxLease, 0.9)
	var total, largest atomic.Int64
	var stop atomic.Bool
	var readerErr atomic.Value

	var rg sync.WaitGroup
	rg.Add(1)
	go func() { // a reader sampling the guard while it moves
		defer rg.Done()
		for !stop.Load() {
			if v := g.InFlight(); v < 0 || v > workers*held*maxLease {
				readerErr.Store(v)
			}
			if l := g.Level(); l < 0 || l > 1 {
				readerErr.Store(l)
			}
			_ = g.Hard()
		}
	}()

	hammer(t, workers, func(_ int, rng *rand.Rand) {
		leases := make([]*Lease, 0, held)
		for range n {
			if len(leases) == held || (len(leases) > 0 && rng.IntN(2) == 0) {
				i := rng.IntN(len(leases))
				l := leases[i]
				l.Release()
				if rng.IntN(4) == 0 {
					l.Release() // idempotent
				}
				leases = append(leases[:i], leases[i+1:]...)
				continue
			}
			b := rng.Int64N(maxLease + 1) // 0 yields a nil lease
			leases = append(leases, g.Lease(b))
			total.Add(b)
			for {
				m := largest.Load()
				if b <= m || largest.CompareAndSwap(m, b) {
					break
				}
			}
		}
		for _, l := range leases {
			l.Release()
			l.Release()
		}
	})
	stop.Store(true)
	rg.Wait()

	if v := readerErr.Load(); v != nil {
		t.Fatalf("reader saw out-of-range value %v", v)
	}
	if g.InFlight() != 0 {
		t.Fatalf("InFlight %d after every lease released, want 0", g.InFlight())
	}
	if p := g.Peak(); p > workers*held*maxLease || p < largest.Load() {
		t.Fatalf("Peak %d outside [largest lease %d, sum of held %d]", p, largest.Load(), workers*held*maxLease)
	}
	if total.Load() == 0 {
		t.Fatal("nothing leased")
	}
}

func TestHammerGatePressureBudget(t *testing.T) {
	const (
		setters    = 2
		evaluators = 4
		observers  = 2
		readers    = 1
	)
	n := iterations(10_000)
	load := NewGauge("load")
	guard := NewMemoryGuard(1000, 0.9)
	p := newPressure(t, DefaultHysteresis(), guard, load)
	rec := &edgeRecorder{}
	gate := NewInboundGate(p, rec, NoopActuator{})
	budget := newBudget(t, BudgetConfig{Start: 1000, Min: 100, Max: 10_000, Increase: 100}, p)

	// Start held so at least one pause edge is delivered whatever the
	// interleaving, then let the hammer move the latch at will.
	load.Set(1, false)
	if gate.Evaluate() != Hold {
		t.Fatal("gate open at level 1")
	}
	holds := atomic.Uint64{}
	holds.Add(1)
	var bad atomic.Value
	levels := []float64{0.1, 0.5, 0.7, 0.79, 0.81, 0.9, 1}
	hammer(t, setters+evaluators+observers+readers, func(w int, rng *rand.Rand) {
		switch {
		case w < setters:
			for range n {
				load.Set(levels[rng.IntN(len(levels))], rng.IntN(20) == 0)
				l := guard.Lease(rng.Int64N(1000))
				if rng.IntN(2) == 0 {
					_ = p.Level()
				}
				l.Release()
			}
		case w < setters+evaluators:
			for range n {
				if gate.Evaluate() == Hold {
					holds.Add(1)
				}
			}
		case w < setters+evaluators+observers:
			for range n {
				budget.Observe(rng.Int64N(2000), time.Duration(rng.IntN(100)), time.Duration(rng.IntN(100)))
				if b := budget.Bytes(); b < 100 || b > 10_000 {
					bad.Store(b)
				}
			}
		default:
			for range n / 10 {
				s := p.Snapshot()
				if d := s.Pauses - s.Resumes; d > 1 || (d == 1) != s.Latched {
					bad.Store(s)
				}
				if s.Latched && s.LatchedSince.IsZero() {
					bad.Store(s)
				}
				_ = gate.State()
				_ = budget.Stats()
			}
		}
	})
	if v := bad.Load(); v != nil {
		t.Fatalf("inconsistent state observed: %+v", v)
	}

	// Settle: no pressure, one evaluation brings the gate and actuators open.
	load.Set(0, false)
	if gate.Evaluate() != Yes {
		t.Fatal("gate held with no pressure")
	}
	if guard.InFlight() != 0 {
		t.Fatalf("guard InFlight %d, want 0", guard.InFlight())
	}
	events, overlap := rec.snapshot()
	if overlap {
		t.Fatal("actuator calls overlapped")
	}
	pauses, resumes := checkAlternating(t, events)
	if pauses != resumes || uint64(pauses) != gate.Pauses() || uint64(resumes) != gate.Resumes() {
		t.Fatalf("actuator %d/%d, gate %d/%d: edges not paired", pauses, resumes, gate.Pauses(), gate.Resumes())
	}
	if p.Pauses() != p.Resumes() || gate.Pauses() > p.Pauses() {
		t.Fatalf("pressure edges %d/%d, gate pauses %d", p.Pauses(), p.Resumes(), gate.Pauses())
	}
	if pauses == 0 || p.Pauses() == 0 {
		t.Fatalf("no pause edge recorded (actuator %d, pressure %d)", pauses, p.Pauses())
	}
	if gate.Rejections() != holds.Load() {
		t.Fatalf("Rejections %d, evaluators saw %d holds", gate.Rejections(), holds.Load())
	}
	if st := budget.Stats(); st.Observations != uint64(observers*n) || st.Increases+st.Decreases > st.Observations {
		t.Fatalf("budget stats %+v after %d observations", st, observers*n)
	}
}
