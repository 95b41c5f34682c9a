//! The Parquet sink: record batches into Parquet files in a local directory or an object store
//! (`s3://`, `gs://`, `az://`), exactly once.
//!
//! # Files
//!
//! Each Kafka partition has at most one open *commit* at a time: one file, or with
//! `partition_by` one file per `column=value/` directory its rows fall into. A file holds rows
//! of one partition only, and its name carries the partition, its first offset and a random
//! commit id (see the layout in `layout.rs`), so processes sharing a consumer group never
//! write the same name:
//!
//! ```text
//! root/date=2024-01-01/events-3-00000000000000001200-6f1c….parquet
//! root/date=2024-01-02/events-3-00000000000000001200-6f1c….parquet
//! root/date=2024-01-02/events-0-00000000000000000000-a9e2….parquet
//! ```
//!
//! A commit rolls when one of its files reaches [`RollPolicy::max_rows`] rows or
//! [`RollPolicy::max_bytes`] uncompressed bytes, or when it is [`RollPolicy::max_age`] old
//! (Pinot's `realtime.segment.flush.threshold.rows`/`segment.size`/`time`). Thresholds are
//! checked between batches: a batch is never split across commits, so a file can exceed a
//! threshold by at most one batch.
//!
//! # Exactly once
//!
//! Every file's footer records, under the key `kingest.offsets`, the consumer group, the
//! Kafka offsets `[first, next)` its commit covers, and the names of the commit's files (see
//! `meta.rs`). The footer is part of the file, and the file becomes visible in one atomic
//! step: a local file is written as `.{name}.tmp`, fsynced, renamed, and its directory fsynced;
//! an object is uploaded under its final name and appears only when the upload completes. So
//! rows are visible exactly when their offsets are recorded. On start, [`ParquetSink::open`]
//! cleans up after a crash (a `.tmp` file nobody holds is removed, or moved into place if it
//! completes an interrupted commit), and [`ParquetSink::committed_offsets`] reads only the
//! footers of committed files and returns, per partition, the highest `next`: the engine
//! resumes there, and nothing before it is read twice, nothing after it was stored.
//!
//! # Offsets without rows: markers
//!
//! When every record a partition read since its last commit was dropped (by the `filter`, or
//! as a bad record skipped or dead-lettered), the engine still hands the sink a batch without
//! rows whose offsets advance. They are recorded as `kingest reset-offsets --sink` records a
//! reset: by an *offset marker*, a Parquet file with the sink's schema and no rows whose
//! footer records `[next, next)`, so the highest `next` moves on and a restarted process does
//! not read (and dead-letter) those records again. Offsets without rows open a commit like
//! rows do and follow the same roll policy (a commit without rows is due at
//! [`RollPolicy::max_age`], and at every [`Sink::flush`]); if rows follow before it is due,
//! their file covers the gap and no marker is written. A marker is committed like any file
//! (temporary name, fsync, rename; on object stores an upload under its final name), so it is
//! exactly as durable, and recovery treats it like any file. It is named like a file of rows
//! starting at `next` and placed where one would be: in the root, or with `partition_by` in
//! the `column=__HIVE_DEFAULT_PARTITION__/` directory (see `layout.rs`), where readers of the
//! dataset see zero rows and the scan of footers finds it.
//!
//! Markers do not pile up: once a newer committed file of the same partition (rows or marker)
//! is durable, the sink deletes the markers it supersedes after its flushes, including ones
//! an earlier process or a reset left, which it learns of whenever it scans the footers. A
//! crash between the new file's rename and the deletion leaves both; the highest `next`
//! counts, so that is harmless, and the old marker is deleted later. See `parquet/markers.rs`
//! for why concurrent deletions never remove a partition's last word.
//!
//! A commit with several files (`partition_by`) is made visible file by file. All its files
//! are complete and fsynced (or uploaded to `_kingest_staging/`) before the first becomes
//! visible, and recovery finishes an interrupted commit, so the only trace of a crash at that
//! moment is that a reader listing in between sees part of that commit for a while.
//!
//! Limits: this protects against crashes, not against two live processes writing the same
//! partition (a consumer that lost its partition without noticing): the engine must stop
//! writing a partition when it is revoked. Abandoned multipart uploads on S3/GCS/Azure are
//! invisible but keep their parts until a bucket lifecycle rule (e.g. S3's
//! `AbortIncompleteMultipartUpload`) removes them.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use object_store::ObjectStore;
use parquet::arrow::AsyncArrowWriter;
use parquet::basic::{Compression, GzipLevel, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use uuid::Uuid;

mod markers;

use self::markers::Markers;
use super::layout::{batch_bytes, file_name, join_rel, PartitionBy};
use super::meta::{FileMeta, OFFSETS_KEY};
pub use super::store::Recovery;
use super::store::{Backend, Dest, Finished, Scanner};
use super::{CommittedFile, CommittedOffsets, OffsetRange, PartitionKey, Result, Sink, SinkError};

/// Parquet page compression.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ParquetCompression {
    /// Zstandard, level 3 (zstd's own default): small files, fast reads.
    #[default]
    Zstd,
    /// Snappy.
    Snappy,
    /// LZ4 (Parquet's `LZ4_RAW`; the older Hadoop-framed `LZ4` is deprecated).
    Lz4,
    /// Gzip, level 6.
    Gzip,
    /// No compression.
    None,
}

