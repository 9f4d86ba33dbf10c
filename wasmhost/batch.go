package wasmhost

import (
	"context"
	"encoding/binary"

	"github.com/sluicehq/sluice/engine"
	"github.com/tetratelabs/wazero/api"
)

// The per-batch host functions (guest-sdk/ABI.md, "Per-batch functions").
// A guest call into the host costs far more than the host's work for one
// record (a Go guest pays ~100 ns per crossing, the lookup itself is tens
// of nanoseconds), so these serve a whole batch per call: fetch_field reads
// one path of every record, record_kinds reports every record's kind, and
// apply hands over a buffer of decisions.

// fetchField is fetch_field(path, path_len, mode, tab, buf, cap): for every
// record of the batch (0 … n-1) it looks up the path and writes the values
// one after the other into buf and an 8-byte entry per record into tab:
// the value's offset in buf (u32) and its length or status (i32). It
// returns the values' total length; when that exceeds cap the contents of
// tab and buf are unspecified and the guest calls again with a buffer at
// least that large.
func fetchField(ctx context.Context, mod api.Module, stack []uint64) {
	s := stateOf(ctx)
	if s == nil {
		ret(stack, StatusBadRecord)
		return
	}
	rawPath, ok := read(mod, stack[0], stack[1])
	if !ok {
		ret(stack, StatusBadMemory)
		return
	}
	mode := api.DecodeI32(stack[2])
	if mode != FetchRaw && mode != FetchString {
		ret(stack, StatusUnsupported)
		return
	}
	hp, ok := s.path(rawPath)
	if !ok {
		ret(stack, StatusBadPath)
		return
	}
	tabv, ok1 := read(mod, stack[3], uint64(s.n)*8)
	bufv, ok2 := read(mod, stack[4], stack[5])
	if !ok1 || !ok2 {
		ret(stack, StatusBadMemory)
		return
	}
	total := 0
	for i := 0; i < s.n; i++ {
		val, st := s.getPath(int32(i), hp)
		if st == StatusOK && mode == FetchString {
			var scratch []byte
			val, scratch, st = unescapeInto(s.fetch[:0], val)
			s.fetch = scratch
		}
		e := tabv[i*8 : i*8+8 : i*8+8]
		if st != StatusOK {
			binary.LittleEndian.PutUint32(e, 0)
			binary.LittleEndian.PutUint32(e[4:], uint32(st))
			continue
		}
		off := total
		total += len(val)
		if total <= len(bufv) {
			copy(bufv[off:], val)
		}
		binary.LittleEndian.PutUint32(e, uint32(off))
		binary.LittleEndian.PutUint32(e[4:], uint32(len(val)))
	}
	if total > 1<<31-1 {
		ret(stack, StatusLimit)
		return
	}
	ret(stack, int32(total))
}

// recordKinds is record_kinds(buf, cap): one byte per record of the batch
// (KindNotJSON, KindObject, KindArray, KindScalar), by the first byte of
// its current value. It returns n; when n exceeds cap nothing is written.
func recordKinds(ctx context.Context, mod api.Module, stack []uint64) {
	s := stateOf(ctx)
	if s == nil {
		ret(stack, StatusBadRecord)
		return
	}
	if uint64(s.n) > u32(stack[1]) {
		ret(stack, int32(s.n))
		return
	}
	out, ok := read(mod, stack[0], uint64(s.n))
	if !ok {
		ret(stack, StatusBadMemory)
		return
	}
	for i := range out {
		out[i] = kindOf(s.record(int32(i)))
	}
	ret(stack, int32(s.n))
}

func kindOf(r *engine.Record) byte {
	if r.Format != engine.FormatJSON {
		return KindNotJSON
	}
	v := r.Value
	i := skipSpace(v, 0)
	if i >= len(v) {
		return KindScalar
	}
	switch v[i] {
	case '{':
		return KindObject
	case '[':
		return KindArray
	}
	return KindScalar
}

