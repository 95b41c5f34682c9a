//! The producer's background task: it decides which batches may go, groups them by leader
//! broker into produce requests, keeps at most `max_in_flight` requests outstanding per broker,
//! gets the idempotent producer its id (and new epochs), refreshes metadata when leaders are
//! unknown or move, and expires batches past `delivery_timeout`.
//!
//! One task owns all of that state, so none of it needs a lock; it only takes each partition's
//! lock for a moment to inspect or pop the head batch. Requests run in one task per broker
//! ([`super::dispatch`], so a slow broker never holds up the others) and report back over a
//! channel; what happens to each batch of a response is in [`super::response`].

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kingest_protocol::kafka_protocol::messages::produce_request::{
    PartitionProduceData, TopicProduceData,
};
use kingest_protocol::kafka_protocol::messages::{
    InitProducerIdRequest, ProduceRequest, ProduceResponse, ProducerId, TopicName, TransactionalId,
};
use kingest_protocol::kafka_protocol::protocol::StrBytes;
use kingest_protocol::{BrokerError, ErrorCode};
use tokio::sync::mpsc;

use super::accumulator::{PartitionQueue, PartitionState};
use super::batch::{FailedBatch, Outcome, ProducerBatch};
use super::dispatch::{self, Job};
use super::idempotence::{Drain, Idempotence, ProducerIdEpoch, TopicPartition};
use super::transaction::Gate;
use super::Shared;
use crate::client::Client;
use crate::cluster::ClusterMetadata;
use crate::error::{BrokerRef, ClientError, Result};

/// A batch in a request, with the queue it goes back to if it is retried.
#[derive(Debug)]
pub(super) struct InFlightBatch {
    pub(super) queue: Arc<PartitionQueue>,
    pub(super) batch: ProducerBatch,
}

/// What the helper tasks report.
#[derive(Debug)]
pub(super) enum Event {
    /// A produce request finished: the response (`None` for acks=0) or why it failed.
    Produced {
        broker: BrokerRef,
        batches: Vec<InFlightBatch>,
        result: Result<Option<ProduceResponse>>,
    },
    /// InitProducerId finished.
    ProducerId(Result<ProducerIdEpoch>),
    /// A metadata refresh finished.
    Refreshed,
    /// AddPartitionsToTxn finished, for transaction number `number`.
    TxnPartitions {
        number: u64,
        result: Result<Vec<TopicPartition>>,
    },
}

/// The sender's state.
pub(super) struct Sender {
    pub(super) shared: Arc<Shared>,
    pub(super) events_tx: mpsc::UnboundedSender<Event>,
    events_rx: mpsc::UnboundedReceiver<Event>,
    /// `None` when idempotence is off.
    pub(super) idempotence: Option<Idempotence>,
    /// Outstanding produce requests per broker id.
    broker_in_flight: HashMap<i32, usize>,
    requests_in_flight: usize,
    /// Numbers batches in the order they are first sent.
    drain_counter: u64,
    snapshot: Arc<ClusterMetadata>,
    /// Topics whose metadata should be refreshed.
    pub(super) refresh_topics: BTreeSet<Arc<str>>,
    refreshing: bool,
    next_refresh: Instant,
    /// When to ask for a producer id again after a retriable failure.
    pid_retry_at: Option<Instant>,
    pid_failures: u32,
    /// The request task of each broker.
    dispatchers: HashMap<i32, mpsc::UnboundedSender<Job>>,
    /// Where the next scan of the partitions starts.
    drain_start: usize,
}

/// A produce request being put together for one broker.
struct RequestBuilder {
    broker: BrokerRef,
    size: usize,
    batches: Vec<InFlightBatch>,
}

impl Sender {
    pub(super) fn new(
        shared: Arc<Shared>,
        events_tx: mpsc::UnboundedSender<Event>,
        events_rx: mpsc::UnboundedReceiver<Event>,
    ) -> Self {
        let idempotence = shared.config.idempotence.then(Idempotence::default);
        let snapshot = Arc::new(ClusterMetadata::default());
        Self {
            shared,
            events_tx,
            events_rx,
            idempotence,
            broker_in_flight: HashMap::new(),
            requests_in_flight: 0,
            drain_counter: 0,
            snapshot,
            refresh_topics: BTreeSet::new(),
            refreshing: false,
            next_refresh: Instant::now(),
            pid_retry_at: None,
            pid_failures: 0,
            dispatchers: HashMap::new(),
            drain_start: 0,
        }
    }

