//! The client's metadata and admin API against a real broker, nisshi.

use kingest_client::admin::{Admin, NewTopic, OffsetSpec};
use kingest_client::{Client, ClientConfig};
use kingest_protocol::ErrorCode;
use kingest_tests::peers::nisshi::Nisshi;

async fn admin(broker: &Nisshi) -> Admin {
    Admin::new(
        Client::connect(ClientConfig::new(&broker.addr()))
            .await
            .expect("connect to nisshi"),
    )
}

#[tokio::test]
async fn topics_offsets_and_cluster() {
    let broker = Nisshi::start();
    let admin = admin(&broker).await;

    let cluster = admin.describe_cluster().await.unwrap();
    assert_eq!(cluster.brokers.len(), 1);
    assert_eq!(cluster.brokers[0].port as u16, broker.port());

    let results = admin
        .create_topics(&[NewTopic::new("wide", 64), NewTopic::new("narrow", 1)])
        .await
        .unwrap();
    for (name, outcome) in &results {
        assert!(outcome.is_ok(), "{name}: {outcome:?}");
    }
    // Creating it again is a typed TOPIC_ALREADY_EXISTS naming the topic...
    let again = admin
        .create_topics(&[NewTopic::new("wide", 64)])
        .await
        .unwrap();
    let err = again[0].1.as_ref().unwrap_err();
    assert_eq!(
        err.broker_error().map(|b| b.code),
        Some(ErrorCode::TopicAlreadyExists),
        "{err}"
    );
    assert!(err.to_string().contains("wide"), "{err}");
    // ...which the "if missing" form accepts.
    admin
        .create_topics_if_missing(&[NewTopic::new("wide", 64)])
        .await
        .unwrap();

    let topics = admin.list_topics().await.unwrap();
    assert!(
        topics.contains(&"wide".to_owned()) && topics.contains(&"narrow".to_owned()),
        "{topics:?}"
    );
    assert_eq!(admin.client().partition_count("wide").await.unwrap(), 64);
    let meta = admin.client().metadata();
    for p in 0..64 {
        let leader = meta
            .leader("wide", p)
            .expect("every partition has a leader");
        assert_eq!(leader.port as u16, broker.port());
    }

    let parts: Vec<(&str, i32, OffsetSpec)> = (0..64)
        .flat_map(|p| {
            [
                ("wide", p, OffsetSpec::Earliest),
                ("wide", p, OffsetSpec::Latest),
            ]
        })
        .collect();
    let offsets = admin.list_offsets(&parts, false).await.unwrap();
    assert_eq!(offsets.len(), 64);
    assert!(offsets.values().all(|o| o.offset == 0), "{offsets:?}");

    let deleted = admin.delete_topics(&["narrow"]).await.unwrap();
    assert!(deleted.iter().all(|(_, r)| r.is_ok()), "{deleted:?}");
    let topics = admin.list_topics().await.unwrap();
    assert!(!topics.contains(&"narrow".to_owned()), "{topics:?}");
}

