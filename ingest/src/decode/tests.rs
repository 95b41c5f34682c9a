//! Row decoder tests: formats end to end, metadata sources, nulls, row atomicity, errors,
//! and random input.

use super::*;
use crate::schema::{parse_type, Source};
use arrow_array::cast::AsArray;
use arrow_array::types::*;
use arrow_array::Array;
use kingest_protocol::record::{BatchBuilder, BatchOptions, DecodeOptions, Header, RecordSet};

fn col(name: &str, ty: &str, src: &str, kind: FormatKind) -> ColumnSpec {
    ColumnSpec::new(
        name,
        parse_type(ty).unwrap(),
        Source::parse(src, kind).unwrap(),
    )
}

fn json_col(name: &str, ty: &str, src: &str) -> ColumnSpec {
    col(name, ty, src, FormatKind::Json)
}

/// A record with only a value, at `offset`.
fn value_rec(value: &[u8], offset: i64) -> RecordContext<'_> {
    RecordContext {
        topic: "events",
        partition: 3,
        offset,
        timestamp: 1_644_586_485_807,
        key: None,
        value: Some(value),
        headers: Headers::default(),
    }
}

/// Appends each value; returns the batch and the errors' messages.
fn decode_values(dec: &mut RowDecoder, values: &[&str]) -> (RecordBatch, Vec<String>) {
    let mut errors = Vec::new();
    for (i, v) in values.iter().enumerate() {
        if let Err(e) = dec.append(&value_rec(v.as_bytes(), i as i64)) {
            errors.push(e.to_string());
        }
    }
    (dec.finish(), errors)
}

fn strings(b: &RecordBatch, c: usize) -> Vec<Option<String>> {
    b.column(c)
        .as_string::<i32>()
        .iter()
        .map(|s| s.map(str::to_string))
        .collect()
}

fn i64s(b: &RecordBatch, c: usize) -> Vec<Option<i64>> {
    b.column(c).as_primitive::<Int64Type>().iter().collect()
}

#[test]
fn pinot_events() {
    let cols = [
        json_col("ts", "timestamp(ms)", "/ts"),
        json_col("uuid", "string", "/uuid"),
        json_col("count", "int64", "/count"),
    ];
    let mut dec = RowDecoder::new(&cols, &FormatSpec::json(), None).unwrap();
    let (b, errors) = decode_values(
        &mut dec,
        &[
            r#"{"ts": 1644586485807, "uuid": "93633f7c01d54453a144", "count": 807}"#,
            r#"{"count": 41, "uuid": "87ebf97feead4e848a2e", "ts": 1644586485836}"#,
            r#"{"ts": 1644586485866, "uuid": "960d4ffa201a4425bb18", "count": 146}"#,
        ],
    );
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(b.num_rows(), 3);
    let ts = b.column(0).as_primitive::<TimestampMillisecondType>();
    assert_eq!(ts.values(), &[1644586485807, 1644586485836, 1644586485866]);
    assert_eq!(strings(&b, 1)[1].as_deref(), Some("87ebf97feead4e848a2e"));
    assert_eq!(i64s(&b, 2), [Some(807), Some(41), Some(146)]);
    assert_eq!(dec.rows(), 0);
}

