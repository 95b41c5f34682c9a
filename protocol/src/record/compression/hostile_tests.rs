//! The size hints under attack: trailers and headers that lie about the size, frames cut off,
//! blocks that claim more than their codec can hold. Each must end in a typed error (or, where
//! a hint was only too low, in the right bytes), never a panic or an allocation past the limit.

use std::io::{Read, Write};

use zstd::zstd_safe;

use super::*;

const MIB: usize = 1 << 20;

/// About 300 KB of JSON-like text that compresses 5-10x, as real events do.
fn events() -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0u64;
    while out.len() < 300_000 {
        i += 1;
        let word = ["alpha", "kafka", "stream", "order", "retry"][(i * 7 % 5) as usize];
        out.extend_from_slice(
            format!(
                r#"{{"seq":{i},"user":"u{:07}","event":"{word}"}}"#,
                i * 7919 % 10_000_000
            )
            .as_bytes(),
        );
    }
    out
}

fn compressed(codec: Compression, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    compress(codec, None, data, &mut out).unwrap();
    out
}

fn assert_corrupt(result: Result<Bytes, RecordErrorKind>, what: &str) {
    match result {
        Err(RecordErrorKind::Decompress { reason, .. }) => assert!(!reason.is_empty(), "{what}"),
        other => panic!("{what}: expected a decompression error, got {other:?}"),
    }
}

#[test]
fn gzip_trailer_claiming_4_gib_is_capped_and_refused() {
    let mut gz = compressed(Compression::Gzip, &events());
    let n = gz.len();
    gz[n - 4..].copy_from_slice(&u32::MAX.to_le_bytes());
    // The hint never exceeds what deflate can produce from the input, nor the limit.
    assert_eq!(gzip_size_hint(&gz, usize::MAX), n * DEFLATE_MAX_RATIO);
    assert_eq!(gzip_size_hint(&gz, MIB), MIB);
    // The trailer no longer matches the data.
    assert_corrupt(decompress(Compression::Gzip, &gz, 256 * MIB), "huge ISIZE");
}

#[test]
fn gzip_trailer_too_small_only_costs_a_regrowth() {
    let data = events();
    // Two members: the trailer read is the second's, 4 bytes for 300 KB of output.
    let mut gz = compressed(Compression::Gzip, &data);
    gz.extend_from_slice(&compressed(Compression::Gzip, b"tail"));
    assert_eq!(gzip_size_hint(&gz, usize::MAX), 4);
    let out = decompress(Compression::Gzip, &gz, 256 * MIB).unwrap();
    assert_eq!(&out[..data.len()], &data[..]);
    assert_eq!(&out[data.len()..], b"tail");
    // Past the limit while growing: the limit error, not a larger buffer.
    assert_eq!(
        decompress(Compression::Gzip, &gz, 100_000).unwrap_err(),
        RecordErrorKind::DecompressionLimit {
            codec: Compression::Gzip,
            limit: 100_000
        }
    );
    // A single member whose ISIZE lies low: the data is read, then the trailer refused.
    let mut lying = compressed(Compression::Gzip, &data);
    let n = lying.len();
    lying[n - 4..].copy_from_slice(&16u32.to_le_bytes());
    assert_corrupt(
        decompress(Compression::Gzip, &lying, 256 * MIB),
        "low ISIZE",
    );
}

/// Rewrites the frame content size of a zstd frame whose field is 4 or 8 bytes long.
fn set_zstd_content_size(frame: &mut [u8], size: u64) {
    let descriptor = frame[4];
    let single_segment = descriptor & 0x20 != 0;
    let dict_id_len = [0, 1, 2, 4][(descriptor & 3) as usize];
    let at = 5 + usize::from(!single_segment) + dict_id_len;
    match descriptor >> 6 {
        2 => frame[at..at + 4].copy_from_slice(&u32::try_from(size).unwrap().to_le_bytes()),
        3 => frame[at..at + 8].copy_from_slice(&size.to_le_bytes()),
        other => panic!("content size field of flag {other}"),
    }
}

#[test]
fn zstd_content_size_that_lies_is_an_error() {
    let data = events();
    // The one-shot compressor writes the content size, as librdkafka's does.
    let frame = zstd::bulk::compress(&data, 3).unwrap();
    assert_eq!(
        zstd_safe::get_frame_content_size(&frame).unwrap(),
        Some(data.len() as u64)
    );
    assert_eq!(decompress(Compression::Zstd, &frame, MIB).unwrap(), data);
    for lie in [data.len() as u64 - 1000, data.len() as u64 + 1000] {
        let mut lying = frame.clone();
        set_zstd_content_size(&mut lying, lie);
        assert_corrupt(decompress(Compression::Zstd, &lying, MIB), "content size");
    }
    // Claiming 4 GiB: above the limit, so the streaming decoder reads up to the limit and stops.
    let mut huge = frame.clone();
    set_zstd_content_size(&mut huge, u64::from(u32::MAX));
    assert!(matches!(
        decompress(Compression::Zstd, &huge, MIB),
        Err(RecordErrorKind::Decompress { .. } | RecordErrorKind::DecompressionLimit { .. })
    ));
}

