//! Java's `AbstractStickyAssignorTest`, second half: members and topics coming and going,
//! random groups, generations, for both `sticky` and `cooperative-sticky`. The very large cases
//! are scaled down to run in a debug build.

use std::collections::{BTreeMap, HashSet};

use super::sticky::*;
use super::*;
use crate::group::assignor::sticky::Flavor;

for_both!(
    reassignment_after_one_consumer_leaves,
    reassignment_after_one_consumer_added,
    same_subscriptions,
    large_assignment_and_group_with_uniform_subscription,
    large_assignment_and_group_with_non_equal_subscription,
    assignment_and_group_with_non_equal_subscription_not_timeout,
    subscription_not_equal_and_assign_same_partition_with_3_generation,
    large_assignment_with_multiple_consumers_leaving_and_random_subscription,
    new_subscription,
    move_existing_assignments,
    stickiness,
    assignment_updated_for_deleted_topic,
    no_exception_thrown_when_only_subscribed_topic_deleted,
    reassignment_with_random_subscriptions_and_changes,
    all_consumers_reach_expected_quota_and_are_considered_filled,
    owned_partitions_are_invalidated_for_consumer_with_stale_generation,
    owned_partitions_are_invalidated_for_consumer_with_no_generation,
    partitions_transferring_ownership_include_the_partition_claimed_by_multiple_consumers_in_same_generation,
    ensure_partitions_assigned_to_highest_generation,
    no_reassignment_on_current_members,
    owned_partitions_are_invalidated_for_consumer_with_multiple_generation,
);

/// Re-subscribes every member with its assignment as owned partitions.
fn resubscribe_all(h: H, subs: &mut Subs, a: &GroupAssignment) {
    for (m, list) in a {
        let topics = subs[m].topics.clone();
        subs.insert(m.clone(), h.v2(&topics, list, GENERATION));
    }
}

fn reassignment_after_one_consumer_leaves(h: H) {
    let parts: BTreeMap<String, i32> = (1..20).map(|i| (name("t", i, 20), i as i32)).collect();
    let mut subs: Subs = (1..20)
        .map(|i| {
            let topics: Vec<String> = (1..=i).map(|j| name("t", j, 20)).collect();
            (name("c", i, 20), Subscription::new(topics))
        })
        .collect();
    let mut a = h.assign(&parts, &subs);
    h.verify(&mut subs, &mut a, &parts);
    resubscribe_all(h, &mut subs, &a);
    // Java removes "consumer10", a name no member has; the scenario means c10.
    subs.remove("c10");
    let mut after = h.assign(&parts, &subs);
    h.verify(&mut subs, &mut after, &parts);
    assert_sticky(&a, &subs, &after);
}

fn reassignment_after_one_consumer_added(h: H) {
    let parts = counts(&[("topic", 20)]);
    let mut subs: Subs = (1..10)
        .map(|i| (name("c", i, 10), subscription(&["topic"])))
        .collect();
    let mut a = h.assign(&parts, &subs);
    assert_eq!(h.transfers(&parts, &subs), empty_transfers());
    h.verify(&mut subs, &mut a, &parts);
    subs.insert(name("c", 10, 10), subscription(&["topic"]));
    let mut a = h.assign(&parts, &subs);
    assert_eq!(h.transfers(&parts, &subs), empty_transfers());
    h.verify(&mut subs, &mut a, &parts);
}

fn same_subscriptions(h: H) {
    let parts: BTreeMap<String, i32> = (1..15).map(|i| (name("t", i, 15), i as i32)).collect();
    let topics: Vec<String> = parts.keys().cloned().collect();
    let mut subs: Subs = (1..9)
        .map(|i| (name("c", i, 9), Subscription::new(topics.clone())))
        .collect();
    let mut a = h.assign(&parts, &subs);
    assert_eq!(h.transfers(&parts, &subs), empty_transfers());
    h.verify(&mut subs, &mut a, &parts);
    resubscribe_all(h, &mut subs, &a);
    subs.remove(&name("c", 5, 9));
    let mut a = h.assign(&parts, &subs);
    assert_eq!(h.transfers(&parts, &subs), empty_transfers());
    h.verify(&mut subs, &mut a, &parts);
}

