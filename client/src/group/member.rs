//! One member's side of the classic group protocol: finding the coordinator, JoinGroup (with
//! KIP-394's member-id round trip and KIP-345 static membership), the leader's assignment,
//! SyncGroup, Heartbeat, LeaveGroup and OffsetCommit/OffsetFetch.
//!
//! This is the protocol only; [`super::consumer::GroupConsumer`] decides when to rejoin and what
//! to do with the partitions. Error handling follows the Java `AbstractCoordinator`: a
//! coordinator error means finding the coordinator again; UNKNOWN_MEMBER_ID and
//! ILLEGAL_GENERATION mean the member's identity or generation is gone (rejoin from scratch);
//! REBALANCE_IN_PROGRESS means rejoin keeping the identity.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use kingest_protocol::kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kingest_protocol::kafka_protocol::messages::leave_group_request::MemberIdentity;
use kingest_protocol::kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kingest_protocol::kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kingest_protocol::kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kingest_protocol::kafka_protocol::messages::{
    GroupId, HeartbeatRequest, JoinGroupRequest, LeaveGroupRequest, OffsetCommitRequest,
    OffsetFetchRequest, SyncGroupRequest, TopicName,
};
use kingest_protocol::kafka_protocol::protocol::StrBytes;
use kingest_protocol::{BrokerError, ErrorCode};

use super::assignor::{Assignor, GroupAssignment, JoinProtocol};
use super::protocol::{Assignment, Subscription};
use crate::error::{ClientError, Result};
use crate::net::Connection;
use crate::Client;

/// A member's identity in the group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    /// The member id the coordinator gave (empty before the first join).
    pub member_id: String,
    /// The generation (-1 before the first join).
    pub generation: i32,
    /// The static instance id (KIP-345), if configured.
    pub instance_id: Option<String>,
}

/// What a completed JoinGroup + SyncGroup gave.
#[derive(Debug, Clone)]
pub struct Joined {
    /// The identity for this generation.
    pub identity: Identity,
    /// The protocol (assignor) the coordinator chose.
    pub protocol: String,
    /// Whether this member was the leader.
    pub leader: bool,
    /// This member's partitions.
    pub assignment: Vec<(String, i32)>,
}

/// What a heartbeat says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeartbeatOutcome {
    /// All well.
    Ok,
    /// A rebalance started: rejoin, keeping the identity.
    Rejoin,
    /// The identity or generation is gone (session expired, fenced): the partitions are lost.
    Lost,
    /// The coordinator moved: find it again.
    CoordinatorMoved,
}

/// The protocol side of a group member.
#[derive(Debug)]
pub struct Member {
    client: Client,
    group: String,
    session_timeout: Duration,
    rebalance_timeout: Duration,
    coordinator: Option<Connection>,
    /// The current identity.
    pub identity: Identity,
}

fn group_id(g: &str) -> GroupId {
    GroupId(StrBytes::from_string(g.to_owned()))
}

fn broker_error(conn: &Connection, api: &'static str, code: ErrorCode) -> ClientError {
    ClientError::Broker {
        broker: conn.broker().clone(),
        api,
        source: BrokerError::new(code, None),
    }
}

/// The topics of an OffsetCommit request committing `offsets` (the next offset to read, per
/// partition) with `metadata` and no leader epoch; for committing from outside the group too
/// ([`crate::admin::Admin::alter_consumer_group_offsets`]).
pub(crate) fn offset_commit_topics(
    offsets: &HashMap<(String, i32), i64>,
    metadata: Option<&str>,
) -> Vec<OffsetCommitRequestTopic> {
    let mut topics: BTreeMap<&str, Vec<OffsetCommitRequestPartition>> = BTreeMap::new();
    for ((t, p), o) in offsets {
        topics.entry(t.as_str()).or_default().push(
            OffsetCommitRequestPartition::default()
                .with_partition_index(*p)
                .with_committed_offset(*o)
                .with_committed_leader_epoch(-1)
                .with_committed_metadata(metadata.map(|m| StrBytes::from_string(m.to_owned()))),
        );
    }
    topics
        .into_iter()
        .map(|(t, ps)| {
            OffsetCommitRequestTopic::default()
                .with_name(TopicName(StrBytes::from_string(t.to_owned())))
                .with_partitions(ps)
        })
        .collect()
}

impl Member {
    /// A member of `group` (not joined yet).
    pub fn new(
        client: Client,
        group: &str,
        instance_id: Option<String>,
        session_timeout: Duration,
        rebalance_timeout: Duration,
    ) -> Self {
        Member {
            client,
            group: group.to_owned(),
            session_timeout,
            rebalance_timeout,
            coordinator: None,
            identity: Identity {
                member_id: String::new(),
                generation: -1,
                instance_id,
            },
        }
    }

