//! [`GroupConsumer`]: a consumer that shares a topic's partitions with the other members of its
//! group (kingest, Java or librdkafka members alike), commits what it has handed to the
//! application, and tells the application when partitions arrive and leave.
//!
//! Rebalances surface as events from [`GroupConsumer::poll`] rather than callbacks, so the
//! application can `await` its own work (flushing a sink, committing) before the partitions go:
//! `Revoked` is returned *before* the member rejoins, and the rejoin happens on the next poll.
//! Under the cooperative protocol (KIP-429) only the partitions that move are revoked, and the
//! member rejoins once more so that they can be given to their new owner; the others keep
//! flowing. Under the consumer group protocol (KIP-848, opt-in with
//! [`GroupProtocol::Consumer`]) the broker assigns and the member reconciles incrementally
//! ([`kip848_poll`]).

mod kip848_poll;

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;
use tokio::task::JoinHandle;

use super::assignor::{
    self, Assignor, GroupAssignment, JoinState, LastAssignment, RebalanceProtocol,
};
use super::member::{HeartbeatOutcome, Joined, Member};
use crate::consumer::{ConsumerConfig, Fetched, OffsetReset, PartitionConsumer, StartAt};
use crate::error::{ClientError, Result};
use crate::Client;

/// What the group subscribes to.
#[derive(Debug, Clone)]
pub enum TopicSubscription {
    /// These topics.
    Topics(Vec<String>),
    /// Every topic whose whole name matches this regular expression, including topics created
    /// later (seen at the next metadata check).
    Pattern(regex::Regex),
}

/// The built-in assignors, by their protocol names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssignorKind {
    /// `range`.
    Range,
    /// `roundrobin`.
    RoundRobin,
    /// `sticky` (eager).
    Sticky,
    /// `cooperative-sticky` (KIP-429).
    CooperativeSticky,
}

impl AssignorKind {
    fn build(self) -> Box<dyn Assignor> {
        match self {
            AssignorKind::Range => Box::new(assignor::Range),
            AssignorKind::RoundRobin => Box::new(assignor::RoundRobin),
            AssignorKind::Sticky => Box::new(assignor::Sticky),
            AssignorKind::CooperativeSticky => Box::new(assignor::CooperativeSticky),
        }
    }
}

/// `group.protocol`: which group protocol the member speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GroupProtocol {
    /// JoinGroup/SyncGroup, the members assign (the default).
    #[default]
    Classic,
    /// KIP-848's ConsumerGroupHeartbeat: the broker assigns, partitions move incrementally.
    /// The coordinator must support it (Kafka 4.0+).
    Consumer,
}

/// Group consumer settings (Java names in parentheses).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct GroupConsumerConfig {
    /// `group.id`.
    pub group_id: String,
    /// `group.instance.id`: a static member (KIP-345) that can restart within the session timeout
    /// without a rebalance.
    pub instance_id: Option<String>,
    /// What to read.
    pub subscription: TopicSubscription,
    /// `session.timeout.ms` (45 s).
    pub session_timeout: Duration,
    /// `max.poll.interval.ms` (5 min): the rebalance timeout.
    pub rebalance_timeout: Duration,
    /// `heartbeat.interval.ms` (3 s).
    pub heartbeat_interval: Duration,
    /// `partition.assignment.strategy`, in order of preference (default: range, then
    /// cooperative-sticky, as Java).
    pub assignors: Vec<AssignorKind>,
    /// `enable.auto.commit` (true): commit what was handed to the application, every
    /// `auto_commit_interval` and before partitions are revoked.
    pub auto_commit: bool,
    /// `auto.commit.interval.ms` (5 s).
    pub auto_commit_interval: Duration,
    /// How often a pattern subscription looks for new matching topics (`metadata.max.age.ms`).
    pub pattern_check_interval: Duration,
    /// Fetching settings, `auto.offset.reset` and `isolation.level` included.
    pub consumer: ConsumerConfig,
    /// `group.protocol` (classic).
    pub group_protocol: GroupProtocol,
    /// `group.remote.assignor`: the broker-side assignor under the consumer protocol
    /// (`uniform`, `range`); `None` leaves it to the broker. `assignors`,
    /// `session_timeout` and `heartbeat_interval` are the broker's business under that protocol.
    pub remote_assignor: Option<String>,
}

