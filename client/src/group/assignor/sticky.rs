//! The sticky assignors, Java's `StickyAssignor` (`sticky`, eager) and
//! `CooperativeStickyAssignor` (`cooperative-sticky`, KIP-429), both built on Java's
//! `AbstractStickyAssignor`: the assignment is as balanced as possible and, within that, leaves
//! as many partitions as possible with the member that had them.
//!
//! What a member had comes from its subscription: `cooperative-sticky` reads the owned partitions
//! and generation fields (or, from version-1 subscriptions, the generation in its 4-byte user
//! data); `sticky` reads its own user data, the previous assignment and generation. When two
//! members claim a partition, the newer generation wins; a tie in the same generation means
//! nobody keeps it.
//!
//! When every member subscribes to the same topics a direct quota-based algorithm runs
//! (the "constrained" builder, here); otherwise a general one that moves partitions until
//! balanced (`sticky_general`).
//!
//! `cooperative-sticky` then applies the KIP-429 rule: a partition that changes owner is taken
//! out of its new owner's assignment for this generation. The old owner, seeing it gone, revokes
//! it and rejoins; the follow-up rebalance gives it to its new owner once nobody claims it. Java
//! does this in `CooperativeStickyAssignor.assignPartitions` (`adjustAssignment`, with the
//! transfers recorded by the constrained builder or, after the general one,
//! `computePartitionsTransferringOwnership`).
//!
//! The result is Java's, list order included (checked against Java's own code on thousands of
//! random groups), except where Java misbehaves on inputs its own consumers do not send or
//! fails outright; there we keep the assignment valid instead:
//! - a member subscribed to nothing, first in Java's map order, makes Java take the subscriptions
//!   as identical and give that member partitions (`all_subscriptions_equal`);
//! - the general algorithm may hand a partition back to a previous owner that no longer
//!   subscribes to its topic, or throw a `NullPointerException` when that owner is left out of
//!   the rebalancing (`sticky_general`);
//! - repeated or nonexistent owned partitions, which Java counts twice or assigns, are dropped;
//! - Java's assignor object keeps the highest generation it ever saw across rebalances; ours is
//!   stateless and takes the highest among the current members (the same while generations only
//!   grow, which they do unless the group is deleted and recreated).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use bytes::{BufMut, Bytes, BytesMut};

use super::{
    assignable_topics, java_cmp, java_hash, java_hash_order_by, sticky_general, subscription_order,
    AssignError, Assignor, GroupAssignment, JavaInsert, JoinState, MemberId, RebalanceProtocol,
};
use crate::group::protocol::Subscription;

/// Java's `DEFAULT_GENERATION`: no generation.
const NO_GENERATION: i32 = -1;

/// The eager `sticky` assignor.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sticky;

impl Sticky {
    /// Its protocol name.
    pub const NAME: &'static str = "sticky";
}

impl Assignor for Sticky {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    /// The last assignment and its generation (Java's `StickyAssignor.subscriptionUserData`):
    /// under the eager protocol the member owns nothing when it joins, so this is how the leader
    /// learns what it had.
    fn user_data(&self, state: &JoinState<'_>) -> Option<Bytes> {
        let last = state.last_assignment(Self::NAME)?;
        Some(encode_sticky_user_data(last.partitions, last.generation_id))
    }

    fn assign(
        &self,
        partitions_per_topic: &BTreeMap<String, i32>,
        subscriptions: &BTreeMap<MemberId, Subscription>,
    ) -> Result<GroupAssignment, AssignError> {
        let model = Model::new(partitions_per_topic, subscriptions, Flavor::Eager);
        let outcome = run(&model, Self::NAME)?;
        Ok(model.to_assignment(&outcome.assignment))
    }
}

/// The `cooperative-sticky` assignor.
#[derive(Debug, Clone, Copy, Default)]
pub struct CooperativeSticky;

impl CooperativeSticky {
    /// Its protocol name.
    pub const NAME: &'static str = "cooperative-sticky";
}

