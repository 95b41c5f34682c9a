//! `filter = "..."` end to end on nisshi: the Parquet output holds exactly the rows matching
//! the filter, the filtered records still count as read (a restart reads nothing again), new
//! records are filtered the same way, and a filter that does not fit the columns stops the job
//! before it reads anything.

use std::collections::BTreeMap;
use std::path::Path;

use arrow_array::{Array, Float64Array, Int64Array, StringArray};
use kingest::config::Config;
use kingest_client::producer::{Producer, ProducerConfig, ProducerRecord};
use kingest_client::{Client, ClientConfig};
use kingest_tests::ingest::job::{
    parquet_sink, parse, run_until_eof, source, PARTITION_OFFSET_COLUMNS,
};
use kingest_tests::ingest::{column, parquet_files, rows_by_offset};
use kingest_tests::peers::nisshi::Nisshi;

const TOPIC: &str = "orders";
const FILTER: &str = "kind IN ('a', 'c') AND (amount >= 25.5 OR note IS NULL) AND NOT (id BETWEEN 100 AND 199) AND kind NOT LIKE 'z%'";

/// (partition, offset) → (id, kind, amount, note).
type Rows = BTreeMap<(i32, i64), (i64, String, f64, Option<String>)>;

/// Whether a produced row matches [`FILTER`], computed independently of the filter code.
fn matches(id: i64, kind: &str, amount: f64, note: &Option<String>) -> bool {
    (kind == "a" || kind == "c")
        && (amount >= 25.5 || note.is_none())
        && !(100..=199).contains(&id)
        && !kind.starts_with('z')
}

async fn produce(client: &Client, from: i64, n: i64) -> Rows {
    let producer = Producer::new(client.clone(), ProducerConfig::default()).unwrap();
    let mut pending = Vec::new();
    for id in from..from + n {
        let kind = ["a", "b", "c", "zc"][(id % 4) as usize].to_owned();
        let amount = (id % 50) as f64 + 0.5;
        let note = (id % 3 != 0).then(|| format!("note {id}"));
        let value = serde_json::json!({"id": id, "kind": kind, "amount": amount, "note": note});
        // Both partitions get matching and filtered rows (kinds cycle every 4 ids, partitions
        // every 2).
        let record =
            ProducerRecord::new(TOPIC, value.to_string()).with_partition((id / 2 % 2) as i32);
        pending.push((
            producer.send(record).await.unwrap(),
            (id, kind, amount, note),
        ));
    }
    let mut rows = Rows::new();
    for (d, row) in pending {
        let meta = d.await.unwrap();
        rows.insert((meta.partition, meta.offset), row);
    }
    producer.close().await.unwrap();
    rows
}

fn job(broker: &str, dir: &Path, filter: &str) -> Config {
    let text = format!(
        r#"
filter = "{filter}"
{}
[[columns]]
name = "id"
type = "int64"

[[columns]]
name = "kind"
type = "string"

[[columns]]
name = "amount"
type = "float64"

[[columns]]
name = "note"
type = "string"
{PARTITION_OFFSET_COLUMNS}{}"#,
        source(broker, TOPIC, "filter-test"),
        parquet_sink(dir)
    );
    parse(&text, "filter.toml")
}

fn read_back(dir: &Path) -> Rows {
    rows_by_offset(&parquet_files(dir), |b, i| {
        let note = column::<StringArray>(b, "note");
        (
            column::<Int64Array>(b, "id").value(i),
            column::<StringArray>(b, "kind").value(i).to_owned(),
            column::<Float64Array>(b, "amount").value(i),
            (!note.is_null(i)).then(|| note.value(i).to_owned()),
        )
    })
}

fn matching(rows: &Rows) -> Rows {
    rows.iter()
        .filter(|(_, (id, kind, amount, note))| matches(*id, kind, *amount, note))
        .map(|(k, v)| (*k, v.clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filter_keeps_exactly_the_matching_rows_and_offsets_advance() {
    let broker = Nisshi::start();
    broker.create_topic(TOPIC, 2);
    let client = Client::connect(ClientConfig::new(&broker.addr()))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut produced = produce(&client, 0, 2000).await;
    let expected = matching(&produced);
    assert!(
        expected.len() > 200 && expected.len() < 1000,
        "a filter that keeps some"
    );

    let summary = run_until_eof(job(&broker.addr(), dir.path(), FILTER))
        .await
        .unwrap();
    assert_eq!(summary.records, 2000);
    assert_eq!(summary.rows, expected.len() as u64);
    assert_eq!(summary.filtered, 2000 - expected.len() as u64);
    assert_eq!(summary.errors, 0);
    assert_eq!(read_back(dir.path()), expected);

    // The filtered records were read: a restart reads nothing again.
    let again = run_until_eof(job(&broker.addr(), dir.path(), FILTER))
        .await
        .unwrap();
    assert_eq!((again.records, again.rows, again.filtered), (0, 0, 0));

    // New records: only they are read, and filtered the same way.
    let more = produce(&client, 2000, 400).await;
    let summary = run_until_eof(job(&broker.addr(), dir.path(), FILTER))
        .await
        .unwrap();
    assert_eq!(summary.records, 400);
    assert_eq!(summary.rows, matching(&more).len() as u64);
    produced.extend(more);
    assert_eq!(read_back(dir.path()), matching(&produced));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filter_that_does_not_fit_the_columns_stops_before_reading() {
    let broker = Nisshi::start();
    broker.create_topic(TOPIC, 1);
    let dir = tempfile::tempdir().unwrap();
    let err = run_until_eof(job(&broker.addr(), dir.path(), "amount > 'ten'"))
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("filter error at character 10")
            && message.contains("cannot compare column \"amount\" (float64) with the string 'ten'"),
        "{message}"
    );
    let err = run_until_eof(job(&broker.addr(), dir.path(), "amount >"))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("filter syntax error at character 9"),
        "{err}"
    );
}
