//! librdkafka through the `rdkafka` crate: `BaseConsumer` polled message by message and
//! `BaseProducer` polled for delivery reports, the crate's lowest-overhead API, with the
//! throughput settings of librdkafka's INTRODUCTION.md ("High throughput": larger batches, a
//! linger, larger fetches) and the memory bounds of the table in the [module above](super).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kingest::cli::bench::payload::Payloads;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use super::{
    short, BATCH_BYTES, CONSUMER_BUFFER_BYTES, FETCH_MAX_BYTES, LINGER, PARTITION_FETCH_BYTES,
    PRODUCER_BUFFER_BYTES, STALL,
};
use crate::spec::{RunResult, RunSpec};
use crate::Error;

/// A configuration with librdkafka's `debug` contexts from `BENCH_RDKAFKA_DEBUG` (for
/// example `consumer,fetch`), when set.
fn config() -> ClientConfig {
    let mut c = ClientConfig::new();
    if let Ok(contexts) = std::env::var("BENCH_RDKAFKA_DEBUG") {
        c.set("debug", contexts);
    }
    c
}

/// Reads the topic's partitions from the beginning until `spec.records` records.
pub fn consume(spec: &RunSpec) -> Result<RunResult, Error> {
    let consumer: BaseConsumer = config()
        .set("bootstrap.servers", &spec.brokers)
        .set("group.id", "side-by-side")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .set("fetch.max.bytes", FETCH_MAX_BYTES.to_string())
        .set(
            "max.partition.fetch.bytes",
            PARTITION_FETCH_BYTES.to_string(),
        )
        .set(
            "queued.max.messages.kbytes",
            (CONSUMER_BUFFER_BYTES / 1024).to_string(),
        )
        // With the defaults (queued.min.messages 100000 per partition, fetch.queue.backoff.ms
        // 1000) small records fill the per-partition queue threshold at once and every fetcher
        // then pauses for a second: librdkafka sat idle most of a 100 B run (1.1 s of CPU in
        // 8 s). CONFIGURATION.md says to lower the backoff when that happens; the byte bound
        // above is what bounds memory.
        .set("queued.min.messages", "1000000")
        .set("fetch.queue.backoff.ms", "10")
        .set("check.crcs", "true")
        .create()?;
    // Warm up: with the topic's leaders unknown at `assign`, librdkafka arms a 500 ms timer
    // before its first offset query; a start-up cost, not a throughput one.
    consumer.fetch_metadata(Some(&spec.topic), STALL)?;
    let mut tpl = TopicPartitionList::new();
    for p in 0..spec.partitions {
        tpl.add_partition_offset(&spec.topic, p, Offset::Beginning)?;
    }
    consumer.assign(&tpl)?;
    let start = Instant::now();
    let (mut records, mut bytes) = (0u64, 0u64);
    while records < spec.records {
        match consumer.poll(STALL) {
            Some(Ok(m)) => {
                records += 1;
                bytes += m.payload().map_or(0, <[u8]>::len) as u64;
            }
            Some(Err(e)) => return Err(e.into()),
            None => return Err(short(spec, records, "nothing arrived for 60 s")),
        }
    }
    Ok(RunResult {
        records,
        bytes,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// Counts failed deliveries (a delivery report per message, served by `poll`).
#[derive(Default)]
struct Reports {
    delivered: AtomicU64,
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl ClientContext for Reports {}

impl ProducerContext for Reports {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => {
                self.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Err((e, _)) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                let mut first = self.first_error.lock().unwrap_or_else(|p| p.into_inner());
                first.get_or_insert_with(|| e.to_string());
            }
        }
    }
}

/// Sends `spec.records` keyless records and waits for every delivery report; the first one is
/// a warm-up, outside the reported figures.
pub fn produce(spec: &RunSpec) -> Result<RunResult, Error> {
    let producer: BaseProducer<Reports> = config()
        .set("bootstrap.servers", &spec.brokers)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("compression.codec", spec.codec.name())
        .set("linger.ms", LINGER.as_millis().to_string())
        .set("batch.size", BATCH_BYTES.to_string())
        .set("batch.num.messages", "100000")
        .set(
            "queue.buffering.max.kbytes",
            (PRODUCER_BUFFER_BYTES / 1024).to_string(),
        )
        // The byte bound above is the one that matters; the message-count bound (100,000 by
        // default) would otherwise cap 100 B records at 10 MB buffered.
        .set("queue.buffering.max.messages", "10000000")
        .create_with_context(Reports::default())?;
    let mut payloads = Payloads::new(spec.record_size, spec.seed);
    // Warm up: the first record goes alone and its report is awaited before the clock starts,
    // so that connecting, metadata and the producer id are not counted (librdkafka may wait
    // 500 ms for a producer id when its first metadata arrives before the connection is up).
    let first = payloads.next_value();
    send(&producer, BaseRecord::to(&spec.topic).payload(&first[..]))?;
    wait_for_reports(&producer, spec)?;
    let start = Instant::now();
    let mut bytes = 0u64;
    for i in 1..spec.records {
        let value = payloads.next_value();
        bytes += value.len() as u64;
        send(&producer, BaseRecord::to(&spec.topic).payload(&value[..]))?;
        if i % 1024 == 0 {
            producer.poll(Duration::ZERO);
        }
    }
    wait_for_reports(&producer, spec)?;
    let seconds = start.elapsed().as_secs_f64();
    let reports = producer.context();
    let failed = reports.failed.load(Ordering::Relaxed);
    if failed > 0 {
        let first = reports
            .first_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .unwrap_or_default();
        return Err(Error::Run(format!(
            "librdkafka produce to topic {}: {failed} of {} records failed; the first: {first}",
            spec.topic, spec.records
        )));
    }
    let delivered = reports.delivered.load(Ordering::Relaxed);
    if delivered != spec.records {
        return Err(short(spec, delivered, "delivery reports are missing"));
    }
    Ok(RunResult {
        records: delivered - 1,
        bytes,
        seconds,
    })
}

/// Enqueues a record, serving delivery reports while the buffer is full.
fn send(
    producer: &BaseProducer<Reports>,
    mut record: BaseRecord<'_, (), [u8]>,
) -> Result<(), Error> {
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                record = r;
                producer.poll(Duration::from_millis(1));
            }
            Err((e, _)) => return Err(e.into()),
        }
    }
}

/// Waits for every delivery report. `flush` would too, but sleeps up to 100 ms between its
/// checks, which would count against librdkafka in short runs.
fn wait_for_reports(producer: &BaseProducer<Reports>, spec: &RunSpec) -> Result<(), Error> {
    let mut progress = (Instant::now(), producer.in_flight_count());
    while producer.in_flight_count() > 0 {
        producer.poll(Duration::from_millis(1));
        let left = producer.in_flight_count();
        if left != progress.1 {
            progress = (Instant::now(), left);
        } else if progress.0.elapsed() > STALL {
            let left = u64::try_from(left).unwrap_or(0);
            return Err(short(
                spec,
                spec.records.saturating_sub(left),
                "no delivery report for 60 s",
            ));
        }
    }
    Ok(())
}
