//! The Iceberg sink: record batches into an Apache Iceberg table (format version 2) through a
//! SQL or REST catalog, exactly once, with several processes of one consumer group writing
//! one table.
//!
//! # Writing
//!
//! The table is created from the job's columns if the catalog has none by that name (types:
//! see `types.rs`; partition spec from `partition_by`, see `partition.rs`); an existing table
//! must accept the columns and, when `partition_by` is given, be partitioned that way. Each
//! Kafka partition has an open set of data files, one per table partition its rows fall in,
//! written with our Parquet writer (field ids in the schema, values converted as the table's
//! types want) straight to their final names under `{table}/data/`: nothing references them
//! until a commit does.
//!
//! # Committing
//!
//! When one partition's files reach a roll threshold ([`RollPolicy`]: rows, bytes, age) every
//! open file is finished and committed together as one snapshot (a fast append: one new
//! manifest, the parent's manifests reused; see `manifest.rs`), so a flush is one snapshot,
//! as the Iceberg Kafka Connect sink commits once per interval. The snapshot's summary holds
//! the group's offsets (`kingest.offsets.<group>`, see `metadata.rs`): the table's data and
//! the offsets after it change in one catalog compare-and-swap. A restarted job resumes from
//! the newest snapshot carrying them ([`IcebergSink::committed_offsets`]).
//!
//! # Several writers
//!
//! A commit reads the table, merges its partitions' new offsets into the group's offsets
//! there (keeping every other partition's, whoever wrote them), and swaps; when another
//! writer swapped first, it reads again and retries with backoff, rewriting only the manifest
//! list and metadata. Before each attempt it checks every partition it commits: the table's
//! offset for it must be where this process started reading (or absent). If another writer
//! committed that partition meanwhile (this process lost it without noticing), its files are
//! left out and the sink fails with [`SinkError::CommitConflict`], so no range is committed
//! twice. A commit whose answer was lost (a dropped connection) is found on the next read by
//! its `kingest.commit-id` and not repeated.

mod catalog;
mod commit;
mod compact;
mod entries;
mod expire;
mod io;
mod manifest;
mod metadata;
mod orphans;
mod partition;
mod transform;
mod types;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arrow_array::RecordBatch;
use arrow_schema::{Field, Schema, SchemaRef};
use parquet::file::properties::WriterProperties;
use uuid::Uuid;

pub use self::catalog::CatalogConfig;
use self::catalog::{Catalog, Loaded, TableIdent};
pub use self::compact::{open_maintenance, IcebergMaintenance, IcebergRetention};
use self::io::{StoreSettings, TableIo};
use self::manifest::DataFile;
use self::metadata::{GroupOffsets, TableMetadata};
use self::partition::{PartKey, Spec};
use self::types::IceSchema;
use super::datafile::DataFileWriter;
use super::layout::{file_name, join_rel};
use super::parquet::{ParquetCompression, RollPolicy};
use super::store::StoreRetry;
use super::{CommittedFile, CommittedOffsets, OffsetRange, PartitionKey, Result, Sink, SinkError};

/// How to open an [`IcebergSink`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IcebergSinkConfig {
    /// The catalog.
    pub catalog: CatalogConfig,
    /// `namespace.table` (namespace levels separated by dots).
    pub table: String,
    /// Where new tables go: `{warehouse}/{namespace}/{table}` (a directory, `file://`,
    /// `s3://`, `gs://`, `az://`). Needed to create a table in a SQL catalog; a REST
    /// catalog's server places tables itself when it is not given.
    pub warehouse: Option<String>,
    /// The Kafka consumer group whose offsets the snapshots carry.
    pub group_id: String,
    /// When to commit.
    pub roll: RollPolicy,
    /// Data file compression.
    pub compression: ParquetCompression,
    /// Partition spec items (`day(ts)`, `bucket(16, id)`, `country`); empty: a new table is
    /// unpartitioned and an existing one keeps its spec.
    pub partition_by: Vec<String>,
    /// Properties of a table this sink creates.
    pub properties: BTreeMap<String, String>,
    /// Upper bound of a row group's buffered size.
    pub row_group_bytes: usize,
    /// Object stores: upload part size.
    pub upload_part_bytes: usize,
    /// Object store options (`aws_endpoint`, `azure_storage_account_name`, ...) over the
    /// environment, for data and metadata files alike: as the Parquet and Delta sinks'.
    pub storage: BTreeMap<String, String>,
    /// How failed object store requests are retried, as the Parquet and Delta sinks'.
    pub retry: StoreRetry,
    /// How long a commit keeps retrying conflicts and lost answers before failing.
    pub commit_timeout: Duration,
}

