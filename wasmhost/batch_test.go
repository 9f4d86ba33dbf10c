package wasmhost

import (
	"context"
	"encoding/binary"
	"fmt"
	"reflect"
	"testing"

	"github.com/sluicehq/sluice/engine"
	"github.com/tetratelabs/wazero/api"
)

// batchCall drives the per-batch host functions against a call state,
// with a live instance's memory standing in for the guest's.
type batchCall struct {
	in *instance
	st *callState
}

const batchScratch = 1 << 20 // guest memory the tests write into

func newBatchCall(tb testing.TB, recs ...engine.Record) *batchCall {
	c := &batchCall{in: fuzzInstance(tb), st: &callState{}}
	c.st.reset(recs, 8)
	return c
}

func (c *batchCall) call(name string, args ...uint64) int32 {
	stack := make([]uint64, max(len(args), 1))
	copy(stack, args)
	hostFuncs()[name](context.WithValue(context.Background(), stateKey{}, c.st), c.in.mod, stack)
	return api.DecodeI32(stack[0])
}

// fetch runs fetch_field and decodes its table and values.
func (c *batchCall) fetch(tb testing.TB, path string, mode int32, capacity uint32) (int32, []string, []int32) {
	tb.Helper()
	pathAt, tabAt, bufAt := uint32(batchScratch), uint32(batchScratch+256), uint32(batchScratch+256+8*1024)
	c.in.mem.Write(pathAt, []byte(path))
	n := c.call(FuncFetchField, uint64(pathAt), uint64(len(path)), api.EncodeI32(mode), uint64(tabAt), uint64(bufAt), uint64(capacity))
	if n < 0 || uint32(n) > capacity {
		return n, nil, nil
	}
	vals := make([]string, c.st.n)
	sts := make([]int32, c.st.n)
	tab, _ := c.in.mem.Read(tabAt, uint32(8*c.st.n))
	buf, _ := c.in.mem.Read(bufAt, capacity)
	for i := range vals {
		off := binary.LittleEndian.Uint32(tab[8*i:])
		l := int32(binary.LittleEndian.Uint32(tab[8*i+4:]))
		if l < 0 {
			sts[i] = l
			continue
		}
		vals[i] = string(buf[off : off+uint32(l)])
	}
	return n, vals, sts
}

func TestFetchField(t *testing.T) {
	recs := []engine.Record{
		{Value: []byte(`{"event":"click","geo":{"country":"DE"},"s":"a\u0040b"}`)},
		{Value: []byte(`{"geo":{"country":"JP"},"event":7}`)},
		{Value: []byte(`{"event":"view\"x"}`)},
		{Value: []byte(`raw bytes`), Format: engine.FormatRaw},
		{Value: []byte(`[1,2]`)},
	}
	c := newBatchCall(t, recs...)
	n, vals, sts := c.fetch(t, "event", FetchRaw, 4096)
	if want := len(`"click"`) + len(`7`) + len(`"view\"x"`); n != int32(want) {
		t.Fatalf("total %d, want %d", n, want)
	}
	if want := []string{`"click"`, `7`, `"view\"x"`, "", ""}; !reflect.DeepEqual(vals, want) {
		t.Fatalf("values %q, want %q", vals, want)
	}
	if want := []int32{0, 0, 0, StatusInvalidJSON, StatusNotFound}; !reflect.DeepEqual(sts, want) {
		t.Fatalf("statuses %v, want %v", sts, want)
	}
	_, vals, sts = c.fetch(t, "event", FetchString, 4096)
	if want := []string{`click`, ``, `view"x`, "", ""}; !reflect.DeepEqual(vals, want) {
		t.Fatalf("strings %q, want %q", vals, want)
	}
	if want := []int32{0, StatusWrongType, 0, StatusInvalidJSON, StatusNotFound}; !reflect.DeepEqual(sts, want) {
		t.Fatalf("string statuses %v, want %v", sts, want)
	}
	if _, vals, _ = c.fetch(t, "s", FetchString, 4096); vals[0] != "a@b" {
		t.Fatalf("escaped string %q", vals[0])
	}
	if _, vals, _ = c.fetch(t, "geo.country", FetchString, 4096); vals[0] != "DE" || vals[1] != "JP" {
		t.Fatalf("nested %q", vals)
	}
	// Too small: the total is reported and a retry with that much fits.
	n, vals, _ = c.fetch(t, "event", FetchRaw, 3)
	if n != 17 || vals != nil {
		t.Fatalf("small buffer: %d %q", n, vals)
	}
	if n, _, _ = c.fetch(t, "event", FetchRaw, 17); n != 17 {
		t.Fatalf("exact buffer: %d", n)
	}
	for _, tc := range []struct {
		path string
		mode int32
		want int32
	}{{"", FetchRaw, StatusBadPath}, {"a..b", FetchRaw, StatusBadPath}, {"event", 2, StatusUnsupported}, {"event", -1, StatusUnsupported}} {
		if n, _, _ := c.fetch(t, tc.path, tc.mode, 64); n != tc.want {
			t.Errorf("fetch(%q, %d) = %d, want %d", tc.path, tc.mode, n, tc.want)
		}
	}
	size := uint64(c.in.mem.Size())
	if got := c.call(FuncFetchField, batchScratch, 5, 0, size-8, batchScratch, 8); got != StatusBadMemory {
		t.Fatalf("table past memory: %d", got)
	}
	if got := c.call(FuncFetchField, batchScratch, 5, 0, batchScratch, size-4, 8); got != StatusBadMemory {
		t.Fatalf("buffer past memory: %d", got)
	}
	// Edits made earlier in the call are seen.
	if st := c.st.setField(0, []byte("event"), []byte("x"), true); st != StatusOK {
		t.Fatal(st)
	}
	if _, vals, _ = c.fetch(t, "event", FetchRaw, 4096); vals[0] != `"x"` {
		t.Fatalf("after an edit: %q", vals[0])
	}
}

