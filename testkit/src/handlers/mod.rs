//! Request handlers, one module per family of APIs, and the table of versions the cluster
//! advertises.

pub(crate) mod consumer_group;
pub(crate) mod fetch;
pub(crate) mod fetch_encode;
pub(crate) mod groups;
pub(crate) mod meta;
pub(crate) mod produce;
pub(crate) mod txn;

use std::net::SocketAddr;
use std::sync::Arc;

use kingest_protocol::kafka_protocol::messages::*;
use kingest_protocol::ErrorCode;

use crate::server::sasl::{AuthStep, SaslSession};
use crate::Shared;

/// What a handler knows about its connection.
pub(crate) struct Ctx {
    pub broker: i32,
    pub peer: SocketAddr,
    pub shared: Arc<Shared>,
    pub sasl: SaslSession,
    pub client_id: String,
}

/// The versions served, per API: capped below the newest where newer versions address topics
/// by id only or need protocols this cluster does not model (topic regexes in KIP-848 groups,
/// tiered storage).
const VERSIONS: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 12),
    (ApiKey::Fetch, 4, 12),
    (ApiKey::ListOffsets, 1, 7),
    (ApiKey::Metadata, 0, 12),
    (ApiKey::OffsetCommit, 2, 9),
    (ApiKey::OffsetFetch, 1, 9),
    (ApiKey::FindCoordinator, 0, 4),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::DescribeGroups, 0, 5),
    (ApiKey::ListGroups, 0, 4),
    (ApiKey::SaslHandshake, 1, 1),
    (ApiKey::ApiVersions, 0, 3),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::InitProducerId, 0, 4),
    (ApiKey::AddPartitionsToTxn, 0, 3),
    (ApiKey::AddOffsetsToTxn, 0, 3),
    (ApiKey::EndTxn, 0, 3),
    (ApiKey::TxnOffsetCommit, 0, 3),
    (ApiKey::SaslAuthenticate, 0, 2),
    (ApiKey::ConsumerGroupHeartbeat, 0, 1),
    (ApiKey::ConsumerGroupDescribe, 0, 1),
];

/// The advertised (min, max) of an API, within what the codec crate knows.
pub(crate) fn advertised() -> impl Iterator<Item = (ApiKey, i16, i16)> {
    VERSIONS.iter().filter_map(|&(key, min, max)| {
        let known = key.valid_versions();
        let (min, max) = (min.max(known.min), max.min(known.max));
        (min <= max).then_some((key, min, max))
    })
}

/// Whether `version` of `key` is served.
pub(crate) fn supports(key: ApiKey, version: i16) -> bool {
    advertised().any(|(k, min, max)| k == key && (min..=max).contains(&version))
}

/// The newest served version of `key` (-1 if not served).
pub(crate) fn max_version(key: ApiKey) -> i16 {
    advertised()
        .find(|(k, _, _)| *k == key)
        .map_or(-1, |(_, _, max)| max)
}

