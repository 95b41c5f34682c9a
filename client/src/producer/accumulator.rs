//! The record accumulator: one queue per partition, holding the batch being filled and the
//! closed batches waiting for the sender.
//!
//! `send` appends a record into its partition's open batch under that partition's mutex only
//! (held for the copy of one record, or for compressing a batch that just filled up), so tasks
//! producing to different partitions never contend, and the sender task only takes each lock
//! briefly to look at or pop the head batch. The readiness rules are the Java
//! `RecordAccumulator`'s: a partition's head batch may go when it is full, when it has waited
//! `linger`, or at once when a flush or close is under way or `send` is waiting for buffer
//! memory; a batch being retried waits out its backoff.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use kingest_protocol::record::{BatchBuilder, BatchOptions, Compression, Header};

use super::batch::{BatchShared, FailedBatch, OpenBatch, ProducerBatch};
use super::idempotence::TopicPartition;
use crate::cluster::TopicInfo;
use crate::partitioner::StickyPartitioner;

/// One partition's batches.
#[derive(Debug)]
pub(crate) struct PartitionQueue {
    pub(crate) tp: TopicPartition,
    state: Mutex<PartitionState>,
}

/// What the partition lock protects.
#[derive(Debug, Default)]
pub(crate) struct PartitionState {
    /// The batch records are appended to.
    pub(crate) open: Option<OpenBatch>,
    /// Closed batches, oldest (or retried) first.
    pub(crate) queue: VecDeque<ProducerBatch>,
    /// Produce requests in flight carrying one of this partition's batches.
    pub(crate) in_flight: usize,
}

impl PartitionState {
    /// When the head batch may be sent: `None` when there is nothing to send. `expedite` (flush,
    /// close, memory pressure) makes a lingering open batch ready at once.
    pub(crate) fn ready_at(&self, linger: Duration, expedite: bool) -> Option<Instant> {
        if let Some(head) = self.queue.front() {
            // A closed batch is full (or was closed by a flush): it goes unless backing off.
            return Some(head.retry_at.unwrap_or(head.created));
        }
        let open = self.open.as_ref().filter(|o| !o.builder.is_empty())?;
        Some(if expedite {
            open.created
        } else {
            open.created + linger
        })
    }

    /// Closes the open batch into the queue (the sender does this for a batch that lingered
    /// long enough). A batch that cannot be built is returned for failing.
    pub(crate) fn close_open(&mut self, tp: &TopicPartition) -> Option<Box<FailedBatch>> {
        let open = self.open.take()?;
        match open.close(tp) {
            Ok(batch) => {
                self.queue.push_back(batch);
                None
            }
            Err(failed) => Some(failed),
        }
    }

    /// Puts a batch back for a retry, ahead of every batch that was first sent after it (or
    /// never sent), so that a partition's batches keep their order.
    pub(crate) fn requeue(&mut self, batch: ProducerBatch) {
        let order = batch.drain_order.unwrap_or(u64::MAX);
        let at = self
            .queue
            .iter()
            .position(|b| b.drain_order.is_none_or(|o| o > order))
            .unwrap_or(self.queue.len());
        self.queue.insert(at, batch);
    }
}

/// How a record is appended.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RecordRef<'a> {
    pub(crate) timestamp: i64,
    pub(crate) key: Option<&'a [u8]>,
    pub(crate) value: Option<&'a [u8]>,
    pub(crate) headers: &'a [Header<'a>],
    /// Buffer memory reserved for it.
    pub(crate) reserved: usize,
}

/// What an append did.
#[derive(Debug)]
pub(crate) enum Appended {
    /// In batch `shared` at `index`; `wake_sender` when a batch was closed or opened.
    Done {
        shared: Arc<BatchShared>,
        index: i32,
        wake_sender: bool,
    },
    /// The record would start a new batch and the caller asked not to (the sticky partitioner
    /// then moves on to another partition first, as Java's does).
    WouldStartBatch,
    /// Closing the full batch failed; that batch's records must fail and the record was not
    /// appended.
    CloseFailed(Box<FailedBatch>),
}

