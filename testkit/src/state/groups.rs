//! Consumer group state for the classic protocol: members, generations, the chosen protocol
//! and leader, assignments, committed offsets, and the waiters of JoinGroup and SyncGroup
//! requests that are parked until the rebalance they are part of completes.
//!
//! The transitions follow Kafka's group coordinator: Empty → PreparingRebalance (a member
//! joined, left, changed or timed out) → CompletingRebalance (every member rejoined, or the
//! rebalance timeout passed and the stragglers were removed: JoinGroup answered, the leader
//! gets the member list) → Stable (the leader's SyncGroup handed out assignments).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kingest_protocol::kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kingest_protocol::kafka_protocol::messages::{JoinGroupResponse, SyncGroupResponse};
use kingest_protocol::ErrorCode;
use tokio::sync::oneshot;

use super::sb;

/// A group's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Phase {
    #[default]
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Empty => "Empty",
            Phase::PreparingRebalance => "PreparingRebalance",
            Phase::CompletingRebalance => "CompletingRebalance",
            Phase::Stable => "Stable",
        }
    }
}

/// One member.
#[derive(Debug)]
pub(crate) struct Member {
    pub id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub host: String,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
    pub last_heartbeat: Instant,
    pub join: Option<oneshot::Sender<JoinGroupResponse>>,
    pub sync: Option<oneshot::Sender<SyncGroupResponse>>,
}

/// One group.
#[derive(Debug, Default)]
pub(crate) struct Group {
    pub phase: Phase,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub members: BTreeMap<String, Member>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, not joined yet.
    pub pending: HashSet<String>,
    pub rebalance_deadline: Option<Instant>,
    /// Committed offsets: (topic, partition) → (offset, metadata).
    pub offsets: HashMap<(String, i32), (i64, Option<String>)>,
    /// How many rebalances completed (for tests).
    pub rebalances: u64,
    /// Set while the group is a KIP-848 consumer group: then `members` is empty, and the
    /// classic APIs find no member in it (Kafka keeps both kinds under one group id space).
    pub modern: Option<super::consumer_group::ConsumerGroup>,
    next_member: u64,
}

impl Group {
    /// A fresh member id, as Kafka makes them: client id and a unique suffix.
    pub fn new_member_id(&mut self, client_id: &str) -> String {
        self.next_member += 1;
        let prefix: String = client_id.chars().take(64).collect();
        format!("{prefix}-{:016x}", rand::random::<u64>() ^ self.next_member)
    }

    /// Whether this is a consumer group with members, which classic members cannot join.
    pub fn is_live_consumer_group(&self) -> bool {
        self.modern.as_ref().is_some_and(|m| !m.members.is_empty())
    }

    /// The member with this static instance id.
    pub fn member_by_instance(&self, instance_id: &str) -> Option<&str> {
        self.members
            .values()
            .find(|m| m.instance_id.as_deref() == Some(instance_id))
            .map(|m| m.id.as_str())
    }

    /// Whether `member_id` speaks for static `instance_id` after another member took that
    /// identity over (KIP-345): Kafka answers such a member `FENCED_INSTANCE_ID`, which the
    /// clients treat as fatal, rather than `UNKNOWN_MEMBER_ID`, after which they would rejoin
    /// under the instance id and fence the newer member in turn.
    pub fn static_member_fenced(&self, instance_id: Option<&str>, member_id: &str) -> bool {
        instance_id
            .and_then(|i| self.member_by_instance(i))
            .is_some_and(|current| current != member_id)
    }

    /// Starts (or restarts) a rebalance.
    pub fn prepare_rebalance(&mut self, now: Instant, initial_delay: Duration) {
        if self.phase == Phase::CompletingRebalance {
            // Members waiting for the assignment of the abandoned generation must rejoin.
            for m in self.members.values_mut() {
                if let Some(tx) = m.sync.take() {
                    let _ = tx.send(
                        SyncGroupResponse::default()
                            .with_error_code(ErrorCode::RebalanceInProgress.code()),
                    );
                }
            }
        }
        let timeout = if self.phase == Phase::Empty {
            initial_delay
        } else {
            self.members
                .values()
                .map(|m| m.rebalance_timeout)
                .max()
                .unwrap_or_default()
        };
        if self.phase != Phase::PreparingRebalance {
            self.rebalance_deadline = Some(now + timeout);
        }
        self.phase = Phase::PreparingRebalance;
    }

