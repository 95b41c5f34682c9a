//! Consumer tests against the scripted broker in [`fake`]: the protocol paths a real broker
//! rarely or never takes on demand (session eviction and epoch errors, leadership errors, brokers
//! without sessions, pre-KIP-74 cut-off batches, corrupt batches), checked end to end through
//! `poll`, including what the consumer put in each request.

mod fake;

use std::time::Duration;

use bytes::BytesMut;
use kingest_protocol::record::{BatchBuilder, BatchOptions};
use kingest_protocol::ErrorCode;

use super::*;
use crate::client::ClientConfig;
use fake::{batches, Fake, TOPIC};

async fn consumer(fake: &Fake, config: ConsumerConfig) -> PartitionConsumer {
    let mut c = ClientConfig::new(&fake.addr);
    c.retry_backoff = Duration::from_millis(5);
    c.reconnect_backoff = Duration::from_millis(5);
    c.reconnect_backoff_max = Duration::from_millis(50);
    c.connection.request_timeout = Duration::from_secs(5);
    let client = Client::connect(c)
        .await
        .expect("connect to the fake broker");
    PartitionConsumer::new(client, config).expect("consumer")
}

/// Polls until `n` records came (or 10 s passed), returning (partition, offset, value).
async fn take(c: &mut PartitionConsumer, n: usize) -> Vec<(i32, i64, String)> {
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while out.len() < n && Instant::now() < deadline {
        let fetched = c
            .poll_timeout(Duration::from_millis(200))
            .await
            .expect("poll");
        for r in fetched.records() {
            out.push((
                r.partition,
                r.offset,
                String::from_utf8(r.value.unwrap().to_vec()).unwrap(),
            ));
        }
    }
    out
}

fn expected(partition: i32, from: i64, to: i64) -> Vec<(i32, i64, String)> {
    (from..to)
        .map(|o| (partition, o, format!("v{o}")))
        .collect()
}

#[tokio::test]
async fn sessions_carry_only_changes_and_survive_eviction_and_epoch_errors() {
    let fake = Fake::start(3).await;
    fake.with(|s| s.logs.insert(0, batches(0, 30, 10)));
    // A small partition limit: one batch per fetch, so that there are several fetches.
    let mut c = consumer(
        &fake,
        ConsumerConfig {
            max_partition_fetch_bytes: 100,
            ..Default::default()
        },
    )
    .await;
    c.assign(&[
        (TOPIC, 0, StartAt::Earliest),
        (TOPIC, 1, StartAt::Earliest),
        (TOPIC, 2, StartAt::Earliest),
    ])
    .await
    .unwrap();
    assert_eq!(take(&mut c, 30).await, expected(0, 0, 30));

    let fetches = fake.with(|s| s.fetches.clone());
    let (_, first) = &fetches[0];
    assert_eq!(
        (first.session_id, first.session_epoch),
        (0, 0),
        "the first fetch asks for a session"
    );
    assert_eq!(first.topics[0].partitions.len(), 3);
    let (_, second) = &fetches[1];
    assert_eq!(second.session_epoch, 1, "then incremental fetches");
    let sent: Vec<i32> = second
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| p.partition))
        .collect();
    assert_eq!(
        sent,
        vec![0],
        "only the partition whose position moved is sent"
    );
    assert!(fetches[2..].iter().all(|(_, r)| r.session_epoch > 0));

    // The broker evicts the session: the consumer starts a new one with a full fetch and loses
    // nothing.
    let session = fake.with(|s| {
        s.evict_session();
        s.logs.get_mut(&0).unwrap().extend(batches(30, 40, 10));
        s.fetches.clear();
        s.session_id()
    });
    assert_eq!(session, None);
    assert_eq!(take(&mut c, 10).await, expected(0, 30, 40));
    let fetches = fake.with(|s| s.fetches.clone());
    assert!(
        fetches
            .iter()
            .any(|(_, r)| (r.session_id, r.session_epoch) == (0, 0)
                && r.topics[0].partitions.len() == 3),
        "a new full fetch after FETCH_SESSION_ID_NOT_FOUND"
    );

    // Epochs out of step: the consumer closes its session and opens a new one.
    let old = fake.with(|s| {
        s.fetch_errors
            .push_back(ErrorCode::InvalidFetchSessionEpoch);
        s.logs.get_mut(&1).unwrap().extend(batches(0, 5, 5));
        s.fetches.clear();
        s.session_id().unwrap()
    });
    assert_eq!(take(&mut c, 5).await, expected(1, 0, 5));
    let fetches = fake.with(|s| s.fetches.clone());
    assert!(
        fetches
            .iter()
            .any(|(_, r)| (r.session_id, r.session_epoch) == (old, 0)),
        "closes session {old} and asks for a new one"
    );
    assert_eq!(c.position(TOPIC, 1), Some(5));
    assert_eq!(c.high_watermark(TOPIC, 0), Some(40));
    assert_eq!(c.lag(TOPIC, 0), Some(0));
}

