//! What the `kingest run` end-to-end tests share: the real `kingest` binary, records produced
//! with librdkafka (an independent client), group offsets as librdkafka reads them, the
//! Parquet output read back with the parquet crate's own Arrow reader ([`read`]), the
//! per-format cases every sink is tested with ([`case`], [`cases`]), the pieces of job files
//! the tests share ([`job`]), kill-and-restart runs ([`kill`]), Delta tables read back by the
//! `deltalake` Python package and polars ([`delta`]), Iceberg tables read back with pyiceberg
//! ([`iceberg`]), running the `examples/` jobs as their READMEs say ([`examples`]), and the
//! fault-injection runs of the object store tests ([`store_faults`]).

pub mod case;
pub mod cases;
pub mod compact;
pub mod delta;
pub mod examples;
pub mod iceberg;
pub mod job;
pub mod kill;
pub mod read;
pub mod store_faults;

pub use read::{
    cell, column, dataset_files, exactly_once, parquet_files, read_dir, read_file, rows_by_offset,
    temporary_files, Cell, FileContents,
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

/// The `kingest` binary of this build. `cargo test --workspace --all-targets` builds it (the
/// `kingest` package has benchmarks, so its binary is built with them); a narrower run such
/// as `cargo test -p kingest-tests --test X` does not, and neither does any run after the
/// sources changed. So it is used as it is only when it is newer than every source it is
/// built from, and otherwise built first with `cargo build -p kingest --bin kingest`, once
/// per test process. Panics with cargo's output when the build fails.
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
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("workspace root");
        // With a separate build directory (`build.build-dir`, `CARGO_BUILD_BUILD_DIR`) the
        // tests run from there while binaries land in the target directory, which is not
        // shared between checkouts: use that one, or another checkout's binary could be run.
        let target_dir = match std::env::var_os("CARGO_TARGET_DIR") {
            Some(dir) => PathBuf::from(dir),
            None if std::env::var_os("CARGO_BUILD_BUILD_DIR").is_some() => workspace.join("target"),
            None => profile_dir.parent().expect("target dir").to_path_buf(),
        };
        let bin = target_dir
            .join(profile_dir.file_name().expect("profile directory"))
            .join("kingest");
        if is_newer_than_sources(&bin, workspace) {
            return bin;
        }
        let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") | None => "dev".to_owned(),
            Some(other) => other.to_owned(),
        };
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
        assert!(bin.is_file(), "{} was not built", bin.display());
        bin
    })
}

/// An example program of a workspace crate (`cargo build -p PACKAGE --example NAME`), built
/// into the same target directory and profile as [`kingest_binary`] when older than the sources.
pub fn example_binary(package: &str, name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test runs from target/<profile>/deps")
        .to_path_buf();
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root");
    let target_dir = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir),
        None if std::env::var_os("CARGO_BUILD_BUILD_DIR").is_some() => workspace.join("target"),
        None => profile_dir.parent().expect("target dir").to_path_buf(),
    };
    let profile_name = profile_dir.file_name().expect("profile directory");
    let bin = target_dir.join(profile_name).join("examples").join(name);
    if is_newer_than_sources(&bin, workspace) {
        return bin;
    }
    let profile = match profile_name.to_str() {
        Some("debug") | None => "dev".to_owned(),
        Some(other) => other.to_owned(),
    };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(workspace)
        .args(["build", "--quiet", "-p", package, "--example", name])
        .args(["--profile", &profile])
        .arg("--target-dir")
        .arg(&target_dir)
        .output()
        .expect("run cargo build --example");
    assert!(
        out.status.success(),
        "cargo build -p {package} --example {name} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(bin.is_file(), "{} was not built", bin.display());
    bin
}

/// Whether `bin` exists and is newer than every file the `kingest` binary is built from (the
/// workspace manifests and lock file, and the crates it depends on).
fn is_newer_than_sources(bin: &Path, workspace: &Path) -> bool {
    let Some(built) = std::fs::metadata(bin).and_then(|m| m.modified()).ok() else {
        return false;
    };
    let mut newest = std::time::SystemTime::UNIX_EPOCH;
    let mut see = |p: &Path| {
        if let Ok(t) = std::fs::metadata(p).and_then(|m| m.modified()) {
            newest = newest.max(t);
        }
    };
    see(&workspace.join("Cargo.toml"));
    see(&workspace.join("Cargo.lock"));
    for dir in ["ingest", "client", "protocol", "testkit", "vendor"] {
        read::walk(&workspace.join(dir), &mut see);
    }
    newest < built
}

