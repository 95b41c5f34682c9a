//! Parquet output read back with the parquet crate's own Arrow reader (not kingest's sink)
//! into plain values (or, with [`rows_by_offset`], into whatever a test keeps of a row), and
//! the exactly-once check over files' footer offsets and rows.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Decimal128Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type,
    Int8Type, TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use arrow_array::{Array, ArrayRef, Int32Array, Int64Array, RecordBatch};
use arrow_schema::{DataType, SchemaRef, TimeUnit};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::reader::{FileReader, SerializedFileReader};

/// One value read back from Parquet.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// NULL.
    Null,
    /// Any signed integer type.
    Int(i64),
    /// Any unsigned integer type.
    UInt(u64),
    /// float32 (widened exactly) or float64.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// A string.
    Str(String),
    /// Binary.
    Bytes(Vec<u8>),
    /// A date, days since the epoch.
    Date(i32),
    /// A timestamp in the column's unit (the unit and zone are in the schema).
    Ts(i64),
    /// A decimal's unscaled value (precision and scale are in the schema).
    Dec(i128),
    /// A list.
    List(Vec<Cell>),
    /// A struct's fields, by name.
    Struct(Vec<(String, Cell)>),
}

impl Cell {
    /// A string cell.
    pub fn s(text: &str) -> Cell {
        Cell::Str(text.to_owned())
    }
}

/// The value at `i` of an Arrow array of the types kingest writes.
pub fn cell(array: &ArrayRef, i: usize) -> Cell {
    if array.is_null(i) {
        return Cell::Null;
    }
    match array.data_type() {
        DataType::Int8 => Cell::Int(array.as_primitive::<Int8Type>().value(i).into()),
        DataType::Int16 => Cell::Int(array.as_primitive::<Int16Type>().value(i).into()),
        DataType::Int32 => Cell::Int(array.as_primitive::<Int32Type>().value(i).into()),
        DataType::Int64 => Cell::Int(array.as_primitive::<Int64Type>().value(i)),
        DataType::UInt8 => Cell::UInt(array.as_primitive::<UInt8Type>().value(i).into()),
        DataType::UInt16 => Cell::UInt(array.as_primitive::<UInt16Type>().value(i).into()),
        DataType::UInt32 => Cell::UInt(array.as_primitive::<UInt32Type>().value(i).into()),
        DataType::UInt64 => Cell::UInt(array.as_primitive::<UInt64Type>().value(i)),
        DataType::Float32 => Cell::Float(array.as_primitive::<Float32Type>().value(i).into()),
        DataType::Float64 => Cell::Float(array.as_primitive::<Float64Type>().value(i)),
        DataType::Boolean => Cell::Bool(array.as_boolean().value(i)),
        DataType::Utf8 => Cell::Str(array.as_string::<i32>().value(i).to_owned()),
        DataType::LargeUtf8 => Cell::Str(array.as_string::<i64>().value(i).to_owned()),
        DataType::Binary => Cell::Bytes(array.as_binary::<i32>().value(i).to_vec()),
        DataType::LargeBinary => Cell::Bytes(array.as_binary::<i64>().value(i).to_vec()),
        DataType::Date32 => Cell::Date(array.as_primitive::<Date32Type>().value(i)),
        DataType::Timestamp(TimeUnit::Second, _) => {
            Cell::Ts(array.as_primitive::<TimestampSecondType>().value(i))
        }
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            Cell::Ts(array.as_primitive::<TimestampMillisecondType>().value(i))
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            Cell::Ts(array.as_primitive::<TimestampMicrosecondType>().value(i))
        }
        DataType::Timestamp(TimeUnit::Nanosecond, _) => {
            Cell::Ts(array.as_primitive::<TimestampNanosecondType>().value(i))
        }
        DataType::Decimal128(_, _) => Cell::Dec(array.as_primitive::<Decimal128Type>().value(i)),
        DataType::List(_) => {
            let items = array.as_list::<i32>().value(i);
            Cell::List((0..items.len()).map(|j| cell(&items, j)).collect())
        }
        DataType::Struct(fields) => {
            let s = array.as_struct();
            Cell::Struct(
                fields
                    .iter()
                    .zip(s.columns())
                    .map(|(f, c)| (f.name().clone(), cell(c, i)))
                    .collect(),
            )
        }
        other => panic!("no test reading for {other:?}"),
    }
}

