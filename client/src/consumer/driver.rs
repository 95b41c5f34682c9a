//! The consumer's engine, run by `poll`: start the work each partition needs (a metadata
//! refresh, a start-position lookup, a fetch), take in the answers the tasks send back, and hand
//! the buffered data out.
//!
//! Everything here is synchronous bookkeeping on `&mut PartitionConsumer`; the only waiting is in
//! `poll` itself, on the event channel. That is what makes `poll` cancellation-safe and keeps the
//! rules (one fetch per leader, no fetch of a buffered partition, backoff after errors) in one
//! place.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Instant;

use kingest_protocol::{BrokerError, ErrorCode};

use super::config::{OffsetReset, EARLIEST_TIMESTAMP, LATEST_TIMESTAMP};
use super::fetch::{self, FetchJob, FetchResult, PartitionResult, SESSION_VERSION};
use super::fetched::{Fetched, FetchedPartition};
use super::offsets::{self, LookupItem, LookupJob, LookupResult};
use super::session::{FetchParams, FetchSession, SessionPlan, Wanted};
use super::state::{Failure, Position, Tp};
use super::PartitionConsumer;
use crate::cluster::ClusterMetadata;
use crate::error::{BrokerRef, ClientError, Result};

/// What a task reports when it is done.
pub(super) enum Event {
    /// A fetch finished.
    Fetch {
        id: u64,
        result: Result<FetchResult>,
    },
    /// A lookup finished.
    Lookup {
        id: u64,
        result: Result<LookupResult>,
    },
    /// A metadata refresh finished.
    Metadata {
        result: Result<Arc<ClusterMetadata>>,
    },
}

/// A fetch in flight: what it asked for, to make sense of the answer.
pub(super) struct InFlightFetch {
    id: u64,
    wanted: Vec<Wanted>,
    plan: SessionPlan,
}

/// Fetch state for one leader.
#[derive(Default)]
pub(super) struct BrokerFetcher {
    session: FetchSession,
    in_flight: Option<InFlightFetch>,
    /// The Fetch version last negotiated with it (`None`: not yet connected).
    version: Option<i16>,
    /// Rotates the order of partitions in full requests: brokers fill responses in request
    /// order, so a fixed order would let the first partitions starve the last.
    rotation: usize,
}

/// A lookup in flight.
pub(super) struct InFlightLookup {
    items: Vec<Tp>,
}

/// A partition's fetched data, waiting for `poll` to hand it out.
pub(super) struct Buffered {
    pub data: FetchedPartition,
    /// An error met after this data (a corrupt batch): it stops the partition once the data
    /// before it is handed out.
    pub failure: Option<Failure>,
}

/// Errors after which the leader must be looked up again (Java refreshes metadata for these).
fn needs_new_leader(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::NotLeaderOrFollower
            | ErrorCode::LeaderNotAvailable
            | ErrorCode::ReplicaNotAvailable
            | ErrorCode::KafkaStorageError
            | ErrorCode::FencedLeaderEpoch
            | ErrorCode::UnknownLeaderEpoch
            | ErrorCode::OffsetNotAvailable
            | ErrorCode::UnknownTopicOrPartition
            | ErrorCode::UnknownTopicId
            | ErrorCode::InconsistentTopicId
    )
}

impl PartitionConsumer {
    /// Takes in a task's report.
    pub(super) fn handle(&mut self, event: Event) {
        match event {
            Event::Fetch { id, result } => self.on_fetch(id, result),
            Event::Lookup { id, result } => self.on_lookup(id, result),
            Event::Metadata { result } => self.on_metadata(result),
        }
    }

