//! `[sink.retention]` for the Iceberg sink, second part: Iceberg's `remove_orphan_files`.
//!
//! An orphan is a file under the table's location that no metadata of the table references:
//! the data files and manifests of a writer killed between writing them and its commit, of a
//! commit that lost to another writer and was not cleaned up, of a `kingest compact` killed
//! before its commit, files an expiry killed mid-way left, metadata files dropped from the
//! log but not deleted. Reachable is what the current metadata names: the current metadata
//! file, every file in `metadata-log`, statistics files, and for every snapshot (of any
//! branch or tag) its manifest list, its manifests and every file their entries name (deleted
//! entries included, as time travel to an older snapshot may read them), and
//! `metadata/version-hint.text`. As Apache Iceberg's `DeleteOrphanFiles` action does.
//!
//! # The age bound
//!
//! A file is only deleted when it was last modified longer ago than `older_than` (the object
//! store's `Last-Modified`, a local file's mtime). Writers write a commit's files before the
//! commit that references them, so a listing always sees files a writer is about to commit;
//! the bound must exceed the longest time any writer of the table spends between writing a
//! file and committing it. kingest's own writers commit what a flush wrote within the flush,
//! retries under `[sink.retry]` included (seconds to minutes); other engines (Spark, Flink,
//! the Kafka Connect sink) can hold written files for as long as a task or a commit interval
//! runs. So the default is Iceberg's 3 days, and less than a minute is refused by the
//! configuration. The files are listed before the table is loaded, so a file committed
//! between the two is seen as referenced.
//!
//! Hidden files (a path segment under the table's location starting with `_` or `.`, other
//! than a partition directory `_col=value`) are not the table's and are left alone, as in
//! Iceberg.
//!
//! A reference that names a file of this table's storage in another spelling (another scheme
//! or bucket, with the same path under it) makes the run fail instead of deleting the file,
//! like Iceberg's default `prefix_mismatch_mode = ERROR`.

use std::collections::HashSet;
use std::time::Duration;

use object_store::path::Path;

use super::catalog::{Catalog, Loaded, TableIdent};
use super::expire::{manifests_of, ManifestPaths};
use super::io::TableIo;
use super::now_ms;
use crate::sink::maintenance::{MaintenanceDone, MaintenancePlan, Unreferenced};
use crate::sink::{Result, SinkError};

/// Every location the metadata `loaded` references (see the [module docs](self)).
async fn referenced(io: &TableIo, loaded: &Loaded) -> Result<Vec<String>> {
    let m = &loaded.metadata;
    let mut out = vec![loaded.location.clone()];
    out.extend(m.metadata_log());
    out.extend(m.statistics_files());
    out.push(format!("{}/metadata/version-hint.text", m.location()));
    let mut seen = ManifestPaths::new();
    for id in m.snapshot_ids() {
        if let Some(list) = m.snapshot(id).and_then(|s| s.manifest_list) {
            out.push(list);
        }
        for manifest in manifests_of(io, loaded, id, &mut seen, false).await? {
            out.push(manifest.path);
        }
    }
    for (_, (_, all)) in seen {
        out.extend(all.into_iter().map(|(path, _)| path));
    }
    Ok(out)
}

/// A location's path without its scheme and authority (`s3://b/x/y` and `file:///x/y` are
/// `x/y`), to notice a reference that names a listed file in another spelling.
fn bare(location: &str) -> &str {
    match location.split_once("://") {
        Some((_, rest)) => rest.split_once('/').map_or("", |(_, p)| p),
        None => location.trim_start_matches('/'),
    }
}

/// Whether a table-relative path is hidden by Iceberg's rule: a segment starting with `_` or
/// `.` (`_SUCCESS`, `.part.crc`, another tool's `_temporary/`), except partition directories
/// (`_col=value`). Such files are not the table's and are left alone, as Iceberg's
/// `DeleteOrphanFiles` leaves them.
fn hidden(rel: &str) -> bool {
    let segments: Vec<&str> = rel.split('/').collect();
    let Some((file, dirs)) = segments.split_last() else {
        return false;
    };
    let h = |s: &str| s.starts_with('_') || s.starts_with('.');
    h(file) || dirs.iter().any(|d| h(d) && !d.contains('='))
}

