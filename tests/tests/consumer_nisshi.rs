//! The partition consumer against a real broker, nisshi, with the records written by an
//! independent client, librdkafka (through the `rdkafka` crate): start positions, every codec,
//! records of a MiB and more, 64 partitions, empty and null keys and values, headers,
//! read_committed, out-of-range positions under each reset policy, and recovery
//! from a broker that is killed and restarted, or that stops answering, mid-consume.
//!
//! Protocol paths nisshi cannot be made to take (fetch session eviction and epoch errors, nisshi
//! having no sessions; leadership errors; pre-KIP-74 cut-off batches; corrupt batches;
//! transaction markers, nisshi having no transactions) are covered by the consumer's unit tests
//! against a scripted broker in kingest-client.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kingest_client::consumer::{
    ConsumerConfig, IsolationLevel, OffsetReset, PartitionConsumer, StartAt,
};
use kingest_client::{Client, ClientConfig, ClientError};
use kingest_protocol::kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kingest_protocol::kafka_protocol::messages::{DeleteRecordsRequest, TopicName};
use kingest_protocol::kafka_protocol::protocol::StrBytes;
use kingest_protocol::record::Compression;
use kingest_protocol::ErrorCode;
use kingest_tests::clients::librdkafka::{batch_of, produce_into, produce_now, rec, Rec};
use kingest_tests::clients::{owned_headers, Headers};
use kingest_tests::peers::nisshi::{Nisshi, NisshiOptions};

/// A record as consumed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Got {
    partition: i32,
    offset: i64,
    timestamp: i64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Headers,
}

async fn client(broker: &Nisshi, request_timeout: Duration) -> Client {
    let mut config = ClientConfig::new(&broker.addr());
    config.connection.request_timeout = request_timeout;
    Client::connect(config).await.expect("connect to nisshi")
}

async fn consumer(broker: &Nisshi, config: ConsumerConfig) -> PartitionConsumer {
    PartitionConsumer::new(client(broker, Duration::from_secs(10)).await, config).expect("consumer")
}

fn got(fetched: &kingest_client::consumer::Fetched) -> Vec<Got> {
    fetched
        .records()
        .map(|r| Got {
            partition: r.partition,
            offset: r.offset,
            timestamp: r.timestamp,
            key: r.key.map(<[u8]>::to_vec),
            value: r.value.map(<[u8]>::to_vec),
            headers: owned_headers(r.headers),
        })
        .collect()
}

/// Polls until `n` records came, failing on any error or after `within`.
async fn consume(c: &mut PartitionConsumer, n: usize, within: Duration) -> Vec<Got> {
    let deadline = Instant::now() + within;
    let mut out = Vec::new();
    while out.len() < n {
        assert!(
            Instant::now() < deadline,
            "only {} of {n} records within {within:?}",
            out.len()
        );
        let fetched = c
            .poll_timeout(Duration::from_millis(500))
            .await
            .expect("poll");
        out.extend(got(&fetched));
    }
    out
}

