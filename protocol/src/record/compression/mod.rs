//! The five codecs, each bounded on the way in so that a compression bomb is an error.
//!
//! Decompression writes into one buffer per batch, taken from the buffer pool (`super::pool`)
//! and sized before the first byte is decoded from what the compressed data says about its own
//! size: gzip's trailer (ISIZE, `gzip_member`), zstd's frame and block headers
//! (`zstd_frames`), lz4's block headers (`lz4_frame`), snappy's block headers. So a batch costs
//! one buffer, not a growing one, and a reused buffer is not zeroed again. Those sizes come from
//! the input, so they are only hints within bounds: never more than the limit, never more than
//! the codec could produce from that much input; a decompressor that finds more data than
//! announced either grows the buffer (the streaming fallbacks, bounded by the limit) or fails
//! with an error, never with a panic or a larger allocation.

mod gzip_member;
mod lz4_frame;
mod zstd_frames;

use std::io::{ErrorKind, Read, Write};

use bytes::Bytes;

use super::error::{RecordErrorKind, WriteError};
use super::pool;
use super::Compression;

pub(crate) use lz4_frame::fix_legacy_lz4_header;

/// The xerial snappy-java stream header the Java client writes before its snappy blocks.
const XERIAL_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
const XERIAL_HEADER_LEN: usize = 16;
/// snappy-java's default block size, which the Java producer uses.
const XERIAL_BLOCK_SIZE: usize = 32 * 1024;
/// Deflate's largest expansion: 258 bytes from a code of two bits, about 1032:1.
const DEFLATE_MAX_RATIO: usize = 1032;
/// More than snappy can expand (a 64-byte copy in a 3-byte tag is 21.3:1): a block header
/// claiming more is corrupt, and is refused before anything is allocated for it.
const SNAPPY_MAX_RATIO: usize = 32;

/// Decompresses `input` with `codec` into a buffer of at most `limit` bytes.
pub(crate) fn decompress(
    codec: Compression,
    input: &[u8],
    limit: usize,
) -> Result<Bytes, RecordErrorKind> {
    match codec {
        Compression::None => {
            if input.len() > limit {
                return Err(RecordErrorKind::DecompressionLimit { codec, limit });
            }
            Ok(Bytes::copy_from_slice(input))
        }
        Compression::Gzip => match gzip_member::decompress(input, limit) {
            Some(out) => Ok(out),
            None => read_into(
                flate2::bufread::MultiGzDecoder::new(input),
                gzip_size_hint(input, limit),
                limit,
                codec,
            ),
        },
        Compression::Lz4 => lz4_frame::decompress(input, limit),
        Compression::Zstd => zstd_frames::decompress(input, limit),
        Compression::Snappy => {
            if input.len() >= XERIAL_HEADER_LEN && input[..8] == XERIAL_MAGIC {
                xerial_decompress(&input[XERIAL_HEADER_LEN..], limit)
            } else {
                let len = snappy_len(input, 0, limit)?;
                let mut out = pool::take(len);
                match snappy_block(input, &mut out[..len]) {
                    Ok(()) => Ok(pool::into_bytes(out, len)),
                    Err(e) => {
                        pool::give_back(out);
                        Err(e)
                    }
                }
            }
        }
    }
}

/// The size a gzip stream announces in its trailer (ISIZE, the last member's size modulo
/// 2^32): exact for the single member producers write. Untrusted, so never more than deflate
/// could produce from this input, nor the limit; a wrong one only costs the buffer a regrowth.
fn gzip_size_hint(input: &[u8], limit: usize) -> usize {
    let announced = match input.len().checked_sub(4) {
        Some(at) => {
            u32::from_le_bytes([input[at], input[at + 1], input[at + 2], input[at + 3]]) as usize
        }
        None => 0,
    };
    announced
        .min(input.len().saturating_mul(DEFLATE_MAX_RATIO))
        .min(limit)
}

/// Reads `reader` to its end into a pooled buffer of `hint` bytes, growing it only if the data
/// turns out longer, and failing once it would pass `limit`.
pub(super) fn read_into<R: Read>(
    mut reader: R,
    hint: usize,
    limit: usize,
    codec: Compression,
) -> Result<Bytes, RecordErrorKind> {
    let mut out = pool::take(hint.min(limit));
    match fill(&mut reader, &mut out, limit, codec) {
        Ok(len) => Ok(pool::into_bytes(out, len)),
        Err(e) => {
            pool::give_back(out);
            Err(e)
        }
    }
}

