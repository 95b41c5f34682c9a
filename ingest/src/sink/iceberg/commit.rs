//! One flush's commit into the table: the new manifest, then attempts until one lands (see
//! the sink's module docs for the rules): read the table, leave out partitions another writer
//! took, merge the group's offsets, write the manifest list (and, for a SQL catalog, the
//! metadata), swap; on a conflict or a lost answer, back off and try again.

use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::catalog::{Catalog, Loaded, Outcome, TableIdent};
use super::io::TableIo;
use super::manifest::{self, DataFile, ManifestFile};
use super::metadata::{self, GroupOffsets, TableMetadata, COMMIT_ID_KEY, OFFSETS_PREFIX};
use super::partition::{PartKey, Spec};
use super::types::IceSchema;
use super::{now_ms, IcebergSink};
use crate::sink::{CommittedFile, OffsetRange, PartitionKey, Result, SinkError};

/// One flush's commit: see the module docs.
pub(super) struct Committer<'a> {
    pub(super) sink: &'a mut IcebergSink,
    pub(super) commit_id: String,
}

impl Committer<'_> {
    pub(super) async fn run(
        self,
        mut parts: Vec<(PartitionKey, OffsetRange, Vec<DataFile>)>,
    ) -> Result<Vec<CommittedFile>> {
        let sink = self.sink;
        let table = sink.ident.to_string();
        let started = Instant::now();
        let mut snapshot_id = new_snapshot_id();
        let mut manifest: Option<ManifestFile> = None;
        let mut conflict: Option<SinkError> = None;
        let mut backoff = Duration::from_millis(50);
        let mut attempt = 0u32;
        loop {
            // The table as this process last saw it saves a read when nobody else committed
            // since; a stale one fails the swap, and decides nothing about conflicts.
            let cached = attempt == 0 && sink.last.is_some();
            let base = match (attempt, sink.last.take()) {
                (0, Some(l)) => l,
                _ => sink
                    .catalog
                    .load(&sink.ident)
                    .await?
                    .ok_or_else(|| SinkError::Table {
                        table: table.clone(),
                        reason: "the table is gone from the catalog".into(),
                    })?,
            };
            if attempt > 0 && base.metadata.has_commit(&self.commit_id) {
                // An attempt whose answer was lost did land.
                sink.last = Some(base);
                break;
            }
            let group = base
                .metadata
                .group_offsets(&sink.config.group_id)
                .map_err(|reason| SinkError::Table {
                    table: table.clone(),
                    reason,
                })?;
            let contested = |(key, range, _): &(PartitionKey, OffsetRange, Vec<DataFile>)| {
                let found = group.get(&key.topic).and_then(|m| m.get(&key.partition));
                found.is_some_and(|f| *f != range.first)
            };
            if cached && parts.iter().any(contested) {
                // Another writer's commit may be newer than the cached table: read it.
                attempt += 1;
                continue;
            }
            // Partitions another writer committed since this process started reading them
            // are left out, and reported once the rest is committed.
            let before = parts.len();
            parts.retain(|(key, range, _)| {
                let found = group.get(&key.topic).and_then(|m| m.get(&key.partition));
                match found {
                    Some(&f) if f != range.first => {
                        conflict.get_or_insert(SinkError::CommitConflict {
                            table: table.clone(),
                            partition: key.clone(),
                            offsets: *range,
                            found: f,
                        });
                        false
                    }
                    _ => true,
                }
            });
            if parts.len() != before {
                manifest = None;
            }
            let mut merged = group.clone();
            for (key, range, _) in &parts {
                merged
                    .entry(key.topic.clone())
                    .or_default()
                    .insert(key.partition, range.next);
            }
            let files: Vec<&DataFile> = parts.iter().flat_map(|(_, _, f)| f).collect();
            if files.is_empty() && merged == group {
                sink.last = Some(base);
                break;
            }
            while base.metadata.has_snapshot(snapshot_id) {
                snapshot_id = new_snapshot_id();
                manifest = None;
            }
            if manifest.is_none() && !files.is_empty() {
                let owned: Vec<DataFile> = files.iter().map(|f| (*f).clone()).collect();
                manifest = Some(
                    write_manifest(
                        &sink.io,
                        &sink.location,
                        &sink.spec,
                        &sink.table_schema,
                        &owned,
                        snapshot_id,
                    )
                    .await?,
                );
            }
            let attempt_ = Attempt {
                catalog: &sink.catalog,
                ident: &sink.ident,
                io: &sink.io,
                location: &sink.location,
                schema_id: sink.table_schema.schema_id,
                group: &sink.config.group_id,
                commit_id: &self.commit_id,
            };
            let (outcome, list_location, new_location, new) = attempt_
                .commit(
                    &base,
                    manifest.as_ref(),
                    &files,
                    &merged,
                    snapshot_id,
                    attempt,
                )
                .await?;
            match outcome {
                Outcome::Committed => {
                    sink.last = if sink.catalog.writes_metadata() {
                        Some(Loaded {
                            location: new_location,
                            metadata: new,
                        })
                    } else {
                        None
                    };
                    tracing::debug!(%table, snapshot = snapshot_id, attempt, files = files.len(),
                        "committed a snapshot");
                    break;
                }
                Outcome::Conflict => {
                    sink.io.delete(&list_location).await;
                    tracing::debug!(%table, attempt, "another writer committed first; retrying");
                }
                Outcome::Unknown(why) => {
                    tracing::warn!(%table, attempt, error = %why,
                        "the commit's outcome is unknown; reading the table to find out");
                }
            }
            if started.elapsed() >= sink.config.commit_timeout {
                return Err(SinkError::Table {
                    table,
                    reason: format!(
                        "the commit did not succeed within {:?} ({} attempts): other writers \
                         keep committing, or the catalog fails",
                        sink.config.commit_timeout,
                        attempt + 1
                    ),
                });
            }
            let jitter = Duration::from_millis(u64::from(rand_u32() % 50));
            tokio::time::sleep(backoff + jitter).await;
            backoff = (backoff * 2).min(Duration::from_secs(2));
            attempt += 1;
        }
        if let Some(e) = conflict {
            return Err(e);
        }
        let mut out = Vec::new();
        for (key, range, files) in parts {
            if files.is_empty() {
                out.push(CommittedFile {
                    path: format!("{table} (offsets only)"),
                    partition: key.clone(),
                    offsets: range,
                    rows: 0,
                    bytes: 0,
                });
            }
            for f in files {
                out.push(CommittedFile {
                    path: f.location.clone(),
                    partition: key.clone(),
                    offsets: range,
                    rows: f.rows,
                    bytes: f.size,
                });
            }
        }
        Ok(out)
    }
}

