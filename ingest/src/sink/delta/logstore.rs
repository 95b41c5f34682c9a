//! Reading and writing the files of `_delta_log/`: whole small files, and the one operation
//! the protocol rests on, *put if absent*, by which exactly one writer creates each version.
//!
//! | | local directory | object store |
//! | --- | --- | --- |
//! | put if absent | write `.name.{uuid}.tmp`, fsync, `link(2)` to the name (fails if it exists), fsync the directory | `PUT` with `If-None-Match: *` ([`PutMode::Create`]): S3, GCS, Azure and the in-memory store refuse an existing name; refused, the object is read, and our own bytes there (an attempt whose answer was lost, then retried) are our commit |
//! | put (checkpoints) | temporary file, fsync, rename, fsync the directory | `PUT` (atomic) |
//! | list | `read_dir` | `LIST` from an offset |
//!
//! The local path fsyncs everything (as the Parquet sink does) so a commit that returned is
//! on disk even after a power loss, and a data file is never referenced by a durable commit
//! before its own bytes are durable.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures_util::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

use super::log::LOG_DIR;
use crate::sink::{Result, SinkError};

/// A file found by [`LogStore::list_all`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Listed {
    /// Root-relative, `/`-separated.
    pub rel: String,
    pub bytes: u64,
    /// Last modified, ms since the epoch.
    pub modified_ms: i64,
}

/// Where the table's log lives.
#[derive(Clone)]
pub(crate) enum LogStore {
    Local {
        root: PathBuf,
    },
    Store {
        store: Arc<dyn ObjectStore>,
        prefix: String,
        display: String,
    },
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> SinkError + 'a {
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

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        Err(SinkError::Poisoned(format!(
            "a file system task failed: {e}"
        )))
    })
}

fn fsync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("fsync directory", dir))
}

/// Writes `bytes` to a fresh temporary file beside `path` and fsyncs it; returns its path.
fn write_tmp(path: &Path, bytes: &[u8]) -> Result<PathBuf> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", uuid::Uuid::new_v4().simple()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .map_err(io_err("create", &tmp))?;
    f.write_all(bytes).map_err(io_err("write", &tmp))?;
    f.sync_all().map_err(io_err("fsync", &tmp))?;
    Ok(tmp)
}

impl LogStore {
    /// How a root-relative path is shown.
    pub(crate) fn display(&self, rel: &str) -> String {
        match self {
            LogStore::Local { root } => root.join(rel).display().to_string(),
            LogStore::Store { display, .. } => format!("{}/{rel}", display.trim_end_matches('/')),
        }
    }

    fn object_path(&self, rel: &str) -> Result<ObjectPath> {
        let LogStore::Store {
            prefix, display, ..
        } = self
        else {
            return Ok(ObjectPath::from(rel));
        };
        let full = if prefix.is_empty() {
            rel.to_owned()
        } else {
            format!("{prefix}/{rel}")
        };
        ObjectPath::parse(&full).map_err(|e| SinkError::Location {
            location: display.clone(),
            reason: format!("bad object path {full:?}: {e}"),
        })
    }

    /// Creates `_delta_log/` if missing (local directories only: object stores have no
    /// directories).
    pub(crate) async fn create_log_dir(&self) -> Result<()> {
        let LogStore::Local { root } = self else {
            return Ok(());
        };
        let root = root.clone();
        blocking(move || {
            let log = root.join(LOG_DIR);
            if log.is_dir() {
                return Ok(());
            }
            let root_existed = root.is_dir();
            std::fs::create_dir_all(&log).map_err(io_err("create directory", &log))?;
            fsync_dir(&root)?;
            if !root_existed {
                if let Some(parent) = root.parent().filter(|p| !p.as_os_str().is_empty()) {
                    fsync_dir(parent)?;
                }
            }
            Ok(())
        })
        .await
    }

    /// The file's bytes, or `None` if it does not exist.
    pub(crate) async fn get(&self, rel: &str) -> Result<Option<Bytes>> {
        match self {
            LogStore::Local { root } => {
                let path = root.join(rel);
                match tokio::fs::read(&path).await {
                    Ok(b) => Ok(Some(Bytes::from(b))),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(io_err("read", &path)(e)),
                }
            }
            LogStore::Store { store, .. } => {
                let path = self.object_path(rel)?;
                match store.get(&path).await {
                    Ok(r) => Ok(Some(
                        r.bytes().await.map_err(store_err("get", path.as_ref()))?,
                    )),
                    Err(object_store::Error::NotFound { .. }) => Ok(None),
                    Err(e) => Err(store_err("get", path.as_ref())(e)),
                }
            }
        }
    }

