//! Reading back what the producer under test wrote: plain Fetch requests over the client's
//! `Connection`, decoded with the protocol crate's `RecordSet`, so that the producer tests depend
//! on nothing but the producer itself. Each record comes with its batch's header fields, which
//! the tests check for codecs, producer ids and sequences.

use std::time::{Duration, Instant};

use kingest_client::producer::ProducerRecord;
use kingest_client::Client;
use kingest_protocol::kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kingest_protocol::kafka_protocol::messages::{FetchRequest, TopicName};
use kingest_protocol::kafka_protocol::protocol::StrBytes;
use kingest_protocol::record::{Compression, DecodeOptions, RecordSet};
use kingest_protocol::ErrorCode;

use super::{owned_headers, Headers};

/// A record as the broker stored it, with its batch's header fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// Its offset.
    pub offset: i64,
    /// Its timestamp.
    pub timestamp: i64,
    /// Its key, `None` when null.
    pub key: Option<Vec<u8>>,
    /// Its value, `None` when null.
    pub value: Option<Vec<u8>>,
    /// Its headers.
    pub headers: Headers,
    /// The batch it came in.
    pub batch: BatchInfo,
}

/// The header fields of a stored batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchInfo {
    /// The batch's first offset.
    pub base_offset: i64,
    /// How many records it holds.
    pub records: i32,
    /// Its codec.
    pub compression: Compression,
    /// The producer id (-1 without idempotence).
    pub producer_id: i64,
    /// The producer epoch.
    pub producer_epoch: i16,
    /// The first record's sequence number (-1 without idempotence).
    pub base_sequence: i32,
}

/// Every record of `topic`/`partition`, fetched until at least `expected` are in (or 20 s).
pub async fn read_back(
    client: &Client,
    topic: &str,
    partition: i32,
    expected: usize,
) -> Vec<Stored> {
    read_back_from(client, topic, partition, 0, expected)
        .await
        .0
}

/// The records of `topic`/`partition` from offset `from`, fetched until at least `expected`
/// are in (or 20 s), and the partition's high watermark.
pub async fn read_back_from(
    client: &Client,
    topic: &str,
    partition: i32,
    from: i64,
    expected: usize,
) -> (Vec<Stored>, i64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut out: Vec<Stored> = Vec::new();
    let mut next = from;
    let mut high_watermark = -1;
    while out.len() < expected {
        assert!(
            Instant::now() < deadline,
            "only {} of {expected} records in {topic}-{partition}",
            out.len()
        );
        let (_, conn) = client.leader(topic, partition).await.expect("leader");
        let version = conn
            .versions()
            .negotiate_capped::<FetchRequest>(12)
            .expect("fetch version");
        let request = FetchRequest::default()
            .with_replica_id((-1).into())
            .with_max_wait_ms(100)
            .with_min_bytes(1)
            .with_max_bytes(64 << 20)
            .with_isolation_level(0)
            .with_session_epoch(-1)
            .with_topics(vec![FetchTopic::default()
                .with_topic(TopicName(StrBytes::from_string(topic.to_owned())))
                .with_partitions(vec![FetchPartition::default()
                    .with_partition(partition)
                    .with_fetch_offset(next)
                    .with_partition_max_bytes(32 << 20)])]);
        let response = conn.send_version(version, &request).await.expect("fetch");
        assert_eq!(
            response.error_code,
            0,
            "fetch error {}",
            ErrorCode::from_code(response.error_code)
        );
        let data = response
            .responses
            .into_iter()
            .flat_map(|t| t.partitions)
            .find(|p| p.partition_index == partition)
            .expect("partition in response");
        assert_eq!(
            data.error_code,
            0,
            "fetch {topic}-{partition}: {}",
            ErrorCode::from_code(data.error_code)
        );
        high_watermark = data.high_watermark;
        let records = data.records.unwrap_or_default();
        if records.is_empty() {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        for raw in RecordSet::new(records) {
            let raw = raw.expect("batch");
            let h = *raw.header();
            let batch = raw
                .decode(&DecodeOptions::default())
                .expect("decode (CRC, codec)");
            let info = BatchInfo {
                base_offset: h.base_offset,
                records: h.record_count,
                compression: h.compression().expect("known codec"),
                producer_id: h.producer_id,
                producer_epoch: h.producer_epoch,
                base_sequence: h.base_sequence,
            };
            for r in batch.records() {
                let r = r.expect("record");
                if r.offset < next {
                    continue;
                }
                out.push(Stored {
                    offset: r.offset,
                    timestamp: r.timestamp,
                    key: r.key.map(<[u8]>::to_vec),
                    value: r.value.map(<[u8]>::to_vec),
                    headers: owned_headers(r.headers),
                    batch: info,
                });
                next = r.offset + 1;
            }
        }
    }
    (out, high_watermark)
}

/// Asserts that `stored` is `sent`: key, value, timestamp and headers.
///
/// # Panics
/// When they differ, or when `sent` has no timestamp.
pub fn assert_same(stored: &Stored, sent: &ProducerRecord) {
    assert_eq!(
        stored.key.as_deref(),
        sent.key.as_deref(),
        "key at {}",
        stored.offset
    );
    assert_eq!(
        stored.value.as_deref(),
        sent.value.as_deref(),
        "value at {}",
        stored.offset
    );
    assert_eq!(
        stored.timestamp,
        sent.timestamp.unwrap(),
        "timestamp at {}",
        stored.offset
    );
    let headers: Headers = sent
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), v.as_ref().map(|b| b.to_vec())))
        .collect();
    assert_eq!(stored.headers, headers, "headers at {}", stored.offset);
}
