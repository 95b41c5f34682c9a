//! The Delta transaction log, as far as an appending writer needs it: the actions (`protocol`,
//! `metaData`, `add`, `remove`, `txn`, `commitInfo`) in JSON, the names of log files, and the
//! replay of commits into a table state.
//!
//! A table is a directory with `_delta_log/` beside its data files. Version `N` of the table is
//! the file `_delta_log/{N:020}.json`: one JSON action per line, written once and never changed.
//! Replaying versions 0..=N gives the table at `N`: the last `protocol` and `metaData`, the set
//! of live files (each `add` minus the later `remove` of its path), and per application id the
//! last `txn` version. A checkpoint (`{N:020}.checkpoint.parquet`, see `checkpoint.rs`) holds
//! that replay at `N`, so a reader starts from the newest checkpoint and replays only the JSON
//! commits after it. `_last_checkpoint` names the newest checkpoint (a hint: the listing is the
//! truth).
//!
//! Offsets: each commit carries one `txn` per Kafka partition it covers, its `appId`
//! `{app_id}:{topic}:{partition}` and its `version` the offset to resume from (the `next` of
//! the rows committed). Kafka topic names cannot hold `:`, so the id splits unambiguously from
//! the right whatever the app id (the consumer group by default) holds. Delta keeps only the
//! latest `txn` per `appId`, so the table's state is exactly the resume point of every
//! partition, whatever the number of commits.
//!
//! Unknown fields and unknown kinds of actions are skipped when reading, as the protocol asks;
//! tables whose protocol needs a feature this writer does not implement are refused before
//! anything is written (see `schema.rs`).

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::error::DeltaError;
use crate::sink::{OffsetRange, PartitionKey};

/// The log's directory under the table root.
pub(crate) const LOG_DIR: &str = "_delta_log";

/// `_delta_log/_last_checkpoint`.
pub(crate) const LAST_CHECKPOINT: &str = "_delta_log/_last_checkpoint";

/// The root-relative path of version `v`'s commit.
pub(crate) fn commit_path(v: i64) -> String {
    format!("{LOG_DIR}/{v:020}.json")
}

/// The root-relative path of a single-file checkpoint at version `v`.
pub(crate) fn checkpoint_path(v: i64) -> String {
    format!("{LOG_DIR}/{v:020}.checkpoint.parquet")
}

/// A file of `_delta_log/`, by its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LogFile {
    /// `{v}.json`.
    Commit(i64),
    /// `{v}.checkpoint.parquet`, or part `part` of `parts` of a multi-part checkpoint.
    Checkpoint { version: i64, part: u32, parts: u32 },
    /// Anything else (`_last_checkpoint`, `.crc` files, compacted logs, temporary files).
    Other,
}

impl LogFile {
    /// Classifies a file name (no directory).
    pub(crate) fn parse(name: &str) -> LogFile {
        let digits = |s: &str| s.len() == 20 && s.bytes().all(|b| b.is_ascii_digit());
        if let Some(v) = name.strip_suffix(".json").filter(|v| digits(v)) {
            return v.parse().map_or(LogFile::Other, LogFile::Commit);
        }
        let Some(rest) = name.strip_suffix(".parquet") else {
            return LogFile::Other;
        };
        let mut it = rest.split('.');
        let (Some(v), Some("checkpoint")) = (it.next(), it.next()) else {
            return LogFile::Other;
        };
        let Some(version) = Some(v).filter(|v| digits(v)).and_then(|v| v.parse().ok()) else {
            return LogFile::Other;
        };
        match (it.next(), it.next(), it.next()) {
            (None, _, _) => LogFile::Checkpoint {
                version,
                part: 1,
                parts: 1,
            },
            (Some(p), Some(n), None) => match (p.parse(), n.parse()) {
                (Ok(part), Ok(parts)) if part >= 1 && part <= parts => LogFile::Checkpoint {
                    version,
                    part,
                    parts,
                },
                _ => LogFile::Other,
            },
            // `{v}.checkpoint.{uuid}.parquet`: a V2 checkpoint, only in tables with the
            // v2Checkpoint feature, which are refused.
            _ => LogFile::Other,
        }
    }
}

