//! Property tests: whatever the writer builds, the reader gives back exactly, for every codec,
//! for control batches, and for legacy message sets.

use bytes::{Bytes, BytesMut};
use kingest_protocol::record::legacy::{write_message_set, LegacyRecord};
use kingest_protocol::record::{
    stamp_producer, BatchBuilder, BatchOptions, Compression, ControlRecord, ControlType,
    DecodeOptions, Header, RecordSet, TimestampType, WriteError,
};
use proptest::prelude::*;

/// A record as the test generates it (owned).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rec {
    timestamp: i64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

fn bytes_opt(max: usize) -> impl Strategy<Value = Option<Vec<u8>>> {
    prop::option::weighted(0.85, prop::collection::vec(any::<u8>(), 0..max))
}

fn rec() -> impl Strategy<Value = Rec> {
    (
        -1i64..4_000_000_000_000,
        bytes_opt(40),
        bytes_opt(400),
        prop::collection::vec(
            (prop::collection::vec(any::<u8>(), 0..12), bytes_opt(20)),
            0..4,
        ),
    )
        .prop_map(|(timestamp, key, value, headers)| Rec {
            timestamp,
            key,
            value,
            headers,
        })
}

fn codec() -> impl Strategy<Value = Compression> {
    prop::sample::select(Compression::ALL.to_vec())
}

fn build(opts: BatchOptions, recs: &[Rec]) -> Bytes {
    let mut b = BatchBuilder::new(opts);
    for r in recs {
        let headers: Vec<Header<'_>> = r
            .headers
            .iter()
            .map(|(k, v)| Header {
                key: k,
                value: v.as_deref(),
            })
            .collect();
        b.push(r.timestamp, r.key.as_deref(), r.value.as_deref(), &headers);
    }
    b.finish().unwrap()
}

/// Reads every record of a record set back as owned values, with their offsets.
fn read_all(data: Bytes) -> Vec<(i64, Rec)> {
    let opts = DecodeOptions::default();
    let mut set = RecordSet::new(data);
    let mut out = Vec::new();
    for raw in set.by_ref() {
        let batch = raw.unwrap().decode(&opts).unwrap();
        for r in batch.records() {
            let r = r.unwrap();
            out.push((
                r.offset,
                Rec {
                    timestamp: r.timestamp,
                    key: r.key.map(<[u8]>::to_vec),
                    value: r.value.map(<[u8]>::to_vec),
                    headers: r
                        .headers
                        .iter()
                        .map(|h| (h.key.to_vec(), h.value.map(<[u8]>::to_vec)))
                        .collect(),
                },
            ));
        }
    }
    assert_eq!(set.incomplete(), None);
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// Several batches with any codec, concatenated as a fetch response holds them, read back
    /// exactly: offsets, timestamps, keys, values, headers, and the header fields.
    #[test]
    fn batches_round_trip(batches in prop::collection::vec((codec(), prop::collection::vec(rec(), 1..30)), 1..4),
                          producer_id in -1i64..1000, transactional in any::<bool>()) {
        let mut wire = BytesMut::new();
        let mut expected = Vec::new();
        let mut next = 100i64;
        for (codec, recs) in &batches {
            let opts = BatchOptions {
                base_offset: next,
                compression: *codec,
                producer_id,
                producer_epoch: 3,
                base_sequence: 7,
                transactional,
                ..Default::default()
            };
            wire.extend_from_slice(&build(opts, recs));
            for (i, r) in recs.iter().enumerate() {
                expected.push((next + i as i64, r.clone()));
            }
            next += recs.len() as i64;
        }
        let wire = wire.freeze();
        prop_assert_eq!(read_all(wire.clone()), expected);

        let mut base = 100i64;
        for (raw, (codec, recs)) in RecordSet::new(wire).zip(&batches) {
            let raw = raw.unwrap();
            let h = raw.header();
            prop_assert_eq!(h.base_offset, base);
            prop_assert_eq!(h.compression(), Ok(*codec));
            prop_assert_eq!(h.record_count as usize, recs.len());
            prop_assert_eq!(h.last_offset(), base + recs.len() as i64 - 1);
            prop_assert_eq!((h.producer_id, h.producer_epoch, h.base_sequence), (producer_id, 3, 7));
            prop_assert_eq!(h.is_transactional(), transactional);
            prop_assert_eq!(h.max_timestamp, recs.iter().map(|r| r.timestamp).max().unwrap());
            prop_assert_eq!(h.first_timestamp, recs[0].timestamp);
            prop_assert!(!h.is_control());
            base += recs.len() as i64;
        }
    }

    /// Log-append time: every record reads the batch's max timestamp, as Kafka specifies.
    #[test]
    fn log_append_time(recs in prop::collection::vec(rec(), 1..10), codec in codec()) {
        let opts = BatchOptions { compression: codec, timestamp_type: TimestampType::LogAppendTime, ..Default::default() };
        let max = recs.iter().map(|r| r.timestamp).max().unwrap();
        for (_, r) in read_all(build(opts, &recs)) {
            prop_assert_eq!(r.timestamp, max);
        }
    }

    /// A batch built without a producer id and stamped afterwards (as the producer does when
    /// it first sends a batch, or after an epoch bump) is byte for byte the batch built with
    /// those fields, CRC included.
    #[test]
    fn stamping_a_built_batch_equals_building_it_stamped(recs in prop::collection::vec(rec(), 1..20),
                                                          codec in codec(),
                                                          producer_id in 0i64..i64::MAX,
                                                          producer_epoch in 0i16..i16::MAX,
                                                          base_sequence in 0i32..i32::MAX,
                                                          transactional in any::<bool>()) {
        let plain = BatchOptions { compression: codec, ..Default::default() };
        let mut stamped = BytesMut::from(&build(plain, &recs)[..]);
        stamp_producer(&mut stamped, producer_id, producer_epoch, base_sequence, transactional).unwrap();
        let direct = BatchOptions { compression: codec, producer_id, producer_epoch, base_sequence, transactional, ..Default::default() };
        prop_assert_eq!(&stamped[..], &build(direct, &recs)[..]);
        prop_assert_eq!(read_all(stamped.freeze()).len(), recs.len());
    }

    /// Legacy message sets, uncompressed and compressed wrappers, magic 0 and 1.
    #[test]
    fn legacy_round_trip(recs in prop::collection::vec((0i64..4_000_000_000_000, bytes_opt(30), bytes_opt(300)), 1..20),
                         magic in 0i8..=1,
                         codec in prop::sample::select(vec![Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4]),
                         base in 0i64..1_000_000) {
        let input: Vec<LegacyRecord<'_>> = recs.iter().map(|(t, k, v)| LegacyRecord { timestamp: *t, key: k.as_deref(), value: v.as_deref() }).collect();
        let mut out = Vec::new();
        write_message_set(&mut out, magic, codec, TimestampType::CreateTime, base, &input).unwrap();
        let got = read_all(Bytes::from(out));
        prop_assert_eq!(got.len(), recs.len());
        for (i, ((offset, r), (t, k, v))) in got.iter().zip(&recs).enumerate() {
            prop_assert_eq!(*offset, base + i as i64);
            prop_assert_eq!(r.timestamp, if magic == 0 { -1 } else { *t });
            prop_assert_eq!(&r.key, k);
            prop_assert_eq!(&r.value, v);
            prop_assert!(r.headers.is_empty());
        }
    }
}

