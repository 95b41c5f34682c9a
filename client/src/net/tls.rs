//! TLS settings for broker connections, on rustls with the *ring* crypto provider.
//!
//! # Which crypto provider, and why *ring*
//!
//! rustls needs a crypto provider: *ring* or aws-lc-rs (its default). rustls 0.23.48
//! deprecated `rustls::crypto::ring::default_provider` because *ring* has no post-quantum key
//! exchange; aws-lc-rs offers X25519MLKEM768 (a hybrid of X25519 and ML-KEM) and prefers it.
//! kingest stays on *ring*, deliberately, and [`crypto_provider`] is the one place that says
//! so (the deprecation is allowed there, and every TLS user in the workspace, the ingest
//! binary's object-store and PostgreSQL clients and testkit included, takes its provider from
//! it):
//!
//! - *ring* is in the binary anyway: object_store signs S3, GCS and Azure requests with it.
//!   aws-lc-rs would be a second crypto library next to it, not a replacement;
//! - its cost (BENCHMARKS.md, "Crypto provider: ring or aws-lc-rs"): building aws-lc-sys
//!   compiles the AWS-LC C library, minutes more of a fresh build on 2 cores, and the binary
//!   carries it beside *ring*; the static musl build of scripts/musl.sh must stay under its
//!   25 MB limit;
//! - the gain is small today: the hybrid protects a recorded session from a future quantum
//!   computer, but only against a broker that offers it, and Kafka brokers terminate TLS in the
//!   JDK, which has no ML-KEM key exchange in TLS before Java 27 (JEP 527 is not in a released
//!   JDK at the time of writing); with any other broker the handshake falls back to X25519.
//!
//! Revisit when rustls gives *ring* a post-quantum group, when rustls 0.24 moves *ring* out, or
//! when Kafka users ask for post-quantum TLS: the switch is this function and the `ring`
//! features in the workspace's Cargo.toml.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

use crate::error::{ClientError, Result};

/// Which certificate authorities to trust.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum CaSource {
    /// The operating system's trust store.
    #[default]
    System,
    /// A PEM file of CA certificates (`ssl.ca.location`).
    File(PathBuf),
    /// PEM text of CA certificates.
    Pem(String),
}

/// TLS settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsConfig {
    /// The CAs to trust.
    pub ca: CaSource,
    /// Client certificate chain and private key (PEM files) for mutual TLS.
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// The name to send as SNI and to verify the certificate against, when it is not the host
    /// name the broker advertises.
    pub server_name: Option<String>,
    /// Accept any server certificate. Only for tests against throwaway brokers: it defeats the
    /// point of TLS, and the client logs a warning each time it connects this way.
    pub danger_accept_invalid_certs: bool,
}

/// The crypto provider of every TLS connection kingest makes (and testkit serves): rustls on
/// *ring*, without post-quantum key exchange. The module docs say why.
pub fn crypto_provider() -> CryptoProvider {
    // Deprecated by rustls 0.23.48 for lacking post-quantum key exchange: a known trade-off,
    // decided in the module docs.
    #[allow(deprecated)]
    rustls::crypto::ring::default_provider()
}

impl TlsConfig {
    /// Builds the rustls client settings.
    pub fn build(&self) -> Result<Arc<ClientConfig>> {
        let provider = Arc::new(crypto_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| ClientError::TlsConfig(e.to_string()))?;
        let builder = if self.danger_accept_invalid_certs {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCert(provider)))
        } else {
            builder.with_root_certificates(self.roots()?)
        };
        let config = match &self.client_cert {
            None => builder.with_no_client_auth(),
            Some((chain, key)) => {
                let certs = CertificateDer::pem_file_iter(chain)
                    .and_then(|it| it.collect::<std::result::Result<Vec<_>, _>>())
                    .map_err(|e| {
                        ClientError::TlsConfig(format!(
                            "client certificate {}: {e}",
                            chain.display()
                        ))
                    })?;
                let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
                    ClientError::TlsConfig(format!("client key {}: {e}", key.display()))
                })?;
                builder.with_client_auth_cert(certs, key).map_err(|e| {
                    ClientError::TlsConfig(format!("client certificate and key: {e}"))
                })?
            }
        };
        Ok(Arc::new(config))
    }

    fn roots(&self) -> Result<RootCertStore> {
        let mut roots = RootCertStore::empty();
        let certs: Vec<CertificateDer<'static>> = match &self.ca {
            CaSource::System => {
                let found = rustls_native_certs::load_native_certs();
                if found.certs.is_empty() {
                    return Err(ClientError::TlsConfig(format!(
                        "no system CA certificates found ({:?}); set a CA file",
                        found.errors
                    )));
                }
                found.certs
            }
            CaSource::File(path) => CertificateDer::pem_file_iter(path)
                .and_then(|it| it.collect::<std::result::Result<Vec<_>, _>>())
                .map_err(|e| ClientError::TlsConfig(format!("CA file {}: {e}", path.display())))?,
            CaSource::Pem(text) => CertificateDer::pem_slice_iter(text.as_bytes())
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| ClientError::TlsConfig(format!("CA certificates: {e}")))?,
        };
        let (added, _ignored) = roots.add_parsable_certificates(certs);
        if added == 0 {
            return Err(ClientError::TlsConfig(
                "no usable CA certificate".to_owned(),
            ));
        }
        Ok(roots)
    }

    /// The server name to present and verify for a broker at `host`.
    pub fn server_name(&self, host: &str) -> Result<ServerName<'static>> {
        let name = self.server_name.as_deref().unwrap_or(host);
        ServerName::try_from(name.to_owned())
            .map_err(|e| ClientError::TlsConfig(format!("invalid server name {name:?}: {e}")))
    }
}

/// Accepts any certificate but still checks handshake signatures, so the session is at least
/// bound to the key the server presented.
#[derive(Debug)]
struct AcceptAnyCert(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
