//! The table sinks (Delta Lake and Iceberg) on real object store API servers, end to end: the
//! `kingest` binary writing a Delta table or an Iceberg warehouse to moto (the S3 API) and
//! Azurite (Azure Blob Storage), reached through `[sink.storage]` and `[sink.retry]`, and read
//! back by independent readers over the servers' own APIs: the Python `deltalake` package
//! (delta-rs, with `storage_options` pointing at the server) and polars for Delta, pyiceberg
//! (the SQLite catalog file, with its FileIO properties pointing at the server) for Iceberg.
//! Rows are keyed by their Kafka partition and offset columns.
//!
//! - A kill -9 loop per format and store: `kingest run` killed with SIGKILL 20 times at
//!   random moments while records keep arriving, as a dynamic group member (each restart waits
//!   for the killed member's session to expire and a rebalance), half the kills while starting
//!   and half after the run committed several flushes of its own; then a run to the end of the
//!   topic: every (partition, offset) exactly once with its content, and the table's own
//!   offsets (Delta `txn` actions, the Iceberg snapshot summary) at the end of each partition.
//! - Fault injection per format and store: a proxy between kingest and the server fails 20% of
//!   the requests (503 Slow Down, 500, connections dropped before or after the server acted):
//!   a streaming run retries, never stops and commits everything exactly once; then the store
//!   goes down under a running job: the run stops past the retry bound with an error naming the
//!   object and the server's answer, a run while it is down fails alike, and a run after it
//!   recovers completes the table exactly once.
//!
//! - Maintenance per store: `kingest compact --execute` with `[sink.compaction]` and
//!   `[sink.retention]` on an Iceberg table (on S3 through a REST catalog whose server writes
//!   the metadata to moto, on Azure through the SQL catalog): the small files rewritten, the
//!   old snapshots expired and their files deleted, an orphan older than
//!   `orphan_files_older_than` (by the server's `Last-Modified`) deleted and a young one kept;
//!   the server then holds exactly the current data files and one manifest list, and pyiceberg
//!   reads every record once. About 90 s each, most of it waiting for the orphan to be a
//!   minute old.
//!
//! A dropped answer to the conditional PUT of a Delta commit is the case that needs the sink
//! to recognise its own commit (see `LogStore::put_if_absent`): without that, both Delta fault
//! runs stop as fenced by "another writer".
//!
//! On Azure the Iceberg warehouse is `abfs://` (the scheme pyiceberg knows), and pyiceberg
//! reads it with its pyarrow FileIO and pyarrow's `AzureFileSystem` pointed at Azurite (see
//! `ingest::iceberg::read_table_with`). The SQLite catalog file stays local.
//!
//! On 2 cores the file takes about 4 minutes with 2 test threads: a kill loop 70-85 s, a fault
//! run 30-40 s.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use kingest_tests::ingest::compact::{compact_json, ClickProducer};
use kingest_tests::ingest::delta::{app_id, delta_exactly_once, read_delta_at};
use kingest_tests::ingest::iceberg::{read_table_with, rows_by_partition_offset, sqlite_uri};
use kingest_tests::ingest::job::{source, PARTITION_OFFSET_COLUMNS};
use kingest_tests::ingest::kill::{
    click, click_page, dynamic_member_session, Kills, CLICK_COLUMNS,
};
use kingest_tests::ingest::store_faults::FaultRun;
use kingest_tests::ingest::{
    assert_same_records, end_offsets, group_committed, kingest_binary, log_tail, produce, wait_for,
    Job, Produced,
};
use kingest_tests::peers::faults::{FaultProxy, Faults};
use kingest_tests::peers::iceberg_rest::IcebergRest;
use kingest_tests::peers::nisshi::Nisshi;
use kingest_tests::peers::objstore::{Api, ObjectServer};

const TOPIC: &str = "clicks";
const PARTITIONS: i32 = 4;
const BUCKET: &str = "lake";
const TABLE: &str = "lake.clicks";
const KILLS: usize = 20;
/// The consumer group's session: each restart after a kill waits about this long for the
/// killed member to be expired.
const SESSION_MS: u64 = 2000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Delta,
    Iceberg,
}

