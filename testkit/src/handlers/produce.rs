//! Produce: validate each partition's batches (format, CRC, idempotent sequences, transaction
//! membership), assign offsets, append.

use bytes::{Bytes, BytesMut};
use kingest_protocol::kafka_protocol::messages::produce_response::{
    PartitionProduceResponse, TopicProduceResponse,
};
use kingest_protocol::kafka_protocol::messages::*;
use kingest_protocol::record::{DecodeOptions, RecordSet};
use kingest_protocol::ErrorCode;

use super::Ctx;
use crate::state::producers::SeqCheck;
use crate::state::{ClusterState, StoredBatch};

pub(crate) fn produce(ctx: &Ctx, r: ProduceRequest) -> Option<ProduceResponse> {
    let txn_id = r.transactional_id.as_ref().map(|t| t.0.to_string());
    let mut appended = false;
    let responses = {
        let mut state = ctx.shared.lock();
        r.topic_data
            .iter()
            .map(|t| {
                let topic = t.name.0.to_string();
                TopicProduceResponse::default()
                    .with_name(t.name.clone())
                    .with_partition_responses(
                        t.partition_data
                            .iter()
                            .map(|p| {
                                let result = append(
                                    &mut state,
                                    ctx.broker,
                                    &topic,
                                    p.index,
                                    txn_id.as_deref(),
                                    p.records.clone(),
                                );
                                let response = PartitionProduceResponse::default()
                                    .with_index(p.index)
                                    .with_log_append_time_ms(-1);
                                match result {
                                    Ok((base, start, fresh)) => {
                                        appended |= fresh;
                                        response.with_base_offset(base).with_log_start_offset(start)
                                    }
                                    Err((code, message)) => response
                                        .with_error_code(code.code())
                                        .with_base_offset(-1)
                                        .with_log_start_offset(-1)
                                        .with_error_message(message.map(crate::state::sb)),
                                }
                            })
                            .collect(),
                    )
            })
            .collect()
    };
    if appended {
        ctx.shared.appended.notify_waiters();
    }
    (r.acks != 0).then(|| ProduceResponse::default().with_responses(responses))
}

/// Appends one partition's record set; returns (base offset, log start, whether anything new
/// was appended).
fn append(
    state: &mut ClusterState,
    broker: i32,
    topic: &str,
    partition: i32,
    txn_id: Option<&str>,
    records: Option<Bytes>,
) -> Result<(i64, i64, bool), (ErrorCode, Option<String>)> {
    let Some(p) = state.partition(topic, partition) else {
        return Err((ErrorCode::UnknownTopicOrPartition, None));
    };
    if p.leader != broker || !state.brokers.get(&broker).is_some_and(|b| b.up) {
        return Err((ErrorCode::NotLeaderOrFollower, None));
    }
    let leader_epoch = p.leader_epoch;
    let records = records.unwrap_or_default();
    // Validate every batch before appending any: a request's partition data is all or nothing.
    let mut batches = Vec::new();
    for raw in RecordSet::new(records.clone()) {
        let raw = raw.map_err(|e| (ErrorCode::CorruptMessage, Some(e.to_string())))?;
        let h = *raw.header();
        if h.magic != 2 {
            return Err((
                ErrorCode::UnsupportedForMessageFormat,
                Some("only magic 2 batches are accepted".to_owned()),
            ));
        }
        if h.record_count < 1 {
            return Err((ErrorCode::CorruptMessage, Some("empty batch".to_owned())));
        }
        let opts = DecodeOptions::default();
        if let Err(e) = raw.decode(&opts) {
            return Err((ErrorCode::CorruptMessage, Some(e.to_string())));
        }
        batches.push(raw);
    }
    if batches.is_empty() {
        return Err((
            ErrorCode::CorruptMessage,
            Some("no record batch".to_owned()),
        ));
    }
    let first = *batches[0].header();
    let pid = first.producer_id;
    if first.is_transactional() {
        let Some(txn_id) = txn_id else {
            return Err((
                ErrorCode::TransactionalIdAuthorizationFailed,
                Some("transactional batch without a transactional id".to_owned()),
            ));
        };
        let entry = state
            .producers
            .txn_producer(txn_id, pid, first.producer_epoch)
            .map_err(|c| (c, None))?;
        let in_txn = entry
            .txn
            .as_ref()
            .is_some_and(|t| t.partitions.contains(&(topic.to_owned(), partition)));
        if !in_txn {
            return Err((
                ErrorCode::InvalidTxnState,
                Some(format!(
                    "{topic}-{partition} was not added to the transaction"
                )),
            ));
        }
    }
    if pid >= 0 {
        match state.producers.check(
            topic,
            partition,
            pid,
            first.producer_epoch,
            first.base_sequence,
            batches.iter().map(|b| b.header().record_count).sum(),
        ) {
            SeqCheck::Append => {}
            SeqCheck::Duplicate(offset) => {
                let start = state
                    .partition(topic, partition)
                    .map_or(0, |p| p.log.log_start);
                return Ok((offset, start, false));
            }
            SeqCheck::Reject(code) => return Err((code, None)),
        }
    }
    let Some(p) = state.partition_mut(topic, partition) else {
        return Err((ErrorCode::UnknownTopicOrPartition, None));
    };
    let base = p.log.next_offset;
    let mut next = base;
    for raw in &batches {
        let h = raw.header();
        let count = i64::from(h.last_offset_delta) + 1;
        // The broker's only edits: the base offset and the leader epoch, both outside the CRC.
        let mut bytes = BytesMut::from(&raw.bytes()[..]);
        bytes[0..8].copy_from_slice(&next.to_be_bytes());
        bytes[12..16].copy_from_slice(&leader_epoch.to_be_bytes());
        if h.is_transactional() && !h.is_control() {
            p.log.open_txns.entry(h.producer_id).or_insert(next);
        }
        p.log.append(StoredBatch {
            base_offset: next,
            last_offset: next + count - 1,
            max_timestamp: h.max_timestamp,
            bytes: bytes.freeze(),
        });
        next += count;
    }
    let start = p.log.log_start;
    if pid >= 0 {
        let count: i32 = batches.iter().map(|b| b.header().record_count).sum();
        state.producers.appended(
            topic,
            partition,
            pid,
            first.producer_epoch,
            first.base_sequence,
            count,
            base,
        );
    }
    state.enforce_retention(topic, partition);
    Ok((base, start, true))
}
