package wasmloop

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/e2e"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// A tiny assembler: modules are written as sections of bytes.

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func u32(v uint32) []byte { return appendU32(nil, v) }

// sec is a section: id, size, contents.
func sec(id byte, parts ...[]byte) []byte {
	p := cat(parts...)
	return cat([]byte{id}, u32(uint32(len(p))), p)
}

// vec is a vector: count, elements.
func vec(items ...[]byte) []byte { return cat(u32(uint32(len(items))), cat(items...)) }

func str(s string) []byte { return cat(u32(uint32(len(s))), []byte(s)) }

func wasm(sections ...[]byte) []byte { return cat([]byte("\x00asm\x01\x00\x00\x00"), cat(sections...)) }

// fn is a function body: size, locals (count, type pairs), instructions.
func fn(locals []byte, instrs ...[]byte) []byte {
	body := cat(locals, cat(instrs...))
	return cat(u32(uint32(len(body))), body)
}

func b(bs ...byte) []byte { return bs }

func exp(name string, kind byte, idx uint32) []byte { return cat(str(name), b(kind), u32(idx)) }

// checkAt is the check Instrument inserts for a flag global of index i
// (the countdown is global i+1): count down, or every 1,000th time reset
// the count, exit to Go through memory.grow 0 and trap if the flag is set.
func checkAt(i uint32) []byte {
	n := u32(i + 1)
	return cat(b(0x23), n, b(0x04, 0x40), // global.get $count; if
		b(0x23), n, b(0x41, 0x01, 0x6B, 0x24), n, // count - 1 → count
		b(0x05, 0x41, 0xE8, 0x07, 0x24), n, // else: 1000 → count
		b(0x41, 0x00, 0x40, 0x00, 0x1A),            // memory.grow 0; drop
		b(0x23), u32(i), b(0x04, 0x40, 0x00, 0x0B), // global.get $flag; if unreachable end
		b(0x0B)) // end
}

// newGlobals are the two globals Instrument appends: the flag and the
// countdown, both mutable i32 0.
var newGlobals = b(i32, 1, 0x41, 0, 0x0B, i32, 1, 0x41, 0, 0x0B)

const (
	i32 = 0x7F
	i64 = 0x7E
)

// Function bodies of the test module; c goes at every check site: after
// every loop header, at the entry of fib (nil in the input, the check in the
// expected output).

// nested counts 3 × 259 iterations of two nested loops: 777.
func nestedBody(c []byte) []byte {
	return fn(vec(b(3, i32)),
		b(0x03, 0x40), c, // loop $outer
		b(0x41, 0x00, 0x21, 0x01), // j = 0
		b(0x03, 0x40), c,          // loop $inner
		b(0x20, 0x02, 0x41, 0x01, 0x6A, 0x21, 0x02), // total++
		b(0x20, 0x01, 0x41, 0x01, 0x6A, 0x22, 0x01), // j+1, tee j
		b(0x41, 0x83, 0x02, 0x48, 0x0D, 0x00),       // < 259 (LEB 0x83 0x02): br_if $inner
		b(0x0B),
		b(0x20, 0x00, 0x41, 0x01, 0x6A, 0x22, 0x00), // i+1, tee i
		b(0x41, 0x03, 0x48, 0x0D, 0x00),             // < 3 (the byte 0x03 as an immediate): br_if $outer
		b(0x0B),
		b(0x20, 0x02, 0x0B), // total
	)
}

// blocks has loops inside block, if and else, a loop with a type index
// block type, and a br_table loop; it returns 20.
func blocksBody(c []byte) []byte {
	return fn(vec(b(2, i32)),
		b(0x02, i32),             // block (result i32)
		b(0x41, 0x01, 0x04, i32), // i32.const 1, if (result i32)
		b(0x03, 0x40), c,         // loop: l0 += 1 while l0 < 5
		b(0x20, 0x00, 0x41, 0x01, 0x6A, 0x22, 0x00, 0x41, 0x05, 0x48, 0x0D, 0x00),
		b(0x0B),
		b(0x20, 0x00),                        // 5
		b(0x05),                              // else
		b(0x03, i32), c, b(0x41, 0x07, 0x0B), // loop (result i32) 7 end
		b(0x0B, 0x0B),                               // end if, end block
		b(0x03, 0x02), c, b(0x41, 0x0A, 0x6A, 0x0B), // loop (type 2: i32 -> i32): +10 → 15
		b(0x21, 0x01),    // l1 = 15
		b(0x02, 0x40),    // block $b
		b(0x03, 0x40), c, // loop $l
		b(0x41, 0x14, 0x20, 0x01, 0x41, 0x01, 0x6A, 0x22, 0x01, 0x6B), // 20 - (l1 += 1)
		b(0x0E, 0x01, 0x01, 0x00),                                     // br_table [$b] default $l
		b(0x0B, 0x0B),                                                 // end loop, end block
		b(0x20, 0x01, 0x0B),                                           // l1 = 20
	)
}

