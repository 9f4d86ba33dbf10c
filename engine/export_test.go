package engine

import "context"

// RunStreaming runs the governed loop's block streaming with a fixed
// sub-block size instead of the byte budget's, so that tests can cut one
// received block into several sub-blocks (RunGoverned receives at most a
// budget's bytes, so its blocks rarely span more than one): each block is
// processed and sunk in consecutive sub-blocks of at most subBlockBytes
// (floor one record), one lease at a time, the failed records of a
// sub-block's *RecordErrors routed right after its sink call, and the
// block's tokens committed once after the final sub-block. A whole-write
// sink error on any sub-block stops the run without committing the block.
func (d *Driver[T]) RunStreaming(ctx context.Context, r Receiver[T], process ProcessFunc[T], sink SinkFunc[T], subBlockBytes int64) error {
	return d.loop(ctx, r, modeStreaming, subBlockBytes, process, sink)
}
