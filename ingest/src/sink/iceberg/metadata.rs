//! Table metadata (format version 2): read from its JSON, a new table's metadata, and the
//! metadata after appending a snapshot.
//!
//! The JSON object is kept whole and edited in place, so fields this sink does not know
//! (statistics, other branches and tags, properties, fields of newer writers) survive its
//! commits. Offsets live in snapshot summaries: `kingest.offsets.<group>` holds, for one
//! consumer group, every partition's next offset as `{"topic": {"partition": next}}`, merged
//! over all the group's writers, so the newest snapshot carrying the key says where each
//! partition resumes (the Iceberg Kafka Connect sink keeps `kafka.connect.offsets.<topic>.
//! <group>` the same way). `kingest.commit-id` names the commit, so a writer that lost the
//! answer to its commit can tell whether it landed.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::partition::Spec;
use super::types::IceSchema;

/// The summary key prefix of a group's offsets.
pub(crate) const OFFSETS_PREFIX: &str = "kingest.offsets.";
/// The summary key of a commit's id.
pub(crate) const COMMIT_ID_KEY: &str = "kingest.commit-id";
/// How many earlier metadata files `metadata-log` keeps by default
/// (`write.metadata.previous-versions-max`).
const PREVIOUS_VERSIONS_MAX: usize = 100;

/// Topic → partition → next offset.
pub(crate) type GroupOffsets = BTreeMap<String, BTreeMap<i32, i64>>;

/// A table's metadata: see the [module docs](self).
#[derive(Debug, Clone)]
pub(crate) struct TableMetadata {
    json: Map<String, Value>,
}

/// One snapshot, as far as this sink reads it.
#[derive(Debug, Clone)]
pub(crate) struct SnapshotView {
    pub id: i64,
    pub parent: Option<i64>,
    pub manifest_list: Option<String>,
    pub summary: Map<String, Value>,
    pub timestamp_ms: i64,
}

impl TableMetadata {
    pub(crate) fn parse(bytes: &[u8]) -> Result<TableMetadata, String> {
        let text: Vec<u8>;
        let bytes = if bytes.starts_with(&[0x1f, 0x8b]) {
            use std::io::Read;
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(bytes)
                .read_to_end(&mut out)
                .map_err(|e| format!("gzip: {e}"))?;
            text = out;
            &text[..]
        } else {
            bytes
        };
        match serde_json::from_slice(bytes).map_err(|e| e.to_string())? {
            Value::Object(json) => {
                let m = TableMetadata { json };
                let v = m.format_version();
                if v != 2 {
                    return Err(format!(
                        "table format version {v}: this sink writes version 2 tables only"
                    ));
                }
                Ok(m)
            }
            _ => Err("table metadata is not a JSON object".into()),
        }
    }

