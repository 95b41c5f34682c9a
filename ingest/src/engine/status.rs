//! Where a job stands, read without changing anything: its partitions, the offsets its sink
//! holds, the offsets its consumer group committed, and each partition's log start and end.
//! `kingest check`, `kingest test` and `kingest reset-offsets` build on this.
//!
//! The sink's offsets are the ones that count: `kingest run` resumes each partition from the
//! sink's offset when it has one, and only otherwise from the group's committed offset (the
//! engine commits to the group after each durable write, for lag tools). The sink is opened
//! through [`super::open_sink`] like the run does, so every sink (PostgreSQL, and any added
//! later) reports its offsets the same way; a Parquet sink is opened with the run's settings
//! but without `partition_by`, since its footers are read whatever the layout and the job's
//! columns are then not needed. A local Parquet directory that does not exist yet holds no
//! offsets and is not created.

use std::collections::HashMap;

use arrow_schema::{Schema, SchemaRef};
use kingest_client::admin::{Admin, GroupDescription, GroupMember, OffsetSpec};
use kingest_client::{Client, ClientError};
use kingest_protocol::ErrorCode;

use super::{columns, open_sink, EngineError};
use crate::config::{Config, Isolation, SinkConfig, StartAt};
use crate::schema::{arrow_schema, ColumnSpec};
use crate::sink::{CommittedOffsets, Sink};

/// The job's partitions, sorted: every partition of `source.topics`, or of every topic
/// matching `source.topic_pattern`.
pub async fn job_partitions(
    config: &Config,
    client: &Client,
) -> Result<Vec<(String, i32)>, EngineError> {
    let topics = match &config.source.topic_pattern {
        Some(p) => {
            let re = regex::Regex::new(p)
                .map_err(|e| EngineError::Setup(format!("source.topic_pattern: {e}")))?;
            let all = Admin::new(client.clone()).list_topics().await?;
            all.into_iter().filter(|t| re.is_match(t)).collect()
        }
        None => config.source.topic_names(),
    };
    let mut out = Vec::new();
    for topic in topics {
        let n = client.partition_count(&topic).await?;
        out.extend((0..n as i32).map(|p| (topic.clone(), p)));
    }
    out.sort();
    Ok(out)
}

/// The job's columns: `[[columns]]`, or inferred as `kingest run` infers them (JSON from a
/// sample, Avro from the registry), which prints them.
pub async fn resolve_columns(
    config: &Config,
    client: &Client,
) -> Result<Vec<ColumnSpec>, EngineError> {
    if config.columns.is_empty() {
        super::infer(config, client, &super::format_spec(&config.format)?).await
    } else {
        columns(config)
    }
}

/// Whether `kingest run` starts `key` from `source.start` even when the group has a committed
/// offset for it: when the start names an offset for that partition, or is a time. The run
/// resumes a partition from the sink's offset, else from such a start, else from the group's
/// committed offset, else from `earliest`/`latest` (see `Job::assigned` in `job.rs`); this is
/// the one place `test` and `reset-offsets` mirror that order from.
pub fn start_overrides_group(config: &Config, key: &(String, i32)) -> bool {
    match &config.source.start {
        StartAt::Timestamp(_) => true,
        StartAt::Offsets(map) => map.contains_key(key),
        StartAt::Earliest | StartAt::Latest => false,
    }
}

/// Whether `[sink]` is a local Parquet directory that does not exist (and so holds nothing).
fn missing_local_dir(config: &Config) -> bool {
    let SinkConfig::Parquet { path, .. } = &config.sink else {
        return false;
    };
    let local = match path.split_once("://") {
        None => path.as_str(),
        Some(("file", p)) => p,
        Some(_) => return false,
    };
    !std::path::Path::new(local).exists()
}

