//! Committing a flush: finishing its data files, making them durable, and creating the next
//! table version with their `add` actions and the partitions' `txn` offsets, retrying past
//! versions other writers took and refusing (fencing) when another writer committed one of its
//! partitions; writing a checkpoint at the interval; and creating a missing table (version 0).

use std::collections::BTreeMap;
use std::time::Instant;

use bytes::Bytes;
use uuid::Uuid;

use super::log::TableState;
use super::log::{
    self, app_id_of, commit_path, commit_text, offset_tags, Action, Add, Format, Metadata, Txn,
};
use super::logstore::LogStore;
use super::schema::TableSchema;
use super::stats;
use super::table::{self, now_ms};
use super::{DeltaError, DeltaSink, DeltaSinkConfig, Open};
use crate::sink::store::Finished;
use crate::sink::{CommittedFile, OffsetRange, PartitionKey, Result, SinkError};

/// A file finished for a commit.
struct Done {
    key: PartitionKey,
    range: OffsetRange,
    add: Add,
    rows: u64,
}

/// `path` of an `add`: the root-relative path as a URI reference (`%` of escaped partition
/// values encoded again, as the protocol decodes paths).
pub(super) fn uri_path(rel: &str) -> String {
    rel.replace('%', "%25")
}

impl DeltaSink {
    pub(super) async fn commit(
        &mut self,
        opens: Vec<(PartitionKey, Open)>,
    ) -> Result<Vec<CommittedFile>> {
        let started = Instant::now();
        let app_id = self.config.app_id().to_owned();
        let partition_column = self.table.partitioning.column().map(str::to_owned);
        let mut done: Vec<Done> = Vec::new();
        let mut ranges = Vec::new();
        for (key, open) in opens {
            ranges.push((key.clone(), open.range));
            let mut finished = Vec::new();
            let mut pending = Vec::new();
            for (value, (rel, mut f)) in open.files {
                let meta = f
                    .writer
                    .finish()
                    .await
                    .map_err(|source| SinkError::Encode {
                        path: self.backend.display(&rel),
                        partition: key.clone(),
                        source,
                    })?;
                let stats = stats::file_stats(&meta, &self.table.file, self.indexed_columns);
                let size = f.writer.bytes_written() as u64;
                finished.push(Finished {
                    dest: f.writer.into_inner(),
                    bytes: size,
                });
                pending.push((value, rel, stats, size, f.rows));
            }
            // Durable (fsynced and renamed, or uploaded) before the log can name them.
            self.backend.commit(finished).await?;
            for (value, rel, stats, size, rows) in pending {
                let partition_values = partition_column
                    .iter()
                    .map(|c| (c.clone(), value.clone()))
                    .collect();
                done.push(Done {
                    key: key.clone(),
                    range: open.range,
                    add: Add {
                        path: uri_path(&rel),
                        partition_values,
                        size: size as i64,
                        modification_time: now_ms(),
                        data_change: true,
                        stats: Some(stats),
                        tags: Some(offset_tags(&app_id, &key, open.range)),
                    },
                    rows,
                });
            }
        }
        let now = now_ms();
        let rows: u64 = done.iter().map(|d| d.rows).sum();
        let bytes: i64 = done.iter().map(|d| d.add.size).sum();
        let mut actions = vec![Action::CommitInfo(serde_json::json!({
            "timestamp": now,
            "operation": "STREAMING UPDATE",
            "operationParameters": {"outputMode": "Append", "queryId": app_id, "epochId": now.to_string()},
            "isBlindAppend": true,
            "operationMetrics": {"numAddedFiles": done.len().to_string(), "numOutputRows": rows.to_string(), "numOutputBytes": bytes.to_string()},
            "engineInfo": format!("kingest/{}", env!("CARGO_PKG_VERSION")),
        }))];
        for (key, range) in &ranges {
            actions.push(Action::Txn(Txn {
                app_id: app_id_of(&app_id, key),
                version: range.next,
                last_updated: Some(now),
            }));
        }
        actions.extend(done.iter().map(|d| Action::Add(d.add.clone())));
        let text = Bytes::from(commit_text(&actions));
        let files_durable = started.elapsed();
        let version = self.put_commit(&ranges, text).await?;
        tracing::debug!(
            version,
            partitions = ranges.len(),
            files = done.len(),
            rows,
            data_ms = files_durable.as_secs_f64() * 1e3,
            log_ms = (started.elapsed() - files_durable).as_secs_f64() * 1e3,
            "delta commit"
        );
        if version > 0 && version % self.checkpoint_interval == 0 {
            match table::write_checkpoint(&self.log, version).await {
                Ok(c) => tracing::debug!(
                    version,
                    files = c.files,
                    bytes = c.bytes,
                    "checkpoint written"
                ),
                Err(e) => {
                    tracing::warn!(version, error = %e, "writing a checkpoint failed (readers read the JSON commits meanwhile; the next interval tries again)")
                }
            }
        }
        let commit_shown = self.log.display(&commit_path(version));
        let mut out: Vec<CommittedFile> = done
            .into_iter()
            .map(|d| CommittedFile {
                path: self.backend.display(&percent_decode(&d.add.path)),
                partition: d.key,
                offsets: d.range,
                rows: d.rows,
                bytes: d.add.size as u64,
            })
            .collect();
        for (key, range) in ranges {
            if !out.iter().any(|f| f.partition == key) {
                // Offsets without rows: the commit itself records them.
                out.push(CommittedFile {
                    path: commit_shown.clone(),
                    partition: key,
                    offsets: range,
                    rows: 0,
                    bytes: 0,
                });
            }
        }
        Ok(out)
    }

