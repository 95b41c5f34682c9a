//! Sinks: where decoded record batches go, and where the ingest engine learns which Kafka
//! offsets are durably stored.
//!
//! The engine hands a [`Sink`] one Arrow [`RecordBatch`] at a time together with the Kafka
//! partition it came from and the offsets it covers ([`Sink::write`]). The sink buffers rows into
//! its current file for that partition; when [`Sink::should_flush`] says a roll threshold is
//! reached, the engine calls [`Sink::flush_due`] (or [`Sink::flush`] for everything, at a
//! rebalance or shutdown), and gets back the [`CommittedFile`]s that became durable with the
//! offsets each one covers. Only then does it commit those offsets to the Kafka group, and only
//! for lag tools: on start the engine resumes from [`Sink::committed_offsets`], which the sink
//! reads back from what it stored, so a process killed at any point neither loses nor repeats
//! records (see [`parquet`] for how the Parquet sink makes that hold).
//!
//! Four sinks live here:
//! - [`ParquetSink`]: Parquet files in a local directory or an object store (S3, GCS, Azure),
//!   exactly once.
//! - [`DeltaSink`]: a Delta Lake table (local or object store), each flush one commit carrying
//!   the offsets, exactly once with several writers per table.
//! - [`PostgresSink`]: a PostgreSQL table, by binary COPY, rows and offsets in one
//!   transaction: exactly once.
//! - [`IcebergSink`]: an Apache Iceberg table through a SQL or REST catalog, data and offsets
//!   in one snapshot: exactly once, several writers per table.
//! - [`StdoutSink`]: JSON lines on standard output, for inspection and pipes; at least once (a
//!   pipe cannot take back what it was given, nor say how far it got).
//!
//! The trait's methods return `impl Future + Send` rather than being `async fn`, so a
//! caller can spawn the futures on a multi-threaded runtime; implementations still write
//! `async fn`. [`AnySink`] chooses a sink at run time (the trait is not object safe).

mod datafile;
pub mod delta;
pub mod iceberg;
mod layout;
pub mod maintenance;
pub(crate) mod meta;
pub mod parquet;
pub mod postgres;
pub mod stdout;
mod store;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;

use arrow_array::RecordBatch;
use arrow_schema::{ArrowError, SchemaRef};
use thiserror::Error;

pub use self::delta::{DeltaError, DeltaMaintenance, DeltaSink, DeltaSinkConfig};
pub use self::iceberg::{CatalogConfig, IcebergSink, IcebergSinkConfig};
pub(crate) use self::layout::marker_subdir;
pub use self::meta::OFFSETS_KEY;
pub use self::parquet::{ParquetCompression, ParquetSink, ParquetSinkConfig, Recovery, RollPolicy};
pub use self::postgres::{PostgresSink, PostgresSinkConfig};
pub use self::stdout::StdoutSink;

/// A Kafka topic partition: the unit the engine reads and the sink keeps offsets for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PartitionKey {
    /// The topic name.
    pub topic: String,
    /// The partition number.
    pub partition: i32,
}

impl PartitionKey {
    /// The key of `topic`'s partition `partition`.
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        Self {
            topic: topic.into(),
            partition,
        }
    }
}

impl fmt::Display for PartitionKey {
    /// `topic-partition`, as Kafka's own tools print it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// The Kafka offsets a batch (or a file) covers: `first` up to, not including, `next`.
///
/// `next` is where the consumer continues, so it may lie past the offset of the last row:
/// transaction markers, compacted-away records and records the decoder filtered out leave gaps
/// that still count as read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetRange {
    /// The first offset covered.
    pub first: i64,
    /// One past the last offset covered: the offset to resume from.
    pub next: i64,
}

impl OffsetRange {
    /// `[first, next)`.
    pub fn new(first: i64, next: i64) -> Self {
        Self { first, next }
    }
}

impl fmt::Display for OffsetRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}, {})", self.first, self.next)
    }
}

/// A file (or stream section) that a flush made durable, and the offsets it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedFile {
    /// Where it is: a local path, an object URL (`s3://bucket/key`), or `<stdout>`.
    pub path: String,
    /// The Kafka partition its rows came from (a file holds one partition only).
    pub partition: PartitionKey,
    /// The offsets it covers. With `partition_by`, every file of one flush of one Kafka
    /// partition reports the same range: together they hold its rows.
    pub offsets: OffsetRange,
    /// Rows in the file.
    pub rows: u64,
    /// Size in bytes (for stdout: bytes of JSON written).
    pub bytes: u64,
}