/// Handles one request; `None` means no response is sent (acks=0 produce).
pub(crate) async fn handle(
    ctx: &mut Ctx,
    version: i16,
    request: RequestKind,
) -> Option<ResponseKind> {
    Some(match request {
        RequestKind::ApiVersions(_) => ResponseKind::ApiVersions(meta::api_versions_response(0)),
        RequestKind::Metadata(r) => ResponseKind::Metadata(meta::metadata(ctx, version, r)),
        RequestKind::CreateTopics(r) => ResponseKind::CreateTopics(meta::create_topics(ctx, r)),
        RequestKind::DeleteTopics(r) => {
            ResponseKind::DeleteTopics(meta::delete_topics(ctx, version, r))
        }
        RequestKind::Produce(r) => return produce::produce(ctx, r).map(ResponseKind::Produce),
        RequestKind::Fetch(r) => {
            ResponseKind::Fetch(fetch::fetch(ctx, version, r).await.into_response())
        }
        RequestKind::ListOffsets(r) => {
            ResponseKind::ListOffsets(fetch::list_offsets(ctx, version, r))
        }
        RequestKind::FindCoordinator(r) => {
            ResponseKind::FindCoordinator(groups::find_coordinator(ctx, version, r))
        }
        RequestKind::JoinGroup(r) => {
            ResponseKind::JoinGroup(groups::join_group(ctx, version, r).await)
        }
        RequestKind::SyncGroup(r) => ResponseKind::SyncGroup(groups::sync_group(ctx, r).await),
        RequestKind::Heartbeat(r) => ResponseKind::Heartbeat(groups::heartbeat(ctx, r)),
        RequestKind::LeaveGroup(r) => {
            ResponseKind::LeaveGroup(groups::leave_group(ctx, version, r))
        }
        RequestKind::OffsetCommit(r) => {
            ResponseKind::OffsetCommit(groups::offset_commit(ctx, version, r))
        }
        RequestKind::ConsumerGroupHeartbeat(r) => {
            ResponseKind::ConsumerGroupHeartbeat(consumer_group::consumer_group_heartbeat(ctx, r))
        }
        RequestKind::ConsumerGroupDescribe(r) => {
            ResponseKind::ConsumerGroupDescribe(consumer_group::consumer_group_describe(ctx, r))
        }
        RequestKind::OffsetFetch(r) => {
            ResponseKind::OffsetFetch(groups::offset_fetch(ctx, version, r))
        }
        RequestKind::DescribeGroups(r) => {
            ResponseKind::DescribeGroups(groups::describe_groups(ctx, r))
        }
        RequestKind::ListGroups(r) => ResponseKind::ListGroups(groups::list_groups(ctx, r)),
        RequestKind::InitProducerId(r) => {
            ResponseKind::InitProducerId(txn::init_producer_id(ctx, r))
        }
        RequestKind::AddPartitionsToTxn(r) => {
            ResponseKind::AddPartitionsToTxn(txn::add_partitions(ctx, r))
        }
        RequestKind::AddOffsetsToTxn(r) => ResponseKind::AddOffsetsToTxn(txn::add_offsets(ctx, r)),
        RequestKind::EndTxn(r) => ResponseKind::EndTxn(txn::end_txn(ctx, r)),
        RequestKind::TxnOffsetCommit(r) => {
            ResponseKind::TxnOffsetCommit(txn::txn_offset_commit(ctx, r))
        }
        RequestKind::SaslHandshake(r) => ResponseKind::SaslHandshake(sasl_handshake(ctx, r)),
        RequestKind::SaslAuthenticate(r) => {
            ResponseKind::SaslAuthenticate(sasl_authenticate(ctx, r))
        }
        // `supports` has already refused everything else.
        _ => return None,
    })
}

fn sasl_handshake(ctx: &mut Ctx, r: SaslHandshakeRequest) -> SaslHandshakeResponse {
    let Some(config) = ctx.shared.sasl.as_ref() else {
        return SaslHandshakeResponse::default()
            .with_error_code(ErrorCode::IllegalSaslState.code());
    };
    let code = ctx.sasl.handshake(config, r.mechanism.as_str());
    SaslHandshakeResponse::default()
        .with_error_code(code.code())
        .with_mechanisms(
            config
                .mechanisms
                .iter()
                .map(|m| crate::state::sb(m.clone()))
                .collect(),
        )
}

fn sasl_authenticate(ctx: &mut Ctx, r: SaslAuthenticateRequest) -> SaslAuthenticateResponse {
    let Some(config) = ctx.shared.sasl.clone() else {
        return SaslAuthenticateResponse::default()
            .with_error_code(ErrorCode::IllegalSaslState.code());
    };
    match ctx.sasl.authenticate(&config, &r.auth_bytes) {
        AuthStep::Continue(bytes) => {
            SaslAuthenticateResponse::default().with_auth_bytes(bytes.into())
        }
        AuthStep::Done(bytes) => {
            ctx.shared
                .sasl_logins
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            SaslAuthenticateResponse::default()
                .with_auth_bytes(bytes.into())
                .with_session_lifetime_ms(
                    config.session_lifetime.map_or(0, |d| d.as_millis() as i64),
                )
        }
        AuthStep::Fail(message) => SaslAuthenticateResponse::default()
            .with_error_code(ErrorCode::SaslAuthenticationFailed.code())
            .with_error_message(Some(crate::state::sb(message))),
    }
}

