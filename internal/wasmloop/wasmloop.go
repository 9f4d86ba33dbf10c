// Package wasmloop rewrites a WebAssembly module so that the host can
// interrupt a running guest cheaply, from another goroutine.
//
// # Why
//
// wazero's only way to stop a runaway guest is
// RuntimeConfig.WithCloseOnContextDone, and it makes compiled code leave
// native code for Go at every loop header to look at the context: 30-50 ns
// per loop iteration, which halves the speed of Go-compiled guests, whose
// loops are many and short. The host instead compiles with that option off
// and runs every guest module through [Instrument] first.
//
// # What the rewrite does
//
// Instrument appends two mutable i32 globals after every imported and
// defined global — the flag (exported; the host sets it to stop the guest)
// and a countdown — and puts a check at the top of every loop of every
// function body, right after the loop's block type (checkCode): most
// checks count down; every 1,000th executes memory.grow of no page, which
// leaves native code for Go and returns, and then traps ("unreachable")
// when the flag is not zero. A branch to a loop label lands on that check,
// so once the host sets the flag (api.MutableGlobal.Set) the guest traps
// within 1,000 loop iterations (microseconds).
//
// The exit to Go is what the Go runtime needs: compiled code has no
// preemption point, and a goroutine that runs it cannot be stopped, so a
// stop-the-world (every garbage collection) waits for it, and for a guest
// that never returns it waits forever, with every other goroutine of the
// process stopped, the host's deadline timer included. Through the exit it
// waits at most 1,000 loop iterations. A module without a memory gets an
// empty one (zero pages) for it.
//
// Only loop labels can be branched back to in WebAssembly, so checking every
// loop bounds the work of one call frame between two checks. It does not
// bound calls: a function that calls itself twice, n levels deep, runs 2^n
// calls with no loop and no stack overflow. So the same check also goes at
// the entry of every function body that contains a call or call_indirect,
// unless the body always enters a loop (whose check then runs) before it can
// branch, return or call — as Go-compiled functions do, which open with a
// few straight-line instructions and blocks around their resume loop. With
// both, the code run between two checks is bounded by the call depth times
// the largest function body; functions that call nothing stay as they were.
//
// The check leaves the operand stack as it found it, so loops with parameters
// or results validate as before. Nothing else changes: function, type, table,
// memory and global indices stay the same, and sections other than memory
// (when it has none), global, export, start, code and data are copied byte
// for byte (custom sections too, in place), as are function bodies that take
// no check. The data section is packed when that is certain to write the
// same memory: a Go guest's tens of thousands of segments become a few
// (data.go), which saves the runtime's bookkeeping for each.
//
// A start function would run inside instantiation, before the host holds the
// module's global, so Instrument removes the start section and exports the
// function instead, for the host to call itself under its own deadline.
//
// # What it does not cover
//
//   - Time spent in host functions: they must watch the context themselves.
//   - A single instruction's own work, such as memory.fill or memory.copy,
//     which is bounded by the memory size but not interrupted.
//   - Modules using features it does not decode: exception handling (and the
//     tag section), tail calls, threads and shared memory, multiple memories,
//     memory64, typed function references and GC types, relaxed SIMD. These
//     are reported with [ErrUnsupported]; wazero 1.12 rejects all of them by
//     default anyway. So is a function with more than 50000 locals (the
//     browsers' limit), for which wazero would allocate up to 4 GiB.
//   - Validation: Instrument checks the binary structure it walks (section
//     framing and order, LEB128 encodings, the import, global, export, start
//     and code sections, every instruction's encoding, and that the element
//     count of every other section fits in it) but not types or indices;
//     compiling the output with wazero validates the rest. Its own memory is
//     a small multiple of the input's size.
//   - DWARF custom sections keep their code offsets, which no longer match
//     the rewritten code section.
//   - The Go scheduler. wazero's native code has no preemption points, and
//     the checks add no exit to Go, so while a guest runs, a stop-the-world
//     (a garbage collection, for one) waits for it to return — with every
//     other goroutine stopped, including the one that would set the flag. A
//     host that must interrupt guests while the Go runtime may stop the world
//     needs the guest to reach Go now and then (a host function call, or an
//     instruction wazero runs in Go, such as ref.func).
//
// Where wazero's decoder departs from the specification, Instrument accepts
// only encodings on which both read the same instruction boundaries (a SIMD
// sub-opcode, which wazero reads as one byte, must be minimally encoded), so
// that wazero never sees a loop that Instrument did not instrument.
package wasmloop