    /// The coordinator connection, finding it if needed.
    pub async fn coordinator(&mut self) -> Result<Connection> {
        if let Some(c) = &self.coordinator {
            if !c.is_closed() {
                return Ok(c.clone());
            }
        }
        let c = crate::admin::groups::find_coordinator(&self.client, &self.group, 0).await?;
        self.coordinator = Some(c.clone());
        Ok(c)
    }

    /// Forgets the coordinator (after NOT_COORDINATOR and friends).
    pub fn coordinator_moved(&mut self) {
        self.coordinator = None;
    }

    /// How long to wait for a JoinGroup or SyncGroup response. The coordinator holds a
    /// JoinGroup until every member has rejoined (up to the rebalance timeout) and a SyncGroup
    /// until the leader's assignment arrives, so the request timeout is too short for them:
    /// timing out would close the coordinator connection and rejoin for nothing. As the Java
    /// client, the rebalance timeout plus five seconds, and never less than the request timeout.
    fn held_request_timeout(&self) -> Duration {
        (self.rebalance_timeout + Duration::from_secs(5))
            .max(self.client.config().connection.request_timeout)
    }

    /// Whether an error means the coordinator must be found again.
    fn is_coordinator_error(code: ErrorCode) -> bool {
        matches!(
            code,
            ErrorCode::NotCoordinator
                | ErrorCode::CoordinatorNotAvailable
                | ErrorCode::CoordinatorLoadInProgress
        )
    }

