//! Java's `RangeAssignorTest` (the non-rack cases; the rack-aware ones need replica racks, which
//! this API does not take, and their non-rack expectations are checked here).

use std::collections::BTreeMap;

use super::cases::{
    check_cases, check_static_persistent, check_static_persistent_after_member_id_changes,
    two_members_six_partitions, Case, RANGE_AND_ROUND_ROBIN, T12,
};
use super::*;

/// The groups on which Java expects a different assignment from the round-robin assignor.
const CASES: [Case; 3] = two_members_six_partitions!(
    "two_consumers_two_topics_six_partitions",
    &[("topic1", 0), ("topic1", 1), ("topic2", 0), ("topic2", 1)],
    &[("topic1", 2), ("topic2", 2)],
);

#[test]
fn small_groups() {
    check_cases(&Range, RANGE_AND_ROUND_ROBIN);
    check_cases(&Range, &CASES);
}

#[test]
fn static_member_range_assignment_persistent() {
    check_static_persistent(
        &Range,
        &[("topic1", 5), ("topic2", 4)],
        T12,
        &[
            ("consumer1", &[("topic1", 0), ("topic1", 1), ("topic2", 0)]),
            ("consumer2", &[("topic1", 2), ("topic2", 1)]),
            ("consumer3", &[("topic1", 3), ("topic2", 2)]),
            ("consumer4", &[("topic1", 4), ("topic2", 3)]),
        ],
    );
}

#[test]
fn static_member_range_assignment_persistent_after_member_id_changes() {
    check_static_persistent_after_member_id_changes(
        &Range,
        &[("topic1", 5), ("topic2", 5)],
        T12,
        &[
            (
                "instance1",
                &[("topic1", 0), ("topic1", 1), ("topic2", 0), ("topic2", 1)],
            ),
            (
                "instance2",
                &[("topic1", 2), ("topic1", 3), ("topic2", 2), ("topic2", 3)],
            ),
            ("instance3", &[("topic1", 4), ("topic2", 4)]),
        ],
    );
}

/// `verifyNonRackAwareAssignment`: consumers "consumer0".."consumerN" with these topics, the
/// expected assignments as Java's sorted strings.
fn verify(parts: &[(&str, i32)], consumer_topics: &[&[&str]], expected: &[&str]) {
    let subs: BTreeMap<MemberId, Subscription> = consumer_topics
        .iter()
        .enumerate()
        .map(|(i, t)| (format!("consumer{i}"), subscription(t)))
        .collect();
    let a = Range.assign(&counts(parts), &subs).expect("range assigns");
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
