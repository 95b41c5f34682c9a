//! Exactly once into PostgreSQL, against a real server the test starts (Debian's package) and a
//! nisshi broker:
//!
//! - the real `kingest` binary killed with SIGKILL at random moments, 20 times, while records
//!   keep arriving, then run to the end of the topic: the table holds exactly the input (count
//!   and every row's content), and after every kill the stored rows of each partition are
//!   exactly the offsets `[0, next_offset)` the offsets table records;
//! - PostgreSQL restarted (cleanly, then as a crash) while a streaming `kingest run` writes:
//!   it reconnects, redoes the transaction it was in, and the table still holds exactly the
//!   input, and `kingest check` shows the table's offsets beside the group's and the log end.
//!
//! Small flush thresholds make every run commit many transactions, so kills and restarts land
//! before, during and after commits. The job is a static group member (`group.instance.id`),
//! so a restarted process gets its partitions back without waiting out the killed one's
//! session. Kill moments come from a fixed-seed generator (override with
//! `KINGEST_SIGKILL_SEED`), printed with any failure. The kill loop is
//! `kingest_tests::ingest::kill`, shared with the Parquet sink's test.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kingest_tests::ingest::job::{source, write_job, PARTITION_OFFSET_COLUMNS};
use kingest_tests::ingest::kill::{click, click_page, static_member, Kills, CLICK_COLUMNS};
use kingest_tests::ingest::{
    end_offsets, group_committed, kingest, kingest_binary, log_tail, produce, Job, Produced,
};
use kingest_tests::peers::nisshi::Nisshi;
use kingest_tests::peers::postgres::Postgres;

const TOPIC: &str = "clicks";
const PARTITIONS: i32 = 3;

fn job(broker: &str, pg: &Postgres, group: &str) -> String {
    format!(
        r#"{}{}{CLICK_COLUMNS}{PARTITION_OFFSET_COLUMNS}
[flush]
rows = 300
age = "100ms"

[sink]
type = "postgres"
url = "{}"
table = "clicks"
"#,
        source(broker, TOPIC, group),
        static_member(&format!("{group}-member")),
        pg.url()
    )
}

/// A topic of [`PARTITIONS`] partitions on a new broker, a new PostgreSQL server, and the job
/// reading the topic as `group` into it, set up (`kingest setup`) with its log next to it.
struct Setup {
    pg: Postgres,
    broker: Nisshi,
    _work: tempfile::TempDir,
    config: PathBuf,
    log: PathBuf,
}

