//! redact is a sluice transform that removes personal data: it deletes `ua`
//! and `ip`, and replaces `email`, when it is a string, with the hex SHA-256
//! of its value, so events stay joinable per user without the address. The
//! hash is computed on the host. (The Rust twin of `examples/redact`.)
//!
//! ```text
//! cargo build --release --target wasm32-wasi    # from examples/rust
//! ```

use sluice::{Error, Record};

fn redact(rec: &Record) -> Result<(), Error> {
    rec.delete("ua")?;
    rec.delete("ip")?;
    // A missing email is fine, and one that is not a string is left as it
    // is.
    match rec.hash_sha256("email") {
        Ok(_) | Err(Error::WrongType) => Ok(()),
        Err(err) => Err(err),
    }
}

sluice::handle_record!(redact);
