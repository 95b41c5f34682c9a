//! A fault-injecting HTTP proxy between `kingest` and an object store server: it forwards each
//! request, or fails it the ways object stores fail: `503 Slow Down` (S3's throttling), `500
//! Internal Error`, the connection dropped before any answer, or dropped after the server
//! executed the request but before its answer came back (the client cannot tell whether it
//! happened). [`Faults::Fraction`] fails a share of requests, drawn from a fixed-seed generator;
//! [`Faults::All`] fails every request with 503, as a store that is down.
//!
//! One request per connection: the proxy answers `Connection: close`, so each request is seen
//! whole and decided alone. It runs on its own thread and runtime, so sync and async tests use
//! it alike, and stops when dropped.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::ingest::kill::SplitMix;

/// Which requests fail.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Faults {
    /// None: a plain proxy.
    None,
    /// This share (0..1) of requests, each failing one of the four ways at random.
    Fraction(f64),
    /// Every request, with 503 Slow Down.
    All,
}

/// What the proxy did, by kind.
#[derive(Debug, Default)]
pub struct FaultCounts {
    /// Requests forwarded and answered.
    pub forwarded: AtomicU64,
    /// Answered 503 Slow Down.
    pub slow_down: AtomicU64,
    /// Answered 500.
    pub server_error: AtomicU64,
    /// Connection closed before forwarding.
    pub dropped_before: AtomicU64,
    /// Forwarded, the answer withheld and the connection closed.
    pub dropped_after: AtomicU64,
}

impl FaultCounts {
    /// Failed requests of every kind.
    pub fn failed(&self) -> u64 {
        self.slow_down.load(Ordering::SeqCst)
            + self.server_error.load(Ordering::SeqCst)
            + self.dropped_before.load(Ordering::SeqCst)
            + self.dropped_after.load(Ordering::SeqCst)
    }

    /// A one-line summary.
    pub fn summary(&self) -> String {
        format!(
            "forwarded {}, 503 {}, 500 {}, dropped before {}, dropped after {}",
            self.forwarded.load(Ordering::SeqCst),
            self.slow_down.load(Ordering::SeqCst),
            self.server_error.load(Ordering::SeqCst),
            self.dropped_before.load(Ordering::SeqCst),
            self.dropped_after.load(Ordering::SeqCst)
        )
    }
}

struct Shared {
    faults: Mutex<(Faults, SplitMix)>,
    counts: FaultCounts,
    upstream: SocketAddr,
}

/// The running proxy; stops when dropped.
pub struct FaultProxy {
    port: u16,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FaultProxy {
    /// A proxy on a free loopback port to `upstream` (`127.0.0.1:PORT`), failing requests as
    /// `faults` says, drawing from `seed`.
    pub fn start(upstream_port: u16, faults: Faults, seed: u64) -> FaultProxy {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let port = listener.local_addr().expect("proxy address").port();
        let shared = Arc::new(Shared {
            faults: Mutex::new((faults, SplitMix(seed))),
            counts: FaultCounts::default(),
            upstream: SocketAddr::from(([127, 0, 0, 1], upstream_port)),
        });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = {
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("proxy runtime");
                rt.block_on(async move {
                    let listener = TcpListener::from_std(listener).expect("tokio listener");
                    tokio::select! {
                        _ = stopped => {}
                        _ = async {
                            loop {
                                let Ok((conn, _)) = listener.accept().await else { continue };
                                let shared = Arc::clone(&shared);
                                tokio::spawn(async move {
                                    let _ = handle(conn, &shared).await;
                                });
                            }
                        } => {}
                    }
                });
            })
        };
        FaultProxy {
            port,
            shared,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Changes which requests fail from now on.
    pub fn set(&self, faults: Faults) {
        self.shared
            .faults
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .0 = faults;
    }

    /// What it did so far.
    pub fn counts(&self) -> &FaultCounts {
        &self.shared.counts
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Action {
    Forward,
    SlowDown,
    ServerError,
    DropBefore,
    DropAfter,
}

fn decide(shared: &Shared) -> Action {
    let mut g = shared.faults.lock().unwrap_or_else(|e| e.into_inner());
    let (faults, rng) = &mut *g;
    match *faults {
        Faults::None => Action::Forward,
        Faults::All => Action::SlowDown,
        Faults::Fraction(p) => {
            let draw = (rng.next_u64() % 1_000_000) as f64 / 1e6;
            if draw >= p {
                return Action::Forward;
            }
            match rng.next_u64() % 4 {
                0 => Action::SlowDown,
                1 => Action::ServerError,
                2 => Action::DropBefore,
                _ => Action::DropAfter,
            }
        }
    }
}

/// Reads an HTTP head (through the blank line); returns it and whatever body bytes came with
/// it.
async fn read_head(conn: &mut TcpStream) -> std::io::Result<Option<(Vec<u8>, Vec<u8>)>> {
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(end + 4);
            return Ok(Some((buf, rest)));
        }
        if buf.len() > 1 << 20 {
            return Err(std::io::Error::other("HTTP head over 1 MiB"));
        }
        let n = conn.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn header(head: &[u8], name: &str) -> Option<String> {
    String::from_utf8_lossy(head).lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_owned())
    })
}