    pub(crate) fn from_value(v: Value) -> Result<TableMetadata, String> {
        TableMetadata::parse(&serde_json::to_vec(&v).unwrap_or_default())
    }

    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(&self.json).unwrap_or_default()
    }

    fn i64(&self, k: &str) -> Option<i64> {
        self.json.get(k).and_then(Value::as_i64)
    }

    pub(crate) fn format_version(&self) -> i64 {
        self.i64("format-version").unwrap_or(1)
    }

    pub(crate) fn table_uuid(&self) -> &str {
        self.json
            .get("table-uuid")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    pub(crate) fn location(&self) -> &str {
        self.json
            .get("location")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .trim_end_matches('/')
    }

    pub(crate) fn last_sequence_number(&self) -> i64 {
        self.i64("last-sequence-number").unwrap_or(0)
    }

    pub(crate) fn property(&self, key: &str) -> Option<&str> {
        self.json.get("properties")?.get(key)?.as_str()
    }

    /// The current schema.
    pub(crate) fn schema(&self) -> Result<IceSchema, String> {
        let id = self.i64("current-schema-id").unwrap_or(0);
        let schemas = self
            .json
            .get("schemas")
            .and_then(Value::as_array)
            .ok_or("metadata without schemas")?;
        let s = schemas
            .iter()
            .find(|s| s.get("schema-id").and_then(Value::as_i64) == Some(id))
            .ok_or_else(|| format!("current schema {id} is not among the schemas"))?;
        IceSchema::from_json(s)
    }

    /// The default partition spec's JSON.
    pub(crate) fn default_spec(&self) -> Result<&Value, String> {
        let id = self.i64("default-spec-id").unwrap_or(0);
        self.json
            .get("partition-specs")
            .and_then(Value::as_array)
            .and_then(|specs| {
                specs
                    .iter()
                    .find(|s| s.get("spec-id").and_then(Value::as_i64) == Some(id))
            })
            .ok_or_else(|| format!("default partition spec {id} is not among the specs"))
    }

    /// The snapshot `main` points at.
    pub(crate) fn current_snapshot_id(&self) -> Option<i64> {
        let main = self
            .json
            .get("refs")
            .and_then(|r| r.get("main"))
            .and_then(|m| m.get("snapshot-id"))
            .and_then(Value::as_i64);
        main.or_else(|| self.i64("current-snapshot-id"))
            .filter(|id| *id >= 0)
    }

    pub(crate) fn snapshot(&self, id: i64) -> Option<SnapshotView> {
        let s = self
            .json
            .get("snapshots")?
            .as_array()?
            .iter()
            .find(|s| s.get("snapshot-id").and_then(Value::as_i64) == Some(id))?;
        Some(SnapshotView {
            id,
            timestamp_ms: s.get("timestamp-ms").and_then(Value::as_i64).unwrap_or(0),
            parent: s.get("parent-snapshot-id").and_then(Value::as_i64),
            manifest_list: s
                .get("manifest-list")
                .and_then(Value::as_str)
                .map(str::to_owned),
            summary: s
                .get("summary")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default(),
        })
    }

    /// Every snapshot's id, in the metadata's order.
    pub(crate) fn snapshot_ids(&self) -> Vec<i64> {
        self.json
            .get("snapshots")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|s| s.get("snapshot-id").and_then(Value::as_i64))
            .collect()
    }

    /// The snapshots branches and tags point at (`main` included), by ref name.
    pub(crate) fn refs(&self) -> BTreeMap<String, i64> {
        let mut out: BTreeMap<String, i64> = self
            .json
            .get("refs")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.clone(), v.get("snapshot-id")?.as_i64()?)))
            .collect();
        if let Some(current) = self.current_snapshot_id() {
            out.entry("main".into()).or_insert(current);
        }
        out
    }

    /// The default partition spec's id.
    pub(crate) fn default_spec_id(&self) -> i32 {
        self.i64("default-spec-id").unwrap_or(0) as i32
    }

    /// The metadata without the snapshots `expired` (snapshot expiry), their entries of
    /// `snapshot-log` and any statistics files of theirs; `previous` is where this metadata
    /// was read from (for `metadata-log`).
    pub(crate) fn without_snapshots(
        &self,
        expired: &std::collections::HashSet<i64>,
        previous: &str,
        now_ms: i64,
    ) -> TableMetadata {
        let mut j = self.json.clone();
        let gone = |v: &Value| {
            v.get("snapshot-id")
                .and_then(Value::as_i64)
                .is_some_and(|id| expired.contains(&id))
        };
        for key in [
            "snapshots",
            "snapshot-log",
            "statistics",
            "partition-statistics",
        ] {
            if let Some(Value::Array(a)) = j.get_mut(key) {
                a.retain(|v| !gone(v));
            }
        }
        let before = self.i64("last-updated-ms").unwrap_or(now_ms);
        j.insert("last-updated-ms".into(), json!(now_ms));
        self.log_previous(&mut j, previous, before);
        TableMetadata { json: j }
    }

    /// Adds `previous` (the metadata file this was read from) to `metadata-log` and drops the
    /// oldest entries beyond `write.metadata.previous-versions-max` (100 by default, as in
    /// Java's `TableMetadata.Builder`).
    fn log_previous(&self, j: &mut Map<String, Value>, previous: &str, before: i64) {
        push(
            j,
            "metadata-log",
            json!({"timestamp-ms": before, "metadata-file": previous}),
        );
        let keep = self
            .property("write.metadata.previous-versions-max")
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(PREVIOUS_VERSIONS_MAX)
            .max(1);
        if let Some(Value::Array(log)) = j.get_mut("metadata-log") {
            let excess = log.len().saturating_sub(keep);
            log.drain(..excess);
        }
    }

    /// The metadata files `metadata-log` lists.
    pub(crate) fn metadata_log(&self) -> Vec<String> {
        self.json
            .get("metadata-log")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|e| e.get("metadata-file").and_then(Value::as_str))
            .map(str::to_owned)
            .collect()
    }

    /// Whether a committed metadata file deletes the files its `metadata-log` dropped
    /// (`write.metadata.delete-after-commit.enabled`, off unless set, as in Java).
    pub(crate) fn deletes_dropped_metadata(&self) -> bool {
        self.property("write.metadata.delete-after-commit.enabled")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }

    /// The metadata files `self`'s log lists and `newer`'s no longer does (what Java's
    /// `CatalogUtil.deleteRemovedMetadataFiles` deletes after a commit).
    pub(crate) fn dropped_from_log(&self, newer: &TableMetadata) -> Vec<String> {
        let kept: std::collections::HashSet<String> = newer.metadata_log().into_iter().collect();
        self.metadata_log()
            .into_iter()
            .filter(|f| !kept.contains(f))
            .collect()
    }

    /// The statistics files (`statistics`, `partition-statistics`) the metadata lists.
    pub(crate) fn statistics_files(&self) -> Vec<String> {
        ["statistics", "partition-statistics"]
            .iter()
            .filter_map(|k| self.json.get(*k).and_then(Value::as_array))
            .flatten()
            .filter_map(|e| e.get("statistics-path").and_then(Value::as_str))
            .map(str::to_owned)
            .collect()
    }

    /// Whether snapshot `id` exists.
    pub(crate) fn has_snapshot(&self, id: i64) -> bool {
        self.snapshot(id).is_some()
    }

    /// The current snapshot and its ancestors still in the metadata, newest first.
    pub(crate) fn ancestry(&self) -> Vec<SnapshotView> {
        let mut out = Vec::new();
        let mut next = self.current_snapshot_id();
        while let Some(id) = next {
            let Some(s) = self.snapshot(id) else { break };
            next = s.parent;
            out.push(s);
            if out.len() > 1_000_000 {
                break;
            }
        }
        out
    }

    /// The group's offsets from the newest snapshot of `main` that carries them.
    pub(crate) fn group_offsets(&self, group: &str) -> Result<GroupOffsets, String> {
        let key = format!("{OFFSETS_PREFIX}{group}");
        for s in self.ancestry() {
            if let Some(v) = s.summary.get(&key) {
                let text = v.as_str().ok_or_else(|| format!("{key} is not a string"))?;
                return parse_offsets(text).map_err(|e| format!("snapshot {}: {key}: {e}", s.id));
            }
        }
        Ok(GroupOffsets::new())
    }

    /// Whether a snapshot of `main`'s ancestry carries commit id `commit`.
    pub(crate) fn has_commit(&self, commit: &str) -> bool {
        self.ancestry()
            .iter()
            .any(|s| s.summary.get(COMMIT_ID_KEY).and_then(Value::as_str) == Some(commit))
    }

    /// The metadata with `snapshot` appended and `main` pointing at it; `previous` is where
    /// this metadata was read from (for `metadata-log`).
    pub(crate) fn with_snapshot(
        &self,
        snapshot: &Value,
        previous: &str,
        now_ms: i64,
    ) -> TableMetadata {
        let mut j = self.json.clone();
        let id = snapshot["snapshot-id"].clone();
        let seq = snapshot["sequence-number"].clone();
        let before = self.i64("last-updated-ms").unwrap_or(now_ms);
        j.insert("last-sequence-number".into(), seq);
        j.insert("last-updated-ms".into(), json!(now_ms));
        j.insert("current-snapshot-id".into(), id.clone());
        push(&mut j, "snapshots", snapshot.clone());
        push(
            &mut j,
            "snapshot-log",
            json!({"timestamp-ms": snapshot["timestamp-ms"], "snapshot-id": id}),
        );
        self.log_previous(&mut j, previous, before);
        let refs = j.entry("refs").or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(refs) = refs {
            let main = refs
                .entry("main")
                .or_insert_with(|| json!({"type": "branch"}));
            if let Value::Object(main) = main {
                main.insert("snapshot-id".into(), id);
                main.insert("type".into(), json!("branch"));
            }
        }
        TableMetadata { json: j }
    }
}

