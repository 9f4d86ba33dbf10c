//! filter is a sluice transform that drops heartbeat events: every record
//! whose `event` field is the string `"heartbeat"`. Every other record
//! passes through unchanged. (The Rust twin of `examples/filter`.)
//!
//! ```text
//! cargo build --release --target wasm32-wasi    # from examples/rust
//! ```

use sluice::{Error, Record};

fn filter(rec: &Record) -> Result<(), Error> {
    if rec.get("event").equal("heartbeat") {
        rec.drop();
    }
    Ok(())
}

sluice::handle_record!(filter);
