//! Fetch (with fetch sessions, KIP-227, and long polling) and ListOffsets.
//!
//! Partitions are served the way Kafka serves them: stored batches as they are, up to the
//! partition and response limits, the last one cut off at the limit (a consumer must cope), and
//! the first batch of the first non-empty partition whole even when larger than the limits
//! (KIP-74), so a consumer always makes progress. read_committed stops at the last stable offset
//! and lists the aborted transactions in range.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kingest_protocol::kafka_protocol::messages::fetch_response::{
    AbortedTransaction, FetchableTopicResponse, PartitionData,
};
use kingest_protocol::kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kingest_protocol::kafka_protocol::messages::*;
use kingest_protocol::ErrorCode;

use super::fetch_encode::FetchReply;
use super::Ctx;
use crate::state::ClusterState;

/// Sessions kept per cluster before the oldest is evicted.
const MAX_SESSIONS: usize = 1000;

/// What a fetch session remembers of a partition.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SessionPartition {
    fetch_offset: i64,
    max_bytes: i32,
    leader_epoch: i32,
    /// What the last response said, to know whether there is news to send.
    sent: Option<(i64, i64, i64)>,
}

/// A fetch session.
#[derive(Debug, Default)]
pub(crate) struct Session {
    epoch: i32,
    partitions: BTreeMap<(String, i32), SessionPartition>,
    last_used: Option<Instant>,
}

/// The cluster's fetch sessions.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    next_id: i32,
    by_id: BTreeMap<i32, Session>,
}

/// Answers a fetch, its records left as the stored batches (see [`FetchReply`]).
pub(crate) async fn fetch(ctx: &Ctx, version: i16, r: FetchRequest) -> FetchReply {
    let read_committed = r.isolation_level == 1;
    let supports_sessions = version >= 7;
    // Apply the request to the session (or build a one-off one) first, once.
    let (session_id, parts, incremental) = {
        let mut sessions = ctx
            .shared
            .sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        match update_session(&mut sessions, &r, supports_sessions) {
            Ok(v) => v,
            Err(code) => {
                return FetchReply {
                    response: FetchResponse::default()
                        .with_error_code(code.code())
                        .with_session_id(r.session_id),
                    records: Vec::new(),
                }
            }
        }
    };
    let deadline = Instant::now() + Duration::from_millis(r.max_wait_ms.clamp(0, 60_000) as u64);
    loop {
        let notified = ctx.shared.appended.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        // Each attempt works on a copy: only the response actually sent updates the session.
        let mut attempt = parts.clone();
        let (responses, records, bytes, news) = {
            let state = ctx.shared.lock();
            read(
                &state,
                ctx.broker,
                &mut attempt,
                r.max_bytes,
                read_committed,
                incremental,
            )
        };
        let now = Instant::now();
        if bytes >= r.min_bytes.max(1) as usize || news || now >= deadline {
            if session_id != 0 {
                let mut sessions = ctx
                    .shared
                    .sessions
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                if let Some(s) = sessions.by_id.get_mut(&session_id) {
                    s.partitions = attempt;
                }
            }
            return FetchReply {
                response: FetchResponse::default()
                    .with_session_id(session_id)
                    .with_responses(responses),
                records,
            };
        }
        let _ = tokio::time::timeout(deadline - now, notified).await;
    }
}

type Parts = BTreeMap<(String, i32), SessionPartition>;

