//! Connection tests against a scripted fake broker on loopback: pipelining, version fallback,
//! cancellation, timeouts, throttling and broken connections.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use kingest_protocol::frame::FrameDecoder;
use kingest_protocol::kafka_protocol::messages::api_versions_response::ApiVersion;
use kingest_protocol::kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, MetadataRequest, MetadataResponse, RequestKind, ResponseKind,
};
use kingest_protocol::message::{decode_request, encode_response};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;

/// What the fake broker does with a Metadata request.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Behaviour {
    Answer,
    /// Answer with a throttle time.
    Throttle(i32),
    /// Never answer.
    Silent,
    /// Write half of the response, then close.
    HalfThenClose,
    /// Answer the second request before the first.
    Reorder,
    /// Close the connection without answering (a SASL listener's answer to an
    /// unauthenticated request).
    Close,
}

/// A broker that answers ApiVersions (refusing versions above `max_api_versions` the way real
/// brokers do) and Metadata per `behaviour`. Returns its address and a counter of whole frames
/// it decoded.
async fn fake_broker(
    behaviour: Behaviour,
    max_api_versions: i16,
) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let frames = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = frames.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(serve(socket, behaviour, max_api_versions, counter.clone()));
        }
    });
    (addr, frames)
}

async fn serve(
    mut socket: TcpStream,
    behaviour: Behaviour,
    max_api_versions: i16,
    frames: Arc<std::sync::atomic::AtomicUsize>,
) {
    let decoder = FrameDecoder::default();
    let mut buf = BytesMut::new();
    let mut held: Option<BytesMut> = None;
    loop {
        while let Some(frame) = decoder.split(&mut buf).unwrap() {
            let (header, body) =
                decode_request(frame.freeze()).expect("client sent a malformed frame");
            frames.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let mut out = BytesMut::new();
            let version = header.request_api_version;
            match body {
                RequestKind::ApiVersions(_) if version > max_api_versions => {
                    let resp = ApiVersionsResponse::default()
                        .with_error_code(35)
                        .with_api_keys(vec![ApiVersion::default()
                            .with_api_key(18)
                            .with_min_version(0)
                            .with_max_version(max_api_versions)]);
                    encode_response(
                        &mut out,
                        header.correlation_id,
                        ApiKey::ApiVersions,
                        0,
                        &ResponseKind::ApiVersions(resp),
                    )
                    .unwrap();
                }
                RequestKind::ApiVersions(_) => {
                    let resp = ApiVersionsResponse::default().with_api_keys(vec![
                        ApiVersion::default()
                            .with_api_key(18)
                            .with_min_version(0)
                            .with_max_version(max_api_versions),
                        ApiVersion::default()
                            .with_api_key(3)
                            .with_min_version(0)
                            .with_max_version(12),
                    ]);
                    encode_response(
                        &mut out,
                        header.correlation_id,
                        ApiKey::ApiVersions,
                        version,
                        &ResponseKind::ApiVersions(resp),
                    )
                    .unwrap();
                }
                RequestKind::Metadata(_) => {
                    let throttle = if let Behaviour::Throttle(ms) = behaviour {
                        ms
                    } else {
                        0
                    };
                    let resp = MetadataResponse::default()
                        .with_throttle_time_ms(throttle)
                        .with_controller_id(kingest_protocol::kafka_protocol::messages::BrokerId(
                            header.correlation_id,
                        ));
                    encode_response(
                        &mut out,
                        header.correlation_id,
                        ApiKey::Metadata,
                        version,
                        &ResponseKind::Metadata(resp),
                    )
                    .unwrap();
                    match behaviour {
                        Behaviour::Silent => continue,
                        Behaviour::Close => return,
                        Behaviour::HalfThenClose => {
                            socket.write_all(&out[..out.len() / 2]).await.unwrap();
                            return;
                        }
                        Behaviour::Reorder => match held.take() {
                            None => {
                                held = Some(out);
                                continue;
                            }
                            Some(first) => {
                                socket.write_all(&out).await.unwrap();
                                out = first;
                            }
                        },
                        _ => {}
                    }
                }
                other => panic!("unexpected request {other:?}"),
            }
            socket.write_all(&out).await.unwrap();
        }
        buf.reserve(4096);
        if socket.read_buf(&mut buf).await.unwrap_or(0) == 0 {
            return;
        }
    }
}