impl GroupConsumerConfig {
    /// Defaults for `group_id` reading `topics`.
    pub fn new(group_id: &str, topics: &[&str]) -> Self {
        Self {
            group_id: group_id.to_owned(),
            instance_id: None,
            subscription: TopicSubscription::Topics(
                topics.iter().map(|t| (*t).to_owned()).collect(),
            ),
            session_timeout: Duration::from_secs(45),
            rebalance_timeout: Duration::from_secs(300),
            heartbeat_interval: Duration::from_secs(3),
            assignors: vec![AssignorKind::Range, AssignorKind::CooperativeSticky],
            auto_commit: true,
            auto_commit_interval: Duration::from_secs(5),
            pattern_check_interval: Duration::from_secs(30),
            consumer: ConsumerConfig::default(),
            group_protocol: GroupProtocol::Classic,
            remote_assignor: None,
        }
    }
}

/// What [`GroupConsumer::poll`] returns.
#[derive(Debug)]
pub enum GroupEvent {
    /// Records of assigned partitions.
    Records(Fetched),
    /// These partitions are now this member's (their positions come from the committed offsets,
    /// or the reset policy).
    Assigned(Vec<(String, i32)>),
    /// These partitions are leaving this member: finish with them (flush, commit) before the next
    /// poll; their records will not be returned any more.
    Revoked(Vec<(String, i32)>),
    /// These partitions were lost (session expired or the member was fenced): another member may
    /// already own them, so committing for them would fail.
    Lost(Vec<(String, i32)>),
}

/// The committed offsets of a round's partitions.
type Committed = HashMap<(String, i32), i64>;
/// A completed JoinGroup/SyncGroup round and its partitions' committed offsets.
type Round = (Joined, Committed);

/// The last assignment received: assignor, partitions, generation.
#[derive(Debug, Clone)]
struct LastRound {
    assignor: String,
    partitions: Vec<(String, i32)>,
    generation: i32,
    member_id: String,
}

const HB_OK: u8 = 0;
const HB_REJOIN: u8 = 1;
const HB_LOST: u8 = 2;

/// A consumer-group member.
pub struct GroupConsumer {
    client: Client,
    config: GroupConsumerConfig,
    assignors: Vec<Box<dyn Assignor>>,
    protocol: RebalanceProtocol,
    member: Arc<Mutex<Member>>,
    consumer: PartitionConsumer,
    assignment: BTreeSet<(String, i32)>,
    /// The positions after everything handed to the application.
    consumed: HashMap<(String, i32), i64>,
    committed: HashMap<(String, i32), i64>,
    events: VecDeque<GroupEvent>,
    flag: Arc<AtomicU8>,
    rejoin: bool,
    last_assignment: Option<LastRound>,
    topics: Vec<String>,
    last_pattern_check: Instant,
    last_auto_commit: Instant,
    heartbeat: Option<Task>,
    /// A JoinGroup/SyncGroup round in flight, in its own task so that a cancelled poll does not
    /// cancel it: the next poll picks up its result.
    pending_join: Option<JoinHandle<Result<Round>>>,
    /// A completed round whose result is being applied (revocations, assignment).
    joined_round: Option<Round>,
    /// The round revoked partitions (cooperative): rejoin once more when it is applied.
    followup: bool,
    /// Set under the consumer group protocol (KIP-848).
    kip848: Option<kip848_poll::State>,
}

