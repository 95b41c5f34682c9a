//! Building magic-2 record batches.
//!
//! Records are appended uncompressed into one buffer; [`BatchBuilder::finish`] compresses that
//! buffer once, writes the 61-byte header in front and the CRC32C over everything after the CRC
//! field. The producer, testkit (control batches for transaction markers) and the tests all build
//! batches this way.

use bytes::{BufMut, Bytes, BytesMut};

use super::batch::Header;
use super::compression::compress;
use super::control::ControlRecord;
use super::error::WriteError;
use super::header::{BatchHeader, BATCH_HEADER_SIZE, CRC_START, LOG_OVERHEAD};
use super::varint::{put_varint, put_varlong, varint_len, varlong_len};
use super::{Compression, TimestampType};

/// The header fields and codec of a batch to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchOptions {
    /// The offset of the first record (producers send 0; the broker assigns offsets).
    pub base_offset: i64,
    /// The leader epoch to stamp (-1 from producers).
    pub partition_leader_epoch: i32,
    /// The codec.
    pub compression: Compression,
    /// The codec's level (gzip 1-9, zstd 1-22); `None` for its default.
    pub compression_level: Option<i32>,
    /// Create time (producers) or log-append time (brokers configured so).
    pub timestamp_type: TimestampType,
    /// Idempotent/transactional producer id, or -1.
    pub producer_id: i64,
    /// Producer epoch, or -1.
    pub producer_epoch: i16,
    /// Sequence number of the first record, or -1.
    pub base_sequence: i32,
    /// Whether the batch belongs to a transaction.
    pub transactional: bool,
    /// Whether the batch holds a control record.
    pub control: bool,
}

impl Default for BatchOptions {
    fn default() -> Self {
        Self {
            base_offset: 0,
            partition_leader_epoch: -1,
            compression: Compression::None,
            compression_level: None,
            timestamp_type: TimestampType::CreateTime,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            transactional: false,
            control: false,
        }
    }
}

/// Accumulates records and writes them as one batch.
#[derive(Debug, Clone)]
pub struct BatchBuilder {
    opts: BatchOptions,
    records: Vec<u8>,
    count: i32,
    first_timestamp: Option<i64>,
    max_timestamp: i64,
    last_offset_delta: i32,
}

impl BatchBuilder {
    /// An empty batch with these options.
    pub fn new(opts: BatchOptions) -> Self {
        Self {
            opts,
            records: Vec::new(),
            count: 0,
            first_timestamp: None,
            max_timestamp: -1,
            last_offset_delta: 0,
        }
    }

    /// The options the batch is built with.
    pub fn options(&self) -> &BatchOptions {
        &self.opts
    }

    /// How many records were pushed.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// Whether no record was pushed.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The uncompressed size so far, header included: what batch-size limits compare against.
    pub fn size(&self) -> usize {
        BATCH_HEADER_SIZE + self.records.len()
    }

    /// The encoded size a record would add, for callers deciding whether it still fits.
    pub fn record_size(
        timestamp_delta: i64,
        offset_delta: i32,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header<'_>],
    ) -> usize {
        let body = body_len(timestamp_delta, offset_delta, key, value, headers);
        varint_len(body as i32) + body
    }

    /// Appends a record at the next offset.
    pub fn push(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header<'_>],
    ) {
        let delta = self.count;
        self.push_at(delta, timestamp, key, value, headers);
    }

    /// Appends a record at `offset_delta` from the base offset (compacted topics have gaps).
    pub fn push_at(
        &mut self,
        offset_delta: i32,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header<'_>],
    ) {
        let base = *self.first_timestamp.get_or_insert(timestamp);
        let ts_delta = timestamp.wrapping_sub(base);
        let body = body_len(ts_delta, offset_delta, key, value, headers);
        let out = &mut self.records;
        out.reserve(varint_len(body as i32) + body);
        put_varint(out, body as i32);
        out.push(0); // attributes
        put_varlong(out, ts_delta);
        put_varint(out, offset_delta);
        put_bytes(out, key);
        put_bytes(out, value);
        put_varint(out, headers.len() as i32);
        for h in headers {
            put_bytes(out, Some(h.key));
            put_bytes(out, h.value);
        }
        self.count += 1;
        self.max_timestamp = self.max_timestamp.max(timestamp);
        self.last_offset_delta = self.last_offset_delta.max(offset_delta);
    }

    /// Writes the batch.
    pub fn finish(self) -> Result<Bytes, WriteError> {
        let mut out = BytesMut::new();
        self.finish_into(&mut out)?;
        Ok(out.freeze())
    }

    /// Appends the batch to `out` (a producer concatenates a partition's batches this way).
    pub fn finish_into(self, out: &mut BytesMut) -> Result<(), WriteError> {
        let mut body = Vec::with_capacity(self.records.len() / 2 + 64);
        let records: &[u8] = if self.opts.compression == Compression::None {
            &self.records
        } else {
            compress(
                self.opts.compression,
                self.opts.compression_level,
                &self.records,
                &mut body,
            )?;
            &body
        };
        let total = BATCH_HEADER_SIZE + records.len();
        let batch_length =
            i32::try_from(total - LOG_OVERHEAD).map_err(|_| WriteError::TooLarge(total))?;
        let o = &self.opts;
        let start = out.len();
        out.reserve(total);
        out.put_i64(o.base_offset);
        out.put_i32(batch_length);
        out.put_i32(o.partition_leader_epoch);
        out.put_i8(2);
        out.put_u32(0); // CRC, below
        out.put_i16(BatchHeader::attributes_of(
            o.compression,
            o.timestamp_type,
            o.transactional,
            o.control,
        ));
        out.put_i32(self.last_offset_delta);
        let first = self.first_timestamp.unwrap_or(-1);
        out.put_i64(first);
        out.put_i64(if self.count == 0 {
            -1
        } else {
            self.max_timestamp
        });
        out.put_i64(o.producer_id);
        out.put_i16(o.producer_epoch);
        out.put_i32(o.base_sequence);
        out.put_i32(self.count);
        out.put_slice(records);
        let crc = crc32c::crc32c(&out[start + CRC_START..]);
        out[start + 17..start + 21].copy_from_slice(&crc.to_be_bytes());
        Ok(())
    }

    /// A control batch holding one transaction marker, as a transaction coordinator writes it.
    pub fn control_batch(
        opts: BatchOptions,
        marker: ControlRecord,
        timestamp: i64,
    ) -> Result<Bytes, WriteError> {
        let mut b = BatchBuilder::new(BatchOptions {
            control: true,
            transactional: true,
            compression: Compression::None,
            ..opts
        });
        b.push(
            timestamp,
            Some(&marker.key_bytes()),
            Some(&marker.value_bytes()),
            &[],
        );
        b.finish()
    }
}

fn body_len(
    ts_delta: i64,
    offset_delta: i32,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: &[Header<'_>],
) -> usize {
    let mut n =
        1 + varlong_len(ts_delta) + varint_len(offset_delta) + bytes_len(key) + bytes_len(value);
    n += varint_len(headers.len() as i32);
    for h in headers {
        n += bytes_len(Some(h.key)) + bytes_len(h.value);
    }
    n
}

#[inline]
fn bytes_len(b: Option<&[u8]>) -> usize {
    match b {
        None => 1,
        Some(b) => varint_len(b.len() as i32) + b.len(),
    }
}

#[inline]
fn put_bytes(out: &mut Vec<u8>, b: Option<&[u8]>) {
    match b {
        None => put_varint(out, -1),
        Some(b) => {
            put_varint(out, b.len() as i32);
            out.extend_from_slice(b);
        }
    }
}
