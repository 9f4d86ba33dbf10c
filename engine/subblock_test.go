package engine_test

import (
	"testing"

	"github.com/sluicehq/sluice/engine"
)

// FuzzSubBlockDrain holds the splitting contract for any sizes and target:
// order kept, every record exactly once, each sub-block ≤ target unless it
// is a single record, and no sub-block could have taken the next record.
func FuzzSubBlockDrain(f *testing.F) {
	f.Add([]byte{10, 10, 10, 10, 10}, int64(25))
	f.Add([]byte{200, 1}, int64(4))
	f.Add([]byte{}, int64(100))
	f.Add([]byte{3, 3, 3}, int64(0))
	f.Add([]byte{0, 0, 5, 0}, int64(-1))
	f.Fuzz(func(t *testing.T, sizes []byte, target int64) {
		recs := make([]engine.Record, len(sizes))
		for i, s := range sizes {
			recs[i] = engine.Record{Value: make([]byte, s), Tag: uint64(i)}
		}
		d := engine.NewSubBlockDrain(recs, target)
		next := 0
		for sub, ok := d.Next(); ok; sub, ok = d.Next() {
			if len(sub) == 0 {
				t.Fatal("empty sub-block")
			}
			var sum int64
			for _, r := range sub {
				if r.Tag != uint64(next) {
					t.Fatalf("record %d out of order (want %d)", r.Tag, next)
				}
				next++
				sum += int64(len(r.Value))
			}
			if len(sub) > 1 && sum > target {
				t.Fatalf("sub-block of %d records holds %d bytes > target %d", len(sub), sum, target)
			}
			if next < len(recs) && sum+int64(len(recs[next].Value)) <= target {
				t.Fatalf("sub-block stopped at %d bytes though the next record (%d) fits target %d", sum, len(recs[next].Value), target)
			}
			if d.Remaining() != len(recs)-next {
				t.Fatalf("Remaining = %d, want %d", d.Remaining(), len(recs)-next)
			}
		}
		if next != len(recs) || !d.Done() {
			t.Fatalf("drained %d of %d records", next, len(recs))
		}
	})
}
