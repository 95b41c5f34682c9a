//! `kingest run --metrics-addr`: the Prometheus endpoint scraped over HTTP while a streaming
//! run ingests a topic on nisshi, until its counters account for every record produced; then
//! every counter is checked against what was produced (records, bytes, rows written, filtered,
//! errors per partition, lag, flushes and files).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kingest::config::Config;
use kingest::engine::{run, RunOptions};
use kingest_client::producer::{Producer, ProducerConfig, ProducerRecord};
use kingest_client::{Client, ClientConfig};
use kingest_tests::peers::free_port;
use kingest_tests::peers::nisshi::Nisshi;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TOPIC: &str = "metered";

/// Per partition: (records, bytes, kept rows, filtered, bad).
type Expected = BTreeMap<i32, (u64, u64, u64, u64, u64)>;

/// 300 records over two partitions: every tenth is malformed, and of the good ones those with
/// `keep = false` (odd `n`) are filtered out.
async fn produce(client: &Client) -> Expected {
    let producer = Producer::new(client.clone(), ProducerConfig::default()).unwrap();
    let mut expected = Expected::new();
    let mut pending = Vec::new();
    for i in 0..300i64 {
        let partition = (i % 2) as i32;
        let value = if i % 10 == 7 {
            "{not json".to_owned()
        } else {
            format!("{{\"n\": {}, \"keep\": {}}}", i / 2, (i / 2) % 2 == 0)
        };
        let key = format!("k{i}");
        let e = expected.entry(partition).or_default();
        e.0 += 1;
        e.1 += (value.len() + key.len()) as u64;
        match (i % 10 == 7, (i / 2) % 2 == 1) {
            (true, _) => e.4 += 1,
            (false, true) => e.3 += 1,
            (false, false) => e.2 += 1,
        }
        let record = ProducerRecord::new(TOPIC, value)
            .with_key(key)
            .with_partition(partition);
        pending.push(producer.send(record).await.unwrap());
    }
    for d in pending {
        d.await.unwrap();
    }
    producer.close().await.unwrap();
    expected
}

/// GET /metrics over a plain TCP connection; the body.
async fn scrape(port: u16) -> Option<String> {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).await.ok()?;
    let (head, body) = out.split_once("\r\n\r\n")?;
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert!(head.contains("application/openmetrics-text"), "{head}");
    Some(body.to_owned())
}

/// The value of the sample `name{labels}` in an exposition.
fn sample(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

fn labels(partition: i32) -> String {
    format!("{{topic=\"{TOPIC}\",partition=\"{partition}\"}}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_served_during_a_run() {
    let broker = Nisshi::start();
    broker.create_topic(TOPIC, 2);
    let client = Client::connect(ClientConfig::new(&broker.addr()))
        .await
        .unwrap();
    let expected = produce(&client).await;
    let dir = tempfile::tempdir().unwrap();
    let config = Config::parse(
        &format!(
            r#"
filter = "keep AND n >= 0"

[source]
brokers = "{}"
topics = ["{TOPIC}"]
group = "metrics-test"

[[columns]]
name = "n"
type = "int64"

[[columns]]
name = "keep"
type = "bool"

[errors]
on_error = "skip"

[flush]
age = "1s"

[sink]
type = "parquet"
path = "{}"
"#,
            broker.addr(),
            dir.path().display()
        ),
        "metrics.toml",
    )
    .unwrap();
    let port = free_port();
    let options = RunOptions {
        metrics_addr: Some(format!("127.0.0.1:{port}").parse().unwrap()),
        ..RunOptions::default()
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();

    let scraper = async {
        // Scrape until every record is accounted for as written, filtered or bad; the run is
        // streaming, so it keeps serving until told to stop.
        let deadline = Instant::now() + Duration::from_secs(120);
        let body = loop {
            assert!(
                Instant::now() < deadline,
                "the metrics never accounted for all 300 records"
            );
            if let Some(body) = scrape(port).await {
                let done = (0..2).all(|p| {
                    let l = labels(p);
                    let e = expected[&p];
                    sample(&body, &format!("kingest_rows_written_total{l}")) == Some(e.2 as f64)
                        && sample(&body, &format!("kingest_records_filtered_total{l}"))
                            == Some(e.3 as f64)
                        && sample(&body, &format!("kingest_lag_records{l}")) == Some(0.0)
                        && sample(&body, "kingest_files_committed_total").unwrap_or(0.0) >= 2.0
                });
                if done {
                    break body;
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let _ = stop.send(());
        body
    };
    let (summary, body) = tokio::join!(
        run(config, options, async {
            let _ = stopped.await;
        }),
        scraper
    );
    let summary = summary.unwrap();

    for (p, (records, bytes, rows, filtered, bad)) in &expected {
        let l = labels(*p);
        let get = |name: &str| sample(&body, &format!("{name}{l}"));
        assert_eq!(
            get("kingest_records_read_total"),
            Some(*records as f64),
            "{body}"
        );
        assert_eq!(
            get("kingest_bytes_read_total"),
            Some(*bytes as f64),
            "{body}"
        );
        assert_eq!(
            get("kingest_rows_written_total"),
            Some(*rows as f64),
            "{body}"
        );
        assert_eq!(
            get("kingest_records_filtered_total"),
            Some(*filtered as f64),
            "{body}"
        );
        assert_eq!(
            get("kingest_record_errors_total"),
            Some(*bad as f64),
            "{body}"
        );
        assert_eq!(get("kingest_lag_records"), Some(0.0), "{body}");
    }
    let flushes = sample(&body, "kingest_flush_duration_seconds_count").unwrap();
    assert!(flushes >= 1.0, "{body}");
    assert!(
        body.contains("kingest_flush_duration_seconds_bucket{le=\""),
        "{body}"
    );
    assert!(body.trim_end().ends_with("# EOF"), "{body}");

    let total = |f: fn(&(u64, u64, u64, u64, u64)) -> u64| expected.values().map(f).sum::<u64>();
    assert_eq!(summary.records, total(|e| e.0));
    assert_eq!(summary.bytes, total(|e| e.1));
    assert_eq!(summary.rows, total(|e| e.2));
    assert_eq!(summary.filtered, total(|e| e.3));
    assert_eq!(summary.errors, total(|e| e.4));
    // The endpoint stops with the run.
    assert!(scrape(port).await.is_none());
}
