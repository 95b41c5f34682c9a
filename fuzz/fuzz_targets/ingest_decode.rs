//! Fuzz target: the ingest decoders (JSON, CSV, Avro in the Confluent framing, raw) over
//! arbitrary record values and keys, as `kingest run` feeds them from a fetch response.
//!
//! Input: a selector byte, then records separated by `0xFF` (a byte valid UTF-8 never holds,
//! so JSON and CSV seeds stay readable). The selector's low two bits pick the record shape:
//! value only, value and key, key only (a tombstone), or every other record a tombstone. Every
//! decoder gets every record; a decoder's columns cover each type it builds (nested lists and
//! structs, decimals, timestamps in text and as numbers, dates, booleans, metadata columns), so
//! the bytes reach the scanner, the converters and the builders. Checked besides "no panic":
//!
//! - an append either adds exactly one row or none (a refused record leaves no partial row in
//!   any column), and `finish` returns a batch of exactly the rows appended;
//! - every error's message can be rendered (it quotes the input around the failure, which must
//!   cut on character boundaries) and names the record's topic, partition and offset;
//! - a decoder keeps working after errors: one more valid record is accepted and counted.

#![no_main]

use kingest::decode::{DecodeError, FormatSpec, RecordContext, RegistryClient, RowDecoder};
use kingest::schema::{parse_type, ColumnSpec, FormatKind, Source};
use kingest_protocol::record::{
    BatchBuilder, BatchOptions, DecodeOptions, Header, Headers, Record, RecordSet,
};
use libfuzzer_sys::fuzz_target;

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

/// One decoder per format, with the value record valid for it (to check recovery).
fn decoders() -> Vec<(RowDecoder, &'static [u8])> {
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
    let raw = [col("v", "float64", "__value", r), col("k", "binary", "__key", r)];
    let csv_format = FormatSpec::Csv {
        delimiter: b';',
        quote: b'\'',
        null: Some("\\N".into()),
        names: None,
    };
    vec![
        (
            RowDecoder::new(&json, &FormatSpec::Json, None).expect("json columns"),
            br#"{"a": 1}"#,
        ),
        (
            RowDecoder::new(&csv, &csv_format, None).expect("csv columns"),
            b"1;x;2024-01-02;1.5;0;2",
        ),
        (
            RowDecoder::new(&avro, &FormatSpec::Avro { registry }, None).expect("avro columns"),
            // Magic, schema id 1, then a=1, b=null, c=[], m={}, e=X, f="abc", d=0.05 (one
            // byte), t=0, n={next: null, v: 0.0}.
            &[
                0, 0, 0, 0, 1, 2, 0, 0, 0, 0, b'a', b'b', b'c', 2, 5, 0, 0, 0, 0, 0, 0,
            ],
        ),
        (
            RowDecoder::new(&raw, &FormatSpec::Raw { utf8: true }, None).expect("raw columns"),
            b"2.5",
        ),
    ]
}

fn check_error(e: &DecodeError, offset: i64) {
    let text = e.to_string();
    assert!(text.contains("fuzz"), "{text}");
    assert!(text.contains(&offset.to_string()), "{text}");
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let inputs: Vec<&[u8]> = rest.split(|&b| b == 0xFF).take(64).collect();
    // The records as the consumer hands them over: one v2 batch, read back by the record
    // reader, with the first input also as the value of header `h`.
    let mut builder = BatchBuilder::new(BatchOptions::default());
    let headers = [Header {
        key: b"h",
        value: Some(inputs[0]),
    }];
    for (i, bytes) in inputs.iter().enumerate() {
        let (value, key) = match (selector & 3, i % 2) {
            (0, _) => (Some(*bytes), None),
            (1, _) => (Some(*bytes), Some(*bytes)),
            (2, _) => (None, Some(*bytes)),
            (_, 0) => (Some(*bytes), None),
            _ => (None, Some(*bytes)),
        };
        builder.push(1_700_000_000_000 + i as i64, key, value, &headers);
    }
    let mut set = bytes::BytesMut::new();
    builder.finish_into(&mut set).expect("a batch of fuzz records");
    let mut raws = RecordSet::new(set.freeze());
    let batch = raws
        .next()
        .expect("one batch")
        .expect("a batch we wrote")
        .decode(&DecodeOptions::default())
        .expect("a batch we wrote");
    let records: Vec<_> = batch
        .records()
        .collect::<Result<_, _>>()
        .expect("records we wrote");
    DECODERS.with_borrow_mut(|decoders| run(decoders, &records));
});

thread_local! {
    /// Built once: a decoder lives across many records in `kingest run` too, and `finish`
    /// leaves it empty for the next input.
    static DECODERS: std::cell::RefCell<Vec<(RowDecoder, &'static [u8])>> =
        std::cell::RefCell::new(decoders());
}

fn run(decoders: &mut [(RowDecoder, &'static [u8])], records: &[Record<'_>]) {
    for (dec, valid) in decoders.iter_mut() {
        let mut rows = 0;
        for r in records {
            let ctx = RecordContext::new("fuzz", 3, r);
            match dec.append(&ctx) {
                Ok(()) => rows += 1,
                Err(e) => check_error(&e, r.offset),
            }
            assert_eq!(dec.rows(), rows);
        }
        // Still usable after whatever came before.
        let mut last = records[0];
        last.value = Some(*valid);
        last.key = Some(b"k");
        // Header `h` holds fuzz bytes, which a string column may refuse.
        last.headers = Headers::default();
        dec.append(&RecordContext::new("fuzz", 3, &last))
            .expect("a valid record after fuzz input");
        rows += 1;
        let out = dec.finish();
        assert_eq!(out.num_rows(), rows);
        assert_eq!(dec.rows(), 0);
    }
}
