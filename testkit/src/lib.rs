//! An in-memory Kafka cluster for tests, faults and benchmarks (issue 4).
//!
//! Not written yet; this crate only re-exports the protocol layer it will stand on.

pub use kingest_protocol as protocol;
