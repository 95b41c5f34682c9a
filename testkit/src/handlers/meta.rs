//! ApiVersions, Metadata, CreateTopics and DeleteTopics.

use std::collections::BTreeMap;

use kingest_protocol::kafka_protocol::messages::api_versions_response::ApiVersion;
use kingest_protocol::kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kingest_protocol::kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kingest_protocol::kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kingest_protocol::kafka_protocol::messages::*;
use kingest_protocol::kafka_protocol::protocol::StrBytes;
use kingest_protocol::ErrorCode;
use uuid::Uuid;

use super::Ctx;
use crate::state::{sb, ClusterState};

/// The ApiVersions response (with `error` 35 it answers a too-new request, in version 0).
pub(crate) fn api_versions_response(error: i16) -> ApiVersionsResponse {
    ApiVersionsResponse::default()
        .with_error_code(error)
        .with_api_keys(
            super::advertised()
                .map(|(key, min, max)| {
                    ApiVersion::default()
                        .with_api_key(key as i16)
                        .with_min_version(min)
                        .with_max_version(max)
                })
                .collect(),
        )
}

/// The controller: the lowest live broker id.
pub(crate) fn controller(state: &ClusterState) -> i32 {
    state.live_brokers().first().copied().unwrap_or(-1)
}

pub(crate) fn metadata(ctx: &Ctx, version: i16, r: MetadataRequest) -> MetadataResponse {
    let mut state = ctx.shared.lock();
    // v0: an empty list means every topic; later versions say so with a null list. A topic
    // asked for by id only (v10+: librdkafka resolving a KIP-848 assignment) is looked up by id;
    // an unknown id is answered UNKNOWN_TOPIC_ID without a name.
    let mut unknown_ids = Vec::new();
    let wanted: Option<Vec<String>> = match r.topics {
        None => None,
        Some(t) if t.is_empty() && version == 0 => None,
        Some(t) => Some(
            t.iter()
                .filter_map(|t| match &t.name {
                    Some(n) => Some(n.0.to_string()),
                    None => {
                        let found = state
                            .topics
                            .iter()
                            .find(|(_, topic)| Uuid::from_bytes(topic.id) == t.topic_id)
                            .map(|(n, _)| n.clone());
                        if found.is_none() {
                            unknown_ids.push(t.topic_id);
                        }
                        found
                    }
                })
                .collect(),
        ),
    };
    if let Some(names) = &wanted {
        let auto =
            ctx.shared.config.auto_create_topics && (version < 4 || r.allow_auto_topic_creation);
        for name in names {
            if auto && !state.topics.contains_key(name) {
                let _ =
                    state.create_topic(name, ctx.shared.config.default_partitions, BTreeMap::new());
            }
        }
    }
    let brokers = state
        .brokers
        .values()
        .filter(|b| b.up)
        .map(|b| {
            MetadataResponseBroker::default()
                .with_node_id(BrokerId(b.id))
                .with_host(sb(b.host.clone()))
                .with_port(i32::from(b.port))
        })
        .collect();
    let names: Vec<String> = wanted.unwrap_or_else(|| state.topics.keys().cloned().collect());
    let topics = names
        .iter()
        .map(|name| {
            let topic =
                MetadataResponseTopic::default().with_name(Some(TopicName(sb(name.clone()))));
            let Some(t) = state.topics.get(name) else {
                let code = if crate::state::valid_topic_name(name) {
                    ErrorCode::UnknownTopicOrPartition
                } else {
                    ErrorCode::InvalidTopicException
                };
                return topic.with_error_code(code.code());
            };
            topic.with_topic_id(Uuid::from_bytes(t.id)).with_partitions(
                t.partitions
                    .iter()
                    .enumerate()
                    .map(|(i, p)| {
                        let up = state.brokers.get(&p.leader).is_some_and(|b| b.up);
                        let leader = if up { p.leader } else { -1 };
                        MetadataResponsePartition::default()
                            .with_partition_index(i as i32)
                            .with_error_code(if up {
                                0
                            } else {
                                ErrorCode::LeaderNotAvailable.code()
                            })
                            .with_leader_id(BrokerId(leader))
                            .with_leader_epoch(p.leader_epoch)
                            .with_replica_nodes(vec![BrokerId(p.leader)])
                            .with_isr_nodes(if up {
                                vec![BrokerId(p.leader)]
                            } else {
                                Vec::new()
                            })
                    })
                    .collect(),
            )
        })
        .chain(unknown_ids.into_iter().map(|id| {
            MetadataResponseTopic::default()
                .with_topic_id(id)
                .with_error_code(ErrorCode::UnknownTopicId.code())
        }))
        .collect();
    let response = MetadataResponse::default()
        .with_brokers(brokers)
        .with_cluster_id(Some(sb(state.cluster_id.clone())))
        .with_controller_id(BrokerId(controller(&state)))
        .with_topics(topics);
    drop(state);
    response
}

pub(crate) fn create_topics(ctx: &Ctx, r: CreateTopicsRequest) -> CreateTopicsResponse {
    let mut state = ctx.shared.lock();
    let topics = r
        .topics
        .iter()
        .map(|t| {
            let name = t.name.0.to_string();
            let partitions = if t.num_partitions < 0 {
                ctx.shared.config.default_partitions
            } else {
                t.num_partitions
            };
            let configs: BTreeMap<String, String> = t
                .configs
                .iter()
                .filter_map(|c| Some((c.name.to_string(), c.value.as_ref()?.to_string())))
                .collect();
            let result = CreatableTopicResult::default().with_name(t.name.clone());
            let outcome = if r.validate_only {
                if state.topics.contains_key(&name) {
                    Err(ErrorCode::TopicAlreadyExists)
                } else {
                    Ok(())
                }
            } else {
                state.create_topic(&name, partitions, configs)
            };
            match outcome {
                Ok(()) => result
                    .with_num_partitions(partitions)
                    .with_replication_factor(1)
                    .with_topic_id(
                        state
                            .topics
                            .get(&name)
                            .map_or(Uuid::nil(), |t| Uuid::from_bytes(t.id)),
                    ),
                Err(code) => result.with_error_code(code.code()).with_error_message(Some(
                    StrBytes::from_string(format!("{}: {}", code.name(), name)),
                )),
            }
        })
        .collect();
    CreateTopicsResponse::default().with_topics(topics)
}

pub(crate) fn delete_topics(
    ctx: &Ctx,
    version: i16,
    r: DeleteTopicsRequest,
) -> DeleteTopicsResponse {
    let names: Vec<String> = if version >= 6 {
        r.topics
            .iter()
            .filter_map(|t| t.name.as_ref().map(|n| n.0.to_string()))
            .collect()
    } else {
        r.topic_names.iter().map(|n| n.0.to_string()).collect()
    };
    let mut state = ctx.shared.lock();
    let responses = names
        .into_iter()
        .map(|name| {
            let code = if state.topics.remove(&name).is_some() {
                ErrorCode::None
            } else {
                ErrorCode::UnknownTopicOrPartition
            };
            DeletableTopicResult::default()
                .with_name(Some(TopicName(sb(name))))
                .with_error_code(code.code())
        })
        .collect();
    DeleteTopicsResponse::default().with_responses(responses)
}
