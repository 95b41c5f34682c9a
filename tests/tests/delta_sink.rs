//! `kingest run` into a Delta table, read back by independent readers (the `deltalake` Python
//! package and polars, see `kingest_tests::ingest::delta`): every produced record is in the
//! table exactly once with the values it was produced with, the schema has the Delta types the
//! docs promise, the table is partitioned as configured (by the UTC day of a timestamp through
//! a generated column; by a string's own value, empty strings and nulls in the null
//! partition), and each partition's `txn` version is where the job resumes. A second run adds
//! only the records produced since, in a new commit.

use std::collections::BTreeMap;
use std::path::Path;

use kingest_tests::ingest::delta::{app_id, delta_exactly_once, delta_sink, read_delta, DeltaRead};
use kingest_tests::ingest::job::{source, PARTITION_OFFSET_COLUMNS};
use kingest_tests::ingest::{end_offsets, produce, Job, Produced};
use kingest_tests::peers::nisshi::Nisshi;
use serde_json::{json, Value};

const TOPIC: &str = "typed";
const PARTITIONS: i32 = 3;
const BASE_MS: i64 = 1_700_000_000_000;

fn job(broker: &str, group: &str, out: &Path, partition_by: &str) -> String {
    format!(
        r#"{}
[[columns]]
name = "id"
type = "int64"
nullable = false

[[columns]]
name = "name"
type = "string"

[[columns]]
name = "ts"
type = "timestamp(ms, UTC)"

[[columns]]
name = "amount"
type = "decimal(10, 2)"

[[columns]]
name = "ok"
type = "bool"

[[columns]]
name = "score"
type = "float64"

[[columns]]
name = "n"
type = "uint32"

[[columns]]
name = "tags"
type = "list<int64>"

[[columns]]
name = "inner"
type = "struct<a: int32, b: string>"

[[columns]]
name = "day"
type = "date"
{PARTITION_OFFSET_COLUMNS}
[flush]
rows = 150
age = "200ms"
{}"#,
        source(broker, TOPIC, group),
        delta_sink(
            out,
            &format!("partition_by = \"{partition_by}\"\ncheckpoint_interval = 2")
        )
    )
}

fn name(i: i64) -> Option<String> {
    match i % 5 {
        0 => None,
        1 => Some(String::new()),
        _ => Some(format!("n{}é", i % 7)),
    }
}

fn record(i: i64) -> Produced {
    let name = name(i).map_or(String::new(), |n| format!(",\"name\":{}", json!(n)));
    let value = format!(
        r#"{{"id":{i},"ts":{},"amount":{i}.{:02},"ok":{},"score":{},"n":{},"tags":[{i},{}],"inner":{{"a":{},"b":"x{i}"}},"day":"2024-01-{:02}"{name}}}"#,
        BASE_MS + i * 600_000,
        i % 100,
        i % 2 == 0,
        i as f64 * 0.5,
        u64::from(u32::MAX) - i as u64,
        i + 1,
        i % 100,
        1 + i % 28,
    );
    Produced {
        partition: (i % PARTITIONS as i64) as i32,
        key: None,
        value: Some(value.into_bytes()),
        headers: Vec::new(),
        timestamp: BASE_MS + i,
    }
}

