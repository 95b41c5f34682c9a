//! What the `kingest run` end-to-end tests share: the real `kingest` binary, records produced
//! with librdkafka (an independent client), group offsets as librdkafka reads them, the
//! Parquet output read back with the parquet crate's own Arrow reader ([`read`]), and the
//! per-format case runner ([`case`]).

pub mod case;
pub mod read;

pub use read::{
    cell, exactly_once, parquet_files, read_dir, read_file, temporary_files, Cell, FileContents,
};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use rdkafka::config::ClientConfig as RdConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::TopicPartitionList;

/// The `kingest` binary of this build, built by cargo on first use (an integration test of
/// another package does not get it built by `cargo test` otherwise). Panics with cargo's output
/// when the build fails.
pub fn kingest_binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        // target/<profile>/deps/<this test> → target/<profile>
        let exe = std::env::current_exe().expect("the test's own path");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("the test runs from target/<profile>/deps")
            .to_path_buf();
        let target_dir = profile_dir.parent().expect("target dir").to_path_buf();
        let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") => "dev".to_owned(),
            Some(other) => other.to_owned(),
            None => "dev".to_owned(),
        };
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("workspace root");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let out = Command::new(cargo)
            .current_dir(workspace)
            .args(["build", "--quiet", "-p", "kingest", "--bin", "kingest"])
            .args(["--profile", &profile])
            .arg("--target-dir")
            .arg(&target_dir)
            .output()
            .expect("run cargo build -p kingest");
        assert!(
            out.status.success(),
            "cargo build -p kingest --bin kingest failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let bin = profile_dir.join("kingest");
        assert!(bin.is_file(), "{} was not built", bin.display());
        bin
    })
}

/// A command running the `kingest` binary with `args`, logging warnings to its stderr.
pub fn kingest(args: &[&str]) -> Command {
    let mut c = Command::new(kingest_binary());
    c.args(args).env("KINGEST_LOG", "warn");
    c
}

/// Sends `signal` to a child process (SIGTERM, SIGINT, SIGKILL...).
pub fn send_signal(child: &std::process::Child, signal: rustix::process::Signal) {
    let pid = rustix::process::Pid::from_raw(child.id() as i32).expect("a child pid is positive");
    rustix::process::kill_process(pid, signal).expect("signal the child");
}

/// A record to produce.
#[derive(Debug, Clone, PartialEq)]
pub struct Produced {
    /// The partition (the records of one partition are sent in order).
    pub partition: i32,
    /// The key bytes, if any.
    pub key: Option<Vec<u8>>,
    /// The value bytes, if any.
    pub value: Option<Vec<u8>>,
    /// Headers in order (a header may repeat, and have no value).
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    /// The record's timestamp, ms since the epoch (create time).
    pub timestamp: i64,
}

/// Produces `records` to `topic` with librdkafka (idempotent, so each partition keeps the
/// order sent), and returns each record's (partition, offset) in the same order.
pub async fn produce(bootstrap: &str, topic: &str, records: &[Produced]) -> Vec<(i32, i64)> {
    let producer: FutureProducer = RdConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .set("compression.type", "lz4")
        .create()
        .expect("librdkafka producer");
    let mut pending = Vec::with_capacity(records.len());
    for r in records {
        let mut headers = OwnedHeaders::new();
        for (k, v) in &r.headers {
            headers = headers.insert(Header {
                key: k,
                value: v.as_deref(),
            });
        }
        let mut rec: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic)
            .partition(r.partition)
            .timestamp(r.timestamp)
            .headers(headers);
        if let Some(k) = &r.key {
            rec = rec.key(k.as_slice());
        }
        if let Some(v) = &r.value {
            rec = rec.payload(v.as_slice());
        }
        pending.push(
            producer
                .send_result(rec)
                .map_err(|(e, _)| e)
                .expect("queue a record"),
        );
    }
    let mut out = Vec::with_capacity(pending.len());
    for d in pending {
        let delivered = d
            .await
            .expect("delivery report")
            .map_err(|(e, _)| e)
            .expect("delivered");
        out.push((delivered.partition, delivered.offset));
    }
    out
}

/// The offsets `group` has committed for `topic`'s partitions `0..partitions`, as librdkafka
/// reads them (partitions without a commit are left out).
pub fn group_committed(
    bootstrap: &str,
    group: &str,
    topic: &str,
    partitions: i32,
) -> BTreeMap<i32, i64> {
    let consumer: BaseConsumer = RdConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .create()
        .expect("librdkafka consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let committed = consumer
        .committed_offsets(tpl, Duration::from_secs(30))
        .expect("committed offsets");
    committed
        .elements()
        .iter()
        .filter_map(|e| {
            e.offset()
                .to_raw()
                .filter(|o| *o >= 0)
                .map(|o| (e.partition(), o))
        })
        .collect()
}
