//! Transactional reads: which batches a read_committed consumer drops.
//!
//! A fetch response under read_committed stops at the last stable offset and lists the
//! transactions that were aborted in its range as (producer id, first offset). The rule, as
//! the Java consumer's `CompletedFetch` applies it: walking the batches in offset order, an
//! aborted transaction becomes "active" once a batch reaches its first offset; a transactional
//! data batch of an active producer is dropped; that producer's abort marker (a control batch)
//! ends it. Control batches are never data: they are skipped, but the position still moves past
//! them, so a partition whose log ends with a marker or an aborted batch never stalls.

use std::collections::HashSet;

use super::control::{ControlRecord, ControlType};
use super::header::BatchHeader;

/// What a read_committed consumer does with a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchVerdict {
    /// Hand its records to the application.
    Deliver,
    /// Skip it: part of an aborted transaction.
    Aborted,
    /// Skip it: a control batch (commit or abort marker).
    Control,
}

/// The aborted-transaction bookkeeping of one partition's fetch response.
#[derive(Debug, Clone, Default)]
pub struct AbortedFilter {
    /// (first offset, producer id), sorted by first offset; `next` is the first not yet active.
    pending: Vec<(i64, i64)>,
    next: usize,
    active: HashSet<i64>,
}

impl AbortedFilter {
    /// A filter for a response's aborted transactions, given as (producer id, first offset).
    pub fn new(aborted: impl IntoIterator<Item = (i64, i64)>) -> Self {
        let mut pending: Vec<(i64, i64)> = aborted
            .into_iter()
            .map(|(pid, first)| (first, pid))
            .collect();
        pending.sort_unstable();
        Self {
            pending,
            next: 0,
            active: HashSet::new(),
        }
    }

    /// Decides a batch. Call it for every batch of the partition in offset order; `control`
    /// is the batch's control record when it is a control batch (from
    /// [`RecordBatch::control_record`](super::RecordBatch::control_record)).
    pub fn check(&mut self, header: &BatchHeader, control: Option<&ControlRecord>) -> BatchVerdict {
        if header.producer_id >= 0 {
            let last = header.last_offset();
            while let Some(&(first, pid)) = self.pending.get(self.next) {
                if first > last {
                    break;
                }
                self.active.insert(pid);
                self.next += 1;
            }
            if header.is_control() {
                if control.is_some_and(|c| c.kind == ControlType::Abort) {
                    self.active.remove(&header.producer_id);
                }
            } else if header.is_transactional() && self.active.contains(&header.producer_id) {
                return BatchVerdict::Aborted;
            }
        }
        if header.is_control() {
            BatchVerdict::Control
        } else {
            BatchVerdict::Deliver
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{BatchBuilder, BatchOptions, DecodeOptions, RecordSet};
    use bytes::BytesMut;

    /// A log: (producer, transactional?, Some(commit?) for a marker).
    fn log(entries: &[(i64, bool, Option<bool>)]) -> bytes::Bytes {
        let mut out = BytesMut::new();
        for (offset, (pid, txn, marker)) in entries.iter().enumerate() {
            let opts = BatchOptions {
                base_offset: offset as i64,
                producer_id: *pid,
                producer_epoch: 0,
                transactional: *txn,
                ..Default::default()
            };
            match marker {
                Some(commit) => out.extend_from_slice(
                    &BatchBuilder::control_batch(opts, ControlRecord::marker(*commit, 0), 0)
                        .unwrap(),
                ),
                None => {
                    let mut b = BatchBuilder::new(opts);
                    b.push(0, None, Some(format!("{offset}").as_bytes()), &[]);
                    b.finish_into(&mut out).unwrap();
                }
            }
        }
        out.freeze()
    }

    fn delivered(data: bytes::Bytes, aborted: &[(i64, i64)]) -> (Vec<i64>, Vec<BatchVerdict>) {
        let mut f = AbortedFilter::new(aborted.iter().copied());
        let mut offsets = Vec::new();
        let mut verdicts = Vec::new();
        for raw in RecordSet::new(data) {
            let batch = raw.unwrap().decode(&DecodeOptions::default()).unwrap();
            let control = batch.control_record().unwrap();
            let v = f.check(batch.header(), control.as_ref());
            verdicts.push(v);
            if v == BatchVerdict::Deliver {
                offsets.extend(batch.records().map(|r| r.unwrap().offset));
            }
        }
        (offsets, verdicts)
    }

    #[test]
    fn interleaved_committed_and_aborted_transactions() {
        use BatchVerdict::*;
        // Producers 1 and 2 interleave; 1 aborts (first offset 0), 2 commits; then a
        // non-transactional record, then producer 1 again in a new, committed transaction.
        let data = log(&[
            (1, true, None),
            (2, true, None),
            (1, true, None),
            (2, true, Some(true)),
            (1, true, Some(false)),
            (-1, false, None),
            (1, true, None),
            (1, true, Some(true)),
        ]);
        let (offsets, verdicts) = delivered(data, &[(1, 0)]);
        assert_eq!(offsets, vec![1, 5, 6]);
        assert_eq!(
            verdicts,
            vec![Aborted, Deliver, Aborted, Control, Control, Deliver, Deliver, Control]
        );
    }

    #[test]
    fn a_log_ending_with_an_abort_is_all_skipped_and_passed() {
        let data = log(&[(7, true, None), (7, true, None), (7, true, Some(false))]);
        let (offsets, verdicts) = delivered(data, &[(7, 0)]);
        assert!(offsets.is_empty());
        assert_eq!(
            verdicts.len(),
            3,
            "every batch, marker included, is walked past"
        );
    }

    #[test]
    fn without_aborted_transactions_everything_but_markers_is_delivered() {
        let data = log(&[(3, true, None), (3, true, Some(true)), (-1, false, None)]);
        assert_eq!(delivered(data, &[]).0, vec![0, 2]);
    }
}