impl Assignor for CooperativeSticky {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn supported_protocols(&self) -> &'static [RebalanceProtocol] {
        &[RebalanceProtocol::Cooperative, RebalanceProtocol::Eager]
    }

    /// The generation of the last assignment, as a 4-byte integer (-1 before the first): how
    /// members on version-1 subscriptions, which lack the generation field, tell it.
    fn user_data(&self, state: &JoinState<'_>) -> Option<Bytes> {
        let generation = state
            .last_assignment(Self::NAME)
            .map_or(NO_GENERATION, |l| l.generation_id);
        Some(Bytes::copy_from_slice(&generation.to_be_bytes()))
    }

    fn assign(
        &self,
        partitions_per_topic: &BTreeMap<String, i32>,
        subscriptions: &BTreeMap<MemberId, Subscription>,
    ) -> Result<GroupAssignment, AssignError> {
        let model = Model::new(partitions_per_topic, subscriptions, Flavor::Cooperative);
        let mut outcome = run(&model, Self::NAME)?;
        cooperative_adjust(&model, &mut outcome);
        Ok(model.to_assignment(&outcome.assignment))
    }
}

/// Which assignor's view of "what a member had" to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Flavor {
    /// `sticky`: the user data.
    Eager,
    /// `cooperative-sticky`: the subscription's owned partitions and generation.
    Cooperative,
}

/// Java's `AbstractStickyAssignor.MemberData`: what a member had, and in which generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct MemberData {
    pub(super) partitions: Vec<(String, i32)>,
    pub(super) generation: Option<i32>,
}

/// `CooperativeStickyAssignor.memberData`: the version-2+ generation field when set, else the
/// generation in the user data (4 bytes; shorter or garbled reads as -1, absent as none).
pub(super) fn cooperative_member_data(s: &Subscription) -> MemberData {
    let generation = match (s.generation_id.filter(|g| *g >= 0), &s.user_data) {
        (Some(g), _) => Some(g),
        (None, None) => None,
        (None, Some(d)) if d.len() >= 4 => Some(i32::from_be_bytes([d[0], d[1], d[2], d[3]])),
        (None, Some(_)) => Some(NO_GENERATION),
    };
    MemberData {
        partitions: s.owned_partitions.clone(),
        generation,
    }
}

/// `StickyAssignor.memberData`: always the user data, even when the subscription has owned
/// partitions (the eager protocol revoked them). Empty or absent user data means nothing owned
/// and no generation; undecodable user data means nothing owned in generation -1.
pub(super) fn sticky_member_data(s: &Subscription) -> MemberData {
    match &s.user_data {
        None => MemberData {
            partitions: Vec::new(),
            generation: None,
        },
        Some(d) if d.is_empty() => MemberData {
            partitions: Vec::new(),
            generation: None,
        },
        Some(d) => decode_sticky_user_data(d).unwrap_or(MemberData {
            partitions: Vec::new(),
            generation: Some(NO_GENERATION),
        }),
    }
}

/// `StickyAssignor`'s user data, schema version 1: an array of (topic string, array of int32
/// partitions) then the int32 generation. Topics come in the order Java's
/// `CollectionUtils.groupPartitionsByTopic` HashMap (filled with `computeIfAbsent`) yields them,
/// so the bytes match Java's, and so does the order the leader reads them in.
pub(super) fn encode_sticky_user_data(partitions: &[(String, i32)], generation: i32) -> Bytes {
    let mut topics: Vec<(&str, Vec<i32>)> = Vec::new();
    for (topic, partition) in partitions {
        match topics.iter_mut().find(|(t, _)| *t == topic.as_str()) {
            Some((_, ps)) => ps.push(*partition),
            None => topics.push((topic.as_str(), vec![*partition])),
        }
    }
    let hashes: Vec<i32> = topics.iter().map(|(t, _)| java_hash(t)).collect();
    let mut buf = BytesMut::new();
    buf.put_i32(topics.len() as i32);
    for i in java_hash_order_by(&hashes, JavaInsert::ComputeIfAbsent) {
        let (topic, ps) = &topics[i];
        // Topic names are at most 249 bytes; a longer one would be cut rather than panic.
        let name = &topic.as_bytes()[..topic.len().min(i16::MAX as usize)];
        buf.put_i16(name.len() as i16);
        buf.put_slice(name);
        buf.put_i32(ps.len() as i32);
        ps.iter().for_each(|p| buf.put_i32(*p));
    }
    buf.put_i32(generation);
    buf.freeze()
}

