//! Java's `RangeAssignorTest` (the non-rack cases; the rack-aware ones need replica racks, which
//! this API does not take, and their non-rack expectations are checked here).

use std::collections::BTreeMap;

use super::*;

fn assign(
    parts: &BTreeMap<String, i32>,
    subs: &BTreeMap<MemberId, Subscription>,
) -> GroupAssignment {
    Range.assign(parts, subs).expect("range assigns")
}

fn members(list: &[(&str, Subscription)]) -> BTreeMap<MemberId, Subscription> {
    list.iter()
        .map(|(m, s)| (m.to_string(), s.clone()))
        .collect()
}

#[test]
fn one_consumer_no_topic() {
    let a = assign(&counts(&[]), &members(&[("consumer1", subscription(&[]))]));
    assert_eq!(a, [("consumer1".to_owned(), vec![])].into());
}

#[test]
fn one_consumer_nonexistent_topic() {
    let a = assign(
        &counts(&[]),
        &members(&[("consumer1", subscription(&["topic1"]))]),
    );
    assert_eq!(a, [("consumer1".to_owned(), vec![])].into());
}

#[test]
fn one_consumer_one_topic() {
    let a = assign(
        &counts(&[("topic1", 3)]),
        &members(&[("consumer1", subscription(&["topic1"]))]),
    );
    assert_eq!(
        a["consumer1"],
        tps(&[("topic1", 0), ("topic1", 1), ("topic1", 2)])
    );
}

#[test]
fn only_assigns_partitions_from_subscribed_topics() {
    let a = assign(
        &counts(&[("topic1", 3), ("other", 3)]),
        &members(&[("consumer1", subscription(&["topic1"]))]),
    );
    assert_eq!(
        a["consumer1"],
        tps(&[("topic1", 0), ("topic1", 1), ("topic1", 2)])
    );
}

#[test]
fn one_consumer_multiple_topics() {
    let a = assign(
        &counts(&[("topic1", 1), ("topic2", 2)]),
        &members(&[("consumer1", subscription(&["topic1", "topic2"]))]),
    );
    assert_eq!(
        set(&a["consumer1"]),
        set(&tps(&[("topic1", 0), ("topic2", 0), ("topic2", 1)]))
    );
}

#[test]
fn two_consumers_one_topic_one_partition() {
    let subs = members(&[
        ("consumer1", subscription(&["topic1"])),
        ("consumer2", subscription(&["topic1"])),
    ]);
    let a = assign(&counts(&[("topic1", 1)]), &subs);
    assert_eq!(a["consumer1"], tps(&[("topic1", 0)]));
    assert_eq!(a["consumer2"], vec![]);
}

#[test]
fn two_consumers_one_topic_two_partitions() {
    let subs = members(&[
        ("consumer1", subscription(&["topic1"])),
        ("consumer2", subscription(&["topic1"])),
    ]);
    let a = assign(&counts(&[("topic1", 2)]), &subs);
    assert_eq!(a["consumer1"], tps(&[("topic1", 0)]));
    assert_eq!(a["consumer2"], tps(&[("topic1", 1)]));
}

#[test]
fn multiple_consumers_mixed_topics() {
    let subs = members(&[
        ("consumer1", subscription(&["topic1"])),
        ("consumer2", subscription(&["topic1", "topic2"])),
        ("consumer3", subscription(&["topic1"])),
    ]);
    let a = assign(&counts(&[("topic1", 3), ("topic2", 2)]), &subs);
    assert_eq!(a["consumer1"], tps(&[("topic1", 0)]));
    assert_eq!(
        set(&a["consumer2"]),
        set(&tps(&[("topic1", 1), ("topic2", 0), ("topic2", 1)]))
    );
    assert_eq!(a["consumer3"], tps(&[("topic1", 2)]));
}

#[test]
fn two_consumers_two_topics_six_partitions() {
    let both = subscription(&["topic1", "topic2"]);
    let subs = members(&[("consumer1", both.clone()), ("consumer2", both)]);
    let a = assign(&counts(&[("topic1", 3), ("topic2", 3)]), &subs);
    assert_eq!(
        set(&a["consumer1"]),
        set(&tps(&[
            ("topic1", 0),
            ("topic1", 1),
            ("topic2", 0),
            ("topic2", 1)
        ]))
    );
    assert_eq!(
        set(&a["consumer2"]),
        set(&tps(&[("topic1", 2), ("topic2", 2)]))
    );
}

