//! Byte scans eight bytes at a time. Guest code pays for every loop
//! iteration (the host's interrupt check runs at each wasm loop header), and
//! the C library's `memcmp` behind `==` on slices loops once per byte; these
//! helpers loop once per 8 bytes, and not at all up to 16.

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

#[inline(always)]
fn load(b: &[u8], i: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[i..i + 8]);
    u64::from_le_bytes(w)
}

#[inline(always)]
fn load32(b: &[u8], i: usize) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[i..i + 4]);
    u32::from_le_bytes(w)
}

/// Reports whether any byte of `x` is zero.
#[inline(always)]
fn has_zero(x: u64) -> bool {
    x.wrapping_sub(LO) & !x & HI != 0
}

/// Reports whether `a` and `b` hold the same bytes.
#[inline]
pub(crate) fn equal(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    match n {
        0 => true,
        1..=3 => a[0] == b[0] && a[n / 2] == b[n / 2] && a[n - 1] == b[n - 1],
        4..=7 => load32(a, 0) == load32(b, 0) && load32(a, n - 4) == load32(b, n - 4),
        8..=16 => load(a, 0) == load(b, 0) && load(a, n - 8) == load(b, n - 8),
        _ => {
            let mut i = 0;
            while i < n - 8 {
                if load(a, i) != load(b, i) {
                    return false;
                }
                i += 8;
            }
            load(a, n - 8) == load(b, n - 8)
        }
    }
}

/// Reports whether no byte of `x` is a control byte, a backslash or a quote.
#[inline(always)]
fn plain_word(x: u64) -> bool {
    // A byte < 0x20 has its top three bits clear: x & 0xE0.. has a zero
    // byte. Backslash and quote: x ^ c.. has a zero byte.
    !has_zero(x & 0xE0E0_E0E0_E0E0_E0E0) && !has_zero(x ^ (LO * b'\\' as u64)) && !has_zero(x ^ (LO * b'"' as u64))
}

/// Reports whether `b` (a JSON string's contents) has no escape, quote or
/// control byte, so that it is its own decoded value.
#[inline]
pub(crate) fn plain(b: &[u8]) -> bool {
    let n = b.len();
    if n < 8 {
        // Widen with a harmless filler byte.
        let mut w = [b'a'; 8];
        w[..n].copy_from_slice(b);
        return plain_word(u64::from_le_bytes(w));
    }
    if n <= 16 {
        return plain_word(load(b, 0)) && plain_word(load(b, n - 8));
    }
    let mut i = 0;
    while i < n - 8 {
        if !plain_word(load(b, i)) {
            return false;
        }
        i += 8;
    }
    plain_word(load(b, n - 8))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain_slow(b: &[u8]) -> bool {
        b.iter().all(|&c| c >= 0x20 && c != b'\\' && c != b'"')
    }

    #[test]
    fn equal_matches_slices() {
        let base: Vec<u8> = (0u8..40).map(|i| b'a' + i % 26).collect();
        for n in 0..40 {
            let a = &base[..n];
            assert!(equal(a, a), "len {}", n);
            for i in 0..n {
                let mut b = a.to_vec();
                b[i] ^= 0x20;
                assert!(!equal(a, &b), "len {} diff at {}", n, i);
            }
            if n > 0 {
                assert!(!equal(a, &base[..n - 1]));
            }
        }
        assert!(equal(b"heartbeat", b"heartbeat"));
        assert!(!equal(b"heartbeat", b"heartbeas"));
    }

    #[test]
    fn plain_matches_byte_scan() {
        let specials = [0u8, 0x1f, b'"', b'\\', b'\n', 0x20, 0x7f, 0x80, 0xff, b'a'];
        for n in 0..24 {
            for i in 0..n {
                for &s in &specials {
                    let mut b = vec![b'x'; n];
                    b[i] = s;
                    assert_eq!(plain(&b), plain_slow(&b), "{:?}", b);
                }
            }
        }
        assert!(plain(b""));
        assert!(plain("é😀 plain text, long enough".as_bytes()));
    }
}
