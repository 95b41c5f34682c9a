//! The cluster's shared state: brokers, topics and their logs, producers (idempotence and
//! transactions) and consumer groups. One lock guards it; handlers hold it only to read or
//! update, never across an await, and fetches clone `Bytes` handles out of it rather than
//! copying data.

pub(crate) mod assignors;
pub(crate) mod consumer_group;
pub(crate) mod groups;
pub(crate) mod log;
pub(crate) mod producers;

use std::collections::{BTreeMap, HashMap};

use kingest_protocol::kafka_protocol::protocol::StrBytes;

pub(crate) use log::{AbortedTxn, PartitionLog, StoredBatch};

/// Caps that keep a hostile or buggy client from growing the state without bound.
pub(crate) const MAX_TOPICS: usize = 10_000;
pub(crate) const MAX_PARTITIONS_PER_TOPIC: i32 = 10_000;
pub(crate) const MAX_GROUPS: usize = 10_000;
pub(crate) const MAX_PRODUCERS: usize = 100_000;

/// A broker of the cluster.
#[derive(Debug, Clone)]
pub(crate) struct BrokerEntry {
    pub id: i32,
    pub host: String,
    pub port: u16,
    pub up: bool,
}

/// One partition: its leader and its log.
#[derive(Debug, Default)]
pub(crate) struct PartitionState {
    pub leader: i32,
    pub leader_epoch: i32,
    pub log: PartitionLog,
}

/// One topic.
#[derive(Debug)]
pub(crate) struct Topic {
    pub id: [u8; 16],
    pub partitions: Vec<PartitionState>,
    /// Topic configs given at creation (kept for DescribeConfigs-style inspection by tests).
    pub configs: BTreeMap<String, String>,
}

/// Everything the brokers share.
#[derive(Debug)]
pub(crate) struct ClusterState {
    pub cluster_id: String,
    pub brokers: BTreeMap<i32, BrokerEntry>,
    pub topics: BTreeMap<String, Topic>,
    pub producers: producers::Producers,
    pub groups: HashMap<String, groups::Group>,
    /// Total bytes kept per partition before the oldest batches are dropped.
    pub retention_bytes: usize,
    next_leader: i32,
}

impl ClusterState {
    pub fn new(cluster_id: String, retention_bytes: usize) -> Self {
        Self {
            cluster_id,
            brokers: BTreeMap::new(),
            topics: BTreeMap::new(),
            producers: producers::Producers::default(),
            groups: HashMap::new(),
            retention_bytes,
            next_leader: 0,
        }
    }

    /// The ids of the brokers that are up.
    pub fn live_brokers(&self) -> Vec<i32> {
        self.brokers
            .values()
            .filter(|b| b.up)
            .map(|b| b.id)
            .collect()
    }

    /// Creates a topic, spreading leaders round-robin over the brokers.
    pub fn create_topic(
        &mut self,
        name: &str,
        partitions: i32,
        configs: BTreeMap<String, String>,
    ) -> Result<(), kingest_protocol::ErrorCode> {
        use kingest_protocol::ErrorCode;
        if self.topics.contains_key(name) {
            return Err(ErrorCode::TopicAlreadyExists);
        }
        if !valid_topic_name(name) {
            return Err(ErrorCode::InvalidTopicException);
        }
        if !(1..=MAX_PARTITIONS_PER_TOPIC).contains(&partitions) {
            return Err(ErrorCode::InvalidPartitions);
        }
        if self.topics.len() >= MAX_TOPICS {
            return Err(ErrorCode::PolicyViolation);
        }
        let brokers: Vec<i32> = self.brokers.keys().copied().collect();
        if brokers.is_empty() {
            return Err(ErrorCode::BrokerNotAvailable);
        }
        let parts = (0..partitions)
            .map(|_| {
                let leader = brokers[self.next_leader as usize % brokers.len()];
                self.next_leader = self.next_leader.wrapping_add(1) & i32::MAX;
                PartitionState {
                    leader,
                    leader_epoch: 0,
                    log: PartitionLog::default(),
                }
            })
            .collect();
        let id: [u8; 16] = rand::random();
        self.topics.insert(
            name.to_owned(),
            Topic {
                id,
                partitions: parts,
                configs,
            },
        );
        Ok(())
    }

    /// A partition, if it exists.
    pub fn partition(&self, topic: &str, partition: i32) -> Option<&PartitionState> {
        self.topics
            .get(topic)?
            .partitions
            .get(usize::try_from(partition).ok()?)
    }

    /// A partition, mutably.
    pub fn partition_mut(&mut self, topic: &str, partition: i32) -> Option<&mut PartitionState> {
        self.topics
            .get_mut(topic)?
            .partitions
            .get_mut(usize::try_from(partition).ok()?)
    }

    /// Applies retention to a partition: drops whole batches from the front while the log is
    /// over the byte limit (keeping at least the last batch).
    pub fn enforce_retention(&mut self, topic: &str, partition: i32) {
        let limit = self.retention_bytes;
        let Some(p) = self.partition_mut(topic, partition) else {
            return;
        };
        let log = &mut p.log;
        let mut drop = 0;
        while log.bytes > limit && drop + 1 < log.batches.len() {
            log.bytes -= log.batches[drop].bytes.len();
            drop += 1;
        }
        if drop > 0 {
            log.log_start = log.batches[drop].base_offset;
            log.batches.drain(..drop);
            let start = log.log_start;
            log.aborted.retain(|a| a.last_offset >= start);
        }
    }
}

/// Kafka's rule: 1-249 characters of ASCII letters, digits, '.', '_' and '-', and not "." or "..".
pub(crate) fn valid_topic_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 249
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
}

/// A `StrBytes` from a `String`.
pub(crate) fn sb(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}
