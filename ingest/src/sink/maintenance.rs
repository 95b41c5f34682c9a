//! Maintenance of what a sink has written: compaction (small files merged into files near a
//! target size) and retention (old files deleted), as `kingest compact` plans and executes it.
//!
//! Every file sink answers the same two calls through [`Maintain`]: [`Maintain::plan`] says
//! what would change and changes nothing (the dry run), [`Maintain::execute`] applies a plan.
//! The plan's terms are the ones every file sink shares: per Kafka partition, groups of files
//! (with the offsets and rows they hold) that become one file, and files that are deleted. The
//! plain Parquet sink implements it in [`super::parquet::compact`], the Delta sink in
//! [`super::DeltaMaintenance`] (an `OPTIMIZE` commit with `dataChange = false`; `VACUUM` and
//! log cleanup for retention, in [`MaintenancePlan::vacuum`] and
//! [`MaintenancePlan::log_cleanup`]); another table sink plugs in its own by implementing
//! [`Maintain`] and adding a variant to the engine's dispatch (`engine::compact::Maintainer`),
//! and the command, its output and its JSON stay as they are.

use std::future::Future;

use serde::Serialize;

use super::{OffsetRange, PartitionKey, Result};

/// One file a plan reads or deletes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedFile {
    /// Where it is (a local path or an object URL).
    pub path: String,
    /// Its path relative to the sink's root (`/`-separated), as the sink addresses it.
    pub rel: String,
    /// The offsets its footer records.
    #[serde(serialize_with = "range_pair")]
    pub offsets: OffsetRange,
    /// Rows.
    pub rows: u64,
    /// Size in bytes.
    pub bytes: u64,
    /// When it was committed, ms since the epoch.
    pub modified_ms: i64,
}

/// Files of one Kafka partition in one directory that become one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rewrite {
    /// The Kafka partition whose rows they hold.
    #[serde(serialize_with = "partition_key")]
    pub partition: PartitionKey,
    /// The directory (root-relative; empty for the root).
    pub dir: String,
    /// The files, in offset order.
    pub inputs: Vec<PlannedFile>,
    /// The offsets the merged file records: from the first input's first to the last one's
    /// next (a gap between inputs is offsets that left no rows: filtered, skipped or reset).
    #[serde(serialize_with = "range_pair")]
    pub offsets: OffsetRange,
}

impl Rewrite {
    /// Rows of all inputs (and of the merged file).
    pub fn rows(&self) -> u64 {
        self.inputs.iter().map(|f| f.rows).sum()
    }

    /// Bytes of all inputs.
    pub fn bytes(&self) -> u64 {
        self.inputs.iter().map(|f| f.bytes).sum()
    }
}

/// A file retention deletes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Expiry {
    /// The Kafka partition whose rows it holds.
    #[serde(serialize_with = "partition_key")]
    pub partition: PartitionKey,
    /// The file.
    pub file: PlannedFile,
}

/// A file a table sink's `VACUUM`, log cleanup or orphan removal deletes: no version the
/// retention keeps refers to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unreferenced {
    /// Where it is (a local path or an object URL).
    pub path: String,
    /// Its path relative to the table root (`/`-separated).
    pub rel: String,
    /// Size in bytes.
    pub bytes: u64,
    /// Last modified, ms since the epoch.
    pub modified_ms: i64,
    /// Why it goes, in a few words (`removed by version 12 at ...`, `never committed`).
    pub reason: String,
}

/// What `kingest compact` would do.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MaintenancePlan {
    /// The sink, as `check` names it (`parquet ./data`).
    pub sink: String,
    /// The compaction settings in words (`target 128 MiB, files under 96 MiB`).
    pub settings: String,
    /// Groups of files to merge.
    pub rewrites: Vec<Rewrite>,
    /// Files to delete.
    pub expired: Vec<Expiry>,
    /// Table sinks: data files no kept version refers to, which `VACUUM` deletes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub vacuum: Vec<Unreferenced>,
    /// Iceberg: files under the table's location no metadata of the table references and
    /// older than the bound, which `remove_orphan_files` deletes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub orphans: Vec<Unreferenced>,
    /// Table sinks: log files (commits, checkpoints) older than the retention and older than
    /// the newest checkpoint, which log cleanup deletes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub log_cleanup: Vec<Unreferenced>,
    /// Why something that looks due is left alone (one line each).
    pub notes: Vec<String>,
}

/// One rewrite as executed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rewritten {
    /// The merged file.
    pub path: String,
    /// How many files it replaced.
    pub inputs: usize,
    /// Its rows.
    pub rows: u64,
    /// Bytes read (the inputs).
    pub bytes_in: u64,
    /// Bytes written (the merged file).
    pub bytes_out: u64,
}

/// What executing a plan did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MaintenanceDone {
    /// The files written.
    pub rewritten: Vec<Rewritten>,
    /// Rewrites left out, and why (their inputs changed since the plan: another compaction or
    /// retention got there first).
    pub skipped: Vec<String>,
    /// Files deleted by retention (for a table: by `VACUUM` and log cleanup).
    pub deleted: Vec<String>,
    /// Table sinks: the version the compaction committed (none: nothing merged, or abandoned).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    /// Leftovers of killed compactions removed.
    pub cleaned: Vec<String>,
}

/// A sink's compaction and retention: see the [module docs](self).
pub trait Maintain {
    /// What would change; changes nothing.
    fn plan(&self) -> impl Future<Output = Result<MaintenancePlan>> + Send;

    /// Applies `plan`. Parts of it that no longer apply (inputs gone) are skipped and
    /// reported, not failed.
    fn execute(
        &self,
        plan: &MaintenancePlan,
    ) -> impl Future<Output = Result<MaintenanceDone>> + Send;
}

/// The `partition` of a table sink's [`Rewrite`] or [`Expiry`]: a table's data files mix Kafka
/// partitions (their offsets are in the table's snapshots, not in the files), so these carry
/// no Kafka partition, their `offsets` are empty, and a rewrite's `dir` is the table partition
/// (`id_bucket=3`; empty when unpartitioned).
pub fn table_wide() -> PartitionKey {
    PartitionKey::new("*", -1)
}

fn range_pair<S: serde::Serializer>(r: &OffsetRange, s: S) -> Result<S::Ok, S::Error> {
    [r.first, r.next].serialize(s)
}

fn partition_key<S: serde::Serializer>(k: &PartitionKey, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(k)
}
