//! `kingest compact` for the Iceberg sink: Iceberg's `rewrite_data_files` (small data files of
//! a table partition rewritten into files near a target size, committed as one `replace`
//! snapshot), `expire_snapshots` (see `expire.rs`) and `remove_orphan_files` (see
//! `orphans.rs`).
//!
//! # What is rewritten
//!
//! The current snapshot's live data files of the default partition spec, grouped by partition
//! tuple; per group, the files below [`CompactionSettings::small_below`], in data sequence
//! number order, packed greedily into bins of at most [`CompactionSettings::target_bytes`] (by
//! their column chunks' sizes, `column_sizes`: a small file is much footer, which the output
//! has once); a
//! bin of fewer than [`CompactionSettings::min_input_files`] is left alone. A table with delete
//! files (written by another engine: this sink writes none) is not compacted, since rewritten
//! rows would escape deletes committed while the rewrite ran.
//!
//! # How it commits
//!
//! Each bin's rows are read and written, in order, to one new data file next to its inputs;
//! nothing references it yet, so a `kill -9` here leaves only unreferenced files. Then one
//! snapshot with operation `replace`: a manifest adding the new files (their sequence number
//! inherited: the snapshot's), each manifest holding an input rewritten with the input
//! `DELETED` and its other files `EXISTING` (sequence numbers written out, see `entries.rs`),
//! every other manifest reused. Its summary carries every consumer group's offsets as the
//! parent's ancestry has them, unchanged, so a job resuming from the replace snapshot resumes
//! where it would have. The catalog's compare-and-swap makes it atomic: a reader sees the
//! inputs or the output, never both or neither. When the running job (or anyone) committed
//! meanwhile, the replace is built again on top of the new current snapshot (appends do not
//! conflict with it); a bin whose input is no longer live there (another compaction removed
//! it) is abandoned and its output deleted. A lost answer is resolved by the commit id, as the
//! sink's own commits are.
//!
//! Inputs are not deleted: older snapshots still reference them until snapshot expiry removes
//! those snapshots and, with them, files nothing else references.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::properties::WriterProperties;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::catalog::{Catalog, Loaded, Outcome, TableIdent};
use super::commit::{new_snapshot_id, write_manifest};
use super::entries::{self, ManifestRead};
use super::io::TableIo;
use super::manifest::{self, DataFile, ManifestFile};
use super::metadata::{self, COMMIT_ID_KEY, OFFSETS_PREFIX};
use super::partition::{PartKey, Spec};
use super::types::IceSchema;
use super::{expire, now_ms, orphans, IcebergSinkConfig};
use crate::sink::datafile::DataFileWriter;
use crate::sink::maintenance::{
    table_wide, Maintain, MaintenanceDone, MaintenancePlan, PlannedFile, Rewrite, Rewritten,
};
use crate::sink::parquet::compact::CompactionSettings;
use crate::sink::parquet::ParquetCompression;
use crate::sink::{OffsetRange, Result, SinkError};

/// An Iceberg table opened for maintenance: see the [module docs](self).
pub struct IcebergMaintenance {
    catalog: Catalog,
    ident: TableIdent,
    catalog_label: String,
    settings: CompactionSettings,
    retention: Option<IcebergRetention>,
    upload_part_bytes: usize,
}

/// `[sink.retention]` for an Iceberg table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IcebergRetention {
    /// `expire_snapshots`: snapshots older than this go (see `expire.rs`).
    pub max_age: Duration,
    /// `remove_orphan_files`: unreferenced files older than this go (see `orphans.rs`).
    pub orphans_older_than: Duration,
}

impl std::fmt::Debug for IcebergMaintenance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IcebergMaintenance")
            .field("table", &self.ident.to_string())
            .field("catalog", &self.catalog_label)
            .finish_non_exhaustive()
    }
}

/// A snapshot's manifests, read.
pub(super) type SnapshotFiles = Vec<(ManifestFile, ManifestRead)>;

