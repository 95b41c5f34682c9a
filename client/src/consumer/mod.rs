//! The partition consumer: the "low-level" consumer, with partitions assigned explicitly by the
//! caller and no consumer group (what Apache Pinot's realtime ingestion uses).
//!
//! ```no_run
//! # async fn demo() -> kingest_client::Result<()> {
//! use kingest_client::consumer::{ConsumerConfig, PartitionConsumer, StartAt};
//! use kingest_client::{Client, ClientConfig};
//!
//! let client = Client::connect(ClientConfig::new("localhost:9092")).await?;
//! let mut consumer = PartitionConsumer::new(client, ConsumerConfig::default())?;
//! consumer.assign(&[("events", 0, StartAt::Earliest)]).await?;
//! loop {
//!     let fetched = consumer.poll().await?;
//!     for r in fetched.records() {
//!         println!("{}-{} @{}: {:?}", r.topic, r.partition, r.offset, r.value);
//!     }
//! }
//! # }
//! ```
//!
//! How it works:
//! - Partitions are grouped by leader, and each leader gets at most one fetch in flight, run as
//!   its own task (`fetch.rs`), which also checks CRCs and decompresses. `poll` hands out what
//!   arrived and sends the next fetches *before* returning, so they travel while the caller works
//!   through the data (prefetch).
//! - Fetched data waits in a buffer bounded by [`ConsumerConfig::max_buffered_bytes`]; a
//!   partition whose data waits there is not fetched again, and no fetch is sent while the
//!   buffer is full, so memory stays bounded however slow the caller is.
//! - Each leader has a fetch session (`session.rs`, KIP-227), so a fetch names only the partitions
//!   whose position changed, falling back to full fetches when the broker has no sessions or
//!   loses track of one.
//! - Start positions are looked up with ListOffsets (`offsets.rs`); an out-of-range position
//!   follows [`OffsetReset`].
//! - Leadership errors and lost connections trigger a metadata refresh and a retry with
//!   exponential backoff, transparently; errors that retrying cannot fix (out of range without a
//!   reset policy, a corrupt batch, a batch too large to fetch, an authorization error) stop only
//!   their partition, at its position, and are reported by `poll` until the caller seeks.
//! - The data comes out zero-copy: [`Fetched`] holds the batches as slices of the response.
//!
//! `poll` is cancellation-safe: every request runs in a task and reports back through a channel,
//! so dropping a `poll` future (a `select!`, a timeout) loses nothing.

mod config;
mod driver;
mod fetch;
mod fetched;
mod offsets;
mod session;
mod state;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinSet;

pub use config::{ConsumerConfig, IsolationLevel, OffsetReset, StartAt};

use config::{EARLIEST_TIMESTAMP, LATEST_TIMESTAMP};
pub use fetched::{
    AbortedTransaction, Fetched, FetchedPartition, FetchedRecord, FetchedRecords, PartitionRecords,
};

use crate::client::Client;
use crate::cluster::backoff::Backoff;
use crate::error::{ClientError, Result};
use driver::{BrokerFetcher, Buffered, Event, InFlightLookup};
use state::{PartitionState, Position, Tp};

/// A consumer of explicitly assigned partitions. See the [module documentation](self).
pub struct PartitionConsumer {
    client: Client,
    config: ConsumerConfig,
    /// Assigned partitions by topic, then partition (ordered, so requests list them stably).
    partitions: BTreeMap<Arc<str>, BTreeMap<i32, PartitionState>>,
    /// Fetch state per leader: its session and its fetch in flight.
    brokers: HashMap<i32, BrokerFetcher>,
    /// ListOffsets lookups in flight, by id.
    lookups: HashMap<u64, InFlightLookup>,
    /// Whether a metadata refresh is in flight.
    refreshing: bool,
    /// No metadata refresh before this (after a failed or fruitless one).
    refresh_at: Option<Instant>,
    refresh_backoff: Backoff,
    /// Fetched data not yet handed out, oldest first, and its size.
    buffer: VecDeque<Buffered>,
    buffered_bytes: usize,
    /// Errors to report once (a request the broker refused outright).
    errors: VecDeque<ClientError>,
    /// Whether the last `poll` returned an error: the next one returns data first, if it has
    /// any, so that one stopped partition cannot starve the others.
    last_poll_failed: bool,
    /// Tasks report here.
    events_tx: mpsc::UnboundedSender<Event>,
    events: mpsc::UnboundedReceiver<Event>,
    /// The tasks; dropping the consumer aborts them.
    tasks: JoinSet<()>,
    next_id: u64,
}

