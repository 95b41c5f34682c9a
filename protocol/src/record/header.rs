//! The fixed-size header at the front of every batch, parsed without touching its records.

use super::error::{RecordError, RecordErrorKind, WriteError};
use super::{Compression, TimestampType};

/// Bytes before a batch's length field ends: base offset (8) and batch length (4). A batch's
/// total size is `LOG_OVERHEAD + batch_length`.
pub const LOG_OVERHEAD: usize = 12;
/// The size of a magic-2 batch header, up to the first record.
pub const BATCH_HEADER_SIZE: usize = 61;
/// The smallest legacy message after the log overhead: crc, magic, attributes, key and value
/// lengths (magic 0).
pub(crate) const LEGACY_MIN_SIZE_V0: usize = 14;
/// The same for magic 1, which adds an 8-byte timestamp.
pub(crate) const LEGACY_MIN_SIZE_V1: usize = 22;
/// Where the magic byte sits in every format.
pub(crate) const MAGIC_OFFSET: usize = 16;
/// Where the CRC-covered part of a magic-2 batch starts (its attributes).
pub(crate) const CRC_START: usize = 21;
// Where the fields of a magic-2 batch header sit (Kafka's `DefaultRecordBatch`).
const CRC_AT: usize = 17;
const ATTRIBUTES_AT: usize = CRC_START;
const PRODUCER_ID_AT: usize = 43;
const PRODUCER_EPOCH_AT: usize = 51;
const BASE_SEQUENCE_AT: usize = 53;

const COMPRESSION_MASK: i16 = 0x07;
const TIMESTAMP_TYPE_BIT: i16 = 0x08;
const TRANSACTIONAL_BIT: i16 = 0x10;
const CONTROL_BIT: i16 = 0x20;
const DELETE_HORIZON_BIT: i16 = 0x40;

/// A batch's header fields.
///
/// For a legacy (magic 0/1) message the fields a legacy message lacks hold Kafka's "none" values
/// (-1), and `base_offset` holds the message's offset field: for a compressed wrapper message that
/// is the offset of its *last* inner message, which is why consumers should advance with
/// [`BatchHeader::next_offset`], correct for every format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    /// The first offset of the batch (see the type's note for legacy messages).
    pub base_offset: i64,
    /// The length of the batch after the length field.
    pub batch_length: i32,
    /// The leader epoch of the partition leader that appended it (-1 if unknown or legacy).
    pub partition_leader_epoch: i32,
    /// The format version: 2, or 0/1 for legacy messages.
    pub magic: i8,
    /// The stored checksum (CRC32C for magic 2, CRC32 for legacy).
    pub crc: u32,
    /// Codec, timestamp type, transactional, control and delete-horizon bits (legacy attribute
    /// bits map onto the same positions).
    pub attributes: i16,
    /// The offset of the last record relative to `base_offset` (0 for legacy messages).
    pub last_offset_delta: i32,
    /// The timestamp of the first record (the base of the records' timestamp deltas).
    pub first_timestamp: i64,
    /// The greatest timestamp in the batch (the log-append time when that is the type).
    pub max_timestamp: i64,
    /// The idempotent or transactional producer's id, or -1.
    pub producer_id: i64,
    /// That producer's epoch, or -1.
    pub producer_epoch: i16,
    /// The sequence number of the first record for idempotence, or -1.
    pub base_sequence: i32,
    /// How many records the batch holds (-1 for a compressed legacy wrapper, not known until it
    /// is decompressed).
    pub record_count: i32,
}

impl BatchHeader {
    /// The batch's codec, or the unknown codec id.
    pub fn compression(&self) -> Result<Compression, u8> {
        let id = (self.attributes & COMPRESSION_MASK) as u8;
        Compression::from_id(id).ok_or(id)
    }

