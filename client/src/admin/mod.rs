//! Cluster administration: topics, offsets, the cluster's brokers, and (in [`groups`]) consumer
//! groups, their committed offsets and lag.

pub mod groups;

use std::collections::HashMap;

use kingest_protocol::kafka_protocol::messages::create_topics_request::{
    CreatableTopic, CreatableTopicConfig,
};
use kingest_protocol::kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kingest_protocol::kafka_protocol::messages::list_offsets_request::{
    ListOffsetsPartition, ListOffsetsTopic,
};
use kingest_protocol::kafka_protocol::messages::{
    BrokerId, CreateTopicsRequest, DeleteTopicsRequest, ListOffsetsRequest, TopicName,
};
use kingest_protocol::kafka_protocol::protocol::StrBytes;
use kingest_protocol::{BrokerError, ErrorCode};

pub use groups::{GroupDescription, GroupListing, GroupMember, PartitionLag};

use crate::cluster::BrokerInfo;
use crate::error::{ClientError, Result};
use crate::Client;

/// A topic to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTopic {
    /// Its name.
    pub name: String,
    /// Number of partitions (-1: the broker's default).
    pub partitions: i32,
    /// Replication factor (-1: the broker's default).
    pub replication_factor: i16,
    /// Topic configs (`retention.ms`, `cleanup.policy`, ...).
    pub configs: Vec<(String, String)>,
}

impl NewTopic {
    /// A topic with `partitions` partitions and the broker's default replication.
    pub fn new(name: impl Into<String>, partitions: i32) -> Self {
        Self {
            name: name.into(),
            partitions,
            replication_factor: -1,
            configs: Vec::new(),
        }
    }
}

/// Which offset ListOffsets looks up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OffsetSpec {
    /// The log start offset.
    Earliest,
    /// The log end offset (high watermark).
    Latest,
    /// The first offset whose timestamp is at or after this one (ms since the epoch).
    Timestamp(i64),
}

impl OffsetSpec {
    fn wire(self) -> i64 {
        match self {
            OffsetSpec::Earliest => -2,
            OffsetSpec::Latest => -1,
            OffsetSpec::Timestamp(t) => t,
        }
    }
}

/// A ListOffsets answer for one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListedOffset {
    /// The offset (-1 when no record has a timestamp that late).
    pub offset: i64,
    /// The timestamp of that record (-1 for earliest/latest).
    pub timestamp: i64,
    /// The leader epoch of that record, if the broker says.
    pub leader_epoch: i32,
}

/// The cluster's identity and brokers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterDescription {
    /// The cluster id.
    pub cluster_id: Option<String>,
    /// The controller's broker id.
    pub controller: i32,
    /// The brokers, by id.
    pub brokers: Vec<BrokerInfo>,
}

/// Administrative operations over a [`Client`].
#[derive(Debug, Clone)]
pub struct Admin {
    client: Client,
}

