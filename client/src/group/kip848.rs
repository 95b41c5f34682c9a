//! One member's side of the consumer group protocol (KIP-848) on the wire:
//! ConsumerGroupHeartbeat (join at epoch 0, heartbeats reporting the partitions owned, leave
//! with epoch -1, or -2 for a static member coming back), and OffsetCommit/OffsetFetch v9 with
//! the member id and epoch.
//!
//! The broker computes the assignment; the member only converges on what each heartbeat answer
//! gives it. Error handling follows the Java `ConsumerMembershipManager`: FENCED_MEMBER_EPOCH and
//! UNKNOWN_MEMBER_ID mean the member lost its partitions and rejoins at epoch 0; coordinator
//! errors mean finding the coordinator again. [`super::consumer::GroupConsumer`] decides what to
//! do with the partitions.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use kingest_protocol::kafka_protocol::messages::consumer_group_heartbeat_request::TopicPartitions;
use kingest_protocol::kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopics,
};
use kingest_protocol::kafka_protocol::messages::{
    ConsumerGroupHeartbeatRequest, GroupId, OffsetCommitRequest, OffsetFetchRequest, TopicName,
};
use kingest_protocol::kafka_protocol::protocol::StrBytes;
use kingest_protocol::{BrokerError, ErrorCode};
use uuid::Uuid;

use super::member::offset_commit_topics;
use crate::error::{ClientError, Result};
use crate::net::Connection;
use crate::Client;

/// A partition, by topic name.
pub type TopicPartition = (String, i32);

/// What a heartbeat answer means for the member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Heartbeat {
    /// All well; `Some` when the broker sent the member's (new) assignment.
    Ok(Option<BTreeSet<TopicPartition>>),
    /// The member was fenced or forgotten: its partitions are lost; it rejoins at epoch 0.
    Fenced,
    /// The coordinator moved or is loading: try again at the next heartbeat.
    Retry,
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

/// The protocol side of a KIP-848 member.
#[derive(Debug)]
pub struct ConsumerMember {
    client: Client,
    group: String,
    instance_id: Option<String>,
    rebalance_timeout: Duration,
    assignor: Option<String>,
    coordinator: Option<Connection>,
    /// The member id (given by the broker on the first heartbeat).
    pub member_id: String,
    /// The member epoch (0: joining).
    pub epoch: i32,
    /// The heartbeat interval the broker asks for.
    pub heartbeat_interval: Duration,
    /// The subscription last sent (`None`: send it with the next heartbeat).
    sent_topics: Option<Vec<String>>,
    /// The owned partitions last reported.
    sent_owned: Option<BTreeSet<TopicPartition>>,
}

impl ConsumerMember {
    /// A member of `group` (not joined yet); `assignor` names the broker's assignor to use.
    pub fn new(
        client: Client,
        group: &str,
        instance_id: Option<String>,
        rebalance_timeout: Duration,
        assignor: Option<String>,
    ) -> Self {
        Self {
            client,
            group: group.to_owned(),
            instance_id,
            rebalance_timeout,
            assignor,
            coordinator: None,
            member_id: String::new(),
            epoch: 0,
            heartbeat_interval: Duration::from_secs(3),
            sent_topics: None,
            sent_owned: None,
        }
    }

    /// The coordinator connection, checked to speak ConsumerGroupHeartbeat.
    pub async fn coordinator(&mut self) -> Result<Connection> {
        if let Some(c) = &self.coordinator {
            if !c.is_closed() {
                return Ok(c.clone());
            }
        }
        let c = crate::admin::groups::find_coordinator(&self.client, &self.group, 0).await?;
        if c.version_of::<ConsumerGroupHeartbeatRequest>().is_err() {
            return Err(ClientError::GroupProtocolUnsupported {
                broker: c.broker().clone(),
                group: self.group.clone(),
            });
        }
        self.coordinator = Some(c.clone());
        Ok(c)
    }

    /// Starts over at epoch 0 (after being fenced): everything is sent again.
    pub fn reset(&mut self) {
        self.epoch = 0;
        self.sent_topics = None;
        self.sent_owned = None;
    }

