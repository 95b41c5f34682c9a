//! The transactional producer's state and its requests to the transaction coordinator, after
//! the Java producer's `TransactionManager`.
//!
//! A producer with a `transactional_id` gets its producer id and epoch from the coordinator of
//! that id (FindCoordinator key type 1) with `init_transactions`; that bumps the epoch, which
//! fences any older producer with the same id (the coordinator aborts its open transaction).
//! Within a transaction, a partition is added to it (AddPartitionsToTxn) before its first batch
//! is sent: the sender holds batches of partitions not yet added ([`TxnState::gate`]) and adds
//! them in one request. `send_offsets_to_transaction` adds the group (AddOffsetsToTxn) and sends
//! the offsets to the group coordinator (TxnOffsetCommit) with the consumer's member id and
//! generation, so that a member fenced by a rebalance cannot commit. Commit and abort flush, then
//! end the transaction (EndTxn).
//!
//! Errors fall in three kinds, as in Java: retried (the coordinator moved or is loading,
//! CONCURRENT_TRANSACTIONS while a previous transaction completes, a lost connection), abortable
//! (a send or an offset commit failed: the transaction can only be aborted, after which the
//! producer goes on), and fatal (fenced, not authorized: the producer refuses further use).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kingest_protocol::kafka_protocol::protocol::StrBytes;
use kingest_protocol::ErrorCode;

use super::idempotence::TopicPartition;
use crate::error::{ClientError, Result};
use crate::net::Connection;

mod requests;

/// What `send_offsets_to_transaction` needs to know about the consumer whose offsets it commits:
/// the group, and the member id and generation the coordinator checks so that a member fenced by
/// a rebalance cannot commit (Java's `ConsumerGroupMetadata`).
/// [`crate::group::consumer::GroupConsumer::group_metadata`] gives it for a group member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerGroupMetadata {
    pub(crate) group_id: String,
    pub(crate) generation_id: i32,
    pub(crate) member_id: String,
    pub(crate) group_instance_id: Option<String>,
}

impl ConsumerGroupMetadata {
    /// Offsets for `group_id` from outside its membership (no generation check, as Java's
    /// `sendOffsetsToTransaction(offsets, groupId)`).
    pub fn new(group_id: impl Into<String>) -> Self {
        Self {
            group_id: group_id.into(),
            generation_id: -1,
            member_id: String::new(),
            group_instance_id: None,
        }
    }

    /// The group id.
    pub fn group_id(&self) -> &str {
        &self.group_id
    }

    /// The generation (-1: not checked).
    pub fn generation_id(&self) -> i32 {
        self.generation_id
    }

    /// The member id (empty: not checked).
    pub fn member_id(&self) -> &str {
        &self.member_id
    }
}

/// Where the transaction stands.
#[derive(Debug, Clone)]
enum Phase {
    /// `init_transactions` has not succeeded yet.
    Uninitialized,
    /// Between transactions.
    Ready,
    /// `begin_transaction` was called.
    InTransaction,
    /// Commit or abort in progress: sends are refused.
    Ending,
    /// Something in the transaction failed: it can only be aborted.
    Abortable(Arc<ClientError>),
}

impl Phase {
    fn name(&self) -> &'static str {
        match self {
            Phase::Uninitialized => "not initialized (call init_transactions)",
            Phase::Ready => "not in a transaction (call begin_transaction)",
            Phase::InTransaction => "in a transaction",
            Phase::Ending => "committing or aborting",
            Phase::Abortable(_) => "failed (abort the transaction)",
        }
    }
}

#[derive(Debug)]
struct Inner {
    phase: Phase,
    /// Partitions added to the current transaction.
    added: HashSet<TopicPartition>,
    /// Partitions with batches waiting to be added.
    waiting: HashSet<TopicPartition>,
    /// Offsets were sent in the current transaction (so it must be ended even without records).
    offsets: bool,
    /// Counts transactions, so an AddPartitionsToTxn answer for an earlier one is ignored.
    number: u64,
}

/// What the sender may do with a ready batch of a transactional producer.
#[derive(Debug)]
pub(crate) enum Gate {
    /// Its partition is in the transaction.
    Send,
    /// Its partition must be added first.
    Wait,
    /// The transaction failed: fail the batch with this.
    Fail(Arc<ClientError>),
}

/// A transactional producer's state, shared by the producer handles and the sender.
#[derive(Debug)]
pub(crate) struct TxnState {
    pub(crate) id: String,
    timeout: Duration,
    inner: Mutex<Inner>,
    coordinator: tokio::sync::Mutex<Option<Connection>>,
    /// Serializes init, commit, abort and offset sends.
    pub(crate) ops: tokio::sync::Mutex<()>,
    /// An AddPartitionsToTxn request is outstanding.
    adding: AtomicBool,
    /// A sequence error asked for a new epoch: the next abort gets one (KIP-360).
    pub(crate) bump_needed: AtomicBool,
}