impl std::fmt::Debug for PartitionConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartitionConsumer")
            .field(
                "assigned",
                &self.partitions.values().map(BTreeMap::len).sum::<usize>(),
            )
            .field("buffered_bytes", &self.buffered_bytes)
            .finish_non_exhaustive()
    }
}

impl PartitionConsumer {
    /// A consumer with no partition assigned, over `client`'s connections and metadata.
    pub fn new(client: Client, config: ConsumerConfig) -> Result<Self> {
        config.validate(client.config().connection.request_timeout)?;
        let (base, max) = backoff_of(&client);
        let (events_tx, events) = mpsc::unbounded_channel();
        Ok(Self {
            client,
            config,
            partitions: BTreeMap::new(),
            brokers: HashMap::new(),
            lookups: HashMap::new(),
            refreshing: false,
            refresh_at: None,
            refresh_backoff: Backoff::new(base, max),
            buffer: VecDeque::new(),
            buffered_bytes: 0,
            errors: VecDeque::new(),
            last_poll_failed: false,
            events_tx,
            events,
            tasks: JoinSet::new(),
            next_id: 0,
        })
    }

    /// The settings.
    pub fn config(&self) -> &ConsumerConfig {
        &self.config
    }

    /// Adds partitions, each starting at its [`StartAt`]; a partition already assigned moves to
    /// its new start. Checks with fresh metadata that every partition exists
    /// ([`ClientError::UnknownPartition`] otherwise, and then nothing is assigned).
    pub async fn assign<S: AsRef<str>>(&mut self, partitions: &[(S, i32, StartAt)]) -> Result<()> {
        for (topic, partition, start) in partitions {
            check_start(topic.as_ref(), *partition, *start)?;
        }
        let topics: Vec<&str> = partitions.iter().map(|(t, _, _)| t.as_ref()).collect();
        let snapshot = self.client.refresh_metadata(&topics).await?;
        for (topic, partition, _) in partitions {
            if snapshot.partition(topic.as_ref(), *partition).is_none() {
                return Err(ClientError::UnknownPartition {
                    topic: topic.as_ref().to_owned(),
                    partition: *partition,
                });
            }
        }
        // Nothing is changed before the await above finished: a cancelled assign assigns nothing.
        let backoff = backoff_of(&self.client);
        for (topic, partition, start) in partitions {
            let position = position_of(*start);
            let topic = topic.as_ref();
            let key: Arc<str> = match self.partitions.get_key_value(topic) {
                Some((k, _)) => k.clone(),
                None => Arc::from(topic),
            };
            self.drop_buffered(topic, *partition);
            let parts = self.partitions.entry(key.clone()).or_default();
            match parts.get_mut(partition) {
                Some(state) => state.reposition(position),
                None => {
                    parts.insert(
                        *partition,
                        PartitionState::new((key, *partition), position, backoff),
                    );
                }
            }
        }
        self.apply_metadata(&snapshot);
        Ok(())
    }

    /// Removes partitions (unknown ones are ignored). Their buffered data is dropped, and
    /// answers still in flight for them are ignored when they come.
    pub fn unassign<S: AsRef<str>>(&mut self, partitions: &[(S, i32)]) {
        for (topic, partition) in partitions {
            let topic = topic.as_ref();
            self.drop_buffered(topic, *partition);
            if let Some(parts) = self.partitions.get_mut(topic) {
                parts.remove(partition);
                if parts.is_empty() {
                    self.partitions.remove(topic);
                }
            }
        }
    }

