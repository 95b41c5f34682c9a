//! Java's `StickyAssignorTest` and `CooperativeStickyAssignorTest` (their own cases), and the
//! non-rack expectations of `AbstractStickyAssignorTest`'s rack-aware cases.

use std::collections::BTreeMap;

use super::sticky::{is_fully_balanced, Subs, GENERATION, H};
use super::*;
use crate::group::assignor::sticky::{
    cooperative_member_data, encode_sticky_user_data, sticky_member_data, Flavor,
};

const EAGER: H = H(Flavor::Eager);
const COOPERATIVE: H = H(Flavor::Cooperative);

fn claimed_by_two_in_same_generation(h: H, partitions: i32) -> GroupAssignment {
    let parts = counts(&[("topic", partitions)]);
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
    let a = h.assign(&parts, &subs);
    let mut checked = a.clone();
    h.verify(&mut subs, &mut checked, &parts);
    assert!(is_fully_balanced(&checked));
    a
}

#[test]
fn sticky_all_consumers_have_owned_partition_invalidated_when_claimed_by_multiple_consumers_in_same_generation(
) {
    let a = claimed_by_two_in_same_generation(EAGER, 3);
    assert_eq!(a["consumer1"], tps(&[("topic", 1)]));
    assert_eq!(a["consumer2"], tps(&[("topic", 2)]));
    assert_eq!(a["consumer3"], tps(&[("topic", 0)]));
    let a = claimed_by_two_in_same_generation(EAGER, 4);
    assert_eq!(a["consumer1"], tps(&[("topic", 1), ("topic", 3)]));
    assert_eq!(a["consumer2"], tps(&[("topic", 2)]));
    assert_eq!(a["consumer3"], tps(&[("topic", 0)]));
}

#[test]
fn cooperative_all_consumers_have_owned_partition_invalidated_when_claimed_by_multiple_consumers_in_same_generation(
) {
    // topic-0 counts as owned until both claimers have revoked it.
    let a = claimed_by_two_in_same_generation(COOPERATIVE, 3);
    assert_eq!(a["consumer1"], tps(&[("topic", 1)]));
    assert_eq!(a["consumer2"], tps(&[("topic", 2)]));
    assert_eq!(a["consumer3"], vec![]);
    let a = claimed_by_two_in_same_generation(COOPERATIVE, 4);
    assert_eq!(a["consumer1"], tps(&[("topic", 1), ("topic", 3)]));
    assert_eq!(a["consumer2"], tps(&[("topic", 2)]));
    assert_eq!(a["consumer3"], vec![]);
}

fn assignment_with_multiple_generations_1(all_equal: bool) {
    let h = EAGER;
    let all = ["topic", "topic2"];
    let c2_topics: &[&str] = if all_equal { &all } else { &["topic"] };
    let parts = counts(&[("topic", 6), ("topic2", 6)]);
    let mut subs: Subs = [
        ("consumer1".into(), subscription(&all)),
        ("consumer2".into(), subscription(c2_topics)),
        ("consumer3".into(), subscription(&all)),
    ]
    .into();
    let mut a = h.assign(&parts, &subs);
    let (r1p1, r1p2, r1p3) = (
        a["consumer1"].clone(),
        a["consumer2"].clone(),
        a["consumer3"].clone(),
    );
    assert!(r1p1.len() == 4 && r1p2.len() == 4 && r1p3.len() == 4);
    h.verify(&mut subs, &mut a, &parts);

    subs.insert("consumer1".into(), h.v2(&all, &r1p1, GENERATION));
    subs.insert("consumer2".into(), h.v2(c2_topics, &r1p2, GENERATION));
    subs.remove("consumer3");
    let mut a = h.assign(&parts, &subs);
    let (r2p1, r2p2) = (a["consumer1"].clone(), a["consumer2"].clone());
    assert!(r2p1.len() == 6 && r2p2.len() == 6);
    if all_equal {
        assert!(set(&r2p1).is_superset(&set(&r1p1)));
    }
    assert!(set(&r2p2).is_superset(&set(&r1p2)));
    h.verify(&mut subs, &mut a, &parts);
    assert!(is_fully_balanced(&a));
    assert!(!set(&r2p2).is_disjoint(&set(&r1p3)));

    subs.remove("consumer1");
    subs.insert("consumer2".into(), h.v2(c2_topics, &r2p2, 2));
    subs.insert("consumer3".into(), h.v2(&all, &r1p3, 1));
    let mut a = h.assign(&parts, &subs);
    let (r3p2, r3p3) = (a["consumer2"].clone(), a["consumer3"].clone());
    assert!(r3p2.len() == 6 && r3p3.len() == 6);
    assert!(set(&r3p2).is_disjoint(&set(&r3p3)));
    h.verify(&mut subs, &mut a, &parts);
}

