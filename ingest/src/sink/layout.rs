//! Where the Parquet sink puts files: names, temporary names, and Hive-style `column=value/`
//! directories computed from a `partition_by` column.
//!
//! A committed file is `[{column}={value}/]{topic}-{partition}-{first:020}-{commit}.parquet`
//! under the sink's root. Every name carries the Kafka partition and a fresh random commit id,
//! so two processes of one consumer group never write the same name, and a file never holds rows
//! of two partitions. The first offset is zero-padded so a plain listing sorts files of a
//! partition in offset order. Nothing reads offsets from names: they come from the footer.
//!
//! An offset marker (a zero-row file recording offsets a flush covered without rows) has the
//! same kind of name, its first offset being the offset it records. It goes where a file
//! holding rows would: in the root, or with `partition_by` in the directory of null values
//! (`{column}=__HIVE_DEFAULT_PARTITION__/`), so every file stays at the depth and under the
//! one `column=` key that Hive-style readers expect of a partitioned dataset (DuckDB's
//! `hive_partitioning = true`, for one, refuses a file in the root beside `column=`
//! directories), and the scan for committed offsets, which walks the whole tree, finds it.
//!
//! In-progress local files are `.{name}.tmp` beside their final name (hidden: Spark, Trino and
//! pyarrow skip dot files; same directory: the rename cannot cross file systems). Multi-file
//! commits on object stores are staged under `_kingest_staging/` (skipped by the same readers
//! for its leading underscore).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Date64Type, Int16Type, Int32Type, Int64Type, Int8Type, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType, UInt16Type, UInt32Type,
    UInt64Type, UInt8Type,
};
use arrow_array::{Array, ArrayRef, RecordBatch, UInt32Array};
use arrow_schema::{DataType, Schema, TimeUnit};
use uuid::Uuid;

use super::{PartitionKey, Result, SinkError};

/// The object store folder (under the sink's prefix) holding files of multi-file commits
/// until every file of the commit is uploaded.
pub(crate) const STAGING_DIR: &str = "_kingest_staging";

/// What Hive (and pyarrow's `HivePartitioning`) call the directory of null values.
pub(crate) const NULL_PARTITION: &str = "__HIVE_DEFAULT_PARTITION__";

/// The final file name of a commit of `key` starting at `first`.
pub(crate) fn file_name(key: &PartitionKey, first: i64, commit: Uuid) -> String {
    format!(
        "{}-{}-{first:020}-{}.parquet",
        key.topic,
        key.partition,
        commit.simple()
    )
}

/// Joins a partition directory (possibly empty) and a file name into a root-relative path.
pub(crate) fn join_rel(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else {
        format!("{dir}/{name}")
    }
}

/// The temporary name a local file is written under before its rename.
pub(crate) fn tmp_name(name: &str) -> String {
    format!(".{name}.tmp")
}

/// The final name of a temporary name written by [`tmp_name`], or `None` for other names.
pub(crate) fn final_name_of_tmp(tmp: &str) -> Option<&str> {
    tmp.strip_prefix('.')?
        .strip_suffix(".tmp")
        .filter(|n| n.ends_with(".parquet"))
}

/// Percent-encodes a path segment the way Hive-partitioned readers decode it (pyarrow's
/// `segment_encoding="uri"`, Spark, Trino): everything but ASCII letters, digits, `-`, `_` and
/// `.` becomes `%XX` of its UTF-8 bytes. A leading `.` or `_` is encoded too, since readers
/// treat such directories as hidden.
/// The directory (relative to the sink's root) where offset markers go when the sink splits
/// files by `column`: the column's null-value directory, so every file stays one `column=`
/// level down and Hive-partitioned readers accept the dataset.
pub(crate) fn marker_subdir(column: &str) -> String {
    let mut dir = String::new();
    escape_segment(column, &mut dir);
    dir.push('=');
    dir.push_str(NULL_PARTITION);
    dir
}

