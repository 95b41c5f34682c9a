//! Transactions: producer ids, partitions and groups joining a transaction, and its end, which
//! writes a commit or abort marker (a control batch) to every partition of the transaction.
//!
//! As Kafka's transaction coordinator: requests about a transactional id go to the broker that
//! coordinates it (others answer NOT_COORDINATOR, so a client must follow the coordinator when
//! brokers stop); a new instance's InitProducerId aborts the open transaction of the old one,
//! bumps the epoch (fencing it) and answers CONCURRENT_TRANSACTIONS until the retry; a
//! transaction open longer than the timeout its producer asked for is aborted and its producer
//! fenced ([`expire_transactions`], from the cluster's ticker); TxnOffsetCommit checks the
//! group's member id and generation like OffsetCommit, so a zombie of an old generation cannot
//! commit offsets.

use kingest_protocol::kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
};
use kingest_protocol::kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kingest_protocol::kafka_protocol::messages::*;
use kingest_protocol::record::{BatchBuilder, BatchOptions, ControlRecord};
use kingest_protocol::ErrorCode;

use super::groups::coordinator_for;
use super::Ctx;
use crate::state::producers::Txn;
use crate::state::{AbortedTxn, ClusterState, StoredBatch};

/// Kafka's `transaction.max.timeout.ms` default: longer transaction timeouts are refused.
const MAX_TXN_TIMEOUT_MS: i32 = 900_000;

/// NOT_COORDINATOR unless this broker coordinates `key`.
fn not_coordinator(ctx: &Ctx, state: &ClusterState, key: &str) -> Option<ErrorCode> {
    (coordinator_for(state, key) != Some(ctx.broker)).then_some(ErrorCode::NotCoordinator)
}

pub(crate) fn init_producer_id(ctx: &Ctx, r: InitProducerIdRequest) -> InitProducerIdResponse {
    let txn_id = r.transactional_id.as_ref().map(|t| t.0.to_string());
    let refuse = |code: ErrorCode| {
        InitProducerIdResponse::default()
            .with_error_code(code.code())
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1)
    };
    let mut state = ctx.shared.lock();
    if let Some(t) = &txn_id {
        if let Some(code) = not_coordinator(ctx, &state, t) {
            return refuse(code);
        }
        if !(1..=MAX_TXN_TIMEOUT_MS).contains(&r.transaction_timeout_ms) {
            return refuse(ErrorCode::InvalidTransactionTimeout);
        }
        // A new instance of a transactional producer fences the old one: its open transaction
        // is aborted and the epoch bumped at once; Kafka answers CONCURRENT_TRANSACTIONS while
        // the abort completes, and the client retries.
        if let Some(&id) = state.producers.by_txn_id.get(t) {
            if let Some(epoch) = state
                .producers
                .by_id
                .get(&id)
                .filter(|e| e.txn.is_some())
                .map(|e| e.epoch)
            {
                finish(&mut state, id, epoch, false);
                state.producers.bump_epoch(id);
                drop(state);
                ctx.shared.appended.notify_waiters();
                return refuse(ErrorCode::ConcurrentTransactions);
            }
        }
    }
    let current = (r.producer_id.0 >= 0).then_some((r.producer_id.0, r.producer_epoch));
    let response = match state.producers.init(txn_id.as_deref(), current) {
        Ok((id, epoch)) => {
            if txn_id.is_some() {
                if let Some(entry) = state.producers.by_id.get_mut(&id) {
                    entry.txn_timeout = Some(std::time::Duration::from_millis(
                        r.transaction_timeout_ms.unsigned_abs().into(),
                    ));
                }
            }
            InitProducerIdResponse::default()
                .with_producer_id(ProducerId(id))
                .with_producer_epoch(epoch)
        }
        Err(code) => refuse(code),
    };
    drop(state);
    ctx.shared.appended.notify_waiters();
    response
}

