//! The Delta sink against a local directory and the in-memory object store: commits and their
//! actions, offsets read back, offsets without rows, partitions, two writers of one table
//! (retry past each other's versions; fencing of a partition committed by another writer),
//! checkpoints read back by a fresh sink, and refusals of tables it cannot write.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use object_store::memory::InMemory;

use super::log::{commit_path, parse_commit, Add, Read};
use super::*;

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("page", DataType::Utf8, true),
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            true,
        ),
    ]))
}

fn batch(ids: std::ops::Range<i64>) -> RecordBatch {
    let n = ids.clone().count();
    RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(Int64Array::from_iter_values(ids.clone())) as ArrayRef,
            Arc::new(StringArray::from_iter_values(
                ids.clone().map(|i| format!("/p/{}", i % 3)),
            )),
            Arc::new(
                TimestampMillisecondArray::from_iter_values(
                    ids.map(|i| 1_700_000_000_000 + i * 3_600_000),
                )
                .with_timezone("UTC"),
            ),
        ],
    )
    .inspect(|b| assert_eq!(b.num_rows(), n))
    .unwrap()
}

fn config(dir: &std::path::Path) -> DeltaSinkConfig {
    let mut c = DeltaSinkConfig::new(dir.display().to_string(), "g");
    c.checkpoint_interval = 3;
    c
}

fn key(p: i32) -> PartitionKey {
    PartitionKey::new("events", p)
}

/// The actions of version `v` of the local table at `dir`.
fn version(dir: &std::path::Path, v: i64) -> Vec<Read> {
    let path = dir.join(commit_path(v));
    parse_commit("v", &std::fs::read(&path).unwrap()).unwrap()
}

#[tokio::test]
async fn delta_sink_creates_the_table_and_commits_each_flush_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut sink = DeltaSink::open(config(dir.path()), schema()).await.unwrap();
    assert_eq!(sink.version(), 0);
    assert!(sink.committed_offsets().await.unwrap().is_empty());
    sink.write(&key(0), &batch(0..10), OffsetRange::new(0, 10))
        .await
        .unwrap();
    sink.write(&key(1), &batch(10..15), OffsetRange::new(100, 107))
        .await
        .unwrap();
    // Offsets without rows (filtered records) still advance.
    sink.write(&key(1), &batch(0..0), OffsetRange::new(107, 120))
        .await
        .unwrap();
    let files = sink.flush().await.unwrap();
    assert_eq!(files.len(), 2);
    assert_eq!(sink.version(), 1);
    let actions = version(dir.path(), 1);
    let txns: Vec<(String, i64)> = actions
        .iter()
        .filter_map(|a| match a {
            Read::Txn(t) => Some((t.app_id.clone(), t.version)),
            _ => None,
        })
        .collect();
    assert_eq!(
        txns,
        vec![("g:events:0".into(), 10), ("g:events:1".into(), 120)]
    );
    let adds: Vec<&Add> = actions
        .iter()
        .filter_map(|a| match a {
            Read::Add(a) => Some(a),
            _ => None,
        })
        .collect();
    assert_eq!(adds.len(), 2);
    for a in &adds {
        assert!(dir.path().join(&a.path).is_file(), "{}", a.path);
        let stats: serde_json::Value = serde_json::from_str(a.stats.as_deref().unwrap()).unwrap();
        assert!(stats["numRecords"].as_i64().unwrap() > 0);
        assert_eq!(stats["nullCount"]["id"], 0);
    }
    // A fresh process resumes from the txns.
    drop(sink);
    let again = DeltaSink::open(config(dir.path()), schema()).await.unwrap();
    let offsets = again.committed_offsets().await.unwrap();
    assert_eq!(
        offsets,
        BTreeMap::from([(("events".into(), 0), 10), (("events".into(), 1), 120)])
    );
    assert_eq!(
        DeltaSink::read_offsets(again.config()).await.unwrap(),
        offsets
    );
}

#[tokio::test]
async fn delta_sink_partitions_timestamps_by_day_in_a_generated_column() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.partition_by = Some("ts".into());
    let mut sink = DeltaSink::open(c, schema()).await.unwrap();
    // 20 hours from 2023-11-14T22:13:20Z: two UTC days.
    sink.write(&key(0), &batch(0..20), OffsetRange::new(0, 20))
        .await
        .unwrap();
    let files = sink.flush().await.unwrap();
    assert_eq!(files.len(), 2);
    let mut days: Vec<Option<String>> = version(dir.path(), 1)
        .into_iter()
        .filter_map(|a| match a {
            Read::Add(a) => {
                assert!(a.path.starts_with("ts_date="), "{}", a.path);
                Some(a.partition_values["ts_date"].clone())
            }
            _ => None,
        })
        .collect();
    days.sort();
    assert_eq!(
        days,
        vec![Some("2023-11-14".into()), Some("2023-11-15".into())]
    );
    let v0 = version(dir.path(), 0);
    assert!(v0
        .iter()
        .any(|a| matches!(a, Read::MetaData(m) if m.partition_columns == ["ts_date"])));
    assert!(v0
        .iter()
        .any(|a| matches!(a, Read::Protocol(p) if p.min_writer_version == 4)));
    // The same table with another partitioning is refused.
    let err = DeltaSink::open(config(dir.path()), schema())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("partitioned by [\"ts_date\"]"),
        "{err}"
    );
}