pub(crate) fn escape_segment(s: &str, out: &mut String) {
    for (i, b) in s.bytes().enumerate() {
        let plain = b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.');
        let hidden = i == 0 && matches!(b, b'.' | b'_');
        if plain && !hidden {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

/// Days since 1970-01-01 as `YYYY-MM-DD` (proleptic Gregorian; Howard Hinnant's
/// `civil_from_days`, exact for every `i32` day).
pub(crate) fn format_day(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// How a `partition_by` column's values become directory names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Signed integers: decimal.
    Int,
    /// Unsigned integers: decimal.
    UInt,
    /// `true` / `false`.
    Bool,
    /// Strings: the value itself, escaped.
    Str,
    /// Dates and timestamps: the UTC day, `YYYY-MM-DD`.
    Day,
}

/// One row's partition value, borrowed from the column so grouping allocates per group, not
/// per row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Value<'a> {
    Null,
    Int(i64),
    UInt(u64),
    Bool(bool),
    Day(i64),
    Str(&'a str),
}

/// Splits batches into Hive-style `column=value` directories by one column.
///
/// Dates are written as `YYYY-MM-DD`; timestamps by their day in UTC whatever their time zone
/// (a fixed rule, so a file's directory never depends on the machine or on tz database
/// versions); nulls and empty strings go to `__HIVE_DEFAULT_PARTITION__`, as in Hive. The column
/// stays in the files too, so each file is self-contained.
#[derive(Debug, Clone)]
pub(crate) struct PartitionBy {
    index: usize,
    kind: Kind,
    /// `escape(column)=`, computed once.
    prefix: String,
}

impl PartitionBy {
    /// Checks that `column` is in `schema` with a type that can name a directory.
    pub(crate) fn new(schema: &Schema, column: &str) -> Result<Self> {
        let err = |reason: String| SinkError::PartitionColumn {
            column: column.to_owned(),
            reason,
        };
        let index = schema
            .index_of(column)
            .map_err(|_| err(format!("not in the schema ({})", field_names(schema))))?;
        let kind = match schema.field(index).data_type() {
            DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => Kind::Int,
            DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => Kind::UInt,
            DataType::Boolean => Kind::Bool,
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Kind::Str,
            DataType::Date32 | DataType::Date64 | DataType::Timestamp(_, _) => Kind::Day,
            other => {
                return Err(err(format!(
                    "type {other} cannot name a directory (use an integer, boolean, string, \
                     date or timestamp column)"
                )))
            }
        };
        let mut prefix = String::new();
        escape_segment(column, &mut prefix);
        prefix.push('=');
        Ok(Self {
            index,
            kind,
            prefix,
        })
    }

    /// The directory of null values, where offset markers go (they hold no rows, so no
    /// value to place them by).
    pub(crate) fn marker_dir(&self) -> String {
        self.dir(Value::Null)
    }

    fn dir(&self, value: Value<'_>) -> String {
        let mut dir = self.prefix.clone();
        match value {
            Value::Null => dir.push_str(NULL_PARTITION),
            Value::Int(v) => dir.push_str(&v.to_string()),
            Value::UInt(v) => dir.push_str(&v.to_string()),
            Value::Bool(v) => dir.push_str(if v { "true" } else { "false" }),
            Value::Day(d) => dir.push_str(&format_day(d)),
            Value::Str(s) => escape_segment(s, &mut dir),
        }
        dir
    }

    /// Splits `batch` by directory, keeping row order within each part. A batch whose rows
    /// all share one value (the usual case for a date) is returned whole, without copying.
    pub(crate) fn split(
        &self,
        key: &PartitionKey,
        batch: &RecordBatch,
    ) -> Result<Vec<(String, RecordBatch)>> {
        self.split_by(key, batch, |v| self.dir(v))
    }

    /// [`PartitionBy::split`] with each part's value as text instead of its directory: the
    /// integer, `true`/`false`, the string, or the `YYYY-MM-DD` day; `None` for nulls (and
    /// empty strings, which Hive and Delta writers store as null partitions).
    pub(crate) fn split_values(
        &self,
        key: &PartitionKey,
        batch: &RecordBatch,
    ) -> Result<Vec<(Option<String>, RecordBatch)>> {
        self.split_by(key, batch, |v| match v {
            Value::Null => None,
            Value::Int(v) => Some(v.to_string()),
            Value::UInt(v) => Some(v.to_string()),
            Value::Bool(v) => Some(v.to_string()),
            Value::Day(d) => Some(format_day(d)),
            Value::Str(s) => Some(s.to_owned()),
        })
    }

    /// The column this splits by (its index in the schema).
    pub(crate) fn index(&self) -> usize {
        self.index
    }

    fn split_by<K>(
        &self,
        key: &PartitionKey,
        batch: &RecordBatch,
        name: impl Fn(Value<'_>) -> K,
    ) -> Result<Vec<(K, RecordBatch)>> {
        let column = batch.column(self.index);
        let values = self.values(column);
        let Some(&first) = values.first() else {
            return Ok(Vec::new());
        };
        if values.iter().all(|v| *v == first) {
            return Ok(vec![(name(first), batch.clone())]);
        }
        let mut groups: BTreeMap<Value<'_>, Vec<u32>> = BTreeMap::new();
        for (row, value) in values.iter().enumerate() {
            // A RecordBatch row index fits u32: Arrow offsets are at most i32/i64 but no
            // decoder produces batches of 4 billion rows.
            groups.entry(*value).or_default().push(row as u32);
        }
        let mut parts = Vec::with_capacity(groups.len());
        for (value, rows) in groups {
            let indices = UInt32Array::from(rows);
            let part =
                arrow_select::take::take_record_batch(batch, &indices).map_err(|source| {
                    SinkError::Arrow {
                        context: "splitting a batch by partition_by",
                        partition: key.clone(),
                        source,
                    }
                })?;
            parts.push((name(value), part));
        }
        Ok(parts)
    }

    fn values<'a>(&self, column: &'a ArrayRef) -> Vec<Value<'a>> {
        fn prim<'a, T, F>(column: &'a ArrayRef, f: F) -> Vec<Value<'a>>
        where
            T: arrow_array::ArrowPrimitiveType,
            F: Fn(T::Native) -> Value<'a>,
        {
            column
                .as_primitive::<T>()
                .iter()
                .map(|v| v.map_or(Value::Null, &f))
                .collect()
        }
        // Hive has no directory for the empty string: it shares the null directory, so it
        // groups as null here and the two never make two files with one name.
        fn strs<'a>(it: impl Iterator<Item = Option<&'a str>>) -> Vec<Value<'a>> {
            it.map(|v| match v {
                None | Some("") => Value::Null,
                Some(s) => Value::Str(s),
            })
            .collect()
        }
        const DAY_S: i64 = 86_400;
        match (self.kind, column.data_type()) {
            (_, DataType::Int8) => prim::<Int8Type, _>(column, |v| Value::Int(v.into())),
            (_, DataType::Int16) => prim::<Int16Type, _>(column, |v| Value::Int(v.into())),
            (_, DataType::Int32) => prim::<Int32Type, _>(column, |v| Value::Int(v.into())),
            (_, DataType::Int64) => prim::<Int64Type, _>(column, Value::Int),
            (_, DataType::UInt8) => prim::<UInt8Type, _>(column, |v| Value::UInt(v.into())),
            (_, DataType::UInt16) => prim::<UInt16Type, _>(column, |v| Value::UInt(v.into())),
            (_, DataType::UInt32) => prim::<UInt32Type, _>(column, |v| Value::UInt(v.into())),
            (_, DataType::UInt64) => prim::<UInt64Type, _>(column, Value::UInt),
            (_, DataType::Boolean) => column
                .as_boolean()
                .iter()
                .map(|v| v.map_or(Value::Null, Value::Bool))
                .collect(),
            (_, DataType::Utf8) => strs(column.as_string::<i32>().iter()),
            (_, DataType::LargeUtf8) => strs(column.as_string::<i64>().iter()),
            (_, DataType::Utf8View) => strs(column.as_string_view().iter()),
            (_, DataType::Date32) => prim::<Date32Type, _>(column, |d| Value::Day(d.into())),
            (_, DataType::Date64) => {
                prim::<Date64Type, _>(column, |ms| Value::Day(ms.div_euclid(DAY_S * 1000)))
            }
            (_, DataType::Timestamp(unit, _)) => {
                let per_day = match unit {
                    TimeUnit::Second => DAY_S,
                    TimeUnit::Millisecond => DAY_S * 1_000,
                    TimeUnit::Microsecond => DAY_S * 1_000_000,
                    TimeUnit::Nanosecond => DAY_S * 1_000_000_000,
                };
                let day = move |v: i64| Value::Day(v.div_euclid(per_day));
                match unit {
                    TimeUnit::Second => prim::<TimestampSecondType, _>(column, day),
                    TimeUnit::Millisecond => prim::<TimestampMillisecondType, _>(column, day),
                    TimeUnit::Microsecond => prim::<TimestampMicrosecondType, _>(column, day),
                    TimeUnit::Nanosecond => prim::<TimestampNanosecondType, _>(column, day),
                }
            }
            // `new` accepted only the types above, and batches are checked against the schema.
            _ => vec![Value::Null; column.len()],
        }
    }
}