impl IcebergSinkConfig {
    /// Defaults for everything but the catalog, table and group.
    pub fn new(
        catalog: CatalogConfig,
        table: impl Into<String>,
        group_id: impl Into<String>,
    ) -> Self {
        Self {
            catalog,
            table: table.into(),
            warehouse: None,
            group_id: group_id.into(),
            roll: RollPolicy::default(),
            compression: ParquetCompression::default(),
            partition_by: Vec::new(),
            properties: BTreeMap::new(),
            row_group_bytes: 64 << 20,
            upload_part_bytes: 10 << 20,
            storage: BTreeMap::new(),
            retry: StoreRetry::default(),
            commit_timeout: Duration::from_secs(600),
        }
    }
}

impl IcebergSinkConfig {
    /// How the table's object store client is made.
    pub(crate) fn store_settings(&self) -> StoreSettings {
        StoreSettings {
            options: self.storage.clone(),
            retry: self.retry,
        }
    }
}

/// The open data files of one Kafka partition.
struct Open {
    range: OffsetRange,
    opened: Instant,
    commit: Uuid,
    files: BTreeMap<PartKey, DataFileWriter>,
}

impl Open {
    fn due(&self, roll: &RollPolicy, now: Instant) -> bool {
        now.duration_since(self.opened) >= roll.max_age
            || self
                .files
                .values()
                .any(|f| f.rows >= roll.max_rows || f.bytes >= roll.max_bytes)
    }
}

/// Writes record batches into an Iceberg table. See the [module docs](self).
pub struct IcebergSink {
    config: IcebergSinkConfig,
    ident: TableIdent,
    catalog: Arc<Catalog>,
    schema: SchemaRef,
    /// The data files' schema: the table's names and field ids, converted types.
    file_schema: SchemaRef,
    /// Per column, whether its values are cast for the data files.
    casts: Vec<bool>,
    table_schema: IceSchema,
    spec: Spec,
    io: TableIo,
    location: String,
    props: WriterProperties,
    open: BTreeMap<PartitionKey, Open>,
    written: HashMap<PartitionKey, i64>,
    /// The table as last read or committed, to start the next commit from.
    last: Option<Loaded>,
    poisoned: Option<String>,
}

impl fmt::Debug for IcebergSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IcebergSink")
            .field("table", &self.ident.to_string())
            .field("catalog", &self.config.catalog.label())
            .field("group_id", &self.config.group_id)
            .field("open_partitions", &self.open.keys().collect::<Vec<_>>())
            .field("poisoned", &self.poisoned)
            .finish_non_exhaustive()
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as i64
}