/// The committed Parquet files under `dir` (recursively; hidden in-progress files excluded),
/// sorted.
pub fn parquet_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    walk(dir, &mut |p| {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.ends_with(".parquet") && !name.starts_with('.') {
            out.push(p.to_path_buf());
        }
    });
    out.sort();
    out
}

/// The Parquet files of the dataset under `dir`, sorted: like [`parquet_files`], leaving out
/// everything whose name or directory's name starts with `.` or `_` (such as the files
/// `kingest reset-offsets` sets aside in `_kingest_reset/`), as readers of a dataset do.
pub fn dataset_files(dir: &Path) -> Vec<PathBuf> {
    parquet_files(dir)
        .into_iter()
        .filter(|p| {
            !p.strip_prefix(dir)
                .expect("under the dataset")
                .components()
                .any(|c| c.as_os_str().to_string_lossy().starts_with(['.', '_']))
        })
        .collect()
}

/// Every file under `dir` whose name starts with `.` or ends with `.tmp`: what a clean stop
/// must not leave behind.
pub fn temporary_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    walk(dir, &mut |p| {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with('.') || name.ends_with(".tmp") {
            out.push(p.to_path_buf());
        }
    });
    out
}

/// Calls `f` with every file under `dir`, recursively.
pub(crate) fn walk(dir: &Path, f: &mut dyn FnMut(&Path)) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, f);
        } else {
            f(&p);
        }
    }
}

/// A Parquet file read back: its Arrow schema, its rows by column name, and the
/// `kingest.offsets` footer entry (topic → partition → `[first, next)`).
#[derive(Debug, Clone)]
pub struct FileContents {
    /// The file.
    pub path: PathBuf,
    /// Its Arrow schema.
    pub schema: SchemaRef,
    /// Its rows, each column name → value.
    pub rows: Vec<BTreeMap<String, Cell>>,
    /// The offsets the footer says the file covers, `(topic, partition)` → `[first, next)`.
    pub offsets: BTreeMap<(String, i32), (i64, i64)>,
}

/// Reads one Parquet file with the parquet crate's Arrow reader.
pub fn read_file(path: &Path) -> FileContents {
    let open = || std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let builder = ParquetRecordBatchReaderBuilder::try_new(open())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let schema = builder.schema().clone();
    let mut rows = Vec::new();
    for batch in builder.build().expect("parquet reader") {
        let b = batch.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for i in 0..b.num_rows() {
            rows.push(
                b.schema()
                    .fields()
                    .iter()
                    .zip(b.columns())
                    .map(|(f, c)| (f.name().clone(), cell(c, i)))
                    .collect(),
            );
        }
    }
    let footer = SerializedFileReader::new(open()).expect("parquet footer");
    let mut offsets = BTreeMap::new();
    let meta = footer
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|kv| kv.key == "kingest.offsets"))
        .and_then(|kv| kv.value.clone())
        .unwrap_or_else(|| panic!("{} has no kingest.offsets footer entry", path.display()));
    let meta: serde_json::Value = serde_json::from_str(&meta).expect("kingest.offsets is JSON");
    for (topic, parts) in meta["offsets"].as_object().expect("offsets object") {
        for (p, range) in parts.as_object().expect("partitions object") {
            let range = range.as_array().expect("[first, next]");
            offsets.insert(
                (topic.clone(), p.parse().expect("partition number")),
                (
                    range[0].as_i64().expect("first"),
                    range[1].as_i64().expect("next"),
                ),
            );
        }
    }
    FileContents {
        path: path.to_path_buf(),
        schema,
        rows,
        offsets,
    }
}

