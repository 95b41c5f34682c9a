//! KIP-848 consumer groups (`group.protocol=consumer`) on testkit, with the clients that speak
//! the protocol: librdkafka 2.12 (through `rdkafka`) and the Apache Kafka Java client 3.9.1
//! (its `AsyncKafkaConsumer`). The broker assigns (server-side `uniform` or `range`), members
//! reconcile incrementally, and a partition moves only after its old owner acknowledged the
//! revocation.
//!
//! Each test produces 100,000 records over 8 partitions, then runs a group through joins, clean
//! leaves and a `kill -9` of a Java member (its partitions wait for its session to expire)
//! until everything is committed. The check (`kingest_tests::groups::timeline`) replays every
//! member's records, commits and assignment changes: no partition owned by two members at once,
//! commits tiling every partition with no gap or overlap, and the group's committed offsets,
//! read by the Java client, equal to the end offsets.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kingest_client::producer::{Producer, ProducerConfig, ProducerRecord};
use kingest_client::{Client, ClientConfig};
use kingest_testkit::{Cluster, ClusterConfig};
use kingest_tests::groups::members::{JavaMember, JavaMemberOptions};
use kingest_tests::groups::rdkafka_member::{RdMember, RdMemberOptions};
use kingest_tests::groups::timeline::{check, render, Board, Event};
use kingest_tests::peers::java::{args, JavaPeer};

const TOPIC: &str = "kip848";
const GROUP: &str = "kip848-group";
const PARTITIONS: i32 = 8;
const RECORDS: i64 = 100_000;
/// Processing time per record: the topic takes long enough to consume that the membership
/// changes happen while it is.
const PROCESS_US: u64 = 200;

/// Record `i` goes to partition `i % PARTITIONS`, so its offset there is `i / PARTITIONS`.
fn value_of(p: i32, o: i64) -> String {
    (o * i64::from(PARTITIONS) + i64::from(p)).to_string()
}

async fn start() -> Cluster {
    let cluster = Cluster::start(ClusterConfig {
        // A killed member's partitions come back after this.
        consumer_group_session_timeout: Duration::from_secs(6),
        consumer_group_heartbeat_interval: Duration::from_millis(500),
        ..ClusterConfig::default()
    })
    .await
    .expect("start a testkit cluster");
    cluster.create_topic(TOPIC, PARTITIONS).unwrap();
    let client = Client::connect(ClientConfig::new(&cluster.bootstrap()))
        .await
        .unwrap();
    let producer = Producer::new(client, ProducerConfig::default()).unwrap();
    let mut deliveries = Vec::new();
    for i in 0..RECORDS {
        let p = (i % i64::from(PARTITIONS)) as i32;
        deliveries.push(
            producer
                .send(ProducerRecord::new(TOPIC, i.to_string()).with_partition(p))
                .await
                .unwrap(),
        );
    }
    producer.flush().await;
    for (i, d) in deliveries.into_iter().enumerate() {
        let m = d.await.unwrap_or_else(|e| panic!("record {i}: {e}"));
        assert_eq!(m.offset, i as i64 / i64::from(PARTITIONS), "record {i}");
    }
    producer.close().await.unwrap();
    cluster
}

struct Group {
    bootstrap: String,
    board: Arc<Board>,
    assignor: &'static str,
}

impl Group {
    fn java(&self, name: &str) -> JavaMember {
        let o = JavaMemberOptions {
            bootstrap: self.bootstrap.clone(),
            topic: TOPIC.to_owned(),
            group: GROUP.to_owned(),
            strategy: self.assignor.to_owned(),
            protocol: "consumer".to_owned(),
            instance: None,
            session_ms: 0,
            process_us: PROCESS_US,
        };
        JavaMember::start(name, self.board.clone(), &o)
    }

    fn rdkafka(&self, name: &str) -> RdMember {
        let o = RdMemberOptions {
            bootstrap: self.bootstrap.clone(),
            topic: TOPIC.to_owned(),
            group: GROUP.to_owned(),
            protocol: "consumer".to_owned(),
            remote_assignor: Some(self.assignor.to_owned()),
            instance: None,
            process_us: PROCESS_US,
        };
        RdMember::start(name, self.board.clone(), &o)
    }