/// Applies the request to its session: returns the session id (0: none), the partitions to
/// serve, and whether the fetch is incremental (only partitions with news are answered).
fn update_session(
    sessions: &mut Sessions,
    r: &FetchRequest,
    supported: bool,
) -> Result<(i32, Parts, bool), ErrorCode> {
    let mut requested = Parts::new();
    for t in &r.topics {
        for p in &t.partitions {
            requested.insert(
                (t.topic.0.to_string(), p.partition),
                SessionPartition {
                    fetch_offset: p.fetch_offset,
                    max_bytes: p.partition_max_bytes,
                    leader_epoch: p.current_leader_epoch,
                    sent: None,
                },
            );
        }
    }
    if !supported {
        return Ok((0, requested, false));
    }
    match (r.session_id, r.session_epoch) {
        // Sessionless full fetch (or closing a session and fetching without one).
        (id, -1) => {
            sessions.by_id.remove(&id);
            Ok((0, requested, false))
        }
        // A full fetch that opens a session.
        (0, 0) => {
            if sessions.by_id.len() >= MAX_SESSIONS {
                let oldest = sessions
                    .by_id
                    .iter()
                    .min_by_key(|(_, s)| s.last_used)
                    .map(|(id, _)| *id);
                if let Some(id) = oldest {
                    sessions.by_id.remove(&id);
                }
            }
            sessions.next_id = sessions.next_id.wrapping_add(1).max(1);
            let id = sessions.next_id;
            sessions.by_id.insert(
                id,
                Session {
                    epoch: 1,
                    partitions: requested.clone(),
                    last_used: Some(Instant::now()),
                },
            );
            Ok((id, requested, false))
        }
        (0, _) => Err(ErrorCode::InvalidFetchSessionEpoch),
        (id, epoch) => {
            let session = sessions
                .by_id
                .get_mut(&id)
                .ok_or(ErrorCode::FetchSessionIdNotFound)?;
            if epoch != session.epoch {
                return Err(ErrorCode::InvalidFetchSessionEpoch);
            }
            session.epoch = session.epoch.wrapping_add(1).max(1);
            session.last_used = Some(Instant::now());
            for (key, mut p) in requested {
                if let Some(old) = session.partitions.get(&key) {
                    p.sent = old.sent;
                }
                session.partitions.insert(key, p);
            }
            for t in &r.forgotten_topics_data {
                for p in &t.partitions {
                    session.partitions.remove(&(t.topic.0.to_string(), *p));
                }
            }
            Ok((id, session.partitions.clone(), true))
        }
    }
}

/// Reads every partition; returns the topic responses, each partition's record chunks (in
/// response order), the record bytes included, and whether an incremental response has
/// anything to say.
fn read(
    state: &ClusterState,
    broker: i32,
    parts: &mut Parts,
    max_bytes: i32,
    read_committed: bool,
    incremental: bool,
) -> (
    Vec<FetchableTopicResponse>,
    Vec<Option<Vec<Bytes>>>,
    usize,
    bool,
) {
    let mut remaining = max_bytes.max(0) as usize;
    let mut total = 0usize;
    let mut news = false;
    let mut topics: Vec<FetchableTopicResponse> = Vec::new();
    let mut records = Vec::new();
    for ((topic, partition), sp) in parts.iter_mut() {
        let first_with_data = total == 0;
        let (data, chunks) = read_partition(
            state,
            broker,
            topic,
            *partition,
            sp,
            remaining,
            read_committed,
            first_with_data,
        );
        let len: usize = chunks.iter().flatten().map(Bytes::len).sum();
        let marks = (
            data.high_watermark,
            data.last_stable_offset,
            data.log_start_offset,
        );
        let changed = data.error_code != 0 || len > 0 || sp.sent != Some(marks);
        if incremental && !changed {
            continue;
        }
        news |= data.error_code != 0 || (incremental && sp.sent != Some(marks));
        sp.sent = Some(marks);
        total += len;
        remaining = remaining.saturating_sub(len);
        records.push(chunks);
        match topics.last_mut() {
            Some(t) if t.topic.0.as_str() == topic => t.partitions.push(data),
            _ => topics.push(
                FetchableTopicResponse::default()
                    .with_topic(TopicName(crate::state::sb(topic.clone())))
                    .with_partitions(vec![data]),
            ),
        }
    }
    (topics, records, total, news)
}

