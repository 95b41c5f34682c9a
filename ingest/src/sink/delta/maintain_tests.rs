//! `OPTIMIZE`, `VACUUM` and log cleanup of tables the sink wrote in a temporary directory:
//! the commit's actions, the job's appends racing a compaction, two compactions racing each
//! other, and a writer whose view of the table predates a log cleanup.

use std::sync::Arc;
use std::time::Duration;

use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};

use super::log::{commit_path, parse_commit, Read, TableState};
use super::table;
use super::*;
use crate::sink::maintenance::Maintain;
use crate::sink::parquet::compact::CompactionSettings;

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("page", DataType::Utf8, true),
    ]))
}

fn batch(ids: std::ops::Range<i64>) -> RecordBatch {
    RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(Int64Array::from_iter_values(ids.clone())) as ArrayRef,
            Arc::new(StringArray::from_iter_values(
                ids.map(|i| format!("/p/{i}")),
            )),
        ],
    )
    .unwrap()
}

fn config(dir: &std::path::Path) -> DeltaSinkConfig {
    let mut c = DeltaSinkConfig::new(dir.display().to_string(), "g");
    c.checkpoint_interval = 1000;
    c
}

fn key(p: i32) -> PartitionKey {
    PartitionKey::new("events", p)
}

/// `commits` flushes of 5 rows each to partition `p`, from offset `from`.
async fn append(sink: &mut DeltaSink, p: i32, from: i64, commits: i64) {
    for i in 0..commits {
        let first = from + i * 5;
        sink.write(
            &key(p),
            &batch(first..first + 5),
            OffsetRange::new(first, first + 5),
        )
        .await
        .unwrap();
        sink.flush().await.unwrap();
    }
}

async fn maintenance(dir: &std::path::Path, retention: Option<Duration>) -> DeltaMaintenance {
    let settings = CompactionSettings {
        target_bytes: 1 << 20,
        small_below: 1 << 20,
        min_input_files: 2,
    };
    DeltaMaintenance::open(&config(dir), settings, retention)
        .await
        .unwrap()
}

async fn state(dir: &std::path::Path) -> TableState {
    let (_, log, _, _) = locate(&config(dir)).unwrap();
    table::load(&log, true, None).await.unwrap()
}

/// Data files on disk (not the log, not temporary files).
fn on_disk(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".parquet"))
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .count()
}

