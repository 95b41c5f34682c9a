//! [`GroupConsumer`] under the consumer group protocol (KIP-848): a background task heartbeats
//! at the interval the broker asks for, reporting the partitions the application side owns, and
//! hands each new assignment to `poll`, which reconciles it: partitions to give up are committed
//! (auto commit), returned as `Revoked`, and reported gone at the next poll (after the
//! application has finished with them), which is when the broker may give them to another
//! member; partitions gained start at their committed offsets and are returned as `Assigned`.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, Notify};

use super::{GroupConsumer, GroupEvent, Task};
use crate::error::{ClientError, Result};
use crate::group::kip848::{ConsumerMember, Heartbeat, TopicPartition};

/// How long a poll waits for records before looking for a new assignment.
const RECONCILE_CHECK: Duration = Duration::from_millis(250);

/// What the heartbeat task and `poll` share.
#[derive(Debug)]
pub(super) struct Shared {
    pub member: ConsumerMember,
    /// The subscribed topics.
    pub topics: Vec<String>,
    /// What the application side owns (reported in heartbeats).
    pub owned: BTreeSet<TopicPartition>,
    /// The latest assignment received, not reconciled yet.
    pub target: Option<BTreeSet<TopicPartition>>,
    /// The member was fenced: its partitions are lost.
    pub fenced: bool,
    /// A heartbeat failed for good.
    pub error: Option<ClientError>,
}

/// The KIP-848 side of a [`GroupConsumer`].
#[derive(Debug)]
pub(super) struct State {
    pub shared: Arc<Mutex<Shared>>,
    /// Wakes the heartbeat task (to report a change at once).
    wake: Arc<Notify>,
    /// Woken by the heartbeat task when there is something to reconcile.
    changed: Arc<Notify>,
    task: Option<Task>,
    /// Revoked partitions were handed to the application: report them gone at the next poll.
    ack_pending: bool,
}

impl State {
    pub fn new(member: ConsumerMember, topics: Vec<String>) -> Self {
        Self {
            shared: Arc::new(Mutex::new(Shared {
                member,
                topics,
                owned: BTreeSet::new(),
                target: None,
                fenced: false,
                error: None,
            })),
            wake: Arc::new(Notify::new()),
            changed: Arc::new(Notify::new()),
            task: None,
            ack_pending: false,
        }
    }

    /// Joins (the first heartbeat, in the caller so that an unsupported broker is its error)
    /// and starts the heartbeat task.
    async fn start(&mut self) -> Result<()> {
        if self.task.is_some() {
            return Ok(());
        }
        {
            let mut s = self.shared.lock().await;
            s.member.coordinator().await?;
        }
        let (shared, wake, changed) =
            (self.shared.clone(), self.wake.clone(), self.changed.clone());
        self.task = Some(Task(tokio::spawn(async move {
            let mut interval = Duration::ZERO;
            loop {
                let _ = tokio::time::timeout(interval, wake.notified()).await;
                let mut s = shared.lock().await;
                let (topics, owned) = (s.topics.clone(), s.owned.clone());
                match s.member.heartbeat(&topics, &owned).await {
                    Ok(Heartbeat::Ok(Some(target))) => {
                        s.target = Some(target);
                        changed.notify_one();
                    }
                    Ok(Heartbeat::Ok(None)) => {}
                    Ok(Heartbeat::Fenced) => {
                        s.fenced = true;
                        s.target = None;
                        s.owned.clear();
                        changed.notify_one();
                    }
                    Ok(Heartbeat::Retry) => {}
                    Err(e) => {
                        s.error = Some(e);
                        changed.notify_one();
                        return;
                    }
                }
                // Rejoin at once after being fenced; otherwise at the broker's interval.
                interval = if s.member.epoch == 0 {
                    Duration::from_millis(100)
                } else {
                    s.member.heartbeat_interval
                };
            }
        })));
        Ok(())
    }

    /// Stops heartbeating (closing, or the consumer dropped: its session then expires).
    pub fn stop(&mut self) {
        self.task = None;
    }
}