/// The orphans under the table's location older than `older_than`; `listed` was listed before
/// `loaded` was read.
async fn orphans(
    io: &TableIo,
    loaded: &Loaded,
    listed: Vec<(Path, u64, i64)>,
    older_than: Duration,
) -> Result<Vec<Unreferenced>> {
    let location = loaded.metadata.location().trim_end_matches('/').to_owned();
    let mut keys: HashSet<Path> = HashSet::new();
    let mut foreign: Vec<String> = Vec::new();
    for r in referenced(io, loaded).await? {
        match io.path(&r) {
            Ok(k) => {
                keys.insert(k);
            }
            Err(_) => foreign.push(r),
        }
    }
    let listed_bare: HashSet<String> = listed.iter().map(|(k, _, _)| k.to_string()).collect();
    let table = location.clone();
    if let Some(f) = foreign.iter().find(|f| listed_bare.contains(bare(f))) {
        return Err(SinkError::Table {
            table,
            reason: format!(
                "remove_orphan_files: the metadata references {f}, a file of the table's \
                 storage spelled differently (another scheme or bucket): refusing to take it \
                 for an orphan"
            ),
        });
    }
    let cutoff = now_ms() - older_than.as_millis() as i64;
    let mut out: Vec<Unreferenced> = listed
        .into_iter()
        .filter(|(k, _, modified)| *modified < cutoff && !keys.contains(k))
        .map(|(k, bytes, modified_ms)| {
            let path = io.location_of(&k);
            Unreferenced {
                rel: path
                    .strip_prefix(&location)
                    .map_or(path.as_str(), |r| r.trim_start_matches('/'))
                    .to_owned(),
                path,
                bytes,
                modified_ms,
                reason: format!("no metadata references it, older than {older_than:?}"),
            }
        })
        .filter(|f| !hidden(&f.rel))
        .collect();
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// Adds the orphans `remove_orphan_files` would delete to `plan` (the dry run).
pub(super) async fn plan(
    catalog: &Catalog,
    ident: &TableIdent,
    older_than: Duration,
    plan: &mut MaintenancePlan,
) -> Result<()> {
    let Some((loaded, listed)) = listed_then_loaded(catalog, ident).await? else {
        return Ok(());
    };
    let io = catalog.io(loaded.metadata.location())?;
    let found = orphans(&io, &loaded, listed, older_than).await?;
    if found.is_empty() {
        plan.notes.push(format!(
            "remove_orphan_files: no unreferenced file older than {older_than:?}"
        ));
    }
    plan.orphans = found;
    Ok(())
}

/// Lists the table's location, then loads the table (see the [module docs](self)); `None`
/// when the table does not exist.
async fn listed_then_loaded(
    catalog: &Catalog,
    ident: &TableIdent,
) -> Result<Option<(Loaded, Vec<(Path, u64, i64)>)>> {
    let Some(first) = catalog.load(ident).await? else {
        return Ok(None);
    };
    let location = first.metadata.location().to_owned();
    let io = catalog.io(&location)?;
    let listed = io.list(&location).await?;
    let Some(loaded) = catalog.load(ident).await? else {
        return Ok(None);
    };
    if loaded.metadata.location() != location {
        return Err(SinkError::Table {
            table: ident.to_string(),
            reason: format!(
                "remove_orphan_files: the table's location moved from {location} to {} \
                 while it was listed",
                loaded.metadata.location()
            ),
        });
    }
    Ok(Some((loaded, listed)))
}

/// Deletes the orphans older than `older_than` (found anew, after the other maintenance of
/// this run).
pub(super) async fn execute(
    catalog: &Catalog,
    ident: &TableIdent,
    older_than: Duration,
    done: &mut MaintenanceDone,
) -> Result<()> {
    let Some((loaded, listed)) = listed_then_loaded(catalog, ident).await? else {
        return Ok(());
    };
    let io = catalog.io(loaded.metadata.location())?;
    let found = orphans(&io, &loaded, listed, older_than).await?;
    tracing::info!(table = %ident, files = found.len(), "removing orphan files");
    for f in found {
        io.delete(&f.path).await;
        done.deleted.push(f.path);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iceberg_orphan_references_compare_without_scheme_and_authority() {
        assert_eq!(bare("s3://lake/w/t/data/a.parquet"), "w/t/data/a.parquet");
        assert_eq!(bare("file:///tmp/w/t/x"), "tmp/w/t/x");
        assert_eq!(bare("/tmp/w/t/x"), "tmp/w/t/x");
    }

    #[test]
    fn iceberg_orphan_removal_leaves_hidden_files_alone() {
        assert!(hidden("data/_SUCCESS"));
        assert!(hidden("data/.x.parquet.crc"));
        assert!(hidden("_temporary/0/x.parquet"));
        assert!(!hidden("data/_id_bucket=1/x.parquet"));
        assert!(!hidden("data/id_bucket=1/x.parquet"));
        assert!(!hidden("metadata/snap-1.avro"));
        assert!(!hidden("data/x.parquet#1"));
    }
}
