package wasmhost

import (
	"context"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/sluicehq/sluice/engine"
	"github.com/sluicehq/sluice/engine/codec"
	"github.com/tetratelabs/wazero/api"
)

var (
	fuzzOnce sync.Once
	fuzzInst *instance
	fuzzErr  error
)

// fuzzInstance is one live guest instance whose memory the fuzzer uses as
// the guest's side of host calls (the guest itself never runs again).
func fuzzInstance(tb testing.TB) *instance {
	fuzzOnce.Do(func() {
		h, err := New(context.Background(), Config{CacheDir: cacheDir, Logger: quietLog})
		if err != nil {
			fuzzErr = err
			return
		}
		if _, err := h.Add(context.Background(), "noop", guest(tb, "noop")); err != nil {
			fuzzErr = err
			return
		}
		fuzzInst, fuzzErr = h.transforms["noop"].current.acquire(context.Background())
	})
	if fuzzErr != nil {
		tb.Fatal(fuzzErr)
	}
	return fuzzInst
}

// FuzzHostFuncs calls every host function with arbitrary arguments and
// guest memory: no call may panic, every result is a length or a known
// status, and every JSON record stays valid JSON whatever the guest asks.
func FuzzHostFuncs(f *testing.F) {
	f.Add(uint8(2), int32(0), uint32(0), uint32(11), uint32(64), uint32(32), []byte("geo.country"), `{"geo":{"country":"DE"}}`)
	f.Add(uint8(8), int32(0), uint32(0), uint32(1), uint32(1), uint32(3), []byte(`a[1]`), `{"a":{}}`)
	f.Add(uint8(9), int32(1), uint32(0), uint32(3), uint32(0), uint32(0), []byte("a.b"), `{"a":{"b":1,"c":2}}`)
	f.Add(uint8(10), int32(1), uint32(0), uint32(1), uint32(0), uint32(2), []byte("s"), `{"s":"a\\u0040b"}`)
	f.Add(uint8(15), int32(0), uint32(0), uint32(2), uint32(0), uint32(0), []byte("{}"), `[1]`)
	names := make([]string, 0, len(hostFuncParams))
	for n := range hostFuncParams {
		names = append(names, n)
	}
	sort.Strings(names)
	fns := hostFuncs()
	const base = 1 << 20 // guest scratch area for the fuzz data
	f.Fuzz(func(t *testing.T, which uint8, rec int32, a, b, c, d uint32, data []byte, doc string) {
		in := fuzzInstance(t)
		if len(data) > 4096 {
			data = data[:4096]
		}
		in.mem.Write(base, data)
		memSize := in.mem.Size()
		// Keep pointers mostly in (or just past) guest memory and lengths
		// mostly small, so calls get past the bounds checks often.
		ptrArg := func(x uint32) uint64 { return uint64(base + x%(memSize-base+64)) }
		lenArg := func(x uint32) uint64 { return uint64(x % 8192) }
		recs := []engine.Record{
			{Value: []byte(doc), Format: engine.FormatJSON},
			{Value: []byte(`{"a":{"b":1,"c":[1,2]},"s":"x\"y"}`), Format: engine.FormatJSON, Key: []byte("k")},
			{Value: []byte(doc), Format: engine.FormatRaw},
		}
		valid := []bool{codec.Valid(recs[0].Value), true}
		var st callState
		st.reset(recs, 4)
		ctx := context.WithValue(context.Background(), stateKey{}, &st)
		for step := 0; step < 3; step++ {
			name := names[(int(which)+step)%len(names)]
			stack := make([]uint64, max(hostFuncParams[name], 1))
			args := []uint64{api.EncodeI32(rec % 5), ptrArg(a), lenArg(b), ptrArg(c), lenArg(d)}
			switch name {
			case FuncFetchField: // (path, path_len, mode, tab, buf, cap)
				args = []uint64{ptrArg(a), lenArg(b), uint64(uint32(rec) % 3), ptrArg(c), ptrArg(c + 64), lenArg(d)}
			case FuncRecordKinds, FuncApply: // (buf, cap) and (ops, ops_len, res, res_cap)
				args = []uint64{ptrArg(a), lenArg(b), ptrArg(c), lenArg(d)}
			}
			copy(stack, args[:hostFuncParams[name]])
			if name == FuncRecordValue || name == FuncRecordTopic || name == FuncRecordKey {
				stack[1], stack[2] = ptrArg(a), lenArg(b)
			}
			if name == FuncHashField {
				stack[3] = api.EncodeI32(int32(d%4) - 1) // mostly a known algorithm or a near miss
			}
			fns[name](ctx, in.mod, stack)
			if r := api.DecodeI32(stack[0]); r < StatusMalformed {
				t.Fatalf("%s returned %d", name, r)
			}
			for i := range valid {
				if valid[i] && !codec.Valid(st.record(int32(i)).Value) {
					t.Fatalf("%s made record %d invalid JSON: %q", name, i, st.record(int32(i)).Value)
				}
			}
		}
		out, dlq, _ := st.collect(recs, nil, "fuzz")
		if len(out)+len(dlq) > len(recs)+st.emitted {
			t.Fatalf("%d out + %d dlq from %d records and %d emits", len(out), len(dlq), len(recs), st.emitted)
		}
	})
}

