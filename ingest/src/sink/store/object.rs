//! The object store backend: buffered uploads (atomic on completion), a staging folder for
//! multi-file commits, server-side copies into place; recovery of staged commits; footer
//! reads by ranged GETs.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::{StreamExt, TryStreamExt};
use object_store::buffered::BufWriter;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};
use parquet::arrow::async_reader::MetadataFetch;
use parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};

use super::{store_err, Dest, Finished, Recovery, Scanned};
use crate::sink::layout::STAGING_DIR;
use crate::sink::meta::FileMeta;
use crate::sink::{Result, SinkError};

/// Footer reads in flight at once when scanning an object store.
const SCAN_CONCURRENCY: usize = 16;
/// The first footer read fetches this many bytes from the end, which covers most footers in
/// one request.
const FOOTER_PREFETCH: usize = 64 << 10;

/// A folder of an object store the sink writes into.
#[derive(Clone)]
pub(crate) struct ObjectDir {
    pub(super) store: Arc<dyn ObjectStore>,
    pub(super) prefix: String,
    pub(super) display: String,
    /// Whether commits may span several files and so go through the staging folder.
    pub(super) stage: bool,
    /// Uploads go out in parts of this size (one PUT below it).
    pub(super) part_bytes: usize,
}

impl ObjectDir {
    pub(super) fn create(&self, rel: &str, alone: bool) -> Result<Dest> {
        let final_path = self.object_path(rel)?;
        let (target, staged) = if self.stage && !alone {
            let staged = self.object_path(&format!("{STAGING_DIR}/{rel}"))?;
            (staged.clone(), Some(staged))
        } else {
            (final_path.clone(), None)
        };
        let writer = BufWriter::with_capacity(Arc::clone(&self.store), target, self.part_bytes);
        Ok(Dest::Store {
            writer,
            path: final_path,
            staged,
            completing: false,
        })
    }

    /// Deletes a committed object (gone already is fine).
    pub(super) async fn remove(&self, rel: &str) -> Result<()> {
        let path = self.object_path(rel)?;
        delete_if_present(&*self.store, &path).await
    }

