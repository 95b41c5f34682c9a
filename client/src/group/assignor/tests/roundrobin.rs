//! Java's `RoundRobinAssignorTest`.

use std::collections::BTreeMap;

use super::*;

fn assign(
    parts: &BTreeMap<String, i32>,
    subs: &BTreeMap<MemberId, Subscription>,
) -> GroupAssignment {
    RoundRobin.assign(parts, subs).expect("roundrobin assigns")
}

fn members(list: &[(&str, Subscription)]) -> BTreeMap<MemberId, Subscription> {
    list.iter()
        .map(|(m, s)| (m.to_string(), s.clone()))
        .collect()
}

#[test]
fn one_consumer_no_topic() {
    let a = assign(&counts(&[]), &members(&[("consumer", subscription(&[]))]));
    assert_eq!(a, [("consumer".to_owned(), vec![])].into());
}

#[test]
fn one_consumer_nonexistent_topic() {
    let a = assign(
        &counts(&[]),
        &members(&[("consumer", subscription(&["topic"]))]),
    );
    assert_eq!(a, [("consumer".to_owned(), vec![])].into());
}

#[test]
fn one_consumer_one_topic() {
    let a = assign(
        &counts(&[("topic", 3)]),
        &members(&[("consumer", subscription(&["topic"]))]),
    );
    assert_eq!(
        a["consumer"],
        tps(&[("topic", 0), ("topic", 1), ("topic", 2)])
    );
}

#[test]
fn only_assigns_partitions_from_subscribed_topics() {
    let a = assign(
        &counts(&[("topic", 3), ("other", 3)]),
        &members(&[("consumer", subscription(&["topic"]))]),
    );
    assert_eq!(
        a["consumer"],
        tps(&[("topic", 0), ("topic", 1), ("topic", 2)])
    );
}

#[test]
fn one_consumer_multiple_topics() {
    let a = assign(
        &counts(&[("topic1", 1), ("topic2", 2)]),
        &members(&[("consumer", subscription(&["topic1", "topic2"]))]),
    );
    assert_eq!(
        a["consumer"],
        tps(&[("topic1", 0), ("topic2", 0), ("topic2", 1)])
    );
}

#[test]
fn two_consumers_one_topic_one_partition() {
    let subs = members(&[
        ("consumer1", subscription(&["topic"])),
        ("consumer2", subscription(&["topic"])),
    ]);
    let a = assign(&counts(&[("topic", 1)]), &subs);
    assert_eq!(a["consumer1"], tps(&[("topic", 0)]));
    assert_eq!(a["consumer2"], vec![]);
}

#[test]
fn two_consumers_one_topic_two_partitions() {
    let subs = members(&[
        ("consumer1", subscription(&["topic"])),
        ("consumer2", subscription(&["topic"])),
    ]);
    let a = assign(&counts(&[("topic", 2)]), &subs);
    assert_eq!(a["consumer1"], tps(&[("topic", 0)]));
    assert_eq!(a["consumer2"], tps(&[("topic", 1)]));
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
        a["consumer2"],
        tps(&[("topic1", 1), ("topic2", 0), ("topic2", 1)])
    );
    assert_eq!(a["consumer3"], tps(&[("topic1", 2)]));
}

#[test]
fn two_dynamic_consumers_two_topics_six_partitions() {
    let both = subscription(&["topic1", "topic2"]);
    let a = assign(
        &counts(&[("topic1", 3), ("topic2", 3)]),
        &members(&[("consumer1", both.clone()), ("consumer2", both)]),
    );
    assert_eq!(
        a["consumer1"],
        tps(&[("topic1", 0), ("topic1", 2), ("topic2", 1)])
    );
    assert_eq!(
        a["consumer2"],
        tps(&[("topic1", 1), ("topic2", 0), ("topic2", 2)])
    );
}

#[test]
fn two_static_consumers_two_topics_six_partitions() {
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
        a["consumer-b"],
        tps(&[("topic1", 0), ("topic1", 2), ("topic2", 1)])
    );
    assert_eq!(
        a["consumer-a"],
        tps(&[("topic1", 1), ("topic2", 0), ("topic2", 2)])
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
        a["consumer-b"],
        tps(&[("topic1", 0), ("topic1", 2), ("topic2", 1)])
    );
    assert_eq!(
        a["consumer-a"],
        tps(&[("topic1", 1), ("topic2", 0), ("topic2", 2)])
    );
}

#[test]
fn static_member_round_robin_assignment_persistent() {
    let parts = counts(&[("topic1", 3), ("topic2", 3)]);
    let topics = ["topic1", "topic2"];
    let mut subs = members(&[
        ("consumer1", static_subscription(&topics, "instance1")),
        ("consumer2", static_subscription(&topics, "instance2")),
        ("consumer3", static_subscription(&topics, "instance3")),
        ("consumer4", subscription(&topics)),
    ]);
    let mut expected: GroupAssignment = [
        ("consumer1".to_owned(), tps(&[("topic1", 0), ("topic2", 1)])),
        ("consumer2".to_owned(), tps(&[("topic1", 1), ("topic2", 2)])),
        ("consumer3".to_owned(), tps(&[("topic1", 2)])),
        ("consumer4".to_owned(), tps(&[("topic2", 0)])),
    ]
    .into();
    assert_eq!(assign(&parts, &subs), expected);

    subs.remove("consumer4");
    subs.insert("consumer5".into(), subscription(&topics));
    expected.remove("consumer4");
    expected.insert("consumer5".into(), tps(&[("topic2", 0)]));
    assert_eq!(assign(&parts, &subs), expected);
}

#[test]
fn static_member_round_robin_assignment_persistent_after_member_id_changes() {
    let parts = counts(&[("topic1", 5), ("topic2", 5)]);
    let topics = ["topic1", "topic2"];
    let mut subs = members(&[
        ("consumer1", static_subscription(&topics, "instance1")),
        ("consumer2", static_subscription(&topics, "instance2")),
        ("consumer3", static_subscription(&topics, "instance3")),
    ]);
    let by_instance =
        |subs: &BTreeMap<MemberId, Subscription>| -> BTreeMap<String, Vec<(String, i32)>> {
            let a = assign(&parts, subs);
            subs.iter()
                .map(|(m, s)| (s.group_instance_id.clone().expect("static"), a[m].clone()))
                .collect()
        };
    let expected: BTreeMap<String, Vec<(String, i32)>> = [
        (
            "instance1".to_owned(),
            tps(&[("topic1", 0), ("topic1", 3), ("topic2", 1), ("topic2", 4)]),
        ),
        (
            "instance2".to_owned(),
            tps(&[("topic1", 1), ("topic1", 4), ("topic2", 2)]),
        ),
        (
            "instance3".to_owned(),
            tps(&[("topic1", 2), ("topic2", 0), ("topic2", 3)]),
        ),
    ]
    .into();
    assert_eq!(by_instance(&subs), expected);

    let s3 = subs.remove("consumer3").expect("present");
    subs.insert("consumer4".into(), s3);
    let s2 = subs.remove("consumer2").expect("present");
    subs.insert("consumer5".into(), s2);
    assert_eq!(by_instance(&subs), expected);
}
