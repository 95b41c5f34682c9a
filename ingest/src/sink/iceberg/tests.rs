//! Iceberg sink tests against a SQLite catalog in a temporary directory: pyiceberg (an
//! independent reader, in another language) reads the table back with its schema, partition
//! spec, snapshots and rows; two sinks of one group commit into one table without losing each
//! other's offsets; a writer that lost its partition cannot commit it twice.
//!
//! Every test name contains `iceberg`, so `cargo test -p kingest iceberg` runs them all. The
//! pyiceberg test fails with a message when pyiceberg is missing (`scripts/setup.sh`).

use std::process::Command;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::RecordBatch;
use arrow_schema::{Schema, SchemaRef};
use tempfile::TempDir;

use super::*;
use crate::sink::tests::{batch, key, range, schema as all_types};

/// Every column type of the sink tests but the nanosecond timestamp (which format version 2
/// cannot hold).
pub(super) fn schema() -> SchemaRef {
    let all = all_types();
    let fields: Vec<_> = all
        .fields()
        .iter()
        .filter(|f| f.name() != "ts_ns")
        .cloned()
        .collect();
    Arc::new(Schema::new(fields))
}

pub(super) fn rows(first: i64, n: usize) -> RecordBatch {
    let b = batch(first, n, 40);
    let keep: Vec<usize> = (0..b.num_columns())
        .filter(|i| b.schema().field(*i).name() != "ts_ns")
        .collect();
    b.project(&keep).unwrap()
}

pub(super) fn config(dir: &TempDir, group: &str) -> IcebergSinkConfig {
    let uri = format!("sqlite:///{}", dir.path().join("catalog.db").display());
    let mut c = IcebergSinkConfig::new(
        CatalogConfig::Sql {
            uri,
            name: "default".into(),
        },
        "analytics.events",
        group,
    );
    c.warehouse = Some(dir.path().join("warehouse").display().to_string());
    c.partition_by = vec!["ts".into(), "bucket(4, offset)".into()];
    c
}

const PYICEBERG: &str = r#"
import json, sys
from pyiceberg.catalog.sql import SqlCatalog
uri, warehouse = sys.argv[1], sys.argv[2]
cat = SqlCatalog("default", uri=uri, warehouse=warehouse)
t = cat.load_table("analytics.events")
rows = t.scan().to_arrow().sort_by("offset")
offsets = rows.column("offset").to_pylist()
summaries = [dict(s.summary.additional_properties, operation=str(s.summary.operation))
             for s in t.snapshots()]
r = rows.to_pylist()
by = {row["offset"]: row for row in r}
def show(v):
    return None if v is None else str(v)
print(json.dumps({
    "format_version": t.metadata.format_version,
    "schema": {f.name: str(f.field_type) for f in t.schema().fields},
    "required": [f.name for f in t.schema().fields if f.required],
    "spec": [(f.name, str(f.transform), f.source_id) for f in t.spec().fields],
    "arrow_types": {f.name: str(f.type) for f in rows.schema},
    "offsets": offsets,
    "summaries": summaries,
    "row8": {k: show(v) for k, v in by[8].items()},
    "row10_null": [k for k, v in by[10].items() if v is None],
    "files": [task.file.file_path for task in t.scan().plan_files()],
    "pruned": len(list(t.scan(row_filter="offset < 5").plan_files())),
}))
"#;