/// The `protocol` action: the reader and writer versions (and features) the table needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Protocol {
    pub min_reader_version: i32,
    pub min_writer_version: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reader_features: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub writer_features: Option<Vec<String>>,
}

/// `metaData.format`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Format {
    pub provider: String,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
}

/// The `metaData` action: the table's id, schema, partition columns and properties.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Metadata {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub format: Format,
    pub schema_string: String,
    #[serde(default)]
    pub partition_columns: Vec<String>,
    #[serde(default)]
    pub configuration: BTreeMap<String, Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_time: Option<i64>,
}

impl Metadata {
    /// A table property (`delta.checkpointInterval`, ...), if set.
    pub(crate) fn property(&self, key: &str) -> Option<&str> {
        self.configuration.get(key).and_then(|v| v.as_deref())
    }
}

/// The `add` action: a data file joins the table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Add {
    /// Relative to the table root, URI-encoded.
    pub path: String,
    pub partition_values: BTreeMap<String, Option<String>>,
    pub size: i64,
    pub modification_time: i64,
    pub data_change: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, Option<String>>>,
}

/// The `remove` action: a data file leaves the table (its bytes stay until a vacuum).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Remove {
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_timestamp: Option<i64>,
    pub data_change: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extended_file_metadata: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition_values: Option<BTreeMap<String, Option<String>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, Option<String>>>,
}

/// The `txn` action: an application's progress (here: a Kafka partition's next offset).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Txn {
    pub app_id: String,
    pub version: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated: Option<i64>,
}

/// One action to write, serialized as `{"add": {...}}` and so on.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) enum Action {
    CommitInfo(serde_json::Value),
    Protocol(Protocol),
    MetaData(Metadata),
    Txn(Txn),
    Add(Add),
    Remove(Remove),
}

/// One line of a commit as read: at most one of these is set; other kinds are skipped.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Line {
    add: Option<Add>,
    remove: Option<Remove>,
    txn: Option<Txn>,
    meta_data: Option<Metadata>,
    protocol: Option<Protocol>,
}

/// The text of a commit file: one JSON action per line.
pub(crate) fn commit_text(actions: &[Action]) -> String {
    let mut out = String::new();
    for a in actions {
        // Plain structs, maps and strings: serializing cannot fail.
        out.push_str(&serde_json::to_string(a).unwrap_or_default());
        out.push('\n');
    }
    out
}

/// The actions of a commit file's text (`path` names it in errors).
pub(crate) fn parse_commit(path: &str, text: &[u8]) -> Result<Vec<Read>, DeltaError> {
    let text = std::str::from_utf8(text).map_err(|e| DeltaError::Log {
        path: path.to_owned(),
        reason: format!("not UTF-8: {e}"),
    })?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let l: Line = serde_json::from_str(line).map_err(|e| DeltaError::Log {
            path: path.to_owned(),
            reason: format!("line {}: {e}", i + 1),
        })?;
        if let Some(a) = l.protocol {
            out.push(Read::Protocol(a));
        }
        if let Some(a) = l.meta_data {
            out.push(Read::MetaData(a));
        }
        if let Some(a) = l.txn {
            out.push(Read::Txn(a));
        }
        if let Some(a) = l.add {
            out.push(Read::Add(a));
        }
        if let Some(a) = l.remove {
            out.push(Read::Remove(a));
        }
    }
    Ok(out)
}

/// An action read from the log (a commit or a checkpoint).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Read {
    Protocol(Protocol),
    MetaData(Metadata),
    Txn(Txn),
    Add(Add),
    Remove(Remove),
}

/// The table at one version: what replaying the log up to it gives.
#[derive(Debug, Clone, Default)]
pub(crate) struct TableState {
    /// The version replayed up to (-1: no version yet).
    pub version: i64,
    pub protocol: Option<Protocol>,
    pub metadata: Option<Metadata>,
    /// The last `txn` of every application id.
    pub txns: HashMap<String, Txn>,
    /// Live files by path (kept only when asked: a writer that only appends needs none).
    pub files: Option<HashMap<String, Add>>,
    /// Files removed, by path, for vacuum (kept with `files`).
    pub tombstones: Option<HashMap<String, Remove>>,
}

