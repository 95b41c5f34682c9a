//! `kingest compact` on a Delta table written by a running `kingest run`, read by the
//! `deltalake` Python package and polars (independent readers of the log and its checkpoints).
//!
//! - `OPTIMIZE` of over a thousand small files while the job runs: the live file count drops
//!   to what the target size allows (a second plan finds nothing to merge), deltalake and
//!   polars read exactly the same rows before and after, `kingest check` and the `txn`
//!   versions are unchanged; then compactions while records keep arriving, until one commit
//!   shows the job committed between its read and its commit, and the table still holds every
//!   record once. Then retention: `VACUUM` deletes the removed files once past the retention,
//!   log cleanup deletes the commits before the newest checkpoint, and the table reads the
//!   same and takes the job's next commits.
//! - `kingest compact --execute` killed with SIGKILL at random moments, 20 times, while the
//!   job writes: after every kill deltalake reads each partition's offsets exactly once, from
//!   0 up to the table's `txn` version; a last compaction completes, and a `VACUUM` leaves
//!   exactly the live files on disk (the killed compactions' files were never referenced).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use kingest_tests::ingest::compact::{caught_up, compact_json, sink_offsets, ClickProducer};
use kingest_tests::ingest::delta::{app_id, delta_exactly_once, delta_sink, read_delta, DeltaRead};
use kingest_tests::ingest::job::{source, PARTITION_OFFSET_COLUMNS};
use kingest_tests::ingest::kill::{SplitMix, CLICK_COLUMNS};
use kingest_tests::ingest::{end_offsets, kingest, Job};
use kingest_tests::peers::nisshi::Nisshi;

const TOPIC: &str = "clicks";
const PARTITIONS: i32 = 4;

/// Flushing every 25 rows or 40 ms: the thousand small files of the compaction test.
const SMALL: (usize, &str) = (25, "40ms");

/// A job flushing each partition every `rows` rows or `age`.
fn job(
    broker: &str,
    group: &str,
    table: &Path,
    (rows, age): (usize, &str),
    target: &str,
    extra: &str,
) -> String {
    format!(
        r#"{}{CLICK_COLUMNS}{PARTITION_OFFSET_COLUMNS}
[flush]
rows = {rows}
age = "{age}"
{}
[sink.compaction]
target_file_size = "{target}"
{extra}"#,
        source(broker, TOPIC, group),
        delta_sink(table, "checkpoint_interval = 25")
    )
}

/// Data files on disk (not the log, not temporary files).
fn data_files(table: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![table.to_path_buf()];
    while let Some(d) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('_') || name.starts_with('.') {
                continue;
            }
            if e.path().is_dir() {
                dirs.push(e.path());
            } else if name.ends_with(".parquet") {
                out.push(e.path());
            }
        }
    }
    out
}

/// The commit files of `_delta_log/`, by version, parsed: one JSON action per line.
fn commits(table: &Path) -> BTreeMap<i64, Vec<serde_json::Value>> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(table.join("_delta_log"))
        .unwrap()
        .flatten()
    {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(v) = name.strip_suffix(".json").filter(|v| v.len() == 20) else {
            continue;
        };
        let Ok(text) = std::fs::read_to_string(e.path()) else {
            continue; // removed by a log cleanup meanwhile
        };
        let actions = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        out.insert(v.parse().unwrap(), actions);
    }
    out
}

fn apps(group: &str) -> Vec<String> {
    (0..PARTITIONS).map(|p| app_id(group, TOPIC, p)).collect()
}

/// The table's `txn` versions as end offsets (partitions without one left out).
fn txn_ends(read: &DeltaRead, group: &str) -> BTreeMap<i32, i64> {
    (0..PARTITIONS)
        .filter_map(|p| Some((p, read.txns[&app_id(group, TOPIC, p)]?)))
        .collect()
}

/// deltalake's rows as sorted JSON texts, for comparing two reads.
fn row_texts(read: &DeltaRead) -> Vec<String> {
    let mut rows: Vec<String> = read
        .rows
        .iter()
        .map(|r| serde_json::to_string(r).unwrap())
        .collect();
    rows.sort();
    rows
}

