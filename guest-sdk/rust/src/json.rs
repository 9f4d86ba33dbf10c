//! JSON text in the guest: encoding values for `Record::set` and decoding
//! string literals the host returned raw. Both follow the Go SDK byte for
//! byte, so a Go and a Rust transform doing the same edit write the same
//! bytes.

use crate::value::{RawJson, Value};
use crate::Error;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// A value `Record::set` can write: it appends itself to `out` as JSON.
///
/// Implemented for strings, booleans, integers, `f64`, [`Value`],
/// [`RawJson`], `Option` (`None` is `null`) and references to these.
/// Implement it for your own types to set them directly.
pub trait ToJson {
    /// Appends the JSON text of `self` to `out`. An error leaves `out` in
    /// an unspecified state.
    fn append_json(&self, out: &mut Vec<u8>) -> Result<(), Error>;

    /// Reports whether `append_json` writes valid JSON by construction (the
    /// SDK's own encodings), so the host need not be asked before `set`
    /// returns. Leave the default.
    #[doc(hidden)]
    fn sdk_encoded(&self) -> bool {
        false
    }
}

impl<T: ToJson + ?Sized> ToJson for &T {
    fn append_json(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        (**self).append_json(out)
    }
    fn sdk_encoded(&self) -> bool {
        (**self).sdk_encoded()
    }
}

impl ToJson for str {
    fn sdk_encoded(&self) -> bool {
        true
    }
    fn append_json(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        append_quoted(out, self);
        Ok(())
    }
}

impl ToJson for String {
    fn sdk_encoded(&self) -> bool {
        true
    }
    fn append_json(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        append_quoted(out, self);
        Ok(())
    }
}

impl ToJson for bool {
    fn sdk_encoded(&self) -> bool {
        true
    }
    fn append_json(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        out.extend_from_slice(if *self { b"true" } else { b"false" });
        Ok(())
    }
}

macro_rules! int_to_json {
    ($($t:ty)*) => {$(
        impl ToJson for $t {
            fn sdk_encoded(&self) -> bool {
                true
            }
            fn append_json(&self, out: &mut Vec<u8>) -> Result<(), Error> {
                use std::io::Write;
                write!(out, "{}", self).map_err(|_| Error::InvalidJson)
            }
        }
    )*};
}
int_to_json!(i8 i16 i32 i64 i128 isize u8 u16 u32 u64 u128 usize);

impl ToJson for f64 {
    fn sdk_encoded(&self) -> bool {
        true
    }

    /// Shortest text that reads back as the same number, as Go's
    /// `strconv.AppendFloat(x, 'g', -1, 64)` writes it (`1.5`, `1e+21`,
    /// `1.234567e+06`). NaN and infinities are not JSON: `InvalidJson`.
    fn append_json(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        append_float(out, *self)
    }
}

impl<T: ToJson> ToJson for Option<T> {
    fn sdk_encoded(&self) -> bool {
        self.as_ref().map_or(true, ToJson::sdk_encoded)
    }

    fn append_json(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        match self {
            Some(v) => v.append_json(out),
            None => {
                out.extend_from_slice(b"null");
                Ok(())
            }
        }
    }
}

impl ToJson for Value<'_> {
    /// The raw JSON as the host returned it; a missing value is `null`.
    fn append_json(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        out.extend_from_slice(self.raw().unwrap_or(b"null"));
        Ok(())
    }
}

impl ToJson for RawJson<'_> {
    /// The bytes as they are (the host rejects them if they are not JSON).
    fn append_json(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        out.extend_from_slice(self.0);
        Ok(())
    }
}

/// Appends `s` as a JSON string: quote, backslash, `\n`, `\r`, `\t` get
/// their short escapes, other control bytes `\u00XX`; everything else is
/// written as it is (the Go SDK's `appendQuoted`).
pub(crate) fn append_quoted(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let b = s.as_bytes();
    let mut start = 0;
    for (i, &c) in b.iter().enumerate() {
        if c >= 0x20 && c != b'"' && c != b'\\' {
            continue;
        }
        out.extend_from_slice(&b[start..i]);
        match c {
            b'"' | b'\\' => out.extend_from_slice(&[b'\\', c]),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            _ => out.extend_from_slice(&[b'\\', b'u', b'0', b'0', HEX[(c >> 4) as usize], HEX[(c & 0xf) as usize]]),
        }
        start = i + 1;
    }
    out.extend_from_slice(&b[start..]);
    out.push(b'"');
}

