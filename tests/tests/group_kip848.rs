//! KIP-848 consumer groups (`group.protocol=consumer`) on testkit, with the clients that speak
//! the protocol: librdkafka 2.12 (through `rdkafka`) and the Apache Kafka Java client 3.9.1
//! (its `AsyncKafkaConsumer`). The broker assigns (server-side `uniform` or `range`), members
//! reconcile incrementally, and a partition moves only after its old owner acknowledged the
//! revocation.
//!
//! Each test produces 200,000 records over 8 partitions, then runs a group through joins, clean
//! leaves and a `kill -9` of a Java member (its partitions wait for its session to expire)
//! until everything is committed. The check (`kingest_tests::groups::timeline`) replays every
//! member's records, commits and assignment changes: no partition owned by two members at once,
//! commits tiling every partition with no gap or overlap, and the group's committed offsets,
//! read by the Java client, equal to the end offsets.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kingest_client::consumer::OffsetReset;
use kingest_client::error::ClientError;
use kingest_client::group::consumer::{GroupConsumer, GroupConsumerConfig, GroupProtocol};
use kingest_client::producer::{Producer, ProducerConfig, ProducerRecord};
use kingest_client::{Client, ClientConfig};
use kingest_testkit::{Cluster, ClusterConfig};
use kingest_tests::groups::members::{JavaMember, JavaMemberOptions, KingestMember};
use kingest_tests::groups::rdkafka_member::{RdMember, RdMemberOptions};
use kingest_tests::groups::timeline::{check, render, Board, Event};
use kingest_tests::peers::java::{args, JavaPeer};
use kingest_tests::peers::nisshi::Nisshi;