impl Setup {
    fn new(group: &str) -> Setup {
        let pg = Postgres::start();
        let broker = Nisshi::start();
        broker.create_topic(TOPIC, PARTITIONS as u32);
        let work = tempfile::tempdir().unwrap();
        let config = write_job(work.path(), &job(&broker.addr(), &pg, group));
        let log = work.path().join("kingest.log");
        kingest_binary();
        let out = kingest(&["setup", config.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "kingest setup: {}{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            log_tail(&log)
        );
        Setup {
            pg,
            broker,
            _work: work,
            config,
            log,
        }
    }
}

/// Produces records `from..to` and notes each one's id at its (partition, offset).
async fn produce_range(
    broker: &Nisshi,
    from: usize,
    to: usize,
    into: &mut BTreeMap<(i32, i64), i64>,
) {
    let batch: Vec<Produced> = (from..to).map(|n| click(n, PARTITIONS)).collect();
    for (n, at) in (from..to).zip(produce(&broker.addr(), TOPIC, &batch).await) {
        into.insert(at, n as i64);
    }
}

/// Per partition, the stored rows must be exactly the offsets `[0, next_offset)` that the
/// offsets table records for `group`: no gap, no duplicate, nothing beyond.
fn check_consistent(pg: &Postgres, group: &str, context: &str) -> i64 {
    let stored = pg.offsets_table(group, TOPIC);
    let rows = pg.psql(
        "SELECT partition, count(*), count(DISTINCT \"offset\"), max(\"offset\") + 1 \
         FROM clicks GROUP BY partition",
    );
    let mut total = 0;
    let mut seen = BTreeMap::new();
    for r in rows {
        let f: Vec<i64> = r.split('\x1f').map(|x| x.parse().unwrap()).collect();
        let (p, count, distinct, end) = (f[0] as i32, f[1], f[2], f[3]);
        assert_eq!(count, distinct, "partition {p}: duplicates; {context}");
        assert_eq!(count, end, "partition {p}: a gap; {context}");
        assert_eq!(
            stored.get(&p),
            Some(&end),
            "partition {p}: rows end at {end}, offsets table says {:?}; {context}",
            stored.get(&p)
        );
        seen.insert(p, end);
        total += count;
    }
    for (p, next) in &stored {
        assert_eq!(
            seen.get(p).copied().unwrap_or(0),
            *next,
            "partition {p}: offsets table ahead of the rows; {context}"
        );
    }
    total
}

/// The table must hold exactly `produced`: the count, and every row's content.
fn check_exact(pg: &Postgres, produced: &BTreeMap<(i32, i64), i64>, context: &str) {
    let rows = pg.psql("SELECT partition, \"offset\", id, page FROM clicks ORDER BY 1, 2");
    assert_eq!(rows.len(), produced.len(), "row count; {context}");
    for (row, ((p, o), n)) in rows.iter().zip(produced) {
        let want = format!("{p}\x1f{o}\x1f{n}\x1f{}", click_page(*n));
        assert_eq!(row, &want, "{context}");
    }
    // And a checksum PostgreSQL computes over the content, against ours.
    let sum =
        pg.psql_value("SELECT sum(id * length(page) + \"offset\" * 7 + partition) FROM clicks");
    let want: i64 = produced
        .iter()
        .map(|((p, o), n)| n * click_page(*n).chars().count() as i64 + o * 7 + i64::from(*p))
        .sum();
    assert_eq!(sum, want.to_string(), "checksum; {context}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_moments_into_postgres_loses_and_repeats_nothing() {
    const KILLS: usize = 20;
    let Setup {
        pg,
        broker,
        config,
        log,
        _work,
    } = Setup::new("pg-sigkill");
    let mut kills = Kills::new(0x7067_6b69_6c6c_2121, &config, &log);

    let mut produced = BTreeMap::new();
    let mut next = 3000;
    produce_range(&broker, 0, next, &mut produced).await;
    let mut last_total = 0;
    let started = Instant::now();
    kills
        .kill_repeatedly(
            KILLS,
            // Records keep arriving while it runs, so kills land in reads, COPYs and commits.
            async |_, kills: &mut Kills, job: &mut Job| {
                let deadline = Instant::now() + kills.delay("", 200, 2500);
                while Instant::now() < deadline {
                    produce_range(&broker, next, next + 200, &mut produced).await;
                    next += 200;
                    kills.assert_running(job);
                }
            },
            // After every kill, the table is consistent with its offsets and never shrinks.
            |kills| {
                let total = check_consistent(&pg, "pg-sigkill", &kills.context());
                assert!(total >= last_total, "rows went back; {}", kills.context());
                last_total = total;
            },
        )
        .await;
    kills.finish();
    let context = kills.context();
    eprintln!(
        "{KILLS} kills, {} records, {:?}; {context}",
        produced.len(),
        started.elapsed(),
    );
    check_consistent(&pg, "pg-sigkill", &context);
    check_exact(&pg, &produced, &context);
    // The clean end also committed the table's offsets to the group, for lag tools.
    assert_eq!(
        group_committed(&broker.addr(), "pg-sigkill", TOPIC, PARTITIONS),
        end_offsets(produced.keys()),
        "{context}"
    );
}

/// Waits (without asserting on time) until the offsets table reaches `end`, or panics after
/// two minutes with the job's log.
async fn wait_for_offsets(pg: &Postgres, group: &str, end: &BTreeMap<i32, i64>, log: &Path) {
    let limit = Instant::now() + Duration::from_secs(120);
    loop {
        let stored = pg.offsets_table(group, TOPIC);
        if &stored == end {
            return;
        }
        assert!(
            Instant::now() < limit,
            "the job did not reach {end:?} (at {stored:?}); log:\n{}",
            log_tail(log)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarts_mid_run_without_loss_or_duplicates() {
    let Setup {
        mut pg,
        broker,
        config,
        log,
        _work,
    } = Setup::new("pg-restart");

    let mut produced = BTreeMap::new();
    produce_range(&broker, 0, 5000, &mut produced).await;
    let mut job = Job::start(&config, &log, false);
    wait_for_offsets(&pg, "pg-restart", &end_offsets(produced.keys()), &log).await;
    // Restart while records keep arriving: a clean shutdown (sessions get 57P01), then a crash
    // (immediate stop, WAL recovery), each with the server gone for a while.
    let mut n = 5000;
    for mode in ["fast", "immediate"] {
        produce_range(&broker, n, n + 4000, &mut produced).await;
        n += 4000;
        tokio::time::sleep(Duration::from_millis(300)).await;
        pg.stop(mode);
        produce_range(&broker, n, n + 3000, &mut produced).await;
        n += 3000;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        pg.start_again();
        assert!(
            job.try_wait().is_none(),
            "kingest run exited while PostgreSQL was down; log:\n{}",
            log_tail(&log)
        );
        wait_for_offsets(&pg, "pg-restart", &end_offsets(produced.keys()), &log).await;
        check_consistent(&pg, "pg-restart", mode);
    }
    // A clean stop, then everything must be there exactly once.
    job.signal(rustix::process::Signal::TERM);
    let status = job.wait();
    assert!(
        status.success(),
        "kingest run: {status}; log:\n{}",
        log_tail(&log)
    );
    check_exact(&pg, &produced, "after two restarts");
    // `kingest check` shows the table's offsets beside the group's and the log end.
    let out = kingest(&["check", config.to_str().unwrap(), "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let end = end_offsets(produced.keys());
    let parts = status["partitions"].as_array().unwrap();
    assert_eq!(parts.len(), end.len(), "{status}");
    for p in parts {
        let want = end[&(p["partition"].as_i64().unwrap() as i32)];
        assert_eq!(p["sink"], want, "{status}");
        assert_eq!(p["group"], want, "{status}");
        assert_eq!(p["log_end"], want, "{status}");
        assert_eq!(p["lag"], 0, "{status}");
    }
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(
        log_text.contains("reconnecting") || log_text.contains("retrying"),
        "the job never saw the server go away; log:\n{}",
        log_tail(&log)
    );
}
