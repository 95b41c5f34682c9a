//! kingest: Kafka to Arrow, Parquet and PostgreSQL, exactly once.
//!
//! The ingest engine (issue 6) is not written yet. What is here now: the [`cli`] with
//! `kingest dev-broker` (testkit's in-memory cluster for local development) and
//! `kingest inspect`, which uses [`inspect`] to print the records of a raw record-set file.

pub mod cli;
pub mod config;
pub mod decode;
pub mod engine;
pub mod filter;
pub mod inspect;
pub mod schema;
pub mod sink;
