package load

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// exactQuantile is the value of rank ⌈q·n⌉ in sorted data.
func exactQuantile(sorted []uint64, q float64) uint64 {
	rank := max(int(math.Ceil(q*float64(len(sorted)))), 1)
	return sorted[rank-1]
}

// checkQuantiles asserts every quantile is within one bucket width (relative
// 2^-subBits) of the exact value.
func checkQuantiles(t *testing.T, h *Histogram, data []uint64) {
	t.Helper()
	sorted := slices.Clone(data)
	slices.Sort(sorted)
	tol := 1 / float64(uint64(1)<<h.subBits)
	for _, q := range []float64{0, 0.001, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999, 0.9999, 1} {
		want := exactQuantile(sorted, q)
		got := h.Quantile(q)
		if d := math.Abs(float64(got) - float64(want)); d > tol*float64(want)+1 {
			t.Errorf("q%g = %d, want %d ± %.2f%%", q, got, want, tol*100)
		}
	}
	if h.Min() != sorted[0] || h.Max() != sorted[len(sorted)-1] || h.Count() != uint64(len(data)) {
		t.Errorf("min %d max %d count %d; want %d %d %d", h.Min(), h.Max(), h.Count(), sorted[0], sorted[len(sorted)-1], len(data))
	}
}

func TestHistogramQuantiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	gen := map[string]func(i int) uint64{
		"uniform 1..100000": func(i int) uint64 { return uint64(i + 1) },
		"small exact":       func(i int) uint64 { return uint64(i % 100) },
		// Log-normal-ish latencies around 2 ms with a long tail, in ns.
		"latency ns": func(int) uint64 { return uint64(2e6 * math.Exp(rng.NormFloat64())) },
		"bimodal": func(i int) uint64 {
			return map[bool]uint64{true: 150_000, false: 3_000_000_000}[i%100 != 0] + uint64(i%7)
		},
	}
	for name, f := range gen {
		for _, sub := range []int{DefaultSubBits, timelineSubBits, 3} {
			t.Run(name, func(t *testing.T) {
				h := NewHistogram(sub)
				data := make([]uint64, 100_000)
				for i := range data {
					data[i] = f(i)
					h.Record(data[i])
				}
				checkQuantiles(t, h, data)
			})
		}
	}
}

func TestHistogramKnownValues(t *testing.T) {
	h := NewHistogram(DefaultSubBits)
	for _, v := range []uint64{10, 20, 30, 40, 50, 60, 70, 80, 90, 100} {
		h.Record(v)
	}
	// Values below 2^7 have a bucket each: quantiles are exact.
	for q, want := range map[float64]uint64{0.1: 10, 0.5: 50, 0.9: 90, 0.95: 100, 1: 100} {
		if got := h.Quantile(q); got != want {
			t.Errorf("q%g = %d, want %d", q, got, want)
		}
	}
	if h.Mean() != 55 {
		t.Errorf("mean %g", h.Mean())
	}
	if NewHistogram(7).Quantile(0.5) != 0 {
		t.Error("empty histogram quantile not 0")
	}
	h.Reset()
	if h.Count() != 0 || h.Max() != 0 || h.Min() != 0 {
		t.Error("Reset left observations")
	}
}

func TestHistogramBucketsContiguous(t *testing.T) {
	h := NewHistogram(4)
	prev := -1
	for v := uint64(0); v < 1<<16; v++ {
		i := h.bucketIndex(v)
		low, width := h.bucketBounds(i)
		if v < low || v >= low+width {
			t.Fatalf("v %d in bucket %d [%d, %d)", v, i, low, low+width)
		}
		if i != prev && i != prev+1 {
			t.Fatalf("bucket index jumps from %d to %d at %d", prev, i, v)
		}
		prev = i
	}
	if i := h.bucketIndex(math.MaxUint64); i < prev {
		t.Fatalf("max uint64 bucket %d", i)
	}
}

func TestHistogramMerge(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	all := NewHistogram(DefaultSubBits)
	parts := []*Histogram{NewHistogram(DefaultSubBits), NewHistogram(DefaultSubBits), NewHistogram(DefaultSubBits)}
	var data []uint64
	for i := range 30_000 {
		// Parts cover different ranges so that Merge has to grow.
		v := rng.Uint64N(1000 * uint64(1+i%3) * uint64(1+i%3) * 1000)
		data = append(data, v)
		all.Record(v)
		parts[i%3].Record(v)
	}
	merged := NewHistogram(DefaultSubBits)
	for _, p := range parts {
		merged.Merge(p)
	}
	merged.Merge(NewHistogram(DefaultSubBits)) // empty: no-op
	if !slices.Equal(merged.counts[:len(all.counts)], all.counts) || merged.Count() != all.Count() || merged.Max() != all.Max() || merged.Min() != all.Min() {
		t.Fatal("merged histogram differs from the one that saw all values")
	}
	checkQuantiles(t, merged, data)
	defer func() {
		if recover() == nil {
			t.Error("merging different precisions did not panic")
		}
	}()
	coarse := NewHistogram(3)
	coarse.Record(1)
	merged.Merge(coarse)
}

func TestHistogramRecordAllocs(t *testing.T) {
	h := NewHistogram(DefaultSubBits)
	h.Record(10e9) // grow once
	var v uint64 = 12345
	if n := testing.AllocsPerRun(1000, func() { h.Record(v); v = v*31 + 7; v %= 10e9 }); n != 0 {
		t.Fatalf("Record allocates %v per call", n)
	}
}

func FuzzHistogramQuantile(f *testing.F) {
	f.Add(uint64(1), uint64(2), uint64(1000), uint64(1<<40), uint8(7), 0.5)
	f.Add(uint64(0), uint64(0), uint64(0), uint64(math.MaxUint64), uint8(1), 0.999)
	f.Fuzz(func(t *testing.T, a, b, c, d uint64, sub uint8, q float64) {
		if math.IsNaN(q) {
			return
		}
		h := NewHistogram(int(sub % 17))
		data := []uint64{a, b, c, d}
		for _, v := range data {
			h.Record(v)
		}
		got := h.Quantile(q)
		slices.Sort(data)
		if got < data[0] || got > data[3] {
			t.Fatalf("quantile %g = %d outside [%d, %d]", q, got, data[0], data[3])
		}
		qq := max(0, min(q, 1))
		want := exactQuantile(data, qq)
		tol := float64(want) / float64(uint64(1)<<h.subBits)
		if math.Abs(float64(got)-float64(want)) > tol+1 {
			t.Fatalf("quantile %g = %d, want %d ± %g", q, got, want, tol)
		}
	})
}
