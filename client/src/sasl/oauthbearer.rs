//! SASL/OAUTHBEARER (RFC 7628, Kafka's KIP-255 and KIP-342): the client initial response that
//! carries a bearer token and SASL extensions, and the failure dance of RFC 7628 §3.2.3.
//!
//! The message is built as Kafka's `OAuthBearerClientInitialResponse.toBytes()` builds it
//! (clients/src/main/java/org/apache/kafka/common/security/oauthbearer/internals/):
//! `n,,\x01auth=Bearer <token>[\x01key=value]*\x01\x01`, with no authzid. Extensions are
//! checked with the same rules (key `[A-Za-z]+` and not `auth`, value `[\x21-\x7E \t\r\n]+`)
//! so that a bad one fails here with a clear message instead of at the broker.
//!
//! Where the token comes from (a fixed string, or a callback that fetches one from an identity
//! provider) is [`TokenSource`]; the token's expiry is kept so that callers can refresh it.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use super::one_message::OneMessage;
use super::{BoxError, SaslError, SaslExchange, Secret, Step};

pub(super) const MECHANISM: &str = "OAUTHBEARER";

/// A bearer token and what goes with it.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct OAuthToken {
    /// The token (usually a JWT).
    pub value: Secret,
    /// When the token expires, if known.
    pub expires_at: Option<SystemTime>,
    /// The principal the token names, if known; only for messages.
    pub principal: Option<String>,
    /// SASL extensions sent with the token (KIP-342), e.g. `logicalCluster` for some services.
    pub extensions: BTreeMap<String, String>,
}

impl OAuthToken {
    /// A token with no known expiry and no extensions.
    pub fn new(value: impl Into<Secret>) -> Self {
        OAuthToken {
            value: value.into(),
            expires_at: None,
            principal: None,
            extensions: BTreeMap::new(),
        }
    }

    /// Sets when the token expires.
    pub fn with_expiry(mut self, expires_at: SystemTime) -> Self {
        self.expires_at = Some(expires_at);
        self
    }

    /// Sets the principal the token names.
    pub fn with_principal(mut self, principal: impl Into<String>) -> Self {
        self.principal = Some(principal.into());
        self
    }

    /// Adds a SASL extension.
    pub fn with_extension(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.extensions.insert(key.into(), value.into());
        self
    }
}

/// A callback returning a fresh token; called at every (re-)authentication.
pub type TokenCallback = Arc<dyn Fn() -> Result<OAuthToken, BoxError> + Send + Sync>;

/// Where OAUTHBEARER tokens come from.
#[derive(Clone)]
#[non_exhaustive]
pub enum TokenSource {
    /// Always the same token (tests, short-lived tools).
    Static(OAuthToken),
    /// Asked for a token at every (re-)authentication.
    Callback(TokenCallback),
}

impl TokenSource {
    /// The token to authenticate with now.
    pub fn token(&self) -> Result<OAuthToken, SaslError> {
        match self {
            TokenSource::Static(token) => Ok(token.clone()),
            TokenSource::Callback(callback) => {
                callback().map_err(|source| SaslError::TokenCallback { source })
            }
        }
    }
}

impl fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenSource::Static(token) => f.debug_tuple("Static").field(token).finish(),
            TokenSource::Callback(_) => f.write_str("Callback(<fn>)"),
        }
    }
}

/// An OAUTHBEARER exchange.
pub struct OAuthBearerClient {
    exchange: OneMessage,
    principal: Option<String>,
    expires_at: Option<SystemTime>,
}

impl OAuthBearerClient {
    /// Checks the token and extensions and builds the initial response.
    pub fn new(token: OAuthToken) -> Result<Self, SaslError> {
        let invalid = |reason: String| SaslError::InvalidCredentials {
            mechanism: MECHANISM,
            user: token.principal.clone().unwrap_or_default(),
            reason,
        };
        if !is_b64token(token.value.expose()) {
            // The reason must not quote the token.
            return Err(invalid(
                "the token is empty or not an RFC 6750 b64token (letters, digits, -._~+/ then =)"
                    .into(),
            ));
        }
        for (key, value) in &token.extensions {
            if key == "auth" {
                return Err(invalid(
                    "the extension name \"auth\" is reserved for the token".into(),
                ));
            }
            if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphabetic()) {
                return Err(invalid(format!(
                    "extension name {key:?} is not made of letters only"
                )));
            }
            if value.is_empty()
                || !value
                    .bytes()
                    .all(|b| (0x21..=0x7e).contains(&b) || b" \t\r\n".contains(&b))
            {
                return Err(invalid(format!(
                    "the value of extension {key:?} is empty or has characters other than printable \
                     ASCII, space, tab, CR and LF"
                )));
            }
        }
        let mut msg = format!("n,,\x01auth=Bearer {}", token.value.expose());
        for (key, value) in &token.extensions {
            msg.push('\x01');
            msg.push_str(key);
            msg.push('=');
            msg.push_str(value);
        }
        msg.push_str("\x01\x01");
        Ok(OAuthBearerClient {
            exchange: OneMessage::new(MECHANISM, msg.into_bytes()),
            principal: token.principal,
            expires_at: token.expires_at,
        })
    }
}

/// RFC 6750 §2.1: `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
/// Anything else (notably `\x01`) would corrupt the message framing.
fn is_b64token(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
}