/// Reads every manifest of snapshot `id` (none without one).
pub(super) async fn read_snapshot(
    io: &TableIo,
    loaded: &Loaded,
    id: Option<i64>,
) -> Result<SnapshotFiles> {
    let Some(list) = id
        .and_then(|id| loaded.metadata.snapshot(id))
        .and_then(|s| s.manifest_list)
    else {
        return Ok(Vec::new());
    };
    let table = loaded.metadata.location().to_owned();
    let bad = |what: &str, reason: String| SinkError::Table {
        table: table.clone(),
        reason: format!("{what}: {reason}"),
    };
    let listed = manifest::read_manifest_list(&io.read(&list).await?)
        .map_err(|reason| bad(&list, reason))?;
    futures_util::stream::iter(listed)
        .map(|m| async move {
            let bytes = io.read(&m.path).await?;
            let read = entries::read_manifest(&bytes, &m).map_err(|reason| SinkError::Table {
                table: m.path.clone(),
                reason,
            })?;
            Ok::<_, SinkError>((m, read))
        })
        .buffered(16)
        .try_collect()
        .await
}

/// Opens the table `config` names for `kingest compact`.
pub async fn open_maintenance(
    config: &IcebergSinkConfig,
    settings: CompactionSettings,
    retention: Option<IcebergRetention>,
) -> Result<IcebergMaintenance> {
    let ident = TableIdent::parse(&config.table).map_err(|reason| SinkError::Table {
        table: config.table.clone(),
        reason,
    })?;
    Ok(IcebergMaintenance {
        catalog: Catalog::connect(&config.catalog, config.store_settings()).await?,
        ident,
        catalog_label: config.catalog.label(),
        settings,
        retention,
        upload_part_bytes: config.upload_part_bytes,
    })
}

/// One bin of the plan, resolved against the table when executing.
struct Bin {
    inputs: Vec<String>,
    output: Option<DataFile>,
    spec: Option<Spec>,
    bytes_in: u64,
}

impl IcebergMaintenance {
    fn table_err(&self, reason: impl Into<String>) -> SinkError {
        SinkError::Table {
            table: self.ident.to_string(),
            reason: reason.into(),
        }
    }

    async fn load(&self) -> Result<Loaded> {
        self.catalog
            .load(&self.ident)
            .await?
            .ok_or_else(|| self.table_err("the table does not exist"))
    }

    async fn compaction_plan(
        &self,
        io: &TableIo,
        loaded: &Loaded,
        files: &SnapshotFiles,
        plan: &mut MaintenancePlan,
    ) {
        let spec_id = loaded.metadata.default_spec_id();
        if files
            .iter()
            .any(|(m, r)| m.content != 0 || r.entries.iter().any(|e| e.live() && e.content != 0))
        {
            plan.notes.push(
                "the table has delete files (another engine's row-level deletes): not \
                 compacted, since rewritten rows could escape deletes committed meanwhile"
                    .into(),
            );
            return;
        }
        let location = loaded.metadata.location();
        let ts = loaded
            .metadata
            .current_snapshot_id()
            .and_then(|id| loaded.metadata.snapshot(id))
            .map_or(0, |s| s.timestamp_ms);
        let mut by_partition: BTreeMap<&str, Vec<&entries::Entry>> = BTreeMap::new();
        let mut other_specs = 0usize;
        for (m, r) in files {
            for e in r.entries.iter().filter(|e| e.live()) {
                if m.spec_id != spec_id {
                    other_specs += 1;
                } else if e.size < self.settings.small_below {
                    by_partition.entry(&e.partition).or_default().push(e);
                }
            }
        }
        if other_specs > 0 {
            plan.notes.push(format!(
                "{other_specs} files of an earlier partition spec are left as they are"
            ));
        }
        for (partition, mut small) in by_partition {
            small.sort_by(|a, b| (a.sequence_number, &a.path).cmp(&(b.sequence_number, &b.path)));
            let ratio = sample_ratio(io, loaded, &small).await;
            let mut bins: Vec<Vec<&entries::Entry>> = vec![Vec::new()];
            let mut size = 0f64;
            for e in small {
                // By the bytes a file is expected to carry into the output: its column
                // chunks (not its footer, which the output has once), times how much
                // better rows compress together (`ratio`).
                let est = e.data_bytes as f64 * ratio;
                let bin = bins
                    .last_mut()
                    .filter(|b| b.is_empty() || size + est <= self.settings.target_bytes as f64);
                match bin {
                    Some(b) => {
                        size += est;
                        b.push(e);
                    }
                    None => {
                        size = est;
                        bins.push(vec![e]);
                    }
                }
            }
            for bin in bins {
                if bin.len() < self.settings.min_input_files.max(2) {
                    continue;
                }
                plan.rewrites.push(Rewrite {
                    partition: table_wide(),
                    dir: if partition.is_empty() {
                        String::new()
                    } else {
                        partition.to_owned()
                    },
                    inputs: bin
                        .iter()
                        .map(|e| PlannedFile {
                            path: e.path.clone(),
                            rel: e
                                .path
                                .strip_prefix(location)
                                .map_or(e.path.as_str(), |r| r.trim_start_matches('/'))
                                .to_owned(),
                            offsets: OffsetRange { first: 0, next: 0 },
                            rows: e.rows,
                            bytes: e.size,
                            modified_ms: ts,
                        })
                        .collect(),
                    offsets: OffsetRange { first: 0, next: 0 },
                });
            }
        }
    }

