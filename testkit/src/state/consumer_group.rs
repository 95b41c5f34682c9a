//! Consumer group state for the KIP-848 protocol (ConsumerGroupHeartbeat): the group epoch, the
//! target assignment and its epoch, and per member its epoch and the partitions it owns or must
//! give up.
//!
//! The model follows Kafka's group coordinator: a subscription or topic change bumps the group
//! epoch; the next heartbeat recomputes the target assignment with the server-side assignor;
//! each member then converges on its target one heartbeat at a time. A member first gives up
//! what it must lose (it stays at its epoch, its answer lists only what it keeps, and it moves
//! on once a heartbeat reports the partitions gone); it is given a partition only once no other
//! member holds it, so no partition ever has two owners.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use super::assignors;

/// Partitions by topic name.
pub(crate) type Partitions = BTreeMap<String, BTreeSet<i32>>;

/// The member epoch a static member leaves with when it means to come back (KIP-848).
pub(crate) const STATIC_LEAVE_EPOCH: i32 = -2;
/// The member epoch of a member leaving for good.
pub(crate) const LEAVE_EPOCH: i32 = -1;

/// Where a member stands against its target assignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MemberState {
    /// It owns its target at the target epoch.
    Stable,
    /// It must give up partitions before it gets any new one.
    UnrevokedPartitions,
    /// Partitions of its target are still held by others.
    UnreleasedPartitions,
}

/// One member of a consumer group.
#[derive(Debug, Clone)]
pub(crate) struct ConsumerMember {
    pub id: String,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub host: String,
    pub rebalance_timeout: Duration,
    /// Sorted, without duplicates.
    pub subscribed: Vec<String>,
    pub assignor: Option<String>,
    pub state: MemberState,
    pub epoch: i32,
    pub previous_epoch: i32,
    /// What it owns and may consume.
    pub assigned: Partitions,
    /// What it still owns but must give up.
    pub revoking: Partitions,
    pub last_heartbeat: Instant,
    /// Set while it has partitions to give up: past it, the member is fenced.
    pub revocation_deadline: Option<Instant>,
}

impl ConsumerMember {
    pub fn new(id: String, now: Instant) -> Self {
        Self {
            id,
            instance_id: None,
            rack_id: None,
            client_id: String::new(),
            host: String::new(),
            rebalance_timeout: Duration::from_secs(300),
            subscribed: Vec::new(),
            assignor: None,
            state: MemberState::Stable,
            epoch: 0,
            previous_epoch: 0,
            assigned: Partitions::new(),
            revoking: Partitions::new(),
            last_heartbeat: now,
            revocation_deadline: None,
        }
    }

    /// Whether it owns `(topic, partition)`, to consume or to give up.
    fn holds(&self, topic: &str, partition: i32) -> bool {
        [&self.assigned, &self.revoking]
            .iter()
            .any(|a| a.get(topic).is_some_and(|ps| ps.contains(&partition)))
    }

    fn set_epoch(&mut self, epoch: i32) {
        self.previous_epoch = self.epoch;
        self.epoch = epoch;
    }
}

/// A consumer group.
#[derive(Debug, Default)]
pub(crate) struct ConsumerGroup {
    pub epoch: i32,
    pub assignment_epoch: i32,
    pub members: BTreeMap<String, ConsumerMember>,
    /// The target assignment of each member, as of `assignment_epoch`.
    pub target: BTreeMap<String, Partitions>,
    /// The partition count of every subscribed topic that exists, as the target was computed
    /// from: a change (a topic created, deleted or grown) bumps the group epoch.
    pub topic_sizes: BTreeMap<String, i32>,
    /// The assignor the last target was computed with.
    pub assignor: String,
}

