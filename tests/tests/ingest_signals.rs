//! A clean stop: SIGTERM or SIGINT to the real `kingest run` (streaming, no `--until-eof`)
//! writes what it holds, leaves no temporary file in the output directory, commits the files'
//! offsets to the group, and exits 0. Afterwards the group's committed offsets (read with
//! librdkafka) equal the sink's (the files' footers), and the files hold every record once.
//!
//! Both moments a stop can find are made certain, not hoped for:
//! - SIGTERM while rows are only in memory: the job's flush thresholds are never reached, and
//!   the last record of each partition carries its own Avro schema id, so the test registry's
//!   request for that id says the partition has been read to its end; nothing is on disk yet.
//! - SIGINT while files are open: a short `flush.age` hands each partition's rows to the sink,
//!   whose files stay `.tmp` until they age too; the signal goes when every partition has one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use apache_avro::types::Value as AvroValue;
use apache_avro::{to_avro_datum, Schema as AvroSchema};
use kingest_tests::ingest::job::{parquet_sink, source, PARTITION_OFFSET_COLUMNS};
use kingest_tests::ingest::{
    end_offsets, exactly_once, group_committed, parquet_files, produce, read_dir, sink_offsets,
    temporary_files, wait_for, Cell, Job, Produced,
};
use kingest_tests::peers::nisshi::Nisshi;
use kingest_tests::peers::registry::Registry;
use rustix::process::Signal;

const PARTITIONS: i32 = 3;
const PER_PARTITION: usize = 1234;

const EVENT: &str = r#"{"type": "record", "name": "Event", "fields": [
  {"name": "id", "type": "long"}, {"name": "what", "type": "string"}]}"#;

fn job(broker: &str, topic: &str, format: &str, flush: &str, out: &Path) -> String {
    format!(
        r#"{}
{format}

[[columns]]
name = "id"
type = "int64"

[[columns]]
name = "what"
type = "string"
{PARTITION_OFFSET_COLUMNS}
[flush]
{flush}
{}"#,
        source(broker, topic, "signals"),
        parquet_sink(out)
    )
}

