//! A scripted single-node broker on loopback for the consumer's unit tests: it serves
//! ApiVersions, Metadata, ListOffsets and Fetch (with or without KIP-227 sessions) over
//! in-memory logs, and can misbehave on demand in the ways real brokers do (session eviction,
//! leadership errors, pre-KIP-74 cut-off batches, corrupt data), which nisshi cannot be made to
//! do. Every Fetch request it decodes is recorded, so tests can check what the consumer sent.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kingest_protocol::frame::FrameDecoder;
use kingest_protocol::kafka_protocol::messages::api_versions_response::ApiVersion;
use kingest_protocol::kafka_protocol::messages::fetch_response::{
    FetchableTopicResponse, PartitionData,
};
use kingest_protocol::kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kingest_protocol::kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kingest_protocol::kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, BrokerId, FetchRequest, FetchResponse, ListOffsetsResponse,
    MetadataResponse, RequestKind, ResponseKind, TopicName,
};
use kingest_protocol::kafka_protocol::protocol::StrBytes;
use kingest_protocol::message::{decode_request, encode_response};
use kingest_protocol::record::{BatchBuilder, BatchOptions, RecordSet};
use kingest_protocol::ErrorCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The topic every fake broker serves.
pub const TOPIC: &str = "t";

/// What the broker holds and how it behaves; tests change it while the consumer runs.
pub struct Script {
    /// Each partition's batches, in offset order.
    pub logs: BTreeMap<i32, Vec<Bytes>>,
    /// The first offset still kept (below it: OFFSET_OUT_OF_RANGE).
    pub log_start: i64,
    /// The highest Fetch version offered.
    pub max_fetch_version: i16,
    /// Whether full fetches asking for a session get one.
    pub sessions: bool,
    /// Cut a partition's data at its byte limit even inside the first batch, as brokers before
    /// Fetch v3 (KIP-74) did.
    pub cut_batches: bool,
    /// Top-level errors for the next fetches.
    pub fetch_errors: VecDeque<ErrorCode>,
    /// Partition errors for the next fetches that ask for these partitions.
    pub partition_errors: VecDeque<(i32, ErrorCode)>,
    /// Every Fetch request, with its version.
    pub fetches: Vec<(i16, FetchRequest)>,
    /// How many Metadata requests came.
    pub metadata_requests: usize,
    session: Option<Session>,
    next_session_id: i32,
}

struct Session {
    id: i32,
    next_epoch: i32,
    /// partition → fetch offset.
    partitions: BTreeMap<i32, i64>,
}

impl Script {
    fn end(&self, partition: i32) -> i64 {
        self.logs
            .get(&partition)
            .and_then(|b| b.last())
            .map_or(self.log_start, next_offset)
    }

    /// Drops the session, as a broker evicting it from its cache.
    pub fn evict_session(&mut self) {
        self.session = None;
    }

    /// The id of the current session, if any.
    pub fn session_id(&self) -> Option<i32> {
        self.session.as_ref().map(|s| s.id)
    }

    fn read(&self, partition: i32, from: i64, max: usize) -> Bytes {
        let mut out = BytesMut::new();
        for batch in self.logs.get(&partition).into_iter().flatten() {
            if next_offset(batch) <= from {
                continue;
            }
            if !out.is_empty() && out.len() + batch.len() > max {
                break;
            }
            out.extend_from_slice(batch);
            if out.len() >= max {
                break;
            }
        }
        if self.cut_batches && out.len() > max {
            out.truncate(max);
        }
        out.freeze()
    }

    fn answer(&mut self, partition: i32, offset: i64, max: i32) -> PartitionData {
        let mut data = PartitionData::default()
            .with_partition_index(partition)
            .with_log_start_offset(self.log_start)
            .with_aborted_transactions(Some(Vec::new()));
        if let Some(i) = self
            .partition_errors
            .iter()
            .position(|(p, _)| *p == partition)
        {
            let (_, code) = self.partition_errors.remove(i).expect("found");
            return data
                .with_error_code(code.code())
                .with_high_watermark(-1)
                .with_last_stable_offset(-1);
        }
        let end = self.end(partition);
        if offset < self.log_start || offset > end {
            return data
                .with_error_code(ErrorCode::OffsetOutOfRange.code())
                .with_high_watermark(-1);
        }
        let records = self.read(partition, offset, max as usize);
        data = data.with_high_watermark(end).with_last_stable_offset(end);
        data.with_records((!records.is_empty()).then_some(records))
    }

