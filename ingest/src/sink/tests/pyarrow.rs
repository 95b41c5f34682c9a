//! pyarrow reads the sink's files, one by one and as a dataset with offset markers among them:
//! a reader from another code base, in another language.
//!
//! Fails with a message when `python3 -c "import pyarrow"` fails; `scripts/setup.sh` installs
//! it.

use std::path::Path;
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

/// Reads a whole sink directory as one dataset, as users do: pyarrow's dataset API (for a
/// `partition_by` layout both without partitioning, the column being in the files, and with
/// Hive partitioning of that column's type; pyarrow's own type inference makes the column a
/// string, which clashes with the files' `date32` with or without markers), and
/// `pq.read_table` on a plain directory.
const DATASET_SCRIPT: &str = r#"
import json, sys
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
root, partitioned = sys.argv[1], sys.argv[2] == "date"
out = {}
plain = ds.dataset(root, format="parquet")
out["files"] = len(plain.files)
out["offsets"] = sorted(plain.to_table().column("offset").to_pylist())
if partitioned:
    hive = ds.partitioning(pa.schema([("date", pa.date32())]), flavor="hive")
    t = ds.dataset(root, format="parquet", partitioning=hive).to_table()
    out["hive_offsets"] = sorted(t.column("offset").to_pylist())
    out["hive_nulls"] = t.column("date").null_count
else:
    out["read_table_offsets"] = sorted(pq.read_table(root).column("offset").to_pylist())
print(json.dumps(out))
"#;

fn read_dataset(root: &Path, partition_by: Option<&str>) -> serde_json::Value {
    let run = Command::new("python3")
        .args([
            "-c",
            DATASET_SCRIPT,
            root.to_str().unwrap(),
            partition_by.unwrap_or("none"),
        ])
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "pyarrow could not read {}: {}",
        root.display(),
        String::from_utf8_lossy(&run.stderr)
    );
    serde_json::from_slice(&run.stdout).unwrap()
}

#[tokio::test]
async fn sink_parquet_dataset_with_offset_markers_reads_with_pyarrow() {
    if !Command::new("python3")
        .args(["-c", "import pyarrow"])
        .status()
        .is_ok_and(|s| s.success())
    {
        panic!("pyarrow is not installed: run scripts/setup.sh (it installs pyarrow from PyPI); this test never passes without the independent reader");
    }
    for partition_by in [None, Some("date")] {
        let dir = TempDir::new().unwrap();
        let mut c = config(dir.path());
        c.partition_by = partition_by.map(str::to_owned);
        let mut sink = ParquetSink::open(c, schema()).await.unwrap();
        let b = batch(0, 90, 30);
        sink.write(&key("events", 0), &b, range(0, 90))
            .await
            .unwrap();
        // Partition 1 has read only records without rows: a marker records its offsets.
        sink.write(&key("events", 1), &batch(0, 0, 30), range(0, 55))
            .await
            .unwrap();
        let done = sink.close().await.unwrap();
        assert_eq!(done.iter().filter(|c| c.rows == 0).count(), 1);
        let v = read_dataset(dir.path(), partition_by);
        assert_eq!(v["files"], done.len(), "{partition_by:?}: {v}");
        let offsets: Vec<i64> = (0..90).collect();
        let offsets = serde_json::json!(offsets);
        assert_eq!(v["offsets"], offsets, "{partition_by:?}");
        match partition_by {
            Some(_) => {
                assert_eq!(v["hive_offsets"], offsets);
                // The rows with a null date (every 7th row), and none from the marker.
                let nulls = (0..90).filter(|o| o % 7 == 3).count();
                assert_eq!(v["hive_nulls"], nulls);
            }
            None => assert_eq!(v["read_table_offsets"], offsets),
        }
    }
}