// consts hides 0x03 bytes in immediates of every kind inside a loop; it
// returns 3 (memory) + 3 (v128 lane) + 3 (i64) + 0x03030303+6 (i32x4.add
// lane 0).
func constsBody(c []byte) []byte {
	return fn(vec(),
		b(0x03, i32), c, // loop (result i32)
		b(0x41, 0x03, 0x41, 0x03, 0x41, 0x04, 0xFC, 0x0B, 0x00),               // memory.fill(3, 3, 4)
		b(0x41, 0x00, 0x2D, 0x00, 0x03),                                       // i32.load8_u offset=3: 3
		b(0x44, 3, 3, 3, 3, 3, 3, 3, 3, 0x1A),                                 // f64.const (bytes 03), drop
		cat(b(0xFD, 0x0C), bytes.Repeat(b(3), 16)), b(0xFD, 0x16, 0x03, 0x6A), // v128.const, i8x16.extract_lane_u 3
		b(0x42, 0x03, 0xA7, 0x6A), // i64.const 3, i32.wrap_i64
		cat(b(0xFD, 0x0C), bytes.Repeat(b(3), 16)), cat(b(0xFD, 0x0C), bytes.Repeat(b(6, 0, 0, 0), 4)),
		b(0xFD, 0xAE, 0x01), b(0xFD, 0x1B, 0x00, 0x6A), // i32x4.add (opcode 174: two bytes), extract_lane 0
		b(0x0B, 0x0B),
	)
}

func spinBody(c []byte) []byte { return fn(vec(), b(0x03, 0x40), c, b(0x0C, 0x00, 0x0B, 0x0B)) }

// fib (function 4) has no loop but calls itself twice: it takes the check
// at its entry.
func fibBody(c []byte) []byte {
	return fn(vec(), c,
		b(0x20, 0x00, 0x41, 0x02, 0x49, 0x04, i32),  // if n < 2 (result i32)
		b(0x20, 0x00, 0x05),                         // n, else
		b(0x20, 0x00, 0x41, 0x01, 0x6B, 0x10, 0x04), // fib(n-1)
		b(0x20, 0x00, 0x41, 0x02, 0x6B, 0x10, 0x04), // fib(n-2)
		b(0x6A, 0x0B, 0x0B),
	)
}

// loopCall starts with a loop, whose check serves as the entry check: it
// returns fib(5) = 5.
func loopCallBody(c []byte) []byte {
	return fn(vec(), b(0x03, i32), c, b(0x41, 0x05, 0x10, 0x04, 0x0B, 0x0B))
}

func testTypes() []byte {
	return sec(1, vec(b(0x60, 0, 1, i32), b(0x60, 0, 0), b(0x60, 1, i32, 1, i32)))
}

// testModule has the functions above, exported, and a memory; c is inserted
// at every check site. With flag, it has the global section and the export
// that Instrument adds, for a flag named "flag".
func testModule(c []byte, flag bool) []byte {
	exports := [][]byte{exp("nested", 0, 0), exp("blocks", 0, 1), exp("consts", 0, 2), exp("spin", 0, 3),
		exp("fib", 0, 4), exp("loopcall", 0, 5), exp("mem", 2, 0)}
	var globals []byte
	if flag {
		globals = sec(6, u32(2), newGlobals)
		exports = append(exports, exp("flag", 3, 0))
	}
	return wasm(
		testTypes(),
		sec(3, vec(b(0), b(0), b(0), b(1), b(2), b(0))),
		sec(5, vec(b(0, 1))),
		globals,
		sec(7, vec(exports...)),
		sec(10, vec(nestedBody(c), blocksBody(c), constsBody(c), spinBody(c), fibBody(c), loopCallBody(c))),
		sec(0, str("name-ish"), b(0x03, 0x03, 0x03)),
	)
}