#[tokio::test]
async fn iceberg_table_reads_back_with_pyiceberg() {
    if !Command::new("python3")
        .args(["-c", "import pyiceberg.catalog.sql"])
        .status()
        .is_ok_and(|s| s.success())
    {
        panic!(
            "pyiceberg is not installed: run scripts/setup.sh (it installs \
             pyiceberg[sql-sqlite,sql-postgres,pyarrow] from PyPI); this test never passes \
             without the independent reader"
        );
    }
    let dir = TempDir::new().unwrap();
    let c = config(&dir, "g");
    let (uri, warehouse) = match (&c.catalog, &c.warehouse) {
        (CatalogConfig::Sql { uri, .. }, Some(w)) => (uri.clone(), w.clone()),
        _ => unreachable!(),
    };
    let mut sink = IcebergSink::open(c.clone(), schema()).await.unwrap();
    // Two flushes of two partitions, and a partition whose records were all filtered out.
    sink.write(&key("events", 0), &rows(0, 100), range(0, 100))
        .await
        .unwrap();
    sink.write(&key("events", 1), &rows(100, 50), range(7, 57))
        .await
        .unwrap();
    let first = sink.flush().await.unwrap();
    assert!(first.iter().all(|f| f.rows > 0), "{first:?}");
    assert_eq!(first.iter().map(|f| f.rows).sum::<u64>(), 150);
    sink.write(&key("events", 0), &rows(150, 30), range(100, 130))
        .await
        .unwrap();
    sink.write(&key("events", 2), &rows(0, 0), range(0, 12))
        .await
        .unwrap();
    let second = sink.close().await.unwrap();
    assert_eq!(second.iter().filter(|f| f.rows == 0).count(), 1);

    // A new sink (a restarted process) resumes from the table.
    let reopened = IcebergSink::open(c, schema()).await.unwrap();
    let offsets = reopened.committed_offsets().await.unwrap();
    assert_eq!(
        offsets,
        CommittedOffsets::from([
            (("events".to_owned(), 0), 130),
            (("events".to_owned(), 1), 57),
            (("events".to_owned(), 2), 12),
        ])
    );

    let run = Command::new("python3")
        .args(["-c", PYICEBERG, &uri, &warehouse])
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(v["format_version"], 2);
    let offs: Vec<i64> = serde_json::from_value(v["offsets"].clone()).unwrap();
    assert_eq!(offs, (0..180).collect::<Vec<_>>(), "every row exactly once");
    let s = &v["schema"];
    assert_eq!(s["offset"], "long");
    assert_eq!(s["i8"], "int");
    assert_eq!(s["u32"], "long");
    assert_eq!(s["u64"], "decimal(20, 0)");
    assert_eq!(s["ts_ms"], "timestamp");
    assert_eq!(s["ts"], "timestamptz");
    assert_eq!(s["date"], "date");
    assert_eq!(s["amount"], "decimal(18, 3)");
    assert_eq!(s["tags"], "list<long>");
    assert_eq!(
        s["inner"],
        "struct<21: a: optional int, 22: b: optional string>"
    );
    assert_eq!(v["required"], serde_json::json!(["offset"]));
    assert_eq!(
        v["spec"],
        serde_json::json!([["ts_day", "day", 15], ["offset_bucket", "bucket[4]", 1]])
    );
    assert_eq!(v["arrow_types"]["ts_ms"], "timestamp[us]");
    // Row 8's values as pyiceberg reads them, derived from the offset like the batch's.
    let r8 = &v["row8"];
    assert_eq!(r8["u64"], (u64::MAX - 8).to_string());
    assert_eq!(r8["ts"], "2024-01-01 00:00:08.000024+00:00");
    assert_eq!(r8["ts_ms"], "2024-01-01 00:00:08");
    assert_eq!(r8["amount"], "7.508");
    assert_eq!(r8["tags"], "[80, 81]");
    assert_eq!(r8["inner"], "{'a': 24, 'b': 'ünïcode-8'}");
    assert_eq!(r8["text"], "héllo wörld 日本語 🚀 \"8\"\n");
    let null10: Vec<String> = serde_json::from_value(v["row10_null"].clone()).unwrap();
    // Every nullable column but the struct, whose fields are null instead.
    assert_eq!(null10.len(), schema().fields().len() - 2, "{null10:?}");
    // Snapshots: one per flush, the second carrying every partition's offsets.
    let sums = v["summaries"].as_array().unwrap();
    assert_eq!(sums.len(), 2);
    assert_eq!(sums[0]["operation"], "Operation.APPEND");
    assert_eq!(sums[1]["total-records"], "180");
    let offsets_json: serde_json::Value =
        serde_json::from_str(sums[1]["kingest.offsets.g"].as_str().unwrap()).unwrap();
    assert_eq!(
        offsets_json,
        serde_json::json!({"events": {"0": 130, "1": 57, "2": 12}})
    );
    // Files live under the partition directories (null timestamps in `ts_day=null`); the
    // bounds let pyiceberg prune files.
    let files = v["files"].as_array().unwrap();
    assert!(
        files
            .iter()
            .all(|f| ["/data/ts_day=2024-01-0", "/data/ts_day=null/"]
                .iter()
                .any(|d| f.as_str().unwrap().contains(d))),
        "{files:?}"
    );
    assert!(v["pruned"].as_u64().unwrap() < files.len() as u64);
}

