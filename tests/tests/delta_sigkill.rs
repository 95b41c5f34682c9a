//! Exactly once into a Delta table under `kill -9`: the real `kingest run` is killed with
//! SIGKILL at random moments, 20 times, while records keep arriving, then run once more with
//! `--until-eof` to the end of the topic. The table, read by the `deltalake` Python package and
//! polars, must hold exactly the input: every (partition, offset) once with the content it was
//! produced with, and each partition's `txn` version at its end offset.
//!
//! Unlike `ingest_sigkill.rs`, the job is a *dynamic* group member (no `group.instance.id`):
//! a restarted process joins as a new member and gets the partitions once the killed member's
//! session (6 s here) has expired, as a plain deployment restarts. Small flush thresholds make
//! every run commit a version every few hundred milliseconds once it has its partitions: half
//! the kills come 0-1.2 s after a run committed three new versions (so every such run flushed
//! several times), the other half at a moment up to 9 s after the start (while it waits for
//! the killed member's session to expire, joins, fetches, or commits). A checkpoint every 5
//! versions puts some kills during checkpoint writes too. The moments come
//! from a fixed-seed generator (`KINGEST_SIGKILL_SEED` overrides it) and are printed with any
//! failure.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kingest_tests::ingest::delta::{app_id, delta_exactly_once, delta_sink, read_delta};
use kingest_tests::ingest::job::{source, PARTITION_OFFSET_COLUMNS};
use kingest_tests::ingest::kill::{click, click_page, Kills, CLICK_COLUMNS};
use kingest_tests::ingest::{end_offsets, produce, wait_for, Job, Produced};
use kingest_tests::peers::nisshi::Nisshi;
use serde_json::json;

const TOPIC: &str = "clicks";
const GROUP: &str = "sigkill-delta";
const PARTITIONS: i32 = 4;
const KILLS: usize = 20;

fn job(broker: &str, out: &Path) -> String {
    format!(
        r#"{}{CLICK_COLUMNS}
[[columns]]
name = "key"
type = "string"
source = "__key"

[[columns]]
name = "trace"
type = "string"
source = "__header$trace"
{PARTITION_OFFSET_COLUMNS}
[source.properties]
"session.timeout.ms" = "6000"

[flush]
rows = 40
age = "150ms"
{}"#,
        source(broker, TOPIC, GROUP),
        delta_sink(out, "checkpoint_interval = 5")
    )
}

/// Versions committed so far (`_delta_log/*.json`).
fn versions(table: &Path) -> usize {
    std::fs::read_dir(table.join("_delta_log")).map_or(0, |d| {
        d.filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            let name = name.to_string_lossy();
            !name.starts_with('.') && name.ends_with(".json")
        })
        .count()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delta_sigkill_at_random_moments_loses_and_repeats_nothing() {
    kingest_tests::ingest::delta::require_delta_readers();
    let broker = Nisshi::start();
    broker.create_topic(TOPIC, PARTITIONS as u32);
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("table");
    let config = work.path().join("job.toml");
    let log = work.path().join("kingest.log");
    std::fs::write(&config, job(&broker.addr(), &out)).unwrap();
    let mut kills = Kills::new(0x6465_6c74_6121, &config, &log);
    kingest_tests::ingest::kingest_binary();

    let produced: Arc<Mutex<BTreeMap<(i32, i64), Produced>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let producer = {
        let (produced, stop, addr) = (produced.clone(), stop.clone(), broker.addr());
        tokio::spawn(async move {
            let mut next = 0;
            while !stop.load(Ordering::SeqCst) {
                let n = if next == 0 { 3000 } else { 300 };
                let batch: Vec<Produced> = (next..next + n).map(|n| click(n, PARTITIONS)).collect();
                next += n;
                let at = produce(&addr, TOPIC, &batch).await;
                produced.lock().unwrap().extend(at.into_iter().zip(batch));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };

    let started = Instant::now();
    kills
        .kill_repeatedly(
            KILLS,
            async |kill, kills: &mut Kills, _: &mut Job| {
                let after_commits = kill % 2 == 1;
                if after_commits {
                    let before = versions(&out);
                    wait_for(
                        "three new versions committed",
                        Duration::from_secs(90),
                        || versions(&out) >= before + 3,
                        || kills.context_and_log(),
                    )
                    .await;
                }
                let delay = if after_commits {
                    kills.delay("3 commits+", 0, 1200)
                } else {
                    kills.delay("start+", 20, 9000)
                };
                tokio::time::sleep(delay).await;
            },
            |_| {},
        )
        .await;
    stop.store(true, Ordering::SeqCst);
    producer.await.unwrap();
    let produced = std::mem::take(&mut *produced.lock().unwrap());
    kills.finish();
    let context = kills.context();
    eprintln!(
        "{KILLS} kills, {} records, {} versions, {:?}; {context}",
        produced.len(),
        versions(&out),
        started.elapsed(),
    );

    let apps: Vec<String> = (0..PARTITIONS).map(|p| app_id(GROUP, TOPIC, p)).collect();
    let read = read_delta(&out, &apps);
    let end = end_offsets(produced.keys());
    assert_eq!(end.len(), PARTITIONS as usize);
    let rows = delta_exactly_once(&read, GROUP, TOPIC, &end);
    assert_eq!(rows.len(), produced.len(), "{context}");
    for ((p, o), r) in &produced {
        let n: i64 = serde_json::from_slice::<serde_json::Value>(r.value.as_ref().unwrap())
            .unwrap()["id"]
            .as_i64()
            .unwrap();
        let want = json!({
            "id": n,
            "page": click_page(n),
            "key": format!("user-{}", n % 97),
            "trace": format!("t{n}"),
            "partition": p,
            "offset": o,
        });
        let got = serde_json::Value::Object(rows[&(*p, *o)].clone());
        assert_eq!(got, want, "{p}/{o}; {context}");
    }
}