func TestInstrumentExactBytes(t *testing.T) {
	in := testModule(nil, false)
	out, hadStart, err := Instrument(in, "flag", "start")
	if err != nil {
		t.Fatal(err)
	}
	if hadStart {
		t.Error("hadStart for a module without a start section")
	}
	// No global section: one is created before the export section, and
	// the flag export is appended to the exports.
	c := checkAt(0)
	if want := testModule(c, true); !bytes.Equal(out, want) {
		t.Fatalf("output\n%x\nwant\n%x", out, want)
	}
	_, m, err := instrument(in, "flag", "start")
	if err != nil {
		t.Fatal(err)
	}
	if m.loops != 9 || m.entries != 1 || len(m.sites) != 10 {
		t.Errorf("%d loops, %d entries, %d sites; want 9, 1, 10", m.loops, m.entries, len(m.sites))
	}
	if got := bytes.Count(out, c) - bytes.Count(in, c); got != 10 {
		t.Errorf("%d checks inserted, want 10", got)
	}
}

// sections splits a module into its sections (header excluded).
func sections(t testing.TB, mod []byte) [][]byte {
	t.Helper()
	m, err := parse(mod, [2]string{})
	if err != nil {
		t.Fatal(err)
	}
	var ss [][]byte
	for _, s := range m.sections {
		ss = append(ss, mod[s.at:s.end])
	}
	return ss
}

// importsModule imports globals, a function, a memory and a table before
// defining two globals and a function with a loop; c follows the loop
// header, newGlobal and newExport are appended to their sections.
func importsModule(c, newGlobal, newExport []byte) []byte {
	// (import "env" "a" (global i32)) (import "env" "f" (func))
	// (import "env" "b" (global (mut i64))) (import "env" "m" (memory 1 2))
	// (import "env" "t" (table 0 funcref))
	// (global i32 (i32.const 7)) (global (mut f32) (f32.const 0))
	// (func loop end)
	imports := sec(2, vec(
		cat(str("env"), str("a"), b(3, i32, 0)),
		cat(str("env"), str("f"), b(0, 1)),
		cat(str("env"), str("b"), b(3, i64, 1)),
		cat(str("env"), str("m"), b(2, 1, 1, 2)),
		cat(str("env"), str("t"), b(1, 0x70, 0, 0)),
	))
	globals := []byte{i32, 0, 0x41, 7, 0x0B, 0x7D, 1, 0x43, 0, 0, 0, 0, 0x0B}
	exports := [][]byte{exp("g", 3, 2)}
	if newExport != nil {
		exports = append(exports, newExport)
	}
	return wasm(testTypes(), imports, sec(3, vec(b(1))),
		sec(0, str("between")),
		sec(6, u32(uint32(2+len(newGlobal)/5)), globals, newGlobal),
		sec(7, vec(exports...)),
		sec(10, vec(fn(vec(), b(0x03, 0x40), c, b(0x0B, 0x0B)))))
}

func TestImportedGlobalsShiftIndex(t *testing.T) {
	// The flag is global 4: 2 imported, 2 defined.
	want := importsModule(checkAt(4), newGlobals, exp("flag", 3, 4))
	got, _, err := Instrument(importsModule(nil, nil, nil), "flag", "start")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("output\n%x\nwant\n%x", got, want)
	}
	compile(t, got)
}

func TestTwoByteGlobalIndex(t *testing.T) {
	g := bytes.Repeat(b(i32, 0, 0x41, 0, 0x0B), 130)
	in := wasm(testTypes(), sec(3, vec(b(1))), sec(6, u32(130), g), sec(10, vec(spinBody(nil))))
	// No memory: Instrument adds an empty one for the check's memory.grow.
	want := wasm(testTypes(), sec(3, vec(b(1))), sec(5, vec(b(0, 0))), sec(6, u32(132), g, newGlobals),
		sec(7, vec(exp("flag", 3, 130))), sec(10, vec(spinBody(checkAt(130)))))
	if c := checkAt(130); !bytes.HasPrefix(c, b(0x23, 0x83, 0x01)) || !bytes.Contains(c, b(0x23, 0x82, 0x01, 0x04, 0x40, 0x00, 0x0B)) {
		t.Fatalf("two-byte indices: %x", c)
	}
	got, _, err := Instrument(in, "flag", "start")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("output\n%x\nwant\n%x", got, want)
	}
	compile(t, got)
}

