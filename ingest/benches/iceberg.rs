//! Rows per second into an Iceberg table against the plain Parquet sink, on the same data in
//! the same run, and the Iceberg sink's commit latency per flush.
//!
//! ```sh
//! cargo bench -p kingest --bench iceberg            # 2,000,000 rows
//! ICEBERG_BENCH_ROWS=500000 cargo bench -p kingest --bench iceberg
//! ```
//!
//! 1. The sinks alone: the same Arrow batches (100,000 rows: a timestamp, a UUID-like string, a
//!    bigint, a decimal(12,2), a short string) written to two Kafka partitions, one flush per
//!    batch, into a local directory: Parquet files (fsync, rename) against an Iceberg table
//!    (data files, manifest, manifest list, metadata JSON, SQLite catalog swap),
//!    alternating (which goes first alternates too), `ROUNDS` each. Each flush (finishing the
//!    file and, for Iceberg, the manifests and the catalog swap) is timed alone for the
//!    latency figures, of both sinks.
//! 2. End to end: the same rows as JSON records in a topic of testkit's in-memory broker (2
//!    partitions; `kingest dev-broker`'s), loaded by `kingest run --until-eof` in this process
//!    (fetch, JSON decode, write, commit; `flush.rows = 100000`) into each sink, alternating,
//!    each round with its own group and an empty output (which goes first alternates); timed
//!    from the start of the run (group join included) to its end.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::builder::{
    Decimal128Builder, Int64Builder, StringBuilder, TimestampMillisecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use kingest::sink::{
    CatalogConfig, IcebergSink, IcebergSinkConfig, OffsetRange, ParquetSink, ParquetSinkConfig,
    PartitionKey, Sink,
};

const BATCH: usize = 100_000;
const ROUNDS: usize = 3;

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            true,
        ),
        Field::new("uuid", DataType::Utf8, true),
        Field::new("count", DataType::Int64, true),
        Field::new("amount", DataType::Decimal128(12, 2), true),
        Field::new("label", DataType::Utf8, true),
    ]))
}

fn uuid(i: usize) -> String {
    let h = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    format!(
        "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
        h >> 32,
        (h >> 16) & 0xffff,
        h & 0xfff,
        (h >> 20) & 0xfff,
        h & 0xffff_ffff_ffff
    )
}

const LABELS: [&str; 4] = ["café", "naïve", "/cart", "日本"];

fn data(rows: usize) -> Vec<RecordBatch> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < rows {
        let n = BATCH.min(rows - i);
        let mut ts = TimestampMillisecondBuilder::new().with_timezone("UTC");
        let mut id = StringBuilder::new();
        let mut count = Int64Builder::new();
        let mut amount = Decimal128Builder::new()
            .with_precision_and_scale(12, 2)
            .unwrap();
        let mut label = StringBuilder::new();
        for j in i..i + n {
            ts.append_value(1_700_000_000_000 + j as i64 * 7);
            id.append_value(uuid(j));
            count.append_value((j * 31 % 1000) as i64);
            amount.append_value((j as i128 * 137) % 1_000_000 - 500_000);
            label.append_value(LABELS[j % 4]);
        }
        let cols: Vec<ArrayRef> = vec![
            Arc::new(ts.finish()),
            Arc::new(id.finish()),
            Arc::new(count.finish()),
            Arc::new(amount.finish()),
            Arc::new(label.finish()),
        ];
        out.push(RecordBatch::try_new(schema(), cols).unwrap());
        i += n;
    }
    out
}

fn iceberg_config(dir: &std::path::Path, group: &str) -> IcebergSinkConfig {
    let mut c = IcebergSinkConfig::new(
        CatalogConfig::Sql {
            uri: format!("sqlite:///{}", dir.join("catalog.db").display()),
            name: "default".into(),
        },
        "bench.events",
        group,
    );
    c.warehouse = Some(dir.join("warehouse").display().to_string());
    c
}

