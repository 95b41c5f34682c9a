//! Object store clients for `s3://`, `gs://` and `az://` locations: object_store's S3, GCS and
//! Azure builders, configured from the environment first (`AWS_*`, `GOOGLE_*`, `AZURE_*`, as
//! the providers' own tools read them), then from the job's `[sink.storage]` options (the same
//! key names, lower case: `aws_endpoint`, `azure_storage_account_name`, ...), with the job's
//! retry policy ([`StoreRetry`]).
//!
//! Retries happen inside object_store, per HTTP request: a request that failed with a 5xx
//! (S3's `503 SlowDown` among them), 429 or 408, or whose connection could not be made or
//! dropped, is sent again after a backoff, up to [`StoreRetry::max_retries`] times or
//! [`StoreRetry::timeout`] after its first attempt. Past that the error reaches the sink, which
//! names the operation and the object (see [`crate::sink::SinkError::ObjectStore`]); the run
//! stops, and the next run resumes from the committed files, so nothing is lost or repeated.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use object_store::ObjectStore;

use crate::sink::{Result, SinkError};

/// How failed object store requests are retried: see the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreRetry {
    /// Retries of one request.
    pub max_retries: usize,
    /// No retry starts later than this after the request's first attempt.
    pub timeout: Duration,
    /// The first backoff; each next one doubles (with jitter).
    pub backoff: Duration,
    /// The longest backoff.
    pub max_backoff: Duration,
}

impl Default for StoreRetry {
    /// object_store's defaults: 10 retries, 3 minutes, 100 ms doubling up to 15 s.
    fn default() -> Self {
        Self {
            max_retries: 10,
            timeout: Duration::from_secs(180),
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(15),
        }
    }
}

#[cfg(feature = "cloud")]
impl StoreRetry {
    fn to_object_store(self) -> object_store::RetryConfig {
        object_store::RetryConfig {
            backoff: object_store::BackoffConfig {
                init_backoff: self.backoff,
                max_backoff: self.max_backoff,
                base: 2.0,
            },
            max_retries: self.max_retries,
            retry_timeout: self.timeout,
        }
    }
}

/// An object store client for `scheme://bucket/...`: see the [module docs](self).
#[cfg(feature = "cloud")]
pub(crate) fn cloud_store(
    scheme: &str,
    location: &str,
    options: &BTreeMap<String, String>,
    retry: &StoreRetry,
) -> Result<Arc<dyn ObjectStore>> {
    use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
    use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
    use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
    // reqwest is built without a bundled crypto provider (its default is aws-lc, which needs
    // a C toolchain and breaks the static build); use the client's (ring, see
    // kingest_client::crypto_provider).
    // An error means a provider is installed already, which is as good.
    let _ = kingest_client::crypto_provider().install_default();
    let bad = |reason: String| SinkError::Location {
        location: location.to_owned(),
        reason,
    };
    let key_err = |key: &str, e: object_store::Error| {
        bad(format!(
            "sink.storage: unknown option {key:?} for {scheme}:// ({e})"
        ))
    };
    let retry = retry.to_object_store();
    let built: object_store::Result<Arc<dyn ObjectStore>> = match scheme {
        "s3" | "s3a" => {
            let mut b = AmazonS3Builder::from_env().with_url(location);
            for (k, v) in options {
                let key: AmazonS3ConfigKey = k.parse().map_err(|e| key_err(k, e))?;
                b = b.with_config(key, v);
            }
            b.with_retry(retry).build().map(|s| Arc::new(s) as _)
        }
        "gs" => {
            let mut b = GoogleCloudStorageBuilder::from_env().with_url(location);
            for (k, v) in options {
                let key: GoogleConfigKey = k.parse().map_err(|e| key_err(k, e))?;
                b = b.with_config(key, v);
            }
            b.with_retry(retry).build().map(|s| Arc::new(s) as _)
        }
        "az" | "azure" | "abfs" | "abfss" => {
            let mut b = MicrosoftAzureBuilder::from_env().with_url(location);
            for (k, v) in options {
                let key: AzureConfigKey = k.parse().map_err(|e| key_err(k, e))?;
                b = b.with_config(key, v);
            }
            b.with_retry(retry).build().map(|s| Arc::new(s) as _)
        }
        other => {
            return Err(bad(format!(
                "unknown scheme {other:?} (a directory, s3://, gs:// or az://)"
            )))
        }
    };
    built.map_err(|e| bad(e.to_string()))
}

#[cfg(not(feature = "cloud"))]
pub(crate) fn cloud_store(
    _scheme: &str,
    location: &str,
    _options: &BTreeMap<String, String>,
    _retry: &StoreRetry,
) -> Result<Arc<dyn ObjectStore>> {
    Err(SinkError::Location {
        location: location.to_owned(),
        reason: "this kingest was built without the `cloud` feature: local directories only".into(),
    })
}
