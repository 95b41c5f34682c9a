//! The two places the Parquet sink writes to, behind one small interface: a local directory
//! (written with `std`/`tokio` file calls, because durability needs `fsync` and `rename`, which
//! the [`ObjectStore`] trait does not offer) and any [`ObjectStore`] (S3, GCS, Azure, and the
//! in-memory and local-file stores the tests use).
//!
//! Everything above this module (rolling, naming, partitioning, footers, recovery decisions,
//! committed offsets) is shared. What differs is only how bytes reach their final name:
//!
//! | | local directory | object store |
//! | --- | --- | --- |
//! | while writing | `.{name}.tmp` beside the final name, `flock`ed | a buffered upload (one PUT, or a multipart upload for large files), invisible until complete |
//! | commit, phase 1 | `fsync` every file of the commit | complete every upload (to `_kingest_staging/` when a commit can span several files) |
//! | commit, phase 2 | rename each into place, `fsync` the directories | copy each staged object into place, delete the staged copies |
//! | recovery | unlocked `.tmp` files: a complete commit is rolled forward, the rest removed | staged commits: complete ones rolled forward, torn ones removed once older than a grace period |
//!
//! Phase 1 finishes for every file of a commit before phase 2 starts, so a crash during phase 2
//! leaves only complete files behind, which recovery moves into place.
//!
//! An offset marker (a zero-row file, see the Parquet sink's docs) is a commit of one file by
//! construction, so on an object store it is uploaded under its final name even when other
//! commits are staged; and a marker that a newer committed file supersedes is deleted
//! ([`Backend::remove`]) only after that newer file is durable.

mod cloud;
mod local;
mod object;
pub(crate) mod swap;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use object_store::buffered::BufWriter;
use object_store::path::Path as ObjectPath;
use object_store::ObjectStore;
use parquet::arrow::async_writer::AsyncFileWriter;

pub(crate) use self::cloud::cloud_store;
pub use self::cloud::StoreRetry;
use self::local::LocalDir;
use self::object::ObjectDir;
use super::meta::FileMeta;
use super::{Result, SinkError};

/// What opening a sink did to leftovers of earlier processes.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// Incomplete or unreadable temporary files (and staged objects) removed.
    pub removed: Vec<String>,
    /// Complete files of a commit that a crash interrupted, moved into place.
    pub rolled_forward: Vec<String>,
    /// Temporary files left alone because a live process still holds them.
    pub in_use: Vec<String>,
}

pub(crate) use self::local::fsync_dir_blocking as fsync_dir_path;
pub(crate) use self::local::millis as local_millis;

/// Where the sink writes: see the [module docs](self).
pub(crate) enum Backend {
    Local(LocalDir),
    Store(ObjectDir),
}

/// The destination of one file's bytes while it is written.
pub(crate) enum Dest {
    Local {
        file: tokio::fs::File,
        tmp: PathBuf,
        path: PathBuf,
    },
    Store {
        writer: BufWriter,
        path: ObjectPath,
        staged: Option<ObjectPath>,
        /// Whether `complete` was called: the upload is then finished or failed, and
        /// `BufWriter::abort` would panic.
        completing: bool,
    },
}

impl AsyncFileWriter for Dest {
    fn write(&mut self, bs: Bytes) -> BoxFuture<'_, parquet::errors::Result<()>> {
        match self {
            Dest::Local { file, .. } => AsyncFileWriter::write(file, bs),
            Dest::Store { writer, .. } => AsyncFileWriter::write(writer, bs),
        }
    }

    fn complete(&mut self) -> BoxFuture<'_, parquet::errors::Result<()>> {
        match self {
            Dest::Local { file, .. } => AsyncFileWriter::complete(file),
            Dest::Store {
                writer, completing, ..
            } => {
                *completing = true;
                AsyncFileWriter::complete(writer)
            }
        }
    }
}

/// A file whose Parquet footer is written and whose bytes are complete at their destination.
pub(crate) struct Finished {
    pub dest: Dest,
    pub bytes: u64,
}

