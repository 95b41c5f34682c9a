//! `OPTIMIZE` for a Delta table written by kingest: per table partition and Kafka partition,
//! runs of small files bin-packed into files near the target size, and one commit that
//! removes the inputs and adds the merged files, both with `dataChange: false` (readers of the
//! change feed and streaming readers skip it: no row changed).
//!
//! # What is merged
//!
//! Live files of this job's app id (the `kingest.*` tags of their `add`), grouped by directory
//! (the table partition) *and* Kafka partition. Not across Kafka partitions: a file's tags
//! name one Kafka partition and one offset range, which is what `kingest reset-offsets --sink`
//! uses to take back the files past an offset, and a merge of two partitions' files could not
//! say which offsets it holds. In offset order, a run of consecutive small files (below
//! `min_file_size`) whose ranges do not overlap is one group, as for the Parquet sink; a group
//! of fewer than `min_input_files` is left alone. Other writers' files are left alone.
//!
//! A merged file is finished once it reaches the target size (by its compressed size: row
//! groups are closed every eighth of the target to know it), at the end of an input, so it
//! covers whole inputs; its tags record the offsets from its first input's first to its last
//! input's next (a gap is offsets whose rows went to another table partition, or left none),
//! and its `stats` come from its own footer.
//!
//! # Why it is safe while the job runs, and against `kill -9`
//!
//! The merged files are written under fresh names (no reader looks at a file the log does not
//! name) and made durable before the commit names them; the commit is created with put if
//! absent, like the job's. Killed before the commit, a compaction leaves only unreferenced
//! files (a `VACUUM` past the retention deletes them); killed after it, the compaction is
//! done. The commit holds no `txn`, so the job's offsets do not move.
//!
//! When another process took the version first, the commits it missed are read: the job's
//! appends (adds and `txn`s) do not conflict, and the compaction retries at the next version.
//! If one of them removed an input (another compaction, a reset) or changed the table's
//! metadata or protocol, the compaction is abandoned and its files deleted: committing would
//! bring back rows that were removed, or the same rows twice.

use std::collections::{BTreeMap, HashSet};

use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::AsyncArrowWriter;
use uuid::Uuid;

use super::commit::{percent_decode, uri_path};
use super::log::{
    commit_path, commit_text, offset_tags, parse_commit, tagged_offsets, Action, Add, Read, Remove,
    TableState,
};
use super::maintain::DeltaMaintenance;
use super::stats;
use super::table::{self, now_ms};
use crate::sink::layout::{file_name, join_rel};
use crate::sink::maintenance::{MaintenanceDone, MaintenancePlan, PlannedFile, Rewrite, Rewritten};
use crate::sink::store::{Backend, Dest, Finished};
use crate::sink::{OffsetRange, PartitionKey, Result, SinkError};

fn dir_of(rel: &str) -> &str {
    rel.rsplit_once('/').map(|(d, _)| d).unwrap_or("")
}

/// `numRecords` of an `add`'s stats (0 when it has none).
fn rows_of(add: &Add) -> u64 {
    add.stats
        .as_deref()
        .and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok())
        .and_then(|v| v["numRecords"].as_u64())
        .unwrap_or(0)
}

/// A live file of this job: its offsets, its `add`, its decoded path.
type Candidate<'a> = (OffsetRange, &'a Add, String);

/// A merged file being written: its path, writer, the inputs in it so far and their rows.
struct Output<'a> {
    rel: String,
    writer: AsyncArrowWriter<Dest>,
    used: Vec<(&'a PlannedFile, &'a Add)>,
    rows: u64,
}

/// A merged file written and durable, not yet committed.
struct Merged {
    add: Add,
    rel: String,
    inputs: usize,
    rows: u64,
    bytes_in: u64,
}

