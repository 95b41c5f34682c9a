//! Tests of [`super`]: targets parsed and clamped to the log, PostgreSQL resets spelled out,
//! and the reasons a plan is refused.

use super::*;

#[test]
fn targets_parse() {
    assert_eq!("earliest".parse::<ResetTo>().unwrap(), ResetTo::Earliest);
    assert_eq!(" latest ".parse::<ResetTo>().unwrap(), ResetTo::Latest);
    assert_eq!(
        "timestamp=2024-01-01T00:00:00Z".parse::<ResetTo>().unwrap(),
        ResetTo::Timestamp(1_704_067_200_000)
    );
    assert_eq!(
        "timestamp=2024-01-01".parse::<ResetTo>().unwrap(),
        ResetTo::Timestamp(1_704_067_200_000)
    );
    assert_eq!(
        "timestamp=1704067200123".parse::<ResetTo>().unwrap(),
        ResetTo::Timestamp(1_704_067_200_123)
    );
    assert_eq!("offset=42".parse::<ResetTo>().unwrap(), ResetTo::Offset(42));
    assert_eq!(
        "offset=events:0=5, events:2=7,other.t:1=0"
            .parse::<ResetTo>()
            .unwrap(),
        ResetTo::Offsets(BTreeMap::from([
            (("events".to_owned(), 0), 5),
            (("events".to_owned(), 2), 7),
            (("other.t".to_owned(), 1), 0),
        ]))
    );
    for bad in [
        "",
        "earliestt",
        "offset=-1",
        "offset=x",
        "offset=events:x=1",
        "offset=events:0=",
        "offset=:0=1",
        "timestamp=yesterday",
        "timestamp=earliest",
        "shift=3",
    ] {
        let e = bad.parse::<ResetTo>().unwrap_err();
        assert!(matches!(e, ResetError::BadTarget(_)), "{bad}: {e}");
    }
    // Display round-trips.
    for s in [
        "earliest",
        "latest",
        "timestamp=5",
        "offset=3",
        "offset=a:0=1,b:2=3",
    ] {
        assert_eq!(s.parse::<ResetTo>().unwrap().to_string(), s);
    }
}

#[test]
fn targets_are_clamped_to_the_log() {
    let key = ("t".to_owned(), 0);
    let none = HashMap::new();
    assert_eq!(
        target(&ResetTo::Earliest, &key, 10, 20, &none),
        Some((10, None))
    );
    assert_eq!(
        target(&ResetTo::Latest, &key, 10, 20, &none),
        Some((20, None))
    );
    assert_eq!(
        target(&ResetTo::Offset(15), &key, 10, 20, &none),
        Some((15, None))
    );
    let (n, note) = target(&ResetTo::Offset(5), &key, 10, 20, &none).unwrap();
    assert_eq!(n, 10);
    assert!(note.unwrap().contains("before the log start"));
    let (n, note) = target(&ResetTo::Offset(25), &key, 10, 20, &none).unwrap();
    assert_eq!(n, 20);
    assert!(note.unwrap().contains("past the log end"));
    let times = HashMap::from([(key.clone(), 12)]);
    assert_eq!(
        target(&ResetTo::Timestamp(1), &key, 10, 20, &times),
        Some((12, None))
    );
    let late = HashMap::from([(key.clone(), -1)]);
    let (n, note) = target(&ResetTo::Timestamp(1), &key, 10, 20, &late).unwrap();
    assert_eq!(n, 20);
    assert!(note.unwrap().contains("no record that late"));
    let only = ResetTo::Offsets(BTreeMap::from([(("t".to_owned(), 1), 3)]));
    assert_eq!(target(&only, &key, 0, 20, &none), None);
}

#[test]
fn postgres_resets_are_spelled_out() {
    let row = |p: i32, sink: Option<i64>, new: i64| ResetRow {
        topic: "ev'ts".into(),
        partition: p,
        group: None,
        sink,
        log_start: 0,
        log_end: 100,
        new,
        note: None,
    };
    let hint = postgres_hint(
        "g",
        "kingest_offsets",
        "public.events",
        &[row(0, Some(40), 10), row(1, Some(10), 10), row(2, None, 10)],
    );
    assert!(
        hint.contains(
            "UPDATE kingest_offsets SET next_offset = 10 WHERE consumer_group = 'g' AND \
             topic = 'ev''ts' AND partition = 0;"
        ),
        "{hint}"
    );
    assert!(
        !hint.contains("partition = 1") && !hint.contains("partition = 2"),
        "{hint}"
    );
    assert!(hint.contains("public.events"), "{hint}");
}

#[test]
fn refusals_say_why() {
    let mut plan = ResetPlan {
        group: "g".into(),
        group_state: "Empty".into(),
        members: vec![],
        sink: "parquet ./d".into(),
        with_sink: false,
        rows: vec![],
        sink_conflicts: vec!["t-0 at 42".into()],
        start_conflicts: vec![],
        start: "earliest".into(),
        parquet: None,
        delta: None,
        sink_unsupported: None,
        iceberg_table: None,
    };
    let e = plan.refusal().unwrap().to_string();
    assert!(e.contains("t-0 at 42") && e.contains("--sink"), "{e}");
    plan.sink_conflicts.clear();
    plan.start_conflicts = vec!["t-1".into()];
    plan.start = "1700000000000 ms".into();
    let e = plan.refusal().unwrap().to_string();
    assert!(
        e.contains("source.start (1700000000000 ms)") && e.contains("t-1") && e.contains("--sink"),
        "{e}"
    );
    plan.with_sink = true;
    assert!(plan.refusal().is_none());
    plan.sink_unsupported = Some("object store".into());
    assert!(plan.refusal().unwrap().to_string().contains("object store"));
    plan.members = vec!["kingest@127.0.0.1".into()];
    plan.group_state = "Stable".into();
    let e = plan.refusal().unwrap().to_string();
    assert!(
        e.contains("1 active member") && e.contains("kingest@127.0.0.1"),
        "{e}"
    );
}
