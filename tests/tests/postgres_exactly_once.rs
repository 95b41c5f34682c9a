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
//! `KINGEST_SIGKILL_SEED`), printed with any failure.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use kingest_tests::ingest::{group_committed, kingest, kingest_binary, produce, Produced};
use kingest_tests::peers::nisshi::Nisshi;
use kingest_tests::peers::postgres::Postgres;

const TOPIC: &str = "clicks";
const PARTITIONS: i32 = 3;

/// SplitMix64, so a failing sequence of kill moments can be replayed.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.next() % (hi - lo))
    }
}

fn record(n: usize) -> Produced {
    Produced {
        partition: (n * 7 % PARTITIONS as usize) as i32,
        key: Some(format!("user-{}", n % 97).into_bytes()),
        value: Some(format!("{{\"id\": {n}, \"page\": \"/p/{}/ü\"}}", n % 13).into_bytes()),
        headers: Vec::new(),
        timestamp: 1_700_000_000_000 + n as i64,
    }
}

fn page(n: i64) -> String {
    format!("/p/{}/ü", n % 13)
}

fn job(broker: &str, pg: &Postgres, group: &str) -> String {
    format!(
        r#"
[source]
brokers = "{broker}"
topics = ["{TOPIC}"]
group = "{group}"

[source.properties]
"group.instance.id" = "{group}-member"
"session.timeout.ms" = "6000"

[[columns]]
name = "id"
type = "int64"

[[columns]]
name = "page"
type = "string"

[[columns]]
name = "partition"
type = "int32"
source = "__partition"

[[columns]]
name = "offset"
type = "int64"
source = "__offset"

[flush]
rows = 300
age = "100ms"

[sink]
type = "postgres"
url = "{}"
table = "clicks"
"#,
        pg.url()
    )
}

/// `kingest run CONFIG` with its stderr appended to `log`.
fn start(config: &Path, log: &Path, until_eof: bool) -> Child {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let mut args = vec!["run", config.to_str().unwrap()];
    if until_eof {
        args.push("--until-eof");
    }
    kingest(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(file))
        .spawn()
        .expect("start kingest run")
}

fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