/// The head with `Connection: close` in place of any Connection header.
fn close_head(head: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(head);
    let mut out = String::new();
    for line in text.split("\r\n").filter(|l| !l.is_empty()) {
        let is_conn = line
            .split_once(':')
            .is_some_and(|(k, _)| k.trim().eq_ignore_ascii_case("connection"));
        if !is_conn {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.push_str("Connection: close\r\n\r\n");
    out.into_bytes()
}

/// Reads the rest of a request body of `Content-Length` bytes (`have` came with the head).
async fn read_body(conn: &mut TcpStream, head: &[u8], have: Vec<u8>) -> std::io::Result<Vec<u8>> {
    let len: usize = header(head, "content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = have;
    let mut chunk = vec![0u8; 64 << 10];
    while body.len() < len {
        let n = conn.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Ok(body)
}

async fn answer(conn: &mut TcpStream, status: &str, code: &str) -> std::io::Result<()> {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>injected by the test proxy</Message></Error>"
    );
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).await?;
    conn.write_all(body.as_bytes()).await?;
    conn.shutdown().await
}

async fn handle(mut conn: TcpStream, shared: &Shared) -> std::io::Result<()> {
    let Some((head, rest)) = read_head(&mut conn).await? else {
        return Ok(());
    };
    if header(&head, "transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        return Err(std::io::Error::other(
            "chunked request bodies are not handled by the test proxy",
        ));
    }
    let action = decide(shared);
    let c = &shared.counts;
    match action {
        Action::DropBefore => {
            c.dropped_before.fetch_add(1, Ordering::SeqCst);
            drop(conn);
            return Ok(());
        }
        Action::SlowDown => {
            c.slow_down.fetch_add(1, Ordering::SeqCst);
            read_body(&mut conn, &head, rest).await?;
            return answer(&mut conn, "503 Slow Down", "SlowDown").await;
        }
        Action::ServerError => {
            c.server_error.fetch_add(1, Ordering::SeqCst);
            read_body(&mut conn, &head, rest).await?;
            return answer(&mut conn, "500 Internal Server Error", "InternalError").await;
        }
        Action::Forward | Action::DropAfter => {}
    }
    let body = read_body(&mut conn, &head, rest).await?;
    let mut up = TcpStream::connect(shared.upstream).await?;
    up.write_all(&close_head(&head)).await?;
    up.write_all(&body).await?;
    let mut response = Vec::new();
    up.read_to_end(&mut response).await?;
    if let Action::DropAfter = action {
        c.dropped_after.fetch_add(1, Ordering::SeqCst);
        drop(conn);
        return Ok(());
    }
    c.forwarded.fetch_add(1, Ordering::SeqCst);
    match response.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(end) => {
            conn.write_all(&close_head(&response[..end + 4])).await?;
            conn.write_all(&response[end + 4..]).await?;
        }
        None => conn.write_all(&response).await?,
    }
    conn.shutdown().await
}