// startModule's start function (1) sets exported global 0 to 42 in a loop.
func startModule() []byte {
	return wasm(
		testTypes(),
		sec(3, vec(b(0), b(1))),
		sec(6, vec(b(i32, 1, 0x41, 0, 0x0B))),
		sec(7, vec(exp("g", 3, 0), exp("nested", 0, 0))),
		sec(0, str("before start")),
		sec(8, u32(1)),
		sec(0, str("after start")),
		sec(10, vec(nestedBody(nil), fn(vec(),
			b(0x03, 0x40), // loop: g += 1 while g < 42
			b(0x23, 0x00, 0x41, 0x01, 0x6A, 0x24, 0x00, 0x23, 0x00, 0x41, 0x2A, 0x48, 0x0D, 0x00),
			b(0x0B, 0x0B)))),
	)
}

func TestStartSectionExported(t *testing.T) {
	in := startModule()
	out, hadStart, err := Instrument(in, "flag", "start")
	if err != nil {
		t.Fatal(err)
	}
	if !hadStart {
		t.Fatal("hadStart false")
	}
	ss := sections(t, out)
	for _, s := range ss {
		if s[0] == secStart {
			t.Fatal("start section kept")
		}
	}
	// It has no memory: the check's empty one comes after the functions.
	if want := sec(5, vec(b(0, 0))); !bytes.Equal(ss[2], want) {
		t.Errorf("memory section %x, want %x", ss[2], want)
	}
	if want := sec(7, vec(exp("g", 3, 0), exp("nested", 0, 0), exp("flag", 3, 1), exp("start", 0, 1))); !bytes.Equal(ss[4], want) {
		t.Errorf("export section %x, want %x", ss[4], want)
	}
	if want := sec(0, str("before start")); !bytes.Equal(ss[5], want) || !bytes.Equal(ss[6], sec(0, str("after start"))) {
		t.Errorf("custom sections moved: %q", ss)
	}

	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	orig, err := rt.InstantiateWithConfig(ctx, in, wazero.NewModuleConfig().WithName("orig"))
	if err != nil {
		t.Fatal(err)
	}
	if v := orig.ExportedGlobal("g").Get(); v != 42 {
		t.Errorf("original start left g = %d", v)
	}
	mod, err := rt.InstantiateWithConfig(ctx, out, wazero.NewModuleConfig().WithName("rewritten"))
	if err != nil {
		t.Fatal(err)
	}
	if v := mod.ExportedGlobal("g").Get(); v != 0 {
		t.Errorf("start ran at instantiation: g = %d", v)
	}
	if _, err := mod.ExportedFunction("start").Call(ctx); err != nil {
		t.Fatal(err)
	}
	if v := mod.ExportedGlobal("g").Get(); v != 42 {
		t.Errorf("after start, g = %d", v)
	}
}

func TestNewSectionsPlacement(t *testing.T) {
	// No global and no export section, a start section and custom
	// sections: the global section goes before the start section (after
	// the custom one that follows the memory), the export section too.
	in := wasm(testTypes(), sec(3, vec(b(1))), sec(5, vec(b(0, 1))), sec(0, str("c1")),
		sec(8, u32(0)), sec(0, str("c2")), sec(12, u32(0)), sec(10, vec(spinBody(nil))))
	want := wasm(testTypes(), sec(3, vec(b(1))), sec(5, vec(b(0, 1))), sec(0, str("c1")),
		sec(6, u32(2), newGlobals), sec(7, vec(exp("f", 3, 0), exp("s", 0, 0))),
		sec(0, str("c2")), sec(12, u32(0)), sec(10, vec(spinBody(checkAt(0)))))
	got, hadStart, err := Instrument(in, "f", "s")
	if err != nil || !hadStart {
		t.Fatal(err, hadStart)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("output\n%x\nwant\n%x", got, want)
	}
	// No code at all: only the memory, global and export sections are
	// added.
	got, _, err = Instrument(wasm(), "f", "s")
	if want := wasm(sec(5, vec(b(0, 0))), sec(6, u32(2), newGlobals), sec(7, vec(exp("f", 3, 0)))); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("empty module: %x, %v; want %x", got, err, want)
	}
}

