//! Java's `AbstractStickyAssignorTest`, first half: small groups and the quota rules, for both
//! `sticky` and `cooperative-sticky` (the rack-aware cases only through their non-rack
//! expectations, in `sticky_java`).

use std::collections::BTreeMap;

use super::cases::{
    Case, Member, ONE_CONSUMER_MULTIPLE_TOPICS, ONE_CONSUMER_NO_TOPIC, ONE_CONSUMER_ONE_TOPIC, T,
    T1, TWO_CONSUMERS_ONE_TOPIC_ONE_PARTITION, TWO_CONSUMERS_ONE_TOPIC_TWO_PARTITIONS,
};
use super::sticky::*;
use super::*;
use crate::group::assignor::sticky::Flavor;

for_both!(
    member_data,
    small_groups,
    only_assigns_partitions_from_subscribed_topics,
    consumer_owning_min_quota_expected_max_quota,
    max_quota_consumer_more_than_num_expected_max_capacity_members,
    all_consumers_are_under_min_quota,
    add_remove_consumer_one_topic,
    topic_balance_after_reassignment,
    add_remove_two_consumers_two_topics,
    poor_round_robin_assignment_scenario,
    add_remove_topic_two_consumers,
);

fn member_data(h: H) {
    let owned = tps(&[("topic1", 0), ("topic2", 1)]);
    let mut subs = vec![
        h.v1(&["topic"], &owned, GENERATION),
        h.v2(&["topic"], &owned, GENERATION),
    ];
    if h.0 == Flavor::Eager {
        // Version 0 (the eager assignor only): the user data alone.
        subs.push(Subscription {
            owned_partitions: vec![],
            ..h.v1(&["topic"], &owned, GENERATION)
        });
    }
    for s in subs {
        let data = match h.0 {
            Flavor::Eager => crate::group::assignor::sticky::sticky_member_data(&s),
            Flavor::Cooperative => crate::group::assignor::sticky::cooperative_member_data(&s),
        };
        assert_eq!(data.partitions, owned);
        assert_eq!(data.generation, Some(GENERATION));
    }
}

/// A small group and the partitions Java expects to change owner (`None`: not worked out).
struct Group {
    case: Case,
    transfers: Option<&'static [(&'static str, i32, &'static str)]>,
}

const GROUPS: &[Group] = &[
    Group {
        case: ONE_CONSUMER_NO_TOPIC,
        transfers: Some(&[]),
    },
    Group {
        case: Case {
            name: "one_consumer_nonexistent_topic",
            partitions: &[("topic", 0)],
            members: &[Member::new("consumer", T)],
            expected: &[("consumer", &[])],
        },
        transfers: Some(&[]),
    },
    Group {
        case: ONE_CONSUMER_ONE_TOPIC,
        transfers: Some(&[]),
    },
    Group {
        case: ONE_CONSUMER_MULTIPLE_TOPICS,
        transfers: Some(&[]),
    },
    // Java checks only validity and balance here.
    Group {
        case: Case {
            expected: &[],
            ..TWO_CONSUMERS_ONE_TOPIC_ONE_PARTITION
        },
        transfers: Some(&[]),
    },
    Group {
        case: TWO_CONSUMERS_ONE_TOPIC_TWO_PARTITIONS,
        transfers: Some(&[]),
    },
    Group {
        case: Case {
            name: "multiple_consumers_mixed_topic_subscriptions",
            partitions: &[("topic1", 3), ("topic2", 2)],
            members: &[
                Member::new("consumer1", T1),
                Member::new("consumer2", &T12),
                Member::new("consumer3", T1),
            ],
            expected: &[
                ("consumer1", &[("topic1", 0), ("topic1", 2)]),
                ("consumer2", &[("topic2", 0), ("topic2", 1)]),
                ("consumer3", &[("topic1", 1)]),
            ],
        },
        transfers: None,
    },
    Group {
        case: Case {
            name: "two_consumers_two_topics_six_partitions",
            partitions: &[("topic1", 3), ("topic2", 3)],
            members: &[
                Member::new("consumer1", &T12),
                Member::new("consumer2", &T12),
            ],
            expected: &[
                ("consumer1", &[("topic1", 0), ("topic1", 2), ("topic2", 1)]),
                ("consumer2", &[("topic1", 1), ("topic2", 0), ("topic2", 2)]),
            ],
        },
        transfers: Some(&[]),
    },
];

