//! One format's end-to-end case: produce records with librdkafka (keys, repeated and null
//! headers, explicit timestamps, several partitions), run the job until the end of the topic,
//! and compare the Parquet output read back independently with what was produced, every
//! column, metadata columns included, with the exactly-once check over footer offsets.

use std::collections::BTreeMap;

use arrow_schema::{DataType, TimeUnit};
use kingest::config::Config;
use kingest::engine::{run, RunOptions, RunSummary};

use super::{exactly_once, produce, read_dir, Cell, Produced};
use crate::peers::nisshi::Nisshi;

/// Partitions of every case's topic.
pub const PARTITIONS: i32 = 3;

/// The metadata columns every case adds after its own.
pub const META_COLUMNS: &str = r#"
[[columns]]
name = "key"
type = "string"
source = "__key"

[[columns]]
name = "trace"
type = "string"
source = "__header$trace"

[[columns]]
name = "topic"
type = "string"
source = "__topic"

[[columns]]
name = "partition"
type = "int32"
source = "__partition"

[[columns]]
name = "offset"
type = "int64"
source = "__offset"

[[columns]]
name = "kafka_ts"
type = "timestamp(ms, UTC)"
source = "__timestamp"
"#;

/// A UTC timestamp type.
pub fn utc(unit: TimeUnit) -> DataType {
    DataType::Timestamp(unit, Some("UTC".into()))
}

/// The types of [`META_COLUMNS`].
pub fn meta_types() -> Vec<(&'static str, DataType)> {
    vec![
        ("key", DataType::Utf8),
        ("trace", DataType::Utf8),
        ("topic", DataType::Utf8),
        ("partition", DataType::Int32),
        ("offset", DataType::Int64),
        ("kafka_ts", utc(TimeUnit::Millisecond)),
    ]
}

/// A record's key (none for every fifth), headers (`trace` repeated, its last value the one
/// that counts, sometimes null, sometimes absent) and timestamp.
pub fn envelope(i: usize, value: Option<Vec<u8>>) -> Produced {
    let mut headers = vec![("trace".to_owned(), Some(b"superseded".to_vec()))];
    headers.push(("other".to_owned(), Some(vec![0xff, 0])));
    match i % 10 {
        0 => headers.push(("trace".to_owned(), None)),
        1 => headers.clear(),
        _ => headers.push(("trace".to_owned(), Some(format!("t-{i}-ß").into_bytes()))),
    }
    Produced {
        partition: (i % PARTITIONS as usize) as i32,
        key: (!i.is_multiple_of(5)).then(|| format!("key-{i}-é").into_bytes()),
        value,
        headers,
        timestamp: 1_700_000_000_000 + (i as i64) * 1_001,
    }
}

/// The metadata cells `envelope(i)` should produce at (partition, offset).
pub fn meta_cells(
    topic: &str,
    r: &Produced,
    partition: i32,
    offset: i64,
) -> Vec<(&'static str, Cell)> {
    let trace = r
        .headers
        .iter()
        .rev()
        .find(|(k, _)| k == "trace")
        .and_then(|(_, v)| v.as_ref())
        .map_or(Cell::Null, |v| {
            Cell::Str(String::from_utf8(v.clone()).unwrap())
        });
    vec![
        (
            "key",
            r.key.as_ref().map_or(Cell::Null, |k| {
                Cell::Str(String::from_utf8(k.clone()).unwrap())
            }),
        ),
        ("trace", trace),
        ("topic", Cell::s(topic)),
        ("partition", Cell::Int(partition.into())),
        ("offset", Cell::Int(offset)),
        ("kafka_ts", Cell::Ts(r.timestamp)),
    ]
}

/// One format's case: its `[format]` and `[[columns]]`, the records, and for each record the
/// value columns it should give.
pub struct Case {
    /// The topic (created with [`PARTITIONS`] partitions).
    pub topic: &'static str,
    /// The job's `[format]` and `[[columns]]` (the metadata columns are added after them).
    pub format_and_columns: String,
    /// Each record and the value columns it should give.
    pub records: Vec<(Produced, Vec<(&'static str, Cell)>)>,
    /// The value columns' expected Arrow types, in order.
    pub types: Vec<(&'static str, DataType)>,
}

/// Produces the case's records, runs the job until the end of the topic, and checks the
/// Parquet output against them.
pub async fn check(case: Case) -> RunSummary {
    let broker = Nisshi::start();
    broker.create_topic(case.topic, PARTITIONS as u32);
    let produced: Vec<Produced> = case.records.iter().map(|(p, _)| p.clone()).collect();
    let at = produce(&broker.addr(), case.topic, &produced).await;
    let dir = tempfile::tempdir().unwrap();
    let job = format!(
        r#"
[source]
brokers = "{}"
topics = ["{}"]
group = "formats"

{}
{META_COLUMNS}
[flush]
rows = 97

[sink]
type = "parquet"
path = "{}"
"#,
        broker.addr(),
        case.topic,
        case.format_and_columns,
        dir.path().display()
    );
    let config = Config::parse(&job, "formats.toml").unwrap();
    let summary = run(
        config,
        RunOptions {
            until_eof: true,
            ..RunOptions::default()
        },
        std::future::pending(),
    )
    .await
    .unwrap();

    let files = read_dir(dir.path());
    assert!(!files.is_empty(), "no Parquet files written");
    let mut want_types = case.types.clone();
    want_types.extend(meta_types());
    for f in &files {
        let got: Vec<(&str, &DataType)> = f
            .schema
            .fields()
            .iter()
            .map(|f| (f.name().as_str(), f.data_type()))
            .collect();
        let want: Vec<(&str, &DataType)> = want_types.iter().map(|(n, t)| (*n, t)).collect();
        assert_eq!(got, want, "{}: schema", f.path.display());
    }
    let mut end = BTreeMap::new();
    for (p, o) in &at {
        let e = end.entry(*p).or_insert(0);
        *e = (*e).max(o + 1);
    }
    let rows = exactly_once(&files, case.topic, &end, "partition", "offset");
    assert_eq!(rows.len(), case.records.len(), "rows written");
    for (i, ((record, value_cells), (p, o))) in case.records.iter().zip(&at).enumerate() {
        let mut want: BTreeMap<String, Cell> = value_cells
            .iter()
            .cloned()
            .map(|(n, c)| (n.to_owned(), c))
            .collect();
        want.extend(
            meta_cells(case.topic, record, *p, *o)
                .into_iter()
                .map(|(n, c)| (n.to_owned(), c)),
        );
        let got = rows
            .get(&(*p, *o))
            .unwrap_or_else(|| panic!("record {i} at {p}/{o} missing"));
        for (name, want_cell) in &want {
            assert_eq!(
                got.get(name),
                Some(want_cell),
                "record {i} ({p}/{o}) column {name}: {got:?}"
            );
        }
        assert_eq!(got.len(), want.len(), "record {i}: columns {got:?}");
    }
    assert_eq!(
        (summary.records, summary.rows, summary.errors),
        (case.records.len() as u64, case.records.len() as u64, 0)
    );
    summary
}