#[test]
fn json_nesting_escapes_and_conversions() {
    let cols = [
        json_col("first_tag", "string", "/tags/0"),
        json_col("deep", "int32", "/a/b/1/c"),
        json_col("tags", "list<string>", "/tags"),
        json_col("points", "list<struct<x: float64, y: float64>>", "/points"),
        json_col(
            "user",
            "struct<name: string, age: uint8, langs: list<string>>",
            "/user",
        ),
        json_col("raw_user", "string", "/user"),
        json_col("price", "decimal(12, 4)", "/price"),
        json_col("when", "timestamp(us, UTC)", "/when"),
        json_col("day", "date", "/day"),
        json_col("ok", "bool", "/ok"),
        json_col("text", "string", "/text"),
        json_col("slash", "string", "/a~1b"),
        json_col("doc", "binary", ""),
    ];
    let mut dec = RowDecoder::new(&cols, &FormatSpec::json(), None).unwrap();
    let doc = r#" {
        "tags": ["α", "b"], "a": {"b": [{"c": 1}, {"c": 2, "d": [1, {"e": null}]}]},
        "points": [{"x": 1.5, "y": -2}, {"y": 3e2}],
        "user": {"langs": ["fr", "日本語"], "name": "Zoë \"Z\" \u00e9\ud83d\ude00", "skip": {"deep": [1]}, "age": 42},
        "price": 123.45678, "when": "2022-02-11T14:34:45.807123+01:00", "day": "2024-02-29",
        "ok": true, "text": "line\nbreak\ttab\\slash\/", "a/b": "key with slash"
    } "#;
    let (b, errors) = decode_values(&mut dec, &[doc]);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(strings(&b, 0), [Some("α".into())]);
    assert_eq!(b.column(1).as_primitive::<Int32Type>().value(0), 2);
    let tags = b.column(2).as_list::<i32>();
    assert_eq!(
        tags.value(0)
            .as_string::<i32>()
            .iter()
            .flatten()
            .collect::<Vec<_>>(),
        ["α", "b"]
    );
    let points = b.column(3).as_list::<i32>().value(0);
    let points = points.as_struct();
    assert_eq!(points.len(), 2);
    let xs = points.column(0).as_primitive::<Float64Type>();
    assert_eq!(xs.value(0), 1.5);
    assert!(xs.is_null(1));
    assert_eq!(
        points.column(1).as_primitive::<Float64Type>().values(),
        &[-2.0, 300.0]
    );
    let user = b.column(4).as_struct();
    assert_eq!(user.column(0).as_string::<i32>().value(0), "Zoë \"Z\" é😀");
    assert_eq!(user.column(1).as_primitive::<UInt8Type>().value(0), 42);
    let langs = user.column(2).as_list::<i32>().value(0);
    assert_eq!(langs.as_string::<i32>().value(1), "日本語");
    let raw = strings(&b, 5)[0].clone().unwrap();
    assert!(
        raw.starts_with(r#"{"langs": ["fr""#) && raw.ends_with(r#""age": 42}"#),
        "{raw}"
    );
    let price = b.column(6).as_primitive::<Decimal128Type>();
    assert_eq!(price.value_as_string(0), "123.4568");
    let when = b.column(7).as_primitive::<TimestampMicrosecondType>();
    assert_eq!(when.value(0), 1644586485807123);
    assert_eq!(b.column(8).as_primitive::<Date32Type>().value(0), 19782);
    assert!(b.column(9).as_boolean().value(0));
    assert_eq!(
        strings(&b, 10)[0].as_deref(),
        Some("line\nbreak\ttab\\slash/")
    );
    assert_eq!(strings(&b, 11)[0].as_deref(), Some("key with slash"));
    assert_eq!(
        b.column(12).as_binary::<i32>().value(0),
        doc.trim().as_bytes()
    );
}

#[test]
fn json_missing_null_and_repeated_keys() {
    let cols = [
        json_col("a", "int64", "/a"),
        json_col("b", "string", "/b"),
        json_col("nested", "int64", "/n/x"),
    ];
    let mut dec = RowDecoder::new(&cols, &FormatSpec::json(), None).unwrap();
    let (b, errors) = decode_values(
        &mut dec,
        &[
            r#"{"a": null}"#,
            r#"{"b": "x", "n": 5}"#,
            r#"{"a": 1, "a": 2, "n": {"x": 3, "x": 4}}"#,
            "{}",
        ],
    );
    assert!(errors.is_empty(), "{errors:?}");
    // A repeated key: the last occurrence wins (edge_tests.rs has the rest).
    assert_eq!(i64s(&b, 0), [None, None, Some(2), None]);
    assert_eq!(strings(&b, 1), [None, Some("x".into()), None, None]);
    assert_eq!(i64s(&b, 2), [None, None, Some(4), None]);
}

