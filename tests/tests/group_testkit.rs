//! The group consumer against testkit: members sharing partitions, cooperative-sticky
//! rebalances that never revoke a partition that stays, static membership.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use kingest_client::consumer::StartAt;
use kingest_client::group::consumer::{
    AssignorKind, GroupConsumer, GroupConsumerConfig, GroupEvent,
};
use kingest_client::{Client, ClientConfig};
use kingest_protocol::record::{BatchBuilder, BatchOptions};
use kingest_testkit::{Cluster, ClusterConfig};
use kingest_tests::peers::cluster::start_cluster;

async fn client(cluster: &Cluster) -> Client {
    Client::connect(ClientConfig::new(&cluster.bootstrap()))
        .await
        .unwrap()
}

fn config(topic: &str, assignor: AssignorKind) -> GroupConsumerConfig {
    let mut c = GroupConsumerConfig::new("g", &[topic]);
    c.assignors = vec![assignor];
    c.heartbeat_interval = Duration::from_millis(100);
    c.session_timeout = Duration::from_millis(3000);
    c.rebalance_timeout = Duration::from_millis(3000);
    c.auto_commit = false;
    c.consumer.offset_reset = kingest_client::consumer::OffsetReset::Earliest;
    c
}

/// Polls a member until its assignment has `n` partitions, collecting its events.
async fn settle(m: &mut GroupConsumer, n: usize, events: &mut Vec<String>) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while m.assignment().len() != n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "assignment stuck at {:?}",
            m.assignment()
        );
        match tokio::time::timeout(Duration::from_millis(300), m.poll()).await {
            Ok(Ok(GroupEvent::Assigned(p))) => events.push(format!("assigned {p:?}")),
            Ok(Ok(GroupEvent::Revoked(p))) => events.push(format!("revoked {p:?}")),
            Ok(Ok(GroupEvent::Lost(p))) => events.push(format!("lost {p:?}")),
            Ok(Ok(GroupEvent::Records(_))) => {}
            Ok(Err(e)) => panic!("{e}"),
            Err(_) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cooperative_sticky_never_revokes_partitions_that_stay() {
    let cluster = Cluster::start(ClusterConfig::default()).await.unwrap();
    cluster.create_topic("coop", 6).unwrap();
    let mut a = GroupConsumer::new(
        client(&cluster).await,
        config("coop", AssignorKind::CooperativeSticky),
    )
    .unwrap();
    let mut a_events = Vec::new();
    settle(&mut a, 6, &mut a_events).await;
    let before: BTreeSet<(String, i32)> = a.assignment().into_iter().collect();

    let mut b = GroupConsumer::new(
        client(&cluster).await,
        config("coop", AssignorKind::CooperativeSticky),
    )
    .unwrap();
    let mut b_events = Vec::new();
    // Both must keep polling for the two-step cooperative rebalance to finish.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !(a.assignment().len() == 3 && b.assignment().len() == 3) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "a={:?} b={:?}",
            a.assignment(),
            b.assignment()
        );
        for (m, ev) in [(&mut a, &mut a_events), (&mut b, &mut b_events)] {
            if let Ok(r) = tokio::time::timeout(Duration::from_millis(100), m.poll()).await {
                match r.unwrap() {
                    GroupEvent::Assigned(p) => ev.push(format!("assigned {p:?}")),
                    GroupEvent::Revoked(p) => ev.push(format!("revoked {p:?}")),
                    GroupEvent::Lost(p) => ev.push(format!("lost {p:?}")),
                    GroupEvent::Records(_) => {}
                }
            }
        }
    }
    let after: BTreeSet<(String, i32)> = a.assignment().into_iter().collect();
    assert!(after.is_subset(&before), "a kept a subset of what it had");
    // a's only revocation is of the partitions that moved to b; the ones it kept were never
    // revoked.
    let revoked: Vec<&String> = a_events
        .iter()
        .filter(|e| e.starts_with("revoked"))
        .collect();
    assert_eq!(revoked.len(), 1, "{a_events:?}");
    for kept in &after {
        assert!(
            !revoked[0].contains(&format!("({:?}, {})", kept.0, kept.1)),
            "kept partition {kept:?} was revoked: {a_events:?}"
        );
    }
    assert!(
        b_events.iter().all(|e| !e.starts_with("revoked")),
        "{b_events:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_share_and_commit() {
    let cluster = start_cluster(2).await;
    cluster.create_topic("shared", 4).unwrap();
    // 100 records per partition, written straight into the log through a produce request.
    let producer_client = client(&cluster).await;
    for p in 0..4 {
        let mut b = BatchBuilder::new(BatchOptions::default());
        for i in 0..100 {
            b.push(i, None, Some(format!("{p}-{i}").as_bytes()), &[]);
        }
        let (_, conn) = producer_client.leader("shared", p).await.unwrap();
        let req = kingest_protocol::kafka_protocol::messages::ProduceRequest::default().with_acks(1).with_timeout_ms(5000).with_topic_data(vec![
            kingest_protocol::kafka_protocol::messages::produce_request::TopicProduceData::default()
                .with_name(kingest_protocol::kafka_protocol::messages::TopicName(kingest_protocol::kafka_protocol::protocol::StrBytes::from_static_str("shared")))
                .with_partition_data(vec![kingest_protocol::kafka_protocol::messages::produce_request::PartitionProduceData::default().with_index(p).with_records(Some(b.finish().unwrap()))]),
        ]);
        conn.send(&req).await.unwrap();
    }
    let mut members = Vec::new();
    for _ in 0..2 {
        members.push(
            GroupConsumer::new(
                client(&cluster).await,
                config("shared", AssignorKind::Range),
            )
            .unwrap(),
        );
    }
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while seen.len() < 400 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} records",
            seen.len()
        );
        for m in members.iter_mut() {
            if let Ok(r) = tokio::time::timeout(Duration::from_millis(100), m.poll()).await {
                if let GroupEvent::Records(f) = r.unwrap() {
                    for rec in f.records() {
                        *seen
                            .entry(String::from_utf8_lossy(rec.record.value.unwrap()).into_owned())
                            .or_default() += 1;
                    }
                    m.commit().await.unwrap();
                }
            }
        }
    }
    assert!(seen.values().all(|n| *n == 1), "duplicates");
    for p in 0..4 {
        assert_eq!(
            cluster.committed("g", "shared", p),
            Some(100),
            "partition {p} committed to its end"
        );
    }
    let owned: usize = members.iter().map(|m| m.assignment().len()).sum();
    assert_eq!(owned, 4);
    // What the admin API sees of the group.
    let admin = kingest_client::admin::Admin::new(client(&cluster).await);
    // A loaded machine can delay a heartbeat into a rebalance: keep the members polling until
    // the group settles, as an application would.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let described = loop {
        let d = admin.describe_group("g").await.unwrap();
        if d.state == "Stable" || tokio::time::Instant::now() > deadline {
            break d;
        }
        for m in members.iter_mut() {
            let _ = tokio::time::timeout(Duration::from_millis(100), m.poll()).await;
        }
    };
    assert_eq!(
        (
            described.state.as_str(),
            described.protocol.as_str(),
            described.members.len()
        ),
        ("Stable", "range", 2)
    );
    let mut assigned: Vec<(String, i32)> = described
        .members
        .iter()
        .flat_map(|m| m.assignment.clone())
        .collect();
    assigned.sort();
    assert_eq!(
        assigned,
        (0..4).map(|p| ("shared".to_owned(), p)).collect::<Vec<_>>()
    );
    let all = admin.committed_offsets("g", None).await.unwrap();
    assert_eq!(all.len(), 4);
    assert!(all.values().all(|o| *o == 100), "{all:?}");
    let lag = admin.group_lag("g", &["shared"]).await.unwrap();
    assert!(
        lag.iter()
            .all(|l| l.committed == 100 && l.log_end == 100 && l.lag == 0),
        "{lag:?}"
    );
    let _ = StartAt::Earliest;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_static_member_restarting_within_the_session_gets_its_partitions_back_without_a_rebalance(
) {
    static_restart(false).await;
}

