//! Tests of the SCRAM client: the RFC 7677 vector, round trips against an independent in-test
//! server, and every way an exchange must fail. The broker side (testkit's `ScramServer`) is
//! tested against this client in testkit.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha512};

use super::*;

// RFC 7677 §3.
const RFC_CLIENT_NONCE: &str = "rOprNGfwEbeRWgbNEkqO";
const RFC_SALT: &str = "W22ZaJ0SNY7soEsUEjb6gQ==";
const RFC_CLIENT_FIRST: &str = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
const RFC_SERVER_FIRST: &str =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
const RFC_CLIENT_FINAL: &str =
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
const RFC_SERVER_FINAL: &str = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

fn rfc_client() -> ScramClient {
    ScramClient::with_nonce(
        ScramHash::Sha256,
        &ScramCredentials::new("user", "pencil"),
        RFC_CLIENT_NONCE,
    )
    .unwrap()
}

fn respond(step: Step) -> Vec<u8> {
    match step {
        Step::Respond(bytes) => bytes,
        other => panic!("expected Respond, got {other:?}"),
    }
}

#[test]
fn rfc7677_vector_client_side() {
    let mut c = rfc_client();
    assert_eq!(c.initial(), RFC_CLIENT_FIRST.as_bytes());
    let client_final = respond(c.step(RFC_SERVER_FIRST.as_bytes()).unwrap());
    assert_eq!(String::from_utf8(client_final).unwrap(), RFC_CLIENT_FINAL);
    assert!(matches!(
        c.step(RFC_SERVER_FINAL.as_bytes()).unwrap(),
        Step::Done
    ));
    assert!(c.is_complete());
    assert!(matches!(c.step(b""), Err(SaslError::State { .. })));
}

/// A SCRAM-SHA-512 server written apart from the code under test: Hi as RFC 5802 §2.2 spells it
/// out (not PBKDF2), messages built and cut by hand.
struct IndependentSha512Server {
    salt: Vec<u8>,
    iterations: u32,
    password: &'static [u8],
    client_first_bare: String,
    server_first: String,
}

impl IndependentSha512Server {
    fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
        let mut mac = <Hmac<Sha512> as KeyInit>::new_from_slice(key).unwrap();
        mac.update(data);
        mac.finalize().into_bytes().to_vec()
    }

    fn hi(&self) -> Vec<u8> {
        let mut u = Self::hmac(
            self.password,
            &[self.salt.as_slice(), &[0, 0, 0, 1]].concat(),
        );
        let mut result = u.clone();
        for _ in 1..self.iterations {
            u = Self::hmac(self.password, &u);
            result.iter_mut().zip(&u).for_each(|(r, x)| *r ^= x);
        }
        result
    }

    fn first(&mut self, client_first: &[u8]) -> Vec<u8> {
        let text = std::str::from_utf8(client_first).unwrap();
        self.client_first_bare = text.strip_prefix("n,,").unwrap().to_owned();
        let nonce = self.client_first_bare.split(",r=").nth(1).unwrap();
        self.server_first = format!(
            "r={nonce}srvNONCE,s={},i={}",
            B64.encode(&self.salt),
            self.iterations
        );
        self.server_first.clone().into_bytes()
    }

    fn last(&self, client_final: &[u8]) -> Vec<u8> {
        let text = std::str::from_utf8(client_final).unwrap();
        let (without_proof, proof) = text.split_once(",p=").unwrap();
        let auth = format!(
            "{},{},{without_proof}",
            self.client_first_bare, self.server_first
        );
        let salted = self.hi();
        let client_key = Self::hmac(&salted, b"Client Key");
        let stored_key = Sha512::digest(&client_key).to_vec();
        let signature = Self::hmac(&stored_key, auth.as_bytes());
        let expected: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(a, b)| a ^ b)
            .collect();
        assert_eq!(B64.decode(proof).unwrap(), expected, "client proof");
        let server_key = Self::hmac(&salted, b"Server Key");
        format!("v={}", B64.encode(Self::hmac(&server_key, auth.as_bytes()))).into_bytes()
    }
}

#[test]
fn sha512_round_trip_against_an_independent_server() {
    let mut server = IndependentSha512Server {
        salt: b"0123456789abcdef".to_vec(),
        iterations: 4096,
        password: b"s3cr3t-p\xc3\xa4ss",
        client_first_bare: String::new(),
        server_first: String::new(),
    };
    let creds = ScramCredentials::new("alice", "s3cr3t-p\u{e4}ss");
    let mut c = ScramClient::new(ScramHash::Sha512, &creds).unwrap();
    assert_eq!(c.mechanism(), "SCRAM-SHA-512");
    let server_first = server.first(&c.initial());
    let client_final = respond(c.step(&server_first).unwrap());
    let server_final = server.last(&client_final);
    assert!(matches!(c.step(&server_final).unwrap(), Step::Done));
}

