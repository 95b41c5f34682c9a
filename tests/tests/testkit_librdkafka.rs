//! The in-memory cluster (testkit) is only trustworthy if an independent client accepts it:
//! librdkafka, unmodified, through the `rdkafka` crate. Each test drives librdkafka (on blocking
//! threads) against a testkit cluster and checks what it observes.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use kingest_testkit::{Cluster, ClusterConfig, FaultAction, FaultRule, SaslConfig};
use kingest_tests::peers::cluster::{move_leader_away, start_cluster};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

/// Collects the errors librdkafka reports through its error callback (authentication failures
/// arrive there, not as request errors).
#[derive(Clone, Default)]
struct ErrorLog(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl rdkafka::ClientContext for ErrorLog {
    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        self.0.lock().unwrap().push(format!("{error}: {reason}"));
    }
}

impl rdkafka::producer::ProducerContext for ErrorLog {
    type DeliveryOpaque = ();
    fn delivery(&self, _: &rdkafka::message::DeliveryResult<'_>, _: ()) {}
}

fn producer(bootstrap: &str, extra: &[(&str, &str)]) -> BaseProducer {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap)
        .set("linger.ms", "5")
        .set("message.timeout.ms", "30000");
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
        let headers = OwnedHeaders::new().insert(Header {
            key: "i",
            value: Some(&i.to_string()),
        });
        let record = BaseRecord::to(topic)
            .key(&key)
            .payload(&value)
            .headers(headers)
            .partition((i as i32) % partitions);
        let mut record = Some(record);
        while let Some(r) = record.take() {
            if let Err((e, r)) = p.send(r) {
                assert!(
                    matches!(
                        e.rdkafka_error_code(),
                        Some(rdkafka::types::RDKafkaErrorCode::QueueFull)
                    ),
                    "{e}"
                );
                p.poll(Duration::from_millis(10));
                record = Some(r);
            }
        }
    }
    p.flush(Duration::from_secs(30)).expect("flush");
}

/// Assigns `c` partitions `0..partitions` of `topic`, each from its beginning.
fn assign_from_beginning(c: &BaseConsumer, topic: &str, partitions: i32) {
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    c.assign(&tpl).unwrap();
}

/// How many partitions each member is assigned.
fn assignment_sizes(members: &[&BaseConsumer]) -> Vec<usize> {
    members
        .iter()
        .map(|m| m.assignment().map(|a| a.count()).unwrap_or(0))
        .collect()
}

/// Polls every member (serving the group protocol) until `settled` holds for their assignment
/// sizes, failing after 30 s with `what`; returns the sizes.
fn settle(members: &[&BaseConsumer], what: &str, settled: impl Fn(&[usize]) -> bool) -> Vec<usize> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        for m in members {
            let _ = m.poll(Duration::from_millis(20));
        }
        let sizes = assignment_sizes(members);
        if settled(&sizes) {
            return sizes;
        }
        assert!(
            Instant::now() < deadline,
            "group never settled {what}: {sizes:?}"
        );
    }
}

