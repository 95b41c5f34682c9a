//! TLS settings for broker connections, on rustls with the ring provider (which builds for musl
//! without a C toolchain's OpenSSL).

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

impl TlsConfig {
    /// Builds the rustls client settings.
    pub fn build(&self) -> Result<Arc<ClientConfig>> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
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