    /// The assigned partitions.
    pub fn assignment(&self) -> Vec<(String, i32)> {
        self.states()
            .map(|s| (s.tp.0.to_string(), s.tp.1))
            .collect()
    }

    /// Moves a partition's position to `offset`: the next record returned for it is the first
    /// at or after `offset`. Data fetched for the old position is dropped, and a partition
    /// stopped by an error resumes (this is how to skip a corrupt batch).
    pub fn seek(&mut self, topic: &str, partition: i32, offset: i64) -> Result<()> {
        self.seek_to(topic, partition, StartAt::Offset(offset))
    }

    /// Moves a partition's position to `start`, looked up as on assignment.
    pub fn seek_to(&mut self, topic: &str, partition: i32, start: StartAt) -> Result<()> {
        check_start(topic, partition, start)?;
        let state = self
            .state_mut(topic, partition)
            .ok_or_else(|| not_assigned(topic, partition))?;
        state.reposition(position_of(start));
        self.drop_buffered(topic, partition);
        Ok(())
    }

    /// The offset of the next record `poll` returns for the partition: the position. `None`
    /// while the start position is being looked up, or if the partition is not assigned.
    pub fn position(&self, topic: &str, partition: i32) -> Option<i64> {
        match self.state(topic, partition)?.position {
            Position::At(offset) => Some(offset),
            Position::Lookup { .. } => None,
        }
    }

    /// The partition's high watermark from the last fetch response (`None` before one came).
    pub fn high_watermark(&self, topic: &str, partition: i32) -> Option<i64> {
        self.state(topic, partition)
            .map(|s| s.high_watermark)
            .filter(|&h| h >= 0)
    }

    /// The partition's last stable offset from the last fetch response.
    pub fn last_stable_offset(&self, topic: &str, partition: i32) -> Option<i64> {
        self.state(topic, partition)
            .map(|s| s.last_stable_offset)
            .filter(|&o| o >= 0)
    }

    /// The partition's log start offset from the last fetch response.
    pub fn log_start_offset(&self, topic: &str, partition: i32) -> Option<i64> {
        self.state(topic, partition)
            .map(|s| s.log_start_offset)
            .filter(|&o| o >= 0)
    }

    /// How far the position is behind the high watermark (under read_committed, behind the last
    /// stable offset, which is as far as the partition can be read): records not yet consumed.
    pub fn lag(&self, topic: &str, partition: i32) -> Option<i64> {
        let end = match self.config.isolation_level {
            IsolationLevel::ReadUncommitted => self.high_watermark(topic, partition)?,
            IsolationLevel::ReadCommitted => self.last_stable_offset(topic, partition)?,
        };
        Some((end - self.position(topic, partition)?).max(0))
    }

    /// Bytes fetched and not yet handed out by `poll`.
    pub fn buffered_bytes(&self) -> usize {
        self.buffered_bytes
    }

    /// Waits for data and returns it, with each returned partition's position moved past it.
    ///
    /// Returns as soon as any partition has data; never returns an empty [`Fetched`] (use
    /// [`Self::poll_timeout`] to bound the wait), though one whose batches were all control
    /// batches (transaction markers) yields no record. An error that stops a partition is returned
    /// once when it happens and then at most once per `fetch_max_wait` until the caller seeks
    /// past it or unassigns the partition; the other partitions keep being consumed in between.
    /// Errors that retrying can fix (leader changes, lost connections, timeouts) are retried
    /// here and not returned.
    pub async fn poll(&mut self) -> Result<Fetched> {
        self.poll_until(None).await
    }

    /// Like [`Self::poll`], but returns an empty [`Fetched`] when no data came within `timeout`.
    pub async fn poll_timeout(&mut self, timeout: Duration) -> Result<Fetched> {
        self.poll_until(Some(Instant::now() + timeout)).await
    }

