//! A producer batch from its first record to its delivery report.
//!
//! * [`OpenBatch`]: records are appended straight into a [`BatchBuilder`] (one growing buffer
//!   per batch, no per-record allocation).
//! * [`ProducerBatch`]: the closed batch, compressed and framed once, then sent (and perhaps
//!   resent) as one `Bytes`. The idempotent producer's id, epoch and base sequence are stamped
//!   into its header when it is drained, by patching the header fields and the CRC, so that the
//!   expensive part (compression) happens once even when a new epoch renumbers the batch.
//! * [`BatchShared`]: the completion every record of the batch shares. Each record's
//!   [`DeliveryFuture`] is this `Arc` plus the record's index and timestamp, so delivery
//!   reporting costs one allocation per batch, not per record.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use kingest_protocol::record::{stamp_producer, BatchBuilder};

use super::idempotence::{ProducerIdEpoch, TopicPartition};
use crate::error::ClientError;

/// Where a record landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMetadata {
    /// The topic.
    pub topic: Arc<str>,
    /// The partition.
    pub partition: i32,
    /// The record's offset: the batch's base offset from the broker plus the record's index in
    /// the batch; -1 with `acks=0`, when the broker does not say.
    pub offset: i64,
    /// The record's timestamp: its create time, or the broker's log-append time when the topic
    /// is configured with `LogAppendTime`.
    pub timestamp: i64,
}

/// How a batch ended.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Written at `base_offset` (-1: unknown); `log_append_time` -1 unless the broker set it.
    Delivered {
        base_offset: i64,
        log_append_time: i64,
    },
    /// Failed; every record reports (a copy of) this error.
    Failed(Arc<ClientError>),
}

/// The completion shared by the records of one batch.
#[derive(Debug)]
pub(crate) struct BatchShared {
    topic: Arc<str>,
    partition: i32,
    outcome: OnceLock<Outcome>,
    /// Tasks waiting for the outcome. Registered under the lock after re-checking `outcome`, and
    /// taken under the lock after setting it, so no wake-up is lost.
    wakers: Mutex<Vec<Waker>>,
}

impl BatchShared {
    pub(crate) fn new(topic: Arc<str>, partition: i32) -> Arc<Self> {
        Arc::new(Self {
            topic,
            partition,
            outcome: OnceLock::new(),
            wakers: Mutex::new(Vec::new()),
        })
    }

    /// Sets the outcome (the first one wins) and wakes every waiter.
    pub(crate) fn complete(&self, outcome: Outcome) {
        if self.outcome.set(outcome).is_ok() {
            let wakers =
                std::mem::take(&mut *self.wakers.lock().unwrap_or_else(|e| e.into_inner()));
            for w in wakers {
                w.wake();
            }
        }
    }

    pub(crate) fn is_done(&self) -> bool {
        self.outcome.get().is_some()
    }

    /// Polls for the outcome; `slot` remembers this waiter's place among the wakers.
    fn poll_outcome(&self, cx: &mut Context<'_>, slot: &mut Option<usize>) -> Poll<&Outcome> {
        if let Some(o) = self.outcome.get() {
            return Poll::Ready(o);
        }
        let mut wakers = self.wakers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(o) = self.outcome.get() {
            return Poll::Ready(o);
        }
        match *slot {
            Some(i) if i < wakers.len() => {
                if !wakers[i].will_wake(cx.waker()) {
                    wakers[i] = cx.waker().clone();
                }
            }
            _ => {
                *slot = Some(wakers.len());
                wakers.push(cx.waker().clone());
            }
        }
        Poll::Pending
    }

    /// Waits until the batch has an outcome (for `flush`).
    pub(crate) async fn wait(&self) {
        let mut slot = None;
        std::future::poll_fn(|cx| self.poll_outcome(cx, &mut slot).map(|_| ())).await
    }
}

/// The delivery report of one record: resolves when the broker acknowledged (or the producer
/// gave up on) the record's batch. Dropping it does not cancel the send.
#[derive(Debug)]
#[must_use = "the record is sent anyway; await this to learn whether it was delivered"]
pub struct DeliveryFuture {
    shared: Arc<BatchShared>,
    index: i32,
    timestamp: i64,
    slot: Option<usize>,
}

