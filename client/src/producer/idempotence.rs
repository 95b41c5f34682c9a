//! Idempotent-producer bookkeeping: the producer id and epoch, and per partition the sequence
//! numbers handed out, the batches sent but not yet acknowledged, and what to do when a broker
//! says the sequence is wrong.
//!
//! It follows the Java producer's `TransactionManager` for a non-transactional idempotent
//! producer:
//!
//! * sequences are assigned when a batch is first drained for sending, so that they follow the
//!   order batches leave in; a retried batch keeps its sequence (the broker then deduplicates a
//!   batch whose first attempt did land), and a retry is only sent when it is the oldest
//!   unacknowledged batch of its partition, so retries never reorder records;
//! * `OUT_OF_ORDER_SEQUENCE_NUMBER` and `UNKNOWN_PRODUCER_ID` are retried; when they show a real
//!   gap (and not just a batch that raced ahead of a failed one) the producer gets a new epoch
//!   and the partition's unacknowledged batches are given new sequences from 0, once none of its
//!   requests is still in flight;
//! * a batch that expired after being sent leaves its partition *unresolved*: no new batch is
//!   sent to it until the outstanding ones finish; if the acknowledged sequence then does not
//!   reach the expired batch's end, the epoch is bumped.
//!
//! Epochs are per producer, sequences per partition: after a bump every other partition also
//! starts again at 0 under the new epoch, as soon as it has nothing unacknowledged under the old
//! one (brokers accept a new epoch only at sequence 0).
//!
//! Everything here is plain data owned by the sender task, so it is tested without a broker.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use kingest_protocol::ErrorCode;

/// A producer id and epoch, as InitProducerId returns them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProducerIdEpoch {
    /// The producer id (-1: none).
    pub id: i64,
    /// The epoch (-1: none).
    pub epoch: i16,
}

impl ProducerIdEpoch {
    /// No producer id yet.
    pub const NONE: ProducerIdEpoch = ProducerIdEpoch { id: -1, epoch: -1 };

    /// Whether the broker handed it out.
    pub fn is_valid(self) -> bool {
        self.id >= 0 && self.epoch >= 0
    }
}

/// `sequence + n`, wrapping from `i32::MAX` to 0 as brokers expect (Java's
/// `DefaultRecordBatch.incrementSequence`).
pub(crate) fn increment_sequence(sequence: i32, n: i32) -> i32 {
    if sequence > i32::MAX - n {
        n - (i32::MAX - sequence) - 1
    } else {
        sequence + n
    }
}

/// A topic and partition, the key of per-partition state.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct TopicPartition {
    pub(crate) topic: Arc<str>,
    pub(crate) partition: i32,
}

/// A batch sent (at least once) and not yet acknowledged or failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Unacked {
    batch_id: u64,
    base_sequence: i32,
    count: i32,
}

/// One partition's sequence state.
#[derive(Debug, Clone)]
struct PartitionSequences {
    /// The producer id and epoch the sequences below belong to.
    pid: ProducerIdEpoch,
    /// Which producer id assignment that was. Compared instead of `pid`, because a broker that
    /// lost its state (a restarted in-memory broker) may hand out the same id and epoch again.
    generation: u64,
    /// The base sequence of the next new batch.
    next_sequence: i32,
    /// The last sequence the broker acknowledged (-1: none under this epoch).
    last_acked_sequence: i32,
    /// In sequence order.
    unacked: VecDeque<Unacked>,
    /// Set when a sent batch expired: the sequence right after it.
    unresolved: Option<i32>,
}

impl PartitionSequences {
    fn new(pid: ProducerIdEpoch, generation: u64) -> Self {
        Self {
            pid,
            generation,
            next_sequence: 0,
            last_acked_sequence: -1,
            unacked: VecDeque::new(),
            unresolved: None,
        }
    }

    fn is_next_sequence(&self, sequence: i32) -> bool {
        increment_sequence(self.last_acked_sequence, 1) == sequence
            || (self.last_acked_sequence == -1 && sequence == 0)
    }