/// The response an injected error produces: the code in the top-level error field and in every
/// topic/partition entry, without touching any state.
pub(crate) fn error_response(request: &RequestKind, code: ErrorCode) -> Option<ResponseKind> {
    let c = code.code();
    Some(match request {
        RequestKind::Produce(r) => {
            use produce_response::{PartitionProduceResponse, TopicProduceResponse};
            if r.acks == 0 {
                return None;
            }
            ResponseKind::Produce(
                ProduceResponse::default().with_responses(
                    r.topic_data
                        .iter()
                        .map(|t| {
                            TopicProduceResponse::default()
                                .with_name(t.name.clone())
                                .with_partition_responses(
                                    t.partition_data
                                        .iter()
                                        .map(|p| {
                                            PartitionProduceResponse::default()
                                                .with_index(p.index)
                                                .with_error_code(c)
                                                .with_base_offset(-1)
                                        })
                                        .collect(),
                                )
                        })
                        .collect(),
                ),
            )
        }
        RequestKind::Fetch(r) => {
            use fetch_response::{FetchableTopicResponse, PartitionData};
            ResponseKind::Fetch(
                FetchResponse::default().with_responses(
                    r.topics
                        .iter()
                        .map(|t| {
                            FetchableTopicResponse::default()
                                .with_topic(t.topic.clone())
                                .with_topic_id(t.topic_id)
                                .with_partitions(
                                    t.partitions
                                        .iter()
                                        .map(|p| {
                                            PartitionData::default()
                                                .with_partition_index(p.partition)
                                                .with_error_code(c)
                                                .with_high_watermark(-1)
                                                .with_last_stable_offset(-1)
                                        })
                                        .collect(),
                                )
                        })
                        .collect(),
                ),
            )
        }
        RequestKind::ListOffsets(r) => {
            use list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse};
            ResponseKind::ListOffsets(
                ListOffsetsResponse::default().with_topics(
                    r.topics
                        .iter()
                        .map(|t| {
                            ListOffsetsTopicResponse::default()
                                .with_name(t.name.clone())
                                .with_partitions(
                                    t.partitions
                                        .iter()
                                        .map(|p| {
                                            ListOffsetsPartitionResponse::default()
                                                .with_partition_index(p.partition_index)
                                                .with_error_code(c)
                                                .with_offset(-1)
                                        })
                                        .collect(),
                                )
                        })
                        .collect(),
                ),
            )
        }
        RequestKind::Metadata(_) => {
            ResponseKind::Metadata(MetadataResponse::default().with_error_code(c))
        }
        RequestKind::FindCoordinator(_) => {
            ResponseKind::FindCoordinator(FindCoordinatorResponse::default().with_error_code(c))
        }
        RequestKind::JoinGroup(_) => ResponseKind::JoinGroup(
            JoinGroupResponse::default()
                .with_error_code(c)
                .with_generation_id(-1),
        ),
        RequestKind::SyncGroup(_) => {
            ResponseKind::SyncGroup(SyncGroupResponse::default().with_error_code(c))
        }
        RequestKind::Heartbeat(_) => {
            ResponseKind::Heartbeat(HeartbeatResponse::default().with_error_code(c))
        }
        RequestKind::LeaveGroup(_) => {
            ResponseKind::LeaveGroup(LeaveGroupResponse::default().with_error_code(c))
        }
        RequestKind::OffsetFetch(_) => {
            ResponseKind::OffsetFetch(OffsetFetchResponse::default().with_error_code(c))
        }
        RequestKind::InitProducerId(_) => ResponseKind::InitProducerId(
            InitProducerIdResponse::default()
                .with_error_code(c)
                .with_producer_id(ProducerId(-1)),
        ),
        RequestKind::EndTxn(_) => {
            ResponseKind::EndTxn(EndTxnResponse::default().with_error_code(c))
        }
        RequestKind::AddOffsetsToTxn(_) => {
            ResponseKind::AddOffsetsToTxn(AddOffsetsToTxnResponse::default().with_error_code(c))
        }
        RequestKind::ApiVersions(_) => {
            ResponseKind::ApiVersions(ApiVersionsResponse::default().with_error_code(c))
        }
        RequestKind::ListGroups(_) => {
            ResponseKind::ListGroups(ListGroupsResponse::default().with_error_code(c))
        }
        RequestKind::ConsumerGroupHeartbeat(_) => ResponseKind::ConsumerGroupHeartbeat(
            ConsumerGroupHeartbeatResponse::default().with_error_code(c),
        ),
        // APIs whose errors live only in per-item entries the request shape does not give
        // cheaply: answer as a broker that is not available would, by closing.
        _ => return None,
    })
}
