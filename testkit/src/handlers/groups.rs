//! Group coordination (classic protocol): FindCoordinator, JoinGroup, SyncGroup, Heartbeat,
//! LeaveGroup, OffsetCommit, OffsetFetch, DescribeGroups, ListGroups; and the ticker that expires
//! sessions and ends overdue rebalances.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kingest_protocol::kafka_protocol::messages::describe_groups_response::{
    DescribedGroup, DescribedGroupMember,
};
use kingest_protocol::kafka_protocol::messages::find_coordinator_response::Coordinator;
use kingest_protocol::kafka_protocol::messages::leave_group_response::MemberResponse;
use kingest_protocol::kafka_protocol::messages::list_groups_response::ListedGroup;
use kingest_protocol::kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kingest_protocol::kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kingest_protocol::kafka_protocol::messages::*;
use kingest_protocol::ErrorCode;
use tokio::sync::oneshot;

use super::Ctx;
use crate::state::groups::{Group, Member, Phase};
use crate::state::{sb, ClusterState, MAX_GROUPS};
use crate::Shared;

/// The coordinator of a key: a live broker picked by the key's hash, stable while the set of
/// live brokers is.
pub(crate) fn coordinator_for(state: &ClusterState, key: &str) -> Option<i32> {
    let live = state.live_brokers();
    if live.is_empty() {
        return None;
    }
    let hash = key
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    Some(live[hash as usize % live.len()])
}

