//! What happens to each batch when its produce request finishes: acknowledged, retried (after
//! a backoff, with a metadata refresh when the error says leadership may have moved) or failed
//! for good, following the Java producer's `Sender.completeBatch`.
//!
//! * error code NONE, or DUPLICATE_SEQUENCE_NUMBER (the broker already has the batch): the
//!   records are delivered at the batch's base offset plus their index;
//! * a retriable code, or a request that failed as a whole (connection lost, request timed
//!   out: the outcome is unknown): the batch goes back to the front of its partition's queue
//!   with its sequence unchanged, so that a broker which did write it deduplicates it;
//! * the idempotence-specific codes are decided by [`super::idempotence`];
//! * anything else, or retries exhausted, or `delivery_timeout` passed: the batch's records fail
//!   with an error naming the topic, partition and broker.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use kingest_protocol::kafka_protocol::messages::produce_response::PartitionProduceResponse;
use kingest_protocol::kafka_protocol::messages::ProduceResponse;
use kingest_protocol::{BrokerError, ErrorCode};

use super::batch::{Outcome, ProducerBatch};
use super::sender::{InFlightBatch, Sender};
use crate::error::{BrokerRef, ClientError, Result};

impl Sender {
    /// Settles the batches of one finished request.
    pub(super) fn on_produced(
        &mut self,
        broker: &BrokerRef,
        batches: Vec<InFlightBatch>,
        result: Result<Option<ProduceResponse>>,
    ) {
        let now = Instant::now();
        for ifb in &batches {
            let mut state = ifb.queue.lock();
            state.in_flight = state.in_flight.saturating_sub(1);
        }
        match result {
            // acks=0: sent is all we will ever know.
            Ok(None) => {
                for ifb in batches {
                    self.delivered(ifb.batch, -1, -1);
                }
            }
            Ok(Some(response)) => {
                let mut by_partition: HashMap<(&str, i32), &PartitionProduceResponse> =
                    HashMap::new();
                for topic in &response.responses {
                    for p in &topic.partition_responses {
                        by_partition.insert((topic.name.0.as_str(), p.index), p);
                    }
                }
                for ifb in batches {
                    let key = (&*ifb.batch.tp.topic, ifb.batch.tp.partition);
                    match by_partition.get(&key).copied() {
                        Some(p) => self.on_partition(broker, ifb, p, now),
                        None => {
                            let reason = format!(
                                "produce response has no entry for {}-{}",
                                ifb.batch.tp.topic, ifb.batch.tp.partition
                            );
                            let e = Arc::new(ClientError::Disconnected {
                                broker: broker.clone(),
                                reason,
                            });
                            self.on_request_error(ifb, &e, now);
                        }
                    }
                }
            }
            Err(e) => {
                tracing::debug!(broker = %broker, error = %e, "produce request failed");
                let e = Arc::new(e);
                for ifb in batches {
                    self.on_request_error(ifb, &e, now);
                }
            }
        }
        // Expired batches may have been waiting for their partition's last answer.
        if let Some(idem) = &mut self.idempotence {
            idem.resolve();
        }
    }

    /// One partition's answer.
    fn on_partition(
        &mut self,
        broker: &BrokerRef,
        ifb: InFlightBatch,
        p: &PartitionProduceResponse,
        now: Instant,
    ) {
        let code = ErrorCode::from_code(p.error_code);
        if code.is_ok() || code == ErrorCode::DuplicateSequenceNumber {
            self.delivered(ifb.batch, p.base_offset, p.log_append_time_ms);
            return;
        }
        let mut message = p.error_message.as_ref().map(|m| m.to_string());
        if !p.record_errors.is_empty() {
            let records: Vec<String> = p
                .record_errors
                .iter()
                .map(|r| {
                    let why = r
                        .batch_index_error_message
                        .as_ref()
                        .map_or("invalid", |m| m.as_str());
                    format!("record {}: {why}", r.batch_index)
                })
                .collect();
            let joined = records.join("; ");
            message = Some(match message {
                Some(m) => format!("{m} ({joined})"),
                None => joined,
            });
        }
        let batch = &ifb.batch;
        let err = ClientError::Partition {
            broker: broker.clone(),
            api: "Produce",
            topic: batch.tp.topic.to_string(),
            partition: batch.tp.partition,
            source: BrokerError::new(code, message),
        };
        let (in_time, expired) = self.may_retry(batch, now);
        let retry = in_time
            && match (&mut self.idempotence, batch.stamped) {
                (Some(idem), Some(sent)) => {
                    idem.can_retry(&batch.tp, batch.id, sent, code, p.log_start_offset)
                }
                _ => code.is_retriable(),
            };
        if retry {
            tracing::debug!(error = %err, attempt = batch.attempts, "retrying batch");
            if code.is_retriable() {
                // NOT_LEADER_OR_FOLLOWER, UNKNOWN_TOPIC_OR_PARTITION, NOT_ENOUGH_REPLICAS...: the
                // leader may have moved; learn where before the retry.
                self.refresh_topics.insert(batch.tp.topic.clone());
            }
            self.requeue(ifb, err.to_string(), now);
            return;
        }
        if let (Some(idem), Some(_)) = (&mut self.idempotence, batch.stamped) {
            // The broker refused the batch: its sequences are a gap to skip with a new epoch.
            idem.failed(&batch.tp, batch.id, true);
        }
        let err = if expired && code.is_retriable() {
            self.timeout_error(batch, Some(err.to_string()))
        } else {
            err
        };
        self.fail(ifb.batch, Arc::new(err));
    }

