//! The transactional producer's requests to its transaction coordinator: finding it (and
//! finding it again when it moves), retrying what Java's `TransactionManager` retries, and
//! InitProducerId, AddPartitionsToTxn, AddOffsetsToTxn/TxnOffsetCommit and EndTxn. The state
//! these requests move between is the parent module's.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Mutex;
use std::time::Instant;

use kingest_protocol::kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kingest_protocol::kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kingest_protocol::kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddPartitionsToTxnRequest, EndTxnRequest, GroupId,
    InitProducerIdRequest, ProducerId, TopicName, TransactionalId, TxnOffsetCommitRequest,
};
use kingest_protocol::kafka_protocol::protocol::StrBytes;
use kingest_protocol::{BrokerError, ErrorCode};

use super::{classify, sb, Attempt, Class, ConsumerGroupMetadata, TxnState};
use crate::client::Client;
use crate::error::{ClientError, Result};
use crate::net::Connection;
use crate::producer::idempotence::{ProducerIdEpoch, TopicPartition};

impl TxnState {
    /// The coordinator of this transactional id.
    async fn coordinator(&self, client: &Client) -> Result<Connection> {
        let mut cached = self.coordinator.lock().await;
        if let Some(c) = cached.as_ref().filter(|c| !c.is_closed()) {
            return Ok(c.clone());
        }
        let c = crate::admin::groups::find_coordinator(client, &self.id, 1).await?;
        *cached = Some(c.clone());
        Ok(c)
    }

    async fn forget_coordinator(&self) {
        *self.coordinator.lock().await = None;
    }

    /// Runs `attempt` against the transaction coordinator (or, with `group`, that group's
    /// coordinator) until it is done, fails for good, or `deadline` passes; finds the
    /// coordinator again when it moved.
    async fn with_coordinator<T, F, Fut>(
        &self,
        client: &Client,
        operation: &'static str,
        group: Option<&str>,
        deadline: Instant,
        mut attempt: F,
    ) -> Result<T>
    where
        F: FnMut(Connection) -> Fut,
        Fut: Future<Output = Result<Attempt<T>>>,
    {
        let backoff = client.config().retry_backoff;
        let mut group_coordinator: Option<Connection> = None;
        loop {
            let conn = match group {
                None => self.coordinator(client).await,
                Some(g) => match group_coordinator.as_ref().filter(|c| !c.is_closed()) {
                    Some(c) => Ok(c.clone()),
                    None => crate::admin::groups::find_coordinator(client, g, 0).await,
                },
            };
            let last = match conn {
                Ok(conn) => {
                    if group.is_some() {
                        group_coordinator = Some(conn.clone());
                    }
                    match attempt(conn).await {
                        Ok(Attempt::Done(t)) => return Ok(t),
                        Ok(Attempt::Retry(e)) => e,
                        Ok(Attempt::Relookup(e)) => {
                            group_coordinator = None;
                            if group.is_none() {
                                self.forget_coordinator().await;
                            }
                            e
                        }
                        Err(e) if e.is_retriable() => {
                            group_coordinator = None;
                            if group.is_none() {
                                self.forget_coordinator().await;
                            }
                            e
                        }
                        Err(e) => return Err(e),
                    }
                }
                Err(e) if e.is_retriable() => e,
                Err(e) => return Err(e),
            };
            tracing::debug!(transactional_id = %self.id, operation, error = %last, "retrying");
            if Instant::now() + backoff >= deadline {
                return Err(ClientError::TransactionTimeout {
                    transactional_id: self.id.clone(),
                    operation,
                    last_error: last.to_string(),
                });
            }
            tokio::time::sleep(backoff).await;
        }
    }

    /// Turns a coordinator's code into an attempt outcome or a final error.
    fn judge<T>(
        &self,
        conn: &Connection,
        api: &'static str,
        code: ErrorCode,
        done: T,
    ) -> Result<Attempt<T>> {
        let error = || ClientError::Broker {
            broker: conn.broker().clone(),
            api,
            source: BrokerError::new(code, None),
        };
        match classify(code) {
            Class::Ok => Ok(Attempt::Done(done)),
            Class::Relookup => Ok(Attempt::Relookup(error())),
            Class::Retry => Ok(Attempt::Retry(error())),
            Class::Fenced => Err(self.fenced(format!("{api} answered {code}"))),
            Class::Fatal | Class::Abortable => Err(error()),
        }
    }

