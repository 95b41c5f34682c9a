//! The `roundrobin` assignor (Java's `RoundRobinAssignor`): every partition of every subscribed
//! topic, topics in name order and partitions in number order, is dealt to the members in turn
//! (`MemberInfo` order: static members by `group.instance.id`, then dynamic ones by member id),
//! skipping members not subscribed to the partition's topic.
//!
//! With identical subscriptions the counts differ by at most one; with different subscriptions
//! the skipping can leave the assignment unbalanced (the sticky assignors do better there).

use std::collections::BTreeMap;

use super::{
    assignable_topics, empty_assignment, java_cmp, member_info_order, AssignError, Assignor,
    GroupAssignment, MemberId,
};
use crate::group::protocol::Subscription;

/// The `roundrobin` assignor (eager protocol only).
#[derive(Debug, Clone, Copy, Default)]
pub struct RoundRobin;

impl RoundRobin {
    /// Its protocol name.
    pub const NAME: &'static str = "roundrobin";
}

impl Assignor for RoundRobin {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn assign(
        &self,
        partitions_per_topic: &BTreeMap<String, i32>,
        subscriptions: &BTreeMap<MemberId, Subscription>,
    ) -> Result<GroupAssignment, AssignError> {
        let members = member_info_order(subscriptions);
        let mut assignment = empty_assignment(subscriptions);
        // Java sorts the topics in a TreeSet, by `String.compareTo`.
        let mut topics: Vec<(&str, i32)> = assignable_topics(partitions_per_topic, subscriptions)
            .into_iter()
            .collect();
        topics.sort_by(|a, b| java_cmp(a.0, b.0));
        // Java's CircularIterator: `peek` the current member, `next` takes it and moves on.
        let mut cursor = 0usize;
        for (topic, count) in topics {
            for partition in 0..count {
                // Terminates: the topic is assignable, so some member subscribes to it.
                while !subscriptions[members[cursor]]
                    .topics
                    .iter()
                    .any(|t| t == topic)
                {
                    cursor = (cursor + 1) % members.len();
                }
                let list = assignment
                    .get_mut(members[cursor])
                    .expect("every member has an entry");
                list.push((topic.to_owned(), partition));
                cursor = (cursor + 1) % members.len();
            }
        }
        Ok(assignment)
    }
}