// apply is apply(ops, ops_len, res, res_cap): it applies a buffer of
// decisions in order, each with the effect (and the result) of the
// per-record function it names, and returns how many failed (a negative
// result; a delete_field flagged DeleteMissingOK that finds nothing does
// not count). When res_cap holds a 4-byte result per op they are written to
// res. A malformed buffer (an unknown op, an arg an op does not take,
// non-zero reserved bytes, a length past its end) is StatusMalformed and
// nothing is applied.
func apply(ctx context.Context, mod api.Module, stack []uint64) {
	s := stateOf(ctx)
	if s == nil {
		ret(stack, StatusBadRecord)
		return
	}
	ops, ok := read(mod, stack[0], stack[1])
	if !ok {
		ret(stack, StatusBadMemory)
		return
	}
	count, ok := checkOps(ops)
	if !ok {
		ret(stack, StatusMalformed)
		return
	}
	res, ok := read(mod, stack[2], stack[3])
	if !ok {
		ret(stack, StatusBadMemory)
		return
	}
	if len(res) < 4*count {
		res = nil
	}
	failed := int32(0)
	for k := 0; len(ops) > 0; k++ {
		op, arg := ops[0], ops[1]
		rec := int32(binary.LittleEndian.Uint32(ops[4:]))
		al := int(binary.LittleEndian.Uint32(ops[8:]))
		bl := int(binary.LittleEndian.Uint32(ops[12:]))
		a := ops[OpHeaderSize : OpHeaderSize+al]
		b := ops[OpHeaderSize+al : OpHeaderSize+al+bl]
		ops = ops[OpHeaderSize+al+bl:]
		r := StatusBadRecord
		if s.valid(rec) {
			r = s.applyOp(op, arg, rec, a, b)
		}
		if r < 0 && !(r == StatusNotFound && op == OpDeleteField && arg&DeleteMissingOK != 0) {
			failed++
		}
		if res != nil {
			binary.LittleEndian.PutUint32(res[4*k:], uint32(r))
		}
	}
	ret(stack, failed)
}

// checkOps validates a decision buffer and counts its ops.
func checkOps(ops []byte) (int, bool) {
	count := 0
	for len(ops) > 0 {
		if len(ops) < OpHeaderSize || ops[0] < OpDrop || ops[0] > OpHashField || ops[2] != 0 || ops[3] != 0 {
			return 0, false
		}
		switch ops[0] {
		case OpHashField: // arg is the algorithm
		case OpDeleteField:
			if ops[1]&^DeleteMissingOK != 0 {
				return 0, false
			}
		default:
			if ops[1] != 0 {
				return 0, false
			}
		}
		al := uint64(binary.LittleEndian.Uint32(ops[8:]))
		bl := uint64(binary.LittleEndian.Uint32(ops[12:]))
		if OpHeaderSize+al+bl > uint64(len(ops)) {
			return 0, false
		}
		ops = ops[OpHeaderSize+al+bl:]
		count++
	}
	return count, true
}

// applyOp applies one decision to record idx.
func (s *callState) applyOp(op, arg byte, idx int32, a, b []byte) int32 {
	switch op {
	case OpDrop:
		return s.drop(idx)
	case OpDeadLetter:
		return s.deadLetter(idx, a)
	case OpSetField:
		return s.setField(idx, a, b, false)
	case OpSetString:
		return s.setField(idx, a, b, true)
	case OpDeleteField:
		return s.deleteField(idx, a)
	case OpSetValue:
		return s.setWhole(idx, a)
	case OpSetTopic:
		return s.setTopic(idx, a)
	case OpSetKey:
		return s.setKey(idx, a)
	case OpSetHeader:
		s.setHeader(idx, a, b)
		return StatusOK
	case OpHashField:
		return s.hashField(idx, a, int32(arg))
	}
	return StatusMalformed
}
