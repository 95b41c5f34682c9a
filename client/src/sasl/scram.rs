//! SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677): the client exchange, and the
//! primitives a server needs too ([`ScramHash`]'s PBKDF2/HMAC/hash, user-name escaping); the
//! broker side itself is testkit's.
//!
//! The client follows Kafka's Java client (`ScramSaslClient`, `ScramFormatter`, `ScramMessages`,
//! `ScramMechanism` in clients/src/main/java/org/apache/kafka/common/security/scram/internals/):
//!
//! * gs2 header `n,,` (no channel binding, no authzid);
//! * user names escaped `=` → `=3D`, `,` → `=2C`;
//! * the server nonce must extend the client's, and the server must ask for at least
//!   [`ScramHash::min_iterations`] (4096, Kafka's `ScramMechanism.minIterations()` for both
//!   hashes) or the exchange fails before any work is done with the password;
//! * the server signature of the final message is verified (in constant time): a server that
//!   cannot prove it knows the credentials is an error, not a success;
//! * optional extensions (`tokenauth=true` for delegation tokens) go after the nonce.
//!
//! One deliberate choice: passwords and user names are *not* SASLprep'ed by default. RFC 5802
//! says to, but Kafka does not: `ScramFormatter.normalize` is plain UTF-8, and brokers store
//! credentials derived from the raw password (librdkafka does the same). A password that
//! SASLprep would change (a no-break space, a soft hyphen, a full-width letter) would then fail
//! against every Kafka broker. [`ScramPrep::SaslPrep`] turns RFC behaviour on for servers that
//! expect it.
//!
//! Two departures from the Java client, both stricter: a server-first message with the reserved
//! mandatory-extension attribute `m=` is refused (RFC 5802 §5.1 says it MUST be), and the
//! AuthMessage uses the server-first message exactly as received rather than re-serialised.

use std::collections::BTreeMap;
use std::fmt;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;

use super::{SaslError, SaslExchange, Secret, Step};

/// The gs2 header this client sends: no channel binding, no authorization id.
const GS2_HEADER: &str = "n,,";
/// Base64 of [`GS2_HEADER`], the channel-binding attribute of the client-final message.
const GS2_HEADER_B64: &str = "biws";

/// The hash function of a SCRAM mechanism.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ScramHash {
    /// SCRAM-SHA-256.
    Sha256,
    /// SCRAM-SHA-512.
    Sha512,
}

impl ScramHash {
    /// The Kafka mechanism name.
    pub fn mechanism_name(self) -> &'static str {
        match self {
            ScramHash::Sha256 => "SCRAM-SHA-256",
            ScramHash::Sha512 => "SCRAM-SHA-512",
        }
    }

    /// The fewest iterations accepted from a server (and by a broker from a stored
    /// credential): Kafka's `ScramMechanism.minIterations()`, 4096 for both hashes.
    pub fn min_iterations(self) -> u32 {
        4096
    }

    /// `HMAC(key, data)`.
    pub fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        // HMAC accepts keys of any length, so `new_from_slice` cannot fail.
        match self {
            ScramHash::Sha256 => {
                let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key)
                    .expect("HMAC takes any key length");
                mac.update(data);
                mac.finalize().into_bytes().to_vec()
            }
            ScramHash::Sha512 => {
                let mut mac = <Hmac<Sha512> as KeyInit>::new_from_slice(key)
                    .expect("HMAC takes any key length");
                mac.update(data);
                mac.finalize().into_bytes().to_vec()
            }
        }
    }

    /// `H(data)`.
    pub fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            ScramHash::Sha256 => Sha256::digest(data).to_vec(),
            ScramHash::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    /// `SaltedPassword := Hi(password, salt, i)`, which is PBKDF2 with HMAC and one output block.
    pub fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        match self {
            ScramHash::Sha256 => {
                let mut out = vec![0; 32];
                pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out);
                out
            }
            ScramHash::Sha512 => {
                let mut out = vec![0; 64];
                pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, iterations, &mut out);
                out
            }
        }
    }
}

/// How user names and passwords are prepared before use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ScramPrep {
    /// Used as given (UTF-8), like Kafka's Java client and broker, and librdkafka.
    #[default]
    AsIs,
    /// SASLprep (RFC 4013) for both, as RFC 5802 says; for servers that apply it too.
    SaslPrep,
}