    /// Completes the join phase if every member has rejoined or the deadline has passed.
    pub fn try_complete_join(&mut self, now: Instant) {
        if self.phase != Phase::PreparingRebalance {
            return;
        }
        let all_joined = self.members.values().all(|m| m.join.is_some());
        let expired = self.rebalance_deadline.is_some_and(|d| now >= d);
        if (!all_joined || self.members.is_empty()) && !expired {
            return;
        }
        // Members that did not rejoin in time are out.
        self.members.retain(|_, m| m.join.is_some());
        self.generation += 1;
        self.rebalances += 1;
        self.rebalance_deadline = None;
        if self.members.is_empty() {
            self.phase = Phase::Empty;
            self.protocol = None;
            self.leader = None;
            return;
        }
        let protocol = self.choose_protocol();
        if self
            .leader
            .as_ref()
            .is_none_or(|l| !self.members.contains_key(l))
        {
            self.leader = self.members.keys().next().cloned();
        }
        self.protocol = protocol.clone();
        self.phase = Phase::CompletingRebalance;
        let leader = self.leader.clone().unwrap_or_default();
        let protocol = protocol.unwrap_or_default();
        let everyone = self.member_list(&protocol);
        for m in self.members.values_mut() {
            m.assignment = Bytes::new();
            m.last_heartbeat = now;
            let response = JoinGroupResponse::default()
                .with_generation_id(self.generation)
                .with_protocol_type(self.protocol_type.clone().map(sb))
                .with_protocol_name(Some(sb(protocol.clone())))
                .with_leader(sb(leader.clone()))
                .with_member_id(sb(m.id.clone()))
                .with_members(if m.id == leader {
                    everyone.clone()
                } else {
                    Vec::new()
                });
            if let Some(tx) = m.join.take() {
                let _ = tx.send(response);
            }
        }
    }

    /// Every member with its metadata for `protocol`, as the leader's JoinGroup response
    /// lists them.
    pub(crate) fn member_list(&self, protocol: &str) -> Vec<JoinGroupResponseMember> {
        self.members
            .values()
            .map(|m| {
                let metadata = m
                    .protocols
                    .iter()
                    .find(|(n, _)| n == protocol)
                    .map(|(_, md)| md.clone())
                    .unwrap_or_default();
                JoinGroupResponseMember::default()
                    .with_member_id(sb(m.id.clone()))
                    .with_group_instance_id(m.instance_id.clone().map(sb))
                    .with_metadata(metadata)
            })
            .collect()
    }

    /// The protocol every member supports that most members prefer (Kafka's vote).
    fn choose_protocol(&self) -> Option<String> {
        let first = self.members.values().next()?;
        let candidates: Vec<&String> = first
            .protocols
            .iter()
            .map(|(n, _)| n)
            .filter(|n| {
                self.members
                    .values()
                    .all(|m| m.protocols.iter().any(|(p, _)| p == *n))
            })
            .collect();
        let mut votes: Vec<(usize, &String)> = candidates.iter().map(|c| (0usize, *c)).collect();
        for m in self.members.values() {
            if let Some((preferred, _)) = m.protocols.iter().find(|(p, _)| candidates.contains(&p))
            {
                if let Some(v) = votes.iter_mut().find(|(_, c)| *c == preferred) {
                    v.0 += 1;
                }
            }
        }
        // Most votes; among ties, the earliest in the first member's preference.
        let best = votes.iter().map(|(n, _)| *n).max()?;
        votes
            .iter()
            .find(|(n, _)| *n == best)
            .map(|(_, c)| (*c).clone())
    }

    /// Hands out the leader's assignments and makes the group stable.
    pub fn complete_sync(&mut self, assignments: HashMap<String, Bytes>) {
        for m in self.members.values_mut() {
            m.assignment = assignments.get(&m.id).cloned().unwrap_or_default();
        }
        self.phase = Phase::Stable;
        let (ptype, pname) = (self.protocol_type.clone(), self.protocol.clone());
        for m in self.members.values_mut() {
            if let Some(tx) = m.sync.take() {
                let _ = tx.send(
                    SyncGroupResponse::default()
                        .with_assignment(m.assignment.clone())
                        .with_protocol_type(ptype.clone().map(sb))
                        .with_protocol_name(pname.clone().map(sb)),
                );
            }
        }
    }

    /// Removes members whose session expired (those parked in a JoinGroup are alive); returns
    /// whether any was removed.
    pub fn expire(&mut self, now: Instant) -> bool {
        let before = self.members.len();
        self.members.retain(|_, m| {
            m.join.is_some() || m.sync.is_some() || now < m.last_heartbeat + m.session_timeout
        });
        self.members.len() != before
    }
}