/// A Parquet file a backend's scan found, before files of other tools are set apart.
struct Scanned {
    rel: String,
    shown: String,
    /// `None`: the footer has no `kingest.offsets` (not written by kingest).
    meta: Option<FileMeta>,
    rows: i64,
    bytes: u64,
    /// Last modified (the commit's time), ms since the epoch.
    modified_ms: i64,
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> SinkError + 'a {
    move |source| SinkError::Io {
        op,
        path: path.display().to_string(),
        source,
    }
}

fn store_err<'a>(
    op: &'static str,
    path: &'a str,
) -> impl FnOnce(object_store::Error) -> SinkError + 'a {
    move |source| SinkError::ObjectStore {
        op,
        path: path.to_owned(),
        source,
    }
}

fn join_task<T>(r: std::result::Result<Result<T>, tokio::task::JoinError>) -> Result<T> {
    r.unwrap_or_else(|e| {
        Err(SinkError::Poisoned(format!(
            "a file system task failed: {e}"
        )))
    })
}

impl Backend {
    /// A local directory, created if missing.
    pub(crate) async fn local(root: PathBuf) -> Result<Self> {
        let dir = root.clone();
        join_task(
            tokio::task::spawn_blocking(move || {
                if dir.is_dir() {
                    return Ok(());
                }
                std::fs::create_dir_all(&dir).map_err(io_err("create directory", &dir))?;
                // The new directory's entry must survive a crash too.
                match dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                    Some(parent) => local::fsync_dir_blocking(parent),
                    None => Ok(()),
                }
            })
            .await,
        )?;
        Ok(Backend::Local(LocalDir::new(root)))
    }

    /// A folder `prefix` of an object store; `display` is how paths are shown (`s3://b/p`).
    pub(crate) fn store(
        store: Arc<dyn ObjectStore>,
        prefix: &str,
        display: String,
        stage: bool,
        part_bytes: usize,
    ) -> Result<Self> {
        let prefix = prefix.trim_matches('/').to_owned();
        ObjectPath::parse(&prefix).map_err(|e| SinkError::Location {
            location: display.clone(),
            reason: format!("bad object prefix {prefix:?}: {e}"),
        })?;
        Ok(Backend::Store(ObjectDir {
            store,
            prefix,
            display,
            stage,
            part_bytes,
        }))
    }

    /// How a root-relative path is shown in results and errors.
    pub(crate) fn display(&self, rel: &str) -> String {
        match self {
            Backend::Local(d) => d.root.join(rel).display().to_string(),
            Backend::Store(d) => format!("{}/{rel}", d.display.trim_end_matches('/')),
        }
    }

    /// Starts a file that will end up at `rel` (root-relative, `/`-separated). `alone`: the
    /// file is the only one of its commit, so an object store uploads it under its final name
    /// (an upload appears whole) rather than through the staging folder.
    pub(crate) async fn create(&mut self, rel: &str, alone: bool) -> Result<Dest> {
        match self {
            Backend::Local(d) => d.create(rel).await,
            Backend::Store(d) => d.create(rel, alone),
        }
    }

    /// Deletes the committed file at `rel`; one that is gone already is no error (another
    /// process may have deleted the same superseded marker).
    pub(crate) async fn remove(&self, rel: &str) -> Result<()> {
        match self {
            Backend::Local(d) => d.remove(rel).await,
            Backend::Store(d) => d.remove(rel).await,
        }
    }

    /// Makes finished files visible under their final names, all of one commit together (see
    /// the module docs for the two phases). Returns each file's shown path and size.
    pub(crate) async fn commit(&mut self, files: Vec<Finished>) -> Result<Vec<(String, u64)>> {
        match self {
            Backend::Local(d) => d.commit(files).await,
            Backend::Store(d) => d.commit(files).await,
        }
    }

    /// Best-effort cleanup of a file that will not be committed: a local temporary file is
    /// removed, an unfinished upload aborted, a finished staged upload deleted. A finished
    /// upload under its final name is a commit of one file, and stays.
    pub(crate) async fn discard(&self, dest: Dest) {
        match dest {
            Dest::Local { file, tmp, .. } => {
                let _ = tokio::fs::remove_file(&tmp).await;
                drop(file);
            }
            Dest::Store {
                mut writer,
                completing: false,
                ..
            } => {
                let _ = writer.abort().await;
            }
            Dest::Store {
                staged: Some(staged),
                ..
            } => {
                if let Backend::Store(d) = self {
                    let _ = object_store::ObjectStoreExt::delete(&*d.store, &staged).await;
                }
            }
            Dest::Store { .. } => {}
        }
    }

    /// Cleans up after earlier processes: see [`Recovery`].
    pub(crate) async fn recover(&self, grace: Duration) -> Result<Recovery> {
        match self {
            Backend::Local(d) => {
                let root = d.root.clone();
                join_task(tokio::task::spawn_blocking(move || local::recover(&root)).await)
            }
            Backend::Store(d) => d.recover(grace).await,
        }
    }

    /// The root directory, for a local directory.
    pub(crate) fn local_root(&self) -> Option<&Path> {
        match self {
            Backend::Local(d) => Some(&d.root),
            Backend::Store(_) => None,
        }
    }

    /// A handle that lists committed files without borrowing the sink.
    pub(crate) fn scanner(&self) -> Scanner {
        match self {
            Backend::Local(d) => Scanner::Local(d.root.clone()),
            Backend::Store(d) => Scanner::Store(d.clone()),
        }
    }
}

