//! The Parquet sink on real object store API servers, end to end: the `kingest` binary writing
//! `s3://` to moto and `az://` to Azurite, read back with the servers' own Python SDKs (boto3,
//! azure-storage-blob) and checked offset by offset.
//!
//! - A kill -9 loop per store: `kingest run` killed with SIGKILL 20 times at random moments
//!   while records keep arriving, as a dynamic group member (each restart waits for the killed
//!   member's session to expire), then run to the end of the topic: every (partition, offset)
//!   exactly once, the footer ranges tiling each partition.
//! - Fault injection per store: a proxy between kingest and the server fails 20% of the
//!   requests (503 Slow Down, 500, connections dropped before or after the server acted):
//!   the run retries and completes with the exact input; then the proxy fails every request:
//!   the run stops with an error naming the operation and the object, past the retry bound,
//!   and a run after the store recovers completes the output exactly once.
//!
//! Credentials and endpoints reach kingest through the environment (`AWS_*`) in the S3 kill
//! loop and through `[sink.storage]` everywhere else.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kingest_tests::ingest::job::{source, PARTITION_OFFSET_COLUMNS};
use kingest_tests::ingest::kill::{click, dynamic_member, Kills, CLICK_COLUMNS};
use kingest_tests::ingest::{
    end_offsets, exactly_once, group_committed, kingest, produce, read_dir, wait_for, Job, Produced,
};
use kingest_tests::peers::faults::{FaultProxy, Faults};
use kingest_tests::peers::nisshi::Nisshi;
use kingest_tests::peers::objstore::{Api, ObjectServer};

const TOPIC: &str = "clicks";
const PARTITIONS: i32 = 4;
const BUCKET: &str = "lake";
const PREFIX: &str = "raw/clicks";

/// The job: clicks with their partition and offset, small flushes, written to `url`, with
/// `[sink.storage]` (may be empty) and `[sink.retry]` (may be empty) tables. Fetches are small
/// (one record batch each), so a backlog is written as many files, not one per partition.
fn job(broker: &str, group: &str, url: &str, storage: &str, retry: &str) -> String {
    job_flushing(broker, group, url, storage, retry, 40)
}

/// [`job`] with files of `rows` rows.
fn job_flushing(
    broker: &str,
    group: &str,
    url: &str,
    storage: &str,
    retry: &str,
    rows: usize,
) -> String {
    format!(
        r#"{}{}"max.partition.fetch.bytes" = "1024"
{CLICK_COLUMNS}{PARTITION_OFFSET_COLUMNS}
[flush]
rows = {rows}
age = "150ms"

[sink]
type = "parquet"
path = "{url}"

[sink.storage]
{storage}
[sink.retry]
{retry}
"#,
        source(broker, TOPIC, group),
        dynamic_member(),
    )
}

/// Downloads the sink's objects and checks them against what was produced.
fn check_exactly_once(
    server: &ObjectServer,
    produced: &BTreeMap<(i32, i64), Produced>,
    context: &str,
) {
    let local = tempfile::tempdir().unwrap();
    server.download(BUCKET, PREFIX, local.path());
    let files = read_dir(local.path());
    let end = end_offsets(produced.keys());
    assert_eq!(end.len(), PARTITIONS as usize, "{context}");
    let rows = exactly_once(&files, TOPIC, &end, "partition", "offset");
    assert_eq!(rows.len(), produced.len(), "{context}");
    for ((p, o), r) in produced {
        let value: serde_json::Value = serde_json::from_slice(r.value.as_ref().unwrap()).unwrap();
        let row = rows
            .get(&(*p, *o))
            .unwrap_or_else(|| panic!("{p}/{o} missing; {context}"));
        assert_eq!(
            row["id"],
            kingest_tests::ingest::Cell::Int(value["id"].as_i64().unwrap()),
            "{p}/{o}; {context}"
        );
    }
    let names = server.list(BUCKET, PREFIX);
    assert!(
        names
            .iter()
            .all(|n| n.ends_with(".parquet") && !n.contains("_kingest_staging")),
        "leftovers: {names:?}"
    );
}

