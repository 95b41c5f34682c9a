//! The JSON edge cases and tombstones as docs/config.md decides them, with their exact rows
//! and messages: a document that is not an object, a repeated key, a number for a string
//! column, and what a null or empty value becomes under each `tombstones` setting.

use super::*;
use crate::schema::{parse_type, Source};
use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{Array, RecordBatch};

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

/// A record of topic `events`, partition 3, with `value` (`None`: a null value).
fn rec(value: Option<&[u8]>, offset: i64) -> RecordContext<'_> {
    RecordContext {
        topic: "events",
        partition: 3,
        offset,
        timestamp: 1_000,
        key: Some(b"k"),
        value,
        headers: Headers::default(),
    }
}

/// Appends each value; returns the batch and, per refused record, its offset and message.
fn decode(dec: &mut RowDecoder, values: &[Option<&str>]) -> (RecordBatch, Vec<(i64, String)>) {
    let mut errors = Vec::new();
    for (i, v) in values.iter().enumerate() {
        if let Err(e) = dec.append(&rec(v.map(str::as_bytes), i as i64)) {
            assert_eq!(
                (e.topic.as_str(), e.partition, e.offset),
                ("events", 3, i as i64)
            );
            errors.push((e.offset, e.to_string()));
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
fn a_document_that_is_not_an_object_is_a_bad_record() {
    let cols = [
        json_col("a", "int64", "/a"),
        json_col("o", "int64", "__offset"),
    ];
    let mut dec = RowDecoder::new(&cols, &FormatSpec::json(), None).unwrap();
    let (b, errors) = decode(
        &mut dec,
        &[
            Some(r#"{"a": 1}"#),
            Some("[]"),
            Some(r#"[{"a": 2}]"#),
            Some(r#""text""#),
            Some("42"),
            Some(" true"),
            Some("null"),
            Some("[1, "),
            Some("{}"),
        ],
    );
    let expected = |found: &str| format!("value (json): expected a JSON object, found {found}");
    assert_eq!(
        errors,
        [
            (1, expected("an array")),
            (2, expected("an array")),
            (3, expected("a string")),
            (4, expected("a number")),
            (5, expected("a boolean")),
            (6, expected("null")),
            // Not JSON at all: the syntax error, not the kind.
            (
                7,
                "value (json): invalid JSON at byte 4: expected a value (near \"\")".to_owned()
            ),
        ]
    );
    // Only the objects became rows; an empty object is a row of NULLs.
    assert_eq!(i64s(&b, 0), [Some(1), None]);
    assert_eq!(i64s(&b, 1), [Some(0), Some(8)]);
}

#[test]
fn a_job_reading_the_whole_document_or_an_index_takes_any_value() {
    let cols = [json_col("doc", "string", "")];
    let mut dec = RowDecoder::new(&cols, &FormatSpec::json(), None).unwrap();
    let (b, errors) = decode(&mut dec, &[Some("[1, 2]"), Some("\"x\""), Some("{}")]);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(
        strings(&b, 0),
        [Some("[1, 2]".into()), Some("x".into()), Some("{}".into())]
    );

    let cols = [json_col("first", "int64", "/0")];
    let mut dec = RowDecoder::new(&cols, &FormatSpec::json(), None).unwrap();
    let (b, errors) = decode(&mut dec, &[Some("[7, 8]"), Some(r#"{"0": 9}"#), Some("5")]);
    assert!(errors.is_empty(), "{errors:?}");
    // A scalar where the pointer goes deeper: the column is absent from it.
    assert_eq!(i64s(&b, 0), [Some(7), Some(9), None]);
}

#[test]
fn a_repeated_key_keeps_its_last_value() {
    let cols = [
        json_col("a", "int64", "/a"),
        json_col("s", "string", "/s"),
        json_col("x", "int64", "/n/x"),
        json_col("y", "int64", "/n/y"),
        json_col("st", "struct<p: int64, q: string>", "/st"),
    ];
    let mut dec = RowDecoder::new(&cols, &FormatSpec::json(), None).unwrap();
    let (b, errors) = decode(
        &mut dec,
        &[
            Some(r#"{"a": 1, "s": "first", "a": 2, "s": "second", "a": 3}"#),
            // The last `n` has no `x`: nothing of the first `n` survives.
            Some(r#"{"n": {"x": 1, "y": 2}, "n": {"y": 3}}"#),
            Some(r#"{"n": {"x": 1, "x": 4}}"#),
            Some(r#"{"st": {"p": 1, "q": "a", "p": 5}, "st": {"q": "b", "q": "c"}}"#),
            // Every occurrence is read: one that does not fit fails the record.
            Some(r#"{"a": "x", "a": 4}"#),
        ],
    );
    assert_eq!(
        errors,
        [(
            4,
            "column \"a\" (JSON /a): cannot read \"x\" as int64".to_owned()
        )]
    );
    assert_eq!(i64s(&b, 0), [Some(3), None, None, None]);
    assert_eq!(strings(&b, 1), [Some("second".into()), None, None, None]);
    assert_eq!(i64s(&b, 2), [None, None, Some(4), None]);
    assert_eq!(i64s(&b, 3), [None, Some(3), None, None]);
    let st = b.column(4).as_struct();
    assert_eq!(
        st.column(0)
            .as_primitive::<Int64Type>()
            .iter()
            .collect::<Vec<_>>(),
        [None, None, None, None]
    );
    assert_eq!(st.column(1).as_string::<i32>().value(3), "c");
    assert!(st.is_null(0) && st.is_valid(3));
}

#[test]
fn numbers_and_booleans_for_a_string_column_keep_their_json_text() {
    let cols = [json_col("s", "string", "/s")];
    let mut dec = RowDecoder::new(&cols, &FormatSpec::json(), None).unwrap();
    let (b, errors) = decode(
        &mut dec,
        &[
            Some(r#"{"s": 42}"#),
            Some(r#"{"s": 1.50}"#),
            Some(r#"{"s": -1e3}"#),
            Some(r#"{"s": true}"#),
            Some(r#"{"s": {"k": [1, 2]}}"#),
        ],
    );
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(
        strings(&b, 0),
        [
            Some("42".into()),
            Some("1.50".into()),
            Some("-1e3".into()),
            Some("true".into()),
            Some(r#"{"k": [1, 2]}"#.into()),
        ]
    );
}

/// Columns reading the value, the key and the offset, and a decoder for `format`.
fn tombstone_decoder(format: FormatSpec, tombstones: Tombstones) -> RowDecoder {
    let kind = format.kind();
    let value = match kind {
        FormatKind::Json => json_col("v", "string", "/v"),
        FormatKind::Csv => col("v", "string", "0", kind),
        _ => col("v", "string", "__value", kind),
    };
    let cols = [
        value,
        col("k", "string", "__key", kind),
        col("o", "int64", "__offset", kind),
    ];
    RowDecoder::new(&cols, &format.with_tombstones(tombstones), None).unwrap()
}

#[test]
fn tombstones_become_null_rows_by_default() {
    let mut dec = tombstone_decoder(FormatSpec::json(), Tombstones::default());
    let (b, errors) = decode(&mut dec, &[None, Some(""), Some(r#"{"v": "x"}"#)]);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(strings(&b, 0), [None, None, Some("x".into())]);
    assert_eq!(strings(&b, 1), vec![Some("k".to_owned()); 3]);
    assert_eq!(i64s(&b, 2), [Some(0), Some(1), Some(2)]);

    // CSV: an empty value is a tombstone too, not a row of one empty field.
    let mut dec = tombstone_decoder(FormatSpec::csv(), Tombstones::NullRow);
    let (b, errors) = decode(&mut dec, &[None, Some(""), Some("x")]);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(strings(&b, 0), [None, None, Some("x".into())]);

    // Raw: an empty value is an empty value; only null is a tombstone.
    let mut dec = tombstone_decoder(FormatSpec::raw(true), Tombstones::NullRow);
    let (b, errors) = decode(&mut dec, &[None, Some("")]);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(strings(&b, 0), [None, Some(String::new())]);

    // A value column that is not nullable refuses the null row.
    let cols = [json_col("v", "string", "/v").not_null()];
    let mut dec = RowDecoder::new(&cols, &FormatSpec::json(), None).unwrap();
    let (_, errors) = decode(&mut dec, &[None]);
    assert_eq!(
        errors,
        [(
            0,
            "column \"v\" (JSON /v): null or missing, but the column is not nullable".to_owned()
        )]
    );
}

#[test]
fn tombstones_error_and_skip() {
    for format in [
        FormatSpec::json(),
        FormatSpec::csv(),
        FormatSpec::raw(false),
    ] {
        let raw = format.kind() == FormatKind::Raw;
        let mut dec = tombstone_decoder(format.clone(), Tombstones::Error);
        let good = if format.kind() == FormatKind::Json {
            r#"{"v": "x"}"#
        } else {
            "x"
        };
        let (b, errors) = decode(&mut dec, &[None, Some(""), Some(good)]);
        let mut expected = vec![(
            0,
            "null value (a tombstone), refused by format.tombstones = \"error\"".to_owned(),
        )];
        if !raw {
            expected.push((
                1,
                "empty value (a tombstone), refused by format.tombstones = \"error\"".to_owned(),
            ));
        }
        assert_eq!(errors, expected, "{format:?}");
        let want_offsets = if raw {
            vec![Some(1), Some(2)]
        } else {
            vec![Some(2)]
        };
        assert_eq!(i64s(&b, 2), want_offsets, "{format:?}");

        let mut dec = tombstone_decoder(format.clone(), Tombstones::Skip);
        let mut skipped = Vec::new();
        for (i, v) in [None, Some(&b""[..]), Some(good.as_bytes())]
            .into_iter()
            .enumerate()
        {
            if let Err(e) = dec.append(&rec(v, i as i64)) {
                assert!(e.is_skipped_tombstone(), "{e}");
                skipped.push((e.offset, e.to_string()));
            }
        }
        let mut expected = vec![(
            0,
            "null value (a tombstone), dropped by format.tombstones = \"skip\"".to_owned(),
        )];
        if !raw {
            expected.push((
                1,
                "empty value (a tombstone), dropped by format.tombstones = \"skip\"".to_owned(),
            ));
        }
        assert_eq!(skipped, expected, "{format:?}");
        assert_eq!(i64s(&dec.finish(), 2), want_offsets, "{format:?}");
    }
}
