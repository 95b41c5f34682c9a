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

/// The README's Rust code blocks, compiled (and the ones not marked `no_run` run) by
/// `cargo test --doc`, so that what a new user copies from it builds against today's API.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeExamples;
