//! Errors of the record batch reader and writer.
//!
//! Every decode error says what was wrong, at which byte, and in which batch (by base offset)
//! when the batch header could be read, so that a consumer can report topic, partition and
//! offset and stop without losing its place.

use std::fmt;

use thiserror::Error;

use super::Compression;

/// Where the byte position of a [`RecordError`] counts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Region {
    /// From the start of the record set (a fetch response partition's `records` bytes).
    RecordSet,
    /// From the start of the batch's (decompressed) records section.
    Records,
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Region::RecordSet => "of the record set",
            Region::Records => "of the batch's records",
        })
    }
}

/// A record batch or record that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{}byte {at} {region}: {kind}", batch_prefix(*.base_offset))]
pub struct RecordError {
    /// The base offset of the batch, when its header could be read.
    pub base_offset: Option<i64>,
    /// The byte position of the problem, counted from the start of `region`.
    pub at: usize,
    /// What `at` counts from.
    pub region: Region,
    /// What was wrong.
    pub kind: RecordErrorKind,
}

fn batch_prefix(base_offset: Option<i64>) -> String {
    match base_offset {
        Some(o) => format!("record batch at offset {o}, "),
        None => String::new(),
    }
}

impl RecordError {
    pub(crate) fn in_set(base_offset: Option<i64>, at: usize, kind: RecordErrorKind) -> Self {
        Self {
            base_offset,
            at,
            region: Region::RecordSet,
            kind,
        }
    }

    pub(crate) fn in_records(base_offset: i64, at: usize, kind: RecordErrorKind) -> Self {
        Self {
            base_offset: Some(base_offset),
            at,
            region: Region::Records,
            kind,
        }
    }
}

/// What was wrong with a batch or record.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RecordErrorKind {
    /// The input ends inside a structure.
    #[error("truncated {what}: {needed} bytes needed, {available} available")]
    Truncated {
        /// The structure being read.
        what: &'static str,
        /// Bytes it needs from `at`.
        needed: usize,
        /// Bytes there are from `at`.
        available: usize,
    },
    /// The stored checksum does not match the bytes.
    #[error("{algorithm} mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch {
        /// "CRC32C" (magic 2) or "CRC32" (magic 0 and 1).
        algorithm: &'static str,
        /// The checksum in the header.
        stored: u32,
        /// The checksum of the bytes.
        computed: u32,
    },
    /// A magic byte this reader does not know.
    #[error("unsupported magic byte {0}")]
    UnsupportedMagic(i8),
    /// A compression codec id outside 0..=4.
    #[error("unknown compression codec id {0}")]
    UnknownCodec(u8),
    /// The compressed data is corrupt.
    #[error("{codec} decompression failed: {reason}")]
    Decompress {
        /// The batch's codec.
        codec: Compression,
        /// What the decompressor said.
        reason: String,
    },
    /// The data decompresses to more than the configured limit (a compression bomb, or a limit
    /// set too low for this topic).
    #[error("{codec} data decompresses to more than the limit of {limit} bytes")]
    DecompressionLimit {
        /// The batch's codec.
        codec: Compression,
        /// The configured limit.
        limit: usize,
    },
    /// A varint longer than its type allows.
    #[error("malformed varint for {0}")]
    BadVarint(&'static str),
    /// A length or count field with an impossible value.
    #[error("invalid {what}: {value}")]
    InvalidLength {
        /// The field.
        what: &'static str,
        /// Its value.
        value: i64,
    },
    /// A record's declared length does not match what its fields took.
    #[error("record declares {declared} bytes but its fields take {actual}")]
    RecordLengthMismatch {
        /// The record's length prefix.
        declared: usize,
        /// What its fields took.
        actual: usize,
    },
    /// Bytes remain after the number of records the header announced.
    #[error("{extra} bytes remain after the {count} records the header announces")]
    TrailingBytes {
        /// Bytes left over.
        extra: usize,
        /// The header's record count.
        count: i32,
    },
    /// A compressed legacy message inside a compressed legacy message.
    #[error("nested compressed legacy message")]
    NestedCompression,
    /// A control record whose key or value is not a control record.
    #[error("malformed control record: {0}")]
    BadControlRecord(&'static str),
}

/// A batch that could not be written.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum WriteError {
    /// The compressor failed (for zstd, an invalid level, for example).
    #[error("{codec} compression failed: {reason}")]
    Compress {
        /// The codec.
        codec: Compression,
        /// What the compressor said.
        reason: String,
    },
    /// The batch would not fit the format's 32-bit length fields.
    #[error("batch of {0} bytes is too large for the record batch format")]
    TooLarge(usize),
    /// Bytes given to [`stamp_producer`](super::stamp_producer) that are not a whole magic-2
    /// batch header.
    #[error("not a magic-2 record batch ({len} bytes, magic {magic:?})")]
    NotABatch {
        /// How many bytes were given.
        len: usize,
        /// Their magic byte, if there was one.
        magic: Option<i8>,
    },
}