fn push(j: &mut Map<String, Value>, key: &str, v: Value) {
    match j.get_mut(key) {
        Some(Value::Array(a)) => a.push(v),
        _ => {
            j.insert(key.into(), Value::Array(vec![v]));
        }
    }
}

/// Parses `{"topic": {"partition": next}}`.
pub(crate) fn parse_offsets(text: &str) -> Result<GroupOffsets, String> {
    let raw: BTreeMap<String, BTreeMap<String, i64>> =
        serde_json::from_str(text).map_err(|e| e.to_string())?;
    let mut out = GroupOffsets::new();
    for (topic, parts) in raw {
        let m = out.entry(topic.clone()).or_default();
        for (p, next) in parts {
            let p: i32 = p
                .parse()
                .map_err(|_| format!("topic {topic:?}: partition {p:?} is not a number"))?;
            if next < 0 {
                return Err(format!("{topic}-{p}: offset {next} is negative"));
            }
            m.insert(p, next);
        }
    }
    Ok(out)
}

pub(crate) fn offsets_json(offsets: &GroupOffsets) -> String {
    let m: BTreeMap<&String, BTreeMap<String, i64>> = offsets
        .iter()
        .map(|(t, ps)| (t, ps.iter().map(|(p, o)| (p.to_string(), *o)).collect()))
        .collect();
    serde_json::to_string(&m).unwrap_or_default()
}

