//! Exactly-once consume-transform-produce under `kill -9`: the `exactly_once` example of
//! kingest-client (the real program, built with cargo) transforms an input topic into an output
//! topic, committing its consumed offsets in each transaction. It is killed with SIGKILL at
//! moments drawn from a fixed-seed generator (`KINGEST_SIGKILL_SEED` replays another
//! sequence), more input arriving before each restart, then runs to the end. The output, read
//! under read_committed by the Java consumer and by ours, must hold every input record's result
//! exactly once, and the group's committed offsets (as the Java consumer reads them) must be the
//! input's end. Input keeps arriving while the transform runs, so it commits many small
//! transactions, and each kill comes after the process has started writing output (a random
//! moment after the output grew): kills land inside transactions, not only during start-up.
//! Runs on testkit: nisshi refuses transactional producers.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kingest_testkit::Cluster;

use kingest_client::consumer::{ConsumerConfig, IsolationLevel, PartitionConsumer, StartAt};
use kingest_client::producer::{Producer, ProducerConfig, ProducerRecord};
use kingest_client::{Client, ClientConfig};
use kingest_tests::ingest::example_binary;
use kingest_tests::ingest::kill::SplitMix;
use kingest_tests::peers::cluster::start_cluster;
use kingest_tests::peers::java::{args, JavaPeer};

const PARTITIONS: i32 = 3;
const KILLS: usize = 8;
const LAST: usize = 150;

async fn produce_input(producer: &Producer, from: usize, n: usize) {
    let mut deliveries = Vec::new();
    for i in from..from + n {
        let record =
            ProducerRecord::new("eos-in", format!("in-{i}")).with_partition(i as i32 % PARTITIONS);
        deliveries.push(producer.send(record).await.unwrap());
    }
    for d in deliveries {
        d.await.unwrap();
    }
}

/// The example; with `until_end` it stops once it has read everything, otherwise it runs until
/// killed.
fn transform(bootstrap: &str, until_end: bool) -> std::process::Command {
    let mut c = std::process::Command::new(example_binary("kingest-client", "exactly_once"));
    c.args([bootstrap, "eos-in", "eos-out", "eos-group", "eos-transform"])
        .args(until_end.then_some("--until-end"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

/// Records written to the output so far (data, aborted data and markers).
fn output_end(cluster: &Cluster) -> i64 {
    (0..PARTITIONS)
        .map(|p| cluster.high_watermark("eos-out", p).unwrap_or(0))
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_transform_processes_leave_every_input_exactly_once() {
    let cluster = start_cluster(2).await;
    cluster.create_topic("eos-in", PARTITIONS).unwrap();
    cluster.create_topic("eos-out", PARTITIONS).unwrap();
    let bootstrap = cluster.bootstrap();
    let client = Client::connect(ClientConfig::new(&bootstrap))
        .await
        .unwrap();
    let input = Producer::new(client.clone(), ProducerConfig::default()).unwrap();
    let seed = std::env::var("KINGEST_SIGKILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(16);
    let mut rng = SplitMix(seed);
    // Built before the first round, so that no kill lands in cargo.
    example_binary("kingest-client", "exactly_once");

    // Input arrives in small bursts while the transform runs.
    let stop = Arc::new(AtomicBool::new(false));
    let feeder = {
        let (input, stop) = (input.clone(), stop.clone());
        tokio::spawn(async move {
            let mut produced = 0;
            while !stop.load(Ordering::SeqCst) {
                produce_input(&input, produced, 6).await;
                produced += 6;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            produced
        })
    };
    for round in 0..KILLS {
        let before = output_end(&cluster);
        let mut child = transform(&bootstrap, false).spawn().unwrap();
        let guard = Instant::now() + Duration::from_secs(60);
        let mut exited = None;
        while output_end(&cluster) == before && exited.is_none() {
            assert!(
                Instant::now() < guard,
                "round {round}: the transform wrote nothing"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
            exited = child.try_wait().unwrap();
        }
        if exited.is_none() {
            tokio::time::sleep(rng.millis(1, 400)).await;
            exited = child.try_wait().unwrap();
        }
        if let Some(status) = exited {
            panic!("round {round}: the transform stopped by itself: {status}");
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
    }
    stop.store(true, Ordering::SeqCst);
    let mut produced = feeder.await.unwrap();
    produce_input(&input, produced, LAST).await;
    produced += LAST;
    let last = tokio::task::spawn_blocking(move || transform(&bootstrap, true).output().unwrap())
        .await
        .unwrap();
    assert!(
        last.status.success(),
        "the last run failed: {}",
        String::from_utf8_lossy(&last.stderr)
    );
    eprintln!("{KILLS} kills (seed {seed})");

    // Every input's result once, under read_committed, for the Java consumer and ours.
    let java = JavaPeer::get()
        .run_async(
            "consume",
            args(&[
                ("bootstrap", &cluster.bootstrap()),
                ("topic", "eos-out"),
                ("isolation", "read_committed"),
            ]),
        )
        .await;
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for l in &java {
        *counts
            .entry(l["value"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    let expected: BTreeMap<String, usize> = (0..produced).map(|i| (format!("IN-{i}"), 1)).collect();
    let dups: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).take(5).collect();
    assert!(dups.is_empty(), "duplicates under read_committed: {dups:?}");
    assert_eq!(
        counts, expected,
        "every input exactly once (Java read_committed)"
    );

    let mut config = ConsumerConfig::default();
    config.isolation_level = IsolationLevel::ReadCommitted;
    let mut ours = PartitionConsumer::new(client, config).unwrap();
    let assign: Vec<(&str, i32, StartAt)> = (0..PARTITIONS)
        .map(|p| ("eos-out", p, StartAt::Earliest))
        .collect();
    ours.assign(&assign).await.unwrap();
    let mut seen = 0;
    let guard = Instant::now() + Duration::from_secs(60);
    while !(0..PARTITIONS)
        .all(|p| ours.position("eos-out", p) == cluster.high_watermark("eos-out", p))
    {
        assert!(
            Instant::now() < guard,
            "our read_committed consumer stalled"
        );
        seen += ours
            .poll_timeout(Duration::from_millis(200))
            .await
            .unwrap()
            .records()
            .count();
    }
    assert_eq!(seen, produced, "our read_committed consumer agrees");
    let written: i64 = (0..PARTITIONS)
        .map(|p| cluster.high_watermark("eos-out", p).unwrap())
        .sum();
    eprintln!("output log: {written} offsets (aborted records and markers included) for {produced} results");

    // The group's offsets, committed by the transactions, are the end of the input.
    let committed = JavaPeer::get()
        .run_async(
            "committed",
            args(&[
                ("bootstrap", &cluster.bootstrap()),
                ("topic", "eos-in"),
                ("group", "eos-group"),
            ]),
        )
        .await;
    for l in &committed {
        let p = l["partition"].as_i64().unwrap() as i32;
        assert_eq!(
            l["offset"].as_i64(),
            cluster.high_watermark("eos-in", p),
            "eos-in-{p}: {committed:?}"
        );
    }
}
