//! Offset markers: offsets a flush covered without rows are recorded in a zero-row file, a
//! reopened sink resumes past them, superseded markers are deleted after the newer file is
//! durable, a crash in between is harmless, recovery handles marker temporary files, and
//! `partition_by` and object stores place markers consistently.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use object_store::memory::InMemory;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use tempfile::TempDir;

use super::*;
use crate::sink::{CommittedFile, ParquetSink, Sink};

fn empty() -> RecordBatch {
    batch(0, 0, 1000)
}

fn offsets_of(entries: &[(&str, i32, i64)]) -> BTreeMap<(String, i32), i64> {
    entries
        .iter()
        .map(|(t, p, o)| (((*t).to_owned(), *p), *o))
        .collect()
}

/// The `.parquet` files under `dir` (recursively), relative and sorted.
fn parquet_under(dir: &Path) -> Vec<String> {
    files_under(dir)
        .into_iter()
        .filter(|f| f.ends_with(".parquet"))
        .collect()
}

/// Asserts `c` is an offset marker of `key` recording `next`: zero rows, the sink's schema,
/// and `[next, next)` in its footer.
fn assert_marker(c: &CommittedFile, key: &PartitionKey, next: i64) {
    assert_eq!(
        (&c.partition, c.offsets, c.rows),
        (key, range(next, next), 0)
    );
    let b = read_file(&c.path);
    assert_eq!(b.num_rows(), 0);
    assert_eq!(b.schema().fields(), schema().fields());
    let md = footer(&c.path);
    assert_eq!(md.file_metadata().num_rows(), 0);
    let meta = offsets_json(&md);
    assert_eq!(
        meta["offsets"][&key.topic][key.partition.to_string()],
        serde_json::json!([next, next])
    );
    assert_eq!(meta["group"], "test-group");
}

#[tokio::test]
async fn sink_parquet_marker_records_offsets_without_rows_for_a_reopened_sink() {
    let dir = TempDir::new().unwrap();
    let mut sink = open(dir.path()).await;
    let k = key("t", 0);
    sink.write(&k, &batch(0, 100, 1000), range(0, 100))
        .await
        .unwrap();
    let data = sink.flush().await.unwrap();
    let data_bytes = std::fs::read(&data[0].path).unwrap();
    // Everything read since was filtered out or bad: no rows, the offsets still advance.
    sink.write(&k, &empty(), range(100, 180)).await.unwrap();
    sink.write(&k, &empty(), range(180, 250)).await.unwrap();
    // An empty range with nothing open records nothing.
    sink.write(&key("t", 1), &empty(), range(7, 7))
        .await
        .unwrap();
    let done = sink.flush().await.unwrap();
    assert_eq!(done.len(), 1, "{done:?}");
    assert_marker(&done[0], &k, 250);
    assert_eq!(
        Path::new(&done[0].path).parent().unwrap(),
        dir.path(),
        "a marker goes where a file of rows would"
    );
    // The file of rows is exactly as it was.
    assert_eq!(std::fs::read(&data[0].path).unwrap(), data_bytes);
    assert_eq!(parquet_under(dir.path()).len(), 2);

    // Another process (or the same after a crash) resumes past the rowless offsets.
    let reopened = open(dir.path()).await;
    assert_eq!(reopened.recovery(), &Default::default());
    assert_eq!(
        reopened.committed_offsets().await.unwrap(),
        offsets_of(&[("t", 0, 250)])
    );
    drop(sink);
}