func TestRecordKinds(t *testing.T) {
	c := newBatchCall(t,
		engine.Record{Value: []byte(` {"a":1}`)},
		engine.Record{Value: []byte("\n[1]")},
		engine.Record{Value: []byte(`"s"`)},
		engine.Record{Value: []byte(`{}`), Format: engine.FormatRaw},
		engine.Record{Value: []byte(`12`)},
	)
	if got := c.call(FuncRecordKinds, batchScratch, 4); got != 5 {
		t.Fatalf("small buffer: %d", got)
	}
	if got := c.call(FuncRecordKinds, batchScratch, 64); got != 5 {
		t.Fatalf("kinds: %d", got)
	}
	b, _ := c.in.mem.Read(batchScratch, 5)
	if want := []byte{KindObject, KindArray, KindScalar, KindNotJSON, KindScalar}; !reflect.DeepEqual(b, want) {
		t.Fatalf("kinds %v, want %v", b, want)
	}
	if got := c.call(FuncRecordKinds, uint64(c.in.mem.Size()-2), 64); got != StatusBadMemory {
		t.Fatalf("past memory: %d", got)
	}
}

// op is one decision for apply, in its wire form.
type op struct {
	code, arg byte
	rec       int32
	a, b      string
}

func encodeOps(ops ...op) []byte {
	var buf []byte
	for _, o := range ops {
		var h [OpHeaderSize]byte
		h[0], h[1] = o.code, o.arg
		binary.LittleEndian.PutUint32(h[4:], uint32(o.rec))
		binary.LittleEndian.PutUint32(h[8:], uint32(len(o.a)))
		binary.LittleEndian.PutUint32(h[12:], uint32(len(o.b)))
		buf = append(buf, h[:]...)
		buf = append(buf, o.a...)
		buf = append(buf, o.b...)
	}
	return buf
}