impl ConsumerGroup {
    /// Kafka's names for the group's states.
    pub fn state_name(&self) -> &'static str {
        if self.members.is_empty() {
            "Empty"
        } else if self.epoch > self.assignment_epoch {
            "Assigning"
        } else if self
            .members
            .values()
            .any(|m| m.state != MemberState::Stable || m.epoch != self.assignment_epoch)
        {
            "Reconciling"
        } else {
            "Stable"
        }
    }

    /// The member with this static instance id.
    pub fn static_member(&self, instance_id: &str) -> Option<&str> {
        self.members
            .values()
            .find(|m| m.instance_id.as_deref() == Some(instance_id))
            .map(|m| m.id.as_str())
    }

    /// Whether any member other than `except` holds the partition.
    fn held_by_other(&self, except: &str, topic: &str, partition: i32) -> bool {
        self.members
            .values()
            .any(|m| m.id != except && m.holds(topic, partition))
    }

    /// Bumps the group epoch if `changed` (a member joined, left or changed its subscription)
    /// or if the subscribed topics' partition counts differ from those the target was computed
    /// from. `sizes` gives a topic's partition count, `None` when it does not exist.
    pub fn refresh(&mut self, changed: bool, sizes: impl Fn(&str) -> Option<i32>) {
        let subscribed: BTreeSet<&String> =
            self.members.values().flat_map(|m| &m.subscribed).collect();
        let now: BTreeMap<String, i32> = subscribed
            .into_iter()
            .filter_map(|t| sizes(t).map(|n| (t.clone(), n)))
            .collect();
        if changed || now != self.topic_sizes {
            self.topic_sizes = now;
            self.epoch += 1;
        }
    }

    /// The assignor the members prefer most (ties: the first name), or the default.
    fn chosen_assignor(&self) -> &'static str {
        let mut votes: BTreeMap<&'static str, usize> = BTreeMap::new();
        for m in self.members.values() {
            if let Some(a) = m.assignor.as_deref().and_then(assignors::known) {
                *votes.entry(a).or_default() += 1;
            }
        }
        let best = votes.values().copied().max().unwrap_or(0);
        votes
            .into_iter()
            .find(|(_, n)| *n == best && best > 0)
            .map_or(assignors::DEFAULT, |(a, _)| a)
    }

    /// Recomputes the target assignment if the group epoch moved past it.
    pub fn update_target(&mut self) {
        if self.epoch <= self.assignment_epoch {
            return;
        }
        let assignor = self.chosen_assignor();
        let subscriptions: BTreeMap<String, Vec<String>> = self
            .members
            .values()
            .map(|m| (m.id.clone(), m.subscribed.clone()))
            .collect();
        self.target = assignors::assign(assignor, &subscriptions, &self.topic_sizes, &self.target);
        self.assignor = assignor.to_owned();
        self.assignment_epoch = self.epoch;
    }

    /// Moves `member_id` towards its target (Kafka's CurrentAssignmentBuilder). `owned` is what
    /// the member's heartbeat says it owns (`None`: not reported). Returns whether its assigned
    /// partitions changed.
    pub fn reconcile(&mut self, member_id: &str, owned: Option<&Partitions>, now: Instant) -> bool {
        let Some(m) = self.members.get(member_id) else {
            return false;
        };
        let before = m.assigned.clone();
        let next = match m.state {
            MemberState::Stable if m.epoch == self.assignment_epoch => return false,
            MemberState::Stable | MemberState::UnreleasedPartitions => {
                self.next_assignment(member_id, m.epoch, owned)
            }
            MemberState::UnrevokedPartitions => {
                if still_owns(owned, &m.revoking) {
                    return false;
                }
                self.next_assignment(member_id, m.epoch + 1, owned)
            }
        };
        let Some(m) = self.members.get_mut(member_id) else {
            return false;
        };
        let (state, epoch, assigned, revoking) = next;
        m.state = state;
        m.set_epoch(epoch);
        m.assigned = assigned;
        m.revoking = revoking;
        m.revocation_deadline = (state == MemberState::UnrevokedPartitions)
            .then(|| m.revocation_deadline.unwrap_or(now + m.rebalance_timeout));
        m.assigned != before
    }

    /// The member's next state, epoch, assigned and revoking partitions.
    fn next_assignment(
        &self,
        member_id: &str,
        epoch: i32,
        owned: Option<&Partitions>,
    ) -> (MemberState, i32, Partitions, Partitions) {
        let empty = Partitions::new();
        let target = self.target.get(member_id).unwrap_or(&empty);
        let current = self.members.get(member_id).map_or(&empty, |m| &m.assigned);
        let mut keep = Partitions::new();
        let mut revoke = Partitions::new();
        let mut gain = Partitions::new();
        let mut unreleased = false;
        let topics: BTreeSet<&String> = target.keys().chain(current.keys()).collect();
        for topic in topics {
            let t = target.get(topic).cloned().unwrap_or_default();
            let c = current.get(topic).cloned().unwrap_or_default();
            let kept: BTreeSet<i32> = c.intersection(&t).copied().collect();
            let revoked: BTreeSet<i32> = c.difference(&kept).copied().collect();
            let mut added: BTreeSet<i32> = t.difference(&kept).copied().collect();
            let before = added.len();
            added.retain(|p| !self.held_by_other(member_id, topic, *p));
            unreleased |= added.len() != before;
            for (set, ps) in [
                (&mut keep, kept),
                (&mut revoke, revoked),
                (&mut gain, added),
            ] {
                if !ps.is_empty() {
                    set.insert(topic.clone(), ps);
                }
            }
        }
        if !revoke.is_empty() && still_owns(owned, &revoke) {
            return (MemberState::UnrevokedPartitions, epoch, keep, revoke);
        }
        for (topic, ps) in gain {
            keep.entry(topic).or_default().extend(ps);
        }
        let state = if unreleased {
            MemberState::UnreleasedPartitions
        } else {
            MemberState::Stable
        };
        (state, self.assignment_epoch, keep, Partitions::new())
    }

    /// Removes a member (left, fenced or expired) and bumps the group epoch; its partitions are
    /// free at once.
    pub fn remove_member(&mut self, member_id: &str) -> Option<ConsumerMember> {
        let m = self.members.remove(member_id)?;
        self.target.remove(member_id);
        self.epoch += 1;
        Some(m)
    }

    /// Members whose session expired or who did not give up partitions within their rebalance
    /// timeout.
    pub fn overdue(&self, now: Instant, session: Duration) -> Vec<String> {
        self.members
            .values()
            .filter(|m| {
                now >= m.last_heartbeat + session || m.revocation_deadline.is_some_and(|d| now >= d)
            })
            .map(|m| m.id.clone())
            .collect()
    }
}