/// A row the sink's store refused (a database constraint, a value out of range), reported by
/// [`Sink::take_rejected`] for the engine's error policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedRow {
    /// The Kafka partition of the row.
    pub partition: PartitionKey,
    /// The row's Kafka offset, when the engine passed row offsets ([`Sink::write_rows`]).
    pub offset: Option<i64>,
    /// Why the store refused it.
    pub error: String,
    /// The row as a JSON object.
    pub row: String,
}

/// Committed offsets as [`Sink::committed_offsets`] returns them: `(topic, partition)` to the
/// offset to resume from.
pub type CommittedOffsets = BTreeMap<(String, i32), i64>;

/// What a sink can fail with. Every variant names the file or object and, where there is one,
/// the Kafka partition.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SinkError {
    /// A local file system operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done (`create`, `fsync`, `rename`, ...).
        op: &'static str,
        /// The file or directory.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// An object store request failed.
    #[error("object store {op} {path}: {source}")]
    ObjectStore {
        /// What was being done (`put`, `copy`, `list`, ...).
        op: &'static str,
        /// The object (or prefix).
        path: String,
        /// The error.
        #[source]
        source: object_store::Error,
    },
    /// Encoding rows into a Parquet file, or finishing it, failed.
    #[error("writing {path} ({partition}): {source}")]
    Encode {
        /// The file being written.
        path: String,
        /// The Kafka partition its rows come from.
        partition: PartitionKey,
        /// The error.
        #[source]
        source: ::parquet::errors::ParquetError,
    },
    /// A committed file's footer could not be read.
    #[error("reading the footer of {path}: {source}")]
    Footer {
        /// The file.
        path: String,
        /// The error.
        #[source]
        source: ::parquet::errors::ParquetError,
    },
    /// A committed file's `kingest.offsets` metadata is malformed.
    #[error("{path}: bad kingest.offsets metadata: {reason}")]
    Metadata {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A batch does not have the sink's schema.
    #[error("batch for {partition} has schema {found}, the sink writes {expected}")]
    SchemaMismatch {
        /// The Kafka partition of the batch.
        partition: PartitionKey,
        /// The sink's schema.
        expected: String,
        /// The batch's schema.
        found: String,
    },
    /// A batch's offsets are not after what was already written for its partition, or are
    /// not a range.
    #[error("offsets {offsets} for {partition} are invalid: {reason}")]
    Offsets {
        /// The Kafka partition.
        partition: PartitionKey,
        /// The offsets given.
        offsets: OffsetRange,
        /// What is wrong with them.
        reason: String,
    },
    /// The `partition_by` column is missing or of a type that cannot name a directory.
    #[error("partition_by column {column:?}: {reason}")]
    PartitionColumn {
        /// The column.
        column: String,
        /// What is wrong.
        reason: String,
    },
    /// The sink's location cannot be used.
    #[error("sink location {location:?}: {reason}")]
    Location {
        /// The location as given.
        location: String,
        /// What is wrong.
        reason: String,
    },
    /// An Arrow operation (splitting a batch, JSON encoding) failed.
    #[error("{context} ({partition}): {source}")]
    Arrow {
        /// What was being done.
        context: &'static str,
        /// The Kafka partition of the batch.
        partition: PartitionKey,
        /// The error.
        #[source]
        source: ArrowError,
    },
    /// A PostgreSQL operation failed (after retrying, where a retry could help).
    #[error("PostgreSQL {server}: {context}: {message}")]
    Postgres {
        /// `host:port/database`.
        server: String,
        /// What was being done.
        context: String,
        /// The server's or the client's error.
        message: String,
    },
    /// The database refused a row (constraint, type, encoding) and `on_error = "fail"`.
    #[error("{partition} offset {}: the database rejected the row: {message}", offset.map_or_else(|| "unknown".to_owned(), |o| o.to_string()))]
    Rejected {
        /// The Kafka partition of the row.
        partition: PartitionKey,
        /// Its offset (unknown when the engine gave no row offsets).
        offset: Option<i64>,
        /// The database's error.
        message: String,
    },
    /// A Delta table's log, protocol or schema does not allow the write, or another writer
    /// took a partition over.
    #[error("Delta table {table}: {source}")]
    Delta {
        /// The table's location.
        table: String,
        /// What is wrong (boxed: rare, and large).
        #[source]
        source: Box<DeltaError>,
    },
    /// A table catalog (Iceberg's SQL or REST catalog) failed or refused a request.
    #[error("{catalog}: {op}: {message}")]
    Catalog {
        /// The catalog, as `sql catalog "default" at sqlite:///c.db` (no credentials).
        catalog: String,
        /// What was being done (`load table`, `commit`, ...).
        op: &'static str,
        /// The database's or server's error.
        message: String,
    },
    /// A table cannot be written as configured (its schema or partitioning differs from the
    /// job's, its metadata is unreadable, or commits keep failing).
    #[error("table {table}: {reason}")]
    Table {
        /// The table (`namespace.table`).
        table: String,
        /// What is wrong.
        reason: String,
    },
    /// Another writer committed offsets for a partition this process was writing: it lost
    /// the partition (to a rebalance it had not noticed). Its rows were left out of the table
    /// and the sink stops; a restart resumes from the table's offsets.
    #[error("table {table}: {partition} was committed by another writer (the table holds offset {found}, this process wrote {offsets}); its rows were not committed")]
    CommitConflict {
        /// The table.
        table: String,
        /// The Kafka partition.
        partition: PartitionKey,
        /// The offsets this process wrote.
        offsets: OffsetRange,
        /// The offset the table holds for it.
        found: i64,
    },
    /// An earlier write or flush failed part way; the sink's files are in an unknown state, so
    /// it refuses further work. Drop it and open a new one: opening recovers.
    #[error("the sink failed earlier ({0}); reopen it")]
    Poisoned(String),
}