import (
	"errors"
	"fmt"
	"slices"
	"unicode/utf8"
)

var (
	// ErrMalformed is wrapped by the errors for a binary that is not a
	// well-formed WebAssembly module (or is truncated).
	ErrMalformed = errors.New("wasmloop: malformed module")
	// ErrUnsupported is wrapped by the errors for a well-formed module that
	// uses an opcode, section or encoding this package does not handle.
	ErrUnsupported = errors.New("wasmloop: unsupported module")
	// ErrExportExists is wrapped by the error for a module that already
	// exports one of the names Instrument would add.
	ErrExportExists = errors.New("wasmloop: export name already in use")
)

// Instrument returns a copy of the WebAssembly binary module with a check of a new
// exported mutable i32 global (initial 0, exported under flagExport) at the top of
// every loop of every function body, and at the entry of functions that call, as
// described in the package doc. When the module has a start section, it is removed
// and its function is exported under startExport instead (so the host can call it
// itself, under its own deadline); hadStart reports it.
// The data section may be packed into fewer segments that write the same memory (data.go).
// Everything else is kept byte for byte (custom sections included, in order; function,
// type, table, memory and existing global indices unchanged: the new global is appended
// after every imported and defined global, so its index is importedGlobals+definedGlobals).
// It returns an error (never panics, never loops forever, bounded memory — the input is
// hostile) when the binary is malformed or truncated, uses an opcode it does not know,
// or already exports flagExport or startExport.
func Instrument(module []byte, flagExport, startExport string) (out []byte, hadStart bool, err error) {
	out, m, err := instrument(module, flagExport, startExport)
	if err != nil {
		return nil, false, err
	}
	return out, m.start >= 0, nil
}

// Opcodes and section ids this file refers to by name.
const (
	opBlock = 0x02
	opLoop  = 0x03
	opIf    = 0x04
	opEnd   = 0x0B

	opBr           = 0x0C
	opBrIf         = 0x0D
	opBrTable      = 0x0E
	opReturn       = 0x0F
	opCall         = 0x10
	opCallIndirect = 0x11

	secCustom    = 0
	secImport    = 2
	secMemory    = 5
	secGlobal    = 6
	secExport    = 7
	secStart     = 8
	secCode      = 10
	secData      = 11
	secDataCount = 12
	secTag       = 13

	// maxLocals caps the locals of a function, as browsers do: wazero's
	// decoder allocates a byte for each (up to 4 GiB) before validating.
	maxLocals = 50000
)

// order is each known section id's rank in the required section order
// (custom sections, rank 0, may appear anywhere).
var order = [...]int{0: 0, 1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 13: 6, 6: 7, 7: 8, 8: 9, 9: 10, 12: 11, 10: 12, 11: 13}

// section is one section of the input: b[at:payload] is its id and size,
// b[payload:end] its contents.
type section struct {
	id               byte
	at, payload, end int
}

// body is one function body of the code section: b[at:code] is its size,
// b[code:end] its locals and instructions, which take a check at each of
// its sites check sites.
type body struct {
	at, code, end int
	sites         int
}

// module is what parse learns of a module.
type module struct {
	b        []byte
	sections []section
	// Indices into sections, or -1.
	global, export, start int

	importedGlobals, definedGlobals uint32
	memories                        int    // imported and defined: 0 means Instrument adds one
	importedMemories                int    // of memories, how many are imported
	dataCount                       bool   // whether it has a data count section
	globalEntries                   int    // offset of the global section's first entry
	exports                         uint32 // number of existing exports
	exportEntries                   int    // offset of the export section's first entry
	startFunc                       uint32
	codeEntries                     int // offset of the code section's first body
	bodies                          []body
	sites                           []int   // offsets where a check goes, in order
	loops, entries                  int     // how many sites are loops, function entries
	taken                           [2]bool // whether the module exports the flag, start names
}

