//! The Delta Lake sink: record batches into a Delta table (a local directory or an object
//! store: `s3://`, `gs://`, `az://`), exactly once, several processes of one group writing one
//! table.
//!
//! # Writing
//!
//! Rows go into Parquet data files as in the Parquet sink (the same writer, the same roll
//! thresholds per Kafka partition, one file per partition value with `partition_by`), under
//! names no other writer uses (`[{column}={value}/]{topic}-{partition}-{first}-{id}.parquet`).
//! A data file is invisible to readers until the log names it, so it is written straight under
//! its final name (a local file is fsynced and renamed into place, an object upload completes)
//! before the commit that adds it.
//!
//! Each flush is one Delta commit, `_delta_log/{N:020}.json`, holding:
//! - `commitInfo` (`STREAMING UPDATE`, the app id as `queryId`, as Spark streaming and
//!   kafka-delta-ingest write it);
//! - one `txn` per Kafka partition flushed, `appId` `{app_id}:{topic}:{partition}` and
//!   `version` the offset to resume from (see `log.rs`);
//! - one `add` per data file, with `stats` (row count, minimum, maximum and null count per
//!   column: `stats.rs`) and `tags` naming the partition and offsets its rows came from (which
//!   `kingest reset-offsets --sink` uses).
//!
//! The commit is created with *put if absent*: exactly one writer gets version `N`. Rows and
//! offsets become visible together, in that one step, so a process killed at any moment leaves
//! either the whole flush or nothing of it (its data files, unreferenced, are what `VACUUM`
//! removes). [`Sink::committed_offsets`] replays the log's `txn` actions of the job's app id and
//! the engine resumes each partition there. Offsets that advanced without rows (filtered or
//! dead-lettered records) are committed as a `txn` alone: no file is needed.
//!
//! # Several writers
//!
//! When version `N` exists already, another writer committed first. The sink reads the commits
//! it missed and checks, for every partition in its own commit, that the table still records
//! the offset its rows start from: a partition is read by one group member at a time, so any
//! other value means another process took the partition over (this one lost it without
//! noticing, e.g. paused past its session timeout). Then its commit is dropped and the sink
//! stops with [`DeltaError::Fenced`], so the partition is never committed twice. Otherwise
//! (another partition's commit, or another job's) it retries at the next version: appends never
//! conflict with appends, and no commit of another process is ever overwritten or lost.
//!
//! # Checkpoints
//!
//! The writer of every `checkpoint_interval`-th version (`delta.checkpointInterval` when the
//! table sets it) writes a checkpoint of it (`checkpoint.rs`), bounded in size as that module
//! explains. Writing one costs a replay of the table's files; a failure is logged, and the next
//! interval tries again (readers only read more JSON meanwhile).
//!
//! # What this writer implements
//!
//! Appends to tables of reader version 1 (or 3 with `timestampNtz`) and writer version up to 4
//! (or 7 with `appendOnly`, `invariants`, `checkConstraints`, `changeDataFeed`,
//! `generatedColumns`, `timestampNtz`, the constraints being absent); tables needing more
//! (deletion vectors, column mapping, row tracking, ...) are refused at open with the reason.
//! A missing table is created from the job's columns (`schema.rs`).

mod checkpoint;
mod commit;
mod error;
mod log;
mod logstore;
mod maintain;
mod optimize;
mod reset;
mod schema;
mod stats;
mod table;
mod vacuum;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use object_store::ObjectStore;
use parquet::arrow::AsyncArrowWriter;
use parquet::file::properties::WriterProperties;
use uuid::Uuid;

pub use self::error::DeltaError;
use self::log::TableState;
use self::logstore::LogStore;
pub use self::maintain::DeltaMaintenance;
pub use self::reset::{
    apply_reset, plan_reset, DeltaPartitionReset, DeltaResetFile, DeltaResetPlan,
};
use self::schema::TableSchema;
pub use self::table::CheckpointDone;
use super::layout::{escape_segment, file_name, join_rel, NULL_PARTITION};
use super::parquet::{ParquetCompression, RollPolicy, StoreRetry};
use super::store::{cloud_store, Backend, Dest};
use super::{CommittedFile, CommittedOffsets, OffsetRange, PartitionKey, Result, Sink, SinkError};