/// Result of sink operations.
pub type Result<T, E = SinkError> = std::result::Result<T, E>;

/// Where the ingest engine writes record batches. See the [module docs](self).
pub trait Sink: Send {
    /// The schema every batch must have.
    fn schema(&self) -> &SchemaRef;

    /// Appends `batch`, read from `partition` at `offsets`, to the current output for that
    /// partition. Batches of one partition must come in offset order (`offsets.first` not
    /// before the previous `offsets.next`). Nothing is durable until a flush.
    fn write(
        &mut self,
        partition: &PartitionKey,
        batch: &RecordBatch,
        offsets: OffsetRange,
    ) -> impl Future<Output = Result<()>> + Send;

    /// [`Sink::write`] with each row's Kafka offset (`row_offsets[i]` for row `i`), so that
    /// rows the store refuses later can be named. Sinks that cannot refuse single rows ignore
    /// them.
    fn write_rows(
        &mut self,
        partition: &PartitionKey,
        batch: &RecordBatch,
        offsets: OffsetRange,
        row_offsets: &[i64],
    ) -> impl Future<Output = Result<()>> + Send {
        let _ = row_offsets;
        self.write(partition, batch, offsets)
    }

    /// Rows the store refused during the last flush, for the engine's error policy. A flush
    /// that refused rows committed nothing; the next flush commits the other rows without
    /// them.
    fn take_rejected(&mut self) -> Vec<RejectedRow> {
        Vec::new()
    }

    /// Whether some output reached a roll threshold (rows, bytes or age), so the engine should
    /// call [`Sink::flush_due`]. Age counts even without writes: poll this on a timer.
    fn should_flush(&self) -> bool;

    /// Makes durable the outputs that reached a roll threshold and returns them; other
    /// partitions keep filling their files.
    fn flush_due(&mut self) -> impl Future<Output = Result<Vec<CommittedFile>>> + Send {
        self.flush()
    }

    /// Makes every open output durable (finish, fsync, rename) and returns what became durable
    /// with its offsets; the engine may then commit those offsets to the Kafka group.
    fn flush(&mut self) -> impl Future<Output = Result<Vec<CommittedFile>>> + Send;

    /// Per partition, the offset to resume from, as recorded by the sink itself. Partitions
    /// the sink has nothing for are absent (the engine then falls back to the group's offsets
    /// or its start policy).
    fn committed_offsets(&self) -> impl Future<Output = Result<CommittedOffsets>> + Send;

    /// Flushes everything and releases the sink.
    fn close(self) -> impl Future<Output = Result<Vec<CommittedFile>>> + Send
    where
        Self: Sized;
}

/// A sink chosen at run time from the configuration.
#[derive(Debug)]
pub enum AnySink {
    /// Parquet files (boxed: the Parquet sink is much larger than the others).
    Parquet(Box<ParquetSink>),
    /// JSON lines on standard output.
    Stdout(StdoutSink),
    /// A PostgreSQL table (boxed, like Parquet).
    Postgres(Box<PostgresSink>),
    /// A Delta table (boxed, like Parquet).
    Delta(Box<DeltaSink>),
    /// An Iceberg table (boxed, like Parquet).
    Iceberg(Box<IcebergSink>),
}