/// Reads `StickyAssignor`'s user data with schema version 1 and, failing that, version 0 (no
/// generation), as Java does. Bytes after the schema are ignored; strings decode lossily, as
/// Java's `Utils.utf8` does.
fn decode_sticky_user_data(data: &[u8]) -> Option<MemberData> {
    fn take<'a>(buf: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        if buf.len() < n {
            return None;
        }
        let (head, tail) = buf.split_at(n);
        *buf = tail;
        Some(head)
    }
    fn int32(buf: &mut &[u8]) -> Option<i32> {
        take(buf, 4).map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    // Java's ArrayOf.read: a negative count, or one above the bytes left, is an error.
    fn count(buf: &mut &[u8]) -> Option<usize> {
        let n = int32(buf)?;
        (n >= 0 && n as usize <= buf.len()).then_some(n as usize)
    }
    fn assignment(buf: &mut &[u8]) -> Option<Vec<(String, i32)>> {
        let mut partitions = Vec::new();
        for _ in 0..count(buf)? {
            let len = take(buf, 2).map(|b| i16::from_be_bytes([b[0], b[1]]))?;
            let topic =
                String::from_utf8_lossy(take(buf, usize::try_from(len).ok()?)?).into_owned();
            for _ in 0..count(buf)? {
                partitions.push((topic.clone(), int32(buf)?));
            }
        }
        Some(partitions)
    }
    let mut v1 = data;
    if let Some(partitions) = assignment(&mut v1) {
        if let Some(generation) = int32(&mut v1) {
            return Some(MemberData {
                partitions,
                generation: Some(generation),
            });
        }
    }
    let mut v0 = data;
    assignment(&mut v0).map(|partitions| MemberData {
        partitions,
        generation: None,
    })
}

/// A partition, its topic an index into [`Model::topics`]. Those are sorted by Java's
/// `String.compareTo`, so the derived order is Java's `TopicPartition` order (topic, partition).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) struct Tp {
    pub(super) topic: u32,
    pub(super) partition: i32,
}

/// The assignment problem with topics and members as indices.
pub(super) struct Model<'a> {
    /// The topics to assign (subscribed, with partitions), in Java's string order.
    pub(super) topics: Vec<&'a str>,
    pub(super) counts: Vec<i32>,
    /// Where each topic's partitions start in the flat numbering of all partitions.
    offsets: Vec<usize>,
    pub(super) total: usize,
    /// Java's `String.hashCode` of each topic (for `TopicPartition.hashCode`).
    topic_hashes: Vec<i32>,
    /// Member ids in Java's string order; a member is its index here.
    pub(super) members: Vec<&'a MemberId>,
    /// The members in Java's `subscriptions` HashMap iteration order.
    pub(super) java_order: Vec<usize>,
    /// Each member's subscribed topics as sent (for the all-equal test).
    raw_topics: Vec<BTreeSet<&'a str>>,
    /// Each member's subscribed topics among [`Model::topics`], sorted: Java's
    /// `consumer2AllPotentialTopics`.
    pub(super) potential: Vec<Vec<u32>>,
    /// Each member's [`MemberData`], reduced to existing partitions, without duplicates.
    pub(super) had: Vec<Vec<Tp>>,
    pub(super) had_generation: Vec<Option<i32>>,
    /// The generation field of each member's subscription (see [`all_subscriptions_equal`]).
    subscription_generation: Vec<Option<i32>>,
}

