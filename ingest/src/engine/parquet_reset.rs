//! Recording an offset reset in a local Parquet directory (`kingest reset-offsets --sink`).
//!
//! The Parquet sink's offsets are the `[first, next)` ranges in its committed files' footers,
//! and a job resumes each partition from the highest `next`. A reset is recorded in those same
//! terms, so the sink and every reader of its files agree on it without a new kind of record:
//!
//! - **Back** (re-read from offset N): every file of the partition whose range reaches past N
//!   is moved out of the dataset, into `_kingest_reset/<time>-<id>/` under the sink's root
//!   (Spark, Trino and pyarrow skip `_` directories, and so does the sink), keeping its
//!   relative path, so the data holds each offset at most once after the records are read
//!   again. A file holds whole ranges and its rows do not say their offsets, so a reset into
//!   the middle of a file `[first, next)` becomes a reset to `first`: the plan says so.
//!   Moving the files back undoes it (`reset.json` there lists what moved).
//! - **Forward** (skip to offset N), or where the files left say anything but N: an empty
//!   Parquet file (no rows, the sink's schema) whose footer records `[N, N)` for the
//!   partition is committed as the sink commits files (written as a hidden `.tmp`, fsynced,
//!   renamed, directory fsynced), so the highest `next` becomes N.
//! - A partition the sink holds no file for is left alone: the job resumes it from the
//!   group's offset, which the reset commits; unless `source.start` names an offset for it or
//!   a time, which `kingest run` prefers to the group's offset: then an empty file records
//!   the new offset too.
//!
//! Object stores are not handled here (moving objects is a copy and a delete per object, not a
//! rename); the reset refuses and names the files instead.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_schema::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;

use super::reset::ResetError;
use super::{parquet_config, EngineError};
use crate::config::Config;
use crate::sink::{OffsetRange, ParquetSink, OFFSETS_KEY};

/// The folder, under the sink's root, that set-aside files go to.
pub const RESET_DIR: &str = "_kingest_reset";

/// One committed file of the group.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SinkFile {
    /// Root-relative path (`/`-separated).
    pub rel: String,
    /// The offsets its footer records.
    pub first: i64,
    /// One past the last.
    pub next: i64,
}

/// What recording the reset does to one partition.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PartitionSinkReset {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The offset asked for.
    pub requested: i64,
    /// The offset the partition resumes from afterwards: `requested`, or the first offset of
    /// the file it falls inside.
    pub new: i64,
    /// Files moved out of the dataset.
    pub set_aside: Vec<SinkFile>,
    /// Whether an empty file records `new`.
    pub marker: bool,
}

/// The whole reset of a local Parquet directory.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ParquetResetPlan {
    /// The sink's root directory.
    pub root: PathBuf,
    /// The consumer group whose files these are.
    pub group: String,
    /// Where offset markers go under the root: `column=__HIVE_DEFAULT_PARTITION__` with
    /// `partition_by` (as the sink places its own markers), the root itself without.
    pub marker_dir: Option<String>,
    /// Per partition.
    pub partitions: Vec<PartitionSinkReset>,
}

/// The local directory of a Parquet sink, or `None` for object stores.
pub fn local_root(location: &str) -> Option<PathBuf> {
    match location.split_once("://") {
        None => Some(PathBuf::from(location)),
        Some(("file", p)) => Some(PathBuf::from(p)),
        Some(_) => None,
    }
}

/// The group's committed files per partition, as the sink reads them (a missing local
/// directory has none and is not created).
pub async fn committed_files(
    config: &Config,
    schema: SchemaRef,
) -> Result<BTreeMap<(String, i32), Vec<SinkFile>>, ResetError> {
    let Some(mut pc) = parquet_config(config)? else {
        return Ok(BTreeMap::new());
    };
    // Footers are read whatever the layout (see `status::sink_offsets`).
    pc.partition_by = None;
    let root = local_root(&pc.location);
    if root.as_ref().is_some_and(|r| !r.exists()) {
        return Ok(BTreeMap::new());
    }
    let sink = ParquetSink::open(pc, schema)
        .await
        .map_err(EngineError::from)?;
    let files = sink.committed_files().await.map_err(EngineError::from)?;
    let mut out: BTreeMap<(String, i32), Vec<SinkFile>> = BTreeMap::new();
    for (path, key, range) in files {
        let rel = match &root {
            Some(root) => Path::new(&path)
                .strip_prefix(root)
                .map(|r| r.to_string_lossy().replace('\\', "/"))
                .unwrap_or(path),
            None => path,
        };
        out.entry((key.topic, key.partition))
            .or_default()
            .push(SinkFile {
                rel,
                first: range.first,
                next: range.next,
            });
    }
    Ok(out)
}

