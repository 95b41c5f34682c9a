//! TLS, mutual TLS and SASL/SCRAM against a real broker: nisshi's own TLS listener, stunnel
//! verifying client certificates in front of nisshi, and nisshi's SCRAM users. And what a
//! client configured for less than the listener wants is told: plaintext to a TLS listener
//! ("answered with TLS: set [source.tls]" from nisshi's alert, "it may expect TLS" from
//! OpenSSL's silent close), no SASL at a SASL listener ("it may require authentication").

use kingest_client::admin::{Admin, NewTopic};
use kingest_client::sasl::Mechanism;
use kingest_client::{CaSource, TlsConfig};
use kingest_client::{Client, ClientConfig, ClientError};
use kingest_tests::peers::certs::TestPki;
use kingest_tests::peers::nisshi::{Nisshi, NisshiOptions};
use kingest_tests::peers::stunnel::Stunnel;

fn tls_config(addr: &str, tls: TlsConfig) -> ClientConfig {
    let mut config = ClientConfig::new(addr);
    let built = tls.build().expect("TLS settings");
    config.connection.tls = Some((built, tls));
    config.connection.connect_timeout = std::time::Duration::from_secs(5);
    config
}

/// Connects and does real work (create and list a topic) over the connection.
async fn round_trip(config: ClientConfig) -> Result<(), ClientError> {
    let admin = Admin::new(Client::connect(config).await?);
    admin
        .create_topics_if_missing(&[NewTopic::new("secure", 3)])
        .await?;
    let topics = admin.list_topics().await?;
    assert!(topics.contains(&"secure".to_owned()), "{topics:?}");
    assert_eq!(admin.client().partition_count("secure").await?, 3);
    Ok(())
}

#[tokio::test]
async fn tls_with_the_right_and_a_wrong_ca() {
    let pki = TestPki::generate();
    let broker = Nisshi::start_with(NisshiOptions {
        tls: Some((pki.server_cert.clone(), pki.server_key.clone())),
        ..Default::default()
    });
    let mut good = TlsConfig::default();
    good.ca = CaSource::File(pki.ca.clone());
    round_trip(tls_config(&broker.addr(), good))
        .await
        .expect("verified TLS to nisshi");

    let mut wrong = TlsConfig::default();
    wrong.ca = CaSource::File(pki.other_ca.clone());
    let err = round_trip(tls_config(&broker.addr(), wrong))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("TLS handshake with") && text.contains("UnknownIssuer"),
        "{text}"
    );

    // The loudly named escape hatch connects anyway (and logs a warning).
    let mut insecure = TlsConfig::default();
    insecure.ca = CaSource::File(pki.other_ca.clone());
    insecure.danger_accept_invalid_certs = true;
    round_trip(tls_config(&broker.addr(), insecure))
        .await
        .expect("unverified TLS");

    // A name the certificate does not carry is refused.
    let mut misnamed = TlsConfig::default();
    misnamed.ca = CaSource::File(pki.ca.clone());
    misnamed.server_name = Some("kafka.example.com".to_owned());
    let err = round_trip(tls_config(&broker.addr(), misnamed))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("not valid for name \"kafka.example.com\""),
        "{err}"
    );
}

#[tokio::test]
async fn mutual_tls_through_a_verifying_terminator() {
    let pki = TestPki::generate();
    let tls_port = Stunnel::pick_port();
    let broker = Nisshi::start_with(NisshiOptions {
        advertised_port: Some(tls_port),
        ..Default::default()
    });
    let stunnel = Stunnel::start(
        tls_port,
        broker.port(),
        &pki.server_cert,
        &pki.server_key,
        &pki.ca,
    );
    let addr = format!("127.0.0.1:{}", stunnel.port());

    let mut with_cert = TlsConfig::default();
    with_cert.ca = CaSource::File(pki.ca.clone());
    with_cert.client_cert = Some((pki.client_cert.clone(), pki.client_key.clone()));
    round_trip(tls_config(&addr, with_cert))
        .await
        .unwrap_or_else(|e| panic!("mutual TLS failed: {e}\nstunnel: {}", stunnel.log()));

    let mut without = TlsConfig::default();
    without.ca = CaSource::File(pki.ca.clone());
    let err = round_trip(tls_config(&addr, without)).await.unwrap_err();
    // TLS 1.3 sends the refusal as an alert after the handshake: the first read fails with it.
    assert!(err.to_string().contains("CertificateRequired"), "{err}");
    assert!(
        stunnel.wait_for_log("peer did not return a certificate"),
        "{}",
        stunnel.log()
    );
}

