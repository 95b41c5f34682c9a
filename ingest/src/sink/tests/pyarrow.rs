//! pyarrow reads the sink's files: a reader from another code base, in another language.
//!
//! Skipped (with a message) when `python3 -c "import pyarrow"` fails; `pip install pyarrow`
//! provides it.

use std::process::Command;

use tempfile::TempDir;

use super::*;
use crate::sink::{ParquetSink, Sink};

const SCRIPT: &str = r#"
import json, sys
import pyarrow.parquet as pq
src, out = sys.argv[1], sys.argv[2]
f = pq.ParquetFile(src)
t = f.read()
# Write pyarrow's in-memory view back with pyarrow's own writer: the Rust side compares it
# with what it gave the sink, row by row.
# (use_compliant_nested_type=False keeps the list element named "item", as Arrow names it.)
pq.write_table(t, out, use_compliant_nested_type=False)
# (Python datetimes stop at microseconds: leave the nanosecond column to the round trip.)
rows = t.drop_columns(["ts_ns"]).to_pylist()
print(json.dumps({
    "num_rows": t.num_rows,
    "types": {fld.name: str(fld.type) for fld in t.schema},
    "offsets": json.loads(f.metadata.metadata[b"kingest.offsets"]),
    "text0": rows[0]["text"],
    "blob0": rows[0]["blob"].hex(),
    "ts1": rows[1]["ts"].isoformat(),
    "amount1": str(rows[1]["amount"]),
    "inner0": rows[0]["inner"],
    "tags2": rows[2]["tags"],
    "null3": [k for k, v in rows[3].items() if v is not None],
    "inner3": rows[3]["inner"],
}))
"#;

#[tokio::test]
async fn sink_parquet_files_read_back_with_pyarrow() {
    if !Command::new("python3")
        .args(["-c", "import pyarrow"])
        .status()
        .is_ok_and(|s| s.success())
    {
        panic!("pyarrow is not installed: run scripts/setup.sh (it installs pyarrow from PyPI); this test never passes without the independent reader");
    }
    let dir = TempDir::new().unwrap();
    let mut sink = ParquetSink::open(config(dir.path()), schema())
        .await
        .unwrap();
    let b = batch(0, 300, 1000);
    sink.write(&key("events", 5), &b, range(0, 310))
        .await
        .unwrap();
    let c = sink.close().await.unwrap();
    let out = dir.path().join("_pyarrow.parquet");
    let run = Command::new("python3")
        .args(["-c", SCRIPT, &c[0].path, out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();

    assert_eq!(v["num_rows"], 300);
    assert_eq!(v["types"]["u64"], "uint64");
    assert_eq!(v["types"]["ts"], "timestamp[us, tz=UTC]");
    assert_eq!(v["types"]["ts_ns"], "timestamp[ns, tz=+05:30]");
    assert_eq!(v["types"]["date"], "date32[day]");
    assert_eq!(v["types"]["amount"], "decimal128(18, 3)");
    assert_eq!(v["types"]["tags"], "list<item: int64>");
    assert_eq!(v["types"]["inner"], "struct<a: int32, b: string>");
    assert_eq!(
        v["offsets"]["offsets"],
        serde_json::json!({"events": {"5": [0, 310]}})
    );
    assert_eq!(v["offsets"]["group"], "test-group");
    assert_eq!(v["text0"], "héllo wörld 日本語 🚀 \"0\"\n");
    assert_eq!(v["blob0"], "00ff0022");
    assert_eq!(v["ts1"], "2024-01-01T00:00:01.000003+00:00");
    assert_eq!(v["amount1"], "0.501");
    assert_eq!(v["inner0"], serde_json::json!({"a": 0, "b": "ünïcode-0"}));
    assert_eq!(v["tags2"], serde_json::json!([20, 21]));
    assert_eq!(v["null3"], serde_json::json!(["offset", "inner"]));
    assert_eq!(v["inner3"], serde_json::json!({"a": null, "b": null}));

    // Record for record: pyarrow's reading, written by pyarrow, equals what the sink got.
    assert_same_rows(&read_file(&out), &b);
}
