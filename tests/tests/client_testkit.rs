//! Our client against testkit, for what nisshi cannot show: SASL PLAIN and OAUTHBEARER,
//! re-authentication before the session lifetime ends (KIP-368), and connections cut in the
//! middle of a response.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kingest_client::admin::Admin;
use kingest_client::sasl::{Mechanism, OAuthToken};
use kingest_client::{Client, ClientConfig, ClientError};
use kingest_testkit::{Cluster, ClusterConfig, FaultAction, FaultRule, SaslConfig};
use kingest_tests::peers::cluster::{move_leader_away, start_cluster};

fn sasl_cluster(lifetime: Option<Duration>) -> ClusterConfig {
    let mut sasl = SaslConfig::all(&[("alice", "alice-secret")]);
    sasl.oauth_tokens = vec![("good-token".to_owned(), "alice".to_owned())];
    sasl.session_lifetime = lifetime;
    ClusterConfig {
        sasl: Some(sasl),
        ..Default::default()
    }
}

fn config(cluster: &Cluster, mechanism: Mechanism) -> ClientConfig {
    let mut c = ClientConfig::new(&cluster.bootstrap());
    c.connection.sasl = Some(mechanism);
    c
}

#[tokio::test]
async fn plain_and_oauthbearer_logins() {
    let cluster = Cluster::start(sasl_cluster(None)).await.unwrap();
    cluster.create_topic("t", 2).unwrap();
    for mechanism in [
        Mechanism::plain("alice", "alice-secret"),
        Mechanism::oauthbearer_token(OAuthToken::new("good-token")),
        Mechanism::scram_sha256("alice", "alice-secret"),
    ] {
        let name = mechanism.name();
        let client = Client::connect(config(&cluster, mechanism))
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(client.partition_count("t").await.unwrap(), 2, "{name}");
    }

    let err = Client::connect(config(&cluster, Mechanism::plain("alice", "wrong")))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("SASL PLAIN authentication") && text.contains("Invalid username or password"),
        "{text}"
    );

    let err = Client::connect(config(
        &cluster,
        Mechanism::oauthbearer_token(OAuthToken::new("bad-token")),
    ))
    .await
    .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("SASL OAUTHBEARER authentication") && text.contains("invalid_token"),
        "{text}"
    );
    assert!(
        !text.contains("bad-token"),
        "the token leaked into the message: {text}"
    );
}

#[tokio::test]
async fn reauthenticates_before_the_session_ends() {
    let cluster = Cluster::start(sasl_cluster(Some(Duration::from_millis(600))))
        .await
        .unwrap();
    cluster.create_topic("t", 1).unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let mechanism = Mechanism::oauthbearer_callback(move || {
        counter.fetch_add(1, Ordering::SeqCst);
        Ok(OAuthToken::new("good-token"))
    });
    let client = Client::connect(config(&cluster, mechanism)).await.unwrap();
    let admin = Admin::new(client.clone());
    // Keep using the connection for 2 s: the 600 ms session must be renewed several times,
    // each time with a fresh token from the callback, without the requests noticing.
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_secs(2) {
        admin
            .list_topics()
            .await
            .expect("requests keep working across re-authentication");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        cluster.sasl_logins() >= 3,
        "only {} logins",
        cluster.sasl_logins()
    );
    assert!(
        calls.load(Ordering::SeqCst) >= 3,
        "token callback asked {} times",
        calls.load(Ordering::SeqCst)
    );
}

#[tokio::test]
async fn a_response_cut_in_half_fails_cleanly_and_the_next_request_reconnects() {
    let cluster = Cluster::start(ClusterConfig::default()).await.unwrap();
    cluster.create_topic("t", 3).unwrap();
    let client = Client::connect(ClientConfig::new(&cluster.bootstrap()))
        .await
        .unwrap();
    // The next Metadata response is cut in the middle and the connection closed.
    cluster
        .faults()
        .add(FaultRule::new(3, FaultAction::CloseMidResponse, 1));
    let err = client.refresh_metadata(&["t"]).await.unwrap_err();
    assert!(matches!(err, ClientError::Disconnected { .. }), "{err}");
    assert!(err.is_retriable());
    // The pool reconnects on next use.
    let meta = client.refresh_metadata(&["t"]).await.unwrap();
    assert_eq!(meta.partition_count("t"), Some(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn producer_and_consumer_follow_a_leader_move() {
    use kingest_client::consumer::{ConsumerConfig, PartitionConsumer, StartAt};
    use kingest_client::producer::{Producer, ProducerConfig, ProducerRecord};

    let cluster = start_cluster(2).await;
    cluster.create_topic("moving", 1).unwrap();
    let client = Client::connect(ClientConfig::new(&cluster.bootstrap()))
        .await
        .unwrap();
    let producer = Producer::new(client.clone(), ProducerConfig::default()).unwrap();
    let mut consumer = PartitionConsumer::new(client, ConsumerConfig::default()).unwrap();
    consumer
        .assign(&[("moving", 0, StartAt::Earliest)])
        .await
        .unwrap();
    let mut seen = Vec::new();
    for round in 0..3 {
        for i in 0..100 {
            let d = producer
                .send(ProducerRecord::new(
                    "moving",
                    format!("{}", round * 100 + i),
                ))
                .await
                .unwrap();
            d.await.unwrap();
        }
        // Move leadership (bumping the leader epoch): the old leader now answers
        // NOT_LEADER_OR_FOLLOWER / FENCED_LEADER_EPOCH; both clients must follow.
        move_leader_away(&cluster, "moving", 0);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while seen.len() < (round + 1) * 100 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "consumer stuck at {}",
                seen.len()
            );
            for r in consumer
                .poll_timeout(Duration::from_millis(200))
                .await
                .unwrap()
                .records()
            {
                seen.push((
                    r.record.offset,
                    String::from_utf8_lossy(r.record.value.unwrap()).into_owned(),
                ));
            }
        }
    }
    producer.close().await.unwrap();
    let want: Vec<(i64, String)> = (0..300).map(|i| (i as i64, i.to_string())).collect();
    assert_eq!(
        seen, want,
        "no loss, no duplicates across three leader moves"
    );
}

/// Every ListOffsets version testkit advertises (1-7) is answered: the leader epoch, which
/// only versions 4+ carry, is left out below them (rskafka asks with version 3).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_offsets_is_answered_in_every_version() {
    use kingest_protocol::kafka_protocol::messages::list_offsets_request::{
        ListOffsetsPartition, ListOffsetsTopic,
    };
    use kingest_protocol::kafka_protocol::messages::{BrokerId, ListOffsetsRequest, TopicName};
    use kingest_protocol::kafka_protocol::protocol::StrBytes;

    let cluster = Cluster::start(ClusterConfig::default()).await.unwrap();
    cluster.create_topic("lo", 1).unwrap();
    let client = Client::connect(ClientConfig::new(&cluster.bootstrap()))
        .await
        .unwrap();
    let (_, conn) = client.leader("lo", 0).await.unwrap();
    for version in 1..=7 {
        let request = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![ListOffsetsTopic::default()
                .with_name(TopicName(StrBytes::from_static_str("lo")))
                .with_partitions(vec![ListOffsetsPartition::default()
                    .with_partition_index(0)
                    .with_timestamp(-1)])]);
        let response = conn.send_version(version, &request).await.unwrap();
        let p = &response.topics[0].partitions[0];
        assert_eq!((p.error_code, p.offset), (0, 0), "version {version}");
        assert_eq!(p.leader_epoch >= 0, version >= 4, "version {version}");
    }
}
