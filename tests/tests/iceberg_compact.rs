//! `kingest compact` on an Iceberg table written by a running `kingest run` (SQLite catalog),
//! read back by pyiceberg through the same catalog (an independent reader):
//!
//! - Over a thousand small data files, compacted while the job runs: pyiceberg sees a
//!   `replace` snapshot, the current snapshot's file count down to what the target size allows
//!   (a second plan finds nothing to rewrite), exactly the same rows before and after, and
//!   `kingest check` shows the same offsets. Then snapshot expiry (`[sink.retention]`): the
//!   expired snapshots are gone from the metadata, the files only they referenced (the
//!   rewritten inputs, old manifests and manifest lists) are deleted, every file the table
//!   still reads is there, pyiceberg reads the same rows; and the job, killed and run again to
//!   the end of the topic, resumes from the offsets the kept snapshot carries: exactly once.
//!   The job's hundreds of commits leave the metadata directory bounded: the current metadata
//!   file and the 20 its log keeps (`write.metadata.previous-versions-max`), the rest deleted
//!   after the commits that dropped them.
//! - `kingest compact --execute` killed with SIGKILL at random moments, at least 20 times,
//!   while the job commits new snapshots and records keep arriving: after every kill pyiceberg
//!   reads each partition as one contiguous run of offsets from 0 (never a row lost or read
//!   twice), and at the end the table holds every produced record exactly once. Then
//!   `remove_orphan_files` with every file made four days old: the dry run lists exactly the
//!   files pyiceberg finds no reference to (the killed compactions' outputs, a planted
//!   never-committed data file), the run deletes them and nothing pyiceberg references, and
//!   the table still reads exactly once.
//! - Snapshot expiry through a REST catalog (the test server of `peers/iceberg_rest.py`):
//!   compaction and expiry while the job runs, the expiry sent as a `remove-snapshots` update;
//!   pyiceberg finds one snapshot, the same rows and offsets, the rewritten inputs and the
//!   expired manifest lists deleted, every referenced file there, the server-written metadata
//!   directory bounded, and the job resumes exactly once.
//!
//! Kill moments come from a fixed-seed generator (`KINGEST_SIGKILL_SEED` overrides it), printed
//! with any failure. On 2 cores, with the three tests at once: about 2.5 minutes (the REST test
//! 80 s alone).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use kingest_tests::ingest::compact::{caught_up, compact_json, sink_offsets, ClickProducer};
use kingest_tests::ingest::iceberg::{
    iceberg_sink, read_table, referenced_files, rows_by_partition_offset, sqlite_uri, IcebergTable,
};
use kingest_tests::ingest::job::{source, PARTITION_OFFSET_COLUMNS};
use kingest_tests::ingest::kill::{click, static_member, SplitMix, CLICK_COLUMNS};
use kingest_tests::ingest::{end_offsets, kingest, kingest_binary, produce, Job, Produced};
use kingest_tests::peers::iceberg_rest::IcebergRest;
use kingest_tests::peers::nisshi::Nisshi;

const TOPIC: &str = "clicks";
const TABLE: &str = "lake.clicks";
const PARTITIONS: i32 = 4;
/// Flushing every 25 rows or 40 ms: the thousand small files of the compaction test.
const SMALL: (usize, &str) = (25, "40ms");

/// A job flushing each partition every `rows` rows or `age` into a table partitioned by
/// `bucket(2, id)`, so each flush of the four partitions commits up to 8 small files.
fn job(
    broker: &str,
    group: &str,
    work: &Path,
    flush: (usize, &str),
    target: &str,
    extra: &str,
) -> String {
    let sink = iceberg_sink(
        &sqlite_uri(&work.join("catalog.db")),
        &work.join("warehouse"),
        TABLE,
        "[\"bucket(2, id)\"]",
    );
    job_with(broker, group, &sink, flush, target, extra)
}

/// [`job`] with another `[sink]` table (`sink`). New tables keep 20 earlier metadata files in
/// `metadata-log` (`write.metadata.previous-versions-max`) and delete older ones (kingest's
/// default for the tables it creates).
fn job_with(
    broker: &str,
    group: &str,
    sink: &str,
    (rows, age): (usize, &str),
    target: &str,
    extra: &str,
) -> String {
    format!(
        r#"{}{}{CLICK_COLUMNS}{PARTITION_OFFSET_COLUMNS}
[flush]
rows = {rows}
age = "{age}"
{sink}properties = {{ "write.metadata.previous-versions-max" = "{METADATA_VERSIONS}" }}

[sink.compaction]
target_file_size = "{target}"
{extra}"#,
        source(broker, TOPIC, group),
        static_member(group),
    )
}

