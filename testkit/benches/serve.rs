//! How fast testkit serves fetches, and how fast each client consumes from it: 1 KiB and 100 B
//! records preloaded into an in-memory cluster, then read to the end by one librdkafka consumer
//! (`BaseConsumer`, tuned for throughput as its CONFIGURATION.md suggests) and by kingest's
//! `PartitionConsumer`, one after the other on the same data. Prints one line per run; the
//! figures go to BENCHMARKS.md.
//!
//! `cargo bench -p kingest-testkit --bench serve [-- MIB]` (default 512 MiB per record size;
//! `BROKERS=N` in the environment spreads the partition leaders over N brokers). The broker
//! runs on a runtime of its own whose threads are named `testkit`, so its CPU time is reported
//! apart (`broker_cpu_s`) from the process total.

use std::time::{Duration, Instant};

use bytes::Bytes;
use kingest_client::consumer::{ConsumerConfig, PartitionConsumer, StartAt};
use kingest_client::{Client, ClientConfig};
use kingest_protocol::kafka_protocol::messages::produce_request::{
    PartitionProduceData, TopicProduceData,
};
use kingest_protocol::kafka_protocol::messages::{ProduceRequest, TopicName};
use kingest_protocol::kafka_protocol::protocol::StrBytes;
use kingest_protocol::record::{BatchBuilder, BatchOptions};
use kingest_testkit::{Cluster, ClusterConfig};
use rdkafka::config::ClientConfig as RdConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

const PARTITIONS: i32 = 4;

/// CPU seconds (utime + stime) of this process's threads whose name starts with `prefix`
/// (all threads for ""), from /proc (Linux).
fn cpu_seconds(prefix: &str) -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0.0;
    };
    let mut total = 0.0;
    for task in tasks.flatten() {
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        if !stat[open + 1..close].starts_with(prefix) {
            continue;
        }
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        total += ticks(11) + ticks(12);
    }
    total / 100.0
}

async fn preload(
    cluster: &Cluster,
    topic: &str,
    record_size: usize,
    total: usize,
) -> (usize, usize) {
    cluster.create_topic(topic, PARTITIONS).unwrap();
    let client = Client::connect(ClientConfig::new(&cluster.bootstrap()))
        .await
        .unwrap();
    let alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789{}\":,";
    let value: Vec<u8> = (0..record_size)
        .map(|i| alphabet[i % alphabet.len()])
        .collect();
    let per_batch = (1 << 20) / record_size;
    let batches = total / (per_batch * record_size);
    let mut records = 0;
    for b in 0..batches {
        let partition = (b % PARTITIONS as usize) as i32;
        let mut builder = BatchBuilder::new(BatchOptions::default());
        for i in 0..per_batch {
            builder.push(1_700_000_000_000 + i as i64, None, Some(&value), &[]);
        }
        records += per_batch;
        let bytes: Bytes = builder.finish().unwrap();
        let (_, conn) = client.leader(topic, partition).await.unwrap();
        let request = ProduceRequest::default()
            .with_acks(1)
            .with_timeout_ms(10_000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(partition)
                    .with_records(Some(bytes))])]);
        conn.send(&request).await.unwrap();
    }
    (records, records * record_size)
}

fn librdkafka(bootstrap: &str, topic: &str, records: usize) -> Duration {
    let c: BaseConsumer = RdConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "bench")
        .set("fetch.max.bytes", "52428800")
        .set("max.partition.fetch.bytes", "10485760")
        .set("queued.max.messages.kbytes", "1048576")
        // Keep fetching while the app drains: the defaults (100k messages, then a 1 s
        // fetch.queue.backoff.ms pause) idle the consumer once 100k messages are queued.
        .set("queued.min.messages", "10000000")
        .set("fetch.queue.backoff.ms", "10")
        .set("fetch.wait.max.ms", "100")
        .set("enable.auto.commit", "false")
        .set("check.crcs", "true")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    c.assign(&tpl).unwrap();
    let start = Instant::now();
    let mut n = 0;
    let mut bytes = 0usize;
    while n < records {
        if let Some(m) = c.poll(Duration::from_millis(100)) {
            bytes += m.unwrap().payload().map_or(0, <[u8]>::len);
            n += 1;
        }
    }
    std::hint::black_box(bytes);
    start.elapsed()
}

async fn kingest(bootstrap: &str, topic: &str, records: usize) -> Duration {
    let client = Client::connect(ClientConfig::new(bootstrap)).await.unwrap();
    let mut config = ConsumerConfig::default();
    config.max_partition_fetch_bytes = 10 << 20;
    config.check_crcs = true;
    let mut c = PartitionConsumer::new(client, config).unwrap();
    let all: Vec<(&str, i32, StartAt)> = (0..PARTITIONS)
        .map(|p| (topic, p, StartAt::Earliest))
        .collect();
    c.assign(&all).await.unwrap();
    let start = Instant::now();
    let mut n = 0;
    let mut bytes = 0usize;
    while n < records {
        for r in c.poll().await.unwrap().records() {
            bytes += r.record.value.map_or(0, <[u8]>::len);
            n += 1;
        }
    }
    std::hint::black_box(bytes);
    start.elapsed()
}

fn main() {
    let mib: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(512);
    // `BROKERS=4` spreads the partitions' leaders over that many brokers (default 1).
    let brokers: usize = std::env::var("BROKERS")
        .ok()
        .and_then(|b| b.parse().ok())
        .unwrap_or(1);
    // The broker gets a runtime of its own with named threads, so its CPU time is measured
    // apart from the consumers' (librdkafka's threads and the `client` runtime).
    let broker = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("testkit")
        .enable_all()
        .build()
        .unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("client")
        .enable_all()
        .build()
        .unwrap();
    let cluster = broker
        .block_on(Cluster::start(ClusterConfig {
            brokers,
            retention_bytes: 16 << 30,
            ..ClusterConfig::default()
        }))
        .unwrap();
    let _guard = broker.enter();
    runtime.block_on(async {
        println!(
            "client,record_bytes,records,MB,seconds,records_per_s,MB_per_s,process_cpu_s,broker_cpu_s"
        );
        for record_size in [1024usize, 100] {
            let topic = format!("bench-{record_size}");
            let (records, bytes) = preload(&cluster, &topic, record_size, mib << 20).await;
            let mb = bytes as f64 / 1e6;
            let bootstrap = cluster.bootstrap();
            let (b, t) = (bootstrap.clone(), topic.clone());
            let (cpu0, broker0) = (cpu_seconds(""), cpu_seconds("testkit"));
            let rd = tokio::task::spawn_blocking(move || librdkafka(&b, &t, records))
                .await
                .unwrap();
            let (cpu1, broker1) = (cpu_seconds(""), cpu_seconds("testkit"));
            let ours = kingest(&bootstrap, &topic, records).await;
            let (cpu2, broker2) = (cpu_seconds(""), cpu_seconds("testkit"));
            for (name, d, cpu, broker_cpu) in [
                ("librdkafka", rd, cpu1 - cpu0, broker1 - broker0),
                ("kingest", ours, cpu2 - cpu1, broker2 - broker1),
            ] {
                let s = d.as_secs_f64();
                println!(
                    "{name},{record_size},{records},{mb:.0},{s:.3},{:.0},{:.0},{cpu:.2},{broker_cpu:.2}",
                    records as f64 / s,
                    mb / s
                );
            }
        }
    });
}
