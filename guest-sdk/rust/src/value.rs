//! Raw JSON values as the host returns them.

use std::borrow::Cow;

use crate::json::unquote;
use crate::scan;

/// A raw JSON value as the host returned it: `"DE"` (quotes included),
/// `42`, `{"a":1}`, `null` — or missing, when the path does not exist.
///
/// It borrows the batch's arena: it is valid until the handler returns and
/// costs no allocation. The accessors mirror the Go SDK's `Value`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Value<'b> {
    raw: Option<&'b [u8]>,
}

impl<'b> Value<'b> {
    /// The value of a path that does not exist.
    pub const MISSING: Value<'static> = Value { raw: None };

    /// A value over raw JSON text (for tests, or JSON the transform holds).
    pub const fn from_raw(raw: &'b [u8]) -> Value<'b> {
        Value { raw: Some(raw) }
    }

    pub(crate) fn from_option(raw: Option<&'b [u8]>) -> Value<'b> {
        Value { raw }
    }

    /// Reports whether the path existed.
    pub fn exists(&self) -> bool {
        self.raw.is_some()
    }

    /// The raw JSON text, `None` when missing.
    pub fn raw(&self) -> Option<&'b [u8]> {
        self.raw
    }

    /// Reports whether the value is JSON `null`.
    pub fn is_null(&self) -> bool {
        self.raw == Some(b"null")
    }

    /// Reports whether the value is a JSON string.
    pub fn is_string(&self) -> bool {
        matches!(self.raw, Some(r) if r.len() >= 2 && r[0] == b'"')
    }

    /// The contents of a JSON string value, borrowed when they hold no
    /// escape (no allocation), decoded otherwise; `None` for any other kind
    /// of value (and for a malformed string).
    pub fn text(&self) -> Option<Cow<'b, [u8]>> {
        let raw = self.raw?;
        if !self.is_string() {
            return None;
        }
        let inner = &raw[1..raw.len() - 1];
        if scan::plain(inner) {
            return Some(Cow::Borrowed(inner));
        }
        unquote(raw).map(Cow::Owned)
    }

    /// The decoded string of a JSON string value; `None` for any other kind
    /// of value, a malformed string, or one that is not valid UTF-8.
    pub fn str(&self) -> Option<Cow<'b, str>> {
        match self.text()? {
            Cow::Borrowed(b) => std::str::from_utf8(b).ok().map(Cow::Borrowed),
            Cow::Owned(v) => String::from_utf8(v).ok().map(Cow::Owned),
        }
    }

    /// The decoded bytes of a JSON string value (borrowed when it has no
    /// escapes; empty when it is malformed) and the raw JSON text of any
    /// other value (empty when missing) — the Go SDK's `Value.Bytes`, handy
    /// for keys: `"u1"` gives `u1`, `42` gives `42`.
    pub fn bytes(&self) -> Cow<'b, [u8]> {
        match self.raw {
            None => Cow::Borrowed(&[]),
            Some(raw) if self.is_string() => self.text().unwrap_or(Cow::Borrowed(&raw[..0])),
            Some(raw) => Cow::Borrowed(raw),
        }
    }

    /// Reports whether the value is the JSON string `s`, without allocating
    /// when the string has no escapes.
    pub fn equal(&self, s: &str) -> bool {
        let raw = match self.raw {
            Some(r) if self.is_string() => r,
            _ => return false,
        };
        let inner = &raw[1..raw.len() - 1];
        if scan::equal(inner, s.as_bytes()) {
            // Equal raw bytes decode to s unless they hold an escape.
            return scan::plain(inner);
        }
        if scan::plain(inner) {
            return false;
        }
        matches!(unquote(raw), Some(u) if u == s.as_bytes())
    }

    /// The value as an `i64` when it is a JSON integer in range.
    pub fn int(&self) -> Option<i64> {
        std::str::from_utf8(self.raw?).ok()?.parse().ok()
    }

    /// The value as an `f64` when it is a JSON number.
    pub fn float(&self) -> Option<f64> {
        let raw = self.raw?;
        match raw.first() {
            Some(c) if *c == b'-' || c.is_ascii_digit() => std::str::from_utf8(raw).ok()?.parse().ok(),
            _ => None,
        }
    }

    /// The value as a `bool` when it is `true` or `false`.
    pub fn bool(&self) -> Option<bool> {
        match self.raw? {
            b"true" => Some(true),
            b"false" => Some(false),
            _ => None,
        }
    }
}

