//! Writes the seed corpora of every fuzz target from real data (run by `fuzz/seed.sh`).
//!
//! Usage: `make_seeds <fixtures dir> <corpus dir>`. Seeds come from
//!
//! - batches our `BatchBuilder` writes for every codec (JSON-like values, keys, headers, null
//!   keys and values, offset gaps, log-append time, transactional and control batches), legacy
//!   magic 0/1 message sets from `legacy::write_message_set`, and record sets of several batches
//!   with a cut-off last batch;
//! - Fetch, Metadata and ApiVersions responses and a range of requests encoded by our message
//!   codecs at every version;
//! - every `*.bin` file in the fixtures directory (protocol/tests/fixtures, captured from
//!   librdkafka): as a record set, as the codec target's input for each of its batches, wrapped
//!   in Fetch responses and Produce requests, and, when a fixture is itself a request or a
//!   response frame, as a seed of that target.
//!
//! Each seed is named after what it holds, so a corpus directory tells where its inputs came from.

use std::fs;
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use kingest_fuzz::{codec_input_of, WRAP_BASE_OFFSET};
use kingest_protocol::frame::FrameDecoder;
use kingest_protocol::kafka_protocol::messages::{self as m, ApiKey, ResponseKind, TopicName};
use kingest_protocol::kafka_protocol::protocol::{Message, Request, StrBytes};
use kingest_protocol::message::{decode_request, decode_response, encode_request, encode_response};
use kingest_protocol::record::legacy::{write_message_set, LegacyRecord};
use kingest_protocol::record::{
    BatchBuilder, BatchOptions, Compression, ControlRecord, Header, RecordSet, TimestampType,
};

/// Where seeds go: one directory per target.
struct Corpus {
    root: PathBuf,
    written: usize,
}

impl Corpus {
    fn put(&mut self, target: &str, name: &str, data: &[u8]) {
        let dir = self.root.join(target);
        fs::create_dir_all(&dir).expect("creating a corpus directory");
        fs::write(dir.join(name), data).expect("writing a seed");
        self.written += 1;
    }
}

/// A JSON-like value of about `size` bytes, different for every `i`.
fn json_value(i: usize, size: usize) -> Vec<u8> {
    const WORDS: [&str; 8] = [
        "click", "view", "purchase", "signup", "search", "logout", "share", "like",
    ];
    let mut v = format!(
        "{{\"id\":{i},\"user\":\"user-{:05}\",\"event\":\"{}\",\"ts\":{},\"tags\":[",
        (i * 7919) % 100_000,
        WORDS[i % WORDS.len()],
        1_700_000_000_000u64 + i as u64 * 13
    );
    let mut j = 0;
    while v.len() + 12 < size {
        v.push_str(&format!("\"{}{}\",", WORDS[(i + j) % WORDS.len()], j));
        j += 1;
    }
    v.push_str("\"end\"]}");
    v.into_bytes()
}

