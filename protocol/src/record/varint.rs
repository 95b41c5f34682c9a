//! Zig-zag varints and varlongs, the variable-length integers of magic-2 records.
//!
//! Hand-written rather than taken from a crate because this is the innermost loop of record
//! decoding: a one-byte fast path, reading from a slice and a position, with no allocation and
//! an error instead of a panic on truncated or overlong input.

/// Why a varint could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VarintError {
    /// The input ends inside the varint.
    Truncated,
    /// More bytes than the type allows (5 for 32 bits, 10 for 64).
    Overlong,
}

/// Reads a zig-zag varint (at most 5 bytes) at `*pos`, advancing it.
#[inline(always)]
pub(crate) fn read_varint(buf: &[u8], pos: &mut usize) -> Result<i32, VarintError> {
    let raw = read_unsigned(buf, pos, 5)? as u32;
    Ok(((raw >> 1) as i32) ^ -((raw & 1) as i32))
}

/// Reads a zig-zag varlong (at most 10 bytes) at `*pos`, advancing it.
#[inline(always)]
pub(crate) fn read_varlong(buf: &[u8], pos: &mut usize) -> Result<i64, VarintError> {
    let raw = read_unsigned(buf, pos, 10)?;
    Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
}

#[inline(always)]
fn read_unsigned(buf: &[u8], pos: &mut usize, max_bytes: usize) -> Result<u64, VarintError> {
    // Fast paths: most lengths and deltas in real batches fit in one or two bytes (a record
    // of 64 bytes to 8 KiB has a two-byte length, so does the 64th record's offset delta).
    match buf.get(*pos) {
        None => return Err(VarintError::Truncated),
        Some(&b) if b < 0x80 => {
            *pos += 1;
            return Ok(u64::from(b));
        }
        Some(&b0) => {
            if let Some(&b1) = buf.get(*pos + 1) {
                if b1 < 0x80 {
                    *pos += 2;
                    return Ok(u64::from(b0 & 0x7f) | u64::from(b1) << 7);
                }
            }
        }
    }
    let mut value = 0u64;
    for i in 0..max_bytes {
        let Some(&b) = buf.get(*pos + i) else {
            return Err(VarintError::Truncated);
        };
        // Bits beyond the type's width are dropped, as the Java client's ByteUtils does.
        value |= u64::from(b & 0x7f).wrapping_shl(7 * i as u32);
        if b < 0x80 {
            *pos += i + 1;
            return Ok(value);
        }
    }
    Err(VarintError::Overlong)
}

/// Appends `v` as a zig-zag varint.
#[inline]
pub(crate) fn put_varint(out: &mut Vec<u8>, v: i32) {
    put_unsigned(out, ((v << 1) ^ (v >> 31)) as u32 as u64);
}

/// Appends `v` as a zig-zag varlong.
#[inline]
pub(crate) fn put_varlong(out: &mut Vec<u8>, v: i64) {
    put_unsigned(out, ((v << 1) ^ (v >> 63)) as u64);
}

#[inline]
fn put_unsigned(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// The encoded size of `v` as a zig-zag varint.
#[inline]
pub(crate) fn varint_len(v: i32) -> usize {
    unsigned_len(((v << 1) ^ (v >> 31)) as u32 as u64)
}

/// The encoded size of `v` as a zig-zag varlong.
#[inline]
pub(crate) fn varlong_len(v: i64) -> usize {
    unsigned_len(((v << 1) ^ (v >> 63)) as u64)
}

#[inline]
fn unsigned_len(v: u64) -> usize {
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_encodings() {
        // Values from the Kafka protocol documentation's zig-zag table.
        let cases: &[(i32, &[u8])] = &[
            (0, &[0]),
            (-1, &[1]),
            (1, &[2]),
            (-2, &[3]),
            (63, &[0x7e]),
            (-64, &[0x7f]),
            (64, &[0x80, 1]),
            (i32::MAX, &[0xfe, 0xff, 0xff, 0xff, 0x0f]),
            (i32::MIN, &[0xff, 0xff, 0xff, 0xff, 0x0f]),
        ];
        for (v, bytes) in cases {
            let mut out = Vec::new();
            put_varint(&mut out, *v);
            assert_eq!(&out, bytes, "{v}");
            let mut pos = 0;
            assert_eq!(read_varint(bytes, &mut pos), Ok(*v));
            assert_eq!(pos, bytes.len());
        }
    }

    #[test]
    fn one_two_and_three_byte_values_round_trip() {
        // Every value around the one- and two-byte fast paths' limits.
        for v in -20_000..20_000 {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(out.len(), varint_len(v));
            let mut pos = 0;
            assert_eq!(read_varint(&out, &mut pos), Ok(v));
            assert_eq!(pos, out.len());
            // Cut short, it is truncated, never misread.
            let mut pos = 0;
            assert_eq!(
                read_varint(&out[..out.len() - 1], &mut pos),
                Err(VarintError::Truncated)
            );
        }
    }

    #[test]
    fn truncated_and_overlong() {
        let mut pos = 0;
        assert_eq!(
            read_varint(&[0x80, 0x80], &mut pos),
            Err(VarintError::Truncated)
        );
        assert_eq!(read_varint(&[], &mut pos), Err(VarintError::Truncated));
        assert_eq!(
            read_varint(&[0x80; 6], &mut pos),
            Err(VarintError::Overlong)
        );
        assert_eq!(
            read_varlong(&[0x80; 11], &mut pos),
            Err(VarintError::Overlong)
        );
        assert_eq!(pos, 0, "a failed read does not move the position");
    }

    proptest! {
        #[test]
        fn varint_round_trip(v in any::<i32>()) {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            prop_assert_eq!(out.len(), varint_len(v));
            let mut pos = 0;
            prop_assert_eq!(read_varint(&out, &mut pos), Ok(v));
        }

        #[test]
        fn varlong_round_trip(v in any::<i64>()) {
            let mut out = Vec::new();
            put_varlong(&mut out, v);
            prop_assert_eq!(out.len(), varlong_len(v));
            let mut pos = 0;
            prop_assert_eq!(read_varlong(&out, &mut pos), Ok(v));
        }
    }
}
