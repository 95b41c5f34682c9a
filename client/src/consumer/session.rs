//! Incremental fetch sessions (KIP-227), the client side: what to put in the next fetch request
//! to one broker, and what the broker's answer means for the session.
//!
//! Without a session every fetch lists every partition, and every response answers for every
//! partition, data or not. With one, the broker remembers the partitions and their fetch
//! parameters, so a request carries only what changed (a partition added, or its fetch offset,
//! size limit or leader epoch changed) plus the partitions to forget, and a response carries only
//! partitions with something new. For a consumer of many mostly idle partitions that is most of
//! the bytes and most of the decoding.
//!
//! The protocol, by (session id, epoch) in the request:
//! - (0, 0): a full fetch asking for a new session; the response's session id is the new
//!   session's, or 0 if the broker made none (it may not support sessions, or its cache may be
//!   full), and then the next request is a full one again;
//! - (id, 0): a full fetch that closes session `id` and asks for a new one: how a client starts
//!   over after losing track (an error, a dropped connection);
//! - (id, n > 0): an incremental fetch, the n-th of the session.
//!
//! Brokers below Fetch v7 know nothing of this: every fetch is full and no field is sent.
//!
//! This module is pure bookkeeping (no I/O), so that every transition is unit-tested.

use std::collections::HashMap;

use kingest_protocol::ErrorCode;

use super::state::Tp;

/// A partition's fetch parameters as the session on the broker holds them: a partition is sent
/// in an incremental request when any of them changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FetchParams {
    /// Where to read from.
    pub fetch_offset: i64,
    /// The partition's byte limit.
    pub max_bytes: i32,
    /// The leader epoch the client knows (-1 when unknown).
    pub leader_epoch: i32,
}

/// A partition the next request should fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Wanted {
    /// The partition.
    pub tp: Tp,
    /// Its parameters.
    pub params: FetchParams,
}

/// What the next request carries for the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SessionPlan {
    /// The request's `session_id`.
    pub session_id: i32,
    /// The request's `session_epoch` (-1 when the broker does not support sessions).
    pub epoch: i32,
    /// Whether the request lists every wanted partition (else only those in `send`).
    pub full: bool,
    /// Indexes into the wanted partitions of those to put in the request.
    pub send: Vec<usize>,
    /// Partitions the session holds that are not wanted any more.
    pub forget: Vec<Tp>,
}

/// The client's view of its fetch session with one broker.
#[derive(Debug, Default)]
pub(crate) struct FetchSession {
    /// The session id (0: none).
    id: i32,
    /// The epoch of the next request; 0 means the next request is a full one.
    next_epoch: i32,
    /// The partitions the broker's session holds, with the parameters last sent for them.
    partitions: HashMap<Tp, FetchParams>,
}

/// The epoch after `epoch`; epochs wrap from `i32::MAX` to 1, as 0 and -1 have their own
/// meanings.
fn next_epoch(epoch: i32) -> i32 {
    if epoch == i32::MAX {
        1
    } else {
        epoch + 1
    }
}

impl FetchSession {
    /// The session id (0 when there is none).
    #[cfg(test)]
    pub fn id(&self) -> i32 {
        self.id
    }

    /// Plans the next request for `wanted`; `supported` is whether the negotiated Fetch version
    /// has sessions (v7+).
    pub fn plan(&self, wanted: &[Wanted], supported: bool) -> SessionPlan {
        let all = || (0..wanted.len()).collect();
        if !supported {
            return SessionPlan {
                session_id: 0,
                epoch: -1,
                full: true,
                send: all(),
                forget: Vec::new(),
            };
        }
        if self.id == 0 || self.next_epoch == 0 {
            // Either no session yet, or one to close and replace: a full request.
            return SessionPlan {
                session_id: self.id,
                epoch: 0,
                full: true,
                send: all(),
                forget: Vec::new(),
            };
        }
        let send = wanted
            .iter()
            .enumerate()
            .filter(|(_, w)| self.partitions.get(&w.tp) != Some(&w.params))
            .map(|(i, _)| i)
            .collect();
        let forget = self
            .partitions
            .keys()
            .filter(|tp| !wanted.iter().any(|w| &w.tp == *tp))
            .cloned()
            .collect();
        SessionPlan {
            session_id: self.id,
            epoch: self.next_epoch,
            full: false,
            send,
            forget,
        }
    }

    /// Takes in the answer to a request planned as `plan` for `wanted`: its top-level error and
    /// session id. Returns whether the response's partition data is usable (a session error
    /// carries none: the partitions are simply fetched again, in a full request).
    pub fn on_response(
        &mut self,
        plan: &SessionPlan,
        wanted: &[Wanted],
        error: ErrorCode,
        session_id: i32,
    ) -> bool {
        if plan.epoch < 0 {
            // Sessionless: nothing to track.
            return error.is_ok();
        }
        match error {
            ErrorCode::None => {}
            // The broker evicted the session (or restarted): start a new one.
            ErrorCode::FetchSessionIdNotFound => {
                self.reset(0);
                return false;
            }
            // We and the broker disagree on the session's state: close it and start over.
            _ => {
                let id = self.id;
                self.reset(id);
                return false;
            }
        }
        if session_id == 0 {
            // A full request that created no session, or an incremental one whose session the
            // broker closed. The data is good; the next request is a full one.
            self.reset(0);
            return true;
        }
        if !plan.full && session_id != self.id {
            // An incremental answer from another session: nothing about it can be trusted.
            let id = self.id;
            self.reset(id);
            return false;
        }
        // After a successful request the broker's session holds exactly the wanted partitions:
        // a full request listed them all, an incremental one sent every change and forgot the
        // rest.
        self.partitions = wanted.iter().map(|w| (w.tp.clone(), w.params)).collect();
        self.id = session_id;
        self.next_epoch = if plan.full { 1 } else { next_epoch(plan.epoch) };
        true
    }