#[test]
fn server_error_attribute_is_reported_with_mechanism_and_user() {
    for (server_final, expected) in [
        ("e=invalid-proof", "invalid-proof"),
        ("e=other-error,x=1", "other-error"),
    ] {
        let mut c = rfc_client();
        let _ = c.initial();
        let _ = c.step(RFC_SERVER_FIRST.as_bytes()).unwrap();
        let err = c.step(server_final.as_bytes()).unwrap_err();
        assert!(
            matches!(&err, SaslError::Rejected { mechanism: "SCRAM-SHA-256", user, message }
            if user == "user" && message == expected),
            "{err:?}"
        );
        assert!(!c.is_complete());
        assert!(matches!(
            c.step(RFC_SERVER_FINAL.as_bytes()),
            Err(SaslError::State { .. })
        ));
    }
}

#[test]
fn wrong_server_signature_is_an_error() {
    let forged = B64.encode([0x5a; 32]);
    let salt = B64.decode(RFC_SALT).unwrap();
    // A server with a different password: it can make a well-formed but wrong signature.
    let impostor_salted = ScramHash::Sha256.salted_password(b"guess", &salt, 4096);
    let impostor_server_key = ScramHash::Sha256.hmac(&impostor_salted, b"Server Key");
    let auth = format!(
        "n=user,r={RFC_CLIENT_NONCE},{RFC_SERVER_FIRST},{}",
        RFC_CLIENT_FINAL.split(",p=").next().unwrap()
    );
    let impostor_sig = B64.encode(ScramHash::Sha256.hmac(&impostor_server_key, auth.as_bytes()));
    let truncated = &RFC_SERVER_FINAL[..RFC_SERVER_FINAL.len() - 8];
    for server_final in [
        format!("v={forged}"),
        format!("v={impostor_sig}"),
        "v=".to_string(),
    ] {
        let mut c = rfc_client();
        let _ = c.initial();
        let _ = c.step(RFC_SERVER_FIRST.as_bytes()).unwrap();
        let err = c.step(server_final.as_bytes()).unwrap_err();
        assert!(
            matches!(
                err,
                SaslError::InvalidServerSignature {
                    mechanism: "SCRAM-SHA-256",
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("user"), "{err}");
        assert!(!c.is_complete());
    }
    for bad in [truncated, "", "x=abc", "v=not base64!"] {
        let mut c = rfc_client();
        let _ = c.initial();
        let _ = c.step(RFC_SERVER_FIRST.as_bytes()).unwrap();
        let err = c.step(bad.as_bytes()).unwrap_err();
        assert!(
            matches!(
                err,
                SaslError::Protocol { .. } | SaslError::InvalidServerSignature { .. }
            ),
            "{bad:?}: {err:?}"
        );
        assert!(!c.is_complete());
    }
}

#[test]
fn iterations_below_kafkas_minimum_are_refused() {
    let mut c = rfc_client();
    let _ = c.initial();
    let first = RFC_SERVER_FIRST.replace("i=4096", "i=4095");
    let err = c.step(first.as_bytes()).unwrap_err();
    assert!(
        matches!(
            err,
            SaslError::IterationsTooLow {
                iterations: 4095,
                minimum: 4096,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("4095") && err.to_string().contains("SCRAM-SHA-256"),
        "{err}"
    );
    for bad in ["i=0", "i=", "i=abc", "i=-5000", "i=99999999999"] {
        let mut c = rfc_client();
        let _ = c.initial();
        let err = c
            .step(RFC_SERVER_FIRST.replace("i=4096", bad).as_bytes())
            .unwrap_err();
        assert!(
            matches!(
                err,
                SaslError::Protocol { .. } | SaslError::IterationsTooLow { .. }
            ),
            "{bad}: {err:?}"
        );
    }
}

#[test]
fn malformed_server_first_messages_are_refused() {
    let cases = [
        "r=someoneElsesNonce,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096".to_string(),
        format!("m=ext,{RFC_SERVER_FIRST}"),
        format!("r={RFC_CLIENT_NONCE}x,i=4096"),
        format!("r={RFC_CLIENT_NONCE}x,s=***,i=4096"),
        format!("s={RFC_SALT},r={RFC_CLIENT_NONCE}x,i=4096"),
        String::new(),
    ];
    for bad in &cases {
        let mut c = rfc_client();
        let _ = c.initial();
        let err = c.step(bad.as_bytes()).unwrap_err();
        assert!(
            matches!(
                err,
                SaslError::Protocol {
                    mechanism: "SCRAM-SHA-256",
                    ..
                }
            ),
            "{bad}: {err:?}"
        );
        assert!(matches!(c.step(b"v=x"), Err(SaslError::State { .. })));
    }
    let mut c = rfc_client();
    let _ = c.initial();
    assert!(matches!(
        c.step(&[0xff, 0xfe]),
        Err(SaslError::Protocol { .. })
    ));
    // Extensions after the iteration count are allowed (and ignored).
    let mut c = rfc_client();
    let _ = c.initial();
    assert!(matches!(
        c.step(format!("{RFC_SERVER_FIRST},x=y").as_bytes())
            .unwrap(),
        Step::Respond(_)
    ));
}

#[test]
fn user_names_escape_equals_and_comma() {
    assert_eq!(escape_username("a=b,c"), "a=3Db=2Cc");
    assert_eq!(escape_username("=,=,"), "=3D=2C=3D=2C");
    assert_eq!(unescape_username("a=3Db=2Cc").as_deref(), Some("a=b,c"));
    assert_eq!(unescape_username("=2C=3D").as_deref(), Some(",="));
    for bad in ["a=", "a=2", "a=41", "=3d"] {
        assert_eq!(unescape_username(bad), None, "{bad}");
    }
    let mut c = ScramClient::with_nonce(
        ScramHash::Sha256,
        &ScramCredentials::new("a=b,c", "pw"),
        "NONCE",
    )
    .unwrap();
    assert_eq!(c.initial(), b"n,,n=a=3Db=2Cc,r=NONCE");
}

#[test]
fn saslprep_rejects_prohibited_characters() {
    let creds = ScramCredentials::new("user", "bell\u{7}").with_prep(ScramPrep::SaslPrep);
    let err = ScramClient::new(ScramHash::Sha256, &creds).unwrap_err();
    assert!(
        matches!(err, SaslError::InvalidCredentials { .. }),
        "{err:?}"
    );
    let creds = ScramCredentials::new("us\u{7}er", "pw").with_prep(ScramPrep::SaslPrep);
    assert!(ScramClient::new(ScramHash::Sha256, &creds).is_err());
    // Not prepared, the same password is used byte for byte, as Kafka's Java client does.
    ScramClient::new(
        ScramHash::Sha256,
        &ScramCredentials::new("user", "bell\u{7}"),
    )
    .unwrap();
}

#[test]
fn saslprep_prepares_the_password_the_server_derived_its_keys_from() {
    // RFC 4013 §3: SOFT HYPHEN maps to nothing and ROMAN NUMERAL NINE normalises (NFKC) to
    // "IX": prepared, both are the password "IX" the independent server knows.
    for password in ["I\u{ad}X", "\u{2168}"] {
        let mut server = IndependentSha512Server {
            salt: b"fedcba9876543210".to_vec(),
            iterations: 4096,
            password: b"IX",
            client_first_bare: String::new(),
            server_first: String::new(),
        };
        let creds = ScramCredentials::new("user", password).with_prep(ScramPrep::SaslPrep);
        let mut c = ScramClient::new(ScramHash::Sha512, &creds).unwrap();
        let server_first = server.first(&c.initial());
        let client_final = respond(c.step(&server_first).unwrap());
        let server_final = server.last(&client_final);
        assert!(
            matches!(c.step(&server_final).unwrap(), Step::Done),
            "{password:?}"
        );
    }
}

#[test]
fn delegation_token_sends_tokenauth_extension() {
    let creds = ScramCredentials::delegation_token("tokenId", "hmacBase64==");
    let mut c = ScramClient::with_nonce(ScramHash::Sha512, &creds, "NONCE").unwrap();
    assert_eq!(c.initial(), b"n,,n=tokenId,r=NONCE,tokenauth=true");
    for (k, v) in [
        ("", "x"),
        ("a1", "x"),
        ("k", ""),
        ("k", "a,b"),
        ("k", "\u{e9}"),
    ] {
        let creds = ScramCredentials::new("u", "p").with_extension(k, v);
        assert!(matches!(
            ScramClient::new(ScramHash::Sha256, &creds),
            Err(SaslError::InvalidCredentials { .. })
        ));
    }
}

#[test]
fn nonces_are_fresh_and_printable() {
    let creds = ScramCredentials::new("u", "p");
    let nonces: Vec<String> = (0..16)
        .map(|_| {
            let first = String::from_utf8(
                ScramClient::new(ScramHash::Sha256, &creds)
                    .unwrap()
                    .initial(),
            )
            .unwrap();
            first.strip_prefix("n,,n=u,r=").unwrap().to_owned()
        })
        .collect();
    for n in &nonces {
        assert_eq!(n.len(), 32);
        assert!(n.bytes().all(is_printable), "{n}");
    }
    let distinct: std::collections::BTreeSet<_> = nonces.iter().collect();
    assert_eq!(distinct.len(), nonces.len());
    assert!(ScramClient::with_nonce(ScramHash::Sha256, &creds, "a,b").is_err());
}

#[test]
fn step_before_initial_is_a_state_error() {
    let mut c = rfc_client();
    assert!(matches!(
        c.step(RFC_SERVER_FIRST.as_bytes()),
        Err(SaslError::State { .. })
    ));
}