// reader decodes b[pos:end], reporting offsets into b.
type reader struct {
	b        []byte
	pos, end int
}

func malformed(at int, format string, args ...any) error {
	return fmt.Errorf("%w: offset %d: %s", ErrMalformed, at, fmt.Sprintf(format, args...))
}

func unsupported(at int, format string, args ...any) error {
	return fmt.Errorf("%w: offset %d: %s", ErrUnsupported, at, fmt.Sprintf(format, args...))
}

func (r *reader) byte() (byte, error) {
	if r.pos >= r.end {
		return 0, malformed(r.pos, "unexpected end")
	}
	r.pos++
	return r.b[r.pos-1], nil
}

func (r *reader) skip(n int) error {
	if n > r.end-r.pos {
		return malformed(r.pos, "unexpected end: %d bytes needed, %d left", n, r.end-r.pos)
	}
	r.pos += n
	return nil
}

// leb decodes an LEB128 integer of the given width, enforcing the spec's
// limits: at most ceil(bits/7) bytes, and the unused bits of the last byte
// zero (unsigned) or copies of the sign bit (signed). Signed values are
// returned sign-extended.
func (r *reader) leb(bits uint, signed bool) (uint64, error) {
	at := r.pos
	if at < r.end && r.b[at] < 0x80 { // one byte: the common case
		r.pos++
		v := uint64(r.b[at])
		if signed && v >= 0x40 {
			v |= ^uint64(0x7f) // sign-extend
		}
		return v, nil
	}
	var v uint64
	for i, last := uint(0), (bits+6)/7-1; ; i++ {
		b, err := r.byte()
		if err != nil {
			return 0, err
		}
		if i == last {
			if b&0x80 != 0 {
				return 0, malformed(at, "integer representation too long")
			}
			rem := bits - 7*i // bits this byte still carries
			if signed {
				mask := byte(0x7f) &^ (1<<(rem-1) - 1) // the sign bit and above
				if x := b & mask; x != 0 && x != mask {
					return 0, malformed(at, "integer too large")
				}
			} else if b>>rem != 0 {
				return 0, malformed(at, "integer too large")
			}
		}
		v |= uint64(b&0x7f) << (7 * i)
		if b&0x80 == 0 {
			if shift := 7 * (i + 1); signed && shift < 64 && b&0x40 != 0 {
				v |= ^uint64(0) << shift
			}
			return v, nil
		}
	}
}

func (r *reader) u32() (uint32, error) {
	v, err := r.leb(32, false)
	return uint32(v), err
}

// count decodes a u32 vector length or byte length, which must not exceed
// the bytes left (every element takes at least one byte).
func (r *reader) count() (int, error) {
	at := r.pos
	n, err := r.u32()
	if err == nil && int64(n) > int64(r.end-r.pos) {
		err = malformed(at, "length %d exceeds the %d bytes left", n, r.end-r.pos)
	}
	return int(n), err
}

// name decodes a name (a length and that many bytes) without copying it.
func (r *reader) name() ([]byte, error) {
	n, err := r.count()
	if err != nil {
		return nil, err
	}
	r.pos += n
	return r.b[r.pos-n : r.pos], nil
}

func isValType(b byte) bool {
	switch b {
	case 0x7F, 0x7E, 0x7D, 0x7C, 0x7B, 0x70, 0x6F:
		return true
	}
	return false
}

func (r *reader) valType() error {
	b, err := r.byte()
	if err == nil && !isValType(b) {
		err = unsupported(r.pos-1, "value type 0x%02x", b)
	}
	return err
}

// zero decodes a reserved memory index byte, which must be 0.
func (r *reader) zero() error {
	b, err := r.byte()
	if err == nil && b != 0 {
		err = unsupported(r.pos-1, "memory index byte 0x%02x (multiple memories)", b)
	}
	return err
}

func (r *reader) memarg() error {
	align, err := r.u32()
	if err != nil {
		return err
	}
	if align&0x40 != 0 {
		return unsupported(r.pos-1, "memarg with a memory index (multiple memories)")
	}
	_, err = r.u32()
	return err
}