/// Java's large-group cases (500 topics × 2000 partitions, 2000 members) at a size a debug build
/// runs in seconds; `last_topics` gives the last member a different subscription.
fn large_group(
    h: H,
    topic_count: usize,
    partitions: i32,
    members: usize,
    subscribe: impl Fn(usize, &[String]) -> Vec<String>,
) {
    let topics: Vec<String> = (0..topic_count)
        .map(|i| name("t", i, topic_count))
        .collect();
    let parts: BTreeMap<String, i32> = topics.iter().map(|t| (t.clone(), partitions)).collect();
    let mut subs: Subs = (0..members)
        .map(|i| {
            (
                name("c", i, members),
                Subscription::new(subscribe(i, &topics)),
            )
        })
        .collect();
    let mut a = h.assign(&parts, &subs);
    verify_validity_and_balance(&subs, &a);
    for i in 1..members {
        let m = name("c", i, members);
        subs.insert(m.clone(), h.v2(&subscribe(i, &topics), &a[&m], GENERATION));
    }
    let previous = a.clone();
    a = h.assign(&parts, &subs);
    h.verify(&mut subs, &mut a, &parts);
    assert_sticky(&previous, &subs, &a);
}

fn large_assignment_and_group_with_uniform_subscription(h: H) {
    large_group(h, 50, 200, 200, |_, topics| topics.to_vec());
}

fn large_assignment_and_group_with_non_equal_subscription(h: H) {
    large_group(h, 20, 100, 100, |i, topics| {
        if i == 99 {
            topics[..1].to_vec()
        } else {
            topics.to_vec()
        }
    });
}

fn assignment_and_group_with_non_equal_subscription_not_timeout(h: H) {
    large_group(h, 20, 50, 100, |i, topics| {
        if i % 4 == 0 {
            topics[..10].to_vec()
        } else {
            topics[10..].to_vec()
        }
    });
}

fn subscription_not_equal_and_assign_same_partition_with_3_generation(h: H) {
    let parts = counts(&[("topic", 6), ("topic1", 1)]);
    for g in [
        [1, 2, 3],
        [1, 3, 2],
        [2, 1, 3],
        [2, 3, 1],
        [3, 1, 2],
        [3, 2, 1],
    ] {
        let subs: Subs = [
            (
                "consumer1".into(),
                h.v2(&["topic"], &tps(&[("topic", 0), ("topic", 2)]), g[0]),
            ),
            (
                "consumer2".into(),
                h.v2(
                    &["topic"],
                    &tps(&[("topic", 1), ("topic", 2), ("topic", 3)]),
                    g[1],
                ),
            ),
            (
                "consumer3".into(),
                h.v2(
                    &["topic"],
                    &tps(&[("topic", 2), ("topic", 4), ("topic", 5)]),
                    g[2],
                ),
            ),
            (
                "consumer4".into(),
                h.v2(&["topic1"], &tps(&[("topic1", 0)]), 2),
            ),
        ]
        .into();
        let a = h.assign(&parts, &subs);
        let all: Vec<&(String, i32)> = a.values().flatten().collect();
        let distinct: HashSet<&(String, i32)> = all.iter().copied().collect();
        assert_eq!(all.len(), distinct.len(), "{g:?}");
        for list in a.values() {
            assert!((1..=2).contains(&list.len()), "{g:?}: {a:?}");
        }
    }
}

fn large_assignment_with_multiple_consumers_leaving_and_random_subscription(h: H) {
    let mut rng = SplitMix::new(42);
    let (topic_count, consumer_count) = (40, 200);
    let parts: BTreeMap<String, i32> = (0..topic_count)
        .map(|i| (name("t", i, topic_count), rng.below(10) as i32 + 1))
        .collect();
    let mut subs: Subs = Subs::new();
    for i in 0..consumer_count {
        // As in Java, the bound is drawn again at every step, and topics may repeat.
        let mut topics = Vec::new();
        let mut j = 0;
        while j < rng.below(20) {
            topics.push(name("t", rng.below(topic_count), topic_count));
            j += 1;
        }
        subs.insert(name("c", i, consumer_count), Subscription::new(topics));
    }
    let mut a = h.assign(&parts, &subs);
    h.verify(&mut subs, &mut a, &parts);
    for i in 1..consumer_count {
        let m = name("c", i, consumer_count);
        let topics = subs[&m].topics.clone();
        subs.insert(m.clone(), h.v2(&topics, &a[&m], GENERATION));
    }
    for _ in 0..50 {
        subs.remove(&name("c", rng.below(consumer_count), consumer_count));
    }
    let mut after = h.assign(&parts, &subs);
    h.verify(&mut subs, &mut after, &parts);
    assert_sticky(&a, &subs, &after);
}

