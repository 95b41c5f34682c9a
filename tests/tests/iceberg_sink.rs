//! The Iceberg sink end to end, against a nisshi broker, read back by pyiceberg through the
//! same SQL catalog (an independent reader):
//!
//! - `kingest run` killed with SIGKILL at random moments, 20 times, while records keep
//!   arriving, as a *dynamic* group member (no `group.instance.id`: each restart joins anew and
//!   waits out the killed member's session), then run to the end of the topic: the table holds
//!   every produced record exactly once, with its content, and the newest snapshot's offsets
//!   are the log end;
//! - two `kingest run` processes of one group on one table, the second joining while the first
//!   writes (a rebalance in the middle), both committing snapshots into the same table: exactly
//!   once, and every snapshot's offsets extend the one before (no partition's offsets dropped
//!   or moved back by a commit that lost a conflict); `kingest check` shows the table's offsets;
//! - the catalog on PostgreSQL: pyiceberg's `SqlCatalog` on the same database reads the table,
//!   its schema and its partition spec;
//! - a REST catalog (the test server in `peers/iceberg_rest.py`: the REST protocol in front of
//!   pyiceberg's catalog, which checks requirements and applies updates): two groups commit
//!   into one table at once, their conflicts answered with 409 and retried.
//!
//! Kill moments come from a fixed-seed generator (`KINGEST_SIGKILL_SEED` overrides it), printed
//! with any failure.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kingest_tests::ingest::iceberg::{
    iceberg_sink, read_table, rows_by_partition_offset, sqlite_uri, IcebergTable,
};
use kingest_tests::ingest::job::{source, PARTITION_OFFSET_COLUMNS};
use kingest_tests::ingest::kill::{click, click_page, Kills, CLICK_COLUMNS};
use kingest_tests::ingest::{
    assert_same_records, end_offsets, kingest, kingest_binary, log_tail, produce, wait_for, Job,
    Produced,
};
use kingest_tests::peers::iceberg_rest::IcebergRest;
use kingest_tests::peers::nisshi::Nisshi;
use kingest_tests::peers::postgres::Postgres;

const TOPIC: &str = "clicks";
const TABLE: &str = "lake.clicks";

/// A dynamic member: no `group.instance.id`; a short session so a killed member's partitions
/// move on within seconds.
const DYNAMIC: &str = r#"
[source.properties]
"session.timeout.ms" = "6000"
"#;

fn job(broker: &str, group: &str, uri: &str, warehouse: &Path, flush: &str) -> String {
    format!(
        "{}{DYNAMIC}{CLICK_COLUMNS}{PARTITION_OFFSET_COLUMNS}{flush}{}",
        source(broker, TOPIC, group),
        iceberg_sink(uri, warehouse, TABLE, "[\"bucket(3, id)\"]")
    )
}

/// How many metadata files the table has: one per commit (and one for its creation).
fn commits(warehouse: &Path) -> usize {
    std::fs::read_dir(warehouse.join("lake/clicks/metadata"))
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().ends_with(".metadata.json"))
                .count()
        })
        .unwrap_or(0)
}

/// Checks that the table holds exactly `produced`: each record once, with its content.
fn assert_exactly(table: &IcebergTable, produced: &BTreeMap<(i32, i64), Produced>, context: &str) {
    let rows = rows_by_partition_offset(table);
    assert_same_records(&rows, produced, context);
    for ((p, o), r) in produced {
        let v: serde_json::Value = serde_json::from_slice(r.value.as_ref().unwrap()).unwrap();
        let n = v["id"].as_i64().unwrap();
        let row = &rows[&(*p, *o)];
        assert_eq!(row["id"], n, "{p}/{o}; {context}");
        assert_eq!(row["page"], click_page(n), "{p}/{o}; {context}");
    }
}

/// Every snapshot's offsets for `group` keep every partition of the one before, never lower.
fn assert_offsets_only_grow(table: &IcebergTable, group: &str) {
    let key = format!("kingest.offsets.{group}");
    let mut prev: BTreeMap<String, i64> = BTreeMap::new();
    for (i, s) in table.summaries.iter().enumerate() {
        let Some(text) = s.get(&key) else { continue };
        let v: BTreeMap<String, BTreeMap<String, i64>> = serde_json::from_str(text).unwrap();
        let now: BTreeMap<String, i64> = v
            .into_iter()
            .flat_map(|(t, ps)| ps.into_iter().map(move |(p, o)| (format!("{t}-{p}"), o)))
            .collect();
        for (tp, o) in &prev {
            let n = now.get(tp).copied();
            assert!(
                n.is_some_and(|n| n >= *o),
                "snapshot {i}: {tp} went from {o} to {n:?}: a commit lost another's offsets"
            );
        }
        prev = now;
    }
}

