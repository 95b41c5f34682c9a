//! Tests of the SCRAM server against the client crate's `ScramClient` (its public API only):
//! the RFC 7677 vector on the server side, round trips with both hashes, wrong passwords,
//! escaped user names, SASLprep, delegation tokens, and every refusal.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use kingest_client::sasl::{
    SaslError, SaslExchange, ScramClient, ScramCredentials, ScramHash, ScramPrep, Step,
};

use super::{ScramCredential, ScramServer, ScramServerError};

// RFC 7677 §3.
const RFC_SERVER_NONCE: &str = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
const RFC_SALT: &str = "W22ZaJ0SNY7soEsUEjb6gQ==";
const RFC_CLIENT_FIRST: &str = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
const RFC_SERVER_FIRST: &str =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
const RFC_CLIENT_FINAL: &str =
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
const RFC_SERVER_FINAL: &str = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

fn respond(step: Step) -> Vec<u8> {
    match step {
        Step::Respond(bytes) => bytes,
        other => panic!("expected Respond, got {other:?}"),
    }
}

/// Runs a whole exchange between `client` and `server`, the server knowing `credential` for
/// every user; returns the server's verdict and what the client made of it.
fn run(
    client: &mut ScramClient,
    server: &mut ScramServer,
    credential: &ScramCredential,
) -> (Result<(), ScramServerError>, Result<Step, SaslError>) {
    let server_first = server
        .handle_client_first(&client.initial(), |_| Some(credential.clone()))
        .unwrap();
    let client_final = respond(client.step(&server_first).unwrap());
    match server.handle_client_final(&client_final) {
        Ok(server_final) => (Ok(()), client.step(&server_final)),
        Err(e) => {
            let reply = e.server_final_message();
            (Err(e), client.step(&reply))
        }
    }
}

#[test]
fn rfc7677_vector_server_side() {
    let salt = B64.decode(RFC_SALT).unwrap();
    let credential = ScramCredential::from_password(ScramHash::Sha256, b"pencil", &salt, 4096);
    let mut server = ScramServer::with_server_nonce(ScramHash::Sha256, RFC_SERVER_NONCE);
    let server_first = server
        .handle_client_first(RFC_CLIENT_FIRST.as_bytes(), |c| {
            (c.username == "user").then(|| credential.clone())
        })
        .unwrap();
    assert_eq!(String::from_utf8(server_first).unwrap(), RFC_SERVER_FIRST);
    let server_final = server
        .handle_client_final(RFC_CLIENT_FINAL.as_bytes())
        .unwrap();
    assert_eq!(String::from_utf8(server_final).unwrap(), RFC_SERVER_FINAL);
    assert_eq!(server.authenticated().unwrap().username, "user");
}

#[test]
fn round_trip_against_scram_server_both_hashes() {
    for hash in [ScramHash::Sha256, ScramHash::Sha512] {
        let credential = ScramCredential::generate(hash, b"pw", 4096).unwrap();
        let mut c = ScramClient::new(hash, &ScramCredentials::new("bob", "pw")).unwrap();
        let mut server = ScramServer::new(hash).unwrap();
        let (verdict, client) = run(&mut c, &mut server, &credential);
        verdict.unwrap();
        assert!(matches!(client.unwrap(), Step::Done), "{hash:?}");
        assert_eq!(server.authenticated().unwrap().username, "bob");
    }
}

#[test]
fn wrong_password_gives_invalid_proof_and_a_clear_client_error() {
    let credential = ScramCredential::generate(ScramHash::Sha512, b"right", 4096).unwrap();
    let mut c =
        ScramClient::new(ScramHash::Sha512, &ScramCredentials::new("carol", "wrong")).unwrap();
    let mut server = ScramServer::new(ScramHash::Sha512).unwrap();
    let (verdict, client) = run(&mut c, &mut server, &credential);
    assert_eq!(
        verdict.unwrap_err(),
        ScramServerError::InvalidProof {
            user: "carol".into()
        }
    );
    let err = client.unwrap_err();
    assert!(
        matches!(&err, SaslError::Rejected { message, .. } if message == "invalid-proof"),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("SCRAM-SHA-512") && msg.contains("carol") && msg.contains("invalid-proof"),
        "{msg}"
    );
    assert!(!msg.contains("wrong"), "{msg}");
    assert!(server.authenticated().is_none());
}

#[test]
fn saslprep_applies_to_non_ascii_passwords_and_names_when_asked() {
    // RFC 4013 §3: SOFT HYPHEN maps to nothing, ROMAN NUMERAL NINE normalises (NFKC) to "IX",
    // NO-BREAK SPACE maps to a space.
    let prepped = ScramCredential::generate(ScramHash::Sha256, b"IX", 4096).unwrap();
    for password in ["I\u{ad}X", "\u{2168}", "IX"] {
        let creds =
            ScramCredentials::new("user\u{a0}name", password).with_prep(ScramPrep::SaslPrep);
        let mut c = ScramClient::new(ScramHash::Sha256, &creds).unwrap();
        let mut server = ScramServer::new(ScramHash::Sha256).unwrap();
        let (verdict, client) = run(&mut c, &mut server, &prepped);
        verdict.unwrap();
        assert!(matches!(client.unwrap(), Step::Done), "{password:?}");
        assert_eq!(server.authenticated().unwrap().username, "user name");
    }
    // Kafka's default: the password goes in as is, so it matches a broker that stored the raw
    // password and not one that stored the prepared one.
    let creds = ScramCredentials::new("user", "I\u{ad}X");
    let raw = ScramCredential::generate(ScramHash::Sha256, "I\u{ad}X".as_bytes(), 4096).unwrap();
    let (verdict, client) = run(
        &mut ScramClient::new(ScramHash::Sha256, &creds).unwrap(),
        &mut ScramServer::new(ScramHash::Sha256).unwrap(),
        &raw,
    );
    verdict.unwrap();
    assert!(matches!(client.unwrap(), Step::Done));
    let (verdict, _) = run(
        &mut ScramClient::new(ScramHash::Sha256, &creds).unwrap(),
        &mut ScramServer::new(ScramHash::Sha256).unwrap(),
        &prepped,
    );
    assert!(matches!(
        verdict,
        Err(ScramServerError::InvalidProof { .. })
    ));
}

