//! `kingest compact` for the Parquet sink: small files of a Kafka partition merged into files
//! near a target size, and files older than a retention bound deleted.
//!
//! # What is merged
//!
//! Per directory (the root, or a `partition_by` directory) and Kafka partition, the group's
//! committed files holding rows, in offset order. A run of consecutive *small* files (below
//! [`CompactionSettings::small_below`]) whose offset ranges do not overlap is packed greedily
//! into groups of at most [`CompactionSettings::target_bytes`] (by the inputs' sizes; the merged
//! file has the same compression, so about the same size); a group of fewer than
//! [`CompactionSettings::min_input_files`] is left alone. A large file, an overlap, or a
//! change of schema ends a run. Offset markers (files without rows) are never merged: they
//! are the sink's to delete. A file whose commit is not complete yet (a `partition_by` commit
//! whose other files are still being renamed into place, or await recovery) is left out, since
//! recovery decides a commit's fate from its files being present.
//!
//! The merged file's footer records the offsets `[first, next)` from its first input's `first`
//! to its last input's `next`: every row of those offsets that exists is in it. A partition's
//! highest `next`, where `kingest run` resumes, is unchanged, and so is what `kingest check`
//! shows. Its modification time is the newest of its inputs', so retention ages it by its
//! newest rows.
//!
//! # How it becomes visible
//!
//! Local directories only: the merged files replace their inputs in one atomic exchange of the
//! directory (see `store/swap.rs` for why nothing less is safe for plain directory readers,
//! and for the writers' side). Object stores have no operation that replaces several objects at
//! once, so a reader listing between the merged file's upload and the inputs' deletion would
//! read those rows twice: compaction refuses them and says so in the plan (a table sink, whose
//! readers follow its metadata, is the way to compact on S3, GCS or Azure). Retention works on
//! both: it deletes whole files, one by one.
//!
//! # Retention
//!
//! With a bound, every file of the group committed longer ago than the bound is deleted,
//! except those holding the highest `next` of their Kafka partition: that offset is where the
//! job resumes, and it is recorded nowhere else (the running sink's marker deletion relies on
//! the top-ranked file never being deleted by anyone: see `markers.rs`).

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arrow_schema::SchemaRef;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use uuid::Uuid;

use crate::sink::layout::{file_name, join_rel};
use crate::sink::maintenance::{
    Expiry, Maintain, MaintenanceDone, MaintenancePlan, PlannedFile, Rewrite, Rewritten,
};
use crate::sink::meta::{FileMeta, OFFSETS_KEY};
use crate::sink::store::swap::{self, lock_dir, LockMode, Sibling};
use crate::sink::store::{fsync_dir_path, local_millis, ScannedFile, Scanner};
use crate::sink::{OffsetRange, PartitionKey, Result, SinkError};

/// What compaction merges: see the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompactionSettings {
    /// The size merged files aim at.
    pub target_bytes: u64,
    /// Files below this size may be merged.
    pub small_below: u64,
    /// The fewest files a group is merged from.
    pub min_input_files: usize,
}

impl Default for CompactionSettings {
    /// 128 MiB files, from files under 96 MiB, at least 2 at a time.
    fn default() -> Self {
        Self {
            target_bytes: 128 << 20,
            small_below: 96 << 20,
            min_input_files: 2,
        }
    }
}

/// A Parquet sink's compaction and retention; from [`super::ParquetSink::maintenance`].
pub struct ParquetMaintenance {
    pub(super) scanner: Scanner,
    pub(super) root: Option<PathBuf>,
    pub(super) display: String,
    pub(super) group: String,
    pub(super) props: WriterProperties,
    pub(super) settings: CompactionSettings,
    pub(super) retention: Option<Duration>,
}

impl ParquetMaintenance {
    fn settings_text(&self) -> String {
        let mb = |b: u64| format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64);
        let mut s = format!(
            "target {}, files under {}, at least {} per merge",
            mb(self.settings.target_bytes),
            mb(self.settings.small_below),
            self.settings.min_input_files
        );
        if let Some(r) = self.retention {
            s.push_str(&format!("; retention {}s", r.as_secs()));
        }
        s
    }
}

/// A committed file of the group with a single partition range.
struct Candidate {
    file: ScannedFile,
    key: PartitionKey,
    range: OffsetRange,
}

fn planned(c: &Candidate) -> PlannedFile {
    PlannedFile {
        path: c.file.shown.clone(),
        rel: c.file.rel.clone(),
        offsets: c.range,
        rows: c.file.rows.max(0) as u64,
        bytes: c.file.bytes,
        modified_ms: c.file.modified_ms,
    }
}

fn dir_of(rel: &str) -> &str {
    rel.rsplit_once('/').map(|(d, _)| d).unwrap_or("")
}