impl SaslExchange for OAuthBearerClient {
    fn mechanism(&self) -> &'static str {
        MECHANISM
    }

    fn initial(&mut self) -> Vec<u8> {
        self.exchange.initial()
    }

    fn step(&mut self, server_msg: &[u8]) -> Result<Step, SaslError> {
        self.exchange.step(server_msg, |server_msg| {
            // RFC 7628 §3.2.2: a non-empty server message is a JSON error; the client must
            // answer with a lone %x01 so that the server can end the exchange (Java's
            // OAuthBearerSaslClient does the same), and the JSON is what tells the user why.
            Ok(Step::RespondAndFail {
                response: vec![0x01],
                error: SaslError::TokenRejected {
                    server_response: String::from_utf8_lossy(server_msg).into_owned(),
                },
            })
        })
    }

    fn is_complete(&self) -> bool {
        self.exchange.is_complete()
    }

    fn credential_expires_at(&self) -> Option<SystemTime> {
        self.expires_at
    }
}

impl fmt::Debug for OAuthBearerClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The message holds the token: never print it.
        f.debug_struct("OAuthBearerClient")
            .field("principal", &self.principal)
            .field("expires_at", &self.expires_at)
            .field("state", &self.exchange.state())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::sasl::one_message::checks;
    use crate::sasl::Mechanism;

    #[test]
    fn exact_bytes_without_extensions() {
        let mut c = OAuthBearerClient::new(OAuthToken::new("eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIn0."))
            .unwrap();
        assert_eq!(
            c.initial(),
            b"n,,\x01auth=Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIn0.\x01\x01"
        );
    }

    #[test]
    fn exact_bytes_with_extensions_in_key_order() {
        let token = OAuthToken::new("tok")
            .with_extension("traceId", "a b")
            .with_extension("logicalCluster", "lkc-123");
        let mut c = OAuthBearerClient::new(token).unwrap();
        assert_eq!(
            c.initial(),
            b"n,,\x01auth=Bearer tok\x01logicalCluster=lkc-123\x01traceId=a b\x01\x01"
        );
    }

    #[test]
    fn empty_server_message_completes() {
        checks::empty_server_message_completes(
            OAuthBearerClient::new(OAuthToken::new("tok")).unwrap(),
        );
    }

    #[test]
    fn step_before_initial_fails() {
        checks::step_before_initial_fails(OAuthBearerClient::new(OAuthToken::new("tok")).unwrap());
    }

    #[test]
    fn server_json_error_is_answered_with_ctrl_a_and_reported() {
        let mut c = OAuthBearerClient::new(OAuthToken::new("tok")).unwrap();
        let _ = c.initial();
        let json = br#"{"status":"invalid_token","scope":"kafka"}"#;
        match c.step(json).unwrap() {
            Step::RespondAndFail { response, error } => {
                assert_eq!(response, [0x01]);
                let msg = error.to_string();
                assert!(
                    msg.contains("OAUTHBEARER") && msg.contains(r#""status":"invalid_token""#),
                    "{msg}"
                );
                assert!(!msg.contains("tok\""), "{msg}");
            }
            other => panic!("expected RespondAndFail, got {other:?}"),
        }
        assert!(!c.is_complete());
        assert!(matches!(c.step(b""), Err(SaslError::State { .. })));
    }

    #[test]
    fn bad_tokens_and_extensions_are_rejected_without_quoting_the_token() {
        for token in ["", "=", "has space", "ctrl\x01a", "t\u{e9}x", "a=b"] {
            let err = OAuthBearerClient::new(OAuthToken::new(token)).unwrap_err();
            assert!(matches!(err, SaslError::InvalidCredentials { .. }), "{err}");
            if token.len() > 2 {
                assert!(!err.to_string().contains(token), "{err}");
            }
        }
        OAuthBearerClient::new(OAuthToken::new("abc-._~+/09==")).unwrap();
        for (k, v) in [
            ("auth", "x"),
            ("", "x"),
            ("a1", "x"),
            ("k", ""),
            ("k", "a\x01b"),
            ("k", "\u{e9}"),
        ] {
            let err =
                OAuthBearerClient::new(OAuthToken::new("tok").with_extension(k, v)).unwrap_err();
            assert!(
                matches!(
                    err,
                    SaslError::InvalidCredentials {
                        mechanism: "OAUTHBEARER",
                        ..
                    }
                ),
                "{k:?}={v:?}"
            );
        }
    }

    #[test]
    fn callback_supplies_token_lifetime_and_extensions() {
        let expiry = SystemTime::UNIX_EPOCH + Duration::from_secs(2_000_000_000);
        let m = Mechanism::oauthbearer_callback(move || {
            Ok(OAuthToken::new("cbtok")
                .with_expiry(expiry)
                .with_principal("svc")
                .with_extension("ext", "v"))
        });
        let mut ex = m.start().unwrap();
        assert_eq!(ex.initial(), b"n,,\x01auth=Bearer cbtok\x01ext=v\x01\x01");
        assert_eq!(ex.credential_expires_at(), Some(expiry));
    }

    #[test]
    fn callback_failure_is_reported() {
        let m = Mechanism::oauthbearer_callback(|| Err("identity provider unreachable".into()));
        let err = m.start().unwrap_err();
        assert!(matches!(err, SaslError::TokenCallback { .. }));
        assert!(
            err.to_string().contains("identity provider unreachable"),
            "{err}"
        );
        assert!(std::error::Error::source(&err).is_some());
    }
}
