//! One pipelined connection to one broker.
//!
//! Two tasks own the socket: a writer that takes whole frames from a queue and writes them, and
//! a reader that splits response frames and hands each to the request waiting for its
//! correlation id. Callers only encode a frame, queue it and wait. That arrangement is what makes
//! the connection cancellation-safe: a caller that gives up (its future dropped, or a timeout)
//! can only drop a frame that was never queued, or abandon one that the writer will still write
//! whole; half a frame never reaches the socket, and a late response is simply discarded.
//!
//! A request that times out closes the connection, as the Java client does: its state is
//! unknown, and every request still waiting on it fails with the reason.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kingest_protocol::frame::{FrameDecoder, DEFAULT_MAX_FRAME_SIZE};
use kingest_protocol::kafka_protocol::messages::ApiVersionsRequest;
use kingest_protocol::kafka_protocol::protocol::{Request, StrBytes};
use kingest_protocol::message::{decode_response, encode_request, peek_correlation_id};
use kingest_protocol::versions::ApiVersionTable;
use kingest_protocol::{BrokerError, ErrorCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::stream::BrokerStream;
use super::throttle::ThrottleTime;
use crate::error::{BrokerRef, ClientError, Result};

/// How a connection is opened and how long its requests may take.
#[derive(Clone)]
#[non_exhaustive]
pub struct ConnectionConfig {
    /// Sent in every request header (`client.id`).
    pub client_id: String,
    /// How long to wait for the TCP (and TLS) connection.
    pub connect_timeout: Duration,
    /// How long to wait for a response before giving up on the connection (`request.timeout.ms`).
    pub request_timeout: Duration,
    /// The largest response frame accepted.
    pub max_frame_size: usize,
    /// TLS settings, built; `None` for plain TCP.
    pub tls: Option<(Arc<rustls::ClientConfig>, super::TlsConfig)>,
    /// SASL mechanism and credentials; `None` for no authentication.
    pub sasl: Option<crate::sasl::Mechanism>,
}

impl std::fmt::Debug for ConnectionConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionConfig")
            .field("client_id", &self.client_id)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("max_frame_size", &self.max_frame_size)
            .field("tls", &self.tls.as_ref().map(|(_, t)| t))
            .field("sasl", &self.sasl)
            .finish()
    }
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        Self {
            client_id: "kingest".to_owned(),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            tls: None,
            sasl: None,
        }
    }
}

type Reply = oneshot::Sender<std::result::Result<Bytes, Closed>>;

/// Why a connection is dead: what every request waiting on it, or sent on it later, fails with.
#[derive(Debug, Clone)]
enum Closed {
    /// Lost (reset, closed, an I/O error, a bad frame, a timeout, or closed by the client):
    /// [`ClientError::Disconnected`] with this reason.
    Lost(String),
    /// A plaintext connection got a TLS record back: [`ClientError::TlsRequired`].
    TlsAnswer,
    /// A plaintext connection was closed by the broker before it answered ApiVersions:
    /// [`ClientError::ClosedBeforeAnswer`].
    PlaintextUnanswered,
    /// A connection without SASL settings was closed by the broker after ApiVersions, before
    /// answering anything else: [`ClientError::ClosedUnauthenticated`].
    Unauthenticated,
}

impl Closed {
    fn error(&self, broker: &BrokerRef) -> ClientError {
        let broker = broker.clone();
        match self {
            Closed::Lost(reason) => ClientError::Disconnected {
                broker,
                reason: reason.clone(),
            },
            Closed::TlsAnswer => ClientError::TlsRequired { broker },
            Closed::PlaintextUnanswered => ClientError::ClosedBeforeAnswer { broker },
            Closed::Unauthenticated => ClientError::ClosedUnauthenticated { broker },
        }
    }
}