impl Maintain for ParquetMaintenance {
    async fn plan(&self) -> Result<MaintenancePlan> {
        let files = self.scanner.committed().await?;
        let present: HashSet<String> = files.iter().map(|f| f.rel.clone()).collect();
        let mut plan = MaintenancePlan {
            sink: format!("parquet {}", self.display),
            settings: self.settings_text(),
            ..MaintenancePlan::default()
        };
        let mut candidates = Vec::new();
        for file in files {
            if file.meta.group != self.group {
                continue;
            }
            let ranges: Vec<_> = file.meta.ranges().collect();
            let [(key, range)] = ranges.as_slice() else {
                continue;
            };
            let (key, range) = (key.clone(), *range);
            candidates.push(Candidate { file, key, range });
        }
        // Retention first: an expired file is deleted, not merged.
        let mut expired = HashSet::new();
        if let Some(bound) = self.retention {
            let now = local_millis(SystemTime::now());
            let cutoff = now - bound.as_millis() as i64;
            let mut top: BTreeMap<&PartitionKey, i64> = BTreeMap::new();
            for c in &candidates {
                let t = top.entry(&c.key).or_insert(c.range.next);
                *t = (*t).max(c.range.next);
            }
            for c in &candidates {
                if c.file.modified_ms < cutoff && c.range.next < top[&c.key] {
                    expired.insert(c.file.rel.clone());
                    plan.expired.push(Expiry {
                        partition: c.key.clone(),
                        file: planned(c),
                    });
                }
            }
        }
        let mut by_dir: BTreeMap<(String, PartitionKey), Vec<&Candidate>> = BTreeMap::new();
        for c in &candidates {
            if c.file.rows <= 0 || expired.contains(&c.file.rel) {
                continue;
            }
            if !c.file.meta.files.iter().all(|f| present.contains(f)) {
                plan.notes.push(format!(
                    "{}: its commit is not complete yet (files still being renamed into place, or awaiting recovery): left alone",
                    c.file.shown
                ));
                continue;
            }
            by_dir
                .entry((dir_of(&c.file.rel).to_owned(), c.key.clone()))
                .or_default()
                .push(c);
        }
        for ((dir, key), mut files) in by_dir {
            files.sort_by_key(|c| (c.range.first, c.range.next));
            let mut group: Vec<&Candidate> = Vec::new();
            let close = |group: &mut Vec<&Candidate>, plan: &mut MaintenancePlan| {
                if group.len() >= self.settings.min_input_files {
                    plan.rewrites.push(Rewrite {
                        partition: key.clone(),
                        dir: dir.clone(),
                        offsets: OffsetRange::new(
                            group[0].range.first,
                            group.iter().map(|c| c.range.next).max().unwrap_or(0),
                        ),
                        inputs: group.iter().map(|c| planned(c)).collect(),
                    });
                }
                group.clear();
            };
            for c in files {
                let small = c.file.bytes < self.settings.small_below;
                let overlaps = group.last().is_some_and(|p| c.range.first < p.range.next);
                if !small || overlaps {
                    close(&mut group, &mut plan);
                }
                if small {
                    group.push(c);
                }
            }
            close(&mut group, &mut plan);
        }
        if self.root.is_none() && !plan.rewrites.is_empty() {
            plan.notes.push(format!(
                "{} small files are not merged: object stores cannot replace several objects in one step, so readers listing meanwhile would see rows twice (use a table sink to compact on an object store)",
                plan.rewrites.iter().map(|r| r.inputs.len()).sum::<usize>()
            ));
            plan.rewrites.clear();
        }
        Ok(plan)
    }

    async fn execute(&self, plan: &MaintenancePlan) -> Result<MaintenanceDone> {
        let mut done = MaintenanceDone::default();
        for e in &plan.expired {
            self.scanner.remove(&e.file.rel).await?;
            done.deleted.push(e.file.path.clone());
        }
        let Some(root) = self.root.clone() else {
            return Ok(done);
        };
        let mut by_dir: BTreeMap<String, Vec<Rewrite>> = BTreeMap::new();
        for r in &plan.rewrites {
            by_dir.entry(r.dir.clone()).or_default().push(r.clone());
        }
        for (dir, rewrites) in by_dir {
            let job = DirJob {
                root: root.clone(),
                dir,
                rewrites,
                group: self.group.clone(),
                props: self.props.clone(),
                target: self.settings.target_bytes,
            };
            let part = tokio::task::spawn_blocking(move || job.run())
                .await
                .unwrap_or_else(|e| {
                    Err(SinkError::Poisoned(format!(
                        "a compaction task failed: {e}"
                    )))
                })?;
            done.rewritten.extend(part.rewritten);
            done.skipped.extend(part.skipped);
            done.cleaned.extend(part.cleaned);
        }
        Ok(done)
    }
}