#[tokio::test]
async fn scram_sha256_and_sha512_logins() {
    let db = "users.db".to_owned();
    let mut broker = Nisshi::start_with(NisshiOptions {
        sqlite: Some(db.clone()),
        ..Default::default()
    });
    broker.cli(&[
        "user",
        "create",
        "--mechanism",
        "scram256",
        "alice",
        "alice-secret",
    ]);
    broker.cli(&[
        "user",
        "create",
        "--mechanism",
        "scram512",
        "bob",
        "bob-secret",
    ]);
    broker.restart_with(NisshiOptions {
        sqlite: Some(db),
        authentication: true,
        ..Default::default()
    });

    let with = |mechanism: Mechanism| {
        let mut c = ClientConfig::new(&broker.addr());
        c.connection.sasl = Some(mechanism);
        c
    };
    round_trip(with(Mechanism::scram_sha256("alice", "alice-secret")))
        .await
        .expect("SCRAM-SHA-256 login");
    round_trip(with(Mechanism::scram_sha512("bob", "bob-secret")))
        .await
        .expect("SCRAM-SHA-512 login");

    let err = round_trip(with(Mechanism::scram_sha512("bob", "wrong")))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, ClientError::NoBrokerReachable { ref last, .. } if matches!(**last, ClientError::Auth { .. })),
        "{text}"
    );
    assert!(
        text.contains("SASL SCRAM-SHA-512 authentication")
            && text.contains("user \"bob\"")
            && text.contains("invalid-proof"),
        "{text}"
    );

    // A mechanism the user does not have is refused too.
    let err = round_trip(with(Mechanism::scram_sha256("bob", "bob-secret")))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("SCRAM-SHA-256"), "{err}");
}

/// The whole message a plaintext client gets from a TLS listener at `addr`.
fn tls_required(addr: &str) -> String {
    format!(
        "no bootstrap server reachable ({addr}): bootstrap broker {addr} answered with TLS: set \
         [source.tls] (the client's TLS settings) to connect to a TLS listener"
    )
}

#[tokio::test]
async fn plaintext_to_a_tls_listener_is_told_to_set_tls() {
    let pki = TestPki::generate();
    // nisshi's own TLS listener, and OpenSSL's (stunnel) in front of a plain one.
    let tls_port = Stunnel::pick_port();
    let broker = Nisshi::start_with(NisshiOptions {
        tls: Some((pki.server_cert.clone(), pki.server_key.clone())),
        ..Default::default()
    });
    let plain = Nisshi::start_with(NisshiOptions {
        advertised_port: Some(tls_port),
        ..Default::default()
    });
    let stunnel = Stunnel::start(
        tls_port,
        plain.port(),
        &pki.server_cert,
        &pki.server_key,
        &pki.ca,
    );
    let plaintext = |addr: &str| {
        let mut config = ClientConfig::new(addr);
        config.connection.connect_timeout = std::time::Duration::from_secs(5);
        Client::connect(config)
    };
    // nisshi (rustls) answers with a TLS alert.
    let err = plaintext(&broker.addr()).await.unwrap_err();
    assert!(
        matches!(err, ClientError::NoBrokerReachable { ref last, .. }
            if matches!(**last, ClientError::TlsRequired { .. })),
        "{err:?}"
    );
    assert_eq!(err.to_string(), tls_required(&broker.addr()));
    // OpenSSL closes without a word; the client says what that likely means.
    let addr = format!("127.0.0.1:{}", stunnel.port());
    let err = plaintext(&addr).await.unwrap_err();
    assert!(
        matches!(err, ClientError::NoBrokerReachable { ref last, .. }
            if matches!(**last, ClientError::ClosedBeforeAnswer { .. })),
        "{err:?}\nstunnel: {}",
        stunnel.log()
    );
    assert_eq!(
        err.to_string(),
        format!(
            "no bootstrap server reachable ({addr}): bootstrap broker {addr} closed the \
             connection without answering ApiVersions: it may expect TLS; set [source.tls] (the \
             client's TLS settings)"
        )
    );

    // What a kingest user sees.
    let out = kingest_tests::ingest::kingest(&["topics", "--brokers", &broker.addr(), "list"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!("kingest topics: {}\n", tls_required(&broker.addr()))
    );
}

#[tokio::test]
async fn a_sasl_listener_closing_on_a_client_without_sasl_says_authentication_may_be_required() {
    let db = "users.db".to_owned();
    let mut broker = Nisshi::start_with(NisshiOptions {
        sqlite: Some(db.clone()),
        ..Default::default()
    });
    broker.restart_with(NisshiOptions {
        sqlite: Some(db),
        authentication: true,
        ..Default::default()
    });
    let err = round_trip(ClientConfig::new(&broker.addr()))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClientError::ClosedUnauthenticated { .. }),
        "{err:?}\nnisshi: {}",
        broker.log()
    );
    assert_eq!(
        err.to_string(),
        format!(
            "bootstrap broker {} closed the connection after ApiVersions, before answering a \
             request: it may require authentication; set [source.sasl] (the client's SASL \
             settings)",
            broker.addr()
        )
    );
}
