//! How fast testkit serves fetches, and how fast each client consumes from it: 1 KiB and 100 B
//! records preloaded into an in-memory cluster, then read to the end by one librdkafka consumer
//! (`BaseConsumer`, tuned for throughput as its CONFIGURATION.md suggests) and by kingest's
//! `PartitionConsumer`, one after the other on the same data. Prints one line per run; the
//! figures go to BENCHMARKS.md.
//!
//! `cargo bench -p kingest-testkit --bench serve [-- MIB]` (default 512 MiB per record size).

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

fn cpu_seconds() -> f64 {
    // utime + stime of this process, from /proc (Linux).
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
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
    let config = ConsumerConfig {
        max_partition_fetch_bytes: 10 << 20,
        check_crcs: true,
        ..ConsumerConfig::default()
    };
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
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let cluster = Cluster::start(ClusterConfig {
            retention_bytes: 8 << 30,
            ..ClusterConfig::default()
        })
        .await
        .unwrap();
        println!("client,record_bytes,records,MB,seconds,records_per_s,MB_per_s,process_cpu_s");
        for record_size in [1024usize, 100] {
            let topic = format!("bench-{record_size}");
            let (records, bytes) = preload(&cluster, &topic, record_size, mib << 20).await;
            let mb = bytes as f64 / 1e6;
            let bootstrap = cluster.bootstrap();
            let (b, t) = (bootstrap.clone(), topic.clone());
            let cpu0 = cpu_seconds();
            let rd = tokio::task::spawn_blocking(move || librdkafka(&b, &t, records))
                .await
                .unwrap();
            let cpu1 = cpu_seconds();
            let ours = kingest(&bootstrap, &topic, records).await;
            let cpu2 = cpu_seconds();
            for (name, d, cpu) in [
                ("librdkafka", rd, cpu1 - cpu0),
                ("kingest", ours, cpu2 - cpu1),
            ] {
                let s = d.as_secs_f64();
                println!(
                    "{name},{record_size},{records},{mb:.0},{s:.3},{:.0},{:.0},{cpu:.2}",
                    records as f64 / s,
                    mb / s
                );
            }
        }
    });
}
