//! Host status codes as errors.

use std::fmt;

use crate::abi::status;

/// A host status as an error. The texts are the Go SDK's, so a Go and a
/// Rust transform that fail the same way dead-letter with the same reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// The field, key or header does not exist.
    NotFound,
    /// The record index is out of range.
    BadRecord,
    /// The host could not read a guest buffer.
    BadMemory,
    /// A value is not valid JSON, or the record is not JSON.
    InvalidJson,
    /// An empty path or an empty path segment.
    BadPath,
    /// A per-call host limit was hit (emitted records).
    Limit,
    /// The value is not of the requested JSON type.
    WrongType,
    /// The host does not implement what was asked (an unknown hash
    /// algorithm).
    Unsupported,
    /// A status code that maps to none of the above.
    Status {
        /// The operation (`"set"`, `"route"`, …).
        op: &'static str,
        /// Its path or name, when it has one (else empty).
        arg: String,
        /// The host's status code.
        status: i32,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Error::NotFound => "sluice: not found",
            Error::BadRecord => "sluice: bad record index",
            Error::BadMemory => "sluice: bad guest memory range",
            Error::InvalidJson => "sluice: invalid JSON",
            Error::BadPath => "sluice: bad path",
            Error::Limit => "sluice: host limit reached",
            Error::WrongType => "sluice: wrong JSON type",
            Error::Unsupported => "sluice: unsupported by the host",
            Error::Status { op, arg, status } if arg.is_empty() => return write!(f, "sluice: {}: status {}", op, status),
            Error::Status { op, arg, status } => return write!(f, "sluice: {} {}: status {}", op, arg, status),
        };
        f.write_str(s)
    }
}

impl std::error::Error for Error {}

/// Maps a host result to `Ok` (any non-negative result) or its error; `op`
/// and `arg` name the call for a status with no variant of its own.
#[inline]
pub(crate) fn check(op: &'static str, arg: &str, st: i32) -> Result<(), Error> {
    if st >= 0 {
        return Ok(());
    }
    Err(match st {
        status::NOT_FOUND => Error::NotFound,
        status::BAD_RECORD => Error::BadRecord,
        status::BAD_MEMORY => Error::BadMemory,
        status::INVALID_JSON => Error::InvalidJson,
        status::BAD_PATH => Error::BadPath,
        status::LIMIT => Error::Limit,
        status::WRONG_TYPE => Error::WrongType,
        status::UNSUPPORTED => Error::Unsupported,
        _ => Error::Status { op, arg: arg.to_owned(), status: st },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_the_go_sdk_texts() {
        let cases = [
            (status::NOT_FOUND, Error::NotFound, "sluice: not found"),
            (status::BAD_RECORD, Error::BadRecord, "sluice: bad record index"),
            (status::BAD_MEMORY, Error::BadMemory, "sluice: bad guest memory range"),
            (status::INVALID_JSON, Error::InvalidJson, "sluice: invalid JSON"),
            (status::BAD_PATH, Error::BadPath, "sluice: bad path"),
            (status::LIMIT, Error::Limit, "sluice: host limit reached"),
            (status::WRONG_TYPE, Error::WrongType, "sluice: wrong JSON type"),
            (status::UNSUPPORTED, Error::Unsupported, "sluice: unsupported by the host"),
        ];
        for (st, want, text) in cases {
            let err = check("op", "", st).unwrap_err();
            assert_eq!(err, want);
            assert_eq!(err.to_string(), text);
        }
        assert_eq!(check("op", "", status::OK), Ok(()));
        assert_eq!(check("op", "", 5), Ok(()), "non-negative is success");
        assert_eq!(check("set", "a.b", -99).unwrap_err().to_string(), "sluice: set a.b: status -99");
        assert_eq!(check("route", "", -99).unwrap_err().to_string(), "sluice: route: status -99");
    }
}
