package wasmhost

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/bytedance/sonic/ast"
	"github.com/sluicehq/sluice/engine"
	"github.com/sluicehq/sluice/engine/codec"
	"github.com/tetratelabs/wazero/api"
)

// benchEvent is a realistic ~330-byte event.
func benchEvent(i int) string {
	events := []string{"click", "view", "heartbeat", "signup"}
	countries := []string{"DE", "JP", "US", "BR", "CN"}
	return fmt.Sprintf(`{"event":%q,"user_id":"u%06d","ts":1764190000%03d,"session":"s-3f9a8c21","geo":{"country":%q,"city":"Somewhere"},`+
		`"ua":"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0","ip":"10.1.%d.%d","email":"user%d@example.com",`+
		`"props":{"page":"/pricing","ref":"newsletter","ab":"B"}}`,
		events[i%len(events)], i, i%1000, countries[i%len(countries)], i%250, i%200, i)
}

const benchBatch = 1000

// benchPipeline runs b.N batches of 1,000 records through transforms, with
// the default PoolSize (GOMAXPROCS: batches are sharded), and reports wall
// time and allocations per record.
func benchPipeline(b *testing.B, transforms ...string) {
	benchPipelineN(b, Config{}, benchBatch, transforms...)
}

// benchPipelineN runs b.N batches of size records through transforms.
func benchPipelineN(b *testing.B, cfg Config, size int, transforms ...string) {
	h := newHost(b, cfg)
	addGuests(b, h, transforms...)
	if err := h.SetPipeline("bench", transforms); err != nil {
		b.Fatal(err)
	}
	p := h.Pipeline("bench")
	tmpl := make([]engine.Record, size)
	for i := range tmpl {
		tmpl[i] = engine.Record{Value: []byte(benchEvent(i)), Format: engine.FormatJSON}
	}
	recs := make([]engine.Record, size)
	var dlq []engine.DLQEntry
	ctx := context.Background()
	// Through the driver's process stage, whose batch's Release is called
	// once the batch is committed: here right after, as if the sink had
	// written it at once (the chain's output copies are then reused).
	process := engine.Process[int](p)
	run := func() {
		copy(recs, tmpl)
		res, err := process(ctx, engine.Batch[int]{Records: recs, DLQ: dlq[:0]})
		if err != nil {
			b.Fatal(err)
		}
		dlq = res.DLQ
		for _, fn := range res.Release {
			fn()
		}
	}
	// Warm: the chain's cost is measured (the first batch is not sharded),
	// every shard's instances exist, and the guests' heaps and buffers
	// reach their steady size (a new Go instance takes a few batches).
	for i := 0; i < 10; i++ {
		run()
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu := processCPU()
	for i := 0; i < b.N; i++ {
		run()
	}
	b.StopTimer()
	cpu = processCPU() - cpu
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*size), "ns/record")
	// The process's CPU time (every thread: guest calls, host functions,
	// GC) per record: steadier than wall time on a shared machine, and the
	// cost a core pays per record.
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N*size), "cpu-ns/record")
}

// BenchmarkPassThroughEmpty: a pipeline with no transform.
func BenchmarkPassThroughEmpty(b *testing.B) { benchPipeline(b) }

// BenchmarkPassThrough: a guest that touches nothing (the cost of a call
// and of iterating records in the guest).
func BenchmarkPassThrough(b *testing.B) { benchPipeline(b, "noop") }

func BenchmarkFilter(b *testing.B) { benchPipeline(b, "filter") }
func BenchmarkRoute(b *testing.B)  { benchPipeline(b, "route") }
func BenchmarkEnrich(b *testing.B) { benchPipeline(b, "enrich") }
func BenchmarkRedact(b *testing.B) { benchPipeline(b, "redact") }
func BenchmarkChain(b *testing.B)  { benchPipeline(b, chainNames...) }

var chainNames = []string{"filter", "redact", "route", "enrich"}

// BenchmarkChainSerial is the chain on one instance per transform (no
// sharding): the per-record cost of the guests plus the host functions.
func BenchmarkChainSerial(b *testing.B) {
	benchPipelineN(b, Config{PoolSize: 1}, benchBatch, chainNames...)
}

// BenchmarkShardSize compares small batches run on one instance (pool=1)
// and cut into two shards (pool=2), for the chain and for a guest that does
// nothing (where a shard's fixed cost weighs most), to place minShard.
func BenchmarkShardSize(b *testing.B) {
	for _, g := range [][]string{chainNames, {"noop"}} {
		for _, n := range []int{64, 128, 256, 512} {
			for _, pool := range []int{1, 2} {
				name := g[0]
				if len(g) > 1 {
					name = "chain"
				}
				b.Run(fmt.Sprintf("%s/n=%d/pool=%d", name, n, pool), func(b *testing.B) {
					defer func(m int, w time.Duration) { minShard, minShardWork = m, w }(minShard, minShardWork)
					minShard, minShardWork = 16, 0
					benchPipelineN(b, Config{PoolSize: pool}, n, g...)
				})
			}
		}
	}
}

// hostOpBench drives one host function over a 1,000-record batch held by
// a live instance (its memory is the guest's side of the call), the way a
// guest call does: one call state per batch, the records' indexes in a
// chain run. before, when set, runs on every record (outside the timer)
// at the start of each batch, like an earlier transform of the chain that
// read the record; fresh makes every batch start from unindexed records.
type hostOpBench struct {
	in    *instance
	st    *callState
	run   *chainRun
	order []int32
	recs  []engine.Record
	ctx   context.Context
}