impl DeliveryFuture {
    pub(crate) fn new(shared: Arc<BatchShared>, index: i32, timestamp: i64) -> Self {
        Self {
            shared,
            index,
            timestamp,
            slot: None,
        }
    }
}

impl Future for DeliveryFuture {
    type Output = Result<RecordMetadata, ClientError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let (index, timestamp) = (this.index, this.timestamp);
        let shared = this.shared.clone();
        match shared.poll_outcome(cx, &mut this.slot) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Outcome::Delivered {
                base_offset,
                log_append_time,
            }) => Poll::Ready(Ok(RecordMetadata {
                topic: shared.topic.clone(),
                partition: shared.partition,
                offset: if *base_offset >= 0 {
                    base_offset + i64::from(index)
                } else {
                    -1
                },
                timestamp: if *log_append_time >= 0 {
                    *log_append_time
                } else {
                    timestamp
                },
            })),
            Poll::Ready(Outcome::Failed(e)) => Poll::Ready(Err(clone_error(e))),
        }
    }
}

/// A copy of a batch's error for one of its records. `ClientError` is not `Clone` (it can hold
/// an `io::Error`); the variants a producer batch fails with are rebuilt field by field, and
/// anything else is shared behind [`ClientError::Shared`].
pub(crate) fn clone_error(e: &Arc<ClientError>) -> ClientError {
    match &**e {
        ClientError::ProducerFenced {
            transactional_id,
            reason,
        } => ClientError::ProducerFenced {
            transactional_id: transactional_id.clone(),
            reason: reason.clone(),
        },
        ClientError::TransactionAbortable {
            transactional_id,
            operation,
            reason,
        } => ClientError::TransactionAbortable {
            transactional_id: transactional_id.clone(),
            operation,
            reason: reason.clone(),
        },
        ClientError::Partition {
            broker,
            api,
            topic,
            partition,
            source,
        } => ClientError::Partition {
            broker: broker.clone(),
            api,
            topic: topic.clone(),
            partition: *partition,
            source: source.clone(),
        },
        ClientError::Topic {
            broker,
            api,
            topic,
            source,
        } => ClientError::Topic {
            broker: broker.clone(),
            api,
            topic: topic.clone(),
            source: source.clone(),
        },
        ClientError::Broker {
            broker,
            api,
            source,
        } => ClientError::Broker {
            broker: broker.clone(),
            api,
            source: source.clone(),
        },
        ClientError::DeliveryTimeout {
            topic,
            partition,
            timeout,
            last_error,
        } => ClientError::DeliveryTimeout {
            topic: topic.clone(),
            partition: *partition,
            timeout: *timeout,
            last_error: last_error.clone(),
        },
        ClientError::RecordTooLarge {
            topic,
            size,
            limit,
            setting,
        } => ClientError::RecordTooLarge {
            topic: topic.clone(),
            size: *size,
            limit: *limit,
            setting,
        },
        ClientError::Disconnected { broker, reason } => ClientError::Disconnected {
            broker: broker.clone(),
            reason: reason.clone(),
        },
        ClientError::Timeout {
            broker,
            api,
            timeout,
        } => ClientError::Timeout {
            broker: broker.clone(),
            api,
            timeout: *timeout,
        },
        ClientError::Protocol {
            broker,
            api,
            source,
        } => ClientError::Protocol {
            broker: broker.clone(),
            api,
            source: source.clone(),
        },
        ClientError::UnknownPartition { topic, partition } => ClientError::UnknownPartition {
            topic: topic.clone(),
            partition: *partition,
        },
        ClientError::NoLeader { topic, partition } => ClientError::NoLeader {
            topic: topic.clone(),
            partition: *partition,
        },
        ClientError::ProducerFatal { reason } => ClientError::ProducerFatal {
            reason: reason.clone(),
        },
        ClientError::Config(msg) => ClientError::Config(msg.clone()),
        ClientError::Closed => ClientError::Closed,
        _ => ClientError::Shared(e.clone()),
    }
}

/// A batch that failed before it was sent: its completion, its buffer memory and why.
#[derive(Debug)]
pub(crate) struct FailedBatch {
    pub(crate) shared: Arc<BatchShared>,
    pub(crate) reserved: usize,
    pub(crate) error: ClientError,
}

