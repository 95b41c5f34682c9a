//! An `add` action's `stats`: the file's row count and, per column, the minimum, maximum and
//! null count that readers skip files with (`{"numRecords":..,"minValues":{..},
//! "maxValues":{..},"nullCount":{..}}`).
//!
//! They are taken from the statistics the Parquet writer computed anyway (the footer's column
//! chunk statistics, combined over row groups), so no second pass over the rows is made.
//! Bounded as Spark bounds them, which keeps the log and its checkpoints small
//! (kafka-delta-ingest#187 is a table whose checkpoints grew to 500 MB, ten times Spark's for
//! the same files): only the first 32 leaf columns (`delta.dataSkippingNumIndexedCols`, the
//! table property, when set), strings cut to 32 characters (a cut maximum ends in U+10FFFF so it
//! stays an upper bound), timestamps at millisecond precision (the minimum rounded down, the
//! maximum up), no binary or nested values (nested columns count toward the 32; top-level
//! columns only get values). A value that cannot be bounded exactly (NaN, a truncated Parquet
//! maximum that is not valid UTF-8) is left out, which readers take as "unknown".

use std::fmt::Write as _;

use arrow_schema::{DataType, Schema};
use parquet::file::metadata::ParquetMetaData;
use parquet::file::statistics::Statistics;

use crate::sink::layout::format_day;

/// Columns with statistics by default (Delta's `delta.dataSkippingNumIndexedCols`).
pub(crate) const DEFAULT_INDEXED_COLUMNS: usize = 32;

/// Characters of a string kept in statistics (Spark's `dataSkippingStringPrefixLength`).
const STRING_PREFIX: usize = 32;

/// One column's bound, typed for comparing across row groups.
#[derive(Debug, Clone, PartialEq, PartialOrd)]
enum Bound {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Decimal(i128),
}

/// The `stats` JSON of a data file written with `schema` whose footer is `meta`.
pub(crate) fn file_stats(meta: &ParquetMetaData, schema: &Schema, indexed: usize) -> String {
    let rows: i64 = meta.row_groups().iter().map(|g| g.num_rows()).sum();
    let (mut mins, mut maxs, mut nulls) = (String::new(), String::new(), String::new());
    let leaves = meta.row_groups().first().map_or(0, |g| g.columns().len());
    for leaf in 0..leaves.min(indexed) {
        let path = meta.row_groups()[0].column(leaf).column_path().parts();
        let [name] = path else {
            continue;
        };
        let Ok(field) = schema.field_with_name(name) else {
            continue;
        };
        let ty = field.data_type();
        let (mut lo, mut hi, mut null_count): (Option<Bound>, Option<Bound>, Option<u64>) =
            (None, None, Some(0));
        let mut bounded = true;
        for g in meta.row_groups() {
            let Some(s) = g.column(leaf).statistics() else {
                bounded = false;
                null_count = None;
                break;
            };
            null_count = null_count.zip(s.null_count_opt()).map(|(a, b)| a + b);
            match bounds(s, ty) {
                Some((l, h)) => {
                    lo = Some(match lo {
                        Some(x) if x <= l => x,
                        _ => l,
                    });
                    hi = Some(match hi {
                        Some(x) if x >= h => x,
                        _ => h,
                    });
                }
                // A row group of nulls only has no bounds and narrows nothing.
                None if s.null_count_opt() == Some(g.num_rows() as u64) => {}
                None => bounded = false,
            }
        }
        let key = serde_json::to_string(name).unwrap_or_default();
        if let Some(n) = null_count {
            let _ = write!(nulls, "{}{key}:{n}", sep(&nulls));
        }
        if !bounded {
            continue;
        }
        if let Some(v) = lo.and_then(|b| render(&b, ty, false)) {
            let _ = write!(mins, "{}{key}:{v}", sep(&mins));
        }
        if let Some(v) = hi.and_then(|b| render(&b, ty, true)) {
            let _ = write!(maxs, "{}{key}:{v}", sep(&maxs));
        }
    }
    format!(
        "{{\"numRecords\":{rows},\"minValues\":{{{mins}}},\"maxValues\":{{{maxs}}},\"nullCount\":{{{nulls}}}}}"
    )
}

fn sep(s: &str) -> &'static str {
    if s.is_empty() {
        ""
    } else {
        ","
    }
}