/// A table of one format in a bucket of one server, and the job that writes it.
struct Lake {
    format: Format,
    server: ObjectServer,
    work: tempfile::TempDir,
    /// Iceberg: a REST catalog in front of the SQL one (its warehouse on the server).
    rest: Option<IcebergRest>,
}

impl Lake {
    fn new(format: Format, server: ObjectServer) -> Lake {
        server.create_bucket(BUCKET);
        Lake {
            format,
            server,
            work: tempfile::tempdir().unwrap(),
            rest: None,
        }
    }

    /// An Iceberg table reached through a REST catalog whose server (pyiceberg) writes the
    /// metadata to the object store server, reached with pyiceberg's FileIO properties.
    fn iceberg_rest(server: ObjectServer) -> Lake {
        let mut lake = Lake::new(Format::Iceberg, server);
        let mut props = lake.server.pyiceberg_properties();
        if lake.server.api() == Api::S3 {
            // The server writes with boto3 (see `Boto3WriteIO` in iceberg_rest.py).
            props.insert("py-io-impl".into(), "__main__.Boto3WriteIO".into());
        }
        let rest = IcebergRest::start_with(&lake.location(), &props);
        lake.rest = Some(rest);
        lake
    }

    /// The prefix under the bucket that errors name.
    fn prefix(&self) -> &'static str {
        match self.format {
            Format::Delta => "tables/clicks",
            Format::Iceberg => "warehouse",
        }
    }

    /// The Delta table's path, or the Iceberg warehouse.
    fn location(&self) -> String {
        match self.format {
            Format::Delta => self.server.url(BUCKET, self.prefix()),
            Format::Iceberg => self.server.iceberg_url(BUCKET, self.prefix()),
        }
    }

    /// The Iceberg SQL catalog: a local SQLite file (the warehouse is on the server); with a
    /// REST catalog, the one behind it.
    fn catalog_uri(&self) -> String {
        match &self.rest {
            Some(r) => r.sql_uri().to_owned(),
            None => sqlite_uri(&self.work.path().join("catalog.db")),
        }
    }

    /// The `catalog` of the Iceberg `[sink]`.
    fn catalog(&self) -> String {
        match &self.rest {
            Some(r) => format!("{{ type = \"rest\", uri = \"{}\" }}", r.uri()),
            None => format!("{{ type = \"sql\", uri = \"{}\" }}", self.catalog_uri()),
        }
    }

    /// The job: clicks with their partition and offset, flushes of `rows` rows per
    /// partition or 150 ms, the store reached at `endpoint` (the server or a proxy), with
    /// `retry` as `[sink.retry]`. Fetches are small, so a backlog becomes many flushes.
    fn job(&self, broker: &str, group: &str, endpoint: &str, retry: &str, rows: usize) -> String {
        let sink = match self.format {
            Format::Delta => format!("type = \"delta\"\npath = \"{}\"\n", self.location()),
            Format::Iceberg => format!(
                "type = \"iceberg\"\ncatalog = {}\n\
                 table = \"{TABLE}\"\nwarehouse = \"{}\"\n",
                self.catalog(),
                self.location()
            ),
        };
        format!(
            r#"{}{}"max.partition.fetch.bytes" = "1024"
{CLICK_COLUMNS}{PARTITION_OFFSET_COLUMNS}
[flush]
rows = {rows}
age = "150ms"

[sink]
{sink}
[sink.storage]
{}
[sink.retry]
{retry}
"#,
            source(broker, TOPIC, group),
            dynamic_member_session(SESSION_MS),
            self.server.storage_options(endpoint),
        )
    }

    /// Reads the table with the independent reader of its format, straight from the server,
    /// and checks that it holds exactly `produced` (each record once, with its content) and
    /// that its offsets for `group` are the end of each partition. Returns a summary.
    fn check_exactly_once(
        &self,
        group: &str,
        produced: &BTreeMap<(i32, i64), Produced>,
        context: &str,
    ) -> String {
        let end = end_offsets(produced.keys());
        assert_eq!(end.len(), PARTITIONS as usize, "{context}");
        let (rows, summary): (Rows, String) = match self.format {
            Format::Delta => {
                let ids: Vec<String> = (0..PARTITIONS).map(|p| app_id(group, TOPIC, p)).collect();
                let read = read_delta_at(
                    &self.location(),
                    &self.server.storage_map(&self.server.endpoint()),
                    &ids,
                );
                // Also checks each partition's `txn` version against the end offsets.
                let rows = delta_exactly_once(&read, group, TOPIC, &end);
                let summary = format!("version {}, {} live files", read.version, read.files);
                (
                    rows.into_iter().map(|(k, r)| (k, cells(&r))).collect(),
                    summary,
                )
            }
            Format::Iceberg => {
                let table = read_table_with(
                    &self.catalog_uri(),
                    TABLE,
                    &self.server.pyiceberg_properties(),
                );
                let want: BTreeMap<(String, i32), i64> = end
                    .iter()
                    .map(|(p, o)| ((TOPIC.to_owned(), *p), *o))
                    .collect();
                assert_eq!(table.offsets(group), want, "snapshot offsets; {context}");
                let summary = format!(
                    "{} snapshots, {} live data files",
                    table.summaries.len(),
                    table.files
                );
                let rows = rows_by_partition_offset(&table);
                (
                    rows.into_iter()
                        .map(|(k, r)| (k, cells(&r.into_iter().collect())))
                        .collect(),
                    summary,
                )
            }
        };
        assert_same_records(&rows, produced, context);
        for ((p, o), r) in produced {
            let v: serde_json::Value = serde_json::from_slice(r.value.as_ref().unwrap()).unwrap();
            let n = v["id"].as_i64().unwrap();
            assert_eq!(rows[&(*p, *o)], (n, click_page(n)), "{p}/{o}; {context}");
        }
        summary
    }
}

