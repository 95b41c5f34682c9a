//! Kafka's LZ4: the LZ4 frame format, decoded block by block straight into the batch's buffer.
//!
//! Producers (the Java client, librdkafka, ours) write one frame of independent blocks of at
//! most 64 KiB. For such a frame a first pass over the block headers gives an upper bound of the
//! output (a compressed block holds at most the frame's block size, a stored one its length), a
//! pooled buffer of that size is taken, and each block is decompressed into its place with
//! `lz4_flex::block`: no intermediate block buffer and no copy out of it, which is what reading
//! through `lz4_flex::frame::FrameDecoder` costs. Checksums (header, blocks, content) and the
//! announced content size are verified as the frame format asks.
//!
//! Anything else (linked blocks, a dictionary id, more than one frame, a cut-off or malformed
//! frame, a bound above the limit) goes through `FrameDecoder` as before, which also gives those
//! frames their error messages.

use bytes::Bytes;
use twox_hash::XxHash32;

use super::read_into;
use crate::record::error::RecordErrorKind;
use crate::record::pool;
use crate::record::Compression;

const MAGIC: u32 = 0x184D_2204;
const FLG_VERSION_MASK: u8 = 0b1100_0000;
const FLG_VERSION_01: u8 = 0b0100_0000;
const FLG_RESERVED: u8 = 0b0000_0010;
const FLG_INDEPENDENT_BLOCKS: u8 = 0b0010_0000;
const FLG_BLOCK_CHECKSUMS: u8 = 0b0001_0000;
const FLG_CONTENT_SIZE: u8 = 0b0000_1000;
const FLG_CONTENT_CHECKSUM: u8 = 0b0000_0100;
const FLG_DICTIONARY_ID: u8 = 0b0000_0001;
const BD_BLOCK_SIZE_MASK: u8 = 0b0111_0000;
const BLOCK_UNCOMPRESSED: u32 = 0x8000_0000;

/// Decompresses Kafka's LZ4 data into a buffer of at most `limit` bytes.
pub(super) fn decompress(input: &[u8], limit: usize) -> Result<Bytes, RecordErrorKind> {
    if let Some(frame) = Frame::parse(input) {
        if let Some(bound) = frame.bound().filter(|&b| b <= limit) {
            return frame.decode(bound);
        }
    }
    let hint = input.len().saturating_mul(4).min(limit);
    let out = read_into(
        lz4_flex::frame::FrameDecoder::new(input),
        hint,
        limit,
        Compression::Lz4,
    )?;
    check_end_mark(input)?;
    Ok(out)
}

fn corrupt(reason: String) -> RecordErrorKind {
    RecordErrorKind::Decompress {
        codec: Compression::Lz4,
        reason,
    }
}

/// A frame of independent blocks with a valid header, and nothing after it.
struct Frame<'a> {
    /// The block section: block headers and data, the end mark, the content checksum.
    blocks: &'a [u8],
    max_block: usize,
    block_checksums: bool,
    content_checksum: bool,
    content_size: Option<u64>,
}

