//! Consumer groups seen from outside: listing, describing, committed offsets and lag (what
//! `kafka-consumer-groups.sh --describe` and dgkafka's `check` show), and committing offsets
//! for a group with no members (`--reset-offsets --execute`).

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use kingest_protocol::kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kingest_protocol::kafka_protocol::messages::{
    ConsumerProtocolAssignment, DescribeGroupsRequest, FindCoordinatorRequest, GroupId,
    ListGroupsRequest, OffsetCommitRequest, OffsetFetchRequest, TopicName,
};
use kingest_protocol::kafka_protocol::protocol::{Decodable, StrBytes};
use kingest_protocol::{BrokerError, ErrorCode};

use super::{error_of, partition_key, Admin, OffsetSpec};
use crate::error::{ClientError, Result};
use crate::group::member::offset_commit_topics;
use crate::net::Connection;

/// Attempts of [`Admin::alter_consumer_group_offsets`] while the coordinator moves or loads.
const ALTER_ATTEMPTS: u64 = 5;

/// A group as ListGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    /// The group id.
    pub group_id: String,
    /// "consumer" for consumer groups.
    pub protocol_type: String,
    /// Its state (Stable, Empty, ...), when the broker says.
    pub state: String,
}

/// One member of a described group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMember {
    /// The member id the coordinator gave it.
    pub member_id: String,
    /// Its static instance id (KIP-345), if any.
    pub instance_id: Option<String>,
    /// Its client id.
    pub client_id: String,
    /// The host it connected from.
    pub client_host: String,
    /// The partitions assigned to it (decoded from the consumer protocol assignment).
    pub assignment: Vec<(String, i32)>,
}

/// A group as DescribeGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    /// The group id.
    pub group_id: String,
    /// Its state.
    pub state: String,
    /// "consumer" for consumer groups.
    pub protocol_type: String,
    /// The chosen assignor ("range", "cooperative-sticky", ...).
    pub protocol: String,
    /// Its members.
    pub members: Vec<GroupMember>,
}

/// Committed offset, log end and lag of one partition for one group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionLag {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The group's committed offset (-1 when none).
    pub committed: i64,
    /// The log end offset.
    pub log_end: i64,
    /// How far the group is behind (log end minus committed, or the whole log when nothing is
    /// committed).
    pub lag: i64,
}

impl Admin {
    /// The coordinator of `group` (key type 0) or of a transactional id (key type 1).
    pub async fn find_coordinator(&self, key: &str, key_type: i8) -> Result<Connection> {
        find_coordinator(&self.client, key, key_type).await
    }

    /// Every group on every broker.
    pub async fn list_groups(&self) -> Result<Vec<GroupListing>> {
        let snapshot = self.client.refresh_metadata::<&str>(&[]).await?;
        let mut out = Vec::new();
        let mut ids: Vec<i32> = snapshot.brokers.keys().copied().collect();
        ids.sort();
        for id in ids {
            let conn = self.client.connection(id).await?;
            let response = conn.send(&ListGroupsRequest::default()).await?;
            check(&conn, "ListGroups", response.error_code, None)?;
            out.extend(response.groups.iter().map(|g| GroupListing {
                group_id: g.group_id.0.to_string(),
                protocol_type: g.protocol_type.to_string(),
                state: g.group_state.to_string(),
            }));
        }
        out.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        out.dedup_by(|a, b| a.group_id == b.group_id);
        Ok(out)
    }

    /// Describes a group: state, assignor and members with their partitions.
    pub async fn describe_group(&self, group: &str) -> Result<GroupDescription> {
        let conn = self.find_coordinator(group, 0).await?;
        let request = DescribeGroupsRequest::default()
            .with_groups(vec![GroupId(StrBytes::from_string(group.to_owned()))]);
        let response = conn.send(&request).await?;
        let g = response.groups.first().ok_or_else(|| ClientError::Broker {
            broker: conn.broker().clone(),
            api: "DescribeGroups",
            source: BrokerError::new(
                ErrorCode::UnknownServerError,
                Some("empty DescribeGroups response".to_owned()),
            ),
        })?;
        check(
            &conn,
            "DescribeGroups",
            g.error_code,
            g.error_message.as_ref(),
        )?;
        Ok(GroupDescription {
            group_id: g.group_id.0.to_string(),
            state: g.group_state.to_string(),
            protocol_type: g.protocol_type.to_string(),
            protocol: g.protocol_data.to_string(),
            members: g
                .members
                .iter()
                .map(|m| GroupMember {
                    member_id: m.member_id.to_string(),
                    instance_id: m.group_instance_id.as_ref().map(|s| s.to_string()),
                    client_id: m.client_id.to_string(),
                    client_host: m.client_host.to_string(),
                    assignment: decode_assignment(&m.member_assignment),
                })
                .collect(),
        })
    }

