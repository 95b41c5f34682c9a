//! Fetch responses written without copying their records.
//!
//! A fetch response is mostly record bytes that testkit already holds, batch by batch, as
//! `Bytes`. Encoding it through kafka-protocol would first concatenate a partition's batches
//! into one buffer and then copy that buffer into the frame: two copies of every byte served,
//! into fresh memory each time (page faults dominated the serving profile). Here the response's
//! small fields are encoded into one buffer and the record chunks are referenced, so the
//! connection writes the frame with vectored I/O straight from the stored batches.
//!
//! Only what testkit itself produces takes this path: Fetch versions 4 to 12 with no tagged
//! fields set (testkit sets none). Anything else is encoded by kafka-protocol as usual
//! ([`FetchReply::zero_copy_frame`] says `None`), and the tests below check that both encodings
//! are the same bytes for every version.

use bytes::{BufMut, Bytes, BytesMut};
use kingest_protocol::kafka_protocol::messages::fetch_response::PartitionData;
use kingest_protocol::kafka_protocol::messages::FetchResponse;

/// A fetch response whose partitions' records are still separate stored batches.
#[derive(Debug, Default)]
pub(crate) struct FetchReply {
    /// The response, every partition's `records` left `None`.
    pub(crate) response: FetchResponse,
    /// Per partition, in response order (topics, then their partitions), the chunks that make
    /// up its records; `None` for a partition answered with null records.
    pub(crate) records: Vec<Option<Vec<Bytes>>>,
}

impl FetchReply {
    /// The response with every partition's records joined into one `Bytes`, for the ordinary
    /// encoder (faults that cut responses, versions outside the fast path).
    pub(crate) fn into_response(self) -> FetchResponse {
        let mut response = self.response;
        let mut chunks = self.records.into_iter();
        for t in &mut response.responses {
            for p in &mut t.partitions {
                p.records = chunks.next().flatten().map(join);
            }
        }
        response
    }

    /// The whole frame (length prefix, header, body) as segments to write in order: encoded
    /// fields interleaved with the stored record chunks. `None` when this response needs the
    /// ordinary encoder.
    pub(crate) fn zero_copy_frame(&self, correlation_id: i32, version: i16) -> Option<Vec<Bytes>> {
        if !(4..=12).contains(&version) || !plain(&self.response) {
            return None;
        }
        if version < 7 && (self.response.error_code != 0 || self.response.session_id != 0) {
            return None; // not in those versions: let kafka-protocol refuse it
        }
        let flexible = version >= 12;
        let mut out = Segments::default();
        out.buf.put_i32(0); // the frame length, set at the end
        out.buf.put_i32(correlation_id);
        if flexible {
            out.buf.put_u8(0); // response header v1: no tagged fields
        }
        let r = &self.response;
        out.buf.put_i32(r.throttle_time_ms);
        if version >= 7 {
            out.buf.put_i16(r.error_code);
            out.buf.put_i32(r.session_id);
        }
        array_len(&mut out.buf, flexible, r.responses.len());
        let mut chunks = self.records.iter();
        for t in &r.responses {
            let name = t.topic.0.as_bytes();
            if flexible {
                uvarint(&mut out.buf, name.len() as u32 + 1);
            } else {
                out.buf.put_i16(i16::try_from(name.len()).ok()?);
            }
            out.buf.put_slice(name);
            array_len(&mut out.buf, flexible, t.partitions.len());
            for p in &t.partitions {
                partition(&mut out, p, chunks.next()?.as_deref(), version);
            }
            if flexible {
                out.buf.put_u8(0);
            }
        }
        if flexible {
            out.buf.put_u8(0);
        }
        let mut segments = out.finish();
        let total: usize = segments.iter().map(Bytes::len).sum();
        let length = i32::try_from(total - 4).ok()?;
        let mut first = BytesMut::from(&segments[0][..]);
        first[..4].copy_from_slice(&length.to_be_bytes());
        segments[0] = first.freeze();
        Some(segments)
    }
}