/// Aborts every transaction open longer than its producer's timeout and bumps that producer's
/// epoch, as Kafka's coordinator does: the producer learns it was fenced at its next request.
pub(crate) fn expire_transactions(state: &mut ClusterState, now: std::time::Instant) -> bool {
    let expired = state.producers.timed_out(now);
    for &(id, epoch) in &expired {
        finish(state, id, epoch, false);
        state.producers.bump_epoch(id);
    }
    !expired.is_empty()
}

pub(crate) fn add_partitions(
    ctx: &Ctx,
    r: AddPartitionsToTxnRequest,
) -> AddPartitionsToTxnResponse {
    let mut state = ctx.shared.lock();
    let txn_id = r.v3_and_below_transactional_id.0.to_string();
    let check = match not_coordinator(ctx, &state, &txn_id) {
        Some(code) => Err(code),
        None => state
            .producers
            .txn_producer(
                &txn_id,
                r.v3_and_below_producer_id.0,
                r.v3_and_below_producer_epoch,
            )
            .map(|_| ()),
    };
    let results = r
        .v3_and_below_topics
        .iter()
        .map(|t| {
            let topic = t.name.0.to_string();
            let partitions = t
                .partitions
                .iter()
                .map(|&p| {
                    let code = match check {
                        Err(c) => c,
                        Ok(()) if state.partition(&topic, p).is_none() => {
                            ErrorCode::UnknownTopicOrPartition
                        }
                        Ok(()) => {
                            let entry =
                                state.producers.by_id.get_mut(&r.v3_and_below_producer_id.0);
                            if let Some(entry) = entry {
                                entry
                                    .txn
                                    .get_or_insert_with(Txn::default)
                                    .partitions
                                    .insert((topic.clone(), p));
                            }
                            ErrorCode::None
                        }
                    };
                    AddPartitionsToTxnPartitionResult::default()
                        .with_partition_index(p)
                        .with_partition_error_code(code.code())
                })
                .collect();
            AddPartitionsToTxnTopicResult::default()
                .with_name(t.name.clone())
                .with_results_by_partition(partitions)
        })
        .collect();
    AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(results)
}

pub(crate) fn add_offsets(ctx: &Ctx, r: AddOffsetsToTxnRequest) -> AddOffsetsToTxnResponse {
    let mut state = ctx.shared.lock();
    if let Some(code) = not_coordinator(ctx, &state, &r.transactional_id.0) {
        return AddOffsetsToTxnResponse::default().with_error_code(code.code());
    }
    let code =
        match state
            .producers
            .txn_producer(&r.transactional_id.0, r.producer_id.0, r.producer_epoch)
        {
            Ok(entry) => {
                entry
                    .txn
                    .get_or_insert_with(Txn::default)
                    .groups
                    .insert(r.group_id.0.to_string());
                ErrorCode::None
            }
            Err(c) => c,
        };
    AddOffsetsToTxnResponse::default().with_error_code(code.code())
}

