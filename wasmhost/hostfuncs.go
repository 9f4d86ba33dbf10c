package wasmhost

import (
	"bytes"
	"context"
	"errors"
	"unsafe"

	"github.com/bytedance/sonic"
	"github.com/sluicehq/sluice/engine"
	"github.com/sluicehq/sluice/engine/codec"
	"github.com/tetratelabs/wazero/api"
)

// stateKey carries the *callState of a guest call in its context: host
// functions find the batch they serve through it.
type stateKey struct{}

func stateOf(ctx context.Context) *callState {
	s, _ := ctx.Value(stateKey{}).(*callState)
	return s
}

func errorsIsNotFound(err error) bool { return errors.Is(err, codec.ErrNotFound) }

func ret(stack []uint64, v int32) { stack[0] = api.EncodeI32(v) }

// recordArg resolves the call state and the record index in stack[0], the
// first argument of every per-record host function. When either is invalid it
// answers StatusBadRecord and reports false.
func recordArg(ctx context.Context, stack []uint64) (*callState, int32, bool) {
	s, idx := stateOf(ctx), api.DecodeI32(stack[0])
	if s == nil || !s.valid(idx) {
		ret(stack, StatusBadRecord)
		return nil, 0, false
	}
	return s, idx, true
}

// Every parameter is an i32: only the low 32 bits of its stack slot count.
// wazero does not clear the high bits (a Go guest leaves garbage there), so
// host functions read parameters through read, writeOut, u32 or
// api.DecodeI32, never as whole uint64s.

// u32 returns the i32 parameter in a stack slot as an unsigned value.
func u32(slot uint64) uint64 { return uint64(uint32(slot)) }

// read returns guest memory [ptr, ptr+n) without copying; the view is valid
// only until the guest runs again.
func read(mod api.Module, ptr, n uint64) ([]byte, bool) {
	return mod.Memory().Read(uint32(ptr), uint32(n))
}

// writeOut writes val into the guest buffer (buf, capacity) and sets the
// result: the length, whether or not it fit (nothing is written when it
// does not).
func writeOut(mod api.Module, stack []uint64, buf, capacity uint64, val []byte) {
	if uint64(len(val)) <= u32(capacity) && len(val) > 0 {
		if !mod.Memory().Write(uint32(buf), val) {
			ret(stack, StatusBadMemory)
			return
		}
	}
	ret(stack, int32(len(val)))
}