#[allow(clippy::too_many_arguments)]
fn read_partition(
    state: &ClusterState,
    broker: i32,
    topic: &str,
    partition: i32,
    sp: &SessionPartition,
    limit: usize,
    read_committed: bool,
    min_one: bool,
) -> (PartitionData, Option<Vec<Bytes>>) {
    // Records travel beside the response (see `FetchReply`); errors answer empty records.
    let data = PartitionData::default()
        .with_records(None)
        .with_partition_index(partition)
        .with_high_watermark(-1)
        .with_last_stable_offset(-1)
        .with_log_start_offset(-1);
    let Some(p) = state.partition(topic, partition) else {
        return (
            data.with_error_code(ErrorCode::UnknownTopicOrPartition.code()),
            Some(Vec::new()),
        );
    };
    if p.leader != broker {
        return (
            data.with_error_code(ErrorCode::NotLeaderOrFollower.code()),
            Some(Vec::new()),
        );
    }
    if sp.leader_epoch >= 0 && sp.leader_epoch != p.leader_epoch {
        let code = if sp.leader_epoch > p.leader_epoch {
            ErrorCode::UnknownLeaderEpoch
        } else {
            ErrorCode::FencedLeaderEpoch
        };
        return (data.with_error_code(code.code()), Some(Vec::new()));
    }
    let log = &p.log;
    let (hw, lso) = (log.high_watermark(), log.last_stable_offset());
    let data = data
        .with_high_watermark(hw)
        .with_last_stable_offset(lso)
        .with_log_start_offset(log.log_start);
    if sp.fetch_offset < log.log_start || sp.fetch_offset > hw {
        return (
            data.with_error_code(ErrorCode::OffsetOutOfRange.code()),
            Some(Vec::new()),
        );
    }
    let upper = if read_committed { lso } else { hw };
    let limit = limit.min(sp.max_bytes.max(0) as usize);
    let mut chunks: Vec<Bytes> = Vec::new();
    let mut size = 0usize;
    let mut last_included = sp.fetch_offset - 1;
    for b in &log.batches[log.batch_index(sp.fetch_offset)..] {
        if b.base_offset >= upper {
            break;
        }
        let len = b.bytes.len();
        if size + len <= limit || (size == 0 && min_one) {
            chunks.push(b.bytes.clone());
            size += len;
            last_included = b.last_offset;
            continue;
        }
        // Cut the batch at the limit, as a broker's file slice would.
        if limit > size {
            chunks.push(b.bytes.slice(..limit - size));
        }
        break;
    }
    let aborted = read_committed.then(|| {
        log.aborted
            .iter()
            .filter(|a| a.last_offset >= sp.fetch_offset && a.first_offset <= last_included)
            .map(|a| {
                AbortedTransaction::default()
                    .with_producer_id(ProducerId(a.producer_id))
                    .with_first_offset(a.first_offset)
            })
            .collect()
    });
    (data.with_aborted_transactions(aborted), Some(chunks))
}

pub(crate) fn list_offsets(ctx: &Ctx, version: i16, r: ListOffsetsRequest) -> ListOffsetsResponse {
    let state = ctx.shared.lock();
    let read_committed = r.isolation_level == 1;
    let topics = r
        .topics
        .iter()
        .map(|t| {
            let topic = t.name.0.to_string();
            ListOffsetsTopicResponse::default()
                .with_name(t.name.clone())
                .with_partitions(
                    t.partitions
                        .iter()
                        .map(|p| {
                            let resp = ListOffsetsPartitionResponse::default()
                                .with_partition_index(p.partition_index)
                                .with_timestamp(-1)
                                .with_offset(-1)
                                .with_leader_epoch(-1);
                            let Some(part) = state.partition(&topic, p.partition_index) else {
                                return resp
                                    .with_error_code(ErrorCode::UnknownTopicOrPartition.code());
                            };
                            if part.leader != ctx.broker {
                                return resp.with_error_code(ErrorCode::NotLeaderOrFollower.code());
                            }
                            let log = &part.log;
                            // The leader epoch is in responses from version 4 on only; setting
                            // it for older versions would make the response unencodable.
                            let resp = if version >= 4 {
                                resp.with_leader_epoch(part.leader_epoch)
                            } else {
                                resp
                            };
                            match p.timestamp {
                                -2 => resp.with_offset(log.log_start),
                                -1 => resp.with_offset(if read_committed {
                                    log.last_stable_offset()
                                } else {
                                    log.high_watermark()
                                }),
                                ts if ts >= 0 => match log.offset_for_timestamp(ts) {
                                    Some((offset, found)) => {
                                        resp.with_offset(offset).with_timestamp(found)
                                    }
                                    None => resp,
                                },
                                _ => resp.with_error_code(ErrorCode::UnsupportedVersion.code()),
                            }
                        })
                        .collect(),
                )
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}