    /// Every committed object under the prefix with its commit record (`None`: not written by
    /// kingest) and row count, footers read concurrently. An object deleted between the
    /// listing and its footer's read starts the scan again (see the local directory's scan).
    pub(super) async fn scan(&self) -> Result<Vec<Scanned>> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.scan_once().await {
                Err(SinkError::Footer { source, .. })
                    if attempt < super::local::SCAN_ATTEMPTS && footer_not_found(&source) => {}
                other => return other,
            }
        }
    }

    async fn scan_once(&self) -> Result<Vec<Scanned>> {
        let staging = format!("{STAGING_DIR}/");
        let finals: Vec<ObjectMeta> = list(&*self.store, &self.prefix)
            .await?
            .into_iter()
            .filter(|m| {
                self.rel_of(&m.location)
                    .is_some_and(|r| r.ends_with(".parquet") && !r.starts_with(&staging))
            })
            .collect();
        futures_util::stream::iter(finals)
            .map(|m| async move {
                let shown = self.display_of(&m.location);
                let footer =
                    read_footer(&self.store, &m)
                        .await
                        .map_err(|source| SinkError::Footer {
                            path: shown.clone(),
                            source,
                        })?;
                let meta = FileMeta::from_footer(&shown, &footer)?;
                Ok::<_, SinkError>(Scanned {
                    rel: self.rel_of(&m.location).unwrap_or_default().to_owned(),
                    rows: footer.file_metadata().num_rows(),
                    bytes: m.size,
                    modified_ms: m.last_modified.timestamp_millis(),
                    shown,
                    meta,
                })
            })
            .buffer_unordered(SCAN_CONCURRENCY)
            .try_collect()
            .await
    }

    fn object_path(&self, rel: &str) -> Result<ObjectPath> {
        let full = if self.prefix.is_empty() {
            rel.to_owned()
        } else {
            format!("{}/{rel}", self.prefix)
        };
        ObjectPath::parse(&full).map_err(|e| SinkError::Location {
            location: self.display.clone(),
            reason: format!("bad object path {full:?}: {e}"),
        })
    }

    /// The root-relative path of an object under the prefix.
    fn rel_of<'a>(&self, path: &'a ObjectPath) -> Option<&'a str> {
        let s = path.as_ref();
        if self.prefix.is_empty() {
            Some(s)
        } else {
            s.strip_prefix(self.prefix.as_str())?.strip_prefix('/')
        }
    }

    pub(super) async fn commit(&mut self, files: Vec<Finished>) -> Result<Vec<(String, u64)>> {
        // Phase 1 happened as each file finished: its upload completed (to the final name
        // when the commit has one file by construction, else to the staging folder).
        let mut out = Vec::with_capacity(files.len());
        let mut staged = Vec::new();
        for f in files {
            match f.dest {
                Dest::Store {
                    path, staged: s, ..
                } => {
                    out.push((
                        format!(
                            "{}/{}",
                            self.display.trim_end_matches('/'),
                            self.rel_of(&path).unwrap_or(path.as_ref())
                        ),
                        f.bytes,
                    ));
                    if let Some(s) = s {
                        staged.push((s, path));
                    }
                }
                Dest::Local { .. } => unreachable!("an object store creates object uploads only"),
            }
        }
        // Phase 2: a server-side copy into place (each copy is atomic), then drop the staging.
        for (from, to) in &staged {
            self.store
                .copy(from, to)
                .await
                .map_err(store_err("copy", from.as_ref()))?;
        }
        for (from, _) in &staged {
            delete_if_present(&*self.store, from).await?;
        }
        Ok(out)
    }

    pub(super) async fn recover(&self, grace: Duration) -> Result<Recovery> {
        let mut report = Recovery::default();
        let all = list(&*self.store, &self.prefix).await?;
        let mut finals = HashSet::new();
        let mut staged = Vec::new();
        let staging_prefix = format!("{STAGING_DIR}/");
        for meta in all {
            let Some(rel) = self.rel_of(&meta.location).map(str::to_owned) else {
                continue;
            };
            match rel.strip_prefix(&staging_prefix) {
                Some(inner) => staged.push((inner.to_owned(), meta)),
                None if rel.ends_with(".parquet") => {
                    finals.insert(rel);
                }
                None => {}
            }
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as i64;
        let grace = grace.as_millis() as i64;
        let stale = |m: &ObjectMeta| now - m.last_modified.timestamp_millis() > grace;
        // Staged objects appear whole (an upload is atomic), so an unreadable one is not ours.
        let mut commits: BTreeMap<String, Vec<(String, ObjectMeta, FileMeta)>> = BTreeMap::new();
        for (rel, meta) in staged {
            let shown = self.display_of(&meta.location);
            match read_footer(&self.store, &meta)
                .await
                .ok()
                .and_then(|f| FileMeta::from_footer(&shown, &f).ok().flatten())
            {
                Some(fm) if fm.files.contains(&rel) => commits
                    .entry(fm.commit.clone())
                    .or_default()
                    .push((rel, meta, fm)),
                _ if stale(&meta) => {
                    delete_if_present(&*self.store, &meta.location).await?;
                    report.removed.push(shown);
                }
                _ => report.in_use.push(shown),
            }
        }
        let present: HashSet<String> = commits
            .values()
            .flatten()
            .map(|(rel, _, _)| rel.clone())
            .collect();
        for (_, files) in commits {
            let complete = files[0]
                .2
                .files
                .iter()
                .all(|f| finals.contains(f) || present.contains(f));
            if complete {
                // Idempotent: a live writer finishing the same commit copies the same bytes.
                for (rel, meta, _) in &files {
                    let to = self.object_path(rel)?;
                    self.store
                        .copy(&meta.location, &to)
                        .await
                        .map_err(store_err("copy", meta.location.as_ref()))?;
                    report.rolled_forward.push(self.display_of(&to));
                }
                for (_, meta, _) in &files {
                    delete_if_present(&*self.store, &meta.location).await?;
                }
            } else if files.iter().all(|(_, m, _)| stale(m)) {
                // A writer that died mid-upload; its offsets were never recorded.
                for (_, meta, _) in &files {
                    delete_if_present(&*self.store, &meta.location).await?;
                    report.removed.push(self.display_of(&meta.location));
                }
            } else {
                // Possibly a live writer still uploading the rest of its commit.
                report
                    .in_use
                    .extend(files.iter().map(|(_, m, _)| self.display_of(&m.location)));
            }
        }
        Ok(report)
    }

    fn display_of(&self, path: &ObjectPath) -> String {
        format!(
            "{}/{}",
            self.display.trim_end_matches('/'),
            self.rel_of(path).unwrap_or(path.as_ref())
        )
    }
}

/// Whether a footer read failed because the object is gone.
fn footer_not_found(e: &parquet::errors::ParquetError) -> bool {
    match e {
        parquet::errors::ParquetError::External(inner) => matches!(
            inner.downcast_ref::<object_store::Error>(),
            Some(object_store::Error::NotFound { .. })
        ),
        _ => false,
    }
}

async fn delete_if_present(store: &dyn ObjectStore, path: &ObjectPath) -> Result<()> {
    match store.delete(path).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(store_err("delete", path.as_ref())(e)),
    }
}

async fn list(store: &dyn ObjectStore, prefix: &str) -> Result<Vec<ObjectMeta>> {
    let p = if prefix.is_empty() {
        None
    } else {
        Some(ObjectPath::parse(prefix).unwrap_or_default())
    };
    store
        .list(p.as_ref())
        .try_collect()
        .await
        .map_err(store_err("list", prefix))
}

async fn read_footer(
    store: &Arc<dyn ObjectStore>,
    meta: &ObjectMeta,
) -> parquet::errors::Result<ParquetMetaData> {
    // Ranged reads of the tail only (the listing gave the size, so no HEAD is needed).
    let fetch = StoreFetch {
        store: &**store,
        path: &meta.location,
    };
    ParquetMetaDataReader::new()
        .with_prefetch_hint(Some(FOOTER_PREFETCH))
        .load_and_finish(fetch, meta.size)
        .await
}

/// Ranged GETs of one object, for the footer reader.
struct StoreFetch<'a> {
    store: &'a dyn ObjectStore,
    path: &'a ObjectPath,
}

impl MetadataFetch for StoreFetch<'_> {
    fn fetch(
        &mut self,
        range: std::ops::Range<u64>,
    ) -> BoxFuture<'_, parquet::errors::Result<Bytes>> {
        Box::pin(async move {
            self.store
                .get_range(self.path, range)
                .await
                .map_err(|e| parquet::errors::ParquetError::External(Box::new(e)))
        })
    }
}
