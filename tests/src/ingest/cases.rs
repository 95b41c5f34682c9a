//! The per-format cases every sink's format test runs (the Parquet one in
//! `tests/ingest_formats.rs`, the PostgreSQL one in `tests/postgres_formats.rs`): for JSON,
//! CSV, raw bytes, raw text and Avro, the job's `[format]` and `[[columns]]`, `records` records
//! (in [`envelope`]s: keys, repeated and null headers, timestamps, several partitions) and the
//! value cells each should give, computed here independently of kingest's decoders.
//!
//! What they cover: integers of every width (beyond f64's exact integers, `u64::MAX`), floats,
//! exact decimals (from JSON numbers and strings, 38 digits, rescaled from Avro), dates,
//! timestamps in every unit, with and without a zone, as numbers and RFC 3339 text, lists (with
//! null items), structs, NULL (missing and explicit), escapes and non-ASCII text, binary values
//! with every byte, CSV quoting and positions, and Avro values written by apache-avro's own
//! writer under two writer schemas. A sink that stores less than this (PostgreSQL keeps
//! microseconds) adapts the expected cells in its own test.

use arrow_schema::{DataType, TimeUnit};
use kingest::schema::parse_type;

use super::case::{envelope, utc, Case};
use super::Cell;

/// `-12.34`-style text of `cents / 100` with two decimals.
fn cents_text(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    format!(
        "{sign}{}.{:02}",
        cents.unsigned_abs() / 100,
        cents.unsigned_abs() % 100
    )
}

/// Days since the epoch of 2024-02-01 and 2024-01-02.
const FEB_1_2024: i32 = 19754;
const JAN_2_2024: i64 = 19724;

/// `2024-01-02THH:MM:SS.ffffff` at `micros` into the day, in UTC or at +02:00.
fn rfc3339(micros_of_day: i64, plus_two: bool) -> (String, i64) {
    let utc_micros = JAN_2_2024 * 86_400_000_000 + micros_of_day;
    let local = if plus_two {
        micros_of_day + 2 * 3_600_000_000
    } else {
        micros_of_day
    };
    let secs = local / 1_000_000;
    let text = format!(
        "2024-01-02T{:02}:{:02}:{:02}.{:06}{}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        local % 1_000_000,
        if plus_two { "+02:00" } else { "Z" }
    );
    (text, utc_micros)
}