    /// Creates the next version with `text`, retrying past versions other writers take; checks
    /// before every attempt that no other writer committed offsets of `ranges`' partitions.
    async fn put_commit(
        &mut self,
        ranges: &[(PartitionKey, OffsetRange)],
        text: Bytes,
    ) -> Result<i64> {
        let app_id = self.config.app_id().to_owned();
        let mut state = self.lock_state().clone();
        for _ in 0..self.config.max_commit_attempts.max(1) {
            for (key, range) in ranges {
                if let Some(t) = state.txns.get(&app_id_of(&app_id, key)) {
                    if t.version != range.first {
                        return Err(SinkError::Delta {
                            table: self.log.display(""),
                            source: Box::new(DeltaError::Fenced {
                                partition: key.clone(),
                                ours: *range,
                                theirs: t.version,
                                version: state.version,
                            }),
                        });
                    }
                }
            }
            let v = state.version + 1;
            if self
                .log
                .put_if_absent(&commit_path(v), text.clone())
                .await?
            {
                if !table::extends_log(&self.log, v).await? {
                    state = table::load(&self.log, false, None).await?;
                    self.check_metadata(&state)?;
                    continue;
                }
                let actions = ranges
                    .iter()
                    .map(|(key, range)| {
                        log::Read::Txn(Txn {
                            app_id: app_id_of(&app_id, key),
                            version: range.next,
                            last_updated: None,
                        })
                    })
                    .collect();
                state.apply(v, actions);
                let mut shared = self.lock_state();
                if shared.version < state.version {
                    *shared = state;
                }
                return Ok(v);
            }
            tracing::debug!(
                version = v,
                "another writer committed this version first; reading it and retrying"
            );
            table::update(&self.log, &mut state).await?;
            self.check_metadata(&state)?;
        }
        Err(SinkError::Delta {
            table: self.log.display(""),
            source: Box::new(DeltaError::Contention(self.config.max_commit_attempts)),
        })
    }

    /// After other writers' commits: the table must still take this job's files.
    fn check_metadata(&self, state: &TableState) -> Result<()> {
        match (&state.protocol, &state.metadata) {
            (Some(p), Some(m)) => self.table.check_table(p, m).map_err(|e| match e {
                SinkError::Delta { source, .. } => SinkError::Delta {
                    table: self.log.display(""),
                    source,
                },
                other => other,
            }),
            _ => Ok(()),
        }
    }
}

/// Decodes the `%XX` escapes of an `add` path.
pub(super) fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Some(v) = std::str::from_utf8(&b[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Creates version 0: the protocol and the metadata of the job's table.
pub(super) async fn create(
    log: &LogStore,
    table: &TableSchema,
    config: &DeltaSinkConfig,
) -> Result<()> {
    log.create_log_dir().await?;
    let now = now_ms();
    let metadata = Metadata {
        id: Uuid::new_v4().to_string(),
        name: config.table_name.clone(),
        description: None,
        format: Format {
            provider: "parquet".into(),
            options: BTreeMap::new(),
        },
        schema_string: table.schema_string.clone(),
        partition_columns: table
            .partitioning
            .column()
            .into_iter()
            .map(str::to_owned)
            .collect(),
        configuration: BTreeMap::new(),
        created_time: Some(now),
    };
    let actions = [
        Action::CommitInfo(serde_json::json!({
            "timestamp": now,
            "operation": "CREATE TABLE",
            "operationParameters": {"partitionBy": serde_json::to_string(&metadata.partition_columns).unwrap_or_default()},
            "engineInfo": format!("kingest/{}", env!("CARGO_PKG_VERSION")),
        })),
        Action::Protocol(table.protocol.clone()),
        Action::MetaData(metadata),
    ];
    // Another process creating it at the same moment wins as well: both then check the
    // version 0 that exists against the job.
    if log
        .put_if_absent(&commit_path(0), Bytes::from(commit_text(&actions)))
        .await?
    {
        tracing::info!(table = %log.display(""), "Delta table created");
    }
    Ok(())
}
