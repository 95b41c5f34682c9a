//! Rows per second into PostgreSQL: kingest's sink (Arrow batches, binary COPY, offsets in the
//! same transaction) against `psql \copy` of the same rows as CSV, which is the server's own
//! bulk-load path and so its practical limit. Both load into the same server (Debian's
//! package, started here in a temporary directory), into identical fresh tables, in the same
//! run, alternating, best of `ROUNDS` each.
//!
//! ```sh
//! cargo bench -p kingest-benches --bench postgres_copy            # 2,000,000 rows
//! PG_BENCH_ROWS=500000 cargo bench -p kingest-benches --bench postgres_copy
//! ```
//!
//! The rows are a typical event: a timestamp with time zone, a UUID-like text, a bigint, a
//! numeric(12,2) amount and a short non-ASCII text. kingest's time covers encoding from Arrow
//! and every transaction (one per 100,000-row batch, like a `flush.rows = 100000` job);
//! psql's covers reading and sending the CSV file it is given (written beforehand).
//!
//! Then the whole pipeline: the same rows as JSON records in a nisshi topic (2 partitions),
//! loaded by `kingest run --until-eof` in this process (fetch, decode into Arrow, COPY,
//! commit), timed from the start of the run, group join included.

use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::builder::{
    Decimal128Builder, Int64Builder, StringBuilder, TimestampMillisecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use kingest::sink::postgres::{setup, PostgresSink, PostgresSinkConfig};
use kingest::sink::{OffsetRange, PartitionKey, Sink};
use kingest_tests::peers::postgres::Postgres;

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

fn label(i: usize) -> String {
    format!("événement {}", i % 1000)
}

/// `2023-11-14 22:13:20.123+00` for ms since the epoch (Howard Hinnant's civil-from-days).
fn iso(ms: i64) -> String {
    let (days, in_day) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let s = in_day / 1000;
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{:03}+00",
        s / 3600,
        s / 60 % 60,
        s % 60,
        in_day % 1000
    )
}

/// The rows as Arrow batches and as CSV text (identical values).
fn data(rows: usize) -> (Vec<RecordBatch>, Vec<u8>) {
    let mut batches = Vec::new();
    let mut csv = Vec::with_capacity(rows * 96);
    let mut start = 0;
    while start < rows {
        let n = BATCH.min(rows - start);
        let mut ts = TimestampMillisecondBuilder::with_capacity(n).with_timezone("UTC");
        let mut id = StringBuilder::with_capacity(n, n * 36);
        let mut count = Int64Builder::with_capacity(n);
        let mut amount = Decimal128Builder::with_capacity(n)
            .with_precision_and_scale(12, 2)
            .expect("decimal(12, 2)");
        let mut lbl = StringBuilder::with_capacity(n, n * 16);
        for i in start..start + n {
            let ms = 1_700_000_000_000 + i as i64 * 7;
            let cents = (i as i64 * 7919) % 10_000_000 - 5_000_000;
            ts.append_value(ms);
            id.append_value(uuid(i));
            count.append_value(i as i64 % 1001);
            amount.append_value(i128::from(cents));
            lbl.append_value(label(i));
            let sign = if cents < 0 { "-" } else { "" };
            writeln!(
                csv,
                "{},{},{},{sign}{}.{:02},{}",
                iso(ms),
                uuid(i),
                i % 1001,
                cents.unsigned_abs() / 100,
                cents.unsigned_abs() % 100,
                label(i)
            )
            .expect("write to memory");
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(ts.finish()),
            Arc::new(id.finish()),
            Arc::new(count.finish()),
            Arc::new(amount.finish()),
            Arc::new(lbl.finish()),
        ];
        batches.push(RecordBatch::try_new(schema(), columns).expect("batch"));
        start += n;
    }
    (batches, csv)
}

