//! Sink tests: Parquet files written and read back with independent readers (the `parquet`
//! crate's Arrow reader, pyarrow when installed), rolling, partitioning, committed offsets,
//! crash recovery (including a writer process killed with SIGKILL), object stores, offset
//! markers, compaction and retention, stdout.
//!
//! Every test name contains `sink`, so `cargo test -p kingest sink` runs them all.

mod compact;
mod local;
mod markers;
mod object;
mod pyarrow;
mod recovery;
mod stdout;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, Float32Builder,
    Float64Builder, Int16Builder, Int32Builder, Int64Builder, Int8Builder, ListBuilder,
    StringBuilder, TimestampMicrosecondBuilder, TimestampMillisecondBuilder,
    TimestampNanosecondBuilder, UInt16Builder, UInt32Builder, UInt64Builder, UInt8Builder,
};
use arrow_array::{ArrayRef, RecordBatch, StructArray};
use arrow_buffer::NullBuffer;
use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use bytes::Bytes;
use futures_util::TryStreamExt;
use object_store::ObjectStore;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::metadata::ParquetMetaData;

use super::{OffsetRange, ParquetSink, ParquetSinkConfig, PartitionKey};

/// 2024-01-01 as days since the epoch.
pub(super) const DAY_2024_01_01: i32 = 19_723;

fn struct_fields() -> Fields {
    Fields::from(vec![
        Field::new("a", DataType::Int32, true),
        Field::new("b", DataType::Utf8, true),
    ])
}

/// Every Arrow type the decoders produce (see `schema/types.rs`), all nullable.
pub(super) fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("offset", DataType::Int64, false),
        Field::new("i8", DataType::Int8, true),
        Field::new("i16", DataType::Int16, true),
        Field::new("i32", DataType::Int32, true),
        Field::new("u8", DataType::UInt8, true),
        Field::new("u16", DataType::UInt16, true),
        Field::new("u32", DataType::UInt32, true),
        Field::new("u64", DataType::UInt64, true),
        Field::new("f32", DataType::Float32, true),
        Field::new("f64", DataType::Float64, true),
        Field::new("flag", DataType::Boolean, true),
        Field::new("text", DataType::Utf8, true),
        Field::new("blob", DataType::Binary, true),
        Field::new(
            "ts_ms",
            DataType::Timestamp(TimeUnit::Millisecond, None),
            true,
        ),
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ),
        Field::new(
            "ts_ns",
            DataType::Timestamp(TimeUnit::Nanosecond, Some("+05:30".into())),
            true,
        ),
        Field::new("date", DataType::Date32, true),
        Field::new("amount", DataType::Decimal128(18, 3), true),
        Field::new(
            "tags",
            DataType::List(Arc::new(Field::new("item", DataType::Int64, true))),
            true,
        ),
        Field::new("inner", DataType::Struct(struct_fields()), true),
    ]))
}