func newHostOpBench(b *testing.B) *hostOpBench {
	h := newHost(b, Config{})
	addGuests(b, h, "noop")
	v := h.transforms["noop"].current
	in, err := v.acquire(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { v.release(in, true) })
	o := &hostOpBench{in: in, st: &in.state}
	o.recs = make([]engine.Record, benchBatch)
	for i := range o.recs {
		o.recs[i] = engine.Record{Value: []byte(benchEvent(i)), Format: engine.FormatJSON}
	}
	o.run, o.order = getRun(benchBatch)
	o.ctx = context.WithValue(context.Background(), stateKey{}, o.st)
	return o
}

// newBatch starts a new call over the batch; with index, every record is
// indexed up to path first (as by an earlier transform), else from scratch.
func (o *hostOpBench) newBatch(index string) {
	for i := range o.order {
		o.order[i] = int32(i)
		o.run.docs[i].reset(nil)
	}
	// The last batch's copies are given back, as the chain gives back its
	// intermediate copies when its run ends and its outputs' after the
	// driver committed them.
	o.run.recycle(nil, nil, nil)
	o.st.resetIn(o.recs, o.order, o.run, 0)
	if index != "" {
		for i := range o.recs {
			o.st.getField(int32(i), []byte(index))
		}
	}
}

// Scratch space in guest memory, past the Go heap in use.
const benchPathAt, benchValAt, benchBufAt = 1 << 20, 1<<20 + 256, 1<<20 + 512

// loop calls fn with stack on record i%1000 for every op, starting a new
// batch (outside the timer) every 1,000 ops.
func (o *hostOpBench) loop(b *testing.B, index string, fn api.GoModuleFunc, stack func(rec int) []uint64) {
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rec := i % benchBatch
		if rec == 0 {
			b.StopTimer()
			o.newBatch(index)
			b.StartTimer()
		}
		st := stack(rec)
		fn(o.ctx, o.in.mod, st)
		if api.DecodeI32(st[0]) < 0 {
			b.Fatalf("status %d", api.DecodeI32(st[0]))
		}
	}
}

// BenchmarkGetField measures the host side of get_field per call: the path
// read from guest memory, the compiled-path cache, the lookup, the write
// into the guest buffer. indexed: the record was read before in the chain
// (its index holds the field: what every lookup after a record's first
// costs); first: the first lookup of a fresh record (scanning up to the
// field); bytes: the byte-level reference (codec.Get on every lookup, the
// host before the index).
func BenchmarkGetField(b *testing.B) {
	for _, mode := range []string{"indexed", "first", "bytes"} {
		for _, path := range []string{"event", "geo.country", "props.ab"} {
			b.Run(mode+"/"+path, func(b *testing.B) {
				if mode == "bytes" {
					useIndex = false
					defer func() { useIndex = true }()
				}
				o := newHostOpBench(b)
				o.in.mem.WriteString(benchPathAt, path)
				fn := hostFuncs()[FuncGetField]
				stack := make([]uint64, 5)
				index := path
				if mode == "first" {
					index = ""
				}
				o.loop(b, index, fn, func(rec int) []uint64 {
					stack[0], stack[1], stack[2], stack[3], stack[4] = uint64(rec), benchPathAt, uint64(len(path)), benchBufAt, 256
					return stack
				})
			})
		}
	}
}

// BenchmarkSetField measures set_string("region", "apac") per call, as
// enrich makes it: a new field in a record an earlier transform indexed
// (indexed), in a fresh record (first), and the byte-level reference
// (bytes). It includes the record's copy-on-write for this call (carved
// from the chain's slab) and keeping its index valid.
func BenchmarkSetField(b *testing.B) {
	benchEdit(b, FuncSetString, "region", "apac", "event")
}

// BenchmarkDeleteField measures delete_field("ua") per call, as redact
// makes it (see BenchmarkSetField).
func BenchmarkDeleteField(b *testing.B) {
	benchEdit(b, FuncDeleteField, "ua", "", "event")
}

func benchEdit(b *testing.B, fnName, path, val, before string) {
	for _, mode := range []string{"indexed", "first", "bytes"} {
		b.Run(mode, func(b *testing.B) {
			if mode == "bytes" {
				useIndex = false
				defer func() { useIndex = true }()
			}
			o := newHostOpBench(b)
			o.in.mem.WriteString(benchPathAt, path)
			o.in.mem.WriteString(benchValAt, val)
			fn := hostFuncs()[fnName]
			stack := make([]uint64, 5)
			index := before
			if mode != "indexed" {
				index = ""
			}
			o.loop(b, index, fn, func(rec int) []uint64 {
				stack[0], stack[1], stack[2], stack[3], stack[4] = uint64(rec), benchPathAt, uint64(len(path)), benchValAt, uint64(len(val))
				return stack
			})
		})
	}
}

// BenchmarkSpliceSetField compares the two byte-level ways to edit a field
// on a fresh copy: splicing bytes (the reference edit) and sonic's ast Set
// + marshal.
func BenchmarkSpliceSetField(b *testing.B) {
	doc := []byte(benchEvent(7))
	p := codec.MustParsePath("region")
	val := []byte(`"apac"`)
	b.Run("splice", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := jsonSet(doc, p, val); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("sonic-ast", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			root := ast.NewRaw(string(doc))
			if _, err := root.Set("region", ast.NewRaw(string(val))); err != nil {
				b.Fatal(err)
			}
			if _, err := root.MarshalJSON(); err != nil {
				b.Fatal(err)
			}
		}
	})
}