    /// The group's committed offsets: for `partitions`, or (`None`) for every partition it has
    /// committed.
    pub async fn committed_offsets(
        &self,
        group: &str,
        partitions: Option<&[(&str, i32)]>,
    ) -> Result<HashMap<(String, i32), i64>> {
        let conn = self.find_coordinator(group, 0).await?;
        // Versions 8+ batch several groups in another layout; one group needs no more than 7.
        let version = conn
            .versions()
            .negotiate_capped::<OffsetFetchRequest>(7)
            .map_err(|e| conn.protocol_error::<OffsetFetchRequest>(e))?;
        let topics = partitions.map(|parts| {
            let mut topics: Vec<OffsetFetchRequestTopic> = Vec::new();
            for &(topic, partition) in parts {
                match topics.iter_mut().find(|t| t.name.0.as_str() == topic) {
                    Some(t) => t.partition_indexes.push(partition),
                    None => topics.push(
                        OffsetFetchRequestTopic::default()
                            .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
                            .with_partition_indexes(vec![partition]),
                    ),
                }
            }
            topics
        });
        let request = OffsetFetchRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(group.to_owned())))
            .with_topics(topics);
        let response = conn.send_version(version, &request).await?;
        check(&conn, "OffsetFetch", response.error_code, None)?;
        let mut out = HashMap::new();
        for t in &response.topics {
            for p in &t.partitions {
                let key = partition_key(
                    &conn,
                    "OffsetFetch",
                    &t.name,
                    p.partition_index,
                    p.error_code,
                )?;
                out.insert(key, p.committed_offset);
            }
        }
        Ok(out)
    }

    /// Commits `offsets` (the next offset to read, per topic and partition, with `metadata`)
    /// for `group` from outside it, as Java's `Admin.alterConsumerGroupOffsets` and
    /// `kafka-consumer-groups.sh --reset-offsets --execute` do: an OffsetCommit with no member
    /// id and generation -1, which the coordinator accepts only while the group has no
    /// members. A group with members answers `UNKNOWN_MEMBER_ID` or `ILLEGAL_GENERATION`
    /// ([`ClientError::Partition`] naming the partition), so a consumer that joined in between
    /// is not overridden behind its back. Retried while the coordinator moves or loads.
    pub async fn alter_consumer_group_offsets(
        &self,
        group: &str,
        offsets: &HashMap<(String, i32), i64>,
        metadata: Option<&str>,
    ) -> Result<()> {
        if offsets.is_empty() {
            return Ok(());
        }
        let request = OffsetCommitRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(group.to_owned())))
            .with_generation_id_or_member_epoch(-1)
            .with_member_id(StrBytes::from_static_str(""))
            .with_retention_time_ms(-1)
            .with_topics(offset_commit_topics(offsets, metadata));
        let mut attempt = 0;
        loop {
            attempt += 1;
            let conn = self.find_coordinator(group, 0).await?;
            // Versions 9+ are for the KIP-848 protocol's member epochs.
            let version = conn
                .versions()
                .negotiate_capped::<OffsetCommitRequest>(8)
                .map_err(|e| conn.protocol_error::<OffsetCommitRequest>(e))?;
            let response = conn.send_version(version, &request).await?;
            let mut failure = None;
            let mut moving = false;
            for t in &response.topics {
                for p in &t.partitions {
                    let code = ErrorCode::from_code(p.error_code);
                    if code.is_ok() {
                        continue;
                    }
                    moving |= matches!(
                        code,
                        ErrorCode::NotCoordinator
                            | ErrorCode::CoordinatorNotAvailable
                            | ErrorCode::CoordinatorLoadInProgress
                    );
                    failure.get_or_insert_with(|| ClientError::Partition {
                        broker: conn.broker().clone(),
                        api: "OffsetCommit",
                        topic: t.name.0.to_string(),
                        partition: p.partition_index,
                        source: BrokerError::new(code, None),
                    });
                }
            }
            match failure {
                None => return Ok(()),
                Some(_) if moving && attempt < ALTER_ATTEMPTS => {
                    tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
                }
                Some(e) => return Err(e),
            }
        }
    }

    /// Committed offset, log end and lag of every partition of `topics` for `group`.
    pub async fn group_lag(&self, group: &str, topics: &[&str]) -> Result<Vec<PartitionLag>> {
        let mut parts: Vec<(&str, i32)> = Vec::new();
        for &topic in topics {
            let n = self.client.partition_count(topic).await?;
            parts.extend((0..n as i32).map(|p| (topic, p)));
        }
        let committed = self.committed_offsets(group, Some(&parts)).await?;
        let specs: Vec<(&str, i32, OffsetSpec)> = parts
            .iter()
            .map(|&(t, p)| (t, p, OffsetSpec::Latest))
            .collect();
        let ends = self.list_offsets(&specs, false).await?;
        let starts = self
            .list_offsets(
                &parts
                    .iter()
                    .map(|&(t, p)| (t, p, OffsetSpec::Earliest))
                    .collect::<Vec<_>>(),
                false,
            )
            .await?;
        Ok(parts
            .iter()
            .map(|&(t, p)| {
                let key = (t.to_owned(), p);
                let committed = committed.get(&key).copied().unwrap_or(-1);
                let log_end = ends.get(&key).map_or(-1, |o| o.offset);
                let from = if committed >= 0 {
                    committed
                } else {
                    starts.get(&key).map_or(0, |o| o.offset)
                };
                PartitionLag {
                    topic: t.to_owned(),
                    partition: p,
                    committed,
                    log_end,
                    lag: (log_end - from).max(0),
                }
            })
            .collect())
    }
}