/// SCRAM client credentials.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ScramCredentials {
    /// The user name (for a delegation token: the token id).
    pub username: String,
    /// The password (for a delegation token: its HMAC, base64).
    pub password: Secret,
    /// SCRAM extensions sent in the client-first message, e.g. `tokenauth=true`.
    pub extensions: BTreeMap<String, String>,
    /// Whether to SASLprep the user name and password.
    pub prep: ScramPrep,
}

impl ScramCredentials {
    /// Plain user credentials, prepared as Kafka does (no SASLprep).
    pub fn new(username: impl Into<String>, password: impl Into<Secret>) -> Self {
        ScramCredentials {
            username: username.into(),
            password: password.into(),
            extensions: BTreeMap::new(),
            prep: ScramPrep::AsIs,
        }
    }

    /// A Kafka delegation token: its id and HMAC, with the `tokenauth=true` extension that
    /// tells the broker to look the id up among tokens (Java's `ScramLoginModule`).
    pub fn delegation_token(token_id: impl Into<String>, token_hmac: impl Into<Secret>) -> Self {
        ScramCredentials::new(token_id, token_hmac).with_extension("tokenauth", "true")
    }

    /// Adds a SCRAM extension.
    pub fn with_extension(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.extensions.insert(key.into(), value.into());
        self
    }

    /// Sets how the user name and password are prepared.
    pub fn with_prep(mut self, prep: ScramPrep) -> Self {
        self.prep = prep;
        self
    }
}

/// A SCRAM client exchange.
pub struct ScramClient {
    hash: ScramHash,
    user: String,
    client_nonce: String,
    client_first_bare: String,
    state: ClientState,
}

enum ClientState {
    /// The prepared password is needed until the server-first message gives salt and iterations.
    Start {
        password: Vec<u8>,
    },
    AwaitServerFirst {
        password: Vec<u8>,
    },
    AwaitServerFinal {
        server_signature: Vec<u8>,
    },
    Done,
    Failed,
}

impl ClientState {
    fn name(&self) -> &'static str {
        match self {
            ClientState::Start { .. } => "Start",
            ClientState::AwaitServerFirst { .. } => "AwaitServerFirst",
            ClientState::AwaitServerFinal { .. } => "AwaitServerFinal",
            ClientState::Done => "Done",
            ClientState::Failed => "Failed",
        }
    }
}

impl ScramClient {
    /// Prepares the credentials and draws a fresh nonce from the OS generator.
    pub fn new(hash: ScramHash, creds: &ScramCredentials) -> Result<Self, SaslError> {
        let nonce = random_nonce().map_err(|e| SaslError::Random {
            mechanism: hash.mechanism_name(),
            reason: e.to_string(),
        })?;
        Self::with_nonce(hash, creds, &nonce)
    }