#[test]
fn server_refusals() {
    let hash = ScramHash::Sha256;
    let good = ScramCredential::generate(hash, b"pw", 4096).unwrap();
    let first = |msg: &str, cred: Option<ScramCredential>| {
        ScramServer::new(hash)
            .unwrap()
            .handle_client_first(msg.as_bytes(), |_| cred)
            .unwrap_err()
    };
    assert_eq!(
        first("n,,n=ghost,r=abc", None),
        ScramServerError::UnknownUser {
            user: "ghost".into()
        }
    );
    assert_eq!(
        first("n,,n=ghost,r=abc", None).server_final_message(),
        b"e=unknown-user"
    );
    assert_eq!(
        first("p=tls-unique,,n=u,r=abc", Some(good.clone())),
        ScramServerError::ChannelBindingNotSupported
    );
    assert!(matches!(
        first("n,a=other,n=u,r=abc", Some(good.clone())),
        ScramServerError::AuthzidMismatch { .. }
    ));
    let weak = ScramCredential::from_password(hash, b"pw", b"salt", 4095);
    assert!(matches!(
        first("n,,n=u,r=abc", Some(weak)),
        ScramServerError::IterationsTooLow {
            iterations: 4095,
            ..
        }
    ));
    for bad in [
        "",
        "n,,",
        "x,,n=u,r=abc",
        "n,,n=u",
        "n,,n=u=,r=abc",
        "n,,m=x,n=u,r=abc",
        "n,,n=u,r=a,b",
    ] {
        assert!(
            matches!(
                first(bad, Some(good.clone())),
                ScramServerError::Malformed { .. }
            ),
            "{bad:?}"
        );
    }
    // Final-message checks, after a good client-first.
    let started = || {
        let mut s = ScramServer::with_server_nonce(hash, "SRV");
        s.handle_client_first(b"n,,n=u,r=CLI", |_| Some(good.clone()))
            .unwrap();
        s
    };
    let proof = B64.encode([0u8; 32]);
    assert_eq!(
        started()
            .handle_client_final(format!("c=eSws,r=CLISRV,p={proof}").as_bytes())
            .unwrap_err(),
        ScramServerError::ChannelBindingMismatch
    );
    assert_eq!(
        started()
            .handle_client_final(format!("c=biws,r=CLIxxx,p={proof}").as_bytes())
            .unwrap_err(),
        ScramServerError::NonceMismatch
    );
    assert!(matches!(
        started()
            .handle_client_final(format!("c=biws,r=CLISRV,p={proof}").as_bytes())
            .unwrap_err(),
        ScramServerError::InvalidProof { .. }
    ));
    assert!(matches!(
        started()
            .handle_client_final(b"c=biws,r=CLISRV")
            .unwrap_err(),
        ScramServerError::Malformed { .. }
    ));
    let mut fresh = ScramServer::new(hash).unwrap();
    assert!(matches!(
        fresh.handle_client_final(b"c=biws,r=x,p=y").unwrap_err(),
        ScramServerError::State { .. }
    ));
}

#[test]
fn stored_credentials_do_not_print_their_keys() {
    let credential = ScramCredential::from_password(ScramHash::Sha256, b"pw", b"salt", 4096);
    let debug = format!("{credential:?}");
    assert!(
        debug.contains("<redacted>") && debug.contains("4096"),
        "{debug}"
    );
    assert!(
        !debug.contains(&B64.encode(&credential.stored_key)),
        "{debug}"
    );
    assert!(
        !debug.contains(&format!("{:?}", credential.server_key)),
        "{debug}"
    );
}

#[test]
fn escaped_user_names_are_unescaped() {
    let credential = ScramCredential::generate(ScramHash::Sha256, b"pw", 4096).unwrap();
    let mut c = ScramClient::new(ScramHash::Sha256, &ScramCredentials::new("a=b,c", "pw")).unwrap();
    let mut server = ScramServer::new(ScramHash::Sha256).unwrap();
    let mut seen = None;
    let first = server
        .handle_client_first(&c.initial(), |cf| {
            seen = Some(cf.username.clone());
            Some(credential.clone())
        })
        .unwrap();
    assert_eq!(seen.as_deref(), Some("a=b,c"));
    let last = server
        .handle_client_final(&respond(c.step(&first).unwrap()))
        .unwrap();
    assert!(matches!(c.step(&last).unwrap(), Step::Done));
    assert_eq!(server.authenticated().unwrap().username, "a=b,c");
}

#[test]
fn delegation_tokens_reach_the_server_as_the_tokenauth_extension() {
    let creds = ScramCredentials::delegation_token("tokenId", "hmacBase64==");
    let mut c = ScramClient::new(ScramHash::Sha512, &creds).unwrap();
    let credential = ScramCredential::generate(ScramHash::Sha512, b"hmacBase64==", 4096).unwrap();
    let mut server = ScramServer::new(ScramHash::Sha512).unwrap();
    let (verdict, client) = run(&mut c, &mut server, &credential);
    verdict.unwrap();
    assert!(matches!(client.unwrap(), Step::Done));
    let who = server.authenticated().unwrap();
    assert_eq!(who.username, "tokenId");
    assert_eq!(
        who.extensions.get("tokenauth").map(String::as_str),
        Some("true")
    );
}