func TestExportNames(t *testing.T) {
	for _, tc := range []struct {
		name        string
		mod         []byte
		flag, start string
		ok          bool
	}{
		{"flag taken", testModule(nil, false), "spin", "start", false},
		{"start taken with start section", startModule(), "flag", "g", false},
		{"start name free without start section", testModule(nil, false), "flag", "spin", true},
		{"same names", testModule(nil, false), "x", "x", false},
		{"invalid UTF-8", testModule(nil, false), "\xff", "start", false},
		{"empty names are names", startModule(), "", "s", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, _, err := Instrument(tc.mod, tc.flag, tc.start)
			if tc.ok != (err == nil) {
				t.Fatalf("err = %v, want ok = %v", err, tc.ok)
			}
			if err == nil {
				compile(t, out)
			} else if strings.Contains(tc.name, "taken") && !errors.Is(err, ErrExportExists) {
				t.Errorf("%v is not ErrExportExists", err)
			}
		})
	}
}

func TestTruncated(t *testing.T) {
	for _, mod := range [][]byte{testModule(nil, false), startModule()} {
		ends := map[int]bool{8: true}
		m, err := parse(mod, [2]string{})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range m.sections {
			ends[s.end] = true
		}
		for n := range len(mod) {
			out, _, err := Instrument(mod[:n], "flag", "start")
			switch {
			case ends[n] && err != nil:
				t.Errorf("prefix %d (a whole number of sections): %v", n, err)
			case !ends[n] && err == nil:
				t.Errorf("prefix %d: no error", n)
			case !ends[n] && !errors.Is(err, ErrMalformed):
				t.Errorf("prefix %d: %v is not ErrMalformed", n, err)
			case ends[n] && len(out) <= n:
				t.Errorf("prefix %d: output of %d bytes", n, len(out))
			}
		}
	}
}

func TestErrors(t *testing.T) {
	types := testTypes()
	funcs := sec(3, vec(b(1)))
	body := func(instrs ...byte) []byte {
		return wasm(types, funcs, sec(5, vec(b(0, 1))), sec(10, vec(fn(vec(), instrs))))
	}
	codeAt := len(body()) // offset of the first instruction
	for _, tc := range []struct {
		name string
		mod  []byte
		want error
		msg  string
	}{
		{"empty", nil, ErrMalformed, "offset 0"},
		{"bad magic", []byte("\x00asn\x01\x00\x00\x00"), ErrMalformed, "magic"},
		{"version 2", []byte("\x00asm\x02\x00\x00\x00"), ErrUnsupported, "version"},
		{"section too long", append(wasm(), 1, 5, 0), ErrMalformed, "offset 9"},
		{"overlong u32", append(wasm(), 0, 0x80, 0x80, 0x80, 0x80, 0x80, 0), ErrMalformed, "too long"},
		{"u32 too large", append(wasm(), 0, 0xFF, 0xFF, 0xFF, 0xFF, 0x1F), ErrMalformed, "too large"},
		{"unknown section", wasm(sec(14)), ErrMalformed, "section id 14"},
		{"tag section", wasm(sec(13, vec())), ErrUnsupported, "tag"},
		{"out of order", wasm(sec(3, vec()), types), ErrMalformed, "order"},
		{"repeated", wasm(types, types), ErrMalformed, "order"},
		{"section size mismatch", wasm(sec(8, b(0, 0))), ErrMalformed, "left at the end"},
		{"huge global count", wasm(sec(6, b(0xFF, 0xFF, 0xFF, 0xFF, 0x0F, i32))), ErrMalformed, "exceeds"},
		{"huge br_table", body(0x0E, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 0, 0x0B), ErrMalformed, "exceeds"},
		{"custom name too long", wasm(sec(0, b(5, 'a'))), ErrMalformed, "exceeds"},
		{"body without end", body(0x01), ErrMalformed, "unexpected end"},
		{"bytes after end", body(0x0B, 0x01), ErrMalformed, "after the end"},
		{"unclosed loop", body(0x03, 0x40, 0x0B), ErrMalformed, "unexpected end"},
		{"s32 too large", body(0x41, 0x80, 0x80, 0x80, 0x80, 0x40, 0x1A, 0x0B), ErrMalformed, "too large"},
		{"s64 too long", body(0x42, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00, 0x1A, 0x0B), ErrMalformed, "too long"},
		{"unknown opcode", body(0x01, 0x27, 0x0B), ErrUnsupported, fmt.Sprintf("offset %d: unknown opcode 0x27", codeAt+1)},
		{"opcode 0xff", body(0xFF, 0x0B), ErrUnsupported, "0xff"},
		{"try", body(0x06, 0x40, 0x0B, 0x0B), ErrUnsupported, "exception"},
		{"try_table", body(0x1F, 0x40, 0x00, 0x0B, 0x0B), ErrUnsupported, "exception"},
		{"return_call", body(0x12, 0x00, 0x0B), ErrUnsupported, "tail call"},
		{"atomics", body(0xFE, 0x03, 0x00, 0x0B), ErrUnsupported, "threads"},
		{"misc 18", body(0xFC, 18, 0x0B), ErrUnsupported, "0xfc 18"},
		{"simd gap", body(0xFD, 0x9A, 0x01, 0x0B), ErrUnsupported, "0xfd 154"},
		{"relaxed simd", body(0xFD, 0x80, 0x02, 0x0B), ErrUnsupported, "0xfd 256"},
		{"non-minimal simd opcode", body(0xFD, 0x8C, 0x00, 0x0B), ErrUnsupported, "non-minimal"},
		{"memory.size index", body(0x3F, 0x01, 0x1A, 0x0B), ErrUnsupported, "multiple memories"},
		{"memarg index", body(0x41, 0, 0x28, 0x42, 0x00, 0x00, 0x1A, 0x0B), ErrUnsupported, "multiple memories"},
		{"negative block type", body(0x02, 0x50, 0x0B, 0x0B), ErrUnsupported, "block type"},
		{"typed select", body(0x1C, 0x01, 0x63, 0x70, 0x0B), ErrUnsupported, "value type 0x63"},
		{"shared memory", wasm(sec(2, vec(cat(str("e"), str("m"), b(2, 3, 1, 1))))), ErrUnsupported, "shared"},
		{"memory64", wasm(sec(2, vec(cat(str("e"), str("m"), b(2, 4, 1))))), ErrUnsupported, "memory64"},
		{"tag import", wasm(sec(2, vec(cat(str("e"), str("t"), b(4, 0, 0))))), ErrUnsupported, "tag"},
		{"loop in a global", wasm(sec(6, vec(b(i32, 0, 0x03, 0x40, 0x0B, 0x41, 0, 0x0B)))), ErrMalformed, "constant expression"},
		{"exnref local", wasm(types, funcs, sec(10, vec(fn(vec(b(1, 0x69)), b(0x0B))))), ErrUnsupported, "value type 0x69"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, _, err := Instrument(tc.mod, "flag", "start")
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err = %v, want %v containing %q", err, tc.want, tc.msg)
			}
			if out != nil {
				t.Errorf("output with an error")
			}
		})
	}
}