/// Each group: the first assignment as Java expects it, the ownership transfers, then
/// `verifyValidityAndBalance` and full balance (which every one of these groups can reach).
fn small_groups(h: H) {
    for Group { case, transfers } in GROUPS {
        let parts = case.partitions();
        let mut subs = case.subscriptions();
        let mut a = h.assign(&parts, &subs);
        case.check(&a);
        let expected: Transfers = transfers.map(|list| {
            list.iter()
                .map(|(t, p, m)| (tp(t, *p), m.to_string()))
                .collect()
        });
        assert_eq!(h.transfers(&parts, &subs), expected, "{}", case.name);
        h.verify(&mut subs, &mut a, &parts);
        assert!(is_fully_balanced(&a), "{}: {a:?}", case.name);
    }
}

fn only_assigns_partitions_from_subscribed_topics(h: H) {
    let parts = counts(&[("topic", 2)]);
    let owned = tps(&[("topic", 0), ("topic", 1), ("other", 0), ("other", 1)]);
    let mut subs = single("consumer", h.v2(&["topic"], &owned, GENERATION));
    let mut a = h.assign(&parts, &subs);
    assert_eq!(a["consumer"], tps(&[("topic", 0), ("topic", 1)]));
    assert_eq!(h.transfers(&parts, &subs), empty_transfers());
    h.verify(&mut subs, &mut a, &parts);
}

const T12: [&str; 2] = ["topic1", "topic2"];

fn consumer_owning_min_quota_expected_max_quota(h: H) {
    let parts = counts(&[("topic1", 2), ("topic2", 3)]);
    let mut subs: Subs = [
        (
            "consumer1".into(),
            h.v2(&T12, &tps(&[("topic1", 0), ("topic2", 1)]), GENERATION),
        ),
        (
            "consumer2".into(),
            h.v2(&T12, &tps(&[("topic1", 1), ("topic2", 2)]), GENERATION),
        ),
    ]
    .into();
    let mut a = h.assign(&parts, &subs);
    assert_eq!(
        a["consumer1"],
        tps(&[("topic1", 0), ("topic2", 1), ("topic2", 0)])
    );
    assert_eq!(a["consumer2"], tps(&[("topic1", 1), ("topic2", 2)]));
    assert_eq!(h.transfers(&parts, &subs), empty_transfers());
    h.verify(&mut subs, &mut a, &parts);
}

fn max_quota_consumer_more_than_num_expected_max_capacity_members(h: H) {
    let parts = counts(&[("topic1", 2), ("topic2", 2)]);
    let mut subs: Subs = [
        (
            "consumer1".into(),
            h.v2(&T12, &tps(&[("topic1", 0), ("topic2", 0)]), GENERATION),
        ),
        (
            "consumer2".into(),
            h.v2(&T12, &tps(&[("topic1", 1), ("topic2", 1)]), GENERATION),
        ),
        ("consumer3".into(), h.v2(&T12, &[], GENERATION)),
    ]
    .into();
    let mut a = h.assign(&parts, &subs);
    // consumer2 comes before consumer1 in Java's HashMap, so it keeps both partitions.
    assert_eq!(
        h.transfers(&parts, &subs),
        Some([(tp("topic2", 0), "consumer3".into())].into())
    );
    h.verify(&mut subs, &mut a, &parts);
    assert_eq!(a["consumer1"], tps(&[("topic1", 0)]));
    assert_eq!(a["consumer2"], tps(&[("topic1", 1), ("topic2", 1)]));
    assert_eq!(a["consumer3"], tps(&[("topic2", 0)]));
}

fn all_consumers_are_under_min_quota(h: H) {
    let parts = counts(&[("topic1", 2), ("topic2", 3)]);
    let mut subs: Subs = [
        (
            "consumer1".into(),
            h.v2(&T12, &tps(&[("topic1", 0)]), GENERATION),
        ),
        (
            "consumer2".into(),
            h.v2(&T12, &tps(&[("topic1", 1)]), GENERATION),
        ),
        ("consumer3".into(), h.v2(&T12, &[], GENERATION)),
    ]
    .into();
    let mut a = h.assign(&parts, &subs);
    assert_eq!(h.transfers(&parts, &subs), empty_transfers());
    h.verify(&mut subs, &mut a, &parts);
    assert_eq!(a["consumer1"], tps(&[("topic1", 0), ("topic2", 1)]));
    assert_eq!(a["consumer2"], tps(&[("topic1", 1), ("topic2", 2)]));
    assert_eq!(a["consumer3"], tps(&[("topic2", 0)]));
}

