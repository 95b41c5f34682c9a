//! Legacy message sets: magic 0 (Kafka 0.8-0.9) and magic 1 (0.10), which old topics still hold.
//!
//! A legacy message is `offset, size, crc, magic, attributes, [timestamp], key, value`. A
//! compressed one is a *wrapper*: its value is a compressed message set of inner messages, and
//! its offset is that of its last inner message. Inner offsets are absolute under magic 0 and
//! relative (0, 1, ...) under magic 1, where the absolute offset is the wrapper's offset minus the
//! last inner offset plus the inner one. A magic-1 wrapper with log-append time gives every inner
//! message its own timestamp. The writer here builds such sets for tests and tools.

use bytes::Bytes;

use super::batch::{Headers, Record};
use super::compression::{compress, decompress, fix_legacy_lz4_header};
use super::error::{RecordError, RecordErrorKind, WriteError};
use super::header::{
    be_i32, be_i64, BatchHeader, LEGACY_MIN_SIZE_V0, LEGACY_MIN_SIZE_V1, LOG_OVERHEAD, MAGIC_OFFSET,
};
use super::{Compression, DecodeOptions, TimestampType};

/// Checks a legacy message and returns the message set holding its records (the message itself
/// when uncompressed, its decompressed value otherwise) and the offset adjustment for them.
pub(crate) fn decode(
    header: &BatchHeader,
    bytes: &Bytes,
    position: usize,
    opts: &DecodeOptions,
) -> Result<(Bytes, i64), RecordError> {
    let err = |at: usize, kind| RecordError::in_set(Some(header.base_offset), position + at, kind);
    if opts.verify_crc {
        let computed = crc32fast::hash(&bytes[MAGIC_OFFSET..]);
        if computed != header.crc {
            return Err(err(
                12,
                RecordErrorKind::CrcMismatch {
                    algorithm: "CRC32",
                    stored: header.crc,
                    computed,
                },
            ));
        }
    }
    let codec = match header.compression() {
        Ok(Compression::Zstd) => return Err(err(17, RecordErrorKind::UnknownCodec(4))),
        Ok(c) => c,
        Err(id) => return Err(err(17, RecordErrorKind::UnknownCodec(id))),
    };
    let (_, value, _) = key_value(bytes, header.magic).map_err(|(at, kind)| err(at, kind))?;
    if codec == Compression::None {
        return Ok((bytes.clone(), 0));
    }
    let Some((value_at, value_len)) = value else {
        return Err(err(
            LOG_OVERHEAD,
            RecordErrorKind::InvalidLength {
                what: "compressed wrapper value length",
                value: -1,
            },
        ));
    };
    let compressed = &bytes[value_at..value_at + value_len];
    let inner = if codec == Compression::Lz4 && header.magic == 0 {
        decompress(
            codec,
            &fix_legacy_lz4_header(compressed),
            opts.max_decompressed_size,
        )
    } else {
        decompress(codec, compressed, opts.max_decompressed_size)
    }
    .map_err(|kind| err(value_at, kind))?;

    // One pass over the inner messages: check them (structure, nesting, CRCs) and find the last
    // offset, which magic-1 relative offsets are counted back from.
    let mut last = None;
    let mut scan = LegacyRecords {
        data: &inner,
        pos: 0,
        adjust: 0,
        log_append_time: None,
        base_offset: header.base_offset,
        done: false,
    };
    loop {
        let at = scan.pos;
        match scan.next() {
            None => break,
            Some(Err(e)) => return Err(e),
            Some(Ok(r)) => {
                if opts.verify_crc {
                    let end = at + LOG_OVERHEAD + be_i32(&inner, at + 8) as usize;
                    let stored = be_i32(&inner, at + 12) as u32;
                    let computed = crc32fast::hash(&inner[at + MAGIC_OFFSET..end]);
                    if stored != computed {
                        return Err(RecordError::in_records(
                            header.base_offset,
                            at + 12,
                            RecordErrorKind::CrcMismatch {
                                algorithm: "CRC32",
                                stored,
                                computed,
                            },
                        ));
                    }
                }
                last = Some(r.offset);
            }
        }
    }
    let adjust = match last {
        Some(last) if header.magic >= 1 => header.base_offset.wrapping_sub(last),
        _ => 0,
    };
    Ok((inner, adjust))
}