fn main() {
    let rows: usize = std::env::var("PG_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000_000);
    // `cargo test --benches` runs benchmarks once as tests: keep that quick.
    let rows = if std::env::args().any(|a| a == "--bench") {
        rows
    } else {
        20_000
    };
    let pg = Postgres::start();
    let (batches, csv) = data(rows);
    let dir = tempfile::tempdir().expect("temp dir");
    let csv_path = dir.path().join("rows.csv");
    std::fs::write(&csv_path, &csv).expect("write the CSV file");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let config = PostgresSinkConfig::new(pg.url(), "k_events", "bench");
    runtime
        .block_on(setup(&config, &schema()))
        .expect("kingest setup");
    pg.psql("CREATE TABLE p_events (LIKE k_events)");

    let mut kingest_best = Duration::MAX;
    let mut psql_best = Duration::MAX;
    for round in 0..ROUNDS {
        pg.psql("TRUNCATE k_events; TRUNCATE p_events; DELETE FROM kingest_offsets; CHECKPOINT");
        let started = Instant::now();
        runtime.block_on(async {
            let mut sink = PostgresSink::open(config.clone(), schema())
                .await
                .expect("open the sink");
            let partition = PartitionKey::new("events", 0);
            let mut offset = 0i64;
            for b in &batches {
                let next = offset + b.num_rows() as i64;
                sink.write(&partition, b, OffsetRange::new(offset, next))
                    .await
                    .expect("write");
                sink.flush().await.expect("flush");
                offset = next;
            }
            sink.close().await.expect("close");
        });
        let k = started.elapsed();
        pg.psql("CHECKPOINT");
        let started = Instant::now();
        let out = pg
            .psql_command()
            .arg("-c")
            .arg(format!(
                "\\copy p_events (ts, uuid, count, amount, label) FROM '{}' WITH (FORMAT csv)",
                csv_path.display()
            ))
            .env("PGOPTIONS", "-c timezone=UTC")
            .output()
            .expect("run psql");
        let p = started.elapsed();
        assert!(
            out.status.success(),
            "psql \\copy: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            pg.psql_value("SELECT count(*) FROM k_events"),
            rows.to_string()
        );
        assert_eq!(
            pg.psql_value("SELECT count(*) FROM p_events"),
            rows.to_string()
        );
        eprintln!(
            "round {round}: kingest {:.0} rows/s ({k:?}), psql \\copy {:.0} rows/s ({p:?})",
            rows as f64 / k.as_secs_f64(),
            rows as f64 / p.as_secs_f64()
        );
        kingest_best = kingest_best.min(k);
        psql_best = psql_best.min(p);
    }
    // Both tables hold the same values.
    let diff = pg.psql_value(
        "SELECT count(*) FROM ((TABLE k_events EXCEPT ALL TABLE p_events) \
         UNION ALL (TABLE p_events EXCEPT ALL TABLE k_events)) d",
    );
    assert_eq!(diff, "0", "the two loads differ");
    let k = rows as f64 / kingest_best.as_secs_f64();
    let p = rows as f64 / psql_best.as_secs_f64();
    println!("rows: {rows}, best of {ROUNDS}");
    println!("| loader | rows/s | time |");
    println!("| --- | --- | --- |");
    println!("| kingest PostgreSQL sink (binary COPY, 100k-row transactions) | {k:.0} | {kingest_best:.2?} |");
    println!("| psql \\copy (CSV) | {p:.0} | {psql_best:.2?} |");
    println!("kingest / psql: {:.0}%", 100.0 * k / p);
    end_to_end(&pg, &runtime, &batches, rows, p);
}

/// `kingest run --until-eof` from a nisshi topic holding the same rows as JSON: fetch, decode
/// into Arrow, COPY, commit; timed from the start of the run (group join included) to its end.
fn end_to_end(
    pg: &Postgres,
    runtime: &tokio::runtime::Runtime,
    batches: &[RecordBatch],
    rows: usize,
    psql_rows_per_s: f64,
) {
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Decimal128Type, Int64Type, TimestampMillisecondType};
    use kingest_tests::ingest::{produce, Produced};
    use kingest_tests::peers::nisshi::Nisshi;

    let broker = Nisshi::start();
    broker.create_topic("events", 2);
    let mut records = Vec::with_capacity(rows);
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
            records.push(Produced {
                partition: (records.len() % 2) as i32,
                key: None,
                value: Some(value.into_bytes()),
                headers: Vec::new(),
                timestamp: 1_700_000_000_000,
            });
        }
    }
    // In chunks: librdkafka's queue holds 100,000 messages.
    for chunk in records.chunks(50_000) {
        runtime.block_on(produce(&broker.addr(), "events", chunk));
    }
    drop(records);
    let job = format!(
        r#"
[source]
brokers = "{}"
topics = ["events"]
group = "bench-e2e"

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

[sink]
type = "postgres"
url = "{}"
table = "e_events"
"#,
        broker.addr(),
        pg.url()
    );
    let config = kingest::config::Config::parse(&job, "bench.toml").expect("job");
    let sink = kingest::engine::postgres_config(&config).expect("postgres sink");
    runtime
        .block_on(setup(&sink, &schema()))
        .expect("kingest setup");
    // As `kingest run` runs: a multi-threaded runtime with a worker per core.
    let engine_runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let started = Instant::now();
    let summary = engine_runtime
        .block_on(kingest::engine::run(
            config,
            kingest::engine::RunOptions {
                until_eof: true,
                ..Default::default()
            },
            std::future::pending(),
        ))
        .expect("kingest run");
    let took = started.elapsed();
    assert_eq!(summary.rows, rows as u64);
    let diff = pg.psql_value(
        "SELECT count(*) FROM ((TABLE e_events EXCEPT ALL TABLE k_events) \
         UNION ALL (TABLE k_events EXCEPT ALL TABLE e_events)) d",
    );
    assert_eq!(diff, "0", "the end-to-end load differs");
    let e = rows as f64 / took.as_secs_f64();
    println!(
        "| kingest run end to end (nisshi, JSON decode, binary COPY) | {e:.0} | {took:.2?} | {:.0}% of psql |",
        100.0 * e / psql_rows_per_s
    );
}