/// KIP-814: the restarting member is the leader; JoinGroup v9 tells it to skip the
/// assignment, so it does not reassign and nobody is disturbed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_static_leader_restarting_skips_the_assignment_and_nobody_rebalances() {
    static_restart(true).await;
}

async fn static_restart(restart_leader: bool) {
    let cluster = Cluster::start(ClusterConfig::default()).await.unwrap();
    cluster.create_topic("static", 4).unwrap();
    let member = |instance: &str| {
        let mut c = config("static", AssignorKind::Range);
        c.instance_id = Some(instance.to_owned());
        c.session_timeout = Duration::from_secs(10);
        c
    };
    let mut a = GroupConsumer::new(client(&cluster).await, member("a")).unwrap();
    let mut b = GroupConsumer::new(client(&cluster).await, member("b")).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !(a.assignment().len() == 2 && b.assignment().len() == 2) {
        assert!(tokio::time::Instant::now() < deadline);
        for m in [&mut a, &mut b] {
            let _ = tokio::time::timeout(Duration::from_millis(100), m.poll()).await;
        }
    }
    // The member to restart is b; swap so that b is the leader, or the follower, as asked.
    let leader_is_b = cluster.group_leader_instance("g").as_deref() == Some("b");
    let (mut a, b, b_name) = if leader_is_b == restart_leader {
        (a, b, "b")
    } else {
        (b, a, "a")
    };
    let b_before = b.assignment();
    let (_, generation, _) = cluster.group_state("g").unwrap();
    // b "restarts": dropped without leaving (static members never send LeaveGroup on restart)...
    drop(b);
    // ...and comes back with the same instance id well within its 10 s session.
    let mut b = GroupConsumer::new(client(&cluster).await, member(b_name)).unwrap();
    let mut events = Vec::new();
    settle(&mut b, 2, &mut events).await;
    assert_eq!(b.assignment(), b_before, "same partitions");
    assert_eq!(
        cluster.group_leader_instance("g").as_deref() == Some(b_name),
        restart_leader,
        "the restarted member kept its role"
    );
    // a kept polling meanwhile and saw no revocation; the generation did not move.
    for _ in 0..5 {
        if let Ok(Ok(e)) = tokio::time::timeout(Duration::from_millis(100), a.poll()).await {
            assert!(
                matches!(e, GroupEvent::Records(_)),
                "a was disturbed: {e:?}"
            );
        }
    }
    let (state, generation_after, members) = cluster.group_state("g").unwrap();
    assert_eq!(
        (state.as_str(), generation_after, members),
        ("Stable", generation, 2)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pattern_subscription_picks_up_new_topics() {
    let cluster = Cluster::start(ClusterConfig::default()).await.unwrap();
    cluster.create_topic("logs-a", 2).unwrap();
    cluster.create_topic("other", 2).unwrap();
    let mut c = config("unused", AssignorKind::Range);
    c.subscription = kingest_client::group::consumer::TopicSubscription::Pattern(
        regex::Regex::new("logs-.*").unwrap(),
    );
    c.pattern_check_interval = Duration::from_millis(200);
    let mut m = GroupConsumer::new(client(&cluster).await, c).unwrap();
    let mut events = Vec::new();
    settle(&mut m, 2, &mut events).await;
    assert!(
        m.assignment().iter().all(|(t, _)| t == "logs-a"),
        "{:?}",
        m.assignment()
    );
    cluster.create_topic("logs-b", 3).unwrap();
    settle(&mut m, 5, &mut events).await;
    let topics: BTreeSet<String> = m.assignment().into_iter().map(|(t, _)| t).collect();
    assert_eq!(
        topics,
        ["logs-a", "logs-b"].into_iter().map(String::from).collect()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_commit_commits_what_was_handed_out() {
    let cluster = Cluster::start(ClusterConfig::default()).await.unwrap();
    cluster.create_topic("auto", 1).unwrap();
    let c = client(&cluster).await;
    let producer = kingest_client::producer::Producer::new(
        c.clone(),
        kingest_client::producer::ProducerConfig::default(),
    )
    .unwrap();
    for i in 0..50 {
        let _delivery = producer
            .send(kingest_client::producer::ProducerRecord::new(
                "auto",
                format!("{i}"),
            ))
            .await
            .unwrap();
    }
    producer.flush().await;
    let mut cfg = config("auto", AssignorKind::Range);
    cfg.auto_commit = true;
    cfg.auto_commit_interval = Duration::from_millis(200);
    let mut m = GroupConsumer::new(c, cfg).unwrap();
    let mut handed = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while cluster.committed("g", "auto", 0) != Some(50) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "committed {:?} after handing out {handed}",
            cluster.committed("g", "auto", 0)
        );
        if let Ok(Ok(GroupEvent::Records(f))) =
            tokio::time::timeout(Duration::from_millis(100), m.poll()).await
        {
            handed += f.record_count();
        }
    }
    assert_eq!(handed, 50);
    // An asynchronous commit of what was handed out completes in the background.
    m.commit_async().await.unwrap().unwrap();
    assert_eq!(cluster.committed("g", "auto", 0), Some(50));
    // Commit metadata travels with the offset.
    let mut offsets = std::collections::HashMap::new();
    offsets.insert(("auto".to_owned(), 0), 50);
    m.commit_offsets_with_metadata(&offsets, Some("file=part-0001.parquet"))
        .await
        .unwrap();
    assert_eq!(
        cluster.committed_metadata("g", "auto", 0).as_deref(),
        Some("file=part-0001.parquet")
    );
    m.close().await.unwrap();
    assert_eq!(
        cluster.group_state("g").map(|(_, _, n)| n),
        Some(0),
        "close left the group"
    );
}

/// KIP-814 on the wire: a static leader rejoining a stable group with JoinGroup v9 is told to
/// skip the assignment and given the members' metadata; with v5 (librdkafka's version) it gets
/// neither, as from Kafka, and the generation does not move either way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejoining_static_leader_is_told_to_skip_the_assignment_from_join_group_v9() {
    use kingest_protocol::consumer_protocol::{Assignment, Subscription};
    use kingest_protocol::kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
    use kingest_protocol::kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
    use kingest_protocol::kafka_protocol::messages::{GroupId, JoinGroupRequest, SyncGroupRequest};
    use kingest_protocol::kafka_protocol::protocol::StrBytes;

    let cluster = Cluster::start(ClusterConfig {
        group_initial_rebalance_delay: Duration::ZERO,
        ..ClusterConfig::default()
    })
    .await
    .unwrap();
    cluster.create_topic("kip814", 2).unwrap();
    let conn = client(&cluster)
        .await
        .connection(cluster.broker_ids()[0])
        .await
        .unwrap();
    let join = |member: &str| {
        JoinGroupRequest::default()
            .with_group_id(GroupId(StrBytes::from_static_str("g814")))
            .with_session_timeout_ms(10_000)
            .with_rebalance_timeout_ms(10_000)
            .with_member_id(StrBytes::from_string(member.to_owned()))
            .with_group_instance_id(Some(StrBytes::from_static_str("x")))
            .with_protocol_type(StrBytes::from_static_str("consumer"))
            .with_protocols(vec![JoinGroupRequestProtocol::default()
                .with_name(StrBytes::from_static_str("range"))
                .with_metadata(Subscription::new(["kip814"]).encode().unwrap())])
    };
    let first = conn.send_version(9, &join("")).await.unwrap();
    assert_eq!(first.error_code, 0);
    assert_eq!(first.leader, first.member_id, "the only member leads");
    let assignment = Assignment::new(vec![("kip814".to_owned(), 0), ("kip814".to_owned(), 1)]);
    let sync = SyncGroupRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("g814")))
        .with_generation_id(first.generation_id)
        .with_member_id(first.member_id.clone())
        .with_group_instance_id(Some(StrBytes::from_static_str("x")))
        .with_protocol_type(Some(StrBytes::from_static_str("consumer")))
        .with_protocol_name(Some(StrBytes::from_static_str("range")))
        .with_assignments(vec![SyncGroupRequestAssignment::default()
            .with_member_id(first.member_id.clone())
            .with_assignment(assignment.encode().unwrap())]);
    assert_eq!(conn.send_version(5, &sync).await.unwrap().error_code, 0);

    // The leader restarts: a new JoinGroup with its instance id and no member id.
    let v9 = conn.send_version(9, &join("")).await.unwrap();
    assert_eq!(v9.error_code, 0);
    assert!(v9.skip_assignment, "v9: told to skip the assignment");
    assert_eq!(v9.leader, v9.member_id, "still the leader, under a new id");
    assert_eq!(v9.members.len(), 1, "v9: the members' metadata comes along");
    assert_eq!(v9.generation_id, first.generation_id, "no rebalance");

    let v5 = conn.send_version(5, &join("")).await.unwrap();
    assert_eq!(v5.error_code, 0);
    assert!(v5.members.is_empty(), "v5: no members, as from Kafka");
    assert_eq!(v5.generation_id, first.generation_id, "no rebalance");
    let (state, generation, members) = cluster.group_state("g814").unwrap();
    assert_eq!(
        (state.as_str(), generation, members),
        ("Stable", first.generation_id, 1)
    );
}