func (r *reader) blockType() error {
	if r.pos < r.end && (r.b[r.pos] == 0x40 || isValType(r.b[r.pos])) {
		r.pos++
		return nil
	}
	at := r.pos
	v, err := r.leb(33, true)
	if err == nil && int64(v) < 0 {
		err = unsupported(at, "block type %d", int64(v))
	}
	return err
}

// instr decodes the instruction at r.pos and returns its first byte.
func (r *reader) instr() (byte, error) {
	at := r.pos
	op, err := r.byte()
	if err != nil {
		return 0, err
	}
	switch {
	case op == opBlock, op == opLoop, op == opIf:
		err = r.blockType()
	case op == 0x00, op == 0x01, op == 0x05, op == opEnd, op == 0x0F, op == 0x1A, op == 0x1B,
		op >= 0x45 && op <= 0xC4, op == 0xD1:
		// unreachable, nop, else, end, return, drop, select, numeric, ref.is_null
	case op == 0x0C, op == 0x0D, op == 0x10, op >= 0x20 && op <= 0x26, op == 0xD2:
		// br, br_if, call, local.*, global.*, table.get/set, ref.func
		_, err = r.u32()
	case op == 0x0E: // br_table
		var n int
		if n, err = r.count(); err != nil {
			return op, err
		}
		for i := 0; i <= n && err == nil; i++ {
			_, err = r.u32()
		}
	case op == 0x11: // call_indirect
		if _, err = r.u32(); err == nil {
			_, err = r.u32()
		}
	case op == 0x1C: // select t*
		var n int
		if n, err = r.count(); err != nil {
			return op, err
		}
		for i := 0; i < n && err == nil; i++ {
			err = r.valType()
		}
	case op >= 0x28 && op <= 0x3E:
		err = r.memarg()
	case op == 0x3F, op == 0x40: // memory.size, memory.grow
		err = r.zero()
	case op == 0x41:
		_, err = r.leb(32, true)
	case op == 0x42:
		_, err = r.leb(64, true)
	case op == 0x43:
		err = r.skip(4)
	case op == 0x44:
		err = r.skip(8)
	case op == 0xD0: // ref.null
		var t byte
		if t, err = r.byte(); err == nil && t != 0x70 && t != 0x6F {
			err = unsupported(at, "ref.null type 0x%02x", t)
		}
	case op == 0xFC:
		err = r.misc(at)
	case op == 0xFD:
		err = r.simd(at)
	case op >= 0x06 && op <= 0x0A, op == 0x18, op == 0x19, op == 0x1F:
		err = unsupported(at, "exception handling opcode 0x%02x", op)
	case op == 0x12, op == 0x13:
		err = unsupported(at, "tail call opcode 0x%02x", op)
	case op == 0xFE:
		err = unsupported(at, "threads opcode prefix 0xfe")
	default:
		err = unsupported(at, "unknown opcode 0x%02x", op)
	}
	return op, err
}

// misc decodes the rest of a 0xFC-prefixed instruction.
func (r *reader) misc(at int) error {
	sub, err := r.u32()
	if err != nil {
		return err
	}
	switch sub {
	case 0, 1, 2, 3, 4, 5, 6, 7: // trunc_sat
	case 8: // memory.init
		if _, err = r.u32(); err == nil {
			err = r.zero()
		}
	case 10: // memory.copy
		if err = r.zero(); err == nil {
			err = r.zero()
		}
	case 11: // memory.fill
		err = r.zero()
	case 12, 14: // table.init, table.copy
		if _, err = r.u32(); err == nil {
			_, err = r.u32()
		}
	case 9, 13, 15, 16, 17: // data.drop, elem.drop, table.grow, table.size, table.fill
		_, err = r.u32()
	default:
		err = unsupported(at, "unknown opcode 0xfc %d", sub)
	}
	return err
}