/// Rows for offsets `first..first + n`: each value derives from the offset, every 7th row is
/// null in every nullable column, strings are not ASCII. Row `o` falls on day
/// `DAY_2024_01_01 + (o / per_day) % 3`.
pub(super) fn batch(first: i64, n: usize, per_day: i64) -> RecordBatch {
    let offsets: Vec<i64> = (first..first + n as i64).collect();
    let null = |o: i64| o % 7 == 3;
    macro_rules! col {
        ($builder:expr, $f:expr) => {{
            let mut b = $builder;
            for &o in &offsets {
                if null(o) {
                    b.append_null();
                } else {
                    b.append_value($f(o));
                }
            }
            Arc::new(b.finish()) as ArrayRef
        }};
    }
    let day = |o: i64| DAY_2024_01_01 + ((o / per_day) % 3) as i32;
    let micros = |o: i64| i64::from(day(o)) * 86_400_000_000 + (o % 86_400) * 1_000_003;
    let mut tags = ListBuilder::new(Int64Builder::new());
    for &o in &offsets {
        if null(o) {
            tags.append_null();
        } else {
            for k in 0..(o % 3) {
                tags.values().append_value(o * 10 + k);
            }
            if o % 5 == 0 {
                tags.values().append_null();
            }
            tags.append(true);
        }
    }
    let inner_a = col!(Int32Builder::new(), |o: i64| (o * 3) as i32);
    let inner_b = col!(StringBuilder::new(), |o: i64| format!("ünïcode-{o}"));
    let inner_nulls = NullBuffer::from(offsets.iter().map(|&o| o % 11 != 5).collect::<Vec<_>>());
    let inner = StructArray::new(struct_fields(), vec![inner_a, inner_b], Some(inner_nulls));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(arrow_array::Int64Array::from(offsets.clone())),
        col!(Int8Builder::new(), |o: i64| (o % 256 - 128) as i8),
        col!(Int16Builder::new(), |o: i64| (o * 7 % 65_536 - 32_768)
            as i16),
        col!(Int32Builder::new(), |o: i64| (o * 1_000_003) as i32),
        col!(UInt8Builder::new(), |o: i64| (o % 256) as u8),
        col!(UInt16Builder::new(), |o: i64| (o % 65_536) as u16),
        col!(UInt32Builder::new(), |o: i64| (o as u32)
            .wrapping_mul(2_654_435_761)),
        col!(UInt64Builder::new(), |o: i64| u64::MAX - o as u64),
        col!(Float32Builder::new(), |o: i64| o as f32 / 4.0),
        col!(Float64Builder::new(), |o: i64| if o % 13 == 0 {
            f64::NEG_INFINITY
        } else {
            o as f64 * 1.5e-3
        }),
        col!(BooleanBuilder::new(), |o: i64| o % 2 == 0),
        col!(StringBuilder::new(), |o: i64| format!(
            "héllo wörld 日本語 🚀 \"{o}\"\n"
        )),
        col!(BinaryBuilder::new(), |o: i64| vec![
            0u8,
            0xff,
            (o % 256) as u8,
            b'"'
        ]),
        col!(TimestampMillisecondBuilder::new(), |o: i64| micros(o)
            / 1000),
        col!(
            TimestampMicrosecondBuilder::new().with_timezone("UTC"),
            micros
        ),
        col!(
            TimestampNanosecondBuilder::new().with_timezone("+05:30"),
            |o: i64| micros(o) * 1000 + 7
        ),
        col!(Date32Builder::new(), day),
        col!(
            Decimal128Builder::new()
                .with_precision_and_scale(18, 3)
                .unwrap(),
            |o: i64| i128::from(o) * 1_001 - 500
        ),
        Arc::new(tags.finish()),
        Arc::new(inner),
    ];
    RecordBatch::try_new(schema(), columns).unwrap()
}

pub(super) fn key(topic: &str, partition: i32) -> PartitionKey {
    PartitionKey::new(topic, partition)
}

pub(super) fn range(first: i64, next: i64) -> OffsetRange {
    OffsetRange::new(first, next)
}

pub(super) fn config(dir: &Path) -> ParquetSinkConfig {
    ParquetSinkConfig::new(dir.to_str().unwrap(), "test-group")
}

/// Reads a whole Parquet file with the `parquet` crate's Arrow reader.
pub(super) fn read_file(path: impl AsRef<Path>) -> RecordBatch {
    let file = File::open(path.as_ref()).unwrap();
    read_batches(ParquetRecordBatchReaderBuilder::try_new(file).unwrap())
}

/// Reads a whole Parquet file held in memory.
pub(super) fn read_bytes(bytes: Bytes) -> RecordBatch {
    read_batches(ParquetRecordBatchReaderBuilder::try_new(bytes).unwrap())
}

fn read_batches<T: parquet::file::reader::ChunkReader + 'static>(
    b: ParquetRecordBatchReaderBuilder<T>,
) -> RecordBatch {
    let schema = b.schema().clone();
    let batches: Vec<RecordBatch> = b.build().unwrap().map(Result::unwrap).collect();
    arrow_select::concat::concat_batches(&schema, &batches).unwrap()
}

