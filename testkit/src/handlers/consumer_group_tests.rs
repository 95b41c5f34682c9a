//! Protocol-level tests of KIP-848 groups against the handlers: joins, revoke-before-assign,
//! epochs fencing heartbeats and offset commits, leaves, static members, expiry, and the
//! separation of classic and consumer groups.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kingest_protocol::kafka_protocol::messages::consumer_group_heartbeat_request::TopicPartitions as Owned;
use kingest_protocol::kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kingest_protocol::kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kingest_protocol::kafka_protocol::protocol::StrBytes;

use super::*;
use crate::server::sasl::SaslSession;
use crate::state::{BrokerEntry, ClusterState};
use crate::{ClusterConfig, Shared};

/// A one-broker cluster with topic "t" of 4 partitions.
fn ctx() -> Ctx {
    let mut state = ClusterState::new("test".into(), 1 << 20);
    state.brokers.insert(
        1,
        BrokerEntry {
            id: 1,
            host: "localhost".into(),
            port: 1,
            up: true,
        },
    );
    state.create_topic("t", 4, Default::default()).unwrap();
    Ctx {
        broker: 1,
        peer: SocketAddr::from(([127, 0, 0, 1], 1)),
        shared: Arc::new(Shared {
            state: Mutex::new(state),
            appended: tokio::sync::Notify::new(),
            sessions: Mutex::new(Default::default()),
            faults: Default::default(),
            sasl_logins: Default::default(),
            sasl: None,
            tls: None,
            config: ClusterConfig::default(),
        }),
        sasl: SaslSession::new(false),
        client_id: "test".into(),
    }
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

fn topic_id(ctx: &Ctx) -> Uuid {
    Uuid::from_bytes(ctx.shared.lock().topics["t"].id)
}

fn join(ctx: &Ctx, instance: Option<&str>) -> ConsumerGroupHeartbeatResponse {
    consumer_group_heartbeat(
        ctx,
        ConsumerGroupHeartbeatRequest::default()
            .with_group_id(GroupId(s("g")))
            .with_member_epoch(0)
            .with_instance_id(instance.map(s))
            .with_rebalance_timeout_ms(30_000)
            .with_subscribed_topic_names(Some(vec![TopicName(s("t"))]))
            .with_topic_partitions(Some(Vec::new())),
    )
}

/// A heartbeat reporting `owned` partitions of "t".
fn beat(ctx: &Ctx, member: &str, epoch: i32, owned: &[i32]) -> ConsumerGroupHeartbeatResponse {
    consumer_group_heartbeat(
        ctx,
        ConsumerGroupHeartbeatRequest::default()
            .with_group_id(GroupId(s("g")))
            .with_member_id(s(member))
            .with_member_epoch(epoch)
            .with_rebalance_timeout_ms(-1)
            .with_topic_partitions(Some(vec![Owned::default()
                .with_topic_id(topic_id(ctx))
                .with_partitions(owned.to_vec())])),
    )
}

fn leave(ctx: &Ctx, member: &str, epoch: i32, instance: Option<&str>) -> i16 {
    consumer_group_heartbeat(
        ctx,
        ConsumerGroupHeartbeatRequest::default()
            .with_group_id(GroupId(s("g")))
            .with_member_id(s(member))
            .with_member_epoch(epoch)
            .with_instance_id(instance.map(s))
            .with_rebalance_timeout_ms(-1),
    )
    .error_code
}

/// The partitions of the response's assignment (`None`: no assignment sent).
fn assigned(r: &ConsumerGroupHeartbeatResponse) -> Option<Vec<i32>> {
    r.assignment.as_ref().map(|a| {
        let mut ps: Vec<i32> = a
            .topic_partitions
            .iter()
            .flat_map(|t| t.partitions.iter().copied())
            .collect();
        ps.sort_unstable();
        ps
    })
}

fn member(r: &ConsumerGroupHeartbeatResponse) -> String {
    r.member_id
        .as_ref()
        .map(|m| m.to_string())
        .unwrap_or_default()
}

fn commit(ctx: &Ctx, member: &str, epoch: i32) -> i16 {
    let r = OffsetCommitRequest::default()
        .with_group_id(GroupId(s("g")))
        .with_member_id(s(member))
        .with_generation_id_or_member_epoch(epoch)
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(TopicName(s("t")))
            .with_partitions(vec![OffsetCommitRequestPartition::default()
                .with_partition_index(0)
                .with_committed_offset(3)])]);
    super::super::groups::offset_commit(ctx, 9, r).topics[0].partitions[0].error_code
}

