//! The cluster as the client sees it: broker addresses, topic and partition leaders (with leader
//! epochs), and one pooled connection per broker.
//!
//! - [`metadata`]: an immutable snapshot of a Metadata response, swapped whole on refresh;
//! - [`pool`]: connections by broker id, reconnecting with exponential backoff and jitter;
//! - [`backoff`]: that backoff.

pub mod backoff;
pub mod metadata;
pub mod pool;

pub use metadata::{BrokerInfo, ClusterMetadata, PartitionInfo, TopicInfo};
pub use pool::ConnectionPool;