/// Whether `buf` starts with a TLS record header: content type change_cipher_spec, alert,
/// handshake or application_data (20-23), then protocol version 3.x (SSL 3.0 to TLS 1.3). A
/// Kafka response starts with its size instead, big-endian: read as a size these bytes are
/// over 335 MB, which no first response of a connection (ApiVersions) comes near. (A TLS
/// listener given plaintext answers with an alert: `15 03 03 00 02` is the
/// "frame of 352518912 bytes" plaintext clients used to report.)
fn is_tls_record(buf: &[u8]) -> bool {
    matches!(buf, [20..=23, 3, 0..=4, ..])
}

/// A frame to write, and where its response goes (`None`: no response expected, acks=0).
struct Outgoing {
    frame: BytesMut,
    correlation_id: i32,
    reply: Option<Reply>,
}

/// State shared by the handle and the two tasks.
struct Shared {
    broker: BrokerRef,
    /// Set once ApiVersions is negotiated: the answers after it are to other requests.
    negotiated: std::sync::atomic::AtomicBool,
    pending: Mutex<Pending>,
    throttle_until: Mutex<Option<Instant>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

#[derive(Default)]
struct Pending {
    waiting: HashMap<i32, Reply>,
    /// Set once the connection is dead, with the reason every later request gets.
    closed: Option<Closed>,
}

impl Shared {
    /// Marks the connection dead, fails everything waiting, and stops both tasks.
    fn close(&self, reason: &str) {
        self.close_as(Closed::Lost(reason.to_owned()));
    }

    /// [`Shared::close`] with any [`Closed`] reason.
    fn close_as(&self, reason: Closed) {
        let waiting = {
            let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            if p.closed.is_some() {
                return;
            }
            p.closed = Some(reason.clone());
            std::mem::take(&mut p.waiting)
        };
        tracing::debug!(broker = %self.broker, ?reason, "connection closed");
        for (_, reply) in waiting {
            let _ = reply.send(Err(reason.clone()));
        }
        for task in self
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            task.abort();
        }
    }

    fn closed_reason(&self) -> Option<Closed> {
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .closed
            .clone()
    }
}

/// A connection to one broker, shared by every user of that broker (it is cheap to clone).
#[derive(Clone)]
pub struct Connection {
    shared: Arc<Shared>,
    tx: mpsc::Sender<Outgoing>,
    next_correlation_id: Arc<AtomicI32>,
    versions: Arc<ApiVersionTable>,
    config: Arc<ConnectionConfig>,
    reauth: Option<Arc<super::auth::Reauthenticator>>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("broker", &self.shared.broker)
            .finish()
    }
}

impl Connection {
    /// Connects to `broker` (`id` -1 for a bootstrap address), negotiates API versions and
    /// authenticates.
    pub async fn connect(broker: BrokerRef, config: Arc<ConnectionConfig>) -> Result<Connection> {
        let stream = open_stream(&broker, &config).await?;
        let mut conn = Self::start(broker, stream, config.clone());
        conn.negotiate_versions().await?;
        conn.shared.negotiated.store(true, Ordering::SeqCst);
        if let Some(sasl) = &config.sasl {
            let reauth = super::auth::authenticate(&conn, sasl).await?;
            conn.reauth = reauth.map(Arc::new);
        }
        Ok(conn)
    }

    /// Spawns the reader and writer over an open stream.
    fn start(broker: BrokerRef, stream: BrokerStream, config: Arc<ConnectionConfig>) -> Connection {
        let first_answers = FirstAnswers {
            plaintext: matches!(stream, BrokerStream::Plain(_)),
            authenticating: config.sasl.is_some(),
        };
        let (read, write) = tokio::io::split(stream);
        let (tx, rx) = mpsc::channel(256);
        let shared = Arc::new(Shared {
            broker,
            negotiated: std::sync::atomic::AtomicBool::new(false),
            pending: Mutex::new(Pending::default()),
            throttle_until: Mutex::new(None),
            tasks: Mutex::new(Vec::new()),
        });
        let reader = tokio::spawn(read_loop(
            read,
            shared.clone(),
            FrameDecoder::new(config.max_frame_size),
            first_answers,
        ));
        let writer = tokio::spawn(write_loop(write, rx, shared.clone()));
        shared
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend([reader, writer]);
        Connection {
            shared,
            tx,
            next_correlation_id: Arc::new(AtomicI32::new(0)),
            versions: Arc::new(ApiVersionTable::default()),
            config,
            reauth: None,
        }
    }