    /// Rewrites one bin's inputs into one file next to the first input.
    async fn rewrite(
        &self,
        io: &TableIo,
        loaded: &Loaded,
        table_schema: &IceSchema,
        props: &WriterProperties,
        bin: &mut Bin,
        sizes: &HashMap<String, u64>,
    ) -> Result<()> {
        let first = &bin.inputs[0];
        let dir = first.rsplit_once('/').map_or(first.as_str(), |(d, _)| d);
        let location = format!("{dir}/{}-compacted.parquet", Uuid::new_v4().simple());
        let mut writer: Option<DataFileWriter> = None;
        let mut key: Option<PartKey> = None;
        let encode = |source| SinkError::Table {
            table: location.clone(),
            reason: format!("rewriting: {source}"),
        };
        for input in &bin.inputs {
            let size = sizes.get(input).copied().unwrap_or(0);
            // Inputs are small by definition: read whole, decoded in memory.
            let bytes = io.read(input).await?;
            let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
                .map_err(encode)?
                .build()
                .map_err(encode)?;
            for batch in reader {
                let batch = batch.map_err(|e| encode(e.into()))?;
                if batch.num_rows() == 0 {
                    continue;
                }
                if writer.is_none() {
                    let spec_json = loaded
                        .metadata
                        .default_spec()
                        .map_err(|r| self.table_err(r))?;
                    let spec = Spec::from_json(spec_json, table_schema, &batch.schema())
                        .map_err(|r| self.table_err(r))?;
                    let parts = spec.split(&batch).map_err(|r| self.table_err(r))?;
                    key = parts.into_iter().next().map(|(k, _)| k);
                    bin.spec = Some(spec);
                    writer = Some(
                        DataFileWriter::create(
                            Arc::clone(io.store()),
                            io.path(&location)?,
                            location.clone(),
                            batch.schema(),
                            props.clone(),
                            self.upload_part_bytes,
                        )
                        .map_err(encode)?,
                    );
                }
                if let Some(w) = writer.as_mut() {
                    if w.write(&batch).await.is_err() {
                        // Inputs of another schema (the table's schema evolved between them).
                        if let Some(w) = writer.take() {
                            w.abort().await;
                        }
                        io.delete(&location).await;
                        return Err(self.table_err(format!(
                            "{input}: its columns differ from {first}'s: not merged"
                        )));
                    }
                }
            }
            bin.bytes_in += size;
        }
        let (Some(w), Some(key)) = (writer, key) else {
            return Ok(());
        };
        let written = w.finish().await.map_err(encode)?;
        io.durable(&written.location).await?;
        bin.output = Some(DataFile::new(&written, key, table_schema));
        Ok(())
    }

