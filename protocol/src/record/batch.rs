//! A decoded batch and the borrowed record views it yields.
//!
//! Record parsing is the innermost loop of every consumer, so it works on a byte slice and a
//! position with a one-byte varint fast path, checks every length against the record's own
//! extent, and hands out `&[u8]` views: key, value and header bytes stay where they are.

use bytes::Bytes;

use super::compression::decompress;
use super::control::ControlRecord;
use super::error::{RecordError, RecordErrorKind};
use super::header::{BatchHeader, BATCH_HEADER_SIZE, CRC_START};
use super::legacy::{self, LegacyRecords};
use super::varint::{read_varint, read_varlong, VarintError};
use super::{DecodeOptions, TimestampType};

/// A batch whose checksum has been verified and whose records are ready to read.
#[derive(Debug, Clone)]
pub struct RecordBatch {
    header: BatchHeader,
    /// Magic 2: the records section (a slice of the response, or the decompressed buffer).
    /// Legacy: the message set holding the records (the message itself when uncompressed).
    data: Bytes,
    /// Legacy only: what to add to a record's offset field to get its absolute offset.
    legacy_offset_adjust: i64,
}

impl RecordBatch {
    pub(crate) fn from_raw(
        header: BatchHeader,
        bytes: &Bytes,
        position: usize,
        opts: &DecodeOptions,
    ) -> Result<RecordBatch, RecordError> {
        if header.magic < 2 {
            let (data, legacy_offset_adjust) = legacy::decode(&header, bytes, position, opts)?;
            return Ok(RecordBatch {
                header,
                data,
                legacy_offset_adjust,
            });
        }
        if opts.verify_crc {
            let computed = crc32c::crc32c(&bytes[CRC_START..]);
            if computed != header.crc {
                return Err(RecordError::in_set(
                    Some(header.base_offset),
                    position + 17,
                    RecordErrorKind::CrcMismatch {
                        algorithm: "CRC32C",
                        stored: header.crc,
                        computed,
                    },
                ));
            }
        }
        let codec = header.compression().map_err(|id| {
            RecordError::in_set(
                Some(header.base_offset),
                position + CRC_START,
                RecordErrorKind::UnknownCodec(id),
            )
        })?;
        let records = bytes.slice(BATCH_HEADER_SIZE..);
        let data = match codec {
            super::Compression::None => records,
            codec => decompress(codec, &records, opts.max_decompressed_size).map_err(|kind| {
                RecordError::in_set(Some(header.base_offset), position + BATCH_HEADER_SIZE, kind)
            })?,
        };
        Ok(RecordBatch {
            header,
            data,
            legacy_offset_adjust: 0,
        })
    }

    /// The batch's header.
    pub fn header(&self) -> &BatchHeader {
        &self.header
    }

    /// The (decompressed) records section the record views borrow from. Use
    /// `Bytes::slice_ref` on it to turn a borrowed key or value into an owned `Bytes` without
    /// copying.
    pub fn data(&self) -> &Bytes {
        &self.data
    }

    /// The batch's records, in offset order.
    pub fn records(&self) -> Records<'_> {
        if self.header.magic < 2 {
            return Records {
                inner: Inner::Legacy(LegacyRecords::new(
                    &self.data,
                    &self.header,
                    self.legacy_offset_adjust,
                )),
            };
        }
        let log_append_time = (self.header.timestamp_type() == TimestampType::LogAppendTime)
            .then_some(self.header.max_timestamp);
        Records {
            inner: Inner::V2(V2Records {
                data: &self.data,
                pos: 0,
                left: self.header.record_count,
                base_offset: self.header.base_offset,
                base_timestamp: self.header.first_timestamp,
                log_append_time,
                done: false,
            }),
        }
    }

    /// The control record of a control batch (a transaction marker), `None` for data batches.
    pub fn control_record(&self) -> Result<Option<ControlRecord>, RecordError> {
        if !self.header.is_control() {
            return Ok(None);
        }
        let Some(first) = self.records().next() else {
            return Err(RecordError::in_records(
                self.header.base_offset,
                0,
                RecordErrorKind::BadControlRecord("control batch holds no record"),
            ));
        };
        let record = first?;
        ControlRecord::parse(record.key, record.value)
            .map(Some)
            .map_err(|kind| RecordError::in_records(self.header.base_offset, 0, kind))
    }
}