/// A row group's exact-enough `(min, max)` for a column of type `ty`.
fn bounds(s: &Statistics, ty: &DataType) -> Option<(Bound, Bound)> {
    match (s, ty) {
        (Statistics::Boolean(v), DataType::Boolean) => {
            Some((Bound::Bool(*v.min_opt()?), Bound::Bool(*v.max_opt()?)))
        }
        (
            Statistics::Int32(v),
            DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Date32,
        ) => Some((
            Bound::Int((*v.min_opt()?).into()),
            Bound::Int((*v.max_opt()?).into()),
        )),
        (Statistics::Int64(v), DataType::Int64 | DataType::Timestamp(..)) => {
            Some((Bound::Int(*v.min_opt()?), Bound::Int(*v.max_opt()?)))
        }
        (Statistics::Float(v), DataType::Float32) => {
            float_bounds((*v.min_opt()?).into(), (*v.max_opt()?).into())
        }
        (Statistics::Double(v), DataType::Float64) => float_bounds(*v.min_opt()?, *v.max_opt()?),
        (Statistics::ByteArray(v), DataType::Utf8) => {
            let min = std::str::from_utf8(v.min_opt()?.data()).ok()?;
            let max = std::str::from_utf8(v.max_opt()?.data()).ok()?;
            Some((Bound::Str(min.to_owned()), Bound::Str(max.to_owned())))
        }
        (Statistics::Int32(v), DataType::Decimal128(..)) => Some((
            Bound::Decimal((*v.min_opt()?).into()),
            Bound::Decimal((*v.max_opt()?).into()),
        )),
        (Statistics::Int64(v), DataType::Decimal128(..)) => Some((
            Bound::Decimal((*v.min_opt()?).into()),
            Bound::Decimal((*v.max_opt()?).into()),
        )),
        (Statistics::FixedLenByteArray(v), DataType::Decimal128(..)) => Some((
            Bound::Decimal(be_i128(v.min_opt()?.data())?),
            Bound::Decimal(be_i128(v.max_opt()?.data())?),
        )),
        _ => None,
    }
}

fn float_bounds(min: f64, max: f64) -> Option<(Bound, Bound)> {
    (min.is_finite() && max.is_finite()).then_some((Bound::Float(min), Bound::Float(max)))
}

/// A big-endian two's complement integer of at most 16 bytes.
fn be_i128(b: &[u8]) -> Option<i128> {
    if b.is_empty() || b.len() > 16 {
        return None;
    }
    let fill = if b[0] & 0x80 != 0 { 0xff } else { 0 };
    let mut buf = [fill; 16];
    buf[16 - b.len()..].copy_from_slice(b);
    Some(i128::from_be_bytes(buf))
}

/// The JSON text of a bound (`upper`: it is a maximum, so rounding goes up).
fn render(b: &Bound, ty: &DataType, upper: bool) -> Option<String> {
    Some(match (b, ty) {
        (Bound::Bool(v), _) => v.to_string(),
        (Bound::Int(d), DataType::Date32) => format!("\"{}\"", format_day(*d)),
        (Bound::Int(us), DataType::Timestamp(_, tz)) => {
            let ms = if upper {
                us.div_euclid(1000) + i64::from(us.rem_euclid(1000) != 0)
            } else {
                us.div_euclid(1000)
            };
            format!("\"{}\"", format_millis(ms, tz.is_some()))
        }
        (Bound::Int(v), _) => v.to_string(),
        (Bound::Float(v), _) => serde_json::to_string(v).ok()?,
        (Bound::Str(s), _) => serde_json::to_string(&truncate(s, upper)?).ok()?,
        (Bound::Decimal(v), DataType::Decimal128(_, scale)) => decimal_text(*v, *scale as u32),
        (Bound::Decimal(_), _) => return None,
    })
}

/// A string bound cut to [`STRING_PREFIX`] characters; an upper bound that was cut gets
/// U+10FFFF appended (then it still sorts after every string with that prefix), or is dropped
/// when the character it replaces is U+10FFFF itself.
fn truncate(s: &str, upper: bool) -> Option<String> {
    let Some((cut, next)) = s.char_indices().nth(STRING_PREFIX) else {
        return Some(s.to_owned());
    };
    let prefix = &s[..cut];
    if !upper {
        return Some(prefix.to_owned());
    }
    if next == char::MAX {
        return None;
    }
    Some(format!("{prefix}{}", char::MAX))
}

/// Milliseconds since the epoch as `YYYY-MM-DDTHH:MM:SS.mmm` (with `Z` for UTC timestamps).
pub(super) fn format_millis(ms: i64, utc: bool) -> String {
    let secs = ms.div_euclid(1000);
    let day = secs.div_euclid(86_400);
    let s = secs.rem_euclid(86_400);
    format!(
        "{}T{:02}:{:02}:{:02}.{:03}{}",
        format_day(day),
        s / 3600,
        s / 60 % 60,
        s % 60,
        ms.rem_euclid(1000),
        if utc { "Z" } else { "" }
    )
}