    async fn compact(&self, plan: &MaintenancePlan, done: &mut MaintenanceDone) -> Result<()> {
        let mut base = self.load().await?;
        let io = self.catalog.io(base.metadata.location())?;
        let table_schema = base.metadata.schema().map_err(|r| self.table_err(r))?;
        let current = read_snapshot(&io, &base, base.metadata.current_snapshot_id()).await?;
        let spec_id = base.metadata.default_spec_id();
        let sizes: HashMap<String, u64> = current
            .iter()
            .filter(|(m, _)| m.spec_id == spec_id)
            .flat_map(|(_, r)| r.entries.iter().filter(|e| e.live()))
            .map(|e| (e.path.clone(), e.size))
            .collect();
        let props = writer_props(&base);
        let mut bins = Vec::new();
        for r in &plan.rewrites {
            let inputs: Vec<String> = r.inputs.iter().map(|f| f.path.clone()).collect();
            if let Some(gone) = inputs.iter().find(|p| !sizes.contains_key(*p)) {
                done.skipped.push(format!(
                    "{} ({} files): {gone} is no longer in the table",
                    r.dir,
                    inputs.len()
                ));
                continue;
            }
            let mut bin = Bin {
                inputs,
                output: None,
                spec: None,
                bytes_in: 0,
            };
            match self
                .rewrite(&io, &base, &table_schema, &props, &mut bin, &sizes)
                .await
            {
                Ok(()) if bin.output.is_some() => bins.push(bin),
                Ok(()) => done.skipped.push(format!("{}: no rows", r.dir)),
                Err(e) => done.skipped.push(e.to_string()),
            }
        }
        let commit_id = Uuid::new_v4().simple().to_string();
        let mut snapshot_id = new_snapshot_id();
        let mut attempt = 0u32;
        let mut backoff = Duration::from_millis(50);
        loop {
            if bins.is_empty() {
                return Ok(());
            }
            if attempt > 0 {
                base = self.load().await?;
                if base.metadata.has_commit(&commit_id) {
                    break;
                }
            }
            let current = if attempt == 0 {
                current.clone()
            } else {
                read_snapshot(&io, &base, base.metadata.current_snapshot_id()).await?
            };
            let live: HashSet<&str> = current
                .iter()
                .filter(|(m, _)| m.spec_id == base.metadata.default_spec_id())
                .flat_map(|(_, r)| r.entries.iter().filter(|e| e.live()))
                .map(|e| e.path.as_str())
                .collect();
            let has_deletes = current.iter().any(|(m, r)| {
                m.content != 0 || r.entries.iter().any(|e| e.live() && e.content != 0)
            });
            let (keep, gone): (Vec<Bin>, Vec<Bin>) = std::mem::take(&mut bins)
                .into_iter()
                .partition(|b| !has_deletes && b.inputs.iter().all(|p| live.contains(p.as_str())));
            for b in gone {
                let why = if has_deletes {
                    "delete files were committed meanwhile"
                } else {
                    "an input was removed meanwhile (another compaction, or expiry)"
                };
                done.skipped.push(format!(
                    "{} files into {}: abandoned: {why}",
                    b.inputs.len(),
                    b.output.as_ref().map_or("", |o| o.location.as_str())
                ));
                if let Some(o) = &b.output {
                    io.delete(&o.location).await;
                }
            }
            bins = keep;
            if bins.is_empty() {
                return Ok(());
            }
            while base.metadata.has_snapshot(snapshot_id) {
                snapshot_id = new_snapshot_id();
            }
            let (outcome, written) = self
                .attempt(
                    &io,
                    &base,
                    &current,
                    &bins,
                    &table_schema,
                    snapshot_id,
                    &commit_id,
                    attempt,
                )
                .await?;
            match outcome {
                Outcome::Committed => break,
                Outcome::Conflict => {
                    for w in written {
                        io.delete(&w).await;
                    }
                    tracing::debug!(table = %self.ident, attempt, "the table moved; rebuilding the replace");
                }
                Outcome::Unknown(why) => {
                    tracing::warn!(table = %self.ident, attempt, error = %why,
                        "the replace commit's outcome is unknown; reading the table to find out");
                }
            }
            if attempt >= 200 {
                return Err(self.table_err(
                    "the replace commit failed 200 times: other writers keep committing, or the \
                     catalog fails",
                ));
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(2));
            attempt += 1;
        }
        for b in bins {
            if let Some(o) = b.output {
                done.rewritten.push(Rewritten {
                    path: o.location.clone(),
                    inputs: b.inputs.len(),
                    rows: o.rows,
                    bytes_in: b.bytes_in,
                    bytes_out: o.size,
                });
            }
        }
        Ok(())
    }