#[test]
fn zstd_without_content_size_is_sized_from_its_blocks() {
    let data = events();
    // The streaming compressor (ours, the Java client's) writes no content size.
    let frame = compressed(Compression::Zstd, &data);
    assert_eq!(zstd_safe::get_frame_content_size(&frame).unwrap(), None);
    let bound = zstd_safe::decompress_bound(&frame).unwrap() as usize;
    assert!(bound >= data.len() && bound <= data.len() + 128 * 1024);
    assert_eq!(decompress(Compression::Zstd, &frame, MIB).unwrap(), data);
    // Two frames back to back decode as one stream, as the streaming decoder read them.
    let mut two = frame.clone();
    two.extend_from_slice(&frame);
    let out = decompress(Compression::Zstd, &two, MIB).unwrap();
    assert_eq!(out.len(), 2 * data.len());
    // A bound just above the limit goes the streaming way and ends at the limit.
    assert_eq!(
        decompress(Compression::Zstd, &frame, data.len() - 1).unwrap_err(),
        RecordErrorKind::DecompressionLimit {
            codec: Compression::Zstd,
            limit: data.len() - 1
        }
    );
    assert_eq!(
        decompress(Compression::Zstd, &frame, data.len()).unwrap(),
        data
    );
}

#[test]
fn truncated_frames_are_errors_for_every_codec() {
    let data = events();
    for codec in [
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let whole = compressed(codec, &data);
        for cut in [1, 20, whole.len() / 2, whole.len() - 1] {
            assert_corrupt(
                decompress(codec, &whole[..cut], 256 * MIB),
                &format!("{codec} cut at {cut} of {}", whole.len()),
            );
        }
    }
}

fn lz4_frame(data: &[u8], info: lz4_flex::frame::FrameInfo) -> Vec<u8> {
    let mut enc = lz4_flex::frame::FrameEncoder::with_frame_info(info, Vec::new());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

fn lz4_reference(frame: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    lz4_flex::frame::FrameDecoder::new(frame).read_to_end(&mut out)?;
    Ok(out)
}

#[test]
fn lz4_direct_path_agrees_with_the_frame_decoder() {
    use lz4_flex::frame::{BlockMode, BlockSize, FrameInfo};
    let data = events();
    for block_size in [BlockSize::Max64KB, BlockSize::Max256KB] {
        for mode in [BlockMode::Independent, BlockMode::Linked] {
            for flags in 0..8u8 {
                let info = FrameInfo::new()
                    .block_size(block_size)
                    .block_mode(mode)
                    .block_checksums(flags & 1 != 0)
                    .content_checksum(flags & 2 != 0)
                    .content_size((flags & 4 != 0).then_some(data.len() as u64));
                let frame = lz4_frame(&data, info);
                let what = format!("{block_size:?} {mode:?} flags {flags}");
                assert_eq!(lz4_reference(&frame).unwrap(), data, "{what}");
                assert_eq!(
                    decompress(Compression::Lz4, &frame, MIB).unwrap(),
                    data,
                    "{what}"
                );
            }
        }
    }
    // Random bytes do not compress: their blocks are stored as they are.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let noise: Vec<u8> = (0..200_000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 32) as u8
        })
        .collect();
    let frame = lz4_frame(&noise, FrameInfo::new());
    assert_eq!(decompress(Compression::Lz4, &frame, MIB).unwrap(), noise);
}

/// The offset of the first block's data in a frame without content size or dictionary id.
const LZ4_FIRST_BLOCK: usize = 7 + 4;