/// What one commit attempt needs besides the table it starts from.
struct Attempt<'a> {
    catalog: &'a Catalog,
    ident: &'a TableIdent,
    io: &'a TableIo,
    location: &'a str,
    schema_id: i32,
    group: &'a str,
    commit_id: &'a str,
}

impl Attempt<'_> {
    /// Appends a snapshot to `base`: `manifest` (this commit's new files, if any) followed by
    /// the parent's manifests, the summary carrying `offsets`; then the catalog's swap.
    /// Returns its outcome, the manifest list's and the new metadata's locations, and the new
    /// metadata.
    async fn commit(
        &self,
        base: &Loaded,
        manifest: Option<&ManifestFile>,
        files: &[&DataFile],
        offsets: &GroupOffsets,
        snapshot_id: i64,
        attempt: u32,
    ) -> Result<(Outcome, String, String, TableMetadata)> {
        let table_err = |reason: String| SinkError::Table {
            table: self.ident.to_string(),
            reason,
        };
        let seq = base.metadata.last_sequence_number() + 1;
        let parent = base.metadata.current_snapshot_id();
        let mut manifests: Vec<ManifestFile> = manifest.into_iter().cloned().collect();
        let parent_view = parent.and_then(|p| base.metadata.snapshot(p));
        if let Some(list) = parent_view.as_ref().and_then(|p| p.manifest_list.clone()) {
            let bytes = self.io.read(&list).await?;
            manifests.extend(
                manifest::read_manifest_list(&bytes)
                    .map_err(|reason| table_err(format!("{list}: {reason}")))?,
            );
        }
        let list_bytes = manifest::write_manifest_list(&manifests, snapshot_id, parent, seq)
            .map_err(|reason| table_err(format!("encoding the manifest list: {reason}")))?;
        let list_location = format!(
            "{}/metadata/snap-{snapshot_id}-{attempt}-{}.avro",
            self.location, self.commit_id
        );
        self.io.write(&list_location, list_bytes).await?;
        let now = now_ms();
        let summary = summary(
            files,
            parent_view.as_ref().map(|p| &p.summary),
            self.group,
            offsets,
            self.commit_id,
        );
        let mut snapshot = json!({
            "snapshot-id": snapshot_id,
            "sequence-number": seq,
            "timestamp-ms": now,
            "manifest-list": list_location,
            "summary": summary,
            "schema-id": self.schema_id,
        });
        if let Some(p) = parent {
            snapshot["parent-snapshot-id"] = json!(p);
        }
        let new = base.metadata.with_snapshot(&snapshot, &base.location, now);
        let version = metadata::metadata_version(&base.location).map_or(1, |v| v + 1);
        let new_location = format!(
            "{}/metadata/{version:05}-{}.metadata.json",
            self.location,
            Uuid::new_v4()
        );
        let outcome = self
            .catalog
            .commit(self.ident, base, &snapshot, &new, &new_location, self.io)
            .await?;
        Ok((outcome, list_location, new_location, new))
    }
}

