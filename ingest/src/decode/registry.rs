//! A Confluent Schema Registry client: fetches writer schemas by id and caches them.
//!
//! `GET {url}/schemas/ids/{id}` answers `{"schema": "<Avro schema JSON>"}`. Schemas under an
//! id never change, so each is fetched once per process and kept; clones of a
//! [`RegistryClient`] share the cache, so every partition's decoder benefits.
//!
//! The fetch is blocking (`ureq`, rustls with the ring provider: no OpenSSL, static-friendly)
//! and happens only the first time an id is seen. The engine can take it off its async
//! threads by calling [`super::RowDecoder::prepare`] from `spawn_blocking` when
//! [`super::RowDecoder::needs_prepare`] says a record carries an unknown id; otherwise the
//! first record of a new id blocks its thread for one HTTP round trip.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use apache_avro::Schema;
use base64::Engine as _;

/// How to reach a schema registry.
#[derive(Clone, PartialEq, Eq)]
pub struct RegistryOptions {
    /// Base URLs (`https://registry:8081`), tried in order until one answers.
    pub urls: Vec<String>,
    /// Basic-auth user name.
    pub username: Option<String>,
    /// Basic-auth password.
    pub password: Option<String>,
    /// A PEM file of CA certificates to trust for `https` URLs instead of the built-in
    /// WebPKI roots.
    pub ca_file: Option<PathBuf>,
    /// Time limit for one request, connection included.
    pub timeout: Duration,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        RegistryOptions {
            urls: Vec::new(),
            username: None,
            password: None,
            ca_file: None,
            timeout: Duration::from_secs(30),
        }
    }
}

impl fmt::Debug for RegistryOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryOptions")
            .field("urls", &self.urls)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("ca_file", &self.ca_file)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Why a schema could not be had from the registry.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The client could not be set up (a CA file that does not read or holds no
    /// certificate).
    #[error("schema registry client: {0}")]
    Config(String),
    /// No URL is configured and the schema was not given beforehand.
    #[error("schema is not known and no registry URL is configured")]
    NoRegistry,
    /// The request failed (connection, TLS, timeout).
    #[error("GET {url}: {message}")]
    Http {
        /// The URL requested.
        url: String,
        /// What failed.
        message: String,
    },
    /// The registry answered with an error status.
    #[error("GET {url}: HTTP {status}: {body}")]
    Status {
        /// The URL requested.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The start of the answer's body.
        body: String,
    },
    /// The answer is not the JSON the registry API documents.
    #[error("bad registry answer: {0}")]
    BadAnswer(String),
    /// The schema is not something this decoder reads (not Avro, or with references).
    #[error("unsupported schema: {0}")]
    Unsupported(String),
    /// The Avro schema does not parse.
    #[error("bad Avro schema: {0}")]
    BadSchema(String),
}

impl RegistryError {
    /// Whether the same request may succeed later: network failures, server errors and
    /// throttling, not a missing or unreadable schema.
    pub fn is_transient(&self) -> bool {
        match self {
            RegistryError::Http { .. } => true,
            RegistryError::Status { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }
}

/// A shared, caching schema-registry client. Cloning is cheap and shares the cache.
#[derive(Clone)]
pub struct RegistryClient {
    inner: Arc<Inner>,
}

struct Inner {
    urls: Vec<String>,
    authorization: Option<String>,
    agent: ureq::Agent,
    cache: Mutex<HashMap<u32, Arc<Schema>>>,
}

impl fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryClient")
            .field("urls", &self.inner.urls)
            .field("basic_auth", &self.inner.authorization.is_some())
            .finish()
    }
}

