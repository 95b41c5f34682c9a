//! `on_error` end to end on nisshi: a topic with malformed records among good ones, ingested
//! in-process by `kingest::engine::run`, the Parquet output read back with the parquet crate.
//!
//! - `skip`: the output holds exactly the good records;
//! - `dead_letter` to a file and to a topic: the dead letters are exactly the bad records, with
//!   their key, value, original headers, error, topic, partition and offset;
//! - `fail`: the run stops at a bad record, naming its topic, partition and offset, and
//!   commits nothing;
//! - `max_errors` (a count and a percentage): the run stops with its message;
//! - `format.tombstones`: null and empty values as rows of NULLs, skipped, or bad records.
//!
//! Messages are checked whole: the record named once, then what was wrong.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use arrow_array::Int64Array;
use kingest::config::Config;
use kingest::engine::EngineError;
use kingest_client::consumer::{ConsumerConfig, PartitionConsumer, StartAt};
use kingest_client::producer::{Producer, ProducerConfig, ProducerRecord};
use kingest_client::{Client, ClientConfig};
use kingest_tests::ingest::job::{
    parquet_sink, parse, run_until_eof, source, PARTITION_OFFSET_COLUMNS,
};
use kingest_tests::ingest::{column, parquet_files, rows_by_offset};
use kingest_tests::peers::nisshi::Nisshi;

const TOPIC: &str = "mixed";

/// A produced record: its value, key and whether it is well-formed.
#[derive(Debug, Clone)]
struct Sent {
    value: String,
    key: String,
    good: bool,
}

/// (partition, offset) → what was sent there.
type Log = BTreeMap<(i32, i64), Sent>;

/// Produces `n` records over two partitions; every seventh is malformed (alternately not JSON
/// at all, and a string where `n` must be an integer). Each has a key and a header `h`.
async fn produce(client: &Client, n: i64) -> Log {
    let producer = Producer::new(client.clone(), ProducerConfig::default()).unwrap();
    let mut pending = Vec::new();
    for i in 0..n {
        let good = i % 7 != 3;
        let value = if good {
            format!("{{\"n\": {i}, \"s\": \"row {i}\"}}")
        } else if i % 2 == 0 {
            format!("{{\"n\": \"not a number {i}\"}}")
        } else {
            format!("garbage {i} {{")
        };
        let key = format!("k{i}");
        let record = ProducerRecord::new(TOPIC, value.clone())
            .with_key(key.clone())
            .with_partition((i % 2) as i32)
            .with_header("h", Some(format!("v{i}").into()));
        let d = producer.send(record).await.unwrap();
        pending.push((d, Sent { value, key, good }));
    }
    let mut log = Log::new();
    for (d, sent) in pending {
        let meta = d.await.unwrap();
        log.insert((meta.partition, meta.offset), sent);
    }
    producer.close().await.unwrap();
    log
}

fn job(broker: &str, dir: &Path, errors: &str) -> Config {
    let text = format!(
        r#"{}
[[columns]]
name = "n"
type = "int64"
nullable = false

[[columns]]
name = "s"
type = "string"
{PARTITION_OFFSET_COLUMNS}
[errors]
{errors}
{}"#,
        source(broker, TOPIC, "errors-test"),
        parquet_sink(dir)
    );
    parse(&text, "errors.toml")
}

/// (partition, offset) → n, from every Parquet file under `dir`.
fn read_back(dir: &Path) -> BTreeMap<(i32, i64), i64> {
    rows_by_offset(&parquet_files(dir), |b, i| {
        column::<Int64Array>(b, "n").value(i)
    })
}

/// The good records as the output should hold them.
fn good_rows(log: &Log) -> BTreeMap<(i32, i64), i64> {
    log.iter()
        .filter(|(_, s)| s.good)
        .map(|(k, s)| {
            let v: serde_json::Value = serde_json::from_str(&s.value).unwrap();
            (*k, v["n"].as_i64().unwrap())
        })
        .collect()
}

