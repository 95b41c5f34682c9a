//! The harness for Java's sticky assignor tests: the assignor under test (`sticky` or
//! `cooperative-sticky`, as Java runs `AbstractStickyAssignorTest` through `StickyAssignorTest`
//! and `CooperativeStickyAssignorTest`) and Java's helpers (`buildSubscriptionV2Above`,
//! `verifyValidityAndBalance`...).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use super::*;
use crate::group::assignor::sticky::{encode_sticky_user_data, transfers_for_test, Flavor};

/// The assignor under test and Java's test helpers for it.
#[derive(Clone, Copy)]
pub(super) struct H(pub(super) Flavor);

pub(super) type Subs = BTreeMap<MemberId, Subscription>;
pub(super) type Transfers = Option<crate::group::assignor::sticky::Transfers>;

pub(super) const GENERATION: i32 = 1;

impl H {
    pub(super) fn assign(&self, parts: &BTreeMap<String, i32>, subs: &Subs) -> GroupAssignment {
        let result = match self.0 {
            Flavor::Eager => Sticky.assign(parts, subs),
            Flavor::Cooperative => CooperativeSticky.assign(parts, subs),
        };
        result.expect("sticky assigns")
    }

    /// Java's `partitionsTransferringOwnership` after `assignPartitions`.
    pub(super) fn transfers(&self, parts: &BTreeMap<String, i32>, subs: &Subs) -> Transfers {
        transfers_for_test(parts, subs, self.0)
    }

    /// `buildSubscriptionV2Above`: owned partitions and generation in the subscription; the eager
    /// assignor's user data carries them too, the cooperative one's is a fresh assignor's (-1).
    pub(super) fn v2<T: AsRef<str>>(
        &self,
        topics: &[T],
        owned: &[(String, i32)],
        generation: i32,
    ) -> Subscription {
        let user_data = match self.0 {
            Flavor::Eager => encode_sticky_user_data(owned, generation),
            Flavor::Cooperative => Bytes::copy_from_slice(&(-1i32).to_be_bytes()),
        };
        Subscription {
            topics: topics.iter().map(|t| t.as_ref().to_owned()).collect(),
            user_data: Some(user_data),
            owned_partitions: owned.to_vec(),
            generation_id: Some(generation).filter(|g| *g >= 0),
            ..Default::default()
        }
    }

    /// `buildSubscriptionV1`: no generation field; the generation is in the user data.
    pub(super) fn v1(
        &self,
        topics: &[&str],
        owned: &[(String, i32)],
        generation: i32,
    ) -> Subscription {
        let user_data = match self.0 {
            Flavor::Eager => encode_sticky_user_data(owned, generation),
            Flavor::Cooperative => Bytes::copy_from_slice(&generation.to_be_bytes()),
        };
        Subscription {
            user_data: Some(user_data),
            owned_partitions: owned.to_vec(),
            ..subscription(topics)
        }
    }

    /// `verifyValidityAndBalance`; for the cooperative assignor first the follow-up rebalances
    /// (owned partitions updated to the assignment) until nothing is revoked, checking that no
    /// partition is revoked and assigned in the same one.
    pub(super) fn verify(
        &self,
        subs: &mut Subs,
        a: &mut GroupAssignment,
        parts: &BTreeMap<String, i32>,
    ) {
        if self.0 == Flavor::Cooperative {
            let mut rebalances = 0;
            while cooperative_revokes(subs, a) {
                for (member, assigned) in a.iter() {
                    let topics = subs[member].topics.clone();
                    subs.insert(member.clone(), self.v2(&topics, assigned, GENERATION));
                }
                *a = self.assign(parts, subs);
                rebalances += 1;
                assert!(rebalances <= 4, "no convergence");
            }
        }
        verify_validity_and_balance(subs, a);
    }
}