#[tokio::test]
async fn iceberg_two_writers_of_a_group_keep_each_others_offsets() {
    let dir = TempDir::new().unwrap();
    let mut c = config(&dir, "g");
    c.partition_by.clear();
    let mut a = IcebergSink::open(c.clone(), schema()).await.unwrap();
    let mut b = IcebergSink::open(c.clone(), schema()).await.unwrap();
    // Interleaved flushes: each commit starts from a table the other has moved on.
    for round in 0..4i64 {
        a.write(
            &key("events", 0),
            &rows(round * 10, 10),
            range(round * 10, round * 10 + 10),
        )
        .await
        .unwrap();
        b.write(
            &key("events", 1),
            &rows(round * 10, 10),
            range(round * 10, round * 10 + 10),
        )
        .await
        .unwrap();
        a.flush().await.unwrap();
        b.flush().await.unwrap();
    }
    let offsets = a.committed_offsets().await.unwrap();
    assert_eq!(
        offsets,
        CommittedOffsets::from([
            (("events".to_owned(), 0), 40),
            (("events".to_owned(), 1), 40)
        ])
    );
    // A third writer in another group sees nothing of this group's.
    let other = IcebergSink::open(config(&dir, "other"), schema()).await;
    let other = match other {
        Ok(s) => s,
        Err(e) => {
            // The table is unpartitioned; partition_by must match an existing table.
            assert!(e.to_string().contains("partitioned by"), "{e}");
            let mut oc = config(&dir, "other");
            oc.partition_by.clear();
            IcebergSink::open(oc, schema()).await.unwrap()
        }
    };
    assert!(other.committed_offsets().await.unwrap().is_empty());
    let table = TableIdent::parse("analytics.events").unwrap();
    let loaded = a.catalog.load(&table).await.unwrap().unwrap();
    let rows_total: u64 = loaded
        .metadata
        .ancestry()
        .first()
        .and_then(|s| s.summary.get("total-records")?.as_str()?.parse().ok())
        .unwrap();
    assert_eq!(rows_total, 80);
}

#[tokio::test]
async fn iceberg_a_partition_handed_over_commits_from_where_the_table_is() {
    let dir = TempDir::new().unwrap();
    let mut c = config(&dir, "g");
    c.partition_by.clear();
    let mut a = IcebergSink::open(c.clone(), schema()).await.unwrap();
    a.write(&key("events", 0), &rows(0, 10), range(0, 10))
        .await
        .unwrap();
    a.flush().await.unwrap();
    // b opens now: the table it caches says partition 0 is at 10.
    let mut b = IcebergSink::open(c.clone(), schema()).await.unwrap();
    a.write(&key("events", 0), &rows(10, 10), range(10, 20))
        .await
        .unwrap();
    a.flush().await.unwrap();
    // A rebalance hands partition 0 to b, which resumes where the table is (20): its cached
    // table is older, which must not be taken for another writer's commit.
    b.write(&key("events", 0), &rows(20, 10), range(20, 30))
        .await
        .unwrap();
    b.flush().await.unwrap();
    assert_eq!(
        b.committed_offsets().await.unwrap(),
        CommittedOffsets::from([(("events".to_owned(), 0), 30)])
    );
}

