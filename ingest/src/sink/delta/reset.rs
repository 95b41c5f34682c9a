//! `kingest reset-offsets --sink` for a Delta table: one commit that sets each partition's
//! `txn` to its new offset and, when the offset moves back, removes the data files holding
//! offsets at or past it, so the records read again are not in the table twice.
//!
//! Which files hold which offsets comes from the `tags` every `add` of this writer carries
//! (`kingest.partition`, `kingest.offsets`; see `log.rs`). Files are removed whole, so a new
//! offset inside a file is rewound to the file's first offset (the plan says so), as the
//! Parquet sink's reset does. A `remove` hides a file from readers at once; its bytes stay until
//! a `VACUUM` (and older versions of the table, time travel, still show it). The whole reset is
//! one version, created like any commit (put if absent, retried past other writers).

use std::collections::BTreeMap;

use bytes::Bytes;

use super::error::DeltaError;
use super::log::{app_id_of, commit_path, commit_text, tagged_offsets, Action, Remove, Txn};
use super::table::{self, now_ms};
use super::{locate, DeltaSinkConfig};
use crate::sink::{PartitionKey, Result, SinkError};

/// A data file a reset removes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeltaResetFile {
    /// Its path in the table (URI-encoded, as the log has it).
    pub path: String,
    /// The offsets its commit covered.
    pub first: i64,
    /// One past them.
    pub next: i64,
    #[serde(skip)]
    partition_values: BTreeMap<String, Option<String>>,
    #[serde(skip)]
    size: i64,
}

/// One partition's reset.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeltaPartitionReset {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The offset its `txn` is set to (rewound to a file's first offset if need be).
    pub new: i64,
    /// The files removed.
    pub removed: Vec<DeltaResetFile>,
}

/// What a reset does to a Delta table.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeltaResetPlan {
    /// The table.
    pub table: String,
    /// The app id of the `txn` actions.
    pub app_id: String,
    /// The version the plan was made at.
    pub version: i64,
    /// Per partition.
    pub partitions: Vec<DeltaPartitionReset>,
}

/// Plans moving each `(topic, partition)` of `targets` to its offset. Reads the whole table
/// (its live files); changes nothing.
pub async fn plan_reset(
    config: &DeltaSinkConfig,
    targets: &[(String, i32, i64)],
) -> Result<DeltaResetPlan> {
    let (_, log, _, _) = locate(config)?;
    let app_id = config.app_id().to_owned();
    let state = table::load(&log, true, None).await?;
    let mut by_partition: BTreeMap<PartitionKey, Vec<DeltaResetFile>> = BTreeMap::new();
    for add in state.files.iter().flat_map(|f| f.values()) {
        if let Some((key, range)) = tagged_offsets(add, &app_id) {
            by_partition.entry(key).or_default().push(DeltaResetFile {
                path: add.path.clone(),
                first: range.first,
                next: range.next,
                partition_values: add.partition_values.clone(),
                size: add.size,
            });
        }
    }
    let append_only = state
        .metadata
        .as_ref()
        .and_then(|m| m.property("delta.appendOnly"))
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let mut partitions = Vec::new();
    for (topic, partition, target) in targets {
        let key = PartitionKey::new(topic.clone(), *partition);
        let files = by_partition.remove(&key).unwrap_or_default();
        // Whole files: a file straddling the new offset rewinds it to its first offset.
        let mut new = *target;
        while let Some(first) = files
            .iter()
            .filter(|f| f.first < new && f.next > new)
            .map(|f| f.first)
            .min()
        {
            new = first;
        }
        let mut removed: Vec<DeltaResetFile> = files
            .into_iter()
            .filter(|f| f.next > new && f.next > f.first)
            .collect();
        removed.sort_by(|a, b| (a.first, &a.path).cmp(&(b.first, &b.path)));
        if append_only && !removed.is_empty() {
            return Err(SinkError::Delta {
                table: log.display(""),
                source: Box::new(DeltaError::Unsupported(format!(
                    "the table is append-only (delta.appendOnly): moving {key} back to {new} would remove {} files",
                    removed.len()
                ))),
            });
        }
        partitions.push(DeltaPartitionReset {
            topic: topic.clone(),
            partition: *partition,
            new,
            removed,
        });
    }
    Ok(DeltaResetPlan {
        table: log.display(""),
        app_id,
        version: state.version,
        partitions,
    })
}

/// Commits `plan`; returns the version created.
pub async fn apply_reset(config: &DeltaSinkConfig, plan: &DeltaResetPlan) -> Result<i64> {
    let (_, log, _, _) = locate(config)?;
    let now = now_ms();
    let mut actions = vec![Action::CommitInfo(serde_json::json!({
        "timestamp": now,
        "operation": "DELETE",
        "operationParameters": {"predicate": "kingest reset-offsets", "appId": plan.app_id},
        "engineInfo": format!("kingest/{}", env!("CARGO_PKG_VERSION")),
    }))];
    for p in &plan.partitions {
        let key = PartitionKey::new(p.topic.clone(), p.partition);
        actions.push(Action::Txn(Txn {
            app_id: app_id_of(&plan.app_id, &key),
            version: p.new,
            last_updated: Some(now),
        }));
        for f in &p.removed {
            actions.push(Action::Remove(Remove {
                path: f.path.clone(),
                deletion_timestamp: Some(now),
                data_change: true,
                extended_file_metadata: Some(true),
                partition_values: Some(f.partition_values.clone()),
                size: Some(f.size),
                tags: None,
            }));
        }
    }
    let text = Bytes::from(commit_text(&actions));
    let mut state = table::load(&log, false, None).await?;
    if state.version != plan.version {
        return Err(SinkError::Delta {
            table: log.display(""),
            source: Box::new(DeltaError::Unsupported(format!(
                "the table moved from version {} to {} since the plan was made: plan again",
                plan.version, state.version
            ))),
        });
    }
    let ids: Vec<String> = plan
        .partitions
        .iter()
        .map(|p| {
            app_id_of(
                &plan.app_id,
                &PartitionKey::new(p.topic.clone(), p.partition),
            )
        })
        .collect();
    let offsets = |s: &super::log::TableState| -> Vec<Option<i64>> {
        ids.iter()
            .map(|id| s.txns.get(id).map(|t| t.version))
            .collect()
    };
    let planned = offsets(&state);
    for _ in 0..config.max_commit_attempts.max(1) {
        let v = state.version + 1;
        if log.put_if_absent(&commit_path(v), text.clone()).await? {
            return Ok(v);
        }
        table::update(&log, &mut state).await?;
        // Another writer's commit: harmless unless it moved these partitions' offsets (a job
        // of this app id still running), which would make the plan wrong.
        if offsets(&state) != planned {
            return Err(SinkError::Delta {
                table: log.display(""),
                source: Box::new(DeltaError::Unsupported(
                    "another writer committed offsets of these partitions while the reset was applied: stop every job writing them and plan again".into(),
                )),
            });
        }
    }
    Err(SinkError::Delta {
        table: log.display(""),
        source: Box::new(DeltaError::Contention(config.max_commit_attempts)),
    })
}