    /// Runs until the producer is closed (or dropped) and everything it holds is delivered,
    /// failed or expired.
    pub(super) async fn run(mut self) {
        loop {
            while let Ok(event) = self.events_rx.try_recv() {
                self.handle(event);
            }
            let now = Instant::now();
            self.maybe_request_producer_id(now);
            let (next, pending) = self.drain(now);
            self.maybe_add_partitions();
            self.maybe_refresh(now);
            if pending == 0
                && self.requests_in_flight == 0
                && self.shared.is_closing()
                && self.shared.appends_in_progress() == 0
            {
                break;
            }
            let mut wake_at = next.unwrap_or(now + Duration::from_secs(3600));
            if let Some(at) = self.pid_retry_at {
                wake_at = wake_at.min(at);
            }
            if !self.refresh_topics.is_empty() && !self.refreshing {
                wake_at = wake_at.min(self.next_refresh);
            }
            tokio::select! {
                event = self.events_rx.recv() => {
                    if let Some(event) = event {
                        self.handle(event);
                    }
                }
                _ = self.shared.wake.notified() => {}
                _ = tokio::time::sleep_until(wake_at.into()) => {}
            }
        }
        tracing::debug!("producer sender stopped");
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Produced {
                broker,
                batches,
                result,
            } => {
                if let Some(n) = self.broker_in_flight.get_mut(&broker.id) {
                    *n = n.saturating_sub(1);
                }
                self.requests_in_flight -= 1;
                self.on_produced(&broker, batches, result);
            }
            Event::ProducerId(result) => self.on_producer_id(result),
            Event::Refreshed => {
                self.refreshing = false;
                self.next_refresh = Instant::now() + self.shared.config.retry_backoff;
            }
            Event::TxnPartitions { number, result } => {
                if let Err(e) = &result {
                    tracing::debug!(error = %e, "AddPartitionsToTxn failed");
                    self.shared.note_fenced(e);
                }
                if let Some(txn) = &self.shared.txn {
                    txn.partitions_added(number, result);
                }
            }
        }
    }

    /// Adds the partitions that have batches ready to the transaction, one request at a time.
    fn maybe_add_partitions(&mut self) {
        let Some(txn) = &self.shared.txn else {
            return;
        };
        if self.shared.fatal.get().is_some() {
            return;
        }
        let Some((number, tps)) = txn.take_waiting() else {
            return;
        };
        let shared = self.shared.clone();
        let tx = self.events_tx.clone();
        tokio::spawn(async move {
            let Some(txn) = &shared.txn else {
                return;
            };
            let pid = shared
                .producer_id
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .unwrap_or(ProducerIdEpoch::NONE);
            let deadline = Instant::now() + shared.config.delivery_timeout;
            let result = txn.add_partitions(&shared.client, pid, tps, deadline).await;
            let _ = tx.send(Event::TxnPartitions { number, result });
        });
    }

    fn on_producer_id(&mut self, result: Result<ProducerIdEpoch>) {
        let Some(idem) = &mut self.idempotence else {
            return;
        };
        match result {
            Ok(pid) => {
                tracing::debug!(
                    producer_id = pid.id,
                    epoch = pid.epoch,
                    "producer id assigned"
                );
                idem.set_producer_id(pid);
                *self
                    .shared
                    .producer_id
                    .lock()
                    .unwrap_or_else(|e| e.into_inner()) = Some(pid);
                self.pid_failures = 0;
                self.pid_retry_at = None;
            }
            Err(e) if e.is_retriable() => {
                tracing::warn!(error = %e, "InitProducerId failed; retrying");
                idem.request_failed();
                self.pid_failures += 1;
                self.pid_retry_at = Some(Instant::now() + self.backoff(self.pid_failures));
            }
            Err(e) => {
                tracing::error!(error = %e, "the idempotent producer cannot get a producer id");
                let _ = self.shared.fatal.set(Arc::new(ClientError::ProducerFatal {
                    reason: format!("cannot get a producer id: {e}"),
                }));
                idem.request_failed();
            }
        }
    }

    /// Sends InitProducerId when the idempotent producer needs a first id or a new epoch.
    fn maybe_request_producer_id(&mut self, now: Instant) {
        if self.shared.fatal.get().is_some() || self.pid_retry_at.is_some_and(|at| at > now) {
            return;
        }
        let Some(idem) = &mut self.idempotence else {
            return;
        };
        let Some(current) = idem.wants_producer_id() else {
            return;
        };
        if let Some(txn) = &self.shared.txn {
            // The transaction methods get producer ids from the coordinator. A new epoch the
            // sequences need waits for the transaction's abort, which must come first.
            if current.is_valid()
                && !txn
                    .bump_needed
                    .swap(true, std::sync::atomic::Ordering::SeqCst)
            {
                txn.set_abortable(Arc::new(ClientError::ProducerFatal {
                    reason:
                        "a batch's sequence numbers were rejected; the transaction must be aborted"
                            .to_owned(),
                }));
                self.shared.wake.notify_one();
            }
            return;
        }
        idem.requesting();
        self.pid_retry_at = None;
        let client = self.shared.client.clone();
        let tx = self.events_tx.clone();
        tokio::spawn(async move {
            let _ = tx.send(Event::ProducerId(init_producer_id(&client, current).await));
        });
    }

    /// Starts a metadata refresh for the topics that need one, at most one at a time and no
    /// more often than `retry_backoff`.
    fn maybe_refresh(&mut self, now: Instant) {
        if self.refreshing || self.refresh_topics.is_empty() || now < self.next_refresh {
            return;
        }
        self.refreshing = true;
        let topics: Vec<String> = std::mem::take(&mut self.refresh_topics)
            .iter()
            .map(|t| t.to_string())
            .collect();
        let client = self.shared.client.clone();
        let tx = self.events_tx.clone();
        tokio::spawn(async move {
            if let Err(e) = client.refresh_metadata(&topics).await {
                tracing::debug!(error = %e, ?topics, "producer metadata refresh failed");
            }
            let _ = tx.send(Event::Refreshed);
        });
    }

    /// The wait before retry number `attempt` (1-based): `retry_backoff` doubling up to
    /// `retry_backoff_max`, spread by ±20% as the Java client's `ExponentialBackoff`.
    pub(super) fn backoff(&self, attempt: u32) -> Duration {
        let c = &self.shared.config;
        let raw = c
            .retry_backoff
            .saturating_mul(1 << attempt.saturating_sub(1).min(20))
            .min(c.retry_backoff_max.max(c.retry_backoff));
        raw.mul_f64(0.8 + 0.4 * rand::random::<f64>())
    }

    /// One pass over every partition: expires old batches, picks the sendable head batches,
    /// and sends one request per broker. Returns when to look again and how many partitions
    /// still hold batches.
    fn drain(&mut self, now: Instant) -> (Option<Instant>, usize) {
        let shared = self.shared.clone();
        let config = &shared.config;
        let fresh = shared.client.metadata();
        if !Arc::ptr_eq(&fresh, &self.snapshot) {
            for name in shared.accumulator.topic_names() {
                if let Some(info) = fresh.topic(&name) {
                    shared.accumulator.update_topic(info);
                }
            }
            self.snapshot = fresh;
        }
        let fatal = shared.fatal.get().cloned();
        let expedite = shared.is_closing() || shared.flushing() || shared.memory_waiters() > 0;
        let guarantee_order = !config.idempotence && config.max_in_flight == 1;
        let mut requests: HashMap<i32, RequestBuilder> = HashMap::new();
        let mut next_wake: Option<Instant> = None;
        let mut pending = 0;
        let mut dead: Vec<(ProducerBatch, Arc<ClientError>)> = Vec::new();
        let mut unbuildable = Vec::new();
        let wake =
            |at: Instant, next: &mut Option<Instant>| *next = Some(next.map_or(at, |n| n.min(at)));

        self.drain_start = self.drain_start.wrapping_add(1);
        shared
            .accumulator
            .for_each_queue(self.drain_start, |queue| {
                let mut state = queue.lock();
                if let Some(err) = &fatal {
                    if let Some(failed) = state.close_open(&queue.tp) {
                        unbuildable.push(*failed);
                    }
                    dead.extend(state.queue.drain(..).map(|b| (b, err.clone())));
                    return;
                }
                self.expire(&queue.tp, &mut state, now, &mut dead, &mut unbuildable);
                let Some(ready_at) = state.ready_at(config.linger, expedite) else {
                    return;
                };
                pending += 1;
                let oldest = state
                    .queue
                    .front()
                    .map(|b| b.created)
                    .into_iter()
                    .chain(state.open.as_ref().map(|o| o.created))
                    .min();
                if let Some(oldest) = oldest {
                    wake(oldest + config.delivery_timeout, &mut next_wake);
                }
                if ready_at > now {
                    wake(ready_at, &mut next_wake);
                    return;
                }
                if let Some(txn) = &shared.txn {
                    match txn.gate(&queue.tp) {
                        Gate::Send => {}
                        Gate::Wait => return,
                        Gate::Fail(err) => {
                            // The transaction failed: what it still holds is never sent.
                            if let Some(failed) = state.close_open(&queue.tp) {
                                unbuildable.push(*failed);
                            }
                            for batch in state.queue.drain(..) {
                                if let (Some(idem), Some(_)) =
                                    (&mut self.idempotence, batch.stamped)
                                {
                                    // Sent before: its outcome is unknown, so the abort takes
                                    // a new epoch.
                                    idem.failed(&queue.tp, batch.id, false);
                                    txn.bump_needed
                                        .store(true, std::sync::atomic::Ordering::SeqCst);
                                }
                                dead.push((batch, err.clone()));
                            }
                            return;
                        }
                    }
                }
                let leader = self
                    .snapshot
                    .partition(&queue.tp.topic, queue.tp.partition)
                    .map(|p| p.leader)
                    .filter(|&l| l >= 0);
                let Some(broker) = leader.and_then(|l| self.snapshot.brokers.get(&l)) else {
                    self.refresh_topics.insert(queue.tp.topic.clone());
                    return;
                };
                if !requests.contains_key(&broker.id)
                    && self.broker_in_flight.get(&broker.id).copied().unwrap_or(0)
                        >= config.max_in_flight
                {
                    return;
                }
                if guarantee_order && state.in_flight > 0 {
                    return;
                }
                if state.queue.is_empty() {
                    if let Some(failed) = state.close_open(&queue.tp) {
                        unbuildable.push(*failed);
                        return;
                    }
                }
                let in_flight = state.in_flight;
                let Some(head) = state.queue.front_mut() else {
                    return;
                };
                let request = requests.entry(broker.id).or_insert_with(|| RequestBuilder {
                    broker: BrokerRef {
                        id: broker.id,
                        addr: broker.addr(),
                    },
                    size: 0,
                    batches: Vec::new(),
                });
                if !request.batches.is_empty()
                    && request.size + head.size() > config.max_request_size
                {
                    // Full: this partition goes in the next request.
                    wake(now, &mut next_wake);
                    return;
                }
                if let Some(idem) = &mut self.idempotence {
                    match idem.drain(&queue.tp, head.id, head.records, in_flight) {
                        Drain::Wait => return,
                        Drain::Send { pid, base_sequence } => {
                            head.stamp(pid, base_sequence, shared.txn.is_some())
                        }
                    }
                }
                let mut batch = state.queue.pop_front().expect("head exists");
                batch.attempts += 1;
                batch.retry_at = None;
                if batch.drain_order.is_none() {
                    batch.drain_order = Some(self.drain_counter);
                    self.drain_counter += 1;
                }
                state.in_flight += 1;
                // One batch per partition per request, as Java does; if more are ready, come back
                // at once for the next request rather than waiting for a response.
                if let Some(at) = state.ready_at(config.linger, expedite) {
                    wake(at, &mut next_wake);
                }
                request.size += batch.size();
                request.batches.push(InFlightBatch {
                    queue: queue.clone(),
                    batch,
                });
            });

        for failed in unbuildable {
            self.shared.finish(
                &failed.shared,
                failed.reserved,
                Outcome::Failed(Arc::new(failed.error)),
            );
        }
        for (batch, err) in dead {
            self.fail(batch, err);
        }
        for (_, request) in requests {
            if !request.batches.is_empty() {
                self.spawn_request(request);
            }
        }
        (next_wake, pending)
    }

    /// Takes out the batches of one partition that are past `delivery_timeout` (none of them is
    /// in flight: in-flight batches are judged when their response arrives).
    fn expire(
        &mut self,
        tp: &super::idempotence::TopicPartition,
        state: &mut PartitionState,
        now: Instant,
        dead: &mut Vec<(ProducerBatch, Arc<ClientError>)>,
        unbuildable: &mut Vec<FailedBatch>,
    ) {
        let timeout = self.shared.config.delivery_timeout;
        let expired = |created: Instant| now.saturating_duration_since(created) >= timeout;
        if state.open.as_ref().is_some_and(|o| expired(o.created)) {
            let open = state.open.take().expect("checked");
            let err = ClientError::DeliveryTimeout {
                topic: tp.topic.to_string(),
                partition: tp.partition,
                timeout,
                last_error: None,
            };
            unbuildable.push(FailedBatch {
                shared: open.shared,
                reserved: open.reserved,
                error: err,
            });
        }
        if !state.queue.iter().any(|b| expired(b.created)) {
            return;
        }
        let mut kept = std::collections::VecDeque::with_capacity(state.queue.len());
        for batch in state.queue.drain(..) {
            if expired(batch.created) {
                let err = ClientError::DeliveryTimeout {
                    topic: tp.topic.to_string(),
                    partition: tp.partition,
                    timeout,
                    last_error: batch.last_error.clone(),
                };
                if let Some(idem) = &mut self.idempotence {
                    // Sent before: it may have been written, so the partition's sequences are
                    // unresolved until the batches after it answer.
                    idem.failed(tp, batch.id, false);
                }
                dead.push((batch, Arc::new(err)));
            } else {
                kept.push_back(batch);
            }
        }
        state.queue = kept;
    }

    /// Builds the ProduceRequest for one broker and hands it to that broker's request task.
    fn spawn_request(&mut self, request: RequestBuilder) {
        let config = &self.shared.config;
        let mut topics: Vec<TopicProduceData> = Vec::new();
        let mut names: Vec<Arc<str>> = Vec::new();
        let RequestBuilder {
            broker,
            mut batches,
            ..
        } = request;
        for ifb in &mut batches {
            let data = PartitionProduceData::default()
                .with_index(ifb.batch.tp.partition)
                .with_records(Some(ifb.batch.bytes()));
            match names
                .iter()
                .position(|n| Arc::ptr_eq(n, &ifb.batch.tp.topic) || **n == *ifb.batch.tp.topic)
            {
                Some(i) => topics[i].partition_data.push(data),
                None => {
                    names.push(ifb.batch.tp.topic.clone());
                    topics.push(
                        TopicProduceData::default()
                            .with_name(TopicName(StrBytes::from_string(
                                ifb.batch.tp.topic.to_string(),
                            )))
                            .with_partition_data(vec![data]),
                    );
                }
            }
        }
        let acks = config.acks.wire();
        let timeout_ms = i32::try_from(
            self.shared
                .client
                .config()
                .connection
                .request_timeout
                .as_millis(),
        )
        .unwrap_or(i32::MAX);
        let produce = ProduceRequest::default()
            .with_transactional_id(
                self.shared
                    .txn
                    .as_ref()
                    .map(|t| TransactionalId(StrBytes::from_string(t.id.clone()))),
            )
            .with_acks(acks)
            .with_timeout_ms(timeout_ms)
            .with_topic_data(topics);
        *self.broker_in_flight.entry(broker.id).or_insert(0) += 1;
        self.requests_in_flight += 1;
        let job = Job {
            broker,
            acks,
            request: produce,
            batches,
        };
        let dispatcher = self.dispatchers.entry(job.broker.id).or_insert_with(|| {
            dispatch::spawn_broker(self.shared.client.clone(), self.events_tx.clone())
        });
        if let Err(mpsc::error::SendError(job)) = dispatcher.send(job) {
            // Its task is gone (it only ends when this sender drops it): report the request
            // failed so its batches are retried through a new one.
            self.dispatchers.remove(&job.broker.id);
            let reason = "the broker's request task stopped".to_owned();
            let result = Err(ClientError::Disconnected {
                broker: job.broker.clone(),
                reason,
            });
            let _ = self.events_tx.send(Event::Produced {
                broker: job.broker,
                batches: job.batches,
                result,
            });
        }
    }
}