#[test]
fn two_static_consumers_two_topics_six_partitions() {
    // consumer-a sorts first by member id, but instance ids decide.
    let subs = members(&[
        (
            "consumer-b",
            static_subscription(&["topic1", "topic2"], "instance1"),
        ),
        (
            "consumer-a",
            static_subscription(&["topic1", "topic2"], "instance2"),
        ),
    ]);
    let a = assign(&counts(&[("topic1", 3), ("topic2", 3)]), &subs);
    assert_eq!(
        set(&a["consumer-b"]),
        set(&tps(&[
            ("topic1", 0),
            ("topic1", 1),
            ("topic2", 0),
            ("topic2", 1)
        ]))
    );
    assert_eq!(
        set(&a["consumer-a"]),
        set(&tps(&[("topic1", 2), ("topic2", 2)]))
    );
}

#[test]
fn one_static_consumer_and_one_dynamic_consumer_two_topics_six_partitions() {
    let subs = members(&[
        (
            "consumer-b",
            static_subscription(&["topic1", "topic2"], "instance1"),
        ),
        ("consumer-a", subscription(&["topic1", "topic2"])),
    ]);
    let a = assign(&counts(&[("topic1", 3), ("topic2", 3)]), &subs);
    assert_eq!(
        set(&a["consumer-b"]),
        set(&tps(&[
            ("topic1", 0),
            ("topic1", 1),
            ("topic2", 0),
            ("topic2", 1)
        ]))
    );
    assert_eq!(
        set(&a["consumer-a"]),
        set(&tps(&[("topic1", 2), ("topic2", 2)]))
    );
}

fn three_static(topics: &[&str]) -> BTreeMap<MemberId, Subscription> {
    members(&[
        ("consumer1", static_subscription(topics, "instance1")),
        ("consumer2", static_subscription(topics, "instance2")),
        ("consumer3", static_subscription(topics, "instance3")),
    ])
}

#[test]
fn static_member_range_assignment_persistent() {
    let parts = counts(&[("topic1", 5), ("topic2", 4)]);
    let mut subs = three_static(&["topic1", "topic2"]);
    subs.insert("consumer4".into(), subscription(&["topic1", "topic2"]));
    let mut expected: GroupAssignment = [
        (
            "consumer1".to_owned(),
            tps(&[("topic1", 0), ("topic1", 1), ("topic2", 0)]),
        ),
        ("consumer2".to_owned(), tps(&[("topic1", 2), ("topic2", 1)])),
        ("consumer3".to_owned(), tps(&[("topic1", 3), ("topic2", 2)])),
        ("consumer4".to_owned(), tps(&[("topic1", 4), ("topic2", 3)])),
    ]
    .into();
    // Java compares the lists themselves here, topic order included.
    assert_eq!(assign(&parts, &subs), expected);

    // A new dynamic member replaces the old one: same assignment.
    subs.remove("consumer4");
    subs.insert("consumer5".into(), subscription(&["topic1", "topic2"]));
    let moved = expected.remove("consumer4").expect("present");
    expected.insert("consumer5".into(), moved);
    assert_eq!(assign(&parts, &subs), expected);
}

/// The assignment keyed by group instance id.
fn by_instance(
    subs: &BTreeMap<MemberId, Subscription>,
    a: &GroupAssignment,
) -> BTreeMap<String, Vec<(String, i32)>> {
    subs.iter()
        .filter_map(|(m, s)| Some((s.group_instance_id.clone()?, a[m].clone())))
        .collect()
}

#[test]
fn static_member_range_assignment_persistent_after_member_id_changes() {
    let parts = counts(&[("topic1", 5), ("topic2", 5)]);
    let mut subs = three_static(&["topic1", "topic2"]);
    let expected: BTreeMap<String, Vec<(String, i32)>> = [
        (
            "instance1".to_owned(),
            tps(&[("topic1", 0), ("topic1", 1), ("topic2", 0), ("topic2", 1)]),
        ),
        (
            "instance2".to_owned(),
            tps(&[("topic1", 2), ("topic1", 3), ("topic2", 2), ("topic2", 3)]),
        ),
        ("instance3".to_owned(), tps(&[("topic1", 4), ("topic2", 4)])),
    ]
    .into();
    assert_eq!(by_instance(&subs, &assign(&parts, &subs)), expected);

    // Restarted members get new member ids; static members keep their ranges.
    let s3 = subs.remove("consumer3").expect("present");
    subs.insert("consumer4".into(), s3);
    let s2 = subs.remove("consumer2").expect("present");
    subs.insert("consumer5".into(), s2);
    assert_eq!(by_instance(&subs, &assign(&parts, &subs)), expected);
}