    /// Restarts the sequences from 0 under `pid`, renumbering what is unacknowledged in order.
    fn start_at_beginning(&mut self, pid: ProducerIdEpoch, generation: u64) {
        let mut sequence = 0;
        for u in &mut self.unacked {
            u.base_sequence = sequence;
            sequence = increment_sequence(sequence, u.count);
        }
        self.pid = pid;
        self.generation = generation;
        self.next_sequence = sequence;
        self.last_acked_sequence = -1;
        self.unresolved = None;
    }
}

/// Whether and how a batch may be sent now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Drain {
    /// Not now: the partition waits (for a producer id, for older batches, for a bump).
    Wait,
    /// Send it stamped with this producer id, epoch and base sequence.
    Send {
        /// Producer id and epoch.
        pid: ProducerIdEpoch,
        /// Base sequence.
        base_sequence: i32,
    },
}

/// The idempotent producer's state.
#[derive(Debug, Default)]
pub(crate) struct Idempotence {
    current: Option<ProducerIdEpoch>,
    /// Counts producer ids/epochs received; a rewrite waits for one newer than its request.
    generation: u64,
    /// An InitProducerId request is outstanding.
    requesting: bool,
    bump_requested: bool,
    partitions: HashMap<TopicPartition, PartitionSequences>,
    /// Partitions whose unacknowledged batches need new sequences under a new epoch, with the
    /// generation at which that was decided.
    rewrite: HashMap<TopicPartition, u64>,
}

impl Idempotence {
    /// Whether an InitProducerId request should be sent now, and with which current id/epoch
    /// (`Some(NONE)` for a first id).
    pub(crate) fn wants_producer_id(&self) -> Option<ProducerIdEpoch> {
        if self.requesting {
            return None;
        }
        match self.current {
            None => Some(ProducerIdEpoch::NONE),
            Some(pid) if self.bump_requested => Some(pid),
            Some(_) => None,
        }
    }

    /// An InitProducerId request was sent.
    pub(crate) fn requesting(&mut self) {
        self.requesting = true;
    }

    /// The InitProducerId request failed in a way worth retrying.
    pub(crate) fn request_failed(&mut self) {
        self.requesting = false;
    }

    /// A (new) producer id and epoch arrived.
    pub(crate) fn set_producer_id(&mut self, pid: ProducerIdEpoch) {
        self.current = Some(pid);
        self.generation += 1;
        self.requesting = false;
        self.bump_requested = false;
    }

    /// Asks for a new epoch, after which `tp` starts its sequences again from 0. A partition
    /// already waiting for that keeps its place (its in-flight batches are expected to fail).
    pub(crate) fn request_bump(&mut self, tp: &TopicPartition) {
        if !self.rewrite.contains_key(tp) {
            tracing::info!(topic = %tp.topic, partition = tp.partition, "bumping the producer epoch and resetting sequences");
            self.rewrite.insert(tp.clone(), self.generation);
            self.bump_requested = true;
        }
    }

