//! One task per broker that puts produce requests on the connection in the order the sender
//! built them, and lets them wait for their responses side by side.
//!
//! Spawning a task per request would pipeline too, but tasks start in no guaranteed order, so a
//! later request could reach the broker first: records of one partition would land out of order
//! (acks 0 or 1), or the idempotent producer would see OUT_OF_ORDER_SEQUENCE_NUMBER and retry.
//! Here a single task polls the requests of its broker in creation order: each request is
//! polled for the first time (which is when it is queued on the connection) only after every
//! older one was, and the connection's own queues (pool slot, write queue, re-authentication
//! gate) are first come, first served.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use kingest_protocol::kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use tokio::sync::mpsc;

use super::sender::{Event, InFlightBatch};
use crate::client::Client;
use crate::error::{BrokerRef, Result};

/// A produce request for the broker's task.
pub(super) struct Job {
    pub(super) broker: BrokerRef,
    pub(super) acks: i16,
    pub(super) request: ProduceRequest,
    pub(super) batches: Vec<InFlightBatch>,
}

type Running = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Starts the task for broker `id`; it ends when the returned sender is dropped and its last
/// request has finished.
pub(super) fn spawn_broker(
    client: Client,
    events: mpsc::UnboundedSender<Event>,
) -> mpsc::UnboundedSender<Job> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Job>();
    tokio::spawn(async move {
        let mut running: Vec<Running> = Vec::new();
        let mut open = true;
        std::future::poll_fn(|cx| {
            while open {
                match rx.poll_recv(cx) {
                    Poll::Ready(Some(job)) => {
                        running.push(Box::pin(run(client.clone(), events.clone(), job)))
                    }
                    Poll::Ready(None) => open = false,
                    Poll::Pending => break,
                }
            }
            // Oldest first: a new request is first polled after all older ones.
            running.retain_mut(|f| f.as_mut().poll(cx).is_pending());
            if !open && running.is_empty() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
    });
    tx
}

async fn run(client: Client, events: mpsc::UnboundedSender<Event>, job: Job) {
    let Job {
        broker,
        acks,
        request,
        batches,
    } = job;
    let result = send_produce(&client, broker.id, acks, &request).await;
    drop(request);
    let _ = events.send(Event::Produced {
        broker,
        batches,
        result,
    });
}

/// Sends one ProduceRequest to broker `id`; `None` for acks=0, which brokers never answer.
async fn send_produce(
    client: &Client,
    id: i32,
    acks: i16,
    request: &ProduceRequest,
) -> Result<Option<ProduceResponse>> {
    let conn = client.connection(id).await?;
    // Version 13 addresses topics by id only; names are what we have.
    let version = conn
        .versions()
        .negotiate_capped::<ProduceRequest>(12)
        .map_err(|e| conn.protocol_error::<ProduceRequest>(e))?;
    if acks == 0 {
        conn.send_no_response(version, request).await?;
        Ok(None)
    } else {
        Ok(Some(conn.send_version(version, request).await?))
    }
}