/// Appends `x` as Go's `strconv.AppendFloat(dst, x, 'g', -1, 64)` does:
/// the shortest digits that read back as `x`, in `%e` form when the
/// exponent is below -4 or at least 6 (two exponent digits at least), in
/// `%f` form otherwise.
pub(crate) fn append_float(out: &mut Vec<u8>, x: f64) -> Result<(), Error> {
    if !x.is_finite() {
        return Err(Error::InvalidJson);
    }
    // Rust's `{:e}` prints the shortest round-trip digits: "-1.2345e-7".
    let sci = format!("{:e}", x);
    let (mant, exp) = sci.split_once('e').expect("{:e} has an exponent");
    let exp: i32 = exp.parse().expect("{:e} exponent is an integer");
    let (neg, mant) = match mant.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mant),
    };
    let digits: Vec<u8> = mant.bytes().filter(|&c| c != b'.').collect();
    let nd = digits.len() as i32;
    if neg {
        out.push(b'-');
    }
    if exp < -4 || exp >= 6 {
        out.push(digits[0]);
        if nd > 1 {
            out.push(b'.');
            out.extend_from_slice(&digits[1..]);
        }
        out.push(b'e');
        out.push(if exp < 0 { b'-' } else { b'+' });
        let e = exp.unsigned_abs();
        if e < 10 {
            out.push(b'0');
        }
        out.extend_from_slice(e.to_string().as_bytes());
        return Ok(());
    }
    // %f with the digits' own precision: dp digits before the point.
    let dp = exp + 1;
    if dp > 0 {
        for i in 0..dp {
            out.push(if i < nd { digits[i as usize] } else { b'0' });
        }
    } else {
        out.push(b'0');
    }
    let frac = (nd - dp).max(0);
    if frac > 0 {
        out.push(b'.');
        for i in 1..=frac {
            let j = dp + i - 1;
            out.push(if j >= 0 && j < nd { digits[j as usize] } else { b'0' });
        }
    }
    Ok(())
}

/// Decodes a JSON string literal (with its quotes) as the Go SDK's
/// `unquote` does: `None` for a malformed literal; a lone or mismatched
/// surrogate escape becomes U+FFFD; bytes that are not valid UTF-8 are kept
/// as they are.
pub(crate) fn unquote(q: &[u8]) -> Option<Vec<u8>> {
    if q.len() < 2 || q[0] != b'"' || q[q.len() - 1] != b'"' {
        return None;
    }
    let inp = &q[1..q.len() - 1];
    let mut out = Vec::with_capacity(inp.len());
    let mut i = 0;
    while i < inp.len() {
        let c = inp[i];
        if c == b'"' || c < 0x20 {
            return None;
        }
        if c != b'\\' {
            out.push(c);
            i += 1;
            continue;
        }
        i += 1;
        if i >= inp.len() {
            return None;
        }
        match inp[i] {
            c @ (b'"' | b'\\' | b'/') => out.push(c),
            b'b' => out.push(0x08),
            b'f' => out.push(0x0c),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'u' => {
                let mut r = hex4(inp, i + 1)?;
                i += 4;
                if (0xD800..0xE000).contains(&r) {
                    r = match hex4(inp, i + 3) {
                        Some(r2) if i + 2 < inp.len() && inp[i + 1] == b'\\' && inp[i + 2] == b'u' => {
                            if (0xD800..0xDC00).contains(&r) && (0xDC00..0xE000).contains(&r2) {
                                i += 6;
                                0x10000 + ((r - 0xD800) << 10) + (r2 - 0xDC00)
                            } else {
                                0xFFFD
                            }
                        }
                        _ => 0xFFFD,
                    };
                }
                let ch = char::from_u32(r).unwrap_or('\u{FFFD}');
                let mut buf = [0u8; 4];
                out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
            }
            _ => return None,
        }
        i += 1;
    }
    Some(out)
}

