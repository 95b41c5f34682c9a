//! Two `kingest run` processes in one consumer group share a topic's partitions: the group
//! (as librdkafka describes it) ends up with both members; records produced before and after
//! the second one joins (so a rebalance happens while the first may be writing) are all
//! written exactly once into the shared output directory; each process says it wrote some of
//! them, and their counts add up to the records; and a SIGTERM to both leaves the group's
//! committed offsets at the end of every partition.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kingest_tests::ingest::job::{parquet_sink, source, PARTITION_OFFSET_COLUMNS};
use kingest_tests::ingest::{
    end_offsets, exactly_once, group_committed, produce, read_dir, sink_offsets, temporary_files,
    wait_for, Cell, Job, Produced,
};
use kingest_tests::peers::nisshi::Nisshi;
use rdkafka::config::ClientConfig as RdConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rustix::process::Signal;

const TOPIC: &str = "shared";
const GROUP: &str = "two-processes";
const PARTITIONS: i32 = 6;

fn job(broker: &str, client_id: &str, out: &Path) -> String {
    format!(
        r#"{}client_id = "{client_id}"

[[columns]]
name = "n"
type = "int64"
{PARTITION_OFFSET_COLUMNS}
[flush]
rows = 300
age = "300ms"
{}"#,
        source(broker, TOPIC, GROUP),
        parquet_sink(out)
    )
}

fn records(from: usize, n: usize) -> Vec<Produced> {
    (from..from + n)
        .map(|i| Produced {
            partition: (i % PARTITIONS as usize) as i32,
            key: None,
            value: Some(format!("{{\"n\": {i}}}").into_bytes()),
            headers: Vec::new(),
            timestamp: 1_700_000_000_000 + i as i64,
        })
        .collect()
}

/// The group's state and member count, as librdkafka describes it. (nisshi leaves member
/// assignments empty in DescribeGroups, so who has which partition is told by the processes.)
fn describe(broker: &str) -> (String, usize) {
    let c: BaseConsumer = RdConfig::new()
        .set("bootstrap.servers", broker)
        .create()
        .unwrap();
    let list = c
        .fetch_group_list(Some(GROUP), Duration::from_secs(10))
        .unwrap();
    list.groups().first().map_or((String::new(), 0), |g| {
        (g.state().to_owned(), g.members().len())
    })
}

/// The rows a `kingest run` says it wrote, from its closing summary
/// (`kingest run: R records read, W rows written in F files, ...`).
fn rows_written(log: &str) -> u64 {
    let summary = regex::Regex::new(r"kingest run: \d+ records read, (\d+) rows written").unwrap();
    let found: Vec<u64> = summary
        .captures_iter(log)
        .map(|c| c[1].parse().unwrap())
        .collect();
    assert_eq!(found.len(), 1, "one summary expected in:\n{log}");
    found[0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_split_the_partitions_and_write_everything_once() {
    let broker = Nisshi::start();
    broker.create_topic(TOPIC, PARTITIONS as u32);
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("out");
    let mut produced: BTreeMap<(i32, i64), i64> = BTreeMap::new();
    let first = records(0, 3000);
    for (at, r) in produce(&broker.addr(), TOPIC, &first)
        .await
        .into_iter()
        .zip(0..)
    {
        produced.insert(at, r);
    }

    let mut jobs = Vec::new();
    for name in ["member-a", "member-b"] {
        let config = work.path().join(format!("{name}.toml"));
        std::fs::write(&config, job(&broker.addr(), name, &out)).unwrap();
        jobs.push(Job::start(
            &config,
            &work.path().join(format!("{name}.log")),
            false,
        ));
    }
    let logs = |jobs: &[Job]| {
        jobs.iter()
            .map(|j| j.log_tail())
            .collect::<Vec<_>>()
            .join("\n---\n")
    };
    let seen = std::cell::Cell::new((String::new(), 0));
    wait_for(
        "both processes in the group",
        Duration::from_secs(120),
        || {
            let (state, members) = describe(&broker.addr());
            let done = state == "Stable" && members == 2;
            seen.set((state, members));
            done
        },
        || {
            let (state, members) = seen.take();
            format!(
                "group {state} with {members} members; logs:\n{}",
                logs(&jobs)
            )
        },
    )
    .await;

    let second = records(3000, 9000);
    for (at, r) in produce(&broker.addr(), TOPIC, &second)
        .await
        .into_iter()
        .zip(3000..)
    {
        produced.insert(at, r);
    }
    let end = end_offsets(produced.keys());
    wait_for(
        "every record in the output",
        Duration::from_secs(120),
        || sink_offsets(&read_dir(&out), TOPIC) == end,
        || {
            format!(
                "sink at {:?}, end {end:?}",
                sink_offsets(&read_dir(&out), TOPIC)
            )
        },
    )
    .await;
    for j in &jobs {
        j.signal(Signal::TERM);
    }
    let mut written = Vec::new();
    for (j, name) in jobs.iter_mut().zip(["member-a", "member-b"]) {
        let status = j.wait();
        assert!(status.success(), "{status}; log:\n{}", j.log_tail());
        let log = std::fs::read_to_string(work.path().join(format!("{name}.log"))).unwrap();
        written.push(rows_written(&log));
    }
    // Each wrote some of the rows, and together each row once.
    assert!(
        written.iter().all(|w| *w > 0),
        "rows written per process: {written:?}"
    );
    assert_eq!(
        written.iter().sum::<u64>(),
        produced.len() as u64,
        "{written:?}"
    );
    assert_eq!(temporary_files(&out), Vec::<PathBuf>::new());
    let files = read_dir(&out);
    let rows = exactly_once(&files, TOPIC, &end, "partition", "offset");
    assert_eq!(rows.len(), produced.len());
    for ((p, o), n) in &produced {
        assert_eq!(rows[&(*p, *o)]["n"], Cell::Int(*n), "{p}/{o}");
    }
    assert_eq!(
        group_committed(&broker.addr(), GROUP, TOPIC, PARTITIONS),
        end
    );
}
