//! SASL authentication mechanisms as pure state machines: PLAIN, SCRAM-SHA-256/512 and
//! OAUTHBEARER.
//!
//! Nothing here does I/O. The connection code drives an exchange over Kafka's SaslHandshake and
//! SaslAuthenticate requests:
//!
//! 1. SaslHandshake with [`Mechanism::name`].
//! 2. `let mut exchange = mechanism.start()?;` then send [`SaslExchange::initial`] in the first
//!    SaslAuthenticate request.
//! 3. Feed every SaslAuthenticate response's `auth_bytes` to [`SaslExchange::step`]:
//!    [`Step::Respond`] is sent in the next SaslAuthenticate request, [`Step::Done`] means the
//!    client is satisfied (for SCRAM: the server proved it knows the password), and
//!    [`Step::RespondAndFail`] is sent so that the server can close the exchange, after which the
//!    carried error is reported.
//! 4. When SaslAuthenticate v1+ returned a positive `session_lifetime_ms`, schedule
//!    re-authentication (KIP-368) at [`reauth_deadline`].
//!
//! Passwords and tokens are held in [`Secret`], whose `Debug` is redacted and which has no
//! `Display`, so configs can be logged; no error message contains them either.

mod oauthbearer;
mod one_message;
mod plain;
pub mod scram;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use thiserror::Error;

pub use oauthbearer::{OAuthBearerClient, OAuthToken, TokenCallback, TokenSource};
pub use plain::PlainClient;
pub use scram::{ScramClient, ScramCredentials, ScramHash, ScramPrep};

/// A boxed error, as returned by user callbacks.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A password or token: `Debug` prints `Secret(<redacted>)` and there is no `Display`, so a
/// config holding one can be logged without leaking it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret string.
    pub fn new(secret: impl Into<String>) -> Self {
        Secret(secret.into())
    }

    /// The secret itself; only mechanisms should need this.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Secret(s)
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Secret(s.to_owned())
    }
}

/// A SASL mechanism and the credentials it authenticates with.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Mechanism {
    /// SASL/PLAIN (RFC 4616): the password travels in clear, so use it only over TLS.
    Plain {
        /// The user name.
        username: String,
        /// The password.
        password: Secret,
        /// The identity to act as; Kafka's broker only accepts none or the user name itself.
        authzid: Option<String>,
    },
    /// SCRAM-SHA-256 (RFC 7677).
    ScramSha256(ScramCredentials),
    /// SCRAM-SHA-512.
    ScramSha512(ScramCredentials),
    /// OAUTHBEARER (RFC 7628, KIP-255).
    OAuthBearer(TokenSource),
}

impl Mechanism {
    /// PLAIN with no authorization id.
    pub fn plain(username: impl Into<String>, password: impl Into<Secret>) -> Self {
        Mechanism::Plain {
            username: username.into(),
            password: password.into(),
            authzid: None,
        }
    }

    /// SCRAM-SHA-256 with Kafka's defaults (no SASLprep, no extensions).
    pub fn scram_sha256(username: impl Into<String>, password: impl Into<Secret>) -> Self {
        Mechanism::ScramSha256(ScramCredentials::new(username, password))
    }

    /// SCRAM-SHA-512 with Kafka's defaults (no SASLprep, no extensions).
    pub fn scram_sha512(username: impl Into<String>, password: impl Into<Secret>) -> Self {
        Mechanism::ScramSha512(ScramCredentials::new(username, password))
    }

    /// OAUTHBEARER with a fixed token.
    pub fn oauthbearer_token(token: OAuthToken) -> Self {
        Mechanism::OAuthBearer(TokenSource::Static(token))
    }

    /// OAUTHBEARER with a callback that is asked for a fresh token at every (re-)authentication.
    pub fn oauthbearer_callback(
        callback: impl Fn() -> Result<OAuthToken, BoxError> + Send + Sync + 'static,
    ) -> Self {
        Mechanism::OAuthBearer(TokenSource::Callback(Arc::new(callback)))
    }

