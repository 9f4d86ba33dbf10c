package engine

// SubBlockDrain cuts a block's records into consecutive sub-blocks of at most
// a target number of bytes (Record.Size), lazily: each Next returns one
// sub-block and leaves the rest untouched, so the streaming driver never
// materialises all sub-blocks at once.
//
// Splitting contract:
//   - records keep their order;
//   - a sub-block takes records while their sum stays ≤ the target, with a
//     floor of one record: a record whose size alone meets or exceeds the
//     target is a sub-block by itself, so the loop never stalls;
//   - a target ≤ 0 yields one record per sub-block;
//   - an exhausted drain returns false.
//
// Sub-blocks are views of the block's backing array with their capacity
// clipped, so a process stage that appends (fans out) reallocates instead of
// overwriting the next sub-block. Next does not allocate.
type SubBlockDrain struct {
	recs   []Record
	next   int
	target int64
}

// NewSubBlockDrain returns a drain over recs with the given byte target.
func NewSubBlockDrain(recs []Record, targetBytes int64) SubBlockDrain {
	return SubBlockDrain{recs: recs, target: targetBytes}
}

// Next returns the next sub-block, or false when the drain is exhausted.
func (d *SubBlockDrain) Next() ([]Record, bool) {
	if d.next >= len(d.recs) {
		return nil, false
	}
	start := d.next
	sum := int64(d.recs[start].Size())
	end := start + 1
	for end < len(d.recs) {
		n := int64(d.recs[end].Size())
		if sum+n > d.target {
			break
		}
		sum += n
		end++
	}
	d.next = end
	return d.recs[start:end:end], true
}

// Remaining returns the number of records not yet returned.
func (d *SubBlockDrain) Remaining() int { return len(d.recs) - d.next }

// Done reports whether every record has been returned.
func (d *SubBlockDrain) Done() bool { return d.next >= len(d.recs) }