/// `verifyNonRackAwareAssignment`: consumers "consumer0".."consumerN" with these topics, the
/// expected assignments as Java's sorted strings.
fn verify(parts: &[(&str, i32)], consumer_topics: &[&[&str]], expected: &[&str]) {
    let subs: BTreeMap<MemberId, Subscription> = consumer_topics
        .iter()
        .enumerate()
        .map(|(i, t)| (format!("consumer{i}"), subscription(t)))
        .collect();
    let a = assign(&counts(parts), &subs);
    for (i, e) in expected.iter().enumerate() {
        assert_eq!(
            sorted_string(&a[&format!("consumer{i}")]),
            *e,
            "consumer{i}"
        );
    }
}

const ALL: &[&str] = &["t1", "t2", "t3"];

#[test]
fn rack_aware_assignment_with_uniform_subscription_non_rack_path() {
    verify(
        &[("t1", 6), ("t2", 7), ("t3", 2)],
        &[ALL, ALL, ALL],
        &[
            "t1-0, t1-1, t2-0, t2-1, t2-2, t3-0",
            "t1-2, t1-3, t2-3, t2-4, t3-1",
            "t1-4, t1-5, t2-5, t2-6",
        ],
    );
}

#[test]
fn rack_aware_assignment_with_non_equal_subscription_non_rack_path() {
    verify(
        &[("t1", 6), ("t2", 7), ("t3", 2)],
        &[ALL, ALL, &["t1", "t3"]],
        &[
            "t1-0, t1-1, t2-0, t2-1, t2-2, t2-3, t3-0",
            "t1-2, t1-3, t2-4, t2-5, t2-6, t3-1",
            "t1-4, t1-5",
        ],
    );
}

#[test]
fn rack_aware_assignment_with_uniform_partitions_non_rack_path() {
    verify(
        &[("t1", 5), ("t2", 5), ("t3", 5)],
        &[ALL, ALL, ALL],
        &[
            "t1-0, t1-1, t2-0, t2-1, t3-0, t3-1",
            "t1-2, t1-3, t2-2, t2-3, t3-2, t3-3",
            "t1-4, t2-4, t3-4",
        ],
    );
    verify(
        &[("t1", 5), ("t2", 5), ("t3", 5)],
        &[ALL, ALL, &["t1", "t3"]],
        &[
            "t1-0, t1-1, t2-0, t2-1, t2-2, t3-0, t3-1",
            "t1-2, t1-3, t2-3, t2-4, t3-2, t3-3",
            "t1-4, t3-4",
        ],
    );
}

#[test]
fn rack_aware_assignment_with_co_partitioning_non_rack_path() {
    let parts = [("t1", 6), ("t2", 6), ("t3", 2), ("t4", 2)];
    verify(
        &parts,
        &[&["t1", "t2"], &["t1", "t2"], &["t3", "t4"], &["t3", "t4"]],
        &[
            "t1-0, t1-1, t1-2, t2-0, t2-1, t2-2",
            "t1-3, t1-4, t1-5, t2-3, t2-4, t2-5",
            "t3-0, t4-0",
            "t3-1, t4-1",
        ],
    );
    let all: &[&str] = &["t1", "t2", "t3", "t4"];
    verify(
        &parts,
        &[all, all, all, all],
        &[
            "t1-0, t1-1, t2-0, t2-1, t3-0, t4-0",
            "t1-2, t1-3, t2-2, t2-3, t3-1, t4-1",
            "t1-4, t2-4",
            "t1-5, t2-5",
        ],
    );
}

#[test]
fn co_partitioned_assignment_with_same_subscription_non_rack_path() {
    // t7, t8, t9 are subscribed to but do not exist.
    let topics: &[&str] = &["t1", "t2", "t3", "t4", "t5", "t6", "t7", "t8", "t9"];
    verify(
        &[
            ("t1", 6),
            ("t2", 6),
            ("t3", 2),
            ("t4", 2),
            ("t5", 4),
            ("t6", 4),
        ],
        &[topics, topics, topics],
        &[
            "t1-0, t1-1, t2-0, t2-1, t3-0, t4-0, t5-0, t5-1, t6-0, t6-1",
            "t1-2, t1-3, t2-2, t2-3, t3-1, t4-1, t5-2, t6-2",
            "t1-4, t1-5, t2-4, t2-5, t5-3, t6-3",
        ],
    );
}
