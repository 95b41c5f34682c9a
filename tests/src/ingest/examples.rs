//! What the examples test (tests/tests/examples.rs) needs to run an `examples/` job as its
//! README says: the repository's paths, `kingest dev-broker` as a child process, a job file
//! with only the broker, output and registry rewritten, `kingest produce --file`, and
//! `kingest run --until-eof` read back exactly once.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use kingest::config::Config;

use super::{end_offsets, exactly_once, kingest, log_tail, read_dir, wait_for, Cell};
use crate::peers::free_port;

/// The repository's root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Every `examples/**/*.toml`, sorted.
pub fn example_tomls() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "toml") {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(&repo().join("examples"), &mut out);
    out.sort();
    out
}

/// `kingest dev-broker --port P --topic T:N`, as the READMEs start it; stopped when dropped.
pub struct DevBroker {
    child: Child,
    /// host:port.
    pub addr: String,
    /// Its stderr.
    pub log: PathBuf,
}

impl DevBroker {
    /// Starts it with `topic` (`NAME:PARTITIONS`), logging into `dir`.
    pub async fn start(dir: &Path, topic: &str) -> DevBroker {
        let port = free_port();
        let log = dir.join("dev-broker.log");
        let child = kingest(&["dev-broker", "--port", &port.to_string(), "--topic", topic])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
            .spawn()
            .unwrap();
        let addr = format!("127.0.0.1:{port}");
        wait_for(
            "the dev broker listening",
            Duration::from_secs(60),
            || std::net::TcpStream::connect(&addr).is_ok(),
            || log_tail(&log),
        )
        .await;
        DevBroker { child, addr, log }
    }
}

impl Drop for DevBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Copies `examples/NAME/job.toml` with the broker, the sink path and (for Avro) the registry
/// rewritten, and returns the copy's path.
pub fn rewritten_job(name: &str, dir: &Path, broker: &str, registry: Option<&str>) -> PathBuf {
    let text =
        std::fs::read_to_string(repo().join("examples").join(name).join("job.toml")).unwrap();
    let mut job: toml::Table = text.parse().unwrap();
    job["source"]["brokers"] = toml::Value::String(broker.to_owned());
    job["sink"]["path"] = toml::Value::String(dir.join("out").display().to_string());
    if let Some(url) = registry {
        job["format"]["registry"] = toml::Value::String(url.to_owned());
    }
    let path = dir.join("job.toml");
    std::fs::write(&path, toml::to_string(&job).unwrap()).unwrap();
    Config::load(&path).unwrap();
    path
}

/// `kingest produce --topic TOPIC --file examples/NAME/FILE`, as the README says.
pub fn produce_file(broker: &DevBroker, topic: &str, file: &Path) {
    let out = kingest(&[
        "produce",
        "--brokers",
        &broker.addr,
        "--topic",
        topic,
        "--file",
    ])
    .arg(file)
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "kingest produce: {}\nbroker log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        log_tail(&broker.log)
    );
}

/// `kingest run JOB --until-eof`, then every row read back (exactly once by offsets), keyed by
/// (partition, offset).
pub fn run_until_eof(
    job: &Path,
    dir: &Path,
    topic: &str,
    partition_column: Option<&str>,
) -> Vec<BTreeMap<String, Cell>> {
    let out = kingest(&["run", job.to_str().unwrap(), "--until-eof"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kingest run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let files = read_dir(&dir.join("out"));
    assert!(!files.is_empty(), "no output");
    match partition_column {
        Some(column) => {
            let offsets: Vec<(i32, i64)> = files
                .iter()
                .flat_map(|f| &f.rows)
                .map(|r| match (&r[column], &r["offset"]) {
                    (Cell::Int(p), Cell::Int(o)) => (*p as i32, *o),
                    other => panic!("partition/offset {other:?}"),
                })
                .collect();
            exactly_once(&files, topic, &end_offsets(&offsets), column, "offset")
                .into_values()
                .collect()
        }
        None => files.into_iter().flat_map(|f| f.rows).collect(),
    }
}

/// The non-empty lines of a file.
pub fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}