    /// Creates `rel` with `bytes` unless it exists; `false` if it did (another writer won).
    /// `true` as well when the name holds exactly `bytes`: our own earlier attempt, whose
    /// answer was lost (see below).
    pub(crate) async fn put_if_absent(&self, rel: &str, bytes: Bytes) -> Result<bool> {
        match self {
            LogStore::Local { root } => {
                let path = root.join(rel);
                blocking(move || {
                    let tmp = write_tmp(&path, &bytes)?;
                    let linked = std::fs::hard_link(&tmp, &path);
                    let _ = std::fs::remove_file(&tmp);
                    match linked {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                            return Ok(false)
                        }
                        Err(e) => return Err(io_err("link", &path)(e)),
                    }
                    fsync_dir(path.parent().unwrap_or(Path::new(".")))?;
                    Ok(true)
                })
                .await
            }
            LogStore::Store { store, .. } => {
                let path = self.object_path(rel)?;
                let opts = PutOptions {
                    mode: PutMode::Create,
                    ..PutOptions::default()
                };
                match store
                    .put_opts(&path, PutPayload::from(bytes.clone()), opts)
                    .await
                {
                    Ok(_) => Ok(true),
                    Err(object_store::Error::AlreadyExists { .. })
                    | Err(object_store::Error::Precondition { .. }) => {
                        // object_store sends a request again when its connection closed before
                        // the answer came, even a conditional PUT; if the server had executed
                        // the first one, the retry is refused because of our own object. A
                        // commit's bytes are unique (its files have fresh names, its commitInfo
                        // a timestamp), so the same bytes under the name are our commit.
                        let theirs = store
                            .get(&path)
                            .await
                            .map_err(store_err("get", path.as_ref()))?
                            .bytes()
                            .await
                            .map_err(store_err("read", path.as_ref()))?;
                        Ok(theirs == bytes)
                    }
                    Err(e) => Err(store_err("put", path.as_ref())(e)),
                }
            }
        }
    }

    /// Writes `rel` whole, replacing it (checkpoints, `_last_checkpoint`): readers see the old
    /// bytes or the new, never a part.
    pub(crate) async fn put(&self, rel: &str, bytes: Bytes) -> Result<()> {
        match self {
            LogStore::Local { root } => {
                let path = root.join(rel);
                blocking(move || {
                    let tmp = write_tmp(&path, &bytes)?;
                    std::fs::rename(&tmp, &path).map_err(io_err("rename", &tmp))?;
                    fsync_dir(path.parent().unwrap_or(Path::new(".")))
                })
                .await
            }
            LogStore::Store { store, .. } => {
                let path = self.object_path(rel)?;
                store
                    .put(&path, PutPayload::from(bytes))
                    .await
                    .map(|_| ())
                    .map_err(store_err("put", path.as_ref()))
            }
        }
    }

    /// Removes the temporary files of commits and checkpoints that killed processes left in
    /// `_delta_log/` (`.NAME.ID.tmp`, never read by anyone), once older than `age` (younger
    /// ones may be a live writer's). Local directories only: an object store upload leaves
    /// nothing behind. Returns how many went.
    pub(crate) async fn remove_stale_tmp(&self, age: std::time::Duration) -> Result<usize> {
        let LogStore::Local { root } = self else {
            return Ok(0);
        };
        let dir = root.join(LOG_DIR);
        blocking(move || {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                return Ok(0);
            };
            let mut removed = 0;
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if !(name.starts_with('.') && name.ends_with(".tmp")) {
                    continue;
                }
                let old = e
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|a| a >= age);
                if old && std::fs::remove_file(e.path()).is_ok() {
                    removed += 1;
                }
            }
            Ok(removed)
        })
        .await
    }

    /// Every file under the table root, `_delta_log/` included, with its size and last
    /// modification (ms since the epoch), for `VACUUM` and log cleanup. Paths are root-relative
    /// and `/`-separated; a missing root lists as empty.
    pub(crate) async fn list_all(&self) -> Result<Vec<Listed>> {
        match self {
            LogStore::Local { root } => {
                let root = root.clone();
                blocking(move || {
                    let mut out = Vec::new();
                    let mut dirs = vec![(root.clone(), String::new())];
                    while let Some((dir, rel)) = dirs.pop() {
                        let entries = match std::fs::read_dir(&dir) {
                            Ok(e) => e,
                            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                            Err(e) => return Err(io_err("list", &dir)(e)),
                        };
                        for e in entries {
                            let e = e.map_err(io_err("list", &dir))?;
                            let name = e.file_name().to_string_lossy().into_owned();
                            let child = if rel.is_empty() {
                                name
                            } else {
                                format!("{rel}/{name}")
                            };
                            // Gone since the listing (another process's rename or delete).
                            let Ok(meta) = e.metadata() else { continue };
                            if meta.is_dir() {
                                dirs.push((e.path(), child));
                            } else if meta.is_file() {
                                let modified_ms = meta
                                    .modified()
                                    .map(crate::sink::store::local_millis)
                                    .unwrap_or(0);
                                out.push(Listed {
                                    rel: child,
                                    bytes: meta.len(),
                                    modified_ms,
                                });
                            }
                        }
                    }
                    Ok(out)
                })
                .await
            }
            LogStore::Store { store, prefix, .. } => {
                let root = (!prefix.is_empty()).then(|| ObjectPath::from(prefix.as_str()));
                let metas: Vec<_> = store
                    .list(root.as_ref())
                    .try_collect()
                    .await
                    .map_err(store_err("list", prefix))?;
                let strip = if prefix.is_empty() {
                    String::new()
                } else {
                    format!("{prefix}/")
                };
                Ok(metas
                    .into_iter()
                    .filter_map(|m| {
                        let rel = m.location.as_ref().strip_prefix(&strip)?.to_owned();
                        Some(Listed {
                            rel,
                            bytes: m.size,
                            modified_ms: m.last_modified.timestamp_millis(),
                        })
                    })
                    .collect())
            }
        }
    }

    /// Whether the file at `rel` exists.
    pub(crate) async fn exists(&self, rel: &str) -> Result<bool> {
        match self {
            LogStore::Local { root } => {
                let path = root.join(rel);
                match tokio::fs::metadata(&path).await {
                    Ok(_) => Ok(true),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
                    Err(e) => Err(io_err("stat", &path)(e)),
                }
            }
            LogStore::Store { store, .. } => {
                let path = self.object_path(rel)?;
                match store.head(&path).await {
                    Ok(_) => Ok(true),
                    Err(object_store::Error::NotFound { .. }) => Ok(false),
                    Err(e) => Err(store_err("head", path.as_ref())(e)),
                }
            }
        }
    }

    /// Deletes the file at `rel`; one gone already is no error (another cleanup got there
    /// first).
    pub(crate) async fn delete(&self, rel: &str) -> Result<()> {
        match self {
            LogStore::Local { root } => {
                let path = root.join(rel);
                match tokio::fs::remove_file(&path).await {
                    Ok(()) => Ok(()),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                    Err(e) => Err(io_err("remove", &path)(e)),
                }
            }
            LogStore::Store { store, .. } => {
                let path = self.object_path(rel)?;
                match store.delete(&path).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                    Err(e) => Err(store_err("delete", path.as_ref())(e)),
                }
            }
        }
    }

    /// The names (no directory) in `_delta_log/` that sort at or after `from` (all with an
    /// empty `from`), sorted. A missing log directory lists as empty.
    pub(crate) async fn list_log(&self, from: &str) -> Result<Vec<String>> {
        let mut names = match self {
            LogStore::Local { root } => {
                let dir = root.join(LOG_DIR);
                blocking(move || {
                    let entries = match std::fs::read_dir(&dir) {
                        Ok(e) => e,
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
                        Err(e) => return Err(io_err("list", &dir)(e)),
                    };
                    let mut out = Vec::new();
                    for e in entries {
                        let e = e.map_err(io_err("list", &dir))?;
                        out.push(e.file_name().to_string_lossy().into_owned());
                    }
                    Ok(out)
                })
                .await?
            }
            LogStore::Store { store, .. } => {
                let dir = self.object_path(LOG_DIR)?;
                let offset = self.object_path(&format!("{LOG_DIR}/{from}"))?;
                let metas: Vec<_> = store
                    .list_with_offset(Some(&dir), &offset)
                    .try_collect()
                    .await
                    .map_err(store_err("list", dir.as_ref()))?;
                metas
                    .into_iter()
                    .filter_map(|m| m.location.filename().map(str::to_owned))
                    .collect()
            }
        };
        names.retain(|n| n.as_str() >= from);
        names.sort();
        Ok(names)
    }
}