pub(crate) fn find_coordinator(
    ctx: &Ctx,
    version: i16,
    r: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    let state = ctx.shared.lock();
    let lookup = |key: &str| -> (ErrorCode, i32, String, i32) {
        match coordinator_for(&state, key).and_then(|id| state.brokers.get(&id)) {
            Some(b) => (ErrorCode::None, b.id, b.host.clone(), i32::from(b.port)),
            None => (ErrorCode::CoordinatorNotAvailable, -1, String::new(), -1),
        }
    };
    if version >= 4 {
        let coordinators = r
            .coordinator_keys
            .iter()
            .map(|k| {
                let (code, id, host, port) = lookup(k.as_str());
                Coordinator::default()
                    .with_key(k.clone())
                    .with_node_id(BrokerId(id))
                    .with_host(sb(host))
                    .with_port(port)
                    .with_error_code(code.code())
            })
            .collect();
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    let (code, id, host, port) = lookup(r.key.as_str());
    FindCoordinatorResponse::default()
        .with_error_code(code.code())
        .with_node_id(BrokerId(id))
        .with_host(sb(host))
        .with_port(port)
}

/// Whether two protocol lists offer the same protocols for the same topics.
fn same_subscription(a: &[(String, bytes::Bytes)], b: &[(String, bytes::Bytes)]) -> bool {
    let topics = |md: &bytes::Bytes| {
        kingest_protocol::consumer_protocol::Subscription::decode(md)
            .map(|s| s.topics)
            .ok()
    };
    a.len() == b.len()
        && a.iter().zip(b).all(|((na, ma), (nb, mb))| {
            na == nb && (ma == mb || (topics(ma).is_some() && topics(ma) == topics(mb)))
        })
}

fn join_error(code: ErrorCode, member_id: &str) -> JoinGroupResponse {
    JoinGroupResponse::default()
        .with_error_code(code.code())
        .with_generation_id(-1)
        .with_member_id(sb(member_id.to_owned()))
}

pub(crate) async fn join_group(ctx: &Ctx, version: i16, r: JoinGroupRequest) -> JoinGroupResponse {
    let group_id = r.group_id.0.to_string();
    let now = Instant::now();
    let session = Duration::from_millis(r.session_timeout_ms.max(0) as u64);
    // v0 has no rebalance timeout: it is the session timeout.
    let rebalance = if version >= 1 {
        Duration::from_millis(r.rebalance_timeout_ms.max(0) as u64)
    } else {
        session
    };
    let rx = {
        let mut state = ctx.shared.lock();
        if !(1000..=1_800_000).contains(&r.session_timeout_ms) {
            return join_error(ErrorCode::InvalidSessionTimeout, &r.member_id);
        }
        if group_id.is_empty() {
            return join_error(ErrorCode::InvalidGroupId, &r.member_id);
        }
        if r.protocols.is_empty() || r.protocol_type.is_empty() {
            return join_error(ErrorCode::InconsistentGroupProtocol, &r.member_id);
        }
        if !state.groups.contains_key(&group_id) && state.groups.len() >= MAX_GROUPS {
            return join_error(ErrorCode::GroupMaxSizeReached, &r.member_id);
        }
        let delay = ctx.shared.config.group_initial_rebalance_delay;
        let group = state.groups.entry(group_id.clone()).or_default();
        if group.is_live_consumer_group() {
            // Kafka lets classic members into a consumer group only through its online
            // migration, which this cluster does not model.
            return join_error(ErrorCode::InconsistentGroupProtocol, &r.member_id);
        }
        // An empty consumer group becomes a classic one, keeping its offsets.
        group.modern = None;
        if !group.members.is_empty()
            && group.protocol_type.as_deref() != Some(r.protocol_type.as_str())
        {
            return join_error(ErrorCode::InconsistentGroupProtocol, &r.member_id);
        }
        let instance_id = r.group_instance_id.as_ref().map(|s| s.to_string());
        let protocols: Vec<(String, bytes::Bytes)> = r
            .protocols
            .iter()
            .map(|p| (p.name.to_string(), p.metadata.clone()))
            .collect();
        let mut member_id = r.member_id.to_string();
        let mut static_rejoin = false;
        if let Some(instance) = &instance_id {
            match group.member_by_instance(instance).map(str::to_owned) {
                Some(old) if member_id.is_empty() => {
                    // A restarted static member (KIP-345): it takes over its old identity under a
                    // new member id; the others keep their partitions.
                    let new_id = group.new_member_id(&ctx.client_id);
                    if let Some(mut m) = group.members.remove(&old) {
                        m.id = new_id.clone();
                        if let Some(tx) = m.join.take() {
                            let _ = tx.send(join_error(ErrorCode::FencedInstanceId, &old));
                        }
                        group.members.insert(new_id.clone(), m);
                    }
                    if group.leader.as_deref() == Some(old.as_str()) {
                        group.leader = Some(new_id.clone());
                    }
                    member_id = new_id;
                    static_rejoin = true;
                }
                Some(old) if old != member_id => {
                    return join_error(ErrorCode::FencedInstanceId, &r.member_id)
                }
                _ => {}
            }
        }
        if member_id.is_empty() {
            member_id = group.new_member_id(&ctx.client_id);
            if version >= 4 && instance_id.is_none() {
                // KIP-394: the member must come back with this id.
                group.pending.insert(member_id.clone());
                return join_error(ErrorCode::MemberIdRequired, &member_id);
            }
        } else if !group.members.contains_key(&member_id) && !group.pending.remove(&member_id) {
            return join_error(ErrorCode::UnknownMemberId, &member_id);
        }
        let unchanged = group
            .members
            .get(&member_id)
            .is_some_and(|m| m.protocols == protocols);
        // A restarted static member's metadata differs in what it owned and its generation, not
        // in what it asks for: compare the protocols offered and, for consumer groups, the
        // subscribed topics (Kafka rebalances a static member's rejoin only if those changed).
        let same_subscription = group
            .members
            .get(&member_id)
            .is_some_and(|m| same_subscription(&m.protocols, &protocols));
        if static_rejoin && same_subscription && group.phase == Phase::Stable {
            let m = group.members.get_mut(&member_id).expect("just inserted");
            m.last_heartbeat = now;
            m.session_timeout = session;
            // KIP-814: a rejoining static leader (v9+) gets the members' metadata and is told
            // not to reassign; older versions get no members, as from Kafka.
            let skip = version >= 9 && group.leader.as_deref() == Some(member_id.as_str());
            let members = if skip {
                group.member_list(group.protocol.as_deref().unwrap_or_default())
            } else {
                Vec::new()
            };
            return JoinGroupResponse::default()
                .with_generation_id(group.generation)
                .with_protocol_type(group.protocol_type.clone().map(sb))
                .with_protocol_name(group.protocol.clone().map(sb))
                .with_leader(sb(group.leader.clone().unwrap_or_default()))
                .with_member_id(sb(member_id))
                .with_members(members)
                .with_skip_assignment(skip);
        }
        let is_leader = group.leader.as_deref() == Some(member_id.as_str());
        if group.phase == Phase::Stable && unchanged && !is_leader {
            // Nothing changed: answer with the current generation, no rebalance.
            let m = group.members.get_mut(&member_id).expect("present");
            m.last_heartbeat = now;
            return JoinGroupResponse::default()
                .with_generation_id(group.generation)
                .with_protocol_type(group.protocol_type.clone().map(sb))
                .with_protocol_name(group.protocol.clone().map(sb))
                .with_leader(sb(group.leader.clone().unwrap_or_default()))
                .with_member_id(sb(member_id));
        }
        let (tx, rx) = oneshot::channel();
        let member = group
            .members
            .entry(member_id.clone())
            .or_insert_with(|| Member {
                id: member_id.clone(),
                instance_id: instance_id.clone(),
                client_id: ctx.client_id.clone(),
                host: ctx.peer.ip().to_string(),
                session_timeout: session,
                rebalance_timeout: rebalance,
                protocols: Vec::new(),
                assignment: bytes::Bytes::new(),
                last_heartbeat: now,
                join: None,
                sync: None,
            });
        if let Some(old) = member.join.replace(tx) {
            let _ = old.send(join_error(ErrorCode::UnknownMemberId, &member_id));
        }
        member.protocols = protocols;
        member.session_timeout = session;
        member.rebalance_timeout = rebalance;
        member.last_heartbeat = now;
        group.protocol_type = Some(r.protocol_type.to_string());
        group.prepare_rebalance(now, delay);
        group.try_complete_join(now);
        rx
    };
    match tokio::time::timeout(rebalance + Duration::from_secs(5), rx).await {
        Ok(Ok(response)) => response,
        _ => join_error(ErrorCode::RebalanceInProgress, &r.member_id),
    }
}

pub(crate) async fn sync_group(ctx: &Ctx, r: SyncGroupRequest) -> SyncGroupResponse {
    let err = |c: ErrorCode| SyncGroupResponse::default().with_error_code(c.code());
    let rx = {
        let mut state = ctx.shared.lock();
        let Some(group) = state.groups.get_mut(r.group_id.0.as_str()) else {
            return err(ErrorCode::UnknownMemberId);
        };
        let member_id = r.member_id.to_string();
        if group.static_member_fenced(r.group_instance_id.as_deref(), &member_id) {
            return err(ErrorCode::FencedInstanceId);
        }
        if !group.members.contains_key(&member_id) {
            return err(ErrorCode::UnknownMemberId);
        }
        if r.generation_id != group.generation {
            return err(ErrorCode::IllegalGeneration);
        }
        match group.phase {
            Phase::Empty | Phase::PreparingRebalance => return err(ErrorCode::RebalanceInProgress),
            Phase::Stable => {
                let m = &group.members[&member_id];
                return SyncGroupResponse::default()
                    .with_assignment(m.assignment.clone())
                    .with_protocol_type(group.protocol_type.clone().map(sb))
                    .with_protocol_name(group.protocol.clone().map(sb));
            }
            Phase::CompletingRebalance => {}
        }
        let (tx, rx) = oneshot::channel();
        if let Some(m) = group.members.get_mut(&member_id) {
            m.sync = Some(tx);
            m.last_heartbeat = Instant::now();
        }
        if group.leader.as_deref() == Some(member_id.as_str()) {
            let assignments: HashMap<String, bytes::Bytes> = r
                .assignments
                .iter()
                .map(|a| (a.member_id.to_string(), a.assignment.clone()))
                .collect();
            group.complete_sync(assignments);
        }
        rx
    };
    match tokio::time::timeout(Duration::from_secs(300), rx).await {
        Ok(Ok(response)) => response,
        _ => err(ErrorCode::RebalanceInProgress),
    }
}

pub(crate) fn heartbeat(ctx: &Ctx, r: HeartbeatRequest) -> HeartbeatResponse {
    let mut state = ctx.shared.lock();
    let code = match state.groups.get_mut(r.group_id.0.as_str()) {
        None => ErrorCode::UnknownMemberId,
        Some(group)
            if group.static_member_fenced(r.group_instance_id.as_deref(), r.member_id.as_str()) =>
        {
            ErrorCode::FencedInstanceId
        }
        Some(group) => match group.members.get_mut(r.member_id.as_str()) {
            None => ErrorCode::UnknownMemberId,
            Some(m) => {
                m.last_heartbeat = Instant::now();
                if r.generation_id != group.generation {
                    ErrorCode::IllegalGeneration
                } else if group.phase == Phase::PreparingRebalance {
                    ErrorCode::RebalanceInProgress
                } else {
                    ErrorCode::None
                }
            }
        },
    };
    HeartbeatResponse::default().with_error_code(code.code())
}

pub(crate) fn leave_group(ctx: &Ctx, version: i16, r: LeaveGroupRequest) -> LeaveGroupResponse {
    let mut state = ctx.shared.lock();
    let delay = ctx.shared.config.group_initial_rebalance_delay;
    let Some(group) = state.groups.get_mut(r.group_id.0.as_str()) else {
        return LeaveGroupResponse::default().with_error_code(ErrorCode::UnknownMemberId.code());
    };
    let leaving: Vec<(String, Option<String>)> = if version >= 3 {
        r.members
            .iter()
            .map(|m| {
                (
                    m.member_id.to_string(),
                    m.group_instance_id.as_ref().map(|s| s.to_string()),
                )
            })
            .collect()
    } else {
        vec![(r.member_id.to_string(), None)]
    };
    let mut results = Vec::new();
    let mut removed = false;
    for (member_id, instance_id) in &leaving {
        // A static member's old incarnation cannot remove the one that replaced it; an empty
        // member id (an admin removing the instance) can.
        if !member_id.is_empty() && group.static_member_fenced(instance_id.as_deref(), member_id) {
            results.push(
                MemberResponse::default()
                    .with_member_id(sb(member_id.clone()))
                    .with_group_instance_id(instance_id.clone().map(sb))
                    .with_error_code(ErrorCode::FencedInstanceId.code()),
            );
            continue;
        }
        let id = match instance_id {
            Some(instance) => group.member_by_instance(instance).map(str::to_owned),
            None => Some(member_id.clone()),
        };
        let code = match id.and_then(|id| group.members.remove(&id)) {
            Some(m) => {
                if let Some(tx) = m.join {
                    let _ = tx.send(join_error(ErrorCode::UnknownMemberId, &m.id));
                }
                removed = true;
                ErrorCode::None
            }
            None => ErrorCode::UnknownMemberId,
        };
        results.push(
            MemberResponse::default()
                .with_member_id(sb(member_id.clone()))
                .with_group_instance_id(instance_id.clone().map(sb))
                .with_error_code(code.code()),
        );
    }
    if removed {
        let now = Instant::now();
        group.prepare_rebalance(now, delay);
        group.try_complete_join(now);
    }
    let top = if version < 3 {
        results.first().map_or(0, |m| m.error_code)
    } else {
        0
    };
    LeaveGroupResponse::default()
        .with_error_code(top)
        .with_members(if version >= 3 { results } else { Vec::new() })
}

pub(crate) fn offset_commit(
    ctx: &Ctx,
    version: i16,
    r: OffsetCommitRequest,
) -> OffsetCommitResponse {
    let mut state = ctx.shared.lock();
    let group_id = r.group_id.0.to_string();
    let code = {
        let groups_full = !state.groups.contains_key(&group_id) && state.groups.len() >= MAX_GROUPS;
        let group = state.groups.entry(group_id.clone()).or_default();
        if groups_full {
            ErrorCode::GroupMaxSizeReached
        } else if let Some(cg) = &group.modern {
            super::consumer_group::commit_error(
                cg,
                r.member_id.as_str(),
                r.generation_id_or_member_epoch,
                version,
                false,
            )
        } else if r.generation_id_or_member_epoch < 0 && r.member_id.is_empty() {
            // A "simple" commit from outside the group: only when nobody is in it.
            if group.members.is_empty() {
                ErrorCode::None
            } else {
                ErrorCode::IllegalGeneration
            }
        } else if group.static_member_fenced(r.group_instance_id.as_deref(), r.member_id.as_str()) {
            ErrorCode::FencedInstanceId
        } else if !group.members.contains_key(r.member_id.as_str()) {
            ErrorCode::UnknownMemberId
        } else if r.generation_id_or_member_epoch != group.generation {
            ErrorCode::IllegalGeneration
        } else if group.phase == Phase::CompletingRebalance {
            ErrorCode::RebalanceInProgress
        } else {
            ErrorCode::None
        }
    };
    let topics = r
        .topics
        .iter()
        .map(|t| {
            let topic = t.name.0.to_string();
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let code =
                        if code.is_ok() && state.partition(&topic, p.partition_index).is_none() {
                            ErrorCode::UnknownTopicOrPartition
                        } else {
                            code
                        };
                    if code.is_ok() {
                        if let Some(g) = state.groups.get_mut(&group_id) {
                            g.offsets.insert(
                                (topic.clone(), p.partition_index),
                                (
                                    p.committed_offset,
                                    p.committed_metadata.as_ref().map(|m| m.to_string()),
                                ),
                            );
                        }
                    }
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(code.code())
                })
                .collect();
            OffsetCommitResponseTopic::default()
                .with_name(t.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}

/// One partition's answer: (partition, offset, metadata, error).
type PartitionRow = (i32, i64, Option<String>, ErrorCode);
/// A topic's answers.
type TopicRows = (String, Vec<PartitionRow>);

/// Whether an open transaction holds uncommitted offsets for this group and partition.
fn unstable(state: &ClusterState, group: &str, topic: &str, partition: i32) -> bool {
    state
        .producers
        .by_id
        .values()
        .filter_map(|p| p.txn.as_ref())
        .any(|t| {
            t.pending_offsets
                .iter()
                .any(|(g, tp, pp, _, _)| g == group && tp == topic && *pp == partition)
        })
}

pub(crate) fn offset_fetch(ctx: &Ctx, version: i16, r: OffsetFetchRequest) -> OffsetFetchResponse {
    let state = ctx.shared.lock();
    // Every (topic, partition) asked for, or all committed ones when the list is null.
    let lookup = |group: &str, wanted: Option<Vec<(String, Vec<i32>)>>| -> Vec<TopicRows> {
        let g = state.groups.get(group);
        let wanted = wanted.unwrap_or_else(|| {
            let mut by_topic: HashMap<String, Vec<i32>> = HashMap::new();
            for (t, p) in g
                .map(|g| g.offsets.keys().cloned().collect::<Vec<_>>())
                .unwrap_or_default()
            {
                by_topic.entry(t).or_default().push(p);
            }
            by_topic.into_iter().collect()
        });
        wanted
            .into_iter()
            .map(|(topic, parts)| {
                let rows = parts
                    .into_iter()
                    .map(|p| {
                        if r.require_stable && unstable(&state, group, &topic, p) {
                            return (p, -1, None, ErrorCode::UnstableOffsetCommit);
                        }
                        match g.and_then(|g| g.offsets.get(&(topic.clone(), p))) {
                            Some((o, m)) => (p, *o, m.clone(), ErrorCode::None),
                            None => (p, -1, None, ErrorCode::None),
                        }
                    })
                    .collect();
                (topic, rows)
            })
            .collect()
    };
    // The v8+ per-group layout and the older top-level one have the same fields under different
    // type names: one body for both.
    macro_rules! fetched_topics {
        ($group_id:expr, $asked:expr, $topic:ident, $partition:ident) => {{
            let wanted = $asked.as_ref().map(|ts| {
                ts.iter()
                    .map(|t| (t.name.0.to_string(), t.partition_indexes.clone()))
                    .collect()
            });
            lookup($group_id.0.as_str(), wanted)
                .into_iter()
                .map(|(t, rows)| {
                    $topic::default()
                        .with_name(TopicName(sb(t)))
                        .with_partitions(
                            rows.into_iter()
                                .map(|(p, o, m, c)| {
                                    $partition::default()
                                        .with_partition_index(p)
                                        .with_committed_offset(o)
                                        .with_committed_leader_epoch(-1)
                                        .with_metadata(m.map(sb))
                                        .with_error_code(c.code())
                                })
                                .collect(),
                        )
                })
                .collect()
        }};
    }
    if version >= 8 {
        let groups = r
            .groups
            .iter()
            .map(|g| {
                // v9+: a KIP-848 member reads its group's offsets only at its current epoch.
                let code = state
                    .groups
                    .get(g.group_id.0.as_str())
                    .and_then(|group| group.modern.as_ref())
                    .map_or(ErrorCode::None, |cg| {
                        super::consumer_group::fetch_error(
                            cg,
                            g.member_id.as_deref(),
                            g.member_epoch,
                        )
                    });
                if !code.is_ok() {
                    return OffsetFetchResponseGroup::default()
                        .with_group_id(g.group_id.clone())
                        .with_error_code(code.code());
                }
                OffsetFetchResponseGroup::default()
                    .with_group_id(g.group_id.clone())
                    .with_topics(fetched_topics!(
                        g.group_id,
                        g.topics,
                        OffsetFetchResponseTopics,
                        OffsetFetchResponsePartitions
                    ))
            })
            .collect();
        return OffsetFetchResponse::default().with_groups(groups);
    }
    OffsetFetchResponse::default().with_topics(fetched_topics!(
        r.group_id,
        r.topics,
        OffsetFetchResponseTopic,
        OffsetFetchResponsePartition
    ))
}

pub(crate) fn describe_groups(ctx: &Ctx, r: DescribeGroupsRequest) -> DescribeGroupsResponse {
    let state = ctx.shared.lock();
    let groups = r
        .groups
        .iter()
        .map(|id| {
            let described = DescribedGroup::default().with_group_id(id.clone());
            match state
                .groups
                .get(id.0.as_str())
                .filter(|g| g.modern.is_none())
            {
                // A consumer group is not described by the classic API (Kafka: "Dead").
                None => described.with_group_state(sb("Dead")),
                Some(g) => described
                    .with_group_state(sb(g.phase.name()))
                    .with_protocol_type(sb(g.protocol_type.clone().unwrap_or_default()))
                    .with_protocol_data(sb(g.protocol.clone().unwrap_or_default()))
                    .with_members(
                        g.members
                            .values()
                            .map(|m| {
                                DescribedGroupMember::default()
                                    .with_member_id(sb(m.id.clone()))
                                    .with_group_instance_id(m.instance_id.clone().map(sb))
                                    .with_client_id(sb(m.client_id.clone()))
                                    .with_client_host(sb(m.host.clone()))
                                    .with_member_metadata(
                                        g.protocol
                                            .as_ref()
                                            .and_then(|p| m.protocols.iter().find(|(n, _)| n == p))
                                            .map(|(_, md)| md.clone())
                                            .unwrap_or_default(),
                                    )
                                    .with_member_assignment(m.assignment.clone())
                            })
                            .collect(),
                    ),
            }
        })
        .collect();
    DescribeGroupsResponse::default().with_groups(groups)
}

pub(crate) fn list_groups(ctx: &Ctx, r: ListGroupsRequest) -> ListGroupsResponse {
    let state = ctx.shared.lock();
    let groups = state
        .groups
        .iter()
        .filter(|(id, _)| coordinator_for(&state, id) == Some(ctx.broker))
        .map(|(id, g)| {
            let (state, kind) = match &g.modern {
                Some(cg) => (cg.state_name(), "consumer"),
                None => (g.phase.name(), "classic"),
            };
            (id, g, state, kind)
        })
        .filter(|(_, _, state, _)| {
            r.states_filter.is_empty() || r.states_filter.iter().any(|s| s.as_str() == *state)
        })
        .map(|(id, g, state, kind)| {
            ListedGroup::default()
                .with_group_id(GroupId(sb(id.clone())))
                .with_protocol_type(sb(g
                    .protocol_type
                    .clone()
                    .unwrap_or_else(|| "consumer".to_owned())))
                .with_group_state(sb(state))
                .with_group_type(sb(kind))
        })
        .collect();
    ListGroupsResponse::default().with_groups(groups)
}

/// Expires sessions and completes overdue rebalances, every 50 ms, until the cluster is gone.
pub(crate) fn spawn_ticker(shared: std::sync::Weak<Shared>) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let Some(shared): Option<Arc<Shared>> = shared.upgrade() else {
                return;
            };
            let delay = shared.config.group_initial_rebalance_delay;
            let session = shared.config.consumer_group_session_timeout;
            let mut state = shared.lock();
            let now = Instant::now();
            for group in state.groups.values_mut() {
                tick(group, now, delay);
                super::consumer_group::tick(group, now, session);
            }
            if super::txn::expire_transactions(&mut state, now) {
                drop(state);
                // Aborting moved the last stable offset: wake read_committed fetches.
                shared.appended.notify_waiters();
            }
        }
    });
}

fn tick(group: &mut Group, now: Instant, delay: Duration) {
    if group.expire(now) {
        group.prepare_rebalance(now, delay);
    }
    group.try_complete_join(now);
}

#[cfg(test)]
#[path = "groups_tests.rs"]
mod tests;