    fn fetch(&mut self, version: i16, request: FetchRequest) -> FetchResponse {
        self.fetches.push((version, request.clone()));
        let response = FetchResponse::default();
        if let Some(code) = self.fetch_errors.pop_front() {
            return response.with_error_code(code.code());
        }
        let asked: Vec<(i32, i64, i32)> = request
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter())
            .map(|p| (p.partition, p.fetch_offset, p.partition_max_bytes))
            .collect();
        let (id, epoch) = if version >= 7 {
            (request.session_id, request.session_epoch)
        } else {
            (0, -1)
        };
        if !self.sessions || epoch < 0 {
            let partitions = asked
                .iter()
                .map(|&(p, o, m)| self.answer(p, o, m))
                .collect();
            return response.with_responses(vec![topic_response(partitions)]);
        }
        if epoch == 0 {
            self.next_session_id += 1;
            let session = Session {
                id: self.next_session_id,
                next_epoch: 1,
                partitions: asked.iter().map(|&(p, o, _)| (p, o)).collect(),
            };
            let partitions = asked
                .iter()
                .map(|&(p, o, m)| self.answer(p, o, m))
                .collect();
            let response = response
                .with_session_id(session.id)
                .with_responses(vec![topic_response(partitions)]);
            self.session = Some(session);
            return response;
        }
        let Some(session) = self.session.as_mut().filter(|s| s.id == id) else {
            return response.with_error_code(ErrorCode::FetchSessionIdNotFound.code());
        };
        if session.next_epoch != epoch {
            return response.with_error_code(ErrorCode::InvalidFetchSessionEpoch.code());
        }
        session.next_epoch += 1;
        for &(p, o, _) in &asked {
            session.partitions.insert(p, o);
        }
        for forgotten in &request.forgotten_topics_data {
            for p in &forgotten.partitions {
                session.partitions.remove(p);
            }
        }
        let id = session.id;
        let wanted: Vec<(i32, i64)> = session.partitions.iter().map(|(&p, &o)| (p, o)).collect();
        let max = asked.first().map_or(1 << 20, |a| a.2);
        let partitions: Vec<PartitionData> = wanted
            .into_iter()
            .map(|(p, o)| self.answer(p, o, max))
            .filter(|d| d.error_code != 0 || d.records.is_some())
            .collect();
        response
            .with_session_id(id)
            .with_responses(vec![topic_response(partitions)])
    }
}

fn topic_response(partitions: Vec<PartitionData>) -> FetchableTopicResponse {
    FetchableTopicResponse::default()
        .with_topic(TopicName(StrBytes::from_static_str(TOPIC)))
        .with_partitions(partitions)
}

fn next_offset(batch: &Bytes) -> i64 {
    let raw = RecordSet::new(batch.clone())
        .next()
        .expect("a batch")
        .expect("a valid batch");
    raw.header().next_offset()
}

/// Batches of `per_batch` records from `from` to `to` (exclusive), values `v<offset>`, keys
/// `k<offset>`, timestamps 1000 + offset.
pub fn batches(from: i64, to: i64, per_batch: i64) -> Vec<Bytes> {
    let mut out = Vec::new();
    let mut base = from;
    while base < to {
        let n = per_batch.min(to - base);
        let mut b = BatchBuilder::new(BatchOptions {
            base_offset: base,
            ..Default::default()
        });
        for o in base..base + n {
            b.push(
                1_000 + o,
                Some(format!("k{o}").as_bytes()),
                Some(format!("v{o}").as_bytes()),
                &[],
            );
        }
        out.push(b.finish().expect("batch"));
        base += n;
    }
    out
}

/// A running fake broker.
pub struct Fake {
    /// Its address.
    pub addr: String,
    /// Its script, shared with the serving tasks.
    pub script: Arc<Mutex<Script>>,
}

impl Fake {
    /// A broker serving topic [`TOPIC`] with `partitions` empty partitions.
    pub async fn start(partitions: i32) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let script = Arc::new(Mutex::new(Script {
            logs: (0..partitions).map(|p| (p, Vec::new())).collect(),
            log_start: 0,
            max_fetch_version: 12,
            sessions: true,
            cut_batches: false,
            fetch_errors: VecDeque::new(),
            partition_errors: VecDeque::new(),
            fetches: Vec::new(),
            metadata_requests: 0,
            session: None,
            next_session_id: 100,
        }));
        let shared = script.clone();
        let port = listener.local_addr().expect("addr").port();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(serve(socket, shared.clone(), port));
            }
        });
        Fake { addr, script }
    }

    /// Runs `f` on the script.
    pub fn with<T>(&self, f: impl FnOnce(&mut Script) -> T) -> T {
        f(&mut self.script.lock().unwrap())
    }
}