async fn kill_loop(server: ObjectServer, seed: u64) {
    let broker = Nisshi::start();
    broker.create_topic(TOPIC, PARTITIONS as u32);
    server.create_bucket(BUCKET);
    let work = tempfile::tempdir().unwrap();
    let config = work.path().join("job.toml");
    let log = work.path().join("kingest.log");
    let group = "objstore-kill";
    let url = server.url(BUCKET, PREFIX);
    // S3 through the environment, Azure through [sink.storage].
    let (storage, env) = match server.api() {
        Api::S3 => (String::new(), server.env()),
        Api::Azure => (server.storage_options(&server.endpoint()), Vec::new()),
    };
    std::fs::write(&config, job(&broker.addr(), group, &url, &storage, "")).unwrap();
    let mut kills = Kills::new(seed, &config, &log).with_env(env);
    kingest_tests::ingest::kingest_binary();

    let produced: Arc<Mutex<BTreeMap<(i32, i64), Produced>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let producer = {
        let (produced, stop, addr) = (produced.clone(), stop.clone(), broker.addr());
        tokio::spawn(async move {
            let mut next = 0;
            while !stop.load(Ordering::SeqCst) {
                let n = if next == 0 { 2000 } else { 200 };
                let batch: Vec<Produced> = (next..next + n).map(|n| click(n, PARTITIONS)).collect();
                next += n;
                let at = produce(&addr, TOPIC, &batch).await;
                produced.lock().unwrap().extend(at.into_iter().zip(batch));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let started = Instant::now();
    let committed = |addr: &str| -> i64 {
        group_committed(addr, group, TOPIC, PARTITIONS)
            .values()
            .sum()
    };
    kills
        .kill_repeatedly(
            20,
            async |kill, kills: &mut Kills, _: &mut Job| {
                // Half the kills while starting (recovery, joining the group: a dynamic member
                // waits for the killed one's session to expire), half after the group's
                // committed offsets moved, that is among commits of files.
                if kill % 2 == 1 {
                    let before = committed(&broker.addr());
                    wait_for(
                        "the group's offsets to move (a file committed)",
                        Duration::from_secs(120),
                        || committed(&broker.addr()) > before,
                        || kills.context_and_log(),
                    )
                    .await;
                    let delay = kills.delay("commit+", 0, 1500);
                    tokio::time::sleep(delay).await;
                } else {
                    let delay = kills.delay("start+", 50, 3000);
                    tokio::time::sleep(delay).await;
                }
            },
            |_| {},
        )
        .await;
    stop.store(true, Ordering::SeqCst);
    producer.await.unwrap();
    let produced = std::mem::take(&mut *produced.lock().unwrap());
    kills.finish();
    let context = kills.context_and_log();
    eprintln!(
        "{:?}: 20 kills, {} records, {:?}",
        server.api(),
        produced.len(),
        started.elapsed()
    );
    check_exactly_once(&server, &produced, &context);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_moto_kill_loop_exactly_once() {
    kill_loop(ObjectServer::moto(), 0x5333_6b69_6c6c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_azurite_kill_loop_exactly_once() {
    kill_loop(ObjectServer::azurite(), 0x617a_6b69_6c6c).await;
}

/// Runs `kingest run --until-eof` to completion and returns its exit status and stderr.
fn run_until_eof(config: &Path) -> (std::process::ExitStatus, String) {
    let out = kingest(&["run", config.to_str().unwrap(), "--until-eof"])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run kingest");
    (
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn faults(server: ObjectServer) {
    let broker = Nisshi::start();
    broker.create_topic(TOPIC, PARTITIONS as u32);
    server.create_bucket(BUCKET);
    let proxy = FaultProxy::start(server.port(), Faults::Fraction(0.2), 0xfa17);
    let work = tempfile::tempdir().unwrap();
    let config = work.path().join("job.toml");
    let storage = server.storage_options(&proxy.endpoint());
    // Quick backoffs so the test does not wait on them; the retry count is the default.
    let retry = "backoff = \"20ms\"\nmax_backoff = \"500ms\"\n";
    std::fs::write(
        &config,
        job_flushing(
            &broker.addr(),
            "objstore-faults",
            &server.url(BUCKET, PREFIX),
            &storage,
            retry,
            10,
        ),
    )
    .unwrap();

    // 20% of requests fail while a streaming run writes a file every few records (records
    // arrive a few at a time): every failure is retried, the run never stops, and once it has
    // committed everything it stops cleanly when asked.
    let log = work.path().join("kingest.log");
    let mut running = Job::start(&config, &log, false);
    let mut produced: BTreeMap<(i32, i64), Produced> = BTreeMap::new();
    for chunk in 0..60 {
        let batch: Vec<Produced> = (chunk * 40..chunk * 40 + 40)
            .map(|n| click(n, PARTITIONS))
            .collect();
        produced.extend(
            produce(&broker.addr(), TOPIC, &batch)
                .await
                .into_iter()
                .zip(batch),
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let total = produced.len() as i64;
    wait_for(
        "the group's offsets to reach the end (everything committed)",
        Duration::from_secs(180),
        || {
            group_committed(&broker.addr(), "objstore-faults", TOPIC, PARTITIONS)
                .values()
                .sum::<i64>()
                == total
        },
        || format!("{}; {}", proxy.counts().summary(), running.log_tail()),
    )
    .await;
    assert!(
        running.try_wait().is_none(),
        "with 20% of requests failing the run stopped: {}; {}",
        proxy.counts().summary(),
        running.log_tail()
    );
    running.signal(rustix::process::Signal::TERM);
    let status = running.wait();
    assert!(
        status.success(),
        "{status}; {}; {}",
        proxy.counts().summary(),
        running.log_tail()
    );
    assert!(
        proxy.counts().failed() >= 10,
        "too few faults injected to mean anything: {}",
        proxy.counts().summary()
    );
    eprintln!(
        "{:?} at 20% faults: {}",
        server.api(),
        proxy.counts().summary()
    );
    check_exactly_once(&server, &produced, &proxy.counts().summary());

    // The store goes down under a running job: every request fails from then on. The run
    // stops by itself, after a bounded number of retries, naming the object it was writing
    // and the server's answer; a run started meanwhile fails at its first listing, alike.
    std::fs::write(
        &config,
        job_flushing(
            &broker.addr(),
            "objstore-faults",
            &server.url(BUCKET, PREFIX),
            &storage,
            "max_retries = 3\nbackoff = \"20ms\"\nmax_backoff = \"200ms\"\ntimeout = \"10s\"\n",
            10,
        ),
    )
    .unwrap();
    // This phase is about a store that goes down under a running job, so the run starts on a
    // healthy one: it reads every file's footer at start with only 3 retries, and with 20% of
    // requests still failing one of its ~240 reads would exhaust them in about one run of three
    // (0.2^4 per read), stopping it before the store goes down.
    proxy.set(Faults::None);
    let mut running = Job::start(&config, &log, false);
    let slow_downs = proxy.counts().slow_down.load(Ordering::SeqCst);
    for chunk in 60..75 {
        if chunk == 65 {
            proxy.set(Faults::All);
        }
        let batch: Vec<Produced> = (chunk * 40..chunk * 40 + 40)
            .map(|n| click(n, PARTITIONS))
            .collect();
        produced.extend(
            produce(&broker.addr(), TOPIC, &batch)
                .await
                .into_iter()
                .zip(batch),
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = running.try_wait() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "a store failing everything: the run did not stop; {}",
            running.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let stderr = running.log_tail();
    assert!(!status.success(), "{status}: {stderr}");
    let last = stderr
        .lines()
        .rfind(|l| l.contains("kingest run:"))
        .unwrap_or_default();
    assert!(
        last.contains(PREFIX) && last.contains("503"),
        "the error names the object and the server's answer: {stderr}"
    );
    let retried = proxy.counts().slow_down.load(Ordering::SeqCst) - slow_downs;
    assert!(
        retried >= 4,
        "the failing request was retried: {retried} attempts"
    );
    eprintln!("{:?} store down under a running job: {last}", server.api());
    let (status, stderr) = run_until_eof(&config);
    assert!(
        !status.success() && stderr.contains(PREFIX) && stderr.contains("503"),
        "a run while the store is down: {status}: {stderr}"
    );
    eprintln!("{:?} store down at start: {}", server.api(), stderr.trim());

    // The store recovers: the next run completes the output, nothing lost or doubled.
    proxy.set(Faults::None);
    let (status, stderr) = run_until_eof(&config);
    assert!(
        status.success(),
        "after recovery: {status}; stderr:\n{stderr}"
    );
    check_exactly_once(&server, &produced, "after recovery");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_moto_faults_retried_and_bounded() {
    faults(ObjectServer::moto()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_azurite_faults_retried_and_bounded() {
    faults(ObjectServer::azurite()).await;
}
