//! The batch arena: where the host writes the values a transform asks for.
//!
//! A getter hands the host the arena's free space as its output buffer; the
//! value it writes there is then lent to the transform as `&'b [u8]` until
//! the batch ends, with no allocation and no copy. The arena is a list of
//! chunks that never move: when a value does not fit, a chunk twice as large
//! is added and the older chunks stay until the next batch, so values
//! already lent stay valid. Between batches it keeps only its largest chunk,
//! so a steady stream of batches allocates nothing.

use std::cell::UnsafeCell;
use std::ptr::NonNull;

/// The first chunk's size.
const FIRST_CHUNK: usize = 16 << 10;

/// One heap block of `cap` bytes, owned through a raw pointer so that moving
/// a `Chunk` value never moves (or re-borrows) its bytes.
struct Chunk {
    ptr: NonNull<u8>,
    cap: usize,
}

impl Chunk {
    /// A zeroed chunk: every byte is initialised, so any part of it may be
    /// lent as `&[u8]` whatever the host wrote.
    fn new(cap: usize) -> Chunk {
        let b: Box<[u8]> = vec![0u8; cap].into_boxed_slice();
        let ptr = NonNull::new(Box::into_raw(b) as *mut u8).expect("Box pointers are not null");
        Chunk { ptr, cap }
    }
}

impl Drop for Chunk {
    fn drop(&mut self) {
        // SAFETY: ptr and cap come from Box::into_raw of a Box<[u8]> of
        // exactly cap bytes in Chunk::new, and a Chunk is dropped once.
        // Arena::reset (the only place chunks die before the arena does)
        // takes &mut Arena, so no lent slice into this chunk is alive.
        unsafe { drop(Box::from_raw(std::ptr::slice_from_raw_parts_mut(self.ptr.as_ptr(), self.cap))) }
    }
}

struct Chunks {
    /// The chunk being filled.
    cur: Chunk,
    /// Bytes of `cur` already lent: `[0, used)`.
    used: usize,
    /// Older, smaller chunks of this batch, kept alive for their lent values.
    full: Vec<Chunk>,
}

/// The batch arena. It is neither `Send` nor `Sync` (it holds raw pointers),
/// so it lives in one thread's storage and is used by one call at a time.
pub(crate) struct Arena {
    inner: UnsafeCell<Chunks>,
}

impl Arena {
    pub(crate) fn new() -> Arena {
        Arena { inner: UnsafeCell::new(Chunks { cur: Chunk::new(FIRST_CHUNK), used: 0, full: Vec::new() }) }
    }

    /// Forgets every value lent in the last batch: the caller's exclusive
    /// borrow proves none is still alive. Keeps the largest chunk.
    pub(crate) fn reset(&mut self) {
        let c = self.inner.get_mut();
        c.used = 0;
        c.full.clear();
    }

    /// Runs `write` with the arena's free space as the output buffer of a
    /// host getter. `write` returns the value's length or a negative status;
    /// a length over the buffer means the value did not fit (the host wrote
    /// nothing), and the call is repeated with a chunk that fits it. Returns
    /// the value, lent until the arena is reset, or the status.
    #[inline]
    pub(crate) fn fill(&self, mut write: impl FnMut(&mut [u8]) -> i32) -> Result<&[u8], i32> {
        // Written out twice rather than as a loop (every loop header runs
        // the host's interrupt check): the first try
        // fits nearly always, the second fits a value of the length the
        // first reported.
        match self.try_fill(&mut write) {
            Ok(Some(v)) => return Ok(v),
            Err(st) => return Err(st),
            Ok(None) => {}
        }
        match self.try_fill(&mut write) {
            Ok(Some(v)) => return Ok(v),
            Err(st) => return Err(st),
            Ok(None) => {}
        }
        loop {
            if let Some(v) = self.try_fill(&mut write)? {
                return Ok(v);
            }
        }
    }

