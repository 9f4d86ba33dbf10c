//! The host functions of `sluice_v1` and their safe wrappers: the ABI
//! boundary. Every parameter is an `i32` on wasm32 (`usize` and pointers
//! are 32 bits there).
//!
//! Each wrapper passes slices the caller borrows for the duration of the
//! call. The host's side of the contract (guest-sdk/ABI.md, "Memory
//! ownership") makes that sound: it reads only the `(ptr, len)` ranges it is
//! given, writes only inside a `(buf, cap)` buffer and only within `cap`,
//! copies what it keeps before returning, never allocates in or calls back
//! into the guest, and touches guest memory only during the host call.

#[cfg(target_arch = "wasm32")]
mod imp {
    #[link(wasm_import_module = "sluice_v1")]
    extern "C" {
        pub fn record_value(rec: i32, buf: *mut u8, cap: usize) -> i32;
        pub fn get_field(rec: i32, path: *const u8, path_len: usize, buf: *mut u8, cap: usize) -> i32;
        pub fn get_string(rec: i32, path: *const u8, path_len: usize, buf: *mut u8, cap: usize) -> i32;
        pub fn record_topic(rec: i32, buf: *mut u8, cap: usize) -> i32;
        pub fn record_key(rec: i32, buf: *mut u8, cap: usize) -> i32;
        pub fn record_header(rec: i32, name: *const u8, name_len: usize, buf: *mut u8, cap: usize) -> i32;
        #[link_name = "drop"]
        pub fn drop_record(rec: i32) -> i32;
        pub fn set_field(rec: i32, path: *const u8, path_len: usize, val: *const u8, val_len: usize) -> i32;
        pub fn set_string(rec: i32, path: *const u8, path_len: usize, s: *const u8, s_len: usize) -> i32;
        pub fn delete_field(rec: i32, path: *const u8, path_len: usize) -> i32;
        pub fn set_value(rec: i32, val: *const u8, val_len: usize) -> i32;
        pub fn set_topic(rec: i32, topic: *const u8, topic_len: usize) -> i32;
        pub fn set_key(rec: i32, key: *const u8, key_len: usize) -> i32;
        pub fn set_header(rec: i32, name: *const u8, name_len: usize, val: *const u8, val_len: usize) -> i32;
        pub fn dead_letter(rec: i32, reason: *const u8, reason_len: usize) -> i32;
        pub fn emit(parent: i32, val: *const u8, val_len: usize) -> i32;
        pub fn hash_field(rec: i32, path: *const u8, path_len: usize, algo: i32) -> i32;
        pub fn fetch_field(path: *const u8, path_len: usize, mode: i32, tab: *mut u8, buf: *mut u8, cap: usize) -> i32;
        pub fn record_kinds(buf: *mut u8, cap: usize) -> i32;
        pub fn apply(ops: *const u8, ops_len: usize, res: *mut u8, res_cap: usize) -> i32;
    }
}