impl ParquetCompression {
    pub(crate) fn to_parquet(self) -> Compression {
        match self {
            ParquetCompression::Zstd => {
                Compression::ZSTD(ZstdLevel::try_new(3).unwrap_or_default())
            }
            ParquetCompression::Snappy => Compression::SNAPPY,
            ParquetCompression::Lz4 => Compression::LZ4_RAW,
            ParquetCompression::Gzip => Compression::GZIP(GzipLevel::default()),
            ParquetCompression::None => Compression::UNCOMPRESSED,
        }
    }
}

impl FromStr for ParquetCompression {
    type Err = String;

    /// `zstd`, `snappy`, `lz4`, `gzip` or `none` (any case), as in the `[sink]` section.
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "zstd" => Ok(Self::Zstd),
            "snappy" => Ok(Self::Snappy),
            "lz4" => Ok(Self::Lz4),
            "gzip" => Ok(Self::Gzip),
            "none" | "uncompressed" => Ok(Self::None),
            _ => Err(format!("{s:?}: one of zstd, snappy, lz4, gzip, none")),
        }
    }
}

/// When a partition's open files are committed: whichever threshold is reached first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RollPolicy {
    /// Rows in one file.
    pub max_rows: u64,
    /// Uncompressed (Arrow in-memory) bytes in one file.
    pub max_bytes: u64,
    /// Time since the commit's first row.
    pub max_age: Duration,
}

impl Default for RollPolicy {
    /// The `[flush]` defaults: 1,000,000 rows, 128 MiB, 5 minutes.
    fn default() -> Self {
        Self {
            max_rows: 1_000_000,
            max_bytes: 128 << 20,
            max_age: Duration::from_secs(300),
        }
    }
}

/// How to open a [`ParquetSink`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParquetSinkConfig {
    /// A local directory (or `file:///dir`), or `s3://bucket/prefix`, `gs://bucket/prefix`,
    /// `az://container/prefix`. Object store credentials and regions come from the usual
    /// environment variables (`AWS_*`, `GOOGLE_*`, `AZURE_*`).
    pub location: String,
    /// The Kafka consumer group, recorded in every file; [`ParquetSink::committed_offsets`]
    /// counts only this group's files.
    pub group_id: String,
    /// When to roll files.
    pub roll: RollPolicy,
    /// Page compression.
    pub compression: ParquetCompression,
    /// Split files into Hive-style `column=value/` directories by this column.
    pub partition_by: Option<String>,
    /// Upper bound of a row group's buffered size: bounds memory per open file.
    pub row_group_bytes: usize,
    /// Object stores only: uploads go out in parts of this size (a single PUT below it). S3
    /// wants at least 5 MiB.
    pub upload_part_bytes: usize,
    /// Object stores only: how old a staged upload of an unfinished commit must be before
    /// [`ParquetSink::open`] deletes it (younger ones may belong to a live process).
    pub staging_grace: Duration,
}

impl ParquetSinkConfig {
    /// Defaults for everything but where and for which group.
    pub fn new(location: impl Into<String>, group_id: impl Into<String>) -> Self {
        Self {
            location: location.into(),
            group_id: group_id.into(),
            roll: RollPolicy::default(),
            compression: ParquetCompression::default(),
            partition_by: None,
            row_group_bytes: 64 << 20,
            upload_part_bytes: 10 << 20,
            staging_grace: Duration::from_secs(3600),
        }
    }
}

