//! The local directory backend: `.tmp` files under `flock`, `fsync`, `rename`, directory
//! `fsync`; and recovery of what a dead process left. Every change to a directory's entries
//! holds a shared lock of the directory, so that compaction's exchange of a directory never
//! loses one (see `swap.rs`).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io;
use std::path::{Path, PathBuf};

use parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};

use super::swap::{lock_dir, LockMode};
use super::{io_err, join_task, Dest, Finished, Recovery, Scanned};
use crate::sink::layout::{final_name_of_tmp, tmp_name};
use crate::sink::meta::FileMeta;
use crate::sink::{Result, SinkError};

/// A local directory the sink writes into.
pub(crate) struct LocalDir {
    pub(super) root: PathBuf,
    /// Partition directories this process created whose parent has not been fsynced yet.
    pub(super) created_dirs: HashSet<PathBuf>,
}

/// Creates `tmp` (and its directory), locked for this process. Returns whether the directory
/// had to be created.
fn create_tmp(dir: &Path, tmp: &Path) -> Result<(std::fs::File, bool)> {
    let created = !dir.is_dir();
    if created {
        std::fs::create_dir_all(dir).map_err(io_err("create directory", dir))?;
    }
    let _entries = lock_dir(dir, LockMode::Shared)?;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(tmp)
        .map_err(io_err("create", tmp))?;
    // Held until the file is renamed: a process starting meanwhile sees the lock and leaves
    // the file alone instead of taking it for a crash leftover.
    if !try_lock(&file).map_err(io_err("lock", tmp))? {
        return Err(SinkError::Io {
            op: "lock",
            path: tmp.display().to_string(),
            source: io::Error::new(
                io::ErrorKind::WouldBlock,
                "a new file is locked by another process",
            ),
        });
    }
    Ok((file, created))
}

impl LocalDir {
    pub(super) fn new(root: PathBuf) -> Self {
        Self {
            root,
            created_dirs: HashSet::new(),
        }
    }

    pub(super) async fn create(&mut self, rel: &str) -> Result<Dest> {
        let path = self.root.join(rel);
        let dir = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| self.root.clone());
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = dir.join(tmp_name(&name));
        let (file, created) = {
            let (dir, tmp) = (dir.clone(), tmp.clone());
            join_task(tokio::task::spawn_blocking(move || create_tmp(&dir, &tmp)).await)?
        };
        if created {
            self.created_dirs.insert(dir);
        }
        Ok(Dest::Local {
            file: tokio::fs::File::from_std(file),
            tmp,
            path,
        })
    }

    pub(super) async fn commit(&mut self, files: Vec<Finished>) -> Result<Vec<(String, u64)>> {
        let mut local = Vec::with_capacity(files.len());
        for f in files {
            match f.dest {
                Dest::Local { file, tmp, path } => local.push((file, tmp, path, f.bytes)),
                Dest::Store { .. } => unreachable!("a local directory creates local files only"),
            }
        }
        // Phase 1: every file of the commit is on disk before any of them is visible.
        for (file, tmp, _, _) in &local {
            file.sync_all().await.map_err(io_err("fsync", tmp))?;
        }
        // Phase 2: rename, then make the renames (and any new directory) durable; each
        // directory's renames under its shared lock (see swap.rs).
        let mut by_dir: BTreeMap<PathBuf, Vec<(PathBuf, PathBuf)>> = BTreeMap::new();
        for (_, tmp, path, _) in &local {
            let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
            by_dir
                .entry(dir)
                .or_default()
                .push((tmp.clone(), path.clone()));
        }
        let mut parents = BTreeSet::new();
        for dir in by_dir.keys() {
            if self.created_dirs.remove(dir) {
                if let Some(parent) = dir.parent() {
                    parents.insert(parent.to_path_buf());
                }
            }
        }
        join_task(
            tokio::task::spawn_blocking(move || {
                for (dir, renames) in by_dir {
                    let _entries = lock_dir(&dir, LockMode::Shared)?;
                    for (tmp, path) in renames {
                        std::fs::rename(&tmp, &path).map_err(io_err("rename", &tmp))?;
                    }
                    fsync_dir_blocking(&dir)?;
                }
                for parent in parents {
                    fsync_dir_blocking(&parent)?;
                }
                Ok(())
            })
            .await,
        )?;
        // The files (and their locks) close here, after the renames are durable.
        Ok(local
            .into_iter()
            .map(|(_, _, path, bytes)| (path.display().to_string(), bytes))
            .collect())
    }

    /// Deletes a committed file. Not fsynced: a deletion lost in a crash leaves a superseded
    /// marker, which counts for nothing and is deleted again later.
    pub(super) async fn remove(&self, rel: &str) -> Result<()> {
        let path = self.root.join(rel);
        join_task(tokio::task::spawn_blocking(move || remove_file_locked(&path)).await)
    }
}

