//! Driving a SASL exchange over SaslHandshake and SaslAuthenticate, and re-authenticating before
//! the broker's session lifetime ends (KIP-368).
//!
//! The mechanisms themselves are pure state machines in [`crate::sasl`]; this module sends their
//! messages. Re-authentication takes an exclusive gate: requests queued before it go out first
//! (the broker answers them in order), requests made during it wait, so the broker never sees a
//! normal request between the handshake and the last SaslAuthenticate.

use std::time::Instant;

use bytes::Bytes;
use kingest_protocol::kafka_protocol::messages::{
    SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
};
use kingest_protocol::kafka_protocol::protocol::{Request, StrBytes};
use kingest_protocol::message::decode_response;
use kingest_protocol::ErrorCode;
use tokio::sync::{Mutex, RwLock};

use super::connection::Connection;
use crate::error::{ClientError, Result};
use crate::sasl::{Mechanism, Step};

/// The re-authentication state of one connection.
pub(crate) struct Reauthenticator {
    mechanism: Mechanism,
    deadline: Mutex<Option<Instant>>,
    /// Held shared while a request is queued, exclusively while re-authenticating.
    pub(crate) gate: RwLock<()>,
}

impl Reauthenticator {
    /// Re-authenticates first if the session is about to end.
    pub(crate) async fn before_request(&self, conn: &Connection) -> Result<()> {
        let due = matches!(*self.deadline.lock().await, Some(d) if Instant::now() >= d);
        if !due {
            return Ok(());
        }
        let _exclusive = self.gate.write().await;
        let mut deadline = self.deadline.lock().await;
        // Another request may have re-authenticated while this one waited for the gate.
        if matches!(*deadline, Some(d) if Instant::now() < d) {
            return Ok(());
        }
        tracing::debug!(broker = %conn.broker(), mechanism = self.mechanism.name(), "re-authenticating");
        *deadline = authenticate_once(conn, &self.mechanism).await?;
        Ok(())
    }
}

/// Authenticates a new connection; returns the re-authentication state when the broker set a
/// session lifetime.
pub(crate) async fn authenticate(
    conn: &Connection,
    mechanism: &Mechanism,
) -> Result<Option<Reauthenticator>> {
    let deadline = authenticate_once(conn, mechanism).await?;
    Ok(deadline.map(|d| Reauthenticator {
        mechanism: mechanism.clone(),
        deadline: Mutex::new(Some(d)),
        gate: RwLock::new(()),
    }))
}

async fn authenticate_once(conn: &Connection, mechanism: &Mechanism) -> Result<Option<Instant>> {
    let name = mechanism.name();
    let fail = |reason: String| ClientError::Auth {
        broker: conn.broker().clone(),
        mechanism: name.to_owned(),
        reason,
    };
    // Handshake v1 or later: SASL tokens then travel inside SaslAuthenticate requests.
    let hs_version = conn.version_of::<SaslHandshakeRequest>()?;
    if hs_version < 1 {
        return Err(fail("the broker only offers SaslHandshake v0 (pre-1.0 framing), which kingest does not speak".to_owned()));
    }
    let handshake = SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str(name));
    let frame = conn
        .request_frame_ungated::<SaslHandshakeRequest>(hs_version, &handshake)
        .await?;
    let (_, hs) = decode_response::<SaslHandshakeRequest>(frame, hs_version)
        .map_err(|e| conn.protocol_error::<SaslHandshakeRequest>(e))?;
    let code = ErrorCode::from_code(hs.error_code);
    if code == ErrorCode::UnsupportedSaslMechanism {
        let offered: Vec<&str> = hs.mechanisms.iter().map(|m| m.as_str()).collect();
        return Err(fail(format!(
            "the broker does not offer it; it offers: {}",
            offered.join(", ")
        )));
    }
    if !code.is_ok() {
        return Err(fail(format!("handshake refused: {code}")));
    }

    let version = conn.version_of::<SaslAuthenticateRequest>()?;
    let mut exchange = mechanism.start().map_err(|e| fail(e.to_string()))?;
    let mut message = exchange.initial();
    loop {
        let response = send_auth(conn, version, message).await?;
        let code = ErrorCode::from_code(response.error_code);
        if !code.is_ok() {
            let said = response
                .error_message
                .as_deref()
                .unwrap_or(code.description());
            return Err(fail(format!("{}: {said}", code.name())));
        }
        match exchange
            .step(&response.auth_bytes)
            .map_err(|e| fail(e.to_string()))?
        {
            Step::Respond(next) => message = next,
            Step::Done => {
                return Ok(crate::sasl::reauth_deadline(
                    response.session_lifetime_ms,
                    Instant::now(),
                ));
            }
            Step::RespondAndFail { response, error } => {
                // Let the broker finish its side; its answer adds nothing to `error`.
                let _ = send_auth(conn, version, response).await;
                return Err(fail(error.to_string()));
            }
            #[allow(unreachable_patterns)]
            _ => return Err(fail("unexpected SASL step".to_owned())),
        }
    }
}

async fn send_auth(
    conn: &Connection,
    version: i16,
    message: Vec<u8>,
) -> Result<SaslAuthenticateResponse> {
    let request = SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(message));
    let frame = conn
        .request_frame_ungated::<SaslAuthenticateRequest>(version, &request)
        .await?;
    decode_response::<SaslAuthenticateRequest>(frame, version)
        .map(|(_, r)| r)
        .map_err(|e| conn.protocol_error::<SaslAuthenticateRequest>(e))
}

/// Keeps `Request` in scope for the generic bounds above.
#[allow(dead_code)]
fn _assert_request<R: Request>() {}