#[test]
fn sticky_assignment_with_multiple_generations_1() {
    assignment_with_multiple_generations_1(true);
    assignment_with_multiple_generations_1(false);
}

/// All three topics of Java's tests below with three topics.
const ALL3: &[&str] = &["topic", "topic2", "topic3"];

/// The partitions of Java's tests below with three topics (four partitions each), and the topics
/// of their two members that subscribe to fewer than all when `all_equal` is false: "topic", and
/// "topic" and "topic2".
fn three_topics_of_four(
    all_equal: bool,
) -> (
    BTreeMap<String, i32>,
    &'static [&'static str],
    &'static [&'static str],
) {
    let parts = counts(&[("topic", 4), ("topic2", 4), ("topic3", 4)]);
    if all_equal {
        (parts, ALL3, ALL3)
    } else {
        (parts, &["topic"], &["topic", "topic2"])
    }
}

fn assignment_with_multiple_generations_2(all_equal: bool) {
    let h = EAGER;
    let (parts, c1_topics, c3_topics) = three_topics_of_four(all_equal);
    let mut subs: Subs = [
        ("consumer1".into(), subscription(c1_topics)),
        ("consumer2".into(), subscription(ALL3)),
        ("consumer3".into(), subscription(c3_topics)),
    ]
    .into();
    let mut a = h.assign(&parts, &subs);
    let (r1p1, r1p2, r1p3) = (
        a["consumer1"].clone(),
        a["consumer2"].clone(),
        a["consumer3"].clone(),
    );
    assert!(r1p1.len() == 4 && r1p2.len() == 4 && r1p3.len() == 4);
    h.verify(&mut subs, &mut a, &parts);

    subs.remove("consumer1");
    subs.insert("consumer2".into(), h.v2(ALL3, &r1p2, 1));
    subs.remove("consumer3");
    let mut a = h.assign(&parts, &subs);
    let r2p2 = a["consumer2"].clone();
    assert_eq!(r2p2.len(), 12);
    assert!(set(&r2p2).is_superset(&set(&r1p2)));
    h.verify(&mut subs, &mut a, &parts);

    subs.insert("consumer1".into(), h.v2(c1_topics, &r1p1, 1));
    subs.insert("consumer2".into(), h.v2(ALL3, &r2p2, 2));
    subs.insert("consumer3".into(), h.v2(c3_topics, &r1p3, 1));
    let mut a = h.assign(&parts, &subs);
    assert!(a.values().all(|l| l.len() == 4), "{a:?}");
    h.verify(&mut subs, &mut a, &parts);
    assert!(is_fully_balanced(&a));
}

#[test]
fn sticky_assignment_with_multiple_generations_2() {
    assignment_with_multiple_generations_2(true);
    assignment_with_multiple_generations_2(false);
}