/// A new table's metadata.
pub(crate) fn new_table(
    uuid: &str,
    location: &str,
    schema: &IceSchema,
    spec: &Spec,
    properties: &BTreeMap<String, String>,
    now_ms: i64,
) -> Value {
    let last_partition_id = spec.fields.iter().map(|f| f.field_id).max().unwrap_or(999);
    json!({
        "format-version": 2,
        "table-uuid": uuid,
        "location": location,
        "last-sequence-number": 0,
        "last-updated-ms": now_ms,
        "last-column-id": schema.max_id(),
        "schemas": [schema.to_json()],
        "current-schema-id": schema.schema_id,
        "partition-specs": [spec.to_json()],
        "default-spec-id": spec.spec_id,
        "last-partition-id": last_partition_id,
        "properties": properties,
        "snapshots": [],
        "snapshot-log": [],
        "metadata-log": [],
        "sort-orders": [{"order-id": 0, "fields": []}],
        "default-sort-order-id": 0,
        "refs": {},
    })
}

/// The version number in a metadata file name (`00012-<uuid>.metadata.json` is 12).
pub(crate) fn metadata_version(location: &str) -> Option<u64> {
    let name = location.rsplit('/').next()?;
    let (v, _) = name.split_once('-')?;
    v.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(id: i64, parent: Option<i64>, seq: i64, summary: Value) -> Value {
        json!({"snapshot-id": id, "parent-snapshot-id": parent, "sequence-number": seq,
               "timestamp-ms": 1000 + seq, "manifest-list": format!("file:///t/m{id}.avro"),
               "summary": summary, "schema-id": 0})
    }

    #[test]
    fn iceberg_metadata_offsets_come_from_the_newest_snapshot_carrying_them() {
        let schema = IceSchema {
            schema_id: 0,
            fields: vec![],
        };
        let base = new_table(
            "u",
            "file:///t",
            &schema,
            &Spec::unpartitioned(),
            &BTreeMap::from([("custom".to_owned(), "kept".to_owned())]),
            5,
        );
        let m0 = TableMetadata::from_value(base).unwrap();
        assert_eq!(m0.current_snapshot_id(), None);
        assert!(m0.group_offsets("g").unwrap().is_empty());
        let mut offs = GroupOffsets::new();
        offs.entry("events".into()).or_default().insert(3, 42);
        let s1 = snap(
            1,
            None,
            1,
            json!({"operation": "append", "kingest.offsets.g": offsets_json(&offs),
                   "kingest.commit-id": "c1"}),
        );
        let m1 = m0.with_snapshot(&s1, "file:///t/metadata/00000-a.metadata.json", 10);
        // Another tool's snapshot on top (compaction, say) carries no offsets.
        let s2 = snap(2, Some(1), 2, json!({"operation": "replace"}));
        let m2 = m1.with_snapshot(&s2, "file:///t/metadata/00001-b.metadata.json", 11);
        assert_eq!(m2.current_snapshot_id(), Some(2));
        assert_eq!(m2.last_sequence_number(), 2);
        assert_eq!(m2.group_offsets("g").unwrap(), offs);
        assert!(m2.group_offsets("other").unwrap().is_empty());
        assert!(m2.has_commit("c1"));
        assert!(!m2.has_commit("c2"));
        assert_eq!(m2.property("custom"), Some("kept"));
        let j: Value = serde_json::from_slice(&m2.to_bytes()).unwrap();
        assert_eq!(j["refs"]["main"]["snapshot-id"], 2);
        assert_eq!(j["metadata-log"].as_array().unwrap().len(), 2);
        assert_eq!(
            metadata_version("file:///t/metadata/00012-abc.metadata.json"),
            Some(12)
        );
        assert!(parse_offsets(r#"{"t":{"x":1}}"#).is_err());
        assert!(TableMetadata::parse(br#"{"format-version":1}"#).is_err());
    }

    #[test]
    fn iceberg_metadata_log_is_bounded_and_names_what_it_dropped() {
        let schema = IceSchema {
            schema_id: 0,
            fields: vec![],
        };
        let props = BTreeMap::from([
            (
                "write.metadata.previous-versions-max".to_owned(),
                "2".to_owned(),
            ),
            (
                "write.metadata.delete-after-commit.enabled".to_owned(),
                "true".to_owned(),
            ),
        ]);
        let base = new_table("u", "file:///t", &schema, &Spec::unpartitioned(), &props, 5);
        let mut m = TableMetadata::from_value(base).unwrap();
        assert!(m.deletes_dropped_metadata());
        let file = |v: i64| format!("file:///t/metadata/{v:05}-x.metadata.json");
        let mut dropped = Vec::new();
        for v in 0..5 {
            let s = snap(
                v + 1,
                (v > 0).then_some(v),
                v + 1,
                json!({"operation": "append"}),
            );
            let next = m.with_snapshot(&s, &file(v), 10 + v);
            dropped.extend(m.dropped_from_log(&next));
            m = next;
        }
        assert_eq!(m.metadata_log(), vec![file(3), file(4)]);
        assert_eq!(dropped, vec![file(0), file(1), file(2)]);
        // Expiry logs its base too, under the same bound.
        let expired = std::collections::HashSet::from([1, 2]);
        let e = m.without_snapshots(&expired, &file(5), 20);
        assert_eq!(e.metadata_log(), vec![file(4), file(5)]);
        assert_eq!(m.dropped_from_log(&e), vec![file(3)]);
        assert_eq!(e.snapshot_ids(), vec![3, 4, 5]);
    }
}