func TestLEB(t *testing.T) {
	for _, tc := range []struct {
		in     []byte
		bits   uint
		signed bool
		want   int64
		ok     bool
	}{
		{b(0x03), 32, false, 3, true},
		{b(0x83, 0x02), 32, false, 259, true},
		{b(0xFF, 0xFF, 0xFF, 0xFF, 0x0F), 32, false, 1<<32 - 1, true},
		{b(0x80, 0x80, 0x80, 0x80, 0x00), 32, false, 0, true}, // padded: allowed
		{b(0xFF, 0xFF, 0xFF, 0xFF, 0x10), 32, false, 0, false},
		{b(0x80, 0x80, 0x80, 0x80, 0x80, 0x00), 32, false, 0, false},
		{b(0x7F), 32, true, -1, true},
		{b(0x80, 0x80, 0x80, 0x80, 0x78), 32, true, -1 << 31, true},
		{b(0xFF, 0xFF, 0xFF, 0xFF, 0x07), 32, true, 1<<31 - 1, true},
		{b(0xFF, 0xFF, 0xFF, 0xFF, 0x0F), 32, true, 0, false},
		{b(0x80, 0x80, 0x80, 0x80, 0x70), 32, true, 0, false},
		{b(0xFF, 0xFF, 0xFF, 0xFF, 0x0F), 33, true, 1<<32 - 1, true},
		{b(0x80, 0x80, 0x80, 0x80, 0x70), 33, true, -1 << 32, true},
		{b(0x80, 0x80, 0x80, 0x80, 0x60), 33, true, 0, false},
		{b(0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x7F), 64, true, -1 << 63, true},
		{b(0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01), 64, true, 0, false},
		{b(0x80), 32, false, 0, false},
	} {
		r := &reader{b: tc.in, end: len(tc.in)}
		v, err := r.leb(tc.bits, tc.signed)
		if (err == nil) != tc.ok || (tc.ok && (int64(v) != tc.want || r.pos != len(tc.in))) {
			t.Errorf("leb(%x, %d, %v) = %d, %v; want %d, ok %v", tc.in, tc.bits, tc.signed, int64(v), err, tc.want, tc.ok)
		}
	}
}

