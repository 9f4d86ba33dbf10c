//! enrich is a sluice transform that adds `region` from `geo.country`:
//! apac, amer, emea or other. (The Rust twin of `examples/enrich`.)
//!
//! ```text
//! cargo build --release --target wasm32-wasi    # from examples/rust
//! ```

use sluice::{Error, Record};

/// The sales region of an ISO 3166-1 alpha-2 country code.
fn region(country: &[u8]) -> &'static str {
    match country {
        b"AU" | b"NZ" | b"JP" | b"SG" => "apac",
        b"US" | b"CA" | b"BR" | b"MX" => "amer",
        b"GB" | b"DE" | b"FR" | b"NL" | b"IE" => "emea",
        _ => "other",
    }
}

fn enrich(rec: &Record) -> Result<(), Error> {
    // Decoded on the host, borrowed from the batch's arena: no allocation.
    let region = rec.get_text("geo.country").map_or("other", region);
    rec.set_str("region", region)
}

sluice::handle_record!(enrich);

#[cfg(test)]
mod tests {
    use super::region;

    #[test]
    fn regions() {
        for (c, r) in [(&b"JP"[..], "apac"), (b"US", "amer"), (b"IE", "emea"), (b"AR", "other"), (b"", "other"), (b"jp", "other")] {
            assert_eq!(region(c), r, "{:?}", c);
        }
    }
}
