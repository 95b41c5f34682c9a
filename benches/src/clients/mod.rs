//! The three clients, each driven the way its documentation recommends for throughput, over
//! the same data: [`kingest`] (kingest-client), [`rdkafka`] (librdkafka through the `rdkafka`
//! crate's `BaseProducer` and `BaseConsumer`) and [`rskafka`].
//!
//! Settings that bound memory or batch size are the same for all three where the client has
//! them, so that neither throughput nor peak RSS comes from a bigger buffer:
//!
//! | setting | value | kingest | librdkafka | rskafka |
//! |---|---|---|---|---|
//! | producer batch | 1 MB | `batch_size` | `batch.size` (+ `batch.num.messages` 100000) | `RecordAggregator::new` |
//! | linger | 5 ms | `linger` | `linger.ms` | `with_linger` |
//! | producer buffer | 32 MiB | `buffer_memory` (default) | `queue.buffering.max.kbytes` | none (in-flight window) |
//! | acks / idempotence | all / on | default | `acks`, `enable.idempotence` | acks all, no idempotence |
//! | fetch per partition | 10 MiB | `max_partition_fetch_bytes` | `max.partition.fetch.bytes` | `with_max_batch_size` |
//! | consumer buffer | 64 MiB | `max_buffered_bytes` (default) | `queued.max.messages.kbytes` (default; `queued.min.messages` 1000000, `fetch.queue.backoff.ms` 10) | none (one fetch per partition) |
//! | CRC checks | on | `check_crcs` (default) | `check.crcs` | always |

pub mod kingest;
pub mod rdkafka;
pub mod rskafka;

use std::time::Duration;

use crate::spec::{ClientKind, Mode, RunResult, RunSpec};
use crate::Error;

/// Producer batch size, bytes.
pub const BATCH_BYTES: usize = 1_000_000;
/// Producer linger.
pub const LINGER: Duration = Duration::from_millis(5);
/// Producer buffer, bytes.
pub const PRODUCER_BUFFER_BYTES: usize = 32 << 20;
/// Most bytes one partition returns per fetch.
pub const PARTITION_FETCH_BYTES: usize = 10 << 20;
/// Most bytes per fetch response.
pub const FETCH_MAX_BYTES: usize = 50 << 20;
/// Consumer buffer, bytes.
pub const CONSUMER_BUFFER_BYTES: usize = 64 << 20;
/// A run fails when no record arrives or is acknowledged for this long.
pub const STALL: Duration = Duration::from_secs(60);

/// Runs `spec` in this process and reports its data phase.
pub fn run(spec: &RunSpec) -> Result<RunResult, Error> {
    if spec.mode == Mode::Produce && spec.records < 2 {
        return Err(Error::Run(format!(
            "producing needs at least 2 records (the first is a warm-up), not {}",
            spec.records
        )));
    }
    match (spec.client, spec.mode) {
        (ClientKind::Rdkafka, Mode::Consume) => rdkafka::consume(spec),
        (ClientKind::Rdkafka, Mode::Produce) => rdkafka::produce(spec),
        (ClientKind::Kingest, mode) => runtime()?.block_on(async {
            match mode {
                Mode::Consume => kingest::consume(spec).await,
                Mode::Produce => kingest::produce(spec).await,
            }
        }),
        (ClientKind::Rskafka, mode) => runtime()?.block_on(async {
            match mode {
                Mode::Consume => rskafka::consume(spec).await,
                Mode::Produce => rskafka::produce(spec).await,
            }
        }),
    }
}

/// The runtime the async clients run on: tokio's multi-threaded default (one worker per core),
/// as an application would have.
fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Io {
            context: "starting the tokio runtime".into(),
            source: e,
        })
}

/// The error for a run that stopped short.
pub(crate) fn short(spec: &RunSpec, done: u64, why: &str) -> Error {
    Error::Run(format!(
        "{} {} on topic {}: {why} after {done} of {} records",
        spec.client.label(),
        spec.mode.name(),
        spec.topic,
        spec.records
    ))
}
