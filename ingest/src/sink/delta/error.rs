//! What the Delta sink can fail with beyond the file and object store errors every sink has.

use thiserror::Error;

use crate::sink::{OffsetRange, PartitionKey};

/// A Delta table problem: its log, its protocol, its schema, or a concurrent writer.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum DeltaError {
    /// A log entry (`_delta_log/NNN.json`, a checkpoint, `_last_checkpoint`) is malformed.
    #[error("{path}: {reason}")]
    Log {
        /// The log file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A checkpoint could not be read or written.
    #[error("checkpoint {path}: {source}")]
    Checkpoint {
        /// The checkpoint file.
        path: String,
        /// The Parquet or Arrow error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The table needs a protocol feature this writer does not implement (deletion vectors,
    /// column mapping, ...), or its log has versions missing.
    #[error("{0}")]
    Unsupported(String),
    /// The table exists with a schema or partitioning other than the job's.
    #[error("the table's schema differs from the job's columns: {0}")]
    Schema(String),
    /// Another writer committed offsets of a partition this process holds: it lost the
    /// partition without noticing (a long pause, a network partition). Its commit is dropped and
    /// it stops, so the partition's new owner's commits stand; nothing is written twice.
    #[error("{partition}: another writer of this table committed its offsets up to {theirs} (table version {version}) while this process held it from {}; this process's commit of {ours} is dropped (the partition has a new owner)", ours.first)]
    Fenced {
        /// The Kafka partition.
        partition: PartitionKey,
        /// The offsets this process was about to commit.
        ours: OffsetRange,
        /// The offset the table records for it now.
        theirs: i64,
        /// The table version that recorded it.
        version: i64,
    },
    /// Other writers kept committing first, for this many attempts in a row.
    #[error("gave up after {0} attempts to commit: every version was taken by another writer")]
    Contention(u32),
}
