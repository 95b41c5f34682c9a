//! Assignor tests. Most are Java's own (`RangeAssignorTest`, `RoundRobinAssignorTest`,
//! `AbstractStickyAssignorTest`, `StickyAssignorTest`, `CooperativeStickyAssignorTest`,
//! `AbstractPartitionAssignorTest`) with their expected assignments as the oracle; `props`
//! checks the invariants on random groups.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

use super::*;
use crate::group::protocol::Subscription;

/// Runs each named `fn(H)` test for both sticky assignors.
macro_rules! for_both {
    ($($test:ident),* $(,)?) => {
        mod eager {
            $(#[test] fn $test() { super::$test(super::H(super::Flavor::Eager)) })*
        }
        mod cooperative {
            $(#[test] fn $test() { super::$test(super::H(super::Flavor::Cooperative)) })*
        }
    };
}

mod cases;
mod props;
mod range;
mod roundrobin;
mod sticky;
mod sticky_basic;
mod sticky_changes;
mod sticky_java;

pub(super) fn tp(topic: &str, partition: i32) -> (String, i32) {
    (topic.to_owned(), partition)
}

pub(super) fn tps(list: &[(&str, i32)]) -> Vec<(String, i32)> {
    list.iter().map(|(t, p)| tp(t, *p)).collect()
}

pub(super) fn set(list: &[(String, i32)]) -> BTreeSet<(String, i32)> {
    list.iter().cloned().collect()
}

pub(super) fn counts(list: &[(&str, i32)]) -> BTreeMap<String, i32> {
    list.iter().map(|(t, n)| (t.to_string(), *n)).collect()
}

pub(super) fn subscription(topics: &[&str]) -> Subscription {
    Subscription::new(topics.iter().copied())
}

pub(super) fn static_subscription(topics: &[&str], instance: &str) -> Subscription {
    Subscription {
        group_instance_id: Some(instance.to_owned()),
        ..subscription(topics)
    }
}

/// Parses Java's test notation "t1-0, t1-3, t2-0".
pub(super) fn parse_tps(s: &str) -> Vec<(String, i32)> {
    s.split(", ")
        .filter(|x| !x.is_empty())
        .map(|x| {
            let (t, p) = x.rsplit_once('-').expect("topic-partition");
            (t.to_owned(), p.parse().expect("partition"))
        })
        .collect()
}

/// Java's `toSortedString`: the partitions as "t-p" strings sorted as strings.
pub(super) fn sorted_string(list: &[(String, i32)]) -> String {
    let mut names: Vec<String> = list.iter().map(|(t, p)| format!("{t}-{p}")).collect();
    names.sort();
    names.join(", ")
}

fn member_order(subs: &BTreeMap<MemberId, Subscription>) -> Vec<&str> {
    member_info_order(subs)
        .into_iter()
        .map(String::as_str)
        .collect()
}

#[test]
fn member_info_sorting_without_group_instance_id() {
    let subs: BTreeMap<MemberId, Subscription> = ["c", "a", "b"]
        .iter()
        .map(|m| (m.to_string(), subscription(&[])))
        .collect();
    assert_eq!(member_order(&subs), ["a", "b", "c"]);
}

#[test]
fn member_info_sorting_with_all_group_instance_id() {
    let subs: BTreeMap<MemberId, Subscription> = [("a", "y"), ("b", "z"), ("c", "x")]
        .iter()
        .map(|(m, i)| (m.to_string(), static_subscription(&[], i)))
        .collect();
    assert_eq!(member_order(&subs), ["c", "a", "b"]);
}

#[test]
fn member_info_sorting_some_group_instance_id() {
    let mut subs: BTreeMap<MemberId, Subscription> = BTreeMap::new();
    subs.insert("a".into(), subscription(&[]));
    subs.insert("b".into(), static_subscription(&[], "y"));
    subs.insert("c".into(), static_subscription(&[], "x"));
    assert_eq!(member_order(&subs), ["c", "b", "a"]);
}

/// Java's `testMergeSortManyMemberInfo`, with a fixed pattern instead of `Random`.
#[test]
fn merge_sort_many_member_info() {
    let mut subs: BTreeMap<MemberId, Subscription> = BTreeMap::new();
    let (mut statics, mut dynamics) = (Vec::new(), Vec::new());
    for i in 0..100 {
        let id = (i + 100).to_string();
        if (i * 7) % 3 == 0 {
            subs.insert(id.clone(), static_subscription(&[], &id));
            statics.push(id);
        } else {
            subs.insert(id.clone(), subscription(&[]));
            dynamics.push(id);
        }
    }
    statics.extend(dynamics);
    assert_eq!(
        member_order(&subs),
        statics.iter().map(String::as_str).collect::<Vec<_>>()
    );
}

#[test]
fn java_string_order_and_hash() {
    // "\u{FFFF}" sorts after "\u{10000}" in Rust (code points) but before it in Java (UTF-16:
    // 0xFFFF vs the surrogate 0xD800).
    assert_eq!(
        java_cmp("\u{FFFF}", "\u{10000}"),
        std::cmp::Ordering::Greater
    );
    assert_eq!(java_cmp("abc", "abd"), std::cmp::Ordering::Less);
    assert_eq!(java_cmp("ab", "abc"), std::cmp::Ordering::Less);
    // Values of Java's "...".hashCode().
    assert_eq!(java_hash(""), 0);
    assert_eq!(java_hash("consumer1"), -421_004_549);
    assert_eq!(java_hash("topic"), 110_546_223);
    assert_eq!(java_hash("\u{10000}"), 0xD800 * 31 + 0xDC00);
}

#[test]
fn java_hash_map_order() {
    // Keys whose hashes land in buckets 3, 1, 1 of a 16-bucket table: bucket order, then
    // insertion order.
    assert_eq!(java_hash_order(&[3, 1, 17]), vec![1, 2, 0]);
    // 13 keys grow the table to 32: 16 now goes after 1.
    let hashes: Vec<i32> = (0..12).chain([16]).collect();
    let order = java_hash_order(&hashes);
    assert_eq!(order.iter().position(|&i| i == 12), Some(12));
    // 9 keys in one bucket of a small table double it (Java's treeifyBin resizes instead).
    let same_bucket: Vec<i32> = (0..9).map(|i| i * 16).collect();
    assert_eq!(
        java_hash_order(&same_bucket),
        vec![0, 2, 4, 6, 8, 1, 3, 5, 7]
    );
    // computeIfAbsent prepends to a bucket, resizes before inserting, treeifies a bin sooner.
    let ordered = |hashes: &[i32]| -> Vec<i32> {
        java_hash_order_by(hashes, JavaInsert::ComputeIfAbsent)
            .into_iter()
            .map(|i| hashes[i])
            .collect()
    };
    let nine: Vec<i32> = (0..9).map(|i| i * 16).collect();
    assert_eq!(ordered(&nine), [128, 96, 64, 32, 0, 112, 80, 48, 16]);
    let sixteen: Vec<i32> = (0..14).chain([16, 32]).collect();
    let mut expected = vec![32];
    expected.extend(0..14);
    expected.push(16);
    assert_eq!(ordered(&sixteen), expected);
    // What jshell prints for a HashSet<String> filled in this order.
    let keys = ["c10", "c2", "c1", "c30", "zz", "consumer-b", "consumer-a"];
    let hashes: Vec<i32> = keys.iter().map(|k| java_hash(k)).collect();
    let order: Vec<&str> = java_hash_order(&hashes)
        .into_iter()
        .map(|i| keys[i])
        .collect();
    assert_eq!(
        order,
        ["zz", "c30", "c10", "consumer-b", "consumer-a", "c1", "c2"]
    );
}

#[test]
fn select_finds_the_chosen_assignor() {
    let ours: Vec<Box<dyn Assignor>> = vec![
        Box::new(CooperativeSticky),
        Box::new(Range),
        Box::new(RoundRobin),
    ];
    assert_eq!(select(&ours, "range").map(|a| a.name()), Some("range"));
    assert_eq!(
        select(&ours, "cooperative-sticky").map(|a| a.name()),
        Some("cooperative-sticky")
    );
    assert!(select(&ours, "sticky").is_none());
}

#[test]
fn rebalance_protocol_is_the_most_advanced_common_one() {
    let cooperative_only: Vec<Box<dyn Assignor>> = vec![Box::new(CooperativeSticky)];
    assert_eq!(
        rebalance_protocol(&cooperative_only),
        Ok(RebalanceProtocol::Cooperative)
    );
    assert_eq!(
        rebalance_protocol(&default_assignors()),
        Ok(RebalanceProtocol::Eager)
    );
    #[derive(Debug)]
    struct OnlyCooperative;
    impl Assignor for OnlyCooperative {
        fn name(&self) -> &'static str {
            "only-cooperative"
        }
        fn supported_protocols(&self) -> &'static [RebalanceProtocol] {
            &[RebalanceProtocol::Cooperative]
        }
        fn assign(
            &self,
            _: &BTreeMap<String, i32>,
            subscriptions: &BTreeMap<MemberId, Subscription>,
        ) -> Result<GroupAssignment, AssignError> {
            Ok(empty_assignment(subscriptions))
        }
    }
    let mixed: Vec<Box<dyn Assignor>> = vec![Box::new(OnlyCooperative), Box::new(Range)];
    assert_eq!(
        rebalance_protocol(&mixed),
        Err(AssignError::NoCommonProtocol {
            names: vec!["only-cooperative", "range"]
        })
    );
    assert_eq!(OnlyCooperative.protocol(), RebalanceProtocol::Cooperative);
    assert_eq!(Range.protocol(), RebalanceProtocol::Eager);
    assert_eq!(CooperativeSticky.protocol(), RebalanceProtocol::Cooperative);
    assert!(rebalance_protocol(&[]).is_err());
}

