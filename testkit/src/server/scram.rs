//! The server side of SCRAM (the broker's part of RFC 5802) for testkit's brokers: the stored
//! credential ([`ScramCredential`], Kafka's `ScramCredential`) and the exchange that verifies a
//! client's proof and proves the server knows the credential ([`ScramServer`], after Kafka's
//! `ScramSaslServer`).
//!
//! It lives here, not in the client crate, because only a broker needs it; it is built on the
//! client's public SCRAM primitives ([`ScramHash`]'s PBKDF2, HMAC and hash, and
//! [`unescape_username`]), the same ones the client's exchange uses, so both sides agree on
//! the RFC's key derivation by construction while the tests check each side against the RFC
//! 7677 vector on its own.

use std::collections::BTreeMap;
use std::fmt;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use subtle::ConstantTimeEq;
use thiserror::Error;

use kingest_client::sasl::scram::unescape_username;
use kingest_client::sasl::ScramHash;

/// What a SCRAM server stores for a user (Kafka's `ScramCredential`): enough to verify a client
/// and to prove itself, without the password.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramCredential {
    /// The salt.
    pub salt: Vec<u8>,
    /// `H(HMAC(SaltedPassword, "Client Key"))`.
    pub stored_key: Vec<u8>,
    /// `HMAC(SaltedPassword, "Server Key")`.
    pub server_key: Vec<u8>,
    /// The PBKDF2 iteration count.
    pub iterations: u32,
}

impl ScramCredential {
    /// Derives the credential from a password used as is, as Kafka's `ScramFormatter
    /// .generateCredential` does (apply SASLprep first for an RFC-strict server).
    pub fn from_password(hash: ScramHash, password: &[u8], salt: &[u8], iterations: u32) -> Self {
        // RFC 5802 §3: SaltedPassword = Hi(password, salt, i); the server keeps
        // StoredKey = H(HMAC(SaltedPassword, "Client Key")) and HMAC(SaltedPassword, "Server Key").
        let salted = hash.salted_password(password, salt, iterations);
        ScramCredential {
            salt: salt.to_vec(),
            stored_key: hash.hash(&hash.hmac(&salted, b"Client Key")),
            server_key: hash.hmac(&salted, b"Server Key"),
            iterations,
        }
    }

    /// [`from_password`](Self::from_password) with a random 24-byte salt.
    pub fn generate(
        hash: ScramHash,
        password: &[u8],
        iterations: u32,
    ) -> Result<Self, ScramServerError> {
        let mut salt = [0u8; 24];
        getrandom::fill(&mut salt).map_err(|e| ScramServerError::Random {
            reason: e.to_string(),
        })?;
        Ok(Self::from_password(hash, password, &salt, iterations))
    }
}

impl fmt::Debug for ScramCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The keys let anyone who has them impersonate the server (server key) or mount an
        // offline dictionary attack: keep them out of logs.
        f.debug_struct("ScramCredential")
            .field("salt", &B64.encode(&self.salt))
            .field("iterations", &self.iterations)
            .field("stored_key", &"<redacted>")
            .field("server_key", &"<redacted>")
            .finish()
    }
}

/// The parsed client-first message, handed to the credential lookup of
/// [`ScramServer::handle_client_first`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientFirst {
    /// The user name, unescaped.
    pub username: String,
    /// The authorization id from the gs2 header, if any.
    pub authzid: Option<String>,
    /// The extensions, e.g. `tokenauth=true`.
    pub extensions: BTreeMap<String, String>,
}