impl TableState {
    /// Nothing replayed yet; `with_files` keeps the live files too (for checkpoints and
    /// resets).
    pub(crate) fn empty(with_files: bool) -> Self {
        Self {
            version: -1,
            files: with_files.then(HashMap::new),
            tombstones: with_files.then(HashMap::new),
            ..Self::default()
        }
    }

    /// Applies the actions of version `version` (or of a checkpoint at it).
    pub(crate) fn apply(&mut self, version: i64, actions: Vec<Read>) {
        for a in actions {
            match a {
                Read::Protocol(p) => self.protocol = Some(p),
                Read::MetaData(m) => self.metadata = Some(m),
                Read::Txn(t) => {
                    self.txns.insert(t.app_id.clone(), t);
                }
                Read::Add(add) => {
                    if let Some(t) = &mut self.tombstones {
                        t.remove(&add.path);
                    }
                    if let Some(f) = &mut self.files {
                        f.insert(add.path.clone(), add);
                    }
                }
                Read::Remove(r) => {
                    if let Some(f) = &mut self.files {
                        f.remove(&r.path);
                    }
                    if let Some(t) = &mut self.tombstones {
                        t.insert(r.path.clone(), r);
                    }
                }
            }
        }
        self.version = version;
    }

    /// The resume offsets `app_id` recorded, per Kafka partition.
    pub(crate) fn offsets(&self, app_id: &str) -> BTreeMap<PartitionKey, i64> {
        self.txns
            .values()
            .filter_map(|t| Some((parse_app_id(&t.app_id, app_id)?, t.version)))
            .collect()
    }
}

/// The `txn` application id of `key` for the job's `app_id`: `{app_id}:{topic}:{partition}`.
pub(crate) fn app_id_of(app_id: &str, key: &PartitionKey) -> String {
    format!("{app_id}:{}:{}", key.topic, key.partition)
}

/// The partition of a `txn` application id written for `app_id`, or `None` for another
/// application's id.
pub(crate) fn parse_app_id(txn_app_id: &str, app_id: &str) -> Option<PartitionKey> {
    let (rest, partition) = txn_app_id.rsplit_once(':')?;
    let (owner, topic) = rest.rsplit_once(':')?;
    if owner != app_id || topic.is_empty() {
        return None;
    }
    let partition: i32 = partition.parse().ok().filter(|p| *p >= 0)?;
    Some(PartitionKey::new(topic, partition))
}

/// The `tags` of an `add` that record which Kafka offsets its rows came from, so that
/// `kingest reset-offsets --sink` can take back files past a new offset: `kingest.partition`
/// (`topic:partition`), `kingest.offsets` (`first-next`, the commit's range) and
/// `kingest.app_id`.
pub(crate) fn offset_tags(
    app_id: &str,
    key: &PartitionKey,
    range: OffsetRange,
) -> BTreeMap<String, Option<String>> {
    BTreeMap::from([
        ("kingest.app_id".to_owned(), Some(app_id.to_owned())),
        (
            "kingest.partition".to_owned(),
            Some(format!("{}:{}", key.topic, key.partition)),
        ),
        (
            "kingest.offsets".to_owned(),
            Some(format!("{}-{}", range.first, range.next)),
        ),
    ])
}

