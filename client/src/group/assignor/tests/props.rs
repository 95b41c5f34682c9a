//! Invariants on random groups: every subscribed partition assigned exactly once, only to
//! subscribers; balance with identical subscriptions; sticky moves no more than it must; the
//! cooperative assignor never hands a partition over in the rebalance that takes it away.

use std::collections::{BTreeMap, HashMap, HashSet};

use proptest::prelude::*;

use super::sticky::{Subs, H};
use super::*;
use crate::group::assignor::sticky::Flavor;

/// Up to 5 topics with 0-7 partitions, up to 7 members each subscribing to a subset (bit mask),
/// some static.
fn group() -> impl Strategy<Value = (BTreeMap<String, i32>, Subs)> {
    (
        prop::collection::vec(0..8i32, 1..=5),
        prop::collection::vec((any::<u8>(), prop::option::of(0..4u8)), 1..=7),
    )
        .prop_map(|(topic_counts, members)| {
            let parts: BTreeMap<String, i32> = topic_counts
                .iter()
                .enumerate()
                .map(|(i, n)| (format!("t{i}"), *n))
                .collect();
            let subs = members
                .iter()
                .enumerate()
                .map(|(i, (mask, instance))| {
                    // A topic that does not exist now and then, as after a deletion.
                    let topics: Vec<String> = (0..6)
                        .filter(|t| mask & (1 << t) != 0)
                        .map(|t| format!("t{t}"))
                        .collect();
                    let s = Subscription {
                        group_instance_id: instance.map(|x| format!("instance-{i}-{x}")),
                        ..Subscription::new(topics)
                    };
                    (format!("member-{i}"), s)
                })
                .collect();
            (parts, subs)
        })
}

/// Every partition of a subscribed topic assigned at most once (exactly once unless
/// `partial`), to a member subscribed to it; every member present.
fn check_valid(
    parts: &BTreeMap<String, i32>,
    subs: &Subs,
    a: &GroupAssignment,
    partial: bool,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(
        a.keys().collect::<Vec<_>>(),
        subs.keys().collect::<Vec<_>>()
    );
    let mut seen = HashSet::new();
    for (m, list) in a {
        for tp in list {
            prop_assert!(
                subs[m].topics.contains(&tp.0),
                "{:?} given to {} unsubscribed",
                tp,
                m
            );
            prop_assert!(
                tp.1 >= 0 && tp.1 < parts.get(&tp.0).copied().unwrap_or(0),
                "{:?} does not exist",
                tp
            );
            prop_assert!(seen.insert(tp.clone()), "{:?} assigned twice", tp);
        }
    }
    if !partial {
        for (t, n) in parts {
            if subs.values().any(|s| s.topics.contains(t)) {
                for p in 0..*n {
                    prop_assert!(seen.contains(&(t.clone(), p)), "{}-{} unassigned", t, p);
                }
            }
        }
    }
    Ok(())
}

fn spread(a: &GroupAssignment) -> usize {
    let sizes: Vec<usize> = a.values().map(Vec::len).collect();
    sizes.iter().max().unwrap_or(&0) - sizes.iter().min().unwrap_or(&0)
}