/// The batch records are being appended to.
#[derive(Debug)]
pub(crate) struct OpenBatch {
    pub(crate) id: u64,
    pub(crate) builder: BatchBuilder,
    pub(crate) created: Instant,
    pub(crate) shared: Arc<BatchShared>,
    /// Buffer-memory bytes its records hold, given back when the batch completes.
    pub(crate) reserved: usize,
}

impl OpenBatch {
    /// Compresses and frames the batch. On failure the batch's records fail with the error.
    pub(crate) fn close(self, tp: &TopicPartition) -> Result<ProducerBatch, Box<FailedBatch>> {
        let records = self.builder.len() as i32;
        let codec = self.builder.options().compression;
        let mut out = BytesMut::with_capacity(self.builder.size());
        match self.builder.finish_into(&mut out) {
            Ok(()) => Ok(ProducerBatch {
                id: self.id,
                tp: tp.clone(),
                data: BatchData::Fresh(out),
                records,
                created: self.created,
                attempts: 0,
                retry_at: None,
                drain_order: None,
                stamped: None,
                reserved: self.reserved,
                shared: self.shared,
                last_error: None,
            }),
            Err(e) => Err(Box::new(FailedBatch {
                shared: self.shared,
                reserved: self.reserved,
                error: ClientError::Config(format!(
                    "cannot build a {codec} batch for {}-{}: {e}",
                    tp.topic, tp.partition
                )),
            })),
        }
    }
}

/// A closed batch's bytes: still private (so its header can be patched in place) or shared
/// with a request.
#[derive(Debug)]
enum BatchData {
    Fresh(BytesMut),
    Sent(Bytes),
}

/// A closed batch, waiting to be sent, in flight, or waiting to be retried.
#[derive(Debug)]
pub(crate) struct ProducerBatch {
    pub(crate) id: u64,
    pub(crate) tp: TopicPartition,
    data: BatchData,
    pub(crate) records: i32,
    pub(crate) created: Instant,
    /// How many times it was sent.
    pub(crate) attempts: u32,
    /// Not before this instant (retry backoff).
    pub(crate) retry_at: Option<Instant>,
    /// Position in the order batches were first sent, which retries are re-queued by.
    pub(crate) drain_order: Option<u64>,
    /// The producer id, epoch and base sequence in its header now.
    pub(crate) stamped: Option<(ProducerIdEpoch, i32)>,
    pub(crate) reserved: usize,
    pub(crate) shared: Arc<BatchShared>,
    /// The last retriable error, for the delivery-timeout report.
    pub(crate) last_error: Option<String>,
}

impl ProducerBatch {
    /// Its size on the wire.
    pub(crate) fn size(&self) -> usize {
        match &self.data {
            BatchData::Fresh(b) => b.len(),
            BatchData::Sent(b) => b.len(),
        }
    }

    /// Writes the producer id, epoch and base sequence into the header and recomputes the CRC
    /// (which covers everything from the attributes on).
    pub(crate) fn stamp(&mut self, pid: ProducerIdEpoch, base_sequence: i32, transactional: bool) {
        if self.stamped == Some((pid, base_sequence)) {
            return;
        }
        let mut buf = match std::mem::replace(&mut self.data, BatchData::Sent(Bytes::new())) {
            BatchData::Fresh(b) => b,
            // Renumbered after being sent: the request holding the old bytes may still be
            // alive, so patch a copy. This only happens after an epoch bump.
            BatchData::Sent(b) => BytesMut::from(&b[..]),
        };
        // Only this module builds the bytes (a whole magic-2 batch from `BatchBuilder`), so
        // the header is always there to patch.
        let stamped = stamp_producer(&mut buf, pid.id, pid.epoch, base_sequence, transactional);
        debug_assert!(
            stamped.is_ok(),
            "a producer batch is not a batch: {stamped:?}"
        );
        self.data = BatchData::Fresh(buf);
        self.stamped = Some((pid, base_sequence));
    }

