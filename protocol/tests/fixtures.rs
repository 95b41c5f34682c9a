//! Golden fixtures written by independent clients, read back by our reader.
//!
//! Every `*.bin` under `tests/fixtures/` is a record set some other implementation wrote:
//! librdkafka through a nisshi broker (every codec), snappy-java (the Java client's xerial
//! snappy), and kafka-python (legacy magic 0/1 message sets, compressed wrappers, magic 2). Its
//! `*.json` lists the records the producer sent, with the offsets and timestamps a consumer must
//! see. This test decodes each record set with `RecordSet` -> `RawBatch::decode` -> `records()`
//! and demands exactly those records, in order: offsets, timestamps, keys, values, headers.
//!
//! The expected fixtures are listed here, not discovered, so a missing file fails loudly instead
//! of shrinking the test; and a file nobody listed fails too, so a new fixture cannot go
//! unchecked. `README.md` beside the fixtures says where each one comes from and how
//! `scripts/gen-fixtures.sh` regenerates them.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use kingest_protocol::record::{
    Compression, DecodeOptions, RecordSet, TimestampType, BATCH_HEADER_SIZE,
};
use serde::Deserialize;

/// A fixture's JSON (written by `tests/src/fixtures/records.rs` and
/// `tests/fixtures/gen/kafka_python_fixtures.py`).
#[derive(Debug, Deserialize)]
struct Fixture {
    writer: String,
    batches: Vec<BatchJson>,
    records: Vec<RecordJson>,
}

/// What a batch must look like. Legacy fixtures give only magic, codec and the message's offset
/// field (for a compressed wrapper, its last inner offset).
#[derive(Debug, Deserialize)]
struct BatchJson {
    magic: i8,
    codec: String,
    base_offset: i64,
    record_count: Option<i32>,
    producer_id: Option<i64>,
    producer_epoch: Option<i16>,
    base_sequence: Option<i32>,
}

#[derive(Debug, Deserialize)]
struct RecordJson {
    offset: i64,
    timestamp: i64,
    key: Option<Data>,
    value: Option<Data>,
    headers: Vec<HeaderJson>,
}

#[derive(Debug, Deserialize)]
struct HeaderJson {
    key: String,
    value: Option<String>,
}

/// Hex bytes, or (for the ~100 KiB values, which as hex would bloat the JSON) a hex unit
/// repeated.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Data {
    Hex(String),
    Repeat { repeat: String, times: usize },
}

impl Data {
    fn bytes(&self) -> Vec<u8> {
        match self {
            Data::Hex(h) => hex::decode(h).expect("bad hex in fixture JSON"),
            Data::Repeat { repeat, times } => hex::decode(repeat)
                .expect("bad hex in fixture JSON")
                .repeat(*times),
        }
    }
}

/// How a snappy fixture's payload must be framed: the xerial stream the Java client (and
/// kafka-python) write, or one raw snappy block (librdkafka).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Snappy {
    Xerial,
    Raw,
}

const XERIAL_MAGIC: &[u8] = b"\x82SNAPPY\x00";

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn read(name: &str, ext: &str) -> Vec<u8> {
    let path = dir().join(format!("{name}.{ext}"));
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "fixture {} is missing ({e}): regenerate with scripts/gen-fixtures.sh \
             (see protocol/tests/fixtures/README.md)",
            path.display()
        )
    })
}

/// Compares two byte strings without printing 100 KiB when they differ.
fn same_bytes(what: &str, got: Option<&[u8]>, want: Option<&[u8]>) {
    match (got, want) {
        (Some(g), Some(w)) if g != w => {
            let at = g
                .iter()
                .zip(w)
                .position(|(a, b)| a != b)
                .unwrap_or(g.len().min(w.len()));
            panic!(
                "{what}: {} bytes, expected {}; first difference at byte {at}: got {:02x?}, expected {:02x?}",
                g.len(),
                w.len(),
                &g[at..g.len().min(at + 16)],
                &w[at..w.len().min(at + 16)],
            );
        }
        (g, w) if g.is_some() != w.is_some() => {
            panic!(
                "{what}: got {:?}, expected {:?}",
                g.map(hex::encode),
                w.map(hex::encode)
            )
        }
        _ => {}
    }
}