    /// The name SaslHandshake sends: "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512" or
    /// "OAUTHBEARER".
    pub fn name(&self) -> &'static str {
        match self {
            Mechanism::Plain { .. } => plain::MECHANISM,
            Mechanism::ScramSha256(_) => ScramHash::Sha256.mechanism_name(),
            Mechanism::ScramSha512(_) => ScramHash::Sha512.mechanism_name(),
            Mechanism::OAuthBearer(_) => oauthbearer::MECHANISM,
        }
    }

    /// Starts one client-side exchange (one per connection and per re-authentication: SCRAM
    /// nonces and OAUTHBEARER tokens must be fresh each time).
    ///
    /// Fails before anything is sent when the credentials cannot be used: a NUL in a PLAIN
    /// field, a name or password SASLprep rejects, a malformed extension, or a failing token
    /// callback.
    pub fn start(&self) -> Result<Box<dyn SaslExchange>, SaslError> {
        Ok(match self {
            Mechanism::Plain {
                username,
                password,
                authzid,
            } => Box::new(PlainClient::new(username, password, authzid.as_deref())?),
            Mechanism::ScramSha256(creds) => Box::new(ScramClient::new(ScramHash::Sha256, creds)?),
            Mechanism::ScramSha512(creds) => Box::new(ScramClient::new(ScramHash::Sha512, creds)?),
            Mechanism::OAuthBearer(source) => Box::new(OAuthBearerClient::new(source.token()?)?),
        })
    }
}

/// What the connection does after feeding a server message to [`SaslExchange::step`].
#[derive(Debug)]
pub enum Step {
    /// Send these bytes in the next SaslAuthenticate request.
    Respond(Vec<u8>),
    /// Authentication succeeded as far as the client can tell.
    Done,
    /// Send `response` so the server can finish the failed exchange (OAUTHBEARER answers a
    /// server error with `%x01`, RFC 7628 §3.2.3), then fail with `error`: it carries what the
    /// server said, which the broker's later error code alone does not.
    RespondAndFail {
        /// The bytes to send.
        response: Vec<u8>,
        /// The failure to report once sent.
        error: SaslError,
    },
}

/// One client-side SASL exchange: a state machine fed with the server's messages.
pub trait SaslExchange: Send + fmt::Debug {
    /// The mechanism's Kafka name, e.g. "SCRAM-SHA-256".
    fn mechanism(&self) -> &'static str;

    /// The client's first message (all of Kafka's mechanisms send one). Call it once, before
    /// [`step`](Self::step).
    fn initial(&mut self) -> Vec<u8>;

    /// Consumes one server message. After an error the exchange is failed and every later call
    /// errors too.
    fn step(&mut self, server_msg: &[u8]) -> Result<Step, SaslError>;

    /// Whether [`Step::Done`] was returned.
    fn is_complete(&self) -> bool;

    /// When the credential used expires, if known (an OAUTHBEARER token's lifetime). The broker's
    /// `session_lifetime_ms` already accounts for it; this is for callers that refresh tokens.
    fn credential_expires_at(&self) -> Option<SystemTime> {
        None
    }
}

