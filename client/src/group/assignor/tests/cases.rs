//! Groups as data, shared by the assignor tests: Java's tests for each assignor run the same kinds
//! of small groups (one consumer, two consumers on one topic, static members that rejoin...), each
//! assignor with its own expected assignment, so a test here is a table of [`Case`]s and one
//! runner instead of one function a group.

use std::collections::BTreeMap;

use super::*;

/// One member of a test group.
pub(super) struct Member {
    id: &'static str,
    topics: &'static [&'static str],
    /// The `group.instance.id` of a static member.
    instance: Option<&'static str>,
}

impl Member {
    /// A dynamic member subscribed to `topics`.
    pub(super) const fn new(id: &'static str, topics: &'static [&'static str]) -> Self {
        Member {
            id,
            topics,
            instance: None,
        }
    }

    /// A static member: subscribed to `topics`, with group instance id `instance`.
    pub(super) const fn fixed(
        id: &'static str,
        topics: &'static [&'static str],
        instance: &'static str,
    ) -> Self {
        Member {
            id,
            topics,
            instance: Some(instance),
        }
    }
}

/// Partitions as the tables write them: `(topic, partition)`.
pub(super) type Parts = &'static [(&'static str, i32)];

/// A group to assign and what its members must get.
pub(super) struct Case {
    /// Named after the Java test it comes from; failures name it.
    pub(super) name: &'static str,
    /// Partition count per topic.
    pub(super) partitions: Parts,
    pub(super) members: &'static [Member],
    /// Partitions of members, in the assignor's order; a member left out is not checked.
    pub(super) expected: &'static [(&'static str, Parts)],
}

impl Case {
    pub(super) fn partitions(&self) -> BTreeMap<String, i32> {
        counts(self.partitions)
    }

    pub(super) fn subscriptions(&self) -> BTreeMap<MemberId, Subscription> {
        self.members
            .iter()
            .map(|m| {
                let s = match m.instance {
                    Some(instance) => static_subscription(m.topics, instance),
                    None => subscription(m.topics),
                };
                (m.id.to_owned(), s)
            })
            .collect()
    }

    /// Panics, naming the case, unless `a` has an entry for every member and no other, and the
    /// expected partitions.
    pub(super) fn check(&self, a: &GroupAssignment) {
        let ids: Vec<&str> = a.keys().map(String::as_str).collect();
        let mut members: Vec<&str> = self.members.iter().map(|m| m.id).collect();
        members.sort_unstable();
        assert_eq!(ids, members, "{}: members", self.name);
        for (member, expected) in self.expected {
            assert_eq!(a[*member], tps(expected), "{}: {member}", self.name);
        }
    }
}

/// Topics the groups subscribe to.
pub(super) const T: &[&str] = &["topic"];
pub(super) const T1: &[&str] = &["topic1"];
pub(super) const T12: &[&str] = &["topic1", "topic2"];

pub(super) const ONE_CONSUMER_NO_TOPIC: Case = Case {
    name: "one_consumer_no_topic",
    partitions: &[],
    members: &[Member::new("consumer", &[])],
    expected: &[("consumer", &[])],
};

pub(super) const ONE_CONSUMER_ONE_TOPIC: Case = Case {
    name: "one_consumer_one_topic",
    partitions: &[("topic", 3)],
    members: &[Member::new("consumer", T)],
    expected: &[("consumer", &[("topic", 0), ("topic", 1), ("topic", 2)])],
};

pub(super) const ONE_CONSUMER_MULTIPLE_TOPICS: Case = Case {
    name: "one_consumer_multiple_topics",
    partitions: &[("topic1", 1), ("topic2", 2)],
    members: &[Member::new("consumer", T12)],
    expected: &[("consumer", &[("topic1", 0), ("topic2", 0), ("topic2", 1)])],
};

pub(super) const TWO_CONSUMERS_ONE_TOPIC_ONE_PARTITION: Case = Case {
    name: "two_consumers_one_topic_one_partition",
    partitions: &[("topic", 1)],
    members: &[Member::new("consumer1", T), Member::new("consumer2", T)],
    expected: &[("consumer1", &[("topic", 0)]), ("consumer2", &[])],
};

pub(super) const TWO_CONSUMERS_ONE_TOPIC_TWO_PARTITIONS: Case = Case {
    name: "two_consumers_one_topic_two_partitions",
    partitions: &[("topic", 2)],
    members: &[Member::new("consumer1", T), Member::new("consumer2", T)],
    expected: &[
        ("consumer1", &[("topic", 0)]),
        ("consumer2", &[("topic", 1)]),
    ],
};

/// The small groups on which Java's `RangeAssignorTest` and `RoundRobinAssignorTest` expect the
/// same assignment (Java's range test names its one consumer "consumer1" and its one topic
/// "topic1"; with one of each the names decide nothing). The sticky tests share some.
pub(super) const RANGE_AND_ROUND_ROBIN: &[Case] = &[
    ONE_CONSUMER_NO_TOPIC,
    Case {
        name: "one_consumer_nonexistent_topic",
        partitions: &[],
        members: &[Member::new("consumer", T)],
        expected: &[("consumer", &[])],
    },
    ONE_CONSUMER_ONE_TOPIC,
    Case {
        name: "only_assigns_partitions_from_subscribed_topics",
        partitions: &[("topic", 3), ("other", 3)],
        members: &[Member::new("consumer", T)],
        expected: &[("consumer", &[("topic", 0), ("topic", 1), ("topic", 2)])],
    },
    ONE_CONSUMER_MULTIPLE_TOPICS,
    TWO_CONSUMERS_ONE_TOPIC_ONE_PARTITION,
    TWO_CONSUMERS_ONE_TOPIC_TWO_PARTITIONS,
    Case {
        name: "multiple_consumers_mixed_topics",
        partitions: &[("topic1", 3), ("topic2", 2)],
        members: &[
            Member::new("consumer1", T1),
            Member::new("consumer2", T12),
            Member::new("consumer3", T1),
        ],
        expected: &[
            ("consumer1", &[("topic1", 0)]),
            ("consumer2", &[("topic1", 1), ("topic2", 0), ("topic2", 1)]),
            ("consumer3", &[("topic1", 2)]),
        ],
    },
];

