//! The in-memory cluster (testkit) is only trustworthy if an independent client accepts it:
//! librdkafka, unmodified, through the `rdkafka` crate. Each test drives librdkafka (on blocking
//! threads) against a testkit cluster and checks what it observes.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use kingest_testkit::{Cluster, ClusterConfig, FaultAction, FaultRule, SaslConfig};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

fn producer(bootstrap: &str, extra: &[(&str, &str)]) -> BaseProducer {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap).set("linger.ms", "5").set("message.timeout.ms", "30000");
    for (k, v) in extra {
        c.set(*k, *v);
    }
    c.create().expect("librdkafka producer")
}

fn consumer(bootstrap: &str, group: &str, extra: &[(&str, &str)]) -> BaseConsumer {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "500");
    for (k, v) in extra {
        c.set(*k, *v);
    }
    c.create().expect("librdkafka consumer")
}

/// Produces `n` keyed records with headers to `topic`, waits for every delivery.
fn produce(p: &BaseProducer, topic: &str, n: usize, partitions: i32) {
    for i in 0..n {
        let key = format!("key-{i}");
        let value = format!("value-{i}");
        let headers = OwnedHeaders::new().insert(Header { key: "i", value: Some(&i.to_string()) });
        let record = BaseRecord::to(topic).key(&key).payload(&value).headers(headers).partition((i as i32) % partitions);
        let mut record = Some(record);
        while let Some(r) = record.take() {
            if let Err((e, r)) = p.send(r) {
                assert!(matches!(e.rdkafka_error_code(), Some(rdkafka::types::RDKafkaErrorCode::QueueFull)), "{e}");
                p.poll(Duration::from_millis(10));
                record = Some(r);
            }
        }
    }
    p.flush(Duration::from_secs(30)).expect("flush");
}

/// Reads everything from the given partitions from the beginning until `n` records arrived.
fn consume_assigned(c: &BaseConsumer, topic: &str, partitions: i32, n: usize) -> Vec<(i32, i64, String, String)> {
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning).unwrap();
    }
    c.assign(&tpl).unwrap();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while out.len() < n && Instant::now() < deadline {
        if let Some(m) = c.poll(Duration::from_millis(100)) {
            let m = m.expect("consume");
            let key = String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned();
            let value = String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned();
            out.push((m.partition(), m.offset(), key, value));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_producer_and_consumer() {
    let cluster = Cluster::start(ClusterConfig { brokers: 3, ..Default::default() }).await.unwrap();
    cluster.create_topic("events", 6).unwrap();
    let bootstrap = cluster.bootstrap();
    let got = tokio::task::spawn_blocking(move || {
        let p = producer(&bootstrap, &[("enable.idempotence", "true"), ("compression.type", "lz4")]);
        produce(&p, "events", 3000, 6);
        let c = consumer(&bootstrap, "g-idem", &[]);
        consume_assigned(&c, "events", 6, 3000)
    })
    .await
    .unwrap();
    assert_eq!(got.len(), 3000);
    let values: HashSet<String> = got.iter().map(|(_, _, _, v)| v.clone()).collect();
    assert_eq!(values.len(), 3000, "no duplicates");
    // Every partition holds 500 records at offsets 0..500, in order.
    let mut by_partition: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    for (p, o, _, _) in &got {
        by_partition.entry(*p).or_default().push(*o);
    }
    for (p, offsets) in by_partition {
        assert_eq!(offsets, (0..500).collect::<Vec<i64>>(), "partition {p}");
        assert_eq!(cluster.high_watermark("events", p), Some(500));
    }
    // The stored batches are librdkafka's own: idempotent (producer id set) and lz4.
    for raw in kingest_protocol::record::RecordSet::new(cluster.batches("events", 0)[0].clone()) {
        let h = *raw.unwrap().header();
        assert!(h.producer_id >= 0 && h.base_sequence == 0, "{h:?}");
        assert_eq!(h.compression(), Ok(kingest_protocol::record::Compression::Lz4));
    }
}
