//! The transaction methods of [`Producer`] (Java's `initTransactions`, `beginTransaction`,
//! `sendOffsetsToTransaction`, `commitTransaction`, `abortTransaction`); the state and the
//! coordinator requests behind them are in `transaction.rs`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use super::batch::clone_error;
use super::idempotence::ProducerIdEpoch;
use super::sender::Event;
use super::transaction::{ConsumerGroupMetadata, TxnState};
use super::Producer;
use crate::error::{ClientError, Result};

impl Producer {
    /// The transaction state, or an error naming `operation` when the producer has no
    /// `transactional_id`.
    fn txn(&self, operation: &'static str) -> Result<&TxnState> {
        let shared = &*self.handle.shared;
        if let Some(e) = shared.fatal.get() {
            return Err(clone_error(e));
        }
        shared.txn.as_ref().ok_or_else(|| {
            ClientError::Config(format!(
                "{operation} needs a transactional producer: set transactional_id"
            ))
        })
    }

    /// Fails with the fatal error if the producer was fenced meanwhile.
    fn check_fatal(&self) -> Result<()> {
        match self.handle.shared.fatal.get() {
            Some(e) => Err(clone_error(e)),
            None => Ok(()),
        }
    }

    /// Records a fencing as fatal and returns the error to give the caller.
    fn txn_error(&self, error: ClientError) -> ClientError {
        self.handle.shared.note_fenced(&error);
        match (&error, self.handle.shared.fatal.get()) {
            (ClientError::ProducerFenced { .. }, Some(fatal)) => clone_error(fatal),
            _ => error,
        }
    }

    fn deadline(&self) -> Instant {
        Instant::now() + self.handle.shared.config.max_block
    }

    fn current_pid(&self) -> ProducerIdEpoch {
        self.producer_id().unwrap_or(ProducerIdEpoch::NONE)
    }

    /// Hands a producer id from the coordinator to the sender (which stamps batches with it and
    /// starts every partition's sequences again from 0).
    fn install_producer_id(&self, pid: ProducerIdEpoch) {
        let shared = &*self.handle.shared;
        *shared.producer_id.lock().unwrap_or_else(|e| e.into_inner()) = Some(pid);
        let _ = shared.control.send(Event::ProducerId(Ok(pid)));
        shared.wake.notify_one();
    }

    /// Registers the producer with the coordinator of its `transactional_id` and gets its
    /// producer id and epoch. Any older producer with the same id is fenced from here on, and a
    /// transaction it left open is aborted by the coordinator. Call once, before the first
    /// transaction; retried (finding the coordinator again if it moved) up to `max_block`.
    pub async fn init_transactions(&self) -> Result<()> {
        let txn = self.txn("init_transactions")?;
        let _op = txn.ops.lock().await;
        txn.require_uninitialized()?;
        let client = &self.handle.shared.client;
        let pid = txn
            .init_producer_id(client, ProducerIdEpoch::NONE, self.deadline())
            .await
            .map_err(|e| self.txn_error(e))?;
        tracing::debug!(transactional_id = %txn.id, producer_id = pid.id, epoch = pid.epoch, "transactions initialized");
        self.install_producer_id(pid);
        txn.initialized()
    }

    /// Starts a transaction: records sent from now until `commit_transaction` or
    /// `abort_transaction` become visible to read_committed consumers together, or never.
    pub fn begin_transaction(&self) -> Result<()> {
        self.txn("begin_transaction")?.begin()
    }

    /// Adds consumed offsets (the next offset to read, per topic and partition) to the current
    /// transaction: they are committed to `group`'s consumer group if and only if the
    /// transaction commits. With the metadata of a group member
    /// ([`crate::group::consumer::GroupConsumer::group_metadata`]) the group coordinator refuses
    /// them when the member was fenced by a rebalance; the transaction must then be aborted.
    pub async fn send_offsets_to_transaction(
        &self,
        offsets: &HashMap<(String, i32), i64>,
        group: &ConsumerGroupMetadata,
    ) -> Result<()> {
        let txn = self.txn("send_offsets_to_transaction")?;
        let _op = txn.ops.lock().await;
        self.check_fatal()?;
        txn.require_in_transaction("send_offsets_to_transaction")?;
        if offsets.is_empty() {
            return Ok(());
        }
        let client = &self.handle.shared.client;
        let pid = self.current_pid();
        match txn
            .send_offsets(client, pid, offsets, group, self.deadline())
            .await
        {
            Ok(()) => Ok(()),
            Err(e) => {
                let e = self.txn_error(e);
                if !matches!(e, ClientError::ProducerFenced { .. }) {
                    // The offsets may be half committed: the transaction can only abort.
                    txn.set_abortable(Arc::new(ClientError::TransactionAbortable {
                        transactional_id: txn.id.clone(),
                        operation: "send_offsets_to_transaction",
                        reason: e.to_string(),
                    }));
                }
                Err(e)
            }
        }
    }

    /// Sends everything still buffered, then commits the transaction: its records and offsets
    /// become visible together. If any of its records failed, nothing is committed and this
    /// returns [`ClientError::TransactionAbortable`]: call `abort_transaction`. A
    /// [`ClientError::TransactionTimeout`] may be retried by calling this again.
    pub async fn commit_transaction(&self) -> Result<()> {
        let txn = self.txn("commit_transaction")?;
        let _op = txn.ops.lock().await;
        self.check_fatal()?;
        txn.start_ending(true)?;
        self.flush().await;
        self.check_fatal()?;
        if let Some(failure) = txn.failure() {
            return Err(ClientError::TransactionAbortable {
                transactional_id: txn.id.clone(),
                operation: "commit_transaction",
                reason: failure.to_string(),
            });
        }
        if txn.has_content() {
            let client = &self.handle.shared.client;
            if let Err(e) = txn
                .end(client, self.current_pid(), true, self.deadline())
                .await
            {
                let e = self.txn_error(e);
                match &e {
                    // The coordinator may still commit: the caller may try again.
                    ClientError::TransactionTimeout { .. } => txn.resume(),
                    ClientError::ProducerFenced { .. } => {}
                    other => txn.set_abortable(Arc::new(ClientError::TransactionAbortable {
                        transactional_id: txn.id.clone(),
                        operation: "commit_transaction",
                        reason: other.to_string(),
                    })),
                }
                return Err(e);
            }
        }
        txn.finish();
        Ok(())
    }

    /// Aborts the transaction: read_committed consumers never see its records, and its offsets
    /// are not committed. Records still buffered are sent first (or failed, when the transaction
    /// already failed). Afterwards a new transaction may begin.
    pub async fn abort_transaction(&self) -> Result<()> {
        let txn = self.txn("abort_transaction")?;
        let _op = txn.ops.lock().await;
        self.check_fatal()?;
        txn.start_ending(false)?;
        self.flush().await;
        self.check_fatal()?;
        let client = &self.handle.shared.client;
        if txn.has_content() {
            txn.end(client, self.current_pid(), false, self.deadline())
                .await
                .map_err(|e| self.txn_error(e))?;
        }
        if txn.take_bump() {
            // A sequence error left a partition's sequences unknown: start again under the
            // next epoch of this producer id (KIP-360), as Java does after such an abort.
            let pid = txn
                .init_producer_id(client, self.current_pid(), self.deadline())
                .await
                .map_err(|e| self.txn_error(e))?;
            self.install_producer_id(pid);
        }
        txn.finish();
        Ok(())
    }
}
