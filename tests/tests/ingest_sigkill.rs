//! Exactly once under `kill -9`: the real `kingest run` is killed with SIGKILL at random
//! moments, 20 times, while records keep arriving, then run once more with `--until-eof` to
//! the end of the topic. The output must hold exactly the input: every (partition, offset)
//! once, the files' footer ranges tiling each partition with no gap or overlap, and every
//! row's content equal to what was produced.
//!
//! Small flush thresholds (`flush.rows`, `flush.age`) make every run commit many files between
//! kills, so kills land before, during and after commits. The job is a static group member
//! (`group.instance.id`), so a restarted process gets its partitions back at once instead of
//! waiting for the killed one's session to expire. The kill moments come from a fixed-seed
//! generator (override with `KINGEST_SIGKILL_SEED`); the seed and the moments are printed
//! with any failure. The kill loop is `kingest_tests::ingest::kill`, shared with the
//! PostgreSQL sink's test.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kingest_tests::ingest::job::{parquet_sink, source, PARTITION_OFFSET_COLUMNS};
use kingest_tests::ingest::kill::{click, click_page, static_member, Kills, CLICK_COLUMNS};
use kingest_tests::ingest::{
    end_offsets, exactly_once, group_committed, parquet_files, produce, read_dir, temporary_files,
    wait_for, Cell, Job, Produced,
};
use kingest_tests::peers::nisshi::Nisshi;

const TOPIC: &str = "clicks";
const PARTITIONS: i32 = 4;
const KILLS: usize = 20;

fn job(broker: &str, out: &Path) -> String {
    format!(
        r#"{}{}{CLICK_COLUMNS}
[[columns]]
name = "key"
type = "string"
source = "__key"

[[columns]]
name = "trace"
type = "string"
source = "__header$trace"
{PARTITION_OFFSET_COLUMNS}
[flush]
rows = 40
age = "150ms"
{}"#,
        source(broker, TOPIC, "sigkill"),
        static_member("sigkill-member"),
        parquet_sink(out)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_moments_loses_and_repeats_nothing() {
    let broker = Nisshi::start();
    broker.create_topic(TOPIC, PARTITIONS as u32);
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("out");
    let config = work.path().join("job.toml");
    let log = work.path().join("kingest.log");
    std::fs::write(&config, job(&broker.addr(), &out)).unwrap();
    let mut kills = Kills::new(0x6b69_6e67_6573_7421, &config, &log);
    // Build the binary before the clock matters.
    kingest_tests::ingest::kingest_binary();

    // Records keep arriving all along, from a producer of their own, so every run has work to
    // be killed in.
    let produced: Arc<Mutex<BTreeMap<(i32, i64), Produced>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let producer = {
        let (produced, stop, addr) = (produced.clone(), stop.clone(), broker.addr());
        tokio::spawn(async move {
            let mut next = 0;
            while !stop.load(Ordering::SeqCst) {
                let n = if next == 0 { 3000 } else { 400 };
                let batch: Vec<Produced> = (next..next + n).map(|n| click(n, PARTITIONS)).collect();
                next += n;
                let at = produce(&addr, TOPIC, &batch).await;
                produced.lock().unwrap().extend(at.into_iter().zip(batch));
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };

    // Half the kills come at a random moment after the start (in recovery, joining the group,
    // the first fetches); the other half at a random moment after the run has committed a new
    // file (one more than there were when it started), so they land among commits.
    let started = Instant::now();
    kills
        .kill_repeatedly(
            KILLS,
            async |kill, kills: &mut Kills, _: &mut Job| {
                let after_commit = kill % 2 == 1;
                if after_commit {
                    let before = parquet_files(&out).len();
                    wait_for(
                        "a new file committed",
                        Duration::from_secs(60),
                        || parquet_files(&out).len() > before,
                        || kills.context_and_log(),
                    )
                    .await;
                }
                let delay = if after_commit {
                    kills.delay("commit+", 0, 1200)
                } else {
                    kills.delay("start+", 20, 1200)
                };
                tokio::time::sleep(delay).await;
            },
            |_| {},
        )
        .await;
    stop.store(true, Ordering::SeqCst);
    producer.await.unwrap();
    let produced = std::mem::take(&mut *produced.lock().unwrap());
    // Now let it finish.
    kills.finish();
    let context = kills.context();
    eprintln!(
        "{KILLS} kills, {} records, {} files, {:?}; {context}",
        produced.len(),
        parquet_files(&out).len(),
        started.elapsed(),
    );

    assert_eq!(
        temporary_files(&out),
        Vec::<std::path::PathBuf>::new(),
        "{context}"
    );
    let files = read_dir(&out);
    let end = end_offsets(produced.keys());
    assert_eq!(end.len(), PARTITIONS as usize);
    let rows = exactly_once(&files, TOPIC, &end, "partition", "offset");
    assert_eq!(rows.len(), produced.len(), "{context}");
    for ((p, o), r) in &produced {
        let n: i64 = serde_json::from_slice::<serde_json::Value>(r.value.as_ref().unwrap())
            .unwrap()["id"]
            .as_i64()
            .unwrap();
        let want: BTreeMap<String, Cell> = [
            ("id", Cell::Int(n)),
            ("page", Cell::Str(click_page(n))),
            ("key", Cell::Str(format!("user-{}", n % 97))),
            ("trace", Cell::Str(format!("t{n}"))),
            ("partition", Cell::Int((*p).into())),
            ("offset", Cell::Int(*o)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        assert_eq!(rows.get(&(*p, *o)), Some(&want), "{p}/{o}; {context}");
    }
    // The clean end committed the sink's offsets to the group, for lag tools.
    assert_eq!(
        group_committed(&broker.addr(), "sigkill", TOPIC, PARTITIONS),
        end,
        "{context}"
    );
}
