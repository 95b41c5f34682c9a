//! KIP-848 consumer groups: ConsumerGroupHeartbeat (join, heartbeat, reconcile, leave),
//! ConsumerGroupDescribe, the member-epoch checks of OffsetCommit/OffsetFetch v9+, and the
//! ticker's expiry of members whose session or revocation time ran out.
//!
//! A group id is either a classic group or a consumer group, as in Kafka: a consumer member
//! cannot join a classic group that has members (GROUP_ID_NOT_FOUND), nor a classic member a
//! consumer group that has members (INCONSISTENT_GROUP_PROTOCOL, answered by JoinGroup). An
//! empty group of either kind becomes the other on the first join, keeping its offsets.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use kingest_protocol::kafka_protocol::messages::consumer_group_describe_response as describe;
use kingest_protocol::kafka_protocol::messages::consumer_group_heartbeat_response::{
    Assignment, TopicPartitions,
};
use kingest_protocol::kafka_protocol::messages::*;
use kingest_protocol::ErrorCode;
use uuid::Uuid;

use super::Ctx;
use crate::state::consumer_group::{
    is_subset, ConsumerGroup, ConsumerMember, Partitions, LEAVE_EPOCH, STATIC_LEAVE_EPOCH,
};
use crate::state::groups::Group;
use crate::state::{assignors, sb, Topic, MAX_GROUPS};

fn fail(code: ErrorCode, message: String) -> ConsumerGroupHeartbeatResponse {
    ConsumerGroupHeartbeatResponse::default()
        .with_error_code(code.code())
        .with_error_message(Some(sb(message)))
}

/// Kafka's checks of a heartbeat's fields (throwIfConsumerGroupHeartbeatRequestIsInvalid).
fn invalid(r: &ConsumerGroupHeartbeatRequest) -> Option<ConsumerGroupHeartbeatResponse> {
    let bad = |m: &str| Some(fail(ErrorCode::InvalidRequest, m.to_owned()));
    if r.group_id.is_empty() {
        return bad("GroupId can't be empty.");
    }
    if r.instance_id.as_ref().is_some_and(|s| s.is_empty()) {
        return bad("InstanceId can't be empty.");
    }
    if r.rack_id.as_ref().is_some_and(|s| s.is_empty()) {
        return bad("RackId can't be empty.");
    }
    // librdkafka sends an empty regex with a subscription by names only.
    if r.subscribed_topic_regex
        .as_ref()
        .is_some_and(|s| !s.is_empty())
    {
        return bad("SubscribedTopicRegex is not supported by this cluster.");
    }
    match r.member_epoch {
        e if e > 0 || e == LEAVE_EPOCH => {
            if r.member_id.is_empty() {
                return bad("MemberId can't be empty.");
            }
        }
        0 => {
            if r.rebalance_timeout_ms == -1 {
                return bad("RebalanceTimeoutMs must be provided in first request.");
            }
            // Null (librdkafka's first heartbeat) is taken as empty, as newer Kafka does.
            if r.topic_partitions.as_ref().is_some_and(|t| !t.is_empty()) {
                return bad("TopicPartitions must be empty when (re-)joining.");
            }
            if r.subscribed_topic_names.as_ref().is_none_or(Vec::is_empty) {
                return bad("SubscribedTopicNames must be set in first request.");
            }
        }
        STATIC_LEAVE_EPOCH => {
            if r.member_id.is_empty() {
                return bad("MemberId can't be empty.");
            }
            if r.instance_id.is_none() {
                return bad("InstanceId can't be null.");
            }
        }
        _ => return bad("MemberEpoch is invalid."),
    }
    if let Some(a) = &r.server_assignor {
        if assignors::known(a).is_none() {
            return Some(fail(
                ErrorCode::UnsupportedAssignor,
                format!(
                    "ServerAssignor {a} is not supported. Supported assignors: uniform, range."
                ),
            ));
        }
    }
    None
}

/// The topic names of the ids the member reported (ids of topics that no longer exist drop
/// out, as the partitions are gone).
fn owned_by_name(
    topics: &BTreeMap<String, Topic>,
    owned: &Option<Vec<consumer_group_heartbeat_request::TopicPartitions>>,
) -> Option<Partitions> {
    let owned = owned.as_ref()?;
    let names: HashMap<Uuid, &String> = topics
        .iter()
        .map(|(n, t)| (Uuid::from_bytes(t.id), n))
        .collect();
    let mut out = Partitions::new();
    for tp in owned {
        if let Some(name) = names.get(&tp.topic_id) {
            out.entry((*name).clone())
                .or_default()
                .extend(tp.partitions.iter().copied());
        }
    }
    Some(out)
}

