//! The producer: batches records per partition, compresses them, and sends them to partition
//! leaders with retries, idempotence and backpressure, with the Java producer's semantics and
//! defaults.
//!
//! ```no_run
//! # async fn demo() -> kingest_client::Result<()> {
//! use kingest_client::producer::{Producer, ProducerConfig, ProducerRecord};
//! use kingest_client::{Client, ClientConfig};
//!
//! let client = Client::connect(ClientConfig::new("localhost:9092")).await?;
//! let producer = Producer::new(client, ProducerConfig::default())?;
//! let delivery = producer.send(ProducerRecord::new("events", "hello").with_key("user-1")).await?;
//! let metadata = delivery.await?;
//! println!("written to {}-{} at offset {}", metadata.topic, metadata.partition, metadata.offset);
//! producer.close().await?;
//! # Ok(()) }
//! ```
//!
//! How it is put together (one file per part):
//!
//! - `send` picks the partition ([`crate::partitioner`]: the record's own, murmur2 of the key,
//!   sticky for keyless records, or a user function), reserves buffer memory (waiting up to
//!   `max_block` when the buffer is full: that is the backpressure) and appends the record
//!   straight into the partition's open batch (`accumulator.rs`); it returns a
//!   [`DeliveryFuture`] (`batch.rs`);
//! - a background task (`sender.rs`) sends ready batches, grouped per leader broker, through
//!   one request task per broker (`dispatch.rs`), and settles their outcome (`response.rs`),
//!   with the idempotent producer's sequence bookkeeping (`idempotence.rs`);
//! - transactions (`transaction.rs`): with a `transactional_id`, records go out inside
//!   transactions, partitions are added to each before their first batch, consumed offsets can
//!   be committed with the records (consume-transform-produce), and a newer producer with the
//!   same id fences this one;
//! - [`config`] holds the settings.
//!
//! A transactional producer (exactly-once consume-transform-produce is in
//! `client/examples/exactly_once.rs`):
//!
//! ```no_run
//! # async fn demo() -> kingest_client::Result<()> {
//! use kingest_client::producer::{Producer, ProducerConfig, ProducerRecord};
//! use kingest_client::{Client, ClientConfig, ClientError};
//!
//! let client = Client::connect(ClientConfig::new("localhost:9092")).await?;
//! let mut config = ProducerConfig::default();
//! config.transactional_id = Some("orders-writer".to_owned());
//! let producer = Producer::new(client, config)?;
//! producer.init_transactions().await?; // fences older producers with this id
//! producer.begin_transaction()?;
//! producer.send(ProducerRecord::new("orders", "one")).await?;
//! producer.send(ProducerRecord::new("orders", "two")).await?;
//! match producer.commit_transaction().await {
//!     Ok(()) => {}
//!     Err(ClientError::ProducerFenced { .. }) => return Ok(()), // another instance took over
//!     Err(_) => producer.abort_transaction().await?,
//! }
//! # Ok(()) }
//! ```

mod accumulator;
mod batch;
pub mod config;
mod dispatch;
mod idempotence;
mod response;
mod sender;
mod transaction;
mod transactional;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use kingest_protocol::record::{Header, BATCH_HEADER_SIZE};
use kingest_protocol::BrokerError;
use tokio::sync::{mpsc, Notify, Semaphore, TryAcquireError};
use tokio::task::JoinHandle;

pub use batch::{DeliveryFuture, RecordMetadata};
pub use config::{Acks, ProducerConfig};
pub use idempotence::ProducerIdEpoch;
pub use transaction::ConsumerGroupMetadata;

use crate::client::Client;
use crate::error::{BrokerRef, ClientError, Result};
use crate::partitioner::{partition_for_key, PartitionInput, Partitioner, StickyPartitioner};
use accumulator::{Accumulator, Appended, BatchSettings, RecordRef, TopicQueues};
use batch::{clone_error, BatchShared, Outcome};
use transaction::TxnState;

/// A record to send.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProducerRecord {
    /// The topic.
    pub topic: String,
    /// The partition; `None` lets the partitioner choose.
    pub partition: Option<i32>,
    /// The key (`None`: no key; an empty key is a key).
    pub key: Option<Bytes>,
    /// The value (`None`: a tombstone).
    pub value: Option<Bytes>,
    /// Headers, in order; names may repeat.
    pub headers: Vec<(String, Option<Bytes>)>,
    /// Milliseconds since the epoch; `None` for now.
    pub timestamp: Option<i64>,
}