/// How a coordinator's error code is handled.
enum Class {
    Ok,
    /// Find the coordinator again, then retry.
    Relookup,
    Retry,
    Fenced,
    Fatal,
    Abortable,
}

fn classify(code: ErrorCode) -> Class {
    match code {
        ErrorCode::None => Class::Ok,
        ErrorCode::NotCoordinator | ErrorCode::CoordinatorNotAvailable => Class::Relookup,
        ErrorCode::ConcurrentTransactions
        | ErrorCode::CoordinatorLoadInProgress
        | ErrorCode::UnknownTopicOrPartition
        | ErrorCode::RequestTimedOut => Class::Retry,
        ErrorCode::ProducerFenced | ErrorCode::InvalidProducerEpoch => Class::Fenced,
        ErrorCode::TransactionalIdAuthorizationFailed
        | ErrorCode::InvalidProducerIdMapping
        | ErrorCode::InvalidTxnState
        | ErrorCode::InvalidTransactionTimeout
        | ErrorCode::UnsupportedVersion => Class::Fatal,
        c if c.is_retriable() => Class::Retry,
        _ => Class::Abortable,
    }
}

/// One attempt's outcome inside [`TxnState::with_coordinator`].
enum Attempt<T> {
    Done(T),
    Relookup(ClientError),
    Retry(ClientError),
}