fn by_id<T>(
    topics: &BTreeMap<String, Topic>,
    a: &Partitions,
    make: impl Fn(Uuid, &str, Vec<i32>) -> T,
) -> Vec<T> {
    a.iter()
        .filter_map(|(name, ps)| {
            let t = topics.get(name)?;
            Some(make(
                Uuid::from_bytes(t.id),
                name,
                ps.iter().copied().collect(),
            ))
        })
        .collect()
}

/// The consumer group under `group_id`, creating it (or turning an empty classic group into
/// it) when `create`.
fn consumer_group<'a>(
    groups: &'a mut HashMap<String, Group>,
    group_id: &str,
    create: bool,
) -> Result<&'a mut ConsumerGroup, (ErrorCode, String)> {
    if !groups.contains_key(group_id) {
        if !create {
            return Err((
                ErrorCode::GroupIdNotFound,
                format!("Consumer group {group_id} not found."),
            ));
        }
        if groups.len() >= MAX_GROUPS {
            return Err((
                ErrorCode::GroupMaxSizeReached,
                format!("Too many groups to create {group_id}."),
            ));
        }
    }
    let group = groups.entry(group_id.to_owned()).or_default();
    if group.modern.is_none() && create && group.members.is_empty() && group.pending.is_empty() {
        // An empty classic group (perhaps only committed offsets): it becomes a consumer group.
        group.protocol_type = None;
        group.protocol = None;
        group.leader = None;
        group.modern = Some(ConsumerGroup::default());
    }
    group.modern.as_mut().ok_or_else(|| {
        (
            ErrorCode::GroupIdNotFound,
            format!("Group {group_id} is not a consumer group"),
        )
    })
}