// simd decodes the rest of a 0xFD-prefixed instruction.
func (r *reader) simd(at int) error {
	sub, err := r.u32()
	if err != nil {
		return err
	}
	if sub > 0xFF {
		return unsupported(at, "unknown opcode 0xfd %d", sub)
	}
	// wazero reads the sub-opcode as a single byte: a minimal encoding (one
	// byte below 128, op|0x80 then 0x01 above, which wazero reads as the
	// opcode then a nop) is the only one on which both agree.
	if n := r.pos - at - 1; n != 1+int(sub>>7) {
		return unsupported(at, "non-minimal encoding of opcode 0xfd %d", sub)
	}
	switch {
	case sub <= 11, sub == 92, sub == 93: // loads, store, load*_zero
		err = r.memarg()
	case sub == 12, sub == 13: // v128.const, i8x16.shuffle
		err = r.skip(16)
	case sub >= 21 && sub <= 34: // extract_lane, replace_lane
		err = r.skip(1)
	case sub >= 84 && sub <= 91: // load*_lane, store*_lane
		if err = r.memarg(); err == nil {
			err = r.skip(1)
		}
	default:
		switch sub {
		case 0x9A, 0xA2, 0xA5, 0xA6, 0xAF, 0xB0, 0xB2, 0xB3, 0xB4, 0xBB,
			0xC2, 0xC5, 0xC6, 0xCF, 0xD0, 0xD2, 0xD3, 0xD4, 0xE2, 0xEE:
			err = unsupported(at, "unknown opcode 0xfd %d", sub)
		}
	}
	return err
}

// expr decodes instructions through the end that closes the expression,
// adding to m.sites where each loop's body starts. It reports the number of
// loops, whether the expression calls a function, and whether it enters a
// loop before it can branch, return or call (covered).
func (r *reader) expr(m *module) (loops int, calls, covered bool, err error) {
	prefix := true // no branch, return or call yet
	for depth := 1; depth > 0; {
		op, err := r.instr()
		if err != nil {
			return loops, calls, covered, err
		}
		switch op {
		case opBlock:
			depth++
		case opIf:
			depth++
			prefix = false
		case opLoop:
			depth++
			loops++
			m.sites = append(m.sites, r.pos)
			covered = covered || prefix
			prefix = false
		case opEnd:
			depth--
		case opCall, opCallIndirect:
			calls = true
			prefix = false
		case opBr, opBrIf, opBrTable, opReturn:
			prefix = false
		}
	}
	return loops, calls, covered, nil
}

// limits decodes table or memory limits.
func (r *reader) limits() error {
	at := r.pos
	flag, err := r.byte()
	if err != nil {
		return err
	}
	switch flag {
	case 0x00:
		_, err = r.u32()
	case 0x01:
		if _, err = r.u32(); err == nil {
			_, err = r.u32()
		}
	case 0x02, 0x03:
		err = unsupported(at, "shared memory limits")
	case 0x04, 0x05, 0x06, 0x07:
		err = unsupported(at, "64-bit limits (memory64)")
	default:
		err = malformed(at, "limits flag 0x%02x", flag)
	}
	return err
}

func (r *reader) imports(m *module) error {
	n, err := r.count()
	for i := 0; i < n && err == nil; i++ {
		if _, err = r.name(); err != nil {
			break
		}
		if _, err = r.name(); err != nil {
			break
		}
		var kind byte
		if kind, err = r.byte(); err != nil {
			break
		}
		switch kind {
		case 0x00: // func
			_, err = r.u32()
		case 0x01: // table
			var t byte
			if t, err = r.byte(); err == nil && t != 0x70 && t != 0x6F {
				err = unsupported(r.pos-1, "table type 0x%02x", t)
			}
			if err == nil {
				err = r.limits()
			}
		case 0x02: // memory
			m.memories++
			m.importedMemories++
			err = r.limits()
		case 0x03: // global
			m.importedGlobals++
			err = r.globalType()
		case 0x04:
			err = unsupported(r.pos-1, "tag import (exception handling)")
		default:
			err = malformed(r.pos-1, "import kind 0x%02x", kind)
		}
	}
	return err
}

func (r *reader) globalType() error {
	if err := r.valType(); err != nil {
		return err
	}
	mut, err := r.byte()
	if err == nil && mut > 1 {
		err = malformed(r.pos-1, "global mutability 0x%02x", mut)
	}
	return err
}

func (r *reader) globals(m *module) error {
	n, err := r.count()
	m.definedGlobals = uint32(n)
	m.globalEntries = r.pos
	for i := 0; i < n && err == nil; i++ {
		if err = r.globalType(); err != nil {
			break
		}
		at, loops := r.pos, 0
		if loops, _, _, err = r.expr(m); err == nil && loops > 0 {
			err = malformed(at, "loop in a constant expression")
		}
	}
	return err
}