async fn serve(mut socket: TcpStream, script: Arc<Mutex<Script>>, port: u16) {
    let decoder = FrameDecoder::default();
    let mut buf = BytesMut::new();
    loop {
        while let Some(frame) = decoder.split(&mut buf).expect("frame") {
            let (header, body) =
                decode_request(frame.freeze()).expect("the consumer sent a malformed request");
            let version = header.request_api_version;
            let (key, response, idle) = {
                let mut s = script.lock().unwrap();
                match body {
                    RequestKind::ApiVersions(_) => (
                        ApiKey::ApiVersions,
                        ResponseKind::ApiVersions(api_versions(s.max_fetch_version)),
                        false,
                    ),
                    RequestKind::Metadata(_) => {
                        s.metadata_requests += 1;
                        (
                            ApiKey::Metadata,
                            ResponseKind::Metadata(metadata(&s, port)),
                            false,
                        )
                    }
                    RequestKind::ListOffsets(r) => {
                        let partitions = r.topics[0]
                            .partitions
                            .iter()
                            .map(|p| {
                                let offset = match p.timestamp {
                                    -2 => s.log_start,
                                    -1 => s.end(p.partition_index),
                                    // Timestamps are 1000 + offset; past the end there is none.
                                    ts if ts - 1_000 < s.end(p.partition_index) => {
                                        (ts - 1_000).max(s.log_start)
                                    }
                                    _ => -1,
                                };
                                ListOffsetsPartitionResponse::default()
                                    .with_partition_index(p.partition_index)
                                    .with_offset(offset)
                                    .with_timestamp(-1)
                            })
                            .collect();
                        let topic = ListOffsetsTopicResponse::default()
                            .with_name(r.topics[0].name.clone())
                            .with_partitions(partitions);
                        (
                            ApiKey::ListOffsets,
                            ResponseKind::ListOffsets(
                                ListOffsetsResponse::default().with_topics(vec![topic]),
                            ),
                            false,
                        )
                    }
                    RequestKind::Fetch(r) => {
                        let response = s.fetch(version, r);
                        let idle = response.error_code == 0
                            && response
                                .responses
                                .iter()
                                .flat_map(|t| t.partitions.iter())
                                .all(|p| p.records.is_none());
                        (ApiKey::Fetch, ResponseKind::Fetch(response), idle)
                    }
                    other => panic!("the fake broker does not serve {other:?}"),
                }
            };
            if idle {
                // A real broker holds an empty fetch for max_wait; a short wait keeps the
                // consumer from spinning without slowing the tests down.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let mut out = BytesMut::new();
            encode_response(&mut out, header.correlation_id, key, version, &response)
                .expect("encode");
            if socket.write_all(&out).await.is_err() {
                return;
            }
        }
        match socket.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

fn api_versions(max_fetch: i16) -> ApiVersionsResponse {
    let key = |k: ApiKey, min: i16, max: i16| {
        ApiVersion::default()
            .with_api_key(k as i16)
            .with_min_version(min)
            .with_max_version(max)
    };
    ApiVersionsResponse::default().with_api_keys(vec![
        key(ApiKey::ApiVersions, 0, 3),
        key(ApiKey::Metadata, 0, 12),
        key(ApiKey::ListOffsets, 1, 7),
        key(ApiKey::Fetch, 4, max_fetch),
    ])
}

fn metadata(s: &Script, port: u16) -> MetadataResponse {
    let partitions = s
        .logs
        .keys()
        .map(|&p| {
            MetadataResponsePartition::default()
                .with_partition_index(p)
                .with_leader_id(BrokerId(1))
                .with_leader_epoch(5)
                .with_replica_nodes(vec![BrokerId(1)])
                .with_isr_nodes(vec![BrokerId(1)])
        })
        .collect();
    MetadataResponse::default()
        .with_brokers(vec![MetadataResponseBroker::default()
            .with_node_id(BrokerId(1))
            .with_host(StrBytes::from_static_str("127.0.0.1"))
            .with_port(i32::from(port))])
        .with_controller_id(BrokerId(1))
        .with_topics(vec![MetadataResponseTopic::default()
            .with_name(Some(TopicName(StrBytes::from_static_str(TOPIC))))
            .with_partitions(partitions)])
}
