//! A snapshot of cluster metadata.
//!
//! Snapshots are immutable and shared (`Arc`): a refresh builds a new one and swaps it in, so a
//! reader never sees half of one response and half of another.

use std::collections::HashMap;

use kingest_protocol::kafka_protocol::messages::MetadataResponse;
use kingest_protocol::ErrorCode;

/// One broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerInfo {
    /// Its id.
    pub id: i32,
    /// The advertised host.
    pub host: String,
    /// The advertised port.
    pub port: i32,
    /// Its rack, if configured.
    pub rack: Option<String>,
}

impl BrokerInfo {
    /// host:port, bracketing IPv6 literals.
    pub fn addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// One partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionInfo {
    /// Its index.
    pub partition: i32,
    /// The leader's broker id (-1 when there is none).
    pub leader: i32,
    /// The leader epoch (-1 when the broker does not say).
    pub leader_epoch: i32,
    /// Replica broker ids.
    pub replicas: Vec<i32>,
    /// In-sync replica broker ids.
    pub isr: Vec<i32>,
    /// The partition's error code in the response (e.g. LEADER_NOT_AVAILABLE).
    pub error: ErrorCode,
}

/// One topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    /// Its name.
    pub name: String,
    /// Its id (all zero when the broker does not use topic ids).
    pub id: [u8; 16],
    /// Whether it is an internal topic (`__consumer_offsets`...).
    pub internal: bool,
    /// Partitions by index (sorted).
    pub partitions: Vec<PartitionInfo>,
    /// The topic's error code in the response.
    pub error: ErrorCode,
}

/// The cluster's metadata at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterMetadata {
    /// The cluster id.
    pub cluster_id: Option<String>,
    /// The controller's broker id.
    pub controller: i32,
    /// Brokers by id.
    pub brokers: HashMap<i32, BrokerInfo>,
    /// Topics by name. A partial refresh carries over topics it did not ask about.
    pub topics: HashMap<String, TopicInfo>,
}

impl ClusterMetadata {
    /// Builds a snapshot from a response.
    pub fn from_response(r: &MetadataResponse) -> Self {
        let brokers = r
            .brokers
            .iter()
            .map(|b| {
                (
                    b.node_id.0,
                    BrokerInfo {
                        id: b.node_id.0,
                        host: b.host.to_string(),
                        port: b.port,
                        rack: b.rack.as_ref().map(|r| r.to_string()),
                    },
                )
            })
            .collect();
        let topics = r
            .topics
            .iter()
            .filter_map(|t| {
                let name = t.name.as_ref()?.0.to_string();
                let mut partitions: Vec<PartitionInfo> = t
                    .partitions
                    .iter()
                    .map(|p| PartitionInfo {
                        partition: p.partition_index,
                        leader: p.leader_id.0,
                        leader_epoch: p.leader_epoch,
                        replicas: p.replica_nodes.iter().map(|b| b.0).collect(),
                        isr: p.isr_nodes.iter().map(|b| b.0).collect(),
                        error: ErrorCode::from_code(p.error_code),
                    })
                    .collect();
                partitions.sort_by_key(|p| p.partition);
                Some((
                    name.clone(),
                    TopicInfo {
                        name,
                        id: *t.topic_id.as_bytes(),
                        internal: t.is_internal,
                        partitions,
                        error: ErrorCode::from_code(t.error_code),
                    },
                ))
            })
            .collect();
        Self {
            cluster_id: r.cluster_id.as_ref().map(|c| c.to_string()),
            controller: r.controller_id.0,
            brokers,
            topics,
        }
    }

    /// This snapshot updated with a response about some topics: brokers and the controller are
    /// replaced, the topics in the response replaced, the others kept.
    pub fn merged(&self, r: &MetadataResponse) -> Self {
        let mut fresh = Self::from_response(r);
        for (name, topic) in &self.topics {
            fresh
                .topics
                .entry(name.clone())
                .or_insert_with(|| topic.clone());
        }
        fresh
    }

    /// A topic, if known and without error.
    pub fn topic(&self, name: &str) -> Option<&TopicInfo> {
        self.topics.get(name).filter(|t| t.error.is_ok())
    }

    /// A partition, if known.
    pub fn partition(&self, topic: &str, partition: i32) -> Option<&PartitionInfo> {
        let t = self.topic(topic)?;
        t.partitions
            .binary_search_by_key(&partition, |p| p.partition)
            .ok()
            .map(|i| &t.partitions[i])
    }

    /// The number of partitions of a topic.
    pub fn partition_count(&self, topic: &str) -> Option<usize> {
        self.topic(topic).map(|t| t.partitions.len())
    }

    /// The leader of a partition, if it has one.
    pub fn leader(&self, topic: &str, partition: i32) -> Option<&BrokerInfo> {
        let p = self.partition(topic, partition)?;
        if p.leader < 0 {
            return None;
        }
        self.brokers.get(&p.leader)
    }
}
