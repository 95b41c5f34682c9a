//! Transactional reads: librdkafka's transactional producer interleaves committed and aborted
//! transactions over several partitions, with compression, the last one aborted so that every
//! partition's log ends with an abort marker. Our read_committed consumer must return exactly
//! the committed records, in order, and reach the end of every partition; librdkafka's own
//! read_committed consumer must return the same records.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use kingest_client::consumer::{ConsumerConfig, IsolationLevel, PartitionConsumer, StartAt};
use kingest_client::{Client, ClientConfig};
use kingest_testkit::Cluster;
use kingest_tests::peers::cluster::start_cluster;
use rdkafka::config::ClientConfig as RdConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

const PARTITIONS: i32 = 4;

type Rows = BTreeMap<i32, Vec<(i64, String)>>;

fn produce_transactions(bootstrap: &str) -> Rows {
    let p: BaseProducer = RdConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("transactional.id", "rc-tx")
        .set("compression.type", "lz4")
        .set("linger.ms", "5")
        .create()
        .unwrap();
    p.init_transactions(Duration::from_secs(10)).unwrap();
    let mut committed: BTreeMap<i32, Vec<String>> = BTreeMap::new();
    for round in 0..8 {
        p.begin_transaction().unwrap();
        let mut values = Vec::new();
        for i in 0..40 {
            let partition = (i + round) % PARTITIONS;
            let value = format!("round{round}-{i}");
            p.send(
                BaseRecord::<(), _>::to("rc")
                    .payload(&value)
                    .partition(partition),
            )
            .map_err(|(e, _)| e)
            .unwrap();
            values.push((partition, value));
        }
        p.flush(Duration::from_secs(10)).unwrap();
        // Rounds 1, 2 and 4 commit; the others (the last, 7, included) abort.
        if [1, 2, 4].contains(&round) {
            p.commit_transaction(Duration::from_secs(10)).unwrap();
            for (partition, value) in values {
                committed.entry(partition).or_default().push(value);
            }
        } else {
            p.abort_transaction(Duration::from_secs(10)).unwrap();
        }
    }
    committed
        .into_iter()
        .map(|(p, vs)| (p, vs.into_iter().map(|v| (-1, v)).collect()))
        .collect()
}

fn librdkafka_read_committed(bootstrap: &str) -> Rows {
    let c: BaseConsumer = RdConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "rc-librdkafka")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset("rc", p, Offset::Beginning)
            .unwrap();
    }
    c.assign(&tpl).unwrap();
    let mut rows: Rows = BTreeMap::new();
    let mut eof = HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while eof.len() < PARTITIONS as usize {
        assert!(
            Instant::now() < deadline,
            "librdkafka did not reach the end"
        );
        match c.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => rows.entry(m.partition()).or_default().push((
                m.offset(),
                String::from_utf8_lossy(m.payload().unwrap()).into_owned(),
            )),
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(p))) => {
                eof.insert(p);
            }
            Some(Err(e)) => panic!("{e}"),
            None => {}
        }
    }
    rows
}

async fn ours_read_committed(cluster: &Cluster) -> Rows {
    let client = Client::connect(ClientConfig::new(&cluster.bootstrap()))
        .await
        .unwrap();
    let mut config = ConsumerConfig::default();
    config.isolation_level = IsolationLevel::ReadCommitted;
    let mut consumer = PartitionConsumer::new(client, config).unwrap();
    let assign: Vec<(&str, i32, StartAt)> = (0..PARTITIONS)
        .map(|p| ("rc", p, StartAt::Earliest))
        .collect();
    consumer.assign(&assign).await.unwrap();
    let mut rows: Rows = BTreeMap::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    // Until every partition's position is at its log end, past the final abort marker.
    while !(0..PARTITIONS).all(|p| consumer.position("rc", p) == cluster.high_watermark("rc", p)) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "stalled at {:?}",
            (0..PARTITIONS)
                .map(|p| consumer.position("rc", p))
                .collect::<Vec<_>>()
        );
        let fetched = consumer
            .poll_timeout(Duration::from_millis(200))
            .await
            .unwrap();
        for r in fetched.records() {
            rows.entry(r.partition).or_default().push((
                r.record.offset,
                String::from_utf8_lossy(r.record.value.unwrap()).into_owned(),
            ));
        }
    }
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_committed_matches_librdkafka_and_the_committed_transactions() {
    let cluster = start_cluster(2).await;
    cluster.create_topic("rc", PARTITIONS).unwrap();
    let bootstrap = cluster.bootstrap();
    let b = bootstrap.clone();
    let expected = tokio::task::spawn_blocking(move || produce_transactions(&b))
        .await
        .unwrap();
    let ours = ours_read_committed(&cluster).await;
    let theirs = tokio::task::spawn_blocking(move || librdkafka_read_committed(&bootstrap))
        .await
        .unwrap();
    assert_eq!(
        ours, theirs,
        "our read_committed consumer and librdkafka's agree, offsets included"
    );
    let values = |rows: &Rows| -> BTreeMap<i32, Vec<String>> {
        rows.iter()
            .map(|(p, v)| (*p, v.iter().map(|(_, s)| s.clone()).collect()))
            .collect()
    };
    assert_eq!(
        values(&ours),
        values(&expected),
        "exactly the committed records, in order"
    );
    assert_eq!(ours.values().map(Vec::len).sum::<usize>(), 120);
}
