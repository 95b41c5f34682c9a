//! Bad input of every kind gives a typed error naming what was wrong and where; nothing panics.

use bytes::Bytes;
use kingest_protocol::record::{
    BatchBuilder, BatchOptions, Compression, DecodeOptions, Header, RawBatch, RecordError,
    RecordErrorKind, RecordSet, Region, BATCH_HEADER_SIZE,
};
use proptest::prelude::*;

fn sample_batch(codec: Compression) -> Bytes {
    let mut b = BatchBuilder::new(BatchOptions {
        base_offset: 1000,
        compression: codec,
        ..Default::default()
    });
    for i in 0..6u8 {
        let value = vec![b'v'; 20 + i as usize * 7];
        b.push(
            1_700_000_000_000 + i64::from(i),
            Some(&[b'k', i]),
            Some(&value),
            &[
                Header {
                    key: b"trace",
                    value: Some(b"abc"),
                },
                Header {
                    key: b"n",
                    value: None,
                },
            ],
        );
    }
    b.finish().unwrap()
}

/// Cuts a batch to `len` bytes and fixes its length field and CRC, so that the header is valid
/// and only the records section is short.
fn shortened(batch: &[u8], len: usize) -> Bytes {
    let mut b = batch[..len].to_vec();
    b[8..12].copy_from_slice(&((len - 12) as i32).to_be_bytes());
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    Bytes::from(b)
}

/// Decodes everything in `data`, returning the first error.
fn first_error(data: Bytes, opts: &DecodeOptions) -> Option<RecordError> {
    for raw in RecordSet::new(data) {
        let batch = match raw.and_then(|r| r.decode(opts)) {
            Ok(b) => b,
            Err(e) => return Some(e),
        };
        if let Err(e) = batch.control_record() {
            return Some(e);
        }
        for r in batch.records() {
            if let Err(e) = r {
                return Some(e);
            }
        }
    }
    None
}

#[test]
fn every_truncation_point_of_a_batch() {
    for codec in Compression::ALL {
        let batch = sample_batch(codec);
        for cut in 0..batch.len() {
            let part = batch.slice(..cut);
            // Strictly parsed, a cut batch is a typed truncation error at byte 0 of the input...
            let err = RawBatch::parse(part.clone()).unwrap_err();
            assert!(
                matches!(err.kind, RecordErrorKind::Truncated { available, .. } if available == cut),
                "{codec} cut {cut}: {err}"
            );
            // ...and at the end of a fetch response it is the normal "incomplete" end.
            let mut set = RecordSet::new(part);
            assert!(set.next().is_none(), "{codec} cut {cut}");
            let tail = set.incomplete();
            assert_eq!(tail.is_some(), cut > 0, "{codec} cut {cut}");
            if cut >= 12 {
                assert_eq!(tail.unwrap().needed, Some(batch.len()));
                assert_eq!(tail.unwrap().base_offset, Some(1000));
            }
        }
    }
}

#[test]
fn every_truncation_point_of_the_records_section() {
    let opts = DecodeOptions::default();
    for codec in Compression::ALL {
        let batch = sample_batch(codec);
        for cut in BATCH_HEADER_SIZE..batch.len() {
            let err = first_error(shortened(&batch, cut), &opts)
                .unwrap_or_else(|| panic!("{codec}: records cut at {cut} read without error"));
            assert_eq!(err.base_offset, Some(1000));
            let text = err.to_string();
            assert!(
                text.contains("record batch at offset 1000") && text.contains("byte "),
                "{text}"
            );
            if codec == Compression::None {
                assert_eq!(err.region, Region::Records, "{err}");
                assert!(err.at <= cut - BATCH_HEADER_SIZE, "{err}");
            }
        }
    }
}