impl IcebergSink {
    /// Connects to the catalog, creates the table if it is missing, and checks that batches
    /// of `schema` can go into it.
    pub async fn open(config: IcebergSinkConfig, schema: SchemaRef) -> Result<IcebergSink> {
        let ident = TableIdent::parse(&config.table).map_err(|reason| SinkError::Table {
            table: config.table.clone(),
            reason,
        })?;
        let table_err = |reason: String| SinkError::Table {
            table: ident.to_string(),
            reason,
        };
        let items = config
            .partition_by
            .iter()
            .map(|s| partition::parse_item(s))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(table_err)?;
        let catalog = Arc::new(Catalog::connect(&config.catalog, config.store_settings()).await?);
        let loaded = match catalog.load(&ident).await? {
            Some(l) => l,
            None => create_table(&catalog, &ident, &config, &schema, &items).await?,
        };
        let m = &loaded.metadata;
        let table_schema = m.schema().map_err(table_err)?;
        let file_schema = types::file_schema(&schema, &table_schema).map_err(|problems| {
            table_err(format!(
                "the job's columns do not fit the table: {}",
                problems.join("; ")
            ))
        })?;
        let spec_json = m.default_spec().map_err(table_err)?;
        let spec = Spec::from_json(spec_json, &table_schema, &file_schema).map_err(table_err)?;
        if !items.is_empty() {
            let wanted =
                Spec::from_items(&items, &table_schema, &file_schema).map_err(table_err)?;
            if !wanted.same_as(&spec) {
                return Err(table_err(format!(
                    "the table is partitioned by {}, the job says partition_by = {}",
                    spec.describe(&table_schema),
                    wanted.describe(&table_schema)
                )));
            }
        }
        let casts = schema
            .fields()
            .iter()
            .zip(file_schema.fields())
            .map(|(a, b)| types::needs_cast(a.data_type(), b.data_type()))
            .collect();
        let location = m.location().to_owned();
        let io = catalog.io(&location)?;
        let props = WriterProperties::builder()
            .set_compression(config.compression.to_parquet())
            .set_max_row_group_bytes(Some(config.row_group_bytes))
            .set_created_by(format!("kingest {}", env!("CARGO_PKG_VERSION")))
            .build();
        tracing::info!(table = %ident, catalog = %config.catalog.label(), %location,
            partitioning = %spec.describe(&table_schema), "Iceberg table ready");
        Ok(IcebergSink {
            config,
            ident,
            catalog,
            schema,
            file_schema,
            casts,
            table_schema,
            spec,
            io,
            location,
            props,
            open: BTreeMap::new(),
            written: HashMap::new(),
            last: Some(loaded),
            poisoned: None,
        })
    }

    /// The table as `namespace.table`.
    pub fn table(&self) -> String {
        self.ident.to_string()
    }