#[tokio::test]
async fn brokers_without_sessions_get_full_sessionless_fetches() {
    let fake = Fake::start(2).await;
    fake.with(|s| {
        s.max_fetch_version = 6;
        s.logs.insert(1, batches(0, 20, 4));
    });
    let mut c = consumer(
        &fake,
        ConsumerConfig {
            max_partition_fetch_bytes: 100,
            ..Default::default()
        },
    )
    .await;
    c.assign(&[
        (TOPIC, 0, StartAt::Offset(0)),
        (TOPIC, 1, StartAt::Offset(0)),
    ])
    .await
    .unwrap();
    assert_eq!(take(&mut c, 20).await, expected(1, 0, 20));
    let fetches = fake.with(|s| s.fetches.clone());
    assert!(fetches.len() >= 2);
    for (version, r) in &fetches {
        assert_eq!(*version, 6);
        assert_eq!(
            r.topics[0].partitions.len(),
            2,
            "every partition in every request"
        );
    }

    // A broker at v12 that never creates a session: full fetches with epoch 0 each time.
    let fake = Fake::start(1).await;
    fake.with(|s| {
        s.sessions = false;
        s.logs.insert(0, batches(0, 6, 2));
    });
    let mut c = consumer(&fake, ConsumerConfig::default()).await;
    c.assign(&[(TOPIC, 0, StartAt::Earliest)]).await.unwrap();
    assert_eq!(take(&mut c, 6).await, expected(0, 0, 6));
    assert!(fake.with(|s| s
        .fetches
        .iter()
        .all(|(_, r)| r.session_epoch == 0 && r.topics[0].partitions.len() == 1)));
}

#[tokio::test]
async fn leadership_errors_refresh_metadata_and_retry() {
    let fake = Fake::start(1).await;
    fake.with(|s| {
        s.logs.insert(0, batches(0, 10, 5));
        s.partition_errors.extend([
            (0, ErrorCode::NotLeaderOrFollower),
            (0, ErrorCode::FencedLeaderEpoch),
        ]);
    });
    let mut c = consumer(&fake, ConsumerConfig::default()).await;
    c.assign(&[(TOPIC, 0, StartAt::Earliest)]).await.unwrap();
    let before = fake.with(|s| s.metadata_requests);
    assert_eq!(take(&mut c, 10).await, expected(0, 0, 10));
    assert!(
        fake.with(|s| s.metadata_requests) >= before + 2,
        "one refresh per leadership error"
    );
    let fetches = fake.with(|s| s.fetches.clone());
    assert!(fetches.iter().all(|(_, r)| r
        .topics
        .iter()
        .flat_map(|t| &t.partitions)
        .all(|p| p.current_leader_epoch == 5)));
}

#[tokio::test]
async fn out_of_range_follows_the_reset_policy() {
    let fake = Fake::start(1).await;
    fake.with(|s| {
        s.log_start = 10;
        s.logs.insert(0, batches(10, 20, 5));
    });
    for (reset, want) in [
        (OffsetReset::Earliest, Some(10)),
        (OffsetReset::Latest, Some(20)),
        (OffsetReset::Error, None),
    ] {
        let mut c = consumer(
            &fake,
            ConsumerConfig {
                offset_reset: reset,
                ..Default::default()
            },
        )
        .await;
        c.assign(&[(TOPIC, 0, StartAt::Offset(3))]).await.unwrap();
        match want {
            Some(10) => assert_eq!(take(&mut c, 10).await, expected(0, 10, 20)),
            Some(end) => {
                let fetched = c.poll_timeout(Duration::from_millis(300)).await.unwrap();
                assert!(fetched.is_empty());
                assert_eq!(c.position(TOPIC, 0), Some(end));
            }
            None => {
                let err = c.poll().await.unwrap_err();
                assert!(
                    matches!(&err, ClientError::OffsetOutOfRange { topic, partition: 0, offset: 3 } if topic == TOPIC),
                    "{err}"
                );
                assert_eq!(
                    c.position(TOPIC, 0),
                    Some(3),
                    "the position stays for the caller to decide"
                );
                c.seek(TOPIC, 0, 15).unwrap();
                assert_eq!(take(&mut c, 5).await, expected(0, 15, 20));
            }
        }
    }
}