    /// One heartbeat reporting `owned` (what the application side owns now), subscribed to
    /// `topics`.
    pub async fn heartbeat(
        &mut self,
        topics: &[String],
        owned: &BTreeSet<TopicPartition>,
    ) -> Result<Heartbeat> {
        let conn = match self.coordinator().await {
            Ok(c) => c,
            Err(e @ ClientError::GroupProtocolUnsupported { .. }) => return Err(e),
            Err(_) => return Ok(Heartbeat::Retry),
        };
        let joining = self.epoch == 0;
        // After a request whose answer was lost, send every field (as Java's heartbeat state
        // does after a failure): the coordinator then answers with the whole assignment, which
        // it would otherwise send only when it changes, and the lost answer may have carried a
        // change.
        let full = joining || self.sent_topics.is_none() || self.sent_owned.is_none();
        let send_topics = full || self.sent_topics.as_deref() != Some(topics);
        let send_owned = full || self.sent_owned.as_ref() != Some(owned);
        let metadata = self.client.metadata();
        let ids: HashMap<&str, Uuid> = metadata
            .topics
            .values()
            .map(|t| (t.name.as_str(), Uuid::from_bytes(t.id)))
            .collect();
        let mut by_topic: BTreeMap<Uuid, Vec<i32>> = BTreeMap::new();
        for (t, p) in owned {
            if let Some(id) = ids.get(t.as_str()) {
                by_topic.entry(*id).or_default().push(*p);
            }
        }
        let owned_wire: Vec<TopicPartitions> = by_topic
            .into_iter()
            .map(|(id, ps)| {
                TopicPartitions::default()
                    .with_topic_id(id)
                    .with_partitions(ps)
            })
            .collect();
        let request = ConsumerGroupHeartbeatRequest::default()
            .with_group_id(GroupId(s(&self.group)))
            .with_member_id(s(&self.member_id))
            .with_member_epoch(self.epoch)
            .with_instance_id(self.instance_id.as_deref().map(s))
            .with_rebalance_timeout_ms(if full {
                self.rebalance_timeout.as_millis().min(i32::MAX as u128) as i32
            } else {
                -1
            })
            .with_subscribed_topic_names(
                send_topics.then(|| topics.iter().map(|t| TopicName(s(t))).collect()),
            )
            .with_server_assignor(if joining {
                self.assignor.as_deref().map(s)
            } else {
                None
            })
            .with_topic_partitions(send_owned.then_some(if joining {
                Vec::new()
            } else {
                owned_wire
            }));
        let response = match conn.send(&request).await {
            Ok(r) => r,
            Err(_) => {
                self.coordinator = None;
                self.sent_topics = None;
                self.sent_owned = None;
                return Ok(Heartbeat::Retry);
            }
        };
        match ErrorCode::from_code(response.error_code) {
            ErrorCode::None => {}
            ErrorCode::FencedMemberEpoch | ErrorCode::UnknownMemberId => {
                self.reset();
                return Ok(Heartbeat::Fenced);
            }
            ErrorCode::NotCoordinator
            | ErrorCode::CoordinatorNotAvailable
            | ErrorCode::CoordinatorLoadInProgress => {
                self.coordinator = None;
                return Ok(Heartbeat::Retry);
            }
            code => {
                return Err(ClientError::Broker {
                    broker: conn.broker().clone(),
                    api: "ConsumerGroupHeartbeat",
                    source: BrokerError::new(
                        code,
                        response.error_message.as_ref().map(|m| m.to_string()),
                    ),
                })
            }
        }
        if let Some(id) = response.member_id.as_ref().filter(|m| !m.is_empty()) {
            self.member_id = id.to_string();
        }
        self.epoch = response.member_epoch;
        if response.heartbeat_interval_ms > 0 {
            self.heartbeat_interval = Duration::from_millis(response.heartbeat_interval_ms as u64);
        }
        if send_topics {
            self.sent_topics = Some(topics.to_vec());
        }
        if send_owned {
            self.sent_owned = Some(owned.clone());
        }
        let Some(assignment) = response.assignment else {
            return Ok(Heartbeat::Ok(None));
        };
        // The assignment names topics by id: resolve them, refreshing metadata once for ids
        // not known yet (a topic created since).
        let wanted: BTreeSet<Uuid> = assignment
            .topic_partitions
            .iter()
            .map(|t| t.topic_id)
            .collect();
        let mut names = self.names(&wanted);
        if names.len() < wanted.len() {
            let _ = self.client.refresh_metadata(topics).await;
            names = self.names(&wanted);
        }
        let mut out = BTreeSet::new();
        for tp in &assignment.topic_partitions {
            match names.get(&tp.topic_id) {
                Some(name) => out.extend(tp.partitions.iter().map(|p| (name.clone(), *p))),
                None => {
                    tracing::warn!(group = %self.group, topic_id = %tp.topic_id, "assigned a topic id without metadata; skipped until the next assignment");
                }
            }
        }
        Ok(Heartbeat::Ok(Some(out)))
    }

    fn names(&self, ids: &BTreeSet<Uuid>) -> HashMap<Uuid, String> {
        self.client
            .metadata()
            .topics
            .values()
            .map(|t| (Uuid::from_bytes(t.id), t.name.clone()))
            .filter(|(id, _)| ids.contains(id))
            .collect()
    }

