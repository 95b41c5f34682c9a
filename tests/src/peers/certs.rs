//! A throwaway PKI for TLS tests: a CA, a server certificate for 127.0.0.1/localhost, a client
//! certificate, and an unrelated second CA (to show that a wrong CA is refused).

use std::path::PathBuf;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

/// PEM files in a temporary directory, removed when dropped.
pub struct TestPki {
    _dir: tempfile::TempDir,
    /// The CA certificate that signed the server and client certificates.
    pub ca: PathBuf,
    /// The server certificate (SANs 127.0.0.1 and localhost).
    pub server_cert: PathBuf,
    /// The server's PKCS#8 key.
    pub server_key: PathBuf,
    /// The client certificate (CN kingest-client).
    pub client_cert: PathBuf,
    /// The client's PKCS#8 key.
    pub client_key: PathBuf,
    /// A CA that signed nothing here.
    pub other_ca: PathBuf,
}

fn ca(name: &str) -> (CertificateParams, KeyPair, String) {
    let key = KeyPair::generate().expect("CA key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let cert = params.self_signed(&key).expect("self-signed CA").pem();
    (params, key, cert)
}

impl TestPki {
    /// Generates everything.
    pub fn generate() -> TestPki {
        let dir = tempfile::tempdir().expect("temp dir for certificates");
        let write = |name: &str, pem: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, pem).expect("write PEM");
            path
        };
        let (ca_params, ca_key, ca_pem) = ca("kingest test CA");
        let issuer = Issuer::new(ca_params, ca_key);

        let server_key = KeyPair::generate().expect("server key");
        let mut server =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
                .expect("server params");
        server
            .distinguished_name
            .push(DnType::CommonName, "127.0.0.1");
        let server_pem = server
            .signed_by(&server_key, &issuer)
            .expect("server cert")
            .pem();

        let client_key = KeyPair::generate().expect("client key");
        let mut client = CertificateParams::new(Vec::<String>::new()).expect("client params");
        client
            .distinguished_name
            .push(DnType::CommonName, "kingest-client");
        let client_pem = client
            .signed_by(&client_key, &issuer)
            .expect("client cert")
            .pem();

        let (_, _, other_pem) = ca("some other CA");
        TestPki {
            ca: write("ca.pem", &ca_pem),
            server_cert: write("server.pem", &server_pem),
            server_key: write("server.key", &server_key.serialize_pem()),
            client_cert: write("client.pem", &client_pem),
            client_key: write("client.key", &client_key.serialize_pem()),
            other_ca: write("other-ca.pem", &other_pem),
            _dir: dir,
        }
    }
}
