package load

import (
	"math"
	"math/bits"
)

// Histogram is a log-linear bucket histogram of non-negative integer values
// (the load generator records latencies in nanoseconds), in the manner of
// HdrHistogram: values below 2^subBits have a bucket each; above that, every
// power-of-two range is split into 2^subBits equal buckets, so a bucket's
// width is at most 1/2^subBits of its lower bound (subBits 7: < 0.79 %).
//
// The bucket array grows on demand up to the largest value seen, so a
// histogram of millisecond latencies stays small. A Histogram is not safe for
// concurrent use: give each goroutine its own and Merge them.
type Histogram struct {
	subBits uint
	counts  []uint64
	total   uint64
	sum     float64
	min     uint64
	max     uint64
}

// DefaultSubBits is the precision of the run's latency histograms: relative
// bucket width below 1/128.
const DefaultSubBits = 7

// NewHistogram returns an empty histogram with 2^subBits buckets per
// power-of-two range; subBits is clamped to [1, 16].
func NewHistogram(subBits int) *Histogram {
	subBits = max(1, min(subBits, 16))
	return &Histogram{subBits: uint(subBits), min: math.MaxUint64}
}

// bucketIndex returns the bucket of v.
func (h *Histogram) bucketIndex(v uint64) int {
	sub := uint64(1) << h.subBits
	if v < sub {
		return int(v)
	}
	shift := uint(bits.Len64(v)) - h.subBits - 1
	return int(uint64(shift)*sub + v>>shift)
}

// bucketBounds returns the lowest value of bucket i and the bucket's width.
func (h *Histogram) bucketBounds(i int) (low, width uint64) {
	sub := uint64(1) << h.subBits
	if uint64(i) < sub {
		return uint64(i), 1
	}
	shift := uint64(i)/sub - 1
	mant := uint64(i) - shift*sub
	return mant << shift, 1 << shift
}

// Record adds one observation of v.
func (h *Histogram) Record(v uint64) {
	i := h.bucketIndex(v)
	if i >= len(h.counts) {
		h.grow(i)
	}
	h.counts[i]++
	h.total++
	h.sum += float64(v)
	h.min = min(h.min, v)
	h.max = max(h.max, v)
}

func (h *Histogram) grow(i int) {
	n := max(i+1, 2*len(h.counts), 64)
	c := make([]uint64, n)
	copy(c, h.counts)
	h.counts = c
}

// Merge adds every observation of o into h. Both must have the same
// precision; Merge panics otherwise (a programming error).
func (h *Histogram) Merge(o *Histogram) {
	if o.total == 0 {
		return
	}
	if o.subBits != h.subBits {
		panic("load: merging histograms of different precision")
	}
	if len(o.counts) > len(h.counts) {
		h.grow(len(o.counts) - 1)
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.total += o.total
	h.sum += o.sum
	h.min = min(h.min, o.min)
	h.max = max(h.max, o.max)
}

// Count returns the number of observations.
func (h *Histogram) Count() uint64 { return h.total }

// Min returns the smallest observation (0 when empty).
func (h *Histogram) Min() uint64 {
	if h.total == 0 {
		return 0
	}
	return h.min
}

// Max returns the largest observation (exact; 0 when empty).
func (h *Histogram) Max() uint64 { return h.max }

// Mean returns the arithmetic mean of the observations (0 when empty).
func (h *Histogram) Mean() float64 {
	if h.total == 0 {
		return 0
	}
	return h.sum / float64(h.total)
}

// Quantile returns the value at quantile q in [0, 1]: the midpoint of the
// bucket holding the observation of rank ⌈q·count⌉, clamped to the exact
// minimum and maximum, so it is within half a bucket width of the true
// value. It returns 0 when the histogram is empty.
func (h *Histogram) Quantile(q float64) uint64 {
	if h.total == 0 {
		return 0
	}
	q = max(0, min(q, 1))
	rank := uint64(math.Ceil(q * float64(h.total)))
	rank = max(rank, 1)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			low, width := h.bucketBounds(i)
			v := low + (width-1)/2
			return max(h.min, min(v, h.max))
		}
	}
	return h.max
}

// Reset empties the histogram, keeping its buckets allocated.
func (h *Histogram) Reset() {
	clear(h.counts)
	h.total, h.sum, h.min, h.max = 0, 0, math.MaxUint64, 0
}
