//! The `sluice_v1` ABI constants, kept in this one file. They mirror the
//! host's `wasmhost/abi.go`, the Go SDK's `abi.go` and `guest-sdk/ABI.md`;
//! all of them change together.

/// The ABI this SDK implements. The host rejects a module whose
/// `sluice_abi_version` export returns another number.
pub const ABI_VERSION: i32 = 1;

/// The module name every host function is imported from.
pub const IMPORT_MODULE: &str = "sluice_v1";

/// The export that returns [`ABI_VERSION`].
pub const EXPORT_ABI_VERSION: &str = "sluice_abi_version";

/// The export the host calls once per batch with the record count.
pub const EXPORT_PROCESS: &str = "sluice_process";

/// Status codes returned by host functions (a negative `i32`). A
/// non-negative result is a length (or, for `emit`, the new record's index).
pub mod status {
    /// Success, for functions that return no length.
    pub const OK: i32 = 0;
    /// The field, key or header does not exist; or a parent on a
    /// `set_field` path is not an object.
    pub const NOT_FOUND: i32 = -1;
    /// The record index is out of range.
    pub const BAD_RECORD: i32 = -2;
    /// A pointer/length pair lies outside guest memory.
    pub const BAD_MEMORY: i32 = -3;
    /// A value passed to the host is not valid JSON, or the record is not a
    /// JSON document.
    pub const INVALID_JSON: i32 = -4;
    /// The dotted path is empty or has an empty segment.
    pub const BAD_PATH: i32 = -5;
    /// A per-call limit (emitted records) was hit.
    pub const LIMIT: i32 = -6;
    /// The value is not of the requested JSON type (`get_string` on a
    /// number).
    pub const WRONG_TYPE: i32 = -7;
    /// An argument names something the host does not implement (an unknown
    /// hash algorithm).
    pub const UNSUPPORTED: i32 = -8;
    /// `apply`'s decision buffer is malformed: nothing was applied.
    pub const MALFORMED: i32 = -9;
}

/// The `algo` of `hash_field`: the lowercase hex SHA-256 of the string's
/// decoded bytes.
pub const HASH_SHA256: i32 = 1;

/// The modes of `fetch_field`.
pub mod fetch {
    /// Raw JSON text, as `get_field`.
    pub const RAW: i32 = 0;
    /// Decoded strings, as `get_string`.
    pub const STRING: i32 = 1;
}

/// The record kinds `record_kinds` writes, one byte per record.
pub mod kind {
    /// Not a JSON record.
    pub const NOT_JSON: u8 = 0;
    /// A JSON object.
    pub const OBJECT: u8 = 1;
    /// A JSON array.
    pub const ARRAY: u8 = 2;
    /// Another JSON value.
    pub const SCALAR: u8 = 3;
}

/// The op codes of `apply`'s decision buffer; each has the effect and the
/// result of the per-record function it names.
pub mod op {
    /// `drop(rec)`.
    pub const DROP: u8 = 1;
    /// `dead_letter(rec, a = reason)`.
    pub const DEAD_LETTER: u8 = 2;
    /// `set_field(rec, a = path, b = JSON value)`.
    pub const SET_FIELD: u8 = 3;
    /// `set_string(rec, a = path, b = string)`.
    pub const SET_STRING: u8 = 4;
    /// `delete_field(rec, a = path)`.
    pub const DELETE_FIELD: u8 = 5;
    /// `set_value(rec, a = value)`.
    pub const SET_VALUE: u8 = 6;
    /// `set_topic(rec, a = topic)`.
    pub const SET_TOPIC: u8 = 7;
    /// `set_key(rec, a = key)`.
    pub const SET_KEY: u8 = 8;
    /// `set_header(rec, a = name, b = value)`.
    pub const SET_HEADER: u8 = 9;
    /// `hash_field(rec, a = path, algo = the op's arg byte)`.
    pub const HASH_FIELD: u8 = 10;
    /// The fixed header of an op: op u8, arg u8, two zero bytes, rec i32,
    /// a_len u32, b_len u32 (little-endian); a's bytes, then b's, follow.
    pub const HEADER_SIZE: usize = 16;
}
