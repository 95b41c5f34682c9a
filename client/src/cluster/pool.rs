//! One connection per broker, shared by every user of the client.
//!
//! A slot per broker holds its connection. The first caller to find it missing or dead connects
//! (others wait on the slot's lock and then share the result), after waiting out the broker's
//! backoff if its last attempts failed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use super::backoff::Backoff;
use crate::error::{BrokerRef, Result};
use crate::net::{Connection, ConnectionConfig};

struct Slot {
    addr: String,
    conn: Option<Connection>,
    backoff: Backoff,
    /// No attempt before this instant.
    retry_at: Option<Instant>,
}

/// Connections by broker id (negative ids are bootstrap servers).
pub struct ConnectionPool {
    config: Arc<ConnectionConfig>,
    slots: std::sync::Mutex<HashMap<i32, Arc<Mutex<Slot>>>>,
    backoff: (Duration, Duration),
}

impl std::fmt::Debug for ConnectionPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionPool").finish_non_exhaustive()
    }
}

impl ConnectionPool {
    /// An empty pool; `backoff` is (base, max) for reconnects.
    pub fn new(config: Arc<ConnectionConfig>, backoff: (Duration, Duration)) -> Self {
        Self {
            config,
            slots: std::sync::Mutex::new(HashMap::new()),
            backoff,
        }
    }

    /// The connection to broker `id` at `addr`, opening (or re-opening) it if needed.
    pub async fn get(&self, id: i32, addr: &str) -> Result<Connection> {
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
            slots
                .entry(id)
                .or_insert_with(|| {
                    Arc::new(Mutex::new(Slot {
                        addr: addr.to_owned(),
                        conn: None,
                        backoff: Backoff::new(self.backoff.0, self.backoff.1),
                        retry_at: None,
                    }))
                })
                .clone()
        };
        let mut slot = slot.lock().await;
        if slot.addr != addr {
            // The broker moved (new advertised address): drop the old connection.
            if let Some(old) = slot.conn.take() {
                old.close();
            }
            slot.addr = addr.to_owned();
        }
        if let Some(conn) = &slot.conn {
            if !conn.is_closed() {
                return Ok(conn.clone());
            }
        }
        if let Some(at) = slot.retry_at {
            tokio::time::sleep_until(at.into()).await;
        }
        let broker = BrokerRef {
            id,
            addr: addr.to_owned(),
        };
        match Connection::connect(broker, self.config.clone()).await {
            Ok(conn) => {
                slot.backoff.reset();
                slot.retry_at = None;
                slot.conn = Some(conn.clone());
                Ok(conn)
            }
            Err(e) => {
                let wait = slot.backoff.fail();
                slot.retry_at = Some(Instant::now() + wait);
                tracing::debug!(broker = id, addr, error = %e, ?wait, "connect failed");
                Err(e)
            }
        }
    }

    /// Closes every connection.
    pub async fn close_all(&self) {
        let slots: Vec<_> = self
            .slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        for slot in slots {
            if let Some(conn) = slot.lock().await.conn.take() {
                conn.close();
            }
        }
    }
}