func (r *reader) exports(m *module, names [2]string) error {
	n, err := r.count()
	m.exports = uint32(n)
	m.exportEntries = r.pos
	for i := 0; i < n && err == nil; i++ {
		var name []byte
		if name, err = r.name(); err != nil {
			break
		}
		for j, s := range names {
			if string(name) == s {
				m.taken[j] = true
			}
		}
		var kind byte
		if kind, err = r.byte(); err != nil {
			break
		}
		switch {
		case kind == 0x04:
			err = unsupported(r.pos-1, "tag export (exception handling)")
		case kind > 0x04:
			err = malformed(r.pos-1, "export kind 0x%02x", kind)
		default:
			_, err = r.u32()
		}
	}
	return err
}

// body decodes the instructions of a function body, adding its check sites
// to m.sites: every loop, and the entry of a function that calls another,
// unless the function always enters a loop (whose check then runs) before it
// can branch or call.
func (r *reader) body(m *module) (int, error) {
	entry, site := r.pos, len(m.sites)
	loops, calls, covered, err := r.expr(m)
	m.loops += loops
	if err != nil || !calls || covered {
		return loops, err
	}
	m.sites = slices.Insert(m.sites, site, entry)
	m.entries++
	return loops + 1, nil
}

func (r *reader) codes(m *module) error {
	n, err := r.count()
	if err != nil {
		return err
	}
	m.codeEntries = r.pos
	m.bodies = make([]body, 0, min(n, (r.end-r.pos)/2))
	end := r.end
	for range n {
		at := r.pos
		size, err := r.count()
		if err != nil {
			return err
		}
		bd := body{at: at, code: r.pos, end: r.pos + size}
		r.end = bd.end
		locals, err := r.count()
		for i, sum := 0, uint64(0); i < locals && err == nil; i++ {
			var n uint32
			if n, err = r.u32(); err == nil {
				err = r.valType()
			}
			if sum += uint64(n); sum > maxLocals {
				err = unsupported(r.pos, "more than %d locals in a function", maxLocals)
			}
		}
		if err == nil {
			bd.sites, err = r.body(m)
		}
		if err == nil && r.pos != r.end {
			err = malformed(r.pos, "%d bytes after the end of a function body", r.end-r.pos)
		}
		if err != nil {
			return err
		}
		m.bodies = append(m.bodies, bd)
		r.end = end
	}
	return nil
}

// parse decodes the structure of module b, noting which of names it exports.
func parse(b []byte, names [2]string) (*module, error) {
	m := &module{b: b, global: -1, export: -1, start: -1}
	if len(b) < 8 {
		return nil, malformed(len(b), "unexpected end of the module header")
	}
	if string(b[:4]) != "\x00asm" {
		return nil, malformed(0, "not a WebAssembly binary (no \\0asm magic)")
	}
	if string(b[4:8]) != "\x01\x00\x00\x00" {
		return nil, unsupported(4, "binary version %x (want 1)", b[4:8])
	}
	r := &reader{b: b, pos: 8, end: len(b)}
	rank := 0
	for r.pos < len(b) {
		s := section{at: r.pos}
		s.id, _ = r.byte()
		size, err := r.count()
		if err != nil {
			return nil, err
		}
		s.payload, s.end = r.pos, r.pos+size
		switch {
		case s.id == secTag:
			return nil, unsupported(s.at, "tag section (exception handling)")
		case int(s.id) >= len(order) || (s.id != secCustom && order[s.id] == 0):
			return nil, malformed(s.at, "unknown section id %d", s.id)
		case s.id != secCustom && order[s.id] <= rank:
			return nil, malformed(s.at, "section %d out of order or repeated", s.id)
		case s.id != secCustom:
			rank = order[s.id]
		}
		r.end = s.end
		switch s.id {
		case secCustom:
			_, err = r.name()
			r.pos = s.end
		case secImport:
			err = r.imports(m)
		case secGlobal:
			m.global = len(m.sections)
			err = r.globals(m)
		case secExport:
			m.export = len(m.sections)
			err = r.exports(m, names)
		case secStart:
			m.start = len(m.sections)
			m.startFunc, err = r.u32()
		case secCode:
			err = r.codes(m)
		case secDataCount:
			m.dataCount = true
			_, err = r.u32()
		default:
			// Copied unchanged, so not decoded, but a vector count larger
			// than the section is malformed (and would make wazero's
			// decoder allocate for it).
			var n int
			n, err = r.count()
			if s.id == secMemory {
				m.memories += n
			}
			r.pos = s.end
		}
		if err == nil && r.pos != s.end {
			err = malformed(r.pos, "%d bytes left at the end of section %d", s.end-r.pos, s.id)
		}
		if err != nil {
			return nil, err
		}
		r.end = len(b)
		m.sections = append(m.sections, s)
	}
	return m, nil
}

