//! Reading and writing a table's files (data files, manifests, manifest lists, metadata JSON)
//! through `object_store`, the same clients the Parquet sink uses: a local directory
//! (`file:///...` or a plain path), `s3://`, `gs://` or `az://`. An object store client is
//! configured as the Parquet and Delta sinks' are ([`crate::sink::store::cloud_store`]): the
//! environment, then the job's `[sink.storage]` options, with its `[sink.retry]` policy
//! ([`StoreSettings`]); data and metadata files alike go through it.
//!
//! Every file an Iceberg table references is written once under a fresh name and becomes part
//! of the table only when the catalog's pointer moves to metadata that references it, so no
//! write needs to be atomic; it needs to be durable before the catalog commit. An object store
//! upload is durable when it completes. A local file is `fsync`ed after it is written, with its
//! directory (and, the first time, the directories up to the table's root), because
//! `object_store`'s local store renames without syncing.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path as FsPath, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use crate::sink::store::StoreRetry;
use crate::sink::{Result, SinkError};

/// How a table's object store client is made: the job's `[sink.storage]` options (over the
/// environment's `AWS_*`, `AZURE_*`, `GOOGLE_*`) and `[sink.retry]` policy, the same settings
/// the Parquet and Delta sinks take. Unused for a local warehouse.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct StoreSettings {
    /// object_store configuration keys (`aws_endpoint`, `azure_storage_account_name`, ...).
    pub options: BTreeMap<String, String>,
    /// How failed requests are retried.
    pub retry: StoreRetry,
}

/// A table's storage: see the [module docs](self).
#[derive(Clone)]
pub(crate) struct TableIo {
    store: Arc<dyn ObjectStore>,
    /// `scheme://bucket` for object stores (locations are `{base}/{key}`); `None` for local.
    base: Option<String>,
    /// Local directories already made durable in their parents.
    synced_dirs: Arc<Mutex<HashSet<PathBuf>>>,
}

impl std::fmt::Debug for TableIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableIo")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

/// A local path or `file:` URL as an absolute `file:///...` location.
pub(crate) fn normalize_location(location: &str) -> Result<String> {
    let trimmed = location.trim_end_matches('/');
    let local = match trimmed.split_once("://") {
        None => trimmed,
        Some(("file", p)) => p,
        Some(_) => return Ok(trimmed.to_owned()),
    };
    let path = FsPath::new(if local.is_empty() { "/" } else { local });
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|source| SinkError::Io {
                op: "current directory",
                path: local.to_owned(),
                source,
            })?
            .join(path)
    };
    // Interior `.` components (a relative `./warehouse` joined to the current directory) are
    // dropped: object_store's paths refuse them.
    let abs: PathBuf = abs.components().collect();
    Ok(format!("file://{}", abs.display()))
}

impl TableIo {
    /// The storage holding `location` (a table's or warehouse's location), reached with
    /// `settings` when it is an object store.
    pub(crate) fn for_location(location: &str, settings: &StoreSettings) -> Result<TableIo> {
        let location = normalize_location(location)?;
        let (store, base): (Arc<dyn ObjectStore>, Option<String>) = match location.split_once("://")
        {
            Some(("file", _)) => (Arc::new(LocalFileSystem::new()), None),
            Some((scheme, rest)) => {
                let bucket = rest.split('/').next().unwrap_or_default();
                let base = format!("{scheme}://{bucket}");
                let store = crate::sink::store::cloud_store(
                    scheme,
                    &base,
                    &settings.options,
                    &settings.retry,
                )?;
                (store, Some(base))
            }
            None => unreachable!("normalize_location returns a URL"),
        };
        Ok(TableIo {
            store,
            base,
            synced_dirs: Arc::new(Mutex::new(HashSet::new())),
        })
    }