/// A batch of `n` records of about `size` bytes.
fn batch(opts: BatchOptions, n: usize, size: usize, headers: bool) -> Bytes {
    let mut b = BatchBuilder::new(opts);
    for i in 0..n {
        let key = format!("key-{i}");
        let value = json_value(i, size);
        let hs = [
            Header {
                key: b"trace-id",
                value: Some(b"4bf92f3577b34da6"),
            },
            Header {
                key: b"empty",
                value: None,
            },
        ];
        let hs: &[Header<'_>] = if headers { &hs } else { &[] };
        b.push(
            1_700_000_000_000 + i as i64 * 5,
            Some(key.as_bytes()),
            Some(&value),
            hs,
        );
    }
    b.finish().expect("building a seed batch")
}

/// Named record sets covering the shapes a consumer meets.
fn record_sets() -> Vec<(String, Bytes)> {
    let mut sets = Vec::new();
    for codec in Compression::ALL {
        let c = |o: BatchOptions| BatchOptions {
            compression: codec,
            ..o
        };
        let base = BatchOptions {
            base_offset: WRAP_BASE_OFFSET,
            ..BatchOptions::default()
        };
        sets.push((format!("{codec}-one"), batch(c(base), 1, 60, false)));
        sets.push((
            format!("{codec}-ten-headers"),
            batch(c(base), 10, 100, true),
        ));
        sets.push((format!("{codec}-hundred"), batch(c(base), 100, 300, false)));
        sets.push((
            format!("{codec}-log-append-time"),
            batch(
                c(BatchOptions {
                    timestamp_type: TimestampType::LogAppendTime,
                    ..base
                }),
                5,
                80,
                false,
            ),
        ));
        sets.push((
            format!("{codec}-transactional"),
            batch(
                c(BatchOptions {
                    transactional: true,
                    producer_id: 4242,
                    producer_epoch: 3,
                    base_sequence: 17,
                    ..base
                }),
                4,
                80,
                true,
            ),
        ));
        // Tombstones, null keys and a compacted-topic offset gap.
        let mut b = BatchBuilder::new(c(base));
        b.push(1_700_000_000_000, Some(b"k1"), None, &[]);
        b.push_at(3, 1_700_000_000_010, None, Some(b"{\"v\":1}"), &[]);
        b.push_at(9, 1_699_999_999_000, Some(b""), Some(b""), &[]);
        sets.push((
            format!("{codec}-nulls-gaps"),
            b.finish().expect("building a seed batch"),
        ));
    }
    for commit in [true, false] {
        let marker = ControlRecord::marker(commit, 5);
        let opts = BatchOptions {
            base_offset: WRAP_BASE_OFFSET,
            producer_id: 4242,
            producer_epoch: 3,
            ..BatchOptions::default()
        };
        let name = if commit {
            "control-commit"
        } else {
            "control-abort"
        };
        sets.push((
            name.to_owned(),
            BatchBuilder::control_batch(opts, marker, 1_700_000_000_000).expect("control batch"),
        ));
    }
    // Several batches, then one cut off by the broker's size limit.
    let mut multi = BytesMut::new();
    for (i, codec) in Compression::ALL.into_iter().enumerate() {
        let opts = BatchOptions {
            base_offset: 100 * i as i64,
            compression: codec,
            ..BatchOptions::default()
        };
        multi.extend_from_slice(&batch(opts, 20, 120, i % 2 == 0));
    }
    let multi = multi.freeze();
    sets.push(("multi".to_owned(), multi.clone()));
    sets.push(("multi-cut".to_owned(), multi.slice(..multi.len() - 37)));
    // Legacy message sets.
    let values: Vec<Vec<u8>> = (0..5).map(|i| json_value(i, 70)).collect();
    let legacy: Vec<LegacyRecord<'_>> = values
        .iter()
        .enumerate()
        .map(|(i, v)| LegacyRecord {
            timestamp: 1_700_000_000_000 + i as i64,
            key: (i % 2 == 0).then_some(&b"legacy-key"[..]),
            value: Some(v),
        })
        .collect();
    for magic in [0i8, 1] {
        for codec in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
        ] {
            let mut out = Vec::new();
            write_message_set(
                &mut out,
                magic,
                codec,
                TimestampType::CreateTime,
                50,
                &legacy,
            )
            .expect("legacy message set");
            sets.push((format!("legacy-v{magic}-{codec}"), Bytes::from(out)));
        }
    }
    sets
}

/// The batches of a record set, each as its own bytes.
fn batches_of(set: &Bytes) -> Vec<Bytes> {
    RecordSet::new(set.clone())
        .map_while(Result::ok)
        .map(|raw| raw.bytes().clone())
        .collect()
}

/// Strips the 4-byte size prefix of a frame our encoders wrote.
fn unframe(mut buf: BytesMut) -> Vec<u8> {
    let frame = FrameDecoder::default()
        .split(&mut buf)
        .expect("a frame we wrote")
        .expect("a whole frame");
    frame.to_vec()
}

/// A response target's input: the version selector byte, then the frame.
fn response_input<R: Request>(version: i16, frame: &[u8]) -> Vec<u8> {
    let mut out = vec![(version - R::VERSIONS.min) as u8];
    out.extend_from_slice(frame);
    out
}

fn response_frame(api: ApiKey, version: i16, response: ResponseKind) -> Option<Vec<u8>> {
    let mut buf = BytesMut::new();
    encode_response(&mut buf, 12_345, api, version, &response).ok()?;
    Some(unframe(buf))
}

