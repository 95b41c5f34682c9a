//! The transactional producer against the Apache Kafka Java client (3.9.1) and librdkafka, on
//! testkit (nisshi refuses transactional producers).
//!
//! * kingest commits and aborts transactions over several partitions (the last one aborted, so
//!   every log ends with an abort marker): the Java consumer under read_committed sees exactly
//!   the committed records, under read_uncommitted all of them; librdkafka's and our own
//!   read_committed consumers agree with Java's, offsets included. Offsets sent with
//!   `send_offsets_to_transaction` count only when their transaction commits, as the Java
//!   consumer's `committed()` reads them.
//! * The Java transactional producer commits and aborts; our read_committed consumer returns
//!   exactly its committed records, as the Java consumer does.
//! * Fencing: a second kingest producer with the same transactional id fences the first (whose
//!   open transaction is aborted and which then refuses all use with `ProducerFenced`); the
//!   Java producer fences kingest the same way.
//! * The coordinator's broker stops in the middle of a transaction: the producer finds the new
//!   coordinator and commits. A transaction left open past its timeout is aborted by the
//!   coordinator and the producer fenced.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use kingest_client::admin::Admin;
use kingest_client::consumer::{ConsumerConfig, IsolationLevel, PartitionConsumer, StartAt};
use kingest_client::producer::{ConsumerGroupMetadata, Producer, ProducerConfig, ProducerRecord};
use kingest_client::{Client, ClientConfig, ClientError};
use kingest_testkit::Cluster;
use kingest_tests::peers::cluster::start_cluster;
use kingest_tests::peers::java::{args, JavaPeer};
use rdkafka::config::ClientConfig as RdConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use serde_json::Value;

const PARTITIONS: i32 = 3;

/// Per partition: (offset, value), in offset order.
type Rows = BTreeMap<i32, Vec<(i64, String)>>;

fn values(rows: &Rows) -> BTreeMap<i32, Vec<String>> {
    rows.iter()
        .map(|(p, v)| (*p, v.iter().map(|(_, s)| s.clone()).collect()))
        .collect()
}

fn java_rows(lines: &[Value]) -> Rows {
    let mut rows = Rows::new();
    for l in lines {
        rows.entry(l["partition"].as_i64().unwrap() as i32)
            .or_default()
            .push((
                l["offset"].as_i64().unwrap(),
                l["value"].as_str().unwrap().to_owned(),
            ));
    }
    rows
}

async fn java_consume(cluster: &Cluster, topic: &str, isolation: &str) -> Rows {
    let lines = JavaPeer::get()
        .run_async(
            "consume",
            args(&[
                ("bootstrap", &cluster.bootstrap()),
                ("topic", topic),
                ("isolation", isolation),
            ]),
        )
        .await;
    java_rows(&lines)
}

async fn client(cluster: &Cluster) -> Client {
    Client::connect(ClientConfig::new(&cluster.bootstrap()))
        .await
        .unwrap()
}

async fn txn_producer(cluster: &Cluster, id: &str) -> Producer {
    let mut config = ProducerConfig::default();
    config.transactional_id = Some(id.to_owned());
    Producer::new(client(cluster).await, config).unwrap()
}

/// Our read_committed consumer from the beginning to each partition's log end.
async fn ours_read_committed(cluster: &Cluster, topic: &str) -> Rows {
    let mut config = ConsumerConfig::default();
    config.isolation_level = IsolationLevel::ReadCommitted;
    let mut consumer = PartitionConsumer::new(client(cluster).await, config).unwrap();
    let assign: Vec<(&str, i32, StartAt)> = (0..PARTITIONS)
        .map(|p| (topic, p, StartAt::Earliest))
        .collect();
    consumer.assign(&assign).await.unwrap();
    let mut rows = Rows::new();
    let guard = tokio::time::Instant::now() + Duration::from_secs(60);
    while !(0..PARTITIONS).all(|p| consumer.position(topic, p) == cluster.high_watermark(topic, p))
    {
        assert!(tokio::time::Instant::now() < guard, "our consumer stalled");
        for r in consumer
            .poll_timeout(Duration::from_millis(200))
            .await
            .unwrap()
            .records()
        {
            rows.entry(r.partition).or_default().push((
                r.record.offset,
                String::from_utf8_lossy(r.record.value.unwrap()).into_owned(),
            ));
        }
    }
    rows
}