fn new_subscription(h: H) {
    let parts: BTreeMap<String, i32> = (1..5).map(|i| (name("t", i, 5), 1)).collect();
    let mut subs: Subs = (0..3usize)
        .map(|i| {
            let topics: Vec<String> = (i..=(3 * i).saturating_sub(2))
                .filter(|_| i > 0)
                .map(|j| name("t", j, 5))
                .collect();
            (name("c", i, 3), Subscription::new(topics))
        })
        .collect();
    let mut a = h.assign(&parts, &subs);
    h.verify(&mut subs, &mut a, &parts);
    subs.get_mut(&name("c", 0, 3))
        .expect("c0")
        .topics
        .push(name("t", 1, 5));
    let mut after = h.assign(&parts, &subs);
    h.verify(&mut subs, &mut after, &parts);
    assert_sticky(&a, &subs, &after);
}

fn move_existing_assignments(h: H) {
    let parts: BTreeMap<String, i32> = (1..=6).map(|i| (format!("topic{i}"), 1)).collect();
    let mut subs: Subs = [
        (
            "consumer1".into(),
            h.v2(&["topic1", "topic2"], &tps(&[("topic1", 0)]), GENERATION),
        ),
        (
            "consumer2".into(),
            h.v2(
                &["topic1", "topic2", "topic3", "topic4"],
                &tps(&[("topic2", 0), ("topic3", 0)]),
                GENERATION,
            ),
        ),
        (
            "consumer3".into(),
            h.v2(
                &["topic2", "topic3", "topic4", "topic5", "topic6"],
                &tps(&[("topic4", 0), ("topic5", 0), ("topic6", 0)]),
                GENERATION,
            ),
        ),
    ]
    .into();
    let mut a = h.assign(&parts, &subs);
    assert_eq!(h.transfers(&parts, &subs), None);
    h.verify(&mut subs, &mut a, &parts);
}

fn stickiness(h: H) {
    let parts = counts(&[("topic1", 3)]);
    let mut subs: Subs = (1..=4)
        .map(|i| (format!("consumer{i}"), subscription(&["topic1"])))
        .collect();
    let mut a = h.assign(&parts, &subs);
    assert_eq!(h.transfers(&parts, &subs), empty_transfers());
    h.verify(&mut subs, &mut a, &parts);
    assert!(a.values().all(|l| l.len() <= 1));
    let before = a.clone();

    subs.remove("consumer1");
    for m in ["consumer2", "consumer3", "consumer4"] {
        subs.insert(m.into(), h.v2(&["topic1"], &owned_of(&a, m), GENERATION));
    }
    let mut a = h.assign(&parts, &subs);
    assert_eq!(h.transfers(&parts, &subs), empty_transfers());
    h.verify(&mut subs, &mut a, &parts);
    for (m, list) in &a {
        assert_eq!(list.len(), 1, "{m}");
        assert!(
            before[m].iter().all(|tp| list.contains(tp)),
            "stickiness not honored for {m}"
        );
    }
}

fn assignment_updated_for_deleted_topic(h: H) {
    let parts = counts(&[("topic1", 1), ("topic3", 100)]);
    let subs = single("consumer", subscription(&["topic1", "topic2", "topic3"]));
    let a = h.assign(&parts, &subs);
    assert_eq!(h.transfers(&parts, &subs), empty_transfers());
    assert_eq!(a.len(), 1);
    assert_eq!(a["consumer"].len(), 101);
}

fn no_exception_thrown_when_only_subscribed_topic_deleted(h: H) {
    let parts = counts(&[("topic", 3)]);
    let mut subs = single("consumer", subscription(&["topic"]));
    let a = h.assign(&parts, &subs);
    assert_eq!(h.transfers(&parts, &subs), empty_transfers());
    subs.insert(
        "consumer".into(),
        h.v2(&["topic"], &a["consumer"], GENERATION),
    );
    let a = h.assign(&counts(&[]), &subs);
    assert_eq!(h.transfers(&counts(&[]), &subs), empty_transfers());
    assert_eq!(a, [("consumer".to_owned(), vec![])].into());
}