/// The column `name` of `batch` as the Arrow array type `A`; panics when it is missing or of
/// another type, so a reader that asks for `Int64Array` also checks the column's type.
pub fn column<'a, A: Array + 'static>(batch: &'a RecordBatch, name: &str) -> &'a A {
    let index = batch
        .schema()
        .index_of(name)
        .unwrap_or_else(|_| panic!("no column {name} in {:?}", batch.schema()));
    batch
        .column(index)
        .as_any()
        .downcast_ref::<A>()
        .unwrap_or_else(|| {
            panic!(
                "column {name} is {}, not {}",
                batch.column(index).data_type(),
                std::any::type_name::<A>()
            )
        })
}

/// The rows of the Parquet files `paths` (read with the parquet crate's Arrow reader), each
/// made by `row(batch, i)` and keyed by its `partition` (int32) and `offset` (int64) columns;
/// panics on a (partition, offset) written twice.
pub fn rows_by_offset<T>(
    paths: &[PathBuf],
    mut row: impl FnMut(&RecordBatch, usize) -> T,
) -> BTreeMap<(i32, i64), T> {
    let mut rows = BTreeMap::new();
    for path in paths {
        let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .and_then(|b| b.build())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for batch in reader {
            let b = batch.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let (p, o) = (
                column::<Int32Array>(&b, "partition"),
                column::<Int64Array>(&b, "offset"),
            );
            for i in 0..b.num_rows() {
                let previous = rows.insert((p.value(i), o.value(i)), row(&b, i));
                assert!(
                    previous.is_none(),
                    "({}, {}) written twice",
                    p.value(i),
                    o.value(i)
                );
            }
        }
    }
    rows
}

/// Reads every committed Parquet file under `dir`.
pub fn read_dir(dir: &Path) -> Vec<FileContents> {
    parquet_files(dir).iter().map(|p| read_file(p)).collect()
}

/// Checks that the files' footer ranges tile each partition's offsets from `start` to
/// `end[partition]` with no gap and no overlap, that each file's `offset_column` values lie in
/// its range, and that no (partition, offset) appears twice; returns the rows keyed by
/// (partition, offset). `partition_column` and `offset_column` name the metadata columns.
pub fn exactly_once(
    files: &[FileContents],
    topic: &str,
    end: &BTreeMap<i32, i64>,
    partition_column: &str,
    offset_column: &str,
) -> BTreeMap<(i32, i64), BTreeMap<String, Cell>> {
    let mut ranges: BTreeMap<i32, Vec<(i64, i64, &Path)>> = BTreeMap::new();
    let mut rows = BTreeMap::new();
    for f in files {
        for ((t, p), (first, next)) in &f.offsets {
            assert_eq!(t, topic, "{}: unexpected topic", f.path.display());
            ranges
                .entry(*p)
                .or_default()
                .push((*first, *next, f.path.as_path()));
        }
        for row in &f.rows {
            let (Some(Cell::Int(p)), Some(Cell::Int(o))) =
                (row.get(partition_column), row.get(offset_column))
            else {
                panic!(
                    "{}: a row without partition/offset: {row:?}",
                    f.path.display()
                );
            };
            let p = *p as i32;
            let (first, next) = f.offsets[&(topic.to_owned(), p)];
            assert!(
                (first..next).contains(o),
                "{}: offset {o} outside the file's range [{first}, {next})",
                f.path.display()
            );
            if let Some(previous) = rows.insert((p, *o), row.clone()) {
                panic!(
                    "partition {p} offset {o} written twice (again in {}): {previous:?}",
                    f.path.display()
                );
            }
        }
    }
    for (p, want_end) in end {
        let mut list = ranges.remove(p).unwrap_or_default();
        list.sort();
        let mut at = 0;
        for (first, next, path) in &list {
            assert_eq!(
                *first,
                at,
                "partition {p}: {} covers [{first}, {next}) but the previous file ended at {at} \
                 (a gap or an overlap)",
                path.display()
            );
            at = *next;
        }
        assert_eq!(
            at, *want_end,
            "partition {p}: files end at {at}, not at {want_end}"
        );
    }
    assert!(
        ranges.is_empty(),
        "files for unexpected partitions: {ranges:?}"
    );
    rows
}