pub(crate) fn consumer_group_heartbeat(
    ctx: &Ctx,
    r: ConsumerGroupHeartbeatRequest,
) -> ConsumerGroupHeartbeatResponse {
    if let Some(response) = invalid(&r) {
        tracing::debug!(message = ?response.error_message, "ConsumerGroupHeartbeat refused");
        return response;
    }
    let interval = ctx.shared.config.consumer_group_heartbeat_interval;
    let now = Instant::now();
    let mut state = ctx.shared.lock();
    let state = &mut *state;
    let (topics, groups) = (&state.topics, &mut state.groups);
    let group_id = r.group_id.0.to_string();
    let instance_id = r.instance_id.as_ref().map(|s| s.to_string());
    let mut member_id = r.member_id.to_string();
    let epoch = r.member_epoch;

    if epoch == LEAVE_EPOCH || epoch == STATIC_LEAVE_EPOCH {
        let cg = match consumer_group(groups, &group_id, false) {
            Ok(cg) => cg,
            Err((code, message)) => return fail(code, message),
        };
        let response = ConsumerGroupHeartbeatResponse::default()
            .with_member_id(Some(sb(member_id.clone())))
            .with_member_epoch(epoch);
        let Some(instance) = instance_id else {
            return match cg.remove_member(&member_id) {
                Some(_) => response,
                None => fail(
                    ErrorCode::UnknownMemberId,
                    format!("Member {member_id} is not a member of group {group_id}."),
                ),
            };
        };
        let Some(current) = cg.static_member(&instance).map(str::to_owned) else {
            return fail(
                ErrorCode::UnknownMemberId,
                format!("Instance id {instance} is unknown."),
            );
        };
        if current != member_id {
            return fail(
                ErrorCode::FencedInstanceId,
                format!("Static member {member_id} with instance id {instance} was fenced by member {current}."),
            );
        }
        if epoch == LEAVE_EPOCH {
            cg.remove_member(&member_id);
        } else if let Some(m) = cg.members.get_mut(&member_id) {
            // Gone for now: it keeps its partitions until it rejoins or its session ends.
            m.epoch = STATIC_LEAVE_EPOCH;
            m.revoking.clear();
            m.revocation_deadline = None;
        }
        return response;
    }

    let cg = match consumer_group(groups, &group_id, epoch == 0) {
        Ok(cg) => cg,
        Err((code, message)) => return fail(code, message),
    };
    if member_id.is_empty() {
        member_id = Uuid::from_bytes(rand::random()).to_string();
    }
    let owned = owned_by_name(topics, &r.topic_partitions);
    let mut joined = false;
    match (&instance_id, epoch) {
        (Some(instance), 0) => match cg.static_member(instance).map(str::to_owned) {
            Some(old) if cg.members.get(&old).is_some_and(|m| m.epoch != STATIC_LEAVE_EPOCH) => {
                return fail(
                    ErrorCode::UnreleasedInstanceId,
                    format!("Static member {member_id} with instance id {instance} cannot join the group because the instance id is owned by {old} member."),
                );
            }
            Some(old) => {
                // The instance comes back under a new member id and takes over its partitions.
                if let Some(mut m) = cg.members.remove(&old) {
                    m.id = member_id.clone();
                    m.epoch = 0;
                    m.previous_epoch = 0;
                    m.last_heartbeat = now;
                    if let Some(t) = cg.target.remove(&old) {
                        cg.target.insert(member_id.clone(), t);
                    }
                    cg.members.insert(member_id.clone(), m);
                }
            }
            None => joined = true,
        },
        (None, 0) => joined = true,
        (Some(instance), _) => match cg.static_member(instance) {
            None => {
                return fail(
                    ErrorCode::UnknownMemberId,
                    format!("Instance id {instance} is unknown."),
                )
            }
            Some(current) if current != member_id => {
                return fail(
                    ErrorCode::FencedInstanceId,
                    format!("Static member {member_id} with instance id {instance} was fenced by member {current}."),
                )
            }
            Some(_) => {}
        },
        (None, _) => {}
    }
    if joined {
        // A member (re)joining at epoch 0 owns nothing: an old incarnation under the same id is
        // dropped, its partitions freed.
        cg.remove_member(&member_id);
        let mut m = ConsumerMember::new(member_id.clone(), now);
        m.instance_id = instance_id.clone();
        cg.members.insert(member_id.clone(), m);
    }
    let Some(m) = cg.members.get(&member_id) else {
        return fail(
            ErrorCode::UnknownMemberId,
            format!("Member {member_id} is not a member of group {group_id}."),
        );
    };
    // A member ahead of the coordinator, or behind it other than by one lost answer (its
    // previous epoch, owning no more than it was given), must start over.
    let fenced = epoch > m.epoch
        || (epoch > 0
            && epoch < m.epoch
            && (epoch != m.previous_epoch || !is_subset(owned.as_ref(), &m.assigned)));
    if fenced {
        return fail(
            ErrorCode::FencedMemberEpoch,
            format!("The consumer group member has a member epoch ({epoch}) other than the one known by the group coordinator ({}). The member must abandon all its partitions and rejoin.", m.epoch),
        );
    }
    let before = m.assigned.clone();

    // Update the member; a new member or subscription bumps the group epoch.
    let m = cg.members.get_mut(&member_id).expect("checked above");
    let mut changed = joined;
    if let Some(names) = &r.subscribed_topic_names {
        let mut subscribed: Vec<String> = names.iter().map(|n| n.0.to_string()).collect();
        subscribed.sort();
        subscribed.dedup();
        changed |= subscribed != m.subscribed;
        m.subscribed = subscribed;
    }
    if let Some(a) = r.server_assignor.as_deref().and_then(assignors::known) {
        changed |= m.assignor.as_deref() != Some(a);
        m.assignor = Some(a.to_owned());
    }
    if r.rebalance_timeout_ms >= 0 {
        m.rebalance_timeout = std::time::Duration::from_millis(r.rebalance_timeout_ms as u64);
    }
    if let Some(rack) = &r.rack_id {
        m.rack_id = Some(rack.to_string());
    }
    m.client_id = ctx.client_id.clone();
    m.host = ctx.peer.ip().to_string();
    m.last_heartbeat = now;

    cg.refresh(changed, |t| {
        topics.get(t).map(|t| t.partitions.len() as i32)
    });
    cg.update_target();
    let moved = cg.reconcile(&member_id, owned.as_ref(), now);
    let m = &cg.members[&member_id];
    let full = epoch == 0
        || (r.rebalance_timeout_ms != -1
            && r.subscribed_topic_names.is_some()
            && r.topic_partitions.is_some());
    let mut response = ConsumerGroupHeartbeatResponse::default()
        .with_member_id(Some(sb(member_id.clone())))
        .with_member_epoch(m.epoch)
        .with_heartbeat_interval_ms(interval.as_millis().min(i32::MAX as u128) as i32);
    if full || moved || m.assigned != before {
        let assigned = by_id(topics, &m.assigned, |id, _, ps| {
            TopicPartitions::default()
                .with_topic_id(id)
                .with_partitions(ps)
        });
        response =
            response.with_assignment(Some(Assignment::default().with_topic_partitions(assigned)));
    }
    response
}