    /// InitProducerId for this transactional id: a first id (`current` NONE) or, after an
    /// abort that needs it, the next epoch of `current`.
    pub(crate) async fn init_producer_id(
        &self,
        client: &Client,
        current: ProducerIdEpoch,
        deadline: Instant,
    ) -> Result<ProducerIdEpoch> {
        let timeout_ms = i32::try_from(self.timeout.as_millis()).unwrap_or(i32::MAX);
        self.with_coordinator(
            client,
            "init_transactions",
            None,
            deadline,
            |conn| async move {
                let version = conn
                    .versions()
                    .negotiate_capped::<InitProducerIdRequest>(4)
                    .map_err(|e| conn.protocol_error::<InitProducerIdRequest>(e))?;
                let mut request = InitProducerIdRequest::default()
                    .with_transactional_id(Some(TransactionalId(sb(&self.id))))
                    .with_transaction_timeout_ms(timeout_ms);
                if version >= 3 {
                    request = request
                        .with_producer_id(ProducerId(current.id))
                        .with_producer_epoch(current.epoch);
                }
                let response = conn.send_version(version, &request).await?;
                let pid = ProducerIdEpoch {
                    id: response.producer_id.0,
                    epoch: response.producer_epoch,
                };
                let code = ErrorCode::from_code(response.error_code);
                self.judge(&conn, "InitProducerId", code, pid)
            },
        )
        .await
    }

    /// AddPartitionsToTxn for `tps`.
    pub(crate) async fn add_partitions(
        &self,
        client: &Client,
        pid: ProducerIdEpoch,
        tps: Vec<TopicPartition>,
        deadline: Instant,
    ) -> Result<Vec<TopicPartition>> {
        let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for tp in &tps {
            by_topic.entry(&tp.topic).or_default().push(tp.partition);
        }
        let topics: Vec<AddPartitionsToTxnTopic> = by_topic
            .into_iter()
            .map(|(t, ps)| {
                AddPartitionsToTxnTopic::default()
                    .with_name(TopicName(sb(t)))
                    .with_partitions(ps)
            })
            .collect();
        let topics = &topics;
        let tps = &tps;
        self.with_coordinator(client, "send", None, deadline, |conn| async move {
            // Version 4 and later are the brokers' batched form.
            let version = conn
                .versions()
                .negotiate_capped::<AddPartitionsToTxnRequest>(3)
                .map_err(|e| conn.protocol_error::<AddPartitionsToTxnRequest>(e))?;
            let request = AddPartitionsToTxnRequest::default()
                .with_v3_and_below_transactional_id(TransactionalId(sb(&self.id)))
                .with_v3_and_below_producer_id(ProducerId(pid.id))
                .with_v3_and_below_producer_epoch(pid.epoch)
                .with_v3_and_below_topics(topics.clone());
            let response = conn.send_version(version, &request).await?;
            // The worst code decides: one partition's failure fails (or retries) them all.
            let mut worst = ErrorCode::None;
            let mut at = String::new();
            for t in &response.results_by_topic_v3_and_below {
                for p in &t.results_by_partition {
                    let code = ErrorCode::from_code(p.partition_error_code);
                    if code != ErrorCode::None
                        && code != ErrorCode::OperationNotAttempted
                        && (worst == ErrorCode::None || !matches!(classify(code), Class::Retry))
                    {
                        worst = code;
                        at = format!("{}-{}", t.name.0.as_str(), p.partition_index);
                    }
                }
            }
            match self.judge(&conn, "AddPartitionsToTxn", worst, tps.clone()) {
                Err(ClientError::Broker { broker, source, .. }) => Err(ClientError::Broker {
                    broker,
                    api: "AddPartitionsToTxn",
                    source: BrokerError::new(source.code, Some(format!("partition {at}"))),
                }),
                other => other,
            }
        })
        .await
    }

