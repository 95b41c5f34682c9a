//! The committer: runs a flush's transaction (see `txn.rs`) on its own task, reconnecting and
//! redoing it when the connection or the server fails, so the engine can decode the next
//! batches while PostgreSQL takes this one.
//!
//! The committer owns the connection while it works and hands it back with the outcome. It
//! holds the commit gate for the whole transaction: reading the stored offsets waits at the
//! gate, so the engine never resumes a partition from an offset that a commit in flight is
//! about to move.

use std::sync::Arc;

use tokio::sync::Mutex;
use tokio_postgres::Client;

use super::conn::{describe, Backoff, RetryPolicy, Settings};
use super::txn::{self, Failure, Outcome, Pending, Plan, Refused};
use super::{connect, pg_error};
use crate::sink::{PartitionKey, Result, SinkError};

/// What a commit ended with.
#[derive(Debug)]
pub(crate) enum Done {
    /// Committed; per pending batch whether it was written, and the partitions dropped
    /// because another process owns them.
    Committed {
        written: Vec<bool>,
        dropped: Vec<PartitionKey>,
    },
    /// Rolled back: these rows were refused (and are now excluded from the pending batches).
    Refused(Vec<Refused>),
    /// Failed; `poison` when retrying gave up (the sink refuses further work).
    Failed { error: SinkError, poison: bool },
}

/// Runs transactions; see the module docs.
#[derive(Debug)]
pub(crate) struct Committer {
    pub settings: Settings,
    pub plan: Arc<Plan>,
    pub retry: RetryPolicy,
    pub client: Option<Arc<Client>>,
    pub gate: Arc<Mutex<()>>,
}

/// Sets up a new connection's session (the upsert staging table).
pub(crate) async fn prepare_session(
    settings: &Settings,
    plan: &Plan,
    client: Arc<Client>,
) -> Result<Arc<Client>> {
    if let Some(u) = &plan.upsert {
        client.batch_execute(&u.create).await.map_err(|e| {
            pg_error(
                &settings.display,
                "creating the staging table",
                describe(&e),
            )
        })?;
    }
    Ok(client)
}

impl Committer {
    /// A live connection: the current one, or a new one (retrying until the policy gives up).
    async fn client(&mut self) -> Result<Arc<Client>> {
        if let Some(c) = &self.client {
            if !c.is_closed() {
                return Ok(c.clone());
            }
        }
        self.client = None;
        let c = connect(&self.settings, self.retry).await?;
        let c = prepare_session(&self.settings, &self.plan, c).await?;
        self.client = Some(c.clone());
        Ok(c)
    }

    /// Commits `pending` in one transaction, redoing it after failures a reconnect cures.
    /// Returns itself, the pending batches (with refused rows marked excluded), and the
    /// outcome.
    pub(crate) async fn commit(mut self, mut pending: Vec<Pending>) -> (Self, Vec<Pending>, Done) {
        let gate = self.gate.clone();
        let _held = gate.lock().await;
        let mut backoff = Backoff::new(self.retry);
        loop {
            let client = match self.client().await {
                Ok(c) => c,
                Err(error) => {
                    return (
                        self,
                        pending,
                        Done::Failed {
                            error,
                            poison: true,
                        },
                    )
                }
            };
            let done = match txn::attempt(&client, &self.plan, &mut pending).await {
                Ok(Outcome::Committed { written, dropped }) => Done::Committed { written, dropped },
                Ok(Outcome::Refused(refused)) => Done::Refused(refused),
                Err(Failure::Retry(message)) => {
                    tracing::warn!(server = %self.settings.display, error = %message, "PostgreSQL transaction failed; reconnecting and redoing it");
                    self.client = None;
                    if backoff.wait().await {
                        continue;
                    }
                    Done::Failed {
                        error: pg_error(&self.settings.display, "flushing", message),
                        poison: true,
                    }
                }
                Err(Failure::Fatal(message)) => Done::Failed {
                    error: pg_error(&self.settings.display, "flushing", message),
                    poison: false,
                },
            };
            return (self, pending, done);
        }
    }
}