/// `write.metadata.previous-versions-max` of the tables of these tests.
const METADATA_VERSIONS: usize = 20;

/// The metadata JSON files in a table's `metadata` directory.
fn metadata_files(table_dir: &Path) -> usize {
    std::fs::read_dir(table_dir.join("metadata"))
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".metadata.json"))
        .count()
}

fn table(work: &Path) -> IcebergTable {
    read_table(&sqlite_uri(&work.join("catalog.db")), TABLE)
}

/// Every Parquet file under `dir` (committed or not).
fn parquet_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else if p.extension().is_some_and(|x| x == "parquet") {
                out.push(p);
            }
        }
    }
    out
}

fn data_dir(work: &Path) -> PathBuf {
    work.join("warehouse/lake/clicks/data")
}

/// Per partition, how many rows the table holds, failing on an offset read twice or a gap (a
/// lost row): every partition must be one run of offsets from 0.
fn contiguous(t: &IcebergTable, context: &str) -> BTreeMap<i32, i64> {
    let rows = rows_by_partition_offset(t);
    let mut next: BTreeMap<i32, i64> = BTreeMap::new();
    for (p, o) in rows.keys() {
        let n = next.entry(*p).or_insert(0);
        assert_eq!(
            *o,
            *n,
            "partition {p}: offset {o} follows {}; {context}",
            *n - 1
        );
        *n += 1;
    }
    next
}

