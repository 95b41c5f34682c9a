//! Producer ids, epochs and sequence numbers (idempotence), and the transactions open on them.
//!
//! The rules follow Kafka's producer state: a batch is appended when its first sequence is the
//! one after the partition's last; a batch repeating one of the last five is a duplicate and is
//! answered with the offset it got the first time; anything else is out of order. An older
//! epoch is fenced.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

use kingest_protocol::ErrorCode;

/// How many recent batches per partition are remembered for duplicate detection (Kafka's 5).
const RECENT: usize = 5;

/// Sequence state of one producer on one partition.
#[derive(Debug, Clone, Default)]
pub(crate) struct SeqState {
    pub epoch: i16,
    /// (first sequence, last sequence, base offset) of recent batches.
    pub recent: VecDeque<(i32, i32, i64)>,
}

/// A transaction in progress.
#[derive(Debug, Clone)]
pub(crate) struct Txn {
    pub partitions: BTreeSet<(String, i32)>,
    pub groups: BTreeSet<String>,
    /// Offsets sent with TxnOffsetCommit, applied to the groups on commit.
    pub pending_offsets: Vec<(String, String, i32, i64, Option<String>)>,
    /// When its first partition or group joined: the transaction timeout counts from here.
    pub started: Instant,
}

impl Default for Txn {
    fn default() -> Self {
        Self {
            partitions: BTreeSet::new(),
            groups: BTreeSet::new(),
            pending_offsets: Vec::new(),
            started: Instant::now(),
        }
    }
}

/// One producer id.
#[derive(Debug, Clone, Default)]
pub(crate) struct ProducerEntry {
    pub epoch: i16,
    pub seqs: HashMap<(String, i32), SeqState>,
    pub txn: Option<Txn>,
    /// The transaction timeout InitProducerId asked for (transactional producers only): an open
    /// transaction older than this is aborted by the coordinator and the epoch bumped, fencing
    /// the producer that let it run over.
    pub txn_timeout: Option<Duration>,
}

/// What to do with a produced batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SeqCheck {
    Append,
    Duplicate(i64),
    Reject(ErrorCode),
}

/// All producers.
#[derive(Debug, Default)]
pub(crate) struct Producers {
    next_id: i64,
    pub by_id: HashMap<i64, ProducerEntry>,
    pub by_txn_id: HashMap<String, i64>,
}

impl Producers {
    /// InitProducerId: a new id for an idempotent producer; for a transactional id, the same id
    /// with its epoch bumped (fencing the previous instance, whose open transaction the caller
    /// aborts first). Returns (id, epoch).
    pub fn init(
        &mut self,
        txn_id: Option<&str>,
        current: Option<(i64, i16)>,
    ) -> Result<(i64, i16), ErrorCode> {
        if let Some(txn_id) = txn_id {
            if let Some(&id) = self.by_txn_id.get(txn_id) {
                let entry = self.by_id.entry(id).or_default();
                if let Some((cur_id, cur_epoch)) = current {
                    if cur_id >= 0 && (cur_id != id || cur_epoch != entry.epoch) {
                        return Err(ErrorCode::ProducerFenced);
                    }
                }
                entry.epoch = entry.epoch.checked_add(1).unwrap_or(0);
                entry.seqs.clear();
                return Ok((id, entry.epoch));
            }
        } else if let Some((id, epoch)) = current {
            // KIP-360: an idempotent producer bumps its own epoch after an unknown outcome.
            if let Some(entry) = self.by_id.get_mut(&id) {
                if entry.epoch != epoch {
                    return Err(ErrorCode::InvalidProducerEpoch);
                }
                entry.epoch = entry.epoch.checked_add(1).unwrap_or(0);
                entry.seqs.clear();
                return Ok((id, entry.epoch));
            }
        }
        if self.by_id.len() >= super::MAX_PRODUCERS {
            return Err(ErrorCode::ResourceNotFound);
        }
        let id = self.next_id;
        self.next_id += 1;
        self.by_id.insert(id, ProducerEntry::default());
        if let Some(t) = txn_id {
            self.by_txn_id.insert(t.to_owned(), id);
        }
        Ok((id, 0))
    }

    /// Checks a batch's producer id, epoch and sequences against the partition's state.
    pub fn check(
        &self,
        topic: &str,
        partition: i32,
        id: i64,
        epoch: i16,
        first_seq: i32,
        count: i32,
    ) -> SeqCheck {
        let Some(entry) = self.by_id.get(&id) else {
            return SeqCheck::Reject(ErrorCode::UnknownProducerId);
        };
        if epoch < entry.epoch {
            return SeqCheck::Reject(ErrorCode::InvalidProducerEpoch);
        }
        let last_seq = first_seq.wrapping_add(count - 1) & i32::MAX;
        match entry.seqs.get(&(topic.to_owned(), partition)) {
            Some(s) if s.epoch == epoch => {
                if let Some(&(_, _, offset)) = s
                    .recent
                    .iter()
                    .find(|(f, l, _)| *f == first_seq && *l == last_seq)
                {
                    return SeqCheck::Duplicate(offset);
                }
                let expected = s
                    .recent
                    .back()
                    .map_or(0, |&(_, l, _)| l.wrapping_add(1) & i32::MAX);
                if first_seq == expected {
                    SeqCheck::Append
                } else {
                    SeqCheck::Reject(ErrorCode::OutOfOrderSequenceNumber)
                }
            }
            // A new epoch (or a partition this producer never wrote) starts at sequence 0.
            _ if first_seq == 0 => SeqCheck::Append,
            _ => SeqCheck::Reject(ErrorCode::OutOfOrderSequenceNumber),
        }
    }

