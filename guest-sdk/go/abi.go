package sluice

// The ABI constants of sluice_v1, kept in this one file. They mirror
// github.com/sluicehq/sluice/wasmhost's abi.go and guest-sdk/ABI.md; the
// three must change together.

// ABIVersion is the ABI this SDK implements. The host rejects a module whose
// sluice_abi_version export returns another number.
const ABIVersion = 1

// Module and export names.
const (
	// ImportModule is the module name of every host function.
	ImportModule = "sluice_v1"
	// ExportABIVersion returns ABIVersion.
	ExportABIVersion = "sluice_abi_version"
	// ExportProcess is called once per batch with the record count.
	ExportProcess = "sluice_process"
)

// Status codes returned by host functions (negative i32). A non-negative
// result is a length (or, for emit, the new record's index).
const (
	// StatusOK is success for functions that return no length.
	StatusOK int32 = 0
	// StatusNotFound: the field, key or header does not exist.
	StatusNotFound int32 = -1
	// StatusBadRecord: the record index is out of range.
	StatusBadRecord int32 = -2
	// StatusBadMemory: a pointer/length pair lies outside guest memory.
	StatusBadMemory int32 = -3
	// StatusInvalidJSON: a value passed to the host is not valid JSON, or
	// the record is not a JSON document.
	StatusInvalidJSON int32 = -4
	// StatusBadPath: the dotted path is empty or has an empty segment.
	StatusBadPath int32 = -5
	// StatusLimit: a per-call limit (emitted records, value size) is hit.
	StatusLimit int32 = -6
	// StatusWrongType: the value is not of the requested JSON type
	// (get_string on a number).
	StatusWrongType int32 = -7
	// StatusUnsupported: an argument names something the host lacks (an
	// unknown hash algorithm, an unknown fetch mode).
	StatusUnsupported int32 = -8
	// StatusMalformed: the decision buffer passed to apply is malformed;
	// nothing was applied.
	StatusMalformed int32 = -9
)

// Modes of fetch_field.
const (
	// FetchRaw fetches raw JSON text (as get_field).
	FetchRaw int32 = 0
	// FetchString fetches decoded strings (as get_string).
	FetchString int32 = 1
)

// Record kinds written by record_kinds, one byte per record.
const (
	// KindNotJSON: a raw record.
	KindNotJSON byte = 0
	// KindObject: a JSON object.
	KindObject byte = 1
	// KindArray: a JSON array.
	KindArray byte = 2
	// KindScalar: another JSON value.
	KindScalar byte = 3
)

// Op codes of apply's decision buffer (see guest-sdk/ABI.md).
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

// DeleteMissingOK flags a delete_field op (its arg byte): a NOT_FOUND
// result does not count as a failure in apply's result.
const DeleteMissingOK byte = 1

// OpHeaderSize is the size of an op's header in apply's buffer.
const OpHeaderSize = 16

// Hash algorithms of the hash_field host function.
const (
	// HashSHA256: the lowercase hex SHA-256 of the string's decoded bytes
	// (HMAC-SHA-256 when the host has a hash key; see ABI.md).
	HashSHA256 int32 = 1
)