    fn on_fetch(&mut self, id: u64, result: Result<FetchResult>) {
        let Some(broker) = self
            .brokers
            .iter()
            .find(|(_, b)| b.in_flight.as_ref().is_some_and(|f| f.id == id))
            .map(|(&b, _)| b)
        else {
            return;
        };
        let Some(InFlightFetch { wanted, plan, .. }) = self
            .brokers
            .get_mut(&broker)
            .and_then(|f| f.in_flight.take())
        else {
            return;
        };
        for w in &wanted {
            if let Some(state) = self.tp_state_mut(&w.tp) {
                if state.fetching == Some(id) {
                    state.fetching = None;
                }
            }
        }
        let fetcher = self.brokers.entry(broker).or_default();
        let result = match result {
            Ok(result) => result,
            Err(e) => {
                // No answer: the broker may be gone or moved. Look the leaders up again and
                // retry after a backoff; the connection pool reconnects with its own backoff.
                fetcher.session.on_failure();
                tracing::debug!(broker, error = %e, "fetch failed");
                self.retry_all(&wanted, true);
                if !e.is_retriable() {
                    self.errors.push_back(e);
                }
                return;
            }
        };
        fetcher.version = Some(result.version);
        if !fetcher
            .session
            .on_response(&plan, &wanted, result.error, result.session_id)
        {
            match result.error {
                // The session is gone or out of step: the next request is a full one, at once.
                ErrorCode::FetchSessionIdNotFound | ErrorCode::InvalidFetchSessionEpoch => {
                    tracing::debug!(broker, error = %result.error, "fetch session reset");
                }
                code => {
                    tracing::debug!(broker, error = %code, "fetch refused");
                    self.retry_all(&wanted, needs_new_leader(code));
                    if !code.is_retriable() && !code.is_ok() {
                        self.errors.push_back(ClientError::Broker {
                            broker: result.broker.clone(),
                            api: "Fetch",
                            source: BrokerError::new(code, None),
                        });
                    }
                }
            }
            return;
        }
        let broker_ref = result.broker;
        for partition in result.partitions {
            self.on_partition(&broker_ref, partition);
        }
    }

    /// Every partition of a failed request: retry after a backoff.
    fn retry_all(&mut self, wanted: &[Wanted], refresh: bool) {
        for w in wanted {
            if let Some(state) = self.tp_state_mut(&w.tp) {
                if state.fetching.is_none() && state.failed.is_none() {
                    state.retry_later(refresh);
                }
            }
        }
    }

    fn on_partition(&mut self, broker: &BrokerRef, r: PartitionResult) {
        let reset = self.config.offset_reset;
        let Some(state) = self.tp_state_mut(&r.tp) else {
            return;
        };
        if state.position != Position::At(r.fetch_offset)
            || state.buffered
            || state.failed.is_some()
        {
            // Seeked (or stopped) while the fetch was in flight: the answer is for a position
            // that no longer matters.
            return;
        }
        match r.error {
            ErrorCode::None => {
                state.succeeded();
                state.note_watermarks(r.high_watermark, r.last_stable_offset, r.log_start_offset);
                match (r.data, r.failure) {
                    (Some(data), failure) => {
                        state.buffered = true;
                        self.buffered_bytes += data.size;
                        self.buffer.push_back(Buffered { data, failure });
                    }
                    (None, Some(failure)) => state.fail(failure),
                    (None, None) => {}
                }
            }
            ErrorCode::OffsetOutOfRange => match reset {
                OffsetReset::Earliest | OffsetReset::Latest => {
                    let timestamp = if reset == OffsetReset::Earliest {
                        EARLIEST_TIMESTAMP
                    } else {
                        LATEST_TIMESTAMP
                    };
                    tracing::info!(topic = %r.tp.0, partition = r.tp.1, offset = r.fetch_offset, ?reset, "fetch position out of range, resetting");
                    state.reposition(Position::Lookup {
                        timestamp,
                        in_flight: None,
                    });
                }
                OffsetReset::Error => state.fail(Failure::OutOfRange {
                    offset: r.fetch_offset,
                }),
            },
            code if needs_new_leader(code) => {
                tracing::debug!(topic = %r.tp.0, partition = r.tp.1, error = %code, "fetch: leader changed");
                state.retry_later(true);
            }
            code if code.is_retriable() => state.retry_later(false),
            code => state.fail(Failure::Broker {
                broker: broker.clone(),
                api: "Fetch",
                error: BrokerError::new(code, None),
            }),
        }
    }

    fn on_lookup(&mut self, id: u64, result: Result<LookupResult>) {
        let Some(lookup) = self.lookups.remove(&id) else {
            return;
        };
        let in_this = |position: Position| matches!(position, Position::Lookup { in_flight: Some(i), .. } if i == id);
        let result = match result {
            Ok(result) => result,
            Err(e) => {
                tracing::debug!(error = %e, "offset lookup failed");
                for tp in &lookup.items {
                    if let Some(state) = self.tp_state_mut(tp) {
                        if let Position::Lookup {
                            timestamp,
                            in_flight: Some(i),
                        } = state.position
                        {
                            if i == id {
                                state.position = Position::Lookup {
                                    timestamp,
                                    in_flight: None,
                                };
                                state.retry_later(true);
                            }
                        }
                    }
                }
                if !e.is_retriable() {
                    self.errors.push_back(e);
                }
                return;
            }
        };
        for answer in result.answers {
            let Some(state) = self.tp_state_mut(&answer.tp) else {
                continue;
            };
            if !in_this(state.position) {
                continue;
            }
            state.position = Position::Lookup {
                timestamp: answer.timestamp,
                in_flight: None,
            };
            match answer.offset {
                Ok(offset) if offset >= 0 => {
                    state.position = Position::At(offset);
                    state.succeeded();
                }
                // No offset (a broker still electing a leader, say): ask again later.
                Ok(_) => state.retry_later(true),
                Err(e) if needs_new_leader(e.code) => state.retry_later(true),
                Err(e) if e.is_retriable() => state.retry_later(false),
                Err(e) => state.fail(Failure::Broker {
                    broker: result.broker.clone(),
                    api: "ListOffsets",
                    error: e,
                }),
            }
        }
    }