fn fill<R: Read>(
    reader: &mut R,
    out: &mut Vec<u8>,
    limit: usize,
    codec: Compression,
) -> Result<usize, RecordErrorKind> {
    let fail = |e: std::io::Error| RecordErrorKind::Decompress {
        codec,
        reason: e.to_string(),
    };
    let mut filled = 0;
    loop {
        let end = out.len().min(limit);
        if filled == end {
            // Full: a small read tells the end of the data (the usual case, the size having
            // been right) from more of it, without growing the buffer in advance.
            let mut probe = [0u8; 64];
            let n = loop {
                match reader.read(&mut probe) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(e) => return Err(fail(e)),
                }
            };
            if n == 0 {
                return Ok(filled);
            }
            if n > limit - filled {
                return Err(RecordErrorKind::DecompressionLimit { codec, limit });
            }
            let grown = filled
                .saturating_mul(2)
                .max(filled + n)
                .max(4096)
                .min(limit);
            pool::grow(out, grown);
            out[filled..filled + n].copy_from_slice(&probe[..n]);
            filled += n;
            continue;
        }
        match reader.read(&mut out[filled..end]) {
            Ok(0) => return Ok(filled),
            Ok(n) => filled += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(fail(e)),
        }
    }
}

fn snappy_error(e: snap::Error) -> RecordErrorKind {
    RecordErrorKind::Decompress {
        codec: Compression::Snappy,
        reason: e.to_string(),
    }
}

/// The size one raw snappy block announces, checked against what snappy can produce from it
/// and against what is left of the limit after `before` bytes.
fn snappy_len(block: &[u8], before: usize, limit: usize) -> Result<usize, RecordErrorKind> {
    let codec = Compression::Snappy;
    let len = snap::raw::decompress_len(block).map_err(snappy_error)?;
    if len > limit.saturating_sub(before) {
        return Err(RecordErrorKind::DecompressionLimit { codec, limit });
    }
    if len > block.len().saturating_mul(SNAPPY_MAX_RATIO) {
        return Err(RecordErrorKind::Decompress {
            codec,
            reason: format!(
                "block of {} bytes claims {len} bytes, more than snappy can encode in it",
                block.len()
            ),
        });
    }
    Ok(len)
}

/// Decompresses one raw snappy block into `out`, which is exactly its announced size.
fn snappy_block(block: &[u8], out: &mut [u8]) -> Result<(), RecordErrorKind> {
    let n = snap::raw::Decoder::new()
        .decompress(block, out)
        .map_err(snappy_error)?;
    if n != out.len() {
        return Err(RecordErrorKind::Decompress {
            codec: Compression::Snappy,
            reason: format!("block announces {} bytes but holds {n}", out.len()),
        });
    }
    Ok(())
}

/// Calls `each` on the blocks after a xerial header: each a 4-byte big-endian length and a raw
/// block.
fn xerial_blocks<'a>(
    mut rest: &'a [u8],
    mut each: impl FnMut(&'a [u8]) -> Result<(), RecordErrorKind>,
) -> Result<(), RecordErrorKind> {
    while !rest.is_empty() {
        if rest.len() < 4 {
            return Err(RecordErrorKind::Decompress {
                codec: Compression::Snappy,
                reason: format!("xerial block length cut off ({} bytes left)", rest.len()),
            });
        }
        let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        rest = &rest[4..];
        if len > rest.len() {
            return Err(RecordErrorKind::Decompress {
                codec: Compression::Snappy,
                reason: format!("xerial block of {len} bytes, {} left", rest.len()),
            });
        }
        each(&rest[..len])?;
        rest = &rest[len..];
    }
    Ok(())
}

/// The xerial framing: a first pass over the block headers sizes the buffer exactly, a second
/// decompresses each block into its place.
fn xerial_decompress(rest: &[u8], limit: usize) -> Result<Bytes, RecordErrorKind> {
    let mut total = 0;
    xerial_blocks(rest, |block| {
        total += snappy_len(block, total, limit)?;
        Ok(())
    })?;
    let mut out = pool::take(total);
    let mut at = 0;
    let result = xerial_blocks(rest, |block| {
        // Announced sizes were summed above, so each fits where it goes.
        let len = snap::raw::decompress_len(block).map_err(snappy_error)?;
        snappy_block(block, &mut out[at..at + len])?;
        at += len;
        Ok(())
    });
    match result {
        Ok(()) => Ok(pool::into_bytes(out, total)),
        Err(e) => {
            pool::give_back(out);
            Err(e)
        }
    }
}

