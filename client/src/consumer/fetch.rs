//! One fetch to one broker, run as its own task: connect, encode the request the session plan
//! calls for, send it, and decode the answer into per-partition results, record batches checked
//! and decompressed.
//!
//! Doing the decoding here, in the fetch's task and not in `poll`, takes CRC checks and
//! decompression off the caller's path: they run while the caller is still busy with the data of
//! the previous poll.
//!
//! The Fetch version is capped at 12, the last that names topics (v13+ name them by topic id).
//! Every broker that speaks v13 also speaks v12, and names cost nothing here, while ids would add
//! failure modes (a topic recreated under the same name, ids missing from old metadata).

use std::collections::HashMap;

use bytes::Bytes;
use kingest_protocol::kafka_protocol::messages::fetch_request::{
    FetchPartition, FetchTopic, ForgottenTopic,
};
use kingest_protocol::kafka_protocol::messages::fetch_response::PartitionData;
use kingest_protocol::kafka_protocol::messages::{FetchRequest, TopicName};
use kingest_protocol::kafka_protocol::protocol::StrBytes;
use kingest_protocol::record::{
    AbortedFilter, BatchVerdict, DecodeOptions, RawBatch, RecordBatch, RecordError, RecordSet,
};
use kingest_protocol::ErrorCode;

use super::fetched::{AbortedTransaction, FetchedPartition};
use super::session::{SessionPlan, Wanted};
use super::state::{Failure, Tp};
use crate::client::Client;
use crate::error::{BrokerRef, Result};

/// The highest Fetch version used: the last one that addresses topics by name.
pub(crate) const MAX_FETCH_VERSION: i16 = 12;
/// The first Fetch version with sessions (KIP-227).
pub(crate) const SESSION_VERSION: i16 = 7;

/// Everything a fetch task needs, built by the consumer.
#[derive(Debug)]
pub(crate) struct FetchJob {
    /// The broker to fetch from.
    pub broker: i32,
    /// Every partition the request fetches (sent, or held unchanged by the session).
    pub wanted: Vec<Wanted>,
    /// What the session puts in the request.
    pub plan: SessionPlan,
    /// `max_wait_ms`.
    pub max_wait_ms: i32,
    /// `min_bytes`.
    pub min_bytes: i32,
    /// `max_bytes`.
    pub max_bytes: i32,
    /// `isolation_level`.
    pub isolation_level: i8,
    /// How to check and decompress batches.
    pub decode: DecodeOptions,
    /// The partition byte limit, to tell a batch that can never fit from one cut by the
    /// response's limit.
    pub max_partition_fetch_bytes: usize,
}

/// One partition's part of a fetch response.
#[derive(Debug)]
pub(crate) struct PartitionResult {
    /// Which partition.
    pub tp: Tp,
    /// The position it was fetched at.
    pub fetch_offset: i64,
    /// Its error code.
    pub error: ErrorCode,
    /// The high watermark (-1: unknown).
    pub high_watermark: i64,
    /// The last stable offset (-1: unknown).
    pub last_stable_offset: i64,
    /// The log start offset (-1: unknown).
    pub log_start_offset: i64,
    /// The batches that decoded, if any.
    pub data: Option<FetchedPartition>,
    /// Why decoding stopped before the end of the data, or why no batch could be returned.
    pub failure: Option<Failure>,
}

/// A decoded fetch response.
#[derive(Debug)]
pub(crate) struct FetchResult {
    /// The broker that answered.
    pub broker: BrokerRef,
    /// The version used, which tells whether sessions were in play.
    pub version: i16,
    /// The top-level error (v7+; sessions).
    pub error: ErrorCode,
    /// The session id the broker answered with.
    pub session_id: i32,
    /// The partitions the response named (an incremental response names only those with news).
    pub partitions: Vec<PartitionResult>,
}

