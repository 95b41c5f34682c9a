//! Partition assignors: how the group leader splits the subscribed topics' partitions among the
//! members, and how a member tells the coordinator which assignors it can run.
//!
//! The built-in assignors give the same assignment as the Java client's for the same members,
//! subscriptions and partition counts, so a group mixing kingest and Java consumers behaves the
//! same whichever member is elected leader:
//!
//! - [`Range`] (`range`): per topic, consecutive ranges of partitions;
//! - [`RoundRobin`] (`roundrobin`): all partitions dealt in turn;
//! - [`Sticky`] (`sticky`, eager) and [`CooperativeSticky`] (`cooperative-sticky`, KIP-429):
//!   balanced assignments that keep partitions where they were.
//!
//! Java's assignors depend on the iteration order of the `HashMap` the leader builds from the
//! JoinGroup response in a few places (which member keeps an extra partition, ties between stale
//! owners). We reproduce that order (`java_hash_order`) from the member ids' Java hash codes;
//! the only thing we cannot know is the broker's member order, which Java uses between two members
//! whose ids fall in the same hash bucket: there we use member-id order.
//!
//! Rack-aware assignment (KIP-881) is not implemented: it needs the replicas' racks for every
//! partition, which this API does not carry (it takes partition counts). Java uses it only when
//! members set `client.rack` and the brokers' racks do not all hold every partition; otherwise,
//! and always here, the non-rack path runs, which is what we reproduce.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;

use bytes::Bytes;
use thiserror::Error;

use super::protocol::{ConsumerProtocolError, Subscription};

pub mod range;
pub mod roundrobin;
pub mod sticky;
mod sticky_general;

#[cfg(test)]
mod tests;

pub use range::Range;
pub use roundrobin::RoundRobin;
pub use sticky::{CooperativeSticky, Sticky};

/// A member id as the coordinator assigned it.
pub type MemberId = String;

/// What each member gets: its partitions as `(topic, partition)`, in the assignor's order.
pub type GroupAssignment = BTreeMap<MemberId, Vec<(String, i32)>>;

/// How members give up partitions during a rebalance (Java's `RebalanceProtocol`); the order is
/// Java's: a later variant is the more advanced one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RebalanceProtocol {
    /// Every member revokes all its partitions before rejoining.
    Eager,
    /// KIP-429: members keep their partitions while rejoining and revoke only those that move;
    /// a partition moving between members is revoked in one rebalance and assigned in the next.
    Cooperative,
}

/// The assignor failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum AssignError {
    /// The assignors offered have no rebalance protocol in common (Java refuses such a
    /// configuration when the consumer is created).
    #[error("assignors {names:?} have no rebalance protocol in common")]
    NoCommonProtocol {
        /// The assignors' names.
        names: Vec<&'static str>,
    },
    /// A cooperative assignment gives a member a partition that another member still owns.
    #[error("cooperative assignor {assignor} reassigns partitions still owned by other members: {partitions:?}")]
    CooperativeViolation {
        /// The assignor's name.
        assignor: &'static str,
        /// The partitions concerned.
        partitions: Vec<(String, i32)>,
    },
    /// An internal consistency check failed (Java throws `IllegalStateException` there).
    #[error("assignor {assignor}: {detail}")]
    Internal {
        /// The assignor's name.
        assignor: &'static str,
        /// What went wrong.
        detail: String,
    },
}

/// The last assignment a member received while a given assignor was the group's (Java keeps this
/// inside each assignor, through `onAssignment`).
#[derive(Debug, Clone, Copy)]
pub struct LastAssignment<'a> {
    /// The name of the assignor that was selected.
    pub assignor: &'a str,
    /// The partitions received.
    pub partitions: &'a [(String, i32)],
    /// The generation of that assignment.
    pub generation_id: i32,
}