#[test]
fn join_protocols_carry_each_assignors_user_data() {
    let ours: Vec<Box<dyn Assignor>> = vec![
        Box::new(CooperativeSticky),
        Box::new(Sticky),
        Box::new(Range),
    ];
    let topics = vec!["b".to_owned(), "a".to_owned()];
    let owned = tps(&[("b", 1), ("a", 0)]);
    let last = tps(&[("a", 0), ("b", 1)]);
    let history = [
        LastAssignment {
            assignor: "cooperative-sticky",
            partitions: &last,
            generation_id: 7,
        },
        LastAssignment {
            assignor: "sticky",
            partitions: &last,
            generation_id: 5,
        },
    ];
    let state = JoinState {
        topics: &topics,
        owned_partitions: &owned,
        generation_id: Some(7),
        rack_id: Some("rack-a"),
        last_assignments: &history,
    };
    let protocols = join_protocols(&ours, &state).expect("encodes");
    let names: Vec<&str> = protocols.iter().map(|p| p.name).collect();
    assert_eq!(names, ["cooperative-sticky", "sticky", "range"]);
    let decoded: Vec<Subscription> = protocols
        .iter()
        .map(|p| Subscription::decode(&p.metadata).expect("decodes"))
        .collect();
    for s in &decoded {
        assert_eq!(s.topics, ["a", "b"]);
        assert_eq!(s.owned_partitions, tps(&[("a", 0), ("b", 1)]));
        assert_eq!(s.generation_id, Some(7));
        assert_eq!(s.rack_id.as_deref(), Some("rack-a"));
    }
    assert_eq!(
        decoded[0].user_data,
        Some(Bytes::from_static(&[0, 0, 0, 7]))
    );
    let sticky_data = crate::group::assignor::sticky::sticky_member_data(&decoded[1]);
    assert_eq!(sticky_data.partitions, last);
    assert_eq!(sticky_data.generation, Some(5));
    assert_eq!(decoded[2].user_data, None);

    // Before any assignment: cooperative-sticky sends generation -1, sticky nothing.
    let fresh = JoinState {
        topics: &topics,
        ..Default::default()
    };
    let protocols = join_protocols(&ours, &fresh).expect("encodes");
    let cooperative = Subscription::decode(&protocols[0].metadata).expect("decodes");
    assert_eq!(cooperative.user_data, Some(Bytes::from_static(&[0xff; 4])));
    assert_eq!(cooperative.generation_id, None);
    assert_eq!(
        Subscription::decode(&protocols[1].metadata)
            .expect("decodes")
            .user_data,
        None
    );
}