    /// The broker this connection goes to.
    pub fn broker(&self) -> &BrokerRef {
        &self.shared.broker
    }

    /// The API versions the broker offers.
    pub fn versions(&self) -> &ApiVersionTable {
        &self.versions
    }

    /// Whether the connection has failed or been closed.
    pub fn is_closed(&self) -> bool {
        self.shared.closed_reason().is_some()
    }

    /// Closes the connection; requests still waiting fail.
    pub fn close(&self) {
        self.shared.close("closed by the client");
    }

    /// The highest version of `R` both sides speak.
    pub fn version_of<R: Request>(&self) -> Result<i16> {
        self.versions
            .negotiate::<R>()
            .map_err(|source| self.protocol_error::<R>(source))
    }

    /// Sends `request` at the highest version both sides speak and waits for its response.
    pub async fn send<R>(&self, request: &R) -> Result<R::Response>
    where
        R: Request,
        R::Response: ThrottleTime,
    {
        let version = self.version_of::<R>()?;
        self.send_version(version, request).await
    }

    /// Sends `request` at `version` and waits for its response.
    pub async fn send_version<R>(&self, version: i16, request: &R) -> Result<R::Response>
    where
        R: Request,
        R::Response: ThrottleTime,
    {
        self.send_version_within(version, request, self.config.request_timeout)
            .await
    }

    /// Sends `request` at the highest version both sides speak and waits up to `timeout` for
    /// its response: for requests the broker may hold longer than the request timeout, such
    /// as a JoinGroup waiting for the other members (up to the rebalance timeout).
    pub(crate) async fn send_within<R>(&self, request: &R, timeout: Duration) -> Result<R::Response>
    where
        R: Request,
        R::Response: ThrottleTime,
    {
        let version = self.version_of::<R>()?;
        self.send_version_within(version, request, timeout).await
    }

    async fn send_version_within<R>(
        &self,
        version: i16,
        request: &R,
        timeout: Duration,
    ) -> Result<R::Response>
    where
        R: Request,
        R::Response: ThrottleTime,
    {
        if let Some(reauth) = &self.reauth {
            reauth.before_request(self).await?;
        }
        let frame = {
            // Held while the request is queued, so a re-authentication never interleaves.
            let _gate = match &self.reauth {
                Some(r) => Some(r.gate.read().await),
                None => None,
            };
            self.enqueue::<R>(version, request, true).await?
        };
        let frame = self.await_reply::<R>(frame, timeout).await?;
        let (_, response) = decode_response::<R>(frame, version)
            .map_err(|source| self.protocol_error::<R>(source))?;
        self.note_throttle(response.throttle_time_ms());
        Ok(response)
    }

    /// Sends `request` without waiting for a response: for produce with acks=0, to which
    /// brokers never answer.
    pub async fn send_no_response<R: Request>(&self, version: i16, request: &R) -> Result<()> {
        let _gate = match &self.reauth {
            Some(r) => Some(r.gate.read().await),
            None => None,
        };
        self.enqueue::<R>(version, request, false).await.map(|_| ())
    }

    /// Sends a request and returns its raw response frame, bypassing the re-authentication gate
    /// (for the connection's own ApiVersions and SASL requests).
    pub(crate) async fn request_frame_ungated<R: Request>(
        &self,
        version: i16,
        request: &R,
    ) -> Result<Bytes> {
        let pending = self.enqueue::<R>(version, request, true).await?;
        self.await_reply::<R>(pending, self.config.request_timeout)
            .await
    }

