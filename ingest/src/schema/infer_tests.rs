//! JSON inference tests (Avro column tests live with the Avro decoder's, which has the
//! schemas and an independent writer at hand).

use super::*;
use crate::decode::{FormatSpec, RecordContext, RowDecoder};
use crate::schema::format_type;

fn infer(samples: &[&str]) -> Result<Vec<(String, String)>, SchemaError> {
    let samples: Vec<&[u8]> = samples.iter().map(|s| s.as_bytes()).collect();
    Ok(infer_json_schema(&samples)?
        .into_iter()
        .map(|c| {
            assert!(c.nullable);
            assert_eq!(
                c.source,
                Source::Value(Field::Pointer(vec![c.name.clone()]))
            );
            (c.name, format_type(&c.data_type))
        })
        .collect())
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn pinot_events() {
    let got = infer(&[
        r#"{"ts": 1644586485807, "uuid": "93633f7c01d54453a144", "count": 807}"#,
        r#"{"ts": 1644586485836, "uuid": "87ebf97feead4e848a2e", "count": 41}"#,
    ])
    .unwrap();
    assert_eq!(
        got,
        pairs(&[("ts", "int64"), ("uuid", "string"), ("count", "int64")])
    );
}

#[test]
fn merging_across_samples() {
    let got = infer(&[
        r#"{"n": 1, "x": null, "l": [1, 2], "o": {"a": 1}, "m": "s", "b": true}"#,
        r#"{"n": 2.5, "l": [3.5], "o": {"b": [true]}, "m": 3, "new": {"deep": {}}}"#,
        r#"{"a/b": "slash", "e": []}"#,
    ])
    .unwrap();
    assert_eq!(
        got,
        pairs(&[
            ("n", "float64"),
            ("x", "string"),
            ("l", "list<float64>"),
            ("o", "struct<a: int64, b: list<bool>>"),
            ("m", "string"),
            ("b", "bool"),
            ("new", "struct<deep: struct<>>"),
            ("a/b", "string"),
            ("e", "list<string>"),
        ])
    );
}

#[test]
fn bad_samples_are_reported() {
    let e = infer(&[r#"{"a": 1}"#, "[1, 2]"]).unwrap_err().to_string();
    assert!(e.contains("sample 1 is not a JSON object"), "{e}");
    let e = infer(&[r#"{"a": }"#]).unwrap_err().to_string();
    assert!(e.contains("sample 0 is not valid JSON"), "{e}");
    assert!(infer(&[]).is_err());
    assert!(infer(&["{}"]).is_err());
    // Deep nesting is cut off as text rather than recursing without bound.
    let deep = format!(r#"{{"d": {}1{}}}"#, "[".repeat(100), "]".repeat(100));
    let got = infer(&[&deep]).unwrap();
    assert!(got[0].1.starts_with("list<list<"), "{got:?}");
    assert!(got[0].1.contains("list<string>"), "{got:?}");
}

#[test]
fn inferred_columns_decode_their_samples() {
    let samples = [
        r#"{"id": 1, "tags": ["a"], "pos": {"x": 1.5}, "any": {"k": [1]}}"#,
        r#"{"id": 2, "tags": [], "pos": {"x": 2}, "any": "text"}"#,
    ];
    let bytes: Vec<&[u8]> = samples.iter().map(|s| s.as_bytes()).collect();
    let cols = infer_json_schema(&bytes).unwrap();
    let mut dec = RowDecoder::new(&cols, &FormatSpec::json(), None).unwrap();
    for (i, s) in samples.iter().enumerate() {
        dec.append(&RecordContext {
            topic: "t",
            partition: 0,
            offset: i as i64,
            timestamp: 0,
            key: None,
            value: Some(s.as_bytes()),
            headers: Default::default(),
        })
        .unwrap();
    }
    let b = dec.finish();
    assert_eq!(b.num_rows(), 2);
    use arrow_array::cast::AsArray;
    let any = b.column(3).as_string::<i32>();
    assert_eq!(any.value(0), r#"{"k": [1]}"#);
    assert_eq!(any.value(1), "text");
}