/// Outside a wasm32 build there is no host: these stand-ins let the crate
/// compile (and its pure parts be tested) on any target. Calling one is a
/// programming error.
#[cfg(not(target_arch = "wasm32"))]
#[allow(clippy::missing_safety_doc)]
mod imp {
    fn no_host() -> i32 {
        panic!("sluice: host functions exist only in a wasm32 guest run by sluice")
    }
    pub unsafe fn record_value(_: i32, _: *mut u8, _: usize) -> i32 {
        no_host()
    }
    pub unsafe fn get_field(_: i32, _: *const u8, _: usize, _: *mut u8, _: usize) -> i32 {
        no_host()
    }
    pub unsafe fn get_string(_: i32, _: *const u8, _: usize, _: *mut u8, _: usize) -> i32 {
        no_host()
    }
    pub unsafe fn record_topic(_: i32, _: *mut u8, _: usize) -> i32 {
        no_host()
    }
    pub unsafe fn record_key(_: i32, _: *mut u8, _: usize) -> i32 {
        no_host()
    }
    pub unsafe fn record_header(_: i32, _: *const u8, _: usize, _: *mut u8, _: usize) -> i32 {
        no_host()
    }
    pub unsafe fn drop_record(_: i32) -> i32 {
        no_host()
    }
    pub unsafe fn set_field(_: i32, _: *const u8, _: usize, _: *const u8, _: usize) -> i32 {
        no_host()
    }
    pub unsafe fn set_string(_: i32, _: *const u8, _: usize, _: *const u8, _: usize) -> i32 {
        no_host()
    }
    pub unsafe fn delete_field(_: i32, _: *const u8, _: usize) -> i32 {
        no_host()
    }
    pub unsafe fn set_value(_: i32, _: *const u8, _: usize) -> i32 {
        no_host()
    }
    pub unsafe fn set_topic(_: i32, _: *const u8, _: usize) -> i32 {
        no_host()
    }
    pub unsafe fn set_key(_: i32, _: *const u8, _: usize) -> i32 {
        no_host()
    }
    pub unsafe fn set_header(_: i32, _: *const u8, _: usize, _: *const u8, _: usize) -> i32 {
        no_host()
    }
    pub unsafe fn dead_letter(_: i32, _: *const u8, _: usize) -> i32 {
        no_host()
    }
    pub unsafe fn emit(_: i32, _: *const u8, _: usize) -> i32 {
        no_host()
    }
    pub unsafe fn hash_field(_: i32, _: *const u8, _: usize, _: i32) -> i32 {
        no_host()
    }
    pub unsafe fn fetch_field(_: *const u8, _: usize, _: i32, _: *mut u8, _: *mut u8, _: usize) -> i32 {
        no_host()
    }
    pub unsafe fn record_kinds(_: *mut u8, _: usize) -> i32 {
        no_host()
    }
    pub unsafe fn apply(_: *const u8, _: usize, _: *mut u8, _: usize) -> i32 {
        no_host()
    }
}