#[tokio::test]
async fn unknown_topics_and_unreachable_brokers_are_clear_errors() {
    let broker = Nisshi::start();
    let admin = admin(&broker).await;
    let err = admin
        .client()
        .partition_count("no-such-topic")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no-such-topic"), "{err}");

    let port = kingest_tests::peers::free_port();
    let err = Client::connect(ClientConfig::new(&format!("127.0.0.1:{port}")))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("no bootstrap server reachable") && text.contains(&port.to_string()),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_committed_offsets_and_lag() {
    use kingest_client::group::consumer::{
        AssignorKind, GroupConsumer, GroupConsumerConfig, GroupEvent,
    };
    use kingest_client::producer::{Producer, ProducerConfig, ProducerRecord};
    use std::time::Duration;

    let broker = Nisshi::start();
    broker.create_topic("lagging", 2);
    let admin = admin(&broker).await;
    let producer = Producer::new(admin.client().clone(), ProducerConfig::default()).unwrap();
    for i in 0..40 {
        let _delivery = producer
            .send(ProducerRecord::new("lagging", format!("{i}")).with_partition(i % 2))
            .await
            .unwrap();
    }
    producer.close().await.unwrap();

    let mut config = GroupConsumerConfig::new("lag-group", &["lagging"]);
    config.assignors = vec![AssignorKind::Range];
    config.auto_commit = false;
    config.heartbeat_interval = Duration::from_millis(300);
    config.consumer.offset_reset = kingest_client::consumer::OffsetReset::Earliest;
    let mut member = GroupConsumer::new(admin.client().clone(), config).unwrap();
    // Consume and commit partition 0's first batch only: partition 1 stays uncommitted.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        assert!(tokio::time::Instant::now() < deadline);
        if let GroupEvent::Records(f) = member.poll().await.unwrap() {
            if let Some(p0) = f.partitions().iter().find(|p| p.partition() == 0) {
                let mut offsets = std::collections::HashMap::new();
                offsets.insert(("lagging".to_owned(), 0), p0.next_offset().min(15));
                member.commit_offsets(&offsets).await.unwrap();
                break;
            }
        }
    }
    let groups = admin.list_groups().await.unwrap();
    assert!(
        groups.iter().any(|g| g.group_id == "lag-group"),
        "{groups:?}"
    );
    let described = admin.describe_group("lag-group").await.unwrap();
    // nisshi leaves protocol_data empty in DescribeGroups (Kafka fills it); the members tell.
    assert!(
        described.protocol == "range" || described.protocol.is_empty(),
        "{described:?}"
    );
    assert_eq!(described.members.len(), 1);
    // nisshi also leaves member assignments empty; group_testkit checks them against testkit.
    let mut assigned = described.members[0].assignment.clone();
    assigned.sort();
    assert!(
        assigned.is_empty()
            || assigned == vec![("lagging".to_owned(), 0), ("lagging".to_owned(), 1)],
        "{assigned:?}"
    );

    let committed = admin
        .committed_offsets("lag-group", Some(&[("lagging", 0), ("lagging", 1)]))
        .await
        .unwrap();
    assert_eq!(committed.get(&("lagging".to_owned(), 0)), Some(&15));
    let lag = admin.group_lag("lag-group", &["lagging"]).await.unwrap();
    assert_eq!(lag.len(), 2);
    assert_eq!((lag[0].committed, lag[0].log_end, lag[0].lag), (15, 20, 5));
    assert_eq!((lag[1].committed, lag[1].log_end, lag[1].lag), (-1, 20, 20));

    // Committing from outside (reset-offsets) is refused while the group has a member, naming
    // the partition, and changes nothing...
    let reset: std::collections::HashMap<(String, i32), i64> = [
        (("lagging".to_owned(), 0), 3),
        (("lagging".to_owned(), 1), 7),
    ]
    .into();
    let err = admin
        .alter_consumer_group_offsets("lag-group", &reset, Some("reset"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err.broker_error().map(|b| b.code),
            Some(ErrorCode::UnknownMemberId | ErrorCode::IllegalGeneration)
        ),
        "{err}"
    );
    assert!(err.to_string().contains("lagging"), "{err}");
    let unchanged = admin
        .committed_offsets("lag-group", Some(&[("lagging", 0)]))
        .await
        .unwrap();
    assert_eq!(unchanged.get(&("lagging".to_owned(), 0)), Some(&15));
    // ...and accepted once it has none.
    member.close().await.unwrap();
    admin
        .alter_consumer_group_offsets("lag-group", &reset, Some("reset"))
        .await
        .unwrap();
    let after = admin
        .committed_offsets("lag-group", Some(&[("lagging", 0), ("lagging", 1)]))
        .await
        .unwrap();
    assert_eq!(after, reset);
}