fn reassignment_with_random_subscriptions_and_changes(h: H) {
    let mut rng = SplitMix::new(7);
    let mut subs = Subs::new();
    // Java runs 100 rounds; as there, members of a bigger earlier round stay in the map.
    for _ in 0..25 {
        let topic_count = 10 + rng.below(10);
        let topics: Vec<String> = (0..topic_count).map(|i| name("t", i, 20)).collect();
        let parts: BTreeMap<String, i32> = topics
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i as i32 + 1))
            .collect();
        let consumer_count = 20 + rng.below(20);
        let random_sublist = |rng: &mut SplitMix| {
            let mut list = topics.clone();
            for _ in 0..rng.below(list.len()) {
                list.remove(rng.below(list.len()));
            }
            list
        };
        for i in 0..consumer_count {
            subs.insert(
                name("c", i, 40),
                Subscription::new(random_sublist(&mut rng)),
            );
        }
        let mut a = h.assign(&parts, &subs);
        h.verify(&mut subs, &mut a, &parts);
        subs.clear();
        for i in 0..consumer_count {
            let m = name("c", i, 40);
            subs.insert(
                m.clone(),
                h.v2(&random_sublist(&mut rng), &a[&m], GENERATION),
            );
        }
        let mut after = h.assign(&parts, &subs);
        h.verify(&mut subs, &mut after, &parts);
        assert_sticky(&a, &subs, &after);
    }
}

fn all_consumers_reach_expected_quota_and_are_considered_filled(h: H) {
    let parts = counts(&[("topic", 4)]);
    let mut subs: Subs = [
        (
            "consumer1".into(),
            h.v2(&["topic"], &tps(&[("topic", 0), ("topic", 1)]), GENERATION),
        ),
        (
            "consumer2".into(),
            h.v2(&["topic"], &tps(&[("topic", 2)]), GENERATION),
        ),
        ("consumer3".into(), h.v2(&["topic"], &[], GENERATION)),
    ]
    .into();
    let mut a = h.assign(&parts, &subs);
    assert_eq!(a["consumer1"], tps(&[("topic", 0), ("topic", 1)]));
    assert_eq!(a["consumer2"], tps(&[("topic", 2)]));
    assert_eq!(a["consumer3"], tps(&[("topic", 3)]));
    assert_eq!(h.transfers(&parts, &subs), empty_transfers());
    h.verify(&mut subs, &mut a, &parts);
}

fn two_owners(h: H, first: i32, second: i32) {
    let parts = counts(&[("topic", 3), ("topic2", 3)]);
    let owned = tps(&[("topic", 0), ("topic", 2), ("topic2", 1)]);
    let mut subs: Subs = [
        (
            "consumer1".into(),
            h.v2(&["topic", "topic2"], &owned, first),
        ),
        (
            "consumer2".into(),
            h.v2(&["topic", "topic2"], &owned, second),
        ),
    ]
    .into();
    let mut a = h.assign(&parts, &subs);
    assert_eq!(set(&a["consumer1"]), set(&owned));
    assert_eq!(
        set(&a["consumer2"]),
        set(&tps(&[("topic", 1), ("topic2", 0), ("topic2", 2)]))
    );
    assert_eq!(h.transfers(&parts, &subs), empty_transfers());
    h.verify(&mut subs, &mut a, &parts);
}

fn owned_partitions_are_invalidated_for_consumer_with_stale_generation(h: H) {
    two_owners(h, 10, 9);
}

fn owned_partitions_are_invalidated_for_consumer_with_no_generation(h: H) {
    two_owners(h, 10, -1);
}

fn partitions_transferring_ownership_include_the_partition_claimed_by_multiple_consumers_in_same_generation(
    h: H,
) {
    let parts = counts(&[("topic", 3)]);
    let mut subs: Subs = [
        (
            "consumer1".into(),
            h.v2(&["topic"], &tps(&[("topic", 0), ("topic", 1)]), GENERATION),
        ),
        (
            "consumer2".into(),
            h.v2(&["topic"], &tps(&[("topic", 0), ("topic", 2)]), GENERATION),
        ),
        ("consumer3".into(), h.v2(&["topic"], &[], GENERATION)),
    ]
    .into();
    let mut a = h.assign(&parts, &subs);
    assert_eq!(
        h.transfers(&parts, &subs),
        Some([(tp("topic", 0), "consumer3".into())].into())
    );
    h.verify(&mut subs, &mut a, &parts);
    assert_eq!(a["consumer1"], tps(&[("topic", 1)]));
    assert_eq!(a["consumer2"], tps(&[("topic", 2)]));
    assert_eq!(a["consumer3"], tps(&[("topic", 0)]));
}

