//! kingest's cross-crate integration tests against real peers (nisshi, librdkafka, PostgreSQL),
//! and the tools they share.
//!
//! [`fixtures`] generates the golden record-batch fixtures under `protocol/tests/fixtures/`
//! from independent clients (run by `scripts/gen-fixtures.sh` through the `gen_fixtures` binary).

pub mod clients;

pub mod fixtures;

pub mod groups;

pub mod ingest;

pub mod peers;