/// Decodes fixture `name` and checks it against its JSON. `magic` and `codec` are what every
/// batch must carry (stated here, not read from the JSON, so a regenerated fixture that came out
/// with another codec fails); `snappy` the framing a snappy payload must have.
fn check(name: &str, magic: i8, codec: Compression, snappy: Option<Snappy>) {
    let bytes = Bytes::from(read(name, "bin"));
    let json = read(name, "json");
    let fixture: Fixture =
        serde_json::from_slice(&json).unwrap_or_else(|e| panic!("{name}.json does not parse: {e}"));
    assert!(
        !fixture.records.is_empty(),
        "{name}: the JSON lists no records"
    );
    let opts = DecodeOptions::default();
    assert!(opts.verify_crc, "fixtures must be read with CRC checks on");

    let mut set = RecordSet::new(bytes.clone());
    let mut expected = fixture.records.iter().enumerate();
    let mut batch_index = 0;
    for raw in set.by_ref() {
        let raw = raw.unwrap_or_else(|e| panic!("{name}: batch {batch_index}: {e}"));
        let ctx = format!("{name} ({}): batch {batch_index}", fixture.writer);
        let header = *raw.header();
        let want = fixture
            .batches
            .get(batch_index)
            .unwrap_or_else(|| panic!("{ctx}: more batches than the JSON lists"));
        assert_eq!(header.magic, magic, "{ctx}: magic");
        assert_eq!(want.magic, magic, "{ctx}: the JSON's magic");
        assert_eq!(
            header.compression(),
            Ok(codec),
            "{ctx}: codec in the attributes"
        );
        assert_eq!(want.codec, codec.name(), "{ctx}: the JSON's codec");
        assert_eq!(header.base_offset, want.base_offset, "{ctx}: base offset");
        if let Some(n) = want.record_count {
            assert_eq!(header.record_count, n, "{ctx}: record count");
        }
        if let Some(id) = want.producer_id {
            assert_eq!(header.producer_id, id, "{ctx}: producer id");
        }
        if let Some(epoch) = want.producer_epoch {
            assert_eq!(header.producer_epoch, epoch, "{ctx}: producer epoch");
        }
        if let Some(seq) = want.base_sequence {
            assert_eq!(header.base_sequence, seq, "{ctx}: base sequence");
        }
        if codec == Compression::Snappy && magic == 2 {
            let payload = &raw.bytes()[BATCH_HEADER_SIZE..];
            let xerial = payload.starts_with(XERIAL_MAGIC);
            assert_eq!(
                snappy == Some(Snappy::Xerial),
                xerial,
                "{ctx}: snappy framing, expected {snappy:?}"
            );
        }

        let batch = raw
            .decode(&opts)
            .unwrap_or_else(|e| panic!("{ctx}: decode: {e}"));
        let mut last_offset = None;
        let mut count = 0;
        for record in batch.records() {
            let record = record.unwrap_or_else(|e| panic!("{ctx}: record {count}: {e}"));
            let (i, want) = expected
                .next()
                .unwrap_or_else(|| panic!("{ctx}: more records than the JSON lists"));
            let ctx = format!("{ctx}: record {i} (offset {})", want.offset);
            assert_eq!(record.offset, want.offset, "{ctx}: offset");
            assert_eq!(record.timestamp, want.timestamp, "{ctx}: timestamp");
            let key = want.key.as_ref().map(Data::bytes);
            let value = want.value.as_ref().map(Data::bytes);
            same_bytes(&format!("{ctx}: key"), record.key, key.as_deref());
            same_bytes(&format!("{ctx}: value"), record.value, value.as_deref());
            let headers: Vec<_> = record.headers.iter().collect();
            assert_eq!(headers.len(), want.headers.len(), "{ctx}: header count");
            for (j, (h, w)) in headers.iter().zip(&want.headers).enumerate() {
                let wkey = hex::decode(&w.key).unwrap();
                let wvalue = w.value.as_ref().map(|v| hex::decode(v).unwrap());
                same_bytes(&format!("{ctx}: header {j} name"), Some(h.key), Some(&wkey));
                same_bytes(
                    &format!("{ctx}: header {j} value"),
                    h.value,
                    wvalue.as_deref(),
                );
            }
            last_offset = Some(record.offset);
            count += 1;
        }
        assert!(count > 0, "{ctx}: no records");
        // Where a consumer continues must be right after the batch's last record, in every
        // format (a legacy wrapper's offset field is its last record's).
        assert_eq!(
            Some(header.next_offset() - 1),
            last_offset,
            "{ctx}: next offset"
        );
        batch_index += 1;
    }
    assert!(
        set.incomplete().is_none(),
        "{name}: cut-off batch {:?}",
        set.incomplete()
    );
    assert_eq!(batch_index, fixture.batches.len(), "{name}: batch count");
    let left = expected.count();
    assert_eq!(left, 0, "{name}: {left} records in the JSON were not read");
}

