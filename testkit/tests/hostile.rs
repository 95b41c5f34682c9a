//! Hostile clients: garbage, truncated and oversized frames, absurd counts and corrupt batches.
//! The cluster must answer with errors or close the connection, never panic, and keep serving
//! well-behaved clients.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use kingest_protocol::frame::FrameDecoder;
use kingest_protocol::kafka_protocol::messages::produce_request::{
    PartitionProduceData, TopicProduceData,
};
use kingest_protocol::kafka_protocol::messages::{MetadataRequest, ProduceRequest, TopicName};
use kingest_protocol::kafka_protocol::protocol::StrBytes;
use kingest_protocol::message::{decode_response, encode_request};
use kingest_protocol::record::{BatchBuilder, BatchOptions};
use kingest_testkit::{Cluster, ClusterConfig};
use proptest::prelude::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

static PANICS: AtomicUsize = AtomicUsize::new(0);

fn count_panics() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        previous(info);
    }));
}

/// Sends raw bytes, then reads until the server answers or closes (or 500 ms pass).
async fn poke(addr: &str, bytes: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let _ = s.write_all(bytes).await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_millis(500), s.read_to_end(&mut out)).await;
    out
}

/// A well-behaved request still works.
async fn healthy(addr: &str) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut buf = BytesMut::new();
    encode_request(&mut buf, 1, Some("ok"), 9, &MetadataRequest::default()).unwrap();
    s.write_all(&buf).await.unwrap();
    let mut read = BytesMut::new();
    let frame = loop {
        if let Some(f) = FrameDecoder::default().split(&mut read).unwrap() {
            break f;
        }
        assert!(
            s.read_buf(&mut read).await.unwrap() > 0,
            "server closed a healthy connection"
        );
    };
    decode_response::<MetadataRequest>(frame.freeze(), 9).unwrap();
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut v = (body.len() as i32).to_be_bytes().to_vec();
    v.extend_from_slice(body);
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_is_refused_and_the_cluster_keeps_serving() {
    count_panics();
    let cluster = Cluster::start(ClusterConfig::default()).await.unwrap();
    cluster.create_topic("t", 1).unwrap();
    let addr = cluster.bootstrap();
    let cases: Vec<Vec<u8>> = vec![
        vec![0xff, 0xff, 0xff, 0xff],                 // negative size
        vec![0x7f, 0xff, 0xff, 0xff, 1, 2, 3],        // 2 GiB announced
        frame(&[]),                                   // empty frame
        frame(&[0, 3]),                               // short header
        frame(&[0x7f, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0]), // unknown API key
        frame(&[0, 3, 0x7f, 0, 0, 0, 0, 1, 0, 0]),    // unknown version
        frame(&[0, 3, 0, 0, 0, 0, 0, 1, 0, 0, 0x03, 0x3c, 0x0c, 0x00]), // 54 million topics
        frame(&[0, 18, 0, 9, 0, 0, 0, 7]),            // ApiVersions too new, no client id
        (0..200u8).map(|i| i.wrapping_mul(91)).collect(), // noise
    ];
    for case in &cases {
        let _ = poke(&addr, case).await;
    }
    // The too-new ApiVersions got a version-0 UNSUPPORTED_VERSION answer, not a hang-up.
    let answer = poke(&addr, &frame(&[0, 18, 0, 9, 0, 0, 0, 7, 0, 0])).await;
    assert!(
        answer.len() > 10 && answer[4..8] == [0, 0, 0, 7] && answer[8..10] == [0, 35],
        "{answer:?}"
    );
    healthy(&addr).await;
    assert_eq!(PANICS.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_batches_get_corrupt_message() {
    let cluster = Cluster::start(ClusterConfig::default()).await.unwrap();
    cluster.create_topic("t", 1).unwrap();
    let mut batch = {
        let mut b = BatchBuilder::new(BatchOptions::default());
        b.push(1, None, Some(b"v"), &[]);
        b.finish().unwrap().to_vec()
    };
    let last = batch.len() - 1;
    batch[last] ^= 1; // breaks the CRC
    let request = ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(1000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_static_str("t")))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(batch.into()))])]);
    let mut buf = BytesMut::new();
    encode_request(&mut buf, 5, None, 9, &request).unwrap();
    let answer = poke(&cluster.bootstrap(), &buf).await;
    let mut read = BytesMut::from(&answer[..]);
    let frame = FrameDecoder::default()
        .split(&mut read)
        .unwrap()
        .expect("a response");
    let (_, response) = decode_response::<ProduceRequest>(frame.freeze(), 9).unwrap();
    let code = response.responses[0].partition_responses[0].error_code;
    assert_eq!(code, kingest_protocol::ErrorCode::CorruptMessage.code());
    assert_eq!(cluster.high_watermark("t", 0), Some(0), "nothing appended");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Random bodies behind a valid header for every served API: no panic, and the cluster
    /// still answers a healthy client afterwards.
    #[test]
    fn random_request_bodies(key in 0i16..70, version in 0i16..14, body in prop::collection::vec(any::<u8>(), 0..300)) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(async {
            count_panics();
            let cluster = Cluster::start(ClusterConfig::default()).await.unwrap();
            cluster.create_topic("t", 2).unwrap();
            let addr = cluster.bootstrap();
            let mut b = BytesMut::new();
            b.put_i16(key);
            b.put_i16(version);
            b.put_i32(42);
            b.put_i16(-1);
            b.put_slice(&body);
            let _ = poke(&addr, &frame(&b)).await;
            healthy(&addr).await;
        });
        prop_assert_eq!(PANICS.load(Ordering::SeqCst), 0);
    }
}
