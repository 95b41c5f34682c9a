//! Looking start positions up with ListOffsets, run as a task per leader: the log start
//! (earliest), the log end (latest), or the first offset at or after a timestamp.
//!
//! A timestamp past the last record has no offset (the broker answers -1); the partition then
//! starts at the log end, as the Java consumer does when it resets by timestamp, which takes one
//! more request for those partitions.

use kingest_protocol::kafka_protocol::messages::list_offsets_request::{
    ListOffsetsPartition, ListOffsetsTopic,
};
use kingest_protocol::kafka_protocol::messages::{BrokerId, ListOffsetsRequest, TopicName};
use kingest_protocol::kafka_protocol::protocol::StrBytes;
use kingest_protocol::{BrokerError, ErrorCode};

use super::config::LATEST_TIMESTAMP;
use super::state::Tp;
use crate::client::Client;
use crate::error::{BrokerRef, Result};
use crate::net::Connection;

/// One partition to look up.
#[derive(Debug, Clone)]
pub(crate) struct LookupItem {
    /// The partition.
    pub tp: Tp,
    /// -2 (earliest), -1 (latest) or a timestamp.
    pub timestamp: i64,
    /// The leader epoch from metadata, so a stale leader answers FENCED_LEADER_EPOCH.
    pub leader_epoch: i32,
}

/// The lookups for one leader.
#[derive(Debug)]
pub(crate) struct LookupJob {
    /// The leader.
    pub broker: i32,
    /// ListOffsets' `isolation_level`: under read_committed, "latest" is the last stable offset.
    pub isolation_level: i8,
    /// How long the broker may take (v10's `timeout_ms`): the client's request timeout, since
    /// waiting longer than that is pointless.
    pub timeout_ms: i32,
    /// What to look up.
    pub items: Vec<LookupItem>,
}

/// The answer for one partition: the offset, or the broker's error.
#[derive(Debug)]
pub(crate) struct LookupAnswer {
    /// The partition.
    pub tp: Tp,
    /// The timestamp that was looked up (to tell a stale answer after a seek).
    pub timestamp: i64,
    /// The offset to start at.
    pub offset: std::result::Result<i64, BrokerError>,
}

/// The answers of one job.
#[derive(Debug)]
pub(crate) struct LookupResult {
    /// The broker that answered.
    pub broker: BrokerRef,
    /// One answer per item.
    pub answers: Vec<LookupAnswer>,
}

/// Runs a lookup job.
pub(crate) async fn run(client: Client, job: LookupJob) -> Result<LookupResult> {
    let conn = client.connection(job.broker).await?;
    let mut answers = list(&conn, &job, &job.items).await?;
    // Timestamps past the end: start at the log end.
    let past_end: Vec<LookupItem> = job
        .items
        .iter()
        .zip(&answers)
        .filter(|(item, answer)| item.timestamp >= 0 && matches!(answer.offset, Ok(-1)))
        .map(|(item, _)| LookupItem {
            timestamp: LATEST_TIMESTAMP,
            ..item.clone()
        })
        .collect();
    if !past_end.is_empty() {
        let ends = list(&conn, &job, &past_end).await?;
        for end in ends {
            if let Some(answer) = answers.iter_mut().find(|a| a.tp == end.tp) {
                answer.offset = end.offset;
            }
        }
    }
    Ok(LookupResult {
        broker: conn.broker().clone(),
        answers,
    })
}

/// One ListOffsets request; answers in the order of `items`.
async fn list(
    conn: &Connection,
    job: &LookupJob,
    items: &[LookupItem],
) -> Result<Vec<LookupAnswer>> {
    let version = conn.version_of::<ListOffsetsRequest>()?;
    let mut topics: Vec<ListOffsetsTopic> = Vec::new();
    for item in items {
        let partition = ListOffsetsPartition::default()
            .with_partition_index(item.tp.1)
            .with_current_leader_epoch(item.leader_epoch)
            .with_timestamp(item.timestamp);
        match topics.iter_mut().find(|t| *t.name.0 == *item.tp.0) {
            Some(t) => t.partitions.push(partition),
            None => topics.push(
                ListOffsetsTopic::default()
                    .with_name(TopicName(StrBytes::from_string(item.tp.0.to_string())))
                    .with_partitions(vec![partition]),
            ),
        }
    }
    let mut request = ListOffsetsRequest::default()
        // -1: a consumer, not a follower replica (the type's default is 0, a broker id).
        .with_replica_id(BrokerId(-1))
        .with_topics(topics)
        .with_timeout_ms(job.timeout_ms);
    if version >= 2 {
        request = request.with_isolation_level(job.isolation_level);
    }
    let response = conn.send_version(version, &request).await?;
    let answers = items
        .iter()
        .map(|item| {
            let found = response
                .topics
                .iter()
                .filter(|t| *t.name.0 == *item.tp.0)
                .flat_map(|t| t.partitions.iter())
                .find(|p| p.partition_index == item.tp.1);
            let offset = match found {
                Some(p) => match ErrorCode::from_code(p.error_code) {
                    ErrorCode::None => Ok(p.offset),
                    code => Err(BrokerError::new(code, None)),
                },
                None => Err(BrokerError::new(
                    ErrorCode::UnknownTopicOrPartition,
                    Some("the partition is missing from the ListOffsets response".to_owned()),
                )),
            };
            LookupAnswer {
                tp: item.tp.clone(),
                timestamp: item.timestamp,
                offset,
            }
        })
        .collect();
    Ok(answers)
}