// applyOps writes ops into guest memory and calls apply; it returns
// apply's result and the per-op results.
func (c *batchCall) applyOps(ops []byte, nres int) (int32, []int32) {
	resAt := uint32(batchScratch)
	opsAt := uint32(batchScratch + 4096)
	c.in.mem.Write(opsAt, ops)
	got := c.call(FuncApply, uint64(opsAt), uint64(len(ops)), uint64(resAt), uint64(4*nres))
	res := make([]int32, nres)
	b, _ := c.in.mem.Read(resAt, uint32(4*nres))
	for i := range res {
		res[i] = int32(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return got, res
}

// perRecord applies the same decisions through the per-record host
// functions, the reference for apply.
func (c *batchCall) perRecord(ops []op) []int32 {
	res := make([]int32, 0, len(ops))
	base := uint64(batchScratch + 64<<10)
	put := func(at uint64, s string) uint64 {
		c.in.mem.Write(uint32(at), []byte(s))
		return at
	}
	for _, o := range ops {
		a, b := put(base, o.a), put(base+8192, o.b)
		al, bl := uint64(len(o.a)), uint64(len(o.b))
		rec := api.EncodeI32(o.rec)
		var r int32
		switch o.code {
		case OpDrop:
			r = c.call(FuncDrop, rec)
		case OpDeadLetter:
			r = c.call(FuncDeadLetter, rec, a, al)
		case OpSetField:
			r = c.call(FuncSetField, rec, a, al, b, bl)
		case OpSetString:
			r = c.call(FuncSetString, rec, a, al, b, bl)
		case OpDeleteField:
			r = c.call(FuncDeleteField, rec, a, al)
		case OpSetValue:
			r = c.call(FuncSetValue, rec, a, al)
		case OpSetTopic:
			r = c.call(FuncSetTopic, rec, a, al)
		case OpSetKey:
			r = c.call(FuncSetKey, rec, a, al)
		case OpSetHeader:
			r = c.call(FuncSetHeader, rec, a, al, b, bl)
		case OpHashField:
			r = c.call(FuncHashField, rec, a, al, api.EncodeI32(int32(o.arg)))
		}
		res = append(res, r)
	}
	return res
}

func sampleRecs() []engine.Record {
	return []engine.Record{
		{Value: []byte(`{"event":"click","ua":"Mozilla","ip":"1.2.3.4","email":"a@b.c","geo":{"country":"DE"}}`), Key: []byte("k0"), Tag: 10},
		{Value: []byte(`{"event":"heartbeat"}`), Headers: []engine.Header{{Key: "h", Value: []byte("v")}}, Tag: 11},
		{Value: []byte(`{"email":5,"user_id":"u2"}`), Topic: "t", Tag: 12},
		{Value: []byte(`not json`), Format: engine.FormatRaw, Tag: 13},
		{Value: []byte(`[1,2,3]`), Tag: 14},
	}
}

// decisionsOf returns what a call decided, for comparison.
func decisionsOf(st *callState, recs []engine.Record) string {
	in := append([]engine.Record(nil), recs...)
	out, dlq, t := st.collect(in, nil, "s")
	return fmt.Sprintf("%+v\n%+v\n%+v", out, dlq, t)
}

func TestApply(t *testing.T) {
	ops := []op{
		{code: OpDeleteField, rec: 0, a: "ua"},
		{code: OpDeleteField, rec: 0, a: "ip"},
		{code: OpHashField, arg: byte(HashSHA256), rec: 0, a: "email"},
		{code: OpSetTopic, rec: 0, a: "events.click"},
		{code: OpSetKey, rec: 0, a: "u1"},
		{code: OpSetString, rec: 0, a: "region", b: "emea"},
		{code: OpSetField, rec: 0, a: "geo.city", b: ` {"n":1} `},
		{code: OpDrop, rec: 1},
		{code: OpHashField, arg: byte(HashSHA256), rec: 2, a: "email"},
		{code: OpSetHeader, rec: 2, a: "h2", b: "x"},
		{code: OpDeadLetter, rec: 3, a: "raw"},
		{code: OpSetField, rec: 4, a: "x", b: `1`},
		{code: OpDeleteField, rec: 4, a: "1"},
		{code: OpSetValue, rec: 4, a: `{"new":true}`},
		{code: OpSetField, rec: 4, a: "a", b: `[`},
		{code: OpDeleteField, rec: 9, a: "a"},
		{code: OpHashField, arg: 7, rec: 0, a: "email"},
		{code: OpSetField, rec: 0, a: "a..b", b: `1`},
	}
	a := newBatchCall(t, sampleRecs()...)
	failed, res := a.applyOps(encodeOps(ops...), len(ops))
	b := newBatchCall(t, sampleRecs()...)
	want := b.perRecord(ops)
	if !reflect.DeepEqual(res, want) {
		t.Fatalf("apply results %v\nper-record     %v", res, want)
	}
	nfail := int32(0)
	for _, r := range want {
		if r < 0 {
			nfail++
		}
	}
	if failed != nfail || nfail != 6 {
		t.Fatalf("apply reported %d failures, want %d (6)", failed, nfail)
	}
	if ga, gb := decisionsOf(a.st, sampleRecs()), decisionsOf(b.st, sampleRecs()); ga != gb {
		t.Fatalf("apply decided\n%s\nper-record calls decided\n%s", ga, gb)
	}
	// No room for results: applied all the same, results not written.
	c := newBatchCall(t, sampleRecs()...)
	c.in.mem.Write(batchScratch, make([]byte, 16))
	opsAt := uint64(batchScratch + 4096)
	buf := encodeOps(ops...)
	c.in.mem.Write(uint32(opsAt), buf)
	if got := c.call(FuncApply, opsAt, uint64(len(buf)), batchScratch, 8); got != nfail {
		t.Fatalf("without results: %d", got)
	}
	if z, _ := c.in.mem.Read(batchScratch, 16); !reflect.DeepEqual(z, make([]byte, 16)) {
		t.Fatalf("results written into a too small buffer: %v", z)
	}
	if ga, gb := decisionsOf(c.st, sampleRecs()), decisionsOf(b.st, sampleRecs()); ga != gb {
		t.Fatalf("apply without results decided\n%s\nwant\n%s", ga, gb)
	}
}

func TestApplyMalformed(t *testing.T) {
	good := encodeOps(op{code: OpDrop, rec: 0}, op{code: OpSetTopic, rec: 0, a: "x"})
	for name, buf := range map[string][]byte{
		"short header":   good[:10],
		"unknown op":     append([]byte{0}, good[1:]...),
		"op past range":  append([]byte{OpHashField + 1}, good[1:]...),
		"reserved bytes": append([]byte{OpDrop, 0, 1}, good[3:]...),
		"arg on drop":    append([]byte{OpDrop, 1}, good[2:]...),
		"delete flag 2":  encodeOps(op{code: OpDeleteField, arg: 2, rec: 0, a: "x"}),
		"length past":    good[:len(good)-1],
		"huge length":    encodeOps(op{code: OpSetTopic, rec: 0, a: "x"})[:12],
	} {
		c := newBatchCall(t, sampleRecs()...)
		if got, _ := c.applyOps(buf, 0); got != StatusMalformed {
			t.Errorf("%s: %d, want MALFORMED", name, got)
		}
		if c.st.recs[0].dropped || c.st.recs[0].mod {
			t.Errorf("%s: a malformed buffer was partly applied", name)
		}
	}
	c := newBatchCall(t, sampleRecs()...)
	if got := c.call(FuncApply, uint64(c.in.mem.Size()-4), 16, 0, 0); got != StatusBadMemory {
		t.Fatalf("ops past memory: %d", got)
	}
	if got, _ := c.applyOps(nil, 0); got != 0 {
		t.Fatalf("no ops: %d", got)
	}
	if got := c.call(FuncApply, batchScratch, 0, uint64(c.in.mem.Size()-2), 8); got != StatusBadMemory {
		t.Fatalf("results past memory: %d", got)
	}
}

// FuzzApply: any decision buffer is rejected as malformed or has exactly
// the effect of the same decisions made one by one.
func FuzzApply(f *testing.F) {
	f.Add(encodeOps(op{code: OpDeleteField, rec: 0, a: "ua"}, op{code: OpSetString, rec: 0, a: "r", b: "x"}))
	f.Add(encodeOps(op{code: OpHashField, arg: 1, rec: 2, a: "email"}, op{code: OpDrop, rec: 1}, op{code: OpSetValue, rec: 4, a: "{}"}))
	f.Add(encodeOps(op{code: OpSetField, rec: 0, a: "geo.country", b: `{"a":[1]}`}, op{code: OpSetHeader, rec: 1, a: "h", b: ""}))
	f.Fuzz(func(t *testing.T, buf []byte) {
		if len(buf) > 2048 {
			return
		}
		a := newBatchCall(t, sampleRecs()...)
		count, ok := checkOps(buf)
		failed, res := a.applyOps(buf, count)
		if !ok {
			if failed != StatusMalformed {
				t.Fatalf("malformed buffer: %d", failed)
			}
			return
		}
		var ops []op
		for rest := buf; len(rest) > 0; {
			al := int(binary.LittleEndian.Uint32(rest[8:]))
			bl := int(binary.LittleEndian.Uint32(rest[12:]))
			ops = append(ops, op{code: rest[0], arg: rest[1], rec: int32(binary.LittleEndian.Uint32(rest[4:])),
				a: string(rest[OpHeaderSize : OpHeaderSize+al]), b: string(rest[OpHeaderSize+al : OpHeaderSize+al+bl])})
			rest = rest[OpHeaderSize+al+bl:]
		}
		b := newBatchCall(t, sampleRecs()...)
		want := b.perRecord(ops)
		if !reflect.DeepEqual(res, want) {
			t.Fatalf("apply %v, per-record %v", res, want)
		}
		if ga, gb := decisionsOf(a.st, sampleRecs()), decisionsOf(b.st, sampleRecs()); ga != gb {
			t.Fatalf("apply decided\n%s\nper-record calls decided\n%s", ga, gb)
		}
	})
}

// TestApplyDeleteMissingOK: a flagged delete of a missing field is not a
// failure in apply's count; its result is still NOT_FOUND.
func TestApplyDeleteMissingOK(t *testing.T) {
	c := newBatchCall(t, sampleRecs()...)
	failed, res := c.applyOps(encodeOps(
		op{code: OpDeleteField, arg: DeleteMissingOK, rec: 0, a: "nope"},
		op{code: OpDeleteField, arg: DeleteMissingOK, rec: 0, a: "ua"},
		op{code: OpDeleteField, rec: 1, a: "nope"},
		op{code: OpDeleteField, arg: DeleteMissingOK, rec: 3, a: "x"},
	), 4)
	if want := []int32{StatusNotFound, StatusOK, StatusNotFound, StatusInvalidJSON}; !reflect.DeepEqual(res, want) {
		t.Fatalf("results %v, want %v", res, want)
	}
	if failed != 2 {
		t.Fatalf("failed = %d, want 2 (the unflagged NOT_FOUND and INVALID_JSON)", failed)
	}
}
