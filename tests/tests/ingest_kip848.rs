//! Two `kingest run` processes with `group_protocol = "consumer"` (KIP-848) on testkit share a
//! topic's partitions: the broker's consumer group ends up with both members, records produced
//! before and after the second joins are all written exactly once into the shared output
//! directory, each process wrote some of them, and a SIGTERM to both leaves the group's
//! committed offsets at the end of every partition.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use kingest_testkit::{Cluster, ClusterConfig};
use kingest_tests::ingest::job::{parquet_sink, source, PARTITION_OFFSET_COLUMNS};
use kingest_tests::ingest::{
    end_offsets, exactly_once, group_committed, produce, read_dir, sink_offsets, wait_for, Cell,
    Job, Produced,
};
use rustix::process::Signal;

const TOPIC: &str = "shared848";
const GROUP: &str = "kip848-processes";
const PARTITIONS: i32 = 6;

fn job(broker: &str, client_id: &str, out: &Path) -> String {
    format!(
        r#"{}group_protocol = "consumer"
client_id = "{client_id}"

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
async fn two_processes_share_a_consumer_protocol_group() {
    let started = std::time::Instant::now();
    let cluster = Cluster::start(ClusterConfig {
        consumer_group_heartbeat_interval: Duration::from_millis(500),
        ..ClusterConfig::default()
    })
    .await
    .unwrap();
    cluster.create_topic(TOPIC, PARTITIONS).unwrap();
    let broker = cluster.bootstrap();
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("out");
    let mut produced: BTreeMap<(i32, i64), i64> = BTreeMap::new();
    for (at, r) in produce(&broker, TOPIC, &records(0, 3000))
        .await
        .into_iter()
        .zip(0..)
    {
        produced.insert(at, r);
    }
    let mut jobs = Vec::new();
    for name in ["member-a", "member-b"] {
        let config = work.path().join(format!("{name}.toml"));
        std::fs::write(&config, job(&broker, name, &out)).unwrap();
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
    wait_for(
        "both processes in the consumer group, reconciled",
        Duration::from_secs(120),
        || {
            cluster.group_type(GROUP) == Some("consumer")
                && cluster
                    .group_state(GROUP)
                    .is_some_and(|(state, _, members)| state == "Stable" && members == 2)
        },
        || {
            format!(
                "group {:?}; logs:\n{}",
                cluster.group_state(GROUP),
                logs(&jobs)
            )
        },
    )
    .await;
    eprintln!("both members in after {:?}", started.elapsed());
    for (at, r) in produce(&broker, TOPIC, &records(3000, 9000))
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
                "sink at {:?}, end {end:?}; logs:\n{}",
                sink_offsets(&read_dir(&out), TOPIC),
                logs(&jobs)
            )
        },
    )
    .await;
    eprintln!("everything written after {:?}", started.elapsed());
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
    assert!(
        written.iter().all(|w| *w > 0),
        "rows written per process: {written:?}"
    );
    assert_eq!(
        written.iter().sum::<u64>(),
        produced.len() as u64,
        "{written:?}"
    );
    let rows = exactly_once(&read_dir(&out), TOPIC, &end, "partition", "offset");
    assert_eq!(rows.len(), produced.len());
    for ((p, o), n) in &produced {
        assert_eq!(rows[&(*p, *o)]["n"], Cell::Int(*n), "{p}/{o}");
    }
    assert_eq!(group_committed(&broker, GROUP, TOPIC, PARTITIONS), end);
    eprintln!("done after {:?}", started.elapsed());
}