fn field_names(schema: &Schema) -> String {
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    format!("columns: {}", names.join(", "))
}

/// The in-memory size of a batch's rows, counting only the slice the batch covers (an
/// engine's batch may be a slice of a larger buffer): the roll threshold's "uncompressed
/// bytes".
pub(crate) fn batch_bytes(batch: &RecordBatch) -> u64 {
    batch
        .columns()
        .iter()
        .map(|c: &Arc<dyn Array>| {
            c.to_data()
                .get_slice_memory_size()
                .unwrap_or_else(|_| c.get_array_memory_size()) as u64
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sink_layout_days_format_as_civil_dates() {
        assert_eq!(format_day(0), "1970-01-01");
        assert_eq!(format_day(19_724), "2024-01-02");
        assert_eq!(format_day(-1), "1969-12-31");
        assert_eq!(format_day(11_016), "2000-02-29");
        assert_eq!(format_day(-719_468), "0000-03-01");
    }

    #[test]
    fn sink_layout_segments_are_uri_escaped() {
        let mut s = String::new();
        escape_segment("a b/c=d%é", &mut s);
        assert_eq!(s, "a%20b%2Fc%3Dd%25%C3%A9");
        let mut s = String::new();
        escape_segment("_x.y-z", &mut s);
        assert_eq!(s, "%5Fx.y-z");
    }

    #[test]
    fn sink_layout_tmp_names_round_trip() {
        let key = PartitionKey::new("t.x_y-z", 7);
        let name = file_name(&key, 42, Uuid::nil());
        assert_eq!(
            name,
            "t.x_y-z-7-00000000000000000042-00000000000000000000000000000000.parquet"
        );
        assert_eq!(final_name_of_tmp(&tmp_name(&name)), Some(name.as_str()));
        assert_eq!(final_name_of_tmp(".notes.tmp"), None);
        assert_eq!(final_name_of_tmp(&name), None);
    }
}
