//! `kingest run` end to end against nisshi for every value format (JSON, CSV, raw, and Avro
//! with a schema registry and payloads written by apache-avro's own writer), with every
//! metadata column (`__key`, `__header$NAME`, `__topic`, `__partition`, `__offset`,
//! `__timestamp`).
//!
//! Records are produced with librdkafka (keys, repeated and null headers, explicit
//! timestamps, several partitions); the output is read back with the parquet crate's own
//! Arrow reader and compared record for record and column for column with what was produced:
//! integers of every width, floats, exact decimals, dates and timestamps in several units and
//! spellings, lists, structs, nulls (missing and explicit), escapes and non-ASCII text. The
//! files' footer offsets must tile each partition with no gap or overlap.

use apache_avro::types::Value as AvroValue;
use apache_avro::{to_avro_datum, Decimal, Schema as AvroSchema};
use arrow_schema::{DataType, TimeUnit};
use kingest_tests::ingest::case::{check, envelope, utc, Case};
use kingest_tests::ingest::Cell;
use kingest_tests::peers::registry::Registry;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_every_type_and_metadata() {
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
name = "day"
type = "date"

[[columns]]
name = "price"
type = "decimal(12, 2)"

[[columns]]
name = "price_text"
type = "decimal(12, 2)"

[[columns]]
name = "tags"
type = "list<string>"

[[columns]]
name = "nested"
type = "struct<x: int64, y: string>"

[[columns]]
name = "weird key"
type = "string"
source = "/a~1b"
"#;
    let records = (0..700usize)
        .map(|i| {
            let id = i as i64;
            let big = 9_007_199_254_740_993 + id; // beyond f64's exact integers
            let small = (i % 256) as u8 as i8;
            let u16v = (i * 977 % 65_536) as u16;
            let quarter = i as f32 / 4.0;
            let tenth = id as f64 * 0.1 + 1e-7;
            let name = match (i % 13, i % 11) {
                (0, _) => None, // member missing
                (_, 0) => Some("null"),
                _ => Some("present"),
            };
            let name_text = format!("名前-{i}-Zoë");
            let escaped = format!("quote \" backslash \\ tab \t newline \n control \u{1} é \u{1F600} {i}");
            let ts = 1_644_586_485_807 + id * 37;
            let (ts_text, ts_micros) = rfc3339((id * 37_000_123) % 72_000_000_000, i % 4 == 0);
            let day = FEB_1_2024 + (i % 29) as i32;
            let cents = id * 12_345 - 5_000_000;
            let cents2 = -id * 7 + 3;
            let tags: Vec<String> = if i % 6 == 0 {
                Vec::new()
            } else {
                vec!["a".into(), "日本".into(), format!("{i}")]
            };
            let mut doc = serde_json::json!({
                "id": id,
                "big": big,
                "n": {"small": small, "ignored": [1, {"deep": true}]},
                "u16": u16v,
                "quarter": quarter,
                "ok": i % 2 == 0,
                "escaped": escaped,
                "ts": ts,
                "ts_text": ts_text,
                "day": format!("2024-02-{:02}", 1 + i % 29),
                "price_text": cents_text(cents2),
                "tags": tags,
                "nested": if i % 7 == 0 { serde_json::Value::Null } else { serde_json::json!({"y": "é", "x": id}) },
                "a/b": format!("slash {i}"),
            });
            match name {
                None => {}
                Some("null") => doc["name"] = serde_json::Value::Null,
                _ => doc["name"] = serde_json::json!(name_text),
            }
            // Numbers as the producer's text: the exact decimal and the shortest f64 text.
            let mut text = doc.to_string();
            text.insert_str(
                text.len() - 1,
                &format!(",\"price\":{},\"tenth\":{tenth}", cents_text(cents)),
            );
            let cells = vec![
                ("id", Cell::Int(id)),
                ("big", Cell::Int(big)),
                ("small", Cell::Int(small.into())),
                ("u16", Cell::UInt(u16v.into())),
                ("quarter", Cell::Float(quarter.into())),
                ("tenth", Cell::Float(tenth)),
                ("ok", Cell::Bool(i.is_multiple_of(2))),
                ("name", if name == Some("present") { Cell::Str(name_text) } else { Cell::Null }),
                ("escaped", Cell::Str(escaped)),
                ("ts", Cell::Ts(ts)),
                ("ts_text", Cell::Ts(ts_micros)),
                ("day", Cell::Date(day)),
                ("price", Cell::Dec(cents.into())),
                ("price_text", Cell::Dec(cents2.into())),
                ("tags", Cell::List(tags.into_iter().map(Cell::Str).collect())),
                (
                    "nested",
                    if i % 7 == 0 {
                        Cell::Null
                    } else {
                        Cell::Struct(vec![("x".into(), Cell::Int(id)), ("y".into(), Cell::s("é"))])
                    },
                ),
                ("weird key", Cell::Str(format!("slash {i}"))),
            ];
            (envelope(i, Some(text.into_bytes())), cells)
        })
        .collect();
    let list = kingest::schema::parse_type("list<string>").unwrap();
    let nested = kingest::schema::parse_type("struct<x: int64, y: string>").unwrap();
    check(Case {
        topic: "json-events",
        format_and_columns: columns.to_owned(),
        records,
        types: vec![
            ("id", DataType::Int64),
            ("big", DataType::Int64),
            ("small", DataType::Int8),
            ("u16", DataType::UInt16),
            ("quarter", DataType::Float32),
            ("tenth", DataType::Float64),
            ("ok", DataType::Boolean),
            ("name", DataType::Utf8),
            ("escaped", DataType::Utf8),
            ("ts", utc(TimeUnit::Millisecond)),
            ("ts_text", utc(TimeUnit::Microsecond)),
            ("day", DataType::Date32),
            ("price", DataType::Decimal128(12, 2)),
            ("price_text", DataType::Decimal128(12, 2)),
            ("tags", list),
            ("nested", nested),
            ("weird key", DataType::Utf8),
        ],
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_pipe_delimited_with_quotes_and_nulls() {
    // dgkafka's customer rows: `|`-delimited, fields by name and by position.
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
    let records = (0..600)
        .map(|i| {
            let id = i as i64 + 1;
            let name = format!("Customer#{id:09}");
            // Quoted with the delimiter, doubled quotes and a line break inside; or plain;
            // or an empty unquoted field (the empty string for a string column).
            let (address_text, address) = match i % 4 {
                0 => (format!("\"Rue {id}|\"\"B\"\"\nÉtage 2\""), Cell::Str(format!("Rue {id}|\"B\"\nÉtage 2"))),
                1 => (String::new(), Cell::s("")),
                2 => ("NULL".to_owned(), Cell::Null),
                _ => (format!("Straße {id}"), Cell::Str(format!("Straße {id}"))),
            };
            // An empty field is NULL for a number; `"NULL"` quoted is text, never NULL.
            let (nation_text, nation) = if i % 9 == 0 { (String::new(), Cell::Null) } else { (format!("{}", i % 25), Cell::Int((i % 25) as i64)) };
            let cents = id * 7_919 % 1_000_000 - 99_999;
            let comment_text = if i % 8 == 0 { "\"NULL\"".to_owned() } else { format!("ironic 日本 {i}") };
            let comment = if i % 8 == 0 { Cell::s("NULL") } else { Cell::Str(format!("ironic 日本 {i}")) };
            let since = 1_600_000_000 + id * 86_399;
            let row = format!(
                "{id}|{name}|{address_text}|{nation_text}|25-989-741-{:04}|{}|BUILDING|{comment_text}|{since}{}",
                i % 10_000,
                cents_text(cents),
                if i % 2 == 0 { "\n" } else { "" }
            );
            let cells = vec![
                ("c_custkey", Cell::Int(id)),
                ("c_name", Cell::Str(name)),
                ("c_address", address),
                ("c_nationkey", nation),
                ("c_acctbal", Cell::Dec(cents.into())),
                ("c_acctbal_f", Cell::Float(cents_text(cents).parse().unwrap())),
                ("c_comment", comment),
                ("c_since", Cell::Ts(since)),
            ];
            (envelope(i, Some(row.into_bytes())), cells)
        })
        .collect();
    check(Case {
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
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_bytes_with_binary_values_and_headers() {
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
    let records = (0..500)
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
    check(Case {
        topic: "blobs",
        format_and_columns: columns.to_owned(),
        records,
        types: vec![
            ("payload", DataType::Binary),
            ("key_bytes", DataType::Binary),
            ("other", DataType::Binary),
        ],
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_text_into_typed_columns() {
    // Memgraph's node ids: each message is one number; kept as text, as a number and as a
    // time (a count of seconds is a timestamp(s) value).
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
    let records = (0..400)
        .map(|i| {
            let n = (i as i64 - 200) * 1_000_003;
            let r = envelope(i, Some(n.to_string().into_bytes()));
            let cells = vec![
                ("text", Cell::Str(n.to_string())),
                ("node_id", Cell::Int(n)),
                ("as_time", Cell::Ts(n)),
            ];
            (r, cells)
        })
        .collect();
    check(Case {
        topic: "nodes",
        format_and_columns: columns.to_owned(),
        records,
        types: vec![
            ("text", DataType::Utf8),
            ("node_id", DataType::Int64),
            ("as_time", utc(TimeUnit::Second)),
        ],
    })
    .await;
}

const ORDER_V1: &str = r#"{
  "type": "record", "name": "Order", "namespace": "shop",
  "fields": [
    {"name": "id", "type": "long"},
    {"name": "name", "type": "string"},
    {"name": "amount", "type": {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2}},
    {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    {"name": "ts_us", "type": {"type": "long", "logicalType": "timestamp-micros"}},
    {"name": "day", "type": {"type": "int", "logicalType": "date"}},
    {"name": "tags", "type": {"type": "array", "items": "string"}},
    {"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["NEW", "PAID", "SHIPPED"]}},
    {"name": "score", "type": ["null", "double"], "default": null},
    {"name": "fx", "type": {"type": "fixed", "name": "Four", "size": 4}},
    {"name": "ok", "type": "boolean"},
    {"name": "ratio", "type": "float"},
    {"name": "qty", "type": "int"},
    {"name": "customer", "type": {"type": "record", "name": "Customer", "fields": [
      {"name": "cid", "type": "int"},
      {"name": "email", "type": ["null", "string"]}
    ]}}
  ]
}"#;

/// The next version: `note` added first, most fields dropped, `customer` optional, `ts` in
/// microseconds and `amount` a fixed decimal of another scale.
const ORDER_V2: &str = r#"{
  "type": "record", "name": "Order", "namespace": "shop",
  "fields": [
    {"name": "note", "type": ["null", "string"], "default": null},
    {"name": "id", "type": "long"},
    {"name": "customer", "type": ["null", {"type": "record", "name": "Customer", "fields": [
      {"name": "cid", "type": "int"},
      {"name": "email", "type": ["null", "string"]}
    ]}]},
    {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-micros"}},
    {"name": "amount", "type": {"type": "fixed", "name": "Amount", "size": 8, "logicalType": "decimal", "precision": 12, "scale": 3}},
    {"name": "ok", "type": "boolean"}
  ]
}"#;

/// The Confluent wire format: magic byte 0, the schema id big-endian, the Avro datum.
fn confluent(id: u32, datum: Vec<u8>) -> Vec<u8> {
    let mut v = vec![0];
    v.extend_from_slice(&id.to_be_bytes());
    v.extend(datum);
    v
}

fn opt_string(s: Option<String>) -> (AvroValue, Cell) {
    match s {
        Some(s) => (
            AvroValue::Union(1, Box::new(AvroValue::String(s.clone()))),
            Cell::Str(s),
        ),
        None => (AvroValue::Union(0, Box::new(AvroValue::Null)), Cell::Null),
    }
}

/// An Order of either version, written by apache-avro's own writer, and the cells it should
/// give (columns the writer schema lacks are null).
fn order(
    i: usize,
    v1: (u32, &AvroSchema),
    v2: (u32, &AvroSchema),
) -> (Vec<u8>, Vec<(&'static str, Cell)>) {
    let id = i as i64;
    let cents = id * 101 - 30_000;
    let ts = 1_644_586_485_807 + id * 1_001;
    let cid = (i * 2) as i32;
    let (email, email_cell) = opt_string((!i.is_multiple_of(7)).then(|| format!("c{i}@例え.jp")));
    let customer = AvroValue::Record(vec![
        ("cid".into(), AvroValue::Int(cid)),
        ("email".into(), email),
    ]);
    let customer_cell = Cell::Struct(vec![
        ("cid".into(), Cell::Int(cid.into())),
        ("email".into(), email_cell.clone()),
    ]);
    let null_cells =
        |names: &[&'static str]| names.iter().map(|n| (*n, Cell::Null)).collect::<Vec<_>>();
    if i % 3 != 2 {
        let name = format!("Zoë-{i}-日本");
        let tags: Vec<String> = if i.is_multiple_of(5) {
            Vec::new()
        } else {
            vec!["a".into(), "日本".into(), i.to_string()]
        };
        let kind = ["NEW", "PAID", "SHIPPED"][i % 3];
        let score = (!i.is_multiple_of(4)).then(|| id as f64 / 8.0);
        let fx = vec![i as u8, 0xde, 0xad, 0xbe];
        let ratio = i as f32 * 0.25;
        let qty = -(i as i32) * 3;
        let day = 19_782 + (i % 100) as i32;
        let value = AvroValue::Record(vec![
            ("id".into(), AvroValue::Long(id)),
            ("name".into(), AvroValue::String(name.clone())),
            (
                "amount".into(),
                AvroValue::Decimal(Decimal::from(cents.to_be_bytes())),
            ),
            ("ts".into(), AvroValue::TimestampMillis(ts)),
            ("ts_us".into(), AvroValue::TimestampMicros(ts * 1000 + 123)),
            ("day".into(), AvroValue::Date(day)),
            (
                "tags".into(),
                AvroValue::Array(tags.iter().cloned().map(AvroValue::String).collect()),
            ),
            ("kind".into(), AvroValue::Enum((i % 3) as u32, kind.into())),
            (
                "score".into(),
                match score {
                    Some(s) => AvroValue::Union(1, Box::new(AvroValue::Double(s))),
                    None => AvroValue::Union(0, Box::new(AvroValue::Null)),
                },
            ),
            ("fx".into(), AvroValue::Fixed(4, fx.clone())),
            ("ok".into(), AvroValue::Boolean(i.is_multiple_of(2))),
            ("ratio".into(), AvroValue::Float(ratio)),
            ("qty".into(), AvroValue::Int(qty)),
            ("customer".into(), customer),
        ]);
        let mut cells = vec![
            ("id", Cell::Int(id)),
            ("name", Cell::Str(name)),
            ("amount", Cell::Dec(cents.into())),
            ("ts", Cell::Ts(ts)),
            ("ts_us", Cell::Ts(ts * 1000 + 123)),
            ("day", Cell::Date(day)),
            (
                "tags",
                Cell::List(tags.into_iter().map(Cell::Str).collect()),
            ),
            ("kind", Cell::s(kind)),
            ("score", score.map_or(Cell::Null, Cell::Float)),
            ("fx", Cell::Bytes(fx)),
            ("ok", Cell::Bool(i.is_multiple_of(2))),
            ("ratio", Cell::Float(ratio.into())),
            ("qty", Cell::Int(qty.into())),
            ("cid", Cell::Int(cid.into())),
            ("email", email_cell),
            ("customer", customer_cell),
        ];
        cells.extend(null_cells(&["note"]));
        (confluent(v1.0, to_avro_datum(v1.1, value).unwrap()), cells)
    } else {
        let (note, note_cell) = opt_string((!i.is_multiple_of(5)).then(|| format!("note {i} ✓")));
        let has_customer = !i.is_multiple_of(4);
        let value = AvroValue::Record(vec![
            ("note".into(), note),
            ("id".into(), AvroValue::Long(id)),
            (
                "customer".into(),
                if has_customer {
                    AvroValue::Union(1, Box::new(customer))
                } else {
                    AvroValue::Union(0, Box::new(AvroValue::Null))
                },
            ),
            ("ts".into(), AvroValue::TimestampMicros(ts * 1000)),
            (
                "amount".into(),
                AvroValue::Decimal(Decimal::from((cents * 10).to_be_bytes())),
            ),
            ("ok".into(), AvroValue::Boolean(i.is_multiple_of(2))),
        ]);
        let mut cells = vec![
            ("id", Cell::Int(id)),
            ("amount", Cell::Dec(cents.into())),
            ("ts", Cell::Ts(ts)),
            ("ok", Cell::Bool(i.is_multiple_of(2))),
            ("note", note_cell),
        ];
        if has_customer {
            cells.extend([
                ("cid", Cell::Int(cid.into())),
                ("email", email_cell),
                ("customer", customer_cell),
            ]);
        } else {
            cells.extend(null_cells(&["cid", "email", "customer"]));
        }
        cells.extend(null_cells(&[
            "name", "ts_us", "day", "tags", "kind", "score", "fx", "ratio", "qty",
        ]));
        (confluent(v2.0, to_avro_datum(v2.1, value).unwrap()), cells)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn avro_with_a_schema_registry_and_two_writer_schemas() {
    let registry = Registry::start();
    // Another subject first, so ids are not simply 1 and 2.
    registry.register("unrelated-value", r#""string""#);
    let id1 = registry.register("orders-value", ORDER_V1);
    let id2 = registry.register("orders-value", ORDER_V2);
    let v1 = AvroSchema::parse_str(ORDER_V1).unwrap();
    let v2 = AvroSchema::parse_str(ORDER_V2).unwrap();
    let columns = format!(
        r#"
[format]
type = "avro"
registry = "{}"

[[columns]]
name = "id"
type = "int64"

[[columns]]
name = "name"
type = "string"

[[columns]]
name = "amount"
type = "decimal(10, 2)"

[[columns]]
name = "ts"
type = "timestamp(ms, UTC)"

[[columns]]
name = "ts_us"
type = "timestamp(us, UTC)"

[[columns]]
name = "day"
type = "date"

[[columns]]
name = "tags"
type = "list<string>"

[[columns]]
name = "kind"
type = "string"

[[columns]]
name = "score"
type = "float64"

[[columns]]
name = "fx"
type = "binary"

[[columns]]
name = "ok"
type = "bool"

[[columns]]
name = "ratio"
type = "float32"

[[columns]]
name = "qty"
type = "int32"

[[columns]]
name = "cid"
type = "int32"
source = "customer.cid"

[[columns]]
name = "email"
type = "string"
source = "customer.email"

[[columns]]
name = "customer"
type = "struct<cid: int32, email: string>"

[[columns]]
name = "note"
type = "string"
"#,
        registry.url()
    );
    let records = (0..600)
        .map(|i| {
            let (payload, cells) = order(i, (id1, &v1), (id2, &v2));
            (envelope(i, Some(payload)), cells)
        })
        .collect();
    check(Case {
        topic: "orders",
        format_and_columns: columns,
        records,
        types: vec![
            ("id", DataType::Int64),
            ("name", DataType::Utf8),
            ("amount", DataType::Decimal128(10, 2)),
            ("ts", utc(TimeUnit::Millisecond)),
            ("ts_us", utc(TimeUnit::Microsecond)),
            ("day", DataType::Date32),
            ("tags", kingest::schema::parse_type("list<string>").unwrap()),
            ("kind", DataType::Utf8),
            ("score", DataType::Float64),
            ("fx", DataType::Binary),
            ("ok", DataType::Boolean),
            ("ratio", DataType::Float32),
            ("qty", DataType::Int32),
            ("cid", DataType::Int32),
            ("email", DataType::Utf8),
            (
                "customer",
                kingest::schema::parse_type("struct<cid: int32, email: string>").unwrap(),
            ),
            ("note", DataType::Utf8),
        ],
    })
    .await;
    // Each writer schema was fetched once, by id, and nothing else was asked.
    assert_eq!(
        (registry.id_requests(id1), registry.id_requests(id2)),
        (1, 1)
    );
    assert_eq!(registry.request_count(), 2, "{:?}", registry.requests());
}