/// The rewrites of one directory, run on a blocking thread.
struct DirJob {
    root: PathBuf,
    dir: String,
    rewrites: Vec<Rewrite>,
    group: String,
    props: WriterProperties,
    target: u64,
}

impl DirJob {
    fn run(self) -> Result<MaintenanceDone> {
        let mut done = MaintenanceDone::default();
        let path = if self.dir.is_empty() {
            self.root.clone()
        } else {
            self.root.join(&self.dir)
        };
        let path = std::fs::canonicalize(&path).map_err(|source| SinkError::Io {
            op: "resolve",
            path: path.display().to_string(),
            source,
        })?;
        done.cleaned = swap::remove_stale(&path)?;
        let id = Uuid::new_v4().simple().to_string();
        let mut sibling = Sibling::create(swap::sibling(&path, &id)?)?;
        let result = self.fill_and_exchange(&path, &mut sibling, &mut done);
        // The old contents after an exchange, or the unused new ones after a failure.
        swap::remove_tree(&sibling.path)?;
        result?;
        Ok(done)
    }

    fn fill_and_exchange(
        &self,
        dir: &Path,
        sibling: &mut Sibling,
        done: &mut MaintenanceDone,
    ) -> Result<()> {
        let mut written = Vec::new();
        for r in &self.rewrites {
            match merge(r, dir, &sibling.path, &self.group, &self.props, self.target)? {
                Some(w) => written.push((r, w)),
                None => done.skipped.push(format!(
                    "{} files of {} in {:?}: an input is gone or its schema differs",
                    r.inputs.len(),
                    r.partition,
                    r.dir
                )),
            }
        }
        if written.is_empty() {
            return Ok(());
        }
        let _exclusive = lock_dir(dir, LockMode::Exclusive)?;
        // Another compaction, or retention, may have taken an input since it was read.
        let mut skip = HashSet::new();
        let mut kept = Vec::new();
        for (r, w) in written {
            let names: Vec<String> = r.inputs.iter().map(|f| base_name(&f.rel)).collect();
            if names.iter().all(|n| dir.join(n).is_file()) {
                skip.extend(names);
                kept.extend(w);
            } else {
                for out in &w {
                    let merged = sibling.path.join(base_name(&out.path));
                    std::fs::remove_file(&merged).map_err(|source| SinkError::Io {
                        op: "remove",
                        path: merged.display().to_string(),
                        source,
                    })?;
                }
                done.skipped.push(format!(
                    "{} files of {}: an input was removed meanwhile",
                    r.inputs.len(),
                    r.partition
                ));
            }
        }
        if kept.is_empty() {
            return Ok(());
        }
        let subdirs = swap::link_all_but(dir, &sibling.path, &skip)?;
        fsync_dir_path(&sibling.path)?;
        swap::exchange(dir, &sibling.path)?;
        // The locked inode is the live directory now: writers must get at it.
        sibling.release();
        swap::move_subdirs(&sibling.path, dir, &subdirs)?;
        for mut w in kept {
            w.path = dir.join(base_name(&w.path)).display().to_string();
            done.rewritten.push(w);
        }
        Ok(())
    }
}

fn base_name(path: &str) -> String {
    path.rsplit('/').next().unwrap_or(path).to_owned()
}

/// Merges `r`'s inputs (in `dir`, in offset order) into new files in `into`, each fsynced and
/// dated like its newest input. A file is finished once it reaches `target` bytes (its own
/// size as written: small files shrink a lot when merged, their footers and page headers
/// being shared and their pages compressing better), at the end of an input, so every file
/// covers whole inputs and records their offsets exactly. `None`: an input is gone, or the
/// inputs' schemas differ.
fn merge(
    r: &Rewrite,
    dir: &Path,
    into: &Path,
    group: &str,
    props: &WriterProperties,
    target: u64,
) -> Result<Option<Vec<Rewritten>>> {
    let mut readers = Vec::with_capacity(r.inputs.len());
    let mut schema: Option<SchemaRef> = None;
    for f in &r.inputs {
        let path = dir.join(base_name(&f.rel));
        let file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io("open", &path)(e)),
        };
        let modified = file
            .metadata()
            .and_then(|m| m.modified())
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let builder =
            ParquetRecordBatchReaderBuilder::try_new(file).map_err(|source| SinkError::Footer {
                path: path.display().to_string(),
                source,
            })?;
        match &schema {
            None => schema = Some(Arc::clone(builder.schema())),
            Some(s) if s.fields() != builder.schema().fields() => return Ok(None),
            Some(_) => {}
        }
        readers.push((path, builder, f, modified));
    }
    let Some(schema) = schema else {
        return Ok(None);
    };
    let mut outputs = Vec::new();
    let mut open: Option<Output<'_>> = None;
    for (path, builder, input, modified) in readers {
        let out = match &mut open {
            Some(o) => o,
            None => open.insert(Output::create(r, input, into, &schema, props)?),
        };
        let reader = builder.build().map_err(|source| SinkError::Footer {
            path: path.display().to_string(),
            source,
        })?;
        for batch in reader {
            let batch = batch.map_err(|e| SinkError::Arrow {
                context: "reading a file to compact",
                partition: r.partition.clone(),
                source: e,
            })?;
            out.rows += batch.num_rows() as u64;
            if let Err(e) = out.writer.write(&batch) {
                return Err(out.encode(e));
            }
        }
        out.inputs.push(input);
        out.newest = out.newest.max(modified);
        let size = out.writer.bytes_written() + out.writer.in_progress_size();
        if size as u64 >= target {
            if let Some(o) = open.take() {
                outputs.push(o.finish(r, group)?);
            }
        }
    }
    if let Some(o) = open.take() {
        outputs.push(o.finish(r, group)?);
    }
    Ok(Some(outputs))
}

