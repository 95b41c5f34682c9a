//! Walking a record set (a partition's `records` bytes in a fetch response) batch by batch.

use bytes::Bytes;

use super::batch::RecordBatch;
use super::error::{RecordError, RecordErrorKind};
use super::header::{
    be_i32, be_i64, BatchHeader, BATCH_HEADER_SIZE, LEGACY_MIN_SIZE_V0, LEGACY_MIN_SIZE_V1,
    LOG_OVERHEAD, MAGIC_OFFSET,
};
use super::DecodeOptions;

/// A batch whose end is missing from the record set: brokers cut the last batch of a fetch
/// response at the size limit, so this is normal at the end of a response, not an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Incomplete {
    /// The batch's position in the record set.
    pub at: usize,
    /// Its base offset, when the first 8 bytes arrived.
    pub base_offset: Option<i64>,
    /// The bytes the whole batch needs, when its length field arrived.
    pub needed: Option<usize>,
    /// The bytes that arrived.
    pub available: usize,
}

/// The batches of a record set, yielded as [`RawBatch`]es without copying.
///
/// Iteration stops at the end, at a batch cut off at the end (see [`RecordSet::incomplete`]), or
/// after the first error (a corrupt length leaves no way to find the next batch).
#[derive(Debug, Clone)]
pub struct RecordSet {
    data: Bytes,
    pos: usize,
    incomplete: Option<Incomplete>,
    failed: bool,
}

impl RecordSet {
    /// A record set over `data`.
    pub fn new(data: Bytes) -> Self {
        Self {
            data,
            pos: 0,
            incomplete: None,
            failed: false,
        }
    }

    /// The batch cut off at the end, once iteration has reached it.
    pub fn incomplete(&self) -> Option<Incomplete> {
        self.incomplete
    }

    /// The position of the next batch in the record set.
    pub fn position(&self) -> usize {
        self.pos
    }

    fn fail(&mut self, e: RecordError) -> Option<Result<RawBatch, RecordError>> {
        self.failed = true;
        Some(Err(e))
    }

    fn cut(
        &mut self,
        base_offset: Option<i64>,
        needed: Option<usize>,
    ) -> Option<Result<RawBatch, RecordError>> {
        self.incomplete = Some(Incomplete {
            at: self.pos,
            base_offset,
            needed,
            available: self.data.len() - self.pos,
        });
        self.pos = self.data.len();
        None
    }
}

impl Iterator for RecordSet {
    type Item = Result<RawBatch, RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.data.len() {
            return None;
        }
        let at = self.pos;
        let rest = &self.data[at..];
        if rest.len() < LOG_OVERHEAD {
            let base = (rest.len() >= 8).then(|| be_i64(rest, 0));
            return self.cut(base, None);
        }
        let base_offset = be_i64(rest, 0);
        let length = be_i32(rest, 8);
        // The smallest thing a record set can hold is a magic-0 message.
        if length < LEGACY_MIN_SIZE_V0 as i32 {
            return self.fail(RecordError::in_set(
                Some(base_offset),
                at + 8,
                RecordErrorKind::InvalidLength {
                    what: "batch length",
                    value: i64::from(length),
                },
            ));
        }
        let total = LOG_OVERHEAD + length as usize;
        if rest.len() < total {
            return self.cut(Some(base_offset), Some(total));
        }
        let magic = rest[MAGIC_OFFSET] as i8;
        let header = match magic {
            2 => {
                if total < BATCH_HEADER_SIZE {
                    return self.fail(RecordError::in_set(
                        Some(base_offset),
                        at + 8,
                        RecordErrorKind::InvalidLength {
                            what: "batch length",
                            value: i64::from(length),
                        },
                    ));
                }
                match BatchHeader::parse_v2(&rest[..total], at) {
                    Ok(h) => h,
                    Err(e) => return self.fail(e),
                }
            }
            0 | 1 => {
                let min = if magic == 0 {
                    LEGACY_MIN_SIZE_V0
                } else {
                    LEGACY_MIN_SIZE_V1
                };
                if (length as usize) < min {
                    return self.fail(RecordError::in_set(
                        Some(base_offset),
                        at + 8,
                        RecordErrorKind::InvalidLength {
                            what: "message size",
                            value: i64::from(length),
                        },
                    ));
                }
                BatchHeader::parse_legacy(&rest[..total])
            }
            other => {
                return self.fail(RecordError::in_set(
                    Some(base_offset),
                    at + MAGIC_OFFSET,
                    RecordErrorKind::UnsupportedMagic(other),
                ))
            }
        };
        self.pos += total;
        Some(Ok(RawBatch {
            header,
            bytes: self.data.slice(at..at + total),
            position: at,
        }))
    }
}

/// One batch of a record set: its header and its bytes, not yet checked or decompressed.
#[derive(Debug, Clone)]
pub struct RawBatch {
    header: BatchHeader,
    bytes: Bytes,
    position: usize,
}

impl RawBatch {
    /// The batch's header.
    pub fn header(&self) -> &BatchHeader {
        &self.header
    }

    /// The whole batch as it was on the wire (a slice of the record set).
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// Where the batch starts in its record set.
    pub fn position(&self) -> usize {
        self.position
    }

    /// Verifies the checksum and decompresses, giving the batch's records.
    pub fn decode(&self, opts: &DecodeOptions) -> Result<RecordBatch, RecordError> {
        RecordBatch::from_raw(self.header, &self.bytes, self.position, opts)
    }

    /// Parses one whole batch from the front of `data`, refusing a truncated one (unlike
    /// [`RecordSet`], which treats a cut-off last batch as the normal end of a fetch response).
    pub fn parse(data: Bytes) -> Result<RawBatch, RecordError> {
        let len = data.len();
        let mut set = RecordSet::new(data);
        match set.next() {
            Some(result) => result,
            None => {
                let cut = set.incomplete();
                Err(RecordError::in_set(
                    cut.and_then(|c| c.base_offset),
                    0,
                    RecordErrorKind::Truncated {
                        what: "record batch",
                        needed: cut.and_then(|c| c.needed).unwrap_or(LOG_OVERHEAD),
                        available: len,
                    },
                ))
            }
        }
    }
}