impl<'a> Model<'a> {
    pub(super) fn new(
        partitions_per_topic: &'a BTreeMap<String, i32>,
        subscriptions: &'a BTreeMap<MemberId, Subscription>,
        flavor: Flavor,
    ) -> Self {
        let assignable = assignable_topics(partitions_per_topic, subscriptions);
        let mut topics: Vec<&str> = assignable.keys().copied().collect();
        topics.sort_by(|a, b| java_cmp(a, b));
        let counts: Vec<i32> = topics.iter().map(|t| assignable[t]).collect();
        let mut offsets = Vec::with_capacity(topics.len());
        let mut total = 0usize;
        for &c in &counts {
            offsets.push(total);
            total += c as usize;
        }
        let topic_index: HashMap<&str, u32> = topics
            .iter()
            .enumerate()
            .map(|(i, t)| (*t, i as u32))
            .collect();

        let mut members: Vec<&MemberId> = subscriptions.keys().collect();
        members.sort_by(|a, b| java_cmp(a, b));
        let member_index: HashMap<&str, usize> = members
            .iter()
            .enumerate()
            .map(|(i, m)| (m.as_str(), i))
            .collect();
        let java_order = subscription_order(subscriptions)
            .into_iter()
            .map(|m| member_index[m.as_str()])
            .collect();

        let mut model = Model {
            topic_hashes: topics.iter().map(|t| java_hash(t)).collect(),
            topics,
            counts,
            offsets,
            total,
            members,
            java_order,
            raw_topics: Vec::new(),
            potential: Vec::new(),
            had: Vec::new(),
            had_generation: Vec::new(),
            subscription_generation: Vec::new(),
        };
        for member in &model.members {
            let s = &subscriptions[*member];
            let raw: BTreeSet<&str> = s.topics.iter().map(String::as_str).collect();
            let mut potential: Vec<u32> = raw
                .iter()
                .filter_map(|t| topic_index.get(t).copied())
                .collect();
            potential.sort_unstable();
            let data = match flavor {
                Flavor::Eager => sticky_member_data(s),
                Flavor::Cooperative => cooperative_member_data(s),
            };
            // Partitions of topics we do not assign are ignored by Java too; partitions beyond a
            // topic's count and repeats (which Java never sends) are dropped here rather than
            // assigned or double-counted.
            let mut seen = HashSet::new();
            let had = data
                .partitions
                .iter()
                .filter_map(|(t, p)| {
                    let topic = *topic_index.get(t.as_str())?;
                    (*p >= 0 && *p < model.counts[topic as usize]).then_some(Tp {
                        topic,
                        partition: *p,
                    })
                })
                .filter(|tp| seen.insert(*tp))
                .collect();
            model.raw_topics.push(raw);
            model.potential.push(potential);
            model.had.push(had);
            model.had_generation.push(data.generation);
            model
                .subscription_generation
                .push(s.generation_id.filter(|g| *g >= 0));
        }
        model
    }

    /// The partition's number in the flat numbering of all partitions.
    pub(super) fn flat(&self, tp: Tp) -> usize {
        self.offsets[tp.topic as usize] + tp.partition as usize
    }

    /// Java's `TopicPartition.hashCode`.
    pub(super) fn tp_hash(&self, tp: Tp) -> i32 {
        31i32
            .wrapping_mul(31i32.wrapping_add(tp.partition))
            .wrapping_add(self.topic_hashes[tp.topic as usize])
    }

    /// All partitions of `topic`.
    pub(super) fn partitions_of(&self, topic: u32) -> impl Iterator<Item = Tp> {
        (0..self.counts[topic as usize]).map(move |partition| Tp { topic, partition })
    }

    pub(super) fn subscribes(&self, member: usize, topic: u32) -> bool {
        self.potential[member].binary_search(&topic).is_ok()
    }

    fn to_assignment(&self, assignment: &[Vec<Tp>]) -> GroupAssignment {
        let mut out = GroupAssignment::new();
        for (member, tps) in self.members.iter().zip(assignment) {
            let list = tps
                .iter()
                .map(|tp| (self.topics[tp.topic as usize].to_owned(), tp.partition))
                .collect();
            out.insert((*member).clone(), list);
        }
        out
    }
}

/// What a sticky run produced.
pub(super) struct Outcome {
    /// Per member, its partitions in Java's list order.
    pub(super) assignment: Vec<Vec<Tp>>,
    /// Partitions given to a new owner while another member still owns them (Java's
    /// `partitionsTransferringOwnership`): recorded by the constrained builder, `None` after the
    /// general one.
    pub(super) transferring: Option<HashMap<Tp, usize>>,
}

/// `AbstractStickyAssignor.assignPartitions`.
pub(super) fn run(model: &Model<'_>, assignor: &'static str) -> Result<Outcome, AssignError> {
    if model.members.is_empty() {
        return Ok(Outcome {
            assignment: Vec::new(),
            transferring: Some(HashMap::new()),
        });
    }
    let prior = all_subscriptions_equal(model);
    if prior.all_equal {
        let mut transferring = HashMap::new();
        let assignment = constrained(
            model,
            prior.owned,
            &prior.multiple_owners,
            &mut transferring,
            assignor,
        )?;
        Ok(Outcome {
            assignment,
            transferring: Some(transferring),
        })
    } else {
        let assignment = sticky_general::build(model, prior.owned, prior.max_generation);
        Ok(Outcome {
            assignment,
            transferring: None,
        })
    }
}

