//! `[sink.retention]` for the Iceberg sink: Iceberg's `expire_snapshots`, and the deletion of
//! the files only expired snapshots referenced.
//!
//! # Which snapshots go
//!
//! Those older than the retention, except: the snapshot of every branch and tag (`main`'s
//! current one included), and on `main`, every snapshot from the current one back to the
//! newest carrying each consumer group's offsets. A job resumes from the newest snapshot of
//! `main`'s ancestry carrying its group's key (`kingest.offsets.<group>`), found by walking
//! parents; expiring one link of that walk would lose the group's offsets, and a restarted job
//! would read its topics again from `source.start`. Copying every group's offsets forward
//! into a new snapshot would free those links too, but would add a snapshot per expiry and
//! make offsets of a group that stopped writing look current; keeping the links costs only
//! metadata, because each commit of a running job carries its group's offsets (so the walk is
//! short) and each `replace` snapshot of `kingest compact` carries every group's.
//!
//! # Which files go
//!
//! After the metadata without the expired snapshots is committed (the catalog's
//! compare-and-swap; a concurrent commit makes it start over on the new table), the expired
//! snapshots' manifest lists, their manifests no kept snapshot lists, and the data files
//! their manifests name that no kept snapshot's manifests hold live. Before the commit nothing
//! is deleted, so a `kill -9` leaves either the old table or the new one; a kill during the
//! deletions leaves unreferenced files (orphans), as Iceberg's own expiry does.
//!
//! # Which catalogs
//!
//! Both. The plan and the deletions are the same; only the commit differs
//! ([`Catalog::remove_snapshots`]): a SQL catalog's writer writes the metadata without the
//! snapshots and swaps the pointer; a REST catalog is sent the `remove-snapshots` update with
//! the requirement that `main` still points at the snapshot the plan was made on (a 409
//! starts over), and the server applies it. The client deletes the files afterwards, as
//! Apache Iceberg's Java `RemoveSnapshots` does with any catalog.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use uuid::Uuid;

use super::catalog::{Catalog, Loaded, Outcome, TableIdent};
use super::compact::groups;
use super::entries;
use super::io::TableIo;
use super::manifest::{self, ManifestFile};
use super::metadata::{self, OFFSETS_PREFIX};
use super::now_ms;
use crate::sink::maintenance::{table_wide, Expiry, MaintenanceDone, MaintenancePlan, PlannedFile};
use crate::sink::{OffsetRange, Result, SinkError};

/// What an expiry removes from one version of the table.
#[derive(Debug, Default)]
struct Expiring {
    snapshots: HashSet<i64>,
    /// Files only the expired snapshots reference: (location, bytes when known).
    files: Vec<(String, u64)>,
}

/// The snapshots to expire from `loaded`: see the [module docs](self).
fn expired_snapshots(loaded: &Loaded, max_age: Duration) -> HashSet<i64> {
    let m = &loaded.metadata;
    let cutoff = now_ms() - max_age.as_millis() as i64;
    let mut keep: HashSet<i64> = m.refs().into_values().collect();
    let mut wanted: HashSet<String> = groups(loaded).into_iter().collect();
    for s in m.ancestry() {
        if wanted.is_empty() {
            break;
        }
        keep.insert(s.id);
        wanted.retain(|g| !s.summary.contains_key(&format!("{OFFSETS_PREFIX}{g}")));
    }
    m.snapshot_ids()
        .into_iter()
        .filter(|id| !keep.contains(id))
        .filter(|id| m.snapshot(*id).is_some_and(|s| s.timestamp_ms < cutoff))
        .collect()
}

/// Per manifest: the data files it holds live, and every file it names (with sizes).
pub(super) type ManifestPaths = HashMap<String, (Vec<String>, Vec<(String, u64)>)>;

fn not_found(e: &SinkError) -> bool {
    matches!(
        e,
        SinkError::ObjectStore {
            source: object_store::Error::NotFound { .. },
            ..
        }
    )
}

