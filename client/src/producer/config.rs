//! Producer settings, named after the Java producer's, with its defaults, and the checks that
//! reject combinations the Java producer rejects (idempotence needs acks=all and at most five
//! requests in flight per connection; transactions need idempotence).

use std::time::Duration;

use kingest_protocol::record::Compression;

use crate::error::{ClientError, Result};
use crate::partitioner::Partitioner;

/// How many replicas must have a record before the broker answers (`acks`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Acks {
    /// `acks=0`: the broker never answers; delivery is not confirmed and offsets are unknown.
    None,
    /// `acks=1`: the leader wrote it.
    Leader,
    /// `acks=all` (-1): every in-sync replica has it. Required by idempotence.
    #[default]
    All,
}

impl Acks {
    /// The value of the ProduceRequest `acks` field.
    pub fn wire(self) -> i16 {
        match self {
            Acks::None => 0,
            Acks::Leader => 1,
            Acks::All => -1,
        }
    }
}

/// Producer settings. Field names follow the Java producer's configuration keys.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ProducerConfig {
    /// How long a batch may wait for more records before it is sent (`linger.ms`; 5 ms, the
    /// Java default since Kafka 4.0).
    pub linger: Duration,
    /// The target size of a batch in bytes, uncompressed (`batch.size`, 16384). A record larger
    /// than this gets a batch of its own.
    pub batch_size: usize,
    /// The codec batches are compressed with (`compression.type`, none).
    pub compression: Compression,
    /// The codec's level (`compression.gzip.level`, `compression.zstd.level`...); `None` for the
    /// codec's default.
    pub compression_level: Option<i32>,
    /// How many replicas must acknowledge (`acks`, all).
    pub acks: Acks,
    /// Idempotent delivery: a producer id and per-partition sequence numbers, so that retries
    /// never duplicate or reorder records (`enable.idempotence`, on). Needs `acks` all and
    /// `max_in_flight` at most 5.
    pub idempotence: bool,
    /// How many times a failed batch is sent again (`retries`, effectively unlimited: the
    /// delivery timeout is what bounds retrying).
    pub retries: u32,
    /// The first wait before a retry (`retry.backoff.ms`, 100 ms); it doubles per attempt.
    pub retry_backoff: Duration,
    /// The longest wait before a retry (`retry.backoff.max.ms`, 1 s).
    pub retry_backoff_max: Duration,
    /// How long a record may take, from `send` to its acknowledgement, retries included
    /// (`delivery.timeout.ms`, 120 s).
    pub delivery_timeout: Duration,
    /// Produce requests awaiting a response per broker connection
    /// (`max.in.flight.requests.per.connection`, 5).
    pub max_in_flight: usize,
    /// Bytes of records buffered and not yet acknowledged (`buffer.memory`, 32 MiB); when full,
    /// `send` waits.
    pub buffer_memory: usize,
    /// How long `send` may wait for buffer space or for the topic's metadata (`max.block.ms`,
    /// 60 s).
    pub max_block: Duration,
    /// The largest produce request, and so the largest record (`max.request.size`, 1 MiB).
    pub max_request_size: usize,
    /// How partitions are chosen for records that do not name one (`partitioner.class`).
    pub partitioner: Partitioner,
    /// Makes the producer transactional (`transactional.id`, none): records are sent inside
    /// transactions (`init_transactions`, `begin_transaction`, `commit_transaction`,
    /// `abort_transaction`) that read_committed consumers see whole or not at all. One producer
    /// per id at a time: a new one with the same id fences the old. Needs idempotence.
    pub transactional_id: Option<String>,
    /// How long a transaction may stay open before the coordinator aborts it and fences the
    /// producer (`transaction.timeout.ms`, 60 s; brokers refuse more than their
    /// `transaction.max.timeout.ms`, 15 minutes by default).
    pub transaction_timeout: Duration,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        Self {
            linger: Duration::from_millis(5),
            batch_size: 16 * 1024,
            compression: Compression::None,
            compression_level: None,
            acks: Acks::All,
            idempotence: true,
            retries: u32::MAX,
            retry_backoff: Duration::from_millis(100),
            retry_backoff_max: Duration::from_secs(1),
            delivery_timeout: Duration::from_secs(120),
            max_in_flight: 5,
            buffer_memory: 32 * 1024 * 1024,
            max_block: Duration::from_secs(60),
            max_request_size: 1024 * 1024,
            partitioner: Partitioner::Default,
            transactional_id: None,
            transaction_timeout: Duration::from_secs(60),
        }
    }
}

