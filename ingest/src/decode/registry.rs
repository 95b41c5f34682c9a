//! A Confluent Schema Registry client: fetches writer schemas by id and caches them.
//!
//! `GET {url}/schemas/ids/{id}` answers `{"schema": "<Avro schema JSON>"}`. Schemas under an
//! id never change, so each is fetched once per process and kept; clones of a
//! [`RegistryClient`] share the cache, so every partition's decoder benefits.
//!
//! Fetching is async ([`RegistryClient::fetch`], over the same `reqwest` as the object stores
//! and the Iceberg REST catalog, with rustls on ring: one HTTP stack in the binary) and
//! happens once per id: the engine fetches what [`super::RowDecoder::pending_schemas`] names
//! before appending a record, so decoding itself never waits on the network (and never blocks
//! a runtime thread). A failure that may pass (a connection refused, a 5xx, a 429) is retried
//! with backoff, on each configured URL in turn, before it is reported.
use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use apache_avro::Schema;
use base64::Engine as _;

/// Rounds over every URL for a fetch whose failures may pass, and the first wait between
/// them (doubled each round): 0.2 s, 0.4 s, 0.8 s.
const FETCH_ROUNDS: u32 = 4;
const FIRST_BACKOFF: Duration = Duration::from_millis(200);

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
    /// The decoder met a schema id nobody fetched first ([`RegistryClient::fetch`]); the
    /// engine always does, so this is a caller's mistake, reported rather than a panic.
    #[error("schema id {id} was not fetched from the registry before decoding")]
    NotFetched {
        /// The schema id.
        id: u32,
    },
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
    http: reqwest::Client,
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
        // reqwest is built without a bundled crypto provider: use the Kafka client's (ring);
        // an error means one is installed already.
        let _ = kingest_client::crypto_provider().install_default();
        let mut http = reqwest::Client::builder()
            .timeout(options.timeout)
            .user_agent(concat!("kingest/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = &options.ca_file {
            let pem = std::fs::read_to_string(path).map_err(|e| {
                RegistryError::Config(format!("cannot read CA file {}: {e}", path.display()))
            })?;
            if !pem.contains("-----BEGIN CERTIFICATE-----") {
                return Err(RegistryError::Config(format!(
                    "CA file {} holds no certificate",
                    path.display()
                )));
            }
            let mut tls = kingest_client::TlsConfig::default();
            tls.ca = kingest_client::CaSource::Pem(pem);
            let built = tls
                .build()
                .map_err(|e| RegistryError::Config(format!("CA file {}: {e}", path.display())))?;
            http = http.tls_backend_preconfigured((*built).clone());
        } else if options.urls.iter().any(|u| u.starts_with("https:")) {
            // The system's CAs, as the Kafka connections use.
            let built = kingest_client::TlsConfig::default()
                .build()
                .map_err(|e| RegistryError::Config(e.to_string()))?;
            http = http.tls_backend_preconfigured((*built).clone());
        }
        let http = http
            .build()
            .map_err(|e| RegistryError::Config(format!("HTTP client: {e}")))?;
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
                http,
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

    /// The schema under `id` if it is cached (fetched or inserted); otherwise why not:
    /// [`RegistryError::NoRegistry`] without a URL, [`RegistryError::NotFetched`] with one.
    pub fn known(&self, id: u32) -> Result<Arc<Schema>, RegistryError> {
        match self.cached(id) {
            Some(s) => Ok(s),
            None if self.inner.urls.is_empty() => Err(RegistryError::NoRegistry),
            None => Err(RegistryError::NotFetched { id }),
        }
    }

    /// Whether [`Self::fetch`] would ask a registry for `id` (it has a URL and no copy).
    pub fn must_fetch(&self, id: u32) -> bool {
        !self.inner.urls.is_empty() && self.cached(id).is_none()
    }

    /// The schema under `id`: from the cache, or fetched and cached. Failures that may pass
    /// are retried on every URL, with backoff, for [`FETCH_ROUNDS`] rounds.
    pub async fn fetch(&self, id: u32) -> Result<Arc<Schema>, RegistryError> {
        if let Some(s) = self.cached(id) {
            return Ok(s);
        }
        if self.inner.urls.is_empty() {
            return Err(RegistryError::NoRegistry);
        }
        let mut last = RegistryError::NoRegistry;
        let mut wait = FIRST_BACKOFF;
        for round in 0..FETCH_ROUNDS {
            if round > 0 {
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
            for base in &self.inner.urls {
                match self.fetch_from(base, id).await {
                    Ok(schema) => {
                        let schema = Arc::new(schema);
                        self.cache().insert(id, schema.clone());
                        return Ok(schema);
                    }
                    // Another URL, or a later round, may answer; a definite answer (404, a
                    // bad schema) is final.
                    Err(e) if e.is_transient() => last = e,
                    Err(e) => return Err(e),
                }
            }
        }
        Err(last)
    }

    async fn fetch_from(&self, base: &str, id: u32) -> Result<Schema, RegistryError> {
        let url = format!("{base}/schemas/ids/{id}");
        let mut req = self.inner.http.get(&url).header(
            reqwest::header::ACCEPT,
            "application/vnd.schemaregistry.v1+json, application/json",
        );
        if let Some(auth) = &self.inner.authorization {
            req = req.header(reqwest::header::AUTHORIZATION, auth);
        }
        let http = |e: reqwest::Error| RegistryError::Http {
            url: url.clone(),
            // The whole chain: "error sending request" alone does not say why.
            message: std::iter::successors(Some(&e as &(dyn std::error::Error + 'static)), |e| {
                e.source()
            })
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(": "),
        };
        let resp = req.send().await.map_err(http)?;
        let status = resp.status().as_u16();
        let body = resp.text().await.map_err(http)?;
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
        assert_eq!(*c.known(7).unwrap(), Schema::String);
        assert!(matches!(c.known(8), Err(RegistryError::NoRegistry)));
        assert!(!c.must_fetch(8));
        assert!(c.insert(9, "not json").is_err());
        // Clones share the cache.
        let d = c.clone();
        d.insert(8, r#""int""#).unwrap();
        assert_eq!(*c.known(8).unwrap(), Schema::Int);
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