/// What a member knows about itself when it joins, from which each assignor's subscription is
/// built (Java's `ConsumerCoordinator.metadata()`).
#[derive(Debug, Clone, Copy, Default)]
pub struct JoinState<'a> {
    /// The topics it subscribes to.
    pub topics: &'a [String],
    /// The partitions it owns now: under the eager protocol nothing (they were revoked before
    /// joining), under the cooperative one its current assignment.
    pub owned_partitions: &'a [(String, i32)],
    /// Its current generation, `None` before the first or after the coordinator reset it.
    pub generation_id: Option<i32>,
    /// Its `client.rack`.
    pub rack_id: Option<&'a str>,
    /// Per assignor, the last assignment received while it was selected.
    pub last_assignments: &'a [LastAssignment<'a>],
}

impl<'a> JoinState<'a> {
    /// The last assignment received while the assignor named `assignor` was selected.
    pub fn last_assignment(&self, assignor: &str) -> Option<&LastAssignment<'a>> {
        self.last_assignments
            .iter()
            .find(|l| l.assignor == assignor)
    }
}

/// A partition assignor (Java's `ConsumerPartitionAssignor`).
pub trait Assignor: Send + Sync + fmt::Debug {
    /// The protocol name offered in JoinGroup; all members must agree on what it means.
    fn name(&self) -> &'static str;

    /// The rebalance protocols this assignor's assignments are valid for.
    fn supported_protocols(&self) -> &'static [RebalanceProtocol] {
        &[RebalanceProtocol::Eager]
    }

    /// The most advanced protocol it supports.
    fn protocol(&self) -> RebalanceProtocol {
        self.supported_protocols()
            .iter()
            .copied()
            .max()
            .unwrap_or(RebalanceProtocol::Eager)
    }

    /// The user data this assignor puts in the member's subscription (Java's
    /// `subscriptionUserData`).
    fn user_data(&self, _state: &JoinState<'_>) -> Option<Bytes> {
        None
    }

    /// Assigns the partitions of `partitions_per_topic` (topic → partition count) to the members
    /// of `subscriptions`. Every member gets an entry, possibly empty; only topics some member
    /// subscribes to and that have partitions are assigned, as in Java (whose leader fetches
    /// metadata for exactly those topics).
    fn assign(
        &self,
        partitions_per_topic: &BTreeMap<String, i32>,
        subscriptions: &BTreeMap<MemberId, Subscription>,
    ) -> Result<GroupAssignment, AssignError>;
}

/// Java's default `partition.assignment.strategy` since 3.0: `range`, then `cooperative-sticky`
/// (the group runs the eager protocol until every member drops `range`).
pub fn default_assignors() -> Vec<Box<dyn Assignor>> {
    vec![Box::new(Range), Box::new(CooperativeSticky)]
}

/// The assignor among `ours` that the coordinator chose (the JoinGroup response's protocol
/// name); the first with that name.
pub fn select<'a>(ours: &'a [Box<dyn Assignor>], chosen: &str) -> Option<&'a dyn Assignor> {
    ours.iter().find(|a| a.name() == chosen).map(|a| &**a)
}

/// The rebalance protocol a member offering `assignors` follows: the most advanced one they all
/// support, as Java's `ConsumerCoordinator` decides.
pub fn rebalance_protocol(
    assignors: &[Box<dyn Assignor>],
) -> Result<RebalanceProtocol, AssignError> {
    let mut common: Option<BTreeSet<RebalanceProtocol>> = None;
    for a in assignors {
        let theirs: BTreeSet<_> = a.supported_protocols().iter().copied().collect();
        common = Some(match common {
            None => theirs,
            Some(c) => c.intersection(&theirs).copied().collect(),
        });
    }
    common
        .and_then(|c| c.last().copied())
        .ok_or_else(|| AssignError::NoCommonProtocol {
            names: assignors.iter().map(|a| a.name()).collect(),
        })
}

/// One entry of JoinGroup's protocol list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinProtocol {
    /// The assignor's name.
    pub name: &'static str,
    /// The encoded [`Subscription`] for it.
    pub metadata: Bytes,
}

