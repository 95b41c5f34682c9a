//! The exchange of the mechanisms whose client sends one message and is done when the server
//! answers with an empty one (PLAIN, OAUTHBEARER). They differ only in the message and in what a
//! non-empty server answer means, which each passes to [`OneMessage::step`].

use super::{SaslError, Step};

/// The client's one message and where the exchange stands. No `Debug`: the message holds the
/// password or token.
pub(super) struct OneMessage {
    mechanism: &'static str,
    message: Vec<u8>,
    state: State,
}

/// Where a [`OneMessage`] exchange stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum State {
    Start,
    Sent,
    Done,
    Failed,
}

impl OneMessage {
    pub(super) fn new(mechanism: &'static str, message: Vec<u8>) -> Self {
        OneMessage {
            mechanism,
            message,
            state: State::Start,
        }
    }

    pub(super) fn state(&self) -> State {
        self.state
    }

    /// [`SaslExchange::initial`](super::SaslExchange::initial).
    pub(super) fn initial(&mut self) -> Vec<u8> {
        if self.state == State::Start {
            self.state = State::Sent;
        }
        self.message.clone()
    }

    /// [`SaslExchange::step`](super::SaslExchange::step): an empty server message completes the
    /// exchange; a non-empty one fails it, and `rejected` says what it means for the mechanism.
    pub(super) fn step(
        &mut self,
        server_msg: &[u8],
        rejected: impl FnOnce(&[u8]) -> Result<Step, SaslError>,
    ) -> Result<Step, SaslError> {
        match self.state {
            State::Start => Err(self.fail("step() called before initial()")),
            State::Sent if server_msg.is_empty() => {
                self.state = State::Done;
                Ok(Step::Done)
            }
            State::Sent => {
                self.state = State::Failed;
                rejected(server_msg)
            }
            State::Done => Err(self.fail("server message after the exchange completed")),
            State::Failed => Err(self.fail("exchange already failed")),
        }
    }

    /// [`SaslExchange::is_complete`](super::SaslExchange::is_complete).
    pub(super) fn is_complete(&self) -> bool {
        self.state == State::Done
    }

    fn fail(&mut self, reason: &'static str) -> SaslError {
        self.state = State::Failed;
        SaslError::State {
            mechanism: self.mechanism,
            reason,
        }
    }
}

/// Checks of the behaviour every one-message mechanism shares, run by each mechanism's tests.
#[cfg(test)]
pub(super) mod checks {
    use super::super::{SaslError, SaslExchange, Step};

    /// An empty server message after the initial one completes the exchange; another message
    /// after that is an error.
    pub(in crate::sasl) fn empty_server_message_completes(mut c: impl SaslExchange) {
        let _ = c.initial();
        assert!(!c.is_complete());
        assert!(matches!(c.step(b"").unwrap(), Step::Done));
        assert!(c.is_complete());
        assert!(matches!(c.step(b""), Err(SaslError::State { .. })));
    }

    /// A server message before the initial one is an error.
    pub(in crate::sasl) fn step_before_initial_fails(mut c: impl SaslExchange) {
        assert!(matches!(c.step(b""), Err(SaslError::State { .. })));
        assert!(!c.is_complete());
    }
}