#[tokio::test]
async fn start_positions_by_timestamp_and_latest() {
    let fake = Fake::start(1).await;
    fake.with(|s| s.logs.insert(0, batches(0, 10, 3)));
    let mut c = consumer(&fake, ConsumerConfig::default()).await;
    // Timestamps are 1000 + offset in the fake's log.
    c.assign(&[(TOPIC, 0, StartAt::Timestamp(1_004))])
        .await
        .unwrap();
    assert_eq!(
        take(&mut c, 6).await,
        expected(0, 4, 10),
        "records below the position are dropped from the first batch"
    );
    // Past the last record: the log end, as Java resets by timestamp.
    c.seek_to(TOPIC, 0, StartAt::Timestamp(5_000)).unwrap();
    assert!(c
        .poll_timeout(Duration::from_millis(200))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(c.position(TOPIC, 0), Some(10));
    c.seek_to(TOPIC, 0, StartAt::Latest).unwrap();
    assert!(c
        .poll_timeout(Duration::from_millis(200))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(c.position(TOPIC, 0), Some(10));
    fake.with(|s| s.logs.get_mut(&0).unwrap().extend(batches(10, 12, 2)));
    assert_eq!(take(&mut c, 2).await, expected(0, 10, 12));
    assert!(c.seek(TOPIC, 0, -1).is_err());
    assert!(matches!(
        c.seek(TOPIC, 9, 0),
        Err(ClientError::NotAssigned { partition: 9, .. })
    ));
}

#[tokio::test]
async fn a_batch_too_large_for_an_old_broker_is_reported_and_can_be_skipped() {
    let fake = Fake::start(1).await;
    let mut log = batches(0, 2, 2);
    let mut big = BatchBuilder::new(BatchOptions {
        base_offset: 2,
        ..Default::default()
    });
    big.push(1_002, None, Some(&vec![7u8; 5_000]), &[]);
    log.push(big.finish().unwrap());
    log.extend(batches(3, 5, 2));
    fake.with(|s| {
        s.cut_batches = true;
        s.logs.insert(0, log);
    });
    let mut c = consumer(
        &fake,
        ConsumerConfig {
            max_partition_fetch_bytes: 1_000,
            ..Default::default()
        },
    )
    .await;
    c.assign(&[(TOPIC, 0, StartAt::Earliest)]).await.unwrap();
    assert_eq!(take(&mut c, 2).await, expected(0, 0, 2));
    let err = c.poll().await.unwrap_err();
    match &err {
        ClientError::FetchTooLarge {
            topic,
            partition: 0,
            offset: 2,
            size,
            max: 1_000,
        } if topic == TOPIC => {
            assert!(*size > 5_000, "{size}");
        }
        other => panic!("expected FetchTooLarge, got {other}"),
    }
    assert_eq!(c.position(TOPIC, 0), Some(2));
    c.seek(TOPIC, 0, 3).unwrap();
    assert_eq!(take(&mut c, 2).await, expected(0, 3, 5));
}

#[tokio::test]
async fn a_corrupt_batch_stops_its_partition_at_the_batch_only() {
    let fake = Fake::start(2).await;
    let mut log = batches(0, 9, 3);
    let mut bad = BytesMut::from(&log[1][..]);
    let last = bad.len() - 1;
    bad[last] ^= 0x55;
    log[1] = bad.freeze();
    fake.with(|s| {
        s.logs.insert(0, log);
        s.logs.insert(1, batches(0, 4, 2));
    });
    let mut c = consumer(&fake, ConsumerConfig::default()).await;
    c.assign(&[(TOPIC, 0, StartAt::Earliest), (TOPIC, 1, StartAt::Earliest)])
        .await
        .unwrap();
    let mut got = Vec::new();
    let mut error = None;
    let deadline = Instant::now() + Duration::from_secs(5);
    while (got.len() < 7 || error.is_none()) && Instant::now() < deadline {
        match c.poll_timeout(Duration::from_millis(100)).await {
            Ok(f) => got.extend(f.records().map(|r| (r.partition, r.offset))),
            Err(e) => error = Some(e),
        }
    }
    got.sort();
    let want: Vec<(i32, i64)> = (0..3)
        .map(|o| (0, o))
        .chain((0..4).map(|o| (1, o)))
        .collect();
    assert_eq!(
        got, want,
        "the good batch before it and the other partition are consumed"
    );
    match error {
        Some(ClientError::CorruptRecord {
            topic,
            partition: 0,
            offset: 3,
            next_offset: Some(6),
            ..
        }) if topic == TOPIC => {}
        other => panic!("expected CorruptRecord at offset 3, got {other:?}"),
    }
    assert_eq!(
        c.position(TOPIC, 0),
        Some(3),
        "the position stays on the bad batch"
    );
    // Reported again later, not silently dropped.
    assert!(matches!(
        c.poll().await,
        Err(ClientError::CorruptRecord { .. })
    ));
    c.seek(TOPIC, 0, 6).unwrap();
    let rest: Vec<i64> = take(&mut c, 3).await.into_iter().map(|r| r.1).collect();
    assert_eq!(rest, vec![6, 7, 8]);
}

#[tokio::test]
async fn the_buffer_bounds_what_is_held_and_handed_out() {
    let fake = Fake::start(8).await;
    fake.with(|s| {
        for p in 0..8 {
            s.logs.insert(p, batches(0, 200, 50));
        }
    });
    let limit = 4_096;
    let config = ConsumerConfig {
        max_buffered_bytes: limit,
        max_partition_fetch_bytes: 2_048,
        ..Default::default()
    };
    let mut c = consumer(&fake, config).await;
    let all: Vec<(&str, i32, StartAt)> = (0..8).map(|p| (TOPIC, p, StartAt::Earliest)).collect();
    c.assign(&all).await.unwrap();
    let mut counts = [0usize; 8];
    let deadline = Instant::now() + Duration::from_secs(20);
    while counts.iter().sum::<usize>() < 1_600 && Instant::now() < deadline {
        let f = c.poll_timeout(Duration::from_millis(200)).await.unwrap();
        let handed: usize = f.partitions().iter().map(|p| p.size()).sum();
        assert!(
            f.partitions().len() <= 1 || handed <= limit,
            "a poll hands out at most the limit: {handed}"
        );
        assert!(
            c.buffered_bytes() <= 8 * 2_100,
            "held: {}",
            c.buffered_bytes()
        );
        for r in f.records() {
            assert_eq!(
                r.offset, counts[r.partition as usize] as i64,
                "in order, no gap, no repeat"
            );
            counts[r.partition as usize] += 1;
        }
    }
    assert_eq!(counts, [200; 8]);
}

#[tokio::test]
async fn control_batches_advance_the_position_without_yielding_records() {
    use kingest_protocol::record::ControlRecord;
    let fake = Fake::start(1).await;
    let mut log = batches(0, 3, 3);
    let marker = ControlRecord::marker(true, 1);
    let mut control = BatchBuilder::new(BatchOptions {
        base_offset: 3,
        control: true,
        transactional: true,
        producer_id: 4,
        producer_epoch: 0,
        ..Default::default()
    });
    control.push(
        1_003,
        Some(&marker.key_bytes()),
        Some(&marker.value_bytes()),
        &[],
    );
    log.push(control.finish().unwrap());
    fake.with(|s| s.logs.insert(0, log));
    let mut c = consumer(&fake, ConsumerConfig::default()).await;
    c.assign(&[(TOPIC, 0, StartAt::Earliest)]).await.unwrap();
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while c.position(TOPIC, 0) != Some(4) && Instant::now() < deadline {
        let f = c.poll_timeout(Duration::from_millis(100)).await.unwrap();
        seen.extend(f.records().map(|r| r.offset));
        assert!(f
            .partitions()
            .iter()
            .all(|p| p.aborted_transactions().is_empty()));
    }
    assert_eq!(seen, vec![0, 1, 2], "the commit marker is not a record");
    assert_eq!(
        c.position(TOPIC, 0),
        Some(4),
        "but the position moves past it"
    );
}

#[tokio::test]
async fn assign_checks_partitions_and_poll_needs_an_assignment() {
    let fake = Fake::start(1).await;
    let mut c = consumer(&fake, ConsumerConfig::default()).await;
    assert!(matches!(c.poll().await, Err(ClientError::Config(_))));
    let err = c
        .assign(&[(TOPIC, 3, StartAt::Earliest)])
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClientError::UnknownPartition { partition: 3, .. }),
        "{err}"
    );
    assert!(c.assignment().is_empty());
    assert!(c
        .assign(&[(TOPIC, 0, StartAt::Timestamp(-5))])
        .await
        .is_err());
    c.assign(&[(TOPIC, 0, StartAt::Latest)]).await.unwrap();
    assert_eq!(c.assignment(), vec![(TOPIC.to_owned(), 0)]);
    c.unassign(&[(TOPIC, 0)]);
    assert!(c.assignment().is_empty());
}