#[test]
fn cooperative_validation_rejects_direct_transfers() {
    let mut subs: BTreeMap<MemberId, Subscription> = BTreeMap::new();
    subs.insert(
        "a".into(),
        Subscription {
            owned_partitions: tps(&[("t", 0), ("t", 1)]),
            ..subscription(&["t"])
        },
    );
    subs.insert("b".into(), subscription(&["t"]));
    // Revoking t-1 from a and leaving it unassigned is fine.
    let ok: GroupAssignment = [("a".to_owned(), tps(&[("t", 0)])), ("b".to_owned(), vec![])].into();
    assert_eq!(validate_cooperative_assignment("x", &subs, &ok), Ok(()));
    // Giving it to b in the same rebalance is not.
    let bad: GroupAssignment = [
        ("a".to_owned(), tps(&[("t", 0)])),
        ("b".to_owned(), tps(&[("t", 1)])),
    ]
    .into();
    assert_eq!(
        validate_cooperative_assignment("x", &subs, &bad),
        Err(AssignError::CooperativeViolation {
            assignor: "x",
            partitions: tps(&[("t", 1)])
        })
    );
}

#[test]
fn no_members_no_assignment() {
    let subs = BTreeMap::new();
    let parts = counts(&[("t", 3)]);
    for a in [
        &Range as &dyn Assignor,
        &RoundRobin,
        &Sticky,
        &CooperativeSticky,
    ] {
        assert_eq!(
            a.assign(&parts, &subs),
            Ok(GroupAssignment::new()),
            "{}",
            a.name()
        );
    }
}

/// A small deterministic generator (SplitMix64) for the tests Java runs with `Random`.
pub(super) struct SplitMix(u64);

impl SplitMix {
    pub(super) fn new(seed: u64) -> Self {
        SplitMix(seed)
    }

    pub(super) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`), like Java's `Random.nextInt(n)`.
    pub(super) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}