/// InitProducerId for an idempotent (non-transactional) producer. With a current id and epoch
/// and a broker speaking version 3 or later, asks for that producer's next epoch (brokers may
/// answer with a new id instead, which serves as well); otherwise asks for a new id.
async fn init_producer_id(client: &Client, current: ProducerIdEpoch) -> Result<ProducerIdEpoch> {
    let conn = client.any_connection().await?;
    let version = conn.version_of::<InitProducerIdRequest>()?;
    let ask = |pid: ProducerIdEpoch| {
        InitProducerIdRequest::default()
            .with_transactional_id(None)
            .with_transaction_timeout_ms(i32::MAX)
            .with_producer_id(ProducerId(pid.id))
            .with_producer_epoch(pid.epoch)
    };
    let mut attempts = vec![ProducerIdEpoch::NONE];
    if version >= 3 && current.is_valid() {
        attempts.insert(0, current);
    }
    let mut last = None;
    for pid in attempts {
        let response = conn.send_version(version, &ask(pid)).await?;
        let code = ErrorCode::from_code(response.error_code);
        if code.is_ok() {
            return Ok(ProducerIdEpoch {
                id: response.producer_id.0,
                epoch: response.producer_epoch,
            });
        }
        last = Some(ClientError::Broker {
            broker: conn.broker().clone(),
            api: "InitProducerId",
            source: BrokerError::new(code, None),
        });
        if code.is_retriable() {
            break;
        }
    }
    Err(last.expect("at least one attempt"))
}