    /// One try of fill: the value, or `None` after growing the arena when
    /// it did not fit.
    #[inline]
    fn try_fill(&self, write: &mut impl FnMut(&mut [u8]) -> i32) -> Result<Option<&[u8]>, i32> {
        {
            // SAFETY: the UnsafeCell is dereferenced only inside Arena's
            // methods, which do not call each other and hold no reference
            // into it across `write` (below); the arena is single-threaded
            // (!Sync). So these are the only references to Chunks while
            // they live.
            let (base, start, free) = unsafe {
                let c = &*self.inner.get();
                (c.cur.ptr.as_ptr(), c.used, c.cur.cap - c.used)
            };
            // SAFETY: [start, start+free) of the current chunk is
            // initialised (Chunk::new zeroes it), inside its block, and
            // disjoint from every slice lent so far: those cover [0, start)
            // of this chunk and the older chunks. Nothing else refers to
            // it while `write` (a host getter) fills it.
            let n = write(unsafe { std::slice::from_raw_parts_mut(base.add(start), free) });
            if n < 0 {
                return Err(n);
            }
            let n = n as usize;
            // SAFETY: as above; `write` has returned.
            let c = unsafe { &mut *self.inner.get() };
            if n <= free {
                c.used = start + n;
                // SAFETY: [start, start+n) is initialised, inside the
                // current chunk, and from now on below `used`, so no later
                // fill writes to it; the chunk lives until reset, which
                // needs &mut self and so comes after this &self borrow.
                return Ok(Some(unsafe { std::slice::from_raw_parts(base.add(start), n) }));
            }
            // Too small: a larger chunk; the old one keeps its lent values.
            let grown = Chunk::new((2 * c.cur.cap).max(2 * n));
            let old = std::mem::replace(&mut c.cur, grown);
            c.full.push(old);
            c.used = 0;
            Ok(None)
        }
    }

    /// The bytes of the current chunk lent so far and the chunk count (for
    /// tests).
    #[cfg(test)]
    fn stats(&self) -> (usize, usize, usize) {
        // SAFETY: see fill.
        let c = unsafe { &*self.inner.get() };
        (c.used, c.cur.cap, c.full.len() + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake getter that writes `v` when it fits, as the host does.
    fn put(v: &[u8]) -> impl FnMut(&mut [u8]) -> i32 + '_ {
        move |buf: &mut [u8]| {
            if v.len() <= buf.len() {
                buf[..v.len()].copy_from_slice(v);
            }
            v.len() as i32
        }
    }

    #[test]
    fn values_stay_valid_across_growth() {
        let mut a = Arena::new();
        let mut lent: Vec<(&[u8], Vec<u8>)> = Vec::new();
        // Values of growing size force new chunks; earlier ones must keep
        // their bytes.
        for i in 0..200usize {
            let v: Vec<u8> = (0..i * 97).map(|j| (i + j) as u8).collect();
            let got = a.fill(put(&v)).unwrap();
            lent.push((got, v));
        }
        for (got, want) in &lent {
            assert_eq!(got, &want.as_slice());
        }
        let (_, cap, chunks) = a.stats();
        assert!(chunks > 1 && cap >= 199 * 97, "chunks {} cap {}", chunks, cap);
        drop(lent);
        a.reset();
        let (used, cap2, chunks) = a.stats();
        assert_eq!((used, cap2, chunks), (0, cap, 1), "reset keeps only the largest chunk");
        // The kept chunk is reused: no growth for the same load.
        for i in 0..10usize {
            let v = vec![i as u8; 100];
            assert_eq!(a.fill(put(&v)).unwrap(), v.as_slice());
        }
        assert_eq!(a.stats().2, 1);
    }

    #[test]
    fn status_and_empty() {
        let a = Arena::new();
        assert_eq!(a.fill(|_| -7), Err(-7));
        assert_eq!(a.fill(put(b"")).unwrap(), b"");
        assert_eq!(a.fill(put(b"ab")).unwrap(), b"ab");
        assert_eq!(a.stats().0, 2);
    }

    #[test]
    fn oversized_value_gets_a_chunk_that_fits() {
        let a = Arena::new();
        let big = vec![7u8; FIRST_CHUNK * 5 + 3];
        let small = a.fill(put(b"first")).unwrap();
        let got = a.fill(put(&big)).unwrap();
        assert_eq!(got.len(), big.len());
        assert!(got.iter().all(|&b| b == 7));
        assert_eq!(small, b"first");
        let (used, cap, chunks) = a.stats();
        assert_eq!((used, chunks), (big.len(), 2));
        assert!(cap >= 2 * big.len());
    }
}