    /// The request failed as a whole (no connection, lost connection, timeout, encoding).
    fn on_request_error(&mut self, ifb: InFlightBatch, e: &Arc<ClientError>, now: Instant) {
        let (in_time, expired) = self.may_retry(&ifb.batch, now);
        if in_time && e.is_retriable() {
            self.refresh_topics.insert(ifb.batch.tp.topic.clone());
            // Same bytes, same sequence: if the first attempt was written, the broker drops the
            // duplicate and answers with the original offset.
            self.requeue(ifb, e.to_string(), now);
            return;
        }
        let batch = ifb.batch;
        if let (Some(idem), Some(_)) = (&mut self.idempotence, batch.stamped) {
            // Sent, but whether it was written is unknown.
            idem.failed(&batch.tp, batch.id, false);
        }
        let err = if expired {
            Arc::new(self.timeout_error(&batch, Some(e.to_string())))
        } else {
            e.clone()
        };
        self.fail(batch, err);
    }

    /// Whether a batch may be tried again: (`attempts` below `retries` and inside the delivery
    /// timeout, whether the delivery timeout has passed).
    fn may_retry(&self, batch: &ProducerBatch, now: Instant) -> (bool, bool) {
        let expired =
            now.saturating_duration_since(batch.created) >= self.shared.config.delivery_timeout;
        (
            !expired && batch.attempts < self.shared.config.retries,
            expired,
        )
    }

    fn timeout_error(&self, batch: &ProducerBatch, last_error: Option<String>) -> ClientError {
        ClientError::DeliveryTimeout {
            topic: batch.tp.topic.to_string(),
            partition: batch.tp.partition,
            timeout: self.shared.config.delivery_timeout,
            last_error,
        }
    }

    /// Puts a batch back at the front of its partition, after a backoff.
    fn requeue(&mut self, ifb: InFlightBatch, error: String, now: Instant) {
        let InFlightBatch { queue, mut batch } = ifb;
        batch.last_error = Some(error);
        batch.retry_at = Some(now + self.backoff(batch.attempts));
        queue.lock().requeue(batch);
    }

    fn delivered(&mut self, batch: ProducerBatch, base_offset: i64, log_append_time: i64) {
        if let (Some(idem), Some(sent)) = (&mut self.idempotence, batch.stamped) {
            idem.acknowledged(&batch.tp, batch.id, sent);
        }
        self.shared.finish(
            &batch.shared,
            batch.reserved,
            Outcome::Delivered {
                base_offset,
                log_append_time,
            },
        );
    }

    /// Fails every record of the batch with `err`; in a transaction, that fails the
    /// transaction too (or the producer, when the broker says it was fenced).
    pub(super) fn fail(&mut self, batch: ProducerBatch, err: Arc<ClientError>) {
        if let Some(txn) = &self.shared.txn {
            let code = err.broker_error().map(|b| b.code);
            if matches!(
                code,
                Some(ErrorCode::ProducerFenced | ErrorCode::InvalidProducerEpoch)
            ) {
                self.shared
                    .note_fenced(&txn.fenced(format!("Produce answered {err}")));
            } else {
                txn.set_abortable(err.clone());
            }
        }
        tracing::debug!(topic = %batch.tp.topic, partition = batch.tp.partition, error = %err, records = batch.records, "batch failed");
        self.shared
            .finish(&batch.shared, batch.reserved, Outcome::Failed(err));
    }
}
