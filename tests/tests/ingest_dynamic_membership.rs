//! Restarts without static membership (issue 12): jobs whose processes are dynamic group
//! members, as most users run them (no `group.instance.id`, the default 10 s session).
//!
//! A killed dynamic member stays in the group until its session expires, and may even be given
//! partitions in the meantime (a process killed while its JoinGroup waited is counted as
//! joined). So a restarted process may own only part of the topic for a while, and
//! `kingest run --until-eof` must not take "my partitions are read" for "everything is read".
//! These tests check, against nisshi with each sink:
//!
//! - the scenario: a 6-partition topic receiving records, `kingest run` killed with
//!   SIGKILL at random moments 3.5-7 s apart, eight times, then `--until-eof`: it must exit 0
//!   only with every record written exactly once and no lag left (Parquet and PostgreSQL);
//! - the same kill loop with a second process running alongside all the time;
//! - `--until-eof` starting while a live member (librdkafka, an independent client) holds half
//!   the partitions and writes none: it waits, says which partitions it waits for and who holds
//!   them, and takes them over when that member leaves; with `--eof-timeout` it gives up and
//!   names them.
//!
//! Kill moments come from fixed-seed generators (override with `KINGEST_SIGKILL_SEED`), printed
//! with any failure.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kingest_tests::ingest::job::{parquet_sink, source, write_job, PARTITION_OFFSET_COLUMNS};
use kingest_tests::ingest::kill::{click, click_page, Kills, CLICK_COLUMNS};
use kingest_tests::ingest::{
    exactly_once, kingest, kingest_binary, log_tail, produce, read_dir, wait_for, Cell, Job,
};
use kingest_tests::peers::nisshi::Nisshi;
use kingest_tests::peers::postgres::Postgres;
use rdkafka::consumer::{BaseConsumer, Consumer};

const TOPIC: &str = "clicks";
const PARTITIONS: i32 = 6;
const KILLS: usize = 8;

/// Where a job writes: a Parquet directory or a PostgreSQL table.
enum Out {
    Parquet(PathBuf),
    Postgres(Postgres),
}

impl Out {
    fn sink(&self) -> String {
        match self {
            Out::Parquet(dir) => parquet_sink(dir),
            Out::Postgres(pg) => format!(
                "\n[sink]\ntype = \"postgres\"\nurl = \"{}\"\ntable = \"clicks\"\n",
                pg.url()
            ),
        }
    }

    /// Every row's record id by (partition, offset); panics on a row stored twice.
    fn rows(&self, end: &BTreeMap<i32, i64>, context: &str) -> BTreeMap<(i32, i64), i64> {
        match self {
            Out::Parquet(dir) => exactly_once(&read_dir(dir), TOPIC, end, "partition", "offset")
                .into_iter()
                .map(|(at, row)| match row.get("id") {
                    Some(Cell::Int(id)) => (at, *id),
                    other => panic!("{at:?}: id {other:?}; {context}"),
                })
                .collect(),
            Out::Postgres(pg) => {
                let mut rows = BTreeMap::new();
                for r in pg.psql("SELECT partition, \"offset\", id, page FROM clicks") {
                    let f: Vec<&str> = r.split('\x1f').collect();
                    let at = (f[0].parse().unwrap(), f[1].parse().unwrap());
                    let id: i64 = f[2].parse().unwrap();
                    assert_eq!(f[3], click_page(id), "{at:?}; {context}");
                    assert!(rows.insert(at, id).is_none(), "{at:?} twice; {context}");
                }
                rows
            }
        }
    }
}

/// A broker with the topic, the sink, and the job (dynamic membership: no
/// `group.instance.id`) reading the topic as `group` into it.
struct Setup {
    broker: Nisshi,
    out: Out,
    work: tempfile::TempDir,
    config: PathBuf,
    log: PathBuf,
}