/// How `[sink]` is described to users: `parquet ./data`, `delta ./table`, `stdout`,
/// `postgres table t`.
pub fn sink_label(config: &Config) -> String {
    if let SinkConfig::Parquet { path, .. } = &config.sink {
        format!("parquet {path}")
    } else if let SinkConfig::Delta { path, .. } = &config.sink {
        format!("delta {path}")
    } else if let SinkConfig::Postgres { table, .. } = &config.sink {
        format!("postgres table {table}")
    } else if let SinkConfig::Iceberg { table, .. } = &config.sink {
        format!("iceberg table {table}")
    } else {
        "stdout".to_owned()
    }
}

/// The offsets the sink holds, per partition (opening it as `run` does; see the module docs).
pub async fn sink_offsets(
    config: &Config,
    schema: SchemaRef,
) -> Result<CommittedOffsets, EngineError> {
    if missing_local_dir(config) {
        return Ok(CommittedOffsets::new());
    }
    if let Some(dc) = super::delta_config(config)? {
        // The txn actions of the job's app id, read without creating the table (none yet: no
        // offsets) and whatever the job's columns are.
        return Ok(crate::sink::DeltaSink::read_offsets(&dc).await?);
    }
    if let Some(mut pc) = super::parquet_config(config)? {
        // Footers are read whatever the layout: without `partition_by` the columns do not
        // matter (they may be unknown when they cannot be inferred).
        pc.partition_by = None;
        let sink = crate::sink::ParquetSink::open(pc, schema).await?;
        return Ok(sink.committed_offsets().await?);
    }
    if let Some(ic) = super::iceberg_config(config)? {
        // Read from the catalog without creating the table or checking the columns.
        return Ok(crate::sink::iceberg::table_offsets(&ic).await?);
    }
    let sink = open_sink(config, schema).await?;
    let offsets = sink.committed_offsets().await?;
    // Nothing was written, so closing flushes nothing; it releases connections.
    sink.close().await?;
    Ok(offsets)
}

/// The schema to open the sink with when only its offsets are wanted. Parquet footers and
/// stdout need no columns, so none are inferred for them; a PostgreSQL sink checks its table
/// against the job's columns, or, when they cannot be inferred (an empty topic), none.
pub async fn schema_for_offsets(config: &Config, client: &Client) -> SchemaRef {
    if !matches!(config.sink, SinkConfig::Postgres { .. }) {
        return std::sync::Arc::new(Schema::empty());
    }
    match resolve_columns(config, client).await {
        Ok(cols) => arrow_schema(&cols),
        Err(e) => {
            tracing::warn!(error = %e, "columns unknown; opening the sink without them");
            std::sync::Arc::new(Schema::empty())
        }
    }
}

/// One partition of a job.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PartitionStatus {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The offset the sink resumes from, if it holds one.
    pub sink: Option<i64>,
    /// The group's committed offset, if any.
    pub group: Option<i64>,
    /// The log start offset (the oldest record kept).
    pub log_start: i64,
    /// The log end offset (the last stable offset under `read_committed`).
    pub log_end: i64,
    /// Records between where the job resumes and the log end: from the sink's offset, else the
    /// group's, else (nothing consumed yet) from the log start.
    pub lag: i64,
}

impl PartitionStatus {
    /// Where `kingest run` continues this partition, if the sink or the group says.
    pub fn position(&self) -> Option<i64> {
        self.sink.or(self.group)
    }
}

/// A job's partitions and its group.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct JobStatus {
    /// The consumer group.
    pub group: String,
    /// The group's state (`Empty`, `Stable`, `Dead` for a group that does not exist, ...).
    pub group_state: String,
    /// The group's members, as [`member_label`] names them.
    pub members: Vec<String>,
    /// The sink, as [`sink_label`] describes it.
    pub sink: String,
    /// Every partition, sorted.
    pub partitions: Vec<PartitionStatus>,
}

impl JobStatus {
    /// The lag summed over the partitions.
    pub fn total_lag(&self) -> i64 {
        self.partitions.iter().map(|p| p.lag).sum()
    }
}

