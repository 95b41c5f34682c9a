//! `kingest run` into a real PostgreSQL (Debian's server, started by the test in a temporary
//! directory) for every value format: JSON, CSV, raw bytes, raw text and Avro with a schema
//! registry. Records are produced with librdkafka on nisshi; the table is read back with
//! `psql` (an independent reader) and compared row for row and column for column with what was
//! produced: NULLs (missing and explicit), integers of several widths, floats, exact decimals,
//! dates, timestamps in several units, lists, structs (as jsonb), binary values, escapes and
//! non-ASCII text, and every metadata column. The offsets table must hold each partition's end.

use std::collections::BTreeMap;

use apache_avro::types::Value as AvroValue;
use apache_avro::{to_avro_datum, Decimal, Schema as AvroSchema};
use arrow_schema::{DataType, TimeUnit};
use kingest::config::Config;
use kingest::engine::{columns, postgres_config, run, RunOptions};
use kingest::schema::{arrow_schema, parse_type};
use kingest_tests::ingest::case::{
    envelope, meta_cells, meta_types, utc, Case, META_COLUMNS, PARTITIONS,
};
use kingest_tests::ingest::{produce, Cell};
use kingest_tests::peers::nisshi::Nisshi;
use kingest_tests::peers::postgres::Postgres;
use kingest_tests::peers::registry::Registry;

fn cents_text(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    format!(
        "{sign}{}.{:02}",
        cents.unsigned_abs() / 100,
        cents.unsigned_abs() % 100
    )
}

/// Runs one case into its own table (named after the topic) and compares the table with it.
async fn check_postgres(broker: &Nisshi, pg: &Postgres, case: Case) {
    broker.create_topic(case.topic, PARTITIONS as u32);
    let produced: Vec<_> = case.records.iter().map(|(p, _)| p.clone()).collect();
    let at = produce(&broker.addr(), case.topic, &produced).await;
    let table = case.topic.replace('-', "_");
    let job = format!(
        r#"
[source]
brokers = "{}"
topics = ["{}"]
group = "pg-formats"

{}
{META_COLUMNS}
[flush]
rows = 97

[sink]
type = "postgres"
url = "{}"
table = "{table}"
"#,
        broker.addr(),
        case.topic,
        case.format_and_columns,
        pg.url(),
    );
    let config = Config::parse(&job, "pg-formats.toml").unwrap();
    let sink = postgres_config(&config).unwrap();
    let schema = arrow_schema(&columns(&config).unwrap());
    let report = kingest::sink::postgres::setup(&sink, &schema)
        .await
        .unwrap();
    assert!(report.created_table.is_some(), "{report:?}");
    assert!(report.differences.is_empty(), "{report:?}");

    let summary = run(
        config,
        RunOptions {
            until_eof: true,
            ..RunOptions::default()
        },
        std::future::pending(),
    )
    .await
    .unwrap();
    assert_eq!(
        (summary.records, summary.rows, summary.errors),
        (case.records.len() as u64, case.records.len() as u64, 0),
        "{}",
        case.topic
    );

    let mut types = case.types.clone();
    types.extend(meta_types());
    let rows = pg.read_rows(&table, &types, "\"partition\", \"offset\"");
    assert_eq!(
        rows.len(),
        case.records.len(),
        "{}: rows in the table",
        case.topic
    );
    let names: Vec<&str> = types.iter().map(|(n, _)| *n).collect();
    let pos = |n: &str| names.iter().position(|x| *x == n).unwrap();
    let by_offset: BTreeMap<(i64, i64), &Vec<Cell>> = rows
        .iter()
        .map(|r| {
            let Cell::Int(p) = r[pos("partition")] else {
                panic!("partition {r:?}")
            };
            let Cell::Int(o) = r[pos("offset")] else {
                panic!("offset {r:?}")
            };
            ((p, o), r)
        })
        .collect();
    assert_eq!(
        by_offset.len(),
        rows.len(),
        "{}: a record stored twice",
        case.topic
    );
    for (i, ((record, value_cells), (p, o))) in case.records.iter().zip(&at).enumerate() {
        let got = by_offset
            .get(&(i64::from(*p), *o))
            .unwrap_or_else(|| panic!("{}: record {i} at {p}/{o} missing", case.topic));
        let mut want = value_cells.clone();
        want.extend(meta_cells(case.topic, record, *p, *o));
        for (name, cell) in want {
            assert_eq!(
                got[pos(name)],
                cell,
                "{}: record {i} ({p}/{o}) column {name}",
                case.topic
            );
        }
    }
    // The offsets table holds where each partition ends.
    let mut end: BTreeMap<i32, i64> = BTreeMap::new();
    for (p, o) in &at {
        let e = end.entry(*p).or_insert(0);
        *e = (*e).max(o + 1);
    }
    let stored: BTreeMap<i32, i64> = pg
        .psql(&format!(
            "SELECT partition, next_offset FROM kingest_offsets \
             WHERE consumer_group = 'pg-formats' AND topic = '{}'",
            case.topic
        ))
        .iter()
        .map(|r| {
            let (p, o) = r.split_once('\x1f').unwrap();
            (p.parse().unwrap(), o.parse().unwrap())
        })
        .collect();
    assert_eq!(stored, end, "{}: offsets table", case.topic);
}