fn config(timeout_ms: u64) -> Arc<ConnectionConfig> {
    Arc::new(ConnectionConfig {
        request_timeout: Duration::from_millis(timeout_ms),
        ..ConnectionConfig::default()
    })
}

async fn connect(addr: &str, timeout_ms: u64) -> Connection {
    Connection::connect(
        BrokerRef {
            id: 1,
            addr: addr.to_owned(),
        },
        config(timeout_ms),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn negotiates_and_pipelines() {
    let (addr, frames) = fake_broker(Behaviour::Answer, 3).await;
    let conn = connect(&addr, 5000).await;
    assert_eq!(conn.version_of::<MetadataRequest>().unwrap(), 12);
    // 50 requests in flight at once on one connection; each gets its own answer (the fake
    // broker echoes the correlation id as the controller id).
    let calls = (0..50).map(|_| {
        let c = conn.clone();
        tokio::spawn(async move {
            c.send(&MetadataRequest::default())
                .await
                .unwrap()
                .controller_id
        })
    });
    let mut ids = Vec::new();
    for call in calls {
        ids.push(call.await.unwrap());
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 50);
    // Two ApiVersions (ours is newer than the fake broker's v3, so it is asked again) + 50.
    assert_eq!(frames.load(std::sync::atomic::Ordering::SeqCst), 52);
}

#[tokio::test]
async fn falls_back_to_the_brokers_api_versions_version() {
    let (addr, frames) = fake_broker(Behaviour::Answer, 2).await;
    let conn = connect(&addr, 5000).await;
    assert_eq!(conn.versions().broker_range(18).unwrap().max, 2);
    assert_eq!(
        frames.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "asked twice: v4 refused, then v2"
    );
}

#[tokio::test]
async fn out_of_order_responses_reach_their_callers() {
    let (addr, _) = fake_broker(Behaviour::Reorder, 3).await;
    let conn = connect(&addr, 5000).await;
    let req = MetadataRequest::default();
    let (a, b) = tokio::join!(conn.send(&req), async {
        tokio::time::sleep(Duration::from_millis(20)).await;
        conn.send(&req).await
    });
    assert_ne!(a.unwrap().controller_id, b.unwrap().controller_id);
}

#[tokio::test]
async fn dropped_callers_leave_whole_frames() {
    let (addr, frames) = fake_broker(Behaviour::Answer, 3).await;
    let conn = connect(&addr, 5000).await;
    // Start many requests and drop them at arbitrary points (immediately, after a yield...).
    for i in 0..200u32 {
        let c = conn.clone();
        let fut = async move { c.send(&MetadataRequest::default()).await };
        let _ = tokio::time::timeout(Duration::from_micros(u64::from(i % 7) * 10), fut).await;
    }
    // The connection still works, and the broker decoded every frame it got (a torn frame
    // would have made it panic and close, failing this request).
    let r = conn.send(&MetadataRequest::default()).await;
    assert!(r.is_ok(), "{r:?}");
    assert!(frames.load(std::sync::atomic::Ordering::SeqCst) >= 2);
}

#[tokio::test]
async fn a_silent_broker_times_out_and_the_connection_closes() {
    let (addr, _) = fake_broker(Behaviour::Silent, 3).await;
    let conn = connect(&addr, 300).await;
    let req = MetadataRequest::default();
    let (a, b) = tokio::join!(conn.send(&req), conn.send(&req));
    // Whichever times out first closes the connection; the other fails with that reason.
    let (a, b) = (a.unwrap_err(), b.unwrap_err());
    assert!(
        matches!(
            (&a, &b),
            (
                ClientError::Timeout {
                    api: "Metadata",
                    ..
                },
                _
            ) | (
                _,
                ClientError::Timeout {
                    api: "Metadata",
                    ..
                }
            )
        ),
        "{a} / {b}"
    );
    for e in [&a, &b] {
        assert!(
            e.is_retriable() && e.to_string().contains("timed out after 300ms"),
            "{e}"
        );
    }
    assert!(conn.is_closed());
    let later = conn.send(&MetadataRequest::default()).await.unwrap_err();
    assert!(later.to_string().contains("timed out"), "{later}");
}

#[tokio::test]
async fn a_connection_cut_mid_response_fails_cleanly() {
    let (addr, _) = fake_broker(Behaviour::HalfThenClose, 3).await;
    let conn = connect(&addr, 5000).await;
    let err = conn.send(&MetadataRequest::default()).await.unwrap_err();
    assert!(
        matches!(&err, ClientError::Disconnected { reason, .. } if reason.contains("closed by the broker")),
        "{err}"
    );
    assert!(err.to_string().contains("broker 1 (127.0.0.1:"), "{err}");
}

#[tokio::test]
async fn throttled_responses_delay_the_next_request() {
    let (addr, _) = fake_broker(Behaviour::Throttle(300), 3).await;
    let conn = connect(&addr, 5000).await;
    conn.send(&MetadataRequest::default()).await.unwrap();
    let start = Instant::now();
    conn.send(&MetadataRequest::default()).await.unwrap();
    assert!(
        start.elapsed() >= Duration::from_millis(250),
        "sent after {:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn refused_connections_name_the_broker() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    drop(listener);
    let err = Connection::connect(
        BrokerRef {
            id: -1,
            addr: addr.clone(),
        },
        config(1000),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ClientError::Connect { .. }));
    assert!(
        err.to_string()
            .contains(&format!("bootstrap broker {addr}")),
        "{err}"
    );
}

#[test]
fn tls_records_are_told_from_kafka_frames() {
    // An alert as TLS 1.2 and 1.3 listeners send it, a handshake record, and the start of a
    // ServerHello from an SSL 3.0-era version number.
    for bytes in [
        &[0x15, 3, 3, 0, 2, 2, 70][..],
        &[0x15, 3, 1, 0, 2],
        &[0x16, 3, 3, 0, 0x7a],
        &[0x17, 3, 0],
    ] {
        assert!(is_tls_record(bytes), "{bytes:?}");
    }
    // Kafka frames: a size first (small), never 20..=23 in the top byte for a first response.
    for bytes in [
        &[0, 0, 0, 16][..],
        &[0x15, 3],
        &[0x15, 2, 3],
        &[0x16, 3, 9],
        &[0x18, 3, 3],
    ] {
        assert!(!is_tls_record(bytes), "{bytes:?}");
    }
}

#[tokio::test]
async fn a_tls_answer_to_plaintext_says_so() {
    // What a TLS listener does with a plaintext ApiVersions request: a fatal alert
    // (protocol_version), then it closes.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 64];
        let _ = socket.read(&mut buf).await;
        let _ = socket.write_all(&[0x15, 3, 3, 0, 2, 2, 70]).await;
    });
    let err = Connection::connect(
        BrokerRef {
            id: -1,
            addr: addr.clone(),
        },
        config(5000),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ClientError::TlsRequired { .. }), "{err:?}");
    assert!(!err.is_retriable());
    assert_eq!(
        err.to_string(),
        format!(
            "bootstrap broker {addr} answered with TLS: set [source.tls] (the client's TLS \
             settings) to connect to a TLS listener"
        )
    );
}

