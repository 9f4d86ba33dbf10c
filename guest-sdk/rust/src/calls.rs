//! How a batch talks to the host: in as few crossings as give the same
//! answers as one call per operation.
//!
//! - A field a handler reads is fetched for every record of the batch at
//!   once (`fetch_field`), on its first read, and later reads of that path
//!   are served from that column. A record whose edits in this batch may
//!   have changed the path's value (an edit in the same top-level field,
//!   any edit of an array element or of the whole value) reads it through
//!   the per-record functions instead (the column predates the edit), as
//!   do emitted records and paths past the first [`MAX_COLUMNS`].
//! - Decisions whose result is known in advance are buffered and handed
//!   over in one `apply` when the batch ends (or when something must see
//!   them first): drop, dead-letter, route, key and header always; on a
//!   record that `record_kinds` says is an object, a delete of any
//!   well-formed path, a `set_str` or trusted `set` of a single top-level key, and a `hash_sha256` of a
//!   top-level key whose fetched value says what the hash will do. Anything
//!   else (nested paths, whole-value replacement, raw JSON, emitted
//!   records) flushes that record's buffered decisions and calls the
//!   per-record function, so its result is exact.
//! - Should a buffered decision fail anyway (it cannot with this host), its
//!   record is dead-lettered with the error's text, as a handler that
//!   returned it with `?` would have done.

use crate::abi::{fetch, kind, op, status, HASH_SHA256};
use crate::arena::Arena;
use crate::error::check;
use crate::host::{self, Getter};
use crate::scan;

/// Whether the per-batch host functions are used (the `batch` feature):
/// without them every operation is one per-record call.
const BATCHED: bool = cfg!(feature = "batch");

/// How many paths a batch fetches whole; further paths are read per record.
pub(crate) const MAX_COLUMNS: usize = 16;

/// Buffered decisions are handed over once they reach this size.
const MAX_BUFFERED: usize = 1 << 20;

/// Per-record flags of the batch.
const REPLACED: u8 = 2; // its whole value was replaced: its kind may have changed

/// A record's edit mask with every field's bit: no column answers for it.
const ALL_FIELDS: u32 = u32::MAX;

/// One path of every record of the batch.
struct Column<'b> {
    path: Vec<u8>,
    mode: i32,
    /// fetch_field's table: (offset u32, length or status i32) per record.
    tab: Vec<u8>,
    /// The path's bit in a record's edit mask (`field_bit`).
    bit: u32,
    /// The values, in the arena; `None` when the fetch failed (the
    /// per-record function then answers with the same status).
    vals: Option<&'b [u8]>,
}

/// What a path is (path_class): well formed (non-empty segments), and one
/// top-level key (one segment, not only digits).
const PATH_VALID: u8 = 1;
const PATH_KEY: u8 = 2;

/// How many path classes are remembered.
const MAX_CLASSES: usize = 16;

/// The buffers a batch uses, kept from one batch to the next.
#[derive(Default)]
pub(crate) struct Buffers {
    spare: Vec<(Vec<u8>, Vec<u8>)>,
    /// Recent paths and their PATH_* class, with the next to look at.
    classes: Vec<(Vec<u8>, u8)>,
    class_hint: usize,
    ops: Vec<u8>,
    res: Vec<u8>,
    flags: Vec<u8>,
    edits: Vec<u32>,
    epochs: Vec<u32>,
    kinds: Vec<u8>,
    /// A topic joined from two parts, for a per-record set_topic.
    join: Vec<u8>,
}

/// The host calls of one batch of `n` records.
pub(crate) struct Calls<'b> {
    n: usize,
    arena: &'b Arena,
    cols: Vec<Column<'b>>,
    /// The column after the last one read: handlers read their paths in
    /// the same order for every record, so this finds it without a search.
    hint: usize,
    kinds: Option<Vec<u8>>,
    flags: Vec<u8>,
    /// Per record, the `field_bit`s of the paths edited in this batch
    /// (buffered or made): a column answers for the record only when its
    /// path's bit is not among them.
    edits: Vec<u32>,
    /// A record has buffered decisions when its epoch is the current one.
    epochs: Vec<u32>,
    epoch: u32,
    ops: Vec<u8>,
    nops: usize,
    b: Buffers,
}