fn exactly(t: &IcebergTable, produced: &BTreeMap<(i32, i64), Produced>, context: &str) {
    let rows = rows_by_partition_offset(t);
    let keys: Vec<&(i32, i64)> = rows.keys().collect();
    let want: Vec<&(i32, i64)> = produced.keys().collect();
    assert!(
        keys == want,
        "the table holds {} rows, {} produced; {context}",
        keys.len(),
        want.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iceberg_compaction_of_a_running_jobs_thousand_files_then_expiry() {
    let broker = Nisshi::start();
    broker.create_topic(TOPIC, PARTITIONS as u32);
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let config = w.join("job.toml");
    let log = w.join("kingest.log");
    std::fs::write(
        &config,
        job(&broker.addr(), "compact", w, SMALL, "64KiB", ""),
    )
    .unwrap();
    kingest_binary();
    let mut running = Job::start(&config, &log, false);

    let producer = ClickProducer::start(broker.addr(), TOPIC, PARTITIONS, 160, 0);
    let deadline = Instant::now() + Duration::from_secs(300);
    while parquet_files(&data_dir(w)).len() < 1050 {
        assert!(running.try_wait().is_none(), "{}", running.log_tail());
        assert!(
            Instant::now() < deadline,
            "1,050 files not written in 5 minutes"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let produced = producer.stop().await;
    let end = end_offsets(produced.keys());
    caught_up(&config, &end, &mut running).await;
    let before = table(w);
    exactly(&before, &produced, "before compaction");
    assert!(before.files >= 1000, "{} files", before.files);
    let offsets_before = sink_offsets(&config);
    // Hundreds of commits, and the metadata directory holds the current metadata file and the
    // ones its log keeps: the rest were deleted as commits dropped them.
    assert!(before.operations.len() > 2 * METADATA_VERSIONS);
    let table_dir = w.join("warehouse/lake/clicks");
    assert!(
        metadata_files(&table_dir) <= METADATA_VERSIONS + 1,
        "{} metadata files after {} commits",
        metadata_files(&table_dir),
        before.operations.len()
    );

    // The plan changes nothing.
    let plan = compact_json(&config, false);
    let rewrites = plan["plan"]["rewrites"].as_array().unwrap().clone();
    assert!(rewrites.len() >= 2, "{plan}");
    assert_eq!(table(w).operations, before.operations);

    // Executed while the job runs.
    let done = compact_json(&config, true);
    let rewritten = done["done"]["rewritten"].as_array().unwrap();
    let merged: u64 = rewritten
        .iter()
        .map(|r| r["inputs"].as_u64().unwrap())
        .sum();
    let after = table(w);
    eprintln!(
        "{} files -> {}: {merged} rewritten into {} in {:.2} s",
        before.files,
        after.files,
        rewritten.len(),
        done["seconds"].as_f64().unwrap()
    );
    assert_eq!(after.operations.last().map(String::as_str), Some("replace"));
    assert_eq!(after.operations.len(), before.operations.len() + 1);
    assert!(
        after.files * 20 < before.files,
        "{} -> {}",
        before.files,
        after.files
    );
    for f in &after.file_paths {
        let path = f.strip_prefix("file://").unwrap_or(f);
        let size = std::fs::metadata(path).unwrap().len();
        assert!(size < 2 * 64 * 1024, "{f} is {size} bytes");
    }
    assert_eq!(after.rows.len(), before.rows.len());
    assert_eq!(
        rows_by_partition_offset(&after),
        rows_by_partition_offset(&before),
        "pyiceberg reads other rows"
    );
    assert_eq!(after.offsets("compact"), before.offsets("compact"));
    assert_eq!(
        sink_offsets(&config),
        offsets_before,
        "kingest check changed"
    );
    // Down to the target: nothing is left to rewrite.
    let again = compact_json(&config, false);
    assert_eq!(again["plan"]["rewrites"], serde_json::json!([]), "{again}");

    // Retention: every snapshot but the current one is older than a second, and the current
    // one (the replace) carries the group's offsets.
    let inputs: Vec<String> = rewrites
        .iter()
        .flat_map(|r| r["inputs"].as_array().unwrap().clone())
        .map(|f| f["path"].as_str().unwrap().to_owned())
        .collect();
    std::fs::write(
        &config,
        job(
            &broker.addr(),
            "compact",
            w,
            SMALL,
            "64KiB",
            "[sink.retention]\nmax_age = \"1s\"\n",
        ),
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let expired = compact_json(&config, true);
    let deleted = expired["done"]["deleted"].as_array().unwrap();
    let kept = table(w);
    assert_eq!(kept.operations, vec!["replace".to_owned()], "{expired}");
    for p in &inputs {
        let path = p.strip_prefix("file://").unwrap_or(p);
        assert!(
            !Path::new(path).exists(),
            "{p}: a rewritten input survived expiry"
        );
    }
    for p in &kept.file_paths {
        let path = p.strip_prefix("file://").unwrap_or(p);
        assert!(Path::new(path).exists(), "{p}: a live file was deleted");
    }
    let lists = std::fs::read_dir(w.join("warehouse/lake/clicks/metadata"))
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("snap-"))
        .count();
    assert_eq!(lists, 1, "manifest lists of expired snapshots remain");
    assert!(deleted.len() > inputs.len(), "{} deleted", deleted.len());
    assert_eq!(
        rows_by_partition_offset(&kept),
        rows_by_partition_offset(&before)
    );
    assert_eq!(
        sink_offsets(&config),
        offsets_before,
        "kingest check changed"
    );

    // The job resumes from the kept snapshot's offsets: killed, records produced, run to the
    // end of the topic.
    running.child().kill().unwrap();
    running.wait();
    let more: Vec<Produced> = (produced.len()..produced.len() + 400)
        .map(|n| click(n, PARTITIONS))
        .collect();
    let at = produce(&broker.addr(), TOPIC, &more).await;
    let mut all = produced;
    all.extend(at.into_iter().zip(more));
    let status = Job::start(&config, &log, true).wait();
    assert!(
        status.success(),
        "{}",
        kingest_tests::ingest::log_tail(&log)
    );
    exactly(&table(w), &all, "after expiry and a restart");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iceberg_sigkill_during_compaction_never_loses_or_doubles_a_row() {
    let broker = Nisshi::start();
    broker.create_topic(TOPIC, PARTITIONS as u32);
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let config = w.join("job.toml");
    let log = w.join("kingest.log");
    // Each partition flushes once a second (about 8 files a second), slowly enough that the
    // compactions which finish keep the live table small: with the 40 ms flushes of the test
    // above the table grew faster than compaction shrank it and every round got slower.
    let flush = (100_000, "1s");
    let text = job(&broker.addr(), "compact-kill", w, flush, "256KiB", "");
    std::fs::write(&config, text).unwrap();
    kingest_binary();
    let mut running = Job::start(&config, &log, false);
    let producer = ClickProducer::start(broker.addr(), TOPIC, PARTITIONS, 40, 0);

    let seed = std::env::var("KINGEST_SIGKILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x0069_6365_6265_7267_u64);
    let mut rng = SplitMix(seed);
    let mut moments = Vec::new();
    let files = |w: &Path| parquet_files(&data_dir(w)).len();
    // How long a compaction takes here, so kill moments spread over all of it (reading,
    // writing, the manifests, the commit): one runs to the end first, and every one that
    // finishes before its kill updates the estimate.
    while files(w) < 40 {
        assert!(running.try_wait().is_none(), "{}", running.log_tail());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let timed = Instant::now();
    compact_json(&config, true);
    let mut span = timed.elapsed().as_millis() as u64 * 13 / 10 + 2;
    let (mut kills, mut finished, mut attempts) = (0, 0, 0);
    while kills < 20 {
        attempts += 1;
        assert!(
            attempts < 200,
            "only {kills} kills landed during a compaction in 200 tries; seed {seed}, moments {moments:?}"
        );
        // Let the job commit new small files to rewrite.
        let seen = files(w);
        while files(w) < seen + 8 {
            assert!(running.try_wait().is_none(), "{}", running.log_tail());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
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
                let context = format!("after kill {kills}; seed {seed}, moments {moments:?}");
                contiguous(&table(w), &context);
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
    compact_json(&config, true);
    let t = table(w);
    eprintln!(
        "{kills} kills, {finished} compactions finished, kill moments within {span} ms, {} \
         records, {} snapshots ({} replace), {} files; seed {seed}, moments {moments:?}",
        produced.len(),
        t.operations.len(),
        t.operations.iter().filter(|o| *o == "replace").count(),
        t.files
    );
    exactly(&t, &produced, &format!("seed {seed}, moments {moments:?}"));
    assert_eq!(contiguous(&t, "at the end"), end);
    assert!(t.operations.iter().filter(|o| *o == "replace").count() >= 2);

    // remove_orphan_files: the killed compactions left files no metadata references. Every
    // file of the table is made four days old (as if the kills were that long ago), and one
    // more realistic orphan is planted: a data file a writer wrote and never committed.
    running.child().kill().unwrap();
    running.wait();
    let table_dir = w.join("warehouse/lake/clicks");
    let planted = data_dir(w).join("00000-0-never-committed.parquet");
    std::fs::copy(&parquet_files(&data_dir(w))[0], &planted).unwrap();
    let old = std::time::SystemTime::now() - Duration::from_secs(4 * 86_400);
    let all_files = every_file(&table_dir);
    for f in &all_files {
        std::fs::File::options()
            .write(true)
            .open(f)
            .unwrap()
            .set_modified(old)
            .unwrap();
    }
    let uri = sqlite_uri(&w.join("catalog.db"));
    let referenced: BTreeSet<PathBuf> = referenced_files(&uri, TABLE, &BTreeMap::new())
        .iter()
        .map(|f| PathBuf::from(f.strip_prefix("file://").unwrap_or(f)))
        .collect();
    let unreferenced: BTreeSet<PathBuf> = all_files
        .iter()
        .filter(|f| !referenced.contains(*f))
        .cloned()
        .collect();
    let retention = "[sink.retention]\nmax_age = \"30d\"\n";
    std::fs::write(
        &config,
        job(
            &broker.addr(),
            "compact-kill",
            w,
            flush,
            "256KiB",
            retention,
        ),
    )
    .unwrap();
    let plan = compact_json(&config, false);
    let listed: BTreeSet<PathBuf> = plan["plan"]["orphans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| PathBuf::from(f["path"].as_str().unwrap().trim_start_matches("file://")))
        .collect();
    assert_eq!(listed, unreferenced, "the dry run's orphans");
    assert!(listed.contains(&planted), "{listed:?}");
    assert_eq!(every_file(&table_dir), all_files, "the dry run deleted");
    let done = compact_json(&config, true);
    let left = every_file(&table_dir);
    assert!(left.is_disjoint(&unreferenced), "orphans left");
    assert!(
        referenced.iter().all(|f| left.contains(f)),
        "a referenced file was deleted: {done}"
    );
    let orphan_data = listed
        .iter()
        .filter(|f| f.extension().is_some_and(|x| x == "parquet"));
    eprintln!(
        "remove_orphan_files: {} orphans ({} data files) of {} files",
        listed.len(),
        orphan_data.count(),
        all_files.len()
    );
    let t = table(w);
    exactly(&t, &produced, "after remove_orphan_files");
    assert_eq!(contiguous(&t, "after remove_orphan_files"), end);
}

/// Every file under `dir`, recursively.
fn every_file(dir: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.insert(p);
            }
        }
    }
    out
}

/// The manifest lists (`snap-*.avro`) in a table's `metadata` directory: one per snapshot
/// until expiry deletes them.
fn manifest_lists(table_dir: &Path) -> usize {
    std::fs::read_dir(table_dir.join("metadata"))
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("snap-"))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iceberg_rest_catalog_expiry_removes_snapshots_and_their_files() {
    let broker = Nisshi::start();
    broker.create_topic(TOPIC, PARTITIONS as u32);
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let warehouse = w.join("warehouse");
    std::fs::create_dir_all(&warehouse).unwrap();
    let rest = IcebergRest::start(&warehouse);
    let table_dir = warehouse.join("lake/clicks");
    let config = w.join("job.toml");
    let log = w.join("kingest.log");
    let sink = format!(
        "\n[sink]\ntype = \"iceberg\"\ncatalog = {{ type = \"rest\", uri = \"{}\" }}\n\
         table = \"{TABLE}\"\nwarehouse = \"{}\"\npartition_by = [\"bucket(2, id)\"]\n",
        rest.uri(),
        warehouse.display()
    );
    let group = "rest-expiry";
    let write = |extra: &str| {
        let text = job_with(&broker.addr(), group, &sink, SMALL, "64KiB", extra);
        std::fs::write(&config, text).unwrap();
    };
    write("");
    kingest_binary();
    let started = Instant::now();
    let mut running = Job::start(&config, &log, false);
    let producer = ClickProducer::start(broker.addr(), TOPIC, PARTITIONS, 80, 0);
    let deadline = Instant::now() + Duration::from_secs(180);
    while manifest_lists(&table_dir) < 3 * METADATA_VERSIONS {
        assert!(running.try_wait().is_none(), "{}", running.log_tail());
        assert!(
            Instant::now() < deadline,
            "60 commits not made in 3 minutes"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let produced = producer.stop().await;
    let end = end_offsets(produced.keys());
    caught_up(&config, &end, &mut running).await;
    let before = read_table(rest.sql_uri(), TABLE);
    exactly(&before, &produced, "before maintenance");
    let offsets_before = sink_offsets(&config);
    // The server deletes the metadata files its commits drop from the log (the table's
    // properties say so): the directory stays bounded.
    assert!(
        metadata_files(&table_dir) <= METADATA_VERSIONS + 1,
        "{} metadata files after {} commits",
        metadata_files(&table_dir),
        before.operations.len()
    );

    // Compaction and expiry in one run, while the job runs: every snapshot but the replace is
    // older than a second, and the replace carries the group's offsets.
    let live_before: BTreeSet<String> = before.file_paths.iter().cloned().collect();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    write("[sink.retention]\nmax_age = \"1s\"\n");
    let plan = compact_json(&config, false);
    assert!(
        !plan["plan"]["expired"].as_array().unwrap().is_empty(),
        "{plan}"
    );
    let done = compact_json(&config, true);
    let deleted: BTreeSet<String> = done["done"]["deleted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_owned())
        .collect();
    let kept = read_table(rest.sql_uri(), TABLE);
    assert_eq!(kept.operations, vec!["replace".to_owned()], "{done}");
    assert_eq!(
        manifest_lists(&table_dir),
        1,
        "manifest lists of expired snapshots remain"
    );
    // The rewritten inputs went with the snapshots that read them; every file the table
    // reads is there.
    let inputs: Vec<&String> = live_before
        .iter()
        .filter(|f| !kept.file_paths.contains(f))
        .collect();
    assert!(!inputs.is_empty(), "nothing was compacted: {done}");
    for f in inputs {
        assert!(deleted.contains(f), "{f}: not deleted; {done}");
        assert!(!Path::new(f.trim_start_matches("file://")).exists(), "{f}");
    }
    for f in referenced_files(rest.sql_uri(), TABLE, &BTreeMap::new()) {
        assert!(
            Path::new(f.trim_start_matches("file://")).exists(),
            "{f}: referenced, deleted"
        );
    }
    assert_eq!(
        rows_by_partition_offset(&kept),
        rows_by_partition_offset(&before),
        "pyiceberg reads other rows"
    );
    assert_eq!(kept.offsets(group), before.offsets(group));
    assert_eq!(
        sink_offsets(&config),
        offsets_before,
        "kingest check changed"
    );

    // The job resumes from the kept snapshot's offsets.
    running.child().kill().unwrap();
    running.wait();
    let more: Vec<Produced> = (produced.len()..produced.len() + 400)
        .map(|n| click(n, PARTITIONS))
        .collect();
    let at = produce(&broker.addr(), TOPIC, &more).await;
    let mut all = produced;
    all.extend(at.into_iter().zip(more));
    let status = Job::start(&config, &log, true).wait();
    assert!(
        status.success(),
        "{}",
        kingest_tests::ingest::log_tail(&log)
    );
    exactly(
        &read_table(rest.sql_uri(), TABLE),
        &all,
        "after expiry and a restart",
    );
    eprintln!(
        "REST expiry: {} snapshots -> 1, {} files deleted, {:?}",
        before.operations.len(),
        deleted.len(),
        started.elapsed()
    );
}
