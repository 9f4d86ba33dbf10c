package wasmloop

import (
	"bytes"
	"context"
	"sort"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// dataSection returns the bytes of m's data section (id, size, contents),
// or nil.
func dataSection(b []byte, m *module) []byte {
	for _, s := range m.sections {
		if s.id == secData {
			return b[s.at:s.end]
		}
	}
	return nil
}

func sectionOf(m *module, id byte) (section, bool) {
	for _, s := range m.sections {
		if s.id == id {
			return s, true
		}
	}
	return section{}, false
}

// sameImage checks that out's data section, which differs from in's, is a
// packing of it: in's segments were all packable, out's are sorted and
// disjoint, fewer, write every byte in's write, and write no other non-zero
// byte.
func sameImage(t testing.TB, in []byte, m *module, out []byte, om *module) {
	t.Helper()
	if m.dataCount || m.importedMemories > 0 || m.memories != 1 {
		t.Fatalf("data section rewritten in a module that must keep it (data count %v, %d imported memories, %d memories)",
			m.dataCount, m.importedMemories, m.memories)
	}
	is, _ := sectionOf(m, secData)
	os, _ := sectionOf(om, secData)
	isegs, ok := dataSegments(in, is)
	if !ok {
		t.Fatal("data section rewritten though its segments are not all active at constant offsets")
	}
	osegs, ok := dataSegments(out, os)
	if !ok {
		t.Fatal("packed data section does not decode")
	}
	if len(osegs) >= len(isegs) {
		t.Fatalf("packed into %d segments from %d", len(osegs), len(isegs))
	}
	if w := os.end - os.payload; w > 2*(is.end-is.payload)+16 {
		t.Fatalf("packed data section of %d bytes from %d", w, is.end-is.payload)
	}
	for i := 1; i < len(osegs); i++ {
		if osegs[i].off < osegs[i-1].end() {
			t.Fatalf("packed segments %d and %d overlap or are out of order", i-1, i)
		}
	}
	nonZero := func(b []byte) (n int) {
		for _, c := range b {
			if c != 0 {
				n++
			}
		}
		return n
	}
	var inNZ, outNZ int
	for _, sg := range osegs {
		outNZ += nonZero(out[sg.from:sg.to])
	}
	for _, sg := range isegs {
		data := in[sg.from:sg.to]
		inNZ += nonZero(data)
		if len(data) == 0 {
			continue
		}
		// The last packed segment starting at or before this one must hold it.
		j := sort.Search(len(osegs), func(j int) bool { return osegs[j].off > sg.off }) - 1
		if j < 0 || osegs[j].end() < sg.end() {
			t.Fatalf("input segment at %d (%d bytes) is not inside a packed segment", sg.off, len(data))
		}
		at := osegs[j].from + int(sg.off-osegs[j].off)
		if !bytes.Equal(out[at:at+len(data)], data) {
			t.Fatalf("input segment at %d: packed bytes differ", sg.off)
		}
	}
	if inNZ != outNZ {
		t.Fatalf("packed segments write %d non-zero bytes, the input %d", outNZ, inNZ)
	}
}

// dataModule is a module with one memory of one page (imported when
// importMem), an optional data count section, and data segments (each
// flags, offset expression, bytes).
func dataModule(importMem, dataCount bool, segs ...[]byte) []byte {
	mem := sec(5, vec(b(0, 1)))
	var imports []byte
	if importMem {
		imports, mem = sec(2, vec(cat(str("env"), str("m"), b(2, 0, 1)))), nil
	}
	var dc []byte
	if dataCount {
		dc = sec(12, u32(uint32(len(segs))))
	}
	return wasm(imports, mem, sec(7, vec(exp("mem", 2, 0))), dc, sec(11, vec(segs...)))
}

// seg is an active segment of memory 0 at constant offset off.
func seg(off int32, data ...byte) []byte {
	return cat(b(0x00, 0x41), appendS32(nil, off), b(opEnd), u32(uint32(len(data))), data)
}

// memoryAfter instantiates mod and returns its memory "mem" (an exported
// or its only memory) right after instantiation.
func memoryAfter(t testing.TB, rt wazero.Runtime, mod []byte) []byte {
	t.Helper()
	ctx := context.Background()
	inst, err := rt.InstantiateWithConfig(ctx, mod, wazero.NewModuleConfig().WithName("").WithStartFunctions())
	if err != nil {
		t.Fatalf("instantiate: %v", err)
	}
	defer inst.Close(ctx)
	mem := inst.Memory()
	if mem == nil {
		t.Fatal("no memory")
	}
	img, ok := mem.Read(0, mem.Size())
	if !ok {
		t.Fatal("memory read")
	}
	return bytes.Clone(img)
}

func TestPackData(t *testing.T) {
	long := make([]byte, 2*packGap) // a section large enough for a gap's zeros
	for _, tc := range []struct {
		name  string
		mod   []byte
		segs  int // segments after Instrument; 0: the data section unchanged
		image bool
	}{
		{"sorted, small gaps", dataModule(false, false, seg(0, 1, 2), seg(10, 3), seg(300, 4, 0, 5)), 2, true},
		{"unsorted, disjoint", dataModule(false, false, seg(40, 9, 9), seg(0, 1), seg(20, 2, 2), seg(42, 3)), 2, true}, // the budget stops at the second gap,
		{"empty segments", dataModule(false, false, seg(5), seg(0, 1), seg(1), seg(5, 7)), 1, true},
		{"long gap", dataModule(false, false, seg(0, 1), seg(1+packGap, 2)), 0, true},
		{"gap just under", dataModule(false, false, seg(0, long...), seg(int32(len(long))+packGap-1, 2)), 1, true},
		{"gap over the budget", dataModule(false, false, seg(0, 1), seg(packGap-1, 2)), 0, true},
		{"overlapping", dataModule(false, false, seg(0, 1, 2, 3), seg(2, 9)), 0, true},
		{"one segment", dataModule(false, false, seg(8, 1)), 0, true},
		{"passive segment", dataModule(false, false, seg(0, 1), b(0x01, 1, 7), seg(4, 2)), 0, false},
		{"explicit memory index", dataModule(false, false, seg(0, 1), cat(b(0x02, 0x00, 0x41, 4, opEnd), u32(1), b(2))), 0, true},
		{"global.get offset", wasm(sec(2, vec(cat(str("env"), str("g"), b(3, i32, 0)))), sec(5, vec(b(0, 1))),
			sec(11, vec(seg(0, 1), cat(b(0x00, 0x23, 0, opEnd), u32(1), b(2))))), 0, false},
		{"negative offset", dataModule(false, false, seg(0, 1), seg(-1, 2)), 0, false},
		{"data count section", dataModule(false, true, seg(0, 1), seg(4, 2)), 0, true},
		{"imported memory", dataModule(true, false, seg(0, 1), seg(4, 2)), 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, m, err := instrument(tc.mod, "flag", "start")
			if err != nil {
				t.Fatal(err)
			}
			verify(t, tc.mod, out, m)
			om, err := parse(out, [2]string{})
			if err != nil {
				t.Fatal(err)
			}
			before, after := dataSection(tc.mod, m), dataSection(out, om)
			if tc.segs == 0 {
				if !bytes.Equal(before, after) {
					t.Fatalf("data section changed:\n%x\n%x", before, after)
				}
			} else {
				s, _ := sectionOf(om, secData)
				segs, ok := dataSegments(out, s)
				if !ok || len(segs) != tc.segs {
					t.Fatalf("%d segments after packing (decodes: %v), want %d", len(segs), ok, tc.segs)
				}
			}
			if !tc.image {
				return
			}
			ctx := context.Background()
			rt := wazero.NewRuntime(ctx)
			defer rt.Close(ctx)
			if want, got := memoryAfter(t, rt, tc.mod), memoryAfter(t, rt, out); !bytes.Equal(want, got) {
				t.Fatal("memory after instantiation differs")
			}
		})
	}
}