#[tokio::test]
async fn a_close_after_api_versions_without_sasl_may_mean_authentication() {
    let (addr, _) = fake_broker(Behaviour::Close, 3).await;
    let conn = connect(&addr, 5000).await;
    let err = conn.send(&MetadataRequest::default()).await.unwrap_err();
    assert!(
        matches!(err, ClientError::ClosedUnauthenticated { .. }),
        "{err:?}"
    );
    assert!(err.is_retriable());
    assert_eq!(
        err.to_string(),
        format!(
            "broker 1 ({addr}) closed the connection after ApiVersions, before answering a \
             request: it may require authentication; set [source.sasl] (the client's SASL \
             settings)"
        )
    );
    // Later requests on the dead connection get the same reason.
    let later = conn.send(&MetadataRequest::default()).await.unwrap_err();
    assert!(
        matches!(later, ClientError::ClosedUnauthenticated { .. }),
        "{later:?}"
    );
}

#[tokio::test]
async fn a_close_before_api_versions_on_plaintext_may_mean_tls() {
    // What an OpenSSL TLS listener (stunnel) does with plaintext: it closes, no alert.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 64];
        let _ = socket.read(&mut buf).await;
    });
    let err = Connection::connect(
        BrokerRef {
            id: -1,
            addr: addr.clone(),
        },
        config(5000),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, ClientError::ClosedBeforeAnswer { .. }),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "bootstrap broker {addr} closed the connection without answering ApiVersions: it \
             may expect TLS; set [source.tls] (the client's TLS settings)"
        )
    );
}
