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
//! with any failure.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kingest_tests::ingest::{
    end_offsets, exactly_once, group_committed, log_tail, parquet_files, produce, read_dir,
    temporary_files, wait_for, Cell, Job, Produced,
};
use kingest_tests::peers::nisshi::Nisshi;

const TOPIC: &str = "clicks";
const PARTITIONS: i32 = 4;
const KILLS: usize = 20;

/// SplitMix64: a tiny fixed-seed generator, so a failing sequence of kill moments can be
/// replayed.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..hi` milliseconds.
    fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.next() % (hi - lo))
    }
}

fn record(n: usize) -> Produced {
    Produced {
        partition: (n * 7 % PARTITIONS as usize) as i32,
        key: Some(format!("user-{}", n % 97).into_bytes()),
        value: Some(
            format!(
                "{{\"id\": {n}, \"page\": \"/p/{}/ü\", \"ms\": {}}}",
                n % 13,
                n * 3
            )
            .into_bytes(),
        ),
        headers: vec![("trace".to_owned(), Some(format!("t{n}").into_bytes()))],
        timestamp: 1_700_000_000_000 + n as i64,
    }
}

fn job(broker: &str, out: &Path) -> String {
    format!(
        r#"
[source]
brokers = "{broker}"
topics = ["{TOPIC}"]
group = "sigkill"

[source.properties]
"group.instance.id" = "sigkill-member"
"session.timeout.ms" = "6000"

[[columns]]
name = "id"
type = "int64"

[[columns]]
name = "page"
type = "string"

[[columns]]
name = "key"
type = "string"
source = "__key"

[[columns]]
name = "trace"
type = "string"
source = "__header$trace"

[[columns]]
name = "partition"
type = "int32"
source = "__partition"

[[columns]]
name = "offset"
type = "int64"
source = "__offset"

[flush]
rows = 40
age = "150ms"

[sink]
type = "parquet"
path = "{}"
"#,
        out.display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_moments_loses_and_repeats_nothing() {
    let seed: u64 = std::env::var("KINGEST_SIGKILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x6b69_6e67_6573_7421);
    let mut rng = SplitMix(seed);
    let broker = Nisshi::start();
    broker.create_topic(TOPIC, PARTITIONS as u32);
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("out");
    let config = work.path().join("job.toml");
    let log = work.path().join("kingest.log");
    std::fs::write(&config, job(&broker.addr(), &out)).unwrap();
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
                let batch: Vec<Produced> = (next..next + n).map(record).collect();
                next += n;
                let at = produce(&addr, TOPIC, &batch).await;
                produced.lock().unwrap().extend(at.into_iter().zip(batch));
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };

    // Half the kills come at a random moment after the start (in recovery, joining the group,
    // the first fetches); the other half at a random moment after the run has committed a new
    // file, so they land among commits.
    let mut moments: Vec<String> = Vec::new();
    let started = Instant::now();
    let context = |moments: &[String]| format!("seed {seed}, kill moments {moments:?}");
    for kill in 0..KILLS {
        let before = parquet_files(&out).len();
        let mut job = Job::start(&config, &log, false);
        let after_commit = kill % 2 == 1;
        if after_commit {
            wait_for(
                "a new file committed",
                Duration::from_secs(60),
                || parquet_files(&out).len() > before,
                || format!("{}; log:\n{}", context(&moments), log_tail(&log)),
            )
            .await;
        }
        let delay = rng.millis(if after_commit { 0 } else { 20 }, 1200);
        moments.push(format!(
            "{}{}ms",
            if after_commit { "commit+" } else { "start+" },
            delay.as_millis()
        ));
        tokio::time::sleep(delay).await;
        if let Some(status) = job.try_wait() {
            panic!(
                "kingest run stopped on its own ({status}); {}; its log:\n{}",
                context(&moments),
                log_tail(&log)
            );
        }
        job.child().kill().unwrap();
        job.wait();
    }
    stop.store(true, Ordering::SeqCst);
    producer.await.unwrap();
    let produced = std::mem::take(&mut *produced.lock().unwrap());
    // Now let it finish.
    let status = Job::start(&config, &log, true).wait();
    assert!(
        status.success(),
        "final run: {status}; {}; log:\n{}",
        context(&moments),
        log_tail(&log)
    );
    eprintln!(
        "{KILLS} kills, {} records, {} files, {:?}; {}",
        produced.len(),
        parquet_files(&out).len(),
        started.elapsed(),
        context(&moments)
    );

    assert_eq!(
        temporary_files(&out),
        Vec::<std::path::PathBuf>::new(),
        "{}",
        context(&moments)
    );
    let files = read_dir(&out);
    let end = end_offsets(produced.keys());
    assert_eq!(end.len(), PARTITIONS as usize);
    let rows = exactly_once(&files, TOPIC, &end, "partition", "offset");
    assert_eq!(rows.len(), produced.len(), "{}", context(&moments));
    for ((p, o), r) in &produced {
        let n: i64 = serde_json::from_slice::<serde_json::Value>(r.value.as_ref().unwrap())
            .unwrap()["id"]
            .as_i64()
            .unwrap();
        let want: BTreeMap<String, Cell> = [
            ("id", Cell::Int(n)),
            ("page", Cell::Str(format!("/p/{}/ü", n % 13))),
            ("key", Cell::Str(format!("user-{}", n % 97))),
            ("trace", Cell::Str(format!("t{n}"))),
            ("partition", Cell::Int((*p).into())),
            ("offset", Cell::Int(*o)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        assert_eq!(
            rows.get(&(*p, *o)),
            Some(&want),
            "{p}/{o}; {}",
            context(&moments)
        );
    }
    // The clean end committed the sink's offsets to the group, for lag tools.
    assert_eq!(
        group_committed(&broker.addr(), "sigkill", TOPIC, PARTITIONS),
        end,
        "{}",
        context(&moments)
    );
}