pub(crate) fn consumer_group_describe(
    ctx: &Ctx,
    r: ConsumerGroupDescribeRequest,
) -> ConsumerGroupDescribeResponse {
    let state = ctx.shared.lock();
    let topics = &state.topics;
    let partitions = |a: &Partitions| {
        describe::Assignment::default().with_topic_partitions(by_id(topics, a, |id, name, ps| {
            describe::TopicPartitions::default()
                .with_topic_id(id)
                .with_topic_name(TopicName(sb(name)))
                .with_partitions(ps)
        }))
    };
    let groups = r
        .group_ids
        .iter()
        .map(|id| {
            let out = describe::DescribedGroup::default().with_group_id(id.clone());
            let Some(cg) = state
                .groups
                .get(id.0.as_str())
                .and_then(|g| g.modern.as_ref())
            else {
                return out
                    .with_error_code(ErrorCode::GroupIdNotFound.code())
                    .with_error_message(Some(sb(format!("Group {} not found.", id.0))));
            };
            let empty = Partitions::new();
            out.with_group_state(sb(cg.state_name()))
                .with_group_epoch(cg.epoch)
                .with_assignment_epoch(cg.assignment_epoch)
                .with_assignor_name(sb(if cg.assignor.is_empty() {
                    assignors::DEFAULT.to_owned()
                } else {
                    cg.assignor.clone()
                }))
                .with_members(
                    cg.members
                        .values()
                        .map(|m| {
                            describe::Member::default()
                                .with_member_id(sb(m.id.clone()))
                                .with_instance_id(m.instance_id.clone().map(sb))
                                .with_rack_id(m.rack_id.clone().map(sb))
                                .with_member_epoch(m.epoch)
                                .with_client_id(sb(m.client_id.clone()))
                                .with_client_host(sb(m.host.clone()))
                                .with_subscribed_topic_names(
                                    m.subscribed
                                        .iter()
                                        .map(|t| TopicName(sb(t.clone())))
                                        .collect(),
                                )
                                .with_assignment(partitions(&m.assigned))
                                .with_target_assignment(partitions(
                                    cg.target.get(&m.id).unwrap_or(&empty),
                                ))
                                .with_member_type(1)
                        })
                        .collect(),
                )
        })
        .collect();
    ConsumerGroupDescribeResponse::default().with_groups(groups)
}

/// Kafka's OffsetCommit check for a consumer group: an empty group takes commits from anyone
/// with a negative epoch; otherwise the member must exist, speak v9+, and give its current epoch.
pub(crate) fn commit_error(
    cg: &ConsumerGroup,
    member_id: &str,
    epoch: i32,
    version: i16,
    transactional: bool,
) -> ErrorCode {
    if epoch < 0 && cg.members.is_empty() {
        return ErrorCode::None;
    }
    let Some(m) = cg.members.get(member_id) else {
        return ErrorCode::UnknownMemberId;
    };
    if !transactional && version < 9 {
        return ErrorCode::UnsupportedVersion;
    }
    if epoch != m.epoch {
        return ErrorCode::StaleMemberEpoch;
    }
    ErrorCode::None
}

/// Kafka's OffsetFetch check: a request without member id and epoch is an admin's; a member's
/// must name a current member at its current epoch.
pub(crate) fn fetch_error(cg: &ConsumerGroup, member_id: Option<&str>, epoch: i32) -> ErrorCode {
    let Some(member_id) = member_id.filter(|_| epoch >= 0) else {
        return ErrorCode::None;
    };
    match cg.members.get(member_id) {
        None => ErrorCode::UnknownMemberId,
        Some(m) if m.epoch != epoch => ErrorCode::StaleMemberEpoch,
        Some(_) => ErrorCode::None,
    }
}

/// Removes members whose session ended or whose revocation is overdue (the ticker's part).
pub(crate) fn tick(group: &mut Group, now: Instant, session: std::time::Duration) {
    let Some(cg) = group.modern.as_mut() else {
        return;
    };
    for id in cg.overdue(now, session) {
        tracing::debug!(member = %id, "consumer group member expired");
        cg.remove_member(&id);
    }
}

#[cfg(test)]
#[path = "consumer_group_tests.rs"]
mod tests;