    /// Per partition, the next offset recorded for this group by the newest snapshot that
    /// records it.
    pub fn committed_offsets(
        &self,
    ) -> impl Future<Output = Result<CommittedOffsets>> + Send + 'static {
        let catalog = Arc::clone(&self.catalog);
        let ident = self.ident.clone();
        let group = self.config.group_id.clone();
        async move {
            let Some(loaded) = catalog.load(&ident).await? else {
                return Ok(CommittedOffsets::new());
            };
            let offsets =
                loaded
                    .metadata
                    .group_offsets(&group)
                    .map_err(|reason| SinkError::Table {
                        table: ident.to_string(),
                        reason,
                    })?;
            Ok(flatten(&offsets))
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

    /// The batch as the data files store it: converted columns, the table's field ids.
    fn file_batch(&self, key: &PartitionKey, batch: &RecordBatch) -> Result<RecordBatch> {
        let arrow = |source| SinkError::Arrow {
            context: "converting a batch for the Iceberg table",
            partition: key.clone(),
            source,
        };
        let mut columns = Vec::with_capacity(batch.num_columns());
        let mut fields: Vec<Field> = Vec::with_capacity(batch.num_columns());
        for ((col, cast), f) in batch
            .columns()
            .iter()
            .zip(&self.casts)
            .zip(self.file_schema.fields())
        {
            let col = if *cast {
                arrow_cast::cast(col, f.data_type()).map_err(arrow)?
            } else {
                Arc::clone(col)
            };
            fields.push(
                Field::new(f.name(), col.data_type().clone(), f.is_nullable())
                    .with_metadata(f.metadata().clone()),
            );
            columns.push(col);
        }
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(arrow)
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
        if batch.num_rows() == 0 && offsets.next == offsets.first && !self.open.contains_key(key) {
            // Nothing read, nothing to record.
            self.written.insert(key.clone(), offsets.next);
            return Ok(());
        }
        let open = self.open.entry(key.clone()).or_insert_with(|| Open {
            range: offsets,
            opened: Instant::now(),
            commit: Uuid::new_v4(),
            files: BTreeMap::new(),
        });
        open.range.next = offsets.next;
        self.written.insert(key.clone(), offsets.next);
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let r = self.append(key, batch).await;
        self.poison(r)
    }

    async fn append(&mut self, key: &PartitionKey, batch: &RecordBatch) -> Result<()> {
        let file_batch = self.file_batch(key, batch)?;
        let parts = self
            .spec
            .split(&file_batch)
            .map_err(|reason| SinkError::PartitionColumn {
                column: self.spec.describe(&self.table_schema),
                reason,
            })?;
        let Some(open) = self.open.get_mut(key) else {
            return Ok(());
        };
        for (pkey, part) in parts {
            if !open.files.contains_key(&pkey) {
                let dir = match self.spec.path(&pkey) {
                    p if p.is_empty() => "data".to_owned(),
                    p => format!("data/{p}"),
                };
                let name = file_name(key, open.range.first, open.commit);
                let location = format!("{}/{}", self.location, join_rel(&dir, &name));
                let path = self.io.path(&location)?;
                let w = DataFileWriter::create(
                    Arc::clone(self.io.store()),
                    path,
                    location.clone(),
                    Arc::clone(&self.file_schema),
                    self.props.clone(),
                    self.config.upload_part_bytes,
                )
                .map_err(|source| SinkError::Encode {
                    path: location,
                    partition: key.clone(),
                    source,
                })?;
                open.files.insert(pkey.clone(), w);
            }
            if let Some(w) = open.files.get_mut(&pkey) {
                w.write(&part).await.map_err(|source| SinkError::Encode {
                    path: w.location.clone(),
                    partition: key.clone(),
                    source,
                })?;
            }
        }
        Ok(())
    }

    /// Finishes every open file and commits them, with every open partition's offsets, as
    /// one snapshot.
    async fn commit_all(&mut self) -> Result<Vec<CommittedFile>> {
        self.check_usable()?;
        if self.open.is_empty() {
            return Ok(Vec::new());
        }
        let open = std::mem::take(&mut self.open);
        let r = self.commit_open(open).await;
        self.poison(r)
    }

    async fn commit_open(
        &mut self,
        open: BTreeMap<PartitionKey, Open>,
    ) -> Result<Vec<CommittedFile>> {
        let mut parts: Vec<(PartitionKey, OffsetRange, Vec<DataFile>)> = Vec::new();
        let mut failed = None;
        for (key, o) in open {
            let mut files = Vec::with_capacity(o.files.len());
            for (pkey, w) in o.files {
                if failed.is_some() {
                    w.abort().await;
                    continue;
                }
                let location = w.location.clone();
                match w.finish().await {
                    Ok(done) => {
                        files.push(DataFile::new(&done, pkey, &self.table_schema));
                    }
                    Err(source) => {
                        failed = Some(SinkError::Encode {
                            path: location,
                            partition: key.clone(),
                            source,
                        })
                    }
                }
            }
            parts.push((key, o.range, files));
        }
        if let Some(e) = failed {
            return Err(e);
        }
        for (_, _, files) in &parts {
            for f in files {
                self.io.durable(&f.location).await?;
            }
        }
        let committer = commit::Committer {
            sink: self,
            commit_id: Uuid::new_v4().simple().to_string(),
        };
        committer.run(parts).await
    }
}

/// The group's offsets in the table `config` names, read from its catalog without creating
/// the table (none when it does not exist) or checking the job's columns: for `kingest check`
/// and `reset-offsets`.
pub async fn table_offsets(config: &IcebergSinkConfig) -> Result<CommittedOffsets> {
    let ident = TableIdent::parse(&config.table).map_err(|reason| SinkError::Table {
        table: config.table.clone(),
        reason,
    })?;
    let catalog = Catalog::connect(&config.catalog, config.store_settings()).await?;
    let Some(loaded) = catalog.load(&ident).await? else {
        return Ok(CommittedOffsets::new());
    };
    let offsets = loaded
        .metadata
        .group_offsets(&config.group_id)
        .map_err(|reason| SinkError::Table {
            table: ident.to_string(),
            reason,
        })?;
    Ok(flatten(&offsets))
}

/// Records `offsets` as the group's in the table `config` names (`kingest reset-offsets
/// --sink`): a snapshot adding no files, whose summary carries the group's offsets with these
/// in place of theirs. Returns the new snapshot's id (`None`: nothing to change).
pub async fn record_offsets(
    config: &IcebergSinkConfig,
    offsets: &CommittedOffsets,
) -> Result<Option<i64>> {
    let ident = TableIdent::parse(&config.table).map_err(|reason| SinkError::Table {
        table: config.table.clone(),
        reason,
    })?;
    let catalog = Catalog::connect(&config.catalog, config.store_settings()).await?;
    let mut group = GroupOffsets::new();
    for ((topic, partition), next) in offsets {
        group
            .entry(topic.clone())
            .or_default()
            .insert(*partition, *next);
    }
    commit::record_offsets(&catalog, &ident, &config.group_id, &group).await
}

fn flatten(offsets: &GroupOffsets) -> CommittedOffsets {
    let mut out = CommittedOffsets::new();
    for (topic, parts) in offsets {
        for (p, next) in parts {
            out.insert((topic.clone(), *p), *next);
        }
    }
    out
}

async fn create_table(
    catalog: &Catalog,
    ident: &TableIdent,
    config: &IcebergSinkConfig,
    schema: &SchemaRef,
    items: &[partition::PartitionItem],
) -> Result<Loaded> {
    let table_err = |reason: String| SinkError::Table {
        table: ident.to_string(),
        reason,
    };
    let ice = types::schema_for(schema).map_err(table_err)?;
    let file_schema = types::file_schema(schema, &ice).map_err(|p| table_err(p.join("; ")))?;
    let spec = Spec::from_items(items, &ice, &file_schema).map_err(table_err)?;
    let location = match &config.warehouse {
        Some(w) => format!(
            "{}/{}/{}",
            io::normalize_location(w)?,
            ident.namespace_text(),
            ident.name
        ),
        None if catalog.writes_metadata() => {
            return Err(table_err(
                "the table does not exist and sink.warehouse is not set: set it to where new \
                 tables go"
                    .into(),
            ))
        }
        None => String::new(),
    };
    let mut properties = BTreeMap::from([
        ("write.format.default".to_owned(), "parquet".to_owned()),
        (
            "write.parquet.compression-codec".to_owned(),
            match config.compression {
                ParquetCompression::Zstd => "zstd",
                ParquetCompression::Snappy => "snappy",
                ParquetCompression::Lz4 => "lz4",
                ParquetCompression::Gzip => "gzip",
                ParquetCompression::None => "uncompressed",
            }
            .to_owned(),
        ),
        // Old metadata files go as commits drop them from `metadata-log`, so a long-running
        // job's metadata directory stays bounded (Java's default keeps them forever).
        (
            "write.metadata.delete-after-commit.enabled".to_owned(),
            "true".to_owned(),
        ),
        (
            "write.metadata.previous-versions-max".to_owned(),
            "100".to_owned(),
        ),
    ]);
    properties.extend(config.properties.clone());
    let uuid = Uuid::new_v4();
    let m = TableMetadata::from_value(metadata::new_table(
        &uuid.to_string(),
        &location,
        &ice,
        &spec,
        &properties,
        now_ms(),
    ))
    .map_err(table_err)?;
    let metadata_location = format!("{location}/metadata/00000-{uuid}.metadata.json");
    let io = if location.is_empty() {
        None
    } else {
        Some(catalog.io(&location)?)
    };
    let created = match &io {
        Some(io) => catalog.create(ident, &m, &metadata_location, io).await?,
        None => {
            // A REST server writes the metadata: no storage of ours is touched.
            let unused = catalog.io("/")?;
            catalog.create(ident, &m, "", &unused).await?
        }
    };
    match created {
        Some(l) => {
            tracing::info!(table = %ident, location = %l.metadata.location(), "created the Iceberg table");
            Ok(l)
        }
        // Another writer of the group created it first.
        None => catalog
            .load(ident)
            .await?
            .ok_or_else(|| table_err("created concurrently, then not found".into())),
    }
}

impl Sink for IcebergSink {
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
        self.open.values().any(|o| o.due(&self.config.roll, now))
    }

    /// When any partition is due, every open file is committed with it: one snapshot per
    /// flush rather than one per partition.
    async fn flush_due(&mut self) -> Result<Vec<CommittedFile>> {
        if self.should_flush() {
            self.commit_all().await
        } else {
            Ok(Vec::new())
        }
    }

    async fn flush(&mut self) -> Result<Vec<CommittedFile>> {
        self.commit_all().await
    }

    fn committed_offsets(&self) -> impl Future<Output = Result<CommittedOffsets>> + Send {
        IcebergSink::committed_offsets(self)
    }

    async fn close(mut self) -> Result<Vec<CommittedFile>> {
        self.flush().await
    }
}

#[cfg(test)]
mod compact_tests;
#[cfg(test)]
mod tests;