impl DeltaMaintenance {
    /// The groups of small files to merge in the table at `state`.
    pub(super) fn plan_optimize(&self, state: &TableState, plan: &mut MaintenancePlan) {
        let settings = &self.settings;
        let mut groups: BTreeMap<(String, PartitionKey), Vec<Candidate<'_>>> = BTreeMap::new();
        let mut others = 0;
        for add in state.files.iter().flat_map(|f| f.values()) {
            let Some((key, range)) = tagged_offsets(add, &self.app_id) else {
                others += 1;
                continue;
            };
            let rel = percent_decode(&add.path);
            groups
                .entry((dir_of(&rel).to_owned(), key))
                .or_default()
                .push((range, add, rel));
        }
        if others > 0 {
            plan.notes.push(format!(
                "{others} files not written by app id {:?} (no kingest offset tags) are left alone",
                self.app_id
            ));
        }
        for ((dir, key), mut files) in groups {
            files.sort_by(|a, b| (a.0.first, a.0.next, &a.2).cmp(&(b.0.first, b.0.next, &b.2)));
            let mut run: Vec<&Candidate<'_>> = Vec::new();
            let mut close = |run: &mut Vec<&Candidate<'_>>| {
                if run.len() >= settings.min_input_files {
                    plan.rewrites.push(Rewrite {
                        partition: key.clone(),
                        dir: dir.clone(),
                        offsets: OffsetRange::new(
                            run[0].0.first,
                            run.iter().map(|f| f.0.next).max().unwrap_or(0),
                        ),
                        inputs: run
                            .iter()
                            .map(|(range, add, rel)| PlannedFile {
                                path: self.log.display(rel),
                                rel: rel.clone(),
                                offsets: *range,
                                rows: rows_of(add),
                                bytes: add.size.max(0) as u64,
                                modified_ms: add.modification_time,
                            })
                            .collect(),
                    });
                }
                run.clear();
            };
            for f in &files {
                let small = (f.1.size.max(0) as u64) < settings.small_below;
                let overlaps = run.last().is_some_and(|p| f.0.first < p.0.next);
                if !small || overlaps {
                    close(&mut run);
                }
                if small {
                    run.push(f);
                }
            }
            close(&mut run);
        }
    }

    /// Merges the plan's groups and commits them as one `OPTIMIZE` version.
    pub(super) async fn execute_optimize(
        &self,
        plan: &MaintenancePlan,
        done: &mut MaintenanceDone,
    ) -> Result<()> {
        if plan.rewrites.is_empty() {
            return Ok(());
        }
        let mut state = table::load(&self.log, true, None).await?;
        let live = state.files.clone().unwrap_or_default();
        // Statistics for as many columns as the job writes them for.
        let indexed = match state
            .metadata
            .as_ref()
            .and_then(|m| m.property("delta.dataSkippingNumIndexedCols"))
            .and_then(|v| v.parse::<i64>().ok())
        {
            Some(n) if n < 0 => usize::MAX,
            Some(n) => n as usize,
            None => stats::DEFAULT_INDEXED_COLUMNS,
        };
        let mut merged: Vec<Merged> = Vec::new();
        let mut removed: Vec<Add> = Vec::new();
        for r in &plan.rewrites {
            let inputs: Option<Vec<&Add>> = r
                .inputs
                .iter()
                .map(|f| live.get(&uri_path(&f.rel)))
                .collect();
            let Some(inputs) = inputs else {
                done.skipped.push(format!(
                    "{} files of {} in {:?}: an input left the table since the plan",
                    r.inputs.len(),
                    r.partition,
                    r.dir
                ));
                continue;
            };
            match self.merge(r, &inputs, indexed).await? {
                Some(out) => {
                    merged.extend(out);
                    removed.extend(inputs.into_iter().cloned());
                }
                None => done.skipped.push(format!(
                    "{} files of {} in {:?}: an input is missing or the inputs' schemas differ",
                    r.inputs.len(),
                    r.partition,
                    r.dir
                )),
            }
        }
        if merged.is_empty() {
            return Ok(());
        }
        let now = now_ms();
        let bytes_removed: i64 = removed.iter().map(|a| a.size).sum();
        let bytes_added: i64 = merged.iter().map(|m| m.add.size).sum();
        let mut actions = vec![Action::CommitInfo(serde_json::json!({
            "timestamp": now,
            "operation": "OPTIMIZE",
            "operationParameters": {
                "predicate": "[]",
                "targetSize": self.settings.target_bytes.to_string(),
            },
            "readVersion": state.version,
            "isolationLevel": "SnapshotIsolation",
            "isBlindAppend": false,
            "operationMetrics": {
                "numRemovedFiles": removed.len().to_string(),
                "numAddedFiles": merged.len().to_string(),
                "numRemovedBytes": bytes_removed.to_string(),
                "numAddedBytes": bytes_added.to_string(),
            },
            "engineInfo": format!("kingest/{}", env!("CARGO_PKG_VERSION")),
            // Tells this commit apart from every other when a put's outcome is unclear.
            "txnId": Uuid::new_v4().to_string(),
        }))];
        actions.extend(removed.iter().map(|a| {
            Action::Remove(Remove {
                path: a.path.clone(),
                deletion_timestamp: Some(now),
                data_change: false,
                extended_file_metadata: Some(true),
                partition_values: Some(a.partition_values.clone()),
                size: Some(a.size),
                tags: a.tags.clone(),
            })
        }));
        actions.extend(merged.iter().map(|m| Action::Add(m.add.clone())));
        let text = Bytes::from(commit_text(&actions));
        let removing: HashSet<String> = removed.iter().map(|a| a.path.clone()).collect();
        match self.put(&mut state, &text, &removing).await? {
            Ok(version) => {
                done.version = Some(version);
                done.rewritten.extend(merged.into_iter().map(|m| Rewritten {
                    path: self.log.display(&m.rel),
                    inputs: m.inputs,
                    rows: m.rows,
                    bytes_in: m.bytes_in,
                    bytes_out: m.add.size as u64,
                }));
                self.checkpoint_if_due(&state, version).await;
            }
            Err(why) => {
                // Never named by the log: deleting them now spares the VACUUM.
                for m in &merged {
                    self.log.delete(&m.rel).await?;
                }
                done.skipped.push(format!(
                    "the compaction of {} files was abandoned: {why}",
                    removed.len()
                ));
            }
        }
        Ok(())
    }

    /// Creates the next version with `text`, past the job's appends; `Err(why)` when a commit
    /// it missed conflicts (see the module docs).
    async fn put(
        &self,
        state: &mut TableState,
        text: &Bytes,
        removing: &HashSet<String>,
    ) -> Result<std::result::Result<i64, String>> {
        let (protocol, metadata) = (state.protocol.clone(), state.metadata.clone());
        for _ in 0..self.max_commit_attempts.max(1) {
            let v = state.version + 1;
            if self
                .log
                .put_if_absent(&commit_path(v), text.clone())
                .await?
            {
                if table::extends_log(&self.log, v).await? {
                    return Ok(Ok(v));
                }
                *state = table::load(&self.log, true, None).await?;
                if let Some(gone) = removing.iter().find(|p| {
                    !state
                        .files
                        .as_ref()
                        .is_some_and(|f| f.contains_key(p.as_str()))
                }) {
                    return Ok(Err(format!("{gone} left the table meanwhile")));
                }
                continue;
            }
            // Read the commits missed, one by one: the version just refused may be this
            // compaction's own (a put retried after a lost response).
            let mut missed = false;
            while let Some(bytes) = self.log.get(&commit_path(state.version + 1)).await? {
                missed = true;
                let at = state.version + 1;
                if bytes == *text {
                    return Ok(Ok(at));
                }
                let shown = self.log.display(&commit_path(at));
                let read = parse_commit(&shown, &bytes).map_err(|e| SinkError::Delta {
                    table: self.log.display(""),
                    source: Box::new(e),
                })?;
                for a in &read {
                    match a {
                        Read::Remove(r) if removing.contains(&r.path) => {
                            return Ok(Err(format!(
                                "version {at} removed {} (another compaction or a reset)",
                                r.path
                            )))
                        }
                        Read::MetaData(m) if Some(m) != metadata.as_ref() => {
                            return Ok(Err(format!("version {at} changed the table's metadata")))
                        }
                        Read::Protocol(p) if Some(p) != protocol.as_ref() => {
                            return Ok(Err(format!("version {at} changed the table's protocol")))
                        }
                        _ => {}
                    }
                }
                state.apply(at, read);
            }
            if !missed {
                // Refused, yet not there: a log cleanup passed this state; read it again.
                *state = table::load(&self.log, true, None).await?;
                if removing.iter().any(|p| {
                    !state
                        .files
                        .as_ref()
                        .is_some_and(|f| f.contains_key(p.as_str()))
                }) {
                    return Ok(Err("an input left the table meanwhile".into()));
                }
            }
            tracing::debug!(
                version = state.version,
                "the job committed first; compacting at the next version"
            );
        }
        Ok(Err(format!(
            "other writers took {} versions in a row first",
            self.max_commit_attempts
        )))
    }

    /// Writes the checkpoint of `version` when it is due (every `checkpoint_interval`-th
    /// version), as the job does for its own commits.
    async fn checkpoint_if_due(&self, state: &TableState, version: i64) {
        let interval = state
            .metadata
            .as_ref()
            .and_then(|m| m.property("delta.checkpointInterval"))
            .and_then(|v| v.parse::<i64>().ok())
            .filter(|v| *v > 0)
            .unwrap_or(self.checkpoint_interval.max(1) as i64);
        if version > 0 && version % interval == 0 {
            if let Err(e) = table::write_checkpoint(&self.log, version).await {
                tracing::warn!(version, error = %e, "writing a checkpoint failed (the next interval tries again)");
            }
        }
    }

    /// Reads `r`'s inputs in offset order and writes them into new files near the target
    /// size, each durable under its final name. `None`: an input is missing or the schemas
    /// differ.
    async fn merge(
        &self,
        r: &Rewrite,
        inputs: &[&Add],
        indexed: usize,
    ) -> Result<Option<Vec<Merged>>> {
        let mut readers = Vec::with_capacity(inputs.len());
        let mut schema = None;
        for (planned, add) in r.inputs.iter().zip(inputs) {
            let Some(bytes) = self.log.get(&planned.rel).await? else {
                return Ok(None);
            };
            let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(|source| {
                SinkError::Footer {
                    path: planned.path.clone(),
                    source,
                }
            })?;
            match &schema {
                None => schema = Some(builder.schema().clone()),
                Some(s) if s.fields() != builder.schema().fields() => return Ok(None),
                Some(_) => {}
            }
            readers.push((planned, *add, builder));
        }
        let Some(schema) = schema else {
            return Ok(None);
        };
        let mut backend = self.backend.lock().await;
        let mut out = Vec::new();
        let mut open: Option<Output<'_>> = None;
        for (planned, add, builder) in readers {
            if open.is_none() {
                let rel = join_rel(
                    &r.dir,
                    &file_name(&r.partition, planned.offsets.first, Uuid::new_v4()),
                );
                let dest = backend.create(&rel, true).await?;
                let writer =
                    AsyncArrowWriter::try_new(dest, schema.clone(), Some(self.props.clone()))
                        .map_err(|source| SinkError::Encode {
                            path: self.log.display(&rel),
                            partition: r.partition.clone(),
                            source,
                        })?;
                open = Some(Output {
                    rel,
                    writer,
                    used: Vec::new(),
                    rows: 0,
                });
            }
            let Some(Output {
                rel,
                writer,
                used,
                rows,
            }) = open.as_mut()
            else {
                continue;
            };
            let reader = builder.build().map_err(|source| SinkError::Footer {
                path: planned.path.clone(),
                source,
            })?;
            for batch in reader {
                let batch = batch.map_err(|e| SinkError::Arrow {
                    context: "reading a Delta data file to compact",
                    partition: r.partition.clone(),
                    source: e,
                })?;
                *rows += batch.num_rows() as u64;
                writer
                    .write(&batch)
                    .await
                    .map_err(|source| SinkError::Encode {
                        path: self.log.display(rel),
                        partition: r.partition.clone(),
                        source,
                    })?;
            }
            used.push((planned, add));
            // The buffered row group's size is its uncompressed estimate, several times what
            // it takes on disk: a row group is closed once it holds an eighth of the target,
            // so the file's size is known to within that eighth and a merged file ends at 7/8
            // of the target or more (never "small" again under the default `min_file_size`).
            let target = self.settings.target_bytes;
            if writer.in_progress_size() as u64 >= target / 8 {
                writer.flush().await.map_err(|source| SinkError::Encode {
                    path: self.log.display(rel),
                    partition: r.partition.clone(),
                    source,
                })?;
            }
            if (writer.bytes_written() + writer.in_progress_size()) as u64 >= target {
                if let Some(o) = open.take() {
                    out.push(self.finish(r, &schema, o, &mut backend, indexed).await?);
                }
            }
        }
        if let Some(o) = open.take() {
            out.push(self.finish(r, &schema, o, &mut backend, indexed).await?);
        }
        Ok(Some(out))
    }

    /// Writes a merged file's footer, makes it durable and builds its `add`.
    async fn finish(
        &self,
        r: &Rewrite,
        schema: &arrow_schema::SchemaRef,
        Output {
            rel,
            mut writer,
            used,
            rows,
        }: Output<'_>,
        backend: &mut Backend,
        indexed: usize,
    ) -> Result<Merged> {
        let encode = |source| SinkError::Encode {
            path: self.log.display(&rel),
            partition: r.partition.clone(),
            source,
        };
        let want: u64 = used.iter().map(|(_, a)| rows_of(a)).sum();
        if rows != want {
            return Err(SinkError::Metadata {
                path: self.log.display(&rel),
                reason: format!(
                    "the inputs' stats count {want} rows, reading them gave {rows}: not compacted"
                ),
            });
        }
        let meta = writer.finish().await.map_err(encode)?;
        let size = writer.bytes_written() as u64;
        let stats = stats::file_stats(&meta, schema, indexed);
        backend
            .commit(vec![Finished {
                dest: writer.into_inner(),
                bytes: size,
            }])
            .await?;
        let (Some((first, first_add)), Some((last, _))) = (used.first(), used.last()) else {
            return Err(SinkError::Metadata {
                path: self.log.display(&rel),
                reason: "a merged file without inputs".into(),
            });
        };
        let range = OffsetRange::new(first.offsets.first, last.offsets.next);
        let partition_values: BTreeMap<String, Option<String>> = first_add.partition_values.clone();
        Ok(Merged {
            add: Add {
                path: uri_path(&rel),
                partition_values,
                size: size as i64,
                modification_time: now_ms(),
                data_change: false,
                stats: Some(stats),
                tags: Some(offset_tags(&self.app_id, &r.partition, range)),
            },
            rel,
            inputs: used.len(),
            rows,
            bytes_in: used.iter().map(|(p, _)| p.bytes).sum(),
        })
    }
}