// TestPackDataBudget: zeros written out are bounded by the section's size,
// whatever the gaps.
func TestPackDataBudget(t *testing.T) {
	var segs [][]byte
	for i := range 200 {
		segs = append(segs, seg(int32(i*(packGap-1)), 1))
	}
	in := dataModule(false, false, segs...)
	out, m, err := instrument(in, "flag", "start")
	if err != nil {
		t.Fatal(err)
	}
	verify(t, in, out, m) // checks the packed section is at most twice the input's
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	if !bytes.Equal(memoryAfter(t, rt, in), memoryAfter(t, rt, out)) {
		t.Fatal("memory after instantiation differs")
	}
}

// TestPackDataGoExample: a Go guest's 20,000 segments become a handful,
// and its memory after instantiation is the same byte for byte.
func TestPackDataGoExample(t *testing.T) {
	in := goExampleModule(t)
	out, m, err := instrument(in, "sluice_interrupt", "sluice_start")
	if err != nil {
		t.Fatal(err)
	}
	om, err := parse(out, [2]string{})
	if err != nil {
		t.Fatal(err)
	}
	is, _ := sectionOf(m, secData)
	os, _ := sectionOf(om, secData)
	isegs, _ := dataSegments(in, is)
	osegs, ok := dataSegments(out, os)
	t.Logf("%d data segments (%d bytes) → %d (%d bytes)", len(isegs), is.end-is.payload, len(osegs), os.end-os.payload)
	if len(isegs) < 1000 || !ok || len(osegs) > 16 {
		t.Fatalf("%d data segments → %d (decodes: %v): want a Go guest's thousands packed into a few", len(isegs), len(osegs), ok)
	}
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	wasi_snapshot_preview1.MustInstantiate(ctx, rt)
	stubImports(t, rt, in, "sluice_v1")
	if !bytes.Equal(memoryAfter(t, rt, in), memoryAfter(t, rt, out)) {
		t.Fatal("memory after instantiation differs")
	}
}