func appendU32(b []byte, v uint32) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

func u32Len(v uint32) int {
	n := 1
	for ; v >= 0x80; v >>= 7 {
		n++
	}
	return n
}

func appendName(b []byte, s string) []byte {
	return append(appendU32(b, uint32(len(s))), s...)
}

// instrument is Instrument, also returning what it learned of the input.
func instrument(b []byte, flagExport, startExport string) ([]byte, *module, error) {
	if !utf8.ValidString(flagExport) || !utf8.ValidString(startExport) {
		return nil, nil, errors.New("wasmloop: export names must be valid UTF-8")
	}
	if flagExport == startExport {
		return nil, nil, fmt.Errorf("wasmloop: flag and start export names are both %q", flagExport)
	}
	m, err := parse(b, [2]string{flagExport, startExport})
	if err != nil {
		return nil, nil, err
	}
	if m.taken[0] {
		return nil, nil, fmt.Errorf("%w: %q", ErrExportExists, flagExport)
	}
	if m.taken[1] && m.start >= 0 {
		return nil, nil, fmt.Errorf("%w: %q", ErrExportExists, startExport)
	}
	flag := uint64(m.importedGlobals) + uint64(m.definedGlobals)
	if flag >= 1<<32-2 || m.exports >= 1<<32-2 {
		return nil, nil, unsupported(0, "too many globals or exports")
	}
	if uint64(len(b))+uint64(len(m.sites))*uint64(len(checkCode(1<<32-2, 1<<32-1))) > 1<<32-1 {
		return nil, nil, unsupported(0, "module too large")
	}

	// The new globals (the flag, then the countdown) and exports.
	check := checkCode(uint32(flag), uint32(flag)+1)
	newGlobal := []byte{0x7F, 0x01, 0x41, 0x00, opEnd, 0x7F, 0x01, 0x41, 0x00, opEnd}
	newExports := appendU32(append(appendName(nil, flagExport), 0x03), uint32(flag))
	nExports := m.exports + 1
	if m.start >= 0 {
		newExports = appendU32(append(appendName(newExports, startExport), 0x00), m.startFunc)
		nExports++
	}

	out := make([]byte, 0, len(b)+len(m.sites)*len(check)+4*len(m.bodies)+len(newExports)+48)
	out = append(out, b[:8]...)
	// appendSection appends section id with the contents b[from:to] after a
	// new count, followed by extra.
	appendSection := func(id byte, count uint32, from, to int, extra []byte) {
		out = append(out, id)
		out = appendU32(out, uint32(u32Len(count)+to-from+len(extra)))
		out = appendU32(out, count)
		out = append(out, b[from:to]...)
		out = append(out, extra...)
	}
	globalDone, exportDone, memoryDone := m.global >= 0, m.export >= 0, m.memories > 0
	for _, s := range m.sections {
		if s.id != secCustom && !memoryDone && order[s.id] > order[secMemory] {
			appendSection(secMemory, 1, 0, 0, noMemory)
			memoryDone = true
		}
		if s.id != secCustom && !globalDone && order[s.id] > order[secGlobal] {
			appendSection(secGlobal, 2, 0, 0, newGlobal)
			globalDone = true
		}
		if s.id != secCustom && !exportDone && order[s.id] > order[secExport] {
			appendSection(secExport, nExports, 0, 0, newExports)
			exportDone = true
		}
		switch s.id {
		case secGlobal:
			appendSection(secGlobal, m.definedGlobals+2, m.globalEntries, s.end, newGlobal)
		case secExport:
			appendSection(secExport, nExports, m.exportEntries, s.end, newExports)
		case secMemory:
			if m.memories == 0 { // an empty memory section: it gets the check's memory
				appendSection(secMemory, 1, 0, 0, noMemory)
				memoryDone = true
			} else {
				out = append(out, b[s.at:s.end]...)
			}
		case secStart:
			// dropped: exported instead
		case secCode:
			out = appendCode(out, m, s, check)
		case secData:
			if packed := packData(m, s); packed != nil {
				out = append(out, packed...)
			} else {
				out = append(out, b[s.at:s.end]...)
			}
		default:
			out = append(out, b[s.at:s.end]...)
		}
	}
	if !memoryDone {
		appendSection(secMemory, 1, 0, 0, noMemory)
	}
	if !globalDone {
		appendSection(secGlobal, 2, 0, 0, newGlobal)
	}
	if !exportDone {
		appendSection(secExport, nExports, 0, 0, newExports)
	}
	return out, m, nil
}

