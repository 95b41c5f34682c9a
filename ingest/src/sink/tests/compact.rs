//! Compaction and retention of the Parquet sink's files (`kingest compact`): merged files hold
//! the same rows and the offsets of their inputs, committed offsets never change, a writer
//! keeps committing through compactions, old files go except each partition's newest, and
//! object stores get retention but no merge.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use object_store::local::LocalFileSystem;
use object_store::ObjectStore;
use tempfile::TempDir;

use super::*;
use crate::sink::maintenance::Maintain;
use crate::sink::parquet::compact::CompactionSettings;
use crate::sink::{ParquetSink, Sink};

fn settings(target: u64) -> CompactionSettings {
    CompactionSettings {
        target_bytes: target,
        small_below: target / 4 * 3,
        min_input_files: 2,
    }
}

/// Commits `files` files of `rows` rows to each of partitions 0 and 1, offsets from 0.
async fn write_small_files(sink: &mut ParquetSink, files: i64, rows: i64) {
    for i in 0..files {
        for p in 0..2 {
            let first = i * rows;
            sink.write(
                &key("ev", p),
                &batch(first, rows as usize, 50),
                range(first, first + rows),
            )
            .await
            .unwrap();
        }
        sink.flush().await.unwrap();
    }
}

fn all_rows(dir: &Path) -> RecordBatch {
    let files: Vec<RecordBatch> = files_under(dir)
        .iter()
        .filter(|f| f.ends_with(".parquet") && !f.contains("/.") && !f.starts_with('.'))
        .map(|f| read_file(dir.join(f)))
        .collect();
    sort_by_offset(&concat(&files))
}

#[tokio::test]
async fn sink_compact_merges_small_files_and_keeps_offsets() {
    let dir = TempDir::new().unwrap();
    let mut sink = open(dir.path()).await;
    write_small_files(&mut sink, 30, 20).await;
    let before = sink.committed_offsets().await.unwrap();
    let rows_before = all_rows(dir.path());
    assert_eq!(files_under(dir.path()).len(), 60);

    let m = sink.maintenance(settings(64 << 10), None);
    let plan = m.plan().await.unwrap();
    assert!(!plan.rewrites.is_empty());
    // Planning changed nothing.
    assert_eq!(files_under(dir.path()).len(), 60);
    for r in &plan.rewrites {
        // Each group tiles its partition's offsets.
        let mut at = r.inputs[0].offsets.first;
        for f in &r.inputs {
            assert_eq!(f.offsets.first, at);
            at = f.offsets.next;
        }
        assert_eq!(r.offsets, range(r.inputs[0].offsets.first, at));
    }
    let done = m.execute(&plan).await.unwrap();
    // Merged files are finished near the target, at input boundaries.
    assert!(done.rewritten.len() >= plan.rewrites.len());
    let merged_inputs: usize = done.rewritten.iter().map(|r| r.inputs).sum();
    assert_eq!(
        merged_inputs,
        plan.rewrites.iter().map(|r| r.inputs.len()).sum::<usize>()
    );
    assert!(done.skipped.is_empty(), "{:?}", done.skipped);
    let after = files_under(dir.path());
    assert!(after.len() < 60, "{after:?}");
    // No leftovers beside the root either.
    let siblings: Vec<_> = std::fs::read_dir(dir.path().parent().unwrap())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("kingest-compact"))
        .collect();
    assert!(siblings.is_empty());
    assert_same_rows(&all_rows(dir.path()), &rows_before);
    assert_eq!(sink.committed_offsets().await.unwrap(), before);
    // A merged file's footer covers its inputs' offsets, under the sink's group.
    let merged = &done.rewritten[0];
    let meta = offsets_json(&footer(&merged.path));
    assert_eq!(meta["group"], "test-group");
    assert_eq!(meta["files"].as_array().unwrap().len(), 1);

    // The sink goes on committing into the exchanged directory.
    sink.write(&key("ev", 0), &batch(600, 5, 50), range(600, 605))
        .await
        .unwrap();
    sink.flush().await.unwrap();
    assert_eq!(
        sink.committed_offsets().await.unwrap()[&("ev".to_owned(), 0)],
        605
    );
    assert_eq!(
        all_rows(dir.path()).num_rows(),
        rows_before.num_rows() + 5,
        "the new file is beside the merged ones"
    );
}

#[tokio::test]
async fn sink_compact_partitioned_directories_one_by_one() {
    let dir = TempDir::new().unwrap();
    let mut sink = open_dated(dir.path()).await;
    // Rows of each commit fall on several days: one file per day directory per commit.
    write_small_files(&mut sink, 12, 40).await;
    let before = sink.committed_offsets().await.unwrap();
    let rows_before = all_rows(dir.path());
    let n_before = files_under(dir.path()).len();
    let m = sink.maintenance(settings(1 << 20), None);
    let plan = m.plan().await.unwrap();
    let dirs: std::collections::BTreeSet<&str> =
        plan.rewrites.iter().map(|r| r.dir.as_str()).collect();
    assert!(dirs.len() >= 3, "{dirs:?}");
    m.execute(&plan).await.unwrap();
    let after = files_under(dir.path());
    assert!(after.len() < n_before / 4, "{n_before} -> {after:?}");
    assert_same_rows(&all_rows(dir.path()), &rows_before);
    assert_eq!(sink.committed_offsets().await.unwrap(), before);
}

