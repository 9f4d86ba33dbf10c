//! The Rust SDK for sluice transforms: WebAssembly guests that the sluice
//! gateway runs over every batch of events before writing them to Kafka.
//!
//! A transform is a `cdylib` crate built for `wasm32-wasi`:
//!
//! ```text
//! cargo build --release --target wasm32-wasi
//! ```
//!
//! It registers its handler with [`handle_record!`] (or [`handle_batch!`]),
//! which exports the ABI (`sluice_abi_version`, `sluice_process`); the SDK
//! then calls the handler once per record:
//!
//! ```no_run
//! use sluice::{Error, Record};
//!
//! fn filter(rec: &Record) -> Result<(), Error> {
//!     if rec.get("event").equal("heartbeat") {
//!         rec.drop();
//!     }
//!     Ok(())
//! }
//!
//! sluice::handle_record!(filter);
//! ```
//!
//! The host keeps the records. A handler pulls only what it needs — a field
//! by dotted path, parsed on the host ([`Record::get`] for raw JSON,
//! [`Record::get_text`] / [`Record::get_str`] for a string decoded on the
//! host), the raw bytes, topic, key, headers — and pushes decisions: drop,
//! set or delete a field, route, set the key or a header, dead-letter with a
//! reason, emit a new record. A record nobody edits leaves the host
//! unchanged, byte for byte.
//!
//! The handler sees one record at a time, but the host is called a few
//! times per *batch*: a path's first read fetches it for every record, and
//! decisions whose result is certain are handed over together when the
//! batch ends (see `calls.rs`; the results are those of one call per
//! operation). Without the default `batch` feature the SDK makes one
//! per-record call per operation instead, for hosts older than the
//! per-batch functions.
//!
//! What the host returns lives in a per-batch arena the SDK reuses: values
//! borrow it (`&'b [u8]`, [`Value<'b>`]) until the handler returns, so a
//! steady stream of records allocates nothing. Copy a value to keep it.
//!
//! Returning an error from a record handler dead-letters that record with
//! the error's text (any `Display` type: [`Error`], `String`,
//! `Box<dyn std::error::Error>`). A panic traps the guest: the host reruns
//! the call's records one by one and dead-letters those that trap (after
//! three traps, the rest of the call; or it fails the batch, by its
//! configuration), and replaces the instance; build with `panic = "abort"`.
//!
//! Guest code pays for every loop iteration (the host's interrupt check runs
//! at each wasm loop header) and is slower per step than the host's, so let
//! the host work:
//! [`Record::get_text`] decodes on the host, [`Record::set_str`] quotes on
//! the host, [`Record::hash_sha256`] hashes on the host, and
//! [`Value::equal`] compares 8 bytes per step.
//!
//! The contract behind this crate, for other languages, is
//! `guest-sdk/ABI.md`. `unsafe` code is confined to the ABI boundary: the
//! host imports (`host.rs`) and the arena the host writes into
//! (`arena.rs`).
#![deny(missing_docs)]
#![warn(unsafe_op_in_unsafe_fn)]

pub mod abi;
mod arena;
mod calls;
mod error;
mod host;
mod json;
mod record;
mod scan;
mod value;

pub use abi::ABI_VERSION;
pub use error::Error;
pub use json::ToJson;
pub use record::{Batch, Record};
pub use value::{RawJson, Value};

/// What the export macros expand to; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use crate::record::{process_batch, process_records};
}

/// Registers the per-record handler: exports `sluice_abi_version` and
/// `sluice_process`, which calls `$handler` (a function or closure
/// `Fn(&Record) -> Result<(), E>` with `E: Display`) once for every record of
/// every batch, in order. Returning an error dead-letters the record with the
/// error's text, unless the handler dropped or dead-lettered it itself. Use
/// it once per module, at the top level.
#[macro_export]
macro_rules! handle_record {
    ($handler:expr) => {
        /// The ABI version this guest was built for.
        #[no_mangle]
        pub extern "C" fn sluice_abi_version() -> i32 {
            $crate::ABI_VERSION
        }

        /// Processes the `n` records of one batch.
        #[no_mangle]
        pub extern "C" fn sluice_process(n: i32) -> i32 {
            $crate::__private::process_records(n, $handler)
        }
    };
}

/// Registers a per-batch handler, for transforms that look across records:
/// `$handler` (`Fn(&Batch) -> Result<(), E>` with `E: Display`) is called
/// once per batch; returning an error dead-letters every record of the batch
/// with its text. Use it once per module, instead of [`handle_record!`].
#[macro_export]
macro_rules! handle_batch {
    ($handler:expr) => {
        /// The ABI version this guest was built for.
        #[no_mangle]
        pub extern "C" fn sluice_abi_version() -> i32 {
            $crate::ABI_VERSION
        }

        /// Processes the `n` records of one batch.
        #[no_mangle]
        pub extern "C" fn sluice_process(n: i32) -> i32 {
            $crate::__private::process_batch(n, $handler)
        }
    };
}