#[test]
fn a_bad_record_appends_nothing() {
    let cols = [
        json_col("id", "int64", "/id"),
        json_col("name", "string", "/name"),
        json_col("tags", "list<int32>", "/tags"),
        json_col("offset", "int64", "__offset"),
    ];
    let mut dec = RowDecoder::new(&cols, &FormatSpec::json(), None).unwrap();
    let (b, errors) = decode_values(
        &mut dec,
        &[
            r#"{"id": 1, "name": "one", "tags": [1, 2]}"#,
            // id and name and one tag land before the second tag fails.
            r#"{"id": 2, "name": "two", "tags": [3, "four"]}"#,
            r#"{"id": 3, "name": "three", "tags": [5]}"#,
            // Fails after everything parsed: trailing garbage.
            r#"{"id": 4, "name": "four", "tags": []} x"#,
            r#"{"id": 5, "name": "five"}"#,
        ],
    );
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert_eq!(
        errors[0],
        "column \"tags\" (JSON /tags): at [1]: cannot read \"four\" as int32"
    );
    assert_eq!(
        errors[1],
        "value (json): 1 trailing bytes after the JSON value"
    );
    assert_eq!(b.num_rows(), 3);
    assert_eq!(i64s(&b, 0), [Some(1), Some(3), Some(5)]);
    assert_eq!(
        strings(&b, 1),
        [
            Some("one".into()),
            Some("three".into()),
            Some("five".into())
        ]
    );
    let tags = b.column(2).as_list::<i32>();
    assert_eq!(tags.value_offsets(), &[0, 2, 3, 3]);
    assert_eq!(
        tags.values().as_primitive::<Int32Type>().values(),
        &[1, 2, 5]
    );
    assert_eq!(i64s(&b, 3), [Some(0), Some(2), Some(4)]);
}

