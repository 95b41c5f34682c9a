//! Retention for a Delta table (`[sink.retention] max_age`): `VACUUM` of the data files no
//! version within the retention refers to, and cleanup of the log before the newest
//! checkpoint, with Delta's own semantics:
//!
//! - **VACUUM** follows `delta.deletedFileRetentionDuration`: a file the current version
//!   refers to is never deleted; a file a commit removed is deleted once its `remove`'s
//!   `deletionTimestamp` is older than the retention (time travel to a version within the
//!   retention still finds it); a file no version names (written by a process killed before its
//!   commit, by a killed or abandoned compaction, or removed so long ago that checkpoints
//!   dropped its tombstone) once it was last modified longer ago than the retention. Files and
//!   directories whose names start with `_` or `.` (the log, temporary files) are not data
//!   files, as in Delta; temporary files of killed writers are removed by the recovery every
//!   open does.
//! - **Log cleanup** follows `delta.logRetentionDuration`: commits and checkpoints older than
//!   the retention are deleted if they precede the checkpoint `_last_checkpoint` names (the
//!   state is read from there, so it stays complete). They go in version order, which writers
//!   rely on to notice that their view of the table predates a cleanup (see `table.rs`).
//!
//! The retention must be longer than any writer takes from writing a data file to committing
//! it (a flush), since a file listed before its commit is a candidate; Delta asks the same
//! (and defaults to 7 days).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use super::commit::percent_decode;
use super::log::{LogFile, Remove, TableState, LOG_DIR};
use super::logstore::Listed;
use super::maintain::DeltaMaintenance;
use super::table::now_ms;
use crate::sink::maintenance::{MaintenanceDone, MaintenancePlan, Unreferenced};
use crate::sink::Result;

/// Whether a root-relative path is a data file by Delta's rule: no segment starting with `_`
/// or `.`, except partition directories (`_col=value`).
fn is_data_path(rel: &str) -> bool {
    let segments: Vec<&str> = rel.split('/').collect();
    let Some((file, dirs)) = segments.split_last() else {
        return false;
    };
    let hidden = |s: &str| s.starts_with('_') || s.starts_with('.');
    !hidden(file) && dirs.iter().all(|d| !hidden(d) || d.contains('='))
}

/// The checkpoint `_last_checkpoint` names (`hint`), if all its parts were listed.
fn newest_named_checkpoint(
    log_files: &BTreeMap<(i64, String), Listed>,
    hint: Option<i64>,
) -> Option<i64> {
    let mut parts: BTreeMap<(i64, u32), usize> = BTreeMap::new();
    for (_, name) in log_files.keys() {
        if let LogFile::Checkpoint {
            version, parts: n, ..
        } = LogFile::parse(name)
        {
            *parts.entry((version, n)).or_default() += 1;
        }
    }
    let hint = hint?;
    parts
        .into_iter()
        .any(|((v, n), have)| v == hint && have == n as usize)
        .then_some(hint)
}

fn when(ms: i64) -> String {
    super::stats::format_millis(ms, true)
}

impl DeltaMaintenance {
    /// Adds to `plan` the data files (`VACUUM`) and log files (cleanup) past `retention`;
    /// `listed` was listed before `state` was read.
    pub(super) fn plan_vacuum(
        &self,
        state: &TableState,
        listed: Vec<Listed>,
        hint: Option<i64>,
        retention: Duration,
        plan: &mut MaintenancePlan,
    ) {
        let cutoff = now_ms() - retention.as_millis() as i64;
        let live: HashSet<String> = state
            .files
            .iter()
            .flat_map(|f| f.keys())
            .map(|p| percent_decode(p))
            .collect();
        let removed: HashMap<String, &Remove> = state
            .tombstones
            .iter()
            .flat_map(|t| t.values())
            .map(|r| (percent_decode(&r.path), r))
            .collect();
        let log_prefix = format!("{LOG_DIR}/");
        let mut log_files: BTreeMap<(i64, String), Listed> = BTreeMap::new();
        for f in listed {
            if let Some(name) = f.rel.strip_prefix(&log_prefix) {
                match LogFile::parse(name) {
                    LogFile::Commit(v) | LogFile::Checkpoint { version: v, .. } => {
                        log_files.insert((v, name.to_owned()), f);
                    }
                    LogFile::Other => {}
                }
                continue;
            }
            if !is_data_path(&f.rel) || live.contains(&f.rel) {
                continue;
            }
            let reason = match removed.get(&f.rel) {
                Some(r) => {
                    let at = r.deletion_timestamp.unwrap_or(f.modified_ms);
                    if at >= cutoff {
                        continue;
                    }
                    format!("removed from the table at {}", when(at))
                }
                None if f.modified_ms < cutoff => format!(
                    "in no version of the table (last modified {}): an unfinished write's or compaction's",
                    when(f.modified_ms)
                ),
                None => continue,
            };
            plan.vacuum.push(Unreferenced {
                path: self.log.display(&f.rel),
                rel: f.rel,
                bytes: f.bytes,
                modified_ms: f.modified_ms,
                reason,
            });
        }
        // The checkpoint `_last_checkpoint` names, if all its parts are there: everything
        // before it may go.
        let Some(newest) = newest_named_checkpoint(&log_files, hint) else {
            if !log_files.is_empty() {
                plan.notes.push(
                    "log cleanup: no checkpoint named by _last_checkpoint yet, so every commit is kept".into(),
                );
            }
            return;
        };
        for ((v, name), f) in log_files {
            if v >= newest || f.modified_ms >= cutoff {
                continue;
            }
            plan.log_cleanup.push(Unreferenced {
                path: self.log.display(&f.rel),
                rel: f.rel,
                bytes: f.bytes,
                modified_ms: f.modified_ms,
                reason: format!(
                    "{} before the checkpoint of version {newest}, written {}",
                    if name.ends_with(".json") {
                        "commit"
                    } else {
                        "checkpoint"
                    },
                    when(f.modified_ms)
                ),
            });
        }
    }

    /// Deletes what the plan's retention found: data files, then log files in version order.
    pub(super) async fn execute_vacuum(
        &self,
        plan: &MaintenancePlan,
        done: &mut MaintenanceDone,
    ) -> Result<()> {
        if self.retention.is_none() {
            return Ok(());
        }
        for f in &plan.vacuum {
            self.log.delete(&f.rel).await?;
            done.deleted.push(f.path.clone());
        }
        // `plan.log_cleanup` is in version order (see `plan_vacuum`).
        for f in &plan.log_cleanup {
            self.log.delete(&f.rel).await?;
            done.deleted.push(f.path.clone());
        }
        if let Some(r) = self.retention {
            self.log.remove_stale_tmp(r).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delta_vacuum_skips_hidden_paths_but_not_partition_directories() {
        assert!(is_data_path("a.parquet"));
        assert!(is_data_path("day=2024-01-01/a.parquet"));
        assert!(is_data_path("_day=x/a.parquet"));
        assert!(!is_data_path("_delta_log/00000000000000000000.json"));
        assert!(!is_data_path(".a.parquet.tmp"));
        assert!(!is_data_path("_kingest_staging/a.parquet"));
        assert!(!is_data_path("day=1/.a.parquet.tmp"));
        assert!(!is_data_path(".hidden/a.parquet"));
    }
}