/// The message of a bad record's error, exactly: what was wrong, where in the record, and not
/// the record's topic, partition and offset, which the reporter shows once, beside it.
fn expected_error(sent: &Sent) -> String {
    assert!(!sent.good);
    match sent.value.strip_prefix("{\"n\": \"") {
        Some(rest) => format!(
            "column \"n\" (JSON /n): cannot read \"{}\" as int64",
            rest.trim_end_matches("\"}")
        ),
        None => format!(
            "value (json): invalid JSON at byte 0: expected a value (near \"{}\")",
            sent.value
        ),
    }
}

fn bad_keys(log: &Log) -> BTreeSet<(i32, i64)> {
    log.iter()
        .filter(|(_, s)| !s.good)
        .map(|(k, _)| *k)
        .collect()
}

async fn setup(n: i64) -> (Nisshi, Log) {
    let broker = Nisshi::start();
    broker.create_topic(TOPIC, 2);
    let client = Client::connect(ClientConfig::new(&broker.addr()))
        .await
        .unwrap();
    let log = produce(&client, n).await;
    (broker, log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skip_writes_exactly_the_good_records() {
    let (broker, log) = setup(700).await;
    let dir = tempfile::tempdir().unwrap();
    let summary = run_until_eof(job(&broker.addr(), dir.path(), r#"on_error = "skip""#))
        .await
        .unwrap();
    let bad = bad_keys(&log).len() as u64;
    assert_eq!(bad, 100);
    assert_eq!(
        (summary.records, summary.rows, summary.errors),
        (700, 600, bad)
    );
    assert_eq!(read_back(dir.path()), good_rows(&log));
    // The bad records were read past: a second run reads nothing (they do not loop).
    let again = run_until_eof(job(&broker.addr(), dir.path(), r#"on_error = "skip""#))
        .await
        .unwrap();
    assert_eq!((again.records, again.errors), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letter_file_holds_exactly_the_bad_records() {
    let (broker, log) = setup(350).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let dlq = dir.path().join("dead.jsonl");
    let errors = format!(
        "on_error = \"dead_letter\"\ndead_letter_file = \"{}\"",
        dlq.display()
    );
    let summary = run_until_eof(job(&broker.addr(), &out, &errors))
        .await
        .unwrap();
    assert_eq!(summary.errors, 50);
    assert_eq!(read_back(&out), good_rows(&log));

    let mut seen = BTreeSet::new();
    for line in std::fs::read_to_string(&dlq).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["topic"], TOPIC);
        assert_eq!(v["stage"], "decode");
        let key = (
            v["partition"].as_i64().unwrap() as i32,
            v["offset"].as_i64().unwrap(),
        );
        let sent = &log[&key];
        assert!(!sent.good, "a good record was dead-lettered: {line}");
        let value = hex::decode(v["value_hex"].as_str().unwrap()).unwrap();
        assert_eq!(String::from_utf8(value).unwrap(), sent.value);
        let k = hex::decode(v["key_hex"].as_str().unwrap()).unwrap();
        assert_eq!(String::from_utf8(k).unwrap(), sent.key);
        assert_eq!(v["headers"][0]["key"], "h");
        assert_eq!(v["error"].as_str().unwrap(), expected_error(sent), "{line}");
        assert!(v["timestamp"].as_i64().unwrap() > 0);
        assert!(seen.insert(key), "dead-lettered twice: {line}");
    }
    assert_eq!(seen, bad_keys(&log));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letter_topic_holds_exactly_the_bad_records() {
    let (broker, log) = setup(350).await;
    broker.create_topic("mixed-dlq", 1);
    let dir = tempfile::tempdir().unwrap();
    let errors = "on_error = \"dead_letter\"\ndead_letter_topic = \"mixed-dlq\"";
    let summary = run_until_eof(job(&broker.addr(), dir.path(), errors))
        .await
        .unwrap();
    assert_eq!(summary.errors, 50);
    assert_eq!(read_back(dir.path()), good_rows(&log));

    // Read the dead-letter topic back with a plain consumer.
    let client = Client::connect(ClientConfig::new(&broker.addr()))
        .await
        .unwrap();
    let mut consumer = PartitionConsumer::new(client, ConsumerConfig::default()).unwrap();
    consumer
        .assign(&[("mixed-dlq".to_owned(), 0, StartAt::Earliest)])
        .await
        .unwrap();
    let mut seen = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.len() < 50 {
        assert!(
            Instant::now() < deadline,
            "only {} of 50 dead letters arrived on mixed-dlq",
            seen.len()
        );
        let fetched = consumer
            .poll_timeout(Duration::from_millis(500))
            .await
            .unwrap();
        for r in fetched.records() {
            let rec = &r.record;
            let header = |name: &str| {
                rec.headers
                    .last(name.as_bytes())
                    .flatten()
                    .map(|v| String::from_utf8(v.to_vec()).unwrap())
                    .unwrap_or_else(|| panic!("header {name} missing"))
            };
            assert_eq!(header("kingest.error.topic"), TOPIC);
            assert_eq!(header("kingest.error.stage"), "decode");
            let key = (
                header("kingest.error.partition").parse::<i32>().unwrap(),
                header("kingest.error.offset").parse::<i64>().unwrap(),
            );
            let sent = &log[&key];
            assert!(!sent.good);
            assert_eq!(rec.value.unwrap(), sent.value.as_bytes());
            assert_eq!(rec.key.unwrap(), sent.key.as_bytes());
            let n: i64 = sent.key[1..].parse().unwrap();
            assert_eq!(header("h"), format!("v{n}"), "original header kept");
            assert_eq!(header("kingest.error.message"), expected_error(sent));
            assert!(header("kingest.error.timestamp").parse::<i64>().unwrap() > 0);
            assert!(seen.insert(key), "dead-lettered twice: {key:?}");
        }
    }
    assert_eq!(seen, bad_keys(&log));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_stops_naming_topic_partition_and_offset() {
    let (broker, log) = setup(70).await;
    let dir = tempfile::tempdir().unwrap();
    let err = run_until_eof(job(&broker.addr(), dir.path(), r#"on_error = "fail""#))
        .await
        .unwrap_err();
    let EngineError::Record {
        topic,
        partition,
        offset,
        ..
    } = &err
    else {
        panic!("expected a record error, got {err}");
    };
    assert_eq!(topic, TOPIC);
    assert!(
        bad_keys(&log).contains(&(*partition, *offset)),
        "stopped at a good record? {err}"
    );
    // The record named once, then what was wrong with it.
    assert_eq!(
        err.to_string(),
        format!(
            "{TOPIC}-{partition} offset {offset}: {}",
            expected_error(&log[&(*partition, *offset)])
        )
    );
    // The first bad record of that partition, and nothing was committed.
    let first_bad = bad_keys(&log)
        .into_iter()
        .find(|(p, _)| p == partition)
        .unwrap();
    assert_eq!((*partition, *offset), first_bad);
    assert!(read_back(dir.path()).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_limits_stop_the_run_with_their_message() {
    let (broker, log) = setup(700).await;
    let dir = tempfile::tempdir().unwrap();
    let err = run_until_eof(job(
        &broker.addr(),
        dir.path(),
        "on_error = \"skip\"\nmax_errors = 3",
    ))
    .await
    .unwrap_err();
    let EngineError::ErrorLimit {
        errors,
        records,
        limit,
        topic,
        partition,
        offset,
        last,
    } = &err
    else {
        panic!("expected the error limit, got {err}");
    };
    assert_eq!((*errors, limit.as_str()), (4, "3"));
    assert_eq!(last, &expected_error(&log[&(*partition, *offset)]));
    assert_eq!(
        err.to_string(),
        format!(
            "stopping: 4 bad records of {records} exceed errors.max_errors (3); the last at \
             {topic}-{partition} offset {offset}: {last}"
        )
    );

    // One in seven is far more than 5%: stopped once 100 records are judged.
    let err = run_until_eof(job(
        &broker.addr(),
        dir.path(),
        "on_error = \"skip\"\nmax_errors = \"5%\"",
    ))
    .await
    .unwrap_err();
    let EngineError::ErrorLimit {
        errors, records, ..
    } = &err
    else {
        panic!("expected the error limit, got {err}");
    };
    assert!(*records >= 100 && *records < 700, "{err}");
    assert!(*errors as f64 > 0.05 * *records as f64, "{err}");
    assert!(err.to_string().contains("(\"5%\")"), "{err}");
    assert!(read_back(dir.path()).is_empty());
}

/// `format.tombstones` end to end: a null and an empty value among good records, in jobs that
/// stop at any bad record (`on_error = "fail"`, `max_errors = 0`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tombstones_become_null_rows_nothing_or_bad_records_as_the_job_says() {
    let broker = Nisshi::start();
    broker.create_topic("tombs", 1);
    let client = Client::connect(ClientConfig::new(&broker.addr()))
        .await
        .unwrap();
    let producer = Producer::new(client.clone(), ProducerConfig::default()).unwrap();
    // Offsets 0..5: good, null (a tombstone), good, empty (a tombstone for JSON), good.
    let values = [
        Some("{\"n\": 0}"),
        None,
        Some("{\"n\": 2}"),
        Some(""),
        Some("{\"n\": 4}"),
    ];
    for (i, v) in values.iter().enumerate() {
        let mut record = ProducerRecord::new("tombs", v.unwrap_or_default())
            .with_key(format!("k{i}"))
            .with_partition(0);
        record.value = v.map(|v| v.as_bytes().to_vec().into());
        let meta = producer.send(record).await.unwrap().await.unwrap();
        assert_eq!(meta.offset, i as i64);
    }
    producer.close().await.unwrap();

    let job = |dir: &Path, tombstones: &str, group: &str| {
        let text = format!(
            r#"{}
[format]
type = "json"
{tombstones}

[[columns]]
name = "n"
type = "int64"
{PARTITION_OFFSET_COLUMNS}
[errors]
on_error = "fail"
max_errors = 0
{}"#,
            source(&broker.addr(), "tombs", group),
            parquet_sink(dir)
        );
        parse(&text, "tombstones.toml")
    };
    let n_by_offset = |dir: &Path| {
        rows_by_offset(&parquet_files(dir), |b, i| {
            let n = column::<Int64Array>(b, "n");
            (!arrow_array::Array::is_null(n, i)).then(|| n.value(i))
        })
    };

    // The default: rows of NULLs, keeping their offsets.
    let dir = tempfile::tempdir().unwrap();
    let summary = run_until_eof(job(dir.path(), "", "null-row"))
        .await
        .unwrap();
    assert_eq!((summary.records, summary.rows, summary.errors), (5, 5, 0));
    assert_eq!(
        n_by_offset(dir.path()),
        BTreeMap::from([
            ((0, 0), Some(0)),
            ((0, 1), None),
            ((0, 2), Some(2)),
            ((0, 3), None),
            ((0, 4), Some(4)),
        ])
    );

    // skip: no rows for them, and the run goes on although no bad record is allowed.
    let dir = tempfile::tempdir().unwrap();
    let summary = run_until_eof(job(dir.path(), "tombstones = \"skip\"", "skip"))
        .await
        .unwrap();
    // Two records gave no row; the run's error total counts them (docs/config.md).
    assert_eq!((summary.records, summary.rows, summary.errors), (5, 3, 2));
    assert_eq!(
        n_by_offset(dir.path()),
        BTreeMap::from([((0, 0), Some(0)), ((0, 2), Some(2)), ((0, 4), Some(4))])
    );

    // error: the first tombstone stops the run, named once.
    let dir = tempfile::tempdir().unwrap();
    let err = run_until_eof(job(dir.path(), "tombstones = \"error\"", "error"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, EngineError::Record { offset: 1, .. }),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "tombs-0 offset 1: null value (a tombstone), refused by format.tombstones = \"error\""
    );
    assert!(n_by_offset(dir.path()).is_empty());
}