/// Finds the key and value of a whole legacy message `m`: `(position, length)` of each, `None`
/// when null, and where the message ends. Errors carry their byte position in `m`.
#[allow(clippy::type_complexity)]
fn key_value(
    m: &[u8],
    magic: i8,
) -> Result<(Option<(usize, usize)>, Option<(usize, usize)>, usize), (usize, RecordErrorKind)> {
    let mut pos = if magic >= 1 { 26 } else { 18 };
    let mut field =
        |what: &'static str| -> Result<Option<(usize, usize)>, (usize, RecordErrorKind)> {
            if m.len() < pos + 4 {
                return Err((
                    pos,
                    RecordErrorKind::Truncated {
                        what,
                        needed: 4,
                        available: m.len().saturating_sub(pos),
                    },
                ));
            }
            let len = be_i32(m, pos);
            let at = pos + 4;
            if len == -1 {
                pos = at;
                return Ok(None);
            }
            if len < 0 || len as usize > m.len() - at {
                return Err((
                    pos,
                    RecordErrorKind::InvalidLength {
                        what,
                        value: i64::from(len),
                    },
                ));
            }
            pos = at + len as usize;
            Ok(Some((at, len as usize)))
        };
    let key = field("message key length")?;
    let value = field("message value length")?;
    if pos != m.len() {
        return Err((
            pos,
            RecordErrorKind::RecordLengthMismatch {
                declared: m.len() - LOG_OVERHEAD,
                actual: pos - LOG_OVERHEAD,
            },
        ));
    }
    Ok((key, value, pos))
}

/// The records of a legacy message set.
#[derive(Debug, Clone)]
pub(crate) struct LegacyRecords<'a> {
    data: &'a [u8],
    pos: usize,
    adjust: i64,
    log_append_time: Option<i64>,
    base_offset: i64,
    done: bool,
}

impl<'a> LegacyRecords<'a> {
    pub(crate) fn new(data: &'a [u8], wrapper: &BatchHeader, adjust: i64) -> Self {
        let compressed = wrapper.record_count < 0;
        let log_append_time = (compressed
            && wrapper.magic >= 1
            && wrapper.timestamp_type() == TimestampType::LogAppendTime)
            .then_some(wrapper.max_timestamp);
        Self {
            data,
            pos: 0,
            adjust,
            log_append_time,
            base_offset: wrapper.base_offset,
            done: false,
        }
    }

    pub(crate) fn next(&mut self) -> Option<Result<Record<'a>, RecordError>> {
        if self.done || self.pos >= self.data.len() {
            return None;
        }
        match self.parse() {
            Ok(r) => Some(Ok(r)),
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }

    fn parse(&mut self) -> Result<Record<'a>, RecordError> {
        let at = self.pos;
        let err = |off: usize, kind| RecordError::in_records(self.base_offset, at + off, kind);
        let rest = &self.data[at..];
        if rest.len() < LOG_OVERHEAD {
            return Err(err(
                0,
                RecordErrorKind::Truncated {
                    what: "message",
                    needed: LOG_OVERHEAD,
                    available: rest.len(),
                },
            ));
        }
        let size = be_i32(rest, 8);
        if size < LEGACY_MIN_SIZE_V0 as i32 {
            return Err(err(
                8,
                RecordErrorKind::InvalidLength {
                    what: "message size",
                    value: i64::from(size),
                },
            ));
        }
        let total = LOG_OVERHEAD + size as usize;
        if rest.len() < total {
            return Err(err(
                0,
                RecordErrorKind::Truncated {
                    what: "message",
                    needed: total,
                    available: rest.len(),
                },
            ));
        }
        let m = &rest[..total];
        let magic = m[MAGIC_OFFSET] as i8;
        match magic {
            0 => {}
            1 if size as usize >= LEGACY_MIN_SIZE_V1 => {}
            1 => {
                return Err(err(
                    8,
                    RecordErrorKind::InvalidLength {
                        what: "message size",
                        value: i64::from(size),
                    },
                ))
            }
            other => return Err(err(MAGIC_OFFSET, RecordErrorKind::UnsupportedMagic(other))),
        }
        if m[MAGIC_OFFSET + 1] & 0x07 != 0 {
            return Err(err(MAGIC_OFFSET + 1, RecordErrorKind::NestedCompression));
        }
        let (key, value, _) = key_value(m, magic).map_err(|(off, kind)| err(off, kind))?;
        let timestamp = match (self.log_append_time, magic) {
            (Some(t), _) => t,
            (None, 1) => be_i64(m, 18),
            _ => -1,
        };
        self.pos = at + total;
        Ok(Record {
            offset: be_i64(m, 0).wrapping_add(self.adjust),
            timestamp,
            key: key.map(|(p, l)| &m[p..p + l]),
            value: value.map(|(p, l)| &m[p..p + l]),
            headers: Headers::default(),
        })
    }
}

