//! The Kafka wire protocol for kingest.
//!
//! This crate is the bottom layer: it knows bytes, not sockets. It holds
//!
//! - [`frame`]: splitting 4-byte size-prefixed frames out of a read buffer without copying;
//! - [`message`]: request/response headers and versioned message codecs over the `kafka-protocol`
//!   crate, with its errors turned into ours;
//! - [`versions`]: ApiVersions negotiation (the highest version both sides speak, per API);
//! - [`error_code`]: the Kafka error codes, as the Java client's `Errors` table defines them;
//! - [`record`]: our own zero-copy record batch reader and writer (magic 2 with every codec,
//!   control batches, and the legacy magic 0/1 message sets);
//! - [`consumer_protocol`]: the bytes a classic consumer group's members and leader exchange
//!   inside JoinGroup and SyncGroup (subscriptions and assignments), as Java writes them.
//!
//! ```
//! use bytes::Bytes;
//! use kingest_protocol::record::{BatchBuilder, BatchOptions, Compression, DecodeOptions, RecordSet};
//!
//! // Build a batch the way a producer would, then read it back the way a consumer does.
//! let mut builder = BatchBuilder::new(BatchOptions {
//!     base_offset: 42,
//!     compression: Compression::Lz4,
//!     ..BatchOptions::default()
//! });
//! builder.push(1_700_000_000_000, Some(b"key"), Some(b"hello"), &[]);
//! let bytes: Bytes = builder.finish().unwrap();
//!
//! let opts = DecodeOptions::default();
//! let mut set = RecordSet::new(bytes);
//! let batch = set.next().unwrap().unwrap().decode(&opts).unwrap();
//! let record = batch.records().next().unwrap().unwrap();
//! assert_eq!((record.offset, record.value), (42, Some(&b"hello"[..])));
//! ```

pub mod consumer_protocol;
pub mod error;
pub mod error_code;
pub mod frame;
pub mod message;
pub mod record;
pub mod versions;

pub use error::ProtocolError;
pub use error_code::{BrokerError, ErrorCode};
/// The `kafka-protocol` crate's generated message types, re-exported so that every layer uses
/// the same version of them.
pub use kafka_protocol;