/// The footer of a Parquet file.
pub(super) fn footer(path: impl AsRef<Path>) -> ParquetMetaData {
    let file = File::open(path.as_ref()).unwrap();
    parquet::file::metadata::ParquetMetaDataReader::new()
        .parse_and_finish(&file)
        .unwrap()
}

/// The `kingest.offsets` value of a footer, parsed as plain JSON (not with the sink's own
/// types, so a change of format shows here).
pub(super) fn offsets_json(md: &ParquetMetaData) -> serde_json::Value {
    let kv = md.file_metadata().key_value_metadata().unwrap();
    let v = kv
        .iter()
        .find(|kv| kv.key == "kingest.offsets")
        .unwrap()
        .value
        .clone()
        .unwrap();
    serde_json::from_str(&v).unwrap()
}

/// Asserts two batches hold the same rows, column by column, with the same field types.
pub(super) fn assert_same_rows(got: &RecordBatch, want: &RecordBatch) {
    assert_eq!(got.num_rows(), want.num_rows(), "row count");
    assert_eq!(got.schema().fields(), want.schema().fields(), "schema");
    for (i, field) in want.schema().fields().iter().enumerate() {
        assert_eq!(
            got.column(i).as_ref(),
            want.column(i).as_ref(),
            "column {}",
            field.name()
        );
    }
}

/// Concatenates batches of the test schema.
pub(super) fn concat(batches: &[RecordBatch]) -> RecordBatch {
    arrow_select::concat::concat_batches(&schema(), batches).unwrap()
}

/// Sorts a batch by its `offset` column (files of a partitioned commit each hold a subset).
pub(super) fn sort_by_offset(b: &RecordBatch) -> RecordBatch {
    use arrow_array::cast::AsArray;
    let offsets = b.column(0).as_primitive::<arrow_array::types::Int64Type>();
    let mut idx: Vec<u32> = (0..b.num_rows() as u32).collect();
    idx.sort_by_key(|&i| offsets.value(i as usize));
    arrow_select::take::take_record_batch(b, &arrow_array::UInt32Array::from(idx)).unwrap()
}

/// Every file under `dir`, recursively, relative and sorted.
pub(super) fn files_under(dir: &Path) -> Vec<String> {
    fn go(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let p: PathBuf = e.path();
            if p.is_dir() {
                go(root, &p, out);
            } else {
                out.push(p.strip_prefix(root).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    let mut out = Vec::new();
    go(dir, dir, &mut out);
    out.sort();
    out
}

/// A sink on `dir` (see [`config`]) for the test [`schema`], after `f` changed its settings.
pub(super) async fn open_with(dir: &Path, f: impl FnOnce(&mut ParquetSinkConfig)) -> ParquetSink {
    let mut c = config(dir);
    f(&mut c);
    ParquetSink::open(c, schema()).await.unwrap()
}

/// A sink on `dir` with the test settings.
pub(super) async fn open(dir: &Path) -> ParquetSink {
    open_with(dir, |_| {}).await
}

/// A sink on `dir` partitioned by day (`partition_by = "date"`), so that one commit spans
/// several files.
pub(super) async fn open_dated(dir: &Path) -> ParquetSink {
    open_with(dir, |c| c.partition_by = Some("date".into())).await
}

/// Renames a committed file back to its temporary name, as if the process died before the
/// rename.
pub(super) fn unrename(path: &str) -> String {
    let p = Path::new(path);
    let tmp = p.with_file_name(format!(".{}.tmp", p.file_name().unwrap().to_string_lossy()));
    std::fs::rename(p, &tmp).unwrap();
    tmp.display().to_string()
}

/// Every object in `store`, sorted.
pub(super) async fn objects(store: &dyn ObjectStore) -> Vec<String> {
    let mut v: Vec<String> = store
        .list(None)
        .map_ok(|m| m.location.to_string())
        .try_collect()
        .await
        .unwrap();
    v.sort();
    v
}
