//! The stdout sink: JSON lines, value by value, and what a flush reports.

use serde_json::{json, Value};

use super::*;
use crate::sink::{Sink, SinkError, StdoutSink};

#[tokio::test]
async fn sink_stdout_writes_one_json_object_per_row() {
    let mut sink = StdoutSink::with_writer(schema(), Vec::<u8>::new());
    assert!(!sink.should_flush());
    let b = batch(0, 12, 1000);
    sink.write(&key("t", 0), &b, range(0, 12)).await.unwrap();
    sink.write(&key("t", 1), &batch(100, 2, 1000), range(100, 105))
        .await
        .unwrap();
    assert!(sink.should_flush());
    let committed = sink.flush().await.unwrap();
    assert!(!sink.should_flush());
    assert_eq!(committed.len(), 2);
    assert_eq!(
        (
            committed[0].partition.clone(),
            committed[0].offsets,
            committed[0].rows
        ),
        (key("t", 0), range(0, 12), 12)
    );
    assert_eq!(
        (committed[1].offsets, committed[1].rows),
        (range(100, 105), 2)
    );
    assert_eq!(committed[0].path, "<stdout>");
    assert!(sink.committed_offsets().await.unwrap().is_empty());

    let out = String::from_utf8(sink.into_inner()).unwrap();
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 14);
    assert_eq!(committed[0].bytes + committed[1].bytes, out.len() as u64);

    let r0 = &lines[0];
    let keys: Vec<&str> = r0.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys.len(), 20, "every column, nulls included: {keys:?}");
    assert_eq!(r0["offset"], 0);
    assert_eq!(r0["i8"], -128);
    assert_eq!(r0["u64"], json!(u64::MAX));
    assert_eq!(
        r0["f64"],
        Value::Null,
        "-inf has no JSON number: written as null"
    );
    assert_eq!(r0["flag"], true);
    assert_eq!(r0["text"], "héllo wörld 日本語 🚀 \"0\"\n");
    assert_eq!(r0["blob"], "00ff0022", "binary is lowercase hex");
    assert_eq!(r0["ts"], "2024-01-01T00:00:00Z");
    assert_eq!(r0["ts_ms"], "2024-01-01T00:00:00");
    assert_eq!(r0["ts_ns"], "2024-01-01T05:30:00.000000007+05:30");
    assert_eq!(r0["date"], "2024-01-01");
    assert_eq!(r0["amount"], json!(-0.5));
    assert_eq!(r0["tags"], json!([null]));
    assert_eq!(r0["inner"], json!({"a": 0, "b": "ünïcode-0"}));

    let r1 = &lines[1];
    assert_eq!(r1["ts"], "2024-01-01T00:00:01.000003Z");
    assert_eq!(r1["amount"], json!(0.501));
    assert_eq!(r1["tags"], json!([10]));
    assert_eq!(r1["f32"], json!(0.25));
    // Row 3: null in every nullable column, written as null; its struct is valid with null
    // fields.
    let r3 = &lines[3];
    for (k, v) in r3.as_object().unwrap() {
        match k.as_str() {
            "offset" => assert_eq!(*v, 3),
            "inner" => assert_eq!(*v, json!({"a": null, "b": null})),
            _ => assert_eq!(*v, Value::Null, "{k}"),
        }
    }
    assert_eq!(lines[5]["inner"], Value::Null, "a null struct");
    assert_eq!(lines[12]["offset"], 100);
}

#[tokio::test]
async fn sink_stdout_refuses_other_schemas() {
    let mut sink = StdoutSink::with_writer(schema(), Vec::<u8>::new());
    let other = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)])),
        vec![Arc::new(arrow_array::Int64Array::from(vec![1]))],
    )
    .unwrap();
    let err = sink
        .write(&key("t", 0), &other, range(0, 1))
        .await
        .unwrap_err();
    assert!(matches!(err, SinkError::SchemaMismatch { .. }), "{err}");
    assert!(sink.close().await.unwrap().is_empty());
}
