//! Java's `RoundRobinAssignorTest`.

use super::cases::{
    check_cases, check_static_persistent, check_static_persistent_after_member_id_changes,
    two_members_six_partitions, Case, RANGE_AND_ROUND_ROBIN, T12,
};
use super::*;

/// The groups on which Java expects a different assignment from the range assignor.
const CASES: [Case; 3] = two_members_six_partitions!(
    "two_dynamic_consumers_two_topics_six_partitions",
    &[("topic1", 0), ("topic1", 2), ("topic2", 1)],
    &[("topic1", 1), ("topic2", 0), ("topic2", 2)],
);

#[test]
fn small_groups() {
    check_cases(&RoundRobin, RANGE_AND_ROUND_ROBIN);
    check_cases(&RoundRobin, &CASES);
}

#[test]
fn static_member_round_robin_assignment_persistent() {
    check_static_persistent(
        &RoundRobin,
        &[("topic1", 3), ("topic2", 3)],
        T12,
        &[
            ("consumer1", &[("topic1", 0), ("topic2", 1)]),
            ("consumer2", &[("topic1", 1), ("topic2", 2)]),
            ("consumer3", &[("topic1", 2)]),
            ("consumer4", &[("topic2", 0)]),
        ],
    );
}

#[test]
fn static_member_round_robin_assignment_persistent_after_member_id_changes() {
    check_static_persistent_after_member_id_changes(
        &RoundRobin,
        &[("topic1", 5), ("topic2", 5)],
        T12,
        &[
            (
                "instance1",
                &[("topic1", 0), ("topic1", 3), ("topic2", 1), ("topic2", 4)],
            ),
            ("instance2", &[("topic1", 1), ("topic1", 4), ("topic2", 2)]),
            ("instance3", &[("topic1", 2), ("topic2", 0), ("topic2", 3)]),
        ],
    );
}