impl Setup {
    fn new(group: &str, postgres: bool) -> Setup {
        let broker = Nisshi::start();
        broker.create_topic(TOPIC, PARTITIONS as u32);
        let work = tempfile::tempdir().unwrap();
        let out = if postgres {
            Out::Postgres(Postgres::start())
        } else {
            Out::Parquet(work.path().join("out"))
        };
        // Several flushes per run, so kills land among commits.
        let text = format!(
            "{}{CLICK_COLUMNS}{PARTITION_OFFSET_COLUMNS}\n[flush]\nrows = 2000\nage = \"500ms\"\n{}",
            source(&broker.addr(), TOPIC, group),
            out.sink()
        );
        let config = write_job(work.path(), &text);
        let log = work.path().join("kingest.log");
        kingest_binary();
        if postgres {
            let done = kingest(&["setup", config.to_str().unwrap()])
                .output()
                .unwrap();
            assert!(
                done.status.success(),
                "kingest setup: {}",
                String::from_utf8_lossy(&done.stderr)
            );
        }
        Setup {
            broker,
            out,
            work,
            config,
            log,
        }
    }

    /// Checks the sink holds exactly `produced` (each record once, with its content), and that
    /// `kingest check` reports no lag on any partition.
    fn check(&self, produced: &BTreeMap<(i32, i64), i64>, context: &str) {
        let mut end: BTreeMap<i32, i64> = BTreeMap::new();
        for (p, o) in produced.keys() {
            let e = end.entry(*p).or_insert(0);
            *e = (*e).max(o + 1);
        }
        let rows = self.out.rows(&end, context);
        let missing: Vec<_> = produced.keys().filter(|k| !rows.contains_key(k)).collect();
        assert!(
            missing.is_empty(),
            "{} of {} records missing (first {:?}); {context}",
            missing.len(),
            produced.len(),
            missing.first()
        );
        assert_eq!(&rows, produced, "{context}");
        let status = check_json(&self.config);
        assert_eq!(status["total_lag"], 0, "{status}; {context}");
        for p in status["partitions"].as_array().unwrap() {
            let want = end[&(p["partition"].as_i64().unwrap() as i32)];
            assert_eq!(p["sink"], want, "{status}; {context}");
            assert_eq!(p["lag"], 0, "{status}; {context}");
        }
    }
}

