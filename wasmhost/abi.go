package wasmhost

import "github.com/tetratelabs/wazero/api"

// The sluice_v1 ABI, kept in this one file: module and symbol names, status
// codes and the signature of every host function. It mirrors the guest SDK's
// abi.go and guest-sdk/ABI.md; the three change together, and a change that
// is not backward compatible bumps ABIVersion and the module name.

// ABIVersion is the ABI this host implements. A module whose
// sluice_abi_version export returns another number is rejected.
const ABIVersion = 1

const (
	// ImportModule is the module every host function is imported from.
	ImportModule = "sluice_v1"
	// importModulePrefix recognises another version's module name, so the
	// rejection can name both versions.
	importModulePrefix = "sluice_v"
	// wasiModule is the WASI module a Go reactor imports.
	wasiModule = "wasi_snapshot_preview1"
)

// Guest exports.
const (
	// ExportABIVersion: () -> i32, the ABI version the guest was built for.
	ExportABIVersion = "sluice_abi_version"
	// ExportProcess: (n i32) -> i32, called once per batch with the record
	// count; 0 means done, any other value aborts the call.
	ExportProcess = "sluice_process"
	// ExportInitialize: () -> (), the reactor initialiser (optional; Go and
	// other WASI reactors have it). Run once when an instance starts.
	ExportInitialize = "_initialize"
	// ExportMemory is the guest's linear memory.
	ExportMemory = "memory"
)

// Host function names (imported from ImportModule).
const (
	FuncRecordCount  = "record_count"  // () -> n
	FuncRecordValue  = "record_value"  // (rec, buf, cap) -> len | status
	FuncGetField     = "get_field"     // (rec, path, path_len, buf, cap) -> len | status
	FuncGetString    = "get_string"    // (rec, path, path_len, buf, cap) -> len | status
	FuncRecordTopic  = "record_topic"  // (rec, buf, cap) -> len | status
	FuncRecordKey    = "record_key"    // (rec, buf, cap) -> len | status
	FuncRecordHeader = "record_header" // (rec, name, name_len, buf, cap) -> len | status
	FuncDrop         = "drop"          // (rec) -> status
	FuncSetField     = "set_field"     // (rec, path, path_len, val, val_len) -> status
	FuncSetString    = "set_string"    // (rec, path, path_len, str, str_len) -> status
	FuncDeleteField  = "delete_field"  // (rec, path, path_len) -> status
	FuncSetValue     = "set_value"     // (rec, val, val_len) -> status
	FuncSetTopic     = "set_topic"     // (rec, topic, topic_len) -> status
	FuncSetKey       = "set_key"       // (rec, key, key_len) -> status
	FuncSetHeader    = "set_header"    // (rec, name, name_len, val, val_len) -> status
	FuncDeadLetter   = "dead_letter"   // (rec, reason, reason_len) -> status
	FuncEmit         = "emit"          // (parent, val, val_len) -> new rec | status
	FuncHashField    = "hash_field"    // (rec, path, path_len, algo) -> status

	// Per-batch functions: one call serves every record of the batch.
	FuncFetchField  = "fetch_field"  // (path, path_len, mode, tab, buf, cap) -> total len | status
	FuncRecordKinds = "record_kinds" // (buf, cap) -> n | status
	FuncApply       = "apply"        // (ops, ops_len, res, res_cap) -> failed ops | status
)

// Modes of fetch_field.
const (
	// FetchRaw fetches raw JSON text, as get_field.
	FetchRaw int32 = 0
	// FetchString fetches decoded strings, as get_string.
	FetchString int32 = 1
)

// Record kinds written by record_kinds, one byte per record.
const (
	KindNotJSON byte = 0 // the record is not JSON (raw bytes)
	KindObject  byte = 1 // a JSON object
	KindArray   byte = 2 // a JSON array
	KindScalar  byte = 3 // another JSON value (string, number, true, false, null)
)

