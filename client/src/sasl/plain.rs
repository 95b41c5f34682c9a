//! SASL/PLAIN (RFC 4616): one message, `[authzid] NUL authcid NUL passwd`, answered by an empty
//! server message on success.
//!
//! Kafka's broker (`PlainSaslServer`) splits the message on NUL and requires a non-empty user
//! name and password, so those are checked here, before the password goes on the wire in a
//! message the broker would misparse.

use std::fmt;

use super::one_message::OneMessage;
use super::{SaslError, SaslExchange, Secret, Step};

pub(super) const MECHANISM: &str = "PLAIN";

/// A PLAIN exchange.
pub struct PlainClient {
    user: String,
    exchange: OneMessage,
}

impl PlainClient {
    /// Checks the fields and builds the message.
    pub fn new(
        username: &str,
        password: &Secret,
        authzid: Option<&str>,
    ) -> Result<Self, SaslError> {
        let invalid = |reason: &str| SaslError::InvalidCredentials {
            mechanism: MECHANISM,
            user: username.to_owned(),
            reason: reason.to_owned(),
        };
        let authzid = authzid.unwrap_or("");
        if username.is_empty() {
            return Err(invalid("the user name is empty"));
        }
        if password.expose().is_empty() {
            return Err(invalid("the password is empty"));
        }
        // NUL is the field separator: one inside a field would shift the broker's parse.
        if username.contains('\0') {
            return Err(invalid("the user name contains a NUL character"));
        }
        if password.expose().contains('\0') {
            return Err(invalid("the password contains a NUL character"));
        }
        if authzid.contains('\0') {
            return Err(invalid("the authorization id contains a NUL character"));
        }
        let mut message =
            Vec::with_capacity(authzid.len() + username.len() + password.expose().len() + 2);
        message.extend_from_slice(authzid.as_bytes());
        message.push(0);
        message.extend_from_slice(username.as_bytes());
        message.push(0);
        message.extend_from_slice(password.expose().as_bytes());
        Ok(PlainClient {
            user: username.to_owned(),
            exchange: OneMessage::new(MECHANISM, message),
        })
    }
}

impl SaslExchange for PlainClient {
    fn mechanism(&self) -> &'static str {
        MECHANISM
    }

    fn initial(&mut self) -> Vec<u8> {
        self.exchange.initial()
    }

    fn step(&mut self, server_msg: &[u8]) -> Result<Step, SaslError> {
        let user = &self.user;
        self.exchange.step(server_msg, |server_msg| {
            Err(SaslError::Protocol {
                mechanism: MECHANISM,
                user: user.clone(),
                reason: format!(
                    "unexpected {}-byte server message; PLAIN expects an empty one",
                    server_msg.len()
                ),
            })
        })
    }

    fn is_complete(&self) -> bool {
        self.exchange.is_complete()
    }
}

impl fmt::Debug for PlainClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The message holds the password: never print it.
        f.debug_struct("PlainClient")
            .field("user", &self.user)
            .field("state", &self.exchange.state())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sasl::one_message::checks;

    fn client(user: &str, pass: &str, authzid: Option<&str>) -> Result<PlainClient, SaslError> {
        PlainClient::new(user, &Secret::new(pass), authzid)
    }

    #[test]
    fn exact_bytes_with_and_without_authzid() {
        assert_eq!(
            client("user", "pass", None).unwrap().initial(),
            b"\0user\0pass"
        );
        assert_eq!(
            client("user", "pass", Some("authzid")).unwrap().initial(),
            b"authzid\0user\0pass"
        );
        assert_eq!(
            client("j\u{f6}rg", "p\u{e4}ss", None).unwrap().initial(),
            "\0j\u{f6}rg\0p\u{e4}ss".as_bytes(),
            "UTF-8 as is, like the JDK client"
        );
    }

    #[test]
    fn empty_server_message_completes() {
        checks::empty_server_message_completes(client("user", "pass", None).unwrap());
    }

    #[test]
    fn out_of_order_and_unexpected_messages_fail() {
        checks::step_before_initial_fails(client("user", "pass", None).unwrap());
        let mut c = client("user", "pass", None).unwrap();
        let _ = c.initial();
        let err = c.step(b"surprise").unwrap_err();
        assert!(
            err.to_string().contains("PLAIN") && err.to_string().contains("user"),
            "{err}"
        );
        assert!(!c.is_complete());
    }

    #[test]
    fn unusable_fields_are_rejected_before_sending() {
        for (u, p, a) in [
            ("", "p", None),
            ("u", "", None),
            ("u\0x", "p", None),
            ("u", "p\0x", None),
            ("u", "p", Some("a\0")),
        ] {
            let err = client(u, p, a).unwrap_err();
            assert!(
                matches!(
                    err,
                    SaslError::InvalidCredentials {
                        mechanism: "PLAIN",
                        ..
                    }
                ),
                "{err}"
            );
        }
    }
}
