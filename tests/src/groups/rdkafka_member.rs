//! A librdkafka consumer-group member (through the `rdkafka` crate) for the mixed-group tests,
//! behaving as the Java and kingest members do: it reports every record to a [`Board`], spends a
//! fixed time per record, commits synchronously after each batch, and reports its assignment
//! changes from librdkafka's rebalance callbacks (before the partitions are handed back, so a
//! revocation is on the board before the broker can give the partitions to anyone else).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rdkafka::config::ClientConfig as RdConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::message::Message;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use super::timeline::{now_micros, Board, Event};

/// How a librdkafka member is started.
#[derive(Debug, Clone)]
pub struct RdMemberOptions {
    /// The broker.
    pub bootstrap: String,
    /// The topic subscribed to.
    pub topic: String,
    /// `group.id`.
    pub group: String,
    /// `group.protocol`: `classic` or `consumer` (KIP-848).
    pub protocol: String,
    /// `group.remote.assignor` (consumer protocol), `None` for the broker's default.
    pub remote_assignor: Option<String>,
    /// `group.instance.id`.
    pub instance: Option<String>,
    /// Processing time per record, in microseconds.
    pub process_us: u64,
}

/// Reports rebalances to the board and forgets what was processed on revoked partitions.
struct Ctx {
    name: String,
    board: Arc<Board>,
    pending: Arc<Mutex<BTreeMap<i32, i64>>>,
}

impl ClientContext for Ctx {}

impl ConsumerContext for Ctx {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            let partitions: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
            let mut pending = self.pending.lock().unwrap();
            for p in &partitions {
                pending.remove(p);
            }
            let t = now_micros();
            let event = if consumer.assignment_lost() {
                Event::Lost { t, partitions }
            } else {
                Event::Revoked { t, partitions }
            };
            self.board.push(&self.name, event);
        }
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => {
                let partitions: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
                // The start is looked up later (committed offset or reset): unknown here.
                let positions = vec![-1; partitions.len()];
                self.board.push(
                    &self.name,
                    Event::Assigned {
                        t: now_micros(),
                        partitions,
                        positions,
                    },
                );
            }
            Rebalance::Error(e) => self.board.push(
                &self.name,
                Event::Error {
                    t: now_micros(),
                    error: format!("rebalance: {e}"),
                },
            ),
            Rebalance::Revoke(_) => {}
        }
    }
}

/// A librdkafka member, on its own thread (librdkafka blocks).
pub struct RdMember {
    name: String,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl RdMember {
    /// Starts a member named `name` on the board.
    pub fn start(name: &str, board: Arc<Board>, o: &RdMemberOptions) -> RdMember {
        let stop = Arc::new(AtomicBool::new(false));
        let pending = Arc::new(Mutex::new(BTreeMap::new()));
        let mut config = RdConfig::new();
        config
            .set("bootstrap.servers", &o.bootstrap)
            .set("group.id", &o.group)
            .set("group.protocol", &o.protocol)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            // Small fetches: records arrive in batches as the other members' do.
            .set("max.partition.fetch.bytes", "16384");
        if let Some(a) = &o.remote_assignor {
            config.set("group.remote.assignor", a);
        }
        if let Some(i) = &o.instance {
            config.set("group.instance.id", i);
        }
        let consumer: BaseConsumer<Ctx> = config
            .create_with_context(Ctx {
                name: name.to_owned(),
                board: board.clone(),
                pending: pending.clone(),
            })
            .unwrap_or_else(|e| panic!("librdkafka member {name}: {e}"));
        consumer
            .subscribe(&[&o.topic])
            .unwrap_or_else(|e| panic!("librdkafka member {name} subscribe: {e}"));
        let (n, flag, topic, process_us) =
            (name.to_owned(), stop.clone(), o.topic.clone(), o.process_us);
        let thread = std::thread::spawn(move || {
            run(&n, &board, &consumer, &topic, process_us, &flag, &pending);
            // Dropping closes the consumer: the revocation callback runs, then it leaves.
            drop(consumer);
            board.push(&n, Event::Closed { t: now_micros() });
        });
        RdMember {
            name: name.to_owned(),
            stop,
            thread: Some(thread),
        }
    }

    /// The member's name on the board.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Closes the consumer (it leaves the group) and waits for it.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().expect("the librdkafka member's thread");
        }
    }
}

impl Drop for RdMember {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn run(
    name: &str,
    board: &Board,
    consumer: &BaseConsumer<Ctx>,
    topic: &str,
    process_us: u64,
    stop: &AtomicBool,
    pending: &Mutex<BTreeMap<i32, i64>>,
) {
    while !stop.load(Ordering::SeqCst) {
        // One poll's worth of records: the first message waits, the rest are what is queued.
        let mut n = 0u64;
        let mut wait = Duration::from_millis(200);
        while n < 1000 {
            match consumer.poll(wait) {
                None => break,
                Some(Err(e)) => {
                    board.push(
                        name,
                        Event::Error {
                            t: now_micros(),
                            error: format!("poll: {e}"),
                        },
                    );
                    break;
                }
                Some(Ok(m)) => {
                    let value = m
                        .payload()
                        .map(|v| String::from_utf8_lossy(v).into_owned())
                        .unwrap_or_default();
                    board.push(
                        name,
                        Event::Record {
                            partition: m.partition(),
                            offset: m.offset(),
                            value,
                        },
                    );
                    pending
                        .lock()
                        .unwrap()
                        .insert(m.partition(), m.offset() + 1);
                    n += 1;
                }
            }
            wait = Duration::ZERO;
        }
        std::thread::sleep(Duration::from_micros(process_us * n));
        // A refused commit is retried after the next poll, records or not.
        let offsets = pending.lock().unwrap().clone();
        if offsets.is_empty() {
            continue;
        }
        let mut tpl = TopicPartitionList::new();
        for (p, o) in &offsets {
            if tpl
                .add_partition_offset(topic, *p, Offset::Offset(*o))
                .is_err()
            {
                continue;
            }
        }
        match consumer.commit(&tpl, CommitMode::Sync) {
            Ok(()) => {
                let mut pending = pending.lock().unwrap();
                // Only what is still pending as committed (a revocation may have come between).
                let done: BTreeMap<i32, i64> = offsets
                    .into_iter()
                    .filter(|(p, o)| pending.get(p) == Some(o))
                    .collect();
                for p in done.keys() {
                    pending.remove(p);
                }
                board.push(
                    name,
                    Event::Committed {
                        t: now_micros(),
                        offsets: done,
                    },
                );
            }
            Err(e) => board.push(
                name,
                Event::CommitFailed {
                    t: now_micros(),
                    error: e.to_string(),
                },
            ),
        }
    }
}