impl std::fmt::Debug for GroupConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupConsumer")
            .field("group", &self.config.group_id)
            .field("assignment", &self.assignment)
            .finish_non_exhaustive()
    }
}

impl GroupConsumer {
    /// A member of `config.group_id` (it joins on the first poll).
    pub fn new(client: Client, config: GroupConsumerConfig) -> Result<Self> {
        if config.group_id.is_empty() {
            return Err(ClientError::Config("group_id is empty".to_owned()));
        }
        if config.heartbeat_interval >= config.session_timeout {
            return Err(ClientError::Config(
                "heartbeat_interval must be shorter than session_timeout".to_owned(),
            ));
        }
        let assignors: Vec<Box<dyn Assignor>> =
            config.assignors.iter().map(|k| k.build()).collect();
        let protocol = assignor::rebalance_protocol(&assignors)
            .map_err(|e| ClientError::Config(e.to_string()))?;
        let member = Member::new(
            client.clone(),
            &config.group_id,
            config.instance_id.clone(),
            config.session_timeout,
            config.rebalance_timeout,
        );
        let consumer = PartitionConsumer::new(client.clone(), config.consumer.clone())?;
        let topics = match &config.subscription {
            TopicSubscription::Topics(t) => t.clone(),
            TopicSubscription::Pattern(_) => Vec::new(),
        };
        let kip848 = (config.group_protocol == GroupProtocol::Consumer).then(|| {
            kip848_poll::State::new(
                crate::group::kip848::ConsumerMember::new(
                    client.clone(),
                    &config.group_id,
                    config.instance_id.clone(),
                    config.rebalance_timeout,
                    config.remote_assignor.clone(),
                ),
                topics.clone(),
            )
        });
        Ok(Self {
            client,
            config,
            assignors,
            protocol,
            member: Arc::new(Mutex::new(member)),
            consumer,
            assignment: BTreeSet::new(),
            consumed: HashMap::new(),
            committed: HashMap::new(),
            events: VecDeque::new(),
            flag: Arc::new(AtomicU8::new(HB_OK)),
            rejoin: true,
            last_assignment: None,
            topics,
            last_pattern_check: Instant::now() - Duration::from_secs(3600),
            last_auto_commit: Instant::now(),
            heartbeat: None,
            pending_join: None,
            joined_round: None,
            followup: false,
            kip848,
        })
    }

    /// The partitions this member owns now.
    pub fn assignment(&self) -> Vec<(String, i32)> {
        self.assignment.iter().cloned().collect()
    }

    /// The member id and generation of the last completed rebalance this member took part
    /// in (`None` before its first, and after its membership was lost). Unlike
    /// [`GroupConsumer::identity`] it never waits for a rebalance in progress.
    pub fn membership(&self) -> Option<(&str, i32)> {
        self.last_assignment
            .as_ref()
            .map(|l| (l.member_id.as_str(), l.generation))
    }

    /// This member's group, member id and generation, for
    /// [`crate::producer::Producer::send_offsets_to_transaction`]: the group coordinator then
    /// refuses the offsets if a rebalance has fenced this member since.
    pub fn group_metadata(&self) -> crate::producer::ConsumerGroupMetadata {
        let mut m = crate::producer::ConsumerGroupMetadata::new(self.config.group_id.clone());
        if let Some(l) = &self.last_assignment {
            m.member_id = l.member_id.clone();
            m.generation_id = l.generation;
        }
        m.group_instance_id = self.config.instance_id.clone();
        m
    }

    /// The member id and generation (waits for a rebalance in progress to finish); under the
    /// consumer group protocol, the member epoch.
    pub async fn identity(&self) -> (String, i32) {
        if let Some(state) = &self.kip848 {
            let s = state.shared.lock().await;
            return (s.member.member_id.clone(), s.member.epoch);
        }
        let m = self.member.lock().await;
        (m.identity.member_id.clone(), m.identity.generation)
    }