/// What resetting one partition to `requested` does to its files (see the module docs).
/// `pin` records the new offset in the sink even when the partition has no files (for a job
/// whose `source.start` would otherwise win over the group's offset).
pub fn plan_partition(
    topic: &str,
    partition: i32,
    requested: i64,
    files: &[SinkFile],
    pin: bool,
) -> PartitionSinkReset {
    let mut new = requested;
    // Moving a file that straddles `new` rewinds to its start, which may straddle another.
    loop {
        let lowest = files.iter().filter(|f| f.next > new).map(|f| f.first).min();
        match lowest {
            Some(first) if first < new => new = first,
            _ => break,
        }
    }
    let set_aside: Vec<SinkFile> = files.iter().filter(|f| f.next > new).cloned().collect();
    let kept = files.iter().filter(|f| f.next <= new).map(|f| f.next).max();
    PartitionSinkReset {
        topic: topic.to_owned(),
        partition,
        requested,
        new,
        set_aside,
        // A partition the sink holds nothing for is left to the group's offset.
        marker: (pin || !files.is_empty()) && kept != Some(new),
    }
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> ResetError + 'a {
    move |source| ResetError::Io {
        op,
        path: path.display().to_string(),
        source,
    }
}

fn fsync_dir(dir: &Path) -> Result<(), ResetError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("fsync directory", dir))
}

/// Writes the empty file recording `[new, new)` for a partition, committed as the sink
/// commits files.
fn write_marker(
    root: &Path,
    group: &str,
    schema: &SchemaRef,
    p: &PartitionSinkReset,
) -> Result<PathBuf, ResetError> {
    let commit = uuid::Uuid::new_v4().simple().to_string();
    // The sink's own naming (layout.rs): topic-partition-first(20 digits)-commit.parquet.
    let name = format!("{}-{}-{:020}-{commit}.parquet", p.topic, p.partition, p.new);
    let meta = serde_json::json!({
        "version": 1,
        "group": group,
        "offsets": {p.topic.clone(): {p.partition.to_string(): [p.new, p.new]}},
        "commit": commit,
        "files": [name],
    });
    let props = WriterProperties::builder()
        .set_created_by(format!(
            "kingest {} reset-offsets",
            env!("CARGO_PKG_VERSION")
        ))
        .set_key_value_metadata(Some(vec![KeyValue::new(
            OFFSETS_KEY.to_owned(),
            meta.to_string(),
        )]))
        .build();
    let tmp = root.join(format!(".{name}.tmp"));
    let path = root.join(&name);
    let file = std::fs::File::create(&tmp).map_err(io("create", &tmp))?;
    let mut writer =
        ArrowWriter::try_new(file, Arc::clone(schema), Some(props)).map_err(|source| {
            ResetError::Parquet {
                path: tmp.display().to_string(),
                source,
            }
        })?;
    writer.flush().map_err(|source| ResetError::Parquet {
        path: tmp.display().to_string(),
        source,
    })?;
    let file = writer.into_inner().map_err(|source| ResetError::Parquet {
        path: tmp.display().to_string(),
        source,
    })?;
    file.sync_all().map_err(io("fsync", &tmp))?;
    drop(file);
    std::fs::rename(&tmp, &path).map_err(io("rename", &tmp))?;
    fsync_dir(root)?;
    Ok(path)
}

/// What applying a plan did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ParquetResetDone {
    /// Where set-aside files went (`None` when none moved).
    pub set_aside_dir: Option<PathBuf>,
    /// Files moved.
    pub moved: usize,
    /// Empty files written to record new offsets.
    pub markers: Vec<PathBuf>,
}

/// Applies `plan` (see the module docs). `schema` is the sink's, for the empty files.
pub fn apply(plan: &ParquetResetPlan, schema: &SchemaRef) -> Result<ParquetResetDone, ResetError> {
    let root = &plan.root;
    std::fs::create_dir_all(root).map_err(io("create directory", root))?;
    let mut done = ParquetResetDone::default();
    let moving: Vec<&SinkFile> = plan.partitions.iter().flat_map(|p| &p.set_aside).collect();
    if !moving.is_empty() {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let id = uuid::Uuid::new_v4().simple().to_string();
        let dir = root.join(RESET_DIR).join(format!("{now}-{}", &id[..8]));
        std::fs::create_dir_all(&dir).map_err(io("create directory", &dir))?;
        // What is about to move, and why, before anything moves.
        let manifest = dir.join("reset.json");
        let text = serde_json::to_string_pretty(plan).unwrap_or_default();
        std::fs::write(&manifest, text).map_err(io("write", &manifest))?;
        for f in moving {
            let from = root.join(&f.rel);
            let to = dir.join(&f.rel);
            let to_dir = to.parent().unwrap_or(&dir).to_path_buf();
            std::fs::create_dir_all(&to_dir).map_err(io("create directory", &to_dir))?;
            std::fs::rename(&from, &to).map_err(io("rename", &from))?;
            fsync_dir(&to_dir)?;
            fsync_dir(from.parent().unwrap_or(root))?;
            done.moved += 1;
        }
        fsync_dir(&root.join(RESET_DIR))?;
        done.set_aside_dir = Some(dir);
    }
    let marker_root = match &plan.marker_dir {
        Some(dir) => {
            let d = root.join(dir);
            std::fs::create_dir_all(&d).map_err(io("create directory", &d))?;
            d
        }
        None => root.to_path_buf(),
    };
    for p in plan.partitions.iter().filter(|p| p.marker) {
        done.markers
            .push(write_marker(&marker_root, &plan.group, schema, p)?);
    }
    Ok(done)
}

/// The offset range a file covers.
pub fn range_of(f: &SinkFile) -> OffsetRange {
    OffsetRange::new(f.first, f.next)
}

#[cfg(test)]
#[path = "parquet_reset_tests.rs"]
mod tests;