impl ProducerRecord {
    /// A record for `topic` with `value`, no key, no headers, timestamped when sent.
    pub fn new(topic: impl Into<String>, value: impl Into<Bytes>) -> Self {
        Self {
            topic: topic.into(),
            value: Some(value.into()),
            ..Self::default()
        }
    }

    /// Sets the key.
    pub fn with_key(mut self, key: impl Into<Bytes>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Sends to this partition, bypassing the partitioner.
    pub fn with_partition(mut self, partition: i32) -> Self {
        self.partition = Some(partition);
        self
    }

    /// Adds a header.
    pub fn with_header(mut self, name: impl Into<String>, value: Option<Bytes>) -> Self {
        self.headers.push((name.into(), value));
        self
    }

    /// Sets the timestamp (milliseconds since the epoch).
    pub fn with_timestamp(mut self, timestamp: i64) -> Self {
        self.timestamp = Some(timestamp);
        self
    }
}

/// State shared by the producer handles and the sender task.
pub(crate) struct Shared {
    pub(crate) client: Client,
    pub(crate) config: ProducerConfig,
    pub(crate) accumulator: Accumulator,
    /// Buffer memory, one permit per byte.
    memory: Semaphore,
    memory_waiters: AtomicUsize,
    /// Wakes the sender: a batch was opened or closed, a flush or close began, memory is short.
    pub(crate) wake: Notify,
    closing: AtomicBool,
    appends_in_progress: AtomicUsize,
    flushes: AtomicUsize,
    /// Set when the producer cannot continue.
    pub(crate) fatal: OnceLock<Arc<ClientError>>,
    pub(crate) producer_id: Mutex<Option<ProducerIdEpoch>>,
    /// The transactional producer's state (`None` without a `transactional_id`).
    pub(crate) txn: Option<TxnState>,
    /// Tells the sender about producer ids obtained by the transaction methods.
    control: mpsc::UnboundedSender<sender::Event>,
}

impl Shared {
    pub(crate) fn is_closing(&self) -> bool {
        self.closing.load(Ordering::SeqCst)
    }

    pub(crate) fn flushing(&self) -> bool {
        self.flushes.load(Ordering::SeqCst) > 0
    }

    pub(crate) fn memory_waiters(&self) -> usize {
        self.memory_waiters.load(Ordering::SeqCst)
    }

    pub(crate) fn appends_in_progress(&self) -> usize {
        self.appends_in_progress.load(Ordering::SeqCst)
    }

    /// Completes a batch: reports its outcome to every record, returns its buffer memory, and
    /// stops `flush` waiting for it.
    pub(crate) fn finish(&self, batch: &Arc<BatchShared>, reserved: usize, outcome: Outcome) {
        batch.complete(outcome);
        self.memory.add_permits(reserved);
        self.accumulator.completed(batch);
    }

    fn close(&self) {
        self.closing.store(true, Ordering::SeqCst);
        self.wake.notify_one();
    }

    /// Makes `error` the producer's fatal error when it says the producer was fenced.
    pub(crate) fn note_fenced(&self, error: &ClientError) {
        if matches!(error, ClientError::ProducerFenced { .. }) {
            if let Some(txn) = &self.txn {
                let reason = match error {
                    ClientError::ProducerFenced { reason, .. } => reason.clone(),
                    _ => String::new(),
                };
                let _ = self.fatal.set(Arc::new(txn.fenced(reason)));
                self.wake.notify_one();
            }
        }
    }
}

/// Dropping the last producer handle lets the sender finish what is buffered and stop.
struct Handle {
    shared: Arc<Shared>,
    sender: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.close();
    }
}

/// A Kafka producer. Cheap to clone; clones share the buffer, the batches and the background
/// sender, so many tasks can send through one producer.
#[derive(Clone)]
pub struct Producer {
    handle: Arc<Handle>,
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("config", &self.handle.shared.config)
            .finish_non_exhaustive()
    }
}

/// Counts an append in progress, so the sender does not stop under it.
struct AppendGuard<'a>(&'a Shared);

impl Drop for AppendGuard<'_> {
    fn drop(&mut self) {
        self.0.appends_in_progress.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Counts a flush in progress (everything lingering is sent at once meanwhile).
struct FlushGuard<'a>(&'a Shared);