fn ensure_partitions_assigned_to_highest_generation(h: H) {
    let parts = counts(&[("topic", 3), ("topic2", 3), ("topic3", 3)]);
    let topics = ["topic", "topic2", "topic3"];
    let mut subs: Subs = [
        (
            "consumer1".into(),
            h.v2(
                &topics,
                &tps(&[("topic", 0), ("topic2", 0), ("topic3", 0)]),
                10,
            ),
        ),
        (
            "consumer2".into(),
            h.v2(
                &topics,
                &tps(&[("topic", 1), ("topic2", 1), ("topic3", 1)]),
                9,
            ),
        ),
        (
            "consumer3".into(),
            h.v2(
                &topics,
                &tps(&[("topic2", 1), ("topic3", 0), ("topic3", 2)]),
                8,
            ),
        ),
    ]
    .into();
    let mut a = h.assign(&parts, &subs);
    assert_eq!(
        set(&a["consumer1"]),
        set(&tps(&[("topic", 0), ("topic2", 0), ("topic3", 0)]))
    );
    assert_eq!(
        set(&a["consumer2"]),
        set(&tps(&[("topic", 1), ("topic2", 1), ("topic3", 1)]))
    );
    assert_eq!(
        set(&a["consumer3"]),
        set(&tps(&[("topic", 2), ("topic2", 2), ("topic3", 2)]))
    );
    assert_eq!(h.transfers(&parts, &subs), empty_transfers());
    h.verify(&mut subs, &mut a, &parts);
}

fn no_reassignment_on_current_members(h: H) {
    let parts = counts(&[("topic", 3), ("topic1", 3), ("topic2", 3), ("topic3", 3)]);
    let topics = ["topic", "topic2", "topic3", "topic1"];
    let mut subs: Subs = [
        ("consumer1".into(), h.v2(&topics, &[], -1)),
        (
            "consumer2".into(),
            h.v2(
                &topics,
                &tps(&[("topic", 0), ("topic2", 0), ("topic1", 0)]),
                9,
            ),
        ),
        (
            "consumer3".into(),
            h.v2(
                &topics,
                &tps(&[("topic3", 2), ("topic2", 2), ("topic1", 1)]),
                8,
            ),
        ),
        (
            "consumer4".into(),
            h.v2(
                &topics,
                &tps(&[("topic3", 1), ("topic", 1), ("topic", 2)]),
                7,
            ),
        ),
    ]
    .into();
    let mut a = h.assign(&parts, &subs);
    assert_eq!(
        set(&a["consumer1"]),
        set(&tps(&[("topic1", 2), ("topic2", 1), ("topic3", 0)]))
    );
    assert_eq!(h.transfers(&parts, &subs), empty_transfers());
    h.verify(&mut subs, &mut a, &parts);
}

fn owned_partitions_are_invalidated_for_consumer_with_multiple_generation(h: H) {
    let parts = counts(&[("topic", 3), ("topic2", 3)]);
    let topics = ["topic", "topic2"];
    let mut subs: Subs = [
        (
            "consumer1".into(),
            h.v2(
                &topics,
                &tps(&[("topic", 0), ("topic2", 1), ("topic", 1)]),
                10,
            ),
        ),
        (
            "consumer2".into(),
            h.v2(
                &topics,
                &tps(&[("topic", 0), ("topic2", 1), ("topic2", 2)]),
                8,
            ),
        ),
    ]
    .into();
    let mut a = h.assign(&parts, &subs);
    assert_eq!(
        set(&a["consumer1"]),
        set(&tps(&[("topic", 0), ("topic2", 1), ("topic", 1)]))
    );
    assert_eq!(
        set(&a["consumer2"]),
        set(&tps(&[("topic", 2), ("topic2", 2), ("topic2", 0)]))
    );
    assert_eq!(h.transfers(&parts, &subs), empty_transfers());
    h.verify(&mut subs, &mut a, &parts);
}