pub(crate) fn txn_offset_commit(ctx: &Ctx, r: TxnOffsetCommitRequest) -> TxnOffsetCommitResponse {
    let mut state = ctx.shared.lock();
    let group = r.group_id.0.to_string();
    let fenced = match state.groups.get(&group) {
        _ if coordinator_for(&state, &group) != Some(ctx.broker) => Some(ErrorCode::NotCoordinator),
        // Offsets from a member of another generation (a zombie after a rebalance) are refused,
        // as OffsetCommit refuses them; without a member id (version < 3) nothing is checked.
        // In a KIP-848 group the generation is the member epoch.
        Some(g) if g.modern.is_some() && !r.member_id.is_empty() => g
            .modern
            .as_ref()
            .map(|cg| {
                super::consumer_group::commit_error(
                    cg,
                    r.member_id.as_str(),
                    r.generation_id,
                    9,
                    true,
                )
            })
            .filter(|c| !c.is_ok()),
        Some(g) if !r.member_id.is_empty() && !g.members.contains_key(r.member_id.as_str()) => {
            Some(ErrorCode::UnknownMemberId)
        }
        Some(g) if !r.member_id.is_empty() && r.generation_id != g.generation => {
            Some(ErrorCode::IllegalGeneration)
        }
        _ => None,
    };
    let check = match fenced {
        Some(code) => code,
        None => match state.producers.txn_producer(
            &r.transactional_id.0,
            r.producer_id.0,
            r.producer_epoch,
        ) {
            Ok(entry) => match entry.txn.as_mut() {
                Some(txn) if txn.groups.contains(&group) => {
                    for t in &r.topics {
                        for p in &t.partitions {
                            txn.pending_offsets.push((
                                group.clone(),
                                t.name.0.to_string(),
                                p.partition_index,
                                p.committed_offset,
                                p.committed_metadata.as_ref().map(|m| m.to_string()),
                            ));
                        }
                    }
                    ErrorCode::None
                }
                _ => ErrorCode::InvalidTxnState,
            },
            Err(c) => c,
        },
    };
    let topics = r
        .topics
        .iter()
        .map(|t| {
            TxnOffsetCommitResponseTopic::default()
                .with_name(t.name.clone())
                .with_partitions(
                    t.partitions
                        .iter()
                        .map(|p| {
                            TxnOffsetCommitResponsePartition::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(check.code())
                        })
                        .collect(),
                )
        })
        .collect();
    TxnOffsetCommitResponse::default().with_topics(topics)
}

pub(crate) fn end_txn(ctx: &Ctx, r: EndTxnRequest) -> EndTxnResponse {
    let mut state = ctx.shared.lock();
    if let Some(code) = not_coordinator(ctx, &state, &r.transactional_id.0) {
        return EndTxnResponse::default().with_error_code(code.code());
    }
    let code =
        match state
            .producers
            .txn_producer(&r.transactional_id.0, r.producer_id.0, r.producer_epoch)
        {
            Ok(entry) if entry.txn.is_none() => {
                // Ending a transaction that has nothing in it is allowed and does nothing.
                ErrorCode::None
            }
            Ok(_) => {
                finish(&mut state, r.producer_id.0, r.producer_epoch, r.committed);
                ErrorCode::None
            }
            Err(c) => c,
        };
    drop(state);
    ctx.shared.appended.notify_waiters();
    EndTxnResponse::default().with_error_code(code.code())
}

/// Writes the markers of producer `id`'s open transaction and applies (commit) or drops (abort)
/// its offsets.
fn finish(state: &mut ClusterState, id: i64, epoch: i16, commit: bool) {
    let Some(txn) = state
        .producers
        .by_id
        .get_mut(&id)
        .and_then(|e| e.txn.take())
    else {
        return;
    };
    for (topic, partition) in &txn.partitions {
        let Some(p) = state.partition_mut(topic, *partition) else {
            continue;
        };
        let offset = p.log.next_offset;
        let opts = BatchOptions {
            base_offset: offset,
            partition_leader_epoch: p.leader_epoch,
            producer_id: id,
            producer_epoch: epoch,
            ..Default::default()
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let Ok(bytes) = BatchBuilder::control_batch(opts, ControlRecord::marker(commit, 0), now)
        else {
            continue;
        };
        if let Some(first) = p.log.open_txns.remove(&id) {
            if !commit {
                p.log.aborted.push(AbortedTxn {
                    producer_id: id,
                    first_offset: first,
                    last_offset: offset,
                });
            }
        }
        p.log.append(StoredBatch {
            base_offset: offset,
            last_offset: offset,
            max_timestamp: now,
            bytes,
        });
    }
    if commit {
        for (group, topic, partition, offset, metadata) in txn.pending_offsets {
            state
                .groups
                .entry(group)
                .or_default()
                .offsets
                .insert((topic, partition), (offset, metadata));
        }
    }
}