fn add_remove_consumer_one_topic(h: H) {
    let parts = counts(&[("topic", 3)]);
    let mut subs = single("consumer1", subscription(&["topic"]));
    let mut a = h.assign(&parts, &subs);
    assert_eq!(
        a["consumer1"],
        tps(&[("topic", 0), ("topic", 1), ("topic", 2)])
    );
    h.verify(&mut subs, &mut a, &parts);

    subs.insert(
        "consumer1".into(),
        h.v2(&["topic"], &owned_of(&a, "consumer1"), GENERATION),
    );
    subs.insert("consumer2".into(), h.v2(&["topic"], &[], GENERATION));
    let mut a = h.assign(&parts, &subs);
    assert_eq!(
        h.transfers(&parts, &subs),
        Some([(tp("topic", 2), "consumer2".into())].into())
    );
    h.verify(&mut subs, &mut a, &parts);
    assert_eq!(a["consumer1"], tps(&[("topic", 0), ("topic", 1)]));
    assert_eq!(a["consumer2"], tps(&[("topic", 2)]));
    assert!(is_fully_balanced(&a));

    subs.remove("consumer1");
    subs.insert(
        "consumer2".into(),
        h.v2(&["topic"], &owned_of(&a, "consumer2"), GENERATION),
    );
    let mut a = h.assign(&parts, &subs);
    assert_eq!(
        set(&a["consumer2"]),
        set(&tps(&[("topic", 2), ("topic", 1), ("topic", 0)]))
    );
    assert_eq!(h.transfers(&parts, &subs), empty_transfers());
    h.verify(&mut subs, &mut a, &parts);
}

fn per_topic_counts(a: &GroupAssignment, topic: &str, expected: usize) {
    for (m, list) in a {
        assert_eq!(
            list.iter().filter(|(t, _)| t == topic).count(),
            expected,
            "{m} {topic}"
        );
    }
}

fn topic_balance_after_reassignment(h: H) {
    let parts = counts(&[("topic1", 12), ("topic2", 12)]);
    let mut subs = single("consumer1", subscription(&T12));
    let mut a = h.assign(&parts, &subs);
    h.verify(&mut subs, &mut a, &parts);
    per_topic_counts(&a, "topic1", 12);
    assert_eq!(h.transfers(&parts, &subs), empty_transfers());

    subs.insert(
        "consumer1".into(),
        h.v2(&T12, &owned_of(&a, "consumer1"), GENERATION),
    );
    subs.insert("consumer2".into(), h.v2(&T12, &[], GENERATION));
    let mut a = h.assign(&parts, &subs);
    h.verify(&mut subs, &mut a, &parts);
    per_topic_counts(&a, "topic1", 6);
    per_topic_counts(&a, "topic2", 6);

    for m in ["consumer1", "consumer2"] {
        subs.insert(m.to_string(), h.v2(&T12, &owned_of(&a, m), GENERATION));
    }
    subs.insert("consumer3".into(), h.v2(&T12, &[], GENERATION));
    subs.insert("consumer4".into(), h.v2(&T12, &[], GENERATION));
    let mut a = h.assign(&parts, &subs);
    h.verify(&mut subs, &mut a, &parts);
    per_topic_counts(&a, "topic1", 3);
    per_topic_counts(&a, "topic2", 3);

    subs.remove("consumer1");
    subs.remove("consumer2");
    for m in ["consumer3", "consumer4"] {
        subs.insert(m.to_string(), h.v2(&T12, &owned_of(&a, m), GENERATION));
    }
    let mut a = h.assign(&parts, &subs);
    h.verify(&mut subs, &mut a, &parts);
    per_topic_counts(&a, "topic1", 6);
    per_topic_counts(&a, "topic2", 6);
    assert_eq!(h.transfers(&parts, &subs), empty_transfers());
    assert!(is_fully_balanced(&a));
}