/// Why a [`ScramServer`] refused a client.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ScramServerError {
    /// A client message broke the grammar.
    #[error("malformed SCRAM client message: {reason}")]
    Malformed {
        /// What was wrong.
        reason: String,
    },
    /// The client asked for channel binding, which this server does not support.
    #[error("SCRAM channel binding is not supported")]
    ChannelBindingNotSupported,
    /// The channel binding attribute does not match the gs2 header.
    #[error("SCRAM channel binding does not match the gs2 header")]
    ChannelBindingMismatch,
    /// The lookup knew no such user.
    #[error("unknown SCRAM user {user:?}")]
    UnknownUser {
        /// The user.
        user: String,
    },
    /// The client asked to act as someone else (Kafka refuses that too).
    #[error("SCRAM user {user:?} asked for a different authorization id {authzid:?}")]
    AuthzidMismatch {
        /// The user.
        user: String,
        /// The requested identity.
        authzid: String,
    },
    /// The stored credential has fewer iterations than the mechanism's minimum.
    #[error(
        "SCRAM credential of {user:?} has {iterations} iterations, below the minimum {minimum}"
    )]
    IterationsTooLow {
        /// The user.
        user: String,
        /// The credential's iteration count.
        iterations: u32,
        /// The minimum.
        minimum: u32,
    },
    /// The client-final nonce is not the one the server sent.
    #[error("SCRAM client-final nonce does not match")]
    NonceMismatch,
    /// The client's proof is wrong: wrong password.
    #[error("invalid SCRAM proof for user {user:?}")]
    InvalidProof {
        /// The user.
        user: String,
    },
    /// A message arrived in the wrong state.
    #[error("SCRAM server used out of order: {reason}")]
    State {
        /// What happened.
        reason: &'static str,
    },
    /// The OS random generator failed.
    #[error("the system random number generator failed: {reason}")]
    Random {
        /// The OS error.
        reason: String,
    },
}

/// The `e=` answers other SCRAM servers send, for the tests' exchanges: a Kafka broker does not
/// send one (it fails SaslAuthenticate with an error code, and so does testkit).
#[cfg(test)]
impl ScramServerError {
    /// The RFC 5802 `server-error-value` for an `e=` server-final message.
    pub fn rfc5802_value(&self) -> &'static str {
        match self {
            ScramServerError::Malformed { .. } => "invalid-encoding",
            ScramServerError::ChannelBindingNotSupported => "channel-binding-not-supported",
            ScramServerError::ChannelBindingMismatch => "channel-bindings-dont-match",
            ScramServerError::UnknownUser { .. } => "unknown-user",
            ScramServerError::InvalidProof { .. } => "invalid-proof",
            _ => "other-error",
        }
    }

    /// The `e=` server-final message for this error.
    pub fn server_final_message(&self) -> Vec<u8> {
        format!("e={}", self.rfc5802_value()).into_bytes()
    }
}

/// A SCRAM server exchange (the broker side), for in-memory test brokers.
///
/// Feed it the client-first message with a credential lookup, send back what
/// [`handle_client_first`](Self::handle_client_first) returns, then feed the client-final
/// message and send back what [`handle_client_final`](Self::handle_client_final) returns.
pub struct ScramServer {
    hash: ScramHash,
    server_nonce: String,
    state: ServerState,
}

enum ServerState {
    AwaitClientFirst,
    AwaitClientFinal {
        client: ClientFirst,
        gs2_header: String,
        nonce: String,
        auth_prefix: String,
        credential: ScramCredential,
    },
    Done {
        client: ClientFirst,
    },
    Failed,
}

impl ScramServer {
    /// A server exchange with a random server nonce.
    pub fn new(hash: ScramHash) -> Result<Self, ScramServerError> {
        let nonce = random_nonce().map_err(|e| ScramServerError::Random {
            reason: e.to_string(),
        })?;
        Ok(Self::with_server_nonce(hash, &nonce))
    }

    /// A server exchange with a chosen server nonce, for reproducible tests (a real server must
    /// use [`new`](Self::new)).
    pub fn with_server_nonce(hash: ScramHash, server_nonce: &str) -> Self {
        ScramServer {
            hash,
            server_nonce: server_nonce.to_owned(),
            state: ServerState::AwaitClientFirst,
        }
    }