    /// One commit attempt of the replace on `base`, whose current snapshot's manifests are
    /// `current`. Returns the outcome and the files it wrote (to delete on a conflict).
    #[allow(clippy::too_many_arguments)]
    async fn attempt(
        &self,
        io: &TableIo,
        base: &Loaded,
        current: &SnapshotFiles,
        bins: &[Bin],
        table_schema: &IceSchema,
        snapshot_id: i64,
        commit_id: &str,
        attempt: u32,
    ) -> Result<(Outcome, Vec<String>)> {
        let location = base.metadata.location().to_owned();
        let outputs: Vec<DataFile> = bins.iter().filter_map(|b| b.output.clone()).collect();
        let removed: HashSet<String> = bins.iter().flat_map(|b| b.inputs.clone()).collect();
        let spec = bins
            .iter()
            .find_map(|b| b.spec.clone())
            .ok_or_else(|| self.table_err("no partition spec"))?;
        let mut written = Vec::new();
        let added =
            write_manifest(io, &location, &spec, table_schema, &outputs, snapshot_id).await?;
        written.push(added.path.clone());
        let mut manifests = vec![added];
        let (mut deleted_rows, mut removed_size) = (0u64, 0u64);
        // Manifests holding an input, merged by schema and spec into one each.
        let mut touched: Vec<Vec<(&ManifestRead, &ManifestFile)>> = Vec::new();
        for (m, read) in current {
            let hit = read
                .entries
                .iter()
                .filter(|e| e.live() && removed.contains(&e.path));
            let (n, rows, size) =
                hit.fold((0, 0, 0), |(n, r, s), e| (n + 1, r + e.rows, s + e.size));
            if n == 0 {
                // A manifest with no live file (its entries deleted by an earlier replace)
                // is not needed by this snapshot.
                if m.content != 0 || read.entries.iter().any(|e| e.live()) {
                    manifests.push(m.clone());
                }
                continue;
            }
            deleted_rows += rows;
            removed_size += size;
            let group = touched
                .iter_mut()
                .find(|g| g[0].1.spec_id == m.spec_id && g[0].0.same_schema(read));
            match group {
                Some(g) => g.push((read, m)),
                None => touched.push(vec![(read, m)]),
            }
        }
        for parts in touched {
            let (bytes, mut listed) = entries::rewrite_manifests(&parts, &removed, snapshot_id)
                .map_err(|r| self.table_err(format!("rewriting manifests: {r}")))?;
            listed.path = format!("{location}/metadata/{}-m1.avro", Uuid::new_v4());
            listed.length = bytes.len() as i64;
            io.write(&listed.path, bytes).await?;
            written.push(listed.path.clone());
            manifests.push(listed);
        }
        let seq = base.metadata.last_sequence_number() + 1;
        let parent = base.metadata.current_snapshot_id();
        let list_bytes = manifest::write_manifest_list(&manifests, snapshot_id, parent, seq)
            .map_err(|r| self.table_err(format!("encoding the manifest list: {r}")))?;
        let list = format!("{location}/metadata/snap-{snapshot_id}-{attempt}-{commit_id}.avro");
        io.write(&list, list_bytes).await?;
        written.push(list.clone());
        let parent_summary = parent
            .and_then(|p| base.metadata.snapshot(p))
            .map(|s| s.summary)
            .unwrap_or_default();
        let mut summary = replace_summary(
            &outputs,
            removed.len() as u64,
            deleted_rows,
            removed_size,
            &parent_summary,
        );
        // Every group's offsets, unchanged: resuming from this snapshot is resuming from its
        // parent.
        for group in groups(base) {
            let offsets = base
                .metadata
                .group_offsets(&group)
                .map_err(|r| self.table_err(r))?;
            summary.insert(
                format!("{OFFSETS_PREFIX}{group}"),
                Value::String(metadata::offsets_json(&offsets)),
            );
        }
        summary.insert(COMMIT_ID_KEY.into(), json!(commit_id));
        summary.insert("kingest.version".into(), json!(env!("CARGO_PKG_VERSION")));
        summary.insert(
            "kingest.writer".into(),
            json!(format!("kingest compact, pid {}", std::process::id())),
        );
        let now = now_ms();
        let mut snapshot = json!({
            "snapshot-id": snapshot_id,
            "sequence-number": seq,
            "timestamp-ms": now,
            "manifest-list": list,
            "summary": summary,
            "schema-id": table_schema.schema_id,
        });
        if let Some(p) = parent {
            snapshot["parent-snapshot-id"] = json!(p);
        }
        let new = base.metadata.with_snapshot(&snapshot, &base.location, now);
        let version = metadata::metadata_version(&base.location).map_or(1, |v| v + 1);
        let new_location = format!(
            "{location}/metadata/{version:05}-{}.metadata.json",
            Uuid::new_v4()
        );
        let outcome = self
            .catalog
            .commit(&self.ident, base, &snapshot, &new, &new_location, io)
            .await?;
        if matches!(outcome, Outcome::Conflict) && self.catalog.writes_metadata() {
            written.push(new_location);
        }
        Ok((outcome, written))
    }
}

