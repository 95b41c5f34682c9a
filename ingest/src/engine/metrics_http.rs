//! The `/metrics` endpoint of `kingest run --metrics-addr`: a minimal HTTP/1.1 responder on
//! tokio.
//!
//! Why not hyper: hyper is in the dependency tree only through reqwest, only with the `cloud`
//! feature, and only its client half; its server needs `hyper/server` plus hyper-util's
//! runtime glue. A scrape endpoint reads one request head and writes one response, then closes
//! the connection, which is about sixty lines here and works in every build. Requests are
//! bounded (8 KiB head, 10 s to send it), so a slow or hostile client cannot hold memory or
//! the engine: each connection is its own task and the run loop never waits on it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use super::metrics::render;
use super::EngineError;

/// The largest request head read.
const MAX_HEAD: usize = 8 * 1024;
/// How long a client may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// OpenMetrics text, which Prometheus asks for and accepts.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The running endpoint; stops serving when dropped.
#[derive(Debug)]
pub(super) struct MetricsServer {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl MetricsServer {
    /// Where it listens.
    pub(super) fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Listens on `addr` and serves `registry` at `/metrics` until the server is dropped.
pub(super) async fn serve(
    addr: SocketAddr,
    registry: Arc<Registry>,
) -> Result<MetricsServer, EngineError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| EngineError::Setup(format!("--metrics-addr {addr}: cannot listen: {e}")))?;
    let addr = listener.local_addr().unwrap_or(addr);
    let task = tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    let registry = registry.clone();
                    tokio::spawn(async move {
                        if let Err(e) = respond(stream, &registry).await {
                            tracing::debug!(error = %e, "metrics request failed");
                        }
                    });
                }
                Err(e) => {
                    // Out of file descriptors, typically: wait a little rather than spin.
                    tracing::warn!(error = %e, "metrics endpoint: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    });
    Ok(MetricsServer { addr, task })
}

/// Reads one request head and answers it.
async fn respond(mut stream: TcpStream, registry: &Registry) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let complete = tokio::time::timeout(READ_TIMEOUT, async {
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_HEAD {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                return Ok::<bool, std::io::Error>(false);
            }
            head.extend_from_slice(&buf[..n]);
        }
        Ok(true)
    })
    .await;
    let (status, content_type, body) = match complete {
        Ok(Ok(true)) => route(&head, registry),
        Ok(Ok(false)) => return Ok(()),
        Ok(Err(e)) => return Err(e),
        Err(_) => (
            "408 Request Timeout",
            "text/plain",
            "request timeout\n".to_owned(),
        ),
    };
    let head_only = head.starts_with(b"HEAD ");
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if !head_only {
        out.extend_from_slice(body.as_bytes());
    }
    stream.write_all(&out).await?;
    stream.shutdown().await
}

/// The status, content type and body for a request head.
fn route(head: &[u8], registry: &Registry) -> (&'static str, &'static str, String) {
    let line = head.split(|b| *b == b'\r').next().unwrap_or_default();
    let mut parts = line.split(|b| *b == b' ');
    let method = parts.next().unwrap_or_default();
    let target = parts.next().unwrap_or_default();
    let path = target.split(|b| *b == b'?').next().unwrap_or_default();
    match (method, path) {
        (b"GET" | b"HEAD", b"/metrics") => ("200 OK", CONTENT_TYPE, render(registry)),
        (b"GET" | b"HEAD", b"/") => (
            "200 OK",
            "text/plain; charset=utf-8",
            "kingest run: metrics at /metrics\n".to_owned(),
        ),
        (b"GET" | b"HEAD", _) => (
            "404 Not Found",
            "text/plain",
            "not found: try /metrics\n".to_owned(),
        ),
        _ => (
            "405 Method Not Allowed",
            "text/plain",
            "GET /metrics\n".to_owned(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn get(addr: SocketAddr, request: &str) -> String {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(request.as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn serves_metrics_and_refuses_the_rest() {
        let metrics = super::super::metrics::Metrics::new();
        metrics.partition("t", 0).records.inc_by(3);
        let server = serve("127.0.0.1:0".parse().unwrap(), metrics.registry())
            .await
            .unwrap();
        let addr = server.addr();
        let ok = get(addr, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(ok.contains(CONTENT_TYPE), "{ok}");
        assert!(
            ok.contains("kingest_records_read_total{topic=\"t\",partition=\"0\"} 3"),
            "{ok}"
        );
        let (head, body) = ok.split_once("\r\n\r\n").unwrap();
        assert!(
            head.contains(&format!("Content-Length: {}", body.len())),
            "{ok}"
        );
        let missing = get(addr, "GET /nope HTTP/1.1\r\n\r\n").await;
        assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
        let post = get(addr, "POST /metrics HTTP/1.1\r\n\r\n").await;
        assert!(post.starts_with("HTTP/1.1 405"), "{post}");
        let head_only = get(addr, "HEAD /metrics HTTP/1.1\r\n\r\n").await;
        assert!(head_only.ends_with("\r\n\r\n"), "{head_only}");
        drop(server);
    }
}