    /// Parses the client-first message, looks the user up, and returns the server-first message.
    pub fn handle_client_first(
        &mut self,
        msg: &[u8],
        lookup: impl FnOnce(&ClientFirst) -> Option<ScramCredential>,
    ) -> Result<Vec<u8>, ScramServerError> {
        if !matches!(self.state, ServerState::AwaitClientFirst) {
            self.state = ServerState::Failed;
            return Err(ScramServerError::State {
                reason: "client-first message received twice",
            });
        }
        self.state = ServerState::Failed;
        let (client, gs2_header, client_nonce, bare) = parse_client_first(msg)?;
        let credential = lookup(&client).ok_or_else(|| ScramServerError::UnknownUser {
            user: client.username.clone(),
        })?;
        if let Some(authzid) = &client.authzid {
            if *authzid != client.username {
                return Err(ScramServerError::AuthzidMismatch {
                    user: client.username.clone(),
                    authzid: authzid.clone(),
                });
            }
        }
        let minimum = self.hash.min_iterations();
        if credential.iterations < minimum {
            return Err(ScramServerError::IterationsTooLow {
                user: client.username.clone(),
                iterations: credential.iterations,
                minimum,
            });
        }
        let nonce = format!("{client_nonce}{}", self.server_nonce);
        let server_first = format!(
            "r={nonce},s={},i={}",
            B64.encode(&credential.salt),
            credential.iterations
        );
        let auth_prefix = format!("{bare},{server_first},");
        self.state = ServerState::AwaitClientFinal {
            client,
            gs2_header,
            nonce,
            auth_prefix,
            credential,
        };
        Ok(server_first.into_bytes())
    }

    /// Verifies the client-final message's proof and returns the server-final message
    /// (`v=<signature>`). On error, answer with the error's
    /// [`server_final_message`](ScramServerError::server_final_message) or a Kafka error code.
    pub fn handle_client_final(&mut self, msg: &[u8]) -> Result<Vec<u8>, ScramServerError> {
        let ServerState::AwaitClientFinal {
            client,
            gs2_header,
            nonce,
            auth_prefix,
            credential,
        } = std::mem::replace(&mut self.state, ServerState::Failed)
        else {
            return Err(ScramServerError::State {
                reason: "client-final message before client-first",
            });
        };
        let malformed = |reason: &str| ScramServerError::Malformed {
            reason: reason.to_owned(),
        };
        let text =
            std::str::from_utf8(msg).map_err(|_| malformed("client-final message is not UTF-8"))?;
        // client-final-message = client-final-message-without-proof "," proof; the proof is last.
        let (without_proof, proof) = text
            .rsplit_once(",p=")
            .ok_or_else(|| malformed("no proof"))?;
        let mut attrs = without_proof.split(',');
        let binding = attrs
            .next()
            .and_then(|a| a.strip_prefix("c="))
            .ok_or_else(|| malformed("no channel binding"))?;
        let binding = B64
            .decode(binding)
            .map_err(|_| malformed("channel binding is not base64"))?;
        if binding != gs2_header.as_bytes() {
            return Err(ScramServerError::ChannelBindingMismatch);
        }
        let client_nonce = attrs
            .next()
            .and_then(|a| a.strip_prefix("r="))
            .ok_or_else(|| malformed("no nonce"))?;
        if client_nonce != nonce {
            return Err(ScramServerError::NonceMismatch);
        }
        let proof = B64
            .decode(proof)
            .map_err(|_| malformed("proof is not base64"))?;
        let auth_message = format!("{auth_prefix}{without_proof}");
        let client_signature = self
            .hash
            .hmac(&credential.stored_key, auth_message.as_bytes());
        if proof.len() != client_signature.len() {
            return Err(ScramServerError::InvalidProof {
                user: client.username,
            });
        }
        // ClientKey = ClientProof XOR ClientSignature; the proof is right iff H(ClientKey) is the
        // stored key (compared in constant time, as Java's MessageDigest.isEqual does).
        let client_key: Vec<u8> = proof
            .iter()
            .zip(&client_signature)
            .map(|(p, s)| p ^ s)
            .collect();
        if !bool::from(self.hash.hash(&client_key).ct_eq(&credential.stored_key)) {
            return Err(ScramServerError::InvalidProof {
                user: client.username,
            });
        }
        let server_signature = self
            .hash
            .hmac(&credential.server_key, auth_message.as_bytes());
        self.state = ServerState::Done { client };
        Ok(format!("v={}", B64.encode(server_signature)).into_bytes())
    }