fn topic(name: &'static str) -> TopicName {
    TopicName(StrBytes::from_static_str(name))
}

fn fetch_response(records: &[Bytes]) -> m::FetchResponse {
    let partitions = records
        .iter()
        .enumerate()
        .map(|(i, r)| {
            m::fetch_response::PartitionData::default()
                .with_partition_index(i as i32)
                .with_high_watermark(5_000)
                .with_last_stable_offset(4_000)
                .with_log_start_offset(0)
                .with_aborted_transactions(Some(vec![
                    m::fetch_response::AbortedTransaction::default()
                        .with_producer_id(m::ProducerId(4242))
                        .with_first_offset(1_000),
                ]))
                .with_records(Some(r.clone()))
        })
        .collect();
    m::FetchResponse::default()
        .with_session_id(77)
        .with_responses(vec![m::fetch_response::FetchableTopicResponse::default()
            .with_topic(topic("events"))
            .with_partitions(partitions)])
}

fn fetch_seeds(corpus: &mut Corpus, name: &str, records: &[Bytes]) {
    let v = m::FetchRequest::VERSIONS;
    for version in v.min..=v.max {
        let resp = ResponseKind::Fetch(fetch_response(records));
        if let Some(frame) = response_frame(ApiKey::Fetch, version, resp) {
            let input = response_input::<m::FetchRequest>(version, &frame);
            corpus.put("fetch_response", &format!("{name}-v{version}"), &input);
        }
    }
}

fn metadata_seeds(corpus: &mut Corpus) {
    let broker = |id: i32, rack: Option<&'static str>| {
        m::metadata_response::MetadataResponseBroker::default()
            .with_node_id(m::BrokerId(id))
            .with_host(StrBytes::from_static_str("broker.example.internal"))
            .with_port(9092)
            .with_rack(rack.map(StrBytes::from_static_str))
    };
    let partition = |i: i32| {
        m::metadata_response::MetadataResponsePartition::default()
            .with_partition_index(i)
            .with_leader_id(m::BrokerId(i % 3))
            .with_leader_epoch(4)
            .with_replica_nodes(vec![m::BrokerId(0), m::BrokerId(1), m::BrokerId(2)])
            .with_isr_nodes(vec![m::BrokerId(0), m::BrokerId(1)])
    };
    let resp = m::MetadataResponse::default()
        .with_cluster_id(Some(StrBytes::from_static_str("kingest-cluster")))
        .with_controller_id(m::BrokerId(1))
        .with_brokers(vec![
            broker(0, Some("a")),
            broker(1, None),
            broker(2, Some("c")),
        ])
        .with_topics(vec![
            m::metadata_response::MetadataResponseTopic::default()
                .with_name(Some(topic("events")))
                .with_partitions((0..4).map(partition).collect()),
            m::metadata_response::MetadataResponseTopic::default()
                .with_error_code(3)
                .with_name(Some(topic("missing"))),
        ]);
    let v = m::MetadataRequest::VERSIONS;
    for version in v.min..=v.max {
        for (name, r) in [
            ("full", resp.clone()),
            ("empty", m::MetadataResponse::default()),
        ] {
            if let Some(frame) =
                response_frame(ApiKey::Metadata, version, ResponseKind::Metadata(r))
            {
                let input = response_input::<m::MetadataRequest>(version, &frame);
                corpus.put("metadata_response", &format!("{name}-v{version}"), &input);
            }
        }
    }
}