/// Every row of the live files, as (id, page), sorted.
fn rows(dir: &std::path::Path, state: &TableState) -> Vec<(i64, String)> {
    let mut out = Vec::new();
    for add in state.files.as_ref().unwrap().values() {
        let f = std::fs::File::open(dir.join(&add.path)).unwrap();
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f)
            .unwrap()
            .build()
            .unwrap();
        for b in reader {
            let b = b.unwrap();
            let ids = b.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
            let pages = b.column(1).as_any().downcast_ref::<StringArray>().unwrap();
            for i in 0..b.num_rows() {
                out.push((ids.value(i), pages.value(i).to_owned()));
            }
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn delta_optimize_commits_removes_and_adds_without_data_change() {
    let dir = tempfile::tempdir().unwrap();
    let mut sink = DeltaSink::open(config(dir.path()), schema()).await.unwrap();
    append(&mut sink, 0, 0, 6).await;
    append(&mut sink, 1, 100, 4).await;
    let before = state(dir.path()).await;
    let m = maintenance(dir.path(), None).await;
    let plan = m.plan().await.unwrap();
    assert_eq!(plan.rewrites.len(), 2, "{plan:?}");
    assert_eq!(plan.rewrites[0].offsets, OffsetRange::new(0, 30));
    assert_eq!(plan.rewrites[1].offsets, OffsetRange::new(100, 120));
    assert!(plan.vacuum.is_empty() && plan.log_cleanup.is_empty());

    // The job appends between the plan and the commit: no conflict, the next version.
    append(&mut sink, 1, 120, 1).await;
    let done = m.execute(&plan).await.unwrap();
    assert_eq!(done.version, Some(12), "{done:?}");
    assert_eq!(done.rewritten.len(), 2);
    let after = state(dir.path()).await;
    assert_eq!(after.files.as_ref().unwrap().len(), 3);
    assert_eq!(after.offsets("g"), {
        let mut o = before.offsets("g");
        o.insert(key(1), 125);
        o
    });
    let actions = parse_commit(
        "v",
        &std::fs::read(dir.path().join(commit_path(12))).unwrap(),
    )
    .unwrap();
    let (mut adds, mut removes) = (0, 0);
    for a in &actions {
        match a {
            Read::Add(a) => {
                adds += 1;
                assert!(!a.data_change);
                let stats: serde_json::Value =
                    serde_json::from_str(a.stats.as_deref().unwrap()).unwrap();
                let (k, range) = log::tagged_offsets(a, "g").unwrap();
                let n = stats["numRecords"].as_i64().unwrap();
                assert_eq!(n, range.next - range.first, "{k}: {stats}");
                assert_eq!(stats["minValues"]["id"], range.first);
            }
            Read::Remove(r) => {
                removes += 1;
                assert!(!r.data_change);
                assert!(r.deletion_timestamp.is_some() && r.tags.is_some());
            }
            Read::Txn(_) => panic!("an OPTIMIZE moved offsets"),
            _ => {}
        }
    }
    assert_eq!((adds, removes), (2, 10));
    let mut want = rows(dir.path(), &before);
    want.extend((120..125).map(|i| (i, format!("/p/{i}"))));
    want.sort();
    assert_eq!(rows(dir.path(), &after), want);
    // Nothing is left to merge but the one new file and its merged neighbour.
    let again = m.plan().await.unwrap();
    assert_eq!(again.rewrites.len(), 1);
    assert_eq!(again.rewrites[0].offsets, OffsetRange::new(100, 125));
}

#[tokio::test]
async fn delta_optimize_abandons_when_another_removed_its_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let mut sink = DeltaSink::open(config(dir.path()), schema()).await.unwrap();
    append(&mut sink, 0, 0, 5).await;
    let (a, b) = (
        maintenance(dir.path(), None).await,
        maintenance(dir.path(), None).await,
    );
    let (plan_a, plan_b) = (a.plan().await.unwrap(), b.plan().await.unwrap());
    assert_eq!(a.execute(&plan_a).await.unwrap().version, Some(6));
    let files = on_disk(dir.path());
    let lost = b.execute(&plan_b).await.unwrap();
    assert_eq!(lost.version, None);
    assert!(lost.rewritten.is_empty());
    assert_eq!(lost.skipped.len(), 1, "{lost:?}");
    // Its inputs left the table before it started: it wrote nothing.
    assert_eq!(on_disk(dir.path()), files);
    let s = state(dir.path()).await;
    assert_eq!(s.version, 6);
    assert_eq!(s.files.as_ref().unwrap().len(), 1);
}

#[tokio::test]
async fn delta_vacuum_and_log_cleanup_keep_the_current_table() {
    let dir = tempfile::tempdir().unwrap();
    let mut sink = DeltaSink::open(config(dir.path()), schema()).await.unwrap();
    append(&mut sink, 0, 0, 6).await;
    // A writer whose view stops at version 6 (it commits partition 1 only, later).
    let mut stale = DeltaSink::open(config(dir.path()), schema()).await.unwrap();
    let m = maintenance(dir.path(), None).await;
    m.execute(&m.plan().await.unwrap()).await.unwrap();
    append(&mut sink, 0, 30, 3).await;
    // A file no commit names, as a killed compaction leaves.
    std::fs::write(dir.path().join("orphan.parquet"), b"never committed").unwrap();
    sink.checkpoint().await.unwrap();
    let live = state(dir.path()).await;
    assert_eq!(live.version, 10);
    tokio::time::sleep(Duration::from_millis(20)).await;

    let v = maintenance(dir.path(), Some(Duration::from_millis(10))).await;
    let plan = v.plan().await.unwrap();
    // The six merged inputs and the orphan; commits 0..=9 and nothing of version 10.
    assert_eq!(plan.vacuum.len(), 7, "{:?}", plan.vacuum);
    assert!(plan.vacuum.iter().any(|f| f.rel == "orphan.parquet"));
    let cleaned: Vec<&str> = plan.log_cleanup.iter().map(|f| f.rel.as_str()).collect();
    assert_eq!(cleaned.len(), 10, "{cleaned:?}");
    assert_eq!(cleaned[0], commit_path(0));
    assert_eq!(cleaned[9], commit_path(9));
    let done = v.execute(&plan).await.unwrap();
    assert_eq!(done.deleted.len(), 17);
    // The same run merged the four files left (an OPTIMIZE, version 11) after planning
    // the VACUUM: only what the table refers to now is on disk, plus the four it just removed.
    let after = state(dir.path()).await;
    assert_eq!(done.version, Some(11));
    assert_eq!(after.files.as_ref().unwrap().len(), 1);
    assert_eq!(on_disk(dir.path()), 1 + 4);
    assert_eq!(rows(dir.path(), &after), rows(dir.path(), &live));
    assert_eq!(after.offsets("g"), live.offsets("g"));

    // The stale writer's next commit must not land in the cleaned-up range (version 7 is
    // free again) but after version 11.
    append(&mut stale, 1, 500, 1).await;
    let s = state(dir.path()).await;
    assert_eq!(s.version, 12);
    assert_eq!(s.offsets("g").get(&key(1)), Some(&505));
    assert!(!dir.path().join(commit_path(7)).exists());
    assert_eq!(
        rows(dir.path(), &s).len(),
        rows(dir.path(), &live).len() + 5
    );
}