    /// Waits for the response to a queued request, within `timeout`.
    async fn await_reply<R: Request>(
        &self,
        pending: Option<oneshot::Receiver<std::result::Result<Bytes, Closed>>>,
        timeout: Duration,
    ) -> Result<Bytes> {
        let Some(response) = pending else {
            return Err(self.disconnected("no response was requested".to_owned()));
        };
        match tokio::time::timeout(timeout, response).await {
            Ok(Ok(Ok(frame))) => Ok(frame),
            Ok(Ok(Err(reason))) => Err(reason.error(&self.shared.broker)),
            Ok(Err(_)) => Err(self.disconnected("connection dropped the request".to_owned())),
            Err(_) => {
                let api = api_of::<R>();
                self.shared
                    .close(&format!("{api} request timed out after {:?}", timeout));
                Err(ClientError::Timeout {
                    broker: self.shared.broker.clone(),
                    api,
                    timeout,
                })
            }
        }
    }

    /// Encodes and queues a request; returns where its response will arrive (`None` when no
    /// response was asked for).
    async fn enqueue<R: Request>(
        &self,
        version: i16,
        request: &R,
        want_reply: bool,
    ) -> Result<Option<oneshot::Receiver<std::result::Result<Bytes, Closed>>>> {
        self.wait_for_throttle().await;
        if let Some(reason) = self.shared.closed_reason() {
            return Err(reason.error(&self.shared.broker));
        }
        let correlation_id = self.next_correlation_id.fetch_add(1, Ordering::Relaxed) & i32::MAX;
        let mut frame = BytesMut::new();
        encode_request(
            &mut frame,
            correlation_id,
            Some(&self.config.client_id),
            version,
            request,
        )
        .map_err(|source| self.protocol_error::<R>(source))?;
        let (reply, response) = if want_reply {
            let (tx, rx) = oneshot::channel();
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        // Cancel-safe: either the whole frame is queued or nothing is.
        self.tx
            .send(Outgoing {
                frame,
                correlation_id,
                reply,
            })
            .await
            .map_err(|_| match self.shared.closed_reason() {
                Some(reason) => reason.error(&self.shared.broker),
                None => self.disconnected("writer stopped".to_owned()),
            })?;
        Ok(response)
    }

    async fn wait_for_throttle(&self) {
        let until = *self
            .shared
            .throttle_until
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(until) = until {
            tokio::time::sleep_until(until.into()).await;
        }
    }

    fn note_throttle(&self, ms: i32) {
        if ms > 0 {
            tracing::debug!(broker = %self.shared.broker, ms, "throttled by the broker");
            let until = Instant::now() + Duration::from_millis(ms as u64);
            let mut t = self
                .shared
                .throttle_until
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            *t = Some(t.map_or(until, |old| old.max(until)));
        }
    }

    /// ApiVersions: ask at the newest version we know; a broker that does not know it answers
    /// UNSUPPORTED_VERSION in a version-0 body listing what it does know, and we ask again.
    async fn negotiate_versions(&mut self) -> Result<()> {
        let ours =
            <ApiVersionsRequest as kingest_protocol::kafka_protocol::protocol::Message>::VERSIONS
                .max;
        let request = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("kingest"))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let mut version = ours;
        for _ in 0..2 {
            let frame = self
                .request_frame_ungated::<ApiVersionsRequest>(version, &request)
                .await?;
            let response = match decode_response::<ApiVersionsRequest>(frame.clone(), version) {
                Ok((_, r)) => r,
                // The error answer is always encoded as version 0.
                Err(_) if version > 0 => {
                    decode_response::<ApiVersionsRequest>(frame, 0)
                        .map_err(|source| self.protocol_error::<ApiVersionsRequest>(source))?
                        .1
                }
                Err(source) => return Err(self.protocol_error::<ApiVersionsRequest>(source)),
            };
            let code = ErrorCode::from_code(response.error_code);
            if code == ErrorCode::UnsupportedVersion {
                let theirs = response
                    .api_keys
                    .iter()
                    .find(|k| k.api_key == ApiVersionsRequest::KEY);
                match theirs {
                    Some(k) if k.max_version < version => {
                        version = k.max_version.min(ours);
                        continue;
                    }
                    _ => {}
                }
            }
            if !code.is_ok() {
                return Err(ClientError::Broker {
                    broker: self.shared.broker.clone(),
                    api: "ApiVersions",
                    source: BrokerError::new(code, None),
                });
            }
            self.versions = Arc::new(ApiVersionTable::from_response(&response));
            return Ok(());
        }
        Err(ClientError::Broker {
            broker: self.shared.broker.clone(),
            api: "ApiVersions",
            source: BrokerError::new(ErrorCode::UnsupportedVersion, None),
        })
    }

