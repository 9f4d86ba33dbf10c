//! Records, batches and the per-batch entry points the export macros call.

use std::cell::{Cell, RefCell};
use std::fmt::{self, Write as _};

use crate::abi::status;
use crate::arena::Arena;
use crate::calls::{Buffers, Calls};
use crate::error::{check, Error};
use crate::host::Getter;
use crate::json::ToJson;
use crate::value::Value;

/// The guest's state between batches: the arena the host writes values
/// into, and reused buffers. One instance runs one call at a time and wasm
/// guests are single-threaded, so it lives in thread-local storage.
struct State {
    arena: RefCell<Arena>,
    scratch: RefCell<Vec<u8>>,
    reason: RefCell<String>,
    buffers: RefCell<Buffers>,
}

thread_local! {
    static STATE: State = State {
        arena: RefCell::new(Arena::new()),
        scratch: RefCell::new(Vec::with_capacity(256)),
        reason: RefCell::new(String::with_capacity(256)),
        buffers: RefCell::new(Buffers::default()),
    };
}

/// What a record handle needs of the batch: its host calls (with the arena
/// they lend values from) and the scratch buffer.
#[derive(Clone, Copy)]
struct Env<'b> {
    calls: &'b RefCell<Calls<'b>>,
    scratch: &'b RefCell<Vec<u8>>,
}

/// Runs `f` over the batch of `n` records with a fresh arena, then hands
/// the host what the batch buffered.
fn with_batch<R>(n: i32, f: impl FnOnce(&Batch<'_>, &RefCell<String>) -> R) -> R {
    STATE.with(|s| {
        // No value of the last batch is alive: its borrows ended with its
        // call. A re-entrant call (impossible from the host) would panic.
        s.arena.borrow_mut().reset();
        let arena = s.arena.borrow();
        let bufs = std::mem::take(&mut *s.buffers.borrow_mut());
        let calls = RefCell::new(Calls::new(n, &arena, bufs));
        let r = f(&Batch { n, env: Env { calls: &calls, scratch: &s.scratch } }, &s.reason);
        *s.buffers.borrow_mut() = calls.borrow_mut().finish();
        r
    })
}

/// Dead-letters record `idx` with the text of `err`, formatted into a
/// reused buffer.
fn dead_letter_with(env: Env<'_>, idx: i32, err: &dyn fmt::Display, reason: &RefCell<String>) {
    let mut r = reason.borrow_mut();
    r.clear();
    let _ = write!(r, "{}", err);
    env.calls.borrow_mut().dead_letter(idx, r.as_bytes());
}

/// Calls `handler` once for every record of the batch, in order; a record
/// whose handler returns an error is dead-lettered with the error's text,
/// unless the handler dropped or dead-lettered it itself. Called by
/// [`handle_record!`](crate::handle_record).
#[doc(hidden)]
pub fn process_records<F, E>(n: i32, mut handler: F) -> i32
where
    F: FnMut(&Record<'_>) -> Result<(), E>,
    E: fmt::Display,
{
    with_batch(n, |batch, reason| {
        let mut one = |i: i32| {
            let rec = Record::new(i, batch.env);
            if let Err(err) = handler(&rec) {
                if !rec.decided.get() {
                    dead_letter_with(batch.env, i, &err, reason);
                }
            }
        };
        // Eight records per loop iteration: every loop header runs the
        // host's interrupt check (a load and a branch; under the host's
        // earlier guard, an exit from native code that cost more than a
        // simple handler).
        let mut i = 0;
        while i + 8 <= n {
            one(i);
            one(i + 1);
            one(i + 2);
            one(i + 3);
            one(i + 4);
            one(i + 5);
            one(i + 6);
            one(i + 7);
            i += 8;
        }
        while i < n {
            one(i);
            i += 1;
        }
    });
    status::OK
}

/// Calls `handler` once with the whole batch; an error dead-letters every
/// record of the batch with its text. Called by
/// [`handle_batch!`](crate::handle_batch).
#[doc(hidden)]
pub fn process_batch<F, E>(n: i32, mut handler: F) -> i32
where
    F: FnMut(&Batch<'_>) -> Result<(), E>,
    E: fmt::Display,
{
    with_batch(n, |batch, reason| {
        if let Err(err) = handler(batch) {
            for i in 0..n {
                dead_letter_with(batch.env, i, &err, reason);
            }
        }
    });
    status::OK
}

/// The records of one call, for a batch handler (transforms that look
/// across records: deduplicate, aggregate, reorder emits). Valid only while
/// the handler runs.
pub struct Batch<'b> {
    n: i32,
    env: Env<'b>,
}

impl<'b> Batch<'b> {
    /// The number of records in the batch (emitted records not counted).
    pub fn len(&self) -> usize {
        self.n as usize
    }

    /// Reports whether the batch has no records.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Record `i` (`0 ≤ i < len()`). Handles are cheap; two handles of one
    /// index refer to the same record.
    pub fn record(&self, i: usize) -> Record<'b> {
        assert!(i < self.len(), "sluice: record {} of a batch of {}", i, self.n);
        Record::new(i as i32, self.env)
    }

    /// Every record of the batch, in order.
    pub fn records(&self) -> impl Iterator<Item = Record<'b>> + '_ {
        (0..self.n).map(move |i| Record::new(i, self.env))
    }
}

/// A handle on one record the host keeps. Methods pull data from the host
/// or push a decision to it; nothing is copied into the guest unless asked
/// for, and what is (values, raw bytes, key, headers) is lent from the
/// batch's arena until the handler returns. Valid only during the call that
/// received it.
pub struct Record<'b> {
    idx: i32,
    /// Dropped or dead-lettered: a handler error then changes nothing.
    decided: Cell<bool>,
    env: Env<'b>,
}

