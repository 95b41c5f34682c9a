//! `kingest run` end to end against nisshi: JSON events in, Parquet out, read back with the
//! parquet crate's own reader (not our sink) and compared record for record with what was
//! produced, metadata columns included; a second run resumes from the files' offsets and adds
//! only the new records.

use std::collections::BTreeMap;
use std::path::Path;

use arrow_array::{Array, Int64Array, StringArray, TimestampMillisecondArray};
use kingest::config::Config;
use kingest_client::producer::{Producer, ProducerConfig, ProducerRecord};
use kingest_client::{Client, ClientConfig};
use kingest_tests::ingest::job::{
    parquet_sink, parse, run_until_eof, source, PARTITION_OFFSET_COLUMNS,
};
use kingest_tests::ingest::{column, parquet_files, rows_by_offset};
use kingest_tests::peers::nisshi::Nisshi;

/// (partition, offset) → (ts, uuid, count, key).
type Rows = BTreeMap<(i32, i64), (i64, String, i64, String)>;

fn job(broker: &str, dir: &Path) -> Config {
    let text = format!(
        r#"{}
[[columns]]
name = "ts"
type = "timestamp(ms, UTC)"

[[columns]]
name = "uuid"
type = "string"

[[columns]]
name = "count"
type = "int64"

[[columns]]
name = "key"
type = "string"
source = "__key"
{PARTITION_OFFSET_COLUMNS}{}"#,
        source(broker, "events", "ingest-test"),
        parquet_sink(dir)
    );
    parse(&text, "test.toml")
}

fn read_back(dir: &Path) -> Rows {
    rows_by_offset(&parquet_files(dir), |b, i| {
        let ts = column::<TimestampMillisecondArray>(b, "ts");
        assert!(!ts.is_null(i));
        (
            ts.value(i),
            column::<StringArray>(b, "uuid").value(i).to_owned(),
            column::<Int64Array>(b, "count").value(i),
            column::<StringArray>(b, "key").value(i).to_owned(),
        )
    })
}

async fn produce(client: &Client, from: i64, n: i64) -> Rows {
    let producer = Producer::new(client.clone(), ProducerConfig::default()).unwrap();
    let mut pending = Vec::new();
    for i in from..from + n {
        let uuid = format!("uuid-{i:08}-ü");
        let value = format!(
            "{{\"ts\": {}, \"uuid\": \"{uuid}\", \"count\": {}}}",
            1_700_000_000_000 + i,
            i % 1001
        );
        let key = format!("k{}", i % 17);
        let d = producer
            .send(ProducerRecord::new("events", value).with_key(key.clone()))
            .await
            .unwrap();
        pending.push((d, (1_700_000_000_000 + i, uuid, i % 1001, key)));
    }
    let mut rows = Rows::new();
    for (d, row) in pending {
        let meta = d.await.unwrap();
        rows.insert((meta.partition, meta.offset), row);
    }
    producer.close().await.unwrap();
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_to_parquet_then_resume() {
    let broker = Nisshi::start();
    broker.create_topic("events", 3);
    let client = Client::connect(ClientConfig::new(&broker.addr()))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut expected = produce(&client, 0, 5000).await;
    let summary = run_until_eof(job(&broker.addr(), dir.path()))
        .await
        .unwrap();
    assert_eq!(
        (summary.records, summary.rows, summary.errors),
        (5000, 5000, 0)
    );
    assert_eq!(read_back(dir.path()), expected);

    // Nothing new: a second run writes nothing.
    let summary = run_until_eof(job(&broker.addr(), dir.path()))
        .await
        .unwrap();
    assert_eq!(summary.rows, 0);
    // New records: only they are added.
    expected.extend(produce(&client, 5000, 1500).await);
    let summary = run_until_eof(job(&broker.addr(), dir.path()))
        .await
        .unwrap();
    assert_eq!(summary.rows, 1500);
    assert_eq!(read_back(dir.path()), expected);
}
