//! The `range` assignor (Java's `RangeAssignor`): topic by topic, the partitions in order are cut
//! into one consecutive range per subscribed member, members in `MemberInfo` order (static members
//! by `group.instance.id`, then dynamic members by member id); when the partitions do not divide
//! evenly, the first members get one more.
//!
//! Topics with the same partition count and the same subscribers are therefore co-partitioned
//! (partition `i` of each goes to the same member), which is what joins over keyed topics rely on.
//! Static members keep their ranges across restarts that give them new member ids.

use std::collections::{BTreeMap, HashSet};

use super::{
    assignable_topics, empty_assignment, java_hash, java_hash_order, member_info_order,
    subscription_order, AssignError, Assignor, GroupAssignment, MemberId,
};
use crate::group::protocol::Subscription;

/// The `range` assignor (eager protocol only).
#[derive(Debug, Clone, Copy, Default)]
pub struct Range;

impl Range {
    /// Its protocol name.
    pub const NAME: &'static str = "range";
}

impl Assignor for Range {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn assign(
        &self,
        partitions_per_topic: &BTreeMap<String, i32>,
        subscriptions: &BTreeMap<MemberId, Subscription>,
    ) -> Result<GroupAssignment, AssignError> {
        let topics = assignable_topics(partitions_per_topic, subscriptions);
        let members = member_info_order(subscriptions);
        let mut assignment = empty_assignment(subscriptions);

        for topic in java_topic_order(subscriptions, &topics) {
            let count = topics[topic];
            let consumers: Vec<&MemberId> = members
                .iter()
                .copied()
                .filter(|m| subscriptions[*m].topics.iter().any(|t| t == topic))
                .collect();
            if consumers.is_empty() {
                continue;
            }
            let n = consumers.len() as i32;
            let (per_member, extra) = (count / n, count % n);
            let mut next = 0;
            for (i, member) in consumers.into_iter().enumerate() {
                let take = per_member + i32::from((i as i32) < extra);
                let list = assignment
                    .get_mut(member)
                    .expect("every member has an entry");
                list.extend((next..next + take).map(|p| (topic.to_owned(), p)));
                next += take;
            }
        }
        Ok(assignment)
    }
}

/// The order in which Java's range assignor walks the topics, which decides the order of topics
/// within each member's list (nothing else): that of the leader's `partitionsPerTopic` HashMap,
/// filled from the `allSubscribedTopics` HashSet (itself filled from each subscription's topics,
/// members in map order) with the topics that have partitions.
fn java_topic_order<'a>(
    subscriptions: &'a BTreeMap<MemberId, Subscription>,
    assignable: &BTreeMap<&'a str, i32>,
) -> Vec<&'a str> {
    let mut seen = HashSet::new();
    let subscribed: Vec<&str> = subscription_order(subscriptions)
        .into_iter()
        .flat_map(|m| subscriptions[m].topics.iter().map(String::as_str))
        .filter(|t| seen.insert(*t))
        .collect();
    let hashes: Vec<i32> = subscribed.iter().map(|t| java_hash(t)).collect();
    let inserted: Vec<&str> = java_hash_order(&hashes)
        .into_iter()
        .map(|i| subscribed[i])
        .filter(|t| assignable.contains_key(t))
        .collect();
    let hashes: Vec<i32> = inserted.iter().map(|t| java_hash(t)).collect();
    java_hash_order(&hashes)
        .into_iter()
        .map(|i| inserted[i])
        .collect()
}