/// A committed file found by [`Scanner::committed`].
pub(crate) struct ScannedFile {
    /// Root-relative path (`/`-separated), as [`Backend::remove`] takes it.
    pub rel: String,
    /// How the path is shown (a local path, an object URL).
    pub shown: String,
    /// Its commit record.
    pub meta: FileMeta,
    /// Rows in the file, from the footer: 0 for an offset marker.
    pub rows: i64,
    /// Its size.
    pub bytes: u64,
    /// When it was last modified (committed, or for a compacted file the newest of the files
    /// it merged), ms since the epoch.
    pub modified_ms: i64,
}

/// Reads committed files' footers; detached from the sink so a scan borrows nothing.
#[derive(Clone)]
pub(crate) enum Scanner {
    Local(PathBuf),
    Store(ObjectDir),
}

impl Scanner {
    /// Deletes the committed file at `rel` (see [`Backend::remove`]).
    pub(crate) async fn remove(&self, rel: &str) -> Result<()> {
        match self {
            Scanner::Local(root) => {
                let path = root.join(rel);
                join_task(
                    tokio::task::spawn_blocking(move || local::remove_file_locked(&path)).await,
                )
            }
            Scanner::Store(dir) => dir.remove(rel).await,
        }
    }

    /// Every committed file written by kingest, sorted by shown path. Files without
    /// `kingest.offsets` (written by other tools) are skipped with a warning.
    pub(crate) async fn committed(&self) -> Result<Vec<ScannedFile>> {
        let found: Vec<Scanned> = match self {
            Scanner::Local(root) => {
                let root = root.clone();
                join_task(tokio::task::spawn_blocking(move || local::scan(&root)).await)?
            }
            Scanner::Store(dir) => dir.scan().await?,
        };
        let mut out = Vec::with_capacity(found.len());
        for s in found {
            match s.meta {
                Some(meta) => out.push(ScannedFile {
                    rel: s.rel,
                    shown: s.shown,
                    meta,
                    rows: s.rows,
                    bytes: s.bytes,
                    modified_ms: s.modified_ms,
                }),
                None => {
                    let path = s.shown;
                    tracing::warn!(%path, "Parquet file without kingest.offsets metadata ignored")
                }
            }
        }
        out.sort_by(|a, b| a.shown.cmp(&b.shown));
        Ok(out)
    }
}