/// What `allSubscriptionsEqual` finds besides its verdict.
struct Prior {
    all_equal: bool,
    /// Per member, the partitions it keeps a claim to (Java's `consumerToOwnedPartitions`).
    owned: Vec<Vec<Tp>>,
    /// Partitions claimed by two members of the same generation: nobody keeps them.
    multiple_owners: HashSet<Tp>,
    max_generation: i32,
}

/// Java's `allSubscriptionsEqual`, members taken in its `subscriptions` map order, which decides
/// ties. Two quirks are Java's and kept: the claim being challenged is weighed with the
/// *subscription's* generation field of its holder, not the generation from its member data
/// (they differ only for version-0/1 subscriptions and the eager assignor's user data); and one
/// deliberate difference: Java restarts its comparison after a member subscribed to nothing, so
/// that member can count as "equal" and be given partitions of topics it does not want; we
/// compare every member's topics.
fn all_subscriptions_equal(model: &Model<'_>) -> Prior {
    let n = model.members.len();
    let mut prior = Prior {
        all_equal: true,
        owned: vec![Vec::new(); n],
        multiple_owners: HashSet::new(),
        max_generation: NO_GENERATION,
    };
    let first = &model.raw_topics[model.java_order[0]];
    let mut holder: HashMap<Tp, usize> = HashMap::new();
    for &member in &model.java_order {
        if model.raw_topics[member] != *first {
            prior.all_equal = false;
        }
        let generation = model.had_generation[member].unwrap_or(NO_GENERATION);
        prior.max_generation = prior.max_generation.max(generation);
        for &tp in &model.had[member] {
            let Some(&other) = holder.get(&tp) else {
                prior.owned[member].push(tp);
                holder.insert(tp, member);
                continue;
            };
            let other_generation = model.subscription_generation[other].unwrap_or(NO_GENERATION);
            if generation >= other_generation {
                if generation == other_generation {
                    // Same generation: an invalid state; revoke it from both.
                    prior.multiple_owners.insert(tp);
                } else {
                    prior.owned[member].push(tp);
                }
                remove_first(&mut prior.owned[other], tp);
                holder.insert(tp, member);
            }
        }
    }
    prior
}

/// Java's `List.remove(Object)`.
pub(super) fn remove_first(list: &mut Vec<Tp>, tp: Tp) {
    if let Some(i) = list.iter().position(|x| *x == tp) {
        list.remove(i);
    }
}