// compile checks that wazero compiles mod.
func compile(t testing.TB, mod []byte) {
	t.Helper()
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	if _, err := rt.CompileModule(ctx, mod); err != nil {
		t.Fatalf("wazero does not compile the module: %v", err)
	}
}

// newRuntime is a runtime that does not check the context at loop headers.
func newRuntime(t *testing.T) (context.Context, wazero.Runtime) {
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCloseOnContextDone(false))
	t.Cleanup(func() { rt.Close(ctx) })
	return ctx, rt
}

func TestWazeroInterrupt(t *testing.T) {
	// A goroutine running wazero's native code cannot be preempted: the
	// check's exit to Go every 1,000 checks is what lets a garbage
	// collection stop the spinning guest (see the package doc). Collect
	// while the guests spin: without the exit this deadlocks.

	out, _, err := Instrument(testModule(nil, false), "flag", "start")
	if err != nil {
		t.Fatal(err)
	}
	ctx, rt := newRuntime(t)
	mod, err := rt.Instantiate(ctx, out)
	if err != nil {
		t.Fatal(err)
	}
	flag, ok := mod.ExportedGlobal("flag").(api.MutableGlobal)
	if !ok {
		t.Fatal("flag is not an exported mutable global")
	}
	for _, tc := range []struct {
		name   string
		params []uint64
	}{
		{"spin", nil},          // loop br 0
		{"fib", []uint64{100}}, // 2^100 calls, no loop
	} {
		t.Run(tc.name, func(t *testing.T) {
			flag.Set(0)
			done := make(chan error, 1)
			go func() {
				_, err := mod.ExportedFunction(tc.name).Call(ctx, tc.params...)
				done <- err
			}()
			time.Sleep(10 * time.Millisecond) // the guest is spinning
			gcs := time.Now()
			for i := 0; i < 5; i++ {
				runtime.GC() // stops the world while the guest spins
			}
			if took := time.Since(gcs); took > 5*time.Second {
				t.Errorf("five collections took %v while the guest spun", took)
			}
			select {
			case err := <-done:
				t.Fatalf("returned early: %v", err)
			case <-time.After(50 * time.Millisecond):
			}
			set := time.Now()
			flag.Set(1)
			select {
			case err := <-done:
				if err == nil || !strings.Contains(err.Error(), "unreachable") {
					t.Fatalf("returned %v, want an unreachable trap", err)
				}
				t.Logf("trapped %v after the flag was set", time.Since(set))
			case <-time.After(time.Second):
				t.Fatal("still running 1s after the flag was set")
			}
		})
	}
	// The flag stays set: every function with a check traps within
	// 1,000 checks (the count runs on from the calls above).
	trapped := false
	for i := 0; i < 1000 && !trapped; i++ {
		_, err := mod.ExportedFunction("nested").Call(ctx)
		trapped = err != nil && strings.Contains(err.Error(), "unreachable")
	}
	if !trapped {
		t.Error("nested with the flag set ran 1,000 times")
	}
	flag.Set(0)
	if r, err := mod.ExportedFunction("nested").Call(ctx); err != nil || r[0] != 777 {
		t.Errorf("nested after clearing the flag: %v, %v", r, err)
	}
}

