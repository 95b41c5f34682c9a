//! Consumer groups mixing the Apache Kafka Java client (kafka-clients 3.9.1, the reference for
//! the group protocol) and kingest's `GroupConsumer`, classic protocol, on nisshi and on
//! testkit: with the `range` assignor, with `cooperative-sticky`, and with static members
//! (`group.instance.id`, range).
//!
//! Each test produces 200,000 records over 8 partitions with kingest's producer, then runs a
//! group through joins, a clean leave (or, for static members, restarts that keep the member's
//! partitions), a `kill -9` of a Java member and a kingest member dropped without leaving, until
//! everything is committed. Members commit synchronously after processing each batch. The check
//! (`kingest_tests::groups::timeline`, where "exactly once" is defined) replays every member's
//! records, commits and assignment changes: commits tile every partition from 0 to its end with
//! no gap and no overlap, no partition is owned by two members at once, and the group's
//! committed offsets, read by the Java client, equal the end offsets.
//!
//! The last tests start a second static member with the first one's instance id (Java after
//! Java, Java after kingest): the first must be fenced (`FENCED_INSTANCE_ID`) and the second
//! keep every partition.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kingest_client::consumer::OffsetReset;
use kingest_client::group::consumer::{AssignorKind, GroupConsumerConfig};
use kingest_client::producer::{Producer, ProducerConfig, ProducerRecord};
use kingest_client::{Client, ClientConfig};
use kingest_testkit::Cluster;
use kingest_tests::groups::members::{JavaMember, JavaMemberOptions, KingestMember};
use kingest_tests::groups::timeline::{check, render, Board};
use kingest_tests::peers::cluster::start_cluster;
use kingest_tests::peers::java::{args, JavaPeer};
use kingest_tests::peers::nisshi::Nisshi;

const TOPIC: &str = "mixed";
const GROUP: &str = "mixed-group";
const PARTITIONS: i32 = 8;
const RECORDS: i64 = 200_000;
/// Processing time per record: a member handles at most 5,000 records a second, so the topic
/// takes several seconds to consume and the membership changes happen while it is.
const PROCESS_US: u64 = 200;

enum Broker {
    Nisshi(Nisshi),
    Testkit(Cluster),
}

impl Broker {
    async fn start(nisshi: bool) -> Broker {
        let b = if nisshi {
            Broker::Nisshi(Nisshi::start())
        } else {
            Broker::Testkit(start_cluster(1).await)
        };
        match &b {
            Broker::Nisshi(n) => n.create_topic(TOPIC, PARTITIONS as u32),
            Broker::Testkit(c) => c.create_topic(TOPIC, PARTITIONS).unwrap(),
        }
        b
    }