#[test]
fn control_batches_decode_to_markers() {
    for commit in [true, false] {
        let opts = BatchOptions {
            base_offset: 55,
            producer_id: 9,
            producer_epoch: 1,
            ..Default::default()
        };
        let bytes =
            BatchBuilder::control_batch(opts, ControlRecord::marker(commit, 4), 1234).unwrap();
        let raw = RecordSet::new(bytes).next().unwrap().unwrap();
        assert!(raw.header().is_control() && raw.header().is_transactional());
        let batch = raw.decode(&DecodeOptions::default()).unwrap();
        let marker = batch.control_record().unwrap().unwrap();
        assert_eq!(
            marker.kind,
            if commit {
                ControlType::Commit
            } else {
                ControlType::Abort
            }
        );
        assert_eq!(marker.coordinator_epoch, Some(4));
        assert_eq!(batch.records().next().unwrap().unwrap().offset, 55);
    }
    let data = build(
        BatchOptions::default(),
        &[Rec {
            timestamp: 1,
            key: None,
            value: None,
            headers: vec![],
        }],
    );
    let batch = RecordSet::new(data)
        .next()
        .unwrap()
        .unwrap()
        .decode(&DecodeOptions::default())
        .unwrap();
    assert_eq!(batch.control_record().unwrap(), None);
}

#[test]
fn magic1_wrapper_with_log_append_time_stamps_inner_records() {
    let recs = [
        LegacyRecord {
            timestamp: 5,
            key: None,
            value: Some(b"a"),
        },
        LegacyRecord {
            timestamp: 9,
            key: Some(b"k"),
            value: Some(b"b"),
        },
    ];
    let mut out = Vec::new();
    write_message_set(
        &mut out,
        1,
        Compression::Gzip,
        TimestampType::LogAppendTime,
        10,
        &recs,
    )
    .unwrap();
    let got = read_all(Bytes::from(out));
    assert_eq!(
        got.iter()
            .map(|(o, r)| (*o, r.timestamp))
            .collect::<Vec<_>>(),
        vec![(10, 9), (11, 9)]
    );
}

#[test]
fn records_borrow_from_the_response_when_uncompressed() {
    let data = build(
        BatchOptions::default(),
        &[Rec {
            timestamp: 1,
            key: None,
            value: Some(b"payload".to_vec()),
            headers: vec![],
        }],
    );
    let range = data.as_ptr() as usize..data.as_ptr() as usize + data.len();
    let batch = RecordSet::new(data.clone())
        .next()
        .unwrap()
        .unwrap()
        .decode(&DecodeOptions::default())
        .unwrap();
    let value = batch.records().next().unwrap().unwrap().value.unwrap();
    assert!(
        range.contains(&(value.as_ptr() as usize)),
        "value was copied"
    );
    // And an owned handle to it costs no copy either.
    let owned = batch.data().slice_ref(value);
    assert_eq!(&owned[..], b"payload");
}

#[test]
fn stamping_refuses_what_is_not_a_magic_2_batch() {
    let batch = build(
        BatchOptions::default(),
        &[Rec {
            timestamp: 1,
            key: None,
            value: Some(b"v".to_vec()),
            headers: vec![],
        }],
    );
    let mut short = batch[..60].to_vec();
    assert_eq!(
        stamp_producer(&mut short, 1, 0, 0, false),
        Err(WriteError::NotABatch {
            len: 60,
            magic: Some(2)
        })
    );
    let mut legacy = batch.to_vec();
    legacy[16] = 1;
    assert_eq!(
        stamp_producer(&mut legacy, 1, 0, 0, false),
        Err(WriteError::NotABatch {
            len: batch.len(),
            magic: Some(1)
        })
    );
    assert_eq!(
        stamp_producer(&mut [], 1, 0, 0, false),
        Err(WriteError::NotABatch {
            len: 0,
            magic: None
        })
    );
}