    pub(crate) fn protocol_error<R: Request>(
        &self,
        source: kingest_protocol::ProtocolError,
    ) -> ClientError {
        ClientError::Protocol {
            broker: self.shared.broker.clone(),
            api: api_of::<R>(),
            source,
        }
    }

    fn disconnected(&self, reason: String) -> ClientError {
        ClientError::Disconnected {
            broker: self.shared.broker.clone(),
            reason,
        }
    }
}

/// The API name of a request type, e.g. "Fetch".
pub(crate) fn api_of<R: Request>() -> &'static str {
    kingest_protocol::kafka_protocol::messages::ApiKey::try_from(R::KEY)
        .map(kingest_protocol::message::api_name)
        .unwrap_or("unknown API")
}

/// Opens TCP (and TLS) to `broker` within the connect timeout.
async fn open_stream(broker: &BrokerRef, config: &ConnectionConfig) -> Result<BrokerStream> {
    let connect = async {
        let tcp =
            TcpStream::connect(&broker.addr)
                .await
                .map_err(|source| ClientError::Connect {
                    broker: broker.clone(),
                    source,
                })?;
        // Requests are whole frames written at once: Nagle's delay would only add latency.
        let _ = tcp.set_nodelay(true);
        let Some((tls, settings)) = &config.tls else {
            return Ok(BrokerStream::Plain(tcp));
        };
        if settings.danger_accept_invalid_certs {
            tracing::warn!(broker = %broker, "TLS certificate verification is OFF (danger_accept_invalid_certs)");
        }
        let host = broker
            .addr
            .rsplit_once(':')
            .map_or(broker.addr.as_str(), |(h, _)| h);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let name = settings.server_name(host)?;
        let tls = tokio_rustls::TlsConnector::from(tls.clone())
            .connect(name, tcp)
            .await
            .map_err(|e| ClientError::Tls {
                broker: broker.clone(),
                reason: e.to_string(),
            })?;
        Ok(BrokerStream::Tls(Box::new(tls)))
    };
    match tokio::time::timeout(config.connect_timeout, connect).await {
        Ok(result) => result,
        Err(_) => Err(ClientError::Connect {
            broker: broker.clone(),
            source: std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no connection within {:?}", config.connect_timeout),
            ),
        }),
    }
}

async fn write_loop(
    mut write: WriteHalf<BrokerStream>,
    mut rx: mpsc::Receiver<Outgoing>,
    shared: Arc<Shared>,
) {
    let mut batch = Vec::with_capacity(16);
    while rx.recv_many(&mut batch, 64).await > 0 {
        {
            let mut p = shared.pending.lock().unwrap_or_else(|e| e.into_inner());
            for out in &mut batch {
                if let Some(reply) = out.reply.take() {
                    match &p.closed {
                        Some(reason) => {
                            let _ = reply.send(Err(reason.clone()));
                        }
                        // Registered before the bytes leave, so the response always finds it.
                        None => {
                            p.waiting.insert(out.correlation_id, reply);
                        }
                    }
                }
            }
            if p.closed.is_some() {
                return;
            }
        }
        for out in batch.drain(..) {
            if let Err(e) = write.write_all(&out.frame).await {
                shared.close(&format!("write failed: {e}"));
                return;
            }
        }
        if let Err(e) = write.flush().await {
            shared.close(&format!("write failed: {e}"));
            return;
        }
    }
}