/// `kingest check CONFIG --json`, with the total lag added as `total_lag`.
fn check_json(config: &Path) -> serde_json::Value {
    let out = kingest(&["check", config.to_str().unwrap(), "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kingest check: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let total: i64 = status["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["lag"].as_i64().unwrap())
        .sum();
    status["total_lag"] = total.into();
    status
}

/// Records arriving all along, about 2,000 a second, from a producer of their own; what was
/// produced is noted by (partition, offset).
struct Producer {
    produced: Arc<Mutex<BTreeMap<(i32, i64), i64>>>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Producer {
    fn start(addr: String, first: usize) -> Producer {
        let produced: Arc<Mutex<BTreeMap<(i32, i64), i64>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let task = {
            let (produced, stop) = (produced.clone(), stop.clone());
            tokio::spawn(async move {
                let mut next = 0;
                while !stop.load(Ordering::SeqCst) {
                    let n = if next == 0 { first } else { 200 };
                    let batch: Vec<_> = (next..next + n).map(|i| click(i, PARTITIONS)).collect();
                    let at = produce(&addr, TOPIC, &batch).await;
                    let ids = (next..next + n).map(|i| i as i64);
                    produced.lock().unwrap().extend(at.into_iter().zip(ids));
                    next += n;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            })
        };
        Producer {
            produced,
            stop,
            task,
        }
    }

    async fn stop(self) -> BTreeMap<(i32, i64), i64> {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.unwrap();
        std::mem::take(&mut *self.produced.lock().unwrap())
    }
}

/// The loop: `kingest run` killed `KILLS` times at random moments 3.5-7 s after its
/// start while records arrive (with `alongside` running all the time when given), then
/// `--until-eof`, which must exit 0 with everything written exactly once.
async fn kill_loop(setup: &Setup, seed: u64, alongside: bool) {
    let mut kills = Kills::new(seed, &setup.config, &setup.log);
    let producer = Producer::start(setup.broker.addr(), 3000);
    let other_log = setup.work.path().join("alongside.log");
    let mut other = alongside.then(|| Job::start(&setup.config, &other_log, false));
    let started = Instant::now();
    kills
        .kill_repeatedly(
            KILLS,
            async |_, kills: &mut Kills, _: &mut Job| {
                tokio::time::sleep(kills.delay("", 3500, 7000)).await;
            },
            |_| {},
        )
        .await;
    let produced = producer.stop().await;
    if let Some(other) = &mut other {
        assert!(
            other.try_wait().is_none(),
            "the process alongside stopped; log:\n{}",
            log_tail(&other_log)
        );
    }
    // The last run starts while the killed processes may still be members (and, with
    // `alongside`, while another process owns part of the topic).
    let finish = Instant::now();
    kills.finish();
    let context = kills.context();
    eprintln!(
        "{KILLS} kills, {} records, loop {:?}, --until-eof {:?}; {context}",
        produced.len(),
        finish - started,
        finish.elapsed()
    );
    if let Some(mut other) = other {
        other.signal(rustix::process::Signal::TERM);
        let status = other.wait();
        assert!(
            status.success(),
            "the process alongside: {status}; log:\n{}",
            log_tail(&other_log)
        );
    }
    setup.check(&produced, &context);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamic_members_killed_repeatedly_then_until_eof_parquet() {
    let setup = Setup::new("dyn-parquet", false);
    kill_loop(&setup, 0x6479_6e2d_7061_7271, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamic_members_killed_repeatedly_then_until_eof_postgres() {
    let setup = Setup::new("dyn-postgres", true);
    kill_loop(&setup, 0x6479_6e2d_7067_2121, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_process_killed_repeatedly_beside_one_left_alone() {
    let setup = Setup::new("dyn-two", false);
    kill_loop(&setup, 0x6479_6e2d_7477_6f21, true).await;
}

/// A librdkafka member of the job's group (range assignor, as the job offers) that holds what
/// it is given and writes nothing, polled on a thread of its own until told to leave.
struct Holder {
    leave: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    assigned: Arc<Mutex<Vec<i32>>>,
}

impl Holder {
    fn join(addr: &str, group: &str) -> Holder {
        let consumer: BaseConsumer = rdkafka::config::ClientConfig::new()
            .set("bootstrap.servers", addr)
            .set("group.id", group)
            .set("client.id", "holder")
            .set("enable.auto.commit", "false")
            .set("partition.assignment.strategy", "range")
            .set("session.timeout.ms", "10000")
            .set("debug", "cgrp")
            .create()
            .expect("librdkafka consumer");
        consumer.subscribe(&[TOPIC]).expect("subscribe");
        let leave = Arc::new(AtomicBool::new(false));
        let assigned = Arc::new(Mutex::new(Vec::new()));
        let thread = {
            let (leave, assigned) = (leave.clone(), assigned.clone());
            std::thread::spawn(move || {
                while !leave.load(Ordering::SeqCst) {
                    // Records are dropped: this member writes nothing anywhere.
                    let _ = consumer.poll(Duration::from_millis(100));
                    if let Ok(a) = consumer.assignment() {
                        *assigned.lock().unwrap() =
                            a.elements().iter().map(|e| e.partition()).collect();
                    }
                }
                consumer.unsubscribe();
                // Leaves the group as it is dropped.
                drop(consumer);
            })
        };
        Holder {
            leave,
            thread: Some(thread),
            assigned,
        }
    }

    fn assigned(&self) -> Vec<i32> {
        self.assigned.lock().unwrap().clone()
    }

    fn leave(mut self) {
        self.leave.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        self.leave.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Produces records `0..n` and notes their ids by (partition, offset).
async fn produce_n(setup: &Setup, n: usize) -> BTreeMap<(i32, i64), i64> {
    let batch: Vec<_> = (0..n).map(|i| click(i, PARTITIONS)).collect();
    let at = produce(&setup.broker.addr(), TOPIC, &batch).await;
    at.into_iter().zip(0..n as i64).collect()
}

/// `--until-eof` joins while a live member holds the whole topic: it gets half, reads it, says
/// it waits for the other half and who holds it; once that member leaves it takes the rest
/// and exits 0 with everything written once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn until_eof_waits_for_a_live_member_then_takes_over() {
    let setup = Setup::new("dyn-live", false);
    let produced = produce_n(&setup, 6000).await;
    let holder = Holder::join(&setup.broker.addr(), "dyn-live");
    wait_for(
        "the librdkafka member owns the topic",
        Duration::from_secs(60),
        || holder.assigned().len() == PARTITIONS as usize,
        String::new,
    )
    .await;
    // As a user sees it: warnings and progress (the waiting is reported as progress).
    let mut job = Job::start_logging(
        &setup.config,
        &setup.log,
        true,
        "warn,kingest::progress=info",
    );
    wait_for(
        "--until-eof says what it waits for",
        Duration::from_secs(120),
        || {
            std::fs::read_to_string(&setup.log)
                .is_ok_and(|l| l.contains("waiting for 3 partition(s)"))
        },
        || {
            format!(
                "holder owns {:?}; log:\n{}",
                holder.assigned(),
                job.log_tail()
            )
        },
    )
    .await;
    assert!(job.try_wait().is_none(), "{}", job.log_tail());
    let held = holder.assigned();
    assert_eq!(held.len(), 3, "{}", job.log_tail());
    let log = std::fs::read_to_string(&setup.log).unwrap();
    let waiting = log
        .lines()
        .find(|l| l.contains("waiting for 3 partition(s)"))
        .unwrap();
    for p in &held {
        assert!(
            waiting.contains(&format!("{TOPIC}-{p} not written")),
            "{waiting}"
        );
    }
    // nisshi reports neither member assignments nor client ids: the run names the other
    // members (member ids start with the client id).
    assert!(
        waiting.contains("held by one of member holder-"),
        "{waiting}"
    );
    holder.leave();
    let status = job.wait();
    assert!(status.success(), "{status}; log:\n{}", job.log_tail());
    setup.check(&produced, "after the live member left");
}

/// With `--eof-timeout`, a run whose remaining partitions stay held by a member that writes
/// nothing gives up, exits 1 and names each short partition and its holder.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn until_eof_gives_up_on_partitions_held_by_a_member_that_writes_nothing() {
    let setup = Setup::new("dyn-stuck", false);
    produce_n(&setup, 600).await;
    let holder = Holder::join(&setup.broker.addr(), "dyn-stuck");
    wait_for(
        "the librdkafka member owns the topic",
        Duration::from_secs(60),
        || holder.assigned().len() == PARTITIONS as usize,
        String::new,
    )
    .await;
    let out = kingest(&[
        "run",
        setup.config.to_str().unwrap(),
        "--until-eof",
        "--eof-timeout",
        "15s",
    ])
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let held = holder.assigned();
    assert_eq!(held.len(), 3, "{stderr}");
    assert!(
        stderr.contains("kingest run: --until-eof: nothing moved for 15s and 3 partition(s) are not written to the end offsets they had at the start"),
        "{stderr}"
    );
    for p in &held {
        assert!(
            stderr.contains(&format!(
                "{TOPIC}-{p} not written (end offset 100), held by one of member holder-"
            )),
            "{stderr}"
        );
    }
    // What it read of its own half was written before it gave up.
    let files = read_dir(match &setup.out {
        Out::Parquet(dir) => dir,
        Out::Postgres(_) => unreachable!("a Parquet job"),
    });
    let written: usize = files.iter().map(|f| f.rows.len()).sum();
    assert_eq!(written, 300, "{stderr}");
    holder.leave();
}