    /// Records an appended batch.
    #[allow(clippy::too_many_arguments)]
    pub fn appended(
        &mut self,
        topic: &str,
        partition: i32,
        id: i64,
        epoch: i16,
        first_seq: i32,
        count: i32,
        base_offset: i64,
    ) {
        let Some(entry) = self.by_id.get_mut(&id) else {
            return;
        };
        let s = entry.seqs.entry((topic.to_owned(), partition)).or_default();
        if s.epoch != epoch {
            s.epoch = epoch;
            s.recent.clear();
        }
        s.recent.push_back((
            first_seq,
            first_seq.wrapping_add(count - 1) & i32::MAX,
            base_offset,
        ));
        if s.recent.len() > RECENT {
            s.recent.pop_front();
        }
    }

    /// Transactional producers whose open transaction ran past its timeout: (id, epoch).
    pub fn timed_out(&self, now: Instant) -> Vec<(i64, i16)> {
        self.by_id
            .iter()
            .filter(|(_, e)| {
                matches!((&e.txn, e.txn_timeout), (Some(t), Some(limit)) if now.duration_since(t.started) >= limit)
            })
            .map(|(&id, e)| (id, e.epoch))
            .collect()
    }

    /// Bumps a producer's epoch (the coordinator fencing it after aborting its transaction).
    pub fn bump_epoch(&mut self, id: i64) {
        if let Some(entry) = self.by_id.get_mut(&id) {
            entry.epoch = entry.epoch.checked_add(1).unwrap_or(0);
            entry.seqs.clear();
        }
    }

    /// The producer of a transactional id, checking its id and epoch.
    pub fn txn_producer(
        &mut self,
        txn_id: &str,
        id: i64,
        epoch: i16,
    ) -> Result<&mut ProducerEntry, ErrorCode> {
        let Some(&known) = self.by_txn_id.get(txn_id) else {
            return Err(ErrorCode::InvalidProducerIdMapping);
        };
        if known != id {
            return Err(ErrorCode::InvalidProducerIdMapping);
        }
        let entry = self
            .by_id
            .get_mut(&id)
            .ok_or(ErrorCode::InvalidProducerIdMapping)?;
        if epoch < entry.epoch {
            return Err(ErrorCode::ProducerFenced);
        }
        if epoch > entry.epoch {
            return Err(ErrorCode::InvalidProducerEpoch);
        }
        Ok(entry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequences_duplicates_and_fencing() {
        let mut p = Producers::default();
        let (id, epoch) = p.init(None, None).unwrap();
        assert_eq!(p.check("t", 0, id, epoch, 0, 3), SeqCheck::Append);
        p.appended("t", 0, id, epoch, 0, 3, 100);
        assert_eq!(p.check("t", 0, id, epoch, 0, 3), SeqCheck::Duplicate(100));
        assert_eq!(
            p.check("t", 0, id, epoch, 5, 1),
            SeqCheck::Reject(ErrorCode::OutOfOrderSequenceNumber)
        );
        assert_eq!(p.check("t", 0, id, epoch, 3, 1), SeqCheck::Append);
        assert_eq!(
            p.check("t", 1, id, epoch, 7, 1),
            SeqCheck::Reject(ErrorCode::OutOfOrderSequenceNumber)
        );
        assert_eq!(
            p.check("t", 0, 999, 0, 0, 1),
            SeqCheck::Reject(ErrorCode::UnknownProducerId)
        );
        // Epoch bump (KIP-360): sequences restart; the old epoch is fenced.
        let (same, bumped) = p.init(None, Some((id, epoch))).unwrap();
        assert_eq!((same, bumped), (id, 1));
        assert_eq!(
            p.check("t", 0, id, 0, 3, 1),
            SeqCheck::Reject(ErrorCode::InvalidProducerEpoch)
        );
        assert_eq!(p.check("t", 0, id, 1, 0, 1), SeqCheck::Append);
    }

    #[test]
    fn transactional_ids_keep_their_producer_id() {
        let mut p = Producers::default();
        let (a, e0) = p.init(Some("tx"), None).unwrap();
        let (b, e1) = p.init(Some("tx"), None).unwrap();
        assert_eq!((a, e0 + 1), (b, e1));
        assert_eq!(
            p.txn_producer("tx", a, e0).unwrap_err(),
            ErrorCode::ProducerFenced
        );
        assert!(p.txn_producer("tx", a, e1).is_ok());
    }
}
