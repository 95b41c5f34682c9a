//! Zero-copy record batches: the reader a consumer uses on fetch responses, and the writer a
//! producer (and testkit, and our tests) uses to build batches.
//!
//! Reading happens in two steps, so that a consumer pays only for what it needs:
//!
//! 1. [`RecordSet`] walks a partition's `records` bytes (one `Bytes` slice of the fetch response)
//!    and yields a [`RawBatch`] per batch: its parsed [`BatchHeader`] and its bytes, no copy, no
//!    checksum, no decompression. A batch cut off by the broker's size limit at the end ends the
//!    iteration cleanly and is reported by [`RecordSet::incomplete`]. Skipping a batch below the
//!    fetch position, or an aborted transaction's batch, costs nothing more.
//! 2. [`RawBatch::decode`] verifies the CRC and decompresses into one buffer per batch (from a
//!    pool of reused buffers, see [`pool`]; or, when uncompressed, keeps slicing the response),
//!    giving a [`RecordBatch`] whose
//!    [`RecordBatch::records`] iterator yields [`Record`] views that borrow key, value and
//!    headers from that buffer: nothing is allocated per record.
//!
//! Legacy message sets (magic 0 and 1, including compressed wrapper messages) come out of the
//! same two steps, so old topics read like new ones.

mod batch;
mod compression;
mod control;
mod error;
mod header;
pub mod legacy;
pub mod pool;
mod set;
pub mod txn;
mod varint;
mod writer;

use std::fmt;

pub use batch::{Header, Headers, HeadersIter, Record, RecordBatch, Records};
pub use control::{ControlRecord, ControlType};
pub use error::{RecordError, RecordErrorKind, Region, WriteError};
pub use header::{stamp_producer, BatchHeader, BATCH_HEADER_SIZE, LOG_OVERHEAD};
pub use set::{Incomplete, RawBatch, RecordSet};
pub use txn::{AbortedFilter, BatchVerdict};
pub use writer::{BatchBuilder, BatchOptions};

/// A compression codec, as the low three bits of a batch's attributes name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Compression {
    /// No compression.
    #[default]
    None,
    /// gzip (RFC 1952).
    Gzip,
    /// Snappy: raw, or in the xerial framing the Java client writes.
    Snappy,
    /// LZ4 frame format.
    Lz4,
    /// Zstandard.
    Zstd,
}

impl Compression {
    /// Every codec, for tests and benchmarks that cover them all.
    pub const ALL: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    /// The codec of an attributes field's low three bits.
    pub fn from_id(id: u8) -> Option<Self> {
        Some(match id {
            0 => Compression::None,
            1 => Compression::Gzip,
            2 => Compression::Snappy,
            3 => Compression::Lz4,
            4 => Compression::Zstd,
            _ => return None,
        })
    }

    /// The codec's id in batch attributes.
    pub fn id(self) -> u8 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }

    /// The codec's name as Kafka's `compression.type` setting spells it.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }

    /// The codec named by a `compression.type` value.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a record's timestamp means (attributes bit 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TimestampType {
    /// Set by the producer.
    #[default]
    CreateTime,
    /// Set by the broker when it appended the batch; every record then carries the batch's
    /// max timestamp.
    LogAppendTime,
}

/// Limits and checks applied when decoding batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeOptions {
    /// Verify each batch's CRC (the Java consumer's `check.crcs`, on by default).
    pub verify_crc: bool,
    /// The most bytes one batch may decompress to; more is an error, not an allocation.
    pub max_decompressed_size: usize,
}

/// The default [`DecodeOptions::max_decompressed_size`]: 256 MiB, far above any batch a broker
/// with default settings accepts, far below what would hurt the process.
pub const DEFAULT_MAX_DECOMPRESSED_SIZE: usize = 256 * 1024 * 1024;

impl Default for DecodeOptions {
    fn default() -> Self {
        Self {
            verify_crc: true,
            max_decompressed_size: DEFAULT_MAX_DECOMPRESSED_SIZE,
        }
    }
}
