//! One decoder per record format, with columns of every kind each format builds, for tests that
//! feed decoders arbitrary bytes: the property tests of this module and the cargo-fuzz target
//! `fuzz/fuzz_targets/ingest_decode.rs`. Not part of the supported API (hidden from the docs);
//! kept here so that both exercise the same decoders.

use super::{FormatSpec, RegistryClient, RowDecoder, Tombstones};
use crate::schema::{parse_type, ColumnSpec, FormatKind, Source};

/// A column of `kind` reading `source`.
fn col(name: &str, ty: &str, source: &str, kind: FormatKind) -> ColumnSpec {
    ColumnSpec::new(
        name,
        parse_type(ty).expect("a valid type"),
        Source::parse(source, kind).expect("a valid source"),
    )
}

/// The Avro writer schema every Confluent-framed record names (id 1): records, unions,
/// arrays, maps, enums, fixed, decimals, timestamps and recursion.
const AVRO_SCHEMA: &str = r#"{"type": "record", "name": "r", "fields": [
    {"name": "a", "type": "long"},
    {"name": "b", "type": ["null", "string"]},
    {"name": "c", "type": {"type": "array", "items": "int"}},
    {"name": "m", "type": {"type": "map", "values": "double"}},
    {"name": "e", "type": {"type": "enum", "name": "e", "symbols": ["X", "Y"]}},
    {"name": "f", "type": {"type": "fixed", "name": "f", "size": 3}},
    {"name": "d", "type": {"type": "bytes", "logicalType": "decimal", "precision": 9, "scale": 2}},
    {"name": "t", "type": {"type": "long", "logicalType": "timestamp-micros"}},
    {"name": "n", "type": {"type": "record", "name": "n", "fields": [
        {"name": "next", "type": ["null", "n"]}, {"name": "v", "type": "float"}]}}]}"#;

/// One decoder per format (JSON, CSV with `;`, `'` and `\\N`, Avro with an offline registry
/// holding writer schema 1, raw UTF-8), each with a value it accepts, to check that it still
/// works after whatever came before.
pub fn decoders() -> Vec<(RowDecoder, &'static [u8])> {
    let j = FormatKind::Json;
    let json = [
        col("a", "int64", "/a", j),
        col("s", "string", "/s/0", j),
        col("st", "struct<x: list<float64>, y: bool>", "/st", j),
        col("d", "decimal(9, 3)", "/d", j),
        col("t", "timestamp(ns, UTC)", "/t", j),
        col("day", "date", "/day", j),
        col("u", "uint8", "/u", j),
        col("raw", "string", "/raw", j),
        col("b", "binary", "/b", j),
        col("k", "string", "__key", j),
        col("h", "string", "__header$h", j),
        col("o", "int64", "__offset", j),
    ];
    let c = FormatKind::Csv;
    let csv = [
        col("a", "int64", "0", c),
        col("b", "string", "1", c),
        col("c", "date", "2", c),
        col("d", "decimal(12, 4)", "3", c),
        col("t", "timestamp(ms)", "4", c),
        col("f", "float32", "5", c),
    ];
    let registry = RegistryClient::offline();
    registry.insert(1, AVRO_SCHEMA).expect("the schema parses");
    let a = FormatKind::Avro;
    let avro = [
        col("a", "int64", "a", a),
        col("b", "string", "b", a),
        col("c", "list<int32>", "c", a),
        col("m", "list<struct<key: string, value: float64>>", "m", a),
        col("e", "string", "e", a),
        col("f", "binary", "f", a),
        col("d", "decimal(9, 2)", "d", a),
        col("t", "timestamp(us, UTC)", "t", a),
        col("v", "float32", "n.v", a),
    ];
    let r = FormatKind::Raw;
    let raw = [
        col("v", "float64", "__value", r),
        col("k", "binary", "__key", r),
    ];
    let csv_format = FormatSpec::Csv {
        delimiter: b';',
        quote: b'\'',
        null: Some("\\N".into()),
        names: None,
        tombstones: Tombstones::default(),
    };
    vec![
        (
            RowDecoder::new(&json, &FormatSpec::json(), None).expect("json columns"),
            br#"{"a": 1}"#,
        ),
        (
            RowDecoder::new(&csv, &csv_format, None).expect("csv columns"),
            b"1;x;2024-01-02;1.5;0;2",
        ),
        (
            RowDecoder::new(&avro, &FormatSpec::avro(registry), None).expect("avro columns"),
            // Magic, schema id 1, then a=1, b=null, c=[], m={}, e=X, f="abc", d=0.05 (one
            // byte), t=0, n={next: null, v: 0.0}.
            &[
                0, 0, 0, 0, 1, 2, 0, 0, 0, 0, b'a', b'b', b'c', 2, 5, 0, 0, 0, 0, 0, 0,
            ],
        ),
        (
            RowDecoder::new(&raw, &FormatSpec::raw(true), None).expect("raw columns"),
            b"2.5",
        ),
    ]
}