/// JoinGroup's protocols, in our order of preference: for each assignor, the member's
/// subscription with that assignor's user data (Java's `ConsumerCoordinator.metadata()`).
pub fn join_protocols(
    assignors: &[Box<dyn Assignor>],
    state: &JoinState<'_>,
) -> Result<Vec<JoinProtocol>, ConsumerProtocolError> {
    assignors
        .iter()
        .map(|a| {
            let subscription = Subscription {
                topics: state.topics.to_vec(),
                user_data: a.user_data(state),
                owned_partitions: state.owned_partitions.to_vec(),
                generation_id: state.generation_id,
                group_instance_id: None,
                rack_id: state.rack_id.map(str::to_owned),
            };
            Ok(JoinProtocol {
                name: a.name(),
                metadata: subscription.encode()?,
            })
        })
        .collect()
}

/// The check Java's `ConsumerCoordinator` applies, under the cooperative protocol, to any
/// assignor but the built-in `cooperative-sticky` (which does its own): no partition may be
/// given to a member in the same rebalance as it is taken from another.
pub fn validate_cooperative_assignment(
    assignor: &'static str,
    subscriptions: &BTreeMap<MemberId, Subscription>,
    assignment: &GroupAssignment,
) -> Result<(), AssignError> {
    let mut added: BTreeSet<(&str, i32)> = BTreeSet::new();
    let mut revoked: HashSet<(&str, i32)> = HashSet::new();
    for (member, partitions) in assignment {
        let owned: HashSet<(&str, i32)> = subscriptions
            .get(member)
            .map(|s| {
                s.owned_partitions
                    .iter()
                    .map(|(t, p)| (t.as_str(), *p))
                    .collect()
            })
            .unwrap_or_default();
        let assigned: HashSet<(&str, i32)> =
            partitions.iter().map(|(t, p)| (t.as_str(), *p)).collect();
        added.extend(assigned.difference(&owned));
        revoked.extend(owned.difference(&assigned));
    }
    let both: Vec<(String, i32)> = added
        .into_iter()
        .filter(|tp| revoked.contains(tp))
        .map(|(t, p)| (t.to_owned(), p))
        .collect();
    if both.is_empty() {
        Ok(())
    } else {
        Err(AssignError::CooperativeViolation {
            assignor,
            partitions: both,
        })
    }
}

pub(crate) use kingest_protocol::consumer_protocol::java_string_order as java_cmp;

/// Java's `String.hashCode`.
pub(crate) fn java_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)))
}

/// The bucket of a key with hash code `hash` in a `java.util.HashMap` table of `capacity`
/// (a power of two): `HashMap.hash` folds the high half into the low one.
pub(crate) fn java_bucket(hash: i32, capacity: usize) -> usize {
    let h = hash as u32;
    ((h ^ (h >> 16)) as usize) & (capacity - 1)
}

/// How keys went into a Java `HashMap`: the two insertions order a bucket differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JavaInsert {
    /// `put` (and `HashSet.add`): appended to the bucket.
    Put,
    /// `computeIfAbsent`: prepended to the bucket.
    ComputeIfAbsent,
}

/// The iteration order of a `java.util.HashMap`/`HashSet` created empty and filled with `put`
/// with distinct keys having these hash codes, in this order. See [`java_hash_order_by`].
pub(crate) fn java_hash_order(hashes: &[i32]) -> Vec<usize> {
    java_hash_order_by(hashes, JavaInsert::Put)
}