/// `YYYY-MM-DDTHH:MM:SS+00:00`, as Python prints a whole-second UTC datetime.
fn iso(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, s) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    format!(
        "{}T{:02}:{:02}:{:02}+00:00",
        civil(days),
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// Days since the epoch as `YYYY-MM-DD`.
fn civil(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    format!("{:04}-{m:02}-{d:02}", yoe + era * 400 + i64::from(m <= 2))
}

/// The row deltalake reads for record `i` (without `partition` and `offset`).
fn expected(i: i64) -> BTreeMap<String, Value> {
    let ts = BASE_MS + i * 600_000;
    [
        ("id", json!(i)),
        ("name", name(i).map_or(Value::Null, |n| json!(n))),
        ("ts", json!(iso(ts))),
        ("amount", json!(format!("{i}.{:02}", i % 100))),
        ("ok", json!(i % 2 == 0)),
        ("score", json!(i as f64 * 0.5)),
        ("n", json!(u64::from(u32::MAX) - i as u64)),
        ("tags", json!([i, i + 1])),
        ("inner", json!({"a": i % 100, "b": format!("x{i}")})),
        ("day", json!(format!("2024-01-{:02}", 1 + i % 28))),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// Runs the job to the end of the topic and reads the table back.
fn run(config: &Path, log: &Path, table: &Path, group: &str) -> DeltaRead {
    let status = Job::start(config, log, true).wait();
    assert!(
        status.success(),
        "kingest run: {status}\n{}",
        kingest_tests::ingest::log_tail(log)
    );
    let apps: Vec<String> = (0..PARTITIONS).map(|p| app_id(group, TOPIC, p)).collect();
    read_delta(table, &apps)
}

fn check_rows(read: &DeltaRead, group: &str, produced: &BTreeMap<(i32, i64), i64>, extra: &[&str]) {
    let end = end_offsets(produced.keys());
    let rows = delta_exactly_once(read, group, TOPIC, &end);
    for ((p, o), i) in produced {
        let row = &rows[&(*p, *o)];
        let mut want = expected(*i);
        for e in extra {
            want.insert((*e).to_owned(), row[*e].clone());
        }
        let got: BTreeMap<String, Value> = row
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "partition" | "offset"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        assert_eq!(got, want, "partition {p} offset {o} (record {i})");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delta_tables_read_back_with_deltalake_and_polars() {
    kingest_tests::ingest::delta::require_delta_readers();
    let broker = Nisshi::start();
    broker.create_topic(TOPIC, PARTITIONS as u32);
    let work = tempfile::tempdir().unwrap();
    let mut produced: BTreeMap<(i32, i64), i64> = BTreeMap::new();
    let first: Vec<Produced> = (0..600).map(record).collect();
    for (at, i) in produce(&broker.addr(), TOPIC, &first)
        .await
        .into_iter()
        .zip(0..)
    {
        produced.insert(at, i);
    }

    // By the day of a timestamp: a generated `ts_date` column.
    let by_day = work.path().join("by-day");
    let config = work.path().join("by-day.toml");
    std::fs::write(&config, job(&broker.addr(), "by-day", &by_day, "ts")).unwrap();
    let log = work.path().join("by-day.log");
    let read = run(&config, &log, &by_day, "by-day");
    assert_eq!(read.partition_columns, vec!["ts_date"]);
    assert_eq!(read.protocol, (1, 4), "generated columns: writer version 4");
    let types: BTreeMap<&str, &str> = read
        .schema
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(types["id"], "PrimitiveType(\"long\")");
    assert_eq!(types["ts"], "PrimitiveType(\"timestamp\")");
    assert_eq!(types["amount"], "PrimitiveType(\"decimal(10,2)\")");
    assert_eq!(
        types["n"], "PrimitiveType(\"long\")",
        "uint32 widens to long"
    );
    assert_eq!(types["day"], "PrimitiveType(\"date\")");
    assert_eq!(types["ts_date"], "PrimitiveType(\"date\")");
    assert!(types["tags"].contains("ArrayType"), "{}", types["tags"]);
    assert!(types["inner"].contains("StructType"), "{}", types["inner"]);
    assert_eq!(read.arrow_types["ts"], "timestamp[us, tz=UTC]");
    assert_eq!(
        read.polars_types["ts"],
        "Datetime(time_unit='us', time_zone='UTC')"
    );
    check_rows(&read, "by-day", &produced, &["ts_date"]);
    for r in &read.rows {
        // The partition value is the UTC day of the row's timestamp.
        assert_eq!(
            r["ts_date"].as_str().unwrap(),
            &r["ts"].as_str().unwrap()[..10]
        );
    }
    let days = read.partition_values.len();
    assert!(
        days >= 4,
        "600 records 10 minutes apart span over 4 days: {:?}",
        read.partition_values
    );

    // By a string's own value: the column lives in the log, not in the files.
    let by_name = work.path().join("by-name");
    let config_n = work.path().join("by-name.toml");
    std::fs::write(&config_n, job(&broker.addr(), "by-name", &by_name, "name")).unwrap();
    let log_n = work.path().join("by-name.log");
    let read_n = run(&config_n, &log_n, &by_name, "by-name");
    assert_eq!(read_n.partition_columns, vec!["name"]);
    assert_eq!(read_n.protocol, (1, 2));
    // An empty string is stored as the null partition, as Spark and Hive store it.
    let empty_as_null: BTreeMap<(i32, i64), i64> = produced.clone();
    let end = end_offsets(empty_as_null.keys());
    let rows = delta_exactly_once(&read_n, "by-name", TOPIC, &end);
    for ((p, o), i) in &produced {
        let mut want = expected(*i);
        if name(*i).as_deref() == Some("") {
            want.insert("name".into(), Value::Null);
        }
        let got: BTreeMap<String, Value> = rows[&(*p, *o)]
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "partition" | "offset"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        assert_eq!(got, want, "record {i}");
    }
    let names: Vec<&String> = read_n.partition_values.iter().collect();
    assert_eq!(names.len(), 8, "7 names and null: {names:?}");

    // More records: the next run commits only them.
    let more: Vec<Produced> = (600..900).map(record).collect();
    for (at, i) in produce(&broker.addr(), TOPIC, &more)
        .await
        .into_iter()
        .zip(600..)
    {
        produced.insert(at, i);
    }
    let version = read.version;
    let read = run(&config, &log, &by_day, "by-day");
    assert!(read.version > version);
    check_rows(&read, "by-day", &produced, &["ts_date"]);
    // Checkpoints were written (every 2 versions) and deltalake read them.
    let checkpoints = std::fs::read_dir(by_day.join("_delta_log"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".checkpoint.parquet")
        })
        .count();
    assert!(
        checkpoints >= 1,
        "no checkpoint among {} versions",
        read.version + 1
    );
}