/// One file being written.
struct OpenFile {
    rel: String,
    writer: AsyncArrowWriter<Dest>,
    rows: u64,
    bytes: u64,
}

/// The open commit of one Kafka partition.
struct Commit {
    id: Uuid,
    range: OffsetRange,
    opened: Instant,
    /// By partition directory (`""` without `partition_by`). Empty while the commit covers
    /// offsets without rows only: committed then as an offset marker.
    files: BTreeMap<String, OpenFile>,
}

impl Commit {
    fn new(range: OffsetRange) -> Self {
        Self {
            id: Uuid::new_v4(),
            range,
            opened: Instant::now(),
            files: BTreeMap::new(),
        }
    }

    fn due(&self, roll: &RollPolicy, now: Instant) -> bool {
        now.duration_since(self.opened) >= roll.max_age
            || self
                .files
                .values()
                .any(|f| f.rows >= roll.max_rows || f.bytes >= roll.max_bytes)
    }
}

/// Writes record batches to Parquet files. See the [module docs](self).
pub struct ParquetSink {
    config: ParquetSinkConfig,
    schema: SchemaRef,
    props: WriterProperties,
    partition_by: Option<PartitionBy>,
    backend: Backend,
    commits: BTreeMap<PartitionKey, Commit>,
    /// Per partition, the `next` of the last write: batches must not go back.
    written: HashMap<PartitionKey, i64>,
    recovery: Recovery,
    /// Committed files seen, for deleting superseded offset markers.
    markers: Markers,
    poisoned: Option<String>,
}

impl fmt::Debug for ParquetSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ParquetSink")
            .field("location", &self.config.location)
            .field("group_id", &self.config.group_id)
            .field("open_partitions", &self.commits.keys().collect::<Vec<_>>())
            .field("poisoned", &self.poisoned)
            .finish_non_exhaustive()
    }
}

impl ParquetSink {
    /// Opens the sink at `config.location` for batches of `schema`, after cleaning up what a
    /// crashed process left (see [`ParquetSink::recovery`]).
    pub async fn open(config: ParquetSinkConfig, schema: SchemaRef) -> Result<Self> {
        let location = config.location.clone();
        let backend = match location.split_once("://") {
            None => Backend::local(PathBuf::from(&location)).await?,
            Some(("file", path)) => Backend::local(PathBuf::from(path)).await?,
            Some((scheme, rest)) => {
                let store = cloud_store(scheme, &location)?;
                // `bucket/prefix...`: the store is bound to the bucket, the rest is our prefix.
                let prefix = rest.split_once('/').map(|(_, p)| p).unwrap_or("");
                let stage = config.partition_by.is_some();
                Backend::store(
                    store,
                    prefix,
                    location.trim_end_matches('/').to_owned(),
                    stage,
                    config.upload_part_bytes,
                )?
            }
        };
        Self::with_backend(backend, config, schema).await
    }

    /// Opens the sink in folder `prefix` of `store` (any [`ObjectStore`]: S3, GCS, Azure, local
    /// files, memory). `config.location` is ignored; paths are shown as `{store}/{prefix}`.
    pub async fn open_object_store(
        store: Arc<dyn ObjectStore>,
        prefix: &str,
        config: ParquetSinkConfig,
        schema: SchemaRef,
    ) -> Result<Self> {
        let display = format!("{store}/{}", prefix.trim_matches('/'));
        let stage = config.partition_by.is_some();
        let backend = Backend::store(store, prefix, display, stage, config.upload_part_bytes)?;
        Self::with_backend(backend, config, schema).await
    }

    async fn with_backend(
        backend: Backend,
        config: ParquetSinkConfig,
        schema: SchemaRef,
    ) -> Result<Self> {
        let partition_by = match &config.partition_by {
            Some(column) => Some(PartitionBy::new(&schema, column)?),
            None => None,
        };
        let props = WriterProperties::builder()
            .set_compression(config.compression.to_parquet())
            .set_max_row_group_bytes(Some(config.row_group_bytes))
            .set_created_by(format!("kingest {}", env!("CARGO_PKG_VERSION")))
            .build();
        let recovery = backend.recover(config.staging_grace).await?;
        if recovery != Recovery::default() {
            tracing::info!(
                removed = recovery.removed.len(),
                rolled_forward = recovery.rolled_forward.len(),
                in_use = recovery.in_use.len(),
                location = %config.location,
                "recovered after an earlier process"
            );
        }
        Ok(Self {
            config,
            schema,
            props,
            partition_by,
            backend,
            commits: BTreeMap::new(),
            written: HashMap::new(),
            recovery,
            markers: Markers::default(),
            poisoned: None,
        })
    }