const TOPIC: &str = "kip848";
const GROUP: &str = "kip848-group";
const PARTITIONS: i32 = 8;
const RECORDS: i64 = 200_000;
/// Processing time per record: the topic takes long enough to consume that the membership
/// changes happen while it is.
const PROCESS_US: u64 = 300;

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

    async fn kingest(&self, name: &str) -> KingestMember {
        let client = Client::connect(ClientConfig::new(&self.bootstrap))
            .await
            .unwrap();
        KingestMember::start(
            name,
            self.board.clone(),
            client,
            kingest_config(self.assignor),
            TOPIC,
            PROCESS_US,
        )
    }

    async fn wait(&self, what: &str, done: impl Fn(&Board) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(300);
        while !done(&self.board) {
            if Instant::now() >= deadline {
                dump(&self.board);
                panic!(
                    "waited 300 s for {what}; {} of {RECORDS} records committed; logs' ends: {}",
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

    /// Waits until each member named owns partitions (a late joiner may get only partitions
    /// already consumed to their end, so it need not commit).
    async fn wait_assigned(&self, members: &[&str]) {
        for m in members {
            self.wait(&format!("{m} to get partitions"), |b| {
                !b.assignment(m).is_empty()
            })
            .await;
        }
    }

    async fn wait_working(&self, members: &[&str]) {
        for m in members {
            self.wait(&format!("{m} to commit"), |b| b.committed_by(m) > 0)
                .await;
        }
    }
}

/// A kingest member of the KIP-848 group.
fn kingest_config(assignor: &str) -> GroupConsumerConfig {
    let mut c = GroupConsumerConfig::new(GROUP, &[TOPIC]);
    c.group_protocol = GroupProtocol::Consumer;
    c.remote_assignor = Some(assignor.to_owned());
    c.rebalance_timeout = Duration::from_secs(20);
    c.auto_commit = false;
    c.consumer.offset_reset = OffsetReset::Earliest;
    // Batches of about a thousand records, as the other members'.
    c.consumer.max_partition_fetch_bytes = 16 * 1024;
    c.consumer.fetch_max_bytes = 32 * 1024;
    c
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
    // Every member took part: each was given partitions.
    for (name, log) in &logs {
        assert!(
            log.events
                .iter()
                .any(|e| matches!(e, Event::Assigned { partitions, .. } if !partitions.is_empty())),
            "{name} never got a partition: {}",
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
/// (Members that join late are only required to get partitions: the others may have consumed
/// them to their end by then.)
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
    g.wait_assigned(&["j1", "r1"]).await;
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
    g.wait_assigned(&[j2.name()]).await;
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
#[ignore = "known failure under load (issue 16): with three runs at once on 2 cores, partition 6 \
            was processed twice (a Java member committed 0..392, then a librdkafka member \
            started it at 0); cause not found yet; run with --ignored"]
async fn uniform_librdkafka_and_java_members_consume_exactly_once() {
    librdkafka_and_java("uniform").await;
}

/// kingest, librdkafka and Java members in one KIP-848 group (server-side `range`): joins,
/// clean leaves of a kingest and a librdkafka member, a `kill -9` of a Java member and a
/// kingest member dropped without leaving (both wait out the session), until all is committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "known failure under load (issue 16): partitions of a kingest member dropped \
            without leaving were never taken up (a target lost to a cancelled poll: fixed, \
            not yet proven under load together with the failure above); run with --ignored"]
async fn kingest_librdkafka_and_java_members_consume_exactly_once() {
    let started = Instant::now();
    let cluster = start().await;
    let g = Group {
        bootstrap: cluster.bootstrap(),
        board: Arc::new(Board::default()),
        assignor: "range",
    };
    let k0 = g.kingest("k0").await;
    let j0 = g.java("j0");
    let r0 = g.rdkafka("r0");
    g.wait_working(&["k0", "j0", "r0"]).await;
    g.wait_progress(RECORDS / 10, "k1 and j1 join").await;
    let k1 = g.kingest("k1").await;
    let j1 = g.java("j1");
    g.wait_assigned(&["k1", "j1"]).await;
    g.wait_progress(RECORDS * 3 / 10, "k0 and r0 leave").await;
    k0.stop().await;
    tokio::task::spawn_blocking(move || r0.stop())
        .await
        .unwrap();
    g.wait_progress(RECORDS * 4 / 10, "j0 is killed").await;
    tokio::task::spawn_blocking(move || j0.kill())
        .await
        .unwrap();
    let k2 = g.kingest("k2").await;
    g.wait_assigned(&["k2"]).await;
    g.wait_progress(RECORDS * 6 / 10, "k1 crashes").await;
    k1.crash().await;
    g.wait("every record committed", |b| b.progress() >= RECORDS)
        .await;
    k2.stop().await;
    if let Err(e) = tokio::task::spawn_blocking(move || j1.stop()).await {
        dump(&g.board);
        panic!("stopping j1: {e}; logs' ends: {}", summary(&g.board));
    }
    verify(&g).await;
    eprintln!(
        "kingest, librdkafka and Java: done in {:?}",
        started.elapsed()
    );
}

/// A broker without ConsumerGroupHeartbeat (nisshi): the consumer protocol fails with a typed
/// error naming the coordinator and the way out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_protocol_on_a_broker_without_it_is_a_clear_error() {
    let nisshi = Nisshi::start();
    nisshi.create_topic(TOPIC, 1);
    let client = Client::connect(ClientConfig::new(&nisshi.addr()))
        .await
        .unwrap();
    let mut member = GroupConsumer::new(client, kingest_config("uniform")).unwrap();
    let err = tokio::time::timeout(Duration::from_secs(30), member.poll())
        .await
        .expect("poll answers")
        .expect_err("the broker lacks KIP-848");
    assert!(
        matches!(err, ClientError::GroupProtocolUnsupported { ref group, .. } if group == GROUP),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("group_protocol = classic"),
        "{err}"
    );
}

/// Offsets committed at a member epoch the group has moved past are refused
/// (STALE_MEMBER_EPOCH), while a kingest member's own commits use its current epoch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_are_fenced_by_the_member_epoch() {
    use kingest_client::admin::Admin;
    use kingest_protocol::kafka_protocol::messages::offset_commit_request::{
        OffsetCommitRequestPartition, OffsetCommitRequestTopic,
    };
    use kingest_protocol::kafka_protocol::messages::{GroupId, OffsetCommitRequest, TopicName};
    use kingest_protocol::kafka_protocol::protocol::StrBytes;
    use kingest_protocol::ErrorCode;

    let cluster = Cluster::start(ClusterConfig {
        consumer_group_heartbeat_interval: Duration::from_millis(200),
        ..ClusterConfig::default()
    })
    .await
    .unwrap();
    cluster.create_topic("fence", 4).unwrap();
    let connect = || async {
        Client::connect(ClientConfig::new(&cluster.bootstrap()))
            .await
            .unwrap()
    };
    let mut config = GroupConsumerConfig::new("fence-group", &["fence"]);
    config.group_protocol = GroupProtocol::Consumer;
    config.auto_commit = false;
    let mut a = GroupConsumer::new(connect().await, config.clone()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while a.assignment().len() < 4 {
        assert!(Instant::now() < deadline, "a never got the partitions");
        let _ = tokio::time::timeout(Duration::from_millis(500), a.poll()).await;
    }
    let (id, first) = a.identity().await;
    assert!(first > 0);

    // A second member: a gives up half, and its epoch moves on.
    let mut b = GroupConsumer::new(connect().await, config).unwrap();
    while b.assignment().is_empty() || a.identity().await.1 == first {
        assert!(Instant::now() < deadline, "b never got partitions");
        let _ = tokio::time::timeout(Duration::from_millis(200), a.poll()).await;
        let _ = tokio::time::timeout(Duration::from_millis(200), b.poll()).await;
    }
    let (_, now) = a.identity().await;
    assert!(now > first, "{now} after {first}");

    // The old epoch is refused (an OffsetCommit v9 on the wire, as a zombie incarnation of a
    // would send it); a's own commit, at its current epoch, is taken.
    let owned = a.assignment()[0].clone();
    let offsets: std::collections::HashMap<(String, i32), i64> = [(owned.clone(), 0)].into();
    let coordinator = Admin::new(connect().await)
        .find_coordinator("fence-group", 0)
        .await
        .unwrap();
    let stale = OffsetCommitRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("fence-group")))
        .with_generation_id_or_member_epoch(first)
        .with_member_id(StrBytes::from_string(id.clone()))
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(TopicName(StrBytes::from_string(owned.0.clone())))
            .with_partitions(vec![OffsetCommitRequestPartition::default()
                .with_partition_index(owned.1)
                .with_committed_offset(0)])]);
    let answer = coordinator.send_version(9, &stale).await.unwrap();
    let code = ErrorCode::from_code(answer.topics[0].partitions[0].error_code);
    assert_eq!(code, ErrorCode::StaleMemberEpoch);
    a.commit_offsets(&offsets).await.unwrap();
}

/// A static kingest member (`group.instance.id`) that closes leaves with epoch -2: its
/// partitions wait for it (the other member is not given them), and its next incarnation gets
/// them back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_static_member_gets_its_partitions_back() {
    let cluster = Cluster::start(ClusterConfig {
        consumer_group_heartbeat_interval: Duration::from_millis(200),
        ..ClusterConfig::default()
    })
    .await
    .unwrap();
    cluster.create_topic("static", 4).unwrap();
    let connect = || async {
        Client::connect(ClientConfig::new(&cluster.bootstrap()))
            .await
            .unwrap()
    };
    let mut config = GroupConsumerConfig::new("static-group", &["static"]);
    config.group_protocol = GroupProtocol::Consumer;
    config.auto_commit = false;
    let mut dynamic = GroupConsumer::new(connect().await, config.clone()).unwrap();
    config.instance_id = Some("i1".to_owned());
    let mut a = GroupConsumer::new(connect().await, config.clone()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while a.assignment().len() + dynamic.assignment().len() < 4
        || a.assignment().is_empty()
        || dynamic.assignment().is_empty()
    {
        assert!(Instant::now() < deadline, "the partitions were never split");
        let _ = tokio::time::timeout(Duration::from_millis(200), a.poll()).await;
        let _ = tokio::time::timeout(Duration::from_millis(200), dynamic.poll()).await;
    }
    let had = a.assignment();
    let kept = dynamic.assignment();
    a.close().await.unwrap();
    // Away: the dynamic member keeps polling and is not given the static member's partitions.
    let away = Instant::now() + Duration::from_secs(2);
    while Instant::now() < away {
        let _ = tokio::time::timeout(Duration::from_millis(200), dynamic.poll()).await;
    }
    assert_eq!(dynamic.assignment(), kept);
    let mut again = GroupConsumer::new(connect().await, config).unwrap();
    while again.assignment().len() < had.len() {
        assert!(
            Instant::now() < deadline,
            "the static member's partitions never came back"
        );
        let _ = tokio::time::timeout(Duration::from_millis(200), again.poll()).await;
        let _ = tokio::time::timeout(Duration::from_millis(200), dynamic.poll()).await;
    }
    assert_eq!(again.assignment(), had);
    assert_eq!(dynamic.assignment(), kept);
}