func TestWazeroSameResults(t *testing.T) {
	in := testModule(nil, false)
	out, _, err := Instrument(in, "flag", "start")
	if err != nil {
		t.Fatal(err)
	}
	ctx, rt := newRuntime(t)
	orig, err := rt.InstantiateWithConfig(ctx, in, wazero.NewModuleConfig().WithName("orig"))
	if err != nil {
		t.Fatal(err)
	}
	mod, err := rt.InstantiateWithConfig(ctx, out, wazero.NewModuleConfig().WithName("rewritten"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		params []uint64
		want   uint64
	}{
		{"nested", nil, 777},
		{"blocks", nil, 20},
		{"consts", nil, 9 + 0x03030309},
		{"fib", []uint64{20}, 6765},
		{"loopcall", nil, 5},
	} {
		r1, err1 := orig.ExportedFunction(tc.name).Call(ctx, tc.params...)
		r2, err2 := mod.ExportedFunction(tc.name).Call(ctx, tc.params...)
		if err1 != nil || err2 != nil || r1[0] != tc.want || r2[0] != tc.want {
			t.Errorf("%s: original %v, %v; rewritten %v, %v; want %d", tc.name, r1, err1, r2, err2, tc.want)
		}
	}
}

var goExample struct {
	once sync.Once
	wasm []byte
	err  error
}

// goExampleModule builds examples/filter (a Go guest) once per test binary.
func goExampleModule(t testing.TB) []byte {
	t.Helper()
	goExample.once.Do(func() {
		goExample.wasm, goExample.err = os.ReadFile(e2e.GuestFiles(t, e2e.Example("filter"))[0])
	})
	if goExample.err != nil {
		t.Fatal(goExample.err)
	}
	return goExample.wasm
}

// verify checks out against in: the same sections except global, export,
// start and code; every check site of out (found as Instrument finds them
// in in) holding the check of the flag global; as many loops and entry
// checks as in. It returns the number of check sites.
func verify(t testing.TB, in, out []byte, m *module) int {
	t.Helper()
	om, err := parse(out, [2]string{})
	if err != nil {
		t.Fatalf("output does not decode: %v", err)
	}
	if len(om.sites) != len(m.sites) || om.loops != m.loops || om.entries != m.entries {
		t.Fatalf("output has %d check sites (%d loops), input %d (%d)", len(om.sites), om.loops, len(m.sites), m.loops)
	}
	flag := m.importedGlobals + m.definedGlobals
	if om.importedGlobals != m.importedGlobals || om.definedGlobals != m.definedGlobals+2 {
		t.Fatalf("globals %d+%d, then %d+%d", m.importedGlobals, m.definedGlobals, om.importedGlobals, om.definedGlobals)
	}
	c := checkAt(flag)
	for _, at := range om.sites {
		if !bytes.HasPrefix(out[at:], c) {
			t.Fatalf("no check at %d", at)
		}
	}
	if om.memories == 0 {
		t.Fatal("the output has no memory for its checks")
	}
	// A module without a memory gets one: its memory section is new. A
	// data section may be packed: it must then write the same memory.
	packed := false
	if i, o := dataSection(in, m), dataSection(out, om); i != nil && !bytes.Equal(i, o) {
		sameImage(t, in, m, out, om)
		packed = true
	}
	changed := func(id byte) bool {
		return id == secGlobal || id == secExport || id == secStart || id == secCode || (id == secMemory && m.memories == 0) ||
			(id == secData && packed)
	}
	var kept, same [][]byte
	for _, s := range m.sections {
		if !changed(s.id) {
			kept = append(kept, in[s.at:s.end])
		}
	}
	for _, s := range om.sections {
		if !changed(s.id) {
			same = append(same, out[s.at:s.end])
		}
	}
	if !bytes.Equal(cat(kept...), cat(same...)) || len(kept) != len(same) {
		t.Fatal("sections other than global, export, start, code and a packed data section changed")
	}
	added := uint32(1)
	if m.start >= 0 {
		added++
	}
	if om.start >= 0 || om.exports != m.exports+added {
		t.Fatalf("start section %d, %d exports (input: %d, %d)", om.start, om.exports, m.start, m.exports)
	}
	if len(om.bodies) != len(m.bodies) {
		t.Fatalf("%d function bodies, input %d", len(om.bodies), len(m.bodies))
	}
	return len(om.sites)
}

func TestGoExample(t *testing.T) {
	in := goExampleModule(t)
	start := time.Now()
	out, m, err := instrument(in, "sluice_interrupt", "sluice_start")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d bytes, %d function bodies, %d loops, %d entry checks: %v; output %d bytes (+%d)",
		len(in), len(m.bodies), m.loops, m.entries, time.Since(start), len(out), len(out)-len(in))
	if m.loops < 100 {
		t.Errorf("only %d loops in a Go module", m.loops)
	}
	verify(t, in, out, m)
	compile(t, out)
	// Instrumenting again (other names) finds the same loops.
	out2, m2, err := instrument(out, "other", "other_start")
	if err != nil {
		t.Fatalf("second pass: %v", err)
	}
	verify(t, out, out2, m2)
}

func BenchmarkInstrumentGoExample(b *testing.B) {
	in := goExampleModule(b)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Instrument(in, "flag", "start"); err != nil {
			b.Fatal(err)
		}
	}
}