    /// What opening cleaned up.
    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }

    /// The configuration the sink was opened with.
    pub fn config(&self) -> &ParquetSinkConfig {
        &self.config
    }

    /// Per partition, the highest `next` offset recorded in the footers of this group's
    /// committed files: where to resume. Reads only footers, never data pages.
    pub fn committed_offsets(
        &self,
    ) -> impl Future<Output = Result<CommittedOffsets>> + Send + 'static {
        let files = self.committed_files();
        async move {
            let mut out = CommittedOffsets::new();
            for (_, key, range) in files.await? {
                let next = out.entry((key.topic, key.partition)).or_insert(range.next);
                *next = (*next).max(range.next);
            }
            Ok(out)
        }
    }

    /// Every committed file of this group with the partition and offsets its footer records,
    /// sorted by path. Offset markers (files without rows) are among them.
    pub fn committed_files(
        &self,
    ) -> impl Future<Output = Result<Vec<(String, PartitionKey, OffsetRange)>>> + Send + 'static
    {
        let scanner: Scanner = self.backend.scanner();
        let group = self.config.group_id.clone();
        let markers = self.markers.clone();
        async move {
            let mut out = Vec::new();
            for file in scanner.committed().await? {
                let meta = &file.meta;
                if meta.group != group {
                    let path = &file.shown;
                    tracing::debug!(%path, group = %meta.group, "file of another consumer group ignored");
                    continue;
                }
                // Only a file of one partition, alone in its commit, counts as a marker.
                let ranges: Vec<(PartitionKey, OffsetRange)> = meta.ranges().collect();
                let marker = file.rows == 0 && ranges.len() == 1 && meta.files.len() == 1;
                for (key, range) in ranges {
                    markers.seen(&key, &file.rel, range.next, marker);
                    out.push((file.shown.clone(), key, range));
                }
            }
            Ok(out)
        }
    }

    fn check_usable(&self) -> Result<()> {
        match &self.poisoned {
            Some(why) => Err(SinkError::Poisoned(why.clone())),
            None => Ok(()),
        }
    }

    fn poison<T>(&mut self, r: Result<T>) -> Result<T> {
        if let Err(e) = &r {
            self.poisoned.get_or_insert_with(|| e.to_string());
        }
        r
    }

    async fn write_batch(
        &mut self,
        key: &PartitionKey,
        batch: &RecordBatch,
        offsets: OffsetRange,
    ) -> Result<()> {
        self.check_usable()?;
        if batch.schema().fields() != self.schema.fields() {
            return Err(SinkError::SchemaMismatch {
                partition: key.clone(),
                expected: format!("{:?}", self.schema.fields()),
                found: format!("{:?}", batch.schema().fields()),
            });
        }
        let bad = |reason: String| SinkError::Offsets {
            partition: key.clone(),
            offsets,
            reason,
        };
        if offsets.first < 0 || offsets.first > offsets.next {
            return Err(bad("not a range of offsets".into()));
        }
        if let Some(&prev) = self.written.get(key) {
            if offsets.first < prev {
                return Err(bad(format!("already wrote up to {prev}")));
            }
        }
        if batch.num_rows() == 0 {
            // No rows, but the offsets count as read: the open commit covers them, or a new
            // one that, if no rows join it, is committed as an offset marker.
            if offsets.next > offsets.first || self.commits.contains_key(key) {
                let commit = self
                    .commits
                    .entry(key.clone())
                    .or_insert_with(|| Commit::new(offsets));
                commit.range.next = offsets.next;
            }
            self.written.insert(key.clone(), offsets.next);
            return Ok(());
        }
        let parts = match &self.partition_by {
            Some(p) => p.split(key, batch)?,
            None => vec![(String::new(), batch.clone())],
        };
        let r = self.append(key, parts, offsets).await;
        self.poison(r)?;
        self.written.insert(key.clone(), offsets.next);
        Ok(())
    }

    async fn append(
        &mut self,
        key: &PartitionKey,
        parts: Vec<(String, RecordBatch)>,
        offsets: OffsetRange,
    ) -> Result<()> {
        let commit = self
            .commits
            .entry(key.clone())
            .or_insert_with(|| Commit::new(offsets));
        commit.range.next = offsets.next;
        for (dir, part) in parts {
            if !commit.files.contains_key(&dir) {
                let rel = join_rel(&dir, &file_name(key, commit.range.first, commit.id));
                let file = open_file(
                    &mut self.backend,
                    &self.schema,
                    &self.props,
                    key,
                    rel,
                    false,
                )
                .await?;
                commit.files.insert(dir.clone(), file);
            }
            let Some(file) = commit.files.get_mut(&dir) else {
                continue;
            };
            file.writer
                .write(&part)
                .await
                .map_err(|source| SinkError::Encode {
                    path: self.backend.display(&file.rel),
                    partition: key.clone(),
                    source,
                })?;
            file.rows += part.num_rows() as u64;
            file.bytes += batch_bytes(&part);
        }
        Ok(())
    }

    /// Finishes and commits the open files of `keys`, then deletes the offset markers that
    /// are superseded.
    async fn commit_partitions(&mut self, keys: Vec<PartitionKey>) -> Result<Vec<CommittedFile>> {
        self.check_usable()?;
        let mut out = Vec::new();
        for key in keys {
            let Some(commit) = self.commits.remove(&key) else {
                continue;
            };
            let r = self.commit_one(&key, commit).await;
            out.extend(self.poison(r)?);
        }
        self.delete_superseded_markers().await;
        Ok(out)
    }

    /// Deletes the offset markers that a durable newer file supersedes (see
    /// `parquet/markers.rs`). A failed deletion costs only a small file, and is retried after
    /// the next flush: it is logged, not returned.
    async fn delete_superseded_markers(&mut self) {
        for (key, rank) in self.markers.superseded() {
            match self.backend.remove(&rank.rel).await {
                Ok(()) => {
                    tracing::debug!(partition = %key, path = %self.backend.display(&rank.rel), next = rank.next, "superseded offset marker deleted");
                    self.markers.deleted(&key, &rank);
                }
                Err(e) => {
                    tracing::warn!(partition = %key, error = %e, "deleting a superseded offset marker failed (it holds no rows; retried after the next flush)")
                }
            }
        }
    }

    async fn commit_one(
        &mut self,
        key: &PartitionKey,
        mut commit: Commit,
    ) -> Result<Vec<CommittedFile>> {
        if commit.files.is_empty() {
            // Offsets without rows: an offset marker records where to resume, `[next, next)`,
            // as a reset does.
            commit.range.first = commit.range.next;
            let dir = self
                .partition_by
                .as_ref()
                .map(PartitionBy::marker_dir)
                .unwrap_or_default();
            let rel = join_rel(&dir, &file_name(key, commit.range.first, commit.id));
            let file =
                open_file(&mut self.backend, &self.schema, &self.props, key, rel, true).await?;
            commit.files.insert(dir, file);
        }
        let rels: Vec<String> = commit.files.values().map(|f| f.rel.clone()).collect();
        let meta = FileMeta::new(
            &self.config.group_id,
            key,
            commit.range,
            &commit.id.simple().to_string(),
            rels.clone(),
        );
        let json = meta.to_json();
        let marker = rels.len() == 1 && commit.files.values().all(|f| f.rows == 0);
        let mut finished = Vec::with_capacity(commit.files.len());
        let mut rows = Vec::with_capacity(commit.files.len());
        let mut files = commit.files.into_values();
        while let Some(mut f) = files.next() {
            f.writer
                .append_key_value_metadata(KeyValue::new(OFFSETS_KEY.to_owned(), json.clone()));
            if let Err(source) = f.writer.finish().await {
                let err = SinkError::Encode {
                    path: self.backend.display(&f.rel),
                    partition: key.clone(),
                    source,
                };
                // Nothing of this commit is visible yet: drop its files.
                Backend::discard(f.writer.into_inner()).await;
                for rest in files {
                    Backend::discard(rest.writer.into_inner()).await;
                }
                for done in finished {
                    let Finished { dest, .. } = done;
                    Backend::discard(dest).await;
                }
                return Err(err);
            }
            let bytes = f.writer.bytes_written() as u64;
            rows.push(f.rows);
            finished.push(Finished {
                dest: f.writer.into_inner(),
                bytes,
            });
        }
        let committed = self.backend.commit(finished).await?;
        // Durable now: the markers this commit supersedes may go.
        for rel in &rels {
            self.markers.seen(key, rel, commit.range.next, marker);
        }
        Ok(committed
            .into_iter()
            .zip(rows)
            .map(|((path, bytes), rows)| CommittedFile {
                path,
                partition: key.clone(),
                offsets: commit.range,
                rows,
                bytes,
            })
            .collect())
    }
}