/// The iteration order of a `java.util.HashMap` created empty and filled with distinct keys
/// having these hash codes, in this order: buckets in table order; in a bucket, insertion order
/// for `put` and its reverse for `computeIfAbsent` (resizing keeps the order). The table starts
/// at 16 buckets and doubles when the size passes 3/4 of it (`put` checks after inserting,
/// `computeIfAbsent` before), or when a bucket holding 8 keys (7 for `computeIfAbsent`) gets
/// another while the table has fewer than 64 buckets (`treeifyBin`). Buckets that big in a
/// bigger table become trees, whose order is not reproduced.
pub(crate) fn java_hash_order_by(hashes: &[i32], how: JavaInsert) -> Vec<usize> {
    let mut capacity = 16usize;
    let mut per_bucket: HashMap<usize, usize> = HashMap::new();
    let recount = |per_bucket: &mut HashMap<usize, usize>, capacity: usize, inserted: &[i32]| {
        per_bucket.clear();
        for &h in inserted {
            *per_bucket.entry(java_bucket(h, capacity)).or_insert(0) += 1;
        }
    };
    let bin_limit = match how {
        JavaInsert::Put => 8,
        JavaInsert::ComputeIfAbsent => 7,
    };
    for (i, &h) in hashes.iter().enumerate() {
        if how == JavaInsert::ComputeIfAbsent && i > capacity / 4 * 3 {
            capacity *= 2;
            recount(&mut per_bucket, capacity, &hashes[..i]);
        }
        let bucket = per_bucket.entry(java_bucket(h, capacity)).or_insert(0);
        let mut grow = *bucket >= bin_limit && capacity < 64;
        *bucket += 1;
        if grow {
            capacity *= 2;
        }
        if how == JavaInsert::Put && i + 1 > capacity / 4 * 3 {
            capacity *= 2;
            grow = true;
        }
        if grow {
            recount(&mut per_bucket, capacity, &hashes[..=i]);
        }
    }
    let mut order: Vec<usize> = (0..hashes.len()).collect();
    match how {
        JavaInsert::Put => order.sort_by_key(|&i| (java_bucket(hashes[i], capacity), i)),
        JavaInsert::ComputeIfAbsent => {
            order.sort_by_key(|&i| (java_bucket(hashes[i], capacity), std::cmp::Reverse(i)))
        }
    }
    order
}

/// The order in which Java's leader iterates its `subscriptions` map, a `HashMap` keyed by member
/// id. Java inserts members in the JoinGroup response's order, which only matters between ids in
/// the same bucket; we insert them in member-id order.
pub(crate) fn subscription_order(
    subscriptions: &BTreeMap<MemberId, Subscription>,
) -> Vec<&MemberId> {
    let mut ids: Vec<&MemberId> = subscriptions.keys().collect();
    ids.sort_by(|a, b| java_cmp(a, b));
    let hashes: Vec<i32> = ids.iter().map(|id| java_hash(id)).collect();
    java_hash_order(&hashes)
        .into_iter()
        .map(|i| ids[i])
        .collect()
}

/// Members in the order of Java's `AbstractPartitionAssignor.MemberInfo`: static members
/// (with a `group.instance.id`) first, by instance id, then dynamic members by member id. Java
/// sorts the map's iteration order with a stable sort, so equal instance ids keep that order.
pub(crate) fn member_info_order(
    subscriptions: &BTreeMap<MemberId, Subscription>,
) -> Vec<&MemberId> {
    let mut members = subscription_order(subscriptions);
    members.sort_by(|a, b| {
        match (
            &subscriptions[*a].group_instance_id,
            &subscriptions[*b].group_instance_id,
        ) {
            (Some(x), Some(y)) => java_cmp(x, y),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => java_cmp(a, b),
        }
    });
    members
}

/// The topics to assign: those some member subscribes to that have at least one partition, as
/// Java's `AbstractPartitionAssignor.assign` builds them from the leader's metadata.
pub(crate) fn assignable_topics<'a>(
    partitions_per_topic: &'a BTreeMap<String, i32>,
    subscriptions: &BTreeMap<MemberId, Subscription>,
) -> BTreeMap<&'a str, i32> {
    let subscribed: HashSet<&str> = subscriptions
        .values()
        .flat_map(|s| s.topics.iter().map(String::as_str))
        .collect();
    partitions_per_topic
        .iter()
        .filter(|(t, n)| **n > 0 && subscribed.contains(t.as_str()))
        .map(|(t, n)| (t.as_str(), *n))
        .collect()
}

/// An empty assignment for every member.
pub(crate) fn empty_assignment(
    subscriptions: &BTreeMap<MemberId, Subscription>,
) -> GroupAssignment {
    subscriptions
        .keys()
        .map(|m| (m.clone(), Vec::new()))
        .collect()
}