    /// The bytes to put in a request (shared, no copy).
    pub(crate) fn bytes(&mut self) -> Bytes {
        if let BatchData::Fresh(b) = &mut self.data {
            let frozen = std::mem::take(b).freeze();
            self.data = BatchData::Sent(frozen);
        }
        match &self.data {
            BatchData::Sent(b) => b.clone(),
            BatchData::Fresh(_) => unreachable!("frozen above"),
        }
    }
}

#[cfg(test)]
mod tests {
    use kingest_protocol::record::{BatchOptions, Compression, DecodeOptions, RecordSet};

    use super::*;

    fn closed(compression: Compression) -> ProducerBatch {
        let mut builder = BatchBuilder::new(BatchOptions {
            compression,
            ..BatchOptions::default()
        });
        builder.push(1000, Some(b"k"), Some(b"v1"), &[]);
        builder.push(1001, None, Some(b"v2"), &[]);
        let tp = TopicPartition {
            topic: Arc::from("t"),
            partition: 3,
        };
        let open = OpenBatch {
            id: 1,
            builder,
            created: Instant::now(),
            shared: BatchShared::new(tp.topic.clone(), 3),
            reserved: 10,
        };
        open.close(&tp).unwrap()
    }

    #[test]
    fn stamping_rewrites_producer_fields_and_keeps_the_crc_valid() {
        for codec in Compression::ALL {
            let mut batch = closed(codec);
            let pid = ProducerIdEpoch { id: 4242, epoch: 3 };
            batch.stamp(pid, 17, false);
            let first = batch.bytes();
            // Renumber after sending: the first bytes stay as they were.
            batch.stamp(ProducerIdEpoch { id: 4242, epoch: 4 }, 0, true);
            let second = batch.bytes();
            for (bytes, epoch, seq) in [(first, 3, 17), (second, 4, 0)] {
                let raw = RecordSet::new(bytes).next().unwrap().unwrap();
                let h = raw.header();
                assert_eq!(h.is_transactional(), epoch == 4, "{codec}");
                assert_eq!(
                    (h.producer_id, h.producer_epoch, h.base_sequence),
                    (4242, epoch, seq),
                    "{codec}"
                );
                let decoded = raw
                    .decode(&DecodeOptions::default())
                    .expect("CRC must verify");
                let values: Vec<_> = decoded
                    .records()
                    .map(|r| r.unwrap().value.unwrap().to_vec())
                    .collect();
                assert_eq!(values, vec![b"v1".to_vec(), b"v2".to_vec()]);
            }
        }
    }

    #[tokio::test]
    async fn delivery_futures_share_one_completion() {
        let shared = BatchShared::new(Arc::from("t"), 2);
        let a = DeliveryFuture::new(shared.clone(), 0, 10);
        let b = DeliveryFuture::new(shared.clone(), 1, 11);
        let waiter = tokio::spawn(b);
        tokio::task::yield_now().await;
        shared.complete(Outcome::Delivered {
            base_offset: 100,
            log_append_time: -1,
        });
        let md = waiter.await.unwrap().unwrap();
        assert_eq!((md.partition, md.offset, md.timestamp), (2, 101, 11));
        assert_eq!(a.await.unwrap().offset, 100);
        // A second completion is ignored.
        shared.complete(Outcome::Delivered {
            base_offset: 5,
            log_append_time: -1,
        });
        let c = DeliveryFuture::new(shared.clone(), 0, 0).await.unwrap();
        assert_eq!(c.offset, 100);
    }

    #[tokio::test]
    async fn failures_and_unknown_offsets_reach_every_record() {
        let shared = BatchShared::new(Arc::from("t"), 0);
        shared.complete(Outcome::Delivered {
            base_offset: -1,
            log_append_time: 77,
        });
        let md = DeliveryFuture::new(shared, 3, 5).await.unwrap();
        assert_eq!(
            (md.offset, md.timestamp),
            (-1, 77),
            "acks=0 has no offset; log-append time wins"
        );
        let failed = BatchShared::new(Arc::from("t"), 0);
        failed.complete(Outcome::Failed(Arc::new(ClientError::NoLeader {
            topic: "t".into(),
            partition: 0,
        })));
        for i in 0..2 {
            let e = DeliveryFuture::new(failed.clone(), i, 0).await.unwrap_err();
            assert!(
                matches!(e, ClientError::NoLeader { partition: 0, .. }),
                "{e}"
            );
        }
    }
}