/// Compresses `input` with `codec`, appending to `out`. `level` is the codec's own level
/// (gzip 1-9, zstd 1-22); `None` takes the codec's default.
pub(crate) fn compress(
    codec: Compression,
    level: Option<i32>,
    input: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), WriteError> {
    let fail = |e: &dyn std::fmt::Display| WriteError::Compress {
        codec,
        reason: e.to_string(),
    };
    match codec {
        Compression::None => out.extend_from_slice(input),
        Compression::Gzip => {
            let level = level.map_or(flate2::Compression::default(), |l| {
                flate2::Compression::new(l.clamp(0, 9) as u32)
            });
            let mut enc = flate2::write::GzEncoder::new(out, level);
            enc.write_all(input).map_err(|e| fail(&e))?;
            enc.finish().map_err(|e| fail(&e))?;
        }
        Compression::Snappy => {
            // The xerial framing, as the Java producer writes it: readable by every client.
            out.extend_from_slice(&XERIAL_MAGIC);
            out.extend_from_slice(&1i32.to_be_bytes());
            out.extend_from_slice(&1i32.to_be_bytes());
            let mut encoder = snap::raw::Encoder::new();
            for chunk in input.chunks(XERIAL_BLOCK_SIZE) {
                let len_at = out.len();
                out.extend_from_slice(&[0; 4]);
                let start = out.len();
                out.resize(start + snap::raw::max_compress_len(chunk.len()), 0);
                let n = encoder
                    .compress(chunk, &mut out[start..])
                    .map_err(|e| fail(&e))?;
                out.truncate(start + n);
                out[len_at..len_at + 4].copy_from_slice(&(n as u32).to_be_bytes());
            }
        }
        Compression::Lz4 => {
            // 64 KiB independent blocks, no checksums beyond the header's: the Java producer's
            // KafkaLZ4BlockOutputStream settings.
            let info = lz4_flex::frame::FrameInfo::new()
                .block_size(lz4_flex::frame::BlockSize::Max64KB)
                .block_mode(lz4_flex::frame::BlockMode::Independent);
            let mut enc = lz4_flex::frame::FrameEncoder::with_frame_info(info, out);
            enc.write_all(input).map_err(|e| fail(&e))?;
            enc.finish().map_err(|e| fail(&e))?;
        }
        Compression::Zstd => {
            let level = level.unwrap_or(zstd::DEFAULT_COMPRESSION_LEVEL);
            let mut enc = zstd::stream::write::Encoder::new(out, level).map_err(|e| fail(&e))?;
            enc.write_all(input).map_err(|e| fail(&e))?;
            enc.finish().map_err(|e| fail(&e))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod hostile_tests;

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        (0..200_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect()
    }

    #[test]
    fn every_codec_round_trips() {
        let input = sample();
        for codec in Compression::ALL {
            let mut out = Vec::new();
            compress(codec, None, &input, &mut out).unwrap();
            assert_eq!(
                decompress(codec, &out, usize::MAX / 2).unwrap(),
                input,
                "{codec}"
            );
        }
    }

    #[test]
    fn bombs_stop_at_the_limit() {
        let zeros = vec![0u8; 8 << 20];
        for codec in Compression::ALL {
            let mut out = Vec::new();
            compress(codec, None, &zeros, &mut out).unwrap();
            let err = decompress(codec, &out, 1 << 20).unwrap_err();
            assert_eq!(
                err,
                RecordErrorKind::DecompressionLimit {
                    codec,
                    limit: 1 << 20
                },
                "{codec}"
            );
        }
    }

    #[test]
    fn raw_snappy_is_read_too() {
        let input = sample();
        let raw = snap::raw::Encoder::new().compress_vec(&input).unwrap();
        assert_eq!(
            decompress(Compression::Snappy, &raw, usize::MAX / 2).unwrap(),
            input
        );
    }

    #[test]
    fn garbage_is_an_error_for_every_codec() {
        let junk: Vec<u8> = (0..100u8).map(|i| i.wrapping_mul(37)).collect();
        for codec in [
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            assert!(
                matches!(
                    decompress(codec, &junk, 1 << 20),
                    Err(RecordErrorKind::Decompress { .. })
                ),
                "{codec}"
            );
        }
        let mut xerial = XERIAL_MAGIC.to_vec();
        xerial.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 99, 1]);
        assert!(decompress(Compression::Snappy, &xerial, 1 << 20).is_err());
    }

    #[test]
    fn legacy_lz4_checksum_is_repaired() {
        let input = sample();
        let mut frame = Vec::new();
        compress(Compression::Lz4, None, &input, &mut frame).unwrap();
        // Break the header checksum the way Kafka 0.8 did: hash over the magic number too.
        let hc_at = 6;
        frame[hc_at] = (twox_hash::XxHash32::oneshot(0, &frame[0..hc_at]) >> 8) as u8;
        assert!(decompress(Compression::Lz4, &frame, usize::MAX / 2).is_err());
        let fixed = fix_legacy_lz4_header(&frame);
        assert_eq!(
            decompress(Compression::Lz4, &fixed, usize::MAX / 2).unwrap(),
            input
        );
    }
}