    /// Storage over any [`ObjectStore`] whose keys are the part of locations after
    /// `base` (`memory://` in tests).
    #[cfg(test)]
    pub(crate) fn with_store(store: Arc<dyn ObjectStore>, base: &str) -> TableIo {
        TableIo {
            store,
            base: Some(base.to_owned()),
            synced_dirs: Arc::new(Mutex::new(HashSet::new())),
        }
    }

    /// The object key of a location.
    pub(crate) fn path(&self, location: &str) -> Result<Path> {
        let bad = |reason: String| SinkError::Location {
            location: location.to_owned(),
            reason,
        };
        let key = match &self.base {
            None => {
                let p = location
                    .strip_prefix("file://")
                    .or_else(|| location.starts_with('/').then_some(location))
                    .ok_or_else(|| bad("not a local path".into()))?;
                p.trim_start_matches('/').to_owned()
            }
            Some(base) => location
                .strip_prefix(base.as_str())
                .and_then(|r| r.strip_prefix('/'))
                .ok_or_else(|| bad(format!("not under {base}")))?
                .to_owned(),
        };
        Path::parse(&key).map_err(|e| bad(e.to_string()))
    }

    /// The store, for writers that upload in parts.
    pub(crate) fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// Reads a whole file.
    pub(crate) async fn read(&self, location: &str) -> Result<Bytes> {
        let path = self.path(location)?;
        let got = self
            .store
            .get(&path)
            .await
            .map_err(|source| SinkError::ObjectStore {
                op: "get",
                path: location.to_owned(),
                source,
            })?;
        got.bytes().await.map_err(|source| SinkError::ObjectStore {
            op: "read",
            path: location.to_owned(),
            source,
        })
    }

    /// Writes a whole (small) file and makes it durable.
    pub(crate) async fn write(&self, location: &str, bytes: Vec<u8>) -> Result<()> {
        let path = self.path(location)?;
        self.store
            .put(&path, PutPayload::from(bytes))
            .await
            .map_err(|source| SinkError::ObjectStore {
                op: "put",
                path: location.to_owned(),
                source,
            })?;
        self.durable(location).await
    }

    /// The location of an object key of this storage (the inverse of [`TableIo::path`]).
    pub(crate) fn location_of(&self, key: &Path) -> String {
        match &self.base {
            None => format!("file:///{key}"),
            Some(base) => format!("{base}/{key}"),
        }
    }

    /// Every file under `location` (a table's root), recursively: key, size, last modified
    /// (ms since the epoch; the object store's `Last-Modified`, a local file's mtime). A local
    /// directory is walked directly: `object_store`'s listing leaves out the staging files
    /// (`name#1`) of uploads a killed writer never finished, which are orphans too.
    pub(crate) async fn list(&self, location: &str) -> Result<Vec<(Path, u64, i64)>> {
        use futures_util::TryStreamExt as _;
        let prefix = self.path(location.trim_end_matches('/'))?;
        if self.base.is_none() {
            let root = PathBuf::from(format!("/{prefix}"));
            return tokio::task::spawn_blocking(move || walk_local(&root))
                .await
                .map_err(|e| SinkError::Io {
                    op: "list",
                    path: location.to_owned(),
                    source: std::io::Error::other(e.to_string()),
                })?;
        }
        let metas: Vec<object_store::ObjectMeta> = self
            .store
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(|source| SinkError::ObjectStore {
                op: "list",
                path: location.to_owned(),
                source,
            })?;
        Ok(metas
            .into_iter()
            .map(|m| (m.location, m.size, m.last_modified.timestamp_millis()))
            .collect())
    }

    /// Deletes a file that was written but will not be committed (gone already is fine).
    pub(crate) async fn delete(&self, location: &str) {
        if let Ok(path) = self.path(location) {
            if let Err(e) = self.store.delete(&path).await {
                if !matches!(e, object_store::Error::NotFound { .. }) {
                    tracing::debug!(%location, error = %e, "deleting an uncommitted file failed");
                }
            }
        }
    }