/// Writes every batch (alternating the two partitions) and flushes after each; returns the
/// total time and each flush's time.
async fn feed<S: Sink>(sink: &mut S, batches: &[RecordBatch]) -> (Duration, Vec<Duration>) {
    let started = Instant::now();
    let mut flushes = Vec::with_capacity(batches.len());
    let mut next = [0i64; 2];
    for (i, b) in batches.iter().enumerate() {
        let p = i % 2;
        let n = b.num_rows() as i64;
        let key = PartitionKey::new("events", p as i32);
        sink.write(&key, b, OffsetRange::new(next[p], next[p] + n))
            .await
            .unwrap();
        next[p] += n;
        let t = Instant::now();
        sink.flush().await.unwrap();
        flushes.push(t.elapsed());
    }
    (started.elapsed(), flushes)
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test` (scripts/test.sh) runs this in a debug build
    // only to show that it works, so one batch is enough there (2,000,000 rows took 158 s).
    let measuring = std::env::args().any(|a| a == "--bench");
    let rows: usize = std::env::var("ICEBERG_BENCH_ROWS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if measuring { 2_000_000 } else { BATCH });
    let batches = data(rows);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    println!("## sinks alone: {rows} rows, batches of {BATCH}, one flush per batch");
    let mut best = [f64::MAX; 2];
    let mut latencies = Vec::new();
    let mut parquet_latencies = Vec::new();
    for round in 0..ROUNDS {
        let dir = tempfile::tempdir().unwrap();
        let run_parquet = || {
            runtime.block_on(async {
                let mut s = ParquetSink::open(
                    ParquetSinkConfig::new(dir.path().join("parquet").to_str().unwrap(), "g"),
                    schema(),
                )
                .await
                .unwrap();
                feed(&mut s, &batches).await
            })
        };
        let run_iceberg = || {
            runtime.block_on(async {
                let mut s = IcebergSink::open(iceberg_config(dir.path(), "g"), schema())
                    .await
                    .unwrap();
                feed(&mut s, &batches).await
            })
        };
        // Which sink goes first alternates, so neither always follows the other's writeback.
        let ((parquet, pflushes), (iceberg, flushes)) = if round % 2 == 0 {
            let p = run_parquet();
            (p, run_iceberg())
        } else {
            let i = run_iceberg();
            (run_parquet(), i)
        };
        latencies.extend(flushes);
        parquet_latencies.extend(pflushes);
        let (p, i) = (parquet.as_secs_f64(), iceberg.as_secs_f64());
        println!(
            "round {round}: parquet {:.0} rows/s ({parquet:.2?}), iceberg {:.0} rows/s ({iceberg:.2?}): {:.0}%",
            rows as f64 / p,
            rows as f64 / i,
            100.0 * p / i
        );
        best[0] = best[0].min(p);
        best[1] = best[1].min(i);
    }
    latencies.sort();
    parquet_latencies.sort();
    println!(
        "parquet flush (finish {BATCH}-row file, fsync, rename, directory fsync), {} flushes: p50 {:.1?}, p90 {:.1?}, max {:.1?}",
        parquet_latencies.len(),
        percentile(&parquet_latencies, 0.5),
        percentile(&parquet_latencies, 0.9),
        parquet_latencies[parquet_latencies.len() - 1]
    );
    println!(
        "best: parquet {:.0} rows/s, iceberg {:.0} rows/s: iceberg at {:.0}% of parquet",
        rows as f64 / best[0],
        rows as f64 / best[1],
        100.0 * best[0] / best[1]
    );
    println!(
        "iceberg flush (finish {BATCH}-row files + commit), {} flushes: p50 {:.1?}, p90 {:.1?}, max {:.1?}",
        latencies.len(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.9),
        latencies[latencies.len() - 1]
    );
    end_to_end(&runtime, &batches, rows);
}

/// `kingest run --until-eof` into each sink from a testkit topic holding the rows as JSON.
fn end_to_end(runtime: &tokio::runtime::Runtime, batches: &[RecordBatch], rows: usize) {
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Decimal128Type, Int64Type, TimestampMillisecondType};
    use kingest_client::producer::{Producer, ProducerConfig, ProducerRecord};
    use kingest_client::{Client, ClientConfig};
    use kingest_testkit::{Cluster, ClusterConfig};

    let cluster = runtime
        .block_on(Cluster::start(ClusterConfig::default()))
        .expect("testkit cluster");
    cluster.create_topic("events", 2).expect("topic");
    let bootstrap = cluster.bootstrap();
    runtime.block_on(async {
        let client = Client::connect(ClientConfig::new(&bootstrap))
            .await
            .expect("connect");
        let producer = Producer::new(client, ProducerConfig::default()).expect("producer");
        let mut pending = Vec::new();
        let mut n = 0usize;
        for b in batches {
            let (ts, id, count, amount, label) = (
                b.column(0).as_primitive::<TimestampMillisecondType>(),
                b.column(1).as_string::<i32>(),
                b.column(2).as_primitive::<Int64Type>(),
                b.column(3).as_primitive::<Decimal128Type>(),
                b.column(4).as_string::<i32>(),
            );
            for i in 0..b.num_rows() {
                let cents = amount.value(i);
                let sign = if cents < 0 { "-" } else { "" };
                let value = format!(
                    r#"{{"ts":{},"uuid":"{}","count":{},"amount":{sign}{}.{:02},"label":"{}"}}"#,
                    ts.value(i),
                    id.value(i),
                    count.value(i),
                    cents.unsigned_abs() / 100,
                    cents.unsigned_abs() % 100,
                    label.value(i)
                );
                let record = ProducerRecord::new("events", value).with_partition((n % 2) as i32);
                pending.push(producer.send(record).await.expect("send"));
                n += 1;
                if pending.len() >= 10_000 {
                    for d in pending.drain(..) {
                        d.await.expect("delivered");
                    }
                }
            }
        }
        for d in pending {
            d.await.expect("delivered");
        }
    });
    println!("## end to end: kingest run --until-eof, {rows} JSON records, 2 partitions");
    let columns = r#"
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
name = "amount"
type = "decimal(12, 2)"

[[columns]]
name = "label"
type = "string"

[flush]
rows = 100000
"#;
    let mut best = [f64::MAX; 2];
    for round in 0..ROUNDS {
        let dir = tempfile::tempdir().unwrap();
        let sinks = [
            format!(
                "[sink]\ntype = \"parquet\"\npath = \"{}\"\n",
                dir.path().join("parquet").display()
            ),
            format!(
                "[sink]\ntype = \"iceberg\"\ntable = \"bench.events\"\nwarehouse = \"{}\"\n",
                dir.path().join("warehouse").display()
            ),
        ];
        let mut took = [0.0; 2];
        // Which sink goes first alternates, as above.
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for k in order {
            let sink = &sinks[k];
            let job = format!(
                "[source]\nbrokers = \"{bootstrap}\"\ntopics = [\"events\"]\ngroup = \"bench-{round}-{k}\"\n{columns}\n{sink}"
            );
            let config = kingest::config::Config::parse(&job, "bench.toml").expect("job");
            let started = Instant::now();
            let options = kingest::engine::RunOptions {
                until_eof: true,
                ..kingest::engine::RunOptions::default()
            };
            let summary = runtime
                .block_on(kingest::engine::run(
                    config,
                    options,
                    std::future::pending(),
                ))
                .expect("kingest run");
            took[k] = started.elapsed().as_secs_f64();
            assert_eq!(summary.rows, rows as u64);
            best[k] = best[k].min(took[k]);
        }
        println!(
            "round {round}: parquet {:.0} rows/s, iceberg {:.0} rows/s: {:.0}%",
            rows as f64 / took[0],
            rows as f64 / took[1],
            100.0 * took[0] / took[1]
        );
    }
    println!(
        "best: parquet {:.0} rows/s, iceberg {:.0} rows/s: iceberg at {:.0}% of parquet",
        rows as f64 / best[0],
        rows as f64 / best[1],
        100.0 * best[0] / best[1]
    );
}