/// JSON with a column of every type, from members by name, nested (`/n/small`) and escaped
/// (`/a~1b`) pointers; numbers as the producer's text (the exact decimal, the shortest f64).
pub fn json(records: usize) -> Case {
    let columns = r#"
[format]
type = "json"

[[columns]]
name = "id"
type = "int64"

[[columns]]
name = "big"
type = "int64"

[[columns]]
name = "small"
type = "int8"
source = "/n/small"

[[columns]]
name = "u16"
type = "uint16"

[[columns]]
name = "big_u"
type = "uint64"

[[columns]]
name = "quarter"
type = "float32"

[[columns]]
name = "tenth"
type = "float64"

[[columns]]
name = "ok"
type = "bool"

[[columns]]
name = "name"
type = "string"

[[columns]]
name = "escaped"
type = "string"

[[columns]]
name = "ts"
type = "timestamp(ms, UTC)"

[[columns]]
name = "ts_text"
type = "timestamp(us, UTC)"

[[columns]]
name = "local_ts"
type = "timestamp(us)"

[[columns]]
name = "nanos"
type = "timestamp(ns, UTC)"

[[columns]]
name = "day"
type = "date"

[[columns]]
name = "price"
type = "decimal(12, 2)"

[[columns]]
name = "price_text"
type = "decimal(12, 2)"

[[columns]]
name = "tiny"
type = "decimal(38, 10)"

[[columns]]
name = "tags"
type = "list<string>"

[[columns]]
name = "counts"
type = "list<int32>"

[[columns]]
name = "nested"
type = "struct<x: int64, y: string>"

[[columns]]
name = "weird key"
type = "string"
source = "/a~1b"
"#;
    let records = (0..records)
        .map(|i| {
            let id = i as i64;
            let big = 9_007_199_254_740_993 + id; // beyond f64's exact integers
            let small = (i % 256) as u8 as i8;
            let u16v = (i * 977 % 65_536) as u16;
            let big_u = u64::MAX - i as u64;
            let quarter = i as f32 / 4.0;
            let tenth = id as f64 * 0.1 + 1e-7;
            let name = match (i % 13, i % 11) {
                (0, _) => None, // member missing
                (_, 0) => Some("null"),
                _ => Some("present"),
            };
            let name_text = format!("名前-{i}-Zoë");
            let escaped =
                format!("quote \" backslash \\ tab \t newline \n control \u{1} é \u{1F600} {i}");
            let ts = 1_644_586_485_807 + id * 37;
            let (ts_text, ts_micros) = rfc3339((id * 37_000_123) % 72_000_000_000, i % 4 == 0);
            let local_us = 1_700_000_000_123_456 + id * 1_000_001;
            let nanos = 1_700_000_000_123_456_789 + id * 1_000_000_007;
            let day = FEB_1_2024 + (i % 29) as i32;
            let cents = id * 12_345 - 5_000_000;
            let cents2 = -id * 7 + 3;
            // 10 decimals: 0.0000000001 * (i * 7 - 3), and a large one.
            let tiny: i128 = if i.is_multiple_of(5) {
                -12_345_678_901_234_567_890_123_456_789
            } else {
                i128::from(id * 7 - 3)
            };
            let tiny_text = {
                let mag = tiny.unsigned_abs();
                let sign = if tiny < 0 { "-" } else { "" };
                format!(
                    "{sign}{}.{:010}",
                    mag / 10u128.pow(10),
                    mag % 10u128.pow(10)
                )
            };
            let tags: Vec<String> = if i.is_multiple_of(6) {
                Vec::new()
            } else {
                vec!["a".into(), "日本".into(), format!("{i}")]
            };
            let counts: Option<Vec<Option<i32>>> = match i % 5 {
                0 => None,
                1 => Some(vec![Some(1), None, Some(-3)]),
                _ => Some(vec![Some(i as i32)]),
            };
            let nested = !i.is_multiple_of(7);
            let nested_json = if nested {
                serde_json::json!({"y": "é\"", "x": id})
            } else {
                serde_json::Value::Null
            };
            let mut doc = serde_json::json!({
                "id": id,
                "big": big,
                "n": {"small": small, "ignored": [1, {"deep": true}]},
                "u16": u16v,
                "big_u": big_u,
                "quarter": quarter,
                "ok": i.is_multiple_of(2),
                "escaped": escaped,
                "ts": ts,
                "ts_text": ts_text,
                "local_ts": local_us,
                "nanos": nanos,
                "day": format!("2024-02-{:02}", 1 + i % 29),
                "price_text": cents_text(cents2),
                "tags": tags,
                "counts": counts,
                "nested": nested_json,
                "a/b": format!("slash {i}"),
            });
            match name {
                None => {}
                Some("null") => doc["name"] = serde_json::Value::Null,
                _ => doc["name"] = serde_json::json!(name_text),
            }
            // Numbers as the producer's text: the exact decimals and the shortest f64 text.
            let mut text = doc.to_string();
            text.insert_str(
                text.len() - 1,
                &format!(
                    ",\"price\":{},\"tenth\":{tenth},\"tiny\":{tiny_text}",
                    cents_text(cents)
                ),
            );
            let counts = counts.map_or(Cell::Null, |c| {
                let item = |v: Option<i32>| v.map_or(Cell::Null, |v| Cell::Int(v.into()));
                Cell::List(c.into_iter().map(item).collect())
            });
            let nested = if nested {
                Cell::Struct(vec![
                    ("x".into(), Cell::Int(id)),
                    ("y".into(), Cell::s("é\"")),
                ])
            } else {
                Cell::Null
            };
            let cells = vec![
                ("id", Cell::Int(id)),
                ("big", Cell::Int(big)),
                ("small", Cell::Int(small.into())),
                ("u16", Cell::UInt(u16v.into())),
                ("big_u", Cell::UInt(big_u)),
                ("quarter", Cell::Float(quarter.into())),
                ("tenth", Cell::Float(tenth)),
                ("ok", Cell::Bool(i.is_multiple_of(2))),
                (
                    "name",
                    if name == Some("present") {
                        Cell::Str(name_text)
                    } else {
                        Cell::Null
                    },
                ),
                ("escaped", Cell::Str(escaped)),
                ("ts", Cell::Ts(ts)),
                ("ts_text", Cell::Ts(ts_micros)),
                ("local_ts", Cell::Ts(local_us)),
                ("nanos", Cell::Ts(nanos)),
                ("day", Cell::Date(day)),
                ("price", Cell::Dec(cents.into())),
                ("price_text", Cell::Dec(cents2.into())),
                ("tiny", Cell::Dec(tiny)),
                (
                    "tags",
                    Cell::List(tags.into_iter().map(Cell::Str).collect()),
                ),
                ("counts", counts),
                ("nested", nested),
                ("weird key", Cell::Str(format!("slash {i}"))),
            ];
            (envelope(i, Some(text.into_bytes())), cells)
        })
        .collect();
    Case {
        topic: "json-events",
        format_and_columns: columns.to_owned(),
        records,
        types: vec![
            ("id", DataType::Int64),
            ("big", DataType::Int64),
            ("small", DataType::Int8),
            ("u16", DataType::UInt16),
            ("big_u", DataType::UInt64),
            ("quarter", DataType::Float32),
            ("tenth", DataType::Float64),
            ("ok", DataType::Boolean),
            ("name", DataType::Utf8),
            ("escaped", DataType::Utf8),
            ("ts", utc(TimeUnit::Millisecond)),
            ("ts_text", utc(TimeUnit::Microsecond)),
            ("local_ts", DataType::Timestamp(TimeUnit::Microsecond, None)),
            ("nanos", utc(TimeUnit::Nanosecond)),
            ("day", DataType::Date32),
            ("price", DataType::Decimal128(12, 2)),
            ("price_text", DataType::Decimal128(12, 2)),
            ("tiny", DataType::Decimal128(38, 10)),
            ("tags", parse_type("list<string>").unwrap()),
            ("counts", parse_type("list<int32>").unwrap()),
            ("nested", parse_type("struct<x: int64, y: string>").unwrap()),
            ("weird key", DataType::Utf8),
        ],
    }
}