/// JSON text that `Record::set` writes as it is (it must be valid JSON; the
/// host checks).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawJson<'a>(pub &'a [u8]);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accessors() {
        let de = Value::from_raw(br#""DE""#);
        assert!(de.exists() && de.is_string() && !de.is_null());
        assert_eq!(de.text().as_deref(), Some(&b"DE"[..]));
        assert!(matches!(de.text(), Some(Cow::Borrowed(_))), "a plain string is borrowed");
        assert_eq!(de.str().as_deref(), Some("DE"));

        let esc = Value::from_raw(br#""a\"b\\c\u00e9\ud83d\ude00""#);
        assert_eq!(esc.str().as_deref(), Some("a\"b\\cé😀"));
        assert_eq!(&*esc.bytes(), "a\"b\\cé😀".as_bytes());

        let n = Value::from_raw(b"42");
        assert!(!n.is_string());
        assert_eq!(n.text(), None);
        assert_eq!(&*n.bytes(), b"42");
        assert_eq!(n.int(), Some(42));
        assert_eq!(n.float(), Some(42.0));

        assert!(Value::from_raw(b"null").is_null());
        assert!(!Value::MISSING.is_null() && !Value::MISSING.exists());
        assert_eq!(&*Value::MISSING.bytes(), b"");
        assert_eq!(Value::MISSING.raw(), None);
        assert_eq!(&*Value::from_raw(br#""a\qb""#).bytes(), b"", "a malformed string has empty bytes");
        assert_eq!(&*Value::from_raw(br#"{"a":1}"#).bytes(), br#"{"a":1}"#);
        assert_eq!(Value::from_raw(b"\"\xff\"").str(), None, "not UTF-8");
        assert_eq!(Value::from_raw(b"\"\xff\"").text().as_deref(), Some(&b"\xff"[..]));
    }

    #[test]
    fn numbers_and_bools() {
        assert_eq!(Value::from_raw(b"-12").int(), Some(-12));
        assert_eq!(Value::from_raw(b"1.5").int(), None);
        assert_eq!(Value::from_raw(b"99999999999999999999").int(), None);
        assert_eq!(Value::from_raw(b"1.5e2").float(), Some(150.0));
        assert_eq!(Value::from_raw(br#""1""#).float(), None);
        assert_eq!(Value::from_raw(b"inf").float(), None);
        assert_eq!(Value::from_raw(b"true").bool(), Some(true));
        assert_eq!(Value::from_raw(b"false").bool(), Some(false));
        assert_eq!(Value::from_raw(b"1").bool(), None);
        assert_eq!(Value::MISSING.int(), None);
    }

    #[test]
    fn equal() {
        assert!(Value::from_raw(br#""heartbeat""#).equal("heartbeat"));
        assert!(!Value::from_raw(br#""heartbeats""#).equal("heartbeat"));
        assert!(!Value::from_raw(br#""heartbea""#).equal("heartbeat"));
        assert!(!Value::from_raw(b"1").equal("1"));
        assert!(!Value::MISSING.equal(""));
        assert!(Value::from_raw(br#""""#).equal(""));
        assert!(Value::from_raw(br#""heart\u0062eat""#).equal("heartbeat"), "with an escape");
        assert!(!Value::from_raw(br#""heart\u0062eaT""#).equal("heartbeat"));
        // Raw bytes equal to s but holding an escape decode to something else.
        assert!(!Value::from_raw(br#""a\nb""#).equal("a\\nb"));
        assert!(Value::from_raw(br#""a\nb""#).equal("a\nb"));
        assert!(Value::from_raw("\"a long string with ünïcode, past sixteen bytes\"".as_bytes())
            .equal("a long string with ünïcode, past sixteen bytes"));
    }
}