/// The consumer groups whose offsets some snapshot of `main`'s ancestry carries.
pub(super) fn groups(loaded: &Loaded) -> Vec<String> {
    let mut out: Vec<String> = loaded
        .metadata
        .ancestry()
        .iter()
        .flat_map(|s| s.summary.keys())
        .filter_map(|k| k.strip_prefix(OFFSETS_PREFIX))
        .map(str::to_owned)
        .collect();
    out.sort();
    out.dedup();
    out
}

/// How much smaller rows get when written together than in small files: the first (up to 32)
/// of `files` written into one Parquet file in memory, its size over theirs (column chunks
/// only). Small files compress badly (a dictionary and page headers per few rows), so packing
/// bins by input sizes alone would make outputs a fraction of the target. 1 when the sample
/// cannot be read.
async fn sample_ratio(io: &TableIo, loaded: &Loaded, files: &[&entries::Entry]) -> f64 {
    let mut input = 0u64;
    let mut writer: Option<parquet::arrow::ArrowWriter<Vec<u8>>> = None;
    for e in files.iter().take(32) {
        let Ok(bytes) = io.read(&e.path).await else {
            return 1.0;
        };
        let Ok(reader) = ParquetRecordBatchReaderBuilder::try_new(bytes).and_then(|b| b.build())
        else {
            return 1.0;
        };
        for batch in reader {
            let Ok(batch) = batch else { return 1.0 };
            if writer.is_none() {
                writer = parquet::arrow::ArrowWriter::try_new(
                    Vec::new(),
                    batch.schema(),
                    Some(writer_props(loaded)),
                )
                .ok();
            }
            if writer.as_mut().is_none_or(|w| w.write(&batch).is_err()) {
                return 1.0;
            }
        }
        input += e.data_bytes;
    }
    let Some(Ok(out)) = writer.map(parquet::arrow::ArrowWriter::into_inner) else {
        return 1.0;
    };
    if input == 0 {
        return 1.0;
    }
    (out.len() as f64 / input as f64).clamp(0.02, 1.0)
}