impl Sink for AnySink {
    fn schema(&self) -> &SchemaRef {
        match self {
            AnySink::Parquet(s) => s.schema(),
            AnySink::Stdout(s) => s.schema(),
            AnySink::Postgres(s) => s.schema(),
            AnySink::Delta(s) => s.schema(),
            AnySink::Iceberg(s) => s.schema(),
        }
    }

    async fn write(
        &mut self,
        partition: &PartitionKey,
        batch: &RecordBatch,
        offsets: OffsetRange,
    ) -> Result<()> {
        match self {
            AnySink::Parquet(s) => s.write(partition, batch, offsets).await,
            AnySink::Stdout(s) => s.write(partition, batch, offsets).await,
            AnySink::Postgres(s) => s.write(partition, batch, offsets).await,
            AnySink::Delta(s) => s.write(partition, batch, offsets).await,
            AnySink::Iceberg(s) => s.write(partition, batch, offsets).await,
        }
    }

    async fn write_rows(
        &mut self,
        partition: &PartitionKey,
        batch: &RecordBatch,
        offsets: OffsetRange,
        row_offsets: &[i64],
    ) -> Result<()> {
        match self {
            AnySink::Parquet(s) => s.write_rows(partition, batch, offsets, row_offsets).await,
            AnySink::Stdout(s) => s.write_rows(partition, batch, offsets, row_offsets).await,
            AnySink::Postgres(s) => s.write_rows(partition, batch, offsets, row_offsets).await,
            AnySink::Delta(s) => s.write_rows(partition, batch, offsets, row_offsets).await,
            AnySink::Iceberg(s) => s.write_rows(partition, batch, offsets, row_offsets).await,
        }
    }

    fn take_rejected(&mut self) -> Vec<RejectedRow> {
        match self {
            AnySink::Parquet(s) => s.take_rejected(),
            AnySink::Stdout(s) => s.take_rejected(),
            AnySink::Postgres(s) => s.take_rejected(),
            AnySink::Delta(s) => s.take_rejected(),
            AnySink::Iceberg(s) => s.take_rejected(),
        }
    }

    fn should_flush(&self) -> bool {
        match self {
            AnySink::Parquet(s) => s.should_flush(),
            AnySink::Stdout(s) => s.should_flush(),
            AnySink::Postgres(s) => s.should_flush(),
            AnySink::Delta(s) => s.should_flush(),
            AnySink::Iceberg(s) => s.should_flush(),
        }
    }

    async fn flush_due(&mut self) -> Result<Vec<CommittedFile>> {
        match self {
            AnySink::Parquet(s) => s.flush_due().await,
            AnySink::Stdout(s) => s.flush_due().await,
            AnySink::Postgres(s) => s.flush_due().await,
            AnySink::Delta(s) => s.flush_due().await,
            AnySink::Iceberg(s) => s.flush_due().await,
        }
    }

    async fn flush(&mut self) -> Result<Vec<CommittedFile>> {
        match self {
            AnySink::Parquet(s) => s.flush().await,
            AnySink::Stdout(s) => s.flush().await,
            AnySink::Postgres(s) => s.flush().await,
            AnySink::Delta(s) => s.flush().await,
            AnySink::Iceberg(s) => s.flush().await,
        }
    }

    fn committed_offsets(&self) -> impl Future<Output = Result<CommittedOffsets>> + Send {
        use futures_util::future::Either;
        // Not `async fn`: the future must not hold `&self` (the sinks are `Send`, not `Sync`).
        match self {
            AnySink::Parquet(s) => Either::Left(s.committed_offsets()),
            AnySink::Stdout(s) => Either::Right(Either::Left(Sink::committed_offsets(s))),
            AnySink::Postgres(s) => {
                Either::Right(Either::Right(Either::Left(Sink::committed_offsets(&**s))))
            }
            AnySink::Delta(s) => Either::Right(Either::Right(Either::Right(Either::Left(
                Sink::committed_offsets(&**s),
            )))),
            AnySink::Iceberg(s) => Either::Right(Either::Right(Either::Right(Either::Right(
                s.committed_offsets(),
            )))),
        }
    }

    async fn close(self) -> Result<Vec<CommittedFile>> {
        match self {
            AnySink::Parquet(s) => s.close().await,
            AnySink::Stdout(s) => s.close().await,
            AnySink::Postgres(s) => s.close().await,
            AnySink::Delta(s) => s.close().await,
            AnySink::Iceberg(s) => s.close().await,
        }
    }
}
