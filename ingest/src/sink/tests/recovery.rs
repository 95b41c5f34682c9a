//! Crash recovery on a local directory: leftovers of a dead process are removed or rolled
//! forward, a live process's files are left alone, and a writer killed with SIGKILL at random
//! moments never leaves a duplicate, a gap or unrecorded data.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use tempfile::TempDir;

use super::*;
use crate::sink::{ParquetSink, Sink};

/// Writes `n` rows of `t-0` from offset `first`, `per_day` rows a day.
async fn write(sink: &mut ParquetSink, first: i64, n: usize, per_day: i64) {
    let next = first + n as i64;
    sink.write(&key("t", 0), &batch(first, n, per_day), range(first, next))
        .await
        .unwrap();
}

/// Where the sink resumes `t-0` (0 when it holds no offset).
async fn next_offset(sink: &ParquetSink) -> i64 {
    let offsets = sink.committed_offsets().await.unwrap();
    offsets.get(&("t".to_owned(), 0)).copied().unwrap_or(0)
}

/// The sink holds offset `next` for `t-0` and nothing else.
async fn assert_committed(sink: &ParquetSink, next: i64) {
    assert_eq!(
        sink.committed_offsets().await.unwrap(),
        BTreeMap::from([(("t".to_owned(), 0), next)])
    );
}

#[tokio::test]
async fn sink_parquet_recovery_removes_stray_and_truncated_tmp_files() {
    let dir = TempDir::new().unwrap();
    let mut sink = open(dir.path()).await;
    write(&mut sink, 0, 100, 1000).await;
    sink.flush().await.unwrap();
    // A later commit whose process died mid-write: its temporary file is cut short.
    write(&mut sink, 100, 300, 1000).await;
    let done = sink.flush().await.unwrap();
    let tmp = unrename(&done[0].path);
    let bytes = std::fs::read(&tmp).unwrap();
    std::fs::write(&tmp, &bytes[..bytes.len() / 2]).unwrap();
    // Garbage under a temporary name, in the root and in a partition directory.
    std::fs::write(
        dir.path().join(".x-1-00000000000000000000-abc.parquet.tmp"),
        b"PAR1 garbage",
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("date=2024-01-01")).unwrap();
    std::fs::write(
        dir.path()
            .join("date=2024-01-01/.y-0-00000000000000000005-def.parquet.tmp"),
        b"",
    )
    .unwrap();
    // Other people's files are not touched.
    std::fs::write(dir.path().join(".notes.tmp"), b"keep").unwrap();
    drop(sink);

    let sink = open(dir.path()).await;
    let mut removed = sink.recovery().removed.clone();
    removed.sort();
    assert_eq!(removed.len(), 3, "{removed:?}");
    assert!(removed.contains(&tmp));
    assert!(sink.recovery().rolled_forward.is_empty());
    let files = files_under(dir.path());
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(files.contains(&".notes.tmp".to_owned()));
    // The truncated commit's offsets are not counted: the engine re-reads from 100.
    assert_committed(&sink, 100).await;
}

#[tokio::test]
async fn sink_parquet_recovery_rolls_an_interrupted_commit_forward() {
    let dir = TempDir::new().unwrap();
    let mut sink = open_dated(dir.path()).await;
    write(&mut sink, 0, 90, 30).await;
    let done = sink.flush().await.unwrap();
    assert_eq!(done.len(), 4);
    // Died after renaming the first two files of the commit: the other two are complete,
    // fsynced temporary files.
    let tmps: Vec<String> = done[2..].iter().map(|c| unrename(&c.path)).collect();
    drop(sink);

    let sink = open_dated(dir.path()).await;
    let mut rolled = sink.recovery().rolled_forward.clone();
    rolled.sort();
    let mut want: Vec<String> = done[2..].iter().map(|c| c.path.clone()).collect();
    want.sort();
    assert_eq!(rolled, want);
    for t in &tmps {
        assert!(!Path::new(t).exists());
    }
    let union = concat(&done.iter().map(|c| read_file(&c.path)).collect::<Vec<_>>());
    assert_same_rows(&sort_by_offset(&union), &batch(0, 90, 30));
    assert_committed(&sink, 90).await;
}