    /// Decides whether batch `batch_id` (`count` records) of `tp` may be sent now;
    /// `requests_in_flight` is how many produce requests carrying a batch of `tp` are
    /// outstanding. A `Send` answer for a batch never sent assigns its sequence.
    pub(crate) fn drain(
        &mut self,
        tp: &TopicPartition,
        batch_id: u64,
        count: i32,
        requests_in_flight: usize,
    ) -> Drain {
        let Some(current) = self.current else {
            return Drain::Wait;
        };
        if self.requesting || self.bump_requested {
            return Drain::Wait;
        }
        let generation = self.generation;
        if let Some(&asked_at) = self.rewrite.get(tp) {
            if requests_in_flight > 0 || generation <= asked_at {
                return Drain::Wait;
            }
            self.rewrite.remove(tp);
            self.partitions
                .entry(tp.clone())
                .or_insert_with(|| PartitionSequences::new(current, generation))
                .start_at_beginning(current, generation);
        }
        let entry = self
            .partitions
            .entry(tp.clone())
            .or_insert_with(|| PartitionSequences::new(current, generation));
        let position = entry.unacked.iter().position(|u| u.batch_id == batch_id);
        if entry.generation != generation {
            if entry.unacked.is_empty() {
                // Nothing left under the old epoch: start over under the new one.
                entry.start_at_beginning(current, generation);
            } else if position.is_none() {
                // A new batch under the new epoch could land before older ones still pending
                // under the old epoch and be rejected as out of order.
                return Drain::Wait;
            }
        }
        match position {
            // A retry goes only when it is the oldest unacknowledged batch.
            Some(0) => Drain::Send {
                pid: entry.pid,
                base_sequence: entry.unacked[0].base_sequence,
            },
            Some(_) => Drain::Wait,
            None if entry.unresolved.is_some() => Drain::Wait,
            None => {
                let base_sequence = entry.next_sequence;
                entry.next_sequence = increment_sequence(base_sequence, count);
                entry.unacked.push_back(Unacked {
                    batch_id,
                    base_sequence,
                    count,
                });
                Drain::Send {
                    pid: entry.pid,
                    base_sequence,
                }
            }
        }
    }

    /// What a batch should be stamped with now, if it is unacknowledged (a rewrite may have
    /// changed it since it was last sent).
    pub(crate) fn assignment(
        &self,
        tp: &TopicPartition,
        batch_id: u64,
    ) -> Option<(ProducerIdEpoch, i32)> {
        let entry = self.partitions.get(tp)?;
        entry
            .unacked
            .iter()
            .find(|u| u.batch_id == batch_id)
            .map(|u| (entry.pid, u.base_sequence))
    }

    /// The broker acknowledged the batch.
    pub(crate) fn acknowledged(
        &mut self,
        tp: &TopicPartition,
        batch_id: u64,
        sent: (ProducerIdEpoch, i32),
    ) {
        let Some(entry) = self.partitions.get_mut(tp) else {
            return;
        };
        if let Some(at) = entry.unacked.iter().position(|u| u.batch_id == batch_id) {
            let u = entry.unacked.remove(at).expect("position is in range");
            if entry.pid == sent.0 && u.base_sequence == sent.1 {
                entry.last_acked_sequence = increment_sequence(u.base_sequence, u.count - 1);
            }
        }
    }

    /// Whether a batch that got `code` should be sent again (the caller has already checked
    /// attempts and the delivery timeout). Requests an epoch bump when the error shows a gap.
    pub(crate) fn can_retry(
        &mut self,
        tp: &TopicPartition,
        batch_id: u64,
        sent: (ProducerIdEpoch, i32),
        code: ErrorCode,
        log_start_offset: i64,
    ) -> bool {
        if !matches!(
            code,
            ErrorCode::OutOfOrderSequenceNumber
                | ErrorCode::UnknownProducerId
                | ErrorCode::InvalidProducerEpoch
        ) {
            return code.is_retriable();
        }
        if self.rewrite.contains_key(tp) {
            // New sequences are coming for this partition: this batch will go out renumbered.
            return true;
        }
        let reset = self.assignment(tp, batch_id) != Some(sent);
        let Some(entry) = self.partitions.get(tp) else {
            return false;
        };
        match code {
            ErrorCode::UnknownProducerId => {
                // The broker lost this producer's state (retention deleted its records, or a
                // new leader never had it). Without the log start offset it may be a transient
                // view; with it, start again under a new epoch.
                if log_start_offset != -1 && !reset {
                    self.request_bump(tp);
                }
                true
            }
            ErrorCode::OutOfOrderSequenceNumber => {
                let unresolved = entry.unresolved;
                if unresolved.is_none() && (reset || !entry.is_next_sequence(sent.1)) {
                    // Not the next batch: an earlier one failed or is being retried; this one
                    // goes again after it.
                    return true;
                }
                if unresolved.is_none() || unresolved == Some(sent.1) {
                    self.request_bump(tp);
                }
                true
            }
            // A batch stamped before a bump: it is renumbered and sent again.
            _ => reset,
        }
    }