/// Finds a coordinator (groups: key type 0; transactions: 1), retrying while the coordinator is
/// still loading or not yet available.
pub(crate) async fn find_coordinator(
    client: &crate::Client,
    key: &str,
    key_type: i8,
) -> Result<Connection> {
    let mut backoff = crate::cluster::backoff::Backoff::new(
        client.config().retry_backoff,
        std::time::Duration::from_secs(1),
    );
    let deadline = tokio::time::Instant::now() + client.config().connection.request_timeout;
    loop {
        let conn = client.any_connection().await?;
        // Versions 4+ batch several keys in another layout; one key needs no more than 3.
        let version = conn
            .versions()
            .negotiate_capped::<FindCoordinatorRequest>(3)
            .map_err(|e| conn.protocol_error::<FindCoordinatorRequest>(e))?;
        let request = FindCoordinatorRequest::default()
            .with_key(StrBytes::from_string(key.to_owned()))
            .with_key_type(key_type);
        let response = conn.send_version(version, &request).await?;
        let code = ErrorCode::from_code(response.error_code);
        if code.is_ok() {
            let addr = if response.host.contains(':') {
                format!("[{}]:{}", response.host, response.port)
            } else {
                format!("{}:{}", response.host, response.port)
            };
            return client.connection_to(response.node_id.0, &addr).await;
        }
        let error = ClientError::Broker {
            broker: conn.broker().clone(),
            api: "FindCoordinator",
            source: BrokerError::new(code, response.error_message.as_ref().map(|m| m.to_string())),
        };
        if !code.is_retriable() || tokio::time::Instant::now() >= deadline {
            return Err(error);
        }
        tokio::time::sleep(backoff.fail()).await;
    }
}

fn check(
    conn: &Connection,
    api: &'static str,
    code: i16,
    message: Option<&StrBytes>,
) -> Result<()> {
    error_of(code, message).map_or(Ok(()), |source| {
        Err(ClientError::Broker {
            broker: conn.broker().clone(),
            api,
            source,
        })
    })
}

/// Decodes a consumer-protocol assignment (version i16, then the body); anything undecodable
/// (another protocol type) gives no partitions.
fn decode_assignment(bytes: &Bytes) -> Vec<(String, i32)> {
    if bytes.len() < 2 {
        return Vec::new();
    }
    let version = i16::from_be_bytes([bytes[0], bytes[1]]);
    let mut body = bytes.slice(2..);
    match ConsumerProtocolAssignment::decode(&mut body, version.clamp(0, 3)) {
        Ok(a) => a
            .assigned_partitions
            .iter()
            .flat_map(|tp| {
                tp.partitions
                    .iter()
                    .map(move |p| (tp.topic.0.to_string(), *p))
            })
            .collect(),
        Err(_) => Vec::new(),
    }
}