#[tokio::test]
async fn sink_parquet_recovery_removes_a_torn_commit() {
    let dir = TempDir::new().unwrap();
    let mut sink = open_dated(dir.path()).await;
    write(&mut sink, 0, 60, 30).await;
    sink.flush().await.unwrap();
    write(&mut sink, 60, 60, 30).await;
    let done = sink.flush().await.unwrap();
    assert!(done.len() >= 2);
    // Died in phase 1: one file complete, another never finished (gone), none renamed.
    let kept = unrename(&done[0].path);
    for c in &done[1..] {
        std::fs::remove_file(&c.path).unwrap();
    }
    drop(sink);

    let sink = open_dated(dir.path()).await;
    assert_eq!(sink.recovery().removed, vec![kept.clone()]);
    assert!(!Path::new(&kept).exists());
    assert_committed(&sink, 60).await;
}

#[tokio::test]
async fn sink_parquet_recovery_leaves_a_live_writers_files_alone() {
    let dir = TempDir::new().unwrap();
    let mut live = open(dir.path()).await;
    write(&mut live, 0, 50, 1000).await;
    let before = files_under(dir.path());
    assert_eq!(before.len(), 1);
    // A second process starts while the first is writing.
    let second = open(dir.path()).await;
    assert!(second.recovery().removed.is_empty());
    assert_eq!(second.recovery().in_use.len(), 1);
    assert_eq!(files_under(dir.path()), before);
    assert!(second.committed_offsets().await.unwrap().is_empty());
    let done = live.flush().await.unwrap();
    assert_same_rows(&read_file(&done[0].path), &batch(0, 50, 1000));
    assert_committed(&second, 50).await;
}

const CHILD_ENV: &str = "KINGEST_SINK_KILL_TEST_DIR";

/// Run as a child process by the test below (does nothing otherwise): writes partition `t-0`
/// from the sink's committed offset on, in batches of 37 rows, committing every two batches
/// (with `partition_by`, so commits span several files), until it is killed.
#[test]
fn sink_parquet_kill_test_child_writer() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let mut sink = open_dated(Path::new(&dir)).await;
        let mut next = next_offset(&sink).await;
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::time::Instant::now() < deadline {
            for _ in 0..2 {
                write(&mut sink, next, 37, 25).await;
                next += 37;
            }
            sink.flush().await.unwrap();
        }
    });
}

/// The rows stored for `t-0`, in file order, and the committed offset.
async fn stored(dir: &Path) -> (Vec<i64>, i64) {
    let sink = open_dated(dir).await;
    let next = next_offset(&sink).await;
    let mut rows = Vec::new();
    for (path, _, _) in sink.committed_files().await.unwrap() {
        let b = read_file(&path);
        rows.extend(
            b.column(0)
                .as_primitive::<Int64Type>()
                .values()
                .iter()
                .copied(),
        );
    }
    rows.sort_unstable();
    (rows, next)
}

#[tokio::test]
async fn sink_parquet_survives_sigkill_at_random_moments() {
    let dir = TempDir::new().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut last_next = 0;
    // Kill after different delays: mid-write, mid-fsync, mid-rename, between commits.
    for (round, delay_ms) in [40u64, 95, 150, 7, 260, 33, 120, 75]
        .into_iter()
        .enumerate()
    {
        let mut child = std::process::Command::new(&exe)
            .args([
                "sink::tests::recovery::sink_parquet_kill_test_child_writer",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        tokio::time::sleep(Duration::from_millis(150 + delay_ms)).await;
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let (rows, next) = stored(dir.path()).await;
        // Exactly the offsets [0, next), each once: no loss, no duplicate, nothing unrecorded.
        assert_eq!(rows, (0..next).collect::<Vec<_>>(), "round {round}");
        assert!(
            next >= last_next,
            "round {round}: committed offset went back"
        );
        last_next = next;
        let leftovers: Vec<_> = files_under(dir.path())
            .into_iter()
            .filter(|f| f.ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "round {round}: {leftovers:?}");
    }
    assert!(last_next > 0, "the child wrote something");
}