/// Two members: the second gets partitions only after the first acknowledges giving them up;
/// commits at a stale epoch are refused; after the first leaves the second owns everything.
#[test]
fn revoke_before_assign_and_epoch_fencing() {
    let ctx = ctx();
    let a = join(&ctx, None);
    assert_eq!(a.error_code, 0, "{:?}", a.error_message);
    let a_id = member(&a);
    assert_eq!(a.member_epoch, 1);
    assert_eq!(assigned(&a), Some(vec![0, 1, 2, 3]));
    assert!(a.heartbeat_interval_ms > 0);

    let b = join(&ctx, None);
    let b_id = member(&b);
    assert_ne!(a_id, b_id);
    assert_eq!(b.member_epoch, 2);
    assert_eq!(assigned(&b), Some(vec![]), "held by a: nothing yet");

    // a learns it must give up two partitions; its epoch stays until it does.
    let r = beat(&ctx, &a_id, 1, &[0, 1, 2, 3]);
    assert_eq!(r.member_epoch, 1);
    let kept = assigned(&r).expect("assignment changed");
    assert_eq!(kept.len(), 2);
    let given: Vec<i32> = (0..4).filter(|p| !kept.contains(p)).collect();
    assert_eq!(
        beat(&ctx, &b_id, 2, &[]).assignment,
        None,
        "still held by a"
    );
    // a's commit at its current epoch is fine; at another epoch it is stale.
    assert_eq!(commit(&ctx, &a_id, 1), 0);
    assert_eq!(commit(&ctx, &a_id, 2), ErrorCode::StaleMemberEpoch.code());
    assert_eq!(commit(&ctx, "nobody", 1), ErrorCode::UnknownMemberId.code());

    // a acknowledges: it moves to epoch 2, and b gets the freed partitions.
    let r = beat(&ctx, &a_id, 1, &kept);
    assert_eq!(r.member_epoch, 2);
    let r = beat(&ctx, &b_id, 2, &[]);
    assert_eq!(assigned(&r), Some(given.clone()));
    assert_eq!(commit(&ctx, &a_id, 1), ErrorCode::StaleMemberEpoch.code());

    // An epoch from the future, or an old one with partitions it was never given, is fenced.
    assert_eq!(
        beat(&ctx, &b_id, 7, &given).error_code,
        ErrorCode::FencedMemberEpoch.code()
    );
    assert_eq!(
        beat(&ctx, &a_id, 1, &[0, 1, 2, 3]).error_code,
        ErrorCode::FencedMemberEpoch.code()
    );

    assert_eq!(leave(&ctx, &a_id, -1, None), 0);
    let r = beat(&ctx, &b_id, 2, &given);
    assert_eq!(assigned(&r), Some(vec![0, 1, 2, 3]));
    assert_eq!(r.member_epoch, 3);
    assert_eq!(
        leave(&ctx, &a_id, -1, None),
        ErrorCode::UnknownMemberId.code()
    );

    let d = consumer_group_describe(
        &ctx,
        ConsumerGroupDescribeRequest::default().with_group_ids(vec![GroupId(s("g"))]),
    );
    let g = &d.groups[0];
    assert_eq!(
        (g.group_state.as_str(), g.group_epoch, g.members.len()),
        ("Stable", 3, 1)
    );
    assert_eq!(g.assignor_name.as_str(), "uniform");
}