    /// Like [`new`](Self::new) with a chosen nonce, for test vectors. A fixed nonce would let
    /// a captured exchange be replayed, hence crate-private.
    pub(crate) fn with_nonce(
        hash: ScramHash,
        creds: &ScramCredentials,
        nonce: &str,
    ) -> Result<Self, SaslError> {
        let mechanism = hash.mechanism_name();
        let invalid = |reason: String| SaslError::InvalidCredentials {
            mechanism,
            user: creds.username.clone(),
            reason,
        };
        let (username, password) = match creds.prep {
            ScramPrep::AsIs => (
                creds.username.clone(),
                creds.password.expose().as_bytes().to_vec(),
            ),
            ScramPrep::SaslPrep => {
                let username = stringprep::saslprep(&creds.username).map_err(|e| {
                    invalid(format!(
                        "the user name is not valid under SASLprep (RFC 4013): {e}"
                    ))
                })?;
                // stringprep's error quotes the offending character: keep it out, it is part of
                // the password.
                let password = stringprep::saslprep(creds.password.expose()).map_err(|_| {
                    invalid(
                        "the password is not valid under SASLprep (RFC 4013): it has a prohibited \
                         or unassigned character"
                            .into(),
                    )
                })?;
                (username.into_owned(), password.as_bytes().to_vec())
            }
        };
        if !nonce.bytes().all(is_printable) || nonce.is_empty() {
            return Err(invalid(
                "the client nonce must be printable ASCII without ','".into(),
            ));
        }
        let mut client_first_bare = format!("n={},r={nonce}", escape_username(&username));
        for (key, value) in &creds.extensions {
            if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphabetic()) {
                return Err(invalid(format!(
                    "extension name {key:?} is not made of letters only"
                )));
            }
            // Java's ScramMessages VALUE: ASCII 0x01-0x7F except ','.
            if value.is_empty()
                || !value
                    .bytes()
                    .all(|b| (0x01..=0x7f).contains(&b) && b != b',')
            {
                return Err(invalid(format!(
                    "the value of extension {key:?} must be ASCII without ','"
                )));
            }
            client_first_bare.push_str(&format!(",{key}={value}"));
        }
        Ok(ScramClient {
            hash,
            user: creds.username.clone(),
            client_nonce: nonce.to_owned(),
            client_first_bare,
            state: ClientState::Start { password },
        })
    }

    fn protocol_error(&self, reason: String) -> SaslError {
        SaslError::Protocol {
            mechanism: self.hash.mechanism_name(),
            user: self.user.clone(),
            reason,
        }
    }

    /// Handles the server-first message; returns the client-final message and the server
    /// signature to expect.
    fn client_final(
        &self,
        password: &[u8],
        server_first: &[u8],
    ) -> Result<(Vec<u8>, Vec<u8>), SaslError> {
        let mechanism = self.hash.mechanism_name();
        let server_first = std::str::from_utf8(server_first)
            .map_err(|_| self.protocol_error("the server-first message is not UTF-8".into()))?;
        let parsed = parse_server_first(server_first).map_err(|reason| {
            self.protocol_error(format!("{reason} in server-first message {server_first:?}"))
        })?;
        if !parsed.nonce.starts_with(&self.client_nonce) {
            return Err(
                self.protocol_error("the server nonce does not start with the client nonce".into())
            );
        }
        let minimum = self.hash.min_iterations();
        if parsed.iterations < minimum {
            return Err(SaslError::IterationsTooLow {
                mechanism,
                user: self.user.clone(),
                iterations: parsed.iterations,
                minimum,
            });
        }
        let keys = Keys::derive(self.hash, password, &parsed.salt, parsed.iterations);
        let without_proof = format!("c={GS2_HEADER_B64},r={}", parsed.nonce);
        let auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare);
        let client_signature = self.hash.hmac(&keys.stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = keys
            .client_key
            .iter()
            .zip(&client_signature)
            .map(|(k, s)| k ^ s)
            .collect();
        let server_signature = self.hash.hmac(&keys.server_key, auth_message.as_bytes());
        Ok((
            format!("{without_proof},p={}", B64.encode(proof)).into_bytes(),
            server_signature,
        ))
    }

    fn check_server_final(&self, expected: &[u8], server_final: &[u8]) -> Result<(), SaslError> {
        let mechanism = self.hash.mechanism_name();
        let text = std::str::from_utf8(server_final)
            .map_err(|_| self.protocol_error("the server-final message is not UTF-8".into()))?;
        // server-final-message = (server-error / verifier) ["," extensions]
        let first = text.split(',').next().unwrap_or("");
        if let Some(error) = first.strip_prefix("e=") {
            return Err(SaslError::Rejected {
                mechanism,
                user: self.user.clone(),
                message: error.to_owned(),
            });
        }
        let Some(signature) = first.strip_prefix("v=") else {
            return Err(self.protocol_error(format!("malformed server-final message {text:?}")));
        };
        let signature = B64.decode(signature).map_err(|_| {
            self.protocol_error(format!("the server signature is not base64 in {text:?}"))
        })?;
        if bool::from(signature.ct_eq(expected)) {
            Ok(())
        } else {
            Err(SaslError::InvalidServerSignature {
                mechanism,
                user: self.user.clone(),
            })
        }
    }

    fn fail(&mut self, reason: &'static str) -> SaslError {
        self.state = ClientState::Failed;
        SaslError::State {
            mechanism: self.hash.mechanism_name(),
            reason,
        }
    }
}