/// The group's state and its members as [`member_label`] names them. A group the coordinator does not
/// know (never used, or expired) is reported as `Dead` with no members, as Kafka describes it.
pub async fn describe_group(
    admin: &Admin,
    group: &str,
) -> Result<(String, Vec<String>), EngineError> {
    match admin.describe_group(group).await {
        Ok(g) => Ok((g.state.clone(), member_names(&g))),
        Err(ClientError::Broker { source, .. }) if source.code == ErrorCode::GroupIdNotFound => {
            Ok(("Dead".to_owned(), Vec::new()))
        }
        Err(e) => Err(e.into()),
    }
}

fn member_names(group: &GroupDescription) -> Vec<String> {
    group.members.iter().map(member_label).collect()
}

/// How a member is named to users: `client-id@host` as Kafka's tools show it, with the member
/// id where the broker reports no client id or host (nisshi reports neither; its member ids
/// start with the client id).
pub fn member_label(member: &GroupMember) -> String {
    let host = member.client_host.trim_start_matches('/');
    match (member.client_id.is_empty(), host.is_empty()) {
        (false, false) => format!("{}@{host} ({})", member.client_id, member.member_id),
        (false, true) => format!("{} ({})", member.client_id, member.member_id),
        (true, false) => format!("{}@{host}", member.member_id),
        (true, true) => format!("member {}", member.member_id),
    }
}

/// Log start and end offsets of `parts` (the end being the last stable offset under
/// `read_committed`, which is as far as the job reads).
pub async fn log_bounds(
    config: &Config,
    admin: &Admin,
    parts: &[(String, i32)],
) -> Result<HashMap<(String, i32), (i64, i64)>, EngineError> {
    let read_committed = config.source.isolation == Isolation::ReadCommitted;
    let specs = |spec: OffsetSpec| -> Vec<(&str, i32, OffsetSpec)> {
        parts.iter().map(|(t, p)| (t.as_str(), *p, spec)).collect()
    };
    let starts = admin
        .list_offsets(&specs(OffsetSpec::Earliest), read_committed)
        .await?;
    let ends = admin
        .list_offsets(&specs(OffsetSpec::Latest), read_committed)
        .await?;
    Ok(parts
        .iter()
        .map(|k| {
            let start = starts.get(k).map_or(0, |o| o.offset.max(0));
            let end = ends.get(k).map_or(start, |o| o.offset.max(start));
            (k.clone(), (start, end))
        })
        .collect())
}

/// The group's committed offsets of `parts` (partitions without one are absent).
pub async fn group_offsets(
    admin: &Admin,
    group: &str,
    parts: &[(String, i32)],
) -> Result<HashMap<(String, i32), i64>, EngineError> {
    if parts.is_empty() {
        return Ok(HashMap::new());
    }
    let refs: Vec<(&str, i32)> = parts.iter().map(|(t, p)| (t.as_str(), *p)).collect();
    let mut committed = admin.committed_offsets(group, Some(&refs)).await?;
    committed.retain(|_, o| *o >= 0);
    Ok(committed)
}