// stubImports instantiates host module name with a function that does
// nothing for each function mod imports from it.
func stubImports(t testing.TB, rt wazero.Runtime, mod []byte, name string) {
	t.Helper()
	ctx := context.Background()
	cm, err := rt.CompileModule(ctx, mod)
	if err != nil {
		t.Fatal(err)
	}
	defer cm.Close(ctx)
	hb := rt.NewHostModuleBuilder(name)
	for _, f := range cm.ImportedFunctions() {
		if m, fn, _ := f.Import(); m == name {
			hb.NewFunctionBuilder().
				WithGoModuleFunction(api.GoModuleFunc(func(context.Context, api.Module, []uint64) {}), f.ParamTypes(), f.ResultTypes()).
				Export(fn)
		}
	}
	if _, err := hb.Instantiate(ctx); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkInstantiateGoExample: one instantiation of the rewritten Go
// example guest (what the host does for each new pooled instance), with its
// data section packed and as the linker wrote it.
func BenchmarkInstantiateGoExample(b *testing.B) {
	in := goExampleModule(b)
	for _, packed := range []bool{true, false} {
		name := "packed"
		if !packed {
			name = "unpacked"
		}
		b.Run(name, func(b *testing.B) {
			packDataSegments = packed
			defer func() { packDataSegments = true }()
			out, _, err := Instrument(in, "sluice_interrupt", "sluice_start")
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCloseOnContextDone(false))
			defer rt.Close(ctx)
			wasi_snapshot_preview1.MustInstantiate(ctx, rt)
			stubImports(b, rt, in, "sluice_v1")
			cm, err := rt.CompileModule(ctx, out)
			if err != nil {
				b.Fatal(err)
			}
			cfg := wazero.NewModuleConfig().WithName("").WithStartFunctions()
			b.ReportAllocs()
			for b.Loop() {
				mod, err := rt.InstantiateModule(ctx, cm, cfg)
				if err != nil {
					b.Fatal(err)
				}
				mod.Close(ctx)
			}
		})
	}
}