/// Whether the response has nothing the fast path does not write: no tagged fields, no
/// unknown fields, records all `None` (they travel in [`FetchReply::records`]).
fn plain(r: &FetchResponse) -> bool {
    r.unknown_tagged_fields.is_empty()
        && r.node_endpoints.is_empty()
        && r.responses.iter().all(|t| {
            t.unknown_tagged_fields.is_empty()
                && t.partitions.iter().all(|p| {
                    p.records.is_none()
                        && p.unknown_tagged_fields.is_empty()
                        && p.diverging_epoch == Default::default()
                        && p.current_leader == Default::default()
                        && p.snapshot_id == Default::default()
                        && p.aborted_transactions
                            .as_ref()
                            .is_none_or(|a| a.iter().all(|a| a.unknown_tagged_fields.is_empty()))
                })
        })
}

fn partition(out: &mut Segments, p: &PartitionData, records: Option<&[Bytes]>, version: i16) {
    let flexible = version >= 12;
    let b = &mut out.buf;
    b.put_i32(p.partition_index);
    b.put_i16(p.error_code);
    b.put_i64(p.high_watermark);
    b.put_i64(p.last_stable_offset);
    if version >= 5 {
        b.put_i64(p.log_start_offset);
    }
    match &p.aborted_transactions {
        None if flexible => b.put_u8(0),
        None => b.put_i32(-1),
        Some(list) => {
            array_len(b, flexible, list.len());
            for a in list {
                b.put_i64(a.producer_id.0);
                b.put_i64(a.first_offset);
                if flexible {
                    b.put_u8(0);
                }
            }
        }
    }
    if version >= 11 {
        b.put_i32(p.preferred_read_replica.0);
    }
    match records {
        None if flexible => b.put_u8(0),
        None => b.put_i32(-1),
        Some(chunks) => {
            let len: usize = chunks.iter().map(Bytes::len).sum();
            if flexible {
                uvarint(b, len as u32 + 1);
            } else {
                b.put_i32(len as i32);
            }
            for c in chunks {
                out.reference(c);
            }
        }
    }
    if flexible {
        out.buf.put_u8(0);
    }
}

/// The encoded pieces of a frame: `buf` collects fields until a stored chunk is referenced.
#[derive(Default)]
struct Segments {
    done: Vec<Bytes>,
    buf: BytesMut,
}

impl Segments {
    fn reference(&mut self, chunk: &Bytes) {
        if chunk.is_empty() {
            return;
        }
        if !self.buf.is_empty() {
            self.done.push(self.buf.split().freeze());
        }
        self.done.push(chunk.clone());
    }

    fn finish(mut self) -> Vec<Bytes> {
        if !self.buf.is_empty() || self.done.is_empty() {
            self.done.push(self.buf.freeze());
        }
        self.done
    }
}

fn array_len(b: &mut BytesMut, flexible: bool, n: usize) {
    if flexible {
        uvarint(b, n as u32 + 1);
    } else {
        b.put_i32(n as i32);
    }
}