/// The manifests snapshot `id` lists, each read once into `seen`. With `missing_ok` a missing
/// file (left by an interrupted earlier cleanup) reads as empty; without, it is an error
/// (orphan removal must not take what a missing manifest names for unreferenced).
pub(super) async fn manifests_of(
    io: &TableIo,
    loaded: &Loaded,
    id: i64,
    seen: &mut ManifestPaths,
    missing_ok: bool,
) -> Result<Vec<ManifestFile>> {
    let Some(list) = loaded.metadata.snapshot(id).and_then(|s| s.manifest_list) else {
        return Ok(Vec::new());
    };
    let bytes = match io.read(&list).await {
        Ok(b) => b,
        Err(e) if missing_ok && not_found(&e) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let listed = manifest::read_manifest_list(&bytes).map_err(|reason| SinkError::Table {
        table: list.clone(),
        reason,
    })?;
    for m in &listed {
        if seen.contains_key(&m.path) {
            continue;
        }
        let read = match io.read(&m.path).await {
            Ok(bytes) => entries::read_manifest(&bytes, m).map_err(|reason| SinkError::Table {
                table: m.path.clone(),
                reason,
            })?,
            Err(e) if missing_ok && not_found(&e) => {
                seen.insert(m.path.clone(), Default::default());
                continue;
            }
            Err(e) => return Err(e),
        };
        let live = read
            .entries
            .iter()
            .filter(|e| e.live())
            .map(|e| e.path.clone())
            .collect();
        let all = read
            .entries
            .iter()
            .map(|e| (e.path.clone(), e.size))
            .collect();
        seen.insert(m.path.clone(), (live, all));
    }
    Ok(listed)
}

/// What expiring `loaded` removes.
async fn expiring(io: &TableIo, loaded: &Loaded, max_age: Duration) -> Result<Expiring> {
    let snapshots = expired_snapshots(loaded, max_age);
    if snapshots.is_empty() {
        return Ok(Expiring::default());
    }
    let mut seen = ManifestPaths::new();
    let (mut kept_manifests, mut kept_data) = (HashSet::new(), HashSet::new());
    for id in loaded.metadata.snapshot_ids() {
        if snapshots.contains(&id) {
            continue;
        }
        for m in manifests_of(io, loaded, id, &mut seen, true).await? {
            if kept_manifests.insert(m.path.clone()) {
                if let Some((live, _)) = seen.get(&m.path) {
                    kept_data.extend(live.iter().cloned());
                }
            }
        }
    }
    let mut files: Vec<(String, u64)> = Vec::new();
    let mut listed = HashSet::new();
    for &id in &snapshots {
        if let Some(list) = loaded.metadata.snapshot(id).and_then(|s| s.manifest_list) {
            if listed.insert(list.clone()) {
                files.push((list, 0));
            }
        }
        for m in manifests_of(io, loaded, id, &mut seen, true).await? {
            if kept_manifests.contains(&m.path) || !listed.insert(m.path.clone()) {
                continue;
            }
            files.push((m.path.clone(), m.length.max(0) as u64));
            for (path, size) in seen
                .get(&m.path)
                .map(|(_, all)| all.as_slice())
                .unwrap_or(&[])
            {
                if !kept_data.contains(path) && listed.insert(path.clone()) {
                    files.push((path.clone(), *size));
                }
            }
        }
    }
    files.sort();
    Ok(Expiring { snapshots, files })
}

/// Adds what expiry would do to `plan`.
pub(super) async fn plan(
    io: &TableIo,
    loaded: &Loaded,
    max_age: Duration,
    plan: &mut MaintenancePlan,
) -> Result<()> {
    let e = expiring(io, loaded, max_age).await?;
    if e.snapshots.is_empty() {
        plan.notes.push(format!(
            "expire_snapshots: no snapshot older than {max_age:?} can go"
        ));
        return Ok(());
    }
    plan.notes.push(format!(
        "expire_snapshots: {} snapshots older than {max_age:?}, deleting {} files only they \
         reference",
        e.snapshots.len(),
        e.files.len()
    ));
    let location = loaded.metadata.location();
    plan.expired = e
        .files
        .into_iter()
        .map(|(path, bytes)| Expiry {
            partition: table_wide(),
            file: PlannedFile {
                rel: path
                    .strip_prefix(location)
                    .map_or(path.as_str(), |r| r.trim_start_matches('/'))
                    .to_owned(),
                path,
                offsets: OffsetRange { first: 0, next: 0 },
                rows: 0,
                bytes,
                modified_ms: 0,
            },
        })
        .collect();
    Ok(())
}

/// Expires the table's old snapshots and deletes the files only they referenced.
pub(super) async fn execute(
    catalog: &Catalog,
    ident: &TableIdent,
    max_age: Duration,
    done: &mut MaintenanceDone,
) -> Result<()> {
    let table_err = |reason: String| SinkError::Table {
        table: ident.to_string(),
        reason,
    };
    for attempt in 0..100u32 {
        let base = catalog
            .load(ident)
            .await?
            .ok_or_else(|| table_err("the table does not exist".into()))?;
        let location = base.metadata.location().to_owned();
        let io = catalog.io(&location)?;
        let e = expiring(&io, &base, max_age).await?;
        if e.snapshots.is_empty() {
            return Ok(());
        }
        let now = now_ms();
        let new = base
            .metadata
            .without_snapshots(&e.snapshots, &base.location, now);
        let version = metadata::metadata_version(&base.location).map_or(1, |v| v + 1);
        let new_location = format!(
            "{location}/metadata/{version:05}-{}.metadata.json",
            Uuid::new_v4()
        );
        let mut ids: Vec<i64> = e.snapshots.iter().copied().collect();
        ids.sort_unstable();
        match catalog
            .remove_snapshots(ident, &base, &ids, &new, &new_location, &io)
            .await?
        {
            Outcome::Committed => {}
            Outcome::Conflict => {
                io.delete(&new_location).await;
                tokio::time::sleep(Duration::from_millis(50 + 20 * u64::from(attempt))).await;
                continue;
            }
            Outcome::Unknown(why) => {
                tracing::warn!(table = %ident, error = %why,
                    "the expiry commit's outcome is unknown; reading the table to find out");
                let now = catalog.load(ident).await?;
                let landed =
                    now.is_some_and(|l| e.snapshots.iter().all(|id| !l.metadata.has_snapshot(*id)));
                if !landed {
                    continue;
                }
            }
        }
        tracing::info!(table = %ident, snapshots = e.snapshots.len(), files = e.files.len(),
            "expired snapshots");
        for (path, _) in e.files {
            io.delete(&path).await;
            done.deleted.push(path);
        }
        return Ok(());
    }
    Err(table_err(
        "expiring snapshots failed 100 times: other writers keep committing".into(),
    ))
}