/// Runs a fetch: connection, request, response, decoding.
pub(crate) async fn run(client: Client, job: FetchJob) -> Result<FetchResult> {
    let conn = client.connection(job.broker).await?;
    let version = conn
        .versions()
        .negotiate_capped::<FetchRequest>(MAX_FETCH_VERSION)
        .map_err(|e| conn.protocol_error::<FetchRequest>(e))?;
    let request = build_request(version, &job);
    let response = conn.send_version(version, &request).await?;
    let mut asked: HashMap<&str, HashMap<i32, &Wanted>> = HashMap::new();
    for w in &job.wanted {
        asked.entry(&*w.tp.0).or_default().insert(w.tp.1, w);
    }
    let mut partitions = Vec::new();
    for topic in response.responses {
        let Some(known) = asked.get(&**topic.topic) else {
            tracing::debug!(topic = %topic.topic.0, "fetch response names a topic that was not asked for");
            continue;
        };
        for p in topic.partitions {
            let Some(w) = known.get(&p.partition_index) else {
                continue;
            };
            partitions.push(partition_result(
                w.tp.clone(),
                w.params.fetch_offset,
                p,
                &job,
            ));
        }
    }
    Ok(FetchResult {
        broker: conn.broker().clone(),
        version,
        error: ErrorCode::from_code(response.error_code),
        session_id: response.session_id,
        partitions,
    })
}

/// The request for `job` at `version`. Below v7 there are no sessions: every wanted partition
/// goes in, whatever the plan says.
pub(crate) fn build_request(version: i16, job: &FetchJob) -> FetchRequest {
    let sessions = version >= SESSION_VERSION;
    let mut topics: Vec<FetchTopic> = Vec::new();
    let mut add = |w: &Wanted| {
        let partition = FetchPartition::default()
            .with_partition(w.tp.1)
            .with_current_leader_epoch(w.params.leader_epoch)
            .with_fetch_offset(w.params.fetch_offset)
            .with_log_start_offset(-1)
            .with_partition_max_bytes(w.params.max_bytes);
        match topics.iter_mut().find(|t| *t.topic.0 == *w.tp.0) {
            Some(t) => t.partitions.push(partition),
            None => topics.push(
                FetchTopic::default()
                    .with_topic(topic_name(&w.tp.0))
                    .with_partitions(vec![partition]),
            ),
        }
    };
    if sessions {
        job.plan.send.iter().for_each(|&i| add(&job.wanted[i]));
    } else {
        job.wanted.iter().for_each(add);
    }
    let mut request = FetchRequest::default()
        .with_max_wait_ms(job.max_wait_ms)
        .with_min_bytes(job.min_bytes)
        .with_max_bytes(job.max_bytes)
        .with_isolation_level(job.isolation_level)
        .with_topics(topics);
    if sessions {
        let mut forgotten: Vec<ForgottenTopic> = Vec::new();
        for (topic, partition) in &job.plan.forget {
            match forgotten.iter_mut().find(|t| *t.topic.0 == **topic) {
                Some(t) => t.partitions.push(*partition),
                None => forgotten.push(
                    ForgottenTopic::default()
                        .with_topic(topic_name(topic))
                        .with_partitions(vec![*partition]),
                ),
            }
        }
        request = request
            .with_session_id(job.plan.session_id)
            .with_session_epoch(job.plan.epoch)
            .with_forgotten_topics_data(forgotten);
    }
    request
}

fn topic_name(topic: &str) -> TopicName {
    TopicName(StrBytes::from_string(topic.to_owned()))
}

/// One partition of the response, its records decoded.
fn partition_result(
    tp: Tp,
    fetch_offset: i64,
    p: PartitionData,
    job: &FetchJob,
) -> PartitionResult {
    let error = ErrorCode::from_code(p.error_code);
    let mut result = PartitionResult {
        tp,
        fetch_offset,
        error,
        high_watermark: p.high_watermark,
        last_stable_offset: p.last_stable_offset,
        log_start_offset: p.log_start_offset,
        data: None,
        failure: None,
    };
    let records = match p.records {
        Some(records) if error.is_ok() && !records.is_empty() => records,
        _ => return result,
    };
    let decoded = decode_records(
        records,
        fetch_offset,
        &job.decode,
        job.max_partition_fetch_bytes,
    );
    let mut decoded = decoded;
    result.failure = decoded.failure.take();
    if !decoded.batches.is_empty() {
        let aborted: Vec<AbortedTransaction> = p
            .aborted_transactions
            .unwrap_or_default()
            .iter()
            .map(|a| AbortedTransaction {
                producer_id: a.producer_id.0,
                first_offset: a.first_offset,
            })
            .collect();
        if job.isolation_level == 1 {
            drop_aborted(&mut decoded, &aborted, fetch_offset);
        }
        result.data = Some(FetchedPartition {
            topic: result.tp.0.clone(),
            partition: result.tp.1,
            raw: decoded.raw,
            batches: decoded.batches,
            fetch_offset,
            next_offset: decoded.next_offset,
            record_count: decoded.record_count,
            size: decoded.size,
            high_watermark: p.high_watermark,
            last_stable_offset: p.last_stable_offset,
            log_start_offset: p.log_start_offset,
            aborted_transactions: aborted,
        });
    }
    result
}