    /// Makes a completed local write durable: the file, its directory, and the first time a
    /// directory is seen, its ancestors (it may have just been created). A no-op on object
    /// stores, where a completed upload is durable.
    pub(crate) async fn durable(&self, location: &str) -> Result<()> {
        if self.base.is_some() {
            return Ok(());
        }
        let path = PathBuf::from(format!("/{}", self.path(location)?));
        let synced = Arc::clone(&self.synced_dirs);
        let joined = tokio::task::spawn_blocking(move || sync_local(&path, &synced)).await;
        joined.unwrap_or_else(|e| Err(SinkError::Poisoned(format!("an fsync task failed: {e}"))))
    }
}

/// Every file under the local directory `root` (none when it does not exist).
fn walk_local(root: &FsPath) -> Result<Vec<(Path, u64, i64)>> {
    let io_err = |path: &FsPath| {
        let path = path.display().to_string();
        move |source| SinkError::Io {
            op: "list",
            path,
            source,
        }
    };
    let mut out = Vec::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_err(&dir)(e)),
        };
        for entry in entries {
            let entry = entry.map_err(io_err(&dir))?;
            let path = entry.path();
            let meta = entry.metadata().map_err(io_err(&path))?;
            if meta.is_dir() {
                todo.push(path);
                continue;
            }
            let modified_ms = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(i64::MAX, |d| d.as_millis() as i64);
            let text = path.to_string_lossy();
            let key =
                Path::parse(text.trim_start_matches('/')).map_err(|e| SinkError::Location {
                    location: text.to_string(),
                    reason: e.to_string(),
                })?;
            out.push((key, meta.len(), modified_ms));
        }
    }
    Ok(out)
}

fn sync_local(path: &FsPath, synced: &Mutex<HashSet<PathBuf>>) -> Result<()> {
    let io = |op: &'static str, p: &FsPath| {
        let p = p.display().to_string();
        move |source| SinkError::Io {
            op,
            path: p,
            source,
        }
    };
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(io("fsync", path))?;
    let mut dir = path.parent();
    while let Some(d) = dir {
        std::fs::File::open(d)
            .and_then(|f| f.sync_all())
            .map_err(io("fsync directory", d))?;
        let mut seen = synced.lock().unwrap_or_else(|p| p.into_inner());
        if !seen.insert(d.to_path_buf()) {
            break;
        }
        drop(seen);
        dir = d.parent();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iceberg_io_locations_normalize_and_map_to_keys() {
        assert_eq!(normalize_location("/a/b/").unwrap(), "file:///a/b");
        assert_eq!(normalize_location("file:///a/b").unwrap(), "file:///a/b");
        assert_eq!(normalize_location("s3://bkt/wh/").unwrap(), "s3://bkt/wh");
        let rel = normalize_location("wh").unwrap();
        assert!(rel.starts_with("file:///") && rel.ends_with("/wh"), "{rel}");
        // A job's `warehouse = "./data/warehouse"`: no `.` segment reaches object_store.
        let dotted = normalize_location("./data/./wh").unwrap();
        assert!(
            dotted.ends_with("/data/wh") && !dotted.contains("/./"),
            "{dotted}"
        );
        let none = StoreSettings::default();
        assert!(TableIo::for_location("./data/./wh", &none).is_ok());
        let io = TableIo::for_location("/tmp", &none).unwrap();
        assert_eq!(
            io.path("file:///tmp/x/y.avro").unwrap().as_ref(),
            "tmp/x/y.avro"
        );
        assert_eq!(io.path("/tmp/x").unwrap().as_ref(), "tmp/x");
        let mem = TableIo::with_store(Arc::new(object_store::memory::InMemory::new()), "s3://b");
        assert_eq!(
            mem.path("s3://b/wh/t/m.json").unwrap().as_ref(),
            "wh/t/m.json"
        );
        assert!(mem.path("s3://other/x").is_err());
    }
}