#[tokio::test]
async fn sink_compact_leaves_large_files_and_incomplete_commits() {
    let dir = TempDir::new().unwrap();
    let mut sink = open(dir.path()).await;
    write_small_files(&mut sink, 4, 10).await;
    // With a tiny target every file is large: nothing to merge.
    let m = sink.maintenance(settings(100), None);
    assert!(m.plan().await.unwrap().rewrites.is_empty());
    // min_input_files above the number of files: nothing either.
    let m = sink.maintenance(
        CompactionSettings {
            min_input_files: 5,
            ..settings(1 << 20)
        },
        None,
    );
    assert!(m.plan().await.unwrap().rewrites.is_empty());
}

#[tokio::test]
async fn sink_compact_skips_inputs_removed_after_the_plan() {
    let dir = TempDir::new().unwrap();
    let mut sink = open(dir.path()).await;
    write_small_files(&mut sink, 6, 10).await;
    let m = sink.maintenance(settings(1 << 20), None);
    let plan = m.plan().await.unwrap();
    assert_eq!(plan.rewrites.len(), 2);
    // Another process (a compaction, retention) took one input of partition 0's group.
    let gone = plan
        .rewrites
        .iter()
        .find(|r| r.partition.partition == 0)
        .unwrap()
        .inputs[1]
        .path
        .clone();
    std::fs::remove_file(&gone).unwrap();
    let done = m.execute(&plan).await.unwrap();
    assert_eq!(done.rewritten.len(), 1);
    assert_eq!(done.skipped.len(), 1, "{:?}", done.skipped);
    // Partition 0's other files are untouched.
    let p0 = files_under(dir.path())
        .into_iter()
        .filter(|f| f.starts_with("ev-0-"))
        .count();
    assert_eq!(p0, 5);
}

#[tokio::test]
async fn sink_compact_removes_a_killed_compactions_leftovers() {
    let dir = TempDir::new().unwrap();
    let root = dir.path().join("data");
    let mut sink = open(&root).await;
    write_small_files(&mut sink, 3, 10).await;
    // What a compaction killed after its exchange leaves: a hidden sibling with the old files
    // and a hidden subdirectory that belongs to the live directory.
    let stale = dir.path().join(".data.kingest-compact-0123");
    std::fs::create_dir_all(stale.join("_kingest_reset/x")).unwrap();
    std::fs::write(stale.join("old.parquet"), b"not read").unwrap();
    let m = sink.maintenance(settings(1 << 20), None);
    let done = m.execute(&m.plan().await.unwrap()).await.unwrap();
    assert_eq!(done.cleaned.len(), 1, "{done:?}");
    assert!(!stale.exists());
    assert!(root.join("_kingest_reset/x").is_dir());
}

fn age(path: &Path, by: Duration) {
    let f = std::fs::File::options().write(true).open(path).unwrap();
    f.set_modified(SystemTime::now() - by).unwrap();
}

#[tokio::test]
async fn sink_retention_deletes_old_files_but_each_partitions_newest() {
    let dir = TempDir::new().unwrap();
    let mut sink = open(dir.path()).await;
    write_small_files(&mut sink, 3, 10).await;
    let before = sink.committed_offsets().await.unwrap();
    // Every file is two days old.
    for f in files_under(dir.path()) {
        age(&dir.path().join(f), Duration::from_secs(2 * 86_400));
    }
    let m = sink.maintenance(settings(1 << 20), Some(Duration::from_secs(86_400)));
    let plan = m.plan().await.unwrap();
    assert_eq!(plan.expired.len(), 4, "{:?}", plan.expired);
    assert!(plan.expired.iter().all(|e| e.file.offsets.next < 30));
    // Expired files are not merged too.
    assert!(plan.rewrites.is_empty());
    let done = m.execute(&plan).await.unwrap();
    assert_eq!(done.deleted.len(), 4);
    assert_eq!(files_under(dir.path()).len(), 2);
    // The newest files hold the offsets to resume from.
    assert_eq!(sink.committed_offsets().await.unwrap(), before);
    // Young files stay.
    let m = sink.maintenance(settings(1 << 20), Some(Duration::from_secs(3 * 86_400)));
    assert!(m.plan().await.unwrap().expired.is_empty());
}

#[tokio::test]
async fn sink_object_store_retention_without_merging() {
    let dir = TempDir::new().unwrap();
    let store: Arc<dyn ObjectStore> =
        Arc::new(LocalFileSystem::new_with_prefix(dir.path()).unwrap());
    let mut c = ParquetSinkConfig::new("unused", "g");
    c.upload_part_bytes = 5 << 20;
    let mut sink = ParquetSink::open_object_store(store, "lake", c, schema())
        .await
        .unwrap();
    write_small_files(&mut sink, 3, 10).await;
    let before = sink.committed_offsets().await.unwrap();
    // Small files, but no merging on an object store: the plan says why.
    let plan = sink
        .maintenance(settings(1 << 20), None)
        .plan()
        .await
        .unwrap();
    assert!(plan.rewrites.is_empty());
    assert!(
        plan.notes.iter().any(|n| n.contains("object stores")),
        "{:?}",
        plan.notes
    );
    for f in files_under(dir.path()) {
        age(&dir.path().join(f), Duration::from_secs(2 * 86_400));
    }
    let m = sink.maintenance(settings(1 << 20), Some(Duration::from_secs(86_400)));
    let plan = m.plan().await.unwrap();
    assert_eq!(plan.expired.len(), 4);
    m.execute(&plan).await.unwrap();
    assert_eq!(files_under(dir.path()).len(), 2);
    assert_eq!(sink.committed_offsets().await.unwrap(), before);
}