#[test]
fn error_messages_say_what_and_where() {
    let cols = [json_col("n", "uint8", "/n").not_null()];
    let mut dec = RowDecoder::new(&cols, &FormatSpec::json(), None).unwrap();
    let (b, errors) = decode_values(
        &mut dec,
        &[
            r#"{"n": 300}"#,
            r#"{"m": 1}"#,
            r#"{"n": {"x": 1}}"#,
            r#"{"n": 1"#,
            "[1,]",
        ],
    );
    assert_eq!(b.num_rows(), 0);
    assert!(errors[0].ends_with("column \"n\" (JSON /n): \"300\" is out of range for uint8"));
    assert!(errors[1]
        .ends_with("column \"n\" (JSON /n): null or missing, but the column is not nullable"));
    assert!(
        errors[2].ends_with("expected uint8, found an object"),
        "{}",
        errors[2]
    );
    assert!(
        errors[3].contains("invalid JSON at byte 7: expected ',' or '}'"),
        "{}",
        errors[3]
    );
    assert!(
        errors[4].contains("invalid JSON at byte 3: expected a value (near \"]\")"),
        "{}",
        errors[4]
    );
    // Long offending text is cut.
    let long = format!(r#"{{"n": "{}"}}"#, "x".repeat(500));
    let e = dec.append(&value_rec(long.as_bytes(), 9)).unwrap_err();
    assert!(
        e.to_string().len() < 200 && e.to_string().contains('…'),
        "{e}"
    );
    assert_eq!(e.offset, 9);
    assert_eq!(e.column.as_deref(), Some("n"));
}

#[test]
fn metadata_sources() {
    let j = FormatKind::Json;
    let cols = [
        col("key", "string", "__key", j),
        col("key_bytes", "binary", "__key", j),
        col("trace", "string", "__header$trace", j),
        col("retries", "int32", "__header$retries", j),
        col("topic", "string", "__topic", j),
        col("partition", "int32", "__partition", j),
        col("offset", "int64", "__offset", j),
        col("ts", "timestamp(us, UTC)", "__timestamp", j),
        col("ts_ms", "int64", "__timestamp", j),
        col("value", "string", "__value", j),
    ];
    let mut batch = BatchBuilder::new(BatchOptions {
        base_offset: 500,
        ..Default::default()
    });
    let h = |k: &'static str, v: Option<&'static [u8]>| Header {
        key: k.as_bytes(),
        value: v,
    };
    batch.push(
        1_700_000_000_123,
        Some("clé".as_bytes()),
        Some(b"{}"),
        &[
            h("trace", Some(b"t1")),
            h("retries", Some(b"2")),
            h("trace", Some(b"t2")),
        ],
    );
    batch.push(1_700_000_000_124, None, None, &[h("trace", None)]);
    let bytes = batch.finish().unwrap();
    let mut dec = RowDecoder::new(&cols, &FormatSpec::json(), None).unwrap();
    for raw in RecordSet::new(bytes) {
        let rb = raw.unwrap().decode(&DecodeOptions::default()).unwrap();
        for r in rb.records() {
            let r = r.unwrap();
            dec.append(&RecordContext::new("orders", 7, &r)).unwrap();
        }
    }
    let b = dec.finish();
    assert_eq!(b.num_rows(), 2);
    assert_eq!(strings(&b, 0), [Some("clé".into()), None]);
    assert_eq!(b.column(1).as_binary::<i32>().value(0), "clé".as_bytes());
    assert_eq!(strings(&b, 2), [Some("t2".into()), None]); // the last header wins
    assert_eq!(
        b.column(3)
            .as_primitive::<Int32Type>()
            .iter()
            .collect::<Vec<_>>(),
        [Some(2), None]
    );
    assert_eq!(
        strings(&b, 4),
        [Some("orders".into()), Some("orders".into())]
    );
    assert_eq!(b.column(5).as_primitive::<Int32Type>().values(), &[7, 7]);
    assert_eq!(i64s(&b, 6), [Some(500), Some(501)]);
    let ts = b.column(7).as_primitive::<TimestampMicrosecondType>();
    assert_eq!(ts.values(), &[1_700_000_000_123_000, 1_700_000_000_124_000]);
    assert_eq!(
        i64s(&b, 8),
        [Some(1_700_000_000_123), Some(1_700_000_000_124)]
    );
    assert_eq!(strings(&b, 9), [Some("{}".into()), None]);
}

#[test]
fn absent_timestamps_are_null() {
    let cols = [col("ts", "timestamp(ms)", "__timestamp", FormatKind::Raw)];
    let mut dec = RowDecoder::new(&cols, &FormatSpec::raw(false), None).unwrap();
    let mut rec = value_rec(b"x", 0);
    rec.timestamp = -1;
    dec.append(&rec).unwrap();
    assert!(dec.finish().column(0).is_null(0));
}

#[test]
fn key_fields_with_a_key_format() {
    let cols = [
        ColumnSpec::new(
            "user_id",
            DataType::Int64,
            Source::parse_with_key("__key:/user", FormatKind::Json, Some(FormatKind::Json))
                .unwrap(),
        ),
        json_col("v", "string", "/v"),
    ];
    assert!(RowDecoder::new(&cols, &FormatSpec::json(), None).is_err());
    let mut dec = RowDecoder::new(&cols, &FormatSpec::json(), Some(&FormatSpec::json())).unwrap();
    let mut rec = value_rec(br#"{"v": "a"}"#, 0);
    rec.key = Some(br#"{"user": 77}"#);
    dec.append(&rec).unwrap();
    rec.key = None;
    dec.append(&rec).unwrap();
    rec.key = Some(b"{broken");
    let e = dec.append(&rec).unwrap_err();
    assert_eq!(
        e.to_string(),
        "key (json): invalid JSON at byte 1: expected a string key (near \"broken\")"
    );
    let b = dec.finish();
    assert_eq!(i64s(&b, 0), [Some(77), None]);
}

use arrow_schema::DataType;

#[test]
fn csv_by_index_and_by_name() {
    let c = FormatKind::Csv;
    let cols = [
        col("id", "int64", "id", c),
        col("price", "decimal(8, 2)", "2", c),
        col("when", "timestamp(s)", "when", c),
        col("note", "string", "note", c),
        col("flag", "bool", "4", c),
    ];
    let format = FormatSpec::Csv {
        delimiter: b'|',
        quote: b'"',
        null: Some("\\N".into()),
        names: Some(vec![
            "id".into(),
            "when".into(),
            "price".into(),
            "note".into(),
        ]),
        tombstones: Tombstones::default(),
    };
    let mut dec = RowDecoder::new(&cols, &format, None).unwrap();
    let (b, errors) = decode_values(
        &mut dec,
        &[
            "1|2024-01-01T00:00:00Z|9.99|\"a|b \"\"q\"\"\"|t\n",
            "2|1704067200|\\N|\"\\N\"|",
            "3|bad|1|x|no",
            "4\r\n",
        ],
    );
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0]
            .contains("column \"when\" (CSV field \"when\"): cannot read \"bad\" as timestamp(s)"),
        "{}",
        errors[0]
    );
    assert_eq!(i64s(&b, 0), [Some(1), Some(2), Some(4)]);
    let price = b.column(1).as_primitive::<Decimal128Type>();
    assert_eq!(price.value_as_string(0), "9.99");
    assert!(price.is_null(1) && price.is_null(2));
    let when = b.column(2).as_primitive::<TimestampSecondType>();
    assert_eq!(when.value(0), 1704067200);
    assert_eq!(when.value(1), 1704067200);
    assert_eq!(
        strings(&b, 3),
        [Some("a|b \"q\"".into()), Some("\\N".into()), None]
    );
    let flag = b.column(4).as_boolean();
    assert!(flag.value(0) && flag.is_null(1) && flag.is_null(2));

    let unknown = [col("x", "int64", "nope", c)];
    let e = RowDecoder::new(&unknown, &format, None)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("CSV field \"nope\" is not among the format's names"),
        "{e}"
    );
    let nested = [col("x", "list<int64>", "0", c)];
    assert!(RowDecoder::new(&nested, &format, None).is_err());
}