#[tokio::test]
async fn iceberg_a_partition_committed_by_another_writer_is_not_committed_twice() {
    let dir = TempDir::new().unwrap();
    let mut c = config(&dir, "g");
    c.partition_by.clear();
    let mut a = IcebergSink::open(c.clone(), schema()).await.unwrap();
    let mut b = IcebergSink::open(c.clone(), schema()).await.unwrap();
    // Both read partition 0 from offset 0 (b took it over while a still wrote it).
    a.write(&key("events", 0), &rows(0, 20), range(0, 20))
        .await
        .unwrap();
    a.write(&key("events", 1), &rows(100, 5), range(0, 5))
        .await
        .unwrap();
    b.write(&key("events", 0), &rows(0, 30), range(0, 30))
        .await
        .unwrap();
    b.flush().await.unwrap();
    let err = a.flush().await.unwrap_err();
    assert!(
        matches!(&err, SinkError::CommitConflict { partition, found: 30, .. } if partition.partition == 0),
        "{err}"
    );
    // Partition 1 (not contested) was committed; partition 0 holds b's rows only.
    let offsets = b.committed_offsets().await.unwrap();
    assert_eq!(
        offsets,
        CommittedOffsets::from([
            (("events".to_owned(), 0), 30),
            (("events".to_owned(), 1), 5)
        ])
    );
    let table = TableIdent::parse("analytics.events").unwrap();
    let loaded = b.catalog.load(&table).await.unwrap().unwrap();
    let total = loaded.metadata.ancestry()[0].summary["total-records"].clone();
    assert_eq!(total, "35");
    // The failed sink refuses further work.
    assert!(matches!(
        a.write(&key("events", 1), &rows(5, 1), range(5, 6)).await,
        Err(SinkError::Poisoned(_))
    ));
    let _ = rows(0, 1).column(0).as_primitive::<Int64Type>().value(0);
}

#[tokio::test]
async fn iceberg_an_existing_table_must_fit_the_job() {
    let dir = TempDir::new().unwrap();
    let c = config(&dir, "g");
    IcebergSink::open(c.clone(), schema()).await.unwrap();
    let mut other = c.clone();
    other.partition_by = vec!["hour(ts)".into()];
    let e = IcebergSink::open(other, schema())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("partitioned by day(ts), bucket(4, offset)"),
        "{e}"
    );
    let narrower = Arc::new(Schema::new(vec![arrow_schema::Field::new(
        "offset",
        arrow_schema::DataType::Utf8,
        false,
    )]));
    let e = IcebergSink::open(c, narrower)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("the table has type long"), "{e}");
}

#[tokio::test]
async fn iceberg_reset_records_offsets_in_a_snapshot_without_files() {
    let dir = TempDir::new().unwrap();
    let mut c = config(&dir, "g");
    c.partition_by.clear();
    let mut sink = IcebergSink::open(c.clone(), schema()).await.unwrap();
    sink.write(&key("events", 0), &rows(0, 10), range(0, 10))
        .await
        .unwrap();
    sink.write(&key("events", 1), &rows(10, 10), range(0, 10))
        .await
        .unwrap();
    sink.close().await.unwrap();
    let moved = CommittedOffsets::from([(("events".to_owned(), 0), 500)]);
    let id = record_offsets(&c, &moved).await.unwrap();
    assert!(id.is_some());
    // Once recorded, recording the same offsets changes nothing.
    assert_eq!(record_offsets(&c, &moved).await.unwrap(), None);
    assert_eq!(
        table_offsets(&c).await.unwrap(),
        CommittedOffsets::from([
            (("events".to_owned(), 0), 500),
            (("events".to_owned(), 1), 10)
        ])
    );
    // The rows stay: the snapshot added no file.
    let reopened = IcebergSink::open(c, schema()).await.unwrap();
    let table = TableIdent::parse("analytics.events").unwrap();
    let loaded = reopened.catalog.load(&table).await.unwrap().unwrap();
    let top = &loaded.metadata.ancestry()[0];
    assert_eq!(top.summary["added-data-files"], "0");
    assert_eq!(top.summary["total-records"], "20");
}
