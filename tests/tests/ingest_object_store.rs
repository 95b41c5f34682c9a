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
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kingest_tests::ingest::job::{source, PARTITION_OFFSET_COLUMNS};
use kingest_tests::ingest::kill::{click, dynamic_member, Kills, CLICK_COLUMNS};
use kingest_tests::ingest::store_faults::FaultRun;
use kingest_tests::ingest::{
    end_offsets, exactly_once, group_committed, produce, read_dir, wait_for, Job, Produced,
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

async fn faults(server: ObjectServer) {
    let broker = Nisshi::start();
    broker.create_topic(TOPIC, PARTITIONS as u32);
    server.create_bucket(BUCKET);
    let proxy = FaultProxy::start(server.port(), Faults::Fraction(0.2), 0xfa17);
    let work = tempfile::tempdir().unwrap();
    let config = work.path().join("job.toml");
    let storage = server.storage_options(&proxy.endpoint());
    let run = FaultRun {
        broker: &broker.addr(),
        topic: TOPIC,
        partitions: PARTITIONS,
        group: "objstore-faults",
        config: &config,
        log: &work.path().join("kingest.log"),
        proxy: &proxy,
    };
    // Quick backoffs so the test does not wait on them; the retry count is the default. Files
    // of 10 rows: a file every few records.
    let retry = "backoff = \"20ms\"\nmax_backoff = \"500ms\"\n";
    let url = server.url(BUCKET, PREFIX);
    std::fs::write(
        &config,
        job_flushing(run.broker, run.group, &url, &storage, retry, 10),
    )
    .unwrap();
    let mut produced = BTreeMap::new();
    run.survive_faults(0..60, &mut produced).await;
    eprintln!(
        "{:?} at 20% faults: {}",
        server.api(),
        proxy.counts().summary()
    );
    check_exactly_once(&server, &produced, &proxy.counts().summary());

    // The store goes down under a running job, with 3 retries: the run starts on a healthy
    // store, since it reads every file's footer at start and with 20% of requests failing one
    // of its ~240 reads would exhaust 3 retries in about one run of three (0.2^4 per read).
    let bounded =
        "max_retries = 3\nbackoff = \"20ms\"\nmax_backoff = \"200ms\"\ntimeout = \"10s\"\n";
    std::fs::write(
        &config,
        job_flushing(run.broker, run.group, &url, &storage, bounded, 10),
    )
    .unwrap();
    let last = run.store_goes_down(60..75, 65, PREFIX, &mut produced).await;
    eprintln!("{:?} store down under a running job: {last}", server.api());
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