/// Random owned partitions (some invalid, some claimed twice) in random generations.
fn with_claims(h: H, parts: &BTreeMap<String, i32>, subs: &Subs, seed: u64) -> Subs {
    let mut rng = SplitMix::new(seed);
    subs.iter()
        .map(|(m, s)| {
            let owned: Vec<(String, i32)> = (0..rng.below(6))
                .map(|_| {
                    let t = format!("t{}", rng.below(6));
                    let n = parts.get(&t).copied().unwrap_or(1).max(1) as usize;
                    (t, rng.below(n + 1) as i32)
                })
                .collect();
            let generation = rng.below(4) as i32 - 1;
            (
                m.clone(),
                Subscription {
                    group_instance_id: s.group_instance_id.clone(),
                    ..h.v2(&s.topics, &owned, generation)
                },
            )
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn every_assignor_assigns_each_partition_once_to_a_subscriber((parts, subs) in group()) {
        for a in [&Range as &dyn Assignor, &RoundRobin, &Sticky, &CooperativeSticky] {
            let result = a.assign(&parts, &subs).expect("assigns");
            check_valid(&parts, &subs, &result, false)?;
        }
    }

    #[test]
    fn identical_subscriptions_are_balanced((parts, subs) in group(), mask in 1u8..64) {
        let topics: Vec<String> = (0..6).filter(|t| mask & (1 << t) != 0).map(|t| format!("t{t}")).collect();
        let subs: Subs = subs.into_iter().map(|(m, s)| (m, Subscription { topics: topics.clone(), ..s })).collect();
        for a in [&RoundRobin as &dyn Assignor, &Sticky, &CooperativeSticky] {
            let result = a.assign(&parts, &subs).expect("assigns");
            prop_assert!(spread(&result) <= 1, "{}: {:?}", a.name(), result);
        }
    }

    #[test]
    fn claims_never_break_validity((parts, subs) in group(), seed in any::<u64>()) {
        for h in [H(Flavor::Eager), H(Flavor::Cooperative)] {
            let claimed = with_claims(h, &parts, &subs, seed);
            let result = h.assign(&parts, &claimed);
            let cooperative = h.0 == Flavor::Cooperative;
            check_valid(&parts, &claimed, &result, cooperative)?;
            if cooperative {
                prop_assert_eq!(validate_cooperative_assignment("cooperative-sticky", &claimed, &result), Ok(()));
                // The follow-up rebalance, with what each member now owns, completes it.
                let mut next = claimed.clone();
                for (m, list) in &result {
                    next.insert(m.clone(), h.v2(&claimed[m].topics, list, 100));
                }
                let second = h.assign(&parts, &next);
                check_valid(&parts, &next, &second, true)?;
                prop_assert_eq!(validate_cooperative_assignment("cooperative-sticky", &next, &second), Ok(()));
            }
        }
    }

    #[test]
    fn sticky_moves_the_minimum((parts, subs) in group(), mask in 1u8..64, add in any::<bool>(), victim in any::<prop::sample::Index>()) {
        let topics: Vec<String> = (0..6).filter(|t| mask & (1 << t) != 0).map(|t| format!("t{t}")).collect();
        let subs: Subs = subs.into_iter().map(|(m, s)| (m, Subscription { topics: topics.clone(), ..s })).collect();
        for h in [H(Flavor::Eager), H(Flavor::Cooperative)] {
            let before = h.assign(&parts, &subs);
            let mut next: Subs = before.iter().map(|(m, l)| (m.clone(), Subscription {
                group_instance_id: subs[m].group_instance_id.clone(),
                ..h.v2(&topics, l, 5)
            })).collect();
            if add {
                next.insert("member-new".into(), h.v2(&topics, &[], -1));
            } else if next.len() > 1 {
                let gone = next.keys().nth(victim.index(next.len())).cloned().expect("some member");
                next.remove(&gone);
            }
            // The least any assignment can take from the members that stay: what exceeds their
            // quota, giving the larger quotas to members owning at least that much.
            let total: usize = before.values().map(Vec::len).sum();
            let (min, extra) = (total / next.len(), total % next.len());
            let owned: Vec<usize> = next.keys().map(|m| before.get(m).map_or(0, Vec::len)).collect();
            let at_max = owned.iter().filter(|c| **c > min).count();
            let minimum = owned.iter().map(|c| c.saturating_sub(min)).sum::<usize>() - extra.min(at_max);

            let after = h.assign(&parts, &next);
            let taken: usize = next.keys().map(|m| {
                let now: HashSet<&(String, i32)> = after[m].iter().collect();
                before.get(m).map_or(0, |l| l.iter().filter(|tp| !now.contains(tp)).count())
            }).sum();
            prop_assert_eq!(taken, minimum, "{:?}: {:?} -> {:?}", h.0, before, after);
            if h.0 == Flavor::Cooperative {
                prop_assert_eq!(validate_cooperative_assignment("cooperative-sticky", &next, &after), Ok(()));
                let mut last = next.clone();
                for (m, l) in &after {
                    last.insert(m.clone(), h.v2(&topics, l, 6));
                }
                let settled = h.assign(&parts, &last);
                check_valid(&parts, &last, &settled, false)?;
                prop_assert!(spread(&settled) <= 1);
                let moved: HashMap<&MemberId, usize> = settled.iter().map(|(m, l)| (m, after[m].iter().filter(|tp| !l.contains(tp)).count())).collect();
                prop_assert!(moved.values().all(|n| *n == 0), "second rebalance revoked more: {:?}", moved);
            } else {
                check_valid(&parts, &next, &after, false)?;
                prop_assert!(spread(&after) <= 1);
            }
        }
    }
}