#[tokio::test]
async fn sink_parquet_marker_follows_the_roll_policy_and_close() {
    let dir = TempDir::new().unwrap();
    let mut c = config(dir.path());
    c.roll.max_age = Duration::from_secs(3600);
    let mut sink = ParquetSink::open(c.clone(), schema()).await.unwrap();
    let k = key("t", 2);
    sink.write(&k, &empty(), range(0, 40)).await.unwrap();
    // Not due yet: nothing is written before max_age.
    assert!(!sink.should_flush());
    assert!(sink.flush_due().await.unwrap().is_empty());
    assert!(parquet_under(dir.path()).is_empty());
    // Rows that follow before the commit is due join it: their file covers the gap, no
    // marker is written.
    sink.write(&k, &batch(40, 10, 1000), range(40, 50))
        .await
        .unwrap();
    let done = sink.flush().await.unwrap();
    assert_eq!(done.len(), 1);
    assert_eq!((done[0].offsets, done[0].rows), (range(0, 50), 10));
    drop(sink);

    // With max_age reached the rowless commit is due, like one with rows.
    c.roll.max_age = Duration::ZERO;
    let mut sink = ParquetSink::open(c.clone(), schema()).await.unwrap();
    sink.write(&k, &empty(), range(50, 60)).await.unwrap();
    assert!(sink.should_flush());
    let due = sink.flush_due().await.unwrap();
    assert_eq!(due.len(), 1);
    assert_marker(&due[0], &k, 60);
    // And close commits what is open.
    sink.write(&k, &empty(), range(60, 75)).await.unwrap();
    let closed = sink.close().await.unwrap();
    assert_eq!(closed.len(), 1);
    assert_marker(&closed[0], &k, 75);
    assert_eq!(
        open(dir.path()).await.committed_offsets().await.unwrap(),
        offsets_of(&[("t", 2, 75)])
    );
    // The marker at 60 was superseded by the one at 75 and is gone.
    assert!(!Path::new(&due[0].path).exists());
    assert_eq!(parquet_under(dir.path()).len(), 2);
}

#[tokio::test]
async fn sink_parquet_marker_superseded_by_a_newer_file_is_deleted() {
    let dir = TempDir::new().unwrap();
    let mut sink = open(dir.path()).await;
    let k = key("t", 0);
    let other = key("t", 1);
    sink.write(&k, &empty(), range(0, 50)).await.unwrap();
    sink.write(&other, &empty(), range(0, 5)).await.unwrap();
    let first = sink.flush().await.unwrap();
    assert_eq!(first.len(), 2);
    let m0 = first.iter().find(|c| c.partition == k).unwrap().clone();
    let m1 = first.iter().find(|c| c.partition == other).unwrap().clone();
    assert_marker(&m0, &k, 50);
    // A marker superseded by a marker.
    sink.write(&k, &empty(), range(50, 90)).await.unwrap();
    let second = sink.flush().await.unwrap();
    assert_marker(&second[0], &k, 90);
    assert!(!Path::new(&m0.path).exists(), "the marker at 50 is gone");
    assert!(Path::new(&second[0].path).exists());
    // A marker superseded by a file of rows.
    sink.write(&k, &batch(90, 30, 1000), range(90, 120))
        .await
        .unwrap();
    let third = sink.flush().await.unwrap();
    assert_eq!((third[0].rows, third[0].offsets), (30, range(90, 120)));
    assert!(
        !Path::new(&second[0].path).exists(),
        "the marker at 90 is gone"
    );
    // Other partitions' markers are not superseded by it.
    assert!(Path::new(&m1.path).exists());
    let mut want = vec![m1.path.clone(), third[0].path.clone()];
    want.sort();
    let mut got: Vec<String> = parquet_under(dir.path())
        .into_iter()
        .map(|f| dir.path().join(f).display().to_string())
        .collect();
    got.sort();
    assert_eq!(got, want);
    drop(sink);
    assert_eq!(
        open(dir.path()).await.committed_offsets().await.unwrap(),
        offsets_of(&[("t", 0, 120), ("t", 1, 5)])
    );
}