/// CSV as dgkafka's customer rows: `|`-delimited with a `NULL` spelling, fields by name and
/// by position, quoted fields holding the delimiter, doubled quotes and a line break, empty
/// fields, and rows with and without a final line break.
pub fn csv(records: usize) -> Case {
    let columns = r#"
[format]
type = "csv"
delimiter = "|"
null = "NULL"
header = ["custkey", "name", "address", "nationkey", "phone", "acctbal", "mktsegment", "comment", "since"]

[[columns]]
name = "c_custkey"
type = "int64"
source = "custkey"

[[columns]]
name = "c_name"
type = "string"
source = "name"

[[columns]]
name = "c_address"
type = "string"
source = "2"

[[columns]]
name = "c_nationkey"
type = "int16"
source = "nationkey"

[[columns]]
name = "c_acctbal"
type = "decimal(15, 2)"
source = "acctbal"

[[columns]]
name = "c_acctbal_f"
type = "float64"
source = "5"

[[columns]]
name = "c_comment"
type = "string"
source = "comment"

[[columns]]
name = "c_since"
type = "timestamp(s, UTC)"
source = "since"
"#;
    let records = (0..records)
        .map(|i| {
            let id = i as i64 + 1;
            let name = format!("Customer#{id:09}");
            // Quoted with the delimiter, doubled quotes and a line break inside; or plain;
            // or an empty unquoted field (the empty string for a string column).
            let (address_text, address) = match i % 4 {
                0 => (
                    format!("\"Rue {id}|\"\"B\"\"\nÉtage 2\""),
                    Cell::Str(format!("Rue {id}|\"B\"\nÉtage 2")),
                ),
                1 => (String::new(), Cell::s("")),
                2 => ("NULL".to_owned(), Cell::Null),
                _ => (format!("Straße {id}"), Cell::Str(format!("Straße {id}"))),
            };
            // An empty field is NULL for a number; `"NULL"` quoted is text, never NULL.
            let (nation_text, nation) = if i.is_multiple_of(9) {
                (String::new(), Cell::Null)
            } else {
                (format!("{}", i % 25), Cell::Int((i % 25) as i64))
            };
            let cents = id * 7_919 % 1_000_000 - 99_999;
            let (comment_text, comment) = if i.is_multiple_of(8) {
                ("\"NULL\"".to_owned(), Cell::s("NULL"))
            } else {
                (
                    format!("ironic 日本 {i}"),
                    Cell::Str(format!("ironic 日本 {i}")),
                )
            };
            let since = 1_600_000_000 + id * 86_399;
            let fields = [
                id.to_string(),
                name.clone(),
                address_text,
                nation_text,
                format!("25-989-741-{:04}", i % 10_000),
                cents_text(cents),
                "BUILDING".to_owned(),
                comment_text,
                since.to_string(),
            ];
            let end = if i.is_multiple_of(2) { "\n" } else { "" };
            let row = fields.join("|") + end;
            let cells = vec![
                ("c_custkey", Cell::Int(id)),
                ("c_name", Cell::Str(name)),
                ("c_address", address),
                ("c_nationkey", nation),
                ("c_acctbal", Cell::Dec(cents.into())),
                (
                    "c_acctbal_f",
                    Cell::Float(cents_text(cents).parse().unwrap()),
                ),
                ("c_comment", comment),
                ("c_since", Cell::Ts(since)),
            ];
            (envelope(i, Some(row.into_bytes())), cells)
        })
        .collect();
    Case {
        topic: "customer",
        format_and_columns: columns.to_owned(),
        records,
        types: vec![
            ("c_custkey", DataType::Int64),
            ("c_name", DataType::Utf8),
            ("c_address", DataType::Utf8),
            ("c_nationkey", DataType::Int16),
            ("c_acctbal", DataType::Decimal128(15, 2)),
            ("c_acctbal_f", DataType::Float64),
            ("c_comment", DataType::Utf8),
            ("c_since", utc(TimeUnit::Second)),
        ],
    }
}