fn json_case() -> Case {
    let columns = r#"
[format]
type = "json"

[[columns]]
name = "id"
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
    let records = (0..400usize)
        .map(|i| {
            let id = i as i64;
            let small = (i % 256) as u8 as i8;
            let u16v = (i * 977 % 65_536) as u16;
            let big_u = u64::MAX - i as u64;
            let quarter = i as f32 / 4.0;
            let tenth = id as f64 * 0.1 + 1e-7;
            let name = match (i % 13, i % 11) {
                (0, _) => None,
                (_, 0) => Some("null"),
                _ => Some("present"),
            };
            let name_text = format!("名前-{i}-Zoë");
            let escaped =
                format!("quote \" backslash \\ tab \t newline \n control \u{1} é \u{1F600} {i}");
            let ts = 1_644_586_485_807 + id * 37;
            let local_us = 1_700_000_000_123_456 + id * 1_000_001;
            // Nanoseconds: PostgreSQL keeps microseconds, so the last three digits go.
            let nanos = 1_700_000_000_123_456_789 + id * 1_000_000_007;
            let day = 19_754 + (i % 29) as i32;
            let cents = id * 12_345 - 2_000_000;
            // 10 decimals: 0.0000000001 * (i * 7 - 3), and a large one.
            let tiny: i128 = if i.is_multiple_of(5) { -12_345_678_901_234_567_890_123_456_789 } else { i128::from(id * 7 - 3) };
            let tiny_text = {
                let mag = tiny.unsigned_abs();
                format!("{}{}.{:010}", if tiny < 0 { "-" } else { "" }, mag / 10u128.pow(10), mag % 10u128.pow(10))
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
            let mut doc = serde_json::json!({
                "id": id,
                "n": {"small": small},
                "u16": u16v,
                "big_u": big_u,
                "quarter": quarter,
                "ok": i.is_multiple_of(2),
                "escaped": escaped,
                "ts": ts,
                "local_ts": local_us,
                "nanos": nanos,
                "day": format!("2024-02-{:02}", 1 + i % 29),
                "price": cents_text(cents),
                "tags": tags,
                "counts": counts,
                "nested": if i.is_multiple_of(7) { serde_json::Value::Null } else { serde_json::json!({"y": "é\"", "x": id}) },
                "a/b": format!("slash {i}"),
            });
            match name {
                None => {}
                Some("null") => doc["name"] = serde_json::Value::Null,
                _ => doc["name"] = serde_json::json!(name_text),
            }
            let mut text = doc.to_string();
            text.insert_str(text.len() - 1, &format!(",\"tenth\":{tenth},\"tiny\":{tiny_text}"));
            let cells = vec![
                ("id", Cell::Int(id)),
                ("small", Cell::Int(small.into())),
                ("u16", Cell::UInt(u16v.into())),
                ("big_u", Cell::UInt(big_u)),
                ("quarter", Cell::Float(quarter.into())),
                ("tenth", Cell::Float(tenth)),
                ("ok", Cell::Bool(i.is_multiple_of(2))),
                ("name", if name == Some("present") { Cell::Str(name_text) } else { Cell::Null }),
                ("escaped", Cell::Str(escaped)),
                ("ts", Cell::Ts(ts)),
                ("local_ts", Cell::Ts(local_us)),
                ("nanos", Cell::Ts(nanos / 1_000 * 1_000)),
                ("day", Cell::Date(day)),
                ("price", Cell::Dec(cents.into())),
                ("tiny", Cell::Dec(tiny)),
                ("tags", Cell::List(tags.into_iter().map(Cell::Str).collect())),
                (
                    "counts",
                    counts.map_or(Cell::Null, |c| {
                        Cell::List(c.into_iter().map(|v| v.map_or(Cell::Null, |v| Cell::Int(v.into()))).collect())
                    }),
                ),
                (
                    "nested",
                    if i.is_multiple_of(7) {
                        Cell::Null
                    } else {
                        Cell::Struct(vec![("x".into(), Cell::Int(id)), ("y".into(), Cell::s("é\""))])
                    },
                ),
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
            ("small", DataType::Int8),
            ("u16", DataType::UInt16),
            ("big_u", DataType::UInt64),
            ("quarter", DataType::Float32),
            ("tenth", DataType::Float64),
            ("ok", DataType::Boolean),
            ("name", DataType::Utf8),
            ("escaped", DataType::Utf8),
            ("ts", utc(TimeUnit::Millisecond)),
            ("local_ts", DataType::Timestamp(TimeUnit::Microsecond, None)),
            ("nanos", utc(TimeUnit::Nanosecond)),
            ("day", DataType::Date32),
            ("price", DataType::Decimal128(12, 2)),
            ("tiny", DataType::Decimal128(38, 10)),
            ("tags", parse_type("list<string>").unwrap()),
            ("counts", parse_type("list<int32>").unwrap()),
            ("nested", parse_type("struct<x: int64, y: string>").unwrap()),
            ("weird key", DataType::Utf8),
        ],
    }
}

fn csv_case() -> Case {
    let columns = r#"
[format]
type = "csv"
delimiter = "|"
null = "NULL"
header = ["custkey", "name", "address", "nationkey", "acctbal", "comment", "since"]

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
name = "c_comment"
type = "string"
source = "comment"

[[columns]]
name = "c_since"
type = "timestamp(s, UTC)"
source = "since"
"#;
    let records = (0..300usize)
        .map(|i| {
            let id = i as i64 + 1;
            let name = format!("Customer#{id:09}");
            let (address_text, address) = match i % 4 {
                0 => (
                    format!("\"Rue {id}|\"\"B\"\"\nÉtage 2\""),
                    Cell::Str(format!("Rue {id}|\"B\"\nÉtage 2")),
                ),
                1 => (String::new(), Cell::s("")),
                2 => ("NULL".to_owned(), Cell::Null),
                _ => (format!("Straße {id}"), Cell::Str(format!("Straße {id}"))),
            };
            let (nation_text, nation) = if i.is_multiple_of(9) {
                (String::new(), Cell::Null)
            } else {
                (format!("{}", i % 25), Cell::Int((i % 25) as i64))
            };
            let cents = id * 7_919 % 1_000_000 - 99_999;
            let comment_text = if i.is_multiple_of(8) {
                "\"NULL\"".to_owned()
            } else {
                format!("ironic 日本 {i}")
            };
            let comment = if i.is_multiple_of(8) {
                Cell::s("NULL")
            } else {
                Cell::Str(format!("ironic 日本 {i}"))
            };
            let since = 1_600_000_000 + id * 86_399;
            let row = format!(
                "{id}|{name}|{address_text}|{nation_text}|{}|{comment_text}|{since}",
                cents_text(cents),
            );
            let cells = vec![
                ("c_custkey", Cell::Int(id)),
                ("c_name", Cell::Str(name)),
                ("c_address", address),
                ("c_nationkey", nation),
                ("c_acctbal", Cell::Dec(cents.into())),
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
            ("c_comment", DataType::Utf8),
            ("c_since", utc(TimeUnit::Second)),
        ],
    }
}

fn raw_bytes_case() -> Case {
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
    let records = (0..300usize)
        .map(|i| {
            let value: Option<Vec<u8>> = match i % 6 {
                0 => None,
                1 => Some(Vec::new()),
                2 => Some("ünïcödé ✓ 日本".as_bytes().to_vec()),
                // Every byte value, NUL included: bytea takes them all.
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

fn raw_text_case() -> Case {
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
    let records = (0..300usize)
        .map(|i| {
            let n = (i as i64 - 150) * 1_000_003;
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

const ORDER: &str = r#"{
  "type": "record", "name": "Order", "namespace": "shop",
  "fields": [
    {"name": "id", "type": "long"},
    {"name": "name", "type": ["null", "string"], "default": null},
    {"name": "amount", "type": {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2}},
    {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    {"name": "day", "type": {"type": "int", "logicalType": "date"}},
    {"name": "tags", "type": {"type": "array", "items": "string"}},
    {"name": "score", "type": ["null", "double"], "default": null},
    {"name": "ok", "type": "boolean"},
    {"name": "customer", "type": {"type": "record", "name": "Customer", "fields": [
      {"name": "cid", "type": "int"},
      {"name": "email", "type": ["null", "string"]}
    ]}}
  ]
}"#;

fn avro_case(registry: &Registry) -> Case {
    let id = registry.register("orders-value", ORDER);
    let schema = AvroSchema::parse_str(ORDER).unwrap();
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
name = "day"
type = "date"

[[columns]]
name = "tags"
type = "list<string>"

[[columns]]
name = "score"
type = "float64"

[[columns]]
name = "ok"
type = "bool"

[[columns]]
name = "customer"
type = "struct<cid: int32, email: string>"

[[columns]]
name = "email"
type = "string"
source = "customer.email"
"#,
        registry.url()
    );
    let records = (0..300usize)
        .map(|i| {
            let oid = i as i64;
            let cents = oid * 101 - 30_000;
            let ts = 1_644_586_485_807 + oid * 1_001;
            let day = 19_000 + i as i32;
            let name = (!i.is_multiple_of(4)).then(|| format!("Zoë «{i}» 東京"));
            let email = (!i.is_multiple_of(3)).then(|| format!("u{i}@exämple.org"));
            let score = (!i.is_multiple_of(5)).then_some(i as f64 * 1.5 - 7.25);
            let tags: Vec<String> = (0..i % 3).map(|t| format!("t{t}-ß")).collect();
            let opt = |s: &Option<String>| match s {
                Some(s) => AvroValue::Union(1, Box::new(AvroValue::String(s.clone()))),
                None => AvroValue::Union(0, Box::new(AvroValue::Null)),
            };
            let value = AvroValue::Record(vec![
                ("id".into(), AvroValue::Long(oid)),
                ("name".into(), opt(&name)),
                (
                    "amount".into(),
                    AvroValue::Decimal(Decimal::from(cents.to_be_bytes().to_vec())),
                ),
                ("ts".into(), AvroValue::TimestampMillis(ts)),
                ("day".into(), AvroValue::Date(day)),
                (
                    "tags".into(),
                    AvroValue::Array(tags.iter().map(|t| AvroValue::String(t.clone())).collect()),
                ),
                (
                    "score".into(),
                    match score {
                        Some(s) => AvroValue::Union(1, Box::new(AvroValue::Double(s))),
                        None => AvroValue::Union(0, Box::new(AvroValue::Null)),
                    },
                ),
                ("ok".into(), AvroValue::Boolean(i % 2 == 1)),
                (
                    "customer".into(),
                    AvroValue::Record(vec![
                        ("cid".into(), AvroValue::Int(i as i32 * 2)),
                        ("email".into(), opt(&email)),
                    ]),
                ),
            ]);
            let mut bytes = vec![0];
            bytes.extend_from_slice(&id.to_be_bytes());
            bytes.extend(to_avro_datum(&schema, value).unwrap());
            let email_cell = email.clone().map_or(Cell::Null, Cell::Str);
            let cells = vec![
                ("id", Cell::Int(oid)),
                ("name", name.map_or(Cell::Null, Cell::Str)),
                ("amount", Cell::Dec(cents.into())),
                ("ts", Cell::Ts(ts)),
                ("day", Cell::Date(day)),
                (
                    "tags",
                    Cell::List(tags.into_iter().map(Cell::Str).collect()),
                ),
                ("score", score.map_or(Cell::Null, Cell::Float)),
                ("ok", Cell::Bool(i % 2 == 1)),
                (
                    "customer",
                    Cell::Struct(vec![
                        ("cid".into(), Cell::Int(i as i64 * 2)),
                        ("email".into(), email_cell.clone()),
                    ]),
                ),
                ("email", email_cell),
            ];
            (envelope(i, Some(bytes)), cells)
        })
        .collect();
    Case {
        topic: "orders",
        format_and_columns: columns,
        records,
        types: vec![
            ("id", DataType::Int64),
            ("name", DataType::Utf8),
            ("amount", DataType::Decimal128(10, 2)),
            ("ts", utc(TimeUnit::Millisecond)),
            ("day", DataType::Date32),
            ("tags", parse_type("list<string>").unwrap()),
            ("score", DataType::Float64),
            ("ok", DataType::Boolean),
            (
                "customer",
                parse_type("struct<cid: int32, email: string>").unwrap(),
            ),
            ("email", DataType::Utf8),
        ],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_format_row_for_row_into_postgres() {
    let pg = Postgres::start();
    let broker = Nisshi::start();
    let registry = Registry::start();
    check_postgres(&broker, &pg, json_case()).await;
    check_postgres(&broker, &pg, csv_case()).await;
    check_postgres(&broker, &pg, raw_bytes_case()).await;
    check_postgres(&broker, &pg, raw_text_case()).await;
    check_postgres(&broker, &pg, avro_case(&registry)).await;
}