    /// Leaves the group: epoch -1, or -2 for a static member (it keeps its partitions for its
    /// next incarnation within the session timeout).
    pub async fn leave(&mut self) -> Result<()> {
        if self.member_id.is_empty() || self.epoch == 0 {
            return Ok(());
        }
        let conn = self.coordinator().await?;
        let epoch = if self.instance_id.is_some() { -2 } else { -1 };
        let request = ConsumerGroupHeartbeatRequest::default()
            .with_group_id(GroupId(s(&self.group)))
            .with_member_id(s(&self.member_id))
            .with_member_epoch(epoch)
            .with_instance_id(self.instance_id.as_deref().map(s))
            .with_rebalance_timeout_ms(-1);
        let response = conn.send(&request).await?;
        self.reset();
        match ErrorCode::from_code(response.error_code) {
            ErrorCode::None | ErrorCode::UnknownMemberId => Ok(()),
            code => Err(ClientError::Broker {
                broker: conn.broker().clone(),
                api: "ConsumerGroupHeartbeat",
                source: BrokerError::new(code, None),
            }),
        }
    }

    /// Commits offsets (the next offset to read, per partition) at the current member epoch:
    /// the broker refuses them (STALE_MEMBER_EPOCH) if the epoch moved on.
    pub async fn commit(
        &mut self,
        offsets: &HashMap<TopicPartition, i64>,
        metadata: Option<&str>,
    ) -> Result<()> {
        if offsets.is_empty() {
            return Ok(());
        }
        let conn = self.coordinator().await?;
        let version = conn
            .versions()
            .negotiate_capped::<OffsetCommitRequest>(9)
            .map_err(|e| conn.protocol_error::<OffsetCommitRequest>(e))?;
        let request = OffsetCommitRequest::default()
            .with_group_id(GroupId(s(&self.group)))
            .with_generation_id_or_member_epoch(self.epoch)
            .with_member_id(s(&self.member_id))
            .with_group_instance_id(self.instance_id.as_deref().map(s))
            .with_retention_time_ms(-1)
            .with_topics(offset_commit_topics(offsets, metadata));
        let response = conn.send_version(version, &request).await?;
        for t in &response.topics {
            for p in &t.partitions {
                let code = ErrorCode::from_code(p.error_code);
                if !code.is_ok() {
                    return Err(ClientError::Partition {
                        broker: conn.broker().clone(),
                        api: "OffsetCommit",
                        topic: t.name.0.to_string(),
                        partition: p.partition_index,
                        source: BrokerError::new(code, None),
                    });
                }
            }
        }
        Ok(())
    }

    /// The committed offsets of `partitions` (-1 where nothing is committed), read as this
    /// member at its epoch.
    pub async fn committed(
        &mut self,
        partitions: &[TopicPartition],
    ) -> Result<HashMap<TopicPartition, i64>> {
        let conn = self.coordinator().await?;
        let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for (t, p) in partitions {
            topics.entry(t.as_str()).or_default().push(*p);
        }
        let request = OffsetFetchRequest::default()
            .with_require_stable(true)
            .with_groups(vec![OffsetFetchRequestGroup::default()
                .with_group_id(GroupId(s(&self.group)))
                .with_member_id(Some(s(&self.member_id)))
                .with_member_epoch(self.epoch)
                .with_topics(Some(
                    topics
                        .into_iter()
                        .map(|(t, ps)| {
                            OffsetFetchRequestTopics::default()
                                .with_name(TopicName(s(t)))
                                .with_partition_indexes(ps)
                        })
                        .collect(),
                ))]);
        let version = conn
            .versions()
            .negotiate_capped::<OffsetFetchRequest>(9)
            .map_err(|e| conn.protocol_error::<OffsetFetchRequest>(e))?;
        let deadline =
            tokio::time::Instant::now() + self.client.config().connection.request_timeout;
        loop {
            let response = conn.send_version(version, &request).await?;
            let mut out = HashMap::new();
            let mut unstable = false;
            for g in &response.groups {
                let code = ErrorCode::from_code(g.error_code);
                if !code.is_ok() {
                    return Err(ClientError::Broker {
                        broker: conn.broker().clone(),
                        api: "OffsetFetch",
                        source: BrokerError::new(code, None),
                    });
                }
                for t in &g.topics {
                    for p in &t.partitions {
                        match ErrorCode::from_code(p.error_code) {
                            ErrorCode::None => {
                                out.insert(
                                    (t.name.0.to_string(), p.partition_index),
                                    p.committed_offset,
                                );
                            }
                            ErrorCode::UnstableOffsetCommit => unstable = true,
                            c => {
                                return Err(ClientError::Partition {
                                    broker: conn.broker().clone(),
                                    api: "OffsetFetch",
                                    topic: t.name.0.to_string(),
                                    partition: p.partition_index,
                                    source: BrokerError::new(c, None),
                                })
                            }
                        }
                    }
                }
            }
            if !unstable || tokio::time::Instant::now() >= deadline {
                return Ok(out);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