/// One record, borrowing its key, value and headers from its batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// Its offset in the partition.
    pub offset: i64,
    /// Its timestamp in milliseconds since the epoch (-1 for magic-0 messages, which have none).
    pub timestamp: i64,
    /// The key, `None` when null.
    pub key: Option<&'a [u8]>,
    /// The value, `None` when null (a tombstone).
    pub value: Option<&'a [u8]>,
    /// The headers.
    pub headers: Headers<'a>,
}

/// A record's headers, parsed lazily from bytes validated when the record was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Headers<'a> {
    raw: &'a [u8],
    count: usize,
}

impl<'a> Headers<'a> {
    /// How many headers there are.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The headers in order.
    pub fn iter(&self) -> HeadersIter<'a> {
        HeadersIter {
            raw: self.raw,
            pos: 0,
            left: self.count,
        }
    }

    /// The value of the last header named `key` (Kafka allows repeats; the last one wins, as
    /// the Java client's `Headers.lastHeader`). `Some(None)` is a header with a null value.
    pub fn last(&self, key: &[u8]) -> Option<Option<&'a [u8]>> {
        self.iter().filter(|h| h.key == key).last().map(|h| h.value)
    }
}

impl<'a> IntoIterator for Headers<'a> {
    type Item = Header<'a>;
    type IntoIter = HeadersIter<'a>;
    fn into_iter(self) -> HeadersIter<'a> {
        self.iter()
    }
}

/// One record header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<'a> {
    /// The header's name (UTF-8 by the protocol, not checked here).
    pub key: &'a [u8],
    /// The header's value, `None` when null.
    pub value: Option<&'a [u8]>,
}

impl<'a> Header<'a> {
    /// The name as a string, when it is valid UTF-8.
    pub fn key_str(&self) -> Option<&'a str> {
        std::str::from_utf8(self.key).ok()
    }
}

/// Iterator over [`Headers`].
#[derive(Debug, Clone)]
pub struct HeadersIter<'a> {
    raw: &'a [u8],
    pos: usize,
    left: usize,
}

impl<'a> Iterator for HeadersIter<'a> {
    type Item = Header<'a>;

    fn next(&mut self) -> Option<Header<'a>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        // The bytes were validated by `parse_headers`; a failure here cannot happen, and ends
        // the iteration rather than panicking if it ever did.
        let key = read_bytes(self.raw, &mut self.pos).ok()??;
        let value = read_bytes(self.raw, &mut self.pos).ok()?;
        Some(Header { key, value })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.left))
    }
}

#[inline(always)]
fn read_bytes<'a>(buf: &'a [u8], pos: &mut usize) -> Result<Option<&'a [u8]>, ()> {
    let len = read_varint(buf, pos).map_err(|_| ())?;
    if len < 0 {
        return Ok(None);
    }
    let end = pos.checked_add(len as usize).ok_or(())?;
    let s = buf.get(*pos..end).ok_or(())?;
    *pos = end;
    Ok(Some(s))
}

/// The records of a batch, as [`Record`] views. Yields an error (once, then stops) where a
/// record is malformed.
#[derive(Debug, Clone)]
pub struct Records<'a> {
    inner: Inner<'a>,
}

#[derive(Debug, Clone)]
enum Inner<'a> {
    V2(V2Records<'a>),
    Legacy(LegacyRecords<'a>),
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<Record<'a>, RecordError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.inner {
            Inner::V2(r) => r.next(),
            Inner::Legacy(r) => r.next(),
        }
    }
}

#[derive(Debug, Clone)]
struct V2Records<'a> {
    data: &'a [u8],
    pos: usize,
    left: i32,
    base_offset: i64,
    base_timestamp: i64,
    log_append_time: Option<i64>,
    done: bool,
}