    /// The authenticated client (user name and extensions) once the exchange succeeded.
    pub fn authenticated(&self) -> Option<&ClientFirst> {
        match &self.state {
            ServerState::Done { client } => Some(client),
            _ => None,
        }
    }
}

impl fmt::Debug for ScramServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            ServerState::AwaitClientFirst => "AwaitClientFirst",
            ServerState::AwaitClientFinal { .. } => "AwaitClientFinal",
            ServerState::Done { .. } => "Done",
            ServerState::Failed => "Failed",
        };
        f.debug_struct("ScramServer")
            .field("mechanism", &self.hash.mechanism_name())
            .field("state", &state)
            .finish()
    }
}

/// `client-first-message = gs2-header client-first-message-bare`, with
/// `gs2-header = gs2-cbind-flag "," [ authzid ] ","` and
/// `client-first-message-bare = [reserved-mext ","] username "," nonce ["," extensions]`.
/// Returns the parsed message, the gs2 header, the client nonce and the bare message.
fn parse_client_first(
    msg: &[u8],
) -> Result<(ClientFirst, String, String, String), ScramServerError> {
    let malformed = |reason: &str| ScramServerError::Malformed {
        reason: reason.to_owned(),
    };
    let text =
        std::str::from_utf8(msg).map_err(|_| malformed("client-first message is not UTF-8"))?;
    let (flag, rest) = text
        .split_once(',')
        .ok_or_else(|| malformed("no gs2 header"))?;
    match flag {
        // "y": the client could bind but thinks we cannot; fine, we cannot.
        "n" | "y" => {}
        f if f.starts_with("p=") => return Err(ScramServerError::ChannelBindingNotSupported),
        _ => return Err(malformed("invalid channel binding flag")),
    }
    let (authzid, bare) = rest
        .split_once(',')
        .ok_or_else(|| malformed("no gs2 header"))?;
    let authzid = match authzid {
        "" => None,
        a => {
            let name = a
                .strip_prefix("a=")
                .ok_or_else(|| malformed("invalid authzid"))?;
            Some(unescape_username(name).ok_or_else(|| malformed("invalid authzid encoding"))?)
        }
    };
    let gs2_header = text[..text.len() - bare.len()].to_owned();
    let mut attrs = bare.split(',');
    let name = attrs.next().unwrap_or("");
    if name.starts_with("m=") {
        return Err(malformed("unsupported mandatory extension (m=)"));
    }
    let name = name
        .strip_prefix("n=")
        .ok_or_else(|| malformed("no user name"))?;
    let username =
        unescape_username(name).ok_or_else(|| malformed("invalid user name encoding"))?;
    let nonce = attrs
        .next()
        .and_then(|a| a.strip_prefix("r="))
        .ok_or_else(|| malformed("no nonce"))?;
    if nonce.is_empty() || !nonce.bytes().all(is_printable) {
        return Err(malformed("invalid nonce"));
    }
    let mut extensions = BTreeMap::new();
    for attr in attrs {
        let (key, value) = attr
            .split_once('=')
            .ok_or_else(|| malformed("invalid extension"))?;
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(malformed("invalid extension name"));
        }
        extensions.insert(key.to_owned(), value.to_owned());
    }
    let client = ClientFirst {
        username,
        authzid,
        extensions,
    };
    Ok((client, gs2_header, nonce.to_owned(), bare.to_owned()))
}

/// `printable = %x21-2B / %x2D-7E` (RFC 5802): visible ASCII except ','.
fn is_printable(b: u8) -> bool {
    (0x21..=0x7e).contains(&b) && b != b','
}

/// 24 random bytes in base64: 32 printable characters without ','.
fn random_nonce() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes)?;
    Ok(B64.encode(bytes))
}

#[cfg(test)]
mod tests;