/// Java's `ConstrainedAssignmentBuilder`, for identical subscriptions: every member gets
/// `min_quota` or `max_quota` partitions (`total % members` of them the larger). Owned partitions
/// are kept up to the quota, members in map order: the first ones owning enough keep
/// `max_quota`. The rest is dealt round robin to the members under quota, in member-id order.
fn constrained(
    model: &Model<'_>,
    owned: Vec<Vec<Tp>>,
    multiple_owners: &HashSet<Tp>,
    transferring: &mut HashMap<Tp, usize>,
    assignor: &'static str,
) -> Result<Vec<Vec<Tp>>, AssignError> {
    let n = model.members.len();
    let (min_quota, extra) = (model.total / n, model.total % n);
    let max_quota = min_quota + usize::from(extra > 0);
    let mut over_min = 0usize;
    let mut assignment: Vec<Vec<Tp>> = vec![Vec::new(); n];
    let mut maybe_revoked: HashMap<Tp, usize> = HashMap::new();
    let mut under_min: Vec<usize> = Vec::new();
    let mut exactly_min: Vec<usize> = Vec::new();
    let mut assigned = vec![false; model.total];

    for &member in &model.java_order {
        let mut mine = owned[member].clone();
        mine.sort_by_key(|tp| (tp.partition, tp.topic));
        mine.retain(|tp| !multiple_owners.contains(tp));
        let keep = if mine.len() < min_quota {
            under_min.push(member);
            mine.len()
        } else if mine.len() >= max_quota && over_min < extra {
            over_min += 1;
            if over_min == extra {
                exactly_min.clear();
            }
            max_quota
        } else {
            if over_min < extra {
                exactly_min.push(member);
            }
            min_quota
        };
        for &tp in &mine[keep..] {
            maybe_revoked.insert(tp, member);
        }
        for &tp in &mine[..keep] {
            assigned[model.flat(tp)] = true;
        }
        mine.truncate(keep);
        assignment[member] = mine;
    }

    under_min.sort_unstable();
    exactly_min.sort_unstable();
    let mut exactly_min: std::collections::VecDeque<usize> = exactly_min.into();
    let internal = |detail: String| AssignError::Internal { assignor, detail };

    // Java iterates the under-quota list with an iterator it restarts and removes through.
    let mut cursor = 0usize;
    for topic in 0..model.topics.len() as u32 {
        for tp in model
            .partitions_of(topic)
            .filter(|tp| !assigned[model.flat(*tp)])
        {
            let from_under = !under_min.is_empty();
            let member = if cursor < under_min.len() {
                cursor += 1;
                under_min[cursor - 1]
            } else if from_under {
                cursor = 1;
                under_min[0]
            } else {
                exactly_min
                    .pop_front()
                    .ok_or_else(|| internal("no more unfilled members to assign to".to_owned()))?
            };
            assignment[member].push(tp);
            let revoked_from_other = maybe_revoked.get(&tp).is_some_and(|m| *m != member);
            if revoked_from_other || multiple_owners.contains(&tp) {
                transferring.insert(tp, member);
            }
            let count = assignment[member].len();
            if count == min_quota && from_under {
                // (A member from the exactly-at-minimum list is already past the minimum.)
                cursor -= 1;
                under_min.remove(cursor);
                exactly_min.push_back(member);
            } else if count == max_quota {
                over_min += 1;
            }
        }
    }

    // Java's `verifyUnfilledMembers`.
    if !under_min.is_empty() {
        if over_min != extra {
            return Err(internal(format!(
                "{over_min} members above the minimum quota, {extra} expected, and nothing left to assign"
            )));
        }
        if let Some(&m) = under_min
            .iter()
            .find(|m| assignment[**m].len() != min_quota)
        {
            return Err(internal(format!(
                "member {} is below the minimum quota {min_quota}",
                model.members[m]
            )));
        }
    }
    Ok(assignment)
}

/// `CooperativeStickyAssignor.adjustAssignment`: partitions changing owner leave their new
/// owner's list for this generation.
fn cooperative_adjust(model: &Model<'_>, outcome: &mut Outcome) {
    let transferring = match outcome.transferring.take() {
        Some(t) => t,
        None => transfers_from_scratch(model, &outcome.assignment),
    };
    for (tp, member) in transferring {
        remove_first(&mut outcome.assignment[member], tp);
    }
}

/// `computePartitionsTransferringOwnership`: partitions assigned to a member that does not own
/// them while some other member owns them (whatever its generation: it has not revoked them).
fn transfers_from_scratch(model: &Model<'_>, assignment: &[Vec<Tp>]) -> HashMap<Tp, usize> {
    let mut added: HashMap<Tp, usize> = HashMap::new();
    let mut revoked: HashSet<Tp> = HashSet::new();
    for (member, assigned) in assignment.iter().enumerate() {
        let owned: HashSet<Tp> = model.had[member].iter().copied().collect();
        let assigned_set: HashSet<Tp> = assigned.iter().copied().collect();
        added.extend(
            assigned
                .iter()
                .filter(|tp| !owned.contains(tp))
                .map(|tp| (*tp, member)),
        );
        revoked.extend(
            model.had[member]
                .iter()
                .filter(|tp| !assigned_set.contains(tp)),
        );
    }
    added.retain(|tp, _| revoked.contains(tp));
    added
}

/// Partition → new owner, as Java's tests read `partitionsTransferringOwnership`.
#[cfg(test)]
pub(super) type Transfers = BTreeMap<(String, i32), MemberId>;

/// The transfers a run recorded (`None` after the general builder).
#[cfg(test)]
pub(super) fn transfers_for_test(
    partitions_per_topic: &BTreeMap<String, i32>,
    subscriptions: &BTreeMap<MemberId, Subscription>,
    flavor: Flavor,
) -> Option<Transfers> {
    let model = Model::new(partitions_per_topic, subscriptions, flavor);
    let outcome = run(&model, "test").expect("assignment");
    let name = |tp: &Tp| (model.topics[tp.topic as usize].to_owned(), tp.partition);
    let transferring = outcome.transferring?;
    Some(
        transferring
            .iter()
            .map(|(tp, m)| (name(tp), model.members[*m].clone()))
            .collect(),
    )
}