// hostFuncs returns every sluice_v1 host function by name.
func hostFuncs() map[string]api.GoModuleFunc {
	return map[string]api.GoModuleFunc{
		FuncRecordCount: func(ctx context.Context, mod api.Module, stack []uint64) {
			s := stateOf(ctx)
			if s == nil {
				ret(stack, 0)
				return
			}
			ret(stack, int32(s.n))
		},
		FuncRecordValue: func(ctx context.Context, mod api.Module, stack []uint64) {
			s, idx, ok := recordArg(ctx, stack)
			if !ok {
				return
			}
			writeOut(mod, stack, stack[1], stack[2], s.record(idx).Value)
		},
		FuncGetField: func(ctx context.Context, mod api.Module, stack []uint64) {
			s, idx, ok := recordArg(ctx, stack)
			if !ok {
				return
			}
			path, ok := read(mod, stack[1], stack[2])
			if !ok {
				ret(stack, StatusBadMemory)
				return
			}
			val, st := s.getField(idx, path)
			if st != StatusOK {
				ret(stack, st)
				return
			}
			writeOut(mod, stack, stack[3], stack[4], val)
		},
		FuncGetString: func(ctx context.Context, mod api.Module, stack []uint64) {
			s, idx, ok := recordArg(ctx, stack)
			if !ok {
				return
			}
			path, ok := read(mod, stack[1], stack[2])
			if !ok {
				ret(stack, StatusBadMemory)
				return
			}
			val, st := s.getField(idx, path)
			if st != StatusOK {
				ret(stack, st)
				return
			}
			str, st := decodeString(val)
			if st != StatusOK {
				ret(stack, st)
				return
			}
			writeOut(mod, stack, stack[3], stack[4], str)
		},
		FuncRecordTopic: func(ctx context.Context, mod api.Module, stack []uint64) {
			s, idx, ok := recordArg(ctx, stack)
			if !ok {
				return
			}
			t := s.record(idx).Topic
			if uint64(len(t)) <= u32(stack[2]) && len(t) > 0 && !mod.Memory().WriteString(uint32(stack[1]), t) {
				ret(stack, StatusBadMemory)
				return
			}
			ret(stack, int32(len(t)))
		},
		FuncRecordKey: func(ctx context.Context, mod api.Module, stack []uint64) {
			s, idx, ok := recordArg(ctx, stack)
			if !ok {
				return
			}
			k := s.record(idx).Key
			if k == nil {
				ret(stack, StatusNotFound)
				return
			}
			writeOut(mod, stack, stack[1], stack[2], k)
		},
		FuncRecordHeader: func(ctx context.Context, mod api.Module, stack []uint64) {
			s, idx, ok := recordArg(ctx, stack)
			if !ok {
				return
			}
			name, ok := read(mod, stack[1], stack[2])
			if !ok {
				ret(stack, StatusBadMemory)
				return
			}
			v, found := header(s.record(idx), name)
			if !found {
				ret(stack, StatusNotFound)
				return
			}
			writeOut(mod, stack, stack[3], stack[4], v)
		},
		FuncDrop: func(ctx context.Context, mod api.Module, stack []uint64) {
			s, idx, ok := recordArg(ctx, stack)
			if !ok {
				return
			}
			ret(stack, s.drop(idx))
		},
		FuncSetField: func(ctx context.Context, mod api.Module, stack []uint64) {
			setField(ctx, mod, stack, false)
		},
		FuncSetString: func(ctx context.Context, mod api.Module, stack []uint64) {
			setField(ctx, mod, stack, true)
		},
		FuncDeleteField: func(ctx context.Context, mod api.Module, stack []uint64) {
			s, idx, ok := recordArg(ctx, stack)
			if !ok {
				return
			}
			rawPath, ok := read(mod, stack[1], stack[2])
			if !ok {
				ret(stack, StatusBadMemory)
				return
			}
			ret(stack, s.deleteField(idx, rawPath))
		},
		FuncSetValue: func(ctx context.Context, mod api.Module, stack []uint64) {
			s, idx, ok := recordArg(ctx, stack)
			if !ok {
				return
			}
			val, ok := read(mod, stack[1], stack[2])
			if !ok {
				ret(stack, StatusBadMemory)
				return
			}
			ret(stack, s.setWhole(idx, val))
		},
		FuncSetTopic: func(ctx context.Context, mod api.Module, stack []uint64) {
			s, idx, ok := recordArg(ctx, stack)
			if !ok {
				return
			}
			t, ok := read(mod, stack[1], stack[2])
			if !ok {
				ret(stack, StatusBadMemory)
				return
			}
			ret(stack, s.setTopic(idx, t))
		},
		FuncSetKey: func(ctx context.Context, mod api.Module, stack []uint64) {
			s, idx, ok := recordArg(ctx, stack)
			if !ok {
				return
			}
			k, ok := read(mod, stack[1], stack[2])
			if !ok {
				ret(stack, StatusBadMemory)
				return
			}
			ret(stack, s.setKey(idx, k))
		},
		FuncSetHeader: func(ctx context.Context, mod api.Module, stack []uint64) {
			s, idx, ok := recordArg(ctx, stack)
			if !ok {
				return
			}
			name, ok1 := read(mod, stack[1], stack[2])
			val, ok2 := read(mod, stack[3], stack[4])
			if !ok1 || !ok2 {
				ret(stack, StatusBadMemory)
				return
			}
			s.setHeader(idx, name, val)
			ret(stack, StatusOK)
		},
		FuncDeadLetter: func(ctx context.Context, mod api.Module, stack []uint64) {
			s, idx, ok := recordArg(ctx, stack)
			if !ok {
				return
			}
			reason, ok := read(mod, stack[1], stack[2])
			if !ok {
				ret(stack, StatusBadMemory)
				return
			}
			ret(stack, s.deadLetter(idx, reason))
		},
		FuncEmit: func(ctx context.Context, mod api.Module, stack []uint64) {
			s, idx, ok := recordArg(ctx, stack)
			if !ok {
				return
			}
			val, ok := read(mod, stack[1], stack[2])
			if !ok {
				ret(stack, StatusBadMemory)
				return
			}
			if s.emitted >= s.maxEmit {
				ret(stack, StatusLimit)
				return
			}
			if s.record(idx).Format == engine.FormatJSON && !codec.Valid(val) {
				ret(stack, StatusInvalidJSON)
				return
			}
			ret(stack, s.emit(idx, val))
		},
		FuncHashField:   hashField,
		FuncFetchField:  fetchField,
		FuncRecordKinds: recordKinds,
		FuncApply:       apply,
	}
}