fn assignment_with_conflicting_previous_generations(all_equal: bool) {
    let h = EAGER;
    let (parts, c1_topics, c2_topics) = three_topics_of_four(all_equal);
    let c1_owned = if all_equal {
        tps(&[
            ("topic", 0),
            ("topic", 1),
            ("topic", 2),
            ("topic2", 2),
            ("topic2", 3),
            ("topic3", 0),
        ])
    } else {
        tps(&[("topic", 0), ("topic", 1), ("topic", 2), ("topic", 3)])
    };
    let c2_owned = tps(&[
        ("topic", 0),
        ("topic", 1),
        ("topic2", 0),
        ("topic2", 1),
        ("topic2", 2),
        ("topic2", 3),
    ]);
    let c3_owned = tps(&[
        ("topic", 2),
        ("topic", 3),
        ("topic3", 0),
        ("topic3", 1),
        ("topic3", 2),
        ("topic3", 3),
    ]);
    let mut subs: Subs = [
        ("consumer1".into(), h.v2(c1_topics, &c1_owned, 1)),
        ("consumer2".into(), h.v2(c2_topics, &c2_owned, 2)),
        ("consumer3".into(), h.v2(ALL3, &c3_owned, 2)),
    ]
    .into();
    let mut a = h.assign(&parts, &subs);
    assert!(a.values().all(|l| l.len() == 4), "{a:?}");
    assert!(set(&c2_owned).is_superset(&set(&a["consumer2"])));
    assert!(set(&c3_owned).is_superset(&set(&a["consumer3"])));
    h.verify(&mut subs, &mut a, &parts);
    assert!(is_fully_balanced(&a));
}

#[test]
fn sticky_assignment_with_conflicting_previous_generations() {
    assignment_with_conflicting_previous_generations(true);
    assignment_with_conflicting_previous_generations(false);
}

#[test]
fn sticky_schema_backward_compatibility() {
    let h = EAGER;
    let parts = counts(&[("topic", 3)]);
    let old_owned = tps(&[("topic", 1)]);
    // Schema version 0: version 1 without the trailing generation.
    let v1 = encode_sticky_user_data(&old_owned, 0);
    let v0 = v1.slice(..v1.len() - 4);
    let mut subs: Subs = [
        (
            "consumer1".into(),
            h.v2(&["topic"], &tps(&[("topic", 0), ("topic", 2)]), 1),
        ),
        (
            "consumer2".into(),
            Subscription {
                user_data: Some(v0.clone()),
                ..subscription(&["topic"])
            },
        ),
        ("consumer3".into(), subscription(&["topic"])),
    ]
    .into();
    let data = sticky_member_data(&subs["consumer2"]);
    assert_eq!(
        (data.partitions, data.generation),
        (old_owned.clone(), None)
    );
    let mut a = h.assign(&parts, &subs);
    assert!(a.values().all(|l| l.len() == 1));
    assert!(set(&tps(&[("topic", 0), ("topic", 2)])).is_superset(&set(&a["consumer1"])));
    assert!(set(&old_owned).is_superset(&set(&a["consumer2"])));
    h.verify(&mut subs, &mut a, &parts);
}

#[test]
fn sticky_member_data_with_inconsistent_data() {
    // The eager assignor always trusts its user data.
    let user_data = encode_sticky_user_data(&tps(&[("topic", 1)]), GENERATION);
    let s = Subscription {
        user_data: Some(user_data),
        owned_partitions: tps(&[("topic", 0)]),
        ..subscription(&["topic"])
    };
    let data = sticky_member_data(&s);
    assert_eq!(
        (data.partitions, data.generation),
        (tps(&[("topic", 1)]), Some(GENERATION))
    );
}

#[test]
fn sticky_member_data_will_honor_user_data() {
    let owned = tps(&[("topic1", 0), ("topic2", 1)]);
    let s = Subscription {
        user_data: Some(encode_sticky_user_data(&owned, GENERATION - 1)),
        generation_id: Some(GENERATION),
        ..subscription(&["topic"])
    };
    let data = sticky_member_data(&s);
    assert_eq!(
        (data.partitions, data.generation),
        (owned, Some(GENERATION - 1))
    );
}