/// A getter: a host function that writes a value into a guest buffer.
#[derive(Clone, Copy)]
pub(crate) enum Getter<'a> {
    /// `record_value`.
    Value,
    /// `get_field` of a path.
    Field(&'a [u8]),
    /// `get_string` of a path.
    Str(&'a [u8]),
    /// `record_topic`.
    Topic,
    /// `record_key`.
    Key,
    /// `record_header` of a name.
    Header(&'a [u8]),
}

impl Getter<'_> {
    /// Calls the getter for record `rec` with `buf` as its output buffer.
    /// The result is the value's length (nothing was written when it is
    /// greater than `buf.len()`) or a negative status.
    #[inline]
    pub(crate) fn call(self, rec: i32, buf: &mut [u8]) -> i32 {
        let (b, cap) = (buf.as_mut_ptr(), buf.len());
        // SAFETY: `buf` is an exclusive borrow of `cap` writable bytes and
        // the argument slices are shared borrows, all alive for the call;
        // the host writes only within `buf[..cap]` and reads only the
        // argument ranges (see the module doc).
        unsafe {
            match self {
                Getter::Value => imp::record_value(rec, b, cap),
                Getter::Field(p) => imp::get_field(rec, p.as_ptr(), p.len(), b, cap),
                Getter::Str(p) => imp::get_string(rec, p.as_ptr(), p.len(), b, cap),
                Getter::Topic => imp::record_topic(rec, b, cap),
                Getter::Key => imp::record_key(rec, b, cap),
                Getter::Header(n) => imp::record_header(rec, n.as_ptr(), n.len(), b, cap),
            }
        }
    }
}

// The setters. The host reads the slices during the call and copies what it
// keeps; it writes nothing into the guest.

#[inline]
pub(crate) fn drop_record(rec: i32) -> i32 {
    // SAFETY: no memory argument.
    unsafe { imp::drop_record(rec) }
}

#[inline]
pub(crate) fn set_field(rec: i32, path: &[u8], val: &[u8]) -> i32 {
    // SAFETY: both slices are borrowed for the call; the host only reads them.
    unsafe { imp::set_field(rec, path.as_ptr(), path.len(), val.as_ptr(), val.len()) }
}

#[inline]
pub(crate) fn set_string(rec: i32, path: &[u8], s: &[u8]) -> i32 {
    // SAFETY: both slices are borrowed for the call; the host only reads them.
    unsafe { imp::set_string(rec, path.as_ptr(), path.len(), s.as_ptr(), s.len()) }
}

#[inline]
pub(crate) fn delete_field(rec: i32, path: &[u8]) -> i32 {
    // SAFETY: the slice is borrowed for the call; the host only reads it.
    unsafe { imp::delete_field(rec, path.as_ptr(), path.len()) }
}

#[inline]
pub(crate) fn set_value(rec: i32, val: &[u8]) -> i32 {
    // SAFETY: the slice is borrowed for the call; the host only reads it.
    unsafe { imp::set_value(rec, val.as_ptr(), val.len()) }
}

#[inline]
pub(crate) fn set_topic(rec: i32, topic: &[u8]) -> i32 {
    // SAFETY: the slice is borrowed for the call; the host only reads it.
    unsafe { imp::set_topic(rec, topic.as_ptr(), topic.len()) }
}

#[inline]
pub(crate) fn set_key(rec: i32, key: &[u8]) -> i32 {
    // SAFETY: the slice is borrowed for the call; the host only reads it.
    unsafe { imp::set_key(rec, key.as_ptr(), key.len()) }
}

#[inline]
pub(crate) fn set_header(rec: i32, name: &[u8], val: &[u8]) -> i32 {
    // SAFETY: both slices are borrowed for the call; the host only reads them.
    unsafe { imp::set_header(rec, name.as_ptr(), name.len(), val.as_ptr(), val.len()) }
}

#[inline]
pub(crate) fn dead_letter(rec: i32, reason: &[u8]) -> i32 {
    // SAFETY: the slice is borrowed for the call; the host only reads it.
    unsafe { imp::dead_letter(rec, reason.as_ptr(), reason.len()) }
}

#[inline]
pub(crate) fn emit(parent: i32, val: &[u8]) -> i32 {
    // SAFETY: the slice is borrowed for the call; the host only reads it.
    unsafe { imp::emit(parent, val.as_ptr(), val.len()) }
}

#[inline]
pub(crate) fn hash_field(rec: i32, path: &[u8], algo: i32) -> i32 {
    // SAFETY: the slice is borrowed for the call; the host only reads it.
    unsafe { imp::hash_field(rec, path.as_ptr(), path.len(), algo) }
}

// The per-batch functions. `n` is the batch's record count (the argument of
// sluice_process); the host writes n entries into the buffers sized from it.

/// `fetch_field`: `path`'s value for every record of the batch, written one
/// after the other into `buf`, with an 8-byte entry per record in `tab`
/// (offset u32, length or status i32). Returns the values' total length
/// (over `buf.len()`: nothing usable was written) or a status.
#[inline]
pub(crate) fn fetch_field(n: usize, path: &[u8], mode: i32, tab: &mut [u8], buf: &mut [u8]) -> i32 {
    assert!(tab.len() >= 8 * n, "sluice: fetch_field table too small");
    // SAFETY: `tab` holds the 8 × n bytes the host writes into it and `buf`
    // is exclusively borrowed, both alive for the call; the host writes
    // values only within buf[..buf.len()] and reads only `path`.
    unsafe { imp::fetch_field(path.as_ptr(), path.len(), mode, tab.as_mut_ptr(), buf.as_mut_ptr(), buf.len()) }
}

/// `record_kinds`: one kind byte per record into `buf` (at least n long).
#[inline]
pub(crate) fn record_kinds(n: usize, buf: &mut [u8]) -> i32 {
    assert!(buf.len() >= n, "sluice: record_kinds buffer too small");
    // SAFETY: `buf` holds the n bytes the host writes, exclusively borrowed
    // for the call.
    unsafe { imp::record_kinds(buf.as_mut_ptr(), buf.len()) }
}

/// `apply`: the decisions in `ops`, in order; a 4-byte result per op into
/// `res` when it holds them all. Returns how many failed, or a status.
#[inline]
pub(crate) fn apply(ops: &[u8], res: &mut [u8]) -> i32 {
    // SAFETY: `ops` is read and `res` written (only within res.len(), and
    // only when it holds every result) during the call.
    unsafe { imp::apply(ops.as_ptr(), ops.len(), res.as_mut_ptr(), res.len()) }
}