#[test]
fn raw_values() {
    let r = FormatKind::Raw;
    let cols = [
        col("text", "string", "__value", r),
        col("n", "int64", "__value", r),
    ];
    let mut dec = RowDecoder::new(&cols, &FormatSpec::raw(true), None).unwrap();
    let (b, errors) = decode_values(&mut dec, &["42", "x", "-7\n"]);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("column \"n\" (value): cannot read \"x\" as int64"),
        "{}",
        errors[0]
    );
    assert_eq!(strings(&b, 0), [Some("42".into()), Some("-7\n".into())]);
    assert_eq!(i64s(&b, 1), [Some(42), Some(-7)]);
    let mut bin = RowDecoder::new(&raw_columns(false), &FormatSpec::raw(false), None).unwrap();
    bin.append(&value_rec(b"\x00\xff", 0)).unwrap();
    let mut tomb = value_rec(b"", 1);
    tomb.value = None;
    bin.append(&tomb).unwrap();
    let b = bin.finish();
    assert_eq!(b.column(0).as_binary::<i32>().value(0), b"\x00\xff");
    assert!(b.column(0).is_null(1));
}

#[test]
fn tombstones_give_null_value_columns() {
    let cols = [
        json_col("a", "int64", "/a"),
        json_col("o", "int64", "__offset"),
    ];
    let mut dec = RowDecoder::new(&cols, &FormatSpec::json(), None).unwrap();
    let mut rec = value_rec(b"", 8);
    rec.value = None;
    dec.append(&rec).unwrap();
    let b = dec.finish();
    assert_eq!(i64s(&b, 0), [None]);
    assert_eq!(i64s(&b, 1), [Some(8)]);
}

