//! The producer against a real broker, nisshi: every codec and acks mode, large records,
//! Java-compatible partitioning, null and empty fields, headers, idempotent producer ids and
//! sequences, flush and close, backpressure, and retries across a broker restart.
//!
//! Records are read back with plain Fetch requests over a `Connection` and decoded with the
//! protocol crate's `RecordSet` (`kingest_tests::clients::read_back`), so these tests depend on
//! nothing but the producer under test.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kingest_client::partitioner::{partition_for_key, Partitioner};
use kingest_client::producer::{
    Acks, DeliveryFuture, Producer, ProducerConfig, ProducerRecord, RecordMetadata,
};
use kingest_client::{Client, ClientConfig, ClientError};
use kingest_protocol::record::Compression;
use kingest_tests::clients::read_back::{assert_same, read_back, read_back_from, BatchInfo};
use kingest_tests::peers::nisshi::{Nisshi, NisshiOptions};

async fn connect(broker: &Nisshi) -> Client {
    Client::connect(ClientConfig::new(&broker.addr()))
        .await
        .expect("connect to nisshi")
}

/// Awaits every delivery report, panicking on a failure.
async fn delivered(futures: Vec<DeliveryFuture>) -> Vec<RecordMetadata> {
    let mut out = Vec::with_capacity(futures.len());
    for f in futures {
        out.push(f.await.expect("delivery"));
    }
    out
}

