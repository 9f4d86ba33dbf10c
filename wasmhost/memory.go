package wasmhost

import (
	"bytes"
	"os"
	"runtime"
	"strconv"
	"sync"
	"time"
)

// GuestMemoryBytes returns the linear memory of every live instance of
// every transform version, idle in a pool or in use, in bytes.
//
// On Linux the host maps each instance's linear memory itself, outside
// the Go heap (memalloc_linux.go); elsewhere wazero's default allocator
// makes it an ordinary Go byte slice, already part of the Go heap. See
// FixedMemory.GuestsOffHeap.
//
// The figure is kept up to date as instances start, after each call (a
// guest's memory only grows during a call) and as instances are closed,
// discarded or recycled; reading it is one atomic load. Safe for
// concurrent use.
func (h *Host) GuestMemoryBytes() int64 { return h.guestMem.Load() }

// FixedMemory is the memory a Host holds whatever the traffic, with the
// figures a memory governor needs to tell it from traffic. All sizes are
// bytes.
type FixedMemory struct {
	// Code is the machine code of every compiled module (the transforms'
	// and the host modules'), which wazero maps outside the Go heap. On
	// Linux it is measured: the size of the process's anonymous executable
	// mappings (/proc/self/maps), which only the compiler creates and
	// which are resident in full. Elsewhere it is estimated as
	// CodeEstimateFactor times the modules' size.
	Code int64
	// CodeMeasured reports whether Code was measured (Linux) rather than
	// estimated.
	CodeMeasured bool
	// Pools is the linear memory of the instance pools at their reserved
	// size: for the current version of every transform, PoolSize instances
	// at the memory an instance holds once its initialiser ran, before any
	// call (about 2.3 MiB for a Go guest; the module's declared initial
	// memory until a first instance was started). Memory an instance grows
	// beyond that during calls follows the batches it is given and is not
	// counted here.
	Pools int64
	// Guests is GuestMemoryBytes at the time of the reading: the linear
	// memory the live instances hold now.
	Guests int64
	// GuestsOffHeap reports whether Guests lies outside the Go heap: true
	// on Linux, where the host maps linear memory itself; false with
	// wazero's default allocator (elsewhere), whose linear memory is a Go
	// slice already counted by the Go heap's own figures, and must not be
	// added to them.
	GuestsOffHeap bool
	// Versions is the number of current transform versions Pools counts.
	Versions int
	// PoolSize is the number of instances reserved per version
	// (Config.PoolSize).
	PoolSize int
}

// CodeEstimateFactor is how many bytes of machine code FixedMemory
// assumes per byte of module where it cannot measure them (not Linux):
// wazero's optimizing compiler emits about 3.6 bytes per byte of a Go
// guest (a 1.87 MB module caches as 6.8 MB).
const CodeEstimateFactor = 4

// codeRefresh is how long a measured Code figure is reused: code changes
// only when a module is compiled (which changes the versions, and so
// measures again at once) or closed.
const codeRefresh = time.Second

// codeReading caches the last measurement of the compiled code.
type codeReading struct {
	mu       sync.Mutex
	at       time.Time
	host     *Host
	sig      codeSig // the host's versions when measured
	bytes    int64
	measured bool
}

// codeSig identifies a set of compiled versions: a measurement is redone
// at once when it changes (a version compiled, replaced or deleted).
type codeSig struct {
	versions int
	bytes    int64
}

// codeCache is process-wide: compiled code lives in the process's
// mappings, shared by every Host.
var codeCache codeReading

// FixedMemory returns the host's fixed memory now. It takes the host's
// lock briefly and, at most once a second, reads the process's memory
// map (/proc/self/maps, tens of microseconds); it is meant for a
// governor's periodic reading, not for a hot path. Safe for concurrent
// use.
func (h *Host) FixedMemory() FixedMemory {
	_, offHeap := guestAllocator()
	f := FixedMemory{PoolSize: h.cfg.PoolSize, Guests: h.guestMem.Load(), GuestsOffHeap: offHeap}
	var sig codeSig
	h.mu.Lock()
	for _, t := range h.transforms {
		v := t.current
		if v == nil {
			continue
		}
		if v.compiled == nil {
			continue
		}
		sig.versions++
		sig.bytes += int64(v.meta.Size)
		f.Versions++
		f.Pools += int64(h.cfg.PoolSize) * v.reservedMem()
	}
	h.mu.Unlock()
	if code, ok := measureCode(h, sig); ok {
		f.Code, f.CodeMeasured = code, true
	} else {
		f.Code = CodeEstimateFactor * sig.bytes
	}
	return f
}

// measureCode returns the bytes of the process's anonymous executable
// mappings, cached for codeRefresh unless h's versions changed since; false
// where they cannot be read.
func measureCode(h *Host, sig codeSig) (int64, bool) {
	if runtime.GOOS != "linux" {
		return 0, false
	}
	c := &codeCache
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.at.IsZero() && c.host == h && c.sig == sig && time.Since(c.at) < codeRefresh {
		return c.bytes, c.measured
	}
	b, err := os.ReadFile("/proc/self/maps")
	c.at, c.host, c.sig = time.Now(), h, sig
	if err != nil {
		c.bytes, c.measured = 0, false
		return 0, false
	}
	c.bytes, c.measured = anonExecBytes(b), true
	return c.bytes, true
}

// anonExecBytes sums the sizes of the anonymous executable mappings in the
// contents of a /proc/PID/maps file, whose lines read
// "start-end perms offset dev inode [path]"; anonymous mappings have inode
// 0 and no path. wazero maps compiled code read-write, writes all of it and
// makes it read-execute, so a mapping's size is its resident size; the Go
// runtime never maps executable memory, and shared libraries and the binary
// are file-backed.
func anonExecBytes(maps []byte) int64 {
	var total int64
	for line := range bytes.Lines(maps) {
		f := bytes.Fields(line)
		if len(f) != 5 || len(f[1]) < 3 || f[1][2] != 'x' || string(f[4]) != "0" {
			continue
		}
		start, end, ok := bytes.Cut(f[0], []byte("-"))
		if !ok {
			continue
		}
		lo, err1 := strconv.ParseUint(string(start), 16, 64)
		hi, err2 := strconv.ParseUint(string(end), 16, 64)
		if err1 != nil || err2 != nil || hi < lo {
			continue
		}
		total += int64(hi - lo)
	}
	return total
}

// noteInitMem records the memory of v's first instance once its
// initialiser ran: the size reserved for each pooled instance.
func (v *version) noteInitMem(in *instance) {
	v.initMem.CompareAndSwap(0, int64(in.mem.Size()))
}

// reservedMem is the memory reserved per pooled instance of v: what its
// first instance held after its initialiser, else the module's declared
// initial memory. v.compiled must be set.
func (v *version) reservedMem() int64 {
	if n := v.initMem.Load(); n > 0 {
		return n
	}
	var pages uint32
	for _, m := range v.compiled.ExportedMemories() {
		pages = max(pages, m.Min())
	}
	return int64(pages) << 16
}

// noteMem brings the host's total up to date with in's current memory
// size. The caller owns in (an instance is used by one call at a time).
func (h *Host) noteMem(in *instance) {
	sz := int64(in.mem.Size())
	if d := sz - in.memSize; d != 0 {
		in.memSize = sz
		h.guestMem.Add(d)
	}
}

// forgetMem takes a closed instance's memory out of the host's total.
func (h *Host) forgetMem(in *instance) {
	if in.memSize != 0 {
		h.guestMem.Add(-in.memSize)
		in.memSize = 0
	}
}