impl<'b> Record<'b> {
    fn new(idx: i32, env: Env<'b>) -> Record<'b> {
        Record { idx, decided: Cell::new(false), env }
    }

    #[inline]
    fn fetch(&self, g: Getter<'_>) -> Result<&'b [u8], i32> {
        self.env.calls.borrow_mut().get(self.idx, g)
    }

    #[inline]
    fn calls(&self) -> std::cell::RefMut<'_, Calls<'b>> {
        self.env.calls.borrow_mut()
    }

    /// The record's position in the batch (emitted records come after the
    /// batch's records).
    pub fn index(&self) -> usize {
        self.idx as usize
    }

    /// The JSON value at a dotted path (`"geo.country"`, `"items.0.sku"`),
    /// parsed on the host; [`Value::exists`] is false when the path is
    /// missing.
    #[inline]
    pub fn get(&self, path: &str) -> Value<'b> {
        Value::from_option(self.fetch(Getter::Field(path.as_bytes())).ok())
    }

    /// The decoded contents of the JSON string at a dotted path, decoded on
    /// the host (escapes resolved, no quotes); `None` when the path is
    /// missing or not a string. The bytes are as the record holds them
    /// (use [`get_str`](Self::get_str) for checked UTF-8).
    #[inline]
    pub fn get_text(&self, path: &str) -> Option<&'b [u8]> {
        self.fetch(Getter::Str(path.as_bytes())).ok()
    }

