//! kingest-client: `Producer` and `PartitionConsumer`.

use std::collections::VecDeque;
use std::time::Instant;

use futures_util::FutureExt;
use kingest::cli::bench::payload::Payloads;
use kingest_client::consumer::{ConsumerConfig, OffsetReset, PartitionConsumer, StartAt};
use kingest_client::producer::{Acks, Producer, ProducerConfig, ProducerRecord};
use kingest_client::{Client, ClientConfig};

use super::{short, BATCH_BYTES, FETCH_MAX_BYTES, LINGER, PARTITION_FETCH_BYTES, STALL};
use crate::spec::{RunResult, RunSpec};
use crate::Error;

/// Reads the topic's partitions from the beginning until `spec.records` records.
pub async fn consume(spec: &RunSpec) -> Result<RunResult, Error> {
    let client = Client::connect(ClientConfig::new(&spec.brokers)).await?;
    let mut config = ConsumerConfig::default();
    config.max_partition_fetch_bytes = PARTITION_FETCH_BYTES;
    config.fetch_max_bytes = FETCH_MAX_BYTES;
    config.check_crcs = true;
    config.offset_reset = OffsetReset::Earliest;
    let mut consumer = PartitionConsumer::new(client, config)?;
    let partitions: Vec<(&str, i32, StartAt)> = (0..spec.partitions)
        .map(|p| (spec.topic.as_str(), p, StartAt::Earliest))
        .collect();
    consumer.assign(&partitions).await?;
    let start = Instant::now();
    let (mut records, mut bytes) = (0u64, 0u64);
    while records < spec.records {
        let fetched = consumer.poll_timeout(STALL).await?;
        if fetched.is_empty() {
            return Err(short(spec, records, "nothing arrived for 60 s"));
        }
        for r in fetched.records() {
            records += 1;
            bytes += r.value.map_or(0, <[u8]>::len) as u64;
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    consumer.close();
    Ok(RunResult {
        records,
        bytes,
        seconds,
    })
}

/// Sends `spec.records` keyless records and waits for every acknowledgement; the first one is
/// a warm-up, outside the reported figures.
pub async fn produce(spec: &RunSpec) -> Result<RunResult, Error> {
    let client = Client::connect(ClientConfig::new(&spec.brokers)).await?;
    let mut config = ProducerConfig::default();
    config.batch_size = BATCH_BYTES;
    config.linger = LINGER;
    config.compression = spec.codec.compression();
    config.acks = Acks::All;
    config.idempotence = true;
    let producer = Producer::new(client, config)?;
    let mut payloads = Payloads::new(spec.record_size, spec.seed);
    // Warm up: the first record goes alone and is acknowledged before the clock starts
    // (metadata, connection, producer id), as for the other clients.
    let first = ProducerRecord {
        topic: spec.topic.clone(),
        value: Some(payloads.next_value()),
        ..ProducerRecord::default()
    };
    producer.send(first).await?.await?;
    let start = Instant::now();
    let mut pending = VecDeque::new();
    let mut bytes = 0u64;
    for i in 1..spec.records {
        let value = payloads.next_value();
        bytes += value.len() as u64;
        let record = ProducerRecord {
            topic: spec.topic.clone(),
            value: Some(value),
            ..ProducerRecord::default()
        };
        pending.push_back(producer.send(record).await?);
        if i % 1024 == 0 {
            // Settle the reports already in, so that memory holds only what is in flight.
            while let Some(front) = pending.front_mut() {
                match front.now_or_never() {
                    Some(outcome) => {
                        outcome?;
                        pending.pop_front();
                    }
                    None => break,
                }
            }
        }
    }
    for delivery in pending {
        delivery.await?;
    }
    let seconds = start.elapsed().as_secs_f64();
    producer.close().await?;
    Ok(RunResult {
        records: spec.records - 1,
        bytes,
        seconds,
    })
}