/// Every fixture: file stem, magic, codec, snappy framing.
const FIXTURES: &[(&str, i8, Compression, Option<Snappy>)] = &[
    ("librdkafka-none", 2, Compression::None, None),
    ("librdkafka-gzip", 2, Compression::Gzip, None),
    (
        "librdkafka-snappy",
        2,
        Compression::Snappy,
        Some(Snappy::Raw),
    ),
    ("librdkafka-lz4", 2, Compression::Lz4, None),
    ("librdkafka-zstd", 2, Compression::Zstd, None),
    (
        "java-xerial-snappy",
        2,
        Compression::Snappy,
        Some(Snappy::Xerial),
    ),
    ("kafka-python-v0-none", 0, Compression::None, None),
    ("kafka-python-v0-gzip", 0, Compression::Gzip, None),
    (
        "kafka-python-v0-snappy",
        0,
        Compression::Snappy,
        Some(Snappy::Xerial),
    ),
    ("kafka-python-v0-lz4", 0, Compression::Lz4, None),
    ("kafka-python-v1-none", 1, Compression::None, None),
    ("kafka-python-v1-gzip", 1, Compression::Gzip, None),
    (
        "kafka-python-v1-snappy",
        1,
        Compression::Snappy,
        Some(Snappy::Xerial),
    ),
    ("kafka-python-v1-lz4", 1, Compression::Lz4, None),
    (
        "kafka-python-v1-gzip-logappendtime",
        1,
        Compression::Gzip,
        None,
    ),
    (
        "kafka-python-v2-snappy",
        2,
        Compression::Snappy,
        Some(Snappy::Xerial),
    ),
    ("kafka-python-v2-gzip", 2, Compression::Gzip, None),
    ("kafka-python-v2-lz4", 2, Compression::Lz4, None),
];

fn check_listed(name: &str) {
    let &(_, magic, codec, snappy) = FIXTURES
        .iter()
        .find(|f| f.0 == name)
        .unwrap_or_else(|| panic!("{name} is not in FIXTURES"));
    check(name, magic, codec, snappy);
}

macro_rules! fixture_tests {
    ($($test:ident => $name:literal,)*) => {
        $(
            #[test]
            fn $test() {
                check_listed($name);
            }
        )*

        #[test]
        fn every_fixture_has_a_test() {
            let tested = [$($name),*];
            for (name, ..) in FIXTURES {
                assert!(tested.contains(name), "{name} has no test");
            }
        }
    };
}

fixture_tests! {
    librdkafka_none => "librdkafka-none",
    librdkafka_gzip => "librdkafka-gzip",
    librdkafka_snappy => "librdkafka-snappy",
    librdkafka_lz4 => "librdkafka-lz4",
    librdkafka_zstd => "librdkafka-zstd",
    java_xerial_snappy => "java-xerial-snappy",
    kafka_python_v0_none => "kafka-python-v0-none",
    kafka_python_v0_gzip => "kafka-python-v0-gzip",
    kafka_python_v0_snappy => "kafka-python-v0-snappy",
    kafka_python_v0_lz4 => "kafka-python-v0-lz4",
    kafka_python_v1_none => "kafka-python-v1-none",
    kafka_python_v1_gzip => "kafka-python-v1-gzip",
    kafka_python_v1_snappy => "kafka-python-v1-snappy",
    kafka_python_v1_lz4 => "kafka-python-v1-lz4",
    kafka_python_v1_gzip_logappendtime => "kafka-python-v1-gzip-logappendtime",
    kafka_python_v2_snappy => "kafka-python-v2-snappy",
    kafka_python_v2_gzip => "kafka-python-v2-gzip",
    kafka_python_v2_lz4 => "kafka-python-v2-lz4",
}

/// The log-append-time fixture must read the broker's time for every record, whatever the
/// inner messages say.
#[test]
fn log_append_time_wrapper_is_recognised() {
    let bytes = Bytes::from(read("kafka-python-v1-gzip-logappendtime", "bin"));
    for raw in RecordSet::new(bytes) {
        assert_eq!(
            raw.unwrap().header().timestamp_type(),
            TimestampType::LogAppendTime
        );
    }
}

/// Each `.bin` in the folder is a listed fixture, and has its `.json`.
#[test]
fn no_unlisted_fixtures() {
    let entries = std::fs::read_dir(dir()).expect("protocol/tests/fixtures is missing");
    for entry in entries {
        let path = entry.unwrap().path();
        let ext = path.extension().and_then(|e| e.to_str());
        if !matches!(ext, Some("bin" | "json")) {
            continue;
        }
        let stem = path.file_stem().unwrap().to_str().unwrap();
        assert!(
            FIXTURES.iter().any(|f| f.0 == stem),
            "{} is not listed in FIXTURES (tests/fixtures.rs)",
            path.display()
        );
    }
}