/// A table's `id` and `page` by Kafka partition and offset.
type Rows = BTreeMap<(i32, i64), (i64, String)>;

/// A row's `id` and `page`.
fn cells(row: &serde_json::Map<String, serde_json::Value>) -> (i64, String) {
    (
        row["id"].as_i64().expect("an id"),
        row["page"].as_str().expect("a page").to_owned(),
    )
}

async fn kill_loop(format: Format, server: ObjectServer, seed: u64) {
    let broker = Nisshi::start();
    broker.create_topic(TOPIC, PARTITIONS as u32);
    let lake = Lake::new(format, server);
    let config = lake.work.path().join("job.toml");
    let log = lake.work.path().join("kingest.log");
    let group = "tables-kill";
    let job = lake.job(&broker.addr(), group, &lake.server.endpoint(), "", 200);
    std::fs::write(&config, job).unwrap();
    let mut kills = Kills::new(seed, &config, &log);
    kingest_binary();
    // Records arriving throughout, 60 at a time (each produce call takes a while).
    let producer = ClickProducer::start(broker.addr(), TOPIC, PARTITIONS, 60, 0);
    let started = Instant::now();
    let committed = |addr: &str| -> i64 {
        group_committed(addr, group, TOPIC, PARTITIONS)
            .values()
            .sum()
    };
    kills
        .kill_repeatedly(
            KILLS,
            async |kill, kills: &mut Kills, _: &mut Job| {
                // Half the kills while starting (recovery, joining the group: a dynamic member
                // waits for the killed one's session to expire), half after the run committed
                // flushes of its own three times, so every such run flushes several times and
                // the kill lands among commits.
                if kill % 2 == 1 {
                    for _ in 0..3 {
                        let before = committed(&broker.addr());
                        wait_for(
                            "the group's offsets to move (a flush committed)",
                            Duration::from_secs(120),
                            || committed(&broker.addr()) > before,
                            || kills.context_and_log(),
                        )
                        .await;
                    }
                    tokio::time::sleep(kills.delay("commit+", 0, 800)).await;
                } else {
                    tokio::time::sleep(kills.delay("start+", 20, 2500)).await;
                }
            },
            |_| {},
        )
        .await;
    let produced = producer.stop().await;
    kills.finish();
    let context = kills.context_and_log();
    let summary = lake.check_exactly_once(group, &produced, &context);
    eprintln!(
        "{format:?} on {:?}: {KILLS} kills, {} records, {summary}, {:?}",
        lake.server.api(),
        produced.len(),
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delta_s3_moto_kill_loop_exactly_once() {
    kill_loop(Format::Delta, ObjectServer::moto(), 0x6473_3363_6b69).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delta_azure_azurite_kill_loop_exactly_once() {
    kill_loop(Format::Delta, ObjectServer::azurite(), 0x6461_7a6b_696c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iceberg_s3_moto_kill_loop_exactly_once() {
    kill_loop(Format::Iceberg, ObjectServer::moto(), 0x6973_3363_6b69).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iceberg_azure_azurite_kill_loop_exactly_once() {
    kill_loop(Format::Iceberg, ObjectServer::azurite(), 0x6961_7a6b_696c).await;
}

async fn faults(format: Format, server: ObjectServer, seed: u64) {
    let started = Instant::now();
    let broker = Nisshi::start();
    broker.create_topic(TOPIC, PARTITIONS as u32);
    let lake = Lake::new(format, server);
    let proxy = FaultProxy::start(lake.server.port(), Faults::Fraction(0.2), seed);
    let group = "tables-faults";
    let config = lake.work.path().join("job.toml");
    let run = FaultRun {
        broker: &broker.addr(),
        topic: TOPIC,
        partitions: PARTITIONS,
        group,
        config: &config,
        log: &lake.work.path().join("kingest.log"),
        proxy: &proxy,
    };
    // Quick backoffs so the test does not wait on them; the retry count is the default. A
    // flush every 10 rows a partition: a commit every few records.
    let retry = "backoff = \"20ms\"\nmax_backoff = \"500ms\"\n";
    let job = lake.job(run.broker, group, &proxy.endpoint(), retry, 10);
    std::fs::write(&config, job).unwrap();
    let mut produced = BTreeMap::new();
    run.survive_faults(0..20, &mut produced).await;
    let counts = proxy.counts();
    // Among them answers lost after the server acted: for Delta, a commit's conditional PUT
    // retried and refused by its own object.
    assert!(
        counts.dropped_after.load(Ordering::SeqCst) >= 1,
        "no answer dropped after the server acted: {}",
        counts.summary()
    );
    let summary = lake.check_exactly_once(group, &produced, &counts.summary());
    eprintln!(
        "{format:?} on {:?} at 20% faults: {}; {summary}",
        lake.server.api(),
        counts.summary()
    );

    let bounded =
        "max_retries = 3\nbackoff = \"20ms\"\nmax_backoff = \"200ms\"\ntimeout = \"10s\"\n";
    let job = lake.job(run.broker, group, &proxy.endpoint(), bounded, 10);
    std::fs::write(&config, job).unwrap();
    let last = run
        .store_goes_down(20..28, 22, lake.prefix(), &mut produced)
        .await;
    eprintln!("{format:?} store down under a running job: {last}");
    lake.check_exactly_once(group, &produced, "after recovery");
    eprintln!(
        "{format:?} on {:?}: faults test {:?}",
        lake.server.api(),
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delta_s3_moto_faults_retried_and_bounded() {
    faults(Format::Delta, ObjectServer::moto(), 0xde17a).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delta_azure_azurite_faults_retried_and_bounded() {
    faults(Format::Delta, ObjectServer::azurite(), 0xde17b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iceberg_s3_moto_faults_retried_and_bounded() {
    faults(Format::Iceberg, ObjectServer::moto(), 0x1ceb).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iceberg_azure_azurite_faults_retried_and_bounded() {
    faults(Format::Iceberg, ObjectServer::azurite(), 0x1cec).await;
}

/// `kingest compact --execute` with `[sink.retention]` on an Iceberg table on the server:
/// `rewrite_data_files`, `expire_snapshots` and `remove_orphan_files`, their files listed and
/// deleted through the object store API and the orphans' age taken from its
/// `Last-Modified`. An orphan planted more than a minute before the run goes, one planted
/// just before stays; afterwards the server holds exactly the current snapshot's data files
/// (and the young orphan), one manifest list, and pyiceberg reads every record once with the
/// group's offsets unchanged.
async fn maintenance(lake: Lake) {
    let started = Instant::now();
    let broker = Nisshi::start();
    broker.create_topic(TOPIC, PARTITIONS as u32);
    let group = "tables-maintenance";
    let config = lake.work.path().join("job.toml");
    let log = lake.work.path().join("kingest.log");
    let table = format!("{}/lake/clicks", lake.prefix());
    // A data file a writer wrote and never committed, a minute and more before the run.
    let old_orphan = format!("{table}/data/00000-0-never-committed.parquet");
    lake.server.put(BUCKET, &old_orphan, "never committed");
    let planted = Instant::now();

    // Eight runs to the end of the topic, each after 100 more records: at least eight
    // commits, each with its small data files.
    let job = lake.job(&broker.addr(), group, &lake.server.endpoint(), "", 25);
    std::fs::write(&config, &job).unwrap();
    kingest_binary();
    let mut produced: BTreeMap<(i32, i64), Produced> = BTreeMap::new();
    for round in 0..8 {
        let records: Vec<Produced> = (round * 100..round * 100 + 100)
            .map(|n| click(n, PARTITIONS))
            .collect();
        let at = produce(&broker.addr(), TOPIC, &records).await;
        produced.extend(at.into_iter().zip(records));
        let status = Job::start(&config, &log, true).wait();
        assert!(status.success(), "{}", log_tail(&log));
    }
    let props = lake.server.pyiceberg_properties();
    let before = read_table_with(&lake.catalog_uri(), TABLE, &props);
    assert!(before.files >= 8, "{} data files", before.files);
    assert!(before.operations.len() >= 8, "{:?}", before.operations);
    lake.check_exactly_once(group, &produced, "before maintenance");

    let wait = Duration::from_secs(65).saturating_sub(planted.elapsed());
    tokio::time::sleep(wait).await;
    let young_orphan = format!("{table}/data/young.parquet");
    lake.server.put(BUCKET, &young_orphan, "being committed");
    let maintenance = "[sink.compaction]\ntarget_file_size = \"64KiB\"\n\
                       [sink.retention]\nmax_age = \"1s\"\norphan_files_older_than = \"1m\"\n";
    std::fs::write(&config, format!("{job}{maintenance}")).unwrap();
    let key = |location: &str| -> String {
        let rest = location.split_once("://").map_or(location, |(_, r)| r);
        rest.split_once('/').map_or("", |(_, k)| k).to_owned()
    };
    let plan = compact_json(&config, false);
    let orphans: Vec<String> = plan["plan"]["orphans"]
        .as_array()
        .map(|a| a.iter().map(|f| key(f["path"].as_str().unwrap())).collect())
        .unwrap_or_default();
    assert_eq!(orphans, vec![old_orphan.clone()], "{plan}");
    let done = compact_json(&config, true);

    let after = read_table_with(&lake.catalog_uri(), TABLE, &props);
    assert_eq!(after.operations, vec!["replace".to_owned()], "{done}");
    assert!(
        after.files < before.files,
        "{} -> {}",
        before.files,
        after.files
    );
    lake.check_exactly_once(group, &produced, "after maintenance");
    let objects: BTreeSet<String> = lake.server.list(BUCKET, &table).into_iter().collect();
    let data: BTreeSet<String> = objects
        .iter()
        .filter(|k| k.starts_with(&format!("{table}/data/")))
        .cloned()
        .collect();
    let mut want: BTreeSet<String> = after.file_paths.iter().map(|f| key(f)).collect();
    want.insert(young_orphan);
    assert_eq!(data, want, "data files on the server; {done}");
    let lists = objects
        .iter()
        .filter(|k| k.rsplit('/').next().unwrap_or("").starts_with("snap-"))
        .count();
    assert_eq!(
        lists, 1,
        "manifest lists of expired snapshots remain: {objects:?}"
    );
    eprintln!(
        "{:?} ({}): {} data files -> {}, {} snapshots -> 1, {} files deleted, {:?}",
        lake.server.api(),
        if lake.rest.is_some() {
            "REST catalog"
        } else {
            "SQL catalog"
        },
        before.files,
        after.files,
        before.operations.len(),
        done["done"]["deleted"].as_array().map_or(0, Vec::len),
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iceberg_s3_moto_rest_catalog_compaction_expiry_and_orphans() {
    maintenance(Lake::iceberg_rest(ObjectServer::moto())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iceberg_azure_azurite_compaction_expiry_and_orphans() {
    maintenance(Lake::new(Format::Iceberg, ObjectServer::azurite())).await;
}