fn values(records: &[Got]) -> Vec<String> {
    records
        .iter()
        .map(|r| String::from_utf8(r.value.clone().unwrap_or_default()).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starts_at_earliest_latest_offset_and_timestamp() {
    let broker = Nisshi::start();
    broker.create_topic("starts", 1);
    let base = 1_700_000_000_000;
    let recs: Vec<Rec> = (0..10)
        .map(|i| Rec {
            timestamp: Some(base + i * 1_000),
            ..rec(0, &format!("r{i}"))
        })
        .collect();
    produce_now(&broker.addr(), "starts", Compression::None, &recs);
    let all: Vec<String> = (0..10).map(|i| format!("r{i}")).collect();

    let mut c = consumer(&broker, ConsumerConfig::default()).await;
    c.assign(&[("starts", 0, StartAt::Earliest)]).await.unwrap();
    let records = consume(&mut c, 10, Duration::from_secs(20)).await;
    assert_eq!(values(&records), all);
    assert_eq!(
        records.iter().map(|r| r.offset).collect::<Vec<_>>(),
        (0..10).collect::<Vec<_>>()
    );
    assert_eq!(records[3].timestamp, base + 3_000);
    assert_eq!(records[3].key.as_deref(), Some(&b"key-r3"[..]));
    assert_eq!(
        (
            c.position("starts", 0),
            c.high_watermark("starts", 0),
            c.lag("starts", 0)
        ),
        (Some(10), Some(10), Some(0))
    );

    c.seek_to("starts", 0, StartAt::Offset(4)).unwrap();
    assert_eq!(
        values(&consume(&mut c, 6, Duration::from_secs(20)).await),
        all[4..]
    );

    c.seek_to("starts", 0, StartAt::Timestamp(base + 6_000))
        .unwrap();
    assert_eq!(
        values(&consume(&mut c, 4, Duration::from_secs(20)).await),
        all[6..]
    );
    c.seek_to("starts", 0, StartAt::Timestamp(base + 5_500))
        .unwrap();
    assert_eq!(
        values(&consume(&mut c, 4, Duration::from_secs(20)).await),
        all[6..],
        "the first record at or after it"
    );

    // Past the last record: the log end.
    c.seek_to("starts", 0, StartAt::Timestamp(base + 60_000))
        .unwrap();
    assert!(c
        .poll_timeout(Duration::from_secs(1))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(c.position("starts", 0), Some(10));

    // Latest: only what is written afterwards.
    let mut latest = consumer(&broker, ConsumerConfig::default()).await;
    latest
        .assign(&[("starts", 0, StartAt::Latest)])
        .await
        .unwrap();
    assert!(latest
        .poll_timeout(Duration::from_secs(1))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(latest.position("starts", 0), Some(10));
    produce_now(
        &broker.addr(),
        "starts",
        Compression::None,
        &[rec(0, "after")],
    );
    let after = consume(&mut latest, 1, Duration::from_secs(20)).await;
    assert_eq!(
        (after[0].offset, values(&after)),
        (10, vec!["after".to_owned()])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_codec() {
    let broker = Nisshi::start();
    for codec in Compression::ALL {
        let topic = format!("codec-{}", codec.name());
        broker.create_topic(&topic, 1);
        let recs: Vec<Rec> = (0..2_000)
            .map(|i| rec(0, &format!("{codec} record {i} {}", "x".repeat(i % 50))))
            .collect();
        produce_now(&broker.addr(), &topic, codec, &recs);
        let mut c = consumer(&broker, ConsumerConfig::default()).await;
        c.assign(&[(topic.as_str(), 0, StartAt::Earliest)])
            .await
            .unwrap();
        let mut records = Vec::new();
        let mut codecs = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while records.len() < recs.len() {
            assert!(
                Instant::now() < deadline,
                "{codec}: {} of {}",
                records.len(),
                recs.len()
            );
            let fetched = c.poll_timeout(Duration::from_millis(500)).await.unwrap();
            for p in fetched.partitions() {
                codecs.extend(
                    p.raw_batches()
                        .iter()
                        .map(|b| b.header().compression().unwrap()),
                );
                assert_eq!(p.raw_batches().len(), p.batches().len());
            }
            records.extend(got(&fetched));
        }
        let want: Vec<String> = recs
            .iter()
            .map(|r| String::from_utf8(r.value.clone().unwrap()).unwrap())
            .collect();
        assert_eq!(values(&records), want, "{codec}");
        assert!(
            codecs.iter().all(|c| *c == codec),
            "{codec}: the broker kept the producer's batches: {codecs:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_of_a_mebibyte_and_more() {
    let broker = Nisshi::start();
    broker.cli(&[
        "topic",
        "create",
        "large",
        "--partitions",
        "1",
        "--config",
        "max.message.bytes=20000000",
    ]);
    let sizes = [1 << 20, 3 << 20, 10, (1 << 20) + 1];
    let recs: Vec<Rec> = sizes
        .iter()
        .enumerate()
        .map(|(i, &n)| Rec {
            partition: 0,
            key: None,
            value: Some(vec![b'a' + i as u8; n]),
            ..Rec::default()
        })
        .collect();
    produce_now(&broker.addr(), "large", Compression::None, &recs);

    let mut big = ConsumerConfig::default();
    big.max_partition_fetch_bytes = 4 << 20;
    big.fetch_max_bytes = 16 << 20;
    let mut c = consumer(&broker, big).await;
    c.assign(&[("large", 0, StartAt::Earliest)]).await.unwrap();
    let records = consume(&mut c, 4, Duration::from_secs(30)).await;
    for (r, (i, &n)) in records.iter().zip(sizes.iter().enumerate()) {
        let v = r.value.as_ref().unwrap();
        assert_eq!(
            (v.len(), v[0], v[n - 1]),
            (n, b'a' + i as u8, b'a' + i as u8)
        );
    }

    // With the default 1 MiB limit: nisshi, like every broker since Fetch v3 (KIP-74), returns a
    // larger first batch whole, so the records still come. (The error for brokers that cut it
    // instead, FetchTooLarge, is tested against a scripted pre-KIP-74 broker in kingest-client.)
    let mut c = consumer(&broker, ConsumerConfig::default()).await;
    c.assign(&[("large", 0, StartAt::Earliest)]).await.unwrap();
    let records = consume(&mut c, 4, Duration::from_secs(30)).await;
    assert_eq!(
        records
            .iter()
            .map(|r| r.value.as_ref().unwrap().len())
            .collect::<Vec<_>>(),
        sizes
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_partitions_all_consumed() {
    let broker = Nisshi::start();
    broker.create_topic("wide", 64);
    let recs: Vec<Rec> = (0..64)
        .flat_map(|p| (0..25).map(move |i| rec(p, &format!("p{p}-{i}"))))
        .collect();
    produce_now(&broker.addr(), "wide", Compression::Lz4, &recs);
    let mut c = consumer(&broker, ConsumerConfig::default()).await;
    let all: Vec<(&str, i32, StartAt)> = (0..64).map(|p| ("wide", p, StartAt::Earliest)).collect();
    c.assign(&all).await.unwrap();
    let records = consume(&mut c, 64 * 25, Duration::from_secs(60)).await;
    let mut by_partition: BTreeMap<i32, Vec<(i64, String)>> = BTreeMap::new();
    for r in &records {
        by_partition.entry(r.partition).or_default().push((
            r.offset,
            String::from_utf8(r.value.clone().unwrap()).unwrap(),
        ));
    }
    assert_eq!(by_partition.len(), 64);
    for (p, got) in by_partition {
        let want: Vec<(i64, String)> = (0..25).map(|i| (i, format!("p{p}-{i}"))).collect();
        assert_eq!(got, want, "partition {p}");
        assert_eq!(
            (c.position("wide", p), c.lag("wide", p)),
            (Some(25), Some(0))
        );
    }
    // Nothing more, and no duplicate from a prefetch.
    assert!(c
        .poll_timeout(Duration::from_secs(1))
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_and_null_keys_and_values_and_headers() {
    let broker = Nisshi::start();
    broker.create_topic("shapes", 1);
    let header = |k: &str, v: Option<&str>| (k.to_owned(), v.map(|v| v.as_bytes().to_vec()));
    let recs = vec![
        Rec {
            key: None,
            value: None,
            ..Rec::default()
        },
        Rec {
            key: Some(Vec::new()),
            value: Some(Vec::new()),
            ..Rec::default()
        },
        Rec {
            key: Some(b"k".to_vec()),
            value: None,
            ..Rec::default()
        },
        Rec {
            key: None,
            value: Some(b"v".to_vec()),
            ..Rec::default()
        },
        Rec {
            key: Some(b"h".to_vec()),
            value: Some(b"with headers".to_vec()),
            headers: vec![
                header("trace", Some("abc")),
                header("empty", Some("")),
                header("null", None),
                header("trace", Some("again")),
            ],
            ..Rec::default()
        },
    ];
    produce_now(&broker.addr(), "shapes", Compression::Snappy, &recs);
    let mut c = consumer(&broker, ConsumerConfig::default()).await;
    c.assign(&[("shapes", 0, StartAt::Earliest)]).await.unwrap();
    let records = consume(&mut c, recs.len(), Duration::from_secs(20)).await;
    for (r, want) in records.iter().zip(&recs) {
        assert_eq!(
            (&r.key, &r.value, &r.headers),
            (&want.key, &want.value, &want.headers),
            "offset {}",
            r.offset
        );
    }
}

/// Deletes the records of `topic`-0 below `offset` (DeleteRecords), so that positions below it
/// are out of range.
async fn delete_records_before(client: &Client, topic: &str, offset: i64) {
    let (_, conn) = client.leader(topic, 0).await.unwrap();
    let request = DeleteRecordsRequest::default()
        .with_timeout_ms(10_000)
        .with_topics(vec![DeleteRecordsTopic::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
            .with_partitions(vec![DeleteRecordsPartition::default()
                .with_partition_index(0)
                .with_offset(offset)])]);
    let response = conn.send(&request).await.expect("DeleteRecords");
    let p = &response.topics[0].partitions[0];
    assert_eq!(
        (ErrorCode::from_code(p.error_code), p.low_watermark),
        (ErrorCode::None, offset)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offset_out_of_range_under_each_reset_policy() {
    let broker = Nisshi::start();
    broker.create_topic("range", 1);
    let recs: Vec<Rec> = (0..10).map(|i| rec(0, &format!("r{i}"))).collect();
    produce_now(&broker.addr(), "range", Compression::None, &recs);
    delete_records_before(&client(&broker, Duration::from_secs(10)).await, "range", 5).await;

    let policy = |offset_reset| {
        let mut config = ConsumerConfig::default();
        config.offset_reset = offset_reset;
        config
    };
    let mut earliest = consumer(&broker, policy(OffsetReset::Earliest)).await;
    earliest
        .assign(&[("range", 0, StartAt::Offset(2))])
        .await
        .unwrap();
    let records = consume(&mut earliest, 5, Duration::from_secs(20)).await;
    assert_eq!(
        records.iter().map(|r| r.offset).collect::<Vec<_>>(),
        vec![5, 6, 7, 8, 9]
    );
    assert_eq!(earliest.log_start_offset("range", 0), Some(5));

    let mut latest = consumer(&broker, policy(OffsetReset::Latest)).await;
    latest
        .assign(&[("range", 0, StartAt::Offset(2))])
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while latest.position("range", 0) != Some(10) {
        assert!(
            Instant::now() < deadline,
            "no reset to the log end: {:?}",
            latest.position("range", 0)
        );
        assert!(latest
            .poll_timeout(Duration::from_millis(200))
            .await
            .unwrap()
            .is_empty());
    }
    produce_now(&broker.addr(), "range", Compression::None, &[rec(0, "r10")]);
    let records = consume(&mut latest, 1, Duration::from_secs(20)).await;
    assert_eq!(
        (records[0].offset, values(&records)),
        (10, vec!["r10".to_owned()])
    );

    let mut strict = consumer(&broker, policy(OffsetReset::Error)).await;
    strict
        .assign(&[("range", 0, StartAt::Offset(2))])
        .await
        .unwrap();
    let err = tokio::time::timeout(Duration::from_secs(20), strict.poll())
        .await
        .expect("an answer")
        .unwrap_err();
    assert!(
        matches!(&err, ClientError::OffsetOutOfRange { topic, partition: 0, offset: 2 } if topic == "range"),
        "{err}"
    );
    assert!(
        err.to_string().contains("range-0") && err.to_string().contains('2'),
        "{err}"
    );
    assert_eq!(
        strict.position("range", 0),
        Some(2),
        "the position is the caller's to move"
    );
    strict.seek("range", 0, 7).unwrap();
    let records = consume(&mut strict, 4, Duration::from_secs(20)).await;
    assert_eq!(
        records.iter().map(|r| r.offset).collect::<Vec<_>>(),
        vec![7, 8, 9, 10]
    );
}

/// Consumes `topic` while `disrupt` runs on another thread, then produces `after` more records
/// and checks every (partition, offset) arrived exactly once, in order, with the produced value.
async fn consume_through<T>(
    c: &mut PartitionConsumer,
    addr: &str,
    topic: &str,
    produced: &mut BTreeMap<(i32, i64), Vec<u8>>,
    progress: &AtomicUsize,
    disrupt: std::thread::JoinHandle<T>,
    after: &[Rec],
) -> T {
    let mut seen: BTreeMap<(i32, i64), Vec<u8>> = BTreeMap::new();
    let mut next: BTreeMap<i32, i64> = BTreeMap::new();
    let mut check = |records: Vec<Got>, seen: &mut BTreeMap<(i32, i64), Vec<u8>>| {
        for r in records {
            let expected = next.entry(r.partition).or_insert(0);
            assert_eq!(
                r.offset, *expected,
                "partition {}: a gap or a duplicate",
                r.partition
            );
            *expected += 1;
            seen.insert((r.partition, r.offset), r.value.unwrap());
        }
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    // Slowly, like a caller with real work per record, so that the disruption lands mid-consume.
    while !disrupt.is_finished() {
        assert!(Instant::now() < deadline, "the disruption never ended");
        let fetched = c
            .poll_timeout(Duration::from_millis(200))
            .await
            .expect("retriable errors are not returned");
        check(got(&fetched), &mut seen);
        progress.store(seen.len(), Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let disrupted = disrupt.join().expect("disruption thread");
    produce_into(addr, topic, Compression::Zstd, after, produced);
    while seen.len() < produced.len() {
        assert!(
            Instant::now() < deadline,
            "{} of {} records after recovery",
            seen.len(),
            produced.len()
        );
        let fetched = c
            .poll_timeout(Duration::from_millis(500))
            .await
            .expect("poll after recovery");
        check(got(&fetched), &mut seen);
    }
    assert_eq!(&seen, produced, "every record exactly once");
    disrupted
}

/// Runs `disruption` on a thread once `progress` (records consumed) reaches `from`, and returns
/// how many had been consumed when it started, with what it returns.
fn disrupt_at<T: Send + 'static>(
    progress: &Arc<AtomicUsize>,
    from: usize,
    disruption: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<(usize, T)> {
    let progress = progress.clone();
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(60);
        while progress.load(Ordering::SeqCst) < from && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let at = progress.load(Ordering::SeqCst);
        (at, disruption())
    })
}

/// A consumer with small fetches (4 KiB a partition), so that consuming takes many of them,
/// and requests timing out after `request_timeout`.
async fn small_fetch_consumer(broker: &Nisshi, request_timeout: Duration) -> PartitionConsumer {
    let mut config = ConsumerConfig::default();
    config.max_partition_fetch_bytes = 4_096;
    PartitionConsumer::new(client(broker, request_timeout).await, config).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_killed_and_restarted_mid_consume() {
    // sqlite storage: a restarted broker still has the records (memory storage would not).
    let mut broker = Nisshi::start_with(NisshiOptions {
        sqlite: Some("kingest.db".to_owned()),
        ..Default::default()
    });
    broker.create_topic("restart", 4);
    let addr = broker.addr();
    let first = batch_of(4, 0, 4_000);
    let mut produced = BTreeMap::new();
    produce_into(&addr, "restart", Compression::Lz4, &first, &mut produced);
    let mut c = small_fetch_consumer(&broker, Duration::from_secs(5)).await;
    let all: Vec<(&str, i32, StartAt)> =
        (0..4).map(|p| ("restart", p, StartAt::Earliest)).collect();
    c.assign(&all).await.unwrap();
    let pid = broker.pid().unwrap();
    let progress = Arc::new(AtomicUsize::new(0));
    let disrupt = disrupt_at(&progress, 1_000, move || {
        broker.kill();
        std::thread::sleep(Duration::from_secs(2));
        broker.restart();
        broker
    });
    let (at, broker) = consume_through(
        &mut c,
        &addr,
        "restart",
        &mut produced,
        &progress,
        disrupt,
        &batch_of(4, 4_000, 400),
    )
    .await;
    assert!(
        at < first.len(),
        "killed mid-consume: {at} of {} consumed",
        first.len()
    );
    assert_ne!(
        broker.pid(),
        Some(pid),
        "consumed across two broker processes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_that_stops_answering() {
    let broker = Nisshi::start();
    broker.create_topic("frozen", 2);
    let addr = broker.addr();
    let first = batch_of(2, 0, 3_000);
    let mut produced = BTreeMap::new();
    produce_into(&addr, "frozen", Compression::Gzip, &first, &mut produced);
    let mut c = small_fetch_consumer(&broker, Duration::from_secs(2)).await;
    c.assign(&[
        ("frozen", 0, StartAt::Earliest),
        ("frozen", 1, StartAt::Earliest),
    ])
    .await
    .unwrap();
    let pid = broker.pid().unwrap().to_string();
    let progress = Arc::new(AtomicUsize::new(0));
    let disrupt = disrupt_at(&progress, 1_000, move || {
        // SIGSTOP: connections stay open, nothing answers; the 2 s request timeout fires, the
        // consumer reconnects (the kernel still accepts) and times out again until SIGCONT.
        assert!(std::process::Command::new("kill")
            .args(["-STOP", &pid])
            .status()
            .unwrap()
            .success());
        std::thread::sleep(Duration::from_secs(5));
        assert!(std::process::Command::new("kill")
            .args(["-CONT", &pid])
            .status()
            .unwrap()
            .success());
    });
    let (at, ()) = consume_through(
        &mut c,
        &addr,
        "frozen",
        &mut produced,
        &progress,
        disrupt,
        &batch_of(2, 3_000, 300),
    )
    .await;
    assert!(
        at < first.len(),
        "frozen mid-consume: {at} of {} consumed",
        first.len()
    );
    drop(broker);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_committed_reads_to_the_last_stable_offset() {
    // nisshi refuses transactional producers and client-written control batches, so there are
    // no transaction markers to meet here; the consumer's unit tests cover control batches.
    let broker = Nisshi::start();
    broker.create_topic("committed", 1);
    let recs: Vec<Rec> = (0..50).map(|i| rec(0, &format!("r{i}"))).collect();
    produce_now(&broker.addr(), "committed", Compression::Zstd, &recs);
    for isolation_level in [
        IsolationLevel::ReadUncommitted,
        IsolationLevel::ReadCommitted,
    ] {
        let mut c = consumer(&broker, {
            let mut config = ConsumerConfig::default();
            config.isolation_level = isolation_level;
            config
        })
        .await;
        c.assign(&[("committed", 0, StartAt::Earliest)])
            .await
            .unwrap();
        let mut records = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while records.len() < 50 {
            assert!(
                Instant::now() < deadline,
                "{isolation_level:?}: {} records",
                records.len()
            );
            let fetched = c.poll_timeout(Duration::from_millis(500)).await.unwrap();
            for p in fetched.partitions() {
                assert_eq!(
                    (p.high_watermark(), p.last_stable_offset()),
                    (50, 50),
                    "{isolation_level:?}"
                );
                assert!(p.aborted_transactions().is_empty());
                assert!(p.batches().iter().all(|b| !b.header().is_control()));
            }
            records.extend(got(&fetched));
        }
        assert_eq!(
            values(&records),
            recs.iter()
                .map(|r| String::from_utf8(r.value.clone().unwrap()).unwrap())
                .collect::<Vec<_>>()
        );
        assert_eq!(
            (c.last_stable_offset("committed", 0), c.lag("committed", 0)),
            (Some(50), Some(0))
        );
    }
}