#[test]
fn crc_mismatch_names_both_checksums() {
    let mut b = sample_batch(Compression::None).to_vec();
    b[70] ^= 0x40;
    let err = first_error(Bytes::from(b.clone()), &DecodeOptions::default()).unwrap();
    assert!(
        matches!(
            err.kind,
            RecordErrorKind::CrcMismatch {
                algorithm: "CRC32C",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(err.at, 17);
    assert!(err.to_string().contains("CRC32C mismatch"), "{err}");
    // With checking off (check.crcs=false) the flipped byte just reads as data.
    let lax = DecodeOptions {
        verify_crc: false,
        ..Default::default()
    };
    assert!(first_error(Bytes::from(b), &lax).is_none());
}

/// Builds a batch around a hand-written records section.
fn batch_with_records(count: i32, records: &[u8]) -> Bytes {
    let mut b = BatchBuilder::new(BatchOptions::default())
        .finish()
        .unwrap()
        .to_vec();
    b.truncate(BATCH_HEADER_SIZE);
    b[57..61].copy_from_slice(&count.to_be_bytes());
    b.extend_from_slice(records);
    let len = b.len();
    shortened(&b, len)
}

#[test]
fn malformed_records() {
    let opts = DecodeOptions::default();
    let kind = |count, records: &[u8]| {
        first_error(batch_with_records(count, records), &opts).map(|e| e.kind)
    };
    // A valid record: len 8, attrs, ts delta 0, offset delta 0, key null, value "a", 0 headers.
    let good = [14u8, 0, 0, 0, 1, 2, b'a', 0];
    assert_eq!(kind(1, &good), None);
    // More records announced than present.
    assert!(matches!(
        kind(2, &good),
        Some(RecordErrorKind::Truncated {
            what: "record length",
            ..
        })
    ));
    // Fewer announced than present.
    assert!(matches!(
        kind(0, &good),
        Some(RecordErrorKind::TrailingBytes { extra: 8, .. })
    ));
    // An overlong varint as the record length.
    assert_eq!(
        kind(1, &[0x80, 0x80, 0x80, 0x80, 0x80, 0x01]),
        Some(RecordErrorKind::BadVarint("record length"))
    );
    // A value longer than the record.
    assert!(matches!(
        kind(1, &[14, 0, 0, 0, 1, 20, b'a', 0]),
        Some(RecordErrorKind::Truncated { what: "value", .. })
    ));
    // A key length of -2.
    assert!(matches!(
        kind(1, &[14, 0, 0, 0, 3, 2, b'a', 0]),
        Some(RecordErrorKind::InvalidLength {
            what: "key",
            value: -2
        })
    ));
    // Negative header count.
    assert!(matches!(
        kind(1, &[14, 0, 0, 0, 1, 2, b'a', 1]),
        Some(RecordErrorKind::InvalidLength {
            what: "header count",
            value: -1
        })
    ));
    // A null header key.
    assert!(matches!(
        kind(1, &[18, 0, 0, 0, 1, 2, b'a', 2, 1, 1]),
        Some(RecordErrorKind::InvalidLength {
            what: "header key length",
            ..
        })
    ));
    // Declared record length longer than its fields (a spare byte inside the record).
    assert!(matches!(
        kind(1, &[16, 0, 0, 0, 1, 2, b'a', 0, 0]),
        Some(RecordErrorKind::RecordLengthMismatch {
            declared: 8,
            actual: 7
        })
    ));
    // Zero and negative record lengths.
    assert!(matches!(
        kind(1, &[0]),
        Some(RecordErrorKind::InvalidLength {
            what: "record length",
            value: 0
        })
    ));
    assert!(matches!(
        kind(1, &[1]),
        Some(RecordErrorKind::InvalidLength {
            what: "record length",
            value: -1
        })
    ));
    // A record count near i32::MAX over a tiny section: an error, not an allocation.
    assert!(matches!(
        kind(i32::MAX, &good),
        Some(RecordErrorKind::Truncated { .. })
    ));
}

#[test]
fn malformed_headers_and_sets() {
    let opts = DecodeOptions::default();
    let batch = sample_batch(Compression::None).to_vec();
    let err = |b: Vec<u8>| first_error(Bytes::from(b), &opts).unwrap();
    let mut neg_count = batch.clone();
    neg_count[57..61].copy_from_slice(&(-1i32).to_be_bytes());
    assert!(matches!(
        err(neg_count).kind,
        RecordErrorKind::InvalidLength {
            what: "record count",
            ..
        }
    ));
    let mut bad_magic = batch.clone();
    bad_magic[16] = 7;
    let e = err(bad_magic);
    assert_eq!(
        (e.kind.clone(), e.at),
        (RecordErrorKind::UnsupportedMagic(7), 16)
    );
    let mut small_len = batch.clone();
    small_len[8..12].copy_from_slice(&5i32.to_be_bytes());
    assert!(matches!(
        err(small_len).kind,
        RecordErrorKind::InvalidLength {
            what: "batch length",
            value: 5
        }
    ));
    let mut v2_too_short = batch.clone();
    v2_too_short[8..12].copy_from_slice(&30i32.to_be_bytes());
    assert!(matches!(
        err(v2_too_short).kind,
        RecordErrorKind::InvalidLength {
            what: "batch length",
            value: 30
        }
    ));
    let mut codec7 = batch.clone();
    codec7[22] |= 0x07;
    let fixed = shortened(&codec7, codec7.len()).to_vec();
    assert_eq!(err(fixed).kind, RecordErrorKind::UnknownCodec(7));
    // The second batch of a set fails: the error names it, at its position in the set.
    let mut two = batch.clone();
    let mut second = batch.clone();
    second[16] = 9;
    two.extend_from_slice(&second);
    let e = err(two);
    assert_eq!((e.at, e.region), (batch.len() + 16, Region::RecordSet));
}

#[test]
fn corrupt_compressed_payloads() {
    let opts = DecodeOptions::default();
    for codec in [
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let mut b = sample_batch(codec).to_vec();
        let mid = BATCH_HEADER_SIZE + (b.len() - BATCH_HEADER_SIZE) / 2;
        b[mid] ^= 0xff;
        b[mid + 1] ^= 0x55;
        let len = b.len();
        let fixed = shortened(&b, len);
        // Either the decompressor notices, or the records it yields do not parse; never a panic.
        let e =
            first_error(fixed, &opts).unwrap_or_else(|| panic!("{codec}: corruption unnoticed"));
        assert_eq!(e.base_offset, Some(1000), "{e}");
    }
}

#[test]
fn compression_bombs_are_refused() {
    let big = vec![0u8; 4 << 20];
    for codec in [
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let mut b = BatchBuilder::new(BatchOptions {
            compression: codec,
            ..Default::default()
        });
        b.push(0, None, Some(&big), &[]);
        let bytes = b.finish().unwrap();
        assert!(
            bytes.len() < 300_000,
            "{codec} compressed 4 MiB of zeros to {}",
            bytes.len()
        );
        let opts = DecodeOptions {
            max_decompressed_size: 1 << 20,
            ..Default::default()
        };
        let e = first_error(bytes.clone(), &opts).unwrap();
        assert_eq!(
            e.kind,
            RecordErrorKind::DecompressionLimit {
                codec,
                limit: 1 << 20
            },
            "{e}"
        );
        assert!(first_error(bytes, &DecodeOptions::default()).is_none());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// Arbitrary bytes: errors or records, never a panic.
    #[test]
    fn garbage_never_panics(data in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = first_error(Bytes::from(data), &DecodeOptions::default());
    }

    /// A valid batch with bytes flipped, CRC checking off so the damage reaches every parser.
    #[test]
    fn mutated_batches_never_panic(codec in prop::sample::select(Compression::ALL.to_vec()),
                                   flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6)) {
        let mut b = sample_batch(codec).to_vec();
        for (i, x) in flips {
            let at = i.index(b.len());
            b[at] ^= x;
        }
        let lax = DecodeOptions { verify_crc: false, max_decompressed_size: 1 << 20 };
        let _ = first_error(Bytes::from(b), &lax);
    }
}