// setField is set_field (val is JSON) and set_string (val is a string the
// host quotes).
func setField(ctx context.Context, mod api.Module, stack []uint64, quote bool) {
	s, idx, ok := recordArg(ctx, stack)
	if !ok {
		return
	}
	rawPath, ok1 := read(mod, stack[1], stack[2])
	val, ok2 := read(mod, stack[3], stack[4])
	if !ok1 || !ok2 {
		ret(stack, StatusBadMemory)
		return
	}
	ret(stack, s.setField(idx, rawPath, val, quote))
}

// The decisions, shared by the per-record host functions and apply. Each
// returns a status; idx is a valid record index.

func (s *callState) drop(idx int32) int32 {
	s.recs[idx].dropped = true
	return StatusOK
}

func (s *callState) deadLetter(idx int32, reason []byte) int32 {
	if len(reason) > maxReason {
		reason = reason[:maxReason]
	}
	st := &s.recs[idx]
	st.dead, st.reason = true, string(reason)
	return StatusOK
}

// maxReason caps a dead-letter reason, in bytes.
const maxReason = 1024

func (s *callState) setWhole(idx int32, val []byte) int32 {
	r := s.record(idx)
	if r.Format == engine.FormatJSON && !codec.Valid(val) {
		return StatusInvalidJSON
	}
	var v []byte
	if len(val) > 0 {
		v = s.run.slab.alloc(len(val), len(val)+spliceSlack)
		copy(v, val)
	}
	s.setValue(idx, v)
	return StatusOK
}

func (s *callState) setTopic(idx int32, t []byte) int32 {
	if r := s.record(idx); r.Topic != string(t) {
		s.edit(idx).Topic = s.topic(t)
	}
	return StatusOK
}

func (s *callState) setKey(idx int32, k []byte) int32 {
	key := s.clone(k)
	if key == nil {
		key = []byte{} // an empty key, not no key
	}
	s.edit(idx).Key = key
	return StatusOK
}

// unsafeString views b as a string without copying; b must not change
// while the string is used.
func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// decodeString returns the contents of a JSON string token: a subslice when
// it has no escape, else its decoded bytes.
func decodeString(raw []byte) ([]byte, int32) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return nil, StatusWrongType
	}
	inner := raw[1 : len(raw)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		return inner, StatusOK
	}
	var s string
	if err := sonic.ConfigStd.Unmarshal(raw, &s); err != nil {
		return nil, StatusInvalidJSON
	}
	return []byte(s), StatusOK
}

// editStatus maps a jsonSet/jsonDelete error to a status code.
func editStatus(err error) int32 {
	switch {
	case errors.Is(err, codec.ErrNotFound), errors.Is(err, errNotObject):
		return StatusNotFound
	case errors.Is(err, codec.ErrBadPath):
		return StatusBadPath
	default:
		return StatusInvalidJSON
	}
}