// Op codes of apply's decision buffer. Each op has the effect of the
// per-record function it names.
const (
	OpDrop        byte = 1  // drop(rec)
	OpDeadLetter  byte = 2  // dead_letter(rec, a = reason)
	OpSetField    byte = 3  // set_field(rec, a = path, b = JSON value)
	OpSetString   byte = 4  // set_string(rec, a = path, b = string)
	OpDeleteField byte = 5  // delete_field(rec, a = path)
	OpSetValue    byte = 6  // set_value(rec, a = value)
	OpSetTopic    byte = 7  // set_topic(rec, a = topic)
	OpSetKey      byte = 8  // set_key(rec, a = key)
	OpSetHeader   byte = 9  // set_header(rec, a = name, b = value)
	OpHashField   byte = 10 // hash_field(rec, a = path, algo = the op's arg byte)
)

// DeleteMissingOK is the flag of a delete_field op's arg byte: its
// NOT_FOUND result (the field was already absent) does not count as a
// failure in apply's result.
const DeleteMissingOK byte = 1

// OpHeaderSize is the size of an op's fixed header: op u8, arg u8, two
// zero bytes, rec i32, a_len u32, b_len u32 (little-endian); a's bytes and
// then b's follow.
const OpHeaderSize = 16

// Hash algorithms of hash_field (its algo parameter).
const (
	// HashSHA256 replaces a string with the lowercase hex SHA-256 of its
	// decoded bytes (64 characters); HMAC-SHA-256 with the host's key when
	// it has one (Config.HashKey).
	HashSHA256 int32 = 1
)

// Status codes returned by host functions as a negative i32. A non-negative
// result is a length (or emit's new record index). A length greater than the
// buffer's capacity means "buffer too small": nothing was written, retry
// with a buffer of at least that length.
const (
	StatusOK          int32 = 0  // success
	StatusNotFound    int32 = -1 // no such field, key or header
	StatusBadRecord   int32 = -2 // record index out of range
	StatusBadMemory   int32 = -3 // pointer/length outside guest memory
	StatusInvalidJSON int32 = -4 // value is not JSON, or the record is not JSON
	StatusBadPath     int32 = -5 // empty path or empty path segment
	StatusLimit       int32 = -6 // a per-call limit (emits, value size) was hit
	StatusWrongType   int32 = -7 // the value is not of the requested JSON type
	StatusUnsupported int32 = -8 // an argument names something this host lacks (a hash algorithm)
	StatusMalformed   int32 = -9 // apply's decision buffer is malformed: nothing was applied
)

// wasiAllowed lists the WASI functions a Go (or TinyGo, Rust) reactor
// imports. The sandbox gives them no filesystem, network or real clock:
// the instance has no preopens, no args, an environment of only GOGC and
// GOMEMLIMIT, a fake clock, and its stdout/stderr go to the host's log.
var wasiAllowed = map[string]bool{
	"args_get": true, "args_sizes_get": true,
	"environ_get": true, "environ_sizes_get": true,
	"clock_res_get": true, "clock_time_get": true,
	"fd_write": true, "fd_close": true, "fd_fdstat_get": true, "fd_fdstat_set_flags": true,
	"fd_prestat_get": true, "fd_prestat_dir_name": true, "fd_seek": true, "fd_read": true,
	"poll_oneoff": true, "proc_exit": true, "random_get": true, "sched_yield": true,
}

const i32 = api.ValueTypeI32

// hostFuncParams is the parameter count of every host function (all i32;
// every one returns an i32). It is also the import allow-list of
// sluice_v1: a guest may import any subset of it, so adding a function is
// backward compatible.
var hostFuncParams = map[string]int{
	FuncRecordCount:  0,
	FuncRecordValue:  3,
	FuncGetField:     5,
	FuncGetString:    5,
	FuncRecordTopic:  3,
	FuncRecordKey:    3,
	FuncRecordHeader: 5,
	FuncDrop:         1,
	FuncSetField:     5,
	FuncSetString:    5,
	FuncDeleteField:  3,
	FuncSetValue:     3,
	FuncSetTopic:     3,
	FuncSetKey:       3,
	FuncSetHeader:    5,
	FuncDeadLetter:   3,
	FuncEmit:         3,
	FuncHashField:    4,
	FuncFetchField:   6,
	FuncRecordKinds:  2,
	FuncApply:        4,
}