/// The most requests in flight per connection an idempotent producer may have: brokers keep the
/// metadata of the last five batches per producer and partition to detect duplicates.
pub const MAX_IDEMPOTENT_IN_FLIGHT: usize = 5;

impl ProducerConfig {
    /// Checks the settings, as the Java producer does when it is built.
    pub fn validate(&self) -> Result<()> {
        let fail = |msg: String| Err(ClientError::Config(msg));
        if self.idempotence && self.acks != Acks::All {
            return fail(format!(
                "idempotence requires acks=all, got {:?}; set idempotence to false to use other acks",
                self.acks
            ));
        }
        if self.idempotence && self.max_in_flight > MAX_IDEMPOTENT_IN_FLIGHT {
            return fail(format!(
                "idempotence requires max_in_flight <= {MAX_IDEMPOTENT_IN_FLIGHT}, got {}",
                self.max_in_flight
            ));
        }
        if self.idempotence && self.retries == 0 {
            return fail("idempotence requires retries > 0".to_owned());
        }
        if self.max_in_flight == 0 {
            return fail("max_in_flight must be at least 1".to_owned());
        }
        if self.batch_size == 0 {
            return fail("batch_size must be at least 1".to_owned());
        }
        if self.buffer_memory == 0 || self.buffer_memory > u32::MAX as usize {
            return fail(format!(
                "buffer_memory must be between 1 and {} bytes",
                u32::MAX
            ));
        }
        if self.max_request_size == 0 || self.max_request_size > i32::MAX as usize {
            return fail("max_request_size must be between 1 byte and 2 GiB".to_owned());
        }
        if let Some(id) = &self.transactional_id {
            if id.is_empty() {
                return fail("transactional_id must not be empty".to_owned());
            }
            if !self.idempotence {
                return fail(
                    "a transactional producer (transactional_id) requires idempotence".to_owned(),
                );
            }
            if self.transaction_timeout.is_zero()
                || self.transaction_timeout.as_millis() > i32::MAX as u128
            {
                return fail("transaction_timeout must be between 1 ms and 24 days".to_owned());
            }
        }
        if self.delivery_timeout.is_zero() {
            return fail("delivery_timeout must be positive".to_owned());
        }
        Ok(())
    }

    /// The size at which a batch is closed: `batch_size`, but never above what one request may
    /// carry.
    pub(crate) fn effective_batch_size(&self) -> usize {
        self.batch_size.min(self.max_request_size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_java_and_validate() {
        let c = ProducerConfig::default();
        assert!(c.validate().is_ok());
        assert_eq!(c.acks.wire(), -1);
        assert_eq!(c.batch_size, 16384);
        assert_eq!(c.delivery_timeout, Duration::from_secs(120));
        assert_eq!(c.max_in_flight, 5);
        assert_eq!(c.buffer_memory, 32 << 20);
        assert!(c.idempotence);
    }

    #[test]
    fn idempotence_rejects_weak_acks_and_deep_pipelines() {
        let acks1 = ProducerConfig {
            acks: Acks::Leader,
            ..Default::default()
        };
        let err = acks1.validate().unwrap_err().to_string();
        assert!(err.contains("acks=all"), "{err}");
        let deep = ProducerConfig {
            max_in_flight: 6,
            ..Default::default()
        };
        assert!(deep
            .validate()
            .unwrap_err()
            .to_string()
            .contains("max_in_flight"));
        let plain = ProducerConfig {
            acks: Acks::None,
            idempotence: false,
            max_in_flight: 50,
            ..Default::default()
        };
        assert!(plain.validate().is_ok());
        assert_eq!(Acks::None.wire(), 0);
        assert_eq!(Acks::Leader.wire(), 1);
    }

    #[test]
    fn batch_size_is_capped_by_request_size() {
        let c = ProducerConfig {
            batch_size: 10 << 20,
            max_request_size: 1 << 20,
            ..Default::default()
        };
        assert_eq!(c.effective_batch_size(), 1 << 20);
    }
}