/// Seeds of the ingest_decode target: a shape selector byte, then records separated by 0xFF,
/// each well formed for one of the decoders (JSON with every column kind, CSV, Confluent Avro,
/// raw), plus near misses (escapes, nesting, numbers at their limits, quoted CSV fields).
fn ingest_seeds(corpus: &mut Corpus) {
    let records: [&[u8]; 12] = [
        br#"{"a": 1, "s": ["x"], "st": {"x": [1.5, -2e3], "y": true}, "d": "12.345", "t": "2024-01-02T03:04:05.123456789Z", "day": "2024-02-29", "u": 255, "raw": {"k": [1, null]}, "b": "YmluYXJ5"}"#,
        br#"{"a": -9223372036854775808, "d": 1.5e2, "t": 1700000000000000000, "u": 256}"#,
        br#"{"s": ["caf\u00e9 \ud83d\ude00 \"q\" \\"], "st": null, "a": 123456789012345678}"#,
        br#"[1, {"a": 2}]"#,
        b"1;x;2024-01-02;1.5;1700000000000;2.5",
        b"'1';'a;b''c';\\N;-0.0001;0;1e39",
        &[0, 0, 0, 0, 1, 2, 0, 0, 0, 0, b'a', b'b', b'c', 2, 5, 0, 0, 0, 0, 0, 0],
        &[
            0, 0, 0, 0, 1, 3, 2, 6, b'h', b'i', b'!', 3, 2, 4, 0, 2, 2, b'k', 0, 0, 0, 0, 0, 0,
            0, 0, 0, 2, b'x', b'y', b'z', 2, 0xff, 2, 1, 0, 0, 0x80, 0x3f, 0, 0, 0, 0,
        ],
        b"2.5",
        b"-inf",
        b"",
        "名前 Zoë".as_bytes(),
    ];
    for selector in 0u8..4 {
        let mut input = vec![selector];
        for (i, r) in records.iter().enumerate() {
            if i > 0 {
                input.push(0xFF);
            }
            input.extend_from_slice(r);
        }
        corpus.put("ingest_decode", &format!("all-shape{selector}"), &input);
    }
    for (i, r) in records.iter().enumerate() {
        let mut input = vec![1u8];
        input.extend_from_slice(r);
        corpus.put("ingest_decode", &format!("one-{i}"), &input);
    }
}

fn api_versions_seeds(corpus: &mut Corpus) {
    let keys = (0..75i16)
        .filter_map(|k| ApiKey::try_from(k).ok())
        .map(|k| {
            let r = k.valid_versions();
            m::api_versions_response::ApiVersion::default()
                .with_api_key(k as i16)
                .with_min_version(r.min)
                .with_max_version(r.max)
        })
        .collect();
    let resp = m::ApiVersionsResponse::default()
        .with_api_keys(keys)
        .with_finalized_features_epoch(3)
        .with_supported_features(vec![
            m::api_versions_response::SupportedFeatureKey::default()
                .with_name(StrBytes::from_static_str("metadata.version"))
                .with_min_version(1)
                .with_max_version(20),
        ])
        .with_finalized_features(vec![
            m::api_versions_response::FinalizedFeatureKey::default()
                .with_name(StrBytes::from_static_str("metadata.version"))
                .with_min_version_level(1)
                .with_max_version_level(20),
        ]);
    // A broker too old for our version answers with error 35 and its own ranges at v0.
    let refused = m::ApiVersionsResponse::default().with_error_code(35);
    let v = m::ApiVersionsRequest::VERSIONS;
    for version in v.min..=v.max {
        for (name, r) in [("full", resp.clone()), ("unsupported", refused.clone())] {
            let kind = ResponseKind::ApiVersions(r);
            if let Some(frame) = response_frame(ApiKey::ApiVersions, version, kind) {
                let input = response_input::<m::ApiVersionsRequest>(version, &frame);
                corpus.put(
                    "api_versions_response",
                    &format!("{name}-v{version}"),
                    &input,
                );
            }
        }
    }
}

/// Encodes `req` at every version of its range, as request frames without the size prefix.
fn request_frames<R: Request>(req: &R) -> Vec<(i16, Vec<u8>)> {
    let v = R::VERSIONS;
    (v.min..=v.max)
        .filter_map(|version| {
            let mut buf = BytesMut::new();
            encode_request(&mut buf, 7, Some("kingest-fuzz"), version, req).ok()?;
            Some((version, unframe(buf)))
        })
        .collect()
}

fn produce_request(records: &[Bytes]) -> m::ProduceRequest {
    m::ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![m::produce_request::TopicProduceData::default()
            .with_name(topic("events"))
            .with_partition_data(
                records
                    .iter()
                    .enumerate()
                    .map(|(i, r)| {
                        m::produce_request::PartitionProduceData::default()
                            .with_index(i as i32)
                            .with_records(Some(r.clone()))
                    })
                    .collect(),
            )])
}