impl<'b> Calls<'b> {
    pub(crate) fn new(n: i32, arena: &'b Arena, mut b: Buffers) -> Calls<'b> {
        let n = n.max(0) as usize;
        let mut flags = std::mem::take(&mut b.flags);
        flags.clear();
        flags.resize(n, 0);
        let mut edits = std::mem::take(&mut b.edits);
        edits.clear();
        edits.resize(n, 0);
        let mut epochs = std::mem::take(&mut b.epochs);
        epochs.clear();
        epochs.resize(n, 0);
        let mut ops = std::mem::take(&mut b.ops);
        ops.clear();
        Calls { n, arena, cols: Vec::new(), hint: 0, kinds: None, flags, edits, epochs, epoch: 1, ops, nops: 0, b }
    }

    /// Hands over what is buffered and returns the buffers for the next
    /// batch.
    pub(crate) fn finish(&mut self) -> Buffers {
        self.flush();
        let mut b = std::mem::take(&mut self.b);
        for c in self.cols.drain(..) {
            b.spare.push((c.path, c.tab));
        }
        if let Some(k) = self.kinds.take() {
            b.kinds = k;
        }
        b.flags = std::mem::take(&mut self.flags);
        b.edits = std::mem::take(&mut self.edits);
        b.epochs = std::mem::take(&mut self.epochs);
        b.ops = std::mem::take(&mut self.ops);
        b
    }

    fn batch_record(&self, rec: i32) -> Option<usize> {
        let r = rec as usize;
        if rec >= 0 && r < self.n {
            Some(r)
        } else {
            None
        }
    }

    fn pending(&self, rec: i32) -> bool {
        matches!(self.batch_record(rec), Some(r) if self.epochs[r] == self.epoch)
    }

    /// Before a per-record call on rec: its buffered decisions go first.
    fn settle(&mut self, rec: i32) {
        if self.pending(rec) {
            self.flush();
        }
    }

    fn mark(&mut self, rec: i32, flags: u8) {
        if let Some(r) = self.batch_record(rec) {
            self.flags[r] |= flags;
        }
    }

    /// Notes an edit of path on record rec: columns of paths in the same
    /// field no longer answer for it.
    fn note_edit(&mut self, rec: i32, bits: u32) {
        if let Some(r) = self.batch_record(rec) {
            self.edits[r] |= bits;
        }
    }

    /// The column of path in mode that answers for batch record r: its
    /// index, or `None` when r's edits may have changed the value (or
    /// there is no column).
    fn column_for(&mut self, r: usize, path: &[u8], mode: i32) -> Option<usize> {
        let e = self.edits[r];
        if e == ALL_FIELDS {
            return None;
        }
        let c = self.column(path, mode)?;
        if e & self.cols[c].bit != 0 {
            return None;
        }
        Some(c)
    }

    /// A getter of record rec, per record.
    fn per_record(&mut self, rec: i32, g: Getter<'_>) -> Result<&'b [u8], i32> {
        self.settle(rec);
        self.arena.fill(|buf| g.call(rec, buf))
    }

    /// Runs getter g of record rec: from the path's column when it can
    /// answer, else per record.
    pub(crate) fn get(&mut self, rec: i32, g: Getter<'_>) -> Result<&'b [u8], i32> {
        let (path, mode) = match g {
            Getter::Field(p) => (p, fetch::RAW),
            Getter::Str(p) => (p, fetch::STRING),
            _ => return self.per_record(rec, g),
        };
        match self.batch_record(rec) {
            Some(r) => match self.column_for(r, path, mode) {
                Some(c) => match self.entry(c, r) {
                    Some(v) => v,
                    None => self.per_record(rec, g),
                },
                None => self.per_record(rec, g),
            },
            _ => self.per_record(rec, g),
        }
    }

    /// The index of path's column in mode, fetched on first use; `None`
    /// past MAX_COLUMNS.
    fn column(&mut self, path: &[u8], mode: i32) -> Option<usize> {
        if !BATCHED {
            return None;
        }
        if let Some(c) = self.cols.get(self.hint) {
            if c.mode == mode && scan::equal(&c.path, path) {
                let i = self.hint;
                self.hint = (i + 1) % self.cols.len();
                return Some(i);
            }
        }
        if let Some(i) = self.cols.iter().position(|c| c.mode == mode && scan::equal(&c.path, path)) {
            self.hint = (i + 1) % self.cols.len();
            return Some(i);
        }
        if self.cols.len() >= MAX_COLUMNS {
            return None;
        }
        let (mut p, mut tab) = self.b.spare.pop().unwrap_or_default();
        p.clear();
        p.extend_from_slice(path);
        tab.clear();
        tab.resize(8 * self.n, 0);
        let n = self.n;
        let vals = self.arena.fill(|buf| host::fetch_field(n, path, mode, &mut tab, buf)).ok();
        self.cols.push(Column { path: p, mode, tab, vals, bit: field_bit(path) });
        self.hint = 0;
        Some(self.cols.len() - 1)
    }

    /// Record r's entry of column c: its value or status; `None` when the
    /// column could not be fetched.
    fn entry(&self, c: usize, r: usize) -> Option<Result<&'b [u8], i32>> {
        let col = &self.cols[c];
        let vals: &'b [u8] = col.vals?;
        let e = &col.tab[8 * r..8 * r + 8];
        let off = u32::from_le_bytes([e[0], e[1], e[2], e[3]]) as usize;
        let len = i32::from_le_bytes([e[4], e[5], e[6], e[7]]);
        if len < 0 {
            return Some(Err(len));
        }
        // A table entry outside the values would be a host bug: the
        // per-record function answers instead.
        vals.get(off..off + len as usize).map(Ok)
    }

    /// Reports whether record rec is (still) a JSON object, by
    /// record_kinds, fetched on first use.
    fn object(&mut self, rec: i32) -> bool {
        if !BATCHED {
            return false;
        }
        let r = match self.batch_record(rec) {
            Some(r) if self.flags[r] & REPLACED == 0 => r,
            _ => return false,
        };
        if self.kinds.is_none() {
            let mut k = std::mem::take(&mut self.b.kinds);
            k.clear();
            k.resize(self.n, kind::NOT_JSON);
            if host::record_kinds(self.n, &mut k) != self.n as i32 {
                k.iter_mut().for_each(|b| *b = kind::NOT_JSON);
            }
            self.kinds = Some(k);
        }
        matches!(&self.kinds, Some(k) if k[r] == kind::OBJECT)
    }

    /// The PATH_* class of path, remembered for the paths last used (a
    /// handler uses the same few, in the same order, for every record):
    /// classifying scans the path byte by byte, which guest code pays for.
    fn path_class(&mut self, path: &[u8]) -> u8 {
        let b = &mut self.b;
        if let Some((p, c)) = b.classes.get(b.class_hint) {
            if scan::equal(p, path) {
                let c = *c;
                b.class_hint = (b.class_hint + 1) % b.classes.len();
                return c;
            }
        }
        if let Some(i) = b.classes.iter().position(|(p, _)| scan::equal(p, path)) {
            b.class_hint = (i + 1) % b.classes.len();
            return b.classes[i].1;
        }
        let c = (if valid_path(path) { PATH_VALID } else { 0 }) | (if top_level_key(path) { PATH_KEY } else { 0 });
        if b.classes.len() >= MAX_CLASSES {
            b.classes.clear();
        }
        b.classes.push((path.to_vec(), c));
        b.class_hint = 0;
        c
    }

    /// Buffers one decision for record rec.
    fn queue(&mut self, code: u8, arg: u8, rec: i32, a: &[u8], b: &[u8]) -> i32 {
        if !BATCHED {
            return immediate(code, arg, rec, a, b);
        }
        self.queue_parts(code, arg, rec, a, &[], b)
    }

    /// Buffers one decision whose `a` is a1 followed by a2.
    fn queue_parts(&mut self, code: u8, arg: u8, rec: i32, a1: &[u8], a2: &[u8], b: &[u8]) -> i32 {
        let al = a1.len() + a2.len();
        if self.ops.len() + op::HEADER_SIZE + al + b.len() > MAX_BUFFERED {
            self.flush();
        }
        // One reservation, the header as one 16-byte copy.
        let mut h = [0u8; op::HEADER_SIZE];
        h[0] = code;
        h[1] = arg;
        h[4..8].copy_from_slice(&rec.to_le_bytes());
        h[8..12].copy_from_slice(&(al as u32).to_le_bytes());
        h[12..16].copy_from_slice(&(b.len() as u32).to_le_bytes());
        self.ops.reserve(op::HEADER_SIZE + al + b.len());
        self.ops.extend_from_slice(&h);
        self.ops.extend_from_slice(a1);
        self.ops.extend_from_slice(a2);
        self.ops.extend_from_slice(b);
        self.nops += 1;
        if let Some(r) = self.batch_record(rec) {
            self.epochs[r] = self.epoch;
        }
        status::OK
    }

    /// Hands the buffered decisions to the host. One that failed
    /// dead-letters its record with the error (see the module doc).
    pub(crate) fn flush(&mut self) {
        if !BATCHED || self.nops == 0 {
            return;
        }
        let res = &mut self.b.res;
        res.clear();
        res.resize(4 * self.nops, 0);
        let failed = host::apply(&self.ops, res);
        assert!(failed >= 0, "sluice: the host refused the decision buffer (status {})", failed);
        if failed > 0 {
            let mut failures = Vec::new();
            let (mut at, mut k) = (0, 0);
            while at < self.ops.len() {
                let h = &self.ops[at..at + op::HEADER_SIZE];
                let rec = i32::from_le_bytes([h[4], h[5], h[6], h[7]]);
                let al = u32::from_le_bytes([h[8], h[9], h[10], h[11]]) as usize;
                let bl = u32::from_le_bytes([h[12], h[13], h[14], h[15]]) as usize;
                let st = i32::from_le_bytes([res[4 * k], res[4 * k + 1], res[4 * k + 2], res[4 * k + 3]]);
                // A delete of a missing field is not an error.
                if st < 0 && !(h[0] == op::DELETE_FIELD && st == status::NOT_FOUND) {
                    failures.push((rec, st));
                }
                at += op::HEADER_SIZE + al + bl;
                k += 1;
            }
            for (rec, st) in failures {
                if let Err(e) = check("apply", "", st) {
                    host::dead_letter(rec, e.to_string().as_bytes());
                }
            }
        }
        self.ops.clear();
        self.nops = 0;
        self.epoch += 1;
    }

    pub(crate) fn drop(&mut self, rec: i32) -> i32 {
        if self.batch_record(rec).is_none() {
            return host::drop_record(rec);
        }
        self.queue(op::DROP, 0, rec, &[], &[])
    }

    pub(crate) fn dead_letter(&mut self, rec: i32, reason: &[u8]) -> i32 {
        if self.batch_record(rec).is_none() {
            return host::dead_letter(rec, reason);
        }
        self.queue(op::DEAD_LETTER, 0, rec, reason, &[])
    }

    pub(crate) fn set_topic(&mut self, rec: i32, topic: &[u8]) -> i32 {
        if self.batch_record(rec).is_none() {
            return host::set_topic(rec, topic);
        }
        self.queue(op::SET_TOPIC, 0, rec, topic, &[])
    }

    /// set_topic of prefix followed by name, joined in the decision buffer
    /// (or in a reused buffer for a per-record call).
    pub(crate) fn set_topic_parts(&mut self, rec: i32, prefix: &[u8], name: &[u8]) -> i32 {
        if BATCHED && self.batch_record(rec).is_some() {
            return self.queue_parts(op::SET_TOPIC, 0, rec, prefix, name, &[]);
        }
        let j = &mut self.b.join;
        j.clear();
        j.extend_from_slice(prefix);
        j.extend_from_slice(name);
        host::set_topic(rec, j)
    }

    pub(crate) fn set_key(&mut self, rec: i32, key: &[u8]) -> i32 {
        if self.batch_record(rec).is_none() {
            return host::set_key(rec, key);
        }
        self.queue(op::SET_KEY, 0, rec, key, &[])
    }

    pub(crate) fn set_header(&mut self, rec: i32, name: &[u8], val: &[u8]) -> i32 {
        if self.batch_record(rec).is_none() {
            return host::set_header(rec, name, val);
        }
        self.queue(op::SET_HEADER, 0, rec, name, val)
    }

    /// set_field (`quote`: set_string) of path. `trusted`: val is JSON the
    /// SDK encoded, valid by construction.
    pub(crate) fn set_field(&mut self, rec: i32, path: &[u8], val: &[u8], quote: bool, trusted: bool) -> i32 {
        let certain = (quote || trusted) && self.path_class(path) & PATH_KEY != 0 && self.object(rec);
        self.note_edit(rec, field_bit(path));
        if certain {
            let code = if quote { op::SET_STRING } else { op::SET_FIELD };
            return self.queue(code, 0, rec, path, val);
        }
        self.settle(rec);
        if quote {
            host::set_string(rec, path, val)
        } else {
            host::set_field(rec, path, val)
        }
    }

    pub(crate) fn delete_field(&mut self, rec: i32, path: &[u8]) -> i32 {
        let certain = self.path_class(path) & PATH_VALID != 0 && self.object(rec);
        self.note_edit(rec, field_bit(path));
        if certain {
            // OK or NOT_FOUND, which the caller treats alike.
            return self.queue(op::DELETE_FIELD, 0, rec, path, &[]);
        }
        self.settle(rec);
        host::delete_field(rec, path)
    }

    pub(crate) fn hash_field(&mut self, rec: i32, path: &[u8]) -> i32 {
        let bit = field_bit(path);
        if let Some(r) = self.batch_record(rec) {
            if self.path_class(path) & PATH_KEY != 0 && self.object(rec) {
                // What the hash will do follows from the value it will
                // see: the column's, unless this batch edited the field.
                let seen = self.column_for(r, path, fetch::RAW).and_then(|c| self.entry(c, r));
                match seen {
                    Some(Err(status::NOT_FOUND)) => return status::NOT_FOUND,
                    Some(Ok(v)) if v.first() == Some(&b'"') => {
                        self.note_edit(rec, bit);
                        return self.queue(op::HASH_FIELD, HASH_SHA256 as u8, rec, path, &[]);
                    }
                    Some(Ok(_)) => return status::WRONG_TYPE,
                    _ => {}
                }
            }
        }
        self.note_edit(rec, bit);
        self.settle(rec);
        host::hash_field(rec, path, HASH_SHA256)
    }

    pub(crate) fn set_value(&mut self, rec: i32, val: &[u8]) -> i32 {
        self.mark(rec, REPLACED);
        self.note_edit(rec, ALL_FIELDS);
        self.settle(rec);
        host::set_value(rec, val)
    }

    pub(crate) fn emit(&mut self, parent: i32, val: &[u8]) -> i32 {
        // The new record starts with its parent's topic, key and headers.
        self.settle(parent);
        host::emit(parent, val)
    }
}

/// A decision as its per-record call.
fn immediate(code: u8, arg: u8, rec: i32, a: &[u8], b: &[u8]) -> i32 {
    match code {
        op::DROP => host::drop_record(rec),
        op::DEAD_LETTER => host::dead_letter(rec, a),
        op::SET_FIELD => host::set_field(rec, a, b),
        op::SET_STRING => host::set_string(rec, a, b),
        op::DELETE_FIELD => host::delete_field(rec, a),
        op::SET_VALUE => host::set_value(rec, a),
        op::SET_TOPIC => host::set_topic(rec, a),
        op::SET_KEY => host::set_key(rec, a),
        op::SET_HEADER => host::set_header(rec, a, b),
        op::HASH_FIELD => host::hash_field(rec, a, arg as i32),
        _ => unreachable!("sluice: op {}", code),
    }
}

/// The bit of path's field in a record's edit mask: a hash of its first
/// segment, the top-level key every path through that field starts with.
/// An edit changes only values under its own top-level key, so a column
/// of another key still answers (two keys may share a bit: then the read
/// is a per-record call, which is always exact). A first segment of
/// digits (an array element: a delete moves the later ones) or none takes
/// every bit.
fn field_bit(path: &[u8]) -> u32 {
    let seg = match path.iter().position(|&c| c == b'.') {
        Some(i) => &path[..i],
        None => path,
    };
    if seg.iter().all(u8::is_ascii_digit) {
        return ALL_FIELDS; // also the empty segment
    }
    let mut h: u32 = 0x811c_9dc5; // FNV-1a
    for &c in seg {
        h = (h ^ c as u32).wrapping_mul(0x0100_0193);
    }
    1 << (h >> 27)
}

/// Reports whether path is well formed: non-empty segments.
fn valid_path(path: &[u8]) -> bool {
    !path.is_empty() && path[0] != b'.' && path[path.len() - 1] != b'.' && !path.windows(2).any(|w| w == b"..")
}

/// Reports whether path names one top-level object key: one segment, not
/// made only of digits (an array index).
fn top_level_key(path: &[u8]) -> bool {
    !path.is_empty() && !path.contains(&b'.') && !path.iter().all(u8::is_ascii_digit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        for (p, valid, top) in [
            ("email", true, true),
            ("geo.country", true, false),
            ("items.0", true, false),
            ("0", true, false),
            ("a0", true, true),
            ("", false, false),
            ("a..b", false, false),
            (".a", false, false),
            ("a.", false, false),
        ] {
            assert_eq!(valid_path(p.as_bytes()), valid, "{:?}", p);
            assert_eq!(top_level_key(p.as_bytes()), top, "{:?}", p);
        }
    }

    #[test]
    fn field_bits() {
        // Paths in one field share its bit; one bit each otherwise.
        assert_eq!(field_bit(b"geo"), field_bit(b"geo.country"));
        assert_eq!(field_bit(b"geo.city"), field_bit(b"geo.country.x"));
        assert_eq!(field_bit(b"items.0"), field_bit(b"items.1"));
        for p in ["email", "ua", "a0", "geo.city"] {
            assert_eq!(field_bit(p.as_bytes()).count_ones(), 1, "{:?}", p);
        }
        // Top-level array elements and malformed paths: every field.
        for p in ["0", "12.x", "", ".a"] {
            assert_eq!(field_bit(p.as_bytes()), ALL_FIELDS, "{:?}", p);
        }
        // The example redact's fields do not collide with email.
        assert_ne!(field_bit(b"ua"), field_bit(b"email"));
        assert_ne!(field_bit(b"ip"), field_bit(b"email"));
    }
}
