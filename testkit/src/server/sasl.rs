//! The broker side of SASL: PLAIN, SCRAM-SHA-256/512 (with [`super::scram`]) and
//! OAUTHBEARER (tokens checked against a configured list, errors answered as RFC 7628 says).

use std::time::Duration;

use kingest_client::sasl::ScramHash;

use super::scram::{ClientFirst, ScramCredential, ScramServer};
use kingest_protocol::ErrorCode;

/// SASL settings of a test cluster.
#[derive(Debug, Clone, Default)]
pub struct SaslConfig {
    /// Enabled mechanisms: any of "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER".
    pub mechanisms: Vec<String>,
    /// Users and passwords (PLAIN and SCRAM).
    pub users: Vec<(String, String)>,
    /// Accepted OAUTHBEARER tokens and the principal each stands for.
    pub oauth_tokens: Vec<(String, String)>,
    /// The session lifetime to announce (KIP-368), making clients re-authenticate.
    pub session_lifetime: Option<Duration>,
}

impl SaslConfig {
    /// Every mechanism, with these users.
    pub fn all(users: &[(&str, &str)]) -> Self {
        Self {
            mechanisms: ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"]
                .map(str::to_owned)
                .to_vec(),
            users: users
                .iter()
                .map(|(u, p)| ((*u).to_owned(), (*p).to_owned()))
                .collect(),
            oauth_tokens: Vec::new(),
            session_lifetime: None,
        }
    }
}

/// Where one connection is in its authentication.
pub(crate) struct SaslSession {
    authenticated: bool,
    failed: bool,
    mechanism: Option<String>,
    scram: Option<ScramServer>,
    /// OAUTHBEARER sent an error challenge; the client's %x01 ends the exchange in failure.
    oauth_failed: Option<String>,
    /// How many successful authentications (re-authentications included).
    pub logins: u32,
    pub principal: Option<String>,
}

/// The outcome of one SaslAuthenticate.
pub(crate) enum AuthStep {
    /// Send these bytes; more messages follow.
    Continue(Vec<u8>),
    /// Authenticated; send these (final) bytes.
    Done(Vec<u8>),
    /// Refused with this message.
    Fail(String),
}

impl SaslSession {
    pub fn new(required: bool) -> Self {
        Self {
            authenticated: !required,
            failed: false,
            mechanism: None,
            scram: None,
            oauth_failed: None,
            logins: 0,
            principal: None,
        }
    }

    pub fn authenticated(&self) -> bool {
        self.authenticated
    }

    pub fn failed(&self) -> bool {
        self.failed
    }

    /// SaslHandshake: picks the mechanism (also to re-authenticate, KIP-368).
    pub fn handshake(&mut self, config: &SaslConfig, mechanism: &str) -> ErrorCode {
        if !config.mechanisms.iter().any(|m| m == mechanism) {
            return ErrorCode::UnsupportedSaslMechanism;
        }
        self.mechanism = Some(mechanism.to_owned());
        self.scram = None;
        self.oauth_failed = None;
        ErrorCode::None
    }

    /// SaslAuthenticate: one client message.
    pub fn authenticate(&mut self, config: &SaslConfig, msg: &[u8]) -> AuthStep {
        let step = match self.mechanism.as_deref() {
            None => AuthStep::Fail("SaslAuthenticate before SaslHandshake".to_owned()),
            Some("PLAIN") => plain(config, msg),
            Some(m @ ("SCRAM-SHA-256" | "SCRAM-SHA-512")) => {
                let hash = if m == "SCRAM-SHA-256" {
                    ScramHash::Sha256
                } else {
                    ScramHash::Sha512
                };
                self.scram_step(config, hash, msg)
            }
            Some("OAUTHBEARER") => self.oauth_step(config, msg),
            Some(other) => AuthStep::Fail(format!("mechanism {other} is not implemented")),
        };
        match &step {
            AuthStep::Done(_) => {
                self.authenticated = true;
                self.logins += 1;
                self.mechanism = None;
            }
            AuthStep::Fail(_) => self.failed = true,
            AuthStep::Continue(_) => {}
        }
        step
    }

    fn scram_step(&mut self, config: &SaslConfig, hash: ScramHash, msg: &[u8]) -> AuthStep {
        match self.scram.take() {
            None => {
                let mut server = match ScramServer::new(hash) {
                    Ok(s) => s,
                    Err(e) => return AuthStep::Fail(e.to_string()),
                };
                let lookup = |first: &ClientFirst| {
                    let password = config.users.iter().find(|(u, _)| *u == first.username)?.1.clone();
                    ScramCredential::generate(hash, password.as_bytes(), hash.min_iterations()).ok()
                };
                match server.handle_client_first(msg, lookup) {
                    Ok(reply) => {
                        self.scram = Some(server);
                        AuthStep::Continue(reply)
                    }
                    Err(e) => AuthStep::Fail(format!("Authentication failed during authentication due to invalid credentials with SASL mechanism {}: {e}", hash.mechanism_name())),
                }
            }
            Some(mut server) => match server.handle_client_final(msg) {
                Ok(reply) => {
                    // Kafka's principal after SCRAM is the user name (or, for a delegation
                    // token, the token's owner, which testkit does not model).
                    self.principal = server.authenticated().map(|c| c.username.clone());
                    AuthStep::Done(reply)
                }
                Err(e) => AuthStep::Fail(format!("Authentication failed during authentication due to invalid credentials with SASL mechanism {}: {e}", hash.mechanism_name())),
            },
        }
    }

    fn oauth_step(&mut self, config: &SaslConfig, msg: &[u8]) -> AuthStep {
        if let Some(reason) = self.oauth_failed.take() {
            return AuthStep::Fail(reason);
        }
        let text = String::from_utf8_lossy(msg);
        let token = text
            .split('\u{1}')
            .find_map(|kv| {
                kv.strip_prefix("auth=Bearer ")
                    .or_else(|| kv.strip_prefix("auth=bearer "))
            })
            .map(str::trim);
        match token.and_then(|t| config.oauth_tokens.iter().find(|(tok, _)| tok == t)) {
            Some((_, principal)) => {
                self.principal = Some(principal.clone());
                AuthStep::Done(Vec::new())
            }
            None => {
                self.oauth_failed = Some("invalid OAUTHBEARER token".to_owned());
                AuthStep::Continue(br#"{"status":"invalid_token"}"#.to_vec())
            }
        }
    }
}

fn plain(config: &SaslConfig, msg: &[u8]) -> AuthStep {
    let mut parts = msg.split(|b| *b == 0);
    let (Some(authzid), Some(user), Some(pass), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return AuthStep::Fail("Invalid SASL/PLAIN response: expected 3 tokens".to_owned());
    };
    if !authzid.is_empty() && authzid != user {
        return AuthStep::Fail("Authentication failed: Client requested an authorization id that is different from username".to_owned());
    }
    let ok = config
        .users
        .iter()
        .any(|(u, p)| u.as_bytes() == user && p.as_bytes() == pass);
    if ok {
        AuthStep::Done(Vec::new())
    } else {
        AuthStep::Fail("Authentication failed: Invalid username or password".to_owned())
    }
}
