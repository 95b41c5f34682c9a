//! gzip: the single member every producer writes, inflated in one call straight into the batch's
//! buffer.
//!
//! Read through `flate2::bufread::MultiGzDecoder`, a batch is inflated into the decoder's 32 KiB
//! window and copied out of it piece by piece (a tenth of the instructions at 100 B records), by
//! an inflate state allocated and zeroed per batch. Here the member's header is parsed (RFC 1952),
//! its deflate data inflated with this thread's `flate2::Decompress` and `FlushDecompress::Finish`
//! into a buffer of exactly the size the trailer announces (ISIZE), which lets the inflater write
//! straight into it, and the trailer's CRC-32 and size are checked.
//!
//! This is a fast path only: a stream of several members, a trailer whose size is not what the
//! data inflates to (or that is above the limit, or impossible for the input), or data that does
//! not inflate cleanly returns `None`, and the caller reads the stream with `MultiGzDecoder`,
//! which handles the first and gives the others their errors.

use std::cell::RefCell;

use bytes::Bytes;
use flate2::{Decompress, FlushDecompress, Status};

use super::DEFLATE_MAX_RATIO;
use crate::record::pool;

const FTEXT_FHCRC: u8 = 0b0000_0010;
const FEXTRA: u8 = 0b0000_0100;
const FNAME: u8 = 0b0000_1000;
const FCOMMENT: u8 = 0b0001_0000;
const RESERVED: u8 = 0b1110_0000;
const TRAILER_LEN: usize = 8;

thread_local! {
    /// This thread's raw-deflate inflater, created on first use.
    static INFLATER: RefCell<Option<Decompress>> = const { RefCell::new(None) };
}

/// The length of the member header at the start of `input`, when it is a valid one.
fn header_len(input: &[u8]) -> Option<usize> {
    let fixed = input.get(..10)?;
    if fixed[0] != 0x1f || fixed[1] != 0x8b || fixed[2] != 8 || fixed[3] & RESERVED != 0 {
        return None;
    }
    let flags = fixed[3];
    let mut at = 10;
    if flags & FEXTRA != 0 {
        let len = input.get(at..at + 2)?;
        at += 2 + usize::from(u16::from_le_bytes([len[0], len[1]]));
    }
    for field in [FNAME, FCOMMENT] {
        if flags & field != 0 {
            at += input.get(at..)?.iter().position(|&b| b == 0)? + 1;
        }
    }
    if flags & FTEXT_FHCRC != 0 {
        // The low 16 bits of the CRC-32 of the header before it.
        let stored = input.get(at..at + 2)?;
        if crc32fast::hash(&input[..at]) as u16 != u16::from_le_bytes([stored[0], stored[1]]) {
            return None;
        }
        at += 2;
    }
    (at <= input.len()).then_some(at)
}

/// Inflates a single-member gzip stream into a pooled buffer of the trailer's size; `None` when
/// this path does not apply or the data does not check out (see the module documentation).
pub(super) fn decompress(input: &[u8], limit: usize) -> Option<Bytes> {
    let body_at = header_len(input)?;
    let body_end = input.len().checked_sub(TRAILER_LEN)?;
    let body = input.get(body_at..body_end)?;
    let trailer = &input[body_end..];
    let crc = u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
    let size = u32::from_le_bytes([trailer[4], trailer[5], trailer[6], trailer[7]]) as usize;
    if size > limit || size > body.len().saturating_mul(DEFLATE_MAX_RATIO) {
        return None;
    }
    let mut out = pool::take(size);
    let whole = inflate(body, &mut out[..size])
        .is_some_and(|(read, written)| read == body.len() && written == size)
        && crc32fast::hash(&out[..size]) == crc;
    if whole {
        Some(pool::into_bytes(out, size))
    } else {
        pool::give_back(out);
        None
    }
}

/// One `Finish` call of this thread's inflater (a new one if the thread's is unavailable):
/// `(bytes read, bytes written)` when the deflate stream ended.
fn inflate(body: &[u8], out: &mut [u8]) -> Option<(usize, usize)> {
    let run = |inflater: &mut Decompress, out: &mut [u8]| {
        inflater.reset(false);
        match inflater.decompress(body, out, FlushDecompress::Finish) {
            Ok(Status::StreamEnd) => Some((
                usize::try_from(inflater.total_in()).ok()?,
                usize::try_from(inflater.total_out()).ok()?,
            )),
            _ => None,
        }
    };
    let cached = INFLATER.try_with(|cell| {
        let mut slot = cell.try_borrow_mut().ok()?;
        let inflater = slot.get_or_insert_with(|| Decompress::new(false));
        Some(run(inflater, &mut *out))
    });
    match cached {
        Ok(Some(result)) => result,
        _ => run(&mut Decompress::new(false), out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_with_every_optional_field_are_parsed() {
        let mut h = vec![
            0x1f,
            0x8b,
            8,
            FEXTRA | FNAME | FCOMMENT | FTEXT_FHCRC,
            0,
            0,
            0,
            0,
            0,
            3,
        ];
        h.extend_from_slice(&[3, 0, b'a', b'b', b'c']); // extra field
        h.extend_from_slice(b"name\0comment\0");
        let crc16 = crc32fast::hash(&h) as u16;
        h.extend_from_slice(&crc16.to_le_bytes());
        assert_eq!(header_len(&h), Some(h.len()));
        let mut bad_crc = h.clone();
        *bad_crc.last_mut().unwrap() ^= 1;
        assert_eq!(header_len(&bad_crc), None);
        // Cut inside each optional field, and reserved flags: not a header this path reads.
        for cut in [11, 14, 18, h.len() - 1] {
            assert_eq!(header_len(&h[..cut]), None, "cut at {cut}");
        }
        let mut reserved = h.clone();
        reserved[3] |= 0x20;
        assert_eq!(header_len(&reserved), None);
    }
}
