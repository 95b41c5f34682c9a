//! One consumer group on nisshi shared by three kingest members and two librdkafka members,
//! on a 12-partition topic of 200,000 records. Members join, one leaves cleanly, one crashes
//! (dropped without LeaveGroup, so its session times out). Each member "processes" a record by
//! adding it to its pending set and makes it count only when its commit succeeds — commit after
//! processing — so a record counted twice would be a duplicate delivery after a commit, and a
//! record never counted would be a loss. Every record must be counted exactly once, and no
//! partition may be owned by two members at once.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kingest_client::consumer::OffsetReset;
use kingest_client::group::consumer::{
    AssignorKind, GroupConsumer, GroupConsumerConfig, GroupEvent,
};
use kingest_client::{Client, ClientConfig};
use kingest_tests::peers::nisshi::Nisshi;
use rdkafka::config::ClientConfig as RdConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::ClientContext;

const TOPIC: &str = "mixed";
const PARTITIONS: i32 = 12;
const RECORDS: usize = 200_000;
const GROUP: &str = "mixed-group";

/// What every member reports to: counted records and current partition owners.
#[derive(Default)]
struct Ledger {
    counts: Mutex<HashMap<u32, u32>>,
    owners: Mutex<HashMap<i32, String>>,
    violations: Mutex<Vec<String>>,
}

impl Ledger {
    fn assigned(&self, member: &str, partitions: &[i32]) {
        let mut owners = self.owners.lock().unwrap();
        for p in partitions {
            if let Some(other) = owners.insert(*p, member.to_owned()) {
                if other != member {
                    self.violations.lock().unwrap().push(format!(
                        "partition {p} given to {member} while {other} owns it"
                    ));
                }
            }
        }
    }

    fn released(&self, member: &str, partitions: &[i32]) {
        let mut owners = self.owners.lock().unwrap();
        for p in partitions {
            if owners.get(p).map(String::as_str) == Some(member) {
                owners.remove(p);
            }
        }
    }

    fn release_all(&self, member: &str) {
        self.owners.lock().unwrap().retain(|_, m| m != member);
    }

    fn count(&self, values: &[u32]) {
        let mut c = self.counts.lock().unwrap();
        for v in values {
            *c.entry(*v).or_default() += 1;
        }
    }

    fn total(&self) -> usize {
        self.counts.lock().unwrap().len()
    }
}

fn produce(bootstrap: &str) {
    let p: BaseProducer = RdConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "20")
        .set("batch.num.messages", "2000")
        .set("compression.type", "lz4")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .unwrap();
    for i in 0..RECORDS as u32 {
        let v = i.to_string();
        let mut r = Some(
            BaseRecord::<(), _>::to(TOPIC)
                .payload(&v)
                .partition((i % PARTITIONS as u32) as i32),
        );
        while let Some(rec) = r.take() {
            if let Err((_, rec)) = p.send(rec) {
                p.poll(Duration::from_millis(5));
                r = Some(rec);
            }
        }
    }
    p.flush(Duration::from_secs(120)).unwrap();
}

/// A kingest member; returns when `stop` is set (cleanly: commit and leave) or, if `crash` is
/// set, by dropping the consumer without leaving.
async fn kingest_member(
    name: String,
    bootstrap: String,
    ledger: Arc<Ledger>,
    stop: Arc<AtomicBool>,
    crash: Arc<AtomicBool>,
) {
    let client = Client::connect(ClientConfig::new(&bootstrap))
        .await
        .unwrap();
    let mut config = GroupConsumerConfig::new(GROUP, &[TOPIC]);
    config.assignors = vec![AssignorKind::Range];
    config.session_timeout = Duration::from_secs(6);
    config.heartbeat_interval = Duration::from_millis(500);
    config.rebalance_timeout = Duration::from_secs(20);
    config.auto_commit = false;
    config.consumer.offset_reset = OffsetReset::Earliest;
    let mut member = GroupConsumer::new(client, config).unwrap();
    loop {
        if crash.load(Ordering::SeqCst) {
            ledger.release_all(&name);
            drop(member); // no commit, no LeaveGroup: the session must time out
            return;
        }
        if stop.load(Ordering::SeqCst) {
            ledger.release_all(&name);
            member.close().await.unwrap();
            return;
        }
        let event = match tokio::time::timeout(Duration::from_millis(300), member.poll()).await {
            Ok(e) => e.unwrap(),
            Err(_) => continue,
        };
        match event {
            GroupEvent::Assigned(ps) => {
                ledger.assigned(&name, &ps.iter().map(|(_, p)| *p).collect::<Vec<_>>())
            }
            GroupEvent::Revoked(ps) | GroupEvent::Lost(ps) => {
                ledger.released(&name, &ps.iter().map(|(_, p)| *p).collect::<Vec<_>>())
            }
            GroupEvent::Records(fetched) => {
                let pending: Vec<u32> = fetched
                    .records()
                    .map(|r| {
                        std::str::from_utf8(r.record.value.unwrap())
                            .unwrap()
                            .parse()
                            .unwrap()
                    })
                    .collect();
                // Count only what is committed: a commit refused after a rebalance means another
                // member will deliver these again.
                if member.commit().await.is_ok() {
                    ledger.count(&pending);
                }
            }
        }
    }
}