impl Sink for ParquetSink {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    async fn write(
        &mut self,
        partition: &PartitionKey,
        batch: &RecordBatch,
        offsets: OffsetRange,
    ) -> Result<()> {
        self.write_batch(partition, batch, offsets).await
    }

    fn should_flush(&self) -> bool {
        let now = Instant::now();
        self.commits.values().any(|c| c.due(&self.config.roll, now))
    }

    async fn flush_due(&mut self) -> Result<Vec<CommittedFile>> {
        let now = Instant::now();
        let due = self
            .commits
            .iter()
            .filter(|(_, c)| c.due(&self.config.roll, now))
            .map(|(k, _)| k.clone())
            .collect();
        self.commit_partitions(due).await
    }

    async fn flush(&mut self) -> Result<Vec<CommittedFile>> {
        let all = self.commits.keys().cloned().collect();
        self.commit_partitions(all).await
    }

    fn committed_offsets(&self) -> impl Future<Output = Result<CommittedOffsets>> + Send {
        ParquetSink::committed_offsets(self)
    }

    async fn close(mut self) -> Result<Vec<CommittedFile>> {
        self.flush().await
    }
}

/// Creates the file `rel` of a commit of `key` and its Parquet writer. `alone`: the commit has
/// this one file (see [`Backend::create`]).
async fn open_file(
    backend: &mut Backend,
    schema: &SchemaRef,
    props: &WriterProperties,
    key: &PartitionKey,
    rel: String,
    alone: bool,
) -> Result<OpenFile> {
    let dest = backend.create(&rel, alone).await?;
    let writer = AsyncArrowWriter::try_new(dest, Arc::clone(schema), Some(props.clone())).map_err(
        |source| SinkError::Encode {
            path: backend.display(&rel),
            partition: key.clone(),
            source,
        },
    )?;
    Ok(OpenFile {
        rel,
        writer,
        rows: 0,
        bytes: 0,
    })
}