/// read_committed: removes the batches of aborted transactions from what `records()` yields,
/// as the Java consumer's `CompletedFetch` does (see [`AbortedFilter`]). The position still
/// moves past them (`next_offset` is untouched), and the raw batches keep them for callers that
/// forward data as it was.
fn drop_aborted(decoded: &mut Decoded, aborted: &[AbortedTransaction], fetch_offset: i64) {
    let mut filter = AbortedFilter::new(aborted.iter().map(|a| (a.producer_id, a.first_offset)));
    let mut dropped = 0usize;
    decoded.batches.retain(|b| {
        let control = b.control_record().ok().flatten();
        match filter.check(b.header(), control.as_ref()) {
            BatchVerdict::Aborted => {
                dropped += count_records(b, fetch_offset).unwrap_or(0);
                false
            }
            _ => true,
        }
    });
    decoded.record_count -= dropped.min(decoded.record_count);
}

/// A partition's record set, decoded.
#[derive(Debug, Default)]
pub(crate) struct Decoded {
    /// The batches as received.
    pub raw: Vec<RawBatch>,
    /// The same, checked and decompressed.
    pub batches: Vec<RecordBatch>,
    /// The offset after the last good batch (the fetch offset when there is none).
    pub next_offset: i64,
    /// Data records at or after the fetch offset.
    pub record_count: usize,
    /// Memory the good batches hold: their bytes as received, plus the decompressed records of
    /// compressed ones (see [`held_bytes`]).
    pub size: usize,
    /// What stopped decoding, if something did.
    pub failure: Option<Failure>,
}

/// What a buffered batch keeps in memory, for `max_buffered_bytes`: the batch as received
/// (kept for the caller) and, when it was compressed, its decompressed records too, which can be
/// several times larger (about 5x for zstd-compressed JSON). An uncompressed batch's records are
/// a view of the received bytes and cost nothing more.
pub(crate) fn held_bytes(raw: &RawBatch, batch: &RecordBatch) -> usize {
    let received = raw.bytes();
    let data = batch.data();
    let within = |b: &Bytes| {
        let (start, end) = (
            received.as_ptr() as usize,
            received.as_ptr() as usize + received.len(),
        );
        let p = b.as_ptr() as usize;
        p >= start && p + b.len() <= end
    };
    if within(data) {
        received.len()
    } else {
        received.len() + data.len()
    }
}

/// Walks a partition's record set from the fetch position: skips batches wholly below it,
/// checks and decompresses the others, and parses every record once, so that a malformed record
/// is found here (and stops the partition at its batch) rather than halfway through the caller's
/// iteration. Stops at the first bad batch, keeping the good ones before it.
///
/// A last batch cut off by the response's size limit is normal and dropped (the next fetch
/// starts at it). If not even the first batch is whole and it needs more than the partition
/// limit, it can never be fetched with these settings: that is [`Failure::TooLarge`]. (Brokers
/// since Fetch v3 return such a batch whole, so this only happens with old or unusual brokers.)
pub(crate) fn decode_records(
    records: Bytes,
    fetch_offset: i64,
    opts: &DecodeOptions,
    max_partition_bytes: usize,
) -> Decoded {
    let mut out = Decoded {
        next_offset: fetch_offset,
        ..Decoded::default()
    };
    let mut set = RecordSet::new(records);
    for item in set.by_ref() {
        let raw = match item {
            Ok(raw) => raw,
            Err(e) => {
                out.failure = Some(corrupt(&out, fetch_offset, e.base_offset, None, e));
                return out;
            }
        };
        let header = *raw.header();
        if header.next_offset() <= fetch_offset {
            // Wholly below the position: brokers start at the batch holding the fetch offset,
            // and legacy wrapper messages can hold inner messages below it.
            continue;
        }
        let batch = match raw
            .decode(opts)
            .and_then(|b| count_records(&b, fetch_offset).map(|n| (b, n)))
        {
            Ok((batch, n)) => {
                out.record_count += n;
                batch
            }
            Err(e) => {
                out.failure = Some(corrupt(
                    &out,
                    fetch_offset,
                    Some(header.base_offset),
                    Some(header.next_offset()),
                    e,
                ));
                return out;
            }
        };
        out.next_offset = header.next_offset();
        out.size += held_bytes(&raw, &batch);
        out.raw.push(raw);
        out.batches.push(batch);
    }
    if out.batches.is_empty() {
        if let Some(cut) = set.incomplete() {
            match cut.needed {
                Some(size) if size > max_partition_bytes => {
                    out.failure = Some(Failure::TooLarge {
                        offset: fetch_offset,
                        size,
                        max: max_partition_bytes,
                    });
                }
                // Cut by the response's overall limit, not the partition's: the next fetch,
                // with the partition earlier in the request, gets it whole.
                _ => tracing::debug!(
                    fetch_offset,
                    ?cut,
                    "first batch cut off by the response size limit"
                ),
            }
        }
    }
    out
}