impl<'a> Frame<'a> {
    /// The frame's header, when it is one the direct path handles.
    fn parse(input: &'a [u8]) -> Option<Frame<'a>> {
        let magic = u32::from_le_bytes(input.get(..4)?.try_into().ok()?);
        let (&flg, &bd) = (input.get(4)?, input.get(5)?);
        if magic != MAGIC
            || flg & FLG_VERSION_MASK != FLG_VERSION_01
            || flg & FLG_RESERVED != 0
            || bd & !BD_BLOCK_SIZE_MASK != 0
            || flg & FLG_INDEPENDENT_BLOCKS == 0
            || flg & FLG_DICTIONARY_ID != 0
        {
            return None;
        }
        let max_block = match (bd & BD_BLOCK_SIZE_MASK) >> 4 {
            4 => 64 << 10,
            5 => 256 << 10,
            6 => 1 << 20,
            7 => 4 << 20,
            _ => return None,
        };
        let mut at = 6;
        let mut content_size = None;
        if flg & FLG_CONTENT_SIZE != 0 {
            content_size = Some(u64::from_le_bytes(input.get(6..14)?.try_into().ok()?));
            at = 14;
        }
        let checksum = *input.get(at)?;
        if (XxHash32::oneshot(0, &input[4..at]) >> 8) as u8 != checksum {
            return None;
        }
        Some(Frame {
            blocks: &input[at + 1..],
            max_block,
            block_checksums: flg & FLG_BLOCK_CHECKSUMS != 0,
            content_checksum: flg & FLG_CONTENT_CHECKSUM != 0,
            content_size,
        })
    }

    /// Walks the block headers: an upper bound of the output, when every block is whole, the
    /// end mark is there and nothing but the content checksum follows it.
    fn bound(&self) -> Option<usize> {
        let mut total = 0usize;
        let end = self.walk(false, |block| {
            total = total.saturating_add(match block {
                Block::Stored(data) => data.len(),
                Block::Compressed(..) => self.max_block,
            });
            Ok(())
        });
        end.ok().flatten().map(|_| total)
    }

    /// Calls `each` on every block, checking block checksums if `verify`; `Ok(Some(tail))` at a
    /// well-formed end, where `tail` is what follows the end mark (the content checksum, if
    /// any), `Ok(None)` if the frame is cut off, oversized or followed by anything.
    fn walk(
        &self,
        verify: bool,
        mut each: impl FnMut(Block<'a>) -> Result<(), RecordErrorKind>,
    ) -> Result<Option<&'a [u8]>, RecordErrorKind> {
        let mut rest = self.blocks;
        let checksum_len = if self.block_checksums { 4 } else { 0 };
        loop {
            let Some(word) = rest.get(..4) else {
                return Ok(None);
            };
            let word = u32::from_le_bytes([word[0], word[1], word[2], word[3]]);
            rest = &rest[4..];
            if word == 0 {
                let tail_len = if self.content_checksum { 4 } else { 0 };
                return Ok((rest.len() == tail_len).then_some(rest));
            }
            let len = (word & !BLOCK_UNCOMPRESSED) as usize;
            if len > self.max_block || rest.len() < len + checksum_len {
                return Ok(None);
            }
            let (data, after) = rest.split_at(len);
            if verify && self.block_checksums {
                let stored = u32::from_le_bytes([after[0], after[1], after[2], after[3]]);
                let computed = XxHash32::oneshot(0, data);
                if stored != computed {
                    return Err(corrupt(format!(
                        "block checksum mismatch: stored {stored:#010x}, computed {computed:#010x}"
                    )));
                }
            }
            each(if word & BLOCK_UNCOMPRESSED != 0 {
                Block::Stored(data)
            } else {
                Block::Compressed(data)
            })?;
            rest = &after[checksum_len..];
        }
    }

    /// Decodes the frame into a buffer of `bound` bytes (from [`Frame::bound`]).
    fn decode(&self, bound: usize) -> Result<Bytes, RecordErrorKind> {
        let mut out = pool::take(bound);
        match self.decode_into(&mut out[..bound]) {
            Ok(len) => Ok(pool::into_bytes(out, len)),
            Err(e) => {
                pool::give_back(out);
                Err(e)
            }
        }
    }

    fn decode_into(&self, out: &mut [u8]) -> Result<usize, RecordErrorKind> {
        let mut at = 0;
        let max_block = self.max_block;
        let tail = self.walk(true, |block| {
            // The bound gave each block room for its largest possible output.
            match block {
                Block::Stored(data) => {
                    out[at..at + data.len()].copy_from_slice(data);
                    at += data.len();
                }
                Block::Compressed(data) => {
                    let room = &mut out[at..at + max_block];
                    at += decode_block(data, room)?;
                }
            }
            Ok(())
        })?;
        // `bound` walked the same blocks to the same end.
        let Some(tail) = tail else {
            return Err(corrupt("frame changed between passes".to_owned()));
        };
        if let Some(size) = self.content_size {
            if size != at as u64 {
                return Err(corrupt(format!(
                    "frame announces {size} bytes of content, its blocks hold {at}"
                )));
            }
        }
        if self.content_checksum {
            let stored = u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]);
            let computed = XxHash32::oneshot(0, &out[..at]);
            if stored != computed {
                return Err(corrupt(format!(
                    "content checksum mismatch: stored {stored:#010x}, computed {computed:#010x}"
                )));
            }
        }
        Ok(at)
    }
}

/// One compressed block into `room`. Kept out of line: inlined into the walk, the decoder's
/// match copies (`copy_within`) were left as calls, costing 2 M instructions per megabyte.
#[inline(never)]
fn decode_block(data: &[u8], room: &mut [u8]) -> Result<usize, RecordErrorKind> {
    lz4_flex::block::decompress_into(data, room).map_err(|e| corrupt(e.to_string()))
}

enum Block<'a> {
    Stored(&'a [u8]),
    Compressed(&'a [u8]),
}

/// The LZ4 decoder takes the end of its input at a block boundary as the end of the frame, so a
/// frame cut just before its end mark would read as complete; Kafka's reader would fail on it,
/// and so do we.
fn check_end_mark(input: &[u8]) -> Result<(), RecordErrorKind> {
    let content_checksum = input.get(4).is_some_and(|flags| flags & 0x04 != 0);
    let tail = if content_checksum { 8 } else { 4 };
    let end_mark = input.len().checked_sub(tail).map(|at| &input[at..at + 4]);
    if end_mark != Some(&[0, 0, 0, 0][..]) {
        return Err(corrupt(
            "frame ends without its end mark (truncated)".to_owned(),
        ));
    }
    Ok(())
}

/// Kafka 0.8-0.9 (magic 0) computed the LZ4 frame header checksum over the magic number as well
/// (KAFKA-3160), so standard decoders reject those frames. Returns a copy with the checksum
/// recomputed, as the Java client does when it reads magic-0 data.
pub(crate) fn fix_legacy_lz4_header(input: &[u8]) -> Vec<u8> {
    let mut fixed = input.to_vec();
    if fixed.len() < 7 {
        return fixed;
    }
    let flags = fixed[4];
    let mut checksum_at = 6;
    if flags & 0x08 != 0 {
        checksum_at += 8; // content size
    }
    if flags & 0x01 != 0 {
        checksum_at += 4; // dictionary id
    }
    if checksum_at < fixed.len() {
        let hash = XxHash32::oneshot(0, &fixed[4..checksum_at]);
        fixed[checksum_at] = (hash >> 8) as u8;
    }
    fixed
}