fn add_remove_two_consumers_two_topics(h: H) {
    let parts = counts(&[("topic1", 3), ("topic2", 4)]);
    let mut subs: Subs = [
        ("consumer1".into(), subscription(&T12)),
        ("consumer2".into(), subscription(&T12)),
    ]
    .into();
    let mut a = h.assign(&parts, &subs);
    assert_eq!(
        a["consumer1"],
        tps(&[("topic1", 0), ("topic1", 2), ("topic2", 1), ("topic2", 3)])
    );
    assert_eq!(
        a["consumer2"],
        tps(&[("topic1", 1), ("topic2", 0), ("topic2", 2)])
    );
    assert_eq!(h.transfers(&parts, &subs), empty_transfers());
    h.verify(&mut subs, &mut a, &parts);

    for m in ["consumer1", "consumer2"] {
        subs.insert(m.into(), h.v2(&T12, &owned_of(&a, m), GENERATION));
    }
    subs.insert("consumer3".into(), h.v2(&T12, &[], GENERATION));
    subs.insert("consumer4".into(), h.v2(&T12, &[], GENERATION));
    let mut a = h.assign(&parts, &subs);
    let expected_transfers = [
        (tp("topic1", 2), "consumer3".into()),
        (tp("topic2", 3), "consumer3".into()),
        (tp("topic2", 2), "consumer4".into()),
    ];
    assert_eq!(h.transfers(&parts, &subs), Some(expected_transfers.into()));
    h.verify(&mut subs, &mut a, &parts);
    assert_eq!(a["consumer1"], tps(&[("topic1", 0), ("topic2", 1)]));
    assert_eq!(a["consumer2"], tps(&[("topic2", 0), ("topic1", 1)]));
    assert_eq!(a["consumer3"], tps(&[("topic1", 2), ("topic2", 3)]));
    assert_eq!(a["consumer4"], tps(&[("topic2", 2)]));

    subs.remove("consumer1");
    subs.remove("consumer2");
    for m in ["consumer3", "consumer4"] {
        subs.insert(m.into(), h.v2(&T12, &owned_of(&a, m), GENERATION));
    }
    let mut a = h.assign(&parts, &subs);
    assert_eq!(
        a["consumer3"],
        tps(&[("topic1", 2), ("topic2", 3), ("topic1", 0), ("topic2", 1)])
    );
    assert_eq!(
        a["consumer4"],
        tps(&[("topic2", 2), ("topic1", 1), ("topic2", 0)])
    );
    assert_eq!(h.transfers(&parts, &subs), empty_transfers());
    h.verify(&mut subs, &mut a, &parts);
}

fn poor_round_robin_assignment_scenario(h: H) {
    let parts: BTreeMap<String, i32> = (1..=5)
        .map(|i| (format!("topic{i}"), (i % 2) + 1))
        .collect();
    let all = ["topic1", "topic2", "topic3", "topic4", "topic5"];
    let odd = ["topic1", "topic3", "topic5"];
    let mut subs: Subs = [
        ("consumer1".into(), subscription(&all)),
        ("consumer2".into(), subscription(&odd)),
        ("consumer3".into(), subscription(&odd)),
        ("consumer4".into(), subscription(&all)),
    ]
    .into();
    let mut a = h.assign(&parts, &subs);
    h.verify(&mut subs, &mut a, &parts);
}

fn add_remove_topic_two_consumers(h: H) {
    let mut parts = counts(&[("topic", 3)]);
    let mut subs: Subs = [
        ("consumer1".into(), subscription(&["topic"])),
        ("consumer2".into(), subscription(&["topic"])),
    ]
    .into();
    let mut a = h.assign(&parts, &subs);
    assert_eq!(h.transfers(&parts, &subs), empty_transfers());
    h.verify(&mut subs, &mut a, &parts);
    let (first1, first2) = (owned_of(&a, "consumer1"), owned_of(&a, "consumer2"));
    assert_eq!(first1.len() + first2.len(), 3);
    assert!(first1.len().abs_diff(first2.len()) == 1);

    parts.insert("topic2".into(), 3);
    subs.insert(
        "consumer1".into(),
        h.v2(&["topic", "topic2"], &first1, GENERATION),
    );
    subs.insert(
        "consumer2".into(),
        h.v2(&["topic", "topic2"], &first2, GENERATION),
    );
    let mut a = h.assign(&parts, &subs);
    assert_eq!(h.transfers(&parts, &subs), empty_transfers());
    h.verify(&mut subs, &mut a, &parts);
    let (second1, second2) = (owned_of(&a, "consumer1"), owned_of(&a, "consumer2"));
    assert!(second1.len() == 3 && second2.len() == 3);
    assert!(set(&second1).is_superset(&set(&first1)) && set(&second2).is_superset(&set(&first2)));

    parts.remove("topic");
    subs.insert("consumer1".into(), h.v2(&["topic2"], &second1, GENERATION));
    subs.insert("consumer2".into(), h.v2(&["topic2"], &second2, GENERATION));
    let mut a = h.assign(&parts, &subs);
    assert_eq!(h.transfers(&parts, &subs), empty_transfers());
    h.verify(&mut subs, &mut a, &parts);
    let (third1, third2) = (owned_of(&a, "consumer1"), owned_of(&a, "consumer2"));
    assert!(third1.len().abs_diff(third2.len()) == 1 && third1.len() + third2.len() == 3);
    assert!(set(&second1).is_superset(&set(&third1)) && set(&second2).is_superset(&set(&third2)));
}