/// The failure for a bad batch met after the good ones in `out`: the position stays at the bad
/// batch (never below the fetch offset, when the bad batch holds the position).
fn corrupt(
    out: &Decoded,
    fetch_offset: i64,
    base_offset: Option<i64>,
    next_offset: Option<i64>,
    source: RecordError,
) -> Failure {
    let at = if out.batches.is_empty() {
        fetch_offset
    } else {
        out.next_offset
    };
    let offset = base_offset.map_or(at, |b| b.max(at));
    Failure::Corrupt {
        offset,
        next_offset,
        source,
    }
}

/// Parses every record of `batch` (control batches too, to validate them) and counts the data
/// records at or after `from`.
fn count_records(batch: &RecordBatch, from: i64) -> Result<usize, RecordError> {
    let control = batch.header().is_control();
    let mut n = 0;
    for record in batch.records() {
        let record = record?;
        if !control && record.offset >= from {
            n += 1;
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::BytesMut;
    use kingest_protocol::record::{BatchBuilder, BatchOptions, Compression, ControlRecord};

    use super::*;
    use crate::consumer::session::FetchParams;

    fn batch(base: i64, n: i32, compression: Compression) -> Bytes {
        let mut b = BatchBuilder::new(BatchOptions {
            base_offset: base,
            compression,
            ..Default::default()
        });
        for i in 0..n {
            let v = format!("value-{}", base + i64::from(i));
            b.push(1_000 + i64::from(i), Some(b"k"), Some(v.as_bytes()), &[]);
        }
        b.finish().unwrap()
    }

    fn control(base: i64) -> Bytes {
        let m = ControlRecord::marker(true, 0);
        let mut b = BatchBuilder::new(BatchOptions {
            base_offset: base,
            control: true,
            transactional: true,
            producer_id: 7,
            producer_epoch: 0,
            ..Default::default()
        });
        b.push(1_000, Some(&m.key_bytes()), Some(&m.value_bytes()), &[]);
        b.finish().unwrap()
    }

    fn concat(parts: &[&[u8]]) -> Bytes {
        let mut out = BytesMut::new();
        parts.iter().for_each(|p| out.extend_from_slice(p));
        out.freeze()
    }

    fn opts() -> DecodeOptions {
        DecodeOptions::default()
    }

    #[test]
    fn compressed_batches_count_their_decompressed_records() {
        for compression in [Compression::None, Compression::Zstd, Compression::Lz4] {
            let set = concat(&[&batch(0, 200, compression), &batch(200, 200, compression)]);
            let d = decode_records(set.clone(), 0, &opts(), 1 << 20);
            assert!(d.failure.is_none());
            let records: usize = d.batches.iter().map(|b| b.data().len()).sum();
            if compression == Compression::None {
                assert_eq!(
                    d.size,
                    set.len(),
                    "{compression:?}: the received bytes only"
                );
            } else {
                assert_eq!(d.size, set.len() + records, "{compression:?}");
                assert!(records > set.len(), "{compression:?}: compresses");
            }
        }
    }

    #[test]
    fn skips_records_below_the_position_and_advances_past_every_batch() {
        let set = concat(&[
            &batch(0, 5, Compression::None),
            &batch(5, 5, Compression::Lz4),
            &control(10),
        ]);
        let d = decode_records(set, 3, &opts(), 1 << 20);
        assert!(d.failure.is_none());
        assert_eq!(d.batches.len(), 3);
        assert_eq!(
            d.record_count, 7,
            "offsets 3..10; the control record is not data"
        );
        assert_eq!(d.next_offset, 11, "past the control batch");

        // A batch wholly below the position is dropped.
        let set = concat(&[
            &batch(0, 5, Compression::None),
            &batch(5, 5, Compression::None),
        ]);
        let d = decode_records(set, 5, &opts(), 1 << 20);
        assert_eq!((d.batches.len(), d.record_count, d.next_offset), (1, 5, 10));
    }

    #[test]
    fn a_cut_off_last_batch_is_dropped_and_a_cut_off_first_batch_is_too_large() {
        let first = batch(0, 3, Compression::None);
        let second = batch(3, 3, Compression::None);
        let set = concat(&[&first, &second[..second.len() - 4]]);
        let d = decode_records(set, 0, &opts(), 1 << 20);
        assert!(d.failure.is_none());
        assert_eq!((d.batches.len(), d.next_offset), (1, 3));

        let big = batch(0, 100, Compression::None);
        let d = decode_records(big.slice(..100), 0, &opts(), 100);
        match d.failure {
            Some(Failure::TooLarge {
                offset: 0,
                size,
                max: 100,
            }) => assert_eq!(size, big.len()),
            other => panic!("expected too large, got {other:?}"),
        }
        // Cut below the partition limit: the response limit did it; not an error.
        let d = decode_records(big.slice(..100), 0, &opts(), 1 << 20);
        assert!(d.failure.is_none() && d.batches.is_empty());
    }

    #[test]
    fn a_corrupt_batch_stops_decoding_and_keeps_the_position_on_it() {
        let good = batch(0, 3, Compression::None);
        let mut bad = BytesMut::from(&batch(3, 3, Compression::Gzip)[..]);
        let last = bad.len() - 1;
        bad[last] ^= 0xff;
        let set = concat(&[&good, &bad, &batch(6, 3, Compression::None)]);
        let d = decode_records(set.clone(), 1, &opts(), 1 << 20);
        assert_eq!((d.batches.len(), d.next_offset, d.record_count), (1, 3, 2));
        match &d.failure {
            Some(Failure::Corrupt {
                offset: 3,
                next_offset: Some(6),
                ..
            }) => {}
            other => panic!("expected a corrupt batch at 3, got {other:?}"),
        }
        // Fetched at a position inside the bad batch: the error names the position.
        let d = decode_records(set.slice(good.len()..), 4, &opts(), 1 << 20);
        assert!(d.batches.is_empty());
        assert!(matches!(
            d.failure,
            Some(Failure::Corrupt {
                offset: 4,
                next_offset: Some(6),
                ..
            })
        ));
        // Without CRC checks the gzip stream itself is what fails.
        let no_crc = DecodeOptions {
            verify_crc: false,
            ..opts()
        };
        let d = decode_records(set.slice(good.len()..), 3, &no_crc, 1 << 20);
        assert!(
            matches!(d.failure, Some(Failure::Corrupt { offset: 3, .. })),
            "{:?}",
            d.failure
        );
    }

    #[test]
    fn requests_follow_the_session_plan_and_the_version() {
        let wanted: Vec<Wanted> = (0..3)
            .map(|p| Wanted {
                tp: (Arc::from(if p == 2 { "b" } else { "a" }), p),
                params: FetchParams {
                    fetch_offset: 10 * i64::from(p),
                    max_bytes: 1000,
                    leader_epoch: 4,
                },
            })
            .collect();
        let job = FetchJob {
            broker: 1,
            wanted,
            plan: SessionPlan {
                session_id: 9,
                epoch: 3,
                full: false,
                send: vec![1],
                forget: vec![(Arc::from("c"), 0)],
            },
            max_wait_ms: 500,
            min_bytes: 1,
            max_bytes: 5000,
            isolation_level: 1,
            decode: opts(),
            max_partition_fetch_bytes: 1000,
        };
        let r = build_request(12, &job);
        assert_eq!(
            (
                r.session_id,
                r.session_epoch,
                r.isolation_level,
                r.max_bytes
            ),
            (9, 3, 1, 5000)
        );
        assert_eq!(r.topics.len(), 1);
        let p = &r.topics[0].partitions[0];
        assert_eq!(
            (
                p.partition,
                p.fetch_offset,
                p.current_leader_epoch,
                p.partition_max_bytes
            ),
            (1, 10, 4, 1000)
        );
        assert_eq!(r.forgotten_topics_data.len(), 1);

        // v6 has no sessions: everything is sent.
        let r = build_request(6, &job);
        assert_eq!(
            r.topics.iter().map(|t| t.partitions.len()).sum::<usize>(),
            3
        );
        assert_eq!(r.topics.len(), 2, "partitions grouped by topic");
        assert!(r.forgotten_topics_data.is_empty());
    }
}