/// Why a SASL exchange failed. Messages name the mechanism and, where there is one, the user;
/// they never contain a password or token.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SaslError {
    /// The server rejected the authentication and said why (a SCRAM `e=` server-final message).
    #[error(
        "SASL/{mechanism} authentication of user {user:?} failed: the server said {message:?}"
    )]
    Rejected {
        /// The mechanism.
        mechanism: &'static str,
        /// The user.
        user: String,
        /// The server's error value, e.g. "invalid-proof".
        message: String,
    },
    /// The server's SCRAM signature is wrong: it could not prove it knows the user's
    /// credentials, so it may be an impostor.
    #[error(
        "SASL/{mechanism} authentication of user {user:?} failed: invalid server signature \
         (the server did not prove it knows the credentials)"
    )]
    InvalidServerSignature {
        /// The mechanism.
        mechanism: &'static str,
        /// The user.
        user: String,
    },
    /// The server asked for fewer SCRAM iterations than the mechanism's minimum, which would
    /// make a captured exchange cheap to brute-force.
    #[error(
        "SASL/{mechanism} authentication of user {user:?} failed: the server asked for \
         {iterations} iterations, below the minimum of {minimum}"
    )]
    IterationsTooLow {
        /// The mechanism.
        mechanism: &'static str,
        /// The user.
        user: String,
        /// What the server asked for.
        iterations: u32,
        /// The mechanism's minimum.
        minimum: u32,
    },
    /// A server message broke the mechanism's grammar or rules.
    #[error("SASL/{mechanism} authentication of user {user:?} failed: {reason}")]
    Protocol {
        /// The mechanism.
        mechanism: &'static str,
        /// The user, empty for OAUTHBEARER.
        user: String,
        /// What was wrong.
        reason: String,
    },
    /// The configured credentials cannot be sent (checked before anything goes on the wire).
    #[error("SASL/{mechanism} credentials for user {user:?} are unusable: {reason}")]
    InvalidCredentials {
        /// The mechanism.
        mechanism: &'static str,
        /// The user, empty for OAUTHBEARER.
        user: String,
        /// What is wrong.
        reason: String,
    },
    /// The OAUTHBEARER token callback failed.
    #[error("SASL/OAUTHBEARER: the token callback failed: {source}")]
    TokenCallback {
        /// The callback's error.
        #[source]
        source: BoxError,
    },
    /// The server rejected the OAUTHBEARER token; `server_response` is its JSON error
    /// (RFC 7628 §3.2.2), e.g. `{"status":"invalid_token"}`.
    #[error(
        "SASL/OAUTHBEARER authentication failed: the server rejected the token: {server_response}"
    )]
    TokenRejected {
        /// The server's JSON, as sent.
        server_response: String,
    },
    /// The exchange was driven out of order (a bug in the caller).
    #[error("SASL/{mechanism} exchange used out of order: {reason}")]
    State {
        /// The mechanism.
        mechanism: &'static str,
        /// What happened.
        reason: &'static str,
    },
    /// The operating system's random number generator failed.
    #[error("SASL/{mechanism}: the system random number generator failed: {reason}")]
    Random {
        /// The mechanism.
        mechanism: &'static str,
        /// The OS error.
        reason: String,
    },
}

/// When to re-authenticate a connection whose SaslAuthenticate response carried
/// `session_lifetime_ms` (KIP-368), given `now` = when authentication finished. `None` when
/// the broker set no lifetime (0 or negative), or when the deadline is too far to represent.
///
/// Follows the Java client, `SaslClientAuthenticator.ReauthInfo
/// .setAuthenticationEndAndSessionReauthenticationTimes`
/// (clients/src/main/java/org/apache/kafka/common/security/authenticator/): a random point between
/// 85% of the lifetime (room for network latency and clock drift) and 95% (85% plus up to 10%
/// jitter, so that the many connections that authenticated together do not all re-authenticate
/// at once).
pub fn reauth_deadline(session_lifetime_ms: i64, now: Instant) -> Option<Instant> {
    reauth_deadline_with_jitter(session_lifetime_ms, now, random_unit())
}

/// [`reauth_deadline`] with the jitter fixed: `jitter` in [0, 1) picks the point between 85%
/// and 95%.
pub(crate) fn reauth_deadline_with_jitter(
    session_lifetime_ms: i64,
    now: Instant,
    jitter: f64,
) -> Option<Instant> {
    if session_lifetime_ms <= 0 {
        return None;
    }
    let pct = 0.85 + jitter.clamp(0.0, 1.0) * 0.10;
    // Java truncates to whole milliseconds: `(long) (positiveSessionLifetimeMs * pctToUse)`.
    let ms = (session_lifetime_ms as f64 * pct) as u64;
    now.checked_add(Duration::from_millis(ms))
}