/// A static member leaving with -2 keeps its partitions for its next incarnation; the
/// instance id cannot be taken while its member is active.
#[test]
fn static_member_rejoins_with_its_partitions() {
    let ctx = ctx();
    let a = join(&ctx, Some("i1"));
    let a_id = member(&a);
    let b = join(&ctx, None);
    let b_id = member(&b);
    let r = beat(&ctx, &a_id, 1, &[0, 1, 2, 3]);
    let kept = assigned(&r).unwrap();
    let r = beat(&ctx, &a_id, 1, &kept);
    assert_eq!(r.member_epoch, 2);
    let given = assigned(&beat(&ctx, &b_id, 2, &[])).unwrap();
    assert_eq!(given.len(), 2);

    assert_eq!(
        join(&ctx, Some("i1")).error_code,
        ErrorCode::UnreleasedInstanceId.code()
    );
    assert_eq!(
        leave(&ctx, "other", -2, Some("i1")),
        ErrorCode::FencedInstanceId.code()
    );
    assert_eq!(leave(&ctx, &a_id, -2, Some("i1")), 0);
    // b is not given a's partitions while a is away.
    assert_eq!(beat(&ctx, &b_id, 2, &given).assignment, None);

    let again = join(&ctx, Some("i1"));
    assert_eq!(again.error_code, 0);
    assert_ne!(member(&again), a_id);
    assert_eq!(assigned(&again), Some(kept));
}

/// A member that stops heartbeating is removed after the session timeout.
#[test]
fn silent_member_expires() {
    let ctx = ctx();
    let a_id = member(&join(&ctx, None));
    let b_id = member(&join(&ctx, None));
    let later = Instant::now() + Duration::from_secs(46);
    {
        let mut state = ctx.shared.lock();
        let group = state.groups.get_mut("g").unwrap();
        group
            .modern
            .as_mut()
            .unwrap()
            .members
            .get_mut(&b_id)
            .unwrap()
            .last_heartbeat = later;
        tick(
            group,
            later,
            ctx.shared.config.consumer_group_session_timeout,
        );
    }
    assert_eq!(
        beat(&ctx, &a_id, 1, &[0, 1, 2, 3]).error_code,
        ErrorCode::UnknownMemberId.code()
    );
}

/// One group id is either a classic group or a consumer group while it has members.
#[tokio::test]
async fn classic_and_consumer_groups_do_not_mix() {
    let ctx = ctx();
    let a = join(&ctx, None);
    let classic = JoinGroupRequest::default()
        .with_group_id(GroupId(s("g")))
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(10_000)
        .with_protocol_type(s("consumer"))
        .with_protocols(vec![
            JoinGroupRequestProtocol::default().with_name(s("range"))
        ]);
    let r = super::super::groups::join_group(&ctx, 9, classic.clone()).await;
    assert_eq!(r.error_code, ErrorCode::InconsistentGroupProtocol.code());

    // Once empty, the group may turn classic; then consumer members are refused.
    assert_eq!(leave(&ctx, &member(&a), -1, None), 0);
    let r = super::super::groups::join_group(&ctx, 3, classic).await;
    assert_eq!(r.error_code, 0);
    assert_eq!(
        join(&ctx, None).error_code,
        ErrorCode::GroupIdNotFound.code()
    );
}

/// Metadata answers topics asked for by id only, as librdkafka asks to name the topics of a
/// KIP-848 assignment; an unknown id is UNKNOWN_TOPIC_ID.
#[test]
fn metadata_by_topic_id() {
    use kingest_protocol::kafka_protocol::messages::metadata_request::MetadataRequestTopic;
    let ctx = ctx();
    let unknown = Uuid::from_bytes([7; 16]);
    let r = MetadataRequest::default().with_topics(Some(vec![
        MetadataRequestTopic::default()
            .with_name(None)
            .with_topic_id(topic_id(&ctx)),
        MetadataRequestTopic::default()
            .with_name(None)
            .with_topic_id(unknown),
    ]));
    let response = super::super::meta::metadata(&ctx, 12, r);
    assert_eq!(response.topics.len(), 2);
    let known = &response.topics[0];
    assert_eq!(known.name.as_ref().map(|n| n.0.as_str()), Some("t"));
    assert_eq!((known.error_code, known.partitions.len()), (0, 4));
    let missing = &response.topics[1];
    assert_eq!(missing.topic_id, unknown);
    assert_eq!(missing.error_code, ErrorCode::UnknownTopicId.code());
}