/// Reads everything from the given partitions from the beginning until `n` records arrived.
fn consume_assigned(
    c: &BaseConsumer,
    topic: &str,
    partitions: i32,
    n: usize,
) -> Vec<(i32, i64, String, String)> {
    assign_from_beginning(c, topic, partitions);
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
    let cluster = start_cluster(3).await;
    cluster.create_topic("events", 6).unwrap();
    let bootstrap = cluster.bootstrap();
    let got = tokio::task::spawn_blocking(move || {
        let p = producer(
            &bootstrap,
            &[("enable.idempotence", "true"), ("compression.type", "lz4")],
        );
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
        assert_eq!(
            h.compression(),
            Ok(kingest_protocol::record::Compression::Lz4)
        );
    }
}

/// Reads a topic's partitions from the beginning with `isolation.level`, until it has seen the
/// end of every partition (librdkafka's partition EOF events), returning (partition, value).
fn read_to_end(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    isolation: &str,
) -> Vec<(i32, String)> {
    let c = consumer(
        bootstrap,
        &format!("reader-{isolation}"),
        &[
            ("isolation.level", isolation),
            ("enable.partition.eof", "true"),
        ],
    );
    assign_from_beginning(&c, topic, partitions);
    let mut out = Vec::new();
    let mut eof = HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while eof.len() < partitions as usize && Instant::now() < deadline {
        match c.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => out.push((
                m.partition(),
                String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned(),
            )),
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(p))) => {
                eof.insert(p);
            }
            Some(Err(e)) => panic!("{e}"),
            None => {}
        }
    }
    assert_eq!(
        eof.len(),
        partitions as usize,
        "did not reach the end of every partition"
    );
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_commit_and_abort_with_read_committed() {
    let cluster = start_cluster(2).await;
    cluster.create_topic("txn", 3).unwrap();
    let bootstrap = cluster.bootstrap();
    let (committed, all) = tokio::task::spawn_blocking(move || {
        let p = producer(
            &bootstrap,
            &[("transactional.id", "tx-1"), ("compression.type", "zstd")],
        );
        p.init_transactions(Duration::from_secs(10))
            .expect("init_transactions");
        let mut committed = Vec::new();
        for round in 0..6 {
            p.begin_transaction().unwrap();
            for i in 0..30 {
                let value = format!("r{round}-{i}");
                p.send(
                    BaseRecord::<(), _>::to("txn")
                        .payload(&value)
                        .partition(i % 3),
                )
                .map_err(|(e, _)| e)
                .unwrap();
            }
            p.flush(Duration::from_secs(10)).unwrap();
            // Commit the even rounds, abort the odd ones; the last round (5) is an abort, so
            // every partition's log ends with an abort marker.
            if round % 2 == 0 {
                p.commit_transaction(Duration::from_secs(10))
                    .expect("commit");
                committed.extend((0..30).map(|i| (i % 3, format!("r{round}-{i}"))));
            } else {
                p.abort_transaction(Duration::from_secs(10)).expect("abort");
            }
        }
        let mut read = read_to_end(&bootstrap, "txn", 3, "read_committed");
        let all = read_to_end(&bootstrap, "txn", 3, "read_uncommitted");
        read.sort();
        committed.sort();
        assert_eq!(
            read, committed,
            "read_committed sees exactly the committed records"
        );
        (committed.len(), all.len())
    })
    .await
    .unwrap();
    assert_eq!((committed, all), (90, 180));
    for p in 0..3 {
        assert_eq!(
            cluster.last_stable_offset("txn", p),
            cluster.high_watermark("txn", p),
            "no transaction left open"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_group_of_three_rebalances() {
    let cluster = start_cluster(2).await;
    cluster.create_topic("grouped", 6).unwrap();
    let bootstrap = cluster.bootstrap();
    let assignments = tokio::task::spawn_blocking(move || {
        let p = producer(&bootstrap, &[]);
        produce(&p, "grouped", 600, 6);
        let members: Vec<BaseConsumer> = (0..3)
            .map(|_| {
                consumer(
                    &bootstrap,
                    "g3",
                    &[("partition.assignment.strategy", "range")],
                )
            })
            .collect();
        // Join one at a time; poll all until the assignment covers all 6 partitions.
        let mut history = Vec::new();
        for joined in 1..=3 {
            members[joined - 1].subscribe(&["grouped"]).unwrap();
            let joined_members: Vec<&BaseConsumer> = members[..joined].iter().collect();
            history.push(settle(
                &joined_members,
                &format!("with {joined} members"),
                |sizes| sizes.iter().sum::<usize>() == 6 && sizes.iter().all(|s| *s == 6 / joined),
            ));
        }
        // One leaves cleanly (close sends LeaveGroup): the other two take over its partitions.
        let mut members = members;
        let leaving = members.remove(0);
        leaving.unsubscribe();
        drop(leaving);
        let staying: Vec<&BaseConsumer> = members.iter().collect();
        history.push(settle(&staying, "after a member left", |sizes| {
            sizes == [3, 3]
        }));
        history
    })
    .await
    .unwrap();
    assert_eq!(
        assignments,
        vec![vec![6], vec![3, 3], vec![2, 2, 2], vec![3, 3]]
    );
    let (state, generation, _) = cluster.group_state("g3").unwrap();
    assert!(generation >= 3, "{state} generation {generation}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sasl_plain_and_scram_logins() {
    let sasl = SaslConfig::all(&[("alice", "alice-secret")]);
    let cluster = Cluster::start(ClusterConfig {
        sasl: Some(sasl),
        ..Default::default()
    })
    .await
    .unwrap();
    cluster.create_topic("secure", 1).unwrap();
    let bootstrap = cluster.bootstrap();
    tokio::task::spawn_blocking(move || {
        for mechanism in ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] {
            let auth = [
                ("security.protocol", "sasl_plaintext"),
                ("sasl.mechanism", mechanism),
                ("sasl.username", "alice"),
                ("sasl.password", "alice-secret"),
            ];
            let p = producer(&bootstrap, &auth);
            produce(&p, "secure", 10, 1);
            let wrong = [
                ("security.protocol", "sasl_plaintext"),
                ("sasl.mechanism", mechanism),
                ("sasl.username", "alice"),
                ("sasl.password", "nope"),
            ];
            let errors = ErrorLog::default();
            let mut c = ClientConfig::new();
            c.set("bootstrap.servers", &bootstrap);
            for (k, v) in wrong {
                c.set(k, v);
            }
            let bad: BaseProducer<ErrorLog> =
                c.create_with_context(errors.clone()).expect("producer");
            assert!(
                bad.client()
                    .fetch_metadata(Some("secure"), Duration::from_secs(3))
                    .is_err(),
                "{mechanism}: wrong password accepted"
            );
            // Error callbacks are served by poll.
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline
                && !errors
                    .0
                    .lock()
                    .unwrap()
                    .iter()
                    .any(|e| e.to_lowercase().contains("authentication"))
            {
                bad.poll(Duration::from_millis(50));
            }
            let seen = errors.0.lock().unwrap().clone();
            assert!(
                seen.iter()
                    .any(|e| e.contains("Authentication") || e.contains("authentication")),
                "{mechanism}: {seen:?}"
            );
        }
    })
    .await
    .unwrap();
    assert_eq!(cluster.high_watermark("secure", 0), Some(30));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_listener() {
    let pki = kingest_tests::peers::certs::TestPki::generate();
    let tls = kingest_testkit::TlsFiles {
        cert: pki.server_cert.clone(),
        key: pki.server_key.clone(),
    };
    let cluster = Cluster::start(ClusterConfig {
        tls: Some(tls),
        ..Default::default()
    })
    .await
    .unwrap();
    cluster.create_topic("tls", 2).unwrap();
    let bootstrap = cluster.bootstrap();
    let ca = pki.ca.display().to_string();
    let got = tokio::task::spawn_blocking(move || {
        let settings = [
            ("security.protocol", "ssl"),
            ("ssl.ca.location", ca.as_str()),
        ];
        let p = producer(&bootstrap, &settings);
        produce(&p, "tls", 100, 2);
        let c = consumer(&bootstrap, "g-tls", &settings);
        consume_assigned(&c, "tls", 2, 100).len()
    })
    .await
    .unwrap();
    assert_eq!(got, 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_not_leader_makes_librdkafka_refresh_and_continue() {
    let cluster = start_cluster(2).await;
    cluster.create_topic("moving", 1).unwrap();
    // The first three Produce requests fail as if leadership had moved; meanwhile it really
    // moves to the other broker.
    cluster.faults().add(FaultRule::new(
        0,
        FaultAction::Error(kingest_protocol::ErrorCode::NotLeaderOrFollower),
        3,
    ));
    move_leader_away(&cluster, "moving", 0);
    let bootstrap = cluster.bootstrap();
    let got = tokio::task::spawn_blocking(move || {
        let p = producer(
            &bootstrap,
            &[("enable.idempotence", "true"), ("retry.backoff.ms", "50")],
        );
        produce(&p, "moving", 200, 1);
        let c = consumer(&bootstrap, "g-moving", &[]);
        consume_assigned(&c, "moving", 1, 200)
    })
    .await
    .unwrap();
    assert_eq!(got.len(), 200);
    assert_eq!(
        got.iter().map(|(_, o, _, _)| *o).collect::<Vec<_>>(),
        (0..200).collect::<Vec<i64>>(),
        "no loss, no duplicates"
    );
    let fired = cluster.faults().fired();
    assert_eq!(fired.len(), 3, "{fired:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_member_restart_keeps_its_partitions_without_a_rebalance() {
    let cluster = Cluster::start(ClusterConfig::default()).await.unwrap();
    cluster.create_topic("static", 4).unwrap();
    let bootstrap = cluster.bootstrap();
    let cluster = std::sync::Arc::new(cluster);
    let c2 = cluster.clone();
    tokio::task::spawn_blocking(move || {
        let member = |id: &str| {
            consumer(
                &bootstrap,
                "g-static",
                &[
                    ("group.instance.id", id),
                    ("session.timeout.ms", "10000"),
                    ("partition.assignment.strategy", "range"),
                ],
            )
        };
        // Every member has partitions and together they have all `want`: each one's partitions.
        let settled_partitions = |ms: &[&BaseConsumer], want: usize| {
            settle(ms, &format!("over {want} partitions"), |sizes| {
                sizes.iter().sum::<usize>() == want && sizes.iter().all(|s| *s > 0)
            });
            ms.iter()
                .map(|m| {
                    m.assignment()
                        .unwrap()
                        .elements()
                        .iter()
                        .map(|e| e.partition())
                        .collect::<Vec<_>>()
                })
                .collect::<Vec<_>>()
        };
        let a = member("instance-a");
        let b = member("instance-b");
        a.subscribe(&["static"]).unwrap();
        b.subscribe(&["static"]).unwrap();
        let before = settled_partitions(&[&a, &b], 4);
        let (_, generation, _) = c2.group_state("g-static").unwrap();
        // The follower restarts within the session timeout, without leaving (static members
        // don't). A restarting *leader* makes librdkafka rejoin to recompute assignments (as
        // with brokers before KIP-814), so the follower is the one that shows the property.
        let leader_is_a = c2.group_leader_instance("g-static").as_deref() == Some("instance-a");
        let (stay, gone, follower, mine) = if leader_is_a {
            (a, b, "instance-b", before[1].clone())
        } else {
            (b, a, "instance-a", before[0].clone())
        };
        drop(gone);
        let restarted = member(follower);
        restarted.subscribe(&["static"]).unwrap();
        let after = settled_partitions(&[&stay, &restarted], 4);
        assert_eq!(
            after[1], mine,
            "the restarted static member got its partitions back"
        );
        let (state, generation_after, members) = c2.group_state("g-static").unwrap();
        assert_eq!(
            (state.as_str(), generation_after, members),
            ("Stable", generation, 2),
            "no rebalance of the others"
        );
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_stopped_and_started_while_librdkafka_produces_and_consumes() {
    let cluster = std::sync::Arc::new(start_cluster(3).await);
    cluster.create_topic("resilient", 3).unwrap();
    let bootstrap = cluster.bootstrap();
    let producing = {
        let bootstrap = bootstrap.clone();
        tokio::task::spawn_blocking(move || {
            let p = producer(
                &bootstrap,
                &[("enable.idempotence", "true"), ("retry.backoff.ms", "20")],
            );
            for chunk in 0..10 {
                for i in 0..100 {
                    let v = format!("v{}", chunk * 100 + i);
                    let mut r = Some(BaseRecord::<(), _>::to("resilient").payload(&v));
                    while let Some(rec) = r.take() {
                        if let Err((_, rec)) = p.send(rec) {
                            p.poll(Duration::from_millis(10));
                            r = Some(rec);
                        }
                    }
                }
                p.poll(Duration::from_millis(30));
            }
            p.flush(Duration::from_secs(60))
                .expect("everything delivered");
        })
    };
    // Stop the broker leading partition 0 while the producer runs; its partitions fail over.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let victim = cluster.leader("resilient", 0).unwrap();
    cluster.stop_broker(victim).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    cluster.start_broker(victim).await.unwrap();
    producing.await.unwrap();
    let total: i64 = (0..3)
        .map(|p| cluster.high_watermark("resilient", p).unwrap())
        .sum();
    assert_eq!(total, 1000, "idempotent producer: no loss, no duplicates");
    let got = tokio::task::spawn_blocking(move || {
        let c = consumer(&bootstrap, "g-resilient", &[]);
        consume_assigned(&c, "resilient", 3, 1000)
    })
    .await
    .unwrap();
    let values: HashSet<String> = got.iter().map(|(_, _, _, v)| v.clone()).collect();
    assert_eq!((got.len(), values.len()), (1000, 1000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consume_transform_produce_commits_offsets_in_the_transaction() {
    let cluster = Cluster::start(ClusterConfig::default()).await.unwrap();
    cluster.create_topic("input", 1).unwrap();
    cluster.create_topic("output", 1).unwrap();
    let bootstrap = cluster.bootstrap();
    let b = bootstrap.clone();
    tokio::task::spawn_blocking(move || {
        let p = producer(&b, &[]);
        produce(&p, "input", 20, 1);
        let c = consumer(&b, "ctp", &[("isolation.level", "read_committed")]);
        c.subscribe(&["input"]).unwrap();
        let tx = producer(&b, &[("transactional.id", "ctp-tx")]);
        tx.init_transactions(Duration::from_secs(10)).unwrap();
        let mut seen = 0;
        let deadline = Instant::now() + Duration::from_secs(30);
        while seen < 20 {
            assert!(Instant::now() < deadline, "read {seen} of 20");
            let Some(m) = c.poll(Duration::from_millis(100)) else {
                continue;
            };
            let m = m.unwrap();
            seen += 1;
            // Transform one record into one output record, and commit the input offset with
            // the output in one transaction (AddOffsetsToTxn + TxnOffsetCommit + EndTxn).
            tx.begin_transaction().unwrap();
            let value = format!("out-{}", String::from_utf8_lossy(m.payload().unwrap()));
            tx.send(BaseRecord::<(), _>::to("output").payload(&value))
                .map_err(|(e, _)| e)
                .unwrap();
            tx.flush(Duration::from_secs(10)).unwrap();
            let mut offsets = TopicPartitionList::new();
            offsets
                .add_partition_offset("input", 0, Offset::Offset(m.offset() + 1))
                .unwrap();
            tx.send_offsets_to_transaction(
                &offsets,
                &c.group_metadata().unwrap(),
                Duration::from_secs(10),
            )
            .unwrap();
            // Abort every fifth: neither its output nor its offset may survive.
            if seen % 5 == 0 {
                tx.abort_transaction(Duration::from_secs(10)).unwrap();
                break;
            }
            tx.commit_transaction(Duration::from_secs(10)).unwrap();
        }
    })
    .await
    .unwrap();
    // Four transactions committed (inputs 0..=3), the fifth aborted: offset 4 committed.
    assert_eq!(cluster.committed("ctp", "input", 0), Some(4));
    let out = tokio::task::spawn_blocking(move || {
        let c = consumer(
            &bootstrap,
            "check",
            &[("isolation.level", "read_committed")],
        );
        consume_assigned(&c, "output", 1, 4)
    })
    .await
    .unwrap();
    assert_eq!(
        out.iter()
            .map(|(_, _, _, v)| v.as_str())
            .collect::<Vec<_>>(),
        vec!["out-value-0", "out-value-1", "out-value-2", "out-value-3"]
    );
}