fn librdkafka_read_committed(bootstrap: &str, topic: &str) -> Rows {
    let c: BaseConsumer = RdConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "txn-librdkafka")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    c.assign(&tpl).unwrap();
    let mut rows = Rows::new();
    let mut eof = std::collections::HashSet::new();
    let guard = std::time::Instant::now() + Duration::from_secs(60);
    while eof.len() < PARTITIONS as usize {
        assert!(std::time::Instant::now() < guard, "librdkafka stalled");
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

/// Sends round `round`'s records ("k-ROUND-J" to partition J % PARTITIONS) and waits for them.
async fn send_round(p: &Producer, topic: &str, prefix: &str, round: usize, n: usize) -> Rows {
    let mut deliveries = Vec::new();
    let mut sent = Rows::new();
    for j in 0..n {
        let partition = (j as i32) % PARTITIONS;
        let value = format!("{prefix}-{round}-{j}");
        deliveries.push(
            p.send(ProducerRecord::new(topic, value.clone()).with_partition(partition))
                .await
                .unwrap(),
        );
        sent.entry(partition).or_default().push((-1, value));
    }
    sent
}

fn extend(into: &mut Rows, from: Rows) {
    for (p, v) in from {
        into.entry(p).or_default().extend(v);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kingest_transactions_as_java_librdkafka_and_kingest_read_them() {
    let cluster = start_cluster(2).await;
    cluster.create_topic("ktx", PARTITIONS).unwrap();
    let p = txn_producer(&cluster, "kingest-writer").await;
    p.init_transactions().await.unwrap();
    let group = ConsumerGroupMetadata::new("ktx-group");
    let (mut committed, mut all) = (Rows::new(), Rows::new());
    // Rounds 1, 3 and 5 (the last) abort; every round also sends offsets for the group.
    for round in 0..6 {
        p.begin_transaction().unwrap();
        let sent = send_round(&p, "ktx", "k", round, 30).await;
        let offsets: HashMap<(String, i32), i64> =
            HashMap::from([(("ktx-input".to_owned(), 0), 100 + round as i64)]);
        p.send_offsets_to_transaction(&offsets, &group)
            .await
            .unwrap();
        extend(&mut all, sent.clone());
        if round % 2 == 1 {
            p.abort_transaction().await.unwrap();
        } else {
            p.commit_transaction().await.unwrap();
            extend(&mut committed, sent);
        }
    }
    p.close().await.unwrap();

    let java = java_consume(&cluster, "ktx", "read_committed").await;
    assert_eq!(values(&java), values(&committed), "Java read_committed");
    let java_all = java_consume(&cluster, "ktx", "read_uncommitted").await;
    assert_eq!(values(&java_all), values(&all), "Java read_uncommitted");
    assert_eq!(java.values().map(Vec::len).sum::<usize>(), 90);
    let ours = ours_read_committed(&cluster, "ktx").await;
    assert_eq!(
        ours, java,
        "kingest and Java read_committed, offsets included"
    );
    let bootstrap = cluster.bootstrap();
    let rd = tokio::task::spawn_blocking(move || librdkafka_read_committed(&bootstrap, "ktx"))
        .await
        .unwrap();
    assert_eq!(
        rd, java,
        "librdkafka and Java read_committed, offsets included"
    );

    // The offsets of the last committed round (4) count; those of the aborted round 5 do not.
    cluster.create_topic("ktx-input", 1).unwrap();
    let lines = JavaPeer::get()
        .run_async(
            "committed",
            args(&[
                ("bootstrap", &cluster.bootstrap()),
                ("topic", "ktx-input"),
                ("group", "ktx-group"),
            ]),
        )
        .await;
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["offset"].as_i64(), Some(104), "{lines:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn java_transactions_as_kingest_reads_them() {
    let cluster = start_cluster(2).await;
    cluster.create_topic("jtx", PARTITIONS).unwrap();
    let lines = JavaPeer::get()
        .run_async(
            "produce",
            args(&[
                ("bootstrap", &cluster.bootstrap()),
                ("topic", "jtx"),
                ("txn.id", "java-writer"),
                ("txns", "6"),
                ("per.txn", "30"),
                ("partitions", &PARTITIONS.to_string()),
                ("abort", "0,3,5"),
            ]),
        )
        .await;
    let mut committed = Rows::new();
    for l in lines.iter().filter(|l| l["committed"] == true) {
        for (j, v) in l["values"].as_array().unwrap().iter().enumerate() {
            committed
                .entry(j as i32 % PARTITIONS)
                .or_default()
                .push((-1, v.as_str().unwrap().to_owned()));
        }
    }
    assert_eq!(committed.values().map(Vec::len).sum::<usize>(), 90);
    let ours = ours_read_committed(&cluster, "jtx").await;
    assert_eq!(
        values(&ours),
        values(&committed),
        "exactly Java's committed records"
    );
    let java = java_consume(&cluster, "jtx", "read_committed").await;
    assert_eq!(
        ours, java,
        "kingest and Java read_committed, offsets included"
    );
}

fn is_fenced(r: &Result<(), ClientError>) -> bool {
    matches!(r, Err(ClientError::ProducerFenced { .. }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_producer_fences_the_older_kingest_or_java() {
    let cluster = start_cluster(2).await;
    cluster.create_topic("fence", PARTITIONS).unwrap();
    let first = txn_producer(&cluster, "fenced-id").await;
    first.init_transactions().await.unwrap();
    first.begin_transaction().unwrap();
    send_round(&first, "fence", "first", 0, 6).await;
    first.flush().await;

    // The second instance's init aborts the first's open transaction and fences it.
    let second = txn_producer(&cluster, "fenced-id").await;
    second.init_transactions().await.unwrap();
    let commit = first.commit_transaction().await;
    assert!(is_fenced(&commit), "{commit:?}");
    let message = commit.unwrap_err().to_string();
    assert!(
        message.contains("fenced-id") && message.contains("fenced"),
        "{message}"
    );
    assert!(is_fenced(&first.begin_transaction()));
    let send = first.send(ProducerRecord::new("fence", "late")).await;
    assert!(
        matches!(send, Err(ClientError::ProducerFenced { .. })),
        "{send:?}"
    );

    second.begin_transaction().unwrap();
    let kept = send_round(&second, "fence", "second", 0, 6).await;
    second.commit_transaction().await.unwrap();

    // The Java producer with the same id fences the second, then commits a record of its own.
    JavaPeer::get()
        .run_async(
            "fence",
            args(&[
                ("bootstrap", &cluster.bootstrap()),
                ("txn.id", "fenced-id"),
                ("topic", "fence"),
                ("value", "java"),
            ]),
        )
        .await;
    second.begin_transaction().unwrap();
    let _delivery = second
        .send(ProducerRecord::new("fence", "after-java").with_partition(1))
        .await
        .unwrap();
    let commit = second.commit_transaction().await;
    assert!(is_fenced(&commit), "{commit:?}");

    let mut expected = kept;
    expected.entry(0).or_default().push((-1, "java".to_owned()));
    let java = java_consume(&cluster, "fence", "read_committed").await;
    assert_eq!(values(&java), values(&expected));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_coordinator_moves_mid_transaction_and_timeouts_fence() {
    let cluster = start_cluster(3).await;
    cluster.create_topic("moves", PARTITIONS).unwrap();
    let p = txn_producer(&cluster, "moving-id").await;
    p.init_transactions().await.unwrap();
    p.begin_transaction().unwrap();
    let mut expected = send_round(&p, "moves", "m", 0, 12).await;
    p.flush().await;
    let admin = Admin::new(client(&cluster).await);
    let before = admin.find_coordinator("moving-id", 1).await.unwrap();
    let old = before.broker().id;
    cluster.stop_broker(old).await;
    // The old coordinator is gone: the commit finds the new one (NOT_COORDINATOR or a lost
    // connection first).
    p.commit_transaction().await.unwrap();
    let after = admin.find_coordinator("moving-id", 1).await.unwrap();
    assert_ne!(after.broker().id, old);
    p.begin_transaction().unwrap();
    extend(&mut expected, send_round(&p, "moves", "m", 1, 12).await);
    p.commit_transaction().await.unwrap();

    // A transaction open past its timeout: the coordinator aborts it and fences the producer.
    let mut config = ProducerConfig::default();
    config.transactional_id = Some("slow-id".to_owned());
    config.transaction_timeout = Duration::from_millis(300);
    let slow = Producer::new(client(&cluster).await, config).unwrap();
    slow.init_transactions().await.unwrap();
    slow.begin_transaction().unwrap();
    send_round(&slow, "moves", "slow", 0, 3).await;
    slow.flush().await;
    let guard = std::time::Instant::now() + Duration::from_secs(30);
    while (0..PARTITIONS)
        .any(|q| cluster.last_stable_offset("moves", q) != cluster.high_watermark("moves", q))
    {
        assert!(
            std::time::Instant::now() < guard,
            "the open transaction was never aborted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let commit = slow.commit_transaction().await;
    assert!(is_fenced(&commit), "{commit:?}");

    let java = java_consume(&cluster, "moves", "read_committed").await;
    assert_eq!(values(&java), values(&expected));
}