    /// The request failed without an answer (disconnect, timeout): whether the broker saw it is
    /// unknown, so the epochs may no longer agree. Close the session and start a new one, as
    /// the Java client does.
    pub fn on_failure(&mut self) {
        let id = self.id;
        self.reset(id);
    }

    /// Forgets the session's state; the next request is a full one carrying `id` (0: ask for a
    /// new session without closing one).
    fn reset(&mut self, id: i32) {
        self.id = id;
        self.next_epoch = 0;
        self.partitions.clear();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn w(p: i32, offset: i64) -> Wanted {
        Wanted {
            tp: (Arc::from("t"), p),
            params: FetchParams {
                fetch_offset: offset,
                max_bytes: 100,
                leader_epoch: 3,
            },
        }
    }

    #[test]
    fn without_session_support_every_request_is_full_and_sessionless() {
        let mut s = FetchSession::default();
        let wanted = [w(0, 5), w(1, 7)];
        let plan = s.plan(&wanted, false);
        assert_eq!(
            (plan.session_id, plan.epoch, plan.full, plan.send.len()),
            (0, -1, true, 2)
        );
        assert!(s.on_response(&plan, &wanted, ErrorCode::None, 0));
        assert_eq!(s.plan(&wanted, false), plan);
    }

    #[test]
    fn a_session_sends_only_changes_and_forgets_what_is_not_wanted() {
        let mut s = FetchSession::default();
        let first = [w(0, 5), w(1, 7), w(2, 9)];
        let plan = s.plan(&first, true);
        assert_eq!(
            (plan.session_id, plan.epoch, plan.full, plan.send.clone()),
            (0, 0, true, vec![0, 1, 2])
        );
        assert!(s.on_response(&plan, &first, ErrorCode::None, 42));
        assert_eq!(s.id(), 42);

        // Partition 0 advanced, 1 is unchanged, 2 is no longer wanted, 3 is new.
        let second = [w(0, 6), w(1, 7), w(3, 0)];
        let plan = s.plan(&second, true);
        assert_eq!((plan.session_id, plan.epoch, plan.full), (42, 1, false));
        assert_eq!(plan.send, vec![0, 2]);
        assert_eq!(plan.forget, vec![(Arc::from("t"), 2)]);
        assert!(s.on_response(&plan, &second, ErrorCode::None, 42));

        // Nothing changed: an empty incremental request, which still fetches every partition
        // of the session.
        let plan = s.plan(&second, true);
        assert_eq!(
            (plan.epoch, plan.full, plan.send.len(), plan.forget.len()),
            (2, false, 0, 0)
        );

        // A new leader epoch is a change too.
        let mut third = second.clone();
        third[1].params.leader_epoch = 4;
        assert_eq!(s.plan(&third, true).send, vec![1]);
    }

    #[test]
    fn session_errors_fall_back_to_a_full_fetch() {
        let mut s = FetchSession::default();
        let wanted = [w(0, 5)];
        let plan = s.plan(&wanted, true);
        s.on_response(&plan, &wanted, ErrorCode::None, 9);
        let plan = s.plan(&wanted, true);
        assert!(!plan.full);

        // The broker lost the session: a new one, not closing anything.
        assert!(!s.on_response(&plan, &wanted, ErrorCode::FetchSessionIdNotFound, 0));
        let plan = s.plan(&wanted, true);
        assert_eq!((plan.session_id, plan.epoch, plan.full), (0, 0, true));
        s.on_response(&plan, &wanted, ErrorCode::None, 10);

        // Epochs out of step: close session 10 and ask for a new one.
        let plan = s.plan(&wanted, true);
        assert!(!s.on_response(&plan, &wanted, ErrorCode::InvalidFetchSessionEpoch, 10));
        let plan = s.plan(&wanted, true);
        assert_eq!((plan.session_id, plan.epoch, plan.full), (10, 0, true));
        s.on_response(&plan, &wanted, ErrorCode::None, 11);
        assert_eq!(s.id(), 11);

        // A dropped connection: the same.
        s.on_failure();
        let plan = s.plan(&wanted, true);
        assert_eq!((plan.session_id, plan.epoch, plan.full), (11, 0, true));
    }

    #[test]
    fn a_broker_that_creates_no_session_gets_full_fetches() {
        let mut s = FetchSession::default();
        let wanted = [w(0, 5)];
        for _ in 0..3 {
            let plan = s.plan(&wanted, true);
            assert_eq!((plan.session_id, plan.epoch, plan.full), (0, 0, true));
            assert!(s.on_response(&plan, &wanted, ErrorCode::None, 0));
        }
    }

    #[test]
    fn a_broker_closing_the_session_keeps_the_data() {
        let mut s = FetchSession::default();
        let wanted = [w(0, 5)];
        let plan = s.plan(&wanted, true);
        s.on_response(&plan, &wanted, ErrorCode::None, 5);
        let plan = s.plan(&wanted, true);
        assert!(s.on_response(&plan, &wanted, ErrorCode::None, 0));
        assert!(s.plan(&wanted, true).full);
    }

    #[test]
    fn epochs_wrap_past_the_maximum_to_one() {
        assert_eq!(next_epoch(1), 2);
        assert_eq!(next_epoch(i32::MAX), 1);
    }
}
