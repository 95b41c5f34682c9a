//! Interop with librdkafka both ways, on a real broker (nisshi), for every codec: what
//! librdkafka produces we consume identically (keys, values, headers, timestamps), what we
//! produce librdkafka consumes identically, and our murmur2 partitioner puts every key where
//! librdkafka's `murmur2_random` does.

use std::time::{Duration, Instant};

use bytes::Bytes;
use kingest_client::consumer::{ConsumerConfig, PartitionConsumer, StartAt};
use kingest_client::partitioner::partition_for_key;
use kingest_client::producer::{Producer, ProducerConfig, ProducerRecord};
use kingest_client::{Client, ClientConfig};
use kingest_protocol::record::Compression;
use kingest_tests::peers::nisshi::Nisshi;
use rdkafka::config::ClientConfig as RdConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer as _};
use rdkafka::{Offset, TopicPartitionList};

/// One record as both sides see it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Row {
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: kingest_tests::clients::Headers,
    timestamp: i64,
}

fn rows() -> Vec<Row> {
    (0..300)
        .map(|i| Row {
            key: match i % 5 {
                0 => None,
                1 => Some(Vec::new()),
                _ => Some(format!("key-{i}").into_bytes()),
            },
            value: match i % 7 {
                0 => None,
                1 => Some(Vec::new()),
                2 => Some("ünïcödé ✓ 日本".as_bytes().to_vec()),
                3 => Some(vec![0, 255, 1, 254, i as u8]),
                _ => Some(format!("{{\"n\":{i},\"pad\":\"{}\"}}", "x".repeat(i % 50)).into_bytes()),
            },
            headers: if i % 3 == 0 {
                vec![
                    ("h".to_owned(), Some(b"v".to_vec())),
                    ("null".to_owned(), None),
                    ("h".to_owned(), Some(format!("{i}").into_bytes())),
                ]
            } else {
                Vec::new()
            },
            timestamp: 1_700_000_000_000 + i as i64,
        })
        .collect()
}

fn librdkafka_produce(bootstrap: &str, topic: &str, codec: &str, rows: &[Row]) {
    let p: BaseProducer = RdConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("compression.type", codec)
        .set("linger.ms", "10")
        .create()
        .unwrap();
    for r in rows {
        let mut headers = OwnedHeaders::new();
        for (k, v) in &r.headers {
            headers = headers.insert(Header {
                key: k,
                value: v.as_deref(),
            });
        }
        let mut rec: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic)
            .partition(0)
            .timestamp(r.timestamp)
            .headers(headers);
        if let Some(k) = &r.key {
            rec = rec.key(k.as_slice());
        }
        if let Some(v) = &r.value {
            rec = rec.payload(v.as_slice());
        }
        p.send(rec).map_err(|(e, _)| e).unwrap();
    }
    p.flush(Duration::from_secs(30)).unwrap();
}

fn librdkafka_consume(bootstrap: &str, topic: &str, n: usize) -> Vec<Row> {
    let c: BaseConsumer = RdConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "interop")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .unwrap();
    c.assign(&tpl).unwrap();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while out.len() < n {
        assert!(
            Instant::now() < deadline,
            "librdkafka read {} of {n}",
            out.len()
        );
        if let Some(m) = c.poll(Duration::from_millis(100)) {
            let m = m.unwrap();
            let headers = m
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|h| (h.key.to_owned(), h.value.map(<[u8]>::to_vec)))
                        .collect()
                })
                .unwrap_or_default();
            out.push(Row {
                key: m.key().map(<[u8]>::to_vec),
                value: m.payload().map(<[u8]>::to_vec),
                headers,
                timestamp: m.timestamp().to_millis().unwrap(),
            });
        }
    }
    out
}

async fn our_consume(client: &Client, topic: &str, n: usize) -> Vec<Row> {
    let mut c = PartitionConsumer::new(client.clone(), ConsumerConfig::default()).unwrap();
    c.assign(&[(topic, 0, StartAt::Earliest)]).await.unwrap();
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while out.len() < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "we read {} of {n}",
            out.len()
        );
        for r in c
            .poll_timeout(Duration::from_millis(200))
            .await
            .unwrap()
            .records()
        {
            out.push(Row {
                key: r.record.key.map(<[u8]>::to_vec),
                value: r.record.value.map(<[u8]>::to_vec),
                headers: kingest_tests::clients::owned_headers(r.record.headers),
                timestamp: r.record.timestamp,
            });
        }
    }
    out
}

