//! The protocol layer's error types.
//!
//! `kafka-protocol` reports failures as `anyhow::Error`; nothing above this crate should see that.
//! [`ProtocolError`] is what the message codecs return, [`FrameError`] what the frame splitter
//! returns, and [`crate::record::RecordError`] what the record batch reader returns.

use thiserror::Error;

/// A frame that cannot be split out of the read buffer.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The size prefix announces more than the configured limit: refused before allocating.
    #[error("frame of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The announced size.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// The size prefix is negative.
    #[error("frame size prefix is negative ({0})")]
    NegativeSize(i32),
}

/// A request or response that could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A frame-level failure.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// A message body or header failed to decode.
    #[error("cannot decode {what} (api key {api_key}, version {version}): {reason}")]
    Decode {
        /// What was being decoded, e.g. "FetchResponse" or "response header".
        what: &'static str,
        /// The API key of the exchange.
        api_key: i16,
        /// The version it was decoded with.
        version: i16,
        /// What `kafka-protocol` said was wrong.
        reason: String,
    },
    /// A message failed to encode (a field out of range for the chosen version, for example).
    #[error("cannot encode {what} (api key {api_key}, version {version}): {reason}")]
    Encode {
        /// What was being encoded.
        what: &'static str,
        /// The API key.
        api_key: i16,
        /// The version it was encoded with.
        version: i16,
        /// What `kafka-protocol` said was wrong.
        reason: String,
    },
    /// The API key is not one this build knows.
    #[error("unknown api key {0}")]
    UnknownApiKey(i16),
    /// The peer sent bytes after the end of a complete message.
    #[error("{extra} unexpected bytes after {what} (api key {api_key}, version {version})")]
    TrailingBytes {
        /// What was decoded.
        what: &'static str,
        /// The API key.
        api_key: i16,
        /// The version.
        version: i16,
        /// How many bytes were left over.
        extra: usize,
    },
    /// The frame is too short to hold even the fixed part of a header.
    #[error("frame of {len} bytes is too short for a {what}")]
    ShortFrame {
        /// What was expected.
        what: &'static str,
        /// The frame length.
        len: usize,
    },
    /// No version of this API is supported by both sides.
    #[error("{api} is not supported: client speaks versions {ours}, broker {theirs}")]
    UnsupportedVersion {
        /// The API's name.
        api: &'static str,
        /// Our version range, as "min..max".
        ours: String,
        /// The broker's version range, or "none" when it does not offer the API.
        theirs: String,
    },
}
