//! One client connection: frames in, responses out, in order.

use std::io::IoSlice;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kingest_protocol::frame::{FrameDecoder, DEFAULT_MAX_FRAME_SIZE};
use kingest_protocol::kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind};
use kingest_protocol::message::{decode_request, encode_response};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;

use super::sasl::SaslSession;
use crate::faults::FaultAction;
use crate::handlers::{self, Ctx};
use crate::Shared;

pub(crate) async fn serve_connection<S>(
    broker: i32,
    stream: S,
    peer: SocketAddr,
    shared: Arc<Shared>,
    mut stopped: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let (mut read, mut write) = tokio::io::split(stream);
    let decoder = FrameDecoder::new(DEFAULT_MAX_FRAME_SIZE);
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut out = BytesMut::with_capacity(64 * 1024);
    let mut ctx = Ctx {
        broker,
        peer,
        shared: shared.clone(),
        sasl: SaslSession::new(shared.sasl.is_some()),
        client_id: String::new(),
    };
    loop {
        let frame = loop {
            match decoder.split(&mut buf) {
                Ok(Some(frame)) => break frame.freeze(),
                Ok(None) => {}
                Err(e) => {
                    tracing::debug!(broker, %peer, error = %e, "bad frame; closing");
                    return;
                }
            }
            buf.reserve(64 * 1024);
            tokio::select! {
                _ = stopped.changed() => return,
                n = read.read_buf(&mut buf) => match n {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                },
            }
        };
        if frame.len() < 8 {
            return;
        }
        let api_key = i16::from_be_bytes([frame[0], frame[1]]);
        let version = i16::from_be_bytes([frame[2], frame[3]]);
        let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
        out.clear();
        // An ApiVersions request newer than we speak is answered in version 0 with the versions
        // we do speak, so the client can retry (KIP-511); any other bad request closes the
        // connection, as Kafka does.
        if api_key == ApiKey::ApiVersions as i16
            && version > handlers::max_version(ApiKey::ApiVersions)
        {
            let resp = handlers::meta::api_versions_response(35);
            if encode_response(
                &mut out,
                correlation_id,
                ApiKey::ApiVersions,
                0,
                &ResponseKind::ApiVersions(resp),
            )
            .is_err()
            {
                return;
            }
            if write.write_all(&out).await.is_err() {
                return;
            }
            continue;
        }
        let (header, request) = match decode_request(frame) {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(broker, %peer, error = %e, "undecodable request; closing");
                return;
            }
        };
        let Ok(key) = ApiKey::try_from(api_key) else {
            return;
        };
        if !handlers::supports(key, version) {
            tracing::debug!(broker, %peer, api_key, version, "unsupported request version; closing");
            return;
        }
        if let Some(id) = &header.client_id {
            if ctx.client_id.as_str() != id.as_str() {
                ctx.client_id = id.to_string();
            }
        }
        // Before authentication only the handshake APIs are allowed.
        if !ctx.sasl.authenticated()
            && !matches!(
                request,
                RequestKind::ApiVersions(_)
                    | RequestKind::SaslHandshake(_)
                    | RequestKind::SaslAuthenticate(_)
            )
        {
            tracing::debug!(broker, %peer, api_key, "request before SASL authentication; closing");
            return;
        }
        let fault = shared.faults.take(broker, api_key);
        let acks0 = matches!(&request, RequestKind::Produce(p) if p.acks == 0);
        let response = match fault {
            Some(FaultAction::DropConnection) => return,
            Some(FaultAction::Error(code)) => match handlers::error_response(&request, code) {
                Some(r) => Some(r),
                None if acks0 => None,
                // No error shape for this API: fail it the other way a broker can, by closing.
                None => return,
            },
            Some(FaultAction::Delay(d)) => {
                tokio::time::sleep(d).await;
                handlers::handle(&mut ctx, version, request).await
            }
            // Fetches are written from the stored batches without copying them (see
            // handlers::fetch_encode), unless a fault needs the whole encoded frame.
            None => match request {
                RequestKind::Fetch(r) => {
                    let reply = handlers::fetch::fetch(&ctx, version, r).await;
                    if let Some(segments) = reply.zero_copy_frame(correlation_id, version) {
                        if write_segments(&mut write, segments).await.is_err() {
                            return;
                        }
                        continue;
                    }
                    Some(ResponseKind::Fetch(reply.into_response()))
                }
                request => handlers::handle(&mut ctx, version, request).await,
            },
            _ => handlers::handle(&mut ctx, version, request).await,
        };
        let Some(response) = response else { continue }; // acks=0 produce: no answer
        if let Err(e) = encode_response(&mut out, correlation_id, key, version, &response) {
            tracing::warn!(broker, %peer, error = %e, "cannot encode response; closing");
            return;
        }
        let bytes: &[u8] = if fault == Some(FaultAction::CloseMidResponse) {
            &out[..out.len() / 2]
        } else {
            &out
        };
        if write.write_all(bytes).await.is_err() || fault == Some(FaultAction::CloseMidResponse) {
            return;
        }
        if ctx.sasl.failed() {
            // Kafka closes the connection after a failed authentication.
            return;
        }
        // Keep the response buffer between requests (reallocating a large one per fetch costs a
        // page fault per page); only an outsized one is given back.
        if out.capacity() > 64 << 20 {
            out = BytesMut::with_capacity(64 * 1024);
        }
    }
}

/// Writes a frame given as segments with vectored writes, so stored record batches go to the
/// socket without being copied into a frame buffer first.
async fn write_segments<W: AsyncWrite + Unpin>(
    write: &mut W,
    segments: Vec<Bytes>,
) -> std::io::Result<()> {
    let mut done = 0;
    let mut offset = 0; // bytes of segments[done] already written
    while done < segments.len() {
        let slices: Vec<IoSlice<'_>> = std::iter::once(&segments[done][offset..])
            .chain(segments[done + 1..].iter().map(|s| &s[..]))
            .take(64)
            .map(IoSlice::new)
            .collect();
        let mut n = write.write_vectored(&slices).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        while n > 0 && done < segments.len() {
            let left = segments[done].len() - offset;
            if n >= left {
                n -= left;
                done += 1;
                offset = 0;
            } else {
                offset += n;
                n = 0;
            }
        }
        // Skip empty segments so the next write starts at real bytes.
        while done < segments.len() && segments[done].len() == offset {
            done += 1;
            offset = 0;
        }
    }
    Ok(())
}