fn hex4(b: &[u8], at: usize) -> Option<u32> {
    if at + 4 > b.len() {
        return None;
    }
    let mut r = 0u32;
    for &c in &b[at..at + 4] {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => return None,
        };
        r = r << 4 | d as u32;
    }
    Some(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json<T: ToJson + ?Sized>(v: &T) -> String {
        let mut out = Vec::new();
        v.append_json(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn encodes_like_the_go_sdk() {
        assert_eq!(json("a\"b\n\x01é"), r#""a\"b\n\u0001é""#);
        assert_eq!(json("tab\t cr\r back\\ </script> \u{2028}"), "\"tab\\t cr\\r back\\\\ </script> \u{2028}\"");
        assert_eq!(json(&String::from("x")), r#""x""#);
        assert_eq!(json(&true), "true");
        assert_eq!(json(&false), "false");
        assert_eq!(json(&42), "42");
        assert_eq!(json(&-7i64), "-7");
        assert_eq!(json(&u64::MAX), "18446744073709551615");
        assert_eq!(json(&None::<i32>), "null");
        assert_eq!(json(&Some("s")), r#""s""#);
        assert_eq!(json(&Value::from_raw(br#"{"x":1}"#)), r#"{"x":1}"#);
        assert_eq!(json(&Value::MISSING), "null");
        assert_eq!(json(&RawJson(b"[1]")), "[1]");
        let mut out = Vec::new();
        assert_eq!(f64::NAN.append_json(&mut out), Err(Error::InvalidJson));
        assert_eq!(f64::INFINITY.append_json(&mut out), Err(Error::InvalidJson));
    }

    #[test]
    fn floats_as_go_formats_them() {
        // Expected strings are strconv.FormatFloat(x, 'g', -1, 64).
        let cases: &[(f64, &str)] = &[
            (0.0, "0"),
            (-0.0, "-0"),
            (1.0, "1"),
            (1.5, "1.5"),
            (-2.25, "-2.25"),
            (100.0, "100"),
            (123456.0, "123456"),
            (1234567.0, "1.234567e+06"),
            (1e6, "1e+06"),
            (1e21, "1e+21"),
            (1e100, "1e+100"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (0.001234, "0.001234"),
            (1.5e-7, "1.5e-07"),
            (0.1, "0.1"),
            (1.0 / 3.0, "0.3333333333333333"),
            (5e-324, "5e-324"),
            (f64::MAX, "1.7976931348623157e+308"),
            (99999.5, "99999.5"),
            (999999.0, "999999"),
        ];
        for &(x, want) in cases {
            let mut out = Vec::new();
            append_float(&mut out, x).unwrap();
            assert_eq!(String::from_utf8(out).unwrap(), want, "{:e}", x);
        }
    }

    #[test]
    fn unquote_like_encoding_json() {
        let cases: &[(&[u8], Option<&str>)] = &[
            (br#""plain""#, Some("plain")),
            (br#""a\"b\\c\/\b\f\n\r\t""#, Some("a\"b\\c/\x08\x0c\n\r\t")),
            (br#""\u00e9\ud83d\ude00""#, Some("é😀")),
            (br#""\ud800""#, Some("\u{FFFD}")),
            (br#""\ud800\u0041""#, Some("\u{FFFD}A")),
            (br#""\udc00\udc00""#, Some("\u{FFFD}\u{FFFD}")),
            (br#""\ud83dx""#, Some("\u{FFFD}x")),
            (br#""\u12G4""#, None),
            (br#""\u00""#, None),
            (br#""bad \q""#, None),
            (br#""trailing \""#, None),
            (b"\"ctl \x01\"", None),
            (br#""in"side""#, None),
            (b"\"", None),
            (b"nope", None),
            (br#""""#, Some("")),
        ];
        for &(q, want) in cases {
            let got = unquote(q);
            assert_eq!(got.as_deref(), want.map(str::as_bytes), "{}", String::from_utf8_lossy(q));
        }
        // Invalid UTF-8 is kept as it is.
        assert_eq!(unquote(b"\"\xff\\n\"").unwrap(), b"\xff\n");
    }

    /// A fixed pseudo-random walk over the bytes escapes are made of:
    /// unquote never panics, and what it accepts re-encodes to a literal
    /// that decodes to the same bytes.
    #[test]
    fn unquote_survives_random_escapes() {
        const ALPHABET: &[u8] = b"\\\"u0123456789abcdefABCDEFdDnrtbf/x \x01\xc3\xa9\xff";
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..20_000 {
            let mut q = vec![b'"'];
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            for k in 0..(seed % 24) {
                q.push(ALPHABET[((seed >> (k % 58)) as usize + k as usize * 7) % ALPHABET.len()]);
            }
            q.push(b'"');
            if let Some(v) = unquote(&q) {
                if let Ok(s) = std::str::from_utf8(&v) {
                    let mut again = Vec::new();
                    append_quoted(&mut again, s);
                    assert_eq!(unquote(&again).as_deref(), Some(&v[..]), "{:?}", String::from_utf8_lossy(&q));
                }
            }
        }
    }

    #[test]
    fn quote_then_unquote_round_trips() {
        let samples = ["", "plain", "quote\" back\\ nl\n ctl\x01\x1f é 😀", "\u{7f}\u{80}\u{ffff}"];
        for s in samples {
            let mut q = Vec::new();
            append_quoted(&mut q, s);
            assert_eq!(unquote(&q).unwrap(), s.as_bytes(), "{:?}", s);
        }
    }
}