    /// The batch failed for good. `definite` says the broker rejected it (so its sequences are
    /// a gap the partition must skip with a new epoch); otherwise its outcome is unknown and the
    /// partition becomes unresolved.
    pub(crate) fn failed(&mut self, tp: &TopicPartition, batch_id: u64, definite: bool) {
        let Some(entry) = self.partitions.get_mut(tp) else {
            return;
        };
        let Some(at) = entry.unacked.iter().position(|u| u.batch_id == batch_id) else {
            return;
        };
        let u = entry.unacked.remove(at).expect("position is in range");
        if definite {
            self.request_bump(tp);
        } else {
            let after = increment_sequence(u.base_sequence, u.count);
            // The furthest expired batch decides; distances from the last acknowledged sequence
            // compare correctly across the wrap at i32::MAX.
            let distance = |s: i32| s.wrapping_sub(entry.last_acked_sequence) as u32;
            entry.unresolved = Some(match entry.unresolved {
                Some(prev) if distance(prev) > distance(after) => prev,
                _ => after,
            });
        }
    }

    /// Settles unresolved partitions once nothing is unacknowledged there: fine if the
    /// acknowledged sequence reached the expired batches' end, otherwise a new epoch.
    pub(crate) fn resolve(&mut self) {
        let mut bump = Vec::new();
        for (tp, entry) in &mut self.partitions {
            if entry.unresolved.is_some() && entry.unacked.is_empty() {
                if !entry.is_next_sequence(entry.next_sequence) {
                    bump.push(tp.clone());
                }
                entry.unresolved = None;
            }
        }
        for tp in bump {
            self.request_bump(&tp);
        }
    }

