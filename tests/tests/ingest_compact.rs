//! `kingest compact` on a directory written by a running `kingest run`, read meanwhile by
//! pyarrow.
//!
//! - Over a thousand small files, compacted while the job runs: the file count drops to what
//!   the target size allows (a second plan finds nothing to merge), pyarrow reads exactly the
//!   same rows before and after, `kingest check` shows the same sink offsets, and the footers
//!   still tile every partition's offsets.
//! - `kingest compact --execute` killed with SIGKILL at random moments, at least 20 times
//!   while it runs, with the job writing new files and records arriving throughout, and a
//!   pyarrow reader reading the directory over and over: no read ever sees an offset twice or
//!   misses one (every partition a contiguous run from offset 0), the job never stops, and the
//!   end result holds every produced record exactly once.
//!
//! A read that listed a file which a compaction then exchanged away fails with "file not
//! found" and is read again (that is what the exchange guarantees: an error, never a wrong
//! answer); the reader counts such retries.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kingest_tests::ingest::compact::{caught_up, compact_json, sink_offsets, ClickProducer};
use kingest_tests::ingest::job::{parquet_sink, source, PARTITION_OFFSET_COLUMNS};
use kingest_tests::ingest::kill::{SplitMix, CLICK_COLUMNS};
use kingest_tests::ingest::{end_offsets, exactly_once, kingest, parquet_files, read_dir, Job};
use kingest_tests::peers::nisshi::Nisshi;

const TOPIC: &str = "clicks";
const PARTITIONS: i32 = 4;

fn job(broker: &str, group: &str, out: &Path, target: &str) -> String {
    format!(
        r#"{}{CLICK_COLUMNS}{PARTITION_OFFSET_COLUMNS}
[flush]
rows = 25
age = "40ms"
{}
[sink.compaction]
target_file_size = "{target}"
"#,
        source(broker, TOPIC, group),
        parquet_sink(out)
    )
}

/// pyarrow's view of the dataset: every (partition, offset, id) row, sorted, as JSON.
const READ_ALL: &str = r#"
import json, sys
import pyarrow.dataset as ds
t = ds.dataset(sys.argv[1], format="parquet").to_table(columns=["partition", "offset", "id"])
rows = sorted(zip(*(t.column(c).to_pylist() for c in ["partition", "offset", "id"])))
print(json.dumps(rows))
"#;

/// Reads the dataset over and over until the stop file appears; fails (exit 1) on a read
/// with an offset twice or a gap in a partition. Prints how many reads it made and how many
/// it had to retry because a listed file was gone.
const READ_LOOP: &str = r#"
import collections, json, os, sys, time
import pyarrow.dataset as ds
root, stop = sys.argv[1], sys.argv[2]
reads = retries = 0
while not os.path.exists(stop):
    try:
        d = ds.dataset(root, format="parquet")
        if not d.files:  # the job has not committed its first file yet
            time.sleep(0.05)
            continue
        t = d.to_table(columns=["partition", "offset"])
    except FileNotFoundError:
        retries += 1
        continue
    by = collections.defaultdict(list)
    for p, o in zip(t.column("partition").to_pylist(), t.column("offset").to_pylist()):
        by[p].append(o)
    for p, offsets in by.items():
        offsets.sort()
        if len(set(offsets)) != len(offsets):
            dup = [o for o, n in collections.Counter(offsets).items() if n > 1]
            print(f"read {reads}: partition {p}: offsets read twice: {dup[:10]}")
            sys.exit(1)
        if offsets[0] != 0 or offsets[-1] != len(offsets) - 1:
            have = set(offsets)
            gap = [o for o in range(offsets[-1]) if o not in have]
            print(f"read {reads}: partition {p}: offsets missing: {gap[:10]}")
            sys.exit(1)
    reads += 1
print(json.dumps({"reads": reads, "retries": retries}))
"#;