    async fn wait(&self, what: &str, done: impl Fn(&Board) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while !done(&self.board) {
            if Instant::now() >= deadline {
                dump(&self.board);
                panic!(
                    "waited 120 s for {what}; {} of {RECORDS} records committed; logs' ends: {}",
                    self.board.progress(),
                    summary(&self.board)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until `n` records are committed and checks the topic is not done yet.
    async fn wait_progress(&self, n: i64, next: &str) {
        self.wait(&format!("{n} records committed"), |b| b.progress() >= n)
            .await;
        assert!(
            self.board.progress() < RECORDS,
            "the topic was consumed before: {next}"
        );
    }

    async fn wait_working(&self, members: &[&str]) {
        for m in members {
            self.wait(&format!("{m} to commit"), |b| b.committed_by(m) > 0)
                .await;
        }
    }
}

fn dump(board: &Board) {
    let path = std::env::temp_dir().join(format!(
        "group_kip848-{}-{}.log",
        std::process::id(),
        kingest_tests::groups::timeline::now_micros()
    ));
    match std::fs::write(&path, render(&board.logs())) {
        Ok(()) => eprintln!("members' logs: {}", path.display()),
        Err(e) => eprintln!("cannot write {}: {e}", path.display()),
    }
}

fn summary(board: &Board) -> String {
    board
        .logs()
        .iter()
        .map(|(name, log)| {
            let tail: Vec<String> = log
                .events
                .iter()
                .rev()
                .filter(|e| !matches!(e, Event::Record { .. }))
                .take(8)
                .map(|e| format!("{e:?}"))
                .collect();
            format!("\n  {name} (owns {:?}): {tail:?}", board.assignment(name))
        })
        .collect()
}

/// The committed offsets (read by the Java client) against the end offsets, and the timeline
/// check over every member's log.
async fn verify(g: &Group) {
    let lines = JavaPeer::get()
        .run_async(
            "committed",
            args(&[
                ("bootstrap", &g.bootstrap),
                ("topic", TOPIC),
                ("group", GROUP),
            ]),
        )
        .await;
    let mut end = BTreeMap::new();
    let mut committed = BTreeMap::new();
    for l in &lines {
        let p = l["partition"].as_i64().unwrap() as i32;
        end.insert(p, l["end"].as_i64().unwrap());
        committed.insert(p, l["offset"].as_i64().unwrap());
    }
    assert_eq!(end.values().sum::<i64>(), RECORDS, "{end:?}");
    let logs = g.board.logs();
    let violations = check(&logs, &end, &committed, value_of);
    if !violations.is_empty() {
        dump(&g.board);
    }
    assert!(
        violations.is_empty(),
        "{} violations, the first: {:#?}\nlogs' ends: {}",
        violations.len(),
        &violations[..violations.len().min(20)],
        summary(&g.board)
    );
    for name in logs.keys() {
        assert!(
            g.board.committed_by(name) > 0,
            "{name} never committed: {}",
            summary(&g.board)
        );
    }
    // No member saw an error (a refused commit is allowed: it is retried).
    for (name, log) in &logs {
        let errors: Vec<&Event> = log
            .events
            .iter()
            .filter(|e| matches!(e, Event::Error { .. }))
            .collect();
        assert!(errors.is_empty(), "{name}: {errors:?}");
    }
}

/// librdkafka and Java members in one KIP-848 group: two of each join, a librdkafka member
/// leaves, a Java member is killed, another Java member joins, until all is committed.
async fn librdkafka_and_java(assignor: &'static str) {
    let started = Instant::now();
    let cluster = start().await;
    let g = Group {
        bootstrap: cluster.bootstrap(),
        board: Arc::new(Board::default()),
        assignor,
    };
    let j0 = g.java("j0");
    let r0 = g.rdkafka("r0");
    g.wait_working(&["j0", "r0"]).await;
    g.wait_progress(RECORDS / 10, "j1 and r1 join").await;
    let j1 = g.java("j1");
    let r1 = g.rdkafka("r1");
    g.wait_working(&["j1", "r1"]).await;
    g.wait_progress(RECORDS * 3 / 10, "r0 leaves").await;
    tokio::task::spawn_blocking(move || r0.stop())
        .await
        .unwrap();
    g.wait_progress(RECORDS * 4 / 10, "j0 is killed").await;
    tokio::task::spawn_blocking(move || j0.kill())
        .await
        .unwrap();
    g.wait_progress(RECORDS * 5 / 10, "j2 joins").await;
    let j2 = g.java("j2");
    g.wait_working(&[j2.name()]).await;
    g.wait("every record committed", |b| b.progress() >= RECORDS)
        .await;
    let stops = [
        tokio::task::spawn_blocking(move || j1.stop()),
        tokio::task::spawn_blocking(move || j2.stop()),
        tokio::task::spawn_blocking(move || r1.stop()),
    ];
    for s in stops {
        if let Err(e) = s.await {
            dump(&g.board);
            panic!("stopping a member: {e}; logs' ends: {}", summary(&g.board));
        }
    }
    verify(&g).await;
    eprintln!("{assignor}: done in {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uniform_librdkafka_and_java_members_consume_exactly_once() {
    librdkafka_and_java("uniform").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn range_librdkafka_and_java_members_consume_exactly_once() {
    librdkafka_and_java("range").await;
}