/// Raw bytes: null, empty, UTF-8 and binary values (every byte value, NUL included), the key
/// and a header's binary value as columns.
pub fn raw_bytes(records: usize) -> Case {
    let columns = r#"
[format]
type = "raw"

[[columns]]
name = "payload"
type = "binary"
source = "__value"

[[columns]]
name = "key_bytes"
type = "binary"
source = "__key"

[[columns]]
name = "other"
type = "binary"
source = "__header$other"
"#;
    let records = (0..records)
        .map(|i| {
            let value: Option<Vec<u8>> = match i % 6 {
                0 => None,
                1 => Some(Vec::new()),
                2 => Some("ünïcödé ✓ 日本".as_bytes().to_vec()),
                _ => Some((0..(i % 300)).map(|b| (b * 31 + i) as u8).collect()),
            };
            let r = envelope(i, value.clone());
            let cells = vec![
                ("payload", value.map_or(Cell::Null, Cell::Bytes)),
                ("key_bytes", r.key.clone().map_or(Cell::Null, Cell::Bytes)),
                (
                    "other",
                    if r.headers.is_empty() {
                        Cell::Null
                    } else {
                        Cell::Bytes(vec![0xff, 0])
                    },
                ),
            ];
            (r, cells)
        })
        .collect();
    Case {
        topic: "blobs",
        format_and_columns: columns.to_owned(),
        records,
        types: vec![
            ("payload", DataType::Binary),
            ("key_bytes", DataType::Binary),
            ("other", DataType::Binary),
        ],
    }
}

/// Raw text, as Memgraph's node ids: each message is one number (negative for the first
/// half), kept as text, as a number and as a time (a count of seconds is a timestamp(s)).
pub fn raw_text(records: usize) -> Case {
    let columns = r#"
[format]
type = "raw"
as = "string"

[[columns]]
name = "text"
type = "string"
source = "__value"

[[columns]]
name = "node_id"
type = "int64"
source = "__value"

[[columns]]
name = "as_time"
type = "timestamp(s, UTC)"
source = "__value"
"#;
    let half = (records / 2) as i64;
    let records = (0..records)
        .map(|i| {
            let n = (i as i64 - half) * 1_000_003;
            let r = envelope(i, Some(n.to_string().into_bytes()));
            let cells = vec![
                ("text", Cell::Str(n.to_string())),
                ("node_id", Cell::Int(n)),
                ("as_time", Cell::Ts(n)),
            ];
            (r, cells)
        })
        .collect();
    Case {
        topic: "nodes",
        format_and_columns: columns.to_owned(),
        records,
        types: vec![
            ("text", DataType::Utf8),
            ("node_id", DataType::Int64),
            ("as_time", utc(TimeUnit::Second)),
        ],
    }
}

mod avro;

pub use avro::avro;