#[test]
fn sticky_member_data_tolerates_garbage() {
    for garbage in [
        &[][..],
        &[0, 0, 0, 1][..],
        &[0xff; 9][..],
        &[0, 0, 0, 1, 0, 3, b'a'][..],
    ] {
        let s = Subscription {
            user_data: Some(Bytes::copy_from_slice(garbage)),
            ..subscription(&["t"])
        };
        let data = sticky_member_data(&s);
        assert!(data.partitions.is_empty(), "{garbage:?}");
        let expected = if garbage.is_empty() { None } else { Some(-1) };
        assert_eq!(data.generation, expected, "{garbage:?}");
    }
}

fn old_version_subscriptions(h: H, first: Subscription) {
    let parts = counts(&[("topic1", 3)]);
    let mut subs: Subs = [
        ("consumer1".into(), first),
        (
            "consumer2".into(),
            h.v1(&["topic1"], &tps(&[("topic1", 1)]), GENERATION),
        ),
        ("consumer3".into(), h.v2(&["topic1"], &[], GENERATION)),
    ]
    .into();
    let mut a = h.assign(&parts, &subs);
    assert_eq!(a["consumer1"], tps(&[("topic1", 0)]));
    assert_eq!(a["consumer2"], tps(&[("topic1", 1)]));
    assert_eq!(a["consumer3"], tps(&[("topic1", 2)]));
    h.verify(&mut subs, &mut a, &parts);
}

#[test]
fn sticky_assignor_with_old_version_subscriptions() {
    let owned = tps(&[("topic1", 0)]);
    let v0 = Subscription {
        owned_partitions: vec![],
        ..EAGER.v1(&["topic1"], &owned, GENERATION)
    };
    old_version_subscriptions(EAGER, v0);
}

#[test]
fn cooperative_assignor_with_old_version_subscriptions() {
    let v1 = COOPERATIVE.v1(&["topic1"], &tps(&[("topic1", 0)]), GENERATION);
    old_version_subscriptions(COOPERATIVE, v1);
}

#[test]
fn cooperative_encode_and_decode_generation() {
    let topics = vec!["topic".to_owned()];
    let fresh = JoinState {
        topics: &topics,
        ..Default::default()
    };
    let s = Subscription {
        user_data: CooperativeSticky.user_data(&fresh),
        ..subscription(&["topic"])
    };
    assert_eq!(cooperative_member_data(&s).generation, Some(-1));

    let history = [LastAssignment {
        assignor: CooperativeSticky::NAME,
        partitions: &[],
        generation_id: 10,
    }];
    let later = JoinState {
        topics: &topics,
        last_assignments: &history,
        ..Default::default()
    };
    let s = Subscription {
        user_data: CooperativeSticky.user_data(&later),
        ..subscription(&["topic"])
    };
    assert_eq!(cooperative_member_data(&s).generation, Some(10));
}

#[test]
fn cooperative_decode_generation() {
    assert_eq!(
        cooperative_member_data(&subscription(&["topic"])).generation,
        None
    );
}

#[test]
fn cooperative_member_data_with_inconsistent_data() {
    // Generation from the user data, partitions from the subscription.
    let s = Subscription {
        user_data: Some(Bytes::copy_from_slice(&GENERATION.to_be_bytes())),
        owned_partitions: tps(&[("topic", 0)]),
        ..subscription(&["topic"])
    };
    let data = cooperative_member_data(&s);
    assert_eq!(
        (data.partitions, data.generation),
        (tps(&[("topic", 0)]), Some(GENERATION))
    );
}

#[test]
fn cooperative_member_data_with_empty_partitions_and_equal_or_higher_generation() {
    for user_generation in [GENERATION, GENERATION - 1] {
        let s = Subscription {
            user_data: Some(Bytes::copy_from_slice(&user_generation.to_be_bytes())),
            generation_id: Some(GENERATION),
            ..subscription(&["topic"])
        };
        let data = cooperative_member_data(&s);
        assert_eq!(
            (data.partitions, data.generation),
            (vec![], Some(GENERATION))
        );
    }
}

