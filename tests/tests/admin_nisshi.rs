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