fn io(op: &'static str, p: &Path) -> impl FnOnce(std::io::Error) -> SinkError {
    let path = p.display().to_string();
    move |source| SinkError::Io { op, path, source }
}

/// One merged file being written.
struct Output<'a> {
    partition: PartitionKey,
    path: PathBuf,
    rel: String,
    commit: Uuid,
    writer: ArrowWriter<std::fs::File>,
    inputs: Vec<&'a PlannedFile>,
    rows: u64,
    newest: SystemTime,
}

impl<'a> Output<'a> {
    fn create(
        r: &Rewrite,
        first: &PlannedFile,
        into: &Path,
        schema: &SchemaRef,
        props: &WriterProperties,
    ) -> Result<Self> {
        let commit = Uuid::new_v4();
        let name = file_name(&r.partition, first.offsets.first, commit);
        let path = into.join(&name);
        let file = std::fs::File::create_new(&path).map_err(io("create", &path))?;
        let writer = ArrowWriter::try_new(file, Arc::clone(schema), Some(props.clone())).map_err(
            |source| SinkError::Encode {
                path: path.display().to_string(),
                partition: r.partition.clone(),
                source,
            },
        )?;
        Ok(Self {
            partition: r.partition.clone(),
            path,
            rel: join_rel(&r.dir, &name),
            commit,
            writer,
            inputs: Vec::new(),
            rows: 0,
            newest: SystemTime::UNIX_EPOCH,
        })
    }

    fn encode(&self, source: parquet::errors::ParquetError) -> SinkError {
        SinkError::Encode {
            path: self.path.display().to_string(),
            partition: self.partition.clone(),
            source,
        }
    }

    /// Writes the footer with the inputs' offsets, dates and fsyncs the file.
    fn finish(mut self, r: &Rewrite, group: &str) -> Result<Rewritten> {
        let want: u64 = self.inputs.iter().map(|f| f.rows).sum();
        if self.rows != want {
            return Err(SinkError::Metadata {
                path: self.path.display().to_string(),
                reason: format!(
                    "the inputs' footers count {want} rows, reading them gave {}",
                    self.rows
                ),
            });
        }
        let (Some(first), Some(last)) = (self.inputs.first(), self.inputs.last()) else {
            return Err(SinkError::Metadata {
                path: self.path.display().to_string(),
                reason: "a merged file without inputs".into(),
            });
        };
        let offsets = OffsetRange::new(first.offsets.first, last.offsets.next);
        let meta = FileMeta::new(
            group,
            &r.partition,
            offsets,
            &self.commit.simple().to_string(),
            vec![self.rel.clone()],
        );
        self.writer
            .append_key_value_metadata(KeyValue::new(OFFSETS_KEY.to_owned(), meta.to_json()));
        let encode = |source| SinkError::Encode {
            path: self.path.display().to_string(),
            partition: r.partition.clone(),
            source,
        };
        let file = self.writer.into_inner().map_err(encode)?;
        file.set_modified(self.newest)
            .map_err(io("set time of", &self.path))?;
        file.sync_all().map_err(io("fsync", &self.path))?;
        let bytes_out = file.metadata().map_err(io("stat", &self.path))?.len();
        Ok(Rewritten {
            path: self.path.display().to_string(),
            inputs: self.inputs.len(),
            rows: self.rows,
            bytes_in: self.inputs.iter().map(|f| f.bytes).sum(),
            bytes_out,
        })
    }
}
