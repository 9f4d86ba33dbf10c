package engine

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"unique"
	"unsafe"

	"github.com/sluicehq/sluice/engine/codec"
)

// Interner dedups hot field names (routing keys such as "_table") across
// blocks and caches their compiled paths. Names are interned with Go's
// unique package, so equal names share one canonical string and compare by
// handle. Safe for concurrent use; a driver keeps one for all its blocks.
type Interner struct {
	paths sync.Map // unique.Handle[string] → codec.Path
	n     atomic.Int64
}

// Intern returns the canonical handle of name.
func (in *Interner) Intern(name string) unique.Handle[string] {
	h := unique.Make(name)
	if _, ok := in.paths.Load(h); !ok {
		p, err := codec.ParsePath(name)
		if err != nil {
			p = codec.Path{} // an uncompilable name is still interned
		}
		if _, loaded := in.paths.LoadOrStore(h, p); !loaded {
			in.n.Add(1)
		}
	}
	return h
}

// Path returns the compiled path of a dotted field name, compiling it once
// per name for the life of the interner.
func (in *Interner) Path(name string) (codec.Path, error) {
	h := unique.Make(name)
	if v, ok := in.paths.Load(h); ok {
		if p := v.(codec.Path); p.Len() > 0 {
			return p, nil
		}
	}
	p, err := codec.ParsePath(name)
	if err != nil {
		return codec.Path{}, err
	}
	if _, loaded := in.paths.LoadOrStore(h, p); !loaded {
		in.n.Add(1)
	}
	return p, nil
}

// Len returns the number of distinct names interned.
func (in *Interner) Len() int { return int(in.n.Load()) }

// ParsedBatch is a pre-parsed block for RunParsed: Records[i] decoded is
// Values[i]. It holds only records that parsed; the others were handled by
// the ParseErrorAction (dead letters are in DLQ under ParseErrorDLQ). Tokens
// are the block's input tokens, whatever survived.
//
// A ParsedBatch and its slices are valid only during the ParsedProcessFunc
// call; the driver reuses Values for the next block.
type ParsedBatch[T any] struct {
	Records  []Record
	Values   []codec.Value
	Tokens   []T
	DLQ      []DLQEntry
	Interner *Interner
}

// Len returns the number of parsed records.
func (pb *ParsedBatch[T]) Len() int { return len(pb.Records) }

// Intern interns a routing-field name through the shared interner.
func (pb *ParsedBatch[T]) Intern(name string) unique.Handle[string] {
	return pb.Interner.Intern(name)
}

// Batch reassembles a Batch from the parsed batch's records, tokens and
// dead letters, for a process stage that does not change records.
func (pb *ParsedBatch[T]) Batch() Batch[T] {
	return Batch[T]{Records: pb.Records, Tokens: pb.Tokens, DLQ: pb.DLQ}
}

// ParsedProcessFunc is RunParsed's process stage. It returns the batch to
// sink; its dead letters are routed before the commit, and so are the parse
// failures in pb.DLQ whether or not it passes them on (pb.Batch() does, and
// they are not routed twice). The driver restores the input tokens, as for
// ProcessFunc.
type ParsedProcessFunc[T any] func(ctx context.Context, pb *ParsedBatch[T]) (Batch[T], error)

// RunParsed is Run with every FormatJSON record of a block decoded by
// codec.Parse before the process stage (FormatRaw records pass with a null
// Value). A record that does not parse is handled by Config.ParseError:
// ParseErrorDLQ turns it into a dead letter (stage "parse") routed before
// the commit, ParseErrorSkip drops it (counted), ParseErrorFailBatch fails
// the block with a *ProcessError wrapping ErrParseBatchFailed. The block's
// input tokens are committed in every non-failing case.
//
// Prefer Run with codec.Get on demand unless most records need most fields.
func (d *Driver[T]) RunParsed(ctx context.Context, r Receiver[T], process ParsedProcessFunc[T], sink SinkFunc[T]) error {
	if process == nil {
		return fmt.Errorf("%w: process must not be nil", ErrInvalidConfig)
	}
	var values []codec.Value // reused across blocks of this run
	pf := func(ctx context.Context, b Batch[T]) (Batch[T], error) {
		pb, err := d.parseBlock(b, values[:0])
		if err != nil {
			return b, err
		}
		values = pb.Values
		parseDLQ := pb.DLQ
		out, err := process(ctx, &pb)
		if err != nil || len(parseDLQ) == 0 {
			return out, err
		}
		// The parse dead letters are routed whether or not the process
		// stage passed them on, and those it passed on are not added twice.
		out.DLQ = withParseDLQ(out.DLQ, parseDLQ)
		return out, nil
	}
	return d.loop(ctx, r, modeWhole, 0, pf, sink)
}

// parseBlock decodes b's records in place: survivors are compacted to the
// front of b.Records, aligned with the returned Values.
func (d *Driver[T]) parseBlock(b Batch[T], values []codec.Value) (ParsedBatch[T], error) {
	keep := b.Records[:0]
	for i := range b.Records {
		rec := b.Records[i]
		var v codec.Value
		if rec.Format == FormatJSON {
			var err error
			v, err = codec.Parse(rec.Value)
			if err != nil {
				d.stats.parseErrors.Add(1)
				switch d.cfg.ParseError {
				case ParseErrorSkip:
					d.stats.parseSkipped.Add(1)
					continue
				case ParseErrorFailBatch:
					return ParsedBatch[T]{}, fmt.Errorf("%w: record %d: %w", ErrParseBatchFailed, i, err)
				default:
					b.DLQ = append(b.DLQ, DLQEntry{Record: rec, Reason: "parse error: " + err.Error(), Stage: "parse"})
					continue
				}
			}
		}
		keep = append(keep, rec)
		values = append(values, v)
	}
	clear(b.Records[len(keep):]) // drop references to records that left
	return ParsedBatch[T]{Records: keep, Values: values, Tokens: b.Tokens, DLQ: b.DLQ, Interner: &d.in}, nil
}

// withParseDLQ returns dlq with every entry of parse that dlq does not carry
// already prepended. An entry is carried when dlq holds one with the same
// record bytes (same backing array and length) and reason.
func withParseDLQ(dlq, parse []DLQEntry) []DLQEntry {
	type key struct {
		p      *byte
		n      int
		reason string
	}
	keyOf := func(e *DLQEntry) key {
		return key{unsafe.SliceData(e.Record.Value), len(e.Record.Value), e.Reason}
	}
	carried := make(map[key]int, len(dlq))
	for i := range dlq {
		carried[keyOf(&dlq[i])]++
	}
	var missing []DLQEntry
	for i := range parse {
		k := keyOf(&parse[i])
		if carried[k] > 0 {
			carried[k]--
			continue
		}
		missing = append(missing, parse[i])
	}
	if len(missing) == 0 {
		return dlq
	}
	return append(missing, dlq...)
}