    fn on_metadata(&mut self, result: Result<Arc<ClusterMetadata>>) {
        self.refreshing = false;
        match result {
            Ok(snapshot) => {
                self.apply_metadata(&snapshot);
                if self.states().any(|s| s.needs_metadata) {
                    // Some partition still has no leader (an election under way): ask again,
                    // but not at once.
                    self.refresh_at = Some(Instant::now() + self.refresh_backoff.fail());
                } else {
                    self.refresh_backoff.reset();
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, "metadata refresh failed");
                self.refresh_at = Some(Instant::now() + self.refresh_backoff.fail());
            }
        }
    }

    /// Takes leaders and leader epochs from a metadata snapshot.
    pub(super) fn apply_metadata(&mut self, snapshot: &ClusterMetadata) {
        for state in self.states_mut() {
            match snapshot.partition(&state.tp.0, state.tp.1) {
                Some(p) if p.leader >= 0 => {
                    state.leader = Some(p.leader);
                    state.leader_epoch = p.leader_epoch;
                    state.needs_metadata = false;
                }
                _ => state.needs_metadata = true,
            }
        }
    }

    /// Starts whatever can start now: a metadata refresh, lookups, fetches.
    pub(super) fn start_work(&mut self) {
        let now = Instant::now();
        self.start_refresh(now);
        self.start_lookups(now);
        if self.buffered_bytes < self.config.max_buffered_bytes {
            self.start_fetches(now);
        }
    }

    fn start_refresh(&mut self, now: Instant) {
        if self.refreshing || self.refresh_at.is_some_and(|at| at > now) {
            return;
        }
        let topics: BTreeSet<String> = self
            .states()
            .filter(|s| s.needs_metadata)
            .map(|s| s.tp.0.to_string())
            .collect();
        if topics.is_empty() {
            return;
        }
        self.refreshing = true;
        let topics: Vec<String> = topics.into_iter().collect();
        let client = self.client.clone();
        let tx = self.events_tx.clone();
        self.tasks.spawn(async move {
            let result = client.refresh_metadata(&topics).await;
            let _ = tx.send(Event::Metadata { result });
        });
    }

    fn start_lookups(&mut self, now: Instant) {
        let mut by_leader: HashMap<i32, Vec<LookupItem>> = HashMap::new();
        for state in self.states() {
            if let Some((leader, timestamp)) = state.lookup_due(now) {
                by_leader.entry(leader).or_default().push(LookupItem {
                    tp: state.tp.clone(),
                    timestamp,
                    leader_epoch: state.leader_epoch,
                });
            }
        }
        let timeout_ms = i32::try_from(self.client.config().connection.request_timeout.as_millis())
            .unwrap_or(i32::MAX);
        for (broker, items) in by_leader {
            let id = self.next_id();
            for item in &items {
                if let Some(state) = self.tp_state_mut(&item.tp) {
                    state.position = Position::Lookup {
                        timestamp: item.timestamp,
                        in_flight: Some(id),
                    };
                }
            }
            self.lookups.insert(
                id,
                InFlightLookup {
                    items: items.iter().map(|i| i.tp.clone()).collect(),
                },
            );
            let job = LookupJob {
                broker,
                isolation_level: self.config.isolation_level.id(),
                timeout_ms,
                items,
            };
            let client = self.client.clone();
            let tx = self.events_tx.clone();
            self.tasks.spawn(async move {
                let result = offsets::run(client, job).await;
                let _ = tx.send(Event::Lookup { id, result });
            });
        }
    }

