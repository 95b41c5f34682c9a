//! testkit's in-memory Kafka cluster (`kingest_testkit::Cluster`) as the tests start it, and
//! the leadership moves they make it do, for the tests of our client and of librdkafka against
//! it.

use kingest_testkit::{Cluster, ClusterConfig};

/// A plaintext cluster of `brokers` brokers, otherwise with testkit's defaults.
pub async fn start_cluster(brokers: usize) -> Cluster {
    Cluster::start(ClusterConfig {
        brokers,
        ..Default::default()
    })
    .await
    .expect("start a testkit cluster")
}

/// Moves the leadership of `topic`'s `partition` from its leader to another broker (bumping
/// the leader epoch, so the old leader answers `NOT_LEADER_OR_FOLLOWER` or
/// `FENCED_LEADER_EPOCH`); returns the old leader and the new. The cluster needs two brokers.
pub fn move_leader_away(cluster: &Cluster, topic: &str, partition: i32) -> (i32, i32) {
    let old = cluster
        .leader(topic, partition)
        .unwrap_or_else(|| panic!("{topic}-{partition} has no leader"));
    let new = cluster
        .broker_ids()
        .into_iter()
        .find(|b| *b != old)
        .expect("a second broker");
    cluster
        .move_leader(topic, partition, new)
        .unwrap_or_else(|e| panic!("move {topic}-{partition} to broker {new}: {e:?}"));
    (old, new)
}