#[tokio::test]
async fn sink_parquet_marker_crash_between_commit_and_deletion_is_harmless() {
    let dir = TempDir::new().unwrap();
    let k = key("t", 0);
    let mut sink = open(dir.path()).await;
    sink.write(&k, &batch(0, 20, 1000), range(0, 20))
        .await
        .unwrap();
    sink.flush().await.unwrap();
    sink.write(&k, &empty(), range(20, 100)).await.unwrap();
    let old = sink.flush().await.unwrap().remove(0);
    let kept = std::fs::read(&old.path).unwrap();
    sink.write(&k, &empty(), range(100, 200)).await.unwrap();
    let new = sink.flush().await.unwrap().remove(0);
    drop(sink);
    // The process died after the new marker's rename, before the old one's deletion.
    std::fs::write(&old.path, kept).unwrap();
    assert_eq!(parquet_under(dir.path()).len(), 3);

    // The highest `next` wins.
    let mut sink = open(dir.path()).await;
    assert_eq!(
        sink.committed_offsets().await.unwrap(),
        offsets_of(&[("t", 0, 200)])
    );
    // The scan taught the new process about the stale marker: its next flush deletes it,
    // whether or not it commits anything for that partition.
    assert!(sink.flush().await.unwrap().is_empty());
    assert!(!Path::new(&old.path).exists());
    assert!(Path::new(&new.path).exists());
    assert_eq!(parquet_under(dir.path()).len(), 2);
    // And a file of rows after it supersedes the newer one too.
    sink.write(&k, &batch(200, 10, 1000), range(200, 210))
        .await
        .unwrap();
    sink.flush().await.unwrap();
    assert!(!Path::new(&new.path).exists());
    assert_eq!(
        open(dir.path()).await.committed_offsets().await.unwrap(),
        offsets_of(&[("t", 0, 210)])
    );
}

#[tokio::test]
async fn sink_parquet_marker_a_stale_newer_marker_is_never_deleted_by_an_older_file() {
    // Two processes that both think they own a partition must not delete its last word: a
    // file ranking below a marker never supersedes it.
    let dir = TempDir::new().unwrap();
    let k = key("t", 0);
    let mut a = open(dir.path()).await;
    a.write(&k, &empty(), range(0, 500)).await.unwrap();
    let high = a.flush().await.unwrap().remove(0);
    let mut b = open(dir.path()).await;
    b.committed_offsets().await.unwrap();
    b.write(&k, &empty(), range(0, 300)).await.unwrap();
    let low = b.flush().await.unwrap().remove(0);
    // b's scan saw the marker at 500, which outranks b's own at 300: b deletes its own.
    assert!(Path::new(&high.path).exists());
    assert!(!Path::new(&low.path).exists());
    assert_eq!(
        a.committed_offsets().await.unwrap(),
        offsets_of(&[("t", 0, 500)])
    );
}

#[tokio::test]
async fn sink_parquet_marker_recovery_rolls_forward_or_removes_its_temporary_file() {
    let dir = TempDir::new().unwrap();
    let k = key("t", 0);
    let mut sink = open_dated(dir.path()).await;
    sink.write(&k, &batch(0, 10, 1000), range(0, 10))
        .await
        .unwrap();
    sink.flush().await.unwrap();
    sink.write(&k, &empty(), range(10, 60)).await.unwrap();
    let marker = sink.flush().await.unwrap().remove(0);
    drop(sink);

    // Died after the fsync, before the rename: the complete marker is moved into place.
    let tmp = unrename(&marker.path);
    let sink = open_dated(dir.path()).await;
    assert_eq!(sink.recovery().rolled_forward, vec![marker.path.clone()]);
    assert!(!Path::new(&tmp).exists());
    assert_eq!(
        sink.committed_offsets().await.unwrap(),
        offsets_of(&[("t", 0, 60)])
    );
    drop(sink);

    // Died while writing it: the cut-short temporary file is removed, the offsets it would
    // have recorded are read again.
    let tmp = unrename(&marker.path);
    let bytes = std::fs::read(&tmp).unwrap();
    std::fs::write(&tmp, &bytes[..bytes.len() - 9]).unwrap();
    let sink = open_dated(dir.path()).await;
    assert_eq!(sink.recovery().removed, vec![tmp.clone()]);
    assert!(!Path::new(&tmp).exists());
    assert_eq!(
        sink.committed_offsets().await.unwrap(),
        offsets_of(&[("t", 0, 10)])
    );
}