/// How to open a [`DeltaSink`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeltaSinkConfig {
    /// The table: a local directory (or `file:///dir`), or `s3://bucket/prefix`,
    /// `gs://bucket/prefix`, `az://container/prefix` (credentials from the usual environment
    /// variables, as for the Parquet sink).
    pub location: String,
    /// The Kafka consumer group.
    pub group_id: String,
    /// The application id of the `txn` actions (kafka-delta-ingest's `app_id`); defaults to
    /// the group.
    pub app_id: Option<String>,
    /// When each Kafka partition's files are committed.
    pub roll: RollPolicy,
    /// Data file page compression.
    pub compression: ParquetCompression,
    /// The partition column (see the module docs of `schema.rs` for timestamps).
    pub partition_by: Option<String>,
    /// Upper bound of a row group's buffered size.
    pub row_group_bytes: usize,
    /// Object stores only: upload part size.
    pub upload_part_bytes: usize,
    /// A checkpoint every this many versions, unless the table sets
    /// `delta.checkpointInterval`.
    pub checkpoint_interval: u64,
    /// `metaData.name` of a table this sink creates.
    pub table_name: Option<String>,
    /// Commit attempts in a row that other writers may win before the flush fails.
    pub max_commit_attempts: u32,
    /// Object store options (`aws_endpoint`, `azure_storage_account_name`, ...), applied over
    /// the environment.
    pub storage: BTreeMap<String, String>,
    /// How failed object store requests are retried.
    pub retry: StoreRetry,
}

impl DeltaSinkConfig {
    /// Defaults for everything but where and for which group.
    pub fn new(location: impl Into<String>, group_id: impl Into<String>) -> Self {
        Self {
            location: location.into(),
            group_id: group_id.into(),
            app_id: None,
            roll: RollPolicy::default(),
            compression: ParquetCompression::default(),
            partition_by: None,
            row_group_bytes: 64 << 20,
            upload_part_bytes: 10 << 20,
            checkpoint_interval: 100,
            table_name: None,
            max_commit_attempts: 1000,
            storage: BTreeMap::new(),
            retry: StoreRetry::default(),
        }
    }

    /// The `txn` application id: [`DeltaSinkConfig::app_id`] or the group.
    pub fn app_id(&self) -> &str {
        self.app_id.as_deref().unwrap_or(&self.group_id)
    }
}

/// One data file being written.
struct OpenFile {
    rel: String,
    writer: AsyncArrowWriter<Dest>,
    rows: u64,
    bytes: u64,
}

/// The rows and offsets of one Kafka partition not committed yet.
struct Open {
    id: Uuid,
    range: OffsetRange,
    opened: Instant,
    /// By partition value (`None`: unpartitioned, or the null partition).
    files: BTreeMap<Option<String>, (String, OpenFile)>,
}

impl Open {
    fn due(&self, roll: &RollPolicy, now: Instant) -> bool {
        now.duration_since(self.opened) >= roll.max_age
            || self
                .files
                .values()
                .any(|(_, f)| f.rows >= roll.max_rows || f.bytes >= roll.max_bytes)
    }
}

/// Writes record batches into a Delta table. See the [module docs](self).
pub struct DeltaSink {
    config: DeltaSinkConfig,
    table: TableSchema,
    props: WriterProperties,
    backend: Backend,
    log: LogStore,
    /// The log as far as read (no files: an appending writer needs the txns only); shared
    /// with [`Sink::committed_offsets`]'s future.
    state: Arc<Mutex<TableState>>,
    open: BTreeMap<PartitionKey, Open>,
    written: HashMap<PartitionKey, i64>,
    checkpoint_interval: i64,
    indexed_columns: usize,
    poisoned: Option<String>,
}

impl fmt::Debug for DeltaSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeltaSink")
            .field("location", &self.config.location)
            .field("app_id", &self.config.app_id())
            .field("open_partitions", &self.open.keys().collect::<Vec<_>>())
            .field("poisoned", &self.poisoned)
            .finish_non_exhaustive()
    }
}

/// A table location opened: the local root (a directory), the log store, the object store
/// (otherwise) and the table's prefix in it.
type Located = (
    Option<PathBuf>,
    LogStore,
    Option<Arc<dyn ObjectStore>>,
    String,
);

/// The data file backend and the log store of a table location.
fn locate(config: &DeltaSinkConfig) -> Result<Located> {
    let location = &config.location;
    let local = match location.split_once("://") {
        None => Some(PathBuf::from(location)),
        Some(("file", path)) => Some(PathBuf::from(path)),
        Some(_) => None,
    };
    if let Some(root) = local {
        return Ok((
            Some(root.clone()),
            LogStore::Local { root },
            None,
            String::new(),
        ));
    }
    let (scheme, rest) = location.split_once("://").unwrap_or_default();
    let store = cloud_store(scheme, location, &config.storage, &config.retry)?;
    let prefix = rest
        .split_once('/')
        .map(|(_, p)| p)
        .unwrap_or("")
        .trim_matches('/')
        .to_owned();
    let log = LogStore::Store {
        store: store.clone(),
        prefix: prefix.clone(),
        display: location.trim_end_matches('/').to_owned(),
    };
    Ok((None, log, Some(store), prefix))
}

