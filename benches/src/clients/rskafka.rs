//! rskafka: one `PartitionClient` per partition, read through its `StreamConsumer` and written
//! through its `BatchProducer` with a `RecordAggregator` — the setup of rskafka's own
//! throughput benchmark (1 MB batches, a linger, many `produce` futures polled together).
//!
//! rskafka has no partitioner (records go round-robin over the partitions here), no
//! idempotence (it always asks for acks=all), and owns every value as a `Vec<u8>`, so a value
//! is copied into each record.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::stream::{select_all, FuturesUnordered};
use futures_util::StreamExt;
use kingest::cli::bench::payload::Payloads;
use rskafka::chrono::{DateTime, Utc};
use rskafka::client::consumer::{StartOffset, StreamConsumerBuilder};
use rskafka::client::partition::{Compression, PartitionClient, UnknownTopicHandling};
use rskafka::client::producer::aggregator::RecordAggregator;
use rskafka::client::producer::{BatchProducer, BatchProducerBuilder};
use rskafka::client::{Client, ClientBuilder};
use rskafka::record::Record;
use rskafka::BackoffConfig;

use super::{short, BATCH_BYTES, LINGER, PARTITION_FETCH_BYTES, STALL};
use crate::spec::{Codec, RunResult, RunSpec};
use crate::Error;

/// rskafka's aggregator counts keys, values and headers only, not the record framing (about
/// 10 bytes per 100 B record), so a 1 MB aggregate of small records encodes to more than a
/// broker's default `message.max.bytes` (1 MiB; nisshi refuses it with MESSAGE_TOO_LARGE).
/// 80% of the batch size keeps every batch under it.
const RSKAFKA_BATCH_BYTES: usize = BATCH_BYTES * 8 / 10;

async fn connect(spec: &RunSpec) -> Result<Client, Error> {
    let brokers = spec.brokers.split(',').map(str::to_owned).collect();
    // Retries give up after 10 s (rskafka retries forever by default), so that a broker it
    // cannot talk to shows up as an error rather than as a stall.
    let backoff = BackoffConfig {
        deadline: Some(Duration::from_secs(10)),
        ..BackoffConfig::default()
    };
    Ok(ClientBuilder::new(brokers)
        .backoff_config(backoff)
        .build()
        .await?)
}

async fn partition_clients(
    client: &Client,
    spec: &RunSpec,
) -> Result<Vec<Arc<PartitionClient>>, Error> {
    let mut out = Vec::new();
    for p in 0..spec.partitions {
        out.push(Arc::new(
            client
                .partition_client(spec.topic.clone(), p, UnknownTopicHandling::Retry)
                .await?,
        ));
    }
    Ok(out)
}

/// Reads the topic's partitions from the beginning until `spec.records` records.
pub async fn consume(spec: &RunSpec) -> Result<RunResult, Error> {
    let client = connect(spec).await?;
    let streams: Vec<_> = partition_clients(&client, spec)
        .await?
        .into_iter()
        .map(|pc| {
            StreamConsumerBuilder::new(pc, StartOffset::Earliest)
                .with_max_batch_size(PARTITION_FETCH_BYTES as i32)
                .build()
        })
        .collect();
    let mut all = select_all(streams);
    let start = Instant::now();
    let (mut records, mut bytes) = (0u64, 0u64);
    while records < spec.records {
        match tokio::time::timeout(STALL, all.next()).await {
            Ok(Some(Ok((r, _high_watermark)))) => {
                records += 1;
                bytes += r.record.value.as_ref().map_or(0, Vec::len) as u64;
            }
            Ok(Some(Err(e))) => return Err(e.into()),
            Ok(None) => return Err(short(spec, records, "the streams ended")),
            Err(_) => return Err(short(spec, records, "nothing arrived for 60 s")),
        }
    }
    Ok(RunResult {
        records,
        bytes,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// An rskafka record: the value copied (rskafka owns values as `Vec<u8>`), timestamped now.
fn record(value: &[u8]) -> Record {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    Record {
        key: None,
        value: Some(value.to_vec()),
        headers: BTreeMap::new(),
        timestamp: DateTime::<Utc>::from_timestamp_millis(now_ms).unwrap_or_default(),
    }
}

fn compression(codec: Codec) -> Compression {
    match codec {
        Codec::None => Compression::NoCompression,
        Codec::Lz4 => Compression::Lz4,
        Codec::Zstd => Compression::Zstd,
    }
}

/// Sends `spec.records` keyless records, round-robin over the partitions, and waits for every
/// acknowledgement; the first one is a warm-up, outside the reported figures.
pub async fn produce(spec: &RunSpec) -> Result<RunResult, Error> {
    let client = connect(spec).await?;
    let producers: Vec<BatchProducer<RecordAggregator>> = partition_clients(&client, spec)
        .await?
        .into_iter()
        .map(|pc| {
            BatchProducerBuilder::new(pc)
                .with_linger(LINGER)
                .with_compression(compression(spec.codec))
                .build(RecordAggregator::new(RSKAFKA_BATCH_BYTES))
        })
        .collect();
    // Enough futures in flight for two full batches per partition: one being written, one
    // filling.
    let window = (2 * producers.len() * BATCH_BYTES / spec.record_size.max(1)).max(1024);
    let mut payloads = Payloads::new(spec.record_size, spec.seed);
    // Warm up: the first record goes alone and is acknowledged before the clock starts, as for
    // the other clients.
    producers[0].produce(record(&payloads.next_value())).await?;
    let mut in_flight = FuturesUnordered::new();
    let start = Instant::now();
    let mut bytes = 0u64;
    let mut acked = 0u64;
    for i in 1..spec.records {
        let value = payloads.next_value();
        bytes += value.len() as u64;
        let record = record(&value);
        let producer = &producers[(i % producers.len() as u64) as usize];
        in_flight.push(producer.produce(record));
        while in_flight.len() >= window {
            match tokio::time::timeout(STALL, in_flight.next()).await {
                Ok(Some(outcome)) => {
                    outcome?;
                    acked += 1;
                }
                Ok(None) => break,
                Err(_) => return Err(short(spec, acked, "no acknowledgement for 60 s")),
            }
        }
    }
    loop {
        match tokio::time::timeout(STALL, in_flight.next()).await {
            Ok(Some(outcome)) => {
                outcome?;
                acked += 1;
            }
            Ok(None) => break,
            Err(_) => return Err(short(spec, acked, "no acknowledgement for 60 s")),
        }
    }
    Ok(RunResult {
        records: acked,
        bytes,
        seconds: start.elapsed().as_secs_f64(),
    })
}