async fn our_produce(client: &Client, topic: &str, compression: Compression, rows: &[Row]) {
    let producer = Producer::new(client.clone(), {
        let mut config = ProducerConfig::default();
        config.compression = compression;
        config
    })
    .unwrap();
    let mut deliveries = Vec::new();
    for r in rows {
        let mut rec = ProducerRecord::new(topic, Bytes::new())
            .with_partition(0)
            .with_timestamp(r.timestamp);
        rec.value = r.value.clone().map(Bytes::from);
        rec.key = r.key.clone().map(Bytes::from);
        for (k, v) in &r.headers {
            rec = rec.with_header(k.clone(), v.clone().map(Bytes::from));
        }
        deliveries.push(producer.send(rec).await.unwrap());
    }
    for d in deliveries {
        d.await.unwrap();
    }
    producer.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_directions_with_every_codec() {
    let broker = Nisshi::start();
    let client = Client::connect(ClientConfig::new(&broker.addr()))
        .await
        .unwrap();
    let expected = rows();
    for codec in Compression::ALL {
        let name = codec.name();
        // librdkafka → kingest
        let from_rd = format!("from-librdkafka-{name}");
        broker.create_topic(&from_rd, 1);
        let (b, t, r) = (broker.addr(), from_rd.clone(), expected.clone());
        tokio::task::spawn_blocking(move || librdkafka_produce(&b, &t, name, &r))
            .await
            .unwrap();
        assert_eq!(
            our_consume(&client, &from_rd, expected.len()).await,
            expected,
            "{name}: what librdkafka produced, as we read it"
        );
        // kingest → librdkafka
        let from_us = format!("from-kingest-{name}");
        broker.create_topic(&from_us, 1);
        our_produce(&client, &from_us, codec, &expected).await;
        let (b, t, n) = (broker.addr(), from_us.clone(), expected.len());
        let read = tokio::task::spawn_blocking(move || librdkafka_consume(&b, &t, n))
            .await
            .unwrap();
        assert_eq!(
            read, expected,
            "{name}: what we produced, as librdkafka reads it"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn murmur2_matches_librdkafka() {
    let broker = Nisshi::start();
    broker.create_topic("keyed", 64);
    let keys: Vec<String> = (0..1000)
        .map(|i| format!("user-{i}-{}", "z".repeat(i % 13)))
        .collect();
    let b = broker.addr();
    let ks = keys.clone();
    let chosen: Vec<(String, i32)> = tokio::task::spawn_blocking(move || {
        // librdkafka reports where each keyed record went in its delivery callback.
        struct Ctx(std::sync::Mutex<Vec<(String, i32)>>);
        impl rdkafka::ClientContext for Ctx {}
        impl rdkafka::producer::ProducerContext for Ctx {
            type DeliveryOpaque = ();
            fn delivery(&self, r: &rdkafka::message::DeliveryResult<'_>, _: ()) {
                let m = r.as_ref().unwrap();
                self.0.lock().unwrap().push((
                    String::from_utf8(m.key().unwrap().to_vec()).unwrap(),
                    m.partition(),
                ));
            }
        }
        let p: BaseProducer<Ctx> = RdConfig::new()
            .set("bootstrap.servers", &b)
            .set("partitioner", "murmur2_random")
            .create_with_context(Ctx(Default::default()))
            .unwrap();
        for k in &ks {
            p.send(
                BaseRecord::<str, str>::to("keyed")
                    .key(k.as_str())
                    .payload("v"),
            )
            .map_err(|(e, _)| e)
            .unwrap();
        }
        p.flush(Duration::from_secs(30)).unwrap();
        let chosen = std::mem::take(&mut *p.context().0.lock().unwrap());
        chosen
    })
    .await
    .unwrap();
    assert_eq!(chosen.len(), keys.len());
    for (key, partition) in chosen {
        assert_eq!(
            partition_for_key(key.as_bytes(), 64),
            partition,
            "key {key}"
        );
    }
}