impl DeltaSink {
    /// Opens (creating it from `schema` if it does not exist) the table at
    /// `config.location`, checking that its protocol, schema and partitioning fit the job.
    pub async fn open(config: DeltaSinkConfig, schema: SchemaRef) -> Result<Self> {
        let (local, log, store, prefix) = locate(&config)?;
        let backend = match (local, store) {
            (Some(root), _) => Backend::local(root).await?,
            (None, Some(store)) => Backend::store(
                store,
                &prefix,
                config.location.trim_end_matches('/').to_owned(),
                false,
                config.upload_part_bytes,
            )?,
            (None, None) => unreachable!("locate gives a root or a store"),
        };
        Self::with_parts(backend, log, config, schema).await
    }

    /// Opens the table in folder `prefix` of `store` (any [`ObjectStore`]; the tests use the
    /// in-memory one). `config.location` is ignored.
    pub async fn open_object_store(
        store: Arc<dyn ObjectStore>,
        prefix: &str,
        config: DeltaSinkConfig,
        schema: SchemaRef,
    ) -> Result<Self> {
        let prefix = prefix.trim_matches('/').to_owned();
        let display = format!("{store}/{prefix}");
        let backend = Backend::store(
            store.clone(),
            &prefix,
            display.clone(),
            false,
            config.upload_part_bytes,
        )?;
        let log = LogStore::Store {
            store,
            prefix,
            display,
        };
        Self::with_parts(backend, log, config, schema).await
    }

    async fn with_parts(
        backend: Backend,
        log: LogStore,
        config: DeltaSinkConfig,
        schema: SchemaRef,
    ) -> Result<Self> {
        let shown = log.display("");
        let named = |e: SinkError| match e {
            SinkError::Delta { table, source } if table.is_empty() => SinkError::Delta {
                table: shown.clone(),
                source,
            },
            other => other,
        };
        let table = TableSchema::new(&schema, config.partition_by.as_deref()).map_err(named)?;
        let recovery = backend.recover(Duration::from_secs(3600)).await?;
        if !recovery.removed.is_empty() {
            tracing::info!(removed = recovery.removed.len(), table = %shown, "unfinished data files of an earlier process removed");
        }
        let stale = log.remove_stale_tmp(Duration::from_secs(3600)).await?;
        if stale > 0 {
            tracing::info!(removed = stale, table = %shown, "temporary log files of an earlier process removed");
        }
        let mut state = table::load(&log, false, None).await?;
        if state.version < 0 {
            commit::create(&log, &table, &config).await?;
            state = table::load(&log, false, None).await?;
        }
        let (Some(protocol), Some(metadata)) = (&state.protocol, &state.metadata) else {
            return Err(named(SinkError::Delta {
                table: String::new(),
                source: Box::new(DeltaError::Unsupported(format!(
                    "version {} of the log has no protocol or metaData",
                    state.version
                ))),
            }));
        };
        table.check_table(protocol, metadata).map_err(named)?;
        let checkpoint_interval = metadata
            .property("delta.checkpointInterval")
            .and_then(|v| v.parse::<i64>().ok())
            .filter(|v| *v > 0)
            .unwrap_or(config.checkpoint_interval.max(1) as i64);
        let indexed_columns = match metadata
            .property("delta.dataSkippingNumIndexedCols")
            .and_then(|v| v.parse::<i64>().ok())
        {
            Some(n) if n < 0 => usize::MAX,
            Some(n) => n as usize,
            None => stats::DEFAULT_INDEXED_COLUMNS,
        };
        let props = WriterProperties::builder()
            .set_compression(config.compression.to_parquet())
            .set_max_row_group_bytes(Some(config.row_group_bytes))
            .set_created_by(format!("kingest {}", env!("CARGO_PKG_VERSION")))
            .build();
        Ok(Self {
            config,
            table,
            props,
            backend,
            log,
            state: Arc::new(Mutex::new(state)),
            open: BTreeMap::new(),
            written: HashMap::new(),
            checkpoint_interval,
            indexed_columns,
            poisoned: None,
        })
    }

    /// The configuration the sink was opened with.
    pub fn config(&self) -> &DeltaSinkConfig {
        &self.config
    }

    /// The table version read or written last.
    pub fn version(&self) -> i64 {
        self.lock_state().version
    }

    fn lock_state(&self) -> std::sync::MutexGuard<'_, TableState> {
        // A panic while holding the lock leaves a state that is at worst behind: recover it.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The offsets this job's app id recorded in the table at `location`, per partition,
    /// without creating the table or checking the job's columns (for `kingest check`): empty
    /// when there is no table.
    pub async fn read_offsets(config: &DeltaSinkConfig) -> Result<CommittedOffsets> {
        let (_, log, _, _) = locate(config)?;
        let state = table::load(&log, false, None).await?;
        Ok(to_committed(&state, config.app_id()))
    }