/// Java's three groups of two members on two topics of three partitions each: both dynamic
/// ("consumer1" and "consumer2"), both static ("consumer-b" and "consumer-a", which sorts first by
/// member id, but instance ids decide), and a static "consumer-b" with a dynamic "consumer-a". In
/// each, the assignor gives the first member `$first` and the other `$second`. (A macro, not a
/// `const fn`: the expectations must be constants to be borrowed for `'static`.)
macro_rules! two_members_six_partitions {
    ($dynamic_name:literal, $first:expr, $second:expr $(,)?) => {{
        use $crate::group::assignor::tests::cases::{Case, Member, T12};
        [
            Case {
                name: $dynamic_name,
                partitions: &[("topic1", 3), ("topic2", 3)],
                members: &[Member::new("consumer1", T12), Member::new("consumer2", T12)],
                expected: &[("consumer1", $first), ("consumer2", $second)],
            },
            Case {
                name: "two_static_consumers_two_topics_six_partitions",
                partitions: &[("topic1", 3), ("topic2", 3)],
                members: &[
                    Member::fixed("consumer-b", T12, "instance1"),
                    Member::fixed("consumer-a", T12, "instance2"),
                ],
                expected: &[("consumer-b", $first), ("consumer-a", $second)],
            },
            Case {
                name: "one_static_consumer_and_one_dynamic_consumer_two_topics_six_partitions",
                partitions: &[("topic1", 3), ("topic2", 3)],
                members: &[
                    Member::fixed("consumer-b", T12, "instance1"),
                    Member::new("consumer-a", T12),
                ],
                expected: &[("consumer-b", $first), ("consumer-a", $second)],
            },
        ]
    }};
}
pub(super) use two_members_six_partitions;

/// Assigns and checks each case with a non-sticky assignor.
pub(super) fn check_cases(assignor: &dyn Assignor, cases: &[Case]) {
    for case in cases {
        let a = assignor
            .assign(&case.partitions(), &case.subscriptions())
            .unwrap_or_else(|e| panic!("{}: {e:?}", case.name));
        case.check(&a);
    }
}

/// An assignment as the tables write it.
pub(super) fn assignment(list: &[(&str, &[(&str, i32)])]) -> GroupAssignment {
    list.iter().map(|(m, p)| (m.to_string(), tps(p))).collect()
}

/// "consumer1".."consumer3", static members "instance1".."instance3", all on `topics`.
fn three_static(topics: &[&str]) -> BTreeMap<MemberId, Subscription> {
    (1..=3)
        .map(|i| {
            let s = static_subscription(topics, &format!("instance{i}"));
            (format!("consumer{i}"), s)
        })
        .collect()
}

/// Java's `testStaticMember...AssignmentPersistent`: `three_static` and a dynamic "consumer4"
/// get `expected`; when a new dynamic "consumer5" takes the place of "consumer4", it gets what
/// "consumer4" had and nothing else moves. Java compares the lists themselves, topic order
/// included.
pub(super) fn check_static_persistent(
    assignor: &dyn Assignor,
    partitions: &[(&str, i32)],
    topics: &[&str],
    expected: &[(&str, &[(&str, i32)])],
) {
    let parts = counts(partitions);
    let mut subs = three_static(topics);
    subs.insert("consumer4".into(), subscription(topics));
    let mut expected = assignment(expected);
    assert_eq!(assignor.assign(&parts, &subs), Ok(expected.clone()));

    subs.remove("consumer4");
    subs.insert("consumer5".into(), subscription(topics));
    let moved = expected
        .remove("consumer4")
        .expect("expected for consumer4");
    expected.insert("consumer5".into(), moved);
    assert_eq!(assignor.assign(&parts, &subs), Ok(expected));
}

/// Java's `testStaticMember...AssignmentPersistentAfterMemberIdChanges`: `three_static` get
/// `expected` (keyed by group instance id), and keep it when "consumer3" and "consumer2" rejoin
/// with new member ids ("consumer4" and "consumer5").
pub(super) fn check_static_persistent_after_member_id_changes(
    assignor: &dyn Assignor,
    partitions: &[(&str, i32)],
    topics: &[&str],
    expected: &[(&str, &[(&str, i32)])],
) {
    let parts = counts(partitions);
    let expected = assignment(expected);
    let by_instance = |subs: &BTreeMap<MemberId, Subscription>| -> GroupAssignment {
        let a = assignor.assign(&parts, subs).expect("assigns");
        subs.iter()
            .map(|(m, s)| (s.group_instance_id.clone().expect("static"), a[m].clone()))
            .collect()
    };
    let mut subs = three_static(topics);
    assert_eq!(by_instance(&subs), expected);

    let s3 = subs.remove("consumer3").expect("present");
    subs.insert("consumer4".into(), s3);
    let s2 = subs.remove("consumer2").expect("present");
    subs.insert("consumer5".into(), s2);
    assert_eq!(by_instance(&subs), expected);
}