impl RegistryClient {
    /// A client for the registry at `options.urls`.
    pub fn new(options: RegistryOptions) -> Result<RegistryClient, RegistryError> {
        let mut config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(options.timeout))
            .user_agent(concat!("kingest/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = &options.ca_file {
            let pem = std::fs::read(path).map_err(|e| {
                RegistryError::Config(format!("cannot read CA file {}: {e}", path.display()))
            })?;
            let mut certs = Vec::new();
            for item in ureq::tls::parse_pem(&pem) {
                match item {
                    Ok(ureq::tls::PemItem::Certificate(c)) => certs.push(c),
                    Ok(_) => {}
                    Err(e) => {
                        return Err(RegistryError::Config(format!(
                            "bad PEM in CA file {}: {e}",
                            path.display()
                        )))
                    }
                }
            }
            if certs.is_empty() {
                return Err(RegistryError::Config(format!(
                    "CA file {} holds no certificate",
                    path.display()
                )));
            }
            config = config.tls_config(
                ureq::tls::TlsConfig::builder()
                    .root_certs(ureq::tls::RootCerts::new_with_certs(&certs))
                    .build(),
            );
        }
        let authorization = match (&options.username, &options.password) {
            (None, None) => None,
            (user, pass) => {
                let pair = format!(
                    "{}:{}",
                    user.as_deref().unwrap_or(""),
                    pass.as_deref().unwrap_or("")
                );
                Some(format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(pair)
                ))
            }
        };
        Ok(RegistryClient {
            inner: Arc::new(Inner {
                urls: options
                    .urls
                    .iter()
                    .map(|u| u.trim_end_matches('/').to_string())
                    .collect(),
                authorization,
                agent: config.build().into(),
                cache: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// A client with no registry: only schemas given with [`Self::insert`] are known. For
    /// tests and for topics whose schemas are fixed in configuration.
    pub fn offline() -> RegistryClient {
        RegistryClient::new(RegistryOptions::default()).expect("no CA file to read")
    }

    /// Makes `schema` (Avro schema JSON) known under `id` without asking the registry.
    pub fn insert(&self, id: u32, schema: &str) -> Result<(), RegistryError> {
        let parsed =
            Schema::parse_str(schema).map_err(|e| RegistryError::BadSchema(e.to_string()))?;
        self.cache().insert(id, Arc::new(parsed));
        Ok(())
    }

    /// The schema under `id`, if it was fetched or inserted already.
    pub fn cached(&self, id: u32) -> Option<Arc<Schema>> {
        self.cache().get(&id).cloned()
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<u32, Arc<Schema>>> {
        // The map is only ever inserted into; a panic elsewhere cannot leave it half-changed.
        self.inner.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The schema under `id`: from the cache, or fetched (blocking) and cached.
    pub fn schema(&self, id: u32) -> Result<Arc<Schema>, RegistryError> {
        if let Some(s) = self.cached(id) {
            return Ok(s);
        }
        if self.inner.urls.is_empty() {
            return Err(RegistryError::NoRegistry);
        }
        let mut last = RegistryError::NoRegistry;
        for base in &self.inner.urls {
            match self.fetch(base, id) {
                Ok(schema) => {
                    let schema = Arc::new(schema);
                    self.cache().insert(id, schema.clone());
                    return Ok(schema);
                }
                // Another URL may be up; a definite answer (404, a bad schema) is final.
                Err(e) if e.is_transient() => last = e,
                Err(e) => return Err(e),
            }
        }
        Err(last)
    }

    fn fetch(&self, base: &str, id: u32) -> Result<Schema, RegistryError> {
        let url = format!("{base}/schemas/ids/{id}");
        let mut req = self.inner.agent.get(&url).header(
            "Accept",
            "application/vnd.schemaregistry.v1+json, application/json",
        );
        if let Some(auth) = &self.inner.authorization {
            req = req.header("Authorization", auth);
        }
        let http = |e: ureq::Error| RegistryError::Http {
            url: url.clone(),
            message: e.to_string(),
        };
        let mut resp = req.call().map_err(http)?;
        let status = resp.status().as_u16();
        let body = resp.body_mut().read_to_string().map_err(http)?;
        if status != 200 {
            return Err(RegistryError::Status {
                url,
                status,
                body: super::error::snippet(body.as_bytes()),
            });
        }
        parse_answer(&body)
    }
}

/// Reads a `GET /schemas/ids/{id}` answer.
fn parse_answer(body: &str) -> Result<Schema, RegistryError> {
    let v: serde_json::Value =
        serde_json::from_str(body).map_err(|e| RegistryError::BadAnswer(e.to_string()))?;
    if let Some(t) = v.get("schemaType").and_then(|t| t.as_str()) {
        if t != "AVRO" {
            return Err(RegistryError::Unsupported(format!(
                "schema type {t}; only Avro is decoded"
            )));
        }
    }
    if v.get("references")
        .and_then(|r| r.as_array())
        .is_some_and(|r| !r.is_empty())
    {
        return Err(RegistryError::Unsupported(
            "schema references (types defined under other subjects)".into(),
        ));
    }
    let text = v
        .get("schema")
        .and_then(|s| s.as_str())
        .ok_or_else(|| RegistryError::BadAnswer("no \"schema\" string in the answer".into()))?;
    Schema::parse_str(text).map_err(|e| RegistryError::BadSchema(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_checked() {
        let ok = parse_answer(r#"{"schema": "\"long\""}"#).unwrap();
        assert_eq!(ok, Schema::Long);
        let e = parse_answer(r#"{"schema": "x", "schemaType": "PROTOBUF"}"#).unwrap_err();
        assert!(e.to_string().contains("PROTOBUF"), "{e}");
        let e =
            parse_answer(r#"{"schema": "\"long\"", "references": [{"name": "a"}]}"#).unwrap_err();
        assert!(e.to_string().contains("references"), "{e}");
        assert!(matches!(
            parse_answer(r#"{"id": 1}"#),
            Err(RegistryError::BadAnswer(_))
        ));
        assert!(matches!(
            parse_answer(r#"{"schema": "{\"type\": \"nope\"}"}"#),
            Err(RegistryError::BadSchema(_))
        ));
    }

    #[test]
    fn offline_clients_know_inserted_schemas_only() {
        let c = RegistryClient::offline();
        c.insert(7, r#""string""#).unwrap();
        assert_eq!(*c.schema(7).unwrap(), Schema::String);
        assert!(matches!(c.schema(8), Err(RegistryError::NoRegistry)));
        assert!(c.insert(9, "not json").is_err());
        // Clones share the cache.
        let d = c.clone();
        d.insert(8, r#""int""#).unwrap();
        assert_eq!(*c.schema(8).unwrap(), Schema::Int);
    }

    #[test]
    fn transient_errors() {
        let status = |s| RegistryError::Status {
            url: String::new(),
            status: s,
            body: String::new(),
        };
        assert!(status(503).is_transient());
        assert!(status(429).is_transient());
        assert!(!status(404).is_transient());
        assert!(!status(401).is_transient());
        assert!(RegistryError::Http {
            url: String::new(),
            message: String::new()
        }
        .is_transient());
    }

    #[test]
    fn bad_ca_files_are_reported() {
        let dir = std::env::temp_dir().join(format!("kingest-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("empty.pem");
        std::fs::write(&path, "no certificates here").unwrap();
        let e = RegistryClient::new(RegistryOptions {
            urls: vec!["https://127.0.0.1:1".into()],
            ca_file: Some(path.clone()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(e.to_string().contains("holds no certificate"), "{e}");
        let e = RegistryClient::new(RegistryOptions {
            ca_file: Some(dir.join("missing.pem")),
            ..Default::default()
        })
        .unwrap_err();
        assert!(e.to_string().contains("cannot read CA file"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