/// A decimal's unscaled value as a JSON number: `-12.345`.
fn decimal_text(v: i128, scale: u32) -> String {
    let digits = v.unsigned_abs().to_string();
    let sign = if v < 0 { "-" } else { "" };
    if scale == 0 {
        return format!("{sign}{digits}");
    }
    let scale = scale as usize;
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (int, frac) = padded.split_at(padded.len() - scale);
    format!("{sign}{int}.{frac}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use arrow_array::{
        ArrayRef, Decimal128Array, Float64Array, Int32Array, RecordBatch, StringArray,
        TimestampMicrosecondArray,
    };
    use arrow_schema::{Field, TimeUnit};
    use parquet::arrow::ArrowWriter;
    use parquet::file::properties::WriterProperties;

    #[test]
    fn delta_stats_come_from_the_footer_over_row_groups() {
        let long = "x".repeat(40);
        let schema = Arc::new(Schema::new(vec![
            Field::new("i", DataType::Int32, true),
            Field::new("s", DataType::Utf8, true),
            Field::new(
                "ts",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                true,
            ),
            Field::new("f", DataType::Float64, true),
            Field::new("d", DataType::Decimal128(10, 2), true),
        ]));
        let batch = |i: Vec<Option<i32>>, s: Vec<Option<&str>>, ts: Vec<i64>, f: Vec<f64>| {
            let n = i.len();
            RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(Int32Array::from(i)) as ArrayRef,
                    Arc::new(StringArray::from(s)),
                    Arc::new(TimestampMicrosecondArray::from(ts).with_timezone("UTC")),
                    Arc::new(Float64Array::from(f)),
                    Arc::new(
                        Decimal128Array::from(vec![-1234; n])
                            .with_precision_and_scale(10, 2)
                            .unwrap(),
                    ),
                ],
            )
            .unwrap()
        };
        let props = WriterProperties::builder()
            .set_max_row_group_row_count(Some(2))
            .build();
        let mut w = ArrowWriter::try_new(Vec::new(), schema.clone(), Some(props)).unwrap();
        w.write(&batch(
            vec![Some(5), None],
            vec![Some("b"), Some(&long)],
            vec![1_000_001, 2_000],
            vec![1.5, -2.0],
        ))
        .unwrap();
        w.write(&batch(
            vec![Some(-3), Some(9)],
            vec![None, Some("a")],
            vec![5_000, 999],
            vec![0.0, 3.0],
        ))
        .unwrap();
        let meta = w.finish().unwrap();
        assert_eq!(meta.row_groups().len(), 2);
        let stats = file_stats(&meta, &schema, 32);
        let max_s = format!("{}{}", "x".repeat(32), char::MAX);
        assert_eq!(
            stats,
            format!(
                "{{\"numRecords\":4,\"minValues\":{{\"i\":-3,\"s\":\"a\",\"ts\":\"1970-01-01T00:00:00.000Z\",\"f\":-2.0,\"d\":-12.34}},\"maxValues\":{{\"i\":9,\"s\":\"{max_s}\",\"ts\":\"1970-01-01T00:00:01.001Z\",\"f\":3.0,\"d\":-12.34}},\"nullCount\":{{\"i\":1,\"s\":1,\"ts\":0,\"f\":0,\"d\":0}}}}"
            )
        );
        let v: serde_json::Value = serde_json::from_str(&stats).unwrap();
        assert_eq!(v["numRecords"], 4);
        // Only the first `indexed` leaf columns get statistics.
        let two = file_stats(&meta, &schema, 2);
        assert_eq!(
            two,
            "{\"numRecords\":4,\"minValues\":{\"i\":-3,\"s\":\"a\"},\"maxValues\":{\"i\":9,\"s\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\u{10FFFF}\"},\"nullCount\":{\"i\":1,\"s\":1}}"
        );
    }

    #[test]
    fn delta_stats_render_edge_values() {
        assert_eq!(decimal_text(5, 3), "0.005");
        assert_eq!(decimal_text(-123_456, 2), "-1234.56");
        assert_eq!(decimal_text(7, 0), "7");
        assert_eq!(be_i128(&[0xff, 0xfe]), Some(-2));
        assert_eq!(format_millis(-1, true), "1969-12-31T23:59:59.999Z");
        let edge = format!("{}{}", "y".repeat(32), char::MAX);
        assert_eq!(truncate(&edge, true), None);
        assert_eq!(truncate(&edge, false), Some("y".repeat(32)));
        assert_eq!(truncate("ü", true), Some("ü".to_owned()));
    }
}
