//! Two `kingest run` processes of one consumer group write one Delta table: the first starts
//! alone and owns every partition, the second joins while records keep arriving and the first
//! keeps committing, so the group rebalances in the middle of the run. Both flush every 200 ms,
//! so they often race for the same table version; the loser re-reads the winner's commit and
//! retries (the processes log each retry, counted here). At the end the table, read by the
//! `deltalake` Python package and polars, holds every record exactly once with each
//! partition's `txn` at its end offset; each process wrote some rows, and the rows the two say
//! they wrote add up to the records: no commit was lost to a conflict.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kingest_tests::ingest::delta::{app_id, delta_exactly_once, delta_sink, read_delta};
use kingest_tests::ingest::job::{source, PARTITION_OFFSET_COLUMNS};
use kingest_tests::ingest::{
    end_offsets, kingest, log_tail, produce, send_signal, wait_for, Produced,
};
use kingest_tests::peers::nisshi::Nisshi;
use rustix::process::Signal;

const TOPIC: &str = "shared";
const GROUP: &str = "two-writers";
const PARTITIONS: i32 = 6;

fn job(broker: &str, client_id: &str, out: &Path) -> String {
    format!(
        r#"{}client_id = "{client_id}"

[[columns]]
name = "n"
type = "int64"
{PARTITION_OFFSET_COLUMNS}
[flush]
rows = 100
age = "200ms"
{}"#,
        source(broker, TOPIC, GROUP),
        delta_sink(out, "checkpoint_interval = 10")
    )
}

fn record(i: usize) -> Produced {
    Produced {
        partition: (i % PARTITIONS as usize) as i32,
        key: None,
        value: Some(format!("{{\"n\": {i}}}").into_bytes()),
        headers: Vec::new(),
        timestamp: 1_700_000_000_000 + i as i64,
    }
}

/// A `kingest run` logging the Delta sink's retries; killed when dropped.
struct Writer {
    child: Child,
    log: PathBuf,
}

impl Writer {
    fn start(config: &Path, log: &Path) -> Writer {
        let child = kingest(&["run", config.to_str().unwrap()])
            .env("KINGEST_LOG", "warn,kingest::sink::delta=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(log).unwrap()))
            .spawn()
            .unwrap();
        Writer {
            child,
            log: log.to_path_buf(),
        }
    }

    fn text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The latest `txn` version per app id in the table's JSON commits (all of them are read, so
/// checkpoints do not matter; kingest deletes no commit).
fn log_txns(table: &Path) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    let Ok(dir) = std::fs::read_dir(table.join("_delta_log")) else {
        return out;
    };
    let mut names: Vec<String> = dir
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json") && !n.starts_with('.'))
        .collect();
    names.sort();
    for n in names {
        let text = std::fs::read_to_string(table.join("_delta_log").join(n)).unwrap_or_default();
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            if let Some(t) = v.get("txn") {
                out.insert(
                    t["appId"].as_str().unwrap().to_owned(),
                    t["version"].as_i64().unwrap(),
                );
            }
        }
    }
    out
}

/// The rows a `kingest run` says it wrote, from its closing summary.
fn rows_written(log: &str) -> u64 {
    let summary = regex::Regex::new(r"kingest run: \d+ records read, (\d+) rows written").unwrap();
    let found: Vec<u64> = summary
        .captures_iter(log)
        .map(|c| c[1].parse().unwrap())
        .collect();
    assert_eq!(found.len(), 1, "one summary expected in:\n{log}");
    found[0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delta_two_writers_of_one_group_rebalance_and_commit_everything_once() {
    kingest_tests::ingest::delta::require_delta_readers();
    let broker = Nisshi::start();
    broker.create_topic(TOPIC, PARTITIONS as u32);
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("table");
    kingest_tests::ingest::kingest_binary();

    let produced: Arc<std::sync::Mutex<BTreeMap<(i32, i64), usize>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let producer = {
        let (produced, stop, addr) = (produced.clone(), stop.clone(), broker.addr());
        tokio::spawn(async move {
            let mut next = 0;
            while !stop.load(Ordering::SeqCst) {
                let n = if next == 0 { 3000 } else { 600 };
                let batch: Vec<Produced> = (next..next + n).map(record).collect();
                let at = produce(&addr, TOPIC, &batch).await;
                produced.lock().unwrap().extend(at.into_iter().zip(next..));
                next += n;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };

    let t0 = std::time::Instant::now();
    let mut writers = Vec::new();
    for name in ["writer-a", "writer-b"] {
        let config = work.path().join(format!("{name}.toml"));
        std::fs::write(&config, job(&broker.addr(), name, &out)).unwrap();
        writers.push(Writer::start(
            &config,
            &work.path().join(format!("{name}.log")),
        ));
        if name == "writer-a" {
            // A owns everything and has committed before B joins.
            let versions = || log_txns(&out).len();
            wait_for(
                "writer-a committing",
                Duration::from_secs(60),
                || versions() >= PARTITIONS as usize,
                || log_tail(&work.path().join("writer-a.log")),
            )
            .await;
        }
    }
    eprintln!("{:?}: both writers started", t0.elapsed());
    // Both keep writing for a while after the rebalance.
    tokio::time::sleep(Duration::from_secs(8)).await;
    stop.store(true, Ordering::SeqCst);
    producer.await.unwrap();
    let produced = std::mem::take(&mut *produced.lock().unwrap());
    let end = end_offsets(produced.keys());
    let want: BTreeMap<String, i64> = end
        .iter()
        .map(|(p, o)| (app_id(GROUP, TOPIC, *p), *o))
        .collect();
    wait_for(
        "every record committed",
        Duration::from_secs(120),
        || log_txns(&out) == want,
        || format!("table at {:?}, end {want:?}", log_txns(&out)),
    )
    .await;
    eprintln!("{:?}: every record committed", t0.elapsed());
    for w in &writers {
        send_signal(&w.child, Signal::TERM);
    }
    let mut written = Vec::new();
    let mut retries = Vec::new();
    for w in &mut writers {
        let status = w.child.wait().unwrap();
        let text = w.text();
        assert!(status.success(), "{status}; log:\n{}", log_tail(&w.log));
        written.push(rows_written(&text));
        retries.push(
            text.matches("another writer committed this version first")
                .count(),
        );
    }
    eprintln!(
        "{:?}: both stopped; rows written per process {written:?}, commit retries {retries:?}",
        t0.elapsed()
    );
    assert!(
        written.iter().all(|w| *w > 0),
        "rows written per process: {written:?}"
    );
    assert_eq!(
        written.iter().sum::<u64>(),
        produced.len() as u64,
        "{written:?}"
    );

    let apps: Vec<String> = (0..PARTITIONS).map(|p| app_id(GROUP, TOPIC, p)).collect();
    let read = read_delta(&out, &apps);
    let rows = delta_exactly_once(&read, GROUP, TOPIC, &end);
    for ((p, o), n) in &produced {
        assert_eq!(rows[&(*p, *o)]["n"], serde_json::json!(n), "{p}/{o}");
    }
}
