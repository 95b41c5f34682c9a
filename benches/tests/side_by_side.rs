//! The side-by-side harness end to end, on tiny data (what is checked is that every client
//! moves exactly the records it should and that the table comes out, never how fast):
//! against testkit's in-memory cluster in this process (`--connect`), and against a nisshi
//! broker the harness starts itself.

use std::process::Command;

use kingest_testkit::{Cluster, ClusterConfig};

fn harness(args: &[&str]) -> String {
    let out_file = tempfile::NamedTempFile::new().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_side-by-side"))
        .args(args)
        .args(["--bench-client", env!("CARGO_BIN_EXE_bench-client")])
        .arg("--out")
        .arg(out_file.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "side-by-side failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let written = std::fs::read_to_string(out_file.path()).unwrap();
    assert_eq!(
        written.trim(),
        stdout.trim(),
        "--out holds what was printed"
    );
    stdout
}

/// Checks the table of `broker` and `mode`: a row per client and codec, librdkafka's ratios 1.
fn assert_rows(
    md: &str,
    broker: &str,
    mode: &str,
    record: &str,
    codecs: &[&str],
    clients: &[&str],
) {
    let table = md
        .split("#### ")
        .find(|t| t.starts_with(&format!("{broker}, {mode}\n")))
        .unwrap_or_else(|| panic!("no {broker}, {mode} table in:\n{md}"));
    for codec in codecs {
        for client in clients {
            let row = format!("| {record} | {codec} | {client} |");
            assert_eq!(table.matches(&row).count(), 1, "{row} in:\n{md}");
        }
        let reference = table
            .lines()
            .find(|l| l.starts_with(&format!("| {record} | {codec} | librdkafka |")))
            .unwrap();
        assert!(
            reference.ends_with("| 1.00x | 1.00x | 1.00x |"),
            "{reference}"
        );
    }
    assert!(!md.contains("Runs that failed"), "{md}");
}

const ALL: [&str; 3] = ["librdkafka", "kingest", "rskafka"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_client_on_testkit() {
    let cluster = Cluster::start(ClusterConfig::default()).await.unwrap();
    let connect = format!("testkit={}", cluster.bootstrap());
    let md = tokio::task::spawn_blocking(move || {
        let common = [
            "--connect",
            &connect,
            "--mb",
            "0.05",
            "--sizes",
            "100",
            "--codecs",
            "none,zstd",
            "--partitions",
            "3",
        ];
        let mut consume = common.to_vec();
        consume.extend(["--modes", "consume"]);
        let mut produce = common.to_vec();
        produce.extend(["--modes", "produce"]);
        (harness(&consume), harness(&produce))
    })
    .await
    .unwrap();
    assert_rows(
        &md.0,
        "testkit",
        "consume",
        "100 B",
        &["none", "zstd"],
        &ALL,
    );
    assert_rows(
        &md.1,
        "testkit",
        "produce",
        "100 B",
        &["none", "zstd"],
        &ALL,
    );
    assert!(md.0.starts_with("Machine: "), "{}", md.0);
}

#[test]
fn every_client_on_nisshi() {
    let md = harness(&[
        "--brokers",
        "nisshi",
        "--mb",
        "0.1",
        "--sizes",
        "1024",
        "--codecs",
        "lz4",
    ]);
    for mode in ["consume", "produce"] {
        assert_rows(&md, "nisshi", mode, "1 KiB", &["lz4"], &ALL);
    }
}