/// The README's client example: a program produces, then starts a group consumer on a new
/// group. With the default `offset_reset` (Latest, as in Java) the new group starts after what
/// was produced; with `OffsetReset::Earliest`, as the README now shows, it reads it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_group_reads_earlier_records_only_with_offset_reset_earliest() {
    use kingest_client::consumer::OffsetReset;
    use kingest_client::producer::{Producer, ProducerConfig, ProducerRecord};

    let cluster = Cluster::start(ClusterConfig::default()).await.unwrap();
    cluster.create_topic("readme", 1).unwrap();
    let c = client(&cluster).await;
    let producer = Producer::new(c.clone(), ProducerConfig::default()).unwrap();
    let send = |value: &'static str| {
        let producer = &producer;
        async move {
            producer
                .send(ProducerRecord::new("readme", value).with_key("k"))
                .await
                .unwrap()
                .await
                .unwrap()
                .offset
        }
    };
    assert_eq!(send("{\"n\":1}").await, 0);

    // The first record a member is handed (60 s: a generous bound on a loaded machine).
    async fn first_record(m: &mut GroupConsumer) -> (i64, Vec<u8>) {
        let first = async {
            loop {
                if let GroupEvent::Records(f) = m.poll().await.unwrap() {
                    let r = f.records().next().expect("a Records event holds records");
                    return (r.record.offset, r.record.value.unwrap().to_vec());
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(60), first)
            .await
            .expect("no record arrived")
    }

    let mut config = GroupConsumerConfig::new("readme-earliest", &["readme"]);
    config.consumer.offset_reset = OffsetReset::Earliest;
    let mut earliest = GroupConsumer::new(c.clone(), config).unwrap();
    assert_eq!(
        first_record(&mut earliest).await,
        (0, b"{\"n\":1}".to_vec())
    );

    let config = GroupConsumerConfig::new("readme-latest", &["readme"]);
    assert_eq!(config.consumer.offset_reset, OffsetReset::Latest);
    let mut latest = GroupConsumer::new(c.clone(), config).unwrap();
    // Joined and assigned; then, once its position is known (the log end, 1), a new record is
    // the first it sees. (Polls are cut short only after the join, while they fetch.)
    let assigned = tokio::time::timeout(Duration::from_secs(60), latest.poll()).await;
    assert!(
        matches!(assigned, Ok(Ok(GroupEvent::Assigned(_)))),
        "{assigned:?}"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while latest.partition_consumer().position("readme", 0).is_none() {
        assert!(tokio::time::Instant::now() < deadline, "no position");
        let _ = tokio::time::timeout(Duration::from_secs(1), latest.poll()).await;
    }
    assert_eq!(latest.partition_consumer().position("readme", 0), Some(1));
    assert_eq!(send("{\"n\":2}").await, 1);
    assert_eq!(first_record(&mut latest).await, (1, b"{\"n\":2}".to_vec()));
}