impl<'a> V2Records<'a> {
    #[inline]
    fn next(&mut self) -> Option<Result<Record<'a>, RecordError>> {
        if self.done {
            return None;
        }
        if self.left == 0 {
            self.done = true;
            let extra = self.data.len() - self.pos;
            if extra != 0 {
                return Some(Err(
                    self.err(RecordErrorKind::TrailingBytes { extra, count: 0 })
                ));
            }
            return None;
        }
        match self.parse() {
            Ok(r) => {
                self.left -= 1;
                Some(Ok(r))
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }

    fn err(&self, kind: RecordErrorKind) -> RecordError {
        let kind = match kind {
            RecordErrorKind::TrailingBytes { extra, .. } => RecordErrorKind::TrailingBytes {
                extra,
                count: self.left_total(),
            },
            k => k,
        };
        RecordError::in_records(self.base_offset, self.pos, kind)
    }

    fn left_total(&self) -> i32 {
        self.left
    }

    #[inline(always)]
    fn varint(&self, pos: &mut usize, end: usize, what: &'static str) -> Result<i32, RecordError> {
        read_varint(&self.data[..end], pos).map_err(|e| self.varint_err(e, *pos, end, what))
    }

    fn varint_err(&self, e: VarintError, at: usize, end: usize, what: &'static str) -> RecordError {
        let kind = match e {
            VarintError::Truncated => RecordErrorKind::Truncated {
                what,
                needed: end - at + 1,
                available: end - at,
            },
            VarintError::Overlong => RecordErrorKind::BadVarint(what),
        };
        RecordError::in_records(self.base_offset, at, kind)
    }

    #[inline(always)]
    fn slice(
        &self,
        pos: &mut usize,
        end: usize,
        what: &'static str,
    ) -> Result<Option<&'a [u8]>, RecordError> {
        let at = *pos;
        let len = self.varint(pos, end, what)?;
        if len < 0 {
            if len != -1 {
                return Err(RecordError::in_records(
                    self.base_offset,
                    at,
                    RecordErrorKind::InvalidLength {
                        what,
                        value: i64::from(len),
                    },
                ));
            }
            return Ok(None);
        }
        let len = len as usize;
        if end - *pos < len {
            return Err(RecordError::in_records(
                self.base_offset,
                *pos,
                RecordErrorKind::Truncated {
                    what,
                    needed: len,
                    available: end - *pos,
                },
            ));
        }
        let s = &self.data[*pos..*pos + len];
        *pos += len;
        Ok(Some(s))
    }

    #[inline(always)]
    fn parse(&mut self) -> Result<Record<'a>, RecordError> {
        let data = self.data;
        let start = self.pos;
        let mut pos = start;
        let length = self.varint(&mut pos, data.len(), "record length")?;
        if length < 1 {
            return Err(RecordError::in_records(
                self.base_offset,
                start,
                RecordErrorKind::InvalidLength {
                    what: "record length",
                    value: i64::from(length),
                },
            ));
        }
        let body = pos;
        let end = match body.checked_add(length as usize) {
            Some(end) if end <= data.len() => end,
            _ => {
                return Err(RecordError::in_records(
                    self.base_offset,
                    start,
                    RecordErrorKind::Truncated {
                        what: "record",
                        needed: length as usize,
                        available: data.len() - body,
                    },
                ))
            }
        };
        pos += 1; // attributes: unused by every record format so far
        let ts_at = pos;
        let timestamp_delta = read_varlong(&data[..end], &mut pos)
            .map_err(|e| self.varint_err(e, ts_at, end, "timestamp delta"))?;
        let offset_delta = self.varint(&mut pos, end, "offset delta")?;
        let key = self.slice(&mut pos, end, "key")?;
        let value = self.slice(&mut pos, end, "value")?;
        let headers = self.parse_headers(&mut pos, end)?;
        if pos != end {
            return Err(RecordError::in_records(
                self.base_offset,
                start,
                RecordErrorKind::RecordLengthMismatch {
                    declared: length as usize,
                    actual: pos - body,
                },
            ));
        }
        self.pos = end;
        Ok(Record {
            offset: self.base_offset.wrapping_add(i64::from(offset_delta)),
            timestamp: match self.log_append_time {
                Some(t) => t,
                None => self.base_timestamp.wrapping_add(timestamp_delta),
            },
            key,
            value,
            headers,
        })
    }

    #[inline(always)]
    fn parse_headers(&self, pos: &mut usize, end: usize) -> Result<Headers<'a>, RecordError> {
        let at = *pos;
        let count = self.varint(pos, end, "header count")?;
        if count < 0 {
            return Err(RecordError::in_records(
                self.base_offset,
                at,
                RecordErrorKind::InvalidLength {
                    what: "header count",
                    value: i64::from(count),
                },
            ));
        }
        let start = *pos;
        for _ in 0..count {
            let key_at = *pos;
            if self.slice(pos, end, "header key")?.is_none() {
                return Err(RecordError::in_records(
                    self.base_offset,
                    key_at,
                    RecordErrorKind::InvalidLength {
                        what: "header key length",
                        value: -1,
                    },
                ));
            }
            self.slice(pos, end, "header value")?;
        }
        Ok(Headers {
            raw: &self.data[start..*pos],
            count: count as usize,
        })
    }
}