/// A command running the `kingest` binary with `args`, logging warnings to its stderr (or
/// what `KINGEST_TEST_LOG` asks for, to debug a test).
pub fn kingest(args: &[&str]) -> Command {
    let mut c = Command::new(kingest_binary());
    let filter = std::env::var("KINGEST_TEST_LOG").unwrap_or_else(|_| "warn".to_owned());
    c.args(args).env("KINGEST_LOG", filter);
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

/// A `kingest run` process whose stderr goes to a log file; killed when dropped, so a failing
/// test leaves no process behind.
pub struct Job {
    child: std::process::Child,
    log: PathBuf,
}

impl Job {
    /// Starts `kingest run CONFIG [--until-eof]`, appending its stderr (warnings) to `log`.
    pub fn start(config: &Path, log: &Path, until_eof: bool) -> Job {
        Job::spawn(config, log, until_eof, "warn", &[])
    }

    /// [`Job::start`] with `filter` as its `KINGEST_LOG` (what it logs).
    pub fn start_logging(config: &Path, log: &Path, until_eof: bool, filter: &str) -> Job {
        Job::spawn(config, log, until_eof, filter, &[])
    }

    /// [`Job::start`] with these environment variables set (object store credentials and
    /// endpoints, as a user's shell would have them).
    pub fn start_with_env(
        config: &Path,
        log: &Path,
        until_eof: bool,
        env: &[(String, String)],
    ) -> Job {
        Job::spawn(config, log, until_eof, "warn", env)
    }

    fn spawn(
        config: &Path,
        log: &Path,
        until_eof: bool,
        filter: &str,
        env: &[(String, String)],
    ) -> Job {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("open the job's log");
        let mut args = vec!["run", config.to_str().expect("a UTF-8 path")];
        if until_eof {
            args.push("--until-eof");
        }
        let child = kingest(&args)
            .env("KINGEST_LOG", filter)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::from(file))
            .spawn()
            .expect("start kingest run");
        Job {
            child,
            log: log.to_path_buf(),
        }
    }

    /// The process.
    pub fn child(&mut self) -> &mut std::process::Child {
        &mut self.child
    }

    /// Sends `signal`.
    pub fn signal(&self, signal: rustix::process::Signal) {
        send_signal(&self.child, signal);
    }

    /// Its exit status, if it has exited.
    pub fn try_wait(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().expect("wait for kingest run")
    }

    /// Waits for it to exit.
    pub fn wait(&mut self) -> std::process::ExitStatus {
        self.child.wait().expect("wait for kingest run")
    }

    /// The last lines of its log, for failure messages.
    pub fn log_tail(&self) -> String {
        log_tail(&self.log)
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The last 40 lines of a log file.
pub fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// Polls `done` every 20 ms until it holds, failing with `what` (and `context()`) after
/// `limit`: a guard against a hang, not a measurement.
pub async fn wait_for(
    what: &str,
    limit: Duration,
    mut done: impl FnMut() -> bool,
    context: impl Fn() -> String,
) {
    let deadline = std::time::Instant::now() + limit;
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: not reached within {limit:?}; {}",
            context()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Asserts that `rows` (read back from a sink, by partition and offset) has exactly the keys of
/// `produced`: nothing missing, nothing unexpected; names up to ten of each otherwise.
pub fn assert_same_records<V>(
    rows: &BTreeMap<(i32, i64), V>,
    produced: &BTreeMap<(i32, i64), Produced>,
    context: &str,
) {
    let missing: Vec<_> = produced
        .keys()
        .filter(|k| !rows.contains_key(k))
        .take(10)
        .collect();
    let extra: Vec<_> = rows
        .keys()
        .filter(|k| !produced.contains_key(k))
        .take(10)
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?}, unexpected {extra:?} ({} rows, {} produced); {context}",
        rows.len(),
        produced.len()
    );
}

/// Per partition, one past the highest offset in `offsets`: where a complete output ends.
pub fn end_offsets<'a>(offsets: impl IntoIterator<Item = &'a (i32, i64)>) -> BTreeMap<i32, i64> {
    let mut end = BTreeMap::new();
    for (p, o) in offsets {
        let e = end.entry(*p).or_insert(0);
        *e = (*e).max(o + 1);
    }
    end
}

/// Per partition of `topic`, the highest `next` offset of the files' footers: where the sink
/// says a restart resumes.
pub fn sink_offsets(files: &[FileContents], topic: &str) -> BTreeMap<i32, i64> {
    let mut out = BTreeMap::new();
    for f in files {
        for ((t, p), (_, next)) in &f.offsets {
            if t == topic {
                let e = out.entry(*p).or_insert(*next);
                *e = (*e).max(*next);
            }
        }
    }
    out
}
