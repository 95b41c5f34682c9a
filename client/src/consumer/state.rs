//! What the consumer knows about each assigned partition: its position, its leader, whether it
//! is waiting (for a lookup, a fetch, a backoff or a metadata refresh), its watermarks, and the
//! error that stopped it, if one did.
//!
//! The consumer is a state machine over these, driven by `poll`; keeping the per-partition rules
//! here (when may it be fetched, how does an error change it) keeps the driver readable.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kingest_protocol::record::RecordError;
use kingest_protocol::BrokerError;

use crate::cluster::backoff::Backoff;
use crate::error::{BrokerRef, ClientError};

/// A topic-partition. The topic is shared, so that keys, requests and fetched data name it
/// without copying the string.
pub(crate) type Tp = (Arc<str>, i32);

/// Where a partition reads next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Position {
    /// Not known yet: a ListOffsets lookup of this timestamp (-2 earliest, -1 latest, or a
    /// time) decides it. `in_flight` names the lookup under way, if one is.
    Lookup {
        timestamp: i64,
        in_flight: Option<u64>,
    },
    /// The offset of the next record to return.
    At(i64),
}

/// Why a partition stopped. It stays stopped, and `poll` keeps reporting this, until the caller
/// seeks (or unassigns it): retrying cannot help, and skipping data must be the caller's choice.
#[derive(Debug, Clone)]
pub(crate) enum Failure {
    /// Out of range with `OffsetReset::Error`.
    OutOfRange { offset: i64 },
    /// The batch at `offset` needs `size` bytes, more than `max` allowed.
    TooLarge {
        offset: i64,
        size: usize,
        max: usize,
    },
    /// The batch at `offset` is corrupt.
    Corrupt {
        offset: i64,
        next_offset: Option<i64>,
        source: RecordError,
    },
    /// The broker refused with a non-retriable error (authorization, for example).
    Broker {
        broker: BrokerRef,
        api: &'static str,
        error: BrokerError,
    },
}

impl Failure {
    /// The error to report for partition `tp`.
    pub fn to_error(&self, tp: &Tp) -> ClientError {
        let (topic, partition) = (tp.0.to_string(), tp.1);
        match self {
            Failure::OutOfRange { offset } => ClientError::OffsetOutOfRange {
                topic,
                partition,
                offset: *offset,
            },
            Failure::TooLarge { offset, size, max } => ClientError::FetchTooLarge {
                topic,
                partition,
                offset: *offset,
                size: *size,
                max: *max,
            },
            Failure::Corrupt {
                offset,
                next_offset,
                source,
            } => ClientError::CorruptRecord {
                topic,
                partition,
                offset: *offset,
                next_offset: *next_offset,
                source: source.clone(),
            },
            Failure::Broker { broker, api, error } => ClientError::Partition {
                broker: broker.clone(),
                api,
                topic,
                partition,
                source: error.clone(),
            },
        }
    }
}

/// One assigned partition.
#[derive(Debug)]
pub(crate) struct PartitionState {
    /// Which partition.
    pub tp: Tp,
    /// Where it reads next.
    pub position: Position,
    /// The leader's broker id, from metadata.
    pub leader: Option<i32>,
    /// The leader epoch from metadata (-1 when the broker does not say), sent in requests so
    /// that a stale leader, or a stale client, is detected.
    pub leader_epoch: i32,
    /// Set by a leadership error: the leader must be looked up again before the next request.
    pub needs_metadata: bool,
    /// No request before this instant (after an error).
    pub retry_at: Option<Instant>,
    /// The backoff that sets `retry_at`.
    pub backoff: Backoff,
    /// The fetch request this partition is part of, while it is in flight.
    pub fetching: Option<u64>,
    /// Whether a fetched response for it waits in the buffer. A buffered partition is not
    /// fetched again until `poll` has handed its data out: that is what bounds memory.
    pub buffered: bool,
    /// What stopped it, if something did.
    pub failed: Option<Failure>,
    /// When `poll` last reported `failed` (`None`: not yet).
    pub reported_at: Option<Instant>,
    /// The high watermark from the last response (-1: unknown).
    pub high_watermark: i64,
    /// The last stable offset from the last response (-1: unknown).
    pub last_stable_offset: i64,
    /// The log start offset from the last response (-1: unknown).
    pub log_start_offset: i64,
}

impl PartitionState {
    /// A newly assigned partition starting at `position`.
    pub fn new(tp: Tp, position: Position, backoff: (Duration, Duration)) -> Self {
        Self {
            tp,
            position,
            leader: None,
            leader_epoch: -1,
            needs_metadata: true,
            retry_at: None,
            backoff: Backoff::new(backoff.0, backoff.1),
            fetching: None,
            buffered: false,
            failed: None,
            reported_at: None,
            high_watermark: -1,
            last_stable_offset: -1,
            log_start_offset: -1,
        }
    }

    /// Whether no backoff holds it back at `now`.
    fn ready(&self, now: Instant) -> bool {
        self.retry_at.is_none_or(|at| at <= now)
    }

    /// The leader and position to fetch from, if it may be fetched now.
    pub fn fetchable(&self, now: Instant) -> Option<(i32, i64)> {
        match (self.position, self.leader) {
            (Position::At(offset), Some(leader))
                if self.fetching.is_none()
                    && !self.buffered
                    && self.failed.is_none()
                    && !self.needs_metadata
                    && self.ready(now) =>
            {
                Some((leader, offset))
            }
            _ => None,
        }
    }