#[tokio::test]
async fn sink_parquet_marker_partition_by_goes_to_the_null_directory() {
    let dir = TempDir::new().unwrap();
    let (k0, k1) = (key("t", 0), key("t", 1));
    let mut sink = open_dated(dir.path()).await;
    sink.write(&k0, &batch(0, 90, 30), range(0, 90))
        .await
        .unwrap();
    sink.write(&k1, &empty(), range(0, 40)).await.unwrap();
    let first = sink.flush().await.unwrap();
    let marker = first.iter().find(|c| c.partition == k1).unwrap().clone();
    assert_marker(&marker, &k1, 40);
    let rel = Path::new(&marker.path)
        .strip_prefix(dir.path())
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(
        rel.starts_with("date=__HIVE_DEFAULT_PARTITION__/t-1-00000000000000000040-"),
        "{rel}"
    );
    // Every file, rows or not, sits one `date=` level down (rows with a null date share the
    // marker's directory).
    let files = parquet_under(dir.path());
    assert_eq!(files.len(), 5, "{files:?}");
    assert!(
        files
            .iter()
            .all(|f| f.starts_with("date=") && f.matches('/').count() == 1),
        "{files:?}"
    );
    drop(sink);

    let mut sink = open_dated(dir.path()).await;
    assert_eq!(
        sink.committed_offsets().await.unwrap(),
        offsets_of(&[("t", 0, 90), ("t", 1, 40)])
    );
    // Rows of partition 1 in dated directories supersede its marker.
    sink.write(&k1, &batch(40, 60, 30), range(40, 100))
        .await
        .unwrap();
    let rows = sink.flush().await.unwrap();
    assert!(rows.len() >= 2 && rows.iter().all(|c| c.rows > 0));
    assert!(!Path::new(&marker.path).exists());
    assert_eq!(
        open_dated(dir.path())
            .await
            .committed_offsets()
            .await
            .unwrap(),
        offsets_of(&[("t", 0, 90), ("t", 1, 100)])
    );
}

#[tokio::test]
async fn sink_parquet_marker_on_an_object_store() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let open = || {
        let store = Arc::clone(&store);
        async move {
            let mut c = ParquetSinkConfig::new("unused", "g");
            c.partition_by = Some("date".into());
            ParquetSink::open_object_store(store, "lake", c, schema())
                .await
                .unwrap()
        }
    };
    let k = key("ev", 3);
    let mut sink = open().await;
    sink.write(&k, &empty(), range(0, 70)).await.unwrap();
    let m = sink.flush().await.unwrap().remove(0);
    assert_eq!((m.offsets, m.rows), (range(70, 70), 0));
    let listed = objects(&*store).await;
    assert_eq!(listed.len(), 1, "uploaded under its final name, not staged");
    assert!(
        listed[0].starts_with("lake/date=__HIVE_DEFAULT_PARTITION__/ev-3-00000000000000000070-"),
        "{listed:?}"
    );
    let bytes = store
        .get(&ObjectPath::parse(&listed[0]).unwrap())
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(read_bytes(bytes).num_rows(), 0);
    drop(sink);

    let mut sink = open().await;
    assert_eq!(
        sink.committed_offsets().await.unwrap(),
        offsets_of(&[("ev", 3, 70)])
    );
    sink.write(&k, &batch(70, 30, 1000), range(70, 100))
        .await
        .unwrap();
    let rows = sink.flush().await.unwrap();
    assert!(rows.iter().all(|c| c.rows > 0));
    let listed = objects(&*store).await;
    assert_eq!(
        listed.len(),
        rows.len(),
        "the marker is deleted: {listed:?}"
    );
    for c in &rows {
        assert!(listed.iter().any(|l| c.path.ends_with(&l["lake/".len()..])));
    }
    assert_eq!(
        open().await.committed_offsets().await.unwrap(),
        offsets_of(&[("ev", 3, 100)])
    );
}
