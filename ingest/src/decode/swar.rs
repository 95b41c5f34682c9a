//! Word-at-a-time byte tests (SWAR: SIMD within a register) shared by the JSON scanner and the
//! CSV splitter: eight bytes are loaded as one little-endian `u64` and tested together, so the
//! scanners step over the bytes of a value by words instead of comparing them one by one.
//!
//! The masks flag a byte in its high bit. Borrows of the subtractions only run towards higher
//! bytes, so the lowest flagged byte is always exact (higher ones may be false positives): the
//! callers only ever use the first, `flags.trailing_zeros() / 8`.

/// 0x01 in every byte.
pub(crate) const ONES: u64 = 0x0101_0101_0101_0101;
/// 0x80 in every byte: where the masks put their flags, and the non-ASCII bits.
pub(crate) const HIGH: u64 = 0x8080_8080_8080_8080;

/// Eight bytes at `i`, little-endian, when there are eight (two compares, no overflow check).
#[inline(always)]
pub(crate) fn load8(b: &[u8], i: usize) -> Option<u64> {
    Some(u64::from_le_bytes(*b.get(i..)?.first_chunk::<8>()?))
}

/// Flags the bytes of `x` equal to `byte`.
#[inline(always)]
pub(crate) fn equal(x: u64, byte: u8) -> u64 {
    zero(x ^ (ONES * u64::from(byte)))
}

/// Flags the bytes of `x` below `limit` (at most 0x80).
#[inline(always)]
pub(crate) fn below(x: u64, limit: u8) -> u64 {
    x.wrapping_sub(ONES * u64::from(limit)) & !x & HIGH
}

/// Flags the zero bytes of `x`.
#[inline(always)]
fn zero(x: u64) -> u64 {
    x.wrapping_sub(ONES) & !x & HIGH
}

/// The index of the first flagged byte of a non-zero `flags`.
#[inline(always)]
pub(crate) fn first(flags: u64) -> usize {
    (flags.trailing_zeros() / 8) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_flag_is_exact_for_every_byte_and_position() {
        for at in 0..8 {
            for byte in 0..=255u8 {
                for fill in [0u8, b'a', 0x7f, 0x80, 0xff] {
                    let mut bytes = [fill; 8];
                    bytes[at] = byte;
                    let x = u64::from_le_bytes(bytes);
                    let want = |hit: &dyn Fn(u8) -> bool| bytes.iter().position(|&c| hit(c));
                    let got = |flags: u64| (flags != 0).then(|| first(flags));
                    assert_eq!(got(equal(x, b'"')), want(&|c| c == b'"'));
                    assert_eq!(got(below(x, 0x20)), want(&|c| c < 0x20));
                }
            }
        }
        assert_eq!(
            load8(b"0123456789", 2),
            Some(u64::from_le_bytes(*b"23456789"))
        );
        assert_eq!(load8(b"0123456789", 3), None);
        assert_eq!(load8(b"01", 5), None);
    }
}
