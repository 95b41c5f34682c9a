//! `kingest run` end to end against nisshi: JSON events in, Parquet out, read back with the
//! parquet crate's own reader (not our sink) and compared record for record with what was
//! produced, metadata columns included; a second run resumes from the files' offsets and adds
//! only the new records.

use std::collections::BTreeMap;
use std::path::Path;

use arrow_array::{Array, Int32Array, Int64Array, StringArray, TimestampMillisecondArray};
use kingest::config::Config;
use kingest::engine::{run, RunOptions};
use kingest_client::producer::{Producer, ProducerConfig, ProducerRecord};
use kingest_client::{Client, ClientConfig};
use kingest_tests::peers::nisshi::Nisshi;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// (partition, offset) → (ts, uuid, count, key).
type Rows = BTreeMap<(i32, i64), (i64, String, i64, String)>;

fn job(broker: &str, dir: &Path) -> Config {
    Config::parse(
        &format!(
            r#"
[source]
brokers = "{broker}"
topics = ["events"]
group = "ingest-test"

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

[[columns]]
name = "partition"
type = "int32"
source = "__partition"

[[columns]]
name = "offset"
type = "int64"
source = "__offset"

[sink]
type = "parquet"
path = "{}"
"#,
            dir.display()
        ),
        "test.toml",
    )
    .unwrap()
}

fn read_back(dir: &Path) -> Rows {
    let mut rows = Rows::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("parquet") {
            continue;
        }
        let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&path).unwrap())
            .unwrap()
            .build()
            .unwrap();
        for batch in reader {
            let b = batch.unwrap();
            let col = |name: &str| b.column(b.schema().index_of(name).unwrap()).clone();
            let ts = col("ts");
            let ts = ts
                .as_any()
                .downcast_ref::<TimestampMillisecondArray>()
                .unwrap();
            let uuid = col("uuid");
            let uuid = uuid.as_any().downcast_ref::<StringArray>().unwrap();
            let count = col("count");
            let count = count.as_any().downcast_ref::<Int64Array>().unwrap();
            let key = col("key");
            let key = key.as_any().downcast_ref::<StringArray>().unwrap();
            let partition = col("partition");
            let partition = partition.as_any().downcast_ref::<Int32Array>().unwrap();
            let offset = col("offset");
            let offset = offset.as_any().downcast_ref::<Int64Array>().unwrap();
            for i in 0..b.num_rows() {
                let previous = rows.insert(
                    (partition.value(i), offset.value(i)),
                    (
                        ts.value(i),
                        uuid.value(i).to_owned(),
                        count.value(i),
                        key.value(i).to_owned(),
                    ),
                );
                assert!(
                    previous.is_none(),
                    "({}, {}) written twice",
                    partition.value(i),
                    offset.value(i)
                );
                assert!(!ts.is_null(i));
            }
        }
    }
    rows
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
    let summary = run(
        job(&broker.addr(), dir.path()),
        RunOptions {
            until_eof: true,
            ..RunOptions::default()
        },
        std::future::pending(),
    )
    .await
    .unwrap();
    assert_eq!(
        (summary.records, summary.rows, summary.errors),
        (5000, 5000, 0)
    );
    assert_eq!(read_back(dir.path()), expected);

    // Nothing new: a second run writes nothing.
    let summary = run(
        job(&broker.addr(), dir.path()),
        RunOptions {
            until_eof: true,
            ..RunOptions::default()
        },
        std::future::pending(),
    )
    .await
    .unwrap();
    assert_eq!(summary.rows, 0);
    // New records: only they are added.
    expected.extend(produce(&client, 5000, 1500).await);
    let summary = run(
        job(&broker.addr(), dir.path()),
        RunOptions {
            until_eof: true,
            ..RunOptions::default()
        },
        std::future::pending(),
    )
    .await
    .unwrap();
    assert_eq!(summary.rows, 1500);
    assert_eq!(read_back(dir.path()), expected);
}