/// The partition and offsets an `add` of `app_id` records in its tags, if it does.
pub(crate) fn tagged_offsets(add: &Add, app_id: &str) -> Option<(PartitionKey, OffsetRange)> {
    let tags = add.tags.as_ref()?;
    let get = |k: &str| tags.get(k).and_then(|v| v.as_deref());
    if get("kingest.app_id")? != app_id {
        return None;
    }
    let (topic, partition) = get("kingest.partition")?.rsplit_once(':')?;
    let (first, next) = get("kingest.offsets")?.split_once('-')?;
    Some((
        PartitionKey::new(topic, partition.parse().ok()?),
        OffsetRange::new(first.parse().ok()?, next.parse().ok()?),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delta_log_file_names_are_classified() {
        assert_eq!(
            LogFile::parse("00000000000000000012.json"),
            LogFile::Commit(12)
        );
        assert_eq!(
            LogFile::parse("00000000000000000010.checkpoint.parquet"),
            LogFile::Checkpoint {
                version: 10,
                part: 1,
                parts: 1
            }
        );
        assert_eq!(
            LogFile::parse("00000000000000000010.checkpoint.0000000002.0000000003.parquet"),
            LogFile::Checkpoint {
                version: 10,
                part: 2,
                parts: 3
            }
        );
        for other in [
            "_last_checkpoint",
            "00000000000000000012.crc",
            "12.json",
            ".00000000000000000012.json.tmp",
            "00000000000000000010.checkpoint.80a083e8-7026-4e79-81be-64bd76c43a11.parquet",
            "00000000000000000001.00000000000000000009.compacted.json",
        ] {
            assert_eq!(LogFile::parse(other), LogFile::Other, "{other}");
        }
        assert_eq!(commit_path(3), "_delta_log/00000000000000000003.json");
    }

    #[test]
    fn delta_app_ids_split_from_the_right() {
        let key = PartitionKey::new("events.v2-x_y", 7);
        for app in ["g", "a:b", "group-with-dashes", ""] {
            let id = app_id_of(app, &key);
            assert_eq!(parse_app_id(&id, app), Some(key.clone()), "{id}");
        }
        let id = app_id_of("a:b", &key);
        assert_eq!(parse_app_id(&id, "a"), None);
        assert_eq!(parse_app_id(&id, "b"), None);
        // kafka-delta-ingest's `{app_id}-{partition}` ids are another application's.
        assert_eq!(
            parse_app_id("kafka_delta_ingest-3", "kafka_delta_ingest"),
            None
        );
        assert_eq!(parse_app_id("g:t:-1", "g"), None);
        assert_eq!(parse_app_id("g:t:x", "g"), None);
    }

    #[test]
    fn delta_commits_round_trip_and_replay() {
        let key = PartitionKey::new("t", 0);
        let add = Add {
            path: "a%25b/f.parquet".into(),
            partition_values: BTreeMap::from([("d".into(), None)]),
            size: 10,
            modification_time: 1,
            data_change: true,
            stats: Some("{\"numRecords\":3}".into()),
            tags: Some(offset_tags("g", &key, OffsetRange::new(5, 9))),
        };
        let text = commit_text(&[
            Action::CommitInfo(serde_json::json!({"operation": "WRITE"})),
            Action::Txn(Txn {
                app_id: app_id_of("g", &key),
                version: 9,
                last_updated: Some(1),
            }),
            Action::Add(add.clone()),
        ]);
        assert!(text.starts_with("{\"commitInfo\":{\"operation\":\"WRITE\"}}\n{\"txn\":{\"appId\":\"g:t:0\",\"version\":9,\"lastUpdated\":1}}\n{\"add\":{\"path\":\"a%25b/f.parquet\",\"partitionValues\":{\"d\":null},\"size\":10,"), "{text}");
        let read = parse_commit("x", text.as_bytes()).unwrap();
        assert_eq!(read.len(), 2);
        let mut state = TableState::empty(true);
        state.apply(0, read);
        assert_eq!(state.offsets("g"), BTreeMap::from([(key.clone(), 9)]));
        assert_eq!(
            tagged_offsets(&add, "g"),
            Some((key, OffsetRange::new(5, 9)))
        );
        assert_eq!(tagged_offsets(&add, "h"), None);
        state.apply(
            1,
            vec![Read::Remove(Remove {
                path: add.path.clone(),
                deletion_timestamp: Some(2),
                data_change: true,
                extended_file_metadata: None,
                partition_values: None,
                size: None,
                tags: None,
            })],
        );
        assert!(state.files.as_ref().unwrap().is_empty());
        assert_eq!(state.tombstones.as_ref().unwrap().len(), 1);
        // Unknown actions and fields are skipped; malformed lines are errors naming the line.
        let other =
            b"{\"cdc\":{\"path\":\"x\"}}\n{\"txn\":{\"appId\":\"a\",\"version\":1,\"new\":2}}\n";
        assert_eq!(parse_commit("x", other).unwrap().len(), 1);
        let err = parse_commit("v.json", b"{}\n{\"txn\":{}}").unwrap_err();
        assert!(err.to_string().starts_with("v.json: line 2:"), "{err}");
    }
}