    /// The partition consumer underneath (positions, lag, seek).
    pub fn partition_consumer(&mut self) -> &mut PartitionConsumer {
        &mut self.consumer
    }

    /// The next event: records, or a change of assignment.
    pub async fn poll(&mut self) -> Result<GroupEvent> {
        if self.kip848.is_some() {
            return self.poll_kip848().await;
        }
        loop {
            if let Some(e) = self.events.pop_front() {
                return Ok(e);
            }
            match self.flag.swap(HB_OK, Ordering::SeqCst) {
                HB_LOST => {
                    self.lose_all().await;
                    continue;
                }
                HB_REJOIN => self.rejoin = true,
                _ => {}
            }
            self.check_pattern().await?;
            if self.rejoin {
                if self.protocol == RebalanceProtocol::Eager && !self.assignment.is_empty() {
                    // Eager: everything goes before rejoining; the application hears it first.
                    let all: Vec<(String, i32)> = self.assignment.iter().cloned().collect();
                    self.revoke(&all).await?;
                    continue;
                }
                self.rebalance().await?;
                continue;
            }
            self.maybe_auto_commit().await;
            if self.assignment.is_empty() {
                // Nothing to fetch (more members than partitions): stay in the group.
                tokio::time::sleep(self.config.heartbeat_interval).await;
                continue;
            }
            let fetched = self
                .consumer
                .poll_timeout(self.config.heartbeat_interval)
                .await?;
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

    /// Commits the positions after everything handed to the application so far.
    pub async fn commit(&mut self) -> Result<()> {
        let pending: HashMap<(String, i32), i64> = self
            .consumed
            .iter()
            .filter(|(tp, o)| self.assignment.contains(*tp) && self.committed.get(*tp) != Some(*o))
            .map(|(tp, o)| (tp.clone(), *o))
            .collect();
        self.commit_offsets(&pending).await
    }

    /// Commits explicit offsets (the next offset to read, per partition).
    pub async fn commit_offsets(&mut self, offsets: &HashMap<(String, i32), i64>) -> Result<()> {
        self.commit_offsets_with_metadata(offsets, None).await
    }

    /// Commits explicit offsets with a metadata string stored beside each (Kafka's commit
    /// metadata, read back by OffsetFetch and `Admin::committed_offsets` tools).
    pub async fn commit_offsets_with_metadata(
        &mut self,
        offsets: &HashMap<(String, i32), i64>,
        metadata: Option<&str>,
    ) -> Result<()> {
        if offsets.is_empty() {
            return Ok(());
        }
        if self.kip848.is_some() {
            return self.commit_kip848(offsets, metadata).await;
        }
        self.member.lock().await.commit(offsets, metadata).await?;
        self.committed
            .extend(offsets.iter().map(|(k, v)| (k.clone(), *v)));
        Ok(())
    }

    /// Commits in the background; the returned handle gives the outcome.
    pub fn commit_async(&mut self) -> JoinHandle<Result<()>> {
        let pending: HashMap<(String, i32), i64> = self
            .consumed
            .iter()
            .filter(|(tp, o)| self.assignment.contains(*tp) && self.committed.get(*tp) != Some(*o))
            .map(|(tp, o)| (tp.clone(), *o))
            .collect();
        self.committed
            .extend(pending.iter().map(|(k, v)| (k.clone(), *v)));
        if let Some(state) = &self.kip848 {
            let shared = state.shared.clone();
            return tokio::spawn(
                async move { shared.lock().await.member.commit(&pending, None).await },
            );
        }
        let member = self.member.clone();
        tokio::spawn(async move { member.lock().await.commit(&pending, None).await })
    }

    /// Commits (when auto commit is on), leaves the group and stops.
    pub async fn close(mut self) -> Result<()> {
        if self.config.auto_commit {
            self.commit().await?;
        }
        self.heartbeat = None;
        let left = if self.kip848.is_some() {
            self.leave_kip848().await
        } else {
            self.member.lock().await.leave().await
        };
        self.consumer.close();
        left
    }

    async fn maybe_auto_commit(&mut self) {
        if self.config.auto_commit
            && self.last_auto_commit.elapsed() >= self.config.auto_commit_interval
        {
            self.last_auto_commit = Instant::now();
            if let Err(e) = self.commit().await {
                tracing::warn!(group = %self.config.group_id, error = %e, "auto commit failed");
            }
        }
    }

    async fn check_pattern(&mut self) -> Result<()> {
        let TopicSubscription::Pattern(re) = &self.config.subscription else {
            return Ok(());
        };
        if self.last_pattern_check.elapsed() < self.config.pattern_check_interval {
            return Ok(());
        }
        self.last_pattern_check = Instant::now();
        let snapshot = self.client.refresh_all_topics().await?;
        let mut matched: Vec<String> = snapshot
            .topics
            .values()
            .filter(|t| {
                !t.internal
                    && re.is_match(&t.name)
                    && re.find(&t.name).is_some_and(|m| m.len() == t.name.len())
            })
            .map(|t| t.name.clone())
            .collect();
        matched.sort();
        if matched != self.topics {
            tracing::info!(group = %self.config.group_id, topics = ?matched, "pattern subscription changed");
            self.topics = matched;
            self.rejoin = true;
        }
        Ok(())
    }

    /// Partitions leave: commit what was consumed of them (auto commit), stop fetching them, and
    /// tell the application.
    async fn revoke(&mut self, partitions: &[(String, i32)]) -> Result<()> {
        if self.config.auto_commit {
            let offsets: HashMap<(String, i32), i64> = partitions
                .iter()
                .filter_map(|tp| Some((tp.clone(), *self.consumed.get(tp)?)))
                .filter(|(tp, o)| self.committed.get(tp) != Some(o))
                .collect();
            if let Err(e) = self.commit_offsets(&offsets).await {
                tracing::warn!(group = %self.config.group_id, error = %e, "commit before revocation failed");
            }
        }
        self.consumer.unassign(partitions);
        for tp in partitions {
            self.assignment.remove(tp);
            self.consumed.remove(tp);
        }
        self.events
            .push_back(GroupEvent::Revoked(partitions.to_vec()));
        Ok(())
    }

    async fn lose_all(&mut self) {
        let all: Vec<(String, i32)> = self.assignment.iter().cloned().collect();
        self.consumer.unassign(&all);
        self.assignment.clear();
        self.consumed.clear();
        {
            let mut m = self.member.lock().await;
            m.identity.generation = -1;
            if m.identity.instance_id.is_none() {
                m.identity.member_id.clear();
            }
        }
        self.last_assignment = None;
        self.rejoin = true;
        if !all.is_empty() {
            self.events.push_back(GroupEvent::Lost(all));
        }
    }

    /// One rebalance step. Every await is either on the join task (which survives a cancelled
    /// poll) or comes before any state changes, so a poll cancelled at any point can simply be
    /// called again.
    async fn rebalance(&mut self) -> Result<()> {
        if self.joined_round.is_none() {
            if self.pending_join.is_none() {
                self.heartbeat = None;
                self.pending_join = Some(self.spawn_join().await?);
            }
            let Some(handle) = self.pending_join.as_mut() else {
                return Ok(());
            };
            let outcome = handle.await;
            self.pending_join = None;
            let round = outcome
                .map_err(|e| ClientError::Config(format!("group join task failed: {e}")))??;
            self.joined_round = Some(round);
        }
        let Some((joined, committed)) = self.joined_round.clone() else {
            return Ok(());
        };
        tracing::debug!(
            group = %self.config.group_id,
            generation = joined.identity.generation,
            member_id = %joined.identity.member_id,
            leader = joined.leader,
            assignor = %joined.protocol,
            partitions = joined.assignment.len(),
            "joined the group"
        );
        let new: BTreeSet<(String, i32)> = joined.assignment.iter().cloned().collect();
        let revoked: Vec<(String, i32)> = self.assignment.difference(&new).cloned().collect();
        if !revoked.is_empty() {
            // Cooperative: give these up, then rejoin so their new owner can get them.
            self.followup = true;
            self.revoke(&revoked).await?;
        }
        let added: Vec<(String, i32)> = new.difference(&self.assignment).cloned().collect();
        if !added.is_empty() {
            self.take_partitions(added, &committed).await?;
        }
        self.last_assignment = Some(LastRound {
            assignor: joined.protocol.clone(),
            partitions: joined.assignment.clone(),
            generation: joined.identity.generation,
            member_id: joined.identity.member_id.clone(),
        });
        self.joined_round = None;
        self.rejoin = std::mem::take(&mut self.followup);
        self.start_heartbeat();
        Ok(())
    }

    /// Starts a JoinGroup/SyncGroup round (and the committed-offset lookup of the partitions it
    /// gives) in a task of its own.
    /// Starts consuming `added` (newly assigned, under either protocol): at the group's
    /// committed offset, or where `offset_reset` says when there is none; then reports them.
    pub(super) async fn take_partitions(
        &mut self,
        added: Vec<(String, i32)>,
        committed: &Committed,
    ) -> Result<()> {
        let mut starts = Vec::new();
        for tp in &added {
            let start = match committed.get(tp) {
                Some(o) if *o >= 0 => StartAt::Offset(*o),
                _ => match self.config.consumer.offset_reset {
                    OffsetReset::Earliest => StartAt::Earliest,
                    OffsetReset::Latest => StartAt::Latest,
                    _ => {
                        return Err(ClientError::Config(format!(
                        "{}-{} has no committed offset for group {} and auto.offset.reset is error",
                        tp.0, tp.1, self.config.group_id
                    )))
                    }
                },
            };
            starts.push((tp.0.clone(), tp.1, start));
        }
        self.consumer.assign(&starts).await?;
        for tp in &added {
            if let Some(o) = committed.get(tp).filter(|o| **o >= 0) {
                self.committed.insert(tp.clone(), *o);
            }
        }
        self.assignment.extend(added.iter().cloned());
        self.events.push_back(GroupEvent::Assigned(added));
        Ok(())
    }

    async fn spawn_join(&mut self) -> Result<JoinHandle<Result<Round>>> {
        if let TopicSubscription::Topics(t) = &self.config.subscription {
            self.client.add_interest(t);
        }
        let owned: Vec<(String, i32)> = self.assignment.iter().cloned().collect();
        let generation = self.member.lock().await.identity.generation;
        let last: Vec<LastAssignment<'_>> = self
            .last_assignment
            .as_ref()
            .map(|l| {
                vec![LastAssignment {
                    assignor: &l.assignor,
                    partitions: &l.partitions,
                    generation_id: l.generation,
                }]
            })
            .unwrap_or_default();
        let cooperative = self.protocol == RebalanceProtocol::Cooperative;
        let owned_for_join: &[(String, i32)] = if cooperative { &owned } else { &[] };
        let state = JoinState {
            topics: &self.topics,
            owned_partitions: owned_for_join,
            generation_id: (generation >= 0).then_some(generation),
            rack_id: None,
            last_assignments: &last,
        };
        let protocols = assignor::join_protocols(&self.assignors, &state)
            .map_err(|e| ClientError::Config(e.to_string()))?;
        let kinds = self.config.assignors.clone();
        let client = self.client.clone();
        let member = self.member.clone();
        let flag = self.flag.clone();
        Ok(tokio::spawn(async move {
            let assignors: Vec<Box<dyn Assignor>> = kinds.iter().map(|k| k.build()).collect();
            let mut member = member.lock().await;
            // This join answers any rejoin request the stopped heartbeat made meanwhile; left
            // set, it would start another rebalance right after this one.
            let _ = flag.compare_exchange(HB_REJOIN, HB_OK, Ordering::SeqCst, Ordering::SeqCst);
            let joined = member
                .join(&protocols, &assignors, |assignor, subscriptions| {
                    let client = client.clone();
                    let result = leader_plan(assignor, subscriptions, cooperative);
                    Box::pin(async move {
                        let (topics, compute) = result?;
                        let mut counts = std::collections::BTreeMap::new();
                        for t in &topics {
                            match client.partition_count(t).await {
                                Ok(n) => {
                                    counts.insert(t.clone(), n as i32);
                                }
                                Err(e) => tracing::warn!(topic = %t, error = %e, "subscribed topic has no metadata; not assigned"),
                            }
                        }
                        compute(&counts)
                    })
                })
                .await?;
            let committed = if joined.assignment.is_empty() {
                HashMap::new()
            } else {
                member.committed(&joined.assignment).await?
            };
            Ok((joined, committed))
        }))
    }

    fn start_heartbeat(&mut self) {
        let member = self.member.clone();
        let flag = self.flag.clone();
        let interval = self.config.heartbeat_interval;
        self.heartbeat = Some(Task(tokio::spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                // The flag is set with the member locked, so a join (which clears a stale
                // rejoin request once it holds the member) is ordered after it.
                let mut member = member.lock().await;
                let outcome = member.heartbeat().await;
                match outcome {
                    HeartbeatOutcome::Ok | HeartbeatOutcome::CoordinatorMoved => {}
                    HeartbeatOutcome::Rejoin => {
                        // Keep heartbeating until the rejoin starts (it stops this task): the
                        // coordinator expires a member that neither heartbeats nor rejoins
                        // within its session, and the application may take a while with the
                        // revoked partitions first (flushing a sink).
                        let _ = flag.compare_exchange(
                            HB_OK,
                            HB_REJOIN,
                            Ordering::SeqCst,
                            Ordering::SeqCst,
                        );
                    }
                    HeartbeatOutcome::Lost => {
                        flag.store(HB_LOST, Ordering::SeqCst);
                        return;
                    }
                }
                drop(member);
            }
        })));
    }
}