fn sample(topic: &str, partition: i32, i: usize) -> ProducerRecord {
    ProducerRecord {
        topic: topic.to_owned(),
        partition: Some(partition),
        key: Some(Bytes::from(format!("key-{i}"))),
        value: Some(Bytes::from(format!("value-{i}-").repeat(1 + i % 7))),
        headers: vec![("n".to_owned(), Some(Bytes::from(i.to_string())))],
        timestamp: Some(1_700_000_000_000 + i as i64),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_codec_and_acks_mode_round_trips() {
    let broker = Nisshi::start();
    // One partition per (codec, acks) pair.
    broker.create_topic("codecs", 15);
    let client = connect(&broker).await;
    let mut partition = 0;
    for codec in Compression::ALL {
        for acks in [Acks::None, Acks::Leader, Acks::All] {
            let producer = Producer::new(client.clone(), {
                let mut config = ProducerConfig::default();
                config.compression = codec;
                config.acks = acks;
                config.idempotence = acks == Acks::All;
                config.batch_size = 4096;
                config
            })
            .unwrap();
            let records: Vec<ProducerRecord> =
                (0..300).map(|i| sample("codecs", partition, i)).collect();
            let mut futures = Vec::new();
            for r in &records {
                futures.push(producer.send(r.clone()).await.unwrap());
            }
            let metadata = delivered(futures).await;
            for (i, md) in metadata.iter().enumerate() {
                assert_eq!((&*md.topic, md.partition), ("codecs", partition));
                assert_eq!(md.timestamp, records[i].timestamp.unwrap());
                if acks == Acks::None {
                    assert_eq!(md.offset, -1, "acks=0 has no offsets");
                } else {
                    assert_eq!(md.offset, i as i64, "{codec} acks {acks:?}");
                }
            }
            producer.close().await.unwrap();
            let stored = read_back(&client, "codecs", partition, records.len()).await;
            assert_eq!(stored.len(), records.len(), "{codec} acks {acks:?}");
            for (i, (s, r)) in stored.iter().zip(&records).enumerate() {
                assert_eq!(s.offset, i as i64);
                assert_same(s, r);
                assert_eq!(
                    s.batch.compression, codec,
                    "batches are stored as the producer compressed them"
                );
            }
            let batches: std::collections::BTreeSet<i64> =
                stored.iter().map(|s| s.batch.base_offset).collect();
            assert!(
                batches.len() > 1,
                "4 KiB batches: {codec} acks {acks:?} made {} batch(es)",
                batches.len()
            );
            partition += 1;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_records_and_too_large_ones() {
    let broker = Nisshi::start();
    broker.create_topic("large", 1);
    let client = connect(&broker).await;
    let producer = Producer::new(client.clone(), {
        let mut config = ProducerConfig::default();
        config.max_request_size = 4 << 20;
        config.compression = Compression::Lz4;
        config
    })
    .unwrap();
    let big: Vec<u8> = (0..(1536 * 1024)).map(|i| (i * 7 % 251) as u8).collect();
    let records = vec![
        ProducerRecord::new("large", "small before").with_timestamp(1),
        ProducerRecord::new("large", Bytes::from(big.clone()))
            .with_key("big")
            .with_timestamp(2),
        ProducerRecord::new("large", "small after").with_timestamp(3),
    ];
    let mut futures = Vec::new();
    for r in &records {
        futures.push(producer.send(r.clone()).await.unwrap());
    }
    // Larger than max_request_size: that record fails, alone.
    let huge = ProducerRecord::new("large", Bytes::from(vec![0u8; 5 << 20]));
    match producer.send(huge).await {
        Err(ClientError::RecordTooLarge {
            topic,
            limit,
            setting,
            ..
        }) => {
            assert_eq!(
                (topic.as_str(), limit, setting),
                ("large", 4 << 20, "max_request_size")
            );
        }
        other => panic!("expected RecordTooLarge, got {other:?}"),
    }
    let metadata = delivered(futures).await;
    assert_eq!(
        metadata.iter().map(|m| m.offset).collect::<Vec<_>>(),
        vec![0, 1, 2]
    );
    let stored = read_back(&client, "large", 0, 3).await;
    for (s, r) in stored.iter().zip(&records) {
        assert_same(s, r);
    }
    assert_eq!(stored[1].value.as_ref().map(Vec::len), Some(big.len()));
    producer.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyed_records_land_where_java_puts_them() {
    let broker = Nisshi::start();
    broker.create_topic("wide", 64);
    let client = connect(&broker).await;
    let producer = Producer::new(client.clone(), ProducerConfig::default()).unwrap();
    let mut futures = Vec::new();
    let mut keys = Vec::new();
    for i in 0..2000 {
        let key = format!("user-{i}");
        futures.push(
            producer
                .send(ProducerRecord::new("wide", format!("v{i}")).with_key(key.clone()))
                .await
                .unwrap(),
        );
        keys.push(key);
    }
    // An empty key is a key: it hashes too.
    futures.push(
        producer
            .send(ProducerRecord::new("wide", "empty key").with_key(Bytes::new()))
            .await
            .unwrap(),
    );
    keys.push(String::new());
    let metadata = delivered(futures).await;
    let mut per_partition: BTreeMap<i32, Vec<(i64, String)>> = BTreeMap::new();
    for (md, key) in metadata.iter().zip(&keys) {
        let expected = partition_for_key(key.as_bytes(), 64);
        assert_eq!(md.partition, expected, "key {key:?}");
        per_partition
            .entry(md.partition)
            .or_default()
            .push((md.offset, key.clone()));
    }
    assert!(
        per_partition.len() > 60,
        "2000 keys spread over nearly every partition"
    );
    for (partition, sent) in &per_partition {
        let stored = read_back(&client, "wide", *partition, sent.len()).await;
        assert_eq!(stored.len(), sent.len());
        for ((offset, key), s) in sent.iter().zip(&stored) {
            assert_eq!(
                (s.offset, s.key.as_deref()),
                (*offset, Some(key.as_bytes()))
            );
        }
    }

    // Keyless records stick to one partition per batch, and still all arrive.
    let sticky = Producer::new(client.clone(), {
        let mut config = ProducerConfig::default();
        config.batch_size = 1024;
        config
    })
    .unwrap();
    let mut futures = Vec::new();
    for i in 0..500 {
        futures.push(
            sticky
                .send(ProducerRecord::new("wide", format!("keyless {i:04}")))
                .await
                .unwrap(),
        );
    }
    let metadata = delivered(futures).await;
    let used: std::collections::BTreeSet<i32> = metadata.iter().map(|m| m.partition).collect();
    assert!(
        used.len() > 1,
        "the sticky partitioner moves on when a batch fills"
    );
    let runs = metadata
        .windows(2)
        .filter(|w| w[0].partition != w[1].partition)
        .count();
    assert!(
        runs < 100,
        "records stick to a partition for a whole batch ({runs} switches)"
    );

    // A user function decides; an explicit partition beats it.
    let custom = Producer::new(client.clone(), {
        let mut config = ProducerConfig::default();
        config.partitioner =
            Partitioner::custom(|r| r.value.map_or(0, |v| v.len() as i32) % r.num_partitions);
        config
    })
    .unwrap();
    let a = custom
        .send(ProducerRecord::new("wide", "abcde"))
        .await
        .unwrap()
        .await
        .unwrap();
    let b = custom
        .send(ProducerRecord::new("wide", "abcde").with_partition(9))
        .await
        .unwrap()
        .await
        .unwrap();
    assert_eq!((a.partition, b.partition), (5, 9));
    match custom
        .send(ProducerRecord::new("wide", "x").with_partition(64))
        .await
    {
        Err(ClientError::UnknownPartition { topic, partition }) => {
            assert_eq!((topic.as_str(), partition), ("wide", 64))
        }
        other => panic!("expected UnknownPartition, got {other:?}"),
    }
    for p in [producer, sticky, custom] {
        p.close().await.unwrap();
    }
}

#[tokio::test]
async fn null_and_empty_fields_and_headers_round_trip() {
    let broker = Nisshi::start();
    broker.create_topic("shapes", 1);
    let client = connect(&broker).await;
    let producer = Producer::new(client.clone(), {
        let mut config = ProducerConfig::default();
        config.compression = Compression::Zstd;
        config
    })
    .unwrap();
    let base = ProducerRecord {
        topic: "shapes".into(),
        partition: Some(0),
        timestamp: Some(42),
        ..ProducerRecord::default()
    };
    let records = vec![
        ProducerRecord {
            key: None,
            value: None,
            ..base.clone()
        },
        ProducerRecord {
            key: Some(Bytes::new()),
            value: Some(Bytes::new()),
            ..base.clone()
        },
        ProducerRecord {
            key: Some(Bytes::from_static(b"k")),
            value: None,
            ..base.clone()
        },
        ProducerRecord {
            key: None,
            value: Some(Bytes::from_static(b"v")),
            ..base.clone()
        },
        ProducerRecord {
            value: Some(Bytes::from_static(b"headers")),
            headers: vec![
                ("trace".into(), Some(Bytes::from_static(b"abc"))),
                ("null".into(), None),
                ("".into(), Some(Bytes::new())),
                ("trace".into(), Some(Bytes::from_static(b"repeated"))),
                ("ünïcödé".into(), Some(Bytes::from_static(&[0, 255, 1]))),
            ],
            ..base.clone()
        },
    ];
    let mut futures = Vec::new();
    for r in &records {
        futures.push(producer.send(r.clone()).await.unwrap());
    }
    delivered(futures).await;
    let stored = read_back(&client, "shapes", 0, records.len()).await;
    assert_eq!(stored.len(), records.len());
    for (s, r) in stored.iter().zip(&records) {
        assert_same(s, r);
    }
    producer.close().await.unwrap();
}

#[tokio::test]
async fn idempotent_batches_carry_producer_id_and_increasing_sequences() {
    let broker = Nisshi::start();
    broker.create_topic("idem", 2);
    let client = connect(&broker).await;
    let producer = Producer::new(client.clone(), {
        let mut config = ProducerConfig::default();
        config.batch_size = 512;
        config
    })
    .unwrap();
    let mut futures = Vec::new();
    for i in 0..400 {
        futures.push(
            producer
                .send(sample("idem", (i % 2) as i32, i))
                .await
                .unwrap(),
        );
    }
    delivered(futures).await;
    let pid = producer
        .producer_id()
        .expect("an idempotent producer has an id");
    assert!(pid.id >= 0 && pid.epoch >= 0, "{pid:?}");
    for partition in 0..2 {
        let stored = read_back(&client, "idem", partition, 200).await;
        let mut batches: Vec<BatchInfo> = stored.iter().map(|s| s.batch).collect();
        batches.dedup();
        assert!(batches.len() > 3, "512-byte batches");
        let mut expected_sequence = 0;
        for b in &batches {
            assert_eq!((b.producer_id, b.producer_epoch), (pid.id, pid.epoch));
            assert_eq!(
                b.base_sequence, expected_sequence,
                "sequences are contiguous per partition"
            );
            expected_sequence += b.records;
        }
        assert_eq!(expected_sequence, 200);
    }
    producer.close().await.unwrap();

    // Without idempotence there is no producer id.
    let plain = Producer::new(client.clone(), {
        let mut config = ProducerConfig::default();
        config.idempotence = false;
        config.acks = Acks::Leader;
        config
    })
    .unwrap();
    plain
        .send(sample("idem", 0, 1000))
        .await
        .unwrap()
        .await
        .unwrap();
    assert_eq!(plain.producer_id(), None);
    let stored = read_back(&client, "idem", 0, 201).await;
    let last = stored.last().unwrap().batch;
    assert_eq!((last.producer_id, last.base_sequence), (-1, -1));
    plain.close().await.unwrap();
}

#[tokio::test]
async fn flush_sends_lingering_records_and_close_stops_the_producer() {
    let broker = Nisshi::start();
    broker.create_topic("flush", 1);
    let client = connect(&broker).await;
    // A linger far longer than the test: only flush or close can send these.
    let producer = Producer::new(client.clone(), {
        let mut config = ProducerConfig::default();
        config.linger = Duration::from_secs(600);
        config
    })
    .unwrap();
    let mut futures = Vec::new();
    for i in 0..10 {
        futures.push(producer.send(sample("flush", 0, i)).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(producer.has_pending(), "nothing is sent before the linger");
    let started = Instant::now();
    producer.flush().await;
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(!producer.has_pending());
    let offsets: Vec<i64> = delivered(futures).await.iter().map(|m| m.offset).collect();
    assert_eq!(offsets, (0..10).collect::<Vec<_>>());

    // Close delivers what is still lingering, then refuses new records, on every clone.
    let clone = producer.clone();
    let late = clone.send(sample("flush", 0, 10)).await.unwrap();
    producer.close().await.unwrap();
    assert_eq!(late.await.unwrap().offset, 10);
    assert!(matches!(
        clone.send(sample("flush", 0, 11)).await,
        Err(ClientError::Closed)
    ));
    assert_eq!(read_back(&client, "flush", 0, 11).await.len(), 11);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tiny_buffer_applies_backpressure_and_still_delivers_everything() {
    let broker = Nisshi::start();
    broker.create_topic("pressure", 3);
    let client = connect(&broker).await;
    // Room for about 20 records: senders must wait for deliveries over and over.
    let producer = Producer::new(client.clone(), {
        let mut config = ProducerConfig::default();
        config.buffer_memory = 4096;
        config.linger = Duration::from_millis(50);
        config
    })
    .unwrap();
    let mut tasks = Vec::new();
    for t in 0..4 {
        let producer = producer.clone();
        tasks.push(tokio::spawn(async move {
            let mut futures = Vec::new();
            for i in 0..500 {
                let record =
                    ProducerRecord::new("pressure", vec![b'x'; 150]).with_key(format!("{t}-{i}"));
                futures.push(
                    producer
                        .send(record)
                        .await
                        .expect("send waits, it does not fail"),
                );
            }
            delivered(futures).await.len()
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    assert_eq!(total, 2000);
    let mut stored = 0;
    for p in 0..3 {
        let expected = (0..4)
            .flat_map(|t| (0..500).map(move |i| format!("{t}-{i}")))
            .filter(|k| partition_for_key(k.as_bytes(), 3) == p)
            .count();
        stored += read_back(&client, "pressure", p, expected).await.len();
    }
    assert_eq!(stored, 2000);
    producer.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_buffer_times_out_after_max_block_and_an_unknown_topic_too() {
    let mut broker = Nisshi::start();
    broker.create_topic("stuck", 1);
    let client = connect(&broker).await;
    let producer = Producer::new(client.clone(), {
        let mut config = ProducerConfig::default();
        config.buffer_memory = 1000;
        config.max_block = Duration::from_millis(300);
        config.delivery_timeout = Duration::from_secs(2);
        config
    })
    .unwrap();
    let missing = producer
        .send(ProducerRecord::new("no-such-topic", "x"))
        .await;
    assert!(
        matches!(missing, Err(ClientError::SendTimeout { ref topic, .. }) if topic == "no-such-topic"),
        "{missing:?}"
    );
    // Learn the topic, then take the broker away: the buffered record cannot leave.
    producer
        .send(ProducerRecord::new("stuck", "warm up"))
        .await
        .unwrap()
        .await
        .unwrap();
    broker.kill();
    let first = producer
        .send(ProducerRecord::new("stuck", vec![0u8; 700]))
        .await
        .unwrap();
    let started = Instant::now();
    match producer
        .send(ProducerRecord::new("stuck", vec![0u8; 700]))
        .await
    {
        Err(ClientError::SendTimeout { topic, reason, .. }) => {
            assert_eq!(topic, "stuck");
            assert!(reason.contains("buffer memory"), "{reason}");
            assert!(started.elapsed() >= Duration::from_millis(250));
        }
        other => panic!("expected a SendTimeout, got {other:?}"),
    }
    // With no broker the first record expires after delivery_timeout, with the last cause.
    match first.await {
        Err(ClientError::DeliveryTimeout {
            topic,
            partition,
            last_error,
            ..
        }) => {
            assert_eq!((topic.as_str(), partition), ("stuck", 0));
            assert!(last_error.is_some());
        }
        other => panic!("expected a DeliveryTimeout, got {other:?}"),
    }
    // Its memory came back: a send fits again (and expires in turn).
    let again = producer
        .send(ProducerRecord::new("stuck", vec![0u8; 700]))
        .await
        .unwrap();
    assert!(matches!(
        again.await,
        Err(ClientError::DeliveryTimeout { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_sent_while_the_broker_is_down_arrive_once_after_it_returns() {
    let mut broker = Nisshi::start_with(NisshiOptions {
        sqlite: Some("data.db".into()),
        ..NisshiOptions::default()
    });
    broker.create_topic("restart", 2);
    let client = connect(&broker).await;
    let producer = Producer::new(client.clone(), {
        let mut config = ProducerConfig::default();
        config.retry_backoff_max = Duration::from_millis(200);
        config
    })
    .unwrap();
    let mut futures = Vec::new();
    for i in 0..100 {
        futures.push(
            producer
                .send(sample("restart", (i % 2) as i32, i))
                .await
                .unwrap(),
        );
    }
    delivered(std::mem::take(&mut futures)).await;
    broker.kill();
    let mut sent = Vec::new();
    for i in 100..200 {
        let r = sample("restart", (i % 2) as i32, i);
        futures.push(producer.send(r.clone()).await.unwrap());
        sent.push(r);
    }
    // Let the sends fail and back off a few times before the broker comes back.
    tokio::time::sleep(Duration::from_millis(700)).await;
    broker.restart();
    let metadata = delivered(futures).await;
    for p in 0..2 {
        let offsets: Vec<i64> = metadata
            .iter()
            .filter(|m| m.partition == p)
            .map(|m| m.offset)
            .collect();
        assert_eq!(
            offsets,
            (50..100).collect::<Vec<_>>(),
            "partition {p}: in order, no gaps"
        );
        // nisshi 0.8.1's sqlite storage keeps the offsets across a SIGKILL but serves only the
        // batches written after the restart, so those are what is checked; the high watermark
        // says nothing was written twice.
        let (stored, high_watermark) = read_back_from(&client, "restart", p, 50, 50).await;
        assert_eq!(
            high_watermark,
            100,
            "exactly once; broker log:\n{}",
            broker.log()
        );
        let expected: Vec<&ProducerRecord> =
            sent.iter().filter(|r| r.partition == Some(p)).collect();
        assert_eq!(stored.len(), expected.len());
        for (s, r) in stored.iter().zip(expected) {
            assert_same(s, r);
        }
    }
    producer.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_that_lost_the_producer_state_gets_a_new_epoch_and_sequences_from_zero() {
    let mut broker = Nisshi::start();
    broker.create_topic("bump", 1);
    let client = connect(&broker).await;
    let producer = Producer::new(client.clone(), {
        let mut config = ProducerConfig::default();
        config.batch_size = 300;
        config
    })
    .unwrap();
    let mut futures = Vec::new();
    for i in 0..20 {
        futures.push(producer.send(sample("bump", 0, i)).await.unwrap());
    }
    delivered(std::mem::take(&mut futures)).await;
    // An in-memory broker restarts empty: same topic, but no trace of this producer. The
    // batches below carry sequences 20 and up, which it refuses with UNKNOWN_PRODUCER_ID.
    broker.restart();
    broker.create_topic("bump", 1);
    let mut sent = Vec::new();
    for i in 20..40 {
        let r = sample("bump", 0, i);
        futures.push(producer.send(r.clone()).await.unwrap());
        sent.push(r);
    }
    let offsets: Vec<i64> = delivered(futures).await.iter().map(|m| m.offset).collect();
    assert_eq!(offsets, (0..20).collect::<Vec<_>>(), "in order, no gaps");
    let log = broker.log();
    assert!(
        log.contains("UnknownProducerId"),
        "the broker refused the old sequences first:\n{log}"
    );
    let pid = producer.producer_id().unwrap();
    let stored = read_back(&client, "bump", 0, 20).await;
    assert_eq!(stored.len(), 20);
    let mut expected_sequence = 0;
    let mut last_base = -1;
    for (s, r) in stored.iter().zip(&sent) {
        assert_same(s, r);
        assert_eq!(
            (s.batch.producer_id, s.batch.producer_epoch),
            (pid.id, pid.epoch)
        );
        if s.batch.base_offset != last_base {
            assert_eq!(
                s.batch.base_sequence, expected_sequence,
                "renumbered from 0 under the new epoch"
            );
            expected_sequence += s.batch.records;
            last_base = s.batch.base_offset;
        }
    }
    producer.close().await.unwrap();
}
