//! kingest's asynchronous Kafka client (tokio, rustls) over [`kingest_protocol`].
//!
//! Not written yet: connections, metadata, produce, fetch and groups are issue 3 and issue 5.
//! Until then this crate only re-exports the protocol layer it will stand on.

pub use kingest_protocol as protocol;