impl SaslExchange for ScramClient {
    fn mechanism(&self) -> &'static str {
        self.hash.mechanism_name()
    }

    fn initial(&mut self) -> Vec<u8> {
        if let ClientState::Start { password } = &mut self.state {
            self.state = ClientState::AwaitServerFirst {
                password: std::mem::take(password),
            };
        }
        format!("{GS2_HEADER}{}", self.client_first_bare).into_bytes()
    }

    fn step(&mut self, server_msg: &[u8]) -> Result<Step, SaslError> {
        match std::mem::replace(&mut self.state, ClientState::Failed) {
            ClientState::Start { .. } => Err(self.fail("step() called before initial()")),
            ClientState::AwaitServerFirst { password } => {
                // On error the state stays Failed and the password is dropped.
                let (client_final, server_signature) = self.client_final(&password, server_msg)?;
                self.state = ClientState::AwaitServerFinal { server_signature };
                Ok(Step::Respond(client_final))
            }
            ClientState::AwaitServerFinal { server_signature } => {
                self.check_server_final(&server_signature, server_msg)?;
                self.state = ClientState::Done;
                Ok(Step::Done)
            }
            ClientState::Done => Err(self.fail("server message after the exchange completed")),
            ClientState::Failed => Err(self.fail("exchange already failed")),
        }
    }

    fn is_complete(&self) -> bool {
        matches!(self.state, ClientState::Done)
    }
}

impl fmt::Debug for ScramClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The state holds the password or the expected server signature: print only its name.
        f.debug_struct("ScramClient")
            .field("mechanism", &self.hash.mechanism_name())
            .field("user", &self.user)
            .field("state", &self.state.name())
            .finish_non_exhaustive()
    }
}

/// The keys RFC 5802 derives from the salted password.
pub(crate) struct Keys {
    pub(crate) client_key: Vec<u8>,
    pub(crate) stored_key: Vec<u8>,
    pub(crate) server_key: Vec<u8>,
}

impl Keys {
    pub(crate) fn derive(hash: ScramHash, password: &[u8], salt: &[u8], iterations: u32) -> Keys {
        let salted = hash.salted_password(password, salt, iterations);
        let client_key = hash.hmac(&salted, b"Client Key");
        let stored_key = hash.hash(&client_key);
        let server_key = hash.hmac(&salted, b"Server Key");
        Keys {
            client_key,
            stored_key,
            server_key,
        }
    }
}

struct ServerFirst {
    nonce: String,
    salt: Vec<u8>,
    iterations: u32,
}

/// `server-first-message = [reserved-mext ","] nonce "," salt "," iteration-count ["," extensions]`
fn parse_server_first(msg: &str) -> Result<ServerFirst, String> {
    fn next<'a>(attrs: &mut std::str::Split<'a, char>, name: &str) -> Result<&'a str, String> {
        let attr = attrs.next().unwrap_or("");
        if attr.starts_with("m=") {
            return Err("unsupported mandatory extension (m=)".into());
        }
        attr.strip_prefix(name)
            .ok_or_else(|| format!("missing {name}"))
    }
    let mut attrs = msg.split(',');
    let nonce = next(&mut attrs, "r=")?;
    if nonce.is_empty() || !nonce.bytes().all(is_printable) {
        return Err("invalid nonce".into());
    }
    let salt = B64
        .decode(next(&mut attrs, "s=")?)
        .map_err(|_| "salt is not base64".to_string())?;
    let iterations = next(&mut attrs, "i=")?;
    if iterations.is_empty() || !iterations.bytes().all(|b| b.is_ascii_digit()) {
        return Err("invalid iteration count".into());
    }
    let iterations = iterations
        .parse()
        .map_err(|_| "iteration count out of range".to_string())?;
    Ok(ServerFirst {
        nonce: nonce.to_owned(),
        salt,
        iterations,
    })
}

/// `printable = %x21-2B / %x2D-7E` (RFC 5802): visible ASCII except ','.
pub(crate) fn is_printable(b: u8) -> bool {
    (0x21..=0x7e).contains(&b) && b != b','
}

/// RFC 5802 `saslname`: `=` becomes `=3D` and `,` becomes `=2C` (Java's `ScramFormatter.saslName`).
pub fn escape_username(username: &str) -> String {
    let mut out = String::with_capacity(username.len());
    for c in username.chars() {
        match c {
            '=' => out.push_str("=3D"),
            ',' => out.push_str("=2C"),
            c => out.push(c),
        }
    }
    out
}

/// The inverse of [`escape_username`]; `None` when a `=` is not part of `=3D` or `=2C`.
pub fn unescape_username(saslname: &str) -> Option<String> {
    let mut out = String::with_capacity(saslname.len());
    let mut rest = saslname;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        let escape = rest.get(i..i + 3)?;
        out.push(match escape {
            "=3D" => '=',
            "=2C" => ',',
            _ => return None,
        });
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Some(out)
}

/// 24 random bytes in base64: 32 printable characters without ','.
pub(crate) fn random_nonce() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes)?;
    Ok(B64.encode(bytes))
}

#[cfg(test)]
mod tests;