/// One record for [`write_message_set`].
#[derive(Debug, Clone, Copy)]
pub struct LegacyRecord<'a> {
    /// Its timestamp (ignored by magic 0).
    pub timestamp: i64,
    /// Its key.
    pub key: Option<&'a [u8]>,
    /// Its value.
    pub value: Option<&'a [u8]>,
}

/// Appends a legacy message set holding `records` from `base_offset` on: one message per record
/// when uncompressed, otherwise one wrapper message (whose offset is the last record's) around
/// the compressed inner messages, with relative inner offsets under magic 1, as Kafka 0.10
/// brokers stored them.
pub fn write_message_set(
    out: &mut Vec<u8>,
    magic: i8,
    compression: Compression,
    timestamp_type: TimestampType,
    base_offset: i64,
    records: &[LegacyRecord<'_>],
) -> Result<(), WriteError> {
    if compression == Compression::None {
        for (i, r) in records.iter().enumerate() {
            write_message(
                out,
                magic,
                0,
                base_offset + i as i64,
                r.timestamp,
                r.key,
                r.value,
            );
        }
        return Ok(());
    }
    let mut inner = Vec::new();
    for (i, r) in records.iter().enumerate() {
        let offset = if magic >= 1 {
            i as i64
        } else {
            base_offset + i as i64
        };
        write_message(&mut inner, magic, 0, offset, r.timestamp, r.key, r.value);
    }
    let mut compressed = Vec::new();
    compress(compression, None, &inner, &mut compressed)?;
    let mut attributes = compression.id() as i8;
    if magic >= 1 && timestamp_type == TimestampType::LogAppendTime {
        attributes |= 0x08;
    }
    let max_ts = records.iter().map(|r| r.timestamp).max().unwrap_or(-1);
    let last = base_offset + records.len().saturating_sub(1) as i64;
    write_message(
        out,
        magic,
        attributes,
        last,
        max_ts,
        None,
        Some(&compressed),
    );
    Ok(())
}

fn write_message(
    out: &mut Vec<u8>,
    magic: i8,
    attributes: i8,
    offset: i64,
    timestamp: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
) {
    let start = out.len();
    out.extend_from_slice(&offset.to_be_bytes());
    out.extend_from_slice(&[0; 8]); // size and crc, filled in below
    out.push(magic as u8);
    out.push(attributes as u8);
    if magic >= 1 {
        out.extend_from_slice(&timestamp.to_be_bytes());
    }
    for field in [key, value] {
        match field {
            None => out.extend_from_slice(&(-1i32).to_be_bytes()),
            Some(b) => {
                out.extend_from_slice(&(b.len() as i32).to_be_bytes());
                out.extend_from_slice(b);
            }
        }
    }
    let size = (out.len() - start - LOG_OVERHEAD) as i32;
    out[start + 8..start + 12].copy_from_slice(&size.to_be_bytes());
    let crc = crc32fast::hash(&out[start + MAGIC_OFFSET..]);
    out[start + 12..start + 16].copy_from_slice(&crc.to_be_bytes());
}