impl Drop for FlushGuard<'_> {
    fn drop(&mut self) {
        self.0.flushes.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Producer {
    /// A producer sending through `client`; starts its background sender on the current tokio
    /// runtime.
    pub fn new(client: Client, config: ProducerConfig) -> Result<Producer> {
        config.validate()?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            ClientError::Config("Producer::new must be called inside a tokio runtime".to_owned())
        })?;
        let (control, events) = mpsc::unbounded_channel();
        let txn = config
            .transactional_id
            .clone()
            .map(|id| TxnState::new(id, config.transaction_timeout));
        let shared = Arc::new(Shared {
            txn,
            control: control.clone(),
            accumulator: Accumulator::new(BatchSettings {
                batch_size: config.effective_batch_size(),
                compression: config.compression,
                compression_level: config.compression_level,
            }),
            memory: Semaphore::new(config.buffer_memory),
            memory_waiters: AtomicUsize::new(0),
            wake: Notify::new(),
            closing: AtomicBool::new(false),
            appends_in_progress: AtomicUsize::new(0),
            flushes: AtomicUsize::new(0),
            fatal: OnceLock::new(),
            producer_id: Mutex::new(None),
            client,
            config,
        });
        let task = runtime.spawn(sender::Sender::new(shared.clone(), control, events).run());
        Ok(Producer {
            handle: Arc::new(Handle {
                shared,
                sender: Mutex::new(Some(task)),
            }),
        })
    }

    /// The settings.
    pub fn config(&self) -> &ProducerConfig {
        &self.handle.shared.config
    }

    /// The idempotent producer's current id and epoch, once the broker has assigned them.
    pub fn producer_id(&self) -> Option<ProducerIdEpoch> {
        *self
            .handle
            .shared
            .producer_id
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a record for sending and returns its delivery report.
    ///
    /// Waits (up to `max_block`) for the topic's metadata and for buffer memory: when the
    /// buffer holds `buffer_memory` bytes of unacknowledged records, senders wait here until
    /// deliveries free some. Fails at once for a record larger than `max_request_size` or
    /// `buffer_memory`, an unknown partition, or a closed producer; those errors concern this
    /// record only.
    pub async fn send(&self, record: ProducerRecord) -> Result<DeliveryFuture> {
        let shared = &*self.handle.shared;
        // The clock is read only when send has to wait: a clock read per record is measurable.
        let mut clock = SendClock {
            max_block: shared.config.max_block,
            started: None,
        };
        if let Some(e) = shared.fatal.get() {
            return Err(clone_error(e));
        }
        if shared.is_closing() {
            return Err(ClientError::Closed);
        }
        if let Some(txn) = &shared.txn {
            txn.check_send()?;
        }
        let timestamp = record.timestamp.unwrap_or_else(now_ms);
        let headers: Vec<Header<'_>> = record
            .headers
            .iter()
            .map(|(k, v)| Header {
                key: k.as_bytes(),
                value: v.as_deref(),
            })
            .collect();
        let (key, value) = (record.key.as_deref(), record.value.as_deref());
        let record_size = accumulator::record_size_bound(key, value, &headers);
        let size = BATCH_HEADER_SIZE + record_size;
        let too_large = |limit: usize, setting: &'static str| ClientError::RecordTooLarge {
            topic: record.topic.clone(),
            size,
            limit,
            setting,
        };
        if size > shared.config.max_request_size {
            return Err(too_large(
                shared.config.max_request_size,
                "max_request_size",
            ));
        }
        if record_size > shared.config.buffer_memory {
            return Err(too_large(shared.config.buffer_memory, "buffer_memory"));
        }

        let topic = self
            .topic(&record.topic, record.partition, &mut clock)
            .await?;
        self.reserve(record_size, &record.topic, &mut clock).await?;

        let rec = RecordRef {
            timestamp,
            key,
            value,
            headers: &headers,
            reserved: record_size,
        };
        let appended = {
            shared.appends_in_progress.fetch_add(1, Ordering::SeqCst);
            let _guard = AppendGuard(shared);
            if shared.is_closing() {
                // Checked again after announcing the append, so a closing sender either sees
                // this append or this append sees the close.
                Err(ClientError::Closed)
            } else {
                self.append(&topic, &record, &rec, record_size)
            }
        };
        match appended {
            Ok((shared_batch, index, wake)) => {
                if wake {
                    shared.wake.notify_one();
                }
                Ok(DeliveryFuture::new(shared_batch, index, timestamp))
            }
            Err(e) => {
                shared.memory.add_permits(record_size);
                Err(e)
            }
        }
    }

    /// Chooses the partition and appends; the returned flag says whether to wake the sender.
    fn append(
        &self,
        topic: &TopicQueues,
        record: &ProducerRecord,
        rec: &RecordRef<'_>,
        size: usize,
    ) -> Result<(Arc<BatchShared>, i32, bool)> {
        let shared = &*self.handle.shared;
        let layout = topic.layout.read().unwrap_or_else(|e| e.into_inner());
        let n = layout.queues.len() as i32;
        let unknown = || ClientError::UnknownPartition {
            topic: record.topic.clone(),
            partition: record.partition.unwrap_or(-1),
        };
        let mut sticky = matches!(
            (record.partition, &shared.config.partitioner, rec.key),
            (None, Partitioner::Default, None)
        );
        let mut woke = false;
        // At most: a sticky switch, then a batch that failed to close, then the append.
        for _ in 0..4 {
            let partition = match record.partition {
                Some(p) if (0..n).contains(&p) => p,
                Some(_) => return Err(unknown()),
                None => match (&shared.config.partitioner, rec.key) {
                    (Partitioner::Default, Some(key)) if n > 0 => partition_for_key(key, n),
                    (Partitioner::Default, None) if n > 0 => topic
                        .sticky
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .partition_available(&layout.available, n),
                    (partitioner, key) => {
                        let input = PartitionInput::new(&record.topic, key, rec.value, n)
                            .with_available(&layout.available);
                        partitioner
                            .partition(&input, &mut StickyPartitioner::new())
                            .map_err(|e| ClientError::Config(e.to_string()))?
                    }
                },
            };
            let queue = &layout.queues[partition as usize];
            match shared.accumulator.append(queue, rec, size, sticky) {
                Appended::Done {
                    shared: batch,
                    index,
                    wake_sender,
                } => return Ok((batch, index, wake_sender || woke)),
                Appended::WouldStartBatch => {
                    // Java's sticky partitioner: a keyless record that would open a new batch
                    // first moves the topic to another partition.
                    topic
                        .sticky
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .on_new_batch();
                    sticky = false;
                }
                Appended::CloseFailed(failed) => {
                    shared.finish(
                        &failed.shared,
                        failed.reserved,
                        Outcome::Failed(Arc::new(failed.error)),
                    );
                    woke = true;
                }
            }
        }
        Err(ClientError::Config(format!(
            "could not append a record to topic {}",
            record.topic
        )))
    }

    /// The topic's queues, waiting (until `deadline`) for its metadata, and for `partition` to
    /// exist when one is named.
    async fn topic(
        &self,
        name: &str,
        partition: Option<i32>,
        clock: &mut SendClock,
    ) -> Result<Arc<TopicQueues>> {
        let shared = &*self.handle.shared;
        if let Some(t) = shared.accumulator.topic(name) {
            let n = t
                .layout
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .queues
                .len() as i32;
            if partition.is_none_or(|p| p < n) {
                return Ok(t);
            }
        }
        let (started, deadline) = clock.window();
        let client = &shared.client;
        let mut refreshed = false;
        loop {
            let snapshot = client.metadata();
            match snapshot.topics.get(name) {
                Some(info) if info.error.is_ok() && !info.partitions.is_empty() => {
                    let topic = shared.accumulator.update_topic(info);
                    let n = info.partitions.len() as i32;
                    match partition {
                        Some(p) if p < 0 || (p >= n && refreshed) => {
                            return Err(ClientError::UnknownPartition {
                                topic: name.to_owned(),
                                partition: p,
                            });
                        }
                        Some(p) if p >= n => {}
                        _ => return Ok(topic),
                    }
                }
                Some(info) if !info.error.is_ok() && !info.error.is_retriable() => {
                    return Err(ClientError::Topic {
                        broker: BrokerRef {
                            id: snapshot.controller,
                            addr: String::new(),
                        },
                        api: "Metadata",
                        topic: name.to_owned(),
                        source: BrokerError::new(info.error, None),
                    });
                }
                _ => {}
            }
            let now = Instant::now();
            if now >= deadline {
                let why = match snapshot.topics.get(name) {
                    Some(info) if !info.error.is_ok() => format!("topic metadata: {}", info.error),
                    Some(_) => format!("partition {} of the topic", partition.unwrap_or(-1)),
                    None => "the topic's metadata".to_owned(),
                };
                return Err(ClientError::SendTimeout {
                    topic: name.to_owned(),
                    waited: now - started,
                    reason: why,
                });
            }
            if refreshed {
                let pause = shared.config.retry_backoff.min(deadline - now);
                tokio::time::sleep(pause).await;
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(remaining, client.refresh_metadata(&[name])).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) if !e.is_retriable() => return Err(e),
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, topic = name, "metadata refresh failed; retrying")
                }
                Err(_) => {}
            }
            refreshed = true;
        }
    }

    /// Takes `bytes` of buffer memory, waiting until `deadline` when the buffer is full.
    async fn reserve(&self, bytes: usize, topic: &str, clock: &mut SendClock) -> Result<()> {
        let shared = &*self.handle.shared;
        let n =
            u32::try_from(bytes).map_err(|_| ClientError::Config("record too large".to_owned()))?;
        match shared.memory.try_acquire_many(n) {
            Ok(permit) => {
                permit.forget();
                return Ok(());
            }
            Err(TryAcquireError::Closed) => return Err(ClientError::Closed),
            Err(TryAcquireError::NoPermits) => {}
        }
        let (started, deadline) = clock.window();
        // Tell the sender someone is blocked: it then sends lingering batches at once, which is
        // what frees memory soonest.
        shared.memory_waiters.fetch_add(1, Ordering::SeqCst);
        shared.wake.notify_one();
        let result = tokio::time::timeout_at(deadline.into(), shared.memory.acquire_many(n)).await;
        shared.memory_waiters.fetch_sub(1, Ordering::SeqCst);
        match result {
            Ok(Ok(permit)) => {
                permit.forget();
                Ok(())
            }
            Ok(Err(_)) => Err(ClientError::Closed),
            Err(_) => Err(ClientError::SendTimeout {
                topic: topic.to_owned(),
                waited: started.elapsed(),
                reason: format!(
                    "buffer memory ({} bytes) stayed full",
                    shared.config.buffer_memory
                ),
            }),
        }
    }

    /// Sends everything buffered now, without waiting for `linger`, and waits until every
    /// record sent before this call is delivered or failed.
    pub async fn flush(&self) {
        let shared = &*self.handle.shared;
        shared.flushes.fetch_add(1, Ordering::SeqCst);
        let _guard = FlushGuard(shared);
        shared.wake.notify_one();
        for batch in shared.accumulator.incomplete() {
            batch.wait().await;
        }
    }

    /// Flushes, then stops the background sender. Later sends fail with
    /// [`ClientError::Closed`]. Other clones of this producer are closed too.
    pub async fn close(&self) -> Result<()> {
        self.flush().await;
        self.handle.shared.close();
        let task = self
            .handle
            .sender
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(task) = task {
            task.await.map_err(|e| ClientError::ProducerFatal {
                reason: format!("the sender task failed: {e}"),
            })?;
        }
        Ok(())
    }

    /// Whether the producer still has undelivered records (for diagnostics).
    pub fn has_pending(&self) -> bool {
        self.handle
            .shared
            .accumulator
            .incomplete()
            .iter()
            .any(|b| !b.is_done())
    }
}

/// When a `send` started waiting, read on first need; `max_block` covers all its waits.
struct SendClock {
    max_block: Duration,
    started: Option<Instant>,
}

impl SendClock {
    /// (start, deadline) of this send's waiting.
    fn window(&mut self) -> (Instant, Instant) {
        let started = *self.started.get_or_insert_with(Instant::now);
        (started, started + self.max_block)
    }
}

/// Milliseconds since the Unix epoch.
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_and_futures_cross_tasks() {
        fn check<T: Send + Sync + 'static>() {}
        check::<Producer>();
        check::<DeliveryFuture>();
    }

    #[test]
    fn records_are_built_fluently() {
        let r = ProducerRecord::new("t", "v")
            .with_key("k")
            .with_partition(3)
            .with_header("h", None)
            .with_timestamp(9);
        assert_eq!(r.topic, "t");
        assert_eq!(r.key.as_deref(), Some(&b"k"[..]));
        assert_eq!(r.value.as_deref(), Some(&b"v"[..]));
        assert_eq!((r.partition, r.timestamp), (Some(3), Some(9)));
        assert_eq!(r.headers, vec![("h".to_owned(), None)]);
    }
}