/// After the stop: a clean exit, no temporary file, every record once with its content, and
/// the group's committed offsets equal to the sink's, which are the ends of the partitions.
fn check_stopped(
    job: &mut Job,
    broker: &Nisshi,
    topic: &str,
    out: &Path,
    produced: &BTreeMap<(i32, i64), i64>,
) {
    let status = job.wait();
    assert!(
        status.success(),
        "kingest run exited with {status}; log:\n{}",
        job.log_tail()
    );
    assert_eq!(temporary_files(out), Vec::<PathBuf>::new(), "left behind");
    let files = read_dir(out);
    let end = end_offsets(produced.keys());
    assert_eq!(sink_offsets(&files, topic), end, "the sink's offsets");
    assert_eq!(
        group_committed(&broker.addr(), "signals", topic, PARTITIONS),
        end,
        "the group's committed offsets"
    );
    let rows = exactly_once(&files, topic, &end, "partition", "offset");
    assert_eq!(rows.len(), produced.len());
    for ((p, o), id) in produced {
        let row = &rows[&(*p, *o)];
        assert_eq!(row["id"], Cell::Int(*id), "{p}/{o}");
        assert_eq!(row["what"], Cell::Str(format!("event {id} ✓")), "{p}/{o}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_writes_rows_held_in_memory_and_commits_them() {
    let broker = Nisshi::start();
    broker.create_topic("held", PARTITIONS as u32);
    let registry = Registry::start();
    let schema = AvroSchema::parse_str(EVENT).unwrap();
    let common = registry.register("held-value", EVENT);
    // The same schema under one subject per partition: one id per partition's last record.
    let last_ids: Vec<u32> = (0..PARTITIONS)
        .map(|p| registry.register(&format!("held-last-{p}"), EVENT))
        .collect();
    let mut records = Vec::new();
    let mut ids = Vec::new();
    for i in 0..PER_PARTITION * PARTITIONS as usize {
        let p = (i % PARTITIONS as usize) as i32;
        let last = i >= (PER_PARTITION - 1) * PARTITIONS as usize;
        let datum = to_avro_datum(
            &schema,
            AvroValue::Record(vec![
                ("id".into(), AvroValue::Long(i as i64)),
                ("what".into(), AvroValue::String(format!("event {i} ✓"))),
            ]),
        )
        .unwrap();
        let id = if last { last_ids[p as usize] } else { common };
        let mut value = vec![0];
        value.extend_from_slice(&id.to_be_bytes());
        value.extend(datum);
        records.push(Produced {
            partition: p,
            key: None,
            value: Some(value),
            headers: Vec::new(),
            timestamp: 1_700_000_000_000 + i as i64,
        });
        ids.push(i as i64);
    }
    let at = produce(&broker.addr(), "held", &records).await;
    let produced: BTreeMap<(i32, i64), i64> = at.into_iter().zip(ids).collect();

    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("out");
    let config = work.path().join("job.toml");
    let format = format!(
        "[format]\ntype = \"avro\"\nregistry = \"{}\"",
        registry.url()
    );
    std::fs::write(
        &config,
        job(
            &broker.addr(),
            "held",
            &format,
            "rows = 1000000\nage = \"1h\"",
            &out,
        ),
    )
    .unwrap();
    let mut run = Job::start(&config, &work.path().join("kingest.log"), false);
    wait_for(
        "every partition read to its last record",
        Duration::from_secs(120),
        || last_ids.iter().all(|id| registry.id_requests(*id) > 0),
        || {
            format!(
                "registry requests {:?}; log:\n{}",
                registry.requests(),
                run.log_tail()
            )
        },
    )
    .await;
    assert!(
        run.try_wait().is_none(),
        "kingest run stopped by itself:\n{}",
        run.log_tail()
    );
    // Nothing is on disk yet: the thresholds were not reached.
    assert_eq!(parquet_files(&out), Vec::<PathBuf>::new());
    assert_eq!(temporary_files(&out), Vec::<PathBuf>::new());
    run.signal(Signal::TERM);
    check_stopped(&mut run, &broker, "held", &out, &produced);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_with_files_open_commits_them_and_removes_nothing_else() {
    let broker = Nisshi::start();
    broker.create_topic("open", PARTITIONS as u32);
    let records: Vec<Produced> = (0..PER_PARTITION * PARTITIONS as usize)
        .map(|i| Produced {
            partition: (i % PARTITIONS as usize) as i32,
            key: Some(format!("k{i}").into_bytes()),
            value: Some(format!("{{\"id\": {i}, \"what\": \"event {i} ✓\"}}").into_bytes()),
            headers: Vec::new(),
            timestamp: 1_700_000_000_000 + i as i64,
        })
        .collect();
    let at = produce(&broker.addr(), "open", &records).await;
    let produced: BTreeMap<(i32, i64), i64> = at.into_iter().zip(0..).collect();

    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("out");
    let config = work.path().join("job.toml");
    // Rows go to the sink after 2 s; the sink's files are committed 2 s after they open.
    std::fs::write(
        &config,
        job(
            &broker.addr(),
            "open",
            "[format]\ntype = \"json\"",
            "rows = 1000000\nage = \"2s\"",
            &out,
        ),
    )
    .unwrap();
    let mut run = Job::start(&config, &work.path().join("kingest.log"), false);
    wait_for(
        "an open file for every partition",
        Duration::from_secs(120),
        || temporary_files(&out).len() >= PARTITIONS as usize,
        || {
            format!(
                "files {:?}; log:\n{}",
                temporary_files(&out),
                run.log_tail()
            )
        },
    )
    .await;
    run.signal(Signal::INT);
    check_stopped(&mut run, &broker, "open", &out, &produced);
}
