//! One partition's log: batches as producers sent them, with broker-assigned offsets.
//!
//! A batch is stored as one `Bytes` (its base offset and leader epoch rewritten, everything
//! else as received), so serving a fetch hands out the producer's own bytes. The log also keeps
//! what transactional reads need: the first offset of every open transaction (the last stable
//! offset is the smallest of them) and the aborted transactions' offset ranges.

use std::collections::BTreeMap;

use bytes::Bytes;

/// A stored batch.
#[derive(Debug, Clone)]
pub(crate) struct StoredBatch {
    pub base_offset: i64,
    pub last_offset: i64,
    pub max_timestamp: i64,
    pub bytes: Bytes,
}

/// An aborted transaction's range, as fetch responses report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AbortedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    /// The offset of its abort marker.
    pub last_offset: i64,
}

/// A partition's log.
#[derive(Debug, Default)]
pub(crate) struct PartitionLog {
    pub batches: Vec<StoredBatch>,
    pub log_start: i64,
    /// The next offset to assign (the log end offset; also the high watermark: one replica).
    pub next_offset: i64,
    /// Open transactions: producer id → first offset.
    pub open_txns: BTreeMap<i64, i64>,
    pub aborted: Vec<AbortedTxn>,
    pub bytes: usize,
}

impl PartitionLog {
    /// The high watermark.
    pub fn high_watermark(&self) -> i64 {
        self.next_offset
    }

    /// The last stable offset: the first offset of the oldest open transaction, or the high
    /// watermark when none is open.
    pub fn last_stable_offset(&self) -> i64 {
        self.open_txns
            .values()
            .copied()
            .min()
            .unwrap_or(self.next_offset)
            .min(self.next_offset)
    }

    /// Appends a batch whose offsets were assigned by the caller.
    pub fn append(&mut self, batch: StoredBatch) {
        self.next_offset = batch.last_offset + 1;
        self.bytes += batch.bytes.len();
        self.batches.push(batch);
    }

    /// The index of the first batch holding offsets at or after `offset`.
    pub fn batch_index(&self, offset: i64) -> usize {
        self.batches.partition_point(|b| b.last_offset < offset)
    }

    /// The offset of the first record with a timestamp at or after `ts` (None: none is).
    pub fn offset_for_timestamp(&self, ts: i64) -> Option<(i64, i64)> {
        let batch = self.batches.iter().find(|b| b.max_timestamp >= ts)?;
        let set = kingest_protocol::record::RecordSet::new(batch.bytes.clone());
        for raw in set {
            let decoded = raw
                .ok()?
                .decode(&kingest_protocol::record::DecodeOptions::default())
                .ok()?;
            if decoded.header().is_control() {
                continue;
            }
            for r in decoded.records().flatten() {
                if r.timestamp >= ts {
                    return Some((r.offset, r.timestamp));
                }
            }
        }
        None
    }
}