/// Removes a file under its directory's shared lock; one that is gone already is no error.
pub(super) fn remove_file_locked(path: &Path) -> Result<()> {
    let Some(dir) = path.parent() else {
        return Ok(());
    };
    let _entries = match lock_dir(dir, LockMode::Shared) {
        Ok(l) => l,
        Err(SinkError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
            return Ok(())
        }
        Err(e) => return Err(e),
    };
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err("remove", path)(e)),
    }
}

/// Renames `from` to `to` (in one directory) under the directory's shared lock.
fn rename_locked(from: &Path, to: &Path) -> Result<()> {
    let _entries = match to.parent() {
        Some(dir) => Some(lock_dir(dir, LockMode::Shared)?),
        None => None,
    };
    std::fs::rename(from, to).map_err(io_err("rename", from))
}

pub(crate) fn fsync_dir_blocking(dir: &Path) -> Result<()> {
    let d = std::fs::File::open(dir).map_err(io_err("open directory", dir))?;
    d.sync_all().map_err(io_err("fsync directory", dir))
}

#[cfg(unix)]
fn try_lock(file: &std::fs::File) -> io::Result<bool> {
    use rustix::fs::{flock, FlockOperation};
    match flock(file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(true),
        Err(e) if e == rustix::io::Errno::WOULDBLOCK => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Without `flock` every leftover is taken for a crash's: run one process per directory.
#[cfg(not(unix))]
fn try_lock(_file: &std::fs::File) -> io::Result<bool> {
    Ok(true)
}

/// Whether `file` is still the file at `path` (it may have been renamed away between our
/// `open` and our lock).
#[cfg(unix)]
fn same_file(file: &std::fs::File, path: &Path) -> io::Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let a = file.metadata()?;
    match std::fs::symlink_metadata(path) {
        Ok(b) => Ok(a.dev() == b.dev() && a.ino() == b.ino()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(not(unix))]
fn same_file(_file: &std::fs::File, path: &Path) -> io::Result<bool> {
    Ok(path.exists())
}

/// A file found under a local root.
struct LocalEntry {
    /// Where it is.
    path: PathBuf,
    /// Root-relative final path (for a temporary file: the name it will be renamed to).
    rel: String,
    /// Whether it is a `.tmp` file.
    tmp: bool,
}

/// Lists Parquet files and kingest temporary files under `root`, skipping hidden and `_`
/// directories (other tools' metadata, never ours).
fn walk(root: &Path) -> Result<Vec<LocalEntry>> {
    let mut out = Vec::new();
    let mut stack = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, rel_dir)) = stack.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            // Removed while we looked (another process's cleanup): nothing to see.
            Err(e) if e.kind() == io::ErrorKind::NotFound && dir != root => continue,
            Err(e) => return Err(io_err("list", &dir)(e)),
        };
        for entry in entries {
            let entry = entry.map_err(io_err("list", &dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let kind = match entry.file_type() {
                Ok(k) => k,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err("stat", &entry.path())(e)),
            };
            let rel = |n: &str| {
                if rel_dir.is_empty() {
                    n.to_owned()
                } else {
                    format!("{rel_dir}/{n}")
                }
            };
            if kind.is_dir() {
                if !name.starts_with('.') && !name.starts_with('_') {
                    stack.push((entry.path(), rel(&name)));
                }
            } else if let Some(final_name) = final_name_of_tmp(&name) {
                out.push(LocalEntry {
                    path: entry.path(),
                    rel: rel(final_name),
                    tmp: true,
                });
            } else if name.ends_with(".parquet") && !name.starts_with('.') {
                out.push(LocalEntry {
                    path: entry.path(),
                    rel: rel(&name),
                    tmp: false,
                });
            }
        }
    }
    out.sort_by(|a, b| a.rel.cmp(&b.rel));
    Ok(out)
}

fn read_local_footer(file: &std::fs::File) -> parquet::errors::Result<ParquetMetaData> {
    // Reads the 8-byte tail and then the footer it points to; no data pages.
    ParquetMetaDataReader::new().parse_and_finish(file)
}