fn request_seeds(corpus: &mut Corpus, frames_out: &mut Vec<Vec<u8>>) {
    let mut put = |corpus: &mut Corpus, name: &str, frames: Vec<(i16, Vec<u8>)>| {
        for (version, frame) in frames {
            corpus.put("request_decode", &format!("{name}-v{version}"), &frame);
            if frames_out.len() < 64 {
                frames_out.push(frame);
            }
        }
    };
    put(
        corpus,
        "api-versions",
        request_frames(
            &m::ApiVersionsRequest::default()
                .with_client_software_name(StrBytes::from_static_str("kingest"))
                .with_client_software_version(StrBytes::from_static_str("0.1.0")),
        ),
    );
    put(
        corpus,
        "metadata",
        request_frames(&m::MetadataRequest::default().with_topics(Some(vec![
            m::metadata_request::MetadataRequestTopic::default().with_name(Some(topic("events"))),
        ]))),
    );
    put(
        corpus,
        "metadata-all",
        request_frames(&m::MetadataRequest::default()),
    );
    put(
        corpus,
        "fetch",
        request_frames(
            &m::FetchRequest::default()
                .with_max_wait_ms(500)
                .with_min_bytes(1)
                .with_max_bytes(52_428_800)
                .with_isolation_level(1)
                .with_topics(vec![m::fetch_request::FetchTopic::default()
                    .with_topic(topic("events"))
                    .with_partitions(vec![m::fetch_request::FetchPartition::default()
                        .with_partition(0)
                        .with_fetch_offset(1_000)
                        .with_partition_max_bytes(1_048_576)])]),
        ),
    );
    let sets: Vec<Bytes> = record_sets()
        .into_iter()
        .filter(|(n, _)| n.ends_with("-ten-headers") || n.starts_with("control-commit"))
        .map(|(_, b)| b)
        .collect();
    put(corpus, "produce", request_frames(&produce_request(&sets)));
    macro_rules! defaults {
        ($($ty:ident),* $(,)?) => {
            $(put(corpus, stringify!($ty), request_frames(&m::$ty::default()));)*
        };
    }
    defaults!(
        ListOffsetsRequest,
        OffsetCommitRequest,
        OffsetFetchRequest,
        FindCoordinatorRequest,
        JoinGroupRequest,
        HeartbeatRequest,
        LeaveGroupRequest,
        SyncGroupRequest,
        DescribeGroupsRequest,
        ListGroupsRequest,
        SaslHandshakeRequest,
        SaslAuthenticateRequest,
        CreateTopicsRequest,
        DeleteTopicsRequest,
        InitProducerIdRequest,
        AddPartitionsToTxnRequest,
        AddOffsetsToTxnRequest,
        EndTxnRequest,
        TxnOffsetCommitRequest,
        DescribeConfigsRequest,
        DeleteRecordsRequest,
        OffsetForLeaderEpochRequest,
        DescribeClusterRequest,
    );
}

fn frame_seeds(corpus: &mut Corpus, frames: &[Vec<u8>]) {
    let mut stream = Vec::new();
    for (i, frame) in frames.iter().enumerate() {
        stream.extend_from_slice(&(frame.len() as i32).to_be_bytes());
        stream.extend_from_slice(frame);
        if i % 8 == 7 {
            // limit byte 5 = the default limit, 4 = 1 MiB, 3 = 1 KiB; then the read size.
            for (limit, read) in [(5u8, 0u8), (4, 16), (3, 255)] {
                let mut input = vec![limit, read];
                input.extend_from_slice(&stream);
                corpus.put(
                    "frame_split",
                    &format!("frames{i}-limit{limit}-read{read}"),
                    &input,
                );
            }
            stream.clear();
        }
    }
    // A negative and an oversized prefix after a good frame.
    for bad in [-1i32, 0x7fff_ffff] {
        let mut input = vec![5u8, 3, 0, 0, 0, 2, b'o', b'k'];
        input.extend_from_slice(&bad.to_be_bytes());
        corpus.put("frame_split", &format!("bad-prefix{bad}"), &input);
    }
}

