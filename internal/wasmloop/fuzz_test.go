package wasmloop

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// seeds are the modules of the other tests, valid and not.
func seeds() [][]byte {
	body := func(instrs ...byte) []byte {
		return wasm(testTypes(), sec(3, vec(b(1))), sec(5, vec(b(0, 1))), sec(10, vec(fn(vec(), instrs))))
	}
	return [][]byte{
		wasm(),
		testModule(nil, false),
		startModule(),
		importsModule(nil, nil, nil),
		wasm(testTypes(), sec(3, vec(b(1))), sec(6, u32(130), bytes.Repeat(b(i32, 0, 0x41, 0, 0x0B), 130)),
			sec(10, vec(spinBody(nil)))),
		wasm(testTypes(), sec(3, vec(b(1))), sec(5, vec(b(0, 1))), sec(0, str("c1")),
			sec(8, u32(0)), sec(0, str("c2")), sec(12, u32(0)), sec(10, vec(spinBody(nil)))),
		body(0x0E, 0x02, 0x00, 0x00, 0x00, 0x0B),
		body(0x03, 0x40, 0x41, 0x00, 0xFD, 0x0F, 0xFD, 0x16, 0x03, 0x1A, 0x0B, 0x0B),
		body(0x41, 0x00, 0x41, 0x00, 0x41, 0x00, 0xFC, 0x0A, 0x00, 0x00, 0x0B),
		body(0xFD, 0x8C, 0x00, 0x0B),
		// Data segments Instrument packs, and some it must not.
		dataModule(false, false, seg(40, 9, 9), seg(0, 1), seg(20, 2, 2), seg(42, 3), seg(4, make([]byte, 40)...)),
		dataModule(false, false, seg(0, 1, 2, 3), seg(2, 9), seg(9, 1)),
		dataModule(false, false, seg(0, 1), b(0x01, 1, 7), seg(4, 2)),
		dataModule(false, false, seg(65530, make([]byte, 10)...), seg(0, 1)),
		// Function bodies for skeleton, without their size.
		nestedBody(nil)[1:],
		blocksBody(nil)[1:],
		constsBody(nil)[1:],
		fibBody(nil)[1:],
		b(0x00, 0x03, 0x7F, 0xD2, 0x01, 0x1A, 0x41, 0x05, 0x41, 0x00, 0x11, 0x02, 0x00, 0x0B, 0x0B),
	}
}

// skeleton is a module whose function 0, of type [i32] -> [i32], has body
// (locals and instructions), with a memory, a table, a global, data and
// element segments for the body's instructions to refer to.
func skeleton(body []byte) []byte {
	return wasm(
		testTypes(),
		sec(3, vec(b(2), b(2))),
		sec(4, vec(b(0x70, 0, 1))),
		sec(5, vec(b(0, 1))),
		sec(6, vec(b(i32, 1, 0x41, 0, 0x0B))),
		sec(7, vec(exp("f", 0, 0))),
		sec(9, vec(b(1, 0, 1, 1))), // passive, elemkind funcref, [func 1]
		sec(12, u32(1)),
		sec(10, vec(cat(u32(uint32(len(body))), body), fn(vec(), b(0x20, 0x00, 0x0B)))),
		sec(11, vec(b(1, 1, 0x2A))), // passive, 1 byte
	)
}

// wazeroSafe reports whether wazero can decode mod without allocating for
// counts larger than the module: wazero allocates before it checks them in
// sections Instrument copies without decoding (a data segment of 4 GiB, for
// one), which would stop the fuzzer for a bug of wazero's. It decodes the
// type and data sections, and gives up on element and name sections.
func wazeroSafe(mod []byte) bool {
	m, err := parse(mod, [2]string{})
	if err != nil {
		return false
	}
	for _, s := range m.sections {
		r := &reader{b: mod, pos: s.payload, end: s.end}
		switch s.id {
		case secCustom:
			if name, _ := r.name(); string(name) == "name" {
				return false
			}
		case 1: // type: vec(0x60 vec(valtype) vec(valtype))
			n, err := r.count()
			for i := 0; i < n*2 && err == nil; i++ {
				if i%2 == 0 {
					_, err = r.byte()
				}
				err = errors.Join(err, r.bytes())
			}
			if err != nil {
				return false
			}
		case 9: // element
			return false
		case 11: // data: vec(flags [memidx] [offset expr] vec(byte))
			n, err := r.count()
			for i := 0; i < n && err == nil; i++ {
				var flags uint32
				if flags, err = r.u32(); err == nil && flags == 2 {
					_, err = r.u32()
				}
				if err == nil && flags != 1 {
					_, _, _, err = r.expr(m)
				}
				err = errors.Join(err, r.bytes())
			}
			if err != nil {
				return false
			}
		}
	}
	return true
}