/// What the reader needs to tell a broker that wants something else (TLS, or SASL
/// authentication) from one that failed: Kafka brokers say neither in the protocol. A TLS
/// listener answers plaintext with a TLS alert (rustls, the JDK) or closes the connection
/// (OpenSSL); a SASL listener answers ApiVersions, then closes the connection at the first
/// other request that was not preceded by authentication.
#[derive(Debug, Clone, Copy)]
struct FirstAnswers {
    /// Plain TCP: a TLS record in answer is recognised.
    plaintext: bool,
    /// SASL settings given: a close is not for want of authentication.
    authenticating: bool,
}

async fn read_loop(
    mut read: ReadHalf<BrokerStream>,
    shared: Arc<Shared>,
    decoder: FrameDecoder,
    first: FirstAnswers,
) {
    let mut buf = BytesMut::with_capacity(64 * 1024);
    // Responses read whole so far, and of those the ones after ApiVersions was negotiated.
    let (mut answered, mut answered_after_versions) = (0usize, 0usize);
    loop {
        if first.plaintext && answered == 0 && is_tls_record(&buf) {
            shared.close_as(Closed::TlsAnswer);
            return;
        }
        loop {
            match decoder.split(&mut buf) {
                Ok(Some(frame)) => {
                    answered += 1;
                    if shared.negotiated.load(Ordering::SeqCst) {
                        answered_after_versions += 1;
                    }
                    let frame = frame.freeze();
                    let Ok(id) = peek_correlation_id(&frame) else {
                        shared.close("response frame shorter than its header");
                        return;
                    };
                    let reply = shared
                        .pending
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .waiting
                        .remove(&id);
                    match reply {
                        // The caller may have gone; then the response is dropped here.
                        Some(reply) => {
                            let _ = reply.send(Ok(frame));
                        }
                        None => {
                            shared.close(&format!("response with unknown correlation id {id}"));
                            return;
                        }
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    shared.close(&format!("bad response frame: {e}"));
                    return;
                }
            }
        }
        // Reserve once for the whole frame when its size is known, so a large fetch response
        // is read into one buffer without regrowing.
        let want = match decoder.needed(&buf) {
            Ok(Some(total)) => total.saturating_sub(buf.len()).max(4096),
            _ => 64 * 1024,
        };
        buf.reserve(want);
        let got = read.read_buf(&mut buf).await;
        // Closed (or reset) before a byte of the first answers: an OpenSSL TLS listener's
        // answer to plaintext, or a SASL listener's to an unauthenticated request. (A TLS
        // alert, as on a refused client certificate, is an error of its own, kept as it is.)
        let closed = match &got {
            Ok(0) => true,
            Err(e) => matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    // TLS: closed without close_notify.
                    | std::io::ErrorKind::UnexpectedEof
            ),
            Ok(_) => false,
        };
        if closed && buf.is_empty() {
            let negotiated = shared.negotiated.load(Ordering::SeqCst);
            let why = if answered == 0 && first.plaintext {
                Some(Closed::PlaintextUnanswered)
            } else if negotiated && answered_after_versions == 0 && !first.authenticating {
                Some(Closed::Unauthenticated)
            } else {
                None
            };
            if let Some(why) = why {
                shared.close_as(why);
                return;
            }
        }
        match got {
            Ok(0) => {
                shared.close("connection closed by the broker");
                return;
            }
            Ok(_) => {}
            Err(e) => {
                shared.close(&format!("read failed: {e}"));
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests;
