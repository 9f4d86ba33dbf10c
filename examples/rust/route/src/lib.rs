//! route is a sluice transform that routes each event to the topic
//! `events.<event>` and keys it by `user_id`, so one user's events stay in
//! order on one partition. (The Rust twin of `examples/route`.)
//!
//! ```text
//! cargo build --release --target wasm32-wasi    # from examples/rust
//! ```

use std::cell::RefCell;

use sluice::{Error, Record};

thread_local! {
    /// The topic being built, reused from record to record.
    static TOPIC: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(64));
}

fn route(rec: &Record) -> Result<(), Error> {
    if let Some(event) = rec.get_text("event") {
        if !event.is_empty() {
            TOPIC.with(|t| {
                let mut t = t.borrow_mut();
                t.clear();
                t.extend_from_slice(b"events.");
                t.extend_from_slice(event);
                rec.route(&*t)
            })?;
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