// TestHostFuncsIgnoreHighBits: a parameter's stack slot may carry garbage
// in its high 32 bits (a Go guest leaves some there); every host function
// must answer exactly as with clean slots.
func TestHostFuncsIgnoreHighBits(t *testing.T) {
	in := fuzzInstance(t)
	const base = 1 << 20
	in.mem.Write(base, []byte("geo.country"))
	in.mem.Write(base+64, []byte(`"v"`))
	opsBuf := encodeOps(op{code: OpSetString, rec: 0, a: "x", b: "y"}, op{code: OpDrop, rec: 1})
	in.mem.Write(base+128, opsBuf)
	recs := func() []engine.Record {
		return []engine.Record{
			{Value: []byte(`{"geo":{"country":"DE"},"x":1}`), Key: []byte("k"), Topic: "t", Headers: []engine.Header{{Key: "geo.country", Value: []byte("h")}}},
			{Value: []byte(`{"geo":{"country":"JP"}}`)},
		}
	}
	args := map[string][]uint64{
		FuncRecordCount:  nil,
		FuncRecordValue:  {0, base + 4096, 4096},
		FuncGetField:     {0, base, 11, base + 4096, 4096},
		FuncGetString:    {0, base, 11, base + 4096, 4096},
		FuncRecordTopic:  {0, base + 4096, 4096},
		FuncRecordKey:    {0, base + 4096, 4096},
		FuncRecordHeader: {0, base, 11, base + 4096, 4096},
		FuncDrop:         {1},
		FuncSetField:     {0, base, 3, base + 64, 3},
		FuncSetString:    {0, base, 3, base + 64, 3},
		FuncDeleteField:  {0, base, 3},
		FuncSetValue:     {0, base + 64, 3},
		FuncSetTopic:     {0, base, 3},
		FuncSetKey:       {0, base, 3},
		FuncSetHeader:    {0, base, 3, base + 64, 3},
		FuncDeadLetter:   {0, base, 3},
		FuncEmit:         {0, base + 64, 3},
		FuncHashField:    {0, base, 11, 1},
		FuncFetchField:   {base, 11, 0, base + 8192, base + 9000, 4096},
		FuncRecordKinds:  {base + 8192, 4096},
		FuncApply:        {base + 128, uint64(len(opsBuf)), base + 8192, 64},
	}
	for name := range hostFuncParams {
		if _, ok := args[name]; !ok {
			t.Fatalf("%s not covered", name)
		}
	}
	// The getters again with a buffer too small for the value: nothing may
	// be written.
	for _, name := range []string{FuncRecordValue, FuncRecordTopic, FuncRecordKey} {
		args[name+"/small"] = []uint64{0, base + 4096, 1}
	}
	for _, name := range []string{FuncGetField, FuncGetString, FuncRecordHeader} {
		a := append([]uint64(nil), args[name]...)
		a[4] = 1
		args[name+"/small"] = a
	}
	args[FuncFetchField+"/small"] = []uint64{base, 11, 0, base + 8192, base + 9000, 1}
	args[FuncRecordKinds+"/small"] = []uint64{base + 4096, 1}
	fns := hostFuncs()
	for key, a := range args {
		name, _, _ := strings.Cut(key, "/")
		run := func(high uint64) (int32, string, []byte) {
			var st callState
			st.reset(recs(), 4)
			ctx := context.WithValue(context.Background(), stateKey{}, &st)
			stack := make([]uint64, max(len(a), 1))
			for i, v := range a {
				stack[i] = v | high<<32
			}
			in.mem.Write(base+4096, make([]byte, 8192))
			fns[name](ctx, in.mod, stack)
			out, _ := in.mem.Read(base+4096, 8192)
			return api.DecodeI32(stack[0]), decisionsOf(&st, recs()), append([]byte(nil), out...)
		}
		r0, d0, m0 := run(0)
		r1, d1, m1 := run(0xdeadbeef)
		if r0 != r1 || d0 != d1 || string(m0) != string(m1) {
			t.Errorf("%s: clean slots %d, dirty high bits %d (decisions equal %v, memory equal %v)", key, r0, r1, d0 == d1, string(m0) == string(m1))
		}
		if r0 < 0 && name != FuncDeleteField {
			t.Errorf("%s: %d with valid arguments", key, r0)
		}
	}
}