/// An object store client for `scheme://bucket/...`, configured from the environment.
#[cfg(feature = "cloud")]
pub(crate) fn cloud_store(scheme: &str, location: &str) -> Result<Arc<dyn ObjectStore>> {
    use object_store::aws::AmazonS3Builder;
    use object_store::azure::MicrosoftAzureBuilder;
    use object_store::gcp::GoogleCloudStorageBuilder;
    // reqwest is built without a bundled crypto provider (its default is aws-lc, which needs
    // a C toolchain and breaks the static build); use ring, which rustls already has here.
    // An error means a provider is installed already, which is as good.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let built: object_store::Result<Arc<dyn ObjectStore>> = match scheme {
        "s3" | "s3a" => AmazonS3Builder::from_env()
            .with_url(location)
            .build()
            .map(|s| Arc::new(s) as _),
        "gs" => GoogleCloudStorageBuilder::from_env()
            .with_url(location)
            .build()
            .map(|s| Arc::new(s) as _),
        "az" | "azure" | "abfs" | "abfss" => MicrosoftAzureBuilder::from_env()
            .with_url(location)
            .build()
            .map(|s| Arc::new(s) as _),
        other => {
            return Err(SinkError::Location {
                location: location.to_owned(),
                reason: format!("unknown scheme {other:?} (a directory, s3://, gs:// or az://)"),
            })
        }
    };
    built.map_err(|e| SinkError::Location {
        location: location.to_owned(),
        reason: e.to_string(),
    })
}

#[cfg(not(feature = "cloud"))]
pub(crate) fn cloud_store(_scheme: &str, location: &str) -> Result<Arc<dyn ObjectStore>> {
    Err(SinkError::Location {
        location: location.to_owned(),
        reason: "this kingest was built without the `cloud` feature: local directories only".into(),
    })
}