struct Producer {
    produced: Arc<Mutex<BTreeMap<(i32, i64), Produced>>>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Producer {
    /// Produces clicks to `TOPIC` until stopped: a burst, then a few hundred every 50 ms.
    fn start(addr: String, partitions: i32) -> Producer {
        let produced: Arc<Mutex<BTreeMap<(i32, i64), Produced>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (p2, s2) = (produced.clone(), stop.clone());
        let task = tokio::spawn(async move {
            let mut next = 0;
            while !s2.load(Ordering::SeqCst) {
                let n = if next == 0 { 3000 } else { 300 };
                let batch: Vec<Produced> = (next..next + n).map(|n| click(n, partitions)).collect();
                next += n;
                let at = produce(&addr, TOPIC, &batch).await;
                p2.lock().unwrap().extend(at.into_iter().zip(batch));
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        Producer {
            produced,
            stop,
            task,
        }
    }

    async fn stop(self) -> BTreeMap<(i32, i64), Produced> {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.unwrap();
        std::mem::take(&mut *self.produced.lock().unwrap())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iceberg_sigkill_with_dynamic_membership_loses_and_repeats_nothing() {
    const PARTITIONS: i32 = 3;
    const KILLS: usize = 20;
    let broker = Nisshi::start();
    broker.create_topic(TOPIC, PARTITIONS as u32);
    let work = tempfile::tempdir().unwrap();
    let warehouse = work.path().join("warehouse");
    let uri = sqlite_uri(&work.path().join("catalog.db"));
    let config = work.path().join("job.toml");
    let log = work.path().join("kingest.log");
    let flush = "\n[flush]\nrows = 200\nage = \"200ms\"\n";
    std::fs::write(
        &config,
        job(&broker.addr(), "sigkill", &uri, &warehouse, flush),
    )
    .unwrap();
    let mut kills = Kills::new(0x6963_6562_6572_6721, &config, &log);
    kingest_binary();
    let producer = Producer::start(broker.addr(), PARTITIONS);
    let started = Instant::now();
    // Half the kills at a random moment after the start (joining the group, which waits for
    // the killed member's session to end, resuming from the table); half at a random moment
    // after the run committed three snapshots of its own, so they land among commits and
    // every such run flushes several times.
    kills
        .kill_repeatedly(
            KILLS,
            async |kill, kills: &mut Kills, _: &mut Job| {
                if kill % 2 == 1 {
                    let before = commits(&warehouse);
                    wait_for(
                        "three new snapshots committed",
                        Duration::from_secs(90),
                        || commits(&warehouse) >= before + 3,
                        || kills.context_and_log(),
                    )
                    .await;
                    tokio::time::sleep(kills.delay("commit+", 0, 800)).await;
                } else {
                    tokio::time::sleep(kills.delay("start+", 20, 3000)).await;
                }
            },
            |_| {},
        )
        .await;
    let produced = producer.stop().await;
    kills.finish();
    let context = kills.context_and_log();
    let table = read_table(&uri, TABLE);
    eprintln!(
        "{KILLS} kills, {} records, {} snapshots, {} data files, {:?}",
        produced.len(),
        table.summaries.len(),
        table.files,
        started.elapsed()
    );
    assert_exactly(&table, &produced, &context);
    let end: BTreeMap<(String, i32), i64> = end_offsets(produced.keys())
        .into_iter()
        .map(|(p, o)| ((TOPIC.to_owned(), p), o))
        .collect();
    assert_eq!(table.offsets("sigkill"), end, "{context}");
    assert_offsets_only_grow(&table, "sigkill");
}

/// `kingest check JOB --json`: the table's offset per partition.
fn checked_sink_offsets(config: &Path) -> BTreeMap<i32, Option<i64>> {
    let out = kingest(&["check", config.to_str().unwrap(), "--json"])
        .output()
        .unwrap();
    let v: serde_json::Value = match serde_json::from_slice(&out.stdout) {
        Ok(v) => v,
        Err(_) => return BTreeMap::new(),
    };
    v["partitions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| (p["partition"].as_i64().unwrap() as i32, p["sink"].as_i64()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iceberg_two_processes_of_a_group_share_a_table_through_a_rebalance() {
    const PARTITIONS: i32 = 4;
    let broker = Nisshi::start();
    broker.create_topic(TOPIC, PARTITIONS as u32);
    let work = tempfile::tempdir().unwrap();
    let warehouse = work.path().join("warehouse");
    let uri = sqlite_uri(&work.path().join("catalog.db"));
    let config = work.path().join("job.toml");
    let flush = "\n[flush]\nrows = 150\nage = \"100ms\"\n";
    std::fs::write(
        &config,
        job(&broker.addr(), "pair", &uri, &warehouse, flush),
    )
    .unwrap();
    let logs_dir = std::env::var_os("ICEBERG_TEST_LOGS").map(std::path::PathBuf::from);
    let logs_dir = logs_dir.unwrap_or_else(|| work.path().to_path_buf());
    let (log_a, log_b) = (logs_dir.join("a.log"), logs_dir.join("b.log"));
    let logs = || format!("a:\n{}\nb:\n{}", log_tail(&log_a), log_tail(&log_b));
    kingest_binary();
    let producer = Producer::start(broker.addr(), PARTITIONS);
    let mut a = Job::start(&config, &log_a, false);
    wait_for(
        "process a committing",
        Duration::from_secs(60),
        || commits(&warehouse) > 3,
        logs,
    )
    .await;
    // b joins: the group rebalances while a is writing; both then commit into the table.
    let mut b = Job::start(&config, &log_b, false);
    tokio::time::sleep(Duration::from_secs(8)).await;
    let produced = producer.stop().await;
    let end = end_offsets(produced.keys());
    let want: BTreeMap<i32, Option<i64>> = end.iter().map(|(p, o)| (*p, Some(*o))).collect();
    wait_for(
        "the table's offsets reaching the log end (kingest check)",
        Duration::from_secs(120),
        || checked_sink_offsets(&config) == want,
        logs,
    )
    .await;
    for job in [&mut a, &mut b] {
        if job.try_wait().is_some() {
            let t = read_table(&uri, TABLE);
            let history: Vec<(Option<&String>, Option<&String>)> = t
                .summaries
                .iter()
                .map(|s| (s.get("kingest.writer"), s.get("kingest.offsets.pair")))
                .collect();
            panic!(
                "a process stopped on its own; {}\nsnapshots: {history:#?}",
                logs()
            );
        }
        job.signal(rustix::process::Signal::TERM);
    }
    for job in [&mut a, &mut b] {
        let status = job.wait();
        assert!(status.success(), "{status}; {}", logs());
    }
    let table = read_table(&uri, TABLE);
    assert_exactly(&table, &produced, &logs());
    assert_offsets_only_grow(&table, "pair");
    // Both processes committed, each on top of the other's snapshots.
    let writers: Vec<&String> = table
        .summaries
        .iter()
        .filter_map(|s| s.get("kingest.writer"))
        .collect();
    let distinct: std::collections::BTreeSet<&String> = writers.iter().copied().collect();
    assert_eq!(distinct.len(), 2, "{writers:?}");
    assert!(
        writers.windows(2).filter(|w| w[0] != w[1]).count() >= 2,
        "the two processes' commits never interleaved: {writers:?}"
    );
    let a_log = std::fs::read_to_string(&log_a).unwrap_or_default();
    let b_log = std::fs::read_to_string(&log_b).unwrap_or_default();
    assert!(
        !a_log.contains("ERROR") && !b_log.contains("ERROR"),
        "{}",
        logs()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iceberg_catalog_on_postgres_reads_back_with_pyiceberg() {
    const PARTITIONS: i32 = 2;
    let pg = Postgres::start();
    let broker = Nisshi::start();
    broker.create_topic(TOPIC, PARTITIONS as u32);
    let work = tempfile::tempdir().unwrap();
    let warehouse = work.path().join("warehouse");
    let text = format!(
        "{}{CLICK_COLUMNS}{PARTITION_OFFSET_COLUMNS}\n[flush]\nrows = 100\n{}",
        source(&broker.addr(), TOPIC, "pg-catalog"),
        iceberg_sink(
            &pg.url(),
            &warehouse,
            TABLE,
            "[\"partition\", \"truncate(2, page)\"]"
        )
    );
    // Two runs to the end of the topic, records produced before each: the second resumes
    // from the table's offsets.
    let mut produced: BTreeMap<(i32, i64), Produced> = BTreeMap::new();
    for (from, to) in [(0, 300), (300, 500)] {
        let batch: Vec<Produced> = (from..to).map(|n| click(n, PARTITIONS)).collect();
        let at = produce(&broker.addr(), TOPIC, &batch).await;
        produced.extend(at.into_iter().zip(batch));
        let config = kingest_tests::ingest::job::parse(&text, "job.toml");
        let summary = kingest_tests::ingest::job::run_until_eof(config)
            .await
            .unwrap();
        assert_eq!(summary.rows, (to - from) as u64);
    }
    let uri = format!(
        "postgresql+psycopg2://postgres@127.0.0.1:{}/postgres",
        pg.port()
    );
    let table = read_table(&uri, TABLE);
    assert_exactly(&table, &produced, &pg.log());
    assert_eq!(table.schema["id"], "long");
    assert_eq!(table.schema["page"], "string");
    assert_eq!(table.schema["partition"], "int");
    assert_eq!(table.schema["offset"], "long");
    assert_eq!(
        table.spec,
        vec![
            ("partition".into(), "identity".into(), "partition".into()),
            ("page_trunc".into(), "truncate[2]".into(), "page".into()),
        ]
    );
    assert!(table.summaries.len() >= 2, "{:?}", table.summaries);
    let want: BTreeMap<(String, i32), i64> = end_offsets(produced.keys())
        .into_iter()
        .map(|(p, o)| ((TOPIC.to_owned(), p), o))
        .collect();
    assert_eq!(table.offsets("pg-catalog"), want);
    assert_eq!(
        pg.psql_value("SELECT count(*) FROM iceberg_tables WHERE table_namespace = 'lake'"),
        "1"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iceberg_rest_catalog_commits_two_groups_into_one_table() {
    const PARTITIONS: i32 = 2;
    let broker = Nisshi::start();
    broker.create_topic(TOPIC, PARTITIONS as u32);
    let work = tempfile::tempdir().unwrap();
    let warehouse = work.path().join("warehouse");
    let rest = IcebergRest::start(&warehouse);
    let batch: Vec<Produced> = (0..3000).map(|n| click(n, PARTITIONS)).collect();
    let at = produce(&broker.addr(), TOPIC, &batch).await;
    let produced: BTreeMap<(i32, i64), Produced> = at.into_iter().zip(batch).collect();
    // Two groups read the same topic into one table at the same time, many small commits
    // each: their commits race, and the server's 409s make them read the table again.
    let job = |group: &str| {
        format!(
            "{}{CLICK_COLUMNS}{PARTITION_OFFSET_COLUMNS}\n[flush]\nrows = 50\n\n[sink]\ntype = \"iceberg\"\ncatalog = {{ type = \"rest\", uri = \"{}\" }}\ntable = \"{TABLE}\"\nwarehouse = \"{}\"\npartition_by = \"partition\"\n",
            source(&broker.addr(), TOPIC, group),
            rest.uri(),
            warehouse.display()
        )
    };
    let runs = ["rest-a", "rest-b"].map(|g| {
        let config = kingest_tests::ingest::job::parse(&job(g), "job.toml");
        tokio::spawn(kingest_tests::ingest::job::run_until_eof(config))
    });
    for r in runs {
        assert_eq!(r.await.unwrap().unwrap().rows, 3000);
    }
    let table = read_table(rest.sql_uri(), TABLE);
    assert_eq!(table.rows.len(), 6000, "each group's rows once");
    let end: BTreeMap<(String, i32), i64> = end_offsets(produced.keys())
        .into_iter()
        .map(|(p, o)| ((TOPIC.to_owned(), p), o))
        .collect();
    for group in ["rest-a", "rest-b"] {
        assert_eq!(table.offsets(group), end, "{group}");
        assert_offsets_only_grow(&table, group);
    }
    assert_eq!(
        table.spec,
        vec![("partition".into(), "identity".into(), "partition".into())]
    );
    let mut per_key: BTreeMap<(i32, i64), usize> = BTreeMap::new();
    for r in &table.rows {
        *per_key
            .entry((
                r["partition"].as_i64().unwrap() as i32,
                r["offset"].as_i64().unwrap(),
            ))
            .or_default() += 1;
    }
    assert!(per_key.values().all(|n| *n == 2));
    assert_eq!(per_key.len(), produced.len());
}