impl Admin {
    /// The admin API of `client`.
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    /// The underlying client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Creates topics; returns each topic's outcome (TOPIC_ALREADY_EXISTS included, as an error
    /// the caller may choose to ignore).
    pub async fn create_topics(&self, topics: &[NewTopic]) -> Result<Vec<(String, Result<()>)>> {
        let request = CreateTopicsRequest::default()
            .with_timeout_ms(30_000)
            .with_topics(
                topics
                    .iter()
                    .map(|t| {
                        CreatableTopic::default()
                            .with_name(TopicName(StrBytes::from_string(t.name.clone())))
                            .with_num_partitions(t.partitions)
                            .with_replication_factor(t.replication_factor)
                            .with_configs(
                                t.configs
                                    .iter()
                                    .map(|(k, v)| {
                                        CreatableTopicConfig::default()
                                            .with_name(StrBytes::from_string(k.clone()))
                                            .with_value(Some(StrBytes::from_string(v.clone())))
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            );
        let conn = self.controller_connection().await?;
        let response = conn.send(&request).await?;
        let results = response
            .topics
            .iter()
            .map(|t| {
                let name = t.name.0.to_string();
                let outcome = topic_outcome(
                    &conn,
                    "CreateTopics",
                    &name,
                    t.error_code,
                    t.error_message.as_ref(),
                );
                (name, outcome)
            })
            .collect();
        let names: Vec<&str> = topics.iter().map(|t| t.name.as_str()).collect();
        // New topics take a moment to get leaders; the next metadata refresh should see them.
        let _ = self.client.refresh_metadata(&names).await;
        Ok(results)
    }

    /// Creates topics, treating "already exists" as success.
    pub async fn create_topics_if_missing(&self, topics: &[NewTopic]) -> Result<()> {
        for (_, outcome) in self.create_topics(topics).await? {
            match outcome {
                Err(e)
                    if e.broker_error().map(|b| b.code) == Some(ErrorCode::TopicAlreadyExists) => {}
                other => other?,
            }
        }
        Ok(())
    }

    /// Deletes topics; returns each topic's outcome.
    pub async fn delete_topics(&self, names: &[&str]) -> Result<Vec<(String, Result<()>)>> {
        let topic_names: Vec<TopicName> = names
            .iter()
            .map(|n| TopicName(StrBytes::from_string((*n).to_owned())))
            .collect();
        let conn = self.controller_connection().await?;
        let version = conn.version_of::<DeleteTopicsRequest>()?;
        let mut request = DeleteTopicsRequest::default().with_timeout_ms(30_000);
        // v6 named topics in `topics`, earlier versions in `topic_names`.
        if version >= 6 {
            request.topics = topic_names
                .iter()
                .map(|n| DeleteTopicState::default().with_name(Some(n.clone())))
                .collect();
        } else {
            request.topic_names = topic_names;
        }
        let response = conn.send_version(version, &request).await?;
        Ok(response
            .responses
            .iter()
            .map(|r| {
                let name = r.name.as_ref().map(|n| n.0.to_string()).unwrap_or_default();
                let outcome = topic_outcome(
                    &conn,
                    "DeleteTopics",
                    &name,
                    r.error_code,
                    r.error_message.as_ref(),
                );
                (name, outcome)
            })
            .collect())
    }

    /// Looks up offsets (earliest, latest or by timestamp) for partitions, asking each
    /// partition's leader. Read-committed isolation makes "latest" the last stable offset.
    pub async fn list_offsets(
        &self,
        partitions: &[(&str, i32, OffsetSpec)],
        read_committed: bool,
    ) -> Result<HashMap<(String, i32), ListedOffset>> {
        // Group by leader: one request per broker.
        let mut by_leader: HashMap<i32, Vec<(&str, i32, OffsetSpec, i32)>> = HashMap::new();
        for &(topic, partition, spec) in partitions {
            let (info, _) = self.client.leader(topic, partition).await?;
            by_leader.entry(info.leader).or_default().push((
                topic,
                partition,
                spec,
                info.leader_epoch,
            ));
        }
        let mut out = HashMap::new();
        for (leader, parts) in by_leader {
            let conn = self.client.connection(leader).await?;
            let mut topics: Vec<ListOffsetsTopic> = Vec::new();
            for (topic, partition, spec, epoch) in &parts {
                let p = ListOffsetsPartition::default()
                    .with_partition_index(*partition)
                    .with_current_leader_epoch(*epoch)
                    .with_timestamp(spec.wire());
                match topics.iter_mut().find(|t| t.name.0.as_str() == *topic) {
                    Some(t) => t.partitions.push(p),
                    None => topics.push(
                        ListOffsetsTopic::default()
                            .with_name(TopicName(StrBytes::from_string((*topic).to_owned())))
                            .with_partitions(vec![p]),
                    ),
                }
            }
            let request = ListOffsetsRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_isolation_level(i8::from(read_committed))
                .with_topics(topics);
            let response = conn.send(&request).await?;
            for t in &response.topics {
                for p in &t.partitions {
                    let key = partition_key(
                        &conn,
                        "ListOffsets",
                        &t.name,
                        p.partition_index,
                        p.error_code,
                    )?;
                    out.insert(
                        key,
                        ListedOffset {
                            offset: p.offset,
                            timestamp: p.timestamp,
                            leader_epoch: p.leader_epoch,
                        },
                    );
                }
            }
        }
        Ok(out)
    }

    /// The cluster id, controller and brokers, fresh from the cluster.
    pub async fn describe_cluster(&self) -> Result<ClusterDescription> {
        let snapshot = self.client.refresh_metadata::<&str>(&[]).await?;
        let mut brokers: Vec<BrokerInfo> = snapshot.brokers.values().cloned().collect();
        brokers.sort_by_key(|b| b.id);
        Ok(ClusterDescription {
            cluster_id: snapshot.cluster_id.clone(),
            controller: snapshot.controller,
            brokers,
        })
    }

    /// The names of all topics (internal ones excluded), sorted.
    pub async fn list_topics(&self) -> Result<Vec<String>> {
        let snapshot = self.client.refresh_all_topics().await?;
        let mut names: Vec<String> = snapshot
            .topics
            .values()
            .filter(|t| !t.internal)
            .map(|t| t.name.clone())
            .collect();
        names.sort();
        Ok(names)
    }

    /// Topic creation and deletion go to the controller when the cluster names one (older
    /// brokers require it; newer ones forward from any broker).
    async fn controller_connection(&self) -> Result<crate::net::Connection> {
        let controller = self.client.metadata().controller;
        if controller >= 0 {
            if let Ok(conn) = self.client.connection(controller).await {
                return Ok(conn);
            }
        }
        self.client.any_connection().await
    }
}

fn topic_outcome(
    conn: &crate::net::Connection,
    api: &'static str,
    topic: &str,
    code: i16,
    message: Option<&StrBytes>,
) -> Result<()> {
    error_of(code, message).map_or(Ok(()), |source| {
        Err(ClientError::Topic {
            broker: conn.broker().clone(),
            api,
            topic: topic.to_owned(),
            source,
        })
    })
}

/// The `(topic, partition)` of one partition of a response, or the partition's error, which
/// names the broker, the request, the topic and the partition.
fn partition_key(
    conn: &crate::net::Connection,
    api: &'static str,
    topic: &TopicName,
    partition: i32,
    code: i16,
) -> Result<(String, i32)> {
    let topic = topic.0.to_string();
    match error_of(code, None) {
        None => Ok((topic, partition)),
        Some(source) => Err(ClientError::Partition {
            broker: conn.broker().clone(),
            api,
            topic,
            partition,
            source,
        }),
    }
}

/// The error a response's error `code` and message stand for, if the code is one.
fn error_of(code: i16, message: Option<&StrBytes>) -> Option<BrokerError> {
    let code = ErrorCode::from_code(code);
    (!code.is_ok()).then(|| BrokerError::new(code, message.map(|m| m.to_string())))
}