#[tokio::test]
async fn delta_two_writers_retry_past_each_other_and_lose_nothing() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let open = || async {
        let mut c = DeltaSinkConfig::new("mem", "g");
        c.checkpoint_interval = 4;
        DeltaSink::open_object_store(store.clone(), "t", c, schema())
            .await
            .unwrap()
    };
    let mut a = open().await;
    let mut b = open().await;
    let mut expected = BTreeMap::new();
    for round in 0..6i64 {
        let (fa, fb) = (round * 10, round * 10);
        a.write(&key(0), &batch(fa..fa + 10), OffsetRange::new(fa, fa + 10))
            .await
            .unwrap();
        b.write(&key(1), &batch(fb..fb + 10), OffsetRange::new(fb, fb + 10))
            .await
            .unwrap();
        // Both believe the next version is theirs; one retries.
        a.flush().await.unwrap();
        b.flush().await.unwrap();
        expected.insert(("events".to_owned(), 0), fa + 10);
        expected.insert(("events".to_owned(), 1), fb + 10);
    }
    assert_eq!(a.version(), 11);
    assert_eq!(b.version(), 12);
    let c = open().await;
    assert_eq!(c.committed_offsets().await.unwrap(), expected);
    let state = table::load(&c.log, true, None).await.unwrap();
    assert_eq!(state.version, 12);
    assert_eq!(
        state.files.unwrap().len(),
        12,
        "every commit's file is live"
    );
}

#[tokio::test]
async fn delta_a_partition_committed_by_another_writer_fences_this_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut old = DeltaSink::open(config(dir.path()), schema()).await.unwrap();
    let mut new = DeltaSink::open(config(dir.path()), schema()).await.unwrap();
    // Both start partition 0 at offset 0: `old` lost it without noticing, `new` owns it.
    old.write(&key(0), &batch(0..10), OffsetRange::new(0, 10))
        .await
        .unwrap();
    new.write(&key(0), &batch(0..12), OffsetRange::new(0, 12))
        .await
        .unwrap();
    new.flush().await.unwrap();
    let err = old.flush().await.unwrap_err();
    match &err {
        SinkError::Delta { source, .. } => match &**source {
            DeltaError::Fenced { theirs, ours, .. } => {
                assert_eq!((*theirs, *ours), (12, OffsetRange::new(0, 10)));
            }
            other => panic!("{other}"),
        },
        other => panic!("{other}"),
    }
    assert!(matches!(old.flush().await, Err(SinkError::Poisoned(_))));
    let offsets = DeltaSink::read_offsets(&config(dir.path())).await.unwrap();
    assert_eq!(offsets, BTreeMap::from([(("events".into(), 0), 12)]));
    // The table holds `new`'s 12 rows only.
    let state = table::load(&new.log, true, None).await.unwrap();
    assert_eq!(state.version, 1);
    assert_eq!(state.files.unwrap().len(), 1);
}

#[tokio::test]
async fn delta_checkpoints_are_written_at_the_interval_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut sink = DeltaSink::open(config(dir.path()), schema()).await.unwrap();
    for i in 0..7i64 {
        sink.write(
            &key(0),
            &batch(i * 5..i * 5 + 5),
            OffsetRange::new(i * 5, i * 5 + 5),
        )
        .await
        .unwrap();
        sink.flush().await.unwrap();
    }
    assert_eq!(sink.version(), 7);
    let log_dir = dir.path().join("_delta_log");
    assert!(log_dir
        .join("00000000000000000003.checkpoint.parquet")
        .is_file());
    assert!(log_dir
        .join("00000000000000000006.checkpoint.parquet")
        .is_file());
    let hint: serde_json::Value =
        serde_json::from_slice(&std::fs::read(log_dir.join("_last_checkpoint")).unwrap()).unwrap();
    assert_eq!(hint["version"], 6);
    assert_eq!(hint["numOfAddFiles"], 6);
    // Without the JSON commits before it, the checkpoint alone gives the state.
    for v in 0..=6 {
        std::fs::remove_file(log_dir.join(format!("{v:020}.json"))).unwrap();
    }
    let state = table::load(&sink.log, true, None).await.unwrap();
    assert_eq!(state.version, 7);
    assert_eq!(state.files.as_ref().unwrap().len(), 7);
    assert_eq!(
        DeltaSink::read_offsets(sink.config()).await.unwrap(),
        BTreeMap::from([(("events".into(), 0), 35)])
    );
}