#[test]
fn batches_restart_after_finish() {
    let cols = [json_col("s", "string", "/s").not_null()];
    let mut dec = RowDecoder::new(&cols, &FormatSpec::json(), None).unwrap();
    assert_eq!(dec.estimated_bytes(), 0);
    dec.append(&value_rec(br#"{"s": "abcdef"}"#, 0)).unwrap();
    assert!(dec.estimated_bytes() >= 6);
    let first = dec.finish();
    assert_eq!(first.num_rows(), 1);
    assert!(!first.schema().field(0).is_nullable());
    assert_eq!(dec.rows(), 0);
    assert_eq!(dec.estimated_bytes(), 0);
    dec.append(&value_rec(br#"{"s": "x"}"#, 1)).unwrap();
    dec.append(&value_rec(br#"{"s": "y"}"#, 2)).unwrap();
    let second = dec.finish();
    assert_eq!(strings(&second, 0), [Some("x".into()), Some("y".into())]);
    assert_eq!(strings(&first, 0), [Some("abcdef".into())]);
    // No columns at all still counts rows.
    let mut none = RowDecoder::new(&[], &FormatSpec::json(), None).unwrap();
    none.append(&value_rec(b"{}", 0)).unwrap();
    assert_eq!(none.finish().num_rows(), 1);
}

#[test]
fn construction_errors() {
    let j = FormatSpec::json();
    let dup = [json_col("a", "int64", "/a"), json_col("a", "string", "/b")];
    assert!(matches!(
        RowDecoder::new(&dup, &j, None),
        Err(SchemaError::DuplicateColumn(_))
    ));
    let f16 = [ColumnSpec::new(
        "h",
        DataType::Float16,
        Source::parse("/h", FormatKind::Json).unwrap(),
    )];
    let e = RowDecoder::new(&f16, &j, None).unwrap_err().to_string();
    assert!(e.contains("not supported"), "{e}");
    let csv_src = [col("a", "int64", "0", FormatKind::Csv)];
    let e = RowDecoder::new(&csv_src, &j, None).unwrap_err().to_string();
    assert!(e.contains("does not fit the json format"), "{e}");
    let raw_field = [json_col("a", "int64", "/a")];
    assert!(RowDecoder::new(&raw_field, &FormatSpec::raw(true), None).is_err());
    let same = FormatSpec::Csv {
        delimiter: b'"',
        quote: b'"',
        null: None,
        names: None,
        tombstones: Tombstones::default(),
    };
    assert!(RowDecoder::new(&csv_src, &same, None).is_err());
}

mod random_input {
    use super::*;
    use proptest::prelude::*;

    /// Every format's decoder (the fuzz target's set) over `values` as values and keys: each
    /// append adds one row or none, `finish` has exactly those rows, and the decoder still
    /// accepts a valid record afterwards.
    fn check(values: &[Vec<u8>]) {
        for (mut dec, valid) in crate::decode::every_format::decoders() {
            let mut ok = 0;
            for (i, v) in values.iter().enumerate() {
                let mut rec = value_rec(v, i as i64);
                rec.key = Some(v);
                ok += usize::from(dec.append(&rec).is_ok());
                assert_eq!(dec.rows(), ok);
            }
            let mut rec = value_rec(valid, values.len() as i64);
            rec.key = Some(b"k");
            dec.append(&rec).unwrap();
            let b = dec.finish();
            assert_eq!(b.num_rows(), ok + 1);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn random_bytes_never_panic(values in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 1..8)) {
            check(&values);
        }

        #[test]
        fn json_like_bytes_never_panic(values in prop::collection::vec(r#"[\{\}\[\]",:0-9a-z\\ .eE+-]{0,48}"#, 1..8)) {
            let values: Vec<Vec<u8>> = values.into_iter().map(String::into_bytes).collect();
            check(&values);
        }

        #[test]
        fn avro_framed_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..64)) {
            let mut v = vec![0, 0, 0, 0, 1];
            v.extend(body);
            check(&[v]);
        }
    }
}

#[test]
fn predicted_keys_of_every_length_with_and_without_spaces_around_colons() {
    // Keys of 5, 6 (matched with their colon), 7 (with their quote) and 9 bytes (byte by
    // byte), in documents written compactly, with spaces, in another order and with a key that
    // only starts like a wanted one.
    let cols = [
        json_col("a", "int64", "/abcde"),
        json_col("b", "int64", "/abcdef"),
        json_col("c", "int64", "/abcdefg"),
        json_col("d", "int64", "/abcdefghi"),
    ];
    let mut dec = RowDecoder::new(&cols, &FormatSpec::json(), None).unwrap();
    let docs = [
        r#"{"abcde":1,"abcdef":2,"abcdefg":3,"abcdefghi":4}"#,
        r#"{"abcde" : 5, "abcdef" : 6, "abcdefg" : 7, "abcdefghi" : 8}"#,
        r#"{ "abcde":9 , "abcdef":10 , "abcdefg":11 , "abcdefghi":12 }"#,
        r#"{"abcdefghi":16,"abcdefg":15,"abcdef":14,"abcde":13}"#,
        r#"{"abcdefX":0,"abcdef":18,"abcde":17,"abcdefgh":0,"abcdefg":19,"abcdefghi":20}"#,
        r#"{"abcde":21,"abcdef":22,"abcdefg":23,"abcdefghi":24}"#,
    ];
    for (i, d) in docs.iter().enumerate() {
        dec.append(&value_rec(d.as_bytes(), i as i64)).unwrap();
    }
    let b = dec.finish();
    for (c, first) in [(0, 1), (1, 2), (2, 3), (3, 4)] {
        let want: Vec<Option<i64>> = (0..6).map(|r| Some(first + 4 * r)).collect();
        assert_eq!(i64s(&b, c), want, "column {c}");
    }
}