    /// AddOffsetsToTxn, then TxnOffsetCommit to the group's coordinator.
    pub(crate) async fn send_offsets(
        &self,
        client: &Client,
        pid: ProducerIdEpoch,
        offsets: &HashMap<(String, i32), i64>,
        group: &ConsumerGroupMetadata,
        deadline: Instant,
    ) -> Result<()> {
        let op = "send_offsets_to_transaction";
        self.with_coordinator(client, op, None, deadline, |conn| async move {
            let version = conn
                .versions()
                .negotiate_capped::<AddOffsetsToTxnRequest>(3)
                .map_err(|e| conn.protocol_error::<AddOffsetsToTxnRequest>(e))?;
            let request = AddOffsetsToTxnRequest::default()
                .with_transactional_id(TransactionalId(sb(&self.id)))
                .with_producer_id(ProducerId(pid.id))
                .with_producer_epoch(pid.epoch)
                .with_group_id(GroupId(sb(&group.group_id)));
            let response = conn.send_version(version, &request).await?;
            let code = ErrorCode::from_code(response.error_code);
            self.judge(&conn, "AddOffsetsToTxn", code, ())
        })
        .await?;
        self.lock().offsets = true;

        // What is still to commit: partitions that failed with a retriable code go again.
        let pending: Mutex<BTreeMap<(String, i32), i64>> =
            Mutex::new(offsets.iter().map(|(k, v)| (k.clone(), *v)).collect());
        let pending = &pending;
        self.with_coordinator(client, op, Some(&group.group_id), deadline, |conn| {
            let batch = pending.lock().unwrap_or_else(|e| e.into_inner()).clone();
            async move {
                let version = conn
                    .versions()
                    .negotiate_capped::<TxnOffsetCommitRequest>(3)
                    .map_err(|e| conn.protocol_error::<TxnOffsetCommitRequest>(e))?;
                let mut topics: BTreeMap<&str, Vec<TxnOffsetCommitRequestPartition>> =
                    BTreeMap::new();
                for ((t, p), o) in &batch {
                    topics.entry(t).or_default().push(
                        TxnOffsetCommitRequestPartition::default()
                            .with_partition_index(*p)
                            .with_committed_offset(*o)
                            .with_committed_metadata(Some(StrBytes::default())),
                    );
                }
                let mut request = TxnOffsetCommitRequest::default()
                    .with_transactional_id(TransactionalId(sb(&self.id)))
                    .with_group_id(GroupId(sb(&group.group_id)))
                    .with_producer_id(ProducerId(pid.id))
                    .with_producer_epoch(pid.epoch)
                    .with_topics(
                        topics
                            .into_iter()
                            .map(|(t, ps)| {
                                TxnOffsetCommitRequestTopic::default()
                                    .with_name(TopicName(sb(t)))
                                    .with_partitions(ps)
                            })
                            .collect(),
                    );
                if version >= 3 {
                    request = request
                        .with_generation_id(group.generation_id)
                        .with_member_id(sb(&group.member_id))
                        .with_group_instance_id(group.group_instance_id.as_deref().map(sb));
                } else if !group.member_id.is_empty() {
                    tracing::debug!(
                        "the group coordinator predates TxnOffsetCommit v3: no generation check"
                    );
                }
                let response = conn.send_version(version, &request).await?;
                let mut retry: Option<ClientError> = None;
                let mut relookup = false;
                let mut done = Vec::new();
                for t in &response.topics {
                    for p in &t.partitions {
                        let code = ErrorCode::from_code(p.error_code);
                        let key = (t.name.0.to_string(), p.partition_index);
                        let error = || ClientError::Partition {
                            broker: conn.broker().clone(),
                            api: "TxnOffsetCommit",
                            topic: key.0.clone(),
                            partition: key.1,
                            source: BrokerError::new(code, None),
                        };
                        match classify(code) {
                            Class::Ok => done.push(key),
                            Class::Relookup => {
                                relookup = true;
                                retry = Some(error());
                            }
                            Class::Retry => retry = Some(error()),
                            Class::Fenced => {
                                return Err(self.fenced(format!("TxnOffsetCommit answered {code}")))
                            }
                            // UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION, FENCED_INSTANCE_ID: the
                            // group rebalanced and this member's offsets must not count.
                            Class::Fatal | Class::Abortable => return Err(error()),
                        }
                    }
                }
                let mut left = pending.lock().unwrap_or_else(|e| e.into_inner());
                for key in done {
                    left.remove(&key);
                }
                Ok(match retry {
                    None if left.is_empty() => Attempt::Done(()),
                    None => Attempt::Retry(ClientError::Config(format!(
                        "TxnOffsetCommit answered without {} of the partitions",
                        left.len()
                    ))),
                    Some(e) if relookup => Attempt::Relookup(e),
                    Some(e) => Attempt::Retry(e),
                })
            }
        })
        .await
    }

    /// EndTxn: commit or abort.
    pub(crate) async fn end(
        &self,
        client: &Client,
        pid: ProducerIdEpoch,
        commit: bool,
        deadline: Instant,
    ) -> Result<()> {
        let op = if commit {
            "commit_transaction"
        } else {
            "abort_transaction"
        };
        self.with_coordinator(client, op, None, deadline, |conn| async move {
            let version = conn
                .versions()
                .negotiate_capped::<EndTxnRequest>(3)
                .map_err(|e| conn.protocol_error::<EndTxnRequest>(e))?;
            let request = EndTxnRequest::default()
                .with_transactional_id(TransactionalId(sb(&self.id)))
                .with_producer_id(ProducerId(pid.id))
                .with_producer_epoch(pid.epoch)
                .with_committed(commit);
            let response = conn.send_version(version, &request).await?;
            let code = ErrorCode::from_code(response.error_code);
            self.judge(&conn, "EndTxn", code, ())
        })
        .await
    }
}
