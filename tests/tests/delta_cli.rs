//! `kingest check` and `kingest reset-offsets` on a Delta sink, end to end: the real `kingest`
//! binary against a nisshi broker, the table read back with the `deltalake` Python package and
//! polars. `check` reports the table's `txn` versions as the sink's offsets; a reset without
//! `--sink` is refused where the table holds offsets; with `--sink` one commit removes the
//! files past the new offset (whole files: an offset inside one is rewound to its start) and
//! sets the offsets, the next run reads those records again into the table exactly once; a
//! reset forward skips records.

use std::collections::BTreeMap;
use std::process::{Output, Stdio};

use kingest_tests::ingest::delta::{app_id, delta_exactly_once, delta_sink, read_delta};
use kingest_tests::ingest::job::{source, write_job, PARTITION_OFFSET_COLUMNS};
use kingest_tests::ingest::{group_committed, kingest, produce, Produced};
use kingest_tests::peers::nisshi::Nisshi;
use serde_json::{json, Value};

fn numbered(p: i32, base: i64, first: i64, n: i64) -> Vec<Produced> {
    (first..first + n)
        .map(|i| Produced {
            partition: p,
            key: None,
            value: Some(format!("{{\"n\": {}}}", base + i).into_bytes()),
            headers: Vec::new(),
            timestamp: 1_700_000_000_000 + i,
        })
        .collect()
}

fn run(args: &[&str]) -> Output {
    kingest(args)
        .stdin(Stdio::null())
        .output()
        .expect("run kingest")
}

fn ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "kingest {} failed ({}):\n{}\n{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn partition_status(doc: &Value, p: i64) -> Value {
    doc["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["partition"] == p)
        .cloned()
        .unwrap_or_else(|| panic!("no partition {p} in {doc}"))
}

fn check(job: &str) -> Value {
    serde_json::from_str(&ok(&["check", job, "--json"])).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_and_reset_offsets_with_a_delta_sink() {
    kingest_tests::ingest::delta::require_delta_readers();
    let broker = Nisshi::start();
    broker.create_topic("orders", 2);
    let addr = broker.addr();
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("table");
    let job = write_job(
        dir.path(),
        &format!(
            r#"{}
[[columns]]
name = "n"
type = "int64"
{PARTITION_OFFSET_COLUMNS}{}"#,
            source(&addr, "orders", "orders-delta"),
            delta_sink(&table, "")
        ),
    );
    let job = job.to_str().unwrap();
    // Before any run: no table, no offsets, and check creates nothing.
    produce(&addr, "orders", &numbered(0, 0, 0, 10)).await;
    assert_eq!(partition_status(&check(job), 0)["sink"], Value::Null);
    assert!(!table.exists());
    // Two runs, so partition 0 has two files: [0, 10) and [10, 20).
    produce(&addr, "orders", &numbered(1, 100, 0, 10)).await;
    ok(&["run", job, "--until-eof"]);
    produce(&addr, "orders", &numbered(0, 0, 10, 10)).await;
    ok(&["run", job, "--until-eof"]);
    produce(&addr, "orders", &numbered(0, 0, 20, 5)).await;
    let doc = check(job);
    assert_eq!(
        partition_status(&doc, 0),
        json!({"topic": "orders", "partition": 0, "sink": 20, "group": 20,
               "log_start": 0, "log_end": 25, "lag": 5})
    );
    assert_eq!(partition_status(&doc, 1)["sink"], 10);
    assert!(doc["sink"].as_str().unwrap().starts_with("delta "), "{doc}");

    // The table holds offsets: resetting only the group is refused.
    let refused = run(&["reset-offsets", job, "--to", "earliest", "--execute"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("add --sink"));

    // Back to 15 in partition 0: inside [10, 20), so that file goes and both resume at 10.
    let out = ok(&[
        "reset-offsets",
        job,
        "--to",
        "offset=orders:0=15",
        "--sink",
        "--execute",
    ]);
    assert!(
        out.contains("15 is inside a file covering [10, 20): rewound to 10"),
        "{out}"
    );
    assert!(
        out.contains("recorded the reset in the Delta table as version 3"),
        "{out}"
    );
    assert_eq!(
        group_committed(&addr, "orders-delta", "orders", 2),
        BTreeMap::from([(0, 10), (1, 10)])
    );
    assert_eq!(partition_status(&check(job), 0)["sink"], 10);
    let apps: Vec<String> = (0..2)
        .map(|p| app_id("orders-delta", "orders", p))
        .collect();
    let read = read_delta(&table, &apps);
    assert_eq!(read.rows.len(), 20, "the file of [10, 20) left the table");

    // The next run reads 10..25 again: every offset is in the table exactly once.
    ok(&["run", job, "--until-eof"]);
    let read = read_delta(&table, &apps);
    let rows = delta_exactly_once(
        &read,
        "orders-delta",
        "orders",
        &BTreeMap::from([(0, 25), (1, 10)]),
    );
    for ((p, o), row) in &rows {
        let base = if *p == 0 { 0 } else { 100 };
        assert_eq!(row["n"], json!(base + o), "partition {p} offset {o}");
    }

    // Forward to the end: partition 1's three new records are skipped.
    produce(&addr, "orders", &numbered(1, 100, 10, 3)).await;
    ok(&[
        "reset-offsets",
        job,
        "--to",
        "latest",
        "--sink",
        "--execute",
    ]);
    assert_eq!(partition_status(&check(job), 1)["sink"], 13);
    ok(&["run", job, "--until-eof"]);
    let read = read_delta(&table, &apps);
    assert_eq!(
        read.rows.len(),
        35,
        "nothing was read after the reset to latest"
    );
    assert_eq!(read.txns[&apps[1]], Some(13));
}