// noMemory is the memory Instrument gives a module that has none, for the
// check's memory.grow: no page, no maximum (no code of the module refers
// to a memory, or it would not validate).
var noMemory = []byte{0x00, 0x00}

// checkEvery is how many checks pass between two exits to Go (its signed
// LEB128 encoding is in checkCode).
const checkEvery = 1000

// checkCode returns the check that goes at every site, with the flag and
// countdown globals at those indices:
//
//	global.get $count
//	if                          ;; most checks: count down
//	  global.get $count  i32.const 1  i32.sub  global.set $count
//	else                        ;; every checkEvery-th check
//	  i32.const checkEvery  global.set $count
//	  i32.const 0  memory.grow 0  drop
//	  global.get $flag
//	  if  unreachable  end
//	end
//
// The memory.grow of no page leaves native code for Go and comes back: it
// is the point where the Go runtime can stop the goroutine running the
// guest. Compiled code has no preemption point of its own, so without it a
// guest that loops would hold up every stop-the-world (a garbage
// collection) of the process until its call ended, and one that loops
// forever would hang the process with it, the host's timer included. The
// flag is read there too: the host interrupts within checkEvery checks.
func checkCode(flag, count uint32) []byte {
	c := appendU32([]byte{0x23}, count)
	c = append(c, 0x04, 0x40, 0x23)
	c = appendU32(c, count)
	c = append(c, 0x41, 0x01, 0x6B, 0x24)
	c = appendU32(c, count)
	c = append(c, 0x05, 0x41, 0xE8, 0x07, 0x24) // i32.const 1000
	c = appendU32(c, count)
	c = append(c, 0x41, 0x00, 0x40, 0x00, 0x1A, 0x23)
	c = appendU32(c, flag)
	return append(c, 0x04, 0x40, 0x00, opEnd, opEnd)
}

// appendCode appends code section s of m with check inserted at every loop.
func appendCode(out []byte, m *module, s section, check []byte) []byte {
	b := m.b
	if len(m.sites) == 0 {
		return append(out, b[s.at:s.end]...)
	}
	size := m.codeEntries - s.payload
	for _, bd := range m.bodies {
		if bd.sites == 0 {
			size += bd.end - bd.at
		} else {
			n := bd.end - bd.code + bd.sites*len(check)
			size += u32Len(uint32(n)) + n
		}
	}
	out = append(out, secCode)
	out = appendU32(out, uint32(size))
	out = append(out, b[s.payload:m.codeEntries]...)
	sites := m.sites
	for _, bd := range m.bodies {
		if bd.sites == 0 {
			out = append(out, b[bd.at:bd.end]...)
			continue
		}
		out = appendU32(out, uint32(bd.end-bd.code+bd.sites*len(check)))
		from := bd.code
		for _, at := range sites[:bd.sites] {
			out = append(out, b[from:at]...)
			out = append(out, check...)
			from = at
		}
		out = append(out, b[from:bd.end]...)
		sites = sites[bd.sites:]
	}
	return out
}
