//! The network layer: one multiplexed connection per broker.
//!
//! - [`tls`] builds rustls client settings (CA file or system roots, client certificates, SNI,
//!   and an explicitly named switch to skip verification);
//! - [`stream`] is a TCP or TLS byte stream;
//! - [`connection`] pipelines requests over one stream with correlation ids, negotiates API
//!   versions, authenticates, honours broker throttling, and never leaves half a frame on the
//!   socket when a caller gives up;
//! - [`throttle`] reads the throttle time out of any response type.

mod auth;
pub mod connection;
pub mod stream;
pub mod throttle;
pub mod tls;

pub use connection::{Connection, ConnectionConfig};
pub use tls::TlsConfig;
