//! The Avro case: Confluent-framed payloads written by apache-avro's own writer under two
//! versions of a writer schema registered in the test registry, read with one set of columns
//! (columns a writer schema lacks are null; decimals rescaled; nested fields by path).

use apache_avro::types::Value as AvroValue;
use apache_avro::{to_avro_datum, Decimal, Schema as AvroSchema};
use arrow_schema::{DataType, TimeUnit};
use kingest::schema::parse_type;

use super::super::case::{envelope, utc, Case};
use super::super::Cell;
use crate::peers::registry::Registry;

/// The first version of the writer schema: a field of every Avro type.
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

/// The columns (`{registry}` is the registry's URL).
const COLUMNS: &str = r#"
[format]
type = "avro"
registry = "{registry}"

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
"#;

/// The Confluent wire format: magic byte 0, the schema id big-endian, the Avro datum.
fn confluent(id: u32, datum: Vec<u8>) -> Vec<u8> {
    let mut v = vec![0];
    v.extend_from_slice(&id.to_be_bytes());
    v.extend(datum);
    v
}

/// An optional string as an Avro `["null", "string"]` union, and its cell.
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

/// Avro with a schema registry: registers an unrelated subject first (so ids are not simply 1
/// and 2), then the two versions of `orders-value`, and returns the case with the two writer
/// schemas' ids (each record carries one of them).
pub fn avro(registry: &Registry, records: usize) -> (Case, [u32; 2]) {
    registry.register("unrelated-value", r#""string""#);
    let id1 = registry.register("orders-value", ORDER_V1);
    let id2 = registry.register("orders-value", ORDER_V2);
    let v1 = AvroSchema::parse_str(ORDER_V1).unwrap();
    let v2 = AvroSchema::parse_str(ORDER_V2).unwrap();
    let records = (0..records)
        .map(|i| {
            let (payload, cells) = order(i, (id1, &v1), (id2, &v2));
            (envelope(i, Some(payload)), cells)
        })
        .collect();
    let case = Case {
        topic: "orders",
        format_and_columns: COLUMNS.replace("{registry}", registry.url()),
        records,
        types: vec![
            ("id", DataType::Int64),
            ("name", DataType::Utf8),
            ("amount", DataType::Decimal128(10, 2)),
            ("ts", utc(TimeUnit::Millisecond)),
            ("ts_us", utc(TimeUnit::Microsecond)),
            ("day", DataType::Date32),
            ("tags", parse_type("list<string>").unwrap()),
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
                parse_type("struct<cid: int32, email: string>").unwrap(),
            ),
            ("note", DataType::Utf8),
        ],
    };
    (case, [id1, id2])
}
