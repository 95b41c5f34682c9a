//! `kingest bench` against testkit's in-memory cluster: what is produced is consumed back,
//! with every stop condition, explicit partitions and a group; and the options' checks.

use clap::Parser;
use kingest_testkit::{Cluster, ClusterConfig};

use super::payload::KeyDistribution;
use super::{consume, produce, BenchError, Common};
use crate::cli::{Cli, Command};

fn common(cluster: &Cluster, topic: &str) -> Common {
    Common {
        brokers: cluster.bootstrap(),
        topic: topic.to_owned(),
        json: false,
        interval: 0.0,
    }
}

fn produce_args(cluster: &Cluster, topic: &str, records: u64) -> produce::Args {
    produce::Args {
        common: common(cluster, topic),
        records,
        record_size: 100,
        keys: KeyDistribution::None,
        compression: "none".into(),
        acks: "all".into(),
        partitions: 3,
        throughput: 0,
        batch_size: None,
        linger_ms: None,
        no_idempotence: false,
        seed: 1,
    }
}

fn consume_args(cluster: &Cluster, topic: &str) -> consume::Args {
    consume::Args {
        common: common(cluster, topic),
        records: 0,
        group: None,
        partitions: Vec::new(),
        from: "earliest".into(),
        idle_timeout: 30.0,
        duration: 0.0,
        max_partition_fetch_bytes: None,
        fetch_max_bytes: None,
        no_check_crcs: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produced_records_are_consumed_back() {
    let cluster = Cluster::start(ClusterConfig::default()).await.unwrap();
    let mut p = produce_args(&cluster, "bench-a", 5000);
    p.keys = KeyDistribution::Random(10);
    p.compression = "lz4".into();
    let report = produce::run(p).await.unwrap();
    assert_eq!(report.records, 5000);
    assert_eq!(report.failed, 0);
    assert_eq!(report.bytes, 5000 * (100 + 12));
    assert_eq!(report.acks, "all");
    assert_eq!(report.keys, "random:10");
    let latency = report.latency.unwrap();
    assert_eq!(latency.count, 5000);
    assert!(latency.p50_ms <= latency.p99_ms && latency.p99_ms <= latency.p999_ms);
    assert!(latency.p999_ms <= latency.max_ms);
    assert!(report.seconds > 0.0 && report.records_per_sec > 0.0);

    // To the end offsets, over all three partitions.
    let report = consume::run(consume_args(&cluster, "bench-a"))
        .await
        .unwrap();
    assert_eq!(report.records, 5000);
    assert_eq!(report.bytes, 5000 * 112);
    assert_eq!(report.stopped_by, "end");

    // A record count, on two of the partitions.
    let mut c = consume_args(&cluster, "bench-a");
    c.records = 100;
    c.partitions = vec![0, 2];
    let report = consume::run(c).await.unwrap();
    assert_eq!(report.records, 100);
    assert_eq!(report.stopped_by, "records");

    // As a group member.
    let mut c = consume_args(&cluster, "bench-a");
    c.records = 5000;
    c.group = Some("bench-group".into());
    let report = consume::run(c).await.unwrap();
    assert_eq!(report.records, 5000);
    assert_eq!(report.stopped_by, "records");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_zero_throttled_and_idle_stop() {
    let cluster = Cluster::start(ClusterConfig::default()).await.unwrap();
    let mut p = produce_args(&cluster, "bench-b", 300);
    p.acks = "0".into();
    p.throughput = 1000;
    p.compression = "zstd".into();
    p.record_size = 1024;
    p.keys = KeyDistribution::Sequential(3);
    let report = produce::run(p).await.unwrap();
    assert_eq!(report.records, 300);
    assert_eq!(report.acks, "0");
    // 300 records at 1000/s cannot finish in less than 0.29 s (the throttle sleeps).
    assert!(report.seconds >= 0.29, "{}", report.seconds);

    // acks=0 gives no offsets back, so read by idleness rather than by end offsets.
    let mut c = consume_args(&cluster, "bench-b");
    c.records = 1000;
    c.idle_timeout = 1.0;
    let report = consume::run(c).await.unwrap();
    assert_eq!(report.records, 300);
    assert_eq!(report.bytes, 300 * (1024 + 12));
    assert_eq!(report.stopped_by, "idle");
}

#[tokio::test]
async fn bad_options_are_usage_errors() {
    let cluster = Cluster::start(ClusterConfig::default()).await.unwrap();
    let mut p = produce_args(&cluster, "bench-c", 10);
    p.acks = "2".into();
    assert!(matches!(produce::run(p).await, Err(BenchError::Usage(_))));
    let mut p = produce_args(&cluster, "bench-c", 10);
    p.compression = "brotli".into();
    assert!(matches!(produce::run(p).await, Err(BenchError::Usage(_))));
    let p = produce_args(&cluster, "bench-c", 0);
    assert!(matches!(produce::run(p).await, Err(BenchError::Usage(_))));
    let mut p = produce_args(&cluster, "bench-c", 10);
    p.acks = "1".into();
    p.no_idempotence = false;
    // acks=1 switches idempotence off by itself rather than failing validation.
    assert!(!produce::producer_config(&p).unwrap().idempotence);

    let mut c = consume_args(&cluster, "bench-c");
    c.from = "middle".into();
    assert!(matches!(consume::run(c).await, Err(BenchError::Usage(_))));
    let mut c = consume_args(&cluster, "bench-c");
    c.idle_timeout = -1.0;
    assert!(matches!(consume::run(c).await, Err(BenchError::Usage(_))));
}

#[test]
fn command_line_parses() {
    let cli = Cli::try_parse_from([
        "kingest",
        "bench",
        "produce",
        "--topic",
        "t",
        "--records",
        "10",
        "--record-size",
        "1024",
        "--keys",
        "random:5",
        "--compression",
        "zstd",
        "--acks",
        "1",
        "--partitions",
        "4",
        "--throughput",
        "100",
        "--json",
    ])
    .unwrap();
    let Command::Bench(args) = cli.command else {
        panic!("not bench");
    };
    let super::Mode::Produce(p) = args.mode else {
        panic!("not produce");
    };
    assert_eq!(p.records, 10);
    assert_eq!(p.keys, KeyDistribution::Random(5));
    assert!(p.common.json);

    let cli = Cli::try_parse_from([
        "kingest",
        "bench",
        "consume",
        "--topic",
        "t",
        "--partitions",
        "0,2",
        "--interval",
        "0",
    ])
    .unwrap();
    let Command::Bench(args) = cli.command else {
        panic!("not bench");
    };
    let super::Mode::Consume(c) = args.mode else {
        panic!("not consume");
    };
    assert_eq!(c.partitions, vec![0, 2]);
    assert!(Cli::try_parse_from([
        "kingest",
        "bench",
        "consume",
        "--topic",
        "t",
        "--partitions",
        "0",
        "--group",
        "g",
    ])
    .is_err());
    assert!(
        Cli::try_parse_from(["kingest", "bench", "produce", "--topic", "t", "--keys", "x"])
            .is_err()
    );
}