impl GroupConsumer {
    pub(super) async fn poll_kip848(&mut self) -> Result<GroupEvent> {
        loop {
            if let Some(e) = self.events.pop_front() {
                return Ok(e);
            }
            let Some(state) = self.kip848.as_mut() else {
                return Err(ClientError::Config(
                    "not a consumer-protocol member".to_owned(),
                ));
            };
            state.start().await?;
            let shared = state.shared.clone();
            if std::mem::take(&mut state.ack_pending) {
                shared.lock().await.owned = self.assignment.clone();
                state.wake.notify_one();
            }
            self.check_pattern().await?;
            let (target, fenced, error, identity) = {
                let mut s = shared.lock().await;
                if s.topics != self.topics {
                    s.topics = self.topics.clone();
                }
                let identity = (s.member.member_id.clone(), s.member.epoch);
                // Cloned, not taken: `poll` may be cancelled while the target is applied (an
                // OffsetFetch for the new partitions), and a target taken then would be lost
                // for good (the coordinator sends an assignment again only when it changes).
                (
                    s.target.clone(),
                    std::mem::take(&mut s.fenced),
                    s.error.take(),
                    identity,
                )
            };
            // The member id and epoch as `membership` and `group_metadata` give them (the
            // epoch is what offsets are committed at).
            self.last_assignment = (identity.1 > 0).then(|| super::LastRound {
                assignor: self.config.remote_assignor.clone().unwrap_or_default(),
                partitions: self.assignment.iter().cloned().collect(),
                generation: identity.1,
                member_id: identity.0,
            });
            if let Some(e) = error {
                return Err(e);
            }
            if fenced {
                let all: Vec<TopicPartition> = self.assignment.iter().cloned().collect();
                self.consumer.unassign(&all);
                self.assignment.clear();
                self.consumed.clear();
                if !all.is_empty() {
                    self.events.push_back(GroupEvent::Lost(all));
                }
                continue;
            }
            if let Some(target) = target {
                self.reconcile(&shared, target.clone()).await?;
                let mut s = shared.lock().await;
                if s.target.as_ref() == Some(&target) {
                    s.target = None;
                }
                continue;
            }
            self.maybe_auto_commit().await;
            if self.assignment.is_empty() {
                let changed = self.kip848.as_ref().map(|s| s.changed.clone());
                if let Some(c) = changed {
                    let _ = tokio::time::timeout(RECONCILE_CHECK, c.notified()).await;
                }
                continue;
            }
            let fetched = self.consumer.poll_timeout(RECONCILE_CHECK).await?;
            if fetched.is_empty() {
                continue;
            }
            for p in fetched.partitions() {
                self.consumed
                    .insert((p.topic().to_owned(), p.partition()), p.next_offset());
            }
            return Ok(GroupEvent::Records(fetched));
        }
    }

    /// Moves towards `target`: gives up what is not in it (the broker hears of it at the next
    /// poll), and takes what is new.
    async fn reconcile(
        &mut self,
        shared: &Arc<Mutex<Shared>>,
        target: BTreeSet<TopicPartition>,
    ) -> Result<()> {
        let revoked: Vec<TopicPartition> = self.assignment.difference(&target).cloned().collect();
        let added: Vec<TopicPartition> = target.difference(&self.assignment).cloned().collect();
        if !revoked.is_empty() {
            self.revoke(&revoked).await?;
            if let Some(s) = self.kip848.as_mut() {
                s.ack_pending = true;
            }
        }
        if added.is_empty() {
            return Ok(());
        }
        let committed = shared.lock().await.member.committed(&added).await?;
        self.take_partitions(added, &committed).await?;
        if self.kip848.as_ref().is_some_and(|s| !s.ack_pending) {
            // Nothing revoked waits for the application: report the new partitions now.
            shared.lock().await.owned = self.assignment.clone();
            if let Some(s) = self.kip848.as_ref() {
                s.wake.notify_one();
            }
        }
        Ok(())
    }

    /// Commits at the member epoch.
    pub(super) async fn commit_kip848(
        &mut self,
        offsets: &HashMap<TopicPartition, i64>,
        metadata: Option<&str>,
    ) -> Result<()> {
        let Some(state) = self.kip848.as_ref() else {
            return Ok(());
        };
        let shared = state.shared.clone();
        shared.lock().await.member.commit(offsets, metadata).await?;
        self.committed
            .extend(offsets.iter().map(|(k, v)| (k.clone(), *v)));
        Ok(())
    }

    /// Stops heartbeating and leaves (epoch -1; -2 for a static member).
    pub(super) async fn leave_kip848(&mut self) -> Result<()> {
        let Some(state) = self.kip848.as_mut() else {
            return Ok(());
        };
        state.stop();
        let shared = state.shared.clone();
        let mut s = shared.lock().await;
        s.member.leave().await
    }
}