    fn bootstrap(&self) -> String {
        match self {
            Broker::Nisshi(n) => n.addr(),
            Broker::Testkit(c) => c.bootstrap(),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Range,
    CooperativeSticky,
    /// Static members, range.
    Static,
}

/// Record `i` goes to partition `i % PARTITIONS`, so its offset there is `i / PARTITIONS`.
fn value_of(p: i32, o: i64) -> String {
    (o * i64::from(PARTITIONS) + i64::from(p)).to_string()
}

async fn produce(bootstrap: &str) {
    let client = Client::connect(ClientConfig::new(bootstrap)).await.unwrap();
    let producer = Producer::new(client, ProducerConfig::default()).unwrap();
    let mut deliveries = Vec::new();
    for i in 0..RECORDS {
        let p = (i % i64::from(PARTITIONS)) as i32;
        let d = producer
            .send(ProducerRecord::new(TOPIC, i.to_string()).with_partition(p))
            .await
            .unwrap();
        deliveries.push(d);
    }
    producer.flush().await;
    for (i, d) in deliveries.into_iter().enumerate() {
        let m = d
            .await
            .unwrap_or_else(|e| panic!("record {i} not delivered: {e}"));
        assert_eq!(m.offset, i as i64 / i64::from(PARTITIONS), "record {i}");
    }
    producer.close().await.unwrap();
}

struct Group {
    bootstrap: String,
    mode: Mode,
    board: Arc<Board>,
    session: Duration,
}

impl Group {
    fn java(&self, name: &str) -> JavaMember {
        let o = JavaMemberOptions {
            bootstrap: self.bootstrap.clone(),
            topic: TOPIC.to_owned(),
            group: GROUP.to_owned(),
            strategy: match self.mode {
                Mode::CooperativeSticky => "cooperative-sticky",
                _ => "range",
            }
            .to_owned(),
            protocol: "classic".to_owned(),
            instance: self.instance(name),
            session_ms: self.session.as_millis() as u64,
            process_us: PROCESS_US,
        };
        let b = self.board.clone();
        JavaMember::start(name, b, &o)
    }

    async fn kingest(&self, name: &str) -> KingestMember {
        let client = Client::connect(ClientConfig::new(&self.bootstrap))
            .await
            .unwrap();
        let mut c = GroupConsumerConfig::new(GROUP, &[TOPIC]);
        c.assignors = vec![match self.mode {
            Mode::CooperativeSticky => AssignorKind::CooperativeSticky,
            _ => AssignorKind::Range,
        }];
        c.instance_id = self.instance(name);
        c.session_timeout = self.session;
        c.heartbeat_interval = Duration::from_millis(500);
        c.rebalance_timeout = Duration::from_secs(20);
        c.auto_commit = false;
        c.consumer.offset_reset = OffsetReset::Earliest;
        // Batches of about a thousand records, as the Java members' 500-record polls: a poll
        // then takes a fraction of a second to process, not the whole topic at once.
        c.consumer.max_partition_fetch_bytes = 16 * 1024;
        c.consumer.fetch_max_bytes = 32 * 1024;
        KingestMember::start(name, self.board.clone(), client, c, TOPIC, PROCESS_US)
    }

    /// Static members: the instance id is the name without its restart suffix.
    fn instance(&self, name: &str) -> Option<String> {
        (self.mode == Mode::Static).then(|| name.split('.').next().unwrap_or(name).to_owned())
    }

    async fn wait(&self, what: &str, done: impl Fn(&Board) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(180);
        while !done(&self.board) {
            if Instant::now() >= deadline {
                dump(&self.board);
            }
            assert!(
                Instant::now() < deadline,
                "waited 180 s for {what}; {} of {RECORDS} records committed ({:?}); logs' ends: {}",
                self.board.progress(),
                self.board.committed(),
                summary(&self.board)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until `n` records are committed, and checks the topic is not done yet (so what
    /// follows happens during consumption).
    async fn wait_progress(&self, n: i64, next: &str) {
        self.wait(&format!("{n} records committed"), |b| b.progress() >= n)
            .await;
        assert!(
            self.board.progress() < RECORDS,
            "the topic was consumed before: {next}"
        );
    }

    /// Waits until each member named has committed something (it got partitions and works).
    async fn wait_working(&self, members: &[&str]) {
        for m in members {
            self.wait(&format!("{m} to commit"), |b| b.committed_by(m) > 0)
                .await;
        }
    }

    /// Waits until the members named own every partition between them.
    async fn wait_stable(&self, members: &[&str]) {
        self.wait(&format!("{members:?} to own every partition"), |b| {
            let owned: usize = members.iter().map(|m| b.assignment(m).len()).sum();
            owned == PARTITIONS as usize
        })
        .await;
    }
}

/// Writes every member's log to a file named in the output, for a failing test.
fn dump(board: &Board) {
    let path = std::env::temp_dir().join(format!(
        "group_java-{}-{}.log",
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
                .filter(|e| !matches!(e, kingest_tests::groups::timeline::Event::Record { .. }))
                .take(8)
                .map(|e| format!("{e:?}"))
                .collect();
            format!("\n  {name} (owns {:?}): {tail:?}", board.assignment(name))
        })
        .collect()
}

async fn run(nisshi: bool, mode: Mode) {
    let started = Instant::now();
    let broker = Broker::start(nisshi).await;
    let bootstrap = broker.bootstrap();
    produce(&bootstrap).await;
    let produced = started.elapsed();
    let g = Group {
        bootstrap: bootstrap.clone(),
        mode,
        board: Arc::new(Board::default()),
        // Static members restart within the session, so it is longer for them.
        session: Duration::from_secs(if mode == Mode::Static { 10 } else { 6 }),
    };
    let peer = JavaPeer::get();

    let j0 = g.java("j0");
    let k0 = g.kingest("k0").await;
    g.wait_working(&["j0", "k0"]).await;
    g.wait_progress(RECORDS / 10, "j1 and k1 join").await;
    let j1 = g.java("j1");
    let k1 = g.kingest("k1").await;
    g.wait_working(&["j1", "k1"]).await;

    let (k0, j1, k1) = if mode == Mode::Static {
        // Restarts within the session timeout: each comes back with the partitions it had.
        g.wait_stable(&["j0", "k0", "j1", "k1"]).await;
        let before = (g.board.assignment("j1"), g.board.assignment("k1"));
        tokio::task::spawn_blocking(move || j1.stop())
            .await
            .unwrap();
        let j1 = g.java("j1.2");
        k1.stop().await;
        let k1 = g.kingest("k1.2").await;
        g.wait_working(&["j1.2", "k1.2"]).await;
        assert_eq!(
            (g.board.assignment("j1.2"), g.board.assignment("k1.2")),
            before,
            "restarted static members got other partitions: {}",
            summary(&g.board)
        );
        (Some(k0), j1, k1)
    } else {
        g.wait_progress(RECORDS * 3 / 10, "k0 leaves").await;
        k0.stop().await;
        (None, j1, k1)
    };

    g.wait_progress(RECORDS * 4 / 10, "j0 is killed").await;
    tokio::task::spawn_blocking(move || j0.kill())
        .await
        .unwrap();
    g.wait_progress(RECORDS * 5 / 10, "j2 joins").await;
    let j2 = g.java("j2");
    g.wait_working(&[j2.name()]).await;
    g.wait_progress(RECORDS * 6 / 10, "k1 crashes").await;
    k1.crash().await;

    g.wait("every record committed", |b| b.progress() >= RECORDS)
        .await;
    let consumed = started.elapsed();
    let mut stops = vec![
        tokio::task::spawn_blocking(move || j1.stop()),
        tokio::task::spawn_blocking(move || j2.stop()),
    ];
    if let Some(k0) = k0 {
        k0.stop().await;
    }
    for s in stops.drain(..) {
        s.await.unwrap();
    }

    let lines = peer
        .run_async(
            "committed",
            args(&[
                ("bootstrap", &bootstrap),
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
    assert_eq!(end.len(), PARTITIONS as usize, "{lines:?}");
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
    // Every member took part: each committed something.
    for name in logs.keys() {
        assert!(
            g.board.committed_by(name) > 0,
            "{name} never committed: {}",
            summary(&g.board)
        );
    }
    eprintln!(
        "{} {mode:?}: produced in {produced:?}, consumed by {consumed:?}, done in {:?}",
        if nisshi { "nisshi" } else { "testkit" },
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nisshi_range_java_and_kingest_members_consume_exactly_once() {
    run(true, Mode::Range).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nisshi_cooperative_sticky_java_and_kingest_members_consume_exactly_once() {
    run(true, Mode::CooperativeSticky).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nisshi_static_java_and_kingest_members_consume_exactly_once() {
    run(true, Mode::Static).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn testkit_range_java_and_kingest_members_consume_exactly_once() {
    run(false, Mode::Range).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn testkit_cooperative_sticky_java_and_kingest_members_consume_exactly_once() {
    run(false, Mode::CooperativeSticky).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn testkit_static_java_and_kingest_members_consume_exactly_once() {
    run(false, Mode::Static).await;
}

/// KIP-345 fencing, as Kafka's coordinator does it: a second static member with the same
/// `group.instance.id` takes the identity over, and the first one's next request (heartbeat,
/// commit, sync) is answered `FENCED_INSTANCE_ID`, which the Java client treats as fatal. Were it
/// answered `UNKNOWN_MEMBER_ID`, the first member would rejoin under the instance id and fence
/// the second, and so on: two live processes taking the identity from each other.
async fn a_second_static_member_fences_the_first(nisshi: bool) {
    let broker = Broker::start(nisshi).await;
    let g = Group {
        bootstrap: broker.bootstrap(),
        mode: Mode::Static,
        board: Arc::new(Board::default()),
        session: Duration::from_secs(10),
    };
    let first = g.java("s.1");
    g.wait("s.1 to get partitions", |b| !b.assignment("s.1").is_empty())
        .await;
    let second = g.java("s.2");
    g.wait("s.2 to get partitions", |b| !b.assignment("s.2").is_empty())
        .await;
    let (status, stderr) = tokio::task::spawn_blocking(move || {
        first.wait_exit(Duration::from_secs(30)).map_err(|m| {
            m.kill();
        })
    })
    .await
    .unwrap()
    .unwrap_or_else(|()| {
        panic!(
            "the first member was not fenced within 30 s: {}",
            summary(&g.board)
        )
    });
    assert!(
        !status.success() && stderr.contains("FencedInstanceIdException"),
        "the first member ended with {status}:\n{stderr}"
    );
    // The second keeps every partition and was never told to give any up.
    let owned = g.board.assignment("s.2");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(owned.len(), PARTITIONS as usize, "{}", summary(&g.board));
    assert_eq!(g.board.assignment("s.2"), owned, "{}", summary(&g.board));
    let logs = g.board.logs();
    let revoked = logs["s.2"].events.iter().any(|e| {
        matches!(
            e,
            kingest_tests::groups::timeline::Event::Revoked { partitions, .. } if !partitions.is_empty()
        ) || matches!(e, kingest_tests::groups::timeline::Event::Lost { .. })
    });
    assert!(!revoked, "{}", render(&logs));
    tokio::task::spawn_blocking(move || second.stop())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nisshi_a_second_static_member_fences_the_first() {
    a_second_static_member_fences_the_first(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn testkit_a_second_static_member_fences_the_first() {
    a_second_static_member_fences_the_first(false).await;
}

/// The same with a kingest static member first and a Java one taking its instance id over:
/// kingest's member must stop at the fencing (its polls fail with `FENCED_INSTANCE_ID`) rather
/// than rejoin and take the identity back.
async fn java_fences_a_kingest_static_member(nisshi: bool) {
    let broker = Broker::start(nisshi).await;
    let g = Group {
        bootstrap: broker.bootstrap(),
        mode: Mode::Static,
        board: Arc::new(Board::default()),
        session: Duration::from_secs(10),
    };
    let first = g.kingest("s.1").await;
    g.wait("s.1 to get partitions", |b| !b.assignment("s.1").is_empty())
        .await;
    let second = g.java("s.2");
    g.wait("s.2 to get partitions", |b| !b.assignment("s.2").is_empty())
        .await;
    g.wait("s.1 to be fenced", |b| {
        b.logs()["s.1"].events.iter().any(|e| {
            matches!(e, kingest_tests::groups::timeline::Event::Error { error, .. }
                if error.contains("FENCED_INSTANCE_ID") || error.contains("FencedInstanceId"))
        })
    })
    .await;
    let owned = g.board.assignment("s.2");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(owned.len(), PARTITIONS as usize, "{}", summary(&g.board));
    assert_eq!(g.board.assignment("s.2"), owned, "{}", summary(&g.board));
    let logs = g.board.logs();
    let gave_up = logs["s.2"].events.iter().any(|e| {
        matches!(
            e,
            kingest_tests::groups::timeline::Event::Revoked { partitions, .. } if !partitions.is_empty()
        ) || matches!(e, kingest_tests::groups::timeline::Event::Lost { .. })
    });
    assert!(!gave_up, "{}", render(&logs));
    first.crash().await;
    tokio::task::spawn_blocking(move || second.stop())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nisshi_java_fences_a_kingest_static_member() {
    java_fences_a_kingest_static_member(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn testkit_java_fences_a_kingest_static_member() {
    java_fences_a_kingest_static_member(false).await;
}