    /// The leader and timestamp to look up, if its position needs a lookup that may start now.
    pub fn lookup_due(&self, now: Instant) -> Option<(i32, i64)> {
        match (self.position, self.leader) {
            (
                Position::Lookup {
                    timestamp,
                    in_flight: None,
                },
                Some(leader),
            ) if self.failed.is_none() && !self.needs_metadata && self.ready(now) => {
                Some((leader, timestamp))
            }
            _ => None,
        }
    }

    /// When a backoff ends that would let it make progress, if one holds it back.
    pub fn wakeup(&self) -> Option<Instant> {
        if self.failed.is_some() || self.fetching.is_some() || self.buffered {
            return None;
        }
        self.retry_at
    }

    /// A request for it failed in a way that retrying can fix: wait (exponentially longer each
    /// time), and look the leader up again first when `refresh`.
    pub fn retry_later(&mut self, refresh: bool) {
        self.retry_at = Some(Instant::now() + self.backoff.fail());
        if refresh {
            self.needs_metadata = true;
        }
    }

    /// A request for it succeeded: the next failure waits the shortest backoff again.
    pub fn succeeded(&mut self) {
        self.retry_at = None;
        self.backoff.reset();
    }

    /// Moves it to `position` (a seek): whatever was fetched or looked up for the old position is
    /// stale, and the error that stopped it, if any, is the caller's to have dealt with.
    pub fn reposition(&mut self, position: Position) {
        self.position = position;
        self.clear_failure();
        self.succeeded();
    }

    /// Stops the partition with `failure`, to be reported by the next `poll`.
    pub fn fail(&mut self, failure: Failure) {
        self.failed = Some(failure);
        self.reported_at = None;
    }

    fn clear_failure(&mut self) {
        self.failed = None;
        self.reported_at = None;
    }

    /// Notes the watermarks of a response; negative values mean "unknown" and keep what was
    /// known (as the Java client does), since a broker that could not read them in time sends -1.
    pub fn note_watermarks(
        &mut self,
        high_watermark: i64,
        last_stable_offset: i64,
        log_start_offset: i64,
    ) {
        if high_watermark >= 0 {
            self.high_watermark = high_watermark;
        }
        if last_stable_offset >= 0 {
            self.last_stable_offset = last_stable_offset;
        }
        if log_start_offset >= 0 {
            self.log_start_offset = log_start_offset;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(position: Position) -> PartitionState {
        let mut s = PartitionState::new(
            (Arc::from("t"), 0),
            position,
            (Duration::from_millis(50), Duration::from_secs(1)),
        );
        s.leader = Some(1);
        s.needs_metadata = false;
        s
    }

    #[test]
    fn only_an_idle_positioned_partition_with_a_leader_is_fetchable() {
        let now = Instant::now();
        let mut s = state(Position::At(7));
        assert_eq!(s.fetchable(now), Some((1, 7)));
        s.buffered = true;
        assert_eq!(s.fetchable(now), None);
        s.buffered = false;
        s.fetching = Some(3);
        assert_eq!(s.fetchable(now), None);
        s.fetching = None;
        s.retry_later(true);
        assert_eq!(s.fetchable(Instant::now()), None);
        assert!(s.wakeup().is_some());
        s.needs_metadata = false;
        assert_eq!(
            s.fetchable(Instant::now() + Duration::from_secs(2)),
            Some((1, 7))
        );
        s.failed = Some(Failure::OutOfRange { offset: 7 });
        assert_eq!(s.fetchable(Instant::now() + Duration::from_secs(2)), None);
        s.reposition(Position::At(9));
        assert_eq!(s.fetchable(Instant::now()), Some((1, 9)));
    }

    #[test]
    fn lookups_wait_for_a_leader_and_run_once() {
        let now = Instant::now();
        let mut s = state(Position::Lookup {
            timestamp: -2,
            in_flight: None,
        });
        assert_eq!(s.fetchable(now), None);
        assert_eq!(s.lookup_due(now), Some((1, -2)));
        s.position = Position::Lookup {
            timestamp: -2,
            in_flight: Some(1),
        };
        assert_eq!(s.lookup_due(now), None);
        s.position = Position::Lookup {
            timestamp: -2,
            in_flight: None,
        };
        s.leader = None;
        assert_eq!(s.lookup_due(now), None);
    }

    #[test]
    fn unknown_watermarks_keep_the_known_ones() {
        let mut s = state(Position::At(0));
        s.note_watermarks(10, 8, 2);
        s.note_watermarks(-1, -1, -1);
        assert_eq!(
            (s.high_watermark, s.last_stable_offset, s.log_start_offset),
            (10, 8, 2)
        );
    }

    #[test]
    fn failures_name_the_partition() {
        let tp = (Arc::from("orders"), 3);
        let e = Failure::TooLarge {
            offset: 5,
            size: 2_000_000,
            max: 1_048_576,
        }
        .to_error(&tp);
        let text = e.to_string();
        assert!(
            text.contains("orders-3") && text.contains("offset 5") && text.contains("2000000"),
            "{text}"
        );
        let e = Failure::OutOfRange { offset: 12 }.to_error(&tp);
        assert!(matches!(
            e,
            ClientError::OffsetOutOfRange {
                partition: 3,
                offset: 12,
                ..
            }
        ));
    }
}
