//! A partition whose records all leave no row — every one filtered out by `filter` or bad and
//! dead-lettered — still advances in a Parquet sink: `kingest::engine::run` on nisshi, run
//! again and again, never reads those records twice, so each bad record is in the dead letter
//! file exactly once; the offsets are kept by a zero-row marker file, which pyarrow-style
//! readers see as no rows, and older markers do not pile up. With and without `partition_by`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use arrow_array::Int64Array;
use kingest::config::Config;
use kingest_client::producer::{Producer, ProducerConfig, ProducerRecord};
use kingest_client::{Client, ClientConfig};
use kingest_tests::ingest::job::{
    parquet_sink, parse, run_until_eof, source, PARTITION_OFFSET_COLUMNS,
};
use kingest_tests::ingest::{column, dataset_files, rows_by_offset};
use kingest_tests::peers::nisshi::Nisshi;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

const TOPIC: &str = "resume";

/// What was produced: (partition, offset) → (n, how the record ends up).
type Log = BTreeMap<(i32, i64), (i64, Fate)>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    /// Partition 0: a row.
    Kept,
    /// Partition 1: well-formed, dropped by the filter.
    Filtered,
    /// Partition 1: malformed, dead-lettered.
    Bad,
}

/// Produces records `from..from + n` to partition 1 (all filtered or bad) and, when `with_rows`,
/// as many kept records to partition 0.
async fn produce(client: &Client, from: i64, n: i64, with_rows: bool) -> Log {
    let producer = Producer::new(client.clone(), ProducerConfig::default()).unwrap();
    let mut pending = Vec::new();
    for i in from..from + n {
        let (value, fate) = if i % 3 == 1 {
            (format!("garbage {i} {{"), Fate::Bad)
        } else {
            (
                format!("{{\"n\": {i}, \"kind\": \"drop\"}}"),
                Fate::Filtered,
            )
        };
        let record = ProducerRecord::new(TOPIC, value).with_partition(1);
        pending.push((producer.send(record).await.unwrap(), i, fate));
        if with_rows {
            let value = format!("{{\"n\": {i}, \"kind\": \"keep\"}}");
            let record = ProducerRecord::new(TOPIC, value).with_partition(0);
            pending.push((producer.send(record).await.unwrap(), i, Fate::Kept));
        }
    }
    let mut log = Log::new();
    for (d, i, fate) in pending {
        let meta = d.await.unwrap();
        log.insert((meta.partition, meta.offset), (i, fate));
    }
    producer.close().await.unwrap();
    log
}

fn job(broker: &str, out: &Path, dead: &Path, partition_by: Option<&str>) -> Config {
    let partition_by = partition_by
        .map(|c| format!("partition_by = \"{c}\""))
        .unwrap_or_default();
    let text = format!(
        r#"
filter = "kind = 'keep'"
{}
[[columns]]
name = "n"
type = "int64"
nullable = false

[[columns]]
name = "kind"
type = "string"
{PARTITION_OFFSET_COLUMNS}
[errors]
on_error = "dead_letter"
dead_letter_file = "{}"
{}{partition_by}
"#,
        source(broker, TOPIC, "resume-filtered"),
        dead.display(),
        parquet_sink(out)
    );
    parse(&text, "resume.toml")
}

/// The rows of the dataset, (partition, offset) → n, each at most once; and the files
/// without rows.
fn read_back(dir: &Path) -> (BTreeMap<(i32, i64), i64>, Vec<PathBuf>) {
    let (empty, with_rows): (Vec<PathBuf>, Vec<PathBuf>) =
        dataset_files(dir).into_iter().partition(|path| {
            let file = std::fs::File::open(path).unwrap();
            let builder = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
            builder.metadata().file_metadata().num_rows() == 0
        });
    let rows = rows_by_offset(&with_rows, |b, i| column::<Int64Array>(b, "n").value(i));
    (rows, empty)
}

/// The dead letters, by (partition, offset); fails on a record dead-lettered twice.
fn dead_letters(path: &Path) -> BTreeSet<(i32, i64)> {
    let mut seen = BTreeSet::new();
    for line in std::fs::read_to_string(path).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let key = (
            v["partition"].as_i64().unwrap() as i32,
            v["offset"].as_i64().unwrap(),
        );
        assert!(seen.insert(key), "dead-lettered twice: {line}");
    }
    seen
}

fn with_fate(log: &Log, fate: Fate) -> BTreeSet<(i32, i64)> {
    log.iter()
        .filter(|(_, (_, f))| *f == fate)
        .map(|(k, _)| *k)
        .collect()
}

async fn resumes_past_rowless_offsets(partition_by: Option<&str>) {
    let broker = Nisshi::start();
    broker.create_topic(TOPIC, 2);
    let client = Client::connect(ClientConfig::new(&broker.addr()))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (out, dead) = (dir.path().join("out"), dir.path().join("dead.jsonl"));
    let job = || job(&broker.addr(), &out, &dead, partition_by);

    let mut log = produce(&client, 0, 150, true).await;
    let bad = with_fate(&log, Fate::Bad);
    let filtered = with_fate(&log, Fate::Filtered).len() as u64;
    assert_eq!((bad.len(), filtered), (50, 100));
    let first = run_until_eof(job()).await.unwrap();
    assert_eq!(
        (first.records, first.rows, first.filtered, first.errors),
        (300, 150, filtered, 50),
        "{partition_by:?}"
    );
    assert_eq!(dead_letters(&dead), bad);
    let (rows, markers) = read_back(&out);
    let kept: BTreeMap<(i32, i64), i64> = log
        .iter()
        .filter(|(_, (_, f))| *f == Fate::Kept)
        .map(|(k, (n, _))| (*k, *n))
        .collect();
    assert_eq!(rows, kept);

    // A restart reads nothing again: no duplicate dead letter, nothing refetched.
    let again = run_until_eof(job()).await.unwrap();
    assert_eq!(
        (again.records, again.rows, again.filtered, again.errors),
        (0, 0, 0, 0),
        "{partition_by:?}"
    );
    assert_eq!(dead_letters(&dead), bad);
    // Partition 1's offsets are in a file without rows.
    assert_eq!(markers.len(), 1, "partition 1's offsets: {markers:?}");
    if let Some(column) = partition_by {
        let dir = markers[0].parent().unwrap().file_name().unwrap();
        assert_eq!(
            dir.to_string_lossy(),
            format!("{column}=__HIVE_DEFAULT_PARTITION__")
        );
    }

    // More records without rows: only they are read, each bad one dead-lettered once, and
    // the new marker replaces the old one.
    let more = produce(&client, 150, 30, false).await;
    log.extend(more.clone());
    let third = run_until_eof(job()).await.unwrap();
    assert_eq!(
        (third.records, third.rows, third.errors),
        (30, 0, with_fate(&more, Fate::Bad).len() as u64),
        "{partition_by:?}"
    );
    assert_eq!(dead_letters(&dead), with_fate(&log, Fate::Bad));
    let (rows, after) = read_back(&out);
    assert_eq!(rows, kept, "files with rows are untouched");
    assert_eq!(after.len(), 1, "{after:?}");
    assert_ne!(after, markers, "the superseded marker was deleted");

    let last = run_until_eof(job()).await.unwrap();
    assert_eq!((last.records, last.errors), (0, 0), "{partition_by:?}");
    assert_eq!(dead_letters(&dead), with_fate(&log, Fate::Bad));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rowless_partition_resumes_past_filtered_and_dead_lettered_records() {
    resumes_past_rowless_offsets(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rowless_partition_resumes_with_partition_by() {
    resumes_past_rowless_offsets(Some("kind")).await;
}