/// Records `offsets` for `group` in the table (`kingest reset-offsets --sink`): a snapshot
/// adding no files whose summary carries the group's offsets with these replacing theirs.
/// Rows already in the table stay. Returns the snapshot's id, or `None` when the table held
/// these offsets already.
pub(crate) async fn record_offsets(
    catalog: &Catalog,
    ident: &TableIdent,
    group: &str,
    offsets: &GroupOffsets,
) -> Result<Option<i64>> {
    let commit_id = Uuid::new_v4().simple().to_string();
    let table_err = |reason: String| SinkError::Table {
        table: ident.to_string(),
        reason,
    };
    for attempt in 0..100u32 {
        let base = catalog
            .load(ident)
            .await?
            .ok_or_else(|| table_err("the table does not exist".into()))?;
        if attempt > 0 && base.metadata.has_commit(&commit_id) {
            return Ok(base.metadata.current_snapshot_id());
        }
        let current = base.metadata.group_offsets(group).map_err(table_err)?;
        let mut merged = current.clone();
        for (topic, parts) in offsets {
            merged.entry(topic.clone()).or_default().extend(parts);
        }
        if merged == current {
            return Ok(None);
        }
        let location = base.metadata.location().to_owned();
        let io = catalog.io(&location)?;
        let schema_id = base.metadata.schema().map_err(table_err)?.schema_id;
        let mut snapshot_id = new_snapshot_id();
        while base.metadata.has_snapshot(snapshot_id) {
            snapshot_id = new_snapshot_id();
        }
        let a = Attempt {
            catalog,
            ident,
            io: &io,
            location: &location,
            schema_id,
            group,
            commit_id: &commit_id,
        };
        let (outcome, list, _, _) = a
            .commit(&base, None, &[], &merged, snapshot_id, attempt)
            .await?;
        match outcome {
            Outcome::Committed => return Ok(Some(snapshot_id)),
            Outcome::Conflict => io.delete(&list).await,
            Outcome::Unknown(why) => tracing::warn!(table = %ident, error = %why,
                "the offsets commit's outcome is unknown; reading the table to find out"),
        }
        tokio::time::sleep(Duration::from_millis(50 + u64::from(rand_u32() % 200))).await;
    }
    Err(table_err(
        "recording the offsets failed 100 times: other writers keep committing (stop the jobs \
         of this group first)"
            .into(),
    ))
}

/// Writes the manifest of `files` under the table's `metadata/`.
pub(super) async fn write_manifest(
    io: &TableIo,
    table_location: &str,
    spec: &Spec,
    schema: &IceSchema,
    files: &[DataFile],
    snapshot_id: i64,
) -> Result<ManifestFile> {
    let (bytes, mut m) =
        manifest::write_manifest(files, spec, schema, snapshot_id).map_err(|reason| {
            SinkError::Table {
                table: table_location.to_owned(),
                reason: format!("encoding a manifest: {reason}"),
            }
        })?;
    let location = format!("{table_location}/metadata/{}-m0.avro", Uuid::new_v4());
    m.length = bytes.len() as i64;
    io.write(&location, bytes).await?;
    m.path = location;
    Ok(m)
}

fn rand_u32() -> u32 {
    Uuid::new_v4().as_u128() as u32
}

/// A fresh positive snapshot id.
pub(super) fn new_snapshot_id() -> i64 {
    (Uuid::new_v4().as_u128() as i64) & i64::MAX
}

/// The snapshot summary: Iceberg's counts and totals, and the group's offsets.
fn summary(
    files: &[&DataFile],
    parent: Option<&Map<String, Value>>,
    group: &str,
    offsets: &GroupOffsets,
    commit_id: &str,
) -> Map<String, Value> {
    let added_records: u64 = files.iter().map(|f| f.rows).sum();
    let added_size: u64 = files.iter().map(|f| f.size).sum();
    let partitions: std::collections::BTreeSet<&PartKey> =
        files.iter().map(|f| &f.partition).collect();
    let mut s = Map::new();
    let mut put = |k: &str, v: String| {
        s.insert(k.to_owned(), Value::String(v));
    };
    put("operation", "append".into());
    put("added-data-files", files.len().to_string());
    put("added-records", added_records.to_string());
    put("added-files-size", added_size.to_string());
    put("changed-partition-count", partitions.len().to_string());
    let total = |k: &str| -> Option<u64> {
        match parent {
            None => Some(0),
            Some(p) => p.get(k)?.as_str()?.parse().ok(),
        }
    };
    for (k, added) in [
        ("total-records", added_records),
        ("total-files-size", added_size),
        ("total-data-files", files.len() as u64),
        ("total-delete-files", 0),
        ("total-position-deletes", 0),
        ("total-equality-deletes", 0),
    ] {
        if let Some(t) = total(k) {
            put(k, (t + added).to_string());
        }
    }
    put(
        &format!("{OFFSETS_PREFIX}{group}"),
        metadata::offsets_json(offsets),
    );
    put(COMMIT_ID_KEY, commit_id.to_owned());
    put("kingest.version", env!("CARGO_PKG_VERSION").to_owned());
    // Which process committed (for operators following several writers of one table).
    put("kingest.writer", format!("pid {}", std::process::id()));
    s
}