#[tokio::test]
async fn delta_tables_this_writer_cannot_write_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("_delta_log")).unwrap();
    let schema_string = TableSchema::new(&schema(), None).unwrap().schema_string;
    let v0 = format!(
        "{{\"protocol\":{{\"minReaderVersion\":3,\"minWriterVersion\":7,\"readerFeatures\":[\"deletionVectors\"],\"writerFeatures\":[\"deletionVectors\"]}}}}\n{{\"metaData\":{{\"id\":\"x\",\"format\":{{\"provider\":\"parquet\",\"options\":{{}}}},\"schemaString\":{},\"partitionColumns\":[],\"configuration\":{{}}}}}}\n",
        serde_json::to_string(&schema_string).unwrap()
    );
    std::fs::write(dir.path().join(commit_path(0)), v0).unwrap();
    let err = DeltaSink::open(config(dir.path()), schema())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("deletionVectors"), "{err}");
    // A job whose columns differ from the table's is refused too.
    let other = tempfile::tempdir().unwrap();
    DeltaSink::open(config(other.path()), schema())
        .await
        .unwrap();
    let narrow = Arc::new(Schema::new(vec![Field::new("id", DataType::Utf8, true)]));
    let err = DeltaSink::open(config(other.path()), narrow)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("column \"id\" is \"long\" in the table"),
        "{err}"
    );
}

#[tokio::test]
async fn delta_reset_removes_whole_files_past_the_new_offset_in_one_commit() {
    let dir = tempfile::tempdir().unwrap();
    let mut sink = DeltaSink::open(config(dir.path()), schema()).await.unwrap();
    for i in 0..3i64 {
        sink.write(
            &key(0),
            &batch(i * 10..i * 10 + 10),
            OffsetRange::new(i * 10, i * 10 + 10),
        )
        .await
        .unwrap();
        sink.flush().await.unwrap();
    }
    drop(sink);
    let c = config(dir.path());
    let plan = plan_reset(&c, &[("events".into(), 0, 15), ("events".into(), 1, 50)])
        .await
        .unwrap();
    assert_eq!(plan.version, 3);
    let p0 = &plan.partitions[0];
    assert_eq!(p0.new, 10, "15 is inside [10, 20): whole files");
    assert_eq!(
        p0.removed
            .iter()
            .map(|f| (f.first, f.next))
            .collect::<Vec<_>>(),
        vec![(10, 20), (20, 30)]
    );
    assert_eq!(
        (plan.partitions[1].new, plan.partitions[1].removed.len()),
        (50, 0)
    );
    let v = apply_reset(&c, &plan).await.unwrap();
    assert_eq!(v, 4);
    assert_eq!(
        DeltaSink::read_offsets(&c).await.unwrap(),
        BTreeMap::from([(("events".into(), 0), 10), (("events".into(), 1), 50)])
    );
    let state = table::load(
        &LogStore::Local {
            root: dir.path().to_path_buf(),
        },
        true,
        None,
    )
    .await
    .unwrap();
    assert_eq!(state.files.unwrap().len(), 1);
    assert_eq!(state.tombstones.unwrap().len(), 2);
    // A plan made before another commit is refused rather than applied to a moved table.
    let stale = plan_reset(&c, &[("events".into(), 0, 0)]).await.unwrap();
    let mut again = DeltaSink::open(c.clone(), schema()).await.unwrap();
    again
        .write(&key(0), &batch(10..12), OffsetRange::new(10, 12))
        .await
        .unwrap();
    again.flush().await.unwrap();
    assert!(apply_reset(&c, &stale).await.is_err());
}

/// object_store sends a conditional PUT again when the connection closed before the answer
/// (its retry of a request it believes unsent), so when the server had executed the first one
/// the retry is refused because of our own commit. That is our commit, not another writer's:
/// before this was recognised, the sink read the version back, found its own `txn` ahead of
/// its range and stopped the run as fenced (seen through the fault proxy in
/// tests/tables_object_store.rs).
#[tokio::test]
async fn delta_a_commit_put_again_after_its_answer_was_lost_is_ours() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let log = LogStore::Store {
        store: store.clone(),
        prefix: "t".into(),
        display: "memory:///t".into(),
    };
    let ours = bytes::Bytes::from_static(b"{\"commitInfo\":{\"timestamp\":1}}\n{\"txn\":{}}\n");
    assert!(log
        .put_if_absent(&commit_path(1), ours.clone())
        .await
        .unwrap());
    // The retry: the same bytes, refused by the object the first attempt created.
    assert!(log
        .put_if_absent(&commit_path(1), ours.clone())
        .await
        .unwrap());
    // Another writer's commit of that version is not ours, and stays.
    let theirs = bytes::Bytes::from_static(b"{\"commitInfo\":{\"timestamp\":2}}\n");
    assert!(!log.put_if_absent(&commit_path(1), theirs).await.unwrap());
    assert_eq!(log.get(&commit_path(1)).await.unwrap(), Some(ours));
}