    /// Whether timestamps are producer create times or broker append times.
    pub fn timestamp_type(&self) -> TimestampType {
        if self.magic > 0 && self.attributes & TIMESTAMP_TYPE_BIT != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        }
    }

    /// Whether the batch belongs to a transaction.
    pub fn is_transactional(&self) -> bool {
        self.magic >= 2 && self.attributes & TRANSACTIONAL_BIT != 0
    }

    /// Whether the batch holds a control record (a transaction's commit or abort marker).
    pub fn is_control(&self) -> bool {
        self.magic >= 2 && self.attributes & CONTROL_BIT != 0
    }

    /// Whether `first_timestamp` holds a compaction delete horizon (KIP-534).
    pub fn has_delete_horizon(&self) -> bool {
        self.magic >= 2 && self.attributes & DELETE_HORIZON_BIT != 0
    }

    /// The offset of the last record in the batch.
    pub fn last_offset(&self) -> i64 {
        self.base_offset
            .wrapping_add(i64::from(self.last_offset_delta))
    }

    /// The offset after the batch: where a consumer continues.
    pub fn next_offset(&self) -> i64 {
        self.last_offset().wrapping_add(1)
    }

    /// The batch's size in bytes, log overhead included.
    pub fn size(&self) -> usize {
        LOG_OVERHEAD + self.batch_length.max(0) as usize
    }

    /// Builds the attributes field from its parts.
    pub(crate) fn attributes_of(
        compression: Compression,
        timestamp_type: TimestampType,
        transactional: bool,
        control: bool,
    ) -> i16 {
        let mut a = i16::from(compression.id());
        if timestamp_type == TimestampType::LogAppendTime {
            a |= TIMESTAMP_TYPE_BIT;
        }
        if transactional {
            a |= TRANSACTIONAL_BIT;
        }
        if control {
            a |= CONTROL_BIT;
        }
        a
    }

    /// Parses a magic-2 header from a whole batch `b` (at least [`BATCH_HEADER_SIZE`] bytes, as
    /// the caller has checked). `at` is the batch's position in its record set, for errors.
    pub(crate) fn parse_v2(b: &[u8], at: usize) -> Result<Self, RecordError> {
        if b.len() < BATCH_HEADER_SIZE {
            return Err(RecordError::in_set(
                None,
                at,
                RecordErrorKind::Truncated {
                    what: "batch header",
                    needed: BATCH_HEADER_SIZE,
                    available: b.len(),
                },
            ));
        }
        let header = Self {
            base_offset: be_i64(b, 0),
            batch_length: be_i32(b, 8),
            partition_leader_epoch: be_i32(b, 12),
            magic: b[16] as i8,
            crc: be_i32(b, CRC_AT) as u32,
            attributes: be_i16(b, ATTRIBUTES_AT),
            last_offset_delta: be_i32(b, 23),
            first_timestamp: be_i64(b, 27),
            max_timestamp: be_i64(b, 35),
            producer_id: be_i64(b, PRODUCER_ID_AT),
            producer_epoch: be_i16(b, PRODUCER_EPOCH_AT),
            base_sequence: be_i32(b, BASE_SEQUENCE_AT),
            record_count: be_i32(b, 57),
        };
        if header.record_count < 0 {
            return Err(RecordError::in_set(
                Some(header.base_offset),
                at + 57,
                RecordErrorKind::InvalidLength {
                    what: "record count",
                    value: i64::from(header.record_count),
                },
            ));
        }
        if header.last_offset_delta < 0 {
            return Err(RecordError::in_set(
                Some(header.base_offset),
                at + 23,
                RecordErrorKind::InvalidLength {
                    what: "last offset delta",
                    value: i64::from(header.last_offset_delta),
                },
            ));
        }
        Ok(header)
    }

    /// Parses a legacy message header from a whole message `b` (its size checked by the caller).
    pub(crate) fn parse_legacy(b: &[u8]) -> Self {
        let magic = b[16] as i8;
        // Legacy attributes put the codec in bits 0-2 and (magic 1) the timestamp type in bit 3,
        // the same positions as magic 2, so they carry over as they are.
        let attributes = i16::from(b[17] as i8) & (COMPRESSION_MASK | TIMESTAMP_TYPE_BIT);
        let timestamp = if magic >= 1 { be_i64(b, 18) } else { -1 };
        let compressed = attributes & COMPRESSION_MASK != 0;
        Self {
            base_offset: be_i64(b, 0),
            batch_length: be_i32(b, 8),
            partition_leader_epoch: -1,
            magic,
            crc: be_i32(b, 12) as u32,
            attributes,
            last_offset_delta: 0,
            first_timestamp: timestamp,
            max_timestamp: timestamp,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            record_count: if compressed { -1 } else { 1 },
        }
    }
}

#[inline]
/// Writes a producer id, epoch and base sequence into a written magic-2 batch (and, when
/// `transactional`, its transactional bit), then recomputes its CRC, which covers everything
/// from the attributes on. An idempotent producer assigns these only when a batch is first
/// sent (and again after its epoch is bumped), after the batch was built: patching the header
/// in place keeps the records (compressed, perhaps) as they are, as Java's
/// `MemoryRecordsBuilder.setProducerState`/`ProducerBatch.resetProducerState` do.
pub fn stamp_producer(
    batch: &mut [u8],
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    transactional: bool,
) -> Result<(), WriteError> {
    let magic = batch.get(MAGIC_OFFSET).map(|&m| m as i8);
    if batch.len() < BATCH_HEADER_SIZE || magic != Some(2) {
        return Err(WriteError::NotABatch {
            len: batch.len(),
            magic,
        });
    }
    batch[PRODUCER_ID_AT..PRODUCER_ID_AT + 8].copy_from_slice(&producer_id.to_be_bytes());
    batch[PRODUCER_EPOCH_AT..PRODUCER_EPOCH_AT + 2].copy_from_slice(&producer_epoch.to_be_bytes());
    batch[BASE_SEQUENCE_AT..BASE_SEQUENCE_AT + 4].copy_from_slice(&base_sequence.to_be_bytes());
    if transactional {
        // Read_committed consumers hold such batches back until their transaction's marker.
        let attributes = be_i16(batch, ATTRIBUTES_AT) | TRANSACTIONAL_BIT;
        batch[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attributes.to_be_bytes());
    }
    let crc = crc32c::crc32c(&batch[CRC_START..]);
    batch[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    Ok(())
}

pub(crate) fn be_i64(b: &[u8], at: usize) -> i64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(x)
}

#[inline]
pub(crate) fn be_i32(b: &[u8], at: usize) -> i32 {
    let mut x = [0u8; 4];
    x.copy_from_slice(&b[at..at + 4]);
    i32::from_be_bytes(x)
}

#[inline]
pub(crate) fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}