async fn wait_for_files(table: &Path, n: usize, job: &mut Job) {
    let deadline = Instant::now() + Duration::from_secs(300);
    while data_files(table).len() < n {
        assert!(job.try_wait().is_none(), "{}", job.log_tail());
        assert!(
            Instant::now() < deadline,
            "{n} files not written in 5 minutes"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn merged_inputs(done: &serde_json::Value) -> u64 {
    done["done"]["rewritten"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["inputs"].as_u64().unwrap())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delta_optimize_and_vacuum_of_a_running_jobs_thousand_files() {
    kingest_tests::ingest::delta::require_delta_readers();
    let broker = Nisshi::start();
    broker.create_topic(TOPIC, PARTITIONS as u32);
    let work = tempfile::tempdir().unwrap();
    let table = work.path().join("table");
    let config = work.path().join("job.toml");
    let log = work.path().join("kingest.log");
    const GROUP: &str = "delta-compact";
    std::fs::write(
        &config,
        job(&broker.addr(), GROUP, &table, SMALL, "256KiB", ""),
    )
    .unwrap();
    kingest_tests::ingest::kingest_binary();
    let mut running = Job::start(&config, &log, false);

    let producer = ClickProducer::start(broker.addr(), TOPIC, PARTITIONS, 120, 0);
    wait_for_files(&table, 1050, &mut running).await;
    let produced = producer.stop().await;
    let end = end_offsets(produced.keys());
    caught_up(&config, &end, &mut running).await;
    let before = read_delta(&table, &apps(GROUP));
    let offsets_before = sink_offsets(&config);
    assert!(before.files >= 1000, "{} live files", before.files);
    delta_exactly_once(&before, GROUP, TOPIC, &end);

    // The plan changes nothing.
    let plan = compact_json(&config, false);
    assert!(
        plan["plan"]["rewrites"].as_array().unwrap().len() >= PARTITIONS as usize,
        "{plan}"
    );
    assert_eq!(read_delta(&table, &apps(GROUP)).version, before.version);

    // Executed while the job runs (idle: nothing new arrives).
    let done = compact_json(&config, true);
    let version = done["done"]["version"].as_i64().expect("a commit");
    let after = read_delta(&table, &apps(GROUP));
    eprintln!(
        "{} live files -> {}: {} merged, version {version}, {:.2} s",
        before.files,
        after.files,
        merged_inputs(&done),
        done["seconds"].as_f64().unwrap()
    );
    assert!(
        after.files * 20 < before.files,
        "{} -> {}",
        before.files,
        after.files
    );
    // Down to the target: nothing is left to merge.
    let again = compact_json(&config, false);
    assert_eq!(again["plan"]["rewrites"], serde_json::json!([]), "{again}");
    assert_eq!(
        row_texts(&after),
        row_texts(&before),
        "deltalake reads other rows"
    );
    assert!(after.polars_same_rows);
    assert_eq!(after.txns, before.txns, "the txn versions moved");
    assert_eq!(
        sink_offsets(&config),
        offsets_before,
        "kingest check changed"
    );
    // The commit is an OPTIMIZE: dataChange false on every action, no txn, tags kept.
    let optimize = &commits(&table)[&version];
    assert_eq!(optimize[0]["commitInfo"]["operation"], "OPTIMIZE");
    assert!(optimize.iter().all(|a| a.get("txn").is_none()));
    for a in optimize.iter().skip(1) {
        let action = a.get("add").or_else(|| a.get("remove")).unwrap();
        assert_eq!(action["dataChange"], false, "{a}");
        assert!(action["tags"]["kingest.offsets"].is_string(), "{a}");
    }
    assert!(optimize
        .iter()
        .filter_map(|a| a.get("add"))
        .all(|a| a["stats"].as_str().unwrap().contains("\"numRecords\"")));

    // Compactions while records keep arriving, until one shows a commit of the job between
    // its read and its own commit (appends do not conflict with an OPTIMIZE).
    let producer = ClickProducer::start(broker.addr(), TOPIC, PARTITIONS, 120, produced.len());
    let mut interleaved = false;
    for _ in 0..30 {
        let on_disk = data_files(&table).len();
        wait_for_files(&table, on_disk + 120, &mut running).await;
        let done = compact_json(&config, true);
        let Some(v) = done["done"]["version"].as_i64() else {
            continue;
        };
        let read_version = commits(&table)[&v][0]["commitInfo"]["readVersion"]
            .as_i64()
            .unwrap();
        if read_version < v - 1 {
            interleaved = true;
            break;
        }
    }
    assert!(
        interleaved,
        "no compaction overlapped a commit of the job in 30 runs"
    );
    let mut all = produced;
    all.extend(producer.stop().await);
    let end = end_offsets(all.keys());
    caught_up(&config, &end, &mut running).await;
    compact_json(&config, true);
    let compacted = read_delta(&table, &apps(GROUP));
    assert_eq!(
        delta_exactly_once(&compacted, GROUP, TOPIC, &end).len(),
        all.len()
    );

    // Retention: the removed files and the log before the newest checkpoint go.
    let retained = work.path().join("retained.toml");
    std::fs::write(
        &retained,
        job(
            &broker.addr(),
            GROUP,
            &table,
            SMALL,
            "256KiB",
            "[sink.retention]\nmax_age = \"1s\"\n",
        ),
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let on_disk = data_files(&table).len();
    let vacuum = compact_json(&retained, true);
    let vacuumed = vacuum["plan"]["vacuum"].as_array().unwrap().len();
    let cleaned = vacuum["plan"]["log_cleanup"].as_array().unwrap().len();
    eprintln!("VACUUM: {on_disk} data files, {vacuumed} deleted; log cleanup: {cleaned} files");
    let read = read_delta(&table, &apps(GROUP));
    assert_eq!(
        data_files(&table).len(),
        read.files,
        "only live files are left"
    );
    assert_eq!(on_disk - vacuumed, read.files);
    assert!(cleaned > 0, "{vacuum}");
    // What is left of the log starts at the checkpoint `_last_checkpoint` names.
    let oldest = *commits(&table).keys().next().unwrap();
    assert!(oldest > 0, "commit 0 was not cleaned up");
    let hint: serde_json::Value =
        serde_json::from_slice(&std::fs::read(table.join("_delta_log/_last_checkpoint")).unwrap())
            .unwrap();
    assert_eq!(hint["version"].as_i64(), Some(oldest));
    assert!(table
        .join(format!("_delta_log/{oldest:020}.checkpoint.parquet"))
        .exists());
    assert_eq!(
        row_texts(&read),
        row_texts(&compacted),
        "VACUUM changed the rows"
    );
    assert_eq!(sink_offsets(&config), sink_offsets(&retained));

    // The job goes on committing after the cleanup; everything is there once.
    let next = all.len();
    let producer = ClickProducer::start(broker.addr(), TOPIC, PARTITIONS, 120, next);
    tokio::time::sleep(Duration::from_millis(600)).await;
    all.extend(producer.stop().await);
    let end = end_offsets(all.keys());
    caught_up(&config, &end, &mut running).await;
    let read = read_delta(&table, &apps(GROUP));
    assert_eq!(
        delta_exactly_once(&read, GROUP, TOPIC, &end).len(),
        all.len()
    );
    assert!(running.try_wait().is_none(), "{}", running.log_tail());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delta_sigkill_during_optimize_never_loses_or_doubles_a_row() {
    kingest_tests::ingest::delta::require_delta_readers();
    let broker = Nisshi::start();
    broker.create_topic(TOPIC, PARTITIONS as u32);
    let work = tempfile::tempdir().unwrap();
    let table = work.path().join("table");
    let config = work.path().join("job.toml");
    let log = work.path().join("kingest.log");
    const GROUP: &str = "delta-compact-kill";
    // Each partition flushes once a second (4 files a second), slowly enough that the
    // compactions which finish keep the live table small (with the 40 ms flushes of the test
    // above this test took 312 to 605 s, as the Iceberg one did before the same change).
    let text = job(&broker.addr(), GROUP, &table, (100_000, "1s"), "256KiB", "");
    std::fs::write(&config, text).unwrap();
    kingest_tests::ingest::kingest_binary();
    let mut running = Job::start(&config, &log, false);
    let producer = ClickProducer::start(broker.addr(), TOPIC, PARTITIONS, 40, 0);

    let seed = std::env::var("KINGEST_SIGKILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x6465_6c74_6163_6f6d_u64);
    let mut rng = SplitMix(seed);
    let mut moments = Vec::new();
    // How long a compaction takes here, so kill moments spread over all of it (reading,
    // writing, the commit, the checkpoint): one runs to the end first, and every one that
    // finishes before its kill widens the estimate.
    wait_for_files(&table, 40, &mut running).await;
    let timed = Instant::now();
    compact_json(&config, true);
    let mut span = timed.elapsed().as_millis() as u64 * 13 / 10 + 2;
    let (mut kills, mut finished, mut attempts) = (0, 0, 0);
    while kills < 20 {
        attempts += 1;
        assert!(
            attempts < 200,
            "only {kills} kills landed during a compaction in 200 tries; moments {moments:?}"
        );
        // Let the job write new small files to merge.
        let live = data_files(&table).len();
        wait_for_files(&table, live + 8, &mut running).await;
        let mut compact = kingest(&["compact", config.to_str().unwrap(), "--execute"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let started = Instant::now();
        let delay = rng.millis(1, span);
        tokio::time::sleep(delay).await;
        match compact.try_wait().unwrap() {
            None => {
                compact.kill().unwrap();
                compact.wait().unwrap();
                kills += 1;
                moments.push(format!("kill+{}ms", delay.as_millis()));
                // Every row once, from offset 0 up to where the table says the job resumes.
                let read = read_delta(&table, &apps(GROUP));
                let ends = txn_ends(&read, GROUP);
                delta_exactly_once(&read, GROUP, TOPIC, &ends);
            }
            Some(status) => {
                let mut err = String::new();
                std::io::Read::read_to_string(compact.stderr.as_mut().unwrap(), &mut err).unwrap();
                assert!(status.success(), "compaction failed: {err}");
                finished += 1;
                span = span.max(started.elapsed().as_millis() as u64 * 13 / 10 + 2);
                moments.push(format!("done<{}ms", delay.as_millis()));
            }
        }
        assert!(
            running.try_wait().is_none(),
            "the job stopped: {}",
            running.log_tail()
        );
    }
    let produced = producer.stop().await;
    let end = end_offsets(produced.keys());
    caught_up(&config, &end, &mut running).await;
    // A last compaction, not killed, completes; then nothing is left to merge.
    let last = compact_json(&config, true);
    assert!(last["done"]["version"].is_i64(), "{last}");
    assert_eq!(
        compact_json(&config, false)["plan"]["rewrites"],
        serde_json::json!([])
    );
    let read = read_delta(&table, &apps(GROUP));
    eprintln!(
        "{kills} kills, {finished} compactions finished, kill moments within {span} ms, {} records, {} live files, {} on disk; seed {seed}, moments {moments:?}",
        produced.len(),
        read.files,
        data_files(&table).len()
    );
    let rows = delta_exactly_once(&read, GROUP, TOPIC, &end);
    assert_eq!(
        rows.len(),
        produced.len(),
        "seed {seed}, moments {moments:?}"
    );
    // The killed compactions' files were never referenced: a VACUUM past them leaves exactly
    // the live files.
    let retained = work.path().join("retained.toml");
    std::fs::write(
        &retained,
        job(
            &broker.addr(),
            GROUP,
            &table,
            (100_000, "1s"),
            "256KiB",
            "[sink.retention]\nmax_age = \"1s\"\n",
        ),
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    compact_json(&retained, true);
    let vacuumed = read_delta(&table, &apps(GROUP));
    assert_eq!(data_files(&table).len(), vacuumed.files);
    assert_eq!(row_texts(&vacuumed), row_texts(&read));
}