    /// Whether `tp` waits for unresolved sequences (tests and diagnostics).
    #[cfg(test)]
    fn is_unresolved(&self, tp: &TopicPartition) -> bool {
        self.partitions
            .get(tp)
            .is_some_and(|e| e.unresolved.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(p: i32) -> TopicPartition {
        TopicPartition {
            topic: Arc::from("t"),
            partition: p,
        }
    }

    const PID: ProducerIdEpoch = ProducerIdEpoch { id: 7, epoch: 0 };
    const BUMPED: ProducerIdEpoch = ProducerIdEpoch { id: 7, epoch: 1 };

    fn send(d: Drain) -> (ProducerIdEpoch, i32) {
        match d {
            Drain::Send { pid, base_sequence } => (pid, base_sequence),
            Drain::Wait => panic!("expected Send"),
        }
    }

    #[test]
    fn sequences_wrap_at_i32_max() {
        assert_eq!(increment_sequence(0, 5), 5);
        assert_eq!(increment_sequence(i32::MAX - 2, 2), i32::MAX);
        assert_eq!(increment_sequence(i32::MAX - 2, 3), 0);
        assert_eq!(increment_sequence(i32::MAX, 1), 0);
        assert_eq!(increment_sequence(i32::MAX - 1, 10), 8);
    }

    #[test]
    fn waits_for_a_producer_id_then_numbers_batches_in_drain_order() {
        let mut s = Idempotence::default();
        assert_eq!(s.wants_producer_id(), Some(ProducerIdEpoch::NONE));
        assert_eq!(s.drain(&tp(0), 1, 10, 0), Drain::Wait);
        s.requesting();
        assert_eq!(s.wants_producer_id(), None);
        s.set_producer_id(PID);
        assert_eq!(send(s.drain(&tp(0), 1, 10, 0)), (PID, 0));
        assert_eq!(send(s.drain(&tp(0), 2, 5, 1)), (PID, 10));
        assert_eq!(
            send(s.drain(&tp(1), 3, 5, 0)),
            (PID, 0),
            "each partition has its own sequences"
        );
        assert_eq!(send(s.drain(&tp(0), 4, 1, 2)), (PID, 15));
        s.acknowledged(&tp(0), 1, (PID, 0));
        s.acknowledged(&tp(0), 2, (PID, 10));
        assert_eq!(s.assignment(&tp(0), 4), Some((PID, 15)));
        assert_eq!(s.assignment(&tp(0), 1), None);
    }

    #[test]
    fn sequences_wrap_across_batches() {
        let mut s = Idempotence::default();
        s.set_producer_id(PID);
        s.drain(&tp(0), 1, 1, 0);
        s.partitions.get_mut(&tp(0)).unwrap().next_sequence = i32::MAX - 1;
        assert_eq!(send(s.drain(&tp(0), 2, 4, 0)), (PID, i32::MAX - 1));
        assert_eq!(send(s.drain(&tp(0), 3, 1, 0)), (PID, 2));
    }

    #[test]
    fn a_retry_goes_only_when_it_is_the_oldest_unacknowledged() {
        let mut s = Idempotence::default();
        s.set_producer_id(PID);
        s.drain(&tp(0), 1, 2, 0);
        s.drain(&tp(0), 2, 2, 1);
        // Batch 2 failed retriably and came back first: it must wait for batch 1.
        assert_eq!(s.drain(&tp(0), 2, 2, 1), Drain::Wait);
        assert_eq!(
            send(s.drain(&tp(0), 1, 2, 0)),
            (PID, 0),
            "same sequence on retry"
        );
        s.acknowledged(&tp(0), 1, (PID, 0));
        assert_eq!(send(s.drain(&tp(0), 2, 2, 0)), (PID, 2));
    }

    #[test]
    fn out_of_order_behind_a_failed_batch_is_retried_without_a_bump() {
        let mut s = Idempotence::default();
        s.set_producer_id(PID);
        s.drain(&tp(0), 1, 3, 0);
        s.drain(&tp(0), 2, 3, 1);
        // Batch 2 (sequence 3) raced ahead of batch 1: not the next sequence, plain retry.
        assert!(s.can_retry(&tp(0), 2, (PID, 3), ErrorCode::OutOfOrderSequenceNumber, 0));
        assert_eq!(s.wants_producer_id(), None);
    }

    #[test]
    fn out_of_order_at_the_next_sequence_bumps_and_renumbers_after_in_flight_drain() {
        let mut s = Idempotence::default();
        s.set_producer_id(PID);
        s.drain(&tp(0), 1, 3, 0);
        s.drain(&tp(0), 2, 3, 1);
        s.drain(&tp(1), 3, 4, 0);
        // The broker says sequence 0 is out of order: a real gap (it lost state).
        assert!(s.can_retry(&tp(0), 1, (PID, 0), ErrorCode::OutOfOrderSequenceNumber, 0));
        assert_eq!(
            s.wants_producer_id(),
            Some(PID),
            "bump asks with the current id and epoch"
        );
        s.requesting();
        assert_eq!(s.drain(&tp(0), 1, 3, 1), Drain::Wait);
        s.set_producer_id(BUMPED);
        // Batch 2 is still in flight: no renumbering yet.
        assert_eq!(s.drain(&tp(0), 1, 3, 1), Drain::Wait);
        assert!(
            s.can_retry(&tp(0), 2, (PID, 3), ErrorCode::OutOfOrderSequenceNumber, 0),
            "pending rewrite"
        );
        assert_eq!(send(s.drain(&tp(0), 1, 3, 0)), (BUMPED, 0));
        assert_eq!(s.assignment(&tp(0), 2), Some((BUMPED, 3)));
        // Partition 1 still has batch 3 unacked under the old epoch: new batches wait, the old
        // one may go as it is.
        assert_eq!(s.drain(&tp(1), 4, 1, 0), Drain::Wait);
        assert_eq!(send(s.drain(&tp(1), 3, 4, 0)), (PID, 0));
        s.acknowledged(&tp(1), 3, (PID, 0));
        assert_eq!(
            send(s.drain(&tp(1), 4, 1, 0)),
            (BUMPED, 0),
            "stale partition restarts at 0"
        );
    }

    #[test]
    fn a_reissued_identical_producer_id_still_restarts_sequences() {
        // A restarted in-memory broker may hand out the same id and epoch again.
        let mut s = Idempotence::default();
        s.set_producer_id(PID);
        s.drain(&tp(0), 1, 5, 0);
        s.drain(&tp(1), 2, 5, 0);
        s.acknowledged(&tp(1), 2, (PID, 0));
        assert!(s.can_retry(&tp(0), 1, (PID, 0), ErrorCode::UnknownProducerId, 0));
        s.requesting();
        s.set_producer_id(PID);
        assert_eq!(send(s.drain(&tp(0), 1, 5, 0)), (PID, 0));
        assert_eq!(
            send(s.drain(&tp(1), 3, 1, 0)),
            (PID, 0),
            "partition 1 restarts under the new assignment"
        );
    }

    #[test]
    fn unknown_producer_id_retries_and_bumps_only_with_a_log_start_offset() {
        let mut s = Idempotence::default();
        s.set_producer_id(PID);
        s.drain(&tp(0), 1, 3, 0);
        assert!(s.can_retry(&tp(0), 1, (PID, 0), ErrorCode::UnknownProducerId, -1));
        assert_eq!(s.wants_producer_id(), None);
        assert!(s.can_retry(&tp(0), 1, (PID, 0), ErrorCode::UnknownProducerId, 100));
        assert_eq!(s.wants_producer_id(), Some(PID));
    }

    #[test]
    fn invalid_epoch_fails_unless_the_batch_was_renumbered() {
        let mut s = Idempotence::default();
        s.set_producer_id(PID);
        s.drain(&tp(0), 1, 3, 0);
        assert!(!s.can_retry(&tp(0), 1, (PID, 0), ErrorCode::InvalidProducerEpoch, 0));
        s.failed(&tp(0), 1, true);
        assert_eq!(s.wants_producer_id(), Some(PID));
        assert!(s.can_retry(&tp(0), 2, (PID, 3), ErrorCode::NotLeaderOrFollower, 0));
        assert!(!s.can_retry(&tp(0), 2, (PID, 3), ErrorCode::MessageTooLarge, 0));
    }

    #[test]
    fn expired_sent_batch_blocks_the_partition_until_resolved() {
        let mut s = Idempotence::default();
        s.set_producer_id(PID);
        s.drain(&tp(0), 1, 2, 0);
        s.drain(&tp(0), 2, 2, 1);
        s.failed(&tp(0), 1, false);
        assert!(s.is_unresolved(&tp(0)));
        assert_eq!(
            s.drain(&tp(0), 3, 1, 1),
            Drain::Wait,
            "no new batch while unresolved"
        );
        // Batch 2 (sequences 2-3) landed, so batch 1 did too: resolved without a bump.
        s.acknowledged(&tp(0), 2, (PID, 2));
        s.resolve();
        assert!(!s.is_unresolved(&tp(0)));
        assert_eq!(s.wants_producer_id(), None);
        assert_eq!(send(s.drain(&tp(0), 3, 1, 0)), (PID, 4));
    }

    #[test]
    fn expired_batches_with_nothing_acknowledged_bump_the_epoch() {
        let mut s = Idempotence::default();
        s.set_producer_id(PID);
        s.drain(&tp(0), 1, 2, 0);
        s.failed(&tp(0), 1, false);
        s.resolve();
        assert_eq!(s.wants_producer_id(), Some(PID));
        s.requesting();
        s.set_producer_id(BUMPED);
        assert_eq!(send(s.drain(&tp(0), 2, 1, 0)), (BUMPED, 0));
    }
}