/// `verifyCooperativeValidity`: panics if a partition is both revoked and added; returns
/// whether anything is revoked.
fn cooperative_revokes(subs: &Subs, a: &GroupAssignment) -> bool {
    let mut added = HashSet::new();
    let mut revoked = HashSet::new();
    for (member, assigned) in a {
        let owned: HashSet<&(String, i32)> = subs[member].owned_partitions.iter().collect();
        let assigned_set: HashSet<&(String, i32)> = assigned.iter().collect();
        added.extend(assigned_set.difference(&owned).copied());
        revoked.extend(owned.difference(&assigned_set).copied());
    }
    let both: Vec<_> = added.intersection(&revoked).collect();
    assert!(
        both.is_empty(),
        "revoked and reassigned in the same rebalance: {both:?}"
    );
    !revoked.is_empty()
}

/// Java's base `verifyValidityAndBalance`: members get only subscribed topics, no partition
/// twice, and two members whose counts differ by two or more share no topic.
pub(super) fn verify_validity_and_balance(subs: &Subs, a: &GroupAssignment) {
    assert_eq!(subs.len(), a.len());
    let members: Vec<&MemberId> = a.keys().collect();
    for (i, m) in members.iter().enumerate() {
        let mine = &a[*m];
        for (t, p) in mine {
            assert!(
                subs[*m].topics.contains(t),
                "{t}-{p} assigned to {m}, not subscribed"
            );
        }
        for other in &members[i + 1..] {
            let theirs = &a[*other];
            let common: Vec<_> = mine.iter().filter(|x| theirs.contains(x)).collect();
            assert!(common.is_empty(), "{m} and {other} share {common:?}");
            if mine.len().abs_diff(theirs.len()) <= 1 {
                continue;
            }
            let my_topics: BTreeSet<&String> = mine.iter().map(|(t, _)| t).collect();
            let their_topics: BTreeSet<&String> = theirs.iter().map(|(t, _)| t).collect();
            assert!(
                my_topics.is_disjoint(&their_topics),
                "{m} ({}) and {other} ({}) could be balanced better",
                mine.len(),
                theirs.len()
            );
        }
    }
}

pub(super) fn is_fully_balanced(a: &GroupAssignment) -> bool {
    let sizes: Vec<usize> = a.values().map(Vec::len).collect();
    match (sizes.iter().min(), sizes.iter().max()) {
        (Some(min), Some(max)) => max - min <= 1,
        _ => true,
    }
}

/// Java's `isSticky` looks for a topic whose partitions moved both ways between two members;
/// checked here on the result: among partitions whose previous owner is still a member
/// subscribed to the topic, no such pair of opposite moves.
pub(super) fn assert_sticky(previous: &GroupAssignment, subs: &Subs, a: &GroupAssignment) {
    let now: HashMap<&(String, i32), &MemberId> = a
        .iter()
        .flat_map(|(m, l)| l.iter().map(move |tp| (tp, m)))
        .collect();
    let mut moves: HashSet<(&str, &str, &str)> = HashSet::new();
    for (before, list) in previous {
        let Some(s) = subs.get(before) else { continue };
        for tp in list.iter().filter(|(t, _)| s.topics.contains(t)) {
            if let Some(after) = now.get(tp).filter(|m| **m != before) {
                moves.insert((tp.0.as_str(), before.as_str(), after.as_str()));
            }
        }
    }
    for (topic, from, to) in &moves {
        assert!(
            !moves.contains(&(topic, to, from)),
            "{topic} moved both ways between {from} and {to}"
        );
    }
}

/// Java's `getTopicName`/`getConsumerName`: a prefix and the number padded to the width of
/// `max`.
pub(super) fn name(prefix: &str, i: usize, max: usize) -> String {
    format!("{prefix}{i:0width$}", width = max.to_string().len())
}

pub(super) fn owned_of(a: &GroupAssignment, m: &str) -> Vec<(String, i32)> {
    a[m].clone()
}

pub(super) fn single(member: &str, s: Subscription) -> Subs {
    [(member.to_owned(), s)].into()
}

pub(super) fn empty_transfers() -> Transfers {
    Some(BTreeMap::new())
}