/// Where a job stands (see the module docs), given the sink's offsets.
pub async fn job_status(
    config: &Config,
    client: &Client,
    sink: &CommittedOffsets,
) -> Result<JobStatus, EngineError> {
    let admin = Admin::new(client.clone());
    let parts = job_partitions(config, client).await?;
    let group = &config.source.group;
    let (group_state, members) = describe_group(&admin, group).await?;
    let committed = group_offsets(&admin, group, &parts).await?;
    let bounds = log_bounds(config, &admin, &parts).await?;
    let partitions = parts
        .into_iter()
        .map(|key| {
            let (log_start, log_end) = bounds.get(&key).copied().unwrap_or((0, 0));
            let sink = sink.get(&key).copied();
            let group = committed.get(&key).copied();
            let from = sink.or(group).unwrap_or(log_start);
            PartitionStatus {
                lag: (log_end - from).max(0),
                topic: key.0,
                partition: key.1,
                sink,
                group,
                log_start,
                log_end,
            }
        })
        .collect();
    Ok(JobStatus {
        group: group.clone(),
        group_state,
        members,
        sink: sink_label(config),
        partitions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(sink: &str) -> Config {
        Config::parse(
            &format!(
                "[source]\nbrokers = \"b:9092\"\ntopics = [\"t\"]\n\n[[columns]]\nname = \"a\"\ntype = \"int64\"\n\n[sink]\n{sink}\n"
            ),
            "test.toml",
        )
        .unwrap()
    }

    #[test]
    fn sinks_are_labelled() {
        assert_eq!(
            sink_label(&config("type = \"parquet\"\npath = \"./data\"")),
            "parquet ./data"
        );
        assert_eq!(sink_label(&config("type = \"stdout\"")), "stdout");
        assert_eq!(
            sink_label(&config(
                "type = \"postgres\"\nurl = \"postgres://x\"\ntable = \"events\""
            )),
            "postgres table events"
        );
    }

    #[test]
    fn explicit_offsets_and_times_win_over_the_group() {
        let with_start = |start: &str| {
            Config::parse(
                &format!(
                    "[source]\nbrokers = \"b:9092\"\ntopics = [\"t\"]\nstart = {start}\n\n[sink]\ntype = \"stdout\"\n"
                ),
                "test.toml",
            )
            .unwrap()
        };
        let k0 = ("t".to_owned(), 0);
        let k1 = ("t".to_owned(), 1);
        assert!(!start_overrides_group(&with_start("\"earliest\""), &k0));
        assert!(!start_overrides_group(&with_start("\"latest\""), &k0));
        assert!(start_overrides_group(&with_start("\"2024-01-01\""), &k0));
        let offsets = with_start("{ offsets = { \"t:0\" = 5 } }");
        assert!(start_overrides_group(&offsets, &k0));
        assert!(!start_overrides_group(&offsets, &k1));
    }

    #[tokio::test]
    async fn a_missing_local_directory_holds_no_offsets_and_is_not_created() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("not-yet");
        let c = config(&format!(
            "type = \"parquet\"\npath = \"{}\"",
            missing.display()
        ));
        assert!(missing_local_dir(&c));
        let offsets = sink_offsets(&c, std::sync::Arc::new(Schema::empty()))
            .await
            .unwrap();
        assert!(offsets.is_empty());
        assert!(!missing.exists());
        let c = config(&format!(
            "type = \"parquet\"\npath = \"file://{}\"",
            missing.display()
        ));
        assert!(missing_local_dir(&c));
        assert!(!missing_local_dir(&config(
            "type = \"parquet\"\npath = \"s3://bucket/x\""
        )));
        assert!(!missing_local_dir(&config("type = \"stdout\"")));
    }

    #[tokio::test]
    async fn a_delta_tables_offsets_are_its_txn_versions() {
        use crate::sink::{DeltaSink, OffsetRange, PartitionKey, Sink};
        use arrow_array::{Int64Array, RecordBatch};
        let dir = tempfile::tempdir().unwrap();
        let table = dir.path().join("t");
        let c = config(&format!("type = \"delta\"\npath = \"{}\"", table.display()));
        assert_eq!(sink_label(&c), format!("delta {}", table.display()));
        // No table yet: no offsets, and nothing is created.
        let offsets = sink_offsets(&c, std::sync::Arc::new(Schema::empty()))
            .await
            .unwrap();
        assert!(offsets.is_empty());
        assert!(!table.exists());
        let dc = crate::engine::delta_config(&c).unwrap().unwrap();
        let schema = arrow_schema(&columns(&c).unwrap());
        let mut sink = DeltaSink::open(dc, schema.clone()).await.unwrap();
        let batch = RecordBatch::try_new(
            schema,
            vec![std::sync::Arc::new(Int64Array::from(vec![1, 2]))],
        )
        .unwrap();
        sink.write(&PartitionKey::new("t", 0), &batch, OffsetRange::new(5, 9))
            .await
            .unwrap();
        sink.close().await.unwrap();
        // Read without the job's columns, as `kingest check` does when they are unknown.
        let offsets = sink_offsets(&c, std::sync::Arc::new(Schema::empty()))
            .await
            .unwrap();
        assert_eq!(offsets, CommittedOffsets::from([(("t".to_owned(), 0), 9)]));
    }
}