/// A uniform value in [0, 1) from the OS; the midpoint if the OS generator fails, since jitter
/// is a courtesy to the brokers and not worth failing a connection over.
fn random_unit() -> f64 {
    match getrandom::u64() {
        // 53 random bits fill an f64 mantissa exactly.
        Ok(x) => (x >> 11) as f64 / (1u64 << 53) as f64,
        Err(_) => 0.5,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mechanism_names_are_kafkas() {
        assert_eq!(Mechanism::plain("u", "p").name(), "PLAIN");
        assert_eq!(Mechanism::scram_sha256("u", "p").name(), "SCRAM-SHA-256");
        assert_eq!(Mechanism::scram_sha512("u", "p").name(), "SCRAM-SHA-512");
        assert_eq!(
            Mechanism::oauthbearer_token(OAuthToken::new("t")).name(),
            "OAUTHBEARER"
        );
    }

    #[test]
    fn start_gives_an_exchange_of_the_same_mechanism() {
        let mechanisms = [
            Mechanism::plain("u", "p"),
            Mechanism::scram_sha256("u", "p"),
            Mechanism::scram_sha512("u", "p"),
            Mechanism::oauthbearer_token(OAuthToken::new("t")),
        ];
        for m in &mechanisms {
            let mut ex = m.start().unwrap();
            assert_eq!(ex.mechanism(), m.name());
            assert!(!ex.initial().is_empty());
            assert!(!ex.is_complete());
        }
        let mut plain = mechanisms[0].start().unwrap();
        assert_eq!(plain.initial(), b"\0u\0p");
    }

    #[test]
    fn debug_of_configs_redacts_passwords_and_tokens() {
        let configs = [
            Mechanism::Plain {
                username: "alice".into(),
                password: "hunter2-plain".into(),
                authzid: Some("alice".into()),
            },
            Mechanism::scram_sha256("alice", "hunter2-scram256"),
            Mechanism::ScramSha512(
                ScramCredentials::delegation_token("tok-id", "hunter2-hmac")
                    .with_prep(ScramPrep::SaslPrep),
            ),
            Mechanism::oauthbearer_token(
                OAuthToken::new("hunter2.jwt.token").with_extension("traceId", "abc"),
            ),
            Mechanism::oauthbearer_callback(|| Ok(OAuthToken::new("hunter2.from.callback"))),
        ];
        for c in &configs {
            let debug = format!("{c:?}");
            let pretty = format!("{c:#?}");
            assert!(!debug.contains("hunter2"), "{debug}");
            assert!(!pretty.contains("hunter2"), "{pretty}");
            assert!(
                debug.contains("redacted") || debug.contains("Callback(<fn>)"),
                "{debug}"
            );
        }
        assert!(
            format!("{:?}", configs[0]).contains("alice"),
            "user names stay visible"
        );
        // Exchanges hold the secrets too (SCRAM until the server-first message arrives).
        for c in &configs[..4] {
            let mut ex = c.start().unwrap();
            let _ = ex.initial();
            let debug = format!("{ex:?}");
            assert!(!debug.contains("hunter2"), "{debug}");
        }
    }

    #[test]
    fn errors_never_contain_the_password() {
        // A prohibited character (U+0007 BELL) makes SASLprep fail; the error must not echo
        // the password or the offending character.
        let creds = ScramCredentials::new("bob", "secret\u{7}pw").with_prep(ScramPrep::SaslPrep);
        let err = Mechanism::ScramSha256(creds).start().unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("SCRAM-SHA-256") && msg.contains("bob"),
            "{msg}"
        );
        assert!(!msg.contains("secret") && !msg.contains('\u{7}'), "{msg}");
        let err = Mechanism::plain("bob", "sec\0ret").start().unwrap_err();
        assert!(!err.to_string().contains("sec"), "{err}");
    }

    #[test]
    fn reauth_deadline_is_between_85_and_95_percent() {
        let now = Instant::now();
        assert_eq!(reauth_deadline(0, now), None);
        assert_eq!(reauth_deadline(-1, now), None);
        assert_eq!(
            reauth_deadline_with_jitter(100_000, now, 0.0),
            Some(now + Duration::from_millis(85_000))
        );
        assert_eq!(
            reauth_deadline_with_jitter(100_000, now, 0.5),
            Some(now + Duration::from_millis(90_000))
        );
        let max = reauth_deadline_with_jitter(100_000, now, 0.999_999_9).unwrap();
        assert!(
            max <= now + Duration::from_millis(95_000)
                && max >= now + Duration::from_millis(94_999)
        );
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..200 {
            let d = reauth_deadline(3_600_000, now).unwrap() - now;
            assert!(d >= Duration::from_millis(3_060_000), "{d:?}");
            assert!(d < Duration::from_millis(3_420_000), "{d:?}");
            seen.insert(d);
        }
        assert!(
            seen.len() > 100,
            "the jitter should vary: {} distinct values",
            seen.len()
        );
    }

    #[test]
    fn huge_session_lifetime_does_not_panic() {
        // Far past any real lifetime; the deadline may or may not be representable.
        let _ = reauth_deadline(i64::MAX, Instant::now());
    }
}