fn setup(config: &Path, log: &Path) {
    let out = kingest(&["setup", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kingest setup: {}{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        log_tail(log)
    );
}

async fn produce_range(
    broker: &Nisshi,
    from: usize,
    to: usize,
    into: &mut BTreeMap<(i32, i64), i64>,
) {
    let batch: Vec<Produced> = (from..to).map(record).collect();
    for (n, at) in (from..to).zip(produce(&broker.addr(), TOPIC, &batch).await) {
        into.insert(at, n as i64);
    }
}

/// Per partition, the stored rows must be exactly the offsets `[0, next_offset)` that the
/// offsets table records for `group`: no gap, no duplicate, nothing beyond.
fn check_consistent(pg: &Postgres, group: &str, context: &str) -> i64 {
    let stored: BTreeMap<i32, i64> = pg
        .psql(&format!(
            "SELECT partition, next_offset FROM kingest_offsets WHERE consumer_group = '{group}'"
        ))
        .iter()
        .map(|r| {
            let (p, o) = r.split_once('\x1f').unwrap();
            (p.parse().unwrap(), o.parse().unwrap())
        })
        .collect();
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
        let want = format!("{p}\x1f{o}\x1f{n}\x1f{}", page(*n));
        assert_eq!(row, &want, "{context}");
    }
    // And a checksum PostgreSQL computes over the content, against ours.
    let sum =
        pg.psql_value("SELECT sum(id * length(page) + \"offset\" * 7 + partition) FROM clicks");
    let want: i64 = produced
        .iter()
        .map(|((p, o), n)| n * page(*n).chars().count() as i64 + o * 7 + i64::from(*p))
        .sum();
    assert_eq!(sum, want.to_string(), "checksum; {context}");
}

fn end_offsets(produced: &BTreeMap<(i32, i64), i64>) -> BTreeMap<i32, i64> {
    let mut end = BTreeMap::new();
    for (p, o) in produced.keys() {
        let e = end.entry(*p).or_insert(0);
        *e = (*e).max(o + 1);
    }
    end
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_moments_into_postgres_loses_and_repeats_nothing() {
    const KILLS: usize = 20;
    let seed: u64 = std::env::var("KINGEST_SIGKILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x7067_6b69_6c6c_2121);
    let mut rng = SplitMix(seed);
    let pg = Postgres::start();
    let broker = Nisshi::start();
    broker.create_topic(TOPIC, PARTITIONS as u32);
    let work = tempfile::tempdir().unwrap();
    let config = work.path().join("job.toml");
    let log = work.path().join("kingest.log");
    std::fs::write(&config, job(&broker.addr(), &pg, "pg-sigkill")).unwrap();
    kingest_binary();
    setup(&config, &log);

    let mut produced = BTreeMap::new();
    let mut next = 3000;
    produce_range(&broker, 0, next, &mut produced).await;
    let mut moments = Vec::new();
    let mut kills = 0;
    let mut last_total = 0;
    let started = Instant::now();
    let context = |moments: &[u64]| format!("seed {seed}, kill moments (ms) {moments:?}");
    while kills < KILLS {
        // Streaming (no --until-eof): it never stops by itself, so every run ends in a kill.
        let mut child = start(&config, &log, false);
        let delay = rng.millis(200, 2500);
        moments.push(delay.as_millis() as u64);
        // Records keep arriving while it runs, so kills land in reads, COPYs and commits.
        let deadline = Instant::now() + delay;
        while Instant::now() < deadline {
            produce_range(&broker, next, next + 200, &mut produced).await;
            next += 200;
            if let Some(status) = child.try_wait().unwrap() {
                panic!(
                    "kingest run exited on its own ({status}); {}; log:\n{}",
                    context(&moments),
                    log_tail(&log)
                );
            }
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills += 1;
        let total = check_consistent(&pg, "pg-sigkill", &context(&moments));
        assert!(total >= last_total, "rows went back; {}", context(&moments));
        last_total = total;
    }
    let status = start(&config, &log, true).wait().unwrap();
    assert!(
        status.success(),
        "final run: {status}; {}; log:\n{}",
        context(&moments),
        log_tail(&log)
    );
    eprintln!(
        "{kills} kills, {} records, {:?}; {}",
        produced.len(),
        started.elapsed(),
        context(&moments)
    );
    check_consistent(&pg, "pg-sigkill", &context(&moments));
    check_exact(&pg, &produced, &context(&moments));
    // The clean end also committed the table's offsets to the group, for lag tools.
    assert_eq!(
        group_committed(&broker.addr(), "pg-sigkill", TOPIC, PARTITIONS),
        end_offsets(&produced),
        "{}",
        context(&moments)
    );
}

/// Waits (without asserting on time) until the offsets table reaches `end`, or panics after
/// `limit` with the job's log.
async fn wait_for_offsets(pg: &Postgres, group: &str, end: &BTreeMap<i32, i64>, log: &Path) {
    let limit = Instant::now() + Duration::from_secs(120);
    loop {
        let rows = pg.psql(&format!(
            "SELECT partition, next_offset FROM kingest_offsets WHERE consumer_group = '{group}'"
        ));
        let stored: BTreeMap<i32, i64> = rows
            .iter()
            .map(|r| {
                let (p, o) = r.split_once('\x1f').unwrap();
                (p.parse().unwrap(), o.parse().unwrap())
            })
            .collect();
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
    let mut pg = Postgres::start();
    let broker = Nisshi::start();
    broker.create_topic(TOPIC, PARTITIONS as u32);
    let work = tempfile::tempdir().unwrap();
    let config = work.path().join("job.toml");
    let log = work.path().join("kingest.log");
    std::fs::write(&config, job(&broker.addr(), &pg, "pg-restart")).unwrap();
    kingest_binary();
    setup(&config, &log);

    let mut produced = BTreeMap::new();
    produce_range(&broker, 0, 5000, &mut produced).await;
    let mut child = start(&config, &log, false);
    wait_for_offsets(&pg, "pg-restart", &end_offsets(&produced), &log).await;
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
            child.try_wait().unwrap().is_none(),
            "kingest run exited while PostgreSQL was down; log:\n{}",
            log_tail(&log)
        );
        wait_for_offsets(&pg, "pg-restart", &end_offsets(&produced), &log).await;
        check_consistent(&pg, "pg-restart", mode);
    }
    // A clean stop, then everything must be there exactly once.
    kingest_tests::ingest::send_signal(&child, rustix::process::Signal::TERM);
    let status = child.wait().unwrap();
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
    let end = end_offsets(&produced);
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