    /// [`get_text`](Self::get_text) as a `&str`; `None` also when the bytes
    /// are not valid UTF-8.
    #[inline]
    pub fn get_str(&self, path: &str) -> Option<&'b str> {
        std::str::from_utf8(self.get_text(path)?).ok()
    }

    /// The record's value as the host currently holds it (with the edits of
    /// this call so far).
    pub fn raw(&self) -> &'b [u8] {
        self.fetch(Getter::Value).unwrap_or(&[])
    }

    /// The record's output topic; empty means the sink's default topic.
    pub fn topic(&self) -> &'b [u8] {
        self.fetch(Getter::Topic).unwrap_or(&[])
    }

    /// The record's key, `None` when it has none.
    pub fn key(&self) -> Option<&'b [u8]> {
        self.fetch(Getter::Key).ok()
    }

    /// The value of the first header named `name`, `None` when there is
    /// none.
    pub fn header(&self, name: &str) -> Option<&'b [u8]> {
        self.fetch(Getter::Header(name.as_bytes())).ok()
    }

    /// Removes the record from the output.
    pub fn drop(&self) {
        self.decided.set(true);
        self.calls().drop(self.idx);
    }

    /// Sends the record to the dead-letter queue with `reason` (at most
    /// 1,024 bytes are kept) instead of the output.
    pub fn dead_letter(&self, reason: &str) {
        self.decided.set(true);
        self.calls().dead_letter(self.idx, reason.as_bytes());
    }

    /// Sets the field at `path` to `v` encoded as JSON, creating missing
    /// parent objects. Strings, numbers, booleans, `Option`, [`Value`] and
    /// [`RawJson`](crate::RawJson) are encoded in the guest without
    /// allocating; see [`ToJson`].
    pub fn set<V: ToJson + ?Sized>(&self, path: &str, v: &V) -> Result<(), Error> {
        let mut buf = self.env.scratch.borrow_mut();
        buf.clear();
        v.append_json(&mut buf)?;
        let st = self.calls().set_field(self.idx, path.as_bytes(), &buf, false, v.sdk_encoded());
        check("set", path, st)
    }

    /// Sets the field at `path` to the JSON string `s`, quoted and escaped
    /// on the host.
    #[inline]
    pub fn set_str(&self, path: &str, s: &str) -> Result<(), Error> {
        check("set", path, self.calls().set_field(self.idx, path.as_bytes(), s.as_bytes(), true, true))
    }

    /// [`set_str`](Self::set_str) with bytes that need not be UTF-8 (the
    /// host writes invalid sequences as U+FFFD), the Go SDK's `SetString`.
    #[inline]
    pub fn set_text(&self, path: &str, s: &[u8]) -> Result<(), Error> {
        check("set", path, self.calls().set_field(self.idx, path.as_bytes(), s, true, true))
    }

    /// Removes the field at `path`; a missing field is not an error.
    #[inline]
    pub fn delete(&self, path: &str) -> Result<(), Error> {
        match self.calls().delete_field(self.idx, path.as_bytes()) {
            status::NOT_FOUND => Ok(()),
            st => check("delete", path, st),
        }
    }

    /// Replaces the JSON string at `path` with the lowercase hex SHA-256 of
    /// its decoded value, as a JSON string, hashed on the host: a field is
    /// pseudonymised without leaving the host, and records stay joinable on
    /// it. `Ok(true)` when replaced, `Ok(false)` when the field is missing
    /// (the record is unchanged), `Err(Error::WrongType)` when it is not a
    /// string. With a hash key set on the host the digest is HMAC-SHA-256
    /// with that key (the guest never sees it); without, a plain SHA-256
    /// anyone can recompute from a guessed value (see ABI.md, `hash_field`).
    #[inline]
    pub fn hash_sha256(&self, path: &str) -> Result<bool, Error> {
        match self.calls().hash_field(self.idx, path.as_bytes()) {
            status::NOT_FOUND => Ok(false),
            st => check("hash", path, st).map(|()| true),
        }
    }

    /// Replaces the record's whole value; it must be valid JSON.
    pub fn set_value(&self, raw: &[u8]) -> Result<(), Error> {
        check("set value", "", self.calls().set_value(self.idx, raw))
    }

    /// Sets the record's output topic.
    #[inline]
    pub fn route(&self, topic: impl AsRef<[u8]>) -> Result<(), Error> {
        check("route", "", self.calls().set_topic(self.idx, topic.as_ref()))
    }

    /// Sets the record's output topic to `prefix` followed by `name`:
    /// `rec.route_to("events.", event)` is `rec.route(format!("events.{}",
    /// event))` without building the topic per record (the Go SDK's
    /// `RouteTo`).
    #[inline]
    pub fn route_to(&self, prefix: impl AsRef<[u8]>, name: impl AsRef<[u8]>) -> Result<(), Error> {
        check("route", "", self.calls().set_topic_parts(self.idx, prefix.as_ref(), name.as_ref()))
    }

    /// Sets the record's partitioning key (an empty key is a key).
    #[inline]
    pub fn set_key(&self, key: impl AsRef<[u8]>) -> Result<(), Error> {
        check("set key", "", self.calls().set_key(self.idx, key.as_ref()))
    }

    /// Sets (replaces, or adds) the header `name`.
    pub fn set_header(&self, name: &str, value: impl AsRef<[u8]>) -> Result<(), Error> {
        check("set header", "", self.calls().set_header(self.idx, name.as_bytes(), value.as_ref()))
    }

    /// Adds a new record after this one (fan-out) with value `raw`, which
    /// must be valid JSON. It starts with this record's topic, key and
    /// headers; the returned handle routes or edits it.
    pub fn emit(&self, raw: &[u8]) -> Result<Record<'b>, Error> {
        let st = self.calls().emit(self.idx, raw);
        check("emit", "", st)?;
        Ok(Record::new(st, self.env))
    }
}