/// A temporary file no live process holds, with its footer's commit record.
struct Leftover {
    path: PathBuf,
    rel: String,
    file: std::fs::File,
    meta: FileMeta,
}

/// Removes or rolls forward the `.tmp` files no live process holds.
pub(super) fn recover(root: &Path) -> Result<Recovery> {
    let entries = walk(root)?;
    let finals: HashSet<&str> = entries
        .iter()
        .filter(|e| !e.tmp)
        .map(|e| e.rel.as_str())
        .collect();
    let mut report = Recovery::default();
    let mut leftovers: Vec<Leftover> = Vec::new();
    for e in entries.iter().filter(|e| e.tmp) {
        let file = match std::fs::File::open(&e.path) {
            Ok(f) => f,
            Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
            Err(err) => return Err(io_err("open", &e.path)(err)),
        };
        if !try_lock(&file).map_err(io_err("lock", &e.path))? {
            report.in_use.push(e.path.display().to_string());
            continue;
        }
        if !same_file(&file, &e.path).map_err(io_err("stat", &e.path))? {
            continue;
        }
        let shown = e.path.display().to_string();
        // A truncated file (killed mid-write) has no valid footer: it was never part of a
        // complete commit, since phase 1 fsyncs every file of a commit before any rename.
        let meta = read_local_footer(&file)
            .ok()
            .and_then(|f| FileMeta::from_footer(&shown, &f).ok().flatten());
        match meta {
            Some(meta) if meta.files.contains(&e.rel) => leftovers.push(Leftover {
                path: e.path.clone(),
                rel: e.rel.clone(),
                file,
                meta,
            }),
            _ => {
                remove_file_locked(&e.path)?;
                report.removed.push(shown);
            }
        }
    }
    let present: HashSet<String> = leftovers.iter().map(|l| l.rel.clone()).collect();
    let mut commits: BTreeMap<String, Vec<Leftover>> = BTreeMap::new();
    for l in leftovers {
        commits.entry(l.meta.commit.clone()).or_default().push(l);
    }
    let mut dirs = BTreeSet::new();
    for (_, files) in commits {
        let complete = files[0]
            .meta
            .files
            .iter()
            .all(|f| finals.contains(f.as_str()) || present.contains(f));
        for l in files {
            let target = root.join(&l.rel);
            if complete {
                l.file.sync_all().map_err(io_err("fsync", &l.path))?;
                rename_locked(&l.path, &target)?;
                report.rolled_forward.push(target.display().to_string());
                if let Some(dir) = target.parent() {
                    dirs.insert(dir.to_path_buf());
                }
            } else {
                remove_file_locked(&l.path)?;
                report.removed.push(l.path.display().to_string());
            }
        }
    }
    for dir in dirs {
        fsync_dir_blocking(&dir)?;
    }
    Ok(report)
}

/// Every committed file under `root` with its commit record (`None`: not written by kingest)
/// and row count. A file that disappears between the listing and its opening (a superseded
/// marker deleted, a compaction's exchange, retention) may take with it the offsets of a file
/// the listing missed, so the scan then starts again, until a listing's files all open.
pub(super) fn scan(root: &Path) -> Result<Vec<Scanned>> {
    let mut attempt = 0;
    'listing: loop {
        attempt += 1;
        let mut out = Vec::new();
        for e in walk(root)?.into_iter().filter(|e| !e.tmp) {
            let shown = e.path.display().to_string();
            let file = match std::fs::File::open(&e.path) {
                Ok(f) => f,
                Err(err) if err.kind() == io::ErrorKind::NotFound && attempt < SCAN_ATTEMPTS => {
                    continue 'listing
                }
                Err(err) => return Err(io_err("open", &e.path)(err)),
            };
            let footer = read_local_footer(&file).map_err(|source| SinkError::Footer {
                path: shown.clone(),
                source,
            })?;
            let meta = FileMeta::from_footer(&shown, &footer)?;
            let stat = file.metadata().map_err(io_err("stat", &e.path))?;
            out.push(Scanned {
                rel: e.rel,
                rows: footer.file_metadata().num_rows(),
                bytes: stat.len(),
                modified_ms: stat.modified().map(millis).unwrap_or(0),
                shown,
                meta,
            });
        }
        return Ok(out);
    }
}

/// Milliseconds since the epoch.
pub(crate) fn millis(t: std::time::SystemTime) -> i64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Listings tried before a file that keeps disappearing is reported as an error.
pub(super) const SCAN_ATTEMPTS: u32 = 100;