/// `verifyRackAssignment` without racks: members "consumer0".., owned partitions in the
/// subscription with no generation and no user data, results compared as sorted strings.
fn verify_without_racks(
    h: H,
    parts: &[(&str, i32)],
    topics: &[&[&str]],
    owned: Option<&[&str]>,
    expected: &[&str],
) {
    let subs: Subs = topics
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let owned = owned.map_or(vec![], |o| parse_tps(o[i]));
            (
                format!("consumer{i}"),
                Subscription {
                    owned_partitions: owned,
                    ..subscription(t)
                },
            )
        })
        .collect();
    let a = h.assign(&counts(parts), &subs);
    let actual: Vec<String> = (0..topics.len())
        .map(|i| sorted_string(&a[&format!("consumer{i}")]))
        .collect();
    assert_eq!(actual, expected);
}

const PARTS: [(&str, i32); 3] = [("t1", 6), ("t2", 7), ("t3", 2)];
const ALL: &[&str] = &["t1", "t2", "t3"];

#[test]
fn rack_aware_assignment_with_uniform_subscription_non_rack_path() {
    let expected = [
        "t1-0, t1-3, t2-0, t2-3, t2-6",
        "t1-1, t1-4, t2-1, t2-4, t3-0",
        "t1-2, t1-5, t2-2, t2-5, t3-1",
    ];
    for h in [EAGER, COOPERATIVE] {
        verify_without_racks(h, &PARTS, &[ALL, ALL, ALL], None, &expected);
        verify_without_racks(h, &PARTS, &[ALL, ALL, ALL], Some(&expected), &expected);
    }
}

#[test]
fn rack_aware_assignment_with_non_equal_subscription_non_rack_path() {
    let topics: [&[&str]; 3] = [ALL, ALL, &["t1", "t3"]];
    let expected = [
        "t1-5, t2-0, t2-2, t2-4, t2-6",
        "t1-3, t2-1, t2-3, t2-5, t3-0",
        "t1-0, t1-1, t1-2, t1-4, t3-1",
    ];
    for h in [EAGER, COOPERATIVE] {
        verify_without_racks(h, &PARTS, &topics, None, &expected);
        verify_without_racks(h, &PARTS, &topics, Some(&expected), &expected);
    }
    let owned = [
        "t1-0, t1-1, t1-2, t1-3, t1-4",
        "t1-5, t2-0, t2-1, t2-2, t2-3",
        "t2-4, t2-5, t2-6, t3-0, t3-1",
    ];
    // The eager assignor reads owned partitions from its user data, absent here.
    verify_without_racks(EAGER, &PARTS, &topics, Some(&owned), &expected);
    // The cooperative one first revokes what moves, then assigns it.
    let intermediate = ["t1-2, t1-3, t1-4", "t2-0, t2-1, t2-2, t2-3", "t3-0, t3-1"];
    verify_without_racks(COOPERATIVE, &PARTS, &topics, Some(&owned), &intermediate);
    let last = [
        "t1-2, t1-3, t1-4, t2-4, t2-5",
        "t2-0, t2-1, t2-2, t2-3, t2-6",
        "t1-0, t1-1, t1-5, t3-0, t3-1",
    ];
    verify_without_racks(COOPERATIVE, &PARTS, &topics, Some(&intermediate), &last);
}

#[test]
fn default_assignors_are_javas() {
    let names: Vec<&str> = default_assignors().iter().map(|a| a.name()).collect();
    assert_eq!(names, ["range", "cooperative-sticky"]);
    let parts: BTreeMap<String, i32> = counts(&[("t", 2)]);
    let subs: Subs = [("m".into(), subscription(&["t"]))].into();
    assert_eq!(
        Sticky.assign(&parts, &subs),
        Ok([("m".to_owned(), tps(&[("t", 0), ("t", 1)]))].into())
    );
}