/// Seeds from the captured fixtures: whatever each one turns out to be.
fn fixture_seeds(corpus: &mut Corpus, dir: &Path) -> usize {
    if !dir.is_dir() {
        eprintln!("make_seeds: no fixtures at {} (skipped)", dir.display());
        return 0;
    }
    let mut paths = Vec::new();
    find_bins(dir, &mut paths);
    paths.sort();
    for path in &paths {
        let data = Bytes::from(fs::read(path).expect("reading a fixture"));
        let stem = path
            .strip_prefix(dir)
            .unwrap_or(path)
            .with_extension("")
            .to_string_lossy()
            .replace(std::path::MAIN_SEPARATOR, "-");
        let name = format!("fixture-{stem}");
        corpus.put("record_set_raw", &name, &data);
        let batches = batches_of(&data);
        for (i, b) in batches.iter().enumerate() {
            if let Some(input) = codec_input_of(b) {
                corpus.put("record_batch_codec", &format!("{name}-{i}"), &input);
            }
        }
        if !batches.is_empty() {
            fetch_seeds(corpus, &name, std::slice::from_ref(&data));
            for (version, frame) in request_frames(&produce_request(std::slice::from_ref(&data))) {
                corpus.put(
                    "request_decode",
                    &format!("{name}-produce-v{version}"),
                    &frame,
                );
            }
        }
        // A fixture may also be a captured frame, with or without its size prefix.
        let mut candidates = vec![data.clone()];
        if data.len() >= 4
            && u32::from_be_bytes([data[0], data[1], data[2], data[3]]) as usize == data.len() - 4
        {
            candidates.push(data.slice(4..));
        }
        for frame in candidates {
            if decode_request(frame.clone()).is_ok() {
                corpus.put("request_decode", &format!("{name}-request"), &frame);
            }
            response_fixture::<m::FetchRequest>(corpus, "fetch_response", &name, &frame);
            response_fixture::<m::MetadataRequest>(corpus, "metadata_response", &name, &frame);
            response_fixture::<m::ApiVersionsRequest>(
                corpus,
                "api_versions_response",
                &name,
                &frame,
            );
        }
    }
    paths.len()
}

/// Every `*.bin` file under `dir`, subdirectories included.
fn find_bins(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
        if path.is_dir() {
            find_bins(&path, out);
        } else if path.extension().is_some_and(|x| x == "bin") {
            out.push(path);
        }
    }
}

fn response_fixture<R: Request>(corpus: &mut Corpus, target: &str, name: &str, frame: &Bytes) {
    let v = R::VERSIONS;
    for version in v.min..=v.max {
        if decode_response::<R>(frame.clone(), version).is_ok() {
            corpus.put(
                target,
                &format!("{name}-v{version}"),
                &response_input::<R>(version, frame),
            );
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, fixtures, out] = &args[..] else {
        eprintln!("usage: make_seeds <fixtures dir> <corpus dir>");
        std::process::exit(2);
    };
    let mut corpus = Corpus {
        root: PathBuf::from(out),
        written: 0,
    };
    let sets = record_sets();
    for (name, set) in &sets {
        corpus.put("record_set_raw", name, set);
        for (i, b) in batches_of(set).iter().enumerate() {
            if let Some(input) = codec_input_of(b) {
                corpus.put("record_batch_codec", &format!("{name}-{i}"), &input);
            }
        }
    }
    let fetch_sets: Vec<Bytes> = sets
        .iter()
        .filter(|(n, _)| {
            n.ends_with("-ten-headers") || n.starts_with("multi") || n.starts_with("control")
        })
        .map(|(_, s)| s.clone())
        .collect();
    fetch_seeds(&mut corpus, "batches", &fetch_sets);
    fetch_seeds(&mut corpus, "empty", &[]);
    metadata_seeds(&mut corpus);
    api_versions_seeds(&mut corpus);
    let mut frames = Vec::new();
    request_seeds(&mut corpus, &mut frames);
    frame_seeds(&mut corpus, &frames);
    let fixtures = fixture_seeds(&mut corpus, Path::new(fixtures));
    ingest_seeds(&mut corpus);
    println!(
        "make_seeds: {} seeds written to {out} ({fixtures} fixtures used)",
        corpus.written
    );
}