fn python(script: &str, args: &[&str]) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("run python3 (scripts/setup.sh installs pyarrow)");
    assert!(
        out.status.success(),
        "pyarrow failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// pyarrow's rows, retried when a compaction exchanged a listed file away meanwhile.
fn pyarrow_rows(dir: &Path) -> String {
    for _ in 0..20 {
        let out = Command::new("python3")
            .args(["-c", READ_ALL, dir.to_str().unwrap()])
            .output()
            .expect("run python3");
        if out.status.success() {
            return String::from_utf8_lossy(&out.stdout).into_owned();
        }
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("FileNotFoundError"),
            "pyarrow failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    panic!("pyarrow could not read {} in 20 tries", dir.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_of_a_running_jobs_thousand_files() {
    let broker = Nisshi::start();
    broker.create_topic(TOPIC, PARTITIONS as u32);
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("out");
    let config = work.path().join("job.toml");
    let log = work.path().join("kingest.log");
    std::fs::write(&config, job(&broker.addr(), "compact", &out, "256KiB")).unwrap();
    kingest_tests::ingest::kingest_binary();
    let mut running = Job::start(&config, &log, false);

    let producer = ClickProducer::start(broker.addr(), TOPIC, PARTITIONS, 120, 0);
    let deadline = Instant::now() + Duration::from_secs(300);
    while parquet_files(&out).len() < 1100 {
        assert!(running.try_wait().is_none(), "{}", running.log_tail());
        assert!(
            Instant::now() < deadline,
            "1,100 files not written in 5 minutes"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let produced = producer.stop().await;
    let end = end_offsets(produced.keys());
    caught_up(&config, &end, &mut running).await;
    let files_before = parquet_files(&out).len();
    let rows_before = pyarrow_rows(&out);
    let offsets_before = sink_offsets(&config);

    // The plan changes nothing.
    let plan = compact_json(&config, false);
    let groups = plan["plan"]["rewrites"].as_array().unwrap().len();
    assert!(groups >= PARTITIONS as usize, "{plan}");
    assert_eq!(parquet_files(&out).len(), files_before);

    // Executed while the job runs (idle: nothing new arrives).
    let done = compact_json(&config, true);
    let merged: u64 = done["done"]["rewritten"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["inputs"].as_u64().unwrap())
        .sum();
    let bytes_in: u64 = done["done"]["rewritten"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["bytes_in"].as_u64().unwrap())
        .sum();
    let files_after = parquet_files(&out).len();
    eprintln!(
        "{files_before} files -> {files_after}: {merged} merged, {bytes_in} bytes in {:.2} s",
        done["seconds"].as_f64().unwrap()
    );
    assert!(
        files_after * 20 < files_before,
        "{files_before} -> {files_after}"
    );
    for f in parquet_files(&out) {
        let size = std::fs::metadata(&f).unwrap().len();
        assert!(size < 2 * 256 * 1024, "{} is {size} bytes", f.display());
    }
    // Down to the target: nothing is left to merge.
    let again = compact_json(&config, false);
    assert_eq!(again["plan"]["rewrites"], serde_json::json!([]), "{again}");
    assert_eq!(pyarrow_rows(&out), rows_before, "pyarrow reads other rows");
    assert_eq!(
        sink_offsets(&config),
        offsets_before,
        "kingest check changed"
    );
    let rows = exactly_once(&read_dir(&out), TOPIC, &end, "partition", "offset");
    assert_eq!(rows.len(), produced.len());
    assert!(running.try_wait().is_none(), "{}", running.log_tail());

    // The job goes on writing after the compaction; a second compaction merges its new
    // files while records keep arriving.
    let next = produced.len();
    let producer = ClickProducer::start(broker.addr(), TOPIC, PARTITIONS, 120, next);
    tokio::time::sleep(Duration::from_secs(2)).await;
    compact_json(&config, true);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut all = produced;
    all.extend(producer.stop().await);
    let end = end_offsets(all.keys());
    caught_up(&config, &end, &mut running).await;
    compact_json(&config, true);
    let rows = exactly_once(&read_dir(&out), TOPIC, &end, "partition", "offset");
    assert_eq!(rows.len(), all.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_compaction_never_loses_or_doubles_a_row() {
    let broker = Nisshi::start();
    broker.create_topic(TOPIC, PARTITIONS as u32);
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("out");
    let config = work.path().join("job.toml");
    let log = work.path().join("kingest.log");
    std::fs::write(&config, job(&broker.addr(), "compact-kill", &out, "64KiB")).unwrap();
    kingest_tests::ingest::kingest_binary();
    let mut running = Job::start(&config, &log, false);
    let producer = ClickProducer::start(broker.addr(), TOPIC, PARTITIONS, 120, 0);

    let stop = work.path().join("stop-reader");
    let reader = Command::new("python3")
        .args([
            "-c",
            READ_LOOP,
            out.to_str().unwrap(),
            stop.to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the pyarrow reader");

    let seed = std::env::var("KINGEST_SIGKILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x0063_6f6d_7061_6374_u64);
    let mut rng = SplitMix(seed);
    let mut moments = Vec::new();
    // How long a compaction takes here, so kill moments spread over all of it (merging,
    // linking, the exchange, removing the old contents): one runs to the end first, and
    // every one that finishes before its kill updates the estimate.
    while parquet_files(&out).len() < 150 {
        assert!(running.try_wait().is_none(), "{}", running.log_tail());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let timed = Instant::now();
    compact_json(&config, true);
    let mut span = timed.elapsed().as_millis() as u64 * 13 / 10 + 2;
    let mut kills = 0;
    let mut finished = 0;
    let mut attempts = 0;
    while kills < 20 {
        attempts += 1;
        assert!(
            attempts < 200,
            "only {kills} kills landed during a compaction in 200 tries; moments {moments:?}"
        );
        // Let the job write new small files to merge.
        while parquet_files(&out).len() < 150 {
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
    // A last compaction, not killed, cleans up what the killed ones left.
    compact_json(&config, true);
    std::fs::write(&stop, b"").unwrap();
    let reader = reader.wait_with_output().unwrap();
    let report = String::from_utf8_lossy(&reader.stdout);
    assert!(
        reader.status.success(),
        "the pyarrow reader saw a wrong dataset: {report}{}; seed {seed}, moments {moments:?}",
        String::from_utf8_lossy(&reader.stderr)
    );
    let stats: serde_json::Value = serde_json::from_str(report.trim()).unwrap();
    eprintln!(
        "{kills} kills, {finished} compactions finished, kill moments within {span} ms, {} records, reader {stats}; seed {seed}, moments {moments:?}",
        produced.len()
    );
    assert!(stats["reads"].as_u64().unwrap() >= 10, "{stats}");
    let leftovers: Vec<String> = std::fs::read_dir(work.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("kingest-compact"))
        .collect();
    assert_eq!(
        leftovers,
        Vec::<String>::new(),
        "killed compactions' leftovers"
    );
    let rows = exactly_once(&read_dir(&out), TOPIC, &end, "partition", "offset");
    assert_eq!(
        rows.len(),
        produced.len(),
        "seed {seed}, moments {moments:?}"
    );
    assert_eq!(
        python(READ_ALL, &[out.to_str().unwrap()])
            .matches('[')
            .count()
            - 1,
        produced.len(),
        "pyarrow's row count"
    );
}