struct Tracking {
    name: String,
    ledger: Arc<Ledger>,
}

impl ClientContext for Tracking {}

impl ConsumerContext for Tracking {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            self.ledger.released(
                &self.name,
                &tpl.elements()
                    .iter()
                    .map(|e| e.partition())
                    .collect::<Vec<_>>(),
            );
        }
    }
    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            self.ledger.assigned(
                &self.name,
                &tpl.elements()
                    .iter()
                    .map(|e| e.partition())
                    .collect::<Vec<_>>(),
            );
        }
    }
}

fn librdkafka_member(name: String, bootstrap: String, ledger: Arc<Ledger>, stop: Arc<AtomicBool>) {
    let c: BaseConsumer<Tracking> = RdConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", GROUP)
        .set("partition.assignment.strategy", "range")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "500")
        .create_with_context(Tracking {
            name: name.clone(),
            ledger: ledger.clone(),
        })
        .unwrap();
    c.subscribe(&[TOPIC]).unwrap();
    while !stop.load(Ordering::SeqCst) {
        let mut pending = Vec::new();
        for _ in 0..500 {
            match c.poll(Duration::from_millis(20)) {
                Some(Ok(m)) => pending.push(
                    std::str::from_utf8(m.payload().unwrap())
                        .unwrap()
                        .parse::<u32>()
                        .unwrap(),
                ),
                Some(Err(_)) | None => break,
            }
        }
        if !pending.is_empty() && c.commit_consumer_state(CommitMode::Sync).is_ok() {
            ledger.count(&pending);
        }
    }
    ledger.release_all(&name);
    c.unsubscribe();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_kingest_and_two_librdkafka_members_consume_everything_exactly_once() {
    let broker = Nisshi::start();
    broker.create_topic(TOPIC, PARTITIONS as u32);
    let bootstrap = broker.addr();
    let b = bootstrap.clone();
    tokio::task::spawn_blocking(move || produce(&b))
        .await
        .unwrap();

    let ledger = Arc::new(Ledger::default());
    let stop_all = Arc::new(AtomicBool::new(false));
    let flags: Vec<(Arc<AtomicBool>, Arc<AtomicBool>)> = (0..3)
        .map(|_| {
            (
                Arc::new(AtomicBool::new(false)),
                Arc::new(AtomicBool::new(false)),
            )
        })
        .collect();
    let mut tasks = Vec::new();
    let spawn_kingest = |i: usize, tasks: &mut Vec<tokio::task::JoinHandle<()>>| {
        tasks.push(tokio::spawn(kingest_member(
            format!("kingest-{i}"),
            bootstrap.clone(),
            ledger.clone(),
            flags[i].0.clone(),
            flags[i].1.clone(),
        )));
    };
    let spawn_rd = |i: usize, tasks: &mut Vec<tokio::task::JoinHandle<()>>| {
        let (b, l, s) = (bootstrap.clone(), ledger.clone(), stop_all.clone());
        tasks.push(tokio::task::spawn_blocking(move || {
            librdkafka_member(format!("librdkafka-{i}"), b, l, s)
        }));
    };
    // Two kingest members and one librdkafka member start; the rest join once work is under way.
    spawn_kingest(0, &mut tasks);
    spawn_kingest(1, &mut tasks);
    spawn_rd(0, &mut tasks);
    let wait_for = |n: usize| {
        let ledger = ledger.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(120);
            while ledger.total() < n {
                assert!(
                    Instant::now() < deadline,
                    "stuck at {} records",
                    ledger.total()
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    wait_for(30_000).await;
    spawn_kingest(2, &mut tasks);
    spawn_rd(1, &mut tasks);
    wait_for(80_000).await;
    flags[0].0.store(true, Ordering::SeqCst); // kingest-0 leaves cleanly
    wait_for(120_000).await;
    flags[1].1.store(true, Ordering::SeqCst); // kingest-1 crashes
    wait_for(RECORDS).await;
    stop_all.store(true, Ordering::SeqCst);
    flags[2].0.store(true, Ordering::SeqCst);
    for t in tasks {
        t.await.unwrap();
    }

    let counts = ledger.counts.lock().unwrap();
    let duplicates: Vec<(&u32, &u32)> = counts.iter().filter(|(_, n)| **n != 1).take(10).collect();
    assert!(
        duplicates.is_empty(),
        "records counted more than once: {duplicates:?}"
    );
    let missing: Vec<u32> = (0..RECORDS as u32)
        .filter(|v| !counts.contains_key(v))
        .take(10)
        .collect();
    assert!(missing.is_empty(), "records never counted: {missing:?}");
    assert_eq!(counts.len(), RECORDS);
    let violations = ledger.violations.lock().unwrap();
    assert!(violations.is_empty(), "{violations:?}");
    let _: BTreeMap<i32, i32> = BTreeMap::new();
    let _: HashSet<i32> = HashSet::new();
}