impl PartitionQueue {
    pub(crate) fn new(tp: TopicPartition) -> Self {
        Self {
            tp,
            state: Mutex::new(PartitionState::default()),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, PartitionState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Per-topic partition queues and the sticky partitioner's state.
#[derive(Debug)]
pub(crate) struct TopicQueues {
    pub(crate) name: Arc<str>,
    pub(crate) layout: RwLock<Layout>,
    pub(crate) sticky: Mutex<StickyPartitioner>,
}

/// A topic's partitions as last seen in metadata.
#[derive(Debug, Default)]
pub(crate) struct Layout {
    /// By partition index.
    pub(crate) queues: Vec<Arc<PartitionQueue>>,
    /// Partitions that have a leader.
    pub(crate) available: Vec<i32>,
}

/// Batch settings the accumulator needs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchSettings {
    pub(crate) batch_size: usize,
    pub(crate) compression: Compression,
    pub(crate) compression_level: Option<i32>,
}

/// Every partition queue, by topic.
#[derive(Debug)]
pub(crate) struct Accumulator {
    settings: BatchSettings,
    topics: RwLock<HashMap<Arc<str>, Arc<TopicQueues>>>,
    /// Every queue, for the sender's scan.
    all: RwLock<Vec<Arc<PartitionQueue>>>,
    next_batch_id: AtomicU64,
    /// Batches not yet completed, for `flush`.
    /// Keyed by the completion's address, which is unique while it is in the map.
    incomplete: Mutex<HashMap<usize, Arc<BatchShared>>>,
}

impl Accumulator {
    pub(crate) fn new(settings: BatchSettings) -> Self {
        Self {
            settings,
            topics: RwLock::new(HashMap::new()),
            all: RwLock::new(Vec::new()),
            next_batch_id: AtomicU64::new(1),
            incomplete: Mutex::new(HashMap::new()),
        }
    }

    /// The topic's queues, if it was seen before.
    pub(crate) fn topic(&self, name: &str) -> Option<Arc<TopicQueues>> {
        self.topics
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }

    /// The topic's queues, created or grown to match `info` (partitions are only ever added).
    pub(crate) fn update_topic(&self, info: &TopicInfo) -> Arc<TopicQueues> {
        let topic = {
            let mut topics = self.topics.write().unwrap_or_else(|e| e.into_inner());
            topics
                .entry(Arc::from(info.name.as_str()))
                .or_insert_with(|| {
                    Arc::new(TopicQueues {
                        name: Arc::from(info.name.as_str()),
                        layout: RwLock::new(Layout::default()),
                        sticky: Mutex::new(StickyPartitioner::new()),
                    })
                })
                .clone()
        };
        let count = info.partitions.len();
        let available: Vec<i32> = info
            .partitions
            .iter()
            .filter(|p| p.leader >= 0)
            .map(|p| p.partition)
            .collect();
        let mut layout = topic.layout.write().unwrap_or_else(|e| e.into_inner());
        if layout.queues.len() < count {
            let mut all = self.all.write().unwrap_or_else(|e| e.into_inner());
            for p in layout.queues.len()..count {
                let q = Arc::new(PartitionQueue::new(TopicPartition {
                    topic: topic.name.clone(),
                    partition: p as i32,
                }));
                all.push(q.clone());
                layout.queues.push(q);
            }
        }
        layout.available = available;
        drop(layout);
        topic
    }

    /// Runs `f` over every partition queue (the sender's scan), starting at position `start`
    /// (modulo their number) and wrapping around: the sender moves the start on each pass so
    /// that, when requests fill up, the same partitions do not always go first. Holds the
    /// registry's read lock: `f` must not block.
    pub(crate) fn for_each_queue(&self, start: usize, mut f: impl FnMut(&Arc<PartitionQueue>)) {
        let all = self.all.read().unwrap_or_else(|e| e.into_inner());
        if all.is_empty() {
            return;
        }
        let (tail, head) = all.split_at(start % all.len());
        for q in head.iter().chain(tail) {
            f(q);
        }
    }

    /// The known topics, for matching metadata updates.
    pub(crate) fn topic_names(&self) -> Vec<Arc<str>> {
        self.topics
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect()
    }

    /// Appends a record to `queue`'s open batch, closing it first when the record does not fit
    /// (a record larger than `batch_size` gets a batch of its own).
    pub(crate) fn append(
        &self,
        queue: &PartitionQueue,
        record: &RecordRef<'_>,
        record_size: usize,
        abort_on_new_batch: bool,
    ) -> Appended {
        let mut state = queue.lock();
        if let Some(open) = &mut state.open {
            if open.builder.is_empty()
                || open.builder.size() + record_size <= self.settings.batch_size
            {
                open.builder
                    .push(record.timestamp, record.key, record.value, record.headers);
                open.reserved += record.reserved;
                return Appended::Done {
                    shared: open.shared.clone(),
                    index: open.builder.len() as i32 - 1,
                    wake_sender: false,
                };
            }
        }
        if abort_on_new_batch {
            return Appended::WouldStartBatch;
        }
        if let Some(failed) = state.close_open(&queue.tp) {
            return Appended::CloseFailed(failed);
        }
        let id = self.next_batch_id.fetch_add(1, Ordering::Relaxed);
        let shared = BatchShared::new(queue.tp.topic.clone(), queue.tp.partition);
        self.incomplete
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(Arc::as_ptr(&shared) as usize, shared.clone());
        let mut builder = BatchBuilder::new(BatchOptions {
            compression: self.settings.compression,
            compression_level: self.settings.compression_level,
            ..BatchOptions::default()
        });
        builder.push(record.timestamp, record.key, record.value, record.headers);
        state.open = Some(OpenBatch {
            id,
            builder,
            created: Instant::now(),
            shared: shared.clone(),
            reserved: record.reserved,
        });
        Appended::Done {
            shared,
            index: 0,
            wake_sender: true,
        }
    }

    /// Forgets a completed batch (flush no longer waits for it).
    pub(crate) fn completed(&self, batch: &Arc<BatchShared>) {
        self.incomplete
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(Arc::as_ptr(batch) as usize));
    }

    /// Every batch not yet completed.
    pub(crate) fn incomplete(&self) -> Vec<Arc<BatchShared>> {
        self.incomplete
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }
}

/// The encoded size of a record in a batch, an upper bound for any timestamp and offset delta
/// (what batch-size decisions and buffer reservations use).
pub(crate) fn record_size_bound(
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: &[Header<'_>],
) -> usize {
    // A varlong timestamp delta takes at most 10 bytes and a varint offset delta 5, against 1
    // each in the computed size; the record's length prefix may then grow by a byte.
    BatchBuilder::record_size(0, 0, key, value, headers) + 14
}

#[cfg(test)]
mod tests {
    use kingest_protocol::record::{DecodeOptions, RecordSet};

    use super::*;
    use crate::cluster::PartitionInfo;
    use kingest_protocol::ErrorCode;

    fn acc(batch_size: usize) -> Accumulator {
        Accumulator::new(BatchSettings {
            batch_size,
            compression: Compression::None,
            compression_level: None,
        })
    }

    fn topic_info(name: &str, partitions: i32) -> TopicInfo {
        TopicInfo {
            name: name.into(),
            id: [0; 16],
            internal: false,
            partitions: (0..partitions)
                .map(|p| PartitionInfo {
                    partition: p,
                    leader: if p == 1 { -1 } else { 0 },
                    leader_epoch: 0,
                    replicas: vec![0],
                    isr: vec![0],
                    error: ErrorCode::None,
                })
                .collect(),
            error: ErrorCode::None,
        }
    }

    fn rec(value: &[u8]) -> RecordRef<'_> {
        RecordRef {
            timestamp: 1000,
            key: None,
            value: Some(value),
            headers: &[],
            reserved: value.len(),
        }
    }

    fn push(a: &Accumulator, q: &PartitionQueue, value: &[u8]) -> (i32, bool) {
        let size = record_size_bound(None, Some(value), &[]);
        match a.append(q, &rec(value), size, false) {
            Appended::Done {
                index, wake_sender, ..
            } => (index, wake_sender),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn records_fill_a_batch_up_to_batch_size_then_a_new_one_starts() {
        let a = acc(200);
        let t = a.update_topic(&topic_info("t", 3));
        let q = t.layout.read().unwrap().queues[0].clone();
        assert_eq!(
            push(&a, &q, &[1; 50]),
            (0, true),
            "first record opens a batch"
        );
        assert_eq!(push(&a, &q, &[2; 50]), (1, false));
        // 61 header + 2 * ~66: a third record of 50 bytes would pass 200.
        assert_eq!(
            push(&a, &q, &[3; 50]),
            (0, true),
            "the full batch was closed"
        );
        let state = q.lock();
        assert_eq!(state.queue.len(), 1);
        assert_eq!(state.queue[0].records, 2);
        assert_eq!(state.open.as_ref().unwrap().builder.len(), 1);
        assert_eq!(a.incomplete().len(), 2);
    }

    #[test]
    fn an_oversized_record_gets_its_own_batch() {
        let a = acc(100);
        let t = a.update_topic(&topic_info("t", 1));
        let q = t.layout.read().unwrap().queues[0].clone();
        push(&a, &q, &[0; 10]);
        assert_eq!(push(&a, &q, &[0; 500]), (0, true));
        assert_eq!(push(&a, &q, &[0; 10]), (0, true), "nothing fits after it");
        let mut state = q.lock();
        assert_eq!(state.queue.len(), 2);
        let big = state.queue.pop_back().unwrap();
        assert_eq!(big.records, 1);
        assert!(big.size() > 500);
    }

    #[test]
    fn abort_on_new_batch_leaves_the_partition_alone() {
        let a = acc(1000);
        let t = a.update_topic(&topic_info("t", 2));
        let q = t.layout.read().unwrap().queues[1].clone();
        let size = record_size_bound(None, Some(b"v"), &[]);
        assert!(matches!(
            a.append(&q, &rec(b"v"), size, true),
            Appended::WouldStartBatch
        ));
        assert!(q.lock().open.is_none());
        push(&a, &q, b"v");
        assert!(matches!(
            a.append(&q, &rec(b"v"), size, true),
            Appended::Done { index: 1, .. }
        ));
    }

    #[test]
    fn readiness_follows_linger_expedite_and_backoff() {
        let a = acc(1 << 20);
        let t = a.update_topic(&topic_info("t", 1));
        let q = t.layout.read().unwrap().queues[0].clone();
        let linger = Duration::from_millis(50);
        assert_eq!(q.lock().ready_at(linger, false), None, "empty partition");
        push(&a, &q, b"x");
        let mut state = q.lock();
        let created = state.open.as_ref().unwrap().created;
        assert_eq!(state.ready_at(linger, false), Some(created + linger));
        assert_eq!(
            state.ready_at(linger, true),
            Some(created),
            "flush sends at once"
        );
        let tp = q.tp.clone();
        assert!(state.close_open(&tp).is_none());
        assert_eq!(
            state.ready_at(linger, false),
            Some(created),
            "a closed batch is ready"
        );
        let later = Instant::now() + Duration::from_secs(1);
        state.queue[0].retry_at = Some(later);
        assert_eq!(
            state.ready_at(linger, true),
            Some(later),
            "backoff holds even a flush"
        );
    }

    #[test]
    fn retries_are_requeued_in_first_send_order() {
        let a = acc(10);
        let t = a.update_topic(&topic_info("t", 1));
        let q = t.layout.read().unwrap().queues[0].clone();
        for v in [b"a", b"b", b"c", b"d"] {
            push(&a, &q, v);
        }
        let mut state = q.lock();
        let tp = q.tp.clone();
        state.close_open(&tp);
        let mut sent: Vec<_> = (0..3).map(|_| state.queue.pop_front().unwrap()).collect();
        for (i, b) in sent.iter_mut().enumerate() {
            b.drain_order = Some(i as u64);
        }
        // Responses come back out of order: 2, then 0; batch 1 is still in flight.
        let third = sent.pop().unwrap();
        let second = sent.pop().unwrap();
        let first = sent.pop().unwrap();
        state.requeue(third);
        state.requeue(first);
        state.requeue(second);
        let values: Vec<Vec<u8>> = state
            .queue
            .iter_mut()
            .map(|b| {
                let raw = RecordSet::new(b.bytes()).next().unwrap().unwrap();
                let batch = raw.decode(&DecodeOptions::default()).unwrap();
                let v = batch
                    .records()
                    .next()
                    .unwrap()
                    .unwrap()
                    .value
                    .unwrap()
                    .to_vec();
                v
            })
            .collect();
        assert_eq!(
            values,
            vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec(), b"d".to_vec()]
        );
    }

    #[test]
    fn topics_grow_and_track_available_partitions() {
        let a = acc(100);
        let t = a.update_topic(&topic_info("t", 2));
        assert_eq!(t.layout.read().unwrap().available, vec![0]);
        a.update_topic(&topic_info("t", 4));
        let layout = t.layout.read().unwrap();
        assert_eq!(layout.queues.len(), 4);
        assert_eq!(layout.available, vec![0, 2, 3]);
        let mut order = Vec::new();
        a.for_each_queue(5, |q| order.push(q.tp.partition));
        assert_eq!(
            order,
            vec![1, 2, 3, 0],
            "every queue once, from the start position on"
        );
        assert_eq!(a.topic_names().len(), 1);
    }
}