#[test]
fn lz4_checksums_and_sizes_that_lie_are_errors() {
    use lz4_flex::frame::FrameInfo;
    let data = events();
    let checked = lz4_frame(
        &data,
        FrameInfo::new()
            .block_checksums(true)
            .content_checksum(true),
    );
    let mut bad_block = checked.clone();
    bad_block[LZ4_FIRST_BLOCK + 10] ^= 0x55;
    assert_corrupt(
        decompress(Compression::Lz4, &bad_block, MIB),
        "block checksum",
    );
    let mut bad_content = checked.clone();
    let n = bad_content.len();
    bad_content[n - 1] ^= 0x55;
    assert_corrupt(
        decompress(Compression::Lz4, &bad_content, MIB),
        "content checksum",
    );

    // A content size one more than the blocks hold, with a valid header checksum.
    let mut sized = lz4_frame(
        &data,
        FrameInfo::new().content_size(Some(data.len() as u64)),
    );
    sized[6..14].copy_from_slice(&(data.len() as u64 + 1).to_le_bytes());
    sized[14] = (twox_hash::XxHash32::oneshot(0, &sized[4..14]) >> 8) as u8;
    assert_corrupt(decompress(Compression::Lz4, &sized, MIB), "content size");

    // A block header claiming 1 MiB in a frame of 64 KiB blocks.
    let mut oversized = lz4_frame(&data, FrameInfo::new());
    oversized[7..11].copy_from_slice(&(1u32 << 20).to_le_bytes());
    assert_corrupt(
        decompress(Compression::Lz4, &oversized, MIB),
        "oversized block",
    );

    // A bound above the limit takes the frame decoder, which stops at the limit.
    let plain = lz4_frame(&data, FrameInfo::new());
    assert_eq!(
        decompress(Compression::Lz4, &plain, 100_000).unwrap_err(),
        RecordErrorKind::DecompressionLimit {
            codec: Compression::Lz4,
            limit: 100_000
        }
    );
}

#[test]
fn snappy_claims_beyond_its_input_are_refused_before_allocating() {
    // A raw block announcing 100 MiB (varint) followed by four bytes.
    let mut claim = Vec::new();
    let mut n = 100 * MIB as u64;
    while n >= 0x80 {
        claim.push((n as u8) | 0x80);
        n >>= 7;
    }
    claim.push(n as u8);
    claim.extend_from_slice(&[0, 1, 2, 3]);
    assert_corrupt(
        decompress(Compression::Snappy, &claim, 256 * MIB),
        "raw claim",
    );
    assert_eq!(
        decompress(Compression::Snappy, &claim, MIB).unwrap_err(),
        RecordErrorKind::DecompressionLimit {
            codec: Compression::Snappy,
            limit: MIB
        }
    );
    let mut xerial = XERIAL_MAGIC.to_vec();
    xerial.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1]);
    xerial.extend_from_slice(&(claim.len() as u32).to_be_bytes());
    xerial.extend_from_slice(&claim);
    assert_corrupt(
        decompress(Compression::Snappy, &xerial, 256 * MIB),
        "xerial claim",
    );
}

#[test]
fn reused_buffers_show_only_their_own_batch() {
    let first = events();
    let second: Vec<u8> = events().iter().rev().copied().take(250_000).collect();
    for codec in Compression::ALL {
        let a = decompress(codec, &compressed(codec, &first), MIB).unwrap();
        assert_eq!(a, first, "{codec}");
        drop(a);
        // Likely the same buffer again (other tests share the pool): only 250 KB of it shows.
        let b = decompress(codec, &compressed(codec, &second), MIB).unwrap();
        assert_eq!(b, second, "{codec}");
        let kept = b.clone();
        drop(b);
        assert_eq!(kept, second, "{codec}: a clone keeps the buffer");
    }
}

/// What the libraries' own streaming decoders make of `input` (the path every batch took
/// before the direct ones), for the codecs with a direct path.
fn reference(codec: Compression, input: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    match codec {
        Compression::Lz4 => lz4_reference(input).ok(),
        Compression::Gzip => {
            flate2::bufread::MultiGzDecoder::new(input)
                .read_to_end(&mut out)
                .ok()?;
            Some(out)
        }
        Compression::Zstd => {
            let mut decoder = zstd::stream::read::Decoder::with_buffer(input).ok()?;
            decoder.read_to_end(&mut out).ok()?;
            Some(out)
        }
        _ => None,
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(400))]

    /// Valid frames with bytes flipped and ends cut: no panic, nothing past the limit, and
    /// whatever the direct gzip, lz4 and zstd paths accept, the streaming decoders read the
    /// same.
    #[test]
    fn damaged_frames_fail_cleanly(
        codec in proptest::sample::select(vec![
            Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd,
        ]),
        flips in proptest::collection::vec((proptest::prelude::any::<usize>(), 1..=255u8), 0..4),
        cut in proptest::prelude::any::<usize>(),
        cut_it in proptest::prelude::any::<bool>(),
        limit in 1_000usize..400_000,
    ) {
        let data: Vec<u8> = events().into_iter().take(200_000).collect();
        let mut frame = compressed(codec, &data);
        for (at, x) in flips {
            let at = at % frame.len();
            frame[at] ^= x;
        }
        if cut_it {
            frame.truncate(cut % (frame.len() + 1));
        }
        if let Ok(out) = decompress(codec, &frame, limit) {
            proptest::prop_assert!(out.len() <= limit);
            if matches!(codec, Compression::Gzip | Compression::Lz4 | Compression::Zstd) {
                let expected = reference(codec, &frame);
                proptest::prop_assert_eq!(Some(&out[..]), expected.as_deref());
            }
        }
    }
}