    /// Joins (or rejoins) the group and synchronizes: returns this generation's assignment.
    /// `leader_assign` is called when this member is the leader, with every member's
    /// subscription, to compute the group's assignment.
    pub async fn join<F>(
        &mut self,
        protocols: &[JoinProtocol],
        assignors: &[Box<dyn Assignor>],
        mut leader_assign: F,
    ) -> Result<Joined>
    where
        F: FnMut(
            &dyn Assignor,
            &BTreeMap<String, Subscription>,
        ) -> futures_lite_assign::AssignFuture,
    {
        let started = tokio::time::Instant::now();
        let deadline = started + self.rebalance_timeout + self.session_timeout;
        let mut backoff = crate::cluster::backoff::Backoff::new(
            self.client.config().retry_backoff,
            Duration::from_secs(1),
        );
        loop {
            let conn = self.coordinator().await?;
            let request = JoinGroupRequest::default()
                .with_group_id(group_id(&self.group))
                .with_session_timeout_ms(self.session_timeout.as_millis() as i32)
                .with_rebalance_timeout_ms(self.rebalance_timeout.as_millis() as i32)
                .with_member_id(StrBytes::from_string(self.identity.member_id.clone()))
                .with_group_instance_id(
                    self.identity.instance_id.clone().map(StrBytes::from_string),
                )
                .with_protocol_type(StrBytes::from_static_str("consumer"))
                .with_protocols(
                    protocols
                        .iter()
                        .map(|p| {
                            JoinGroupRequestProtocol::default()
                                .with_name(StrBytes::from_static_str(p.name))
                                .with_metadata(p.metadata.clone())
                        })
                        .collect(),
                );
            let response = match conn
                .send_within(&request, self.held_request_timeout())
                .await
            {
                Ok(r) => r,
                Err(e) if e.is_retriable() && tokio::time::Instant::now() < deadline => {
                    self.coordinator_moved();
                    tokio::time::sleep(backoff.fail()).await;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let code = ErrorCode::from_code(response.error_code);
            match code {
                ErrorCode::None => {}
                // KIP-394: come back with the id the coordinator just gave.
                ErrorCode::MemberIdRequired => {
                    self.identity.member_id = response.member_id.to_string();
                    continue;
                }
                ErrorCode::UnknownMemberId | ErrorCode::IllegalGeneration => {
                    self.identity.member_id.clear();
                    self.identity.generation = -1;
                    continue;
                }
                c if Self::is_coordinator_error(c) || c == ErrorCode::RebalanceInProgress => {
                    if c != ErrorCode::RebalanceInProgress {
                        self.coordinator_moved();
                    }
                    if tokio::time::Instant::now() >= deadline {
                        return Err(broker_error(&conn, "JoinGroup", c));
                    }
                    tokio::time::sleep(backoff.fail()).await;
                    continue;
                }
                c => return Err(broker_error(&conn, "JoinGroup", c)),
            }
            self.identity.member_id = response.member_id.to_string();
            self.identity.generation = response.generation_id;
            let protocol = response
                .protocol_name
                .as_ref()
                .map(|p| p.to_string())
                .unwrap_or_default();
            let leader = response.leader.as_str() == response.member_id.as_str();
            let mut assignments: Vec<SyncGroupRequestAssignment> = Vec::new();
            // KIP-814: a static leader rejoining a stable group is told it leads but must not
            // reassign; it sends no assignments and gets its own back from the coordinator.
            if leader && !response.skip_assignment {
                let assignor = super::assignor::select(assignors, &protocol).ok_or_else(|| ClientError::Config(format!("the coordinator chose assignor {protocol:?}, which this member did not offer")))?;
                let mut subscriptions = BTreeMap::new();
                for m in &response.members {
                    let mut s = Subscription::decode(&m.metadata).map_err(|e| {
                        ClientError::Config(format!(
                            "member {} sent an unreadable subscription: {e}",
                            m.member_id.as_str()
                        ))
                    })?;
                    s.group_instance_id = m.group_instance_id.as_ref().map(|i| i.to_string());
                    subscriptions.insert(m.member_id.to_string(), s);
                }
                let group_assignment: GroupAssignment =
                    leader_assign(assignor, &subscriptions).await?;
                for (member, partitions) in group_assignment {
                    let bytes = Assignment::new(partitions)
                        .encode()
                        .map_err(|e| ClientError::Config(e.to_string()))?;
                    assignments.push(
                        SyncGroupRequestAssignment::default()
                            .with_member_id(StrBytes::from_string(member))
                            .with_assignment(bytes),
                    );
                }
            }
            let sync = SyncGroupRequest::default()
                .with_group_id(group_id(&self.group))
                .with_generation_id(self.identity.generation)
                .with_member_id(StrBytes::from_string(self.identity.member_id.clone()))
                .with_group_instance_id(
                    self.identity.instance_id.clone().map(StrBytes::from_string),
                )
                .with_protocol_type(Some(StrBytes::from_static_str("consumer")))
                .with_protocol_name(Some(StrBytes::from_string(protocol.clone())))
                .with_assignments(assignments);
            let response = match conn.send_within(&sync, self.held_request_timeout()).await {
                Ok(r) => r,
                Err(e) if e.is_retriable() && tokio::time::Instant::now() < deadline => {
                    self.coordinator_moved();
                    continue;
                }
                Err(e) => return Err(e),
            };
            match ErrorCode::from_code(response.error_code) {
                ErrorCode::None => {}
                ErrorCode::RebalanceInProgress => continue,
                ErrorCode::UnknownMemberId | ErrorCode::IllegalGeneration => {
                    self.identity.member_id.clear();
                    self.identity.generation = -1;
                    continue;
                }
                c if Self::is_coordinator_error(c) => {
                    self.coordinator_moved();
                    continue;
                }
                c => return Err(broker_error(&conn, "SyncGroup", c)),
            }
            let assignment = if response.assignment.is_empty() {
                Assignment::default()
            } else {
                Assignment::decode(&response.assignment)
                    .map_err(|e| ClientError::Config(format!("unreadable assignment: {e}")))?
            };
            tracing::debug!(
                group = %self.group,
                member = %self.identity.member_id,
                generation = self.identity.generation,
                leader,
                protocol = %protocol,
                partitions = assignment.partitions.len(),
                took_ms = started.elapsed().as_millis() as u64,
                "joined the group"
            );
            return Ok(Joined {
                identity: self.identity.clone(),
                protocol,
                leader,
                assignment: assignment.partitions,
            });
        }
    }

    /// One heartbeat.
    pub async fn heartbeat(&mut self) -> HeartbeatOutcome {
        let Ok(conn) = self.coordinator().await else {
            return HeartbeatOutcome::CoordinatorMoved;
        };
        let request = HeartbeatRequest::default()
            .with_group_id(group_id(&self.group))
            .with_generation_id(self.identity.generation)
            .with_member_id(StrBytes::from_string(self.identity.member_id.clone()))
            .with_group_instance_id(self.identity.instance_id.clone().map(StrBytes::from_string));
        match conn.send(&request).await {
            Err(_) => {
                self.coordinator_moved();
                HeartbeatOutcome::CoordinatorMoved
            }
            Ok(r) => match ErrorCode::from_code(r.error_code) {
                ErrorCode::None => HeartbeatOutcome::Ok,
                ErrorCode::RebalanceInProgress => HeartbeatOutcome::Rejoin,
                ErrorCode::UnknownMemberId
                | ErrorCode::IllegalGeneration
                | ErrorCode::FencedInstanceId => HeartbeatOutcome::Lost,
                _ => {
                    self.coordinator_moved();
                    HeartbeatOutcome::CoordinatorMoved
                }
            },
        }
    }

    /// Leaves the group (not for static members, who keep their place across restarts).
    pub async fn leave(&mut self) -> Result<()> {
        if self.identity.member_id.is_empty() || self.identity.instance_id.is_some() {
            return Ok(());
        }
        let conn = self.coordinator().await?;
        let version = conn.version_of::<LeaveGroupRequest>()?;
        let id = StrBytes::from_string(self.identity.member_id.clone());
        // Versions 3+ name the leaving members in a list; earlier ones in one field.
        let request = if version >= 3 {
            LeaveGroupRequest::default()
                .with_group_id(group_id(&self.group))
                .with_members(vec![MemberIdentity::default().with_member_id(id)])
        } else {
            LeaveGroupRequest::default()
                .with_group_id(group_id(&self.group))
                .with_member_id(id)
        };
        let response = conn.send_version(version, &request).await?;
        self.identity.member_id.clear();
        self.identity.generation = -1;
        match ErrorCode::from_code(response.error_code) {
            ErrorCode::None | ErrorCode::UnknownMemberId => Ok(()),
            c => Err(broker_error(&conn, "LeaveGroup", c)),
        }
    }

    /// Commits offsets (the next offset to read, per partition) for this generation.
    pub async fn commit(
        &mut self,
        offsets: &HashMap<(String, i32), i64>,
        metadata: Option<&str>,
    ) -> Result<()> {
        if offsets.is_empty() {
            return Ok(());
        }
        let conn = self.coordinator().await?;
        // Versions 9+ are for the new (KIP-848) protocol's member epochs.
        let version = conn
            .versions()
            .negotiate_capped::<OffsetCommitRequest>(8)
            .map_err(|e| conn.protocol_error::<OffsetCommitRequest>(e))?;
        let request = OffsetCommitRequest::default()
            .with_group_id(group_id(&self.group))
            .with_generation_id_or_member_epoch(self.identity.generation)
            .with_member_id(StrBytes::from_string(self.identity.member_id.clone()))
            .with_group_instance_id(self.identity.instance_id.clone().map(StrBytes::from_string))
            .with_retention_time_ms(-1)
            .with_topics(offset_commit_topics(offsets, metadata));
        let response = conn.send_version(version, &request).await?;
        for t in &response.topics {
            for p in &t.partitions {
                let code = ErrorCode::from_code(p.error_code);
                if Self::is_coordinator_error(code) {
                    self.coordinator_moved();
                }
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

    /// The committed offsets of `partitions` (-1 where nothing is committed).
    pub async fn committed(
        &mut self,
        partitions: &[(String, i32)],
    ) -> Result<HashMap<(String, i32), i64>> {
        let conn = self.coordinator().await?;
        let version = conn
            .versions()
            .negotiate_capped::<OffsetFetchRequest>(7)
            .map_err(|e| conn.protocol_error::<OffsetFetchRequest>(e))?;
        let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for (t, p) in partitions {
            topics.entry(t.as_str()).or_default().push(*p);
        }
        let request = OffsetFetchRequest::default()
            .with_group_id(group_id(&self.group))
            // Wait for offsets held by open transactions (KIP-447) rather than read stale ones.
            .with_require_stable(version >= 7)
            .with_topics(Some(
                topics
                    .into_iter()
                    .map(|(t, ps)| {
                        OffsetFetchRequestTopic::default()
                            .with_name(TopicName(StrBytes::from_string(t.to_owned())))
                            .with_partition_indexes(ps)
                    })
                    .collect(),
            ));
        let deadline =
            tokio::time::Instant::now() + self.client.config().connection.request_timeout;
        loop {
            let response = conn.send_version(version, &request).await?;
            let mut out = HashMap::new();
            let mut unstable = false;
            for t in &response.topics {
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
            let top = ErrorCode::from_code(response.error_code);
            if !top.is_ok() {
                if Self::is_coordinator_error(top) {
                    self.coordinator_moved();
                }
                return Err(broker_error(&conn, "OffsetFetch", top));
            }
            if !unstable || tokio::time::Instant::now() >= deadline {
                return Ok(out);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The boxed future type of the leader's assignment callback.
pub mod futures_lite_assign {
    use std::future::Future;
    use std::pin::Pin;

    use crate::error::Result;
    use crate::group::assignor::GroupAssignment;

    /// A boxed future computing the group's assignment.
    pub type AssignFuture = Pin<Box<dyn Future<Output = Result<GroupAssignment>> + Send>>;
}