// bytes skips a vector of bytes.
func (r *reader) bytes() error {
	_, err := r.name()
	return err
}

var fuzzRuntime struct {
	once sync.Once
	rt   wazero.Runtime
}

// compiles reports whether wazero (the runtime the host uses: compiler,
// no context checks) compiles mod.
func compiles(mod []byte) (ok bool) {
	fuzzRuntime.once.Do(func() {
		fuzzRuntime.rt = wazero.NewRuntimeWithConfig(context.Background(), wazero.NewRuntimeConfig().WithCloseOnContextDone(false))
	})
	defer func() {
		if recover() != nil { // a wazero bug is not ours: count it as rejected
			ok = false
		}
	}()
	ctx := context.Background()
	c, err := fuzzRuntime.rt.CompileModule(ctx, mod)
	if err != nil {
		return false
	}
	c.Close(ctx)
	return true
}

func FuzzInstrument(f *testing.F) {
	for _, s := range seeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if out := check(t, in, wazeroSafe(in)); out != nil {
			sameMemory(t, in, out)
		}
		// Only the function body varies: wazero may compile and run it.
		if out := check(t, skeleton(in), true); out != nil {
			runsBounded(t, out)
		}
	})
}

// check is the property: Instrument does not panic; when it succeeds, its
// output has the checks where they belong and nothing else changed (verify),
// it can be instrumented again, and wazero compiles it if it compiles in
// (asked only when safe: see wazeroSafe). It returns the output if wazero
// compiles it.
func check(t *testing.T, in []byte, safe bool) []byte {
	t.Helper()
	out, m, err := instrument(in, "flag", "start")
	if err != nil {
		if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnsupported) && !errors.Is(err, ErrExportExists) {
			t.Fatalf("error of no known kind: %v", err)
		}
		return nil
	}
	verify(t, in, out, m)
	// The output is a module Instrument can rewrite again.
	out2, m2, err := instrument(out, "\x00flag 2", "\x00start 2")
	if err != nil {
		t.Fatalf("second pass: %v", err)
	}
	verify(t, out, out2, m2)
	if !safe || !compiles(in) {
		return nil
	}
	if !compiles(out) {
		_, err := fuzzRuntime.rt.CompileModule(context.Background(), out)
		t.Fatalf("wazero compiles the input but not the output: %v", err)
	}
	return out
}

var execRuntime struct {
	once sync.Once
	rt   wazero.Runtime
}

func initExecRuntime() {
	execRuntime.rt = wazero.NewRuntimeWithConfig(context.Background(),
		wazero.NewRuntimeConfig().WithCloseOnContextDone(true).WithMemoryLimitPages(16))
}

// runsBounded runs function "f" of the instrumented skeleton out with the
// flag already set: every loop then traps at its first iteration and every
// function that calls at its entry, so the call must end at once. If it
// does not, wazero found a loop that Instrument did not (they disagree on
// where instructions start). This runtime does check the context at loop
// headers, to stop such a call.
func runsBounded(t *testing.T, out []byte) {
	t.Helper()
	execRuntime.once.Do(initExecRuntime)
	ctx := context.Background()
	mod, err := execRuntime.rt.Instantiate(ctx, out)
	if err != nil {
		return
	}
	defer mod.Close(ctx)
	mod.ExportedGlobal("flag").(api.MutableGlobal).Set(1)
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := mod.ExportedFunction("f").Call(ctx, 0); ctx.Err() != nil {
		t.Fatalf("still running after 2s with the flag set: %v", err)
	}
}

// sameMemory instantiates in and out (without running start functions) and
// checks that both fail, or both succeed with the same memory: a packed
// data section writes what the original did.
func sameMemory(t *testing.T, in, out []byte) {
	t.Helper()
	execRuntime.once.Do(initExecRuntime)
	ctx := context.Background()
	m, err := parse(in, [2]string{})
	if err != nil {
		t.Fatal(err)
	}
	if m.start >= 0 { // wazero would run it inside the input's instantiation
		return
	}
	image := func(mod []byte) ([]byte, bool) {
		inst, err := execRuntime.rt.InstantiateWithConfig(ctx, mod, wazero.NewModuleConfig().WithName("").WithStartFunctions())
		if err != nil {
			return nil, false
		}
		defer inst.Close(ctx)
		if m.memories == 0 { // the output has the memory Instrument added
			return nil, true
		}
		mem := inst.Memory()
		b, _ := mem.Read(0, mem.Size())
		return bytes.Clone(b), true
	}
	want, ok1 := image(in)
	got, ok2 := image(out)
	if ok1 != ok2 || !bytes.Equal(want, got) {
		t.Fatalf("instantiation of the input: %v, of the output: %v; memories equal: %v", ok1, ok2, bytes.Equal(want, got))
	}
}