fn sb(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

impl TxnState {
    pub(crate) fn new(id: String, timeout: Duration) -> Self {
        Self {
            id,
            timeout,
            inner: Mutex::new(Inner {
                phase: Phase::Uninitialized,
                added: HashSet::new(),
                waiting: HashSet::new(),
                offsets: false,
                number: 0,
            }),
            coordinator: tokio::sync::Mutex::new(None),
            ops: tokio::sync::Mutex::new(()),
            adding: AtomicBool::new(false),
            bump_needed: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The error for an operation not allowed in the current phase.
    fn wrong_state(&self, operation: &'static str, phase: &Phase) -> ClientError {
        match phase {
            Phase::Abortable(cause) => ClientError::TransactionAbortable {
                transactional_id: self.id.clone(),
                operation,
                reason: cause.to_string(),
            },
            _ => ClientError::TransactionState {
                transactional_id: self.id.clone(),
                operation,
                state: phase.name(),
            },
        }
    }

    /// The fatal error for a fenced producer.
    pub(crate) fn fenced(&self, detail: impl std::fmt::Display) -> ClientError {
        ClientError::ProducerFenced {
            transactional_id: self.id.clone(),
            reason: detail.to_string(),
        }
    }

    /// Fails unless in a transaction (`send` checks this).
    pub(crate) fn check_send(&self) -> Result<()> {
        let inner = self.lock();
        match &inner.phase {
            Phase::InTransaction => Ok(()),
            other => Err(self.wrong_state("send", other)),
        }
    }

    pub(crate) fn begin(&self) -> Result<()> {
        let mut inner = self.lock();
        match &inner.phase {
            Phase::Ready => {
                inner.phase = Phase::InTransaction;
                inner.added.clear();
                inner.waiting.clear();
                inner.offsets = false;
                inner.number += 1;
                Ok(())
            }
            other => Err(self.wrong_state("begin_transaction", other)),
        }
    }

    /// Moves to `Ending` for commit (only from a healthy transaction) or abort (also from a
    /// failed one, which stays failed so that the sender fails its unsent batches, and from an
    /// abort that did not complete).
    pub(crate) fn start_ending(&self, commit: bool) -> Result<()> {
        let mut inner = self.lock();
        match (&inner.phase, commit) {
            (Phase::InTransaction, _) | (Phase::Ending, false) => inner.phase = Phase::Ending,
            (Phase::Abortable(_), false) => {}
            (other, _) => {
                let operation = if commit {
                    "commit_transaction"
                } else {
                    "abort_transaction"
                };
                return Err(self.wrong_state(operation, other));
            }
        }
        Ok(())
    }

    /// A commit that timed out may be tried again.
    pub(crate) fn resume(&self) {
        let mut inner = self.lock();
        if matches!(inner.phase, Phase::Ending) {
            inner.phase = Phase::InTransaction;
        }
    }

    /// Whether the next abort must get a new epoch (and forgets it).
    pub(crate) fn take_bump(&self) -> bool {
        self.bump_needed.swap(false, Ordering::SeqCst)
    }

    /// After the flush of a commit: the first failure of the transaction, if any.
    pub(crate) fn failure(&self) -> Option<Arc<ClientError>> {
        match &self.lock().phase {
            Phase::Abortable(e) => Some(e.clone()),
            _ => None,
        }
    }

    /// Whether the transaction wrote anything, so that it must be ended with EndTxn.
    pub(crate) fn has_content(&self) -> bool {
        let inner = self.lock();
        !inner.added.is_empty() || inner.offsets
    }

    /// The transaction ended: back to `Ready`.
    pub(crate) fn finish(&self) {
        let mut inner = self.lock();
        inner.phase = Phase::Ready;
        inner.added.clear();
        inner.waiting.clear();
        inner.offsets = false;
    }

    pub(crate) fn require_uninitialized(&self) -> Result<()> {
        match &self.lock().phase {
            Phase::Uninitialized => Ok(()),
            other => Err(self.wrong_state("init_transactions", other)),
        }
    }

    pub(crate) fn initialized(&self) -> Result<()> {
        self.lock().phase = Phase::Ready;
        Ok(())
    }

    pub(crate) fn require_in_transaction(&self, operation: &'static str) -> Result<()> {
        let inner = self.lock();
        match &inner.phase {
            Phase::InTransaction => Ok(()),
            other => Err(self.wrong_state(operation, other)),
        }
    }

    /// Something in the transaction failed (a batch, an offset commit): only abort remains.
    pub(crate) fn set_abortable(&self, error: Arc<ClientError>) {
        let mut inner = self.lock();
        if matches!(inner.phase, Phase::InTransaction | Phase::Ending) {
            inner.phase = Phase::Abortable(error);
        }
    }

    /// The sender asks whether a ready batch of `tp` may go.
    pub(crate) fn gate(&self, tp: &TopicPartition) -> Gate {
        let mut inner = self.lock();
        if let Phase::Abortable(e) = &inner.phase {
            return Gate::Fail(e.clone());
        }
        if inner.added.contains(tp) {
            return Gate::Send;
        }
        inner.waiting.insert(tp.clone());
        Gate::Wait
    }

    /// The partitions to add now (none while a request is outstanding), with the transaction's
    /// number.
    pub(crate) fn take_waiting(&self) -> Option<(u64, Vec<TopicPartition>)> {
        let inner = self.lock();
        if inner.waiting.is_empty()
            || !matches!(inner.phase, Phase::InTransaction | Phase::Ending)
            || self.adding.swap(true, Ordering::SeqCst)
        {
            return None;
        }
        Some((inner.number, inner.waiting.iter().cloned().collect()))
    }

    /// An AddPartitionsToTxn request finished.
    pub(crate) fn partitions_added(&self, number: u64, result: Result<Vec<TopicPartition>>) {
        self.adding.store(false, Ordering::SeqCst);
        let mut inner = self.lock();
        if inner.number != number {
            return;
        }
        match result {
            Ok(tps) => {
                for tp in tps {
                    inner.waiting.remove(&tp);
                    inner.added.insert(tp);
                }
            }
            Err(e) => {
                if matches!(inner.phase, Phase::InTransaction | Phase::Ending) {
                    inner.phase = Phase::Abortable(Arc::new(e));
                }
            }
        }
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

    #[test]
    fn phases_follow_the_java_state_machine() {
        let t = TxnState::new("id".to_owned(), Duration::from_secs(60));
        assert!(matches!(
            t.begin(),
            Err(ClientError::TransactionState {
                operation: "begin_transaction",
                ..
            })
        ));
        assert!(t.check_send().is_err());
        t.initialized().unwrap();
        assert!(t.require_uninitialized().is_err());
        t.begin().unwrap();
        assert!(t.begin().is_err(), "no nested transactions");
        t.check_send().unwrap();
        t.start_ending(true).unwrap();
        assert!(t.check_send().is_err(), "no sends while committing");
        t.finish();
        assert!(t.start_ending(true).is_err(), "nothing to commit");
        t.begin().unwrap();
        t.set_abortable(Arc::new(ClientError::Closed));
        let err = t.start_ending(true).unwrap_err();
        assert!(
            matches!(err, ClientError::TransactionAbortable { .. }),
            "{err}"
        );
        t.start_ending(false).unwrap();
        assert!(
            t.failure().is_some(),
            "an abort of a failed transaction keeps failing its batches"
        );
        t.finish();
        t.begin().unwrap();
    }

    #[test]
    fn batches_wait_for_their_partition_to_join_the_transaction() {
        let t = TxnState::new("id".to_owned(), Duration::from_secs(60));
        t.initialized().unwrap();
        t.begin().unwrap();
        assert!(matches!(t.gate(&tp(0)), Gate::Wait));
        assert!(matches!(t.gate(&tp(1)), Gate::Wait));
        let (number, mut waiting) = t.take_waiting().unwrap();
        waiting.sort_by_key(|tp| tp.partition);
        assert_eq!(waiting, vec![tp(0), tp(1)]);
        assert!(t.take_waiting().is_none(), "one request at a time");
        t.partitions_added(number, Ok(waiting));
        assert!(matches!(t.gate(&tp(0)), Gate::Send));
        assert!(t.has_content());
        // An answer for an earlier transaction changes nothing.
        t.finish();
        t.begin().unwrap();
        assert!(matches!(t.gate(&tp(2)), Gate::Wait));
        let (n2, _) = t.take_waiting().unwrap();
        t.partitions_added(number, Err(ClientError::Closed));
        assert!(t.failure().is_none());
        t.partitions_added(n2, Err(ClientError::Closed));
        assert!(matches!(t.gate(&tp(2)), Gate::Fail(_)));
    }
}
