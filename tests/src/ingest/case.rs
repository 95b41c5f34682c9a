//! One format's end-to-end case ([`Case`], the cases themselves in [`super::cases`]): records
//! produced with librdkafka (keys, repeated and null headers, explicit timestamps, several
//! partitions, from [`envelope`]), the job reading them with every metadata column
//! ([`meta_columns`]) into a sink of the test's choice, and every cell each record's row
//! should hold, for the sink's test to compare with what it reads back.

use arrow_schema::{DataType, TimeUnit};
use kingest::config::Config;
use kingest::engine::RunSummary;

use super::job::{parse, source, PARTITION_OFFSET_COLUMNS};
use super::{produce, Cell, Produced};
use crate::peers::nisshi::Nisshi;

/// Partitions of every case's topic.
pub const PARTITIONS: i32 = 3;

/// The metadata columns every case adds after its own (the types are [`meta_types`]).
pub fn meta_columns() -> String {
    format!(
        r#"
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
{PARTITION_OFFSET_COLUMNS}
[[columns]]
name = "kafka_ts"
type = "timestamp(ms, UTC)"
source = "__timestamp"
"#
    )
}

/// A UTC timestamp type.
pub fn utc(unit: TimeUnit) -> DataType {
    DataType::Timestamp(unit, Some("UTC".into()))
}

/// The types of [`meta_columns`].
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

/// A row's expected cells, by column name.
pub type Cells = Vec<(&'static str, Cell)>;

/// One format's case: its `[format]` and `[[columns]]`, the records, and for each record the
/// value columns it should give.
pub struct Case {
    /// The topic (created with [`PARTITIONS`] partitions).
    pub topic: &'static str,
    /// The job's `[format]` and `[[columns]]` (the metadata columns are added after them).
    pub format_and_columns: String,
    /// Each record and the value columns it should give.
    pub records: Vec<(Produced, Cells)>,
    /// The value columns' expected Arrow types, in order.
    pub types: Vec<(&'static str, DataType)>,
}

impl Case {
    /// The value columns' types followed by the metadata columns' ([`meta_types`]).
    pub fn all_types(&self) -> Vec<(&'static str, DataType)> {
        let mut types = self.types.clone();
        types.extend(meta_types());
        types
    }

    /// Creates the topic on `broker` with [`PARTITIONS`] partitions and produces the records;
    /// returns where each was stored, (partition, offset), in the records' order.
    pub async fn produce(&self, broker: &Nisshi) -> Vec<(i32, i64)> {
        broker.create_topic(self.topic, PARTITIONS as u32);
        let produced: Vec<Produced> = self.records.iter().map(|(p, _)| p.clone()).collect();
        produce(&broker.addr(), self.topic, &produced).await
    }

    /// The job reading the topic from `broker` as `group`: the case's format and columns, the
    /// metadata columns, flushes of 97 rows (so the records span many files or transactions),
    /// then `sink` (the `[sink]` table).
    pub fn job(&self, broker: &Nisshi, group: &str, sink: &str) -> Config {
        let text = format!(
            "{}\n{}\n{}\n[flush]\nrows = 97\n\n{sink}",
            source(&broker.addr(), self.topic, group),
            self.format_and_columns,
            meta_columns(),
        );
        parse(&text, &format!("{group}.toml"))
    }

    /// For each record, in order: where it was stored (from `at`, as [`Case::produce`]
    /// returned it) and every cell its row should hold, value columns then metadata columns.
    pub fn expected(&self, at: &[(i32, i64)]) -> Vec<((i32, i64), Cells)> {
        assert_eq!(at.len(), self.records.len(), "a position for every record");
        self.records
            .iter()
            .zip(at)
            .map(|((record, value_cells), (p, o))| {
                let mut cells = value_cells.clone();
                cells.extend(meta_cells(self.topic, record, *p, *o));
                ((*p, *o), cells)
            })
            .collect()
    }

    /// Checks a run's summary: every record read and written as a row, no error.
    pub fn check_summary(&self, summary: &RunSummary) {
        let n = self.records.len() as u64;
        assert_eq!(
            (summary.records, summary.rows, summary.errors),
            (n, n, 0),
            "{}: the run's summary",
            self.topic
        );
    }
}
