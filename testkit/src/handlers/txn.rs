//! Transactions: producer ids, partitions and groups joining a transaction, and its end, which
//! writes a commit or abort marker (a control batch) to every partition of the transaction.

use kingest_protocol::kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
};
use kingest_protocol::kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kingest_protocol::kafka_protocol::messages::*;
use kingest_protocol::record::{BatchBuilder, BatchOptions, ControlRecord};
use kingest_protocol::ErrorCode;

use super::Ctx;
use crate::state::producers::Txn;
use crate::state::{AbortedTxn, ClusterState, StoredBatch};

pub(crate) fn init_producer_id(ctx: &Ctx, r: InitProducerIdRequest) -> InitProducerIdResponse {
    let txn_id = r.transactional_id.as_ref().map(|t| t.0.to_string());
    let mut state = ctx.shared.lock();
    // A new instance of a transactional producer fences the old one: its open transaction is
    // aborted first, as Kafka's coordinator does.
    if let Some(t) = &txn_id {
        if let Some(&id) = state.producers.by_txn_id.get(t) {
            let epoch = state.producers.by_id.get(&id).map_or(0, |e| e.epoch);
            if state
                .producers
                .by_id
                .get(&id)
                .is_some_and(|e| e.txn.is_some())
            {
                finish(&mut state, id, epoch, false);
            }
        }
    }
    let current = (r.producer_id.0 >= 0).then_some((r.producer_id.0, r.producer_epoch));
    let response = match state.producers.init(txn_id.as_deref(), current) {
        Ok((id, epoch)) => InitProducerIdResponse::default()
            .with_producer_id(ProducerId(id))
            .with_producer_epoch(epoch),
        Err(code) => InitProducerIdResponse::default()
            .with_error_code(code.code())
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1),
    };
    drop(state);
    ctx.shared.appended.notify_waiters();
    response
}

pub(crate) fn add_partitions(
    ctx: &Ctx,
    r: AddPartitionsToTxnRequest,
) -> AddPartitionsToTxnResponse {
    let mut state = ctx.shared.lock();
    let txn_id = r.v3_and_below_transactional_id.0.to_string();
    let check = state
        .producers
        .txn_producer(
            &txn_id,
            r.v3_and_below_producer_id.0,
            r.v3_and_below_producer_epoch,
        )
        .map(|_| ());
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
    let check =
        match state
            .producers
            .txn_producer(&r.transactional_id.0, r.producer_id.0, r.producer_epoch)
        {
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