    /// Writes a checkpoint of the table's current version now (`kingest` does at every
    /// `checkpoint_interval`-th version by itself).
    pub async fn checkpoint(&self) -> Result<CheckpointDone> {
        let v = self.version();
        table::write_checkpoint(&self.log, v).await
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
        if batch.schema().fields() != self.table.input.fields() {
            return Err(SinkError::SchemaMismatch {
                partition: key.clone(),
                expected: format!("{:?}", self.table.input.fields()),
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
        if offsets.next > offsets.first || self.open.contains_key(key) || batch.num_rows() > 0 {
            let open = self.open.entry(key.clone()).or_insert_with(|| Open {
                id: Uuid::new_v4(),
                range: offsets,
                opened: Instant::now(),
                files: BTreeMap::new(),
            });
            open.range.next = offsets.next;
        }
        if batch.num_rows() > 0 {
            let r = self.append(key, batch).await;
            self.poison(r)?;
        }
        self.written.insert(key.clone(), offsets.next);
        Ok(())
    }

    async fn append(&mut self, key: &PartitionKey, batch: &RecordBatch) -> Result<()> {
        let parts = self.table.partitioning.split(key, batch)?;
        let Some(open) = self.open.get_mut(key) else {
            return Ok(());
        };
        for (value, part) in parts {
            let part = self.table.to_file(key, &part)?;
            if !open.files.contains_key(&value) {
                let dir = match self.table.partitioning.column() {
                    None => String::new(),
                    Some(column) => {
                        let mut dir = String::new();
                        escape_segment(column, &mut dir);
                        dir.push('=');
                        match &value {
                            Some(v) => escape_segment(v, &mut dir),
                            None => dir.push_str(NULL_PARTITION),
                        }
                        dir
                    }
                };
                let rel = join_rel(&dir, &file_name(key, open.range.first, open.id));
                let dest = self.backend.create(&rel, true).await?;
                let writer = AsyncArrowWriter::try_new(
                    dest,
                    self.table.file.clone(),
                    Some(self.props.clone()),
                )
                .map_err(|source| SinkError::Encode {
                    path: self.backend.display(&rel),
                    partition: key.clone(),
                    source,
                })?;
                let file = OpenFile {
                    rel: rel.clone(),
                    writer,
                    rows: 0,
                    bytes: 0,
                };
                open.files.insert(value.clone(), (rel, file));
            }
            let Some((_, file)) = open.files.get_mut(&value) else {
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
            file.bytes += super::layout::batch_bytes(&part);
        }
        Ok(())
    }

    /// Finishes the data files of `keys` and commits them, with their offsets, as one version.
    async fn commit_partitions(&mut self, keys: Vec<PartitionKey>) -> Result<Vec<CommittedFile>> {
        self.check_usable()?;
        let opens: Vec<(PartitionKey, Open)> = keys
            .into_iter()
            .filter_map(|k| self.open.remove(&k).map(|o| (k, o)))
            .collect();
        if opens.is_empty() {
            return Ok(Vec::new());
        }
        let r = self.commit(opens).await;
        self.poison(r)
    }
}

/// The committed offsets `app_id` recorded in `state`.
fn to_committed(state: &TableState, app_id: &str) -> CommittedOffsets {
    state
        .offsets(app_id)
        .into_iter()
        .map(|(k, v)| ((k.topic, k.partition), v))
        .collect()
}

impl Sink for DeltaSink {
    fn schema(&self) -> &SchemaRef {
        &self.table.input
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
        self.open.values().any(|o| o.due(&self.config.roll, now))
    }

    async fn flush_due(&mut self) -> Result<Vec<CommittedFile>> {
        let now = Instant::now();
        let due = self
            .open
            .iter()
            .filter(|(_, o)| o.due(&self.config.roll, now))
            .map(|(k, _)| k.clone())
            .collect();
        self.commit_partitions(due).await
    }

    async fn flush(&mut self) -> Result<Vec<CommittedFile>> {
        let all = self.open.keys().cloned().collect();
        self.commit_partitions(all).await
    }

    fn committed_offsets(&self) -> impl Future<Output = Result<CommittedOffsets>> + Send {
        let log = self.log.clone();
        let shared = self.state.clone();
        let app_id = self.config.app_id().to_owned();
        async move {
            let mut state = shared.lock().unwrap_or_else(|p| p.into_inner()).clone();
            table::update(&log, &mut state).await?;
            let out = to_committed(&state, &app_id);
            let mut s = shared.lock().unwrap_or_else(|p| p.into_inner());
            if s.version < state.version {
                *s = state;
            }
            Ok(out)
        }
    }

    async fn close(mut self) -> Result<Vec<CommittedFile>> {
        self.flush().await
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;

#[cfg(test)]
#[path = "maintain_tests.rs"]
mod maintain_tests;