fn uvarint(b: &mut BytesMut, mut v: u32) {
    while v >= 0x80 {
        b.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    b.put_u8(v as u8);
}

fn join(chunks: Vec<Bytes>) -> Bytes {
    match chunks.len() {
        0 => Bytes::new(),
        1 => chunks.into_iter().next().unwrap_or_default(),
        _ => {
            let mut all = BytesMut::with_capacity(chunks.iter().map(Bytes::len).sum());
            for c in &chunks {
                all.extend_from_slice(c);
            }
            all.freeze()
        }
    }
}

#[cfg(test)]
mod tests {
    use kingest_protocol::kafka_protocol::messages::fetch_response::{
        AbortedTransaction, FetchableTopicResponse, LeaderIdAndEpoch,
    };
    use kingest_protocol::kafka_protocol::messages::{
        ApiKey, BrokerId, ProducerId, ResponseKind, TopicName,
    };
    use kingest_protocol::message::encode_response;
    use proptest::prelude::*;

    use super::*;

    /// One partition: error code, record chunks, aborted transactions.
    type Part = (i16, Option<Vec<Vec<u8>>>, Option<Vec<(i64, i64)>>);

    fn reply(parts: &[Part]) -> FetchReply {
        let mut reply = FetchReply::default();
        let mut topics: Vec<FetchableTopicResponse> = Vec::new();
        for (i, (code, records, aborted)) in parts.iter().enumerate() {
            let p = PartitionData::default()
                .with_records(None)
                .with_partition_index(i as i32)
                .with_error_code(*code)
                .with_high_watermark(1000 + i as i64)
                .with_last_stable_offset(900)
                .with_log_start_offset(3)
                .with_preferred_read_replica(BrokerId(-1))
                .with_aborted_transactions(aborted.as_ref().map(|a| {
                    a.iter()
                        .map(|(pid, first)| {
                            AbortedTransaction::default()
                                .with_producer_id(ProducerId(*pid))
                                .with_first_offset(*first)
                        })
                        .collect()
                }));
            reply.records.push(
                records
                    .as_ref()
                    .map(|c| c.iter().map(|c| Bytes::from(c.clone())).collect()),
            );
            // Two partitions per topic, so both nesting levels have several entries.
            if i % 2 == 0 {
                topics.push(
                    FetchableTopicResponse::default()
                        .with_topic(TopicName(format!("topic-{i}").into())),
                );
            }
            if let Some(t) = topics.last_mut() {
                t.partitions.push(p);
            }
        }
        reply.response = FetchResponse::default()
            .with_throttle_time_ms(7)
            .with_session_id(42)
            .with_responses(topics);
        reply
    }

    fn ordinary(reply: FetchReply, version: i16) -> Vec<u8> {
        let mut buf = BytesMut::new();
        encode_response(
            &mut buf,
            99,
            ApiKey::Fetch,
            version,
            &ResponseKind::Fetch(reply.into_response()),
        )
        .unwrap();
        buf.to_vec()
    }

    fn part() -> impl Strategy<Value = Part> {
        (
            prop_oneof![Just(0i16), Just(1i16), Just(6i16)],
            proptest::option::of(proptest::collection::vec(
                proptest::collection::vec(any::<u8>(), 0..300),
                0..4,
            )),
            proptest::option::of(proptest::collection::vec(
                (any::<i64>(), any::<i64>()),
                0..3,
            )),
        )
    }

    proptest! {
        #[test]
        fn same_bytes_as_kafka_protocol(
            parts in proptest::collection::vec(part(), 0..6),
            version in 4i16..=12,
        ) {
            let with_session = |mut r: FetchReply| {
                if version < 7 {
                    r.response.session_id = 0;
                }
                r
            };
            let fast = with_session(reply(&parts)).zero_copy_frame(99, version).unwrap().concat();
            prop_assert_eq!(fast, ordinary(with_session(reply(&parts)), version));
        }
    }

    #[test]
    fn large_records_are_referenced_not_copied() {
        let big = vec![7u8; 1 << 20];
        let r = reply(&[(0, Some(vec![big.clone(), big]), None)]);
        let frame = r.zero_copy_frame(1, 12).unwrap();
        let stored = r.records[0].as_ref().unwrap();
        assert!(frame.iter().any(|s| s.as_ptr() == stored[0].as_ptr()));
        assert!(frame.iter().any(|s| s.as_ptr() == stored[1].as_ptr()));
    }

    #[test]
    fn tagged_fields_take_the_ordinary_path() {
        let mut r = reply(&[(0, None, None)]);
        r.response.responses[0].partitions[0].current_leader =
            LeaderIdAndEpoch::default().with_leader_id(BrokerId(2));
        assert!(r.zero_copy_frame(1, 12).is_none());
        assert!(reply(&[(0, None, None)]).zero_copy_frame(1, 13).is_none());
    }
}
