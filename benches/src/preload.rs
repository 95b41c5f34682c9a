//! Topics and data for the runs, through kingest-client: creating and deleting topics,
//! preloading a topic that every consumer then reads, and counting what a producer wrote.

use std::time::{Duration, Instant};

use kingest::cli::bench::payload::Payloads;
use kingest_client::admin::{Admin, NewTopic, OffsetSpec};
use kingest_client::producer::{Producer, ProducerConfig, ProducerRecord};
use kingest_client::{Client, ClientConfig};

use crate::clients::{BATCH_BYTES, LINGER};
use crate::spec::Codec;
use crate::Error;

async fn admin(brokers: &str) -> Result<Admin, Error> {
    Ok(Admin::new(
        Client::connect(ClientConfig::new(brokers)).await?,
    ))
}

/// Creates `topic` with `partitions` partitions and waits until every partition has a leader.
pub async fn create_topic(brokers: &str, topic: &str, partitions: i32) -> Result<(), Error> {
    let admin = admin(brokers).await?;
    admin
        .create_topics_if_missing(&[NewTopic::new(topic, partitions)])
        .await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ready = admin.client().refresh_metadata(&[topic]).await.is_ok()
            && admin.client().partition_count(topic).await.ok() == Some(partitions as usize);
        if ready {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(Error::Run(format!(
                "topic {topic} has no leaders for its {partitions} partitions after 30 s"
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Deletes `topic` (to give the broker its memory back between runs).
pub async fn delete_topic(brokers: &str, topic: &str) -> Result<(), Error> {
    for (_, outcome) in admin(brokers).await?.delete_topics(&[topic]).await? {
        outcome?;
    }
    Ok(())
}

/// The sum of `topic`'s end offsets: how many records were written to it (no transactions, no
/// compaction).
pub async fn record_count(brokers: &str, topic: &str, partitions: i32) -> Result<u64, Error> {
    let specs: Vec<(&str, i32, OffsetSpec)> = (0..partitions)
        .map(|p| (topic, p, OffsetSpec::Latest))
        .collect();
    let listed = admin(brokers).await?.list_offsets(&specs, false).await?;
    Ok(listed.values().map(|o| o.offset.max(0) as u64).sum())
}

/// Writes `records` values of `record_size` bytes from `seed` to `topic` in 1 MB batches
/// compressed with `codec`: the data every consumer reads.
pub async fn preload(
    brokers: &str,
    topic: &str,
    records: u64,
    record_size: usize,
    codec: Codec,
    seed: u64,
) -> Result<(), Error> {
    let client = Client::connect(ClientConfig::new(brokers)).await?;
    let producer = Producer::new(client, {
        let mut config = ProducerConfig::default();
        config.batch_size = BATCH_BYTES;
        config.linger = LINGER;
        config.compression = codec.compression();
        config
    })?;
    let mut payloads = Payloads::new(record_size, seed);
    let mut pending = Vec::new();
    for _ in 0..records {
        let record = ProducerRecord {
            topic: topic.to_owned(),
            value: Some(payloads.next_value()),
            ..ProducerRecord::default()
        };
        pending.push(producer.send(record).await?);
        if pending.len() >= 100_000 {
            for d in pending.drain(..) {
                d.await?;
            }
        }
    }
    for d in pending {
        d.await?;
    }
    producer.close().await?;
    Ok(())
}