    async fn poll_until(&mut self, deadline: Option<Instant>) -> Result<Fetched> {
        if self.partitions.is_empty() {
            return Err(ClientError::Config(
                "poll on a consumer with no partition assigned".to_owned(),
            ));
        }
        loop {
            while let Ok(event) = self.events.try_recv() {
                self.handle(event);
            }
            while self.tasks.try_join_next().is_some() {}
            let now = Instant::now();
            if !self.last_poll_failed || self.buffer.is_empty() {
                if let Some(error) = self.take_error(now) {
                    self.last_poll_failed = true;
                    self.start_work();
                    return Err(error);
                }
            }
            if !self.buffer.is_empty() {
                let fetched = self.hand_out();
                // Prefetch: the next fetches leave now, while the caller works on this data.
                self.start_work();
                if !fetched.is_empty() {
                    self.last_poll_failed = false;
                    return Ok(fetched);
                }
            }
            self.start_work();
            if deadline.is_some_and(|d| d <= now) {
                return Ok(Fetched::default());
            }
            let wake = self.next_wakeup(now).into_iter().chain(deadline).min();
            let event = match wake {
                Some(at) => tokio::select! {
                    event = self.events.recv() => event,
                    () = tokio::time::sleep_until(at.into()) => None,
                },
                None => self.events.recv().await,
            };
            if let Some(event) = event {
                self.handle(event);
            }
        }
    }

    /// Stops every request in flight. Dropping the consumer does the same.
    pub fn close(mut self) {
        self.tasks.abort_all();
    }

    fn state(&self, topic: &str, partition: i32) -> Option<&PartitionState> {
        self.partitions.get(topic)?.get(&partition)
    }

    fn state_mut(&mut self, topic: &str, partition: i32) -> Option<&mut PartitionState> {
        self.partitions.get_mut(topic)?.get_mut(&partition)
    }

    fn tp_state_mut(&mut self, tp: &Tp) -> Option<&mut PartitionState> {
        self.state_mut(&tp.0, tp.1)
    }

    fn states(&self) -> impl Iterator<Item = &PartitionState> {
        self.partitions.values().flat_map(BTreeMap::values)
    }

    fn states_mut(&mut self) -> impl Iterator<Item = &mut PartitionState> {
        self.partitions.values_mut().flat_map(BTreeMap::values_mut)
    }

    /// Drops the buffered data of a partition (after a seek or unassign).
    fn drop_buffered(&mut self, topic: &str, partition: i32) {
        let before = self.buffer.len();
        let mut freed = 0;
        self.buffer.retain(|b| {
            let keep = !(b.data.partition == partition && *b.data.topic == *topic);
            if !keep {
                freed += b.data.size;
            }
            keep
        });
        self.buffered_bytes -= freed;
        if self.buffer.len() != before {
            if let Some(state) = self.state_mut(topic, partition) {
                state.buffered = false;
            }
        }
    }

    fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }
}

/// Retry backoff bounds from the client's settings: `retry_backoff`, doubling up to the
/// reconnect backoff's cap.
fn backoff_of(client: &Client) -> (Duration, Duration) {
    let c = client.config();
    (
        c.retry_backoff,
        c.reconnect_backoff_max.max(c.retry_backoff),
    )
}

fn position_of(start: StartAt) -> Position {
    let lookup = |timestamp| Position::Lookup {
        timestamp,
        in_flight: None,
    };
    match start {
        StartAt::Offset(o) => Position::At(o),
        StartAt::Earliest => lookup(EARLIEST_TIMESTAMP),
        StartAt::Latest => lookup(LATEST_TIMESTAMP),
        StartAt::Timestamp(ts) => lookup(ts),
    }
}

/// Refuses negative offsets and timestamps (negative ListOffsets timestamps are special codes).
fn check_start(topic: &str, partition: i32, start: StartAt) -> Result<()> {
    match start {
        StartAt::Offset(v) | StartAt::Timestamp(v) if v < 0 => Err(ClientError::Config(format!(
            "{start:?} for {topic}-{partition} is negative"
        ))),
        _ => Ok(()),
    }
}

fn not_assigned(topic: &str, partition: i32) -> ClientError {
    ClientError::NotAssigned {
        topic: topic.to_owned(),
        partition,
    }
}