    fn start_fetches(&mut self, now: Instant) {
        let max_bytes = self.config.max_partition_fetch_bytes as i32;
        let mut by_leader: HashMap<i32, Vec<Wanted>> = HashMap::new();
        for state in self.states() {
            if let Some((leader, offset)) = state.fetchable(now) {
                if self
                    .brokers
                    .get(&leader)
                    .is_some_and(|b| b.in_flight.is_some())
                {
                    continue;
                }
                by_leader.entry(leader).or_default().push(Wanted {
                    tp: state.tp.clone(),
                    params: FetchParams {
                        fetch_offset: offset,
                        max_bytes,
                        leader_epoch: state.leader_epoch,
                    },
                });
            }
        }
        for (broker, mut wanted) in by_leader {
            let id = self.next_id();
            let fetcher = self.brokers.entry(broker).or_default();
            let shift = fetcher.rotation % wanted.len();
            wanted.rotate_left(shift);
            fetcher.rotation = fetcher.rotation.wrapping_add(1);
            // Until the first answer tells the version, assume sessions: the first request is a
            // full one either way, and encodes without session fields below v7.
            let sessions = fetcher.version.is_none_or(|v| v >= SESSION_VERSION);
            let plan = fetcher.session.plan(&wanted, sessions);
            fetcher.in_flight = Some(InFlightFetch {
                id,
                wanted: wanted.clone(),
                plan: plan.clone(),
            });
            for w in &wanted {
                if let Some(state) = self.tp_state_mut(&w.tp) {
                    state.fetching = Some(id);
                }
            }
            let job = FetchJob {
                broker,
                wanted,
                plan,
                max_wait_ms: self.config.fetch_max_wait.as_millis() as i32,
                min_bytes: self.config.fetch_min_bytes as i32,
                max_bytes: self.config.fetch_max_bytes as i32,
                isolation_level: self.config.isolation_level.id(),
                decode: self.config.decode_options(),
                max_partition_fetch_bytes: self.config.max_partition_fetch_bytes,
            };
            let client = self.client.clone();
            let tx = self.events_tx.clone();
            self.tasks.spawn(async move {
                let result = fetch::run(client, job).await;
                let _ = tx.send(Event::Fetch { id, result });
            });
        }
    }

    /// Hands buffered data out, oldest first, up to `max_buffered_bytes` (at least one
    /// partition), moving each partition's position past its data.
    pub(super) fn hand_out(&mut self) -> Fetched {
        let mut out = Fetched::default();
        let mut bytes = 0;
        while let Some(next) = self.buffer.front() {
            if !out.partitions.is_empty() && bytes + next.data.size > self.config.max_buffered_bytes
            {
                break;
            }
            let Buffered { data, failure } = self.buffer.pop_front().expect("front exists");
            self.buffered_bytes -= data.size;
            let Some(state) = self.state_mut(&data.topic, data.partition) else {
                continue;
            };
            state.buffered = false;
            if state.position != Position::At(data.fetch_offset) {
                continue;
            }
            state.position = Position::At(data.next_offset);
            if let Some(failure) = failure {
                state.fail(failure);
            }
            bytes += data.size;
            out.partitions.push(data);
        }
        out
    }

    /// An error to report now: one queued for reporting once, or a stopped partition's, when it
    /// is new or was last reported over `fetch_max_wait` ago (so a caller that polls in a loop
    /// sees it regularly without spinning on it).
    pub(super) fn take_error(&mut self, now: Instant) -> Option<ClientError> {
        if let Some(e) = self.errors.pop_front() {
            return Some(e);
        }
        let every = self.config.fetch_max_wait;
        let state = self
            .states_mut()
            .filter(|s| s.failed.is_some() && s.reported_at.is_none_or(|at| at + every <= now))
            .min_by_key(|s| s.reported_at)?;
        state.reported_at = Some(now);
        state.failed.as_ref().map(|f| f.to_error(&state.tp))
    }

    /// The next instant at which something that waits could start: a backoff ending, a
    /// metadata refresh allowed again, a stopped partition due to be reported again.
    pub(super) fn next_wakeup(&self, now: Instant) -> Option<Instant> {
        let every = self.config.fetch_max_wait;
        let backoffs = self.states().filter_map(|s| s.wakeup());
        let reports = self
            .states()
            .filter(|s| s.failed.is_some())
            .filter_map(|s| s.reported_at.map(|at| at + every));
        let refresh = self
            .refresh_at
            .filter(|_| !self.refreshing && self.states().any(|s| s.needs_metadata));
        // Only future instants: one already passed has had its effect (or is waiting on
        // something else that will send an event), and sleeping until it would spin.
        backoffs
            .chain(reports)
            .chain(refresh)
            .filter(|&at| at > now)
            .min()
    }
}
