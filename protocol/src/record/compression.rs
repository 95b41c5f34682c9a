//! The five codecs, each bounded on the way in so that a compression bomb is an error.
//!
//! Every decompressor writes into one `Vec` per batch through a reader capped at the limit plus
//! one byte: reaching the extra byte means the batch is over the limit, and nothing more is read.

use std::io::{Read, Write};

use super::error::{RecordErrorKind, WriteError};
use super::Compression;

/// The xerial snappy-java stream header the Java client writes before its snappy blocks.
const XERIAL_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
const XERIAL_HEADER_LEN: usize = 16;
/// snappy-java's default block size, which the Java producer uses.
const XERIAL_BLOCK_SIZE: usize = 32 * 1024;

/// Decompresses `input` with `codec` into a new buffer of at most `limit` bytes.
pub(crate) fn decompress(
    codec: Compression,
    input: &[u8],
    limit: usize,
) -> Result<Vec<u8>, RecordErrorKind> {
    let fail = |e: &dyn std::fmt::Display| RecordErrorKind::Decompress {
        codec,
        reason: e.to_string(),
    };
    // Compressed batches usually shrink 2-5x; start there and let the vector grow.
    let hint = input.len().saturating_mul(4).min(limit);
    match codec {
        Compression::None => bounded_copy(input, limit, codec),
        Compression::Gzip => read_bounded(
            flate2::bufread::MultiGzDecoder::new(input),
            hint,
            limit,
            codec,
        ),
        Compression::Lz4 => {
            let out = read_bounded(
                lz4_flex::frame::FrameDecoder::new(input),
                hint,
                limit,
                codec,
            )?;
            check_lz4_end_mark(input)?;
            Ok(out)
        }
        Compression::Zstd => {
            let decoder = zstd::stream::read::Decoder::with_buffer(input).map_err(|e| fail(&e))?;
            read_bounded(decoder, hint, limit, codec)
        }
        Compression::Snappy => {
            if input.len() >= XERIAL_HEADER_LEN && input[..8] == XERIAL_MAGIC {
                xerial_decompress(&input[XERIAL_HEADER_LEN..], limit)
            } else {
                let mut out = Vec::new();
                snappy_block(input, &mut out, limit)?;
                Ok(out)
            }
        }
    }
}

/// The LZ4 decoder takes the end of its input at a block boundary as the end of the frame, so a
/// frame cut just before its end mark would read as complete; Kafka's reader would fail on it,
/// and so do we.
fn check_lz4_end_mark(input: &[u8]) -> Result<(), RecordErrorKind> {
    let content_checksum = input.get(4).is_some_and(|flags| flags & 0x04 != 0);
    let tail = if content_checksum { 8 } else { 4 };
    let end_mark = input.len().checked_sub(tail).map(|at| &input[at..at + 4]);
    if end_mark != Some(&[0, 0, 0, 0][..]) {
        return Err(RecordErrorKind::Decompress {
            codec: Compression::Lz4,
            reason: "frame ends without its end mark (truncated)".to_owned(),
        });
    }
    Ok(())
}

fn bounded_copy(
    input: &[u8],
    limit: usize,
    codec: Compression,
) -> Result<Vec<u8>, RecordErrorKind> {
    if input.len() > limit {
        return Err(RecordErrorKind::DecompressionLimit { codec, limit });
    }
    Ok(input.to_vec())
}

fn read_bounded<R: Read>(
    reader: R,
    hint: usize,
    limit: usize,
    codec: Compression,
) -> Result<Vec<u8>, RecordErrorKind> {
    let mut out = Vec::with_capacity(hint);
    reader
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| RecordErrorKind::Decompress {
            codec,
            reason: e.to_string(),
        })?;
    if out.len() > limit {
        return Err(RecordErrorKind::DecompressionLimit { codec, limit });
    }
    Ok(out)
}

/// Decompresses one raw snappy block, appending to `out`, checking the announced size first.
fn snappy_block(block: &[u8], out: &mut Vec<u8>, limit: usize) -> Result<(), RecordErrorKind> {
    let codec = Compression::Snappy;
    let fail = |e: snap::Error| RecordErrorKind::Decompress {
        codec,
        reason: e.to_string(),
    };
    let len = snap::raw::decompress_len(block).map_err(fail)?;
    let start = out.len();
    if len > limit - start {
        return Err(RecordErrorKind::DecompressionLimit { codec, limit });
    }
    out.resize(start + len, 0);
    let n = snap::raw::Decoder::new()
        .decompress(block, &mut out[start..])
        .map_err(fail)?;
    out.truncate(start + n);
    Ok(())
}

/// Reads the blocks after a xerial header: each a 4-byte big-endian length and a raw block.
fn xerial_decompress(mut rest: &[u8], limit: usize) -> Result<Vec<u8>, RecordErrorKind> {
    let mut out = Vec::with_capacity(rest.len().saturating_mul(3).min(limit));
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
        snappy_block(&rest[..len], &mut out, limit)?;
        rest = &rest[len..];
    }
    Ok(out)
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
        let hash = twox_hash::XxHash32::oneshot(0, &fixed[4..checksum_at]);
        fixed[checksum_at] = (hash >> 8) as u8;
    }
    fixed
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