/// The heartbeat task, stopped when its owner drops it (a dropped consumer must not keep its
/// membership alive).
#[derive(Debug)]
struct Task(JoinHandle<()>);

impl Drop for Task {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The leader's plan: which topics' partition counts it needs, and the assignment from them.
#[allow(clippy::type_complexity)]
fn leader_plan(
    assignor: &dyn Assignor,
    subscriptions: &std::collections::BTreeMap<String, super::protocol::Subscription>,
    cooperative: bool,
) -> Result<(
    Vec<String>,
    Box<dyn FnOnce(&std::collections::BTreeMap<String, i32>) -> Result<GroupAssignment> + Send>,
)> {
    let topics: BTreeSet<String> = subscriptions
        .values()
        .flat_map(|s| s.topics.iter().cloned())
        .collect();
    let name = assignor.name();
    let kind = match name {
        "range" => AssignorKind::Range,
        "roundrobin" => AssignorKind::RoundRobin,
        "sticky" => AssignorKind::Sticky,
        "cooperative-sticky" => AssignorKind::CooperativeSticky,
        other => return Err(ClientError::Config(format!("unknown assignor {other:?}"))),
    };
    let subscriptions = subscriptions.clone();
    Ok((
        topics.into_iter().collect(),
        Box::new(move |counts| {
            let a = kind.build();
            let assignment = a
                .assign(counts, &subscriptions)
                .map_err(|e| ClientError::Config(e.to_string()))?;
            if cooperative && kind != AssignorKind::CooperativeSticky {
                assignor::validate_cooperative_assignment(a.name(), &subscriptions, &assignment)
                    .map_err(|e| ClientError::Config(e.to_string()))?;
            }
            Ok(assignment)
        }),
    ))
}
