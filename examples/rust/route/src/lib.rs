//! route is a sluice transform that routes each event to the topic
//! `events.<event>` and keys it by `user_id`, so one user's events stay in
//! order on one partition. (The Rust twin of `examples/route`.)
//!
//! ```text
//! cargo build --release --target wasm32-wasi    # from examples/rust
//! ```

use sluice::{Error, Record};

fn route(rec: &Record) -> Result<(), Error> {
    if let Some(event) = rec.get_text("event") {
        if !event.is_empty() {
            // Joined in the SDK's decision buffer: no topic built per record.
            rec.route_to("events.", event)?;
        }
    }
    // A string key is its decoded text, any other value its JSON text.
    let uid = rec.get("user_id");
    if uid.exists() && !uid.is_null() {
        return rec.set_key(uid.bytes());
    }
    Ok(())
}

sluice::handle_record!(route);