/// Data files written as the table's properties say (compression).
fn writer_props(loaded: &Loaded) -> WriterProperties {
    let codec = match loaded.metadata.property("write.parquet.compression-codec") {
        Some("snappy") => ParquetCompression::Snappy,
        Some("lz4") => ParquetCompression::Lz4,
        Some("gzip") => ParquetCompression::Gzip,
        Some("uncompressed") => ParquetCompression::None,
        _ => ParquetCompression::Zstd,
    };
    WriterProperties::builder()
        .set_compression(codec.to_parquet())
        .set_max_row_group_bytes(Some(64 << 20))
        .set_created_by(format!("kingest {}", env!("CARGO_PKG_VERSION")))
        .build()
}

/// A `replace` snapshot's summary: Iceberg's counts, and totals carried from the parent.
fn replace_summary(
    added: &[DataFile],
    deleted_files: u64,
    deleted_rows: u64,
    removed_size: u64,
    parent: &Map<String, Value>,
) -> Map<String, Value> {
    let added_rows: u64 = added.iter().map(|f| f.rows).sum();
    let added_size: u64 = added.iter().map(|f| f.size).sum();
    let partitions: HashSet<&PartKey> = added.iter().map(|f| &f.partition).collect();
    let mut s = Map::new();
    let mut put = |k: &str, v: String| {
        s.insert(k.to_owned(), Value::String(v));
    };
    put("operation", "replace".into());
    put("added-data-files", added.len().to_string());
    put("deleted-data-files", deleted_files.to_string());
    put("added-records", added_rows.to_string());
    put("deleted-records", deleted_rows.to_string());
    put("added-files-size", added_size.to_string());
    put("removed-files-size", removed_size.to_string());
    put("changed-partition-count", partitions.len().to_string());
    let total = |k: &str| -> Option<i128> { parent.get(k)?.as_str()?.parse().ok() };
    for (k, delta) in [
        ("total-records", added_rows as i128 - deleted_rows as i128),
        (
            "total-files-size",
            added_size as i128 - removed_size as i128,
        ),
        (
            "total-data-files",
            added.len() as i128 - deleted_files as i128,
        ),
        ("total-delete-files", 0),
        ("total-position-deletes", 0),
        ("total-equality-deletes", 0),
    ] {
        if let Some(t) = total(k) {
            put(k, (t + delta).max(0).to_string());
        }
    }
    s
}

impl Maintain for IcebergMaintenance {
    async fn plan(&self) -> Result<MaintenancePlan> {
        let loaded = self.load().await?;
        let io = self.catalog.io(loaded.metadata.location())?;
        let current = read_snapshot(&io, &loaded, loaded.metadata.current_snapshot_id()).await?;
        let mib = |b: u64| b as f64 / f64::from(1 << 20);
        let mut plan = MaintenancePlan {
            sink: format!("iceberg {} ({})", self.ident, self.catalog_label),
            settings: format!(
                "rewrite_data_files: target {:.0} MiB, files under {:.0} MiB, at least {} per \
                 file; expire_snapshots: {}",
                mib(self.settings.target_bytes),
                mib(self.settings.small_below),
                self.settings.min_input_files,
                self.retention.map_or("off".to_owned(), |r| format!(
                    "older than {:?}; remove_orphan_files: older than {:?}",
                    r.max_age, r.orphans_older_than
                ))
            ),
            ..MaintenancePlan::default()
        };
        self.compaction_plan(&io, &loaded, &current, &mut plan)
            .await;
        if let Some(r) = self.retention {
            expire::plan(&io, &loaded, r.max_age, &mut plan).await?;
            orphans::plan(&self.catalog, &self.ident, r.orphans_older_than, &mut plan).await?;
        }
        Ok(plan)
    }

    async fn execute(&self, plan: &MaintenancePlan) -> Result<MaintenanceDone> {
        let mut done = MaintenanceDone::default();
        self.compact(plan, &mut done).await?;
        if let Some(r) = self.retention {
            expire::execute(&self.catalog, &self.ident, r.max_age, &mut done).await?;
            orphans::execute(&self.catalog, &self.ident, r.orphans_older_than, &mut done).await?;
        }
        Ok(done)
    }
}