/// Whether `owned` (what a member reported) still contains any of `revoking`; a member that
/// reported nothing is taken to own everything it was given (as Kafka does).
fn still_owns(owned: Option<&Partitions>, revoking: &Partitions) -> bool {
    let Some(owned) = owned else {
        return true;
    };
    revoking.iter().any(|(topic, ps)| {
        owned
            .get(topic)
            .is_some_and(|o| ps.iter().any(|p| o.contains(p)))
    })
}

/// Whether every partition in `owned` is in `assigned` (a member that lost a heartbeat answer
/// may come back with its previous epoch if it owns no more than it was given).
pub(crate) fn is_subset(owned: Option<&Partitions>, assigned: &Partitions) -> bool {
    let Some(owned) = owned else {
        return false;
    };
    owned.iter().all(|(topic, ps)| {
        assigned
            .get(topic)
            .is_some_and(|a| ps.iter().all(|p| a.contains(p)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(topic: &str, ps: &[i32]) -> Partitions {
        let mut m = Partitions::new();
        if !ps.is_empty() {
            m.insert(topic.to_owned(), ps.iter().copied().collect());
        }
        m
    }

    fn join(g: &mut ConsumerGroup, id: &str, now: Instant) {
        let mut m = ConsumerMember::new(id.to_owned(), now);
        m.subscribed = vec!["t".into()];
        g.members.insert(id.to_owned(), m);
        g.refresh(true, |t| (t == "t").then_some(4));
        g.update_target();
    }

    /// A second member gets the partitions the first gives up only after the first reports
    /// them gone; until then they have one owner only.
    #[test]
    fn partitions_move_only_after_revocation() {
        let now = Instant::now();
        let mut g = ConsumerGroup::default();
        join(&mut g, "a", now);
        g.reconcile("a", Some(&Partitions::new()), now);
        assert_eq!(g.members["a"].assigned, parts("t", &[0, 1, 2, 3]));
        assert_eq!(g.members["a"].epoch, 1);

        join(&mut g, "b", now);
        // b joins first: its target is held by a.
        g.reconcile("b", Some(&Partitions::new()), now);
        let b = &g.members["b"];
        assert_eq!(b.state, MemberState::UnreleasedPartitions);
        assert!(b.assigned.is_empty());
        assert_eq!(b.epoch, 2);

        // a must give up two partitions: it keeps its epoch.
        let a_owned = parts("t", &[0, 1, 2, 3]);
        g.reconcile("a", Some(&a_owned), now);
        let a = &g.members["a"];
        assert_eq!(a.state, MemberState::UnrevokedPartitions);
        assert_eq!(a.epoch, 1);
        assert_eq!(a.assigned.values().map(BTreeSet::len).sum::<usize>(), 2);
        let kept = a.assigned.clone();

        // Still reporting them: nothing moves.
        g.reconcile("a", Some(&a_owned), now);
        assert_eq!(g.members["a"].state, MemberState::UnrevokedPartitions);
        g.reconcile("b", Some(&Partitions::new()), now);
        assert!(g.members["b"].assigned.is_empty());

        // a acknowledges: it moves to the new epoch; then b gets the rest.
        g.reconcile("a", Some(&kept), now);
        assert_eq!(g.members["a"].state, MemberState::Stable);
        assert_eq!(g.members["a"].epoch, 2);
        g.reconcile("b", Some(&Partitions::new()), now);
        let b = &g.members["b"];
        assert_eq!(b.state, MemberState::Stable);
        let mut all: Vec<i32> = b.assigned["t"].iter().chain(&kept["t"]).copied().collect();
        all.sort_unstable();
        assert_eq!(all, vec![0, 1, 2, 3]);
    }

    /// A member that leaves frees its partitions for the others at once.
    #[test]
    fn leaving_frees_partitions() {
        let now = Instant::now();
        let mut g = ConsumerGroup::default();
        join(&mut g, "a", now);
        join(&mut g, "b", now);
        g.reconcile("a", Some(&Partitions::new()), now);
        g.reconcile("b", Some(&Partitions::new()), now);
        assert_eq!(g.members["a"].assigned["t"].len(), 2);
        g.remove_member("b");
        g.refresh(false, |t| (t == "t").then_some(4));
        g.update_target();
        let owned = g.members["a"].assigned.clone();
        g.reconcile("a", Some(&owned), now);
        assert_eq!(g.members["a"].assigned, parts("t", &[0, 1, 2, 3]));
        assert_eq!(g.state_name(), "Stable");
    }
}
