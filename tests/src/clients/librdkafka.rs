//! Records written by an independent client, librdkafka (through the `rdkafka` crate), for the
//! consumer tests to read: each record to an explicit partition, with its key, value, headers
//! and timestamp as given, and where each one landed as librdkafka's delivery reports say.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use kingest_protocol::record::Compression;
use rdkafka::config::ClientConfig as RdConfig;
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::ClientContext;

use super::Headers;

/// A record to produce.
#[derive(Debug, Clone, Default)]
pub struct Rec {
    /// The partition it goes to.
    pub partition: i32,
    /// Its key, `None` for a null key.
    pub key: Option<Vec<u8>>,
    /// Its value, `None` for a null value.
    pub value: Option<Vec<u8>>,
    /// Its headers.
    pub headers: Headers,
    /// Its timestamp; `None` leaves it to librdkafka (the time of sending).
    pub timestamp: Option<i64>,
}

/// A record to `partition` with the value `value` and the key `key-<value>`.
pub fn rec(partition: i32, value: &str) -> Rec {
    Rec {
        partition,
        key: Some(format!("key-{value}").into_bytes()),
        value: Some(value.as_bytes().to_vec()),
        ..Rec::default()
    }
}

/// Where a record landed, (partition, offset), or why it did not; `None` before its report.
type Report = Option<Result<(i32, i64), String>>;

/// The delivery reports of one [`produce`] call, by the records' index.
struct Reports(Mutex<Vec<Report>>);

impl ClientContext for Reports {}

impl ProducerContext for Reports {
    type DeliveryOpaque = usize;
    fn delivery(&self, result: &DeliveryResult<'_>, index: usize) {
        self.0.lock().unwrap()[index] = Some(match result {
            Ok(m) => Ok((m.partition(), m.offset())),
            Err((e, _)) => Err(e.to_string()),
        });
    }
}

/// Produces `recs` with librdkafka and returns where each landed.
///
/// # Panics
/// When librdkafka cannot be set up or a record is not delivered.
pub fn produce(addr: &str, topic: &str, codec: Compression, recs: &[Rec]) -> Vec<(i32, i64)> {
    let producer: BaseProducer<Reports> = RdConfig::new()
        .set("bootstrap.servers", addr)
        .set("compression.type", codec.name())
        .set("acks", "all")
        .set("linger.ms", "5")
        // Small batches: many per fetch, and consumption that takes many fetches.
        .set("batch.num.messages", "100")
        .set("message.max.bytes", "20000000")
        .set("message.timeout.ms", "30000")
        .create_with_context(Reports(Mutex::new(vec![None; recs.len()])))
        .expect("librdkafka producer");
    for (i, r) in recs.iter().enumerate() {
        let mut headers = OwnedHeaders::new_with_capacity(r.headers.len());
        for (k, v) in &r.headers {
            headers = headers.insert(Header {
                key: k.as_str(),
                value: v.as_deref(),
            });
        }
        let mut record: BaseRecord<'_, [u8], [u8], usize> =
            BaseRecord::with_opaque_to(topic, i).partition(r.partition);
        if let Some(k) = &r.key {
            record = record.key(k.as_slice());
        }
        if let Some(v) = &r.value {
            record = record.payload(v.as_slice());
        }
        if let Some(ts) = r.timestamp {
            record = record.timestamp(ts);
        }
        if !r.headers.is_empty() {
            record = record.headers(headers);
        }
        let mut record = record;
        loop {
            match producer.send(record) {
                Ok(()) => break,
                // Queue full: serve delivery reports and try again.
                Err((_, back)) => {
                    producer.poll(Duration::from_millis(10));
                    record = back;
                }
            }
        }
    }
    producer.flush(Duration::from_secs(60)).expect("flush");
    producer.poll(Duration::from_millis(100));
    let reports = producer.context().0.lock().unwrap().clone();
    reports
        .into_iter()
        .enumerate()
        .map(|(i, r)| match r {
            Some(Ok(at)) => at,
            other => panic!("record {i} to {topic}: {other:?}"),
        })
        .collect()
}

/// [`produce`] from async code: librdkafka blocks. Only on a multi-threaded runtime (the
/// `block_in_place` it uses panics on others).
pub fn produce_now(addr: &str, topic: &str, codec: Compression, recs: &[Rec]) -> Vec<(i32, i64)> {
    tokio::task::block_in_place(|| produce(addr, topic, codec, recs))
}

/// Produces `records` compressed with `codec` and notes each one's value at its (partition,
/// offset) in `into`.
pub fn produce_into(
    addr: &str,
    topic: &str,
    codec: Compression,
    records: &[Rec],
    into: &mut BTreeMap<(i32, i64), Vec<u8>>,
) {
    let at = produce_now(addr, topic, codec, records);
    for (r, at) in records.iter().zip(at) {
        into.insert(at, r.value.clone().unwrap());
    }
}

/// `n` records from number `from` on, spread over `topic_partitions` partitions in turn, with
/// the values `m<number>`.
pub fn batch_of(topic_partitions: i32, from: usize, n: usize) -> Vec<Rec> {
    (from..from + n)
        .map(|i| rec(i as i32 % topic_partitions, &format!("m{i}")))
        .collect()
}
